// Unit tests of the SOCKS5 server-side handshake: every address type, every way to split the
// input, pipelined payload, every refusal and its reply bytes, and reply encoding.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tests/support/bytes.hpp"
#include "tunnel/socks5.hpp"
#include "tunnel/tunnel_protocol.hpp"

namespace tether::tunnel {
namespace {

using tether::testing::Bytes;
using tether::testing::bytes;
using tether::testing::concat;
using tether::testing::text;
using State = Socks5Handshake::State;

Bytes port_bytes(std::uint16_t port) {
  return {static_cast<std::byte>(port >> 8), static_cast<std::byte>(port & 0xff)};
}

const Bytes kGreeting = bytes({5, 1, 0});
const Bytes kMethodSelected = bytes({5, 0});

Bytes request_ipv4(std::initializer_list<unsigned> address, std::uint16_t port) {
  return concat(concat(bytes({5, 1, 0, 1}), bytes(address)), port_bytes(port));
}

Bytes request_domain(std::string_view domain, std::uint16_t port) {
  Bytes out = bytes({5, 1, 0, 3, static_cast<unsigned>(domain.size())});
  out = concat(out, text(domain));
  return concat(out, port_bytes(port));
}

Bytes request_ipv6(const Bytes& address, std::uint16_t port) {
  return concat(concat(bytes({5, 1, 0, 4}), address), port_bytes(port));
}

// A failure reply with the unknown bound address 0.0.0.0:0.
Bytes failure_reply(unsigned code) {
  return bytes({5, code, 0, 1, 0, 0, 0, 0, 0, 0});
}

// Everything one or more feed() calls produced, added up.
struct Outcome {
  std::size_t consumed = 0;
  Bytes sent;
  std::optional<Socks5Target> request;
  int requests_reported = 0;
  std::optional<std::string> failure;
};

void add(Outcome& outcome, const Expected<Socks5Progress, Socks5Failure>& result) {
  if (!result) {
    outcome.sent = concat(outcome.sent, result.error().to_send);
    if (!outcome.failure) outcome.failure = result.error().reason;
    return;
  }
  outcome.consumed += result->consumed;
  outcome.sent = concat(outcome.sent, result->to_send);
  if (result->request) {
    outcome.request = result->request;
    ++outcome.requests_reported;
  }
}

Outcome feed_whole(Socks5Handshake& handshake, const Bytes& input) {
  Outcome outcome;
  add(outcome, handshake.feed(input));
  return outcome;
}

Outcome feed_bytewise(Socks5Handshake& handshake, const Bytes& input) {
  Outcome outcome;
  for (const std::byte value : input) add(outcome, handshake.feed(std::span(&value, 1)));
  return outcome;
}

// Feeding `input` whole, one byte at a time, and split in two at every position must all give the
// same outcome; returns it.
Outcome feed_every_way(const Bytes& input) {
  Socks5Handshake whole;
  const Outcome expected = feed_whole(whole, input);

  Socks5Handshake bytewise;
  const Outcome one_by_one = feed_bytewise(bytewise, input);
  // After a failure the connection closes, so what was consumed no longer matters.
  if (!expected.failure) {
    EXPECT_EQ(one_by_one.consumed, expected.consumed);
  }
  EXPECT_EQ(one_by_one.sent, expected.sent);
  EXPECT_EQ(one_by_one.request, expected.request);
  EXPECT_EQ(one_by_one.failure, expected.failure);
  EXPECT_EQ(bytewise.state(), whole.state());

  for (std::size_t split = 0; split <= input.size(); ++split) {
    Socks5Handshake handshake;
    Outcome outcome;
    const std::span<const std::byte> all(input);
    add(outcome, handshake.feed(all.first(split)));
    add(outcome, handshake.feed(all.subspan(split)));
    if (!expected.failure) {
      EXPECT_EQ(outcome.consumed, expected.consumed) << "split at " << split;
    }
    EXPECT_EQ(outcome.sent, expected.sent) << "split at " << split;
    EXPECT_EQ(outcome.request, expected.request) << "split at " << split;
    EXPECT_EQ(outcome.failure, expected.failure) << "split at " << split;
    EXPECT_EQ(handshake.state(), whole.state()) << "split at " << split;
  }
  if (expected.request) {
    EXPECT_EQ(expected.requests_reported, 1);
  }
  return expected;
}

TEST(Socks5Handshake, ConnectsToAnIpv4Address) {
  const Bytes input = concat(kGreeting, request_ipv4({192, 168, 1, 20}, 5432));
  const Outcome outcome = feed_every_way(input);
  ASSERT_TRUE(outcome.request);
  EXPECT_EQ(outcome.request->host, "192.168.1.20");
  EXPECT_EQ(outcome.request->port, 5432);
  EXPECT_EQ(outcome.request->address_type, Socks5AddressType::kIpv4);
  EXPECT_EQ(outcome.consumed, input.size());
  EXPECT_EQ(outcome.sent, kMethodSelected);
  EXPECT_FALSE(outcome.failure);
}

TEST(Socks5Handshake, ConnectsToADomainName) {
  const Bytes input = concat(kGreeting, request_domain("db.internal.example", 443));
  const Outcome outcome = feed_every_way(input);
  ASSERT_TRUE(outcome.request);
  EXPECT_EQ(outcome.request->host, "db.internal.example");
  EXPECT_EQ(outcome.request->port, 443);
  EXPECT_EQ(outcome.request->address_type, Socks5AddressType::kDomain);
  EXPECT_EQ(outcome.consumed, input.size());
  EXPECT_EQ(outcome.sent, kMethodSelected);
}

TEST(Socks5Handshake, ConnectsToAnIpv6AddressWrittenWithoutBrackets) {
  const Bytes address = bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  const Bytes input = concat(kGreeting, request_ipv6(address, 22));
  const Outcome outcome = feed_every_way(input);
  ASSERT_TRUE(outcome.request);
  EXPECT_EQ(outcome.request->host, "2001:db8::1");
  EXPECT_EQ(outcome.request->port, 22);
  EXPECT_EQ(outcome.request->address_type, Socks5AddressType::kIpv6);
  EXPECT_EQ(outcome.consumed, input.size());
}

TEST(Socks5Handshake, IsStableAtTheEdgesOfEachField) {
  // The longest domain, the highest port, port 0, an IPv4-mapped IPv6 address and the loopback.
  const std::string longest(255, 'a');
  Outcome outcome = feed_every_way(concat(kGreeting, request_domain(longest, 65535)));
  ASSERT_TRUE(outcome.request);
  EXPECT_EQ(outcome.request->host, longest);
  EXPECT_EQ(outcome.request->port, 65535);

  outcome = feed_every_way(concat(kGreeting, request_ipv4({0, 0, 0, 0}, 0)));
  ASSERT_TRUE(outcome.request);
  EXPECT_EQ(outcome.request->host, "0.0.0.0");
  EXPECT_EQ(outcome.request->port, 0);

  outcome = feed_every_way(concat(
      kGreeting, request_ipv6(bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1}), 80)));
  ASSERT_TRUE(outcome.request);
  EXPECT_EQ(outcome.request->host, "::ffff:10.0.0.1");

