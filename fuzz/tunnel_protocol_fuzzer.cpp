// Fuzzes the tunnel's per-stream protocol: every input must parse as a request and as a reply to a
// header, "need more bytes" or a named error; a parsed header must re-encode to exactly the bytes
// it came from, and every shorter prefix must ask for more. HOST:PORT splitting and the allow list
// get the same input as text.
#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
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

void check_allow_list(std::string_view text) {
  tether::tunnel::AllowList allow;
  const bool added = allow.add(text).has_value();
  FUZZ_CHECK(allow.empty() != added);
  if (!added) return;
  const auto colon = text.rfind(':');
  const std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, error] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  const bool literal = host.find_first_of("*?[]\\") == std::string_view::npos &&
                       port_text.find_first_of("*?[]\\") == std::string_view::npos;
  if (literal && error == std::errc{} && end == port_text.data() + port_text.size() &&
      port <= 65535 && std::to_string(port) == port_text) {
    // A pattern without wildcards allows exactly what it names.
    FUZZ_CHECK(allow.allows(host, static_cast<std::uint16_t>(port)));
  } else {
    (void)allow.allows(host, static_cast<std::uint16_t>(port));
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
