// Negotiated capabilities are honoured: the session uses the intersection of what both sides
// offered, and what one side did not offer (resume, stateless reset) is not used.
#include <gtest/gtest.h>

#include <algorithm>

#include "loopback.hpp"
#include "session/key_schedule.hpp"

namespace tether::session {
namespace {

using test::Bytes;
using test::events_of;
using test::first_time;
using test::frames_of;
using test::Loopback;
using test::test_config;

const Time t0 = test::start_time();

constexpr auto kResume = static_cast<wire::CapabilitySet>(wire::Capability::kResume);
constexpr auto kFastClose = static_cast<wire::CapabilitySet>(wire::Capability::kFastClose);
constexpr auto kStatelessReset =
    static_cast<wire::CapabilitySet>(wire::Capability::kStatelessReset);

SessionConfig offering(wire::CapabilitySet capabilities) {
  SessionConfig config = test_config();
  config.capabilities = capabilities;
  return config;
}

TEST(Capabilities, TheSessionUsesTheIntersection) {
  Loopback loop(offering(kResume | kFastClose | kStatelessReset), offering(kFastClose | kResume));
  loop.establish();
  EXPECT_EQ(loop.client.capabilities(), kFastClose | kResume);
  EXPECT_EQ(loop.server_session()->capabilities(), kFastClose | kResume);
}

TEST(Capabilities, APlainPeerNegotiatesNothing) {
  Loopback loop(offering(0));
  loop.establish();
  EXPECT_EQ(loop.client.capabilities(), 0u);
  EXPECT_EQ(loop.server_session()->capabilities(), 0u);
}

TEST(Capabilities, ClientWithoutResumeEndsWithItsConnection) {
  Loopback loop(offering(0));
  loop.establish();
  loop.advance(seconds(1));
  loop.close_connection(1);
  loop.advance(seconds(30));
  // It never asks for a connection to resume on, and says why the session ended.
  EXPECT_EQ(loop.path_requests_total, 1u);
  const auto closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, Reason::kReconnectExhausted);
  EXPECT_TRUE(closed[0].transient);
  EXPECT_FALSE(closed[0].by_peer);
  EXPECT_EQ(first_time<events::Closed>(loop.client_events), t0 + seconds(1));
  EXPECT_EQ(loop.client.phase(), Phase::kClosed);
  // The server does not linger for a resume that cannot come.
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kLingerExpired);
  EXPECT_EQ(first_time<events::Closed>(loop.server_events), t0 + seconds(1));
  EXPECT_EQ(loop.server.session_count(), 0u);
}

TEST(Capabilities, ClientWithoutResumeEndsWhenItsSilentConnectionIsDead) {
  Loopback loop(offering(kFastClose | kStatelessReset));
  loop.establish();
  loop.blackhole(1);
  loop.advance(seconds(30));
  // Suspect after the budget (3 x 1 s + slack), dead after twice that; no new connection between.
  const auto suspended = events_of<events::Suspended>(loop.client_events);
  ASSERT_EQ(suspended.size(), 1u);
  EXPECT_EQ(suspended[0].cause, SuspendCause::kHeartbeatTimeout);
  EXPECT_EQ(loop.path_requests_total, 1u);
  const auto closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, Reason::kReconnectExhausted);
  const auto at = first_time<events::Closed>(loop.client_events);
  ASSERT_TRUE(at);
  const Duration budget = loop.client.heartbeat().worst_case_budget();
  EXPECT_LE(*at, t0 + heartbeat_policy::dead_after(budget));
  EXPECT_EQ(loop.client.phase(), Phase::kClosed);
}

TEST(Capabilities, ServerWithoutResumeMakesTheClientPlain) {
  Loopback loop(test_config(), offering(kFastClose | kStatelessReset));
  loop.establish();
  EXPECT_EQ(loop.client.capabilities(), kFastClose | kStatelessReset);
  const auto welcomes = frames_of<wire::Welcome>(loop.sent_on(1, false));
  ASSERT_EQ(welcomes.size(), 1u);
  EXPECT_EQ(welcomes[0].linger_ms, 0u);
  loop.close_connection(1);
  loop.advance(seconds(5));
  EXPECT_EQ(loop.path_requests_total, 1u);
  const auto closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, Reason::kReconnectExhausted);
  EXPECT_EQ(loop.server.session_count(), 0u);
}