  outcome = feed_every_way(
      concat(kGreeting, request_ipv6(bytes({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), 80)));
  ASSERT_TRUE(outcome.request);
  EXPECT_EQ(outcome.request->host, "::1");
}

TEST(Socks5Handshake, AcceptsNoAuthenticationAmongOtherMethods) {
  // GSSAPI (1) and username/password (2) offered first; "no authentication" is still chosen.
  const Bytes input = concat(bytes({5, 3, 1, 2, 0}), request_ipv4({127, 0, 0, 1}, 80));
  const Outcome outcome = feed_every_way(input);
  ASSERT_TRUE(outcome.request);
  EXPECT_EQ(outcome.sent, kMethodSelected);
  EXPECT_EQ(outcome.consumed, input.size());
}

TEST(Socks5Handshake, AsksForMoreUntilEachMessageIsComplete) {
  Socks5Handshake handshake;
  auto result = handshake.feed(bytes({5}));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->consumed, 1u);
  EXPECT_TRUE(result->to_send.empty());
  EXPECT_FALSE(result->request);
  EXPECT_EQ(handshake.state(), State::kGreeting);

  result = handshake.feed(bytes({2, 0}));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->consumed, 2u);
  EXPECT_TRUE(result->to_send.empty());
  EXPECT_EQ(handshake.state(), State::kGreeting);

  result = handshake.feed(bytes({1}));  // the second method completes the greeting
  ASSERT_TRUE(result);
  EXPECT_EQ(result->to_send, kMethodSelected);
  EXPECT_EQ(handshake.state(), State::kRequest);

  result = handshake.feed({});
  ASSERT_TRUE(result);
  EXPECT_EQ(result->consumed, 0u);
  EXPECT_TRUE(result->to_send.empty());

  const Bytes request = request_domain("example.org", 80);
  result = handshake.feed(std::span(request).first(request.size() - 1));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->consumed, request.size() - 1);
  EXPECT_FALSE(result->request);
  EXPECT_EQ(handshake.state(), State::kRequest);
  EXPECT_FALSE(handshake.request());

  result = handshake.feed(std::span(request).last(1));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->consumed, 1u);
  ASSERT_TRUE(result->request);
  EXPECT_EQ(result->request->host, "example.org");
  EXPECT_EQ(handshake.state(), State::kComplete);
  EXPECT_EQ(handshake.request(), result->request);
}

