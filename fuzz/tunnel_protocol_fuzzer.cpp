// Fuzzes the tunnel's per-stream protocol: every input must parse as a request and as a reply to a
// header, "need more bytes" or a named error; a parsed header must re-encode to exactly the bytes
// it came from, and every shorter prefix must ask for more. HOST:PORT splitting and the allow lists
// get the same input as text.
#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "tunnel/allow_list.hpp"
#include "tunnel/tunnel_protocol.hpp"

namespace {

// Checks one parser (parse_request or parse_reply) on `input`.
template <typename Parse>
void check_header(std::span<const std::byte> input, Parse parse) {
  std::size_t consumed = 0;
  const auto result = parse(input, consumed);
  if (!result) {
    FUZZ_CHECK(!result.error().empty());
    return;
  }
  if (!result->has_value()) return;
  FUZZ_CHECK(consumed > 0 && consumed <= input.size());

  // The encoding has no choices (fixed-width fields, the lengths are the lengths), so the parsed
  // header re-encodes to exactly the consumed bytes.
  const std::vector<std::byte> encoding = tether::tunnel::encode(**result);
  FUZZ_CHECK(encoding.size() == consumed);
  FUZZ_CHECK(std::equal(encoding.begin(), encoding.end(), input.begin()));

  // One byte less of the same header can only ask for more.
  std::size_t shorter_consumed = 0;
  const auto shorter = parse(input.first(consumed - 1), shorter_consumed);
  FUZZ_CHECK(shorter.has_value() && !shorter->has_value());
}

void check_split_host_port(std::string_view text) {
  const auto result = tether::tunnel::split_host_port(text);
  if (!result) {
    FUZZ_CHECK(!result.error().empty());
    return;
  }
  const auto& [host, port] = *result;
  FUZZ_CHECK(!host.empty() && port != 0);
  FUZZ_CHECK(text.find(host) != std::string_view::npos);
  // Joining the parts again, bracketed when the host has a colon, splits to the same parts.
  const bool has_colon = host.find(':') != std::string::npos;
  const bool has_bracket = host.find_first_of("[]") != std::string::npos;
  if (has_bracket) return;  // only an unbracketed "a]:b:1"-like text gets here; no canonical form
  const std::string joined =
      (has_colon ? "[" + host + "]" : host) + ":" + std::to_string(static_cast<unsigned>(port));
  const auto again = tether::tunnel::split_host_port(joined);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(again->first == host && again->second == port);
}

// The input as a connect pattern and as a listen pattern; when one is accepted, the input's host
// part is checked against it as a request (resolving to a few fixed addresses): whatever is
// allowed is one of those addresses, and a pattern naming one address and one port allows exactly
// that target.
void check_allow_list(std::string_view text) {
  const std::array<asio::ip::address, 4> resolved = {
      asio::ip::make_address("127.0.0.1"), asio::ip::make_address("10.0.0.7"),
      asio::ip::make_address("::ffff:192.0.2.1"), asio::ip::make_address("fe80::1")};
  const std::array<asio::ip::address, 1> own = {asio::ip::make_address("192.0.2.1")};
  const auto colon = text.rfind(':');
  std::string_view host = colon == std::string_view::npos ? text : text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const std::string_view port_text =
      colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  const bool single_port = error == std::errc{} && end == port_text.data() + port_text.size() &&
                           port <= 65535 && std::to_string(port) == port_text;

  tether::tunnel::ConnectAllowList connect;
  const bool added = connect.add(text).has_value();
  FUZZ_CHECK(connect.empty() != added);
  if (added) {
    const auto port16 = static_cast<std::uint16_t>(port);
    (void)connect.may_allow(host, port16);
    const auto allowed = connect.check(host, port16, resolved, own);
    if (allowed) {
      FUZZ_CHECK(!allowed->empty());
      for (const auto& address : *allowed) {
        FUZZ_CHECK(std::find(resolved.begin(), resolved.end(), address) != resolved.end() ||
                   address == tether::tunnel::unmapped(resolved[2]));
      }
    } else {
      FUZZ_CHECK(!allowed.error().empty());
    }
    std::error_code parse_error;
    const auto literal = asio::ip::make_address(std::string(host), parse_error);
    if (!parse_error && single_port && host.find('%') == std::string_view::npos) {
      const std::array<asio::ip::address, 1> itself = {literal};
      const auto exact = connect.check(host, port16, itself, own);
      FUZZ_CHECK(exact.has_value());
    }
  }
  tether::tunnel::ListenAllowList listen;
  const bool listen_added = listen.add(text).has_value();
  FUZZ_CHECK(listen.empty() != listen_added);
  if (listen_added) {
    const auto checked = listen.check(host, static_cast<std::uint16_t>(port));
    if (!checked) FUZZ_CHECK(!checked.error().empty());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  check_header(input, [](std::span<const std::byte> bytes, std::size_t& consumed) {
    return tether::tunnel::parse_request(bytes, consumed);
  });
  check_header(input, [](std::span<const std::byte> bytes, std::size_t& consumed) {
    return tether::tunnel::parse_reply(bytes, consumed);
  });
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  check_split_host_port(text);
  check_allow_list(text);
  return 0;
}
