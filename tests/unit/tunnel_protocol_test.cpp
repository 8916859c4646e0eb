// Unit tests of the tunnel's per-stream protocol: request and reply round trips and exact
// encodings, truncated and malformed headers, HOST:PORT splitting and escaping text for logs (the
// allow lists are tested in allow_list_test.cpp).
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tests/support/bytes.hpp"
#include "tunnel/tunnel_protocol.hpp"

namespace tether::tunnel {
namespace {

using tether::testing::Bytes;
using tether::testing::bytes;
using tether::testing::concat;
using tether::testing::text;

// Every proper prefix of a complete header asks for more bytes and leaves `consumed` alone.
template <typename Parse>
void expect_prefixes_need_more(const Bytes& encoding, Parse parse) {
  for (std::size_t length = 0; length < encoding.size(); ++length) {
    std::size_t consumed = 12345;
    const auto result = parse(std::span(encoding).first(length), consumed);
    ASSERT_TRUE(result) << "prefix of " << length << " bytes: " << result.error();
    EXPECT_FALSE(result->has_value()) << "prefix of " << length << " bytes";
    EXPECT_EQ(consumed, 12345u);
  }
}

std::optional<StreamRequest> round_trip(const StreamRequest& request) {
  const Bytes encoding = encode(request);
  std::size_t consumed = 0;
  const auto parsed = parse_request(encoding, consumed);
  if (!parsed || !parsed->has_value()) return std::nullopt;
  EXPECT_EQ(consumed, encoding.size());
  return *parsed;
}

std::string parse_request_error(const Bytes& input) {
  std::size_t consumed = 0;
  const auto result = parse_request(input, consumed);
  return result ? std::string() : result.error();
}

std::string parse_reply_error(const Bytes& input) {
  std::size_t consumed = 0;
  const auto result = parse_reply(input, consumed);
  return result ? std::string() : result.error();
}

TEST(TunnelRequest, HasTheDocumentedEncoding) {
  const StreamRequest request{RequestKind::kConnect, "db", 5432};
  EXPECT_EQ(encode(request), concat(concat(bytes({1, 1, 0, 2}), text("db")), bytes({0x15, 0x38})));
  const StreamRequest listen{RequestKind::kListen, "0.0.0.0", 8080};
  EXPECT_EQ(encode(listen),
            concat(concat(bytes({1, 2, 0, 7}), text("0.0.0.0")), bytes({0x1f, 0x90})));
}

TEST(TunnelRequest, RoundTripsEveryKindAndFieldEdge) {
  for (const StreamRequest& request :
       {StreamRequest{RequestKind::kConnect, "localhost", 22},
        StreamRequest{RequestKind::kListen, "127.0.0.1", 0},
        StreamRequest{RequestKind::kConnect, "::1", 65535},
        StreamRequest{RequestKind::kConnect, "h", 1},
        StreamRequest{RequestKind::kConnect, std::string(kMaxHostLength, 'x'), 443}}) {
    const auto parsed = round_trip(request);
    ASSERT_TRUE(parsed) << request.host;
    EXPECT_EQ(parsed->kind, request.kind);
    EXPECT_EQ(parsed->host, request.host);
    EXPECT_EQ(parsed->port, request.port);
  }
}

TEST(TunnelRequest, EncodingCutsAnOverlongHostToTheLimit) {
  const std::string host(kMaxHostLength + 40, 'y');
  const auto parsed = round_trip(StreamRequest{RequestKind::kConnect, host, 80});
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->host, host.substr(0, kMaxHostLength));
  EXPECT_EQ(parsed->port, 80);
}

TEST(TunnelRequest, TruncatedInputNeedsMoreBytes) {
  expect_prefixes_need_more(encode(StreamRequest{RequestKind::kConnect, "example.org", 80}),
                            [](std::span<const std::byte> input, std::size_t& consumed) {
                              return parse_request(input, consumed);
                            });
}

TEST(TunnelRequest, LeavesTheBytesAfterTheHeader) {
  const Bytes header = encode(StreamRequest{RequestKind::kConnect, "example.org", 80});
  const Bytes input = concat(header, text("payload"));
  std::size_t consumed = 0;
  const auto parsed = parse_request(input, consumed);
  ASSERT_TRUE(parsed);
  ASSERT_TRUE(parsed->has_value());
  EXPECT_EQ(consumed, header.size());
  EXPECT_EQ((*parsed)->host, "example.org");
}

TEST(TunnelRequest, RefusesMalformedHeaders) {
  EXPECT_EQ(parse_request_error(bytes({2, 1, 0, 1, 'h', 0, 80})), "unknown tunnel version");
  EXPECT_EQ(parse_request_error(bytes({0, 1, 0, 1, 'h', 0, 80})), "unknown tunnel version");
  EXPECT_EQ(parse_request_error(bytes({1, 0, 0, 1, 'h', 0, 80})), "unknown request kind");
  EXPECT_EQ(parse_request_error(bytes({1, 3, 0, 1, 'h', 0, 80})), "unknown request kind");
  EXPECT_EQ(parse_request_error(bytes({1, 1, 0, 0, 0, 80})), "host name length out of range");
  // 256 is one past the limit; the error comes from the header alone, before any host byte.
  EXPECT_EQ(parse_request_error(bytes({1, 1, 1, 0})), "host name length out of range");
  EXPECT_EQ(parse_request_error(bytes({1, 1, 0xff, 0xff})), "host name length out of range");
}

TEST(TunnelRequest, AnEmptyHostEncodesToAHeaderTheParserRefuses) {
  // encode() does not validate; the parser is the gate.
  EXPECT_EQ(parse_request_error(encode(StreamRequest{RequestKind::kConnect, "", 80})),
            "host name length out of range");
}

TEST(TunnelReply, HasTheDocumentedEncoding) {
  EXPECT_EQ(encode(Reply{ReplyStatus::kConnected, ""}), bytes({0, 0, 0}));
  EXPECT_EQ(encode(Reply{ReplyStatus::kNotAllowed, "no"}), bytes({1, 0, 2, 'n', 'o'}));
}

TEST(TunnelReply, RoundTripsEveryStatus) {
  for (const ReplyStatus status :
       {ReplyStatus::kConnected, ReplyStatus::kNotAllowed, ReplyStatus::kUnreachable,
        ReplyStatus::kRefused, ReplyStatus::kBadRequest}) {
    for (const std::string& message :
         {std::string(), std::string("connection refused by 10.0.0.1:22"),
          std::string(kMaxMessageLength, 'm')}) {
      const Bytes encoding = encode(Reply{status, message});
      std::size_t consumed = 0;
      const auto parsed = parse_reply(encoding, consumed);
      ASSERT_TRUE(parsed);
      ASSERT_TRUE(parsed->has_value());
      EXPECT_EQ((*parsed)->status, status);
      EXPECT_EQ((*parsed)->message, message);
      EXPECT_EQ(consumed, encoding.size());
    }
  }
}

TEST(TunnelReply, EncodingCutsAnOverlongMessageToTheLimit) {
  const std::string message(kMaxMessageLength + 1, 'z');
  const Bytes encoding = encode(Reply{ReplyStatus::kUnreachable, message});
  std::size_t consumed = 0;
  const auto parsed = parse_reply(encoding, consumed);
  ASSERT_TRUE(parsed);
  ASSERT_TRUE(parsed->has_value());
  EXPECT_EQ((*parsed)->message, message.substr(0, kMaxMessageLength));
}

TEST(TunnelReply, TruncatedInputNeedsMoreBytes) {
  expect_prefixes_need_more(encode(Reply{ReplyStatus::kRefused, "refused"}),
                            [](std::span<const std::byte> input, std::size_t& consumed) {
                              return parse_reply(input, consumed);
                            });
}

TEST(TunnelReply, RefusesMalformedHeaders) {
  EXPECT_EQ(parse_reply_error(bytes({5, 0, 0})), "unknown reply status");
  EXPECT_EQ(parse_reply_error(bytes({0xff, 0, 0})), "unknown reply status");
  // 513 is one past the limit; the error comes before the message bytes arrive.
  EXPECT_EQ(parse_reply_error(bytes({0, 0x02, 0x01})), "reply message too long");
}

TEST(TunnelReply, EveryStatusHasAName) {
  for (const ReplyStatus status :
       {ReplyStatus::kConnected, ReplyStatus::kNotAllowed, ReplyStatus::kUnreachable,
        ReplyStatus::kRefused, ReplyStatus::kBadRequest}) {
    EXPECT_STRNE(to_string(status), "unknown status");
  }
}

// split_host_port takes `input` apart into `host` and `port`.
void expect_split(std::string_view input, std::string_view host, std::uint16_t port) {
  const auto result = split_host_port(input);
  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(result->first, host) << input;
  EXPECT_EQ(result->second, port) << input;
}

// split_host_port refuses every input with an error that quotes it.
void expect_split_refuses(std::initializer_list<std::string_view> inputs) {
  for (const std::string_view input : inputs) {
    const auto result = split_host_port(input);
    ASSERT_FALSE(result) << input;
    EXPECT_NE(result.error().find(input), std::string::npos) << result.error();
  }
}

TEST(SplitHostPort, SplitsNamesAndIpv4) {
  expect_split("localhost:5432", "localhost", 5432);
  expect_split("10.0.0.1:1", "10.0.0.1", 1);
  expect_split("h:65535", "h", 65535);
}

TEST(SplitHostPort, SplitsBracketedIpv6) {
  expect_split("[::1]:443", "::1", 443);
  expect_split("[2001:db8::7]:22", "2001:db8::7", 22);
}

TEST(SplitHostPort, RefusesBadBrackets) {
  expect_split_refuses({"[::1]", "[::1]443", "[::1:443", "[::1]:", "[]:443"});
}

TEST(SplitHostPort, RefusesBadHostsAndPorts) {
  expect_split_refuses({"localhost", ":80", "host:", "host:0", "host:65536", "host:99999999999",
                        "host:80x", "host:-1", "host:+80", "host: 80", ""});
}

TEST(SplitHostPort, TakesPortZeroOnlyWhenAsked) {
  const auto any_port = split_host_port("127.0.0.1:0", true);
  ASSERT_TRUE(any_port) << any_port.error();
  EXPECT_EQ(any_port->second, 0);
  EXPECT_FALSE(split_host_port("127.0.0.1:0"));
}

// A reset's code is the only reason that crosses the wire; the receiving side words it itself.
TEST(ResetReason, SaysWhyForKnownCodesAndNamesOthersByNumber) {
  EXPECT_EQ(reset_reason(kResetNotGranted).rfind("not granted:", 0), 0u);
  EXPECT_EQ(reset_reason(kResetLackOfResources).rfind("lack-of-resources", 0), 0u);
  EXPECT_NE(reset_reason(kResetClosed), reset_reason(kResetNotGranted));
  EXPECT_EQ(reset_reason(0xffffffffffffffffu), "code 18446744073709551615");
}

}  // namespace
}  // namespace tether::tunnel