TEST(Socks5Handshake, LeavesPipelinedPayloadToTheCaller) {
  const Bytes handshake_bytes = concat(kGreeting, request_domain("example.org", 80));
  const Bytes payload = text("GET / HTTP/1.1\r\nHost: example.org\r\n\r\n");
  const Bytes input = concat(handshake_bytes, payload);

  const Outcome outcome = feed_every_way(input);
  ASSERT_TRUE(outcome.request);
  EXPECT_EQ(outcome.consumed, handshake_bytes.size());

  Socks5Handshake handshake;
  auto result = handshake.feed(input);
  ASSERT_TRUE(result);
  ASSERT_TRUE(result->request);
  const Bytes rest(input.begin() + static_cast<std::ptrdiff_t>(result->consumed), input.end());
  EXPECT_EQ(rest, payload);

  // Once complete, more bytes are payload: nothing is taken, nothing is sent, nothing changes.
  result = handshake.feed(payload);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->consumed, 0u);
  EXPECT_TRUE(result->to_send.empty());
  EXPECT_FALSE(result->request);
  EXPECT_EQ(handshake.state(), State::kComplete);
  ASSERT_TRUE(handshake.request());
  EXPECT_EQ(handshake.request()->host, "example.org");
}

TEST(Socks5Handshake, LeavesPayloadWhenTheRequestEndsMidChunk) {
  // The greeting in one chunk, then the last request byte and the payload together.
  const Bytes request = request_ipv4({10, 1, 2, 3}, 8080);
  const Bytes payload = bytes({0xde, 0xad});
  Socks5Handshake handshake;
  ASSERT_TRUE(handshake.feed(kGreeting));
  ASSERT_TRUE(handshake.feed(std::span(request).first(request.size() - 1)));
  const Bytes last = concat(bytes({static_cast<unsigned>(request.back())}), payload);
  const auto result = handshake.feed(last);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->consumed, 1u);
  ASSERT_TRUE(result->request);
  EXPECT_EQ(result->request->host, "10.1.2.3");
  EXPECT_EQ(result->request->port, 8080);
}

TEST(Socks5Handshake, RefusesAClientWithoutAnAcceptableMethod) {
  // Username/password only: the answer is 0xFF and the handshake fails.
  Outcome outcome = feed_every_way(concat(bytes({5, 1, 2}), request_ipv4({1, 2, 3, 4}, 80)));
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.sent, bytes({5, 0xff}));
  EXPECT_FALSE(outcome.request);

  // No methods at all.
  outcome = feed_every_way(bytes({5, 0}));
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.sent, bytes({5, 0xff}));
}

