#include "tunnel/socks5.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cassert>
#include <cstring>

namespace tether::tunnel {
namespace {

constexpr std::uint8_t kConnectCommand = 1;
constexpr std::size_t kRequestHeaderLength = 4;  // version, command, reserved, address type

std::uint8_t byte_at(std::span<const std::byte> bytes, std::size_t at) {
  return static_cast<std::uint8_t>(bytes[at]);
}

}  // namespace

const char* to_string(Socks5Reply reply) {
  switch (reply) {
    case Socks5Reply::kSucceeded:
      return "succeeded";
    case Socks5Reply::kGeneralFailure:
      return "general SOCKS server failure";
    case Socks5Reply::kNotAllowed:
      return "connection not allowed by ruleset";
    case Socks5Reply::kNetworkUnreachable:
      return "network unreachable";
    case Socks5Reply::kHostUnreachable:
      return "host unreachable";
    case Socks5Reply::kConnectionRefused:
      return "connection refused";
    case Socks5Reply::kTtlExpired:
      return "TTL expired";
    case Socks5Reply::kCommandNotSupported:
      return "command not supported";
    case Socks5Reply::kAddressTypeNotSupported:
      return "address type not supported";
  }
  return "unknown reply";
}

Socks5Reply to_socks5_reply(ReplyStatus status) {
  switch (status) {
    case ReplyStatus::kConnected:
      return Socks5Reply::kSucceeded;
    case ReplyStatus::kNotAllowed:
      return Socks5Reply::kNotAllowed;
    case ReplyStatus::kUnreachable:
      return Socks5Reply::kHostUnreachable;
    case ReplyStatus::kRefused:
      return Socks5Reply::kConnectionRefused;
    case ReplyStatus::kBadRequest:
      return Socks5Reply::kGeneralFailure;
  }
  return Socks5Reply::kGeneralFailure;
}

std::vector<std::byte> encode_socks5_reply(Socks5Reply reply, std::string_view bound_host,
                                           std::uint16_t bound_port) {
  std::vector<std::byte> out;
  out.push_back(static_cast<std::byte>(kSocks5Version));
  out.push_back(static_cast<std::byte>(reply));
  out.push_back(std::byte{0});
  std::array<unsigned char, 16> address{};
  const std::string host(bound_host);
  const bool text = host.find('\0') == std::string::npos;
  if (host.empty()) {
    out.push_back(static_cast<std::byte>(Socks5AddressType::kIpv4));
    out.insert(out.end(), 4, std::byte{0});
  } else if (text && inet_pton(AF_INET, host.c_str(), address.data()) == 1) {
    out.push_back(static_cast<std::byte>(Socks5AddressType::kIpv4));
    for (std::size_t index = 0; index < 4; ++index) out.push_back(std::byte{address[index]});
  } else if (text && inet_pton(AF_INET6, host.c_str(), address.data()) == 1) {
    out.push_back(static_cast<std::byte>(Socks5AddressType::kIpv6));
    for (const unsigned char value : address) out.push_back(std::byte{value});
  } else {
    assert(host.size() <= 255 && "a SOCKS5 bound domain name is at most 255 bytes");
    const std::size_t length = std::min<std::size_t>(host.size(), 255);
    out.push_back(static_cast<std::byte>(Socks5AddressType::kDomain));
    out.push_back(static_cast<std::byte>(length));
    for (std::size_t index = 0; index < length; ++index)
      out.push_back(static_cast<std::byte>(host[index]));
  }
  out.push_back(static_cast<std::byte>(bound_port >> 8));
  out.push_back(static_cast<std::byte>(bound_port & 0xff));
  return out;
}

Expected<Socks5Progress, Socks5Failure> Socks5Handshake::feed(std::span<const std::byte> bytes) {
  Socks5Progress progress;
  if (state_ == State::kFailed) return make_unexpected(Socks5Failure{failure_reason_, {}});
  while (state_ == State::kGreeting || state_ == State::kRequest) {
    const Examination examination =
        state_ == State::kGreeting ? examine_greeting() : examine_request();
    switch (examination.kind) {
      case Examination::Kind::kNeedBytes: {
        assert(examination.length > buffered_ && examination.length <= buffer_.size());
        if (bytes.empty()) return progress;
        const std::size_t take = std::min(examination.length - buffered_, bytes.size());
        std::memcpy(buffer_.data() + buffered_, bytes.data(), take);
        buffered_ += take;
        progress.consumed += take;
        bytes = bytes.subspan(take);
        break;
      }
      case Examination::Kind::kFailed: {
        state_ = State::kFailed;
        failure_reason_ = examination.reason;
        progress.to_send.insert(progress.to_send.end(), examination.answer.begin(),
                                examination.answer.end());
        return make_unexpected(Socks5Failure{failure_reason_, std::move(progress.to_send)});
      }
      case Examination::Kind::kComplete: {
        if (state_ == State::kGreeting) {
          progress.to_send.push_back(static_cast<std::byte>(kSocks5Version));
          progress.to_send.push_back(static_cast<std::byte>(kSocks5NoAuthentication));
          state_ = State::kRequest;
        } else {
          request_ = parse_target();
          progress.request = request_;
          state_ = State::kComplete;
        }
        buffered_ = 0;
        break;
      }
    }
  }
  return progress;
}

Socks5Handshake::Examination Socks5Handshake::Examination::need(std::size_t length) {
  Examination examination;
  examination.length = length;
  return examination;
}

Socks5Handshake::Examination Socks5Handshake::Examination::complete() {
  Examination examination;
  examination.kind = Kind::kComplete;
  return examination;
}

Socks5Handshake::Examination Socks5Handshake::Examination::failed(std::vector<std::byte> answer,
                                                                  std::string reason) {
  Examination examination;
  examination.kind = Kind::kFailed;
  examination.answer = std::move(answer);
  examination.reason = std::move(reason);
  return examination;
}

// Each field is checked as soon as it is buffered and fields are checked in wire order, so the
// first bad field decides the outcome however the bytes were split.
Socks5Handshake::Examination Socks5Handshake::examine_greeting() const {
  const std::span<const std::byte> message(buffer_.data(), buffered_);
  if (message.empty()) return Examination::need(1);
  if (byte_at(message, 0) != kSocks5Version) {
    return Examination::failed({}, "greeting is not SOCKS version 5");
  }
  if (message.size() < 2) return Examination::need(2);
  const std::size_t length = 2 + byte_at(message, 1);
  if (message.size() < length) return Examination::need(length);
  for (std::size_t index = 2; index < length; ++index) {
    if (byte_at(message, index) == kSocks5NoAuthentication) {
      return Examination::complete();
    }
  }
  // RFC 1928 §3: answer 0xFF, and the client closes the connection.
  return Examination::failed(
      {static_cast<std::byte>(kSocks5Version), static_cast<std::byte>(kSocks5NoAcceptableMethod)},
      "the client offers no acceptable authentication method (only \"no authentication\" is "
      "supported)");
}

Socks5Handshake::Examination Socks5Handshake::examine_request() const {
  const std::span<const std::byte> message(buffer_.data(), buffered_);
  const auto fail = [](std::optional<Socks5Reply> reply, std::string reason) {
    return Examination::failed(reply ? encode_socks5_reply(*reply) : std::vector<std::byte>{},
                               std::move(reason));
  };
  if (message.empty()) return Examination::need(kRequestHeaderLength);
  if (byte_at(message, 0) != kSocks5Version) {
    return fail(std::nullopt, "request is not SOCKS version 5");
  }
  if (message.size() < 2) return Examination::need(kRequestHeaderLength);
  if (const std::uint8_t command = byte_at(message, 1); command != kConnectCommand) {
    return fail(Socks5Reply::kCommandNotSupported,
                "unsupported SOCKS command " + std::to_string(command) + " (only CONNECT)");
  }
  if (message.size() < 3) return Examination::need(kRequestHeaderLength);
  if (byte_at(message, 2) != 0) {
    return fail(Socks5Reply::kGeneralFailure, "request's reserved byte is not zero");
  }
  if (message.size() < 4) return Examination::need(kRequestHeaderLength);
  std::size_t length = 0;
  switch (const std::uint8_t type = byte_at(message, 3); type) {
    case static_cast<std::uint8_t>(Socks5AddressType::kIpv4):
      length = kRequestHeaderLength + 4 + 2;
      break;
    case static_cast<std::uint8_t>(Socks5AddressType::kIpv6):
      length = kRequestHeaderLength + 16 + 2;
      break;
    case static_cast<std::uint8_t>(Socks5AddressType::kDomain): {
      if (message.size() < kRequestHeaderLength + 1)
        return Examination::need(kRequestHeaderLength + 1);
      const std::size_t domain_length = byte_at(message, kRequestHeaderLength);
      if (domain_length == 0) return fail(Socks5Reply::kGeneralFailure, "empty domain name");
      length = kRequestHeaderLength + 1 + domain_length + 2;
      break;
    }
    default:
      return fail(Socks5Reply::kAddressTypeNotSupported,
                  "unsupported SOCKS address type " + std::to_string(type));
  }
  if (message.size() < length) return Examination::need(length);
  if (byte_at(message, 3) == static_cast<std::uint8_t>(Socks5AddressType::kDomain)) {
    const auto domain =
        message.subspan(kRequestHeaderLength + 1, length - kRequestHeaderLength - 3);
    const bool printable = std::all_of(domain.begin(), domain.end(), [](std::byte value) {
      return value >= std::byte{0x21} && value <= std::byte{0x7e};
    });
    if (!printable) {
      return fail(Socks5Reply::kGeneralFailure,
                  "domain name has a byte that is not printable ASCII");
    }
  }
  return Examination::complete();
}

// Called on a complete, examined request.
Socks5Target Socks5Handshake::parse_target() const {
  const std::span<const std::byte> message(buffer_.data(), buffered_);
  Socks5Target target;
  std::span<const std::byte> address;
  const auto type = static_cast<Socks5AddressType>(byte_at(message, 3));
  target.address_type = type;
  if (type == Socks5AddressType::kDomain) {
    address = message.subspan(kRequestHeaderLength + 1, byte_at(message, kRequestHeaderLength));
    target.host.assign(reinterpret_cast<const char*>(address.data()), address.size());
  } else {
    address = message.subspan(kRequestHeaderLength, type == Socks5AddressType::kIpv4 ? 4 : 16);
    std::array<char, INET6_ADDRSTRLEN> text{};
    const char* written = inet_ntop(type == Socks5AddressType::kIpv4 ? AF_INET : AF_INET6,
                                    address.data(), text.data(), text.size());
    assert(written != nullptr);
    target.host = written;
  }
  const std::size_t port_at =
      static_cast<std::size_t>(address.data() - message.data()) + address.size();
  target.port =
      static_cast<std::uint16_t>((byte_at(message, port_at) << 8) | byte_at(message, port_at + 1));
  assert(port_at + 2 == message.size());
  return target;
}

}  // namespace tether::tunnel