TEST(Capabilities, ConnectionOfferedWithoutResumeIsDeclined) {
  Loopback loop(offering(kFastClose));
  loop.establish();
  loop.process_events();
  loop.client_events.clear();
  loop.client.add_path(42, Bytes(32, std::byte{7}), loop.now);
  Bytes out;
  EXPECT_EQ(loop.client.take_outgoing(42, out, 1u << 20, loop.now), 0u);
  bool declined = false;
  while (auto event = loop.client.poll_event()) {
    if (const auto* done = std::get_if<events::PathDone>(&*event)) declined |= done->path == 42;
  }
  EXPECT_TRUE(declined);
  EXPECT_EQ(loop.client.data_path(), PathId{1});
  EXPECT_EQ(loop.client.phase(), Phase::kOpen);
}

TEST(Capabilities, ServerWithoutStatelessResetSendsNoTokenAndIsNotTrustedForAReset) {
  SessionConfig client_config = test_config();
  client_config.reconnect_limit = seconds(20);
  SessionConfig server_config = offering(kResume | kFastClose);
  server_config.linger = seconds(5);
  Loopback loop(client_config, server_config);
  const SessionId id = loop.establish();
  EXPECT_EQ(loop.client.capabilities(), kResume | kFastClose);
  const auto welcomes = frames_of<wire::Welcome>(loop.sent_on(1, false));
  ASSERT_EQ(welcomes.size(), 1u);
  EXPECT_EQ(welcomes[0].reset_token, Secret{});

  // The server frees the session. It offers no stateless reset, so it sends none (a client would
  // not trust it): it refuses the resume with unknown-session, and the client ends at once with
  // that reason instead of trying until its reconnect limit.
  loop.network_up = false;
  loop.close_connection(1);
  loop.advance(seconds(6));
  EXPECT_EQ(loop.server.session_count(), 0u);
  loop.network_up = true;
  loop.advance(seconds(30));
  EXPECT_EQ(loop.server.stats().stateless_resets_sent, 0u);
  EXPECT_GE(loop.server.stats().resumes_rejected, 1u);
  const auto closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, Reason::kUnknownSession);
  EXPECT_TRUE(closed[0].by_peer);
  const auto ended = first_time<events::Closed>(loop.client_events);
  ASSERT_TRUE(ended.has_value());
  EXPECT_LT(*ended - t0, seconds(20));  // before the client's 20 s reconnect limit
  (void)id;
}

TEST(Capabilities, ClientWithoutStatelessResetStillIgnoresAForgedOne) {
  // A reset the server did not make (a stranger's, on a connection to us) is never trusted by a
  // session that did not negotiate stateless reset.
  SessionConfig server_config = offering(kResume | kFastClose);
  Loopback loop(test_config(), server_config);
  loop.establish();
  const std::uint64_t forged_before = loop.client.stats().forged_frames_ignored;
  std::vector<std::byte> frame;
  wire::encode_frame(wire::StatelessReset{loop.client.id(), Secret{}}, frame);
  loop.client.receive(1, frame, loop.now);
  EXPECT_EQ(loop.client.stats().forged_frames_ignored, forged_before + 1);
  EXPECT_EQ(loop.client.phase(), Phase::kOpen);
}

TEST(Capabilities, ClientThatDidNotOfferStatelessResetIgnoresOne) {
  SessionConfig client_config = offering(kResume | kFastClose);
  client_config.reconnect_limit = seconds(20);
  SessionConfig server_config = test_config();
  server_config.linger = seconds(5);
  Loopback loop(client_config, server_config);
  loop.establish();
  loop.network_up = false;
  loop.close_connection(1);
  loop.advance(seconds(6));
  loop.network_up = true;
  loop.advance(seconds(30));
  EXPECT_GE(loop.server.stats().stateless_resets_sent, 1u);
  const auto closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_NE(closed[0].reason, Reason::kUnknownSession);
  EXPECT_EQ(closed[0].reason, Reason::kReconnectExhausted);
}

TEST(Capabilities, ClientWithStatelessResetStillTrustsOne) {
  SessionConfig server_config = test_config();
  server_config.linger = seconds(5);
  Loopback loop(test_config(), server_config);
  loop.establish();
  loop.network_up = false;
  loop.close_connection(1);
  loop.advance(seconds(6));
  loop.network_up = true;
  loop.advance(seconds(30));
  const auto closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, Reason::kUnknownSession);
}

}  // namespace
}  // namespace tether::session