TEST(Socks5Handshake, RefusesBindAndUdpAssociateAsUnsupportedCommands) {
  for (const unsigned command : {2u, 3u, 0u, 0x42u}) {
    Bytes request = request_ipv4({1, 2, 3, 4}, 80);
    request[1] = static_cast<std::byte>(command);
    const Outcome outcome = feed_every_way(concat(kGreeting, request));
    ASSERT_TRUE(outcome.failure) << "command " << command;
    EXPECT_EQ(outcome.sent, concat(kMethodSelected, failure_reply(0x07))) << "command " << command;
    EXPECT_FALSE(outcome.request);
  }
}

TEST(Socks5Handshake, RefusesAnUnknownAddressType) {
  for (const unsigned type : {0u, 2u, 5u, 0xffu}) {
    const Outcome outcome =
        feed_every_way(concat(kGreeting, bytes({5, 1, 0, type, 1, 2, 3, 4, 0, 80})));
    ASSERT_TRUE(outcome.failure) << "type " << type;
    EXPECT_EQ(outcome.sent, concat(kMethodSelected, failure_reply(0x08))) << "type " << type;
  }
}

TEST(Socks5Handshake, ClosesWithoutReplyOnABadVersion) {
  // SOCKS4 greeting.
  Outcome outcome = feed_every_way(bytes({4, 1, 0, 80, 127, 0, 0, 1, 0}));
  ASSERT_TRUE(outcome.failure);
  EXPECT_TRUE(outcome.sent.empty());

  // Not SOCKS at all: fails on the first byte, without waiting for more.
  Socks5Handshake handshake;
  const auto result = handshake.feed(text("G"));
  ASSERT_FALSE(result);
  EXPECT_TRUE(result.error().to_send.empty());
  EXPECT_EQ(handshake.state(), State::kFailed);

  // A good greeting, then a request with version 4: the method selection was already due.
  Bytes request = request_ipv4({1, 2, 3, 4}, 80);
  request[0] = std::byte{4};
  outcome = feed_every_way(concat(kGreeting, request));
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.sent, kMethodSelected);
}

TEST(Socks5Handshake, RefusesANonZeroReservedByte) {
  Bytes request = request_ipv4({1, 2, 3, 4}, 80);
  request[2] = std::byte{1};
  const Outcome outcome = feed_every_way(concat(kGreeting, request));
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.sent, concat(kMethodSelected, failure_reply(0x01)));
}

TEST(Socks5Handshake, RefusesAZeroLengthDomain) {
  const Outcome outcome = feed_every_way(concat(kGreeting, bytes({5, 1, 0, 3, 0, 0, 80})));
  ASSERT_TRUE(outcome.failure);
  EXPECT_EQ(outcome.sent, concat(kMethodSelected, failure_reply(0x01)));
  EXPECT_FALSE(outcome.request);
}

TEST(Socks5Handshake, RefusesADomainWithUnprintableBytes) {
  for (const std::string_view domain :
       {std::string_view("allowed.example\0evil", 20), std::string_view("a b"),
        std::string_view("line\nbreak"), std::string_view("\x7f"),
        std::string_view("caf\xc3\xa9")}) {
    const Outcome outcome = feed_every_way(concat(kGreeting, request_domain(domain, 80)));
    ASSERT_TRUE(outcome.failure);
    EXPECT_EQ(outcome.sent, concat(kMethodSelected, failure_reply(0x01)));
  }
}

TEST(Socks5Handshake, ReportsTheSameFailureAfterFailing) {
  Socks5Handshake handshake;
  const auto first = handshake.feed(concat(bytes({5, 1, 2}), request_ipv4({1, 2, 3, 4}, 80)));
  ASSERT_FALSE(first);
  EXPECT_EQ(first.error().to_send, bytes({5, 0xff}));
  const auto again = handshake.feed(kGreeting);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().reason, first.error().reason);
  EXPECT_TRUE(again.error().to_send.empty());
  EXPECT_EQ(handshake.state(), State::kFailed);
  EXPECT_FALSE(handshake.request());
}

TEST(Socks5Handshake, FailuresNameTheirCause) {
  for (const Bytes& input :
       {bytes({4}), bytes({5, 1, 2}), concat(kGreeting, bytes({5, 2})),
        concat(kGreeting, bytes({5, 1, 1})), concat(kGreeting, bytes({5, 1, 0, 9})),
        concat(kGreeting, bytes({5, 1, 0, 3, 0}))}) {
    Socks5Handshake handshake;
    const auto result = handshake.feed(input);
    ASSERT_FALSE(result);
    EXPECT_FALSE(result.error().reason.empty());
  }
}

