#include "tunnel/tunnel_protocol.hpp"

#include <charconv>
#include <string>

namespace tether::tunnel {
namespace {

void put_u16(std::vector<std::byte>& out, std::size_t value) {
  out.push_back(static_cast<std::byte>(value >> 8));
  out.push_back(static_cast<std::byte>(value & 0xff));
}
std::size_t get_u16(std::span<const std::byte> bytes, std::size_t at) {
  return (static_cast<std::size_t>(bytes[at]) << 8) | static_cast<std::size_t>(bytes[at + 1]);
}
std::string as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace

std::string reset_reason(std::uint64_t code) {
  switch (code) {
    case kResetClosed:
      return "its end there closed";
    case kResetLackOfResources:
      return "lack-of-resources: too many bytes unread";
    case kResetNotGranted:
      return "not granted: the credential of the latest re-authentication no longer grants this "
             "target";
    default:
      return "code " + std::to_string(code);
  }
}

const char* to_string(ReplyStatus status) {
  switch (status) {
    case ReplyStatus::kConnected:
      return "connected";
    case ReplyStatus::kNotAllowed:
      return "target not allowed by the server";
    case ReplyStatus::kUnreachable:
      return "target unreachable";
    case ReplyStatus::kRefused:
      return "target refused the connection";
    case ReplyStatus::kBadRequest:
      return "bad request";
  }
  return "unknown status";
}

std::vector<std::byte> encode(const StreamRequest& request) {
  std::vector<std::byte> out{static_cast<std::byte>(kTunnelVersion),
                             static_cast<std::byte>(request.kind)};
  const std::size_t length = std::min(request.host.size(), kMaxHostLength);
  put_u16(out, length);
  for (std::size_t index = 0; index < length; ++index)
    out.push_back(static_cast<std::byte>(request.host[index]));
  put_u16(out, request.port);
  return out;
}

std::vector<std::byte> encode(const Reply& reply) {
  std::vector<std::byte> out{static_cast<std::byte>(reply.status)};
  const std::size_t length = std::min(reply.message.size(), kMaxMessageLength);
  put_u16(out, length);
  for (std::size_t index = 0; index < length; ++index)
    out.push_back(static_cast<std::byte>(reply.message[index]));
  return out;
}

Expected<std::optional<StreamRequest>, std::string> parse_request(std::span<const std::byte> bytes,
                                                                  std::size_t& consumed) {
  if (bytes.size() < 4) return std::optional<StreamRequest>{};
  if (static_cast<std::uint8_t>(bytes[0]) != kTunnelVersion)
    return make_unexpected(std::string("unknown tunnel version"));
  const auto kind = static_cast<std::uint8_t>(bytes[1]);
  if (kind != static_cast<std::uint8_t>(RequestKind::kConnect) &&
      kind != static_cast<std::uint8_t>(RequestKind::kListen))
    return make_unexpected(std::string("unknown request kind"));
  const std::size_t length = get_u16(bytes, 2);
  if (length == 0 || length > kMaxHostLength)
    return make_unexpected(std::string("host name length out of range"));
  if (bytes.size() < 4 + length + 2) return std::optional<StreamRequest>{};
  StreamRequest request;
  request.kind = static_cast<RequestKind>(kind);
  request.host = as_text(bytes.subspan(4, length));
  request.port = static_cast<std::uint16_t>(get_u16(bytes, 4 + length));
  consumed = 4 + length + 2;
  return std::optional<StreamRequest>{std::move(request)};
}

Expected<std::optional<Reply>, std::string> parse_reply(std::span<const std::byte> bytes,
                                                        std::size_t& consumed) {
  if (bytes.size() < 3) return std::optional<Reply>{};
  const auto status = static_cast<std::uint8_t>(bytes[0]);
  if (status > static_cast<std::uint8_t>(ReplyStatus::kBadRequest)) {
    return make_unexpected(std::string("unknown reply status"));
  }
  const std::size_t length = get_u16(bytes, 1);
  if (length > kMaxMessageLength) return make_unexpected(std::string("reply message too long"));
  if (bytes.size() < 3 + length) return std::optional<Reply>{};
  Reply reply{static_cast<ReplyStatus>(status), as_text(bytes.subspan(3, length))};
  consumed = 3 + length;
  return std::optional<Reply>{std::move(reply)};
}

Expected<std::pair<std::string, std::uint16_t>, std::string> split_host_port(std::string_view text,
                                                                             bool allow_port_zero) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return make_unexpected("expected [IPV6]:PORT in '" + std::string(text) + "'");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return make_unexpected("expected HOST:PORT in '" + std::string(text) + "'");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || error != std::errc{} || end != port.data() + port.size() ||
      (value == 0 && !allow_port_zero) || value > 65535) {
    return make_unexpected("invalid host or port in '" + std::string(text) + "'");
  }
  return std::pair<std::string, std::uint16_t>{std::string(host),
                                               static_cast<std::uint16_t>(value)};
}

}  // namespace tether::tunnel