TEST(Socks5Reply, EncodesTheUnknownBoundAddressAsIpv4Zero) {
  EXPECT_EQ(encode_socks5_reply(Socks5Reply::kSucceeded), bytes({5, 0, 0, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(encode_socks5_reply(Socks5Reply::kConnectionRefused, ""),
            bytes({5, 5, 0, 1, 0, 0, 0, 0, 0, 0}));
}

TEST(Socks5Reply, EncodesAnIpv4BoundAddress) {
  EXPECT_EQ(encode_socks5_reply(Socks5Reply::kSucceeded, "192.0.2.7", 0x1f90),
            bytes({5, 0, 0, 1, 192, 0, 2, 7, 0x1f, 0x90}));
}

TEST(Socks5Reply, EncodesAnIpv6BoundAddress) {
  EXPECT_EQ(encode_socks5_reply(Socks5Reply::kSucceeded, "2001:db8::ff00:42:8329", 443),
            bytes({5, 0, 0, 4,    0x20, 0x01, 0x0d, 0xb8, 0,    0,    0,
                   0, 0, 0, 0xff, 0,    0,    0x42, 0x83, 0x29, 0x01, 0xbb}));
  EXPECT_EQ(encode_socks5_reply(Socks5Reply::kHostUnreachable, "::", 0),
            bytes({5, 4, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}));
}

TEST(Socks5Reply, EncodesADomainBoundAddress) {
  EXPECT_EQ(encode_socks5_reply(Socks5Reply::kSucceeded, "proxy", 1080),
            concat(concat(bytes({5, 0, 0, 3, 5}), text("proxy")), bytes({0x04, 0x38})));
}

TEST(Socks5Reply, SharesTheAddressFormatWithTheRequest) {
  // A reply with code 1 is laid out exactly as a CONNECT request: parsing it as one gives the
  // address back.
  for (const std::string host : {"203.0.113.9", "fe80::1", "host.example"}) {
    const Bytes request = encode_socks5_reply(Socks5Reply::kGeneralFailure, host, 8443);
    Socks5Handshake handshake;
    const auto result = handshake.feed(concat(kGreeting, request));
    ASSERT_TRUE(result);
    ASSERT_TRUE(result->request);
    EXPECT_EQ(result->request->host, host);
    EXPECT_EQ(result->request->port, 8443);
  }
}

TEST(Socks5Reply, MapsEveryTunnelStatus) {
  EXPECT_EQ(to_socks5_reply(ReplyStatus::kConnected), Socks5Reply::kSucceeded);
  EXPECT_EQ(to_socks5_reply(ReplyStatus::kNotAllowed), Socks5Reply::kNotAllowed);
  EXPECT_EQ(to_socks5_reply(ReplyStatus::kUnreachable), Socks5Reply::kHostUnreachable);
  EXPECT_EQ(to_socks5_reply(ReplyStatus::kRefused), Socks5Reply::kConnectionRefused);
  EXPECT_EQ(to_socks5_reply(ReplyStatus::kBadRequest), Socks5Reply::kGeneralFailure);
  EXPECT_EQ(static_cast<unsigned>(Socks5Reply::kNotAllowed), 0x02u);
  EXPECT_EQ(static_cast<unsigned>(Socks5Reply::kHostUnreachable), 0x04u);
  EXPECT_EQ(static_cast<unsigned>(Socks5Reply::kConnectionRefused), 0x05u);
  EXPECT_EQ(static_cast<unsigned>(Socks5Reply::kGeneralFailure), 0x01u);
  EXPECT_EQ(encode_socks5_reply(to_socks5_reply(ReplyStatus::kNotAllowed)),
            bytes({5, 2, 0, 1, 0, 0, 0, 0, 0, 0}));
}

TEST(Socks5Reply, NamesEveryCode) {
  for (unsigned code = 0; code <= 8; ++code) {
    EXPECT_STRNE(to_string(static_cast<Socks5Reply>(code)), "unknown reply") << code;
  }
}

}  // namespace
}  // namespace tether::tunnel
