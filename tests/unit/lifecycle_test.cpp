// Tests of Lifecycle: the states of PROTOCOL.md and what each transition arms or disarms.
#include "session/lifecycle.hpp"

#include <gtest/gtest.h>

namespace tether::session {
namespace {

const Time t0 = Time{} + seconds(100);

SessionConfig config() {
  SessionConfig result;
  result.linger = seconds(600);
  result.reconnect_limit = seconds(3600);
  return result;
}

TEST(Lifecycle, ClientConnectsThenOpens) {
  Lifecycle lifecycle(Role::kClient, config(), t0);
  EXPECT_EQ(lifecycle.state(), SessionState::kConnecting);
  EXPECT_EQ(lifecycle.phase(), Phase::kConnecting);
  EXPECT_EQ(lifecycle.give_up_deadline(), t0 + seconds(3600));
  lifecycle.on_established();
  EXPECT_EQ(lifecycle.state(), SessionState::kOpen);
  EXPECT_FALSE(lifecycle.give_up_deadline());
}

TEST(Lifecycle, ClientSuspendsResumesAndCountsDowntime) {
  Lifecycle lifecycle(Role::kClient, config(), t0);
  lifecycle.on_established();
  EXPECT_TRUE(lifecycle.on_suspended(t0 + seconds(1)));
  EXPECT_FALSE(lifecycle.on_suspended(t0 + seconds(2)));  // once
  EXPECT_EQ(lifecycle.state(), SessionState::kSuspended);
  EXPECT_TRUE(lifecycle.suspended());
  EXPECT_EQ(lifecycle.phase(), Phase::kOpen);
  EXPECT_EQ(lifecycle.give_up_deadline(), t0 + seconds(3601));
  lifecycle.on_resume_sent();
  EXPECT_EQ(lifecycle.state(), SessionState::kResuming);
  lifecycle.on_resume_attempt_over();
  EXPECT_EQ(lifecycle.state(), SessionState::kSuspended);
  lifecycle.on_resume_sent();
  EXPECT_EQ(lifecycle.on_resumed(t0 + seconds(4)), seconds(3));
  EXPECT_EQ(lifecycle.state(), SessionState::kOpen);
  EXPECT_FALSE(lifecycle.give_up_deadline());
  EXPECT_FALSE(lifecycle.on_resumed(t0 + seconds(5)));  // not suspended: no downtime
}

TEST(Lifecycle, ServerLingersWhileSuspended) {
  Lifecycle lifecycle(Role::kServer, config(), t0);
  EXPECT_EQ(lifecycle.state(), SessionState::kOpen);
  EXPECT_FALSE(lifecycle.give_up_deadline());
  EXPECT_TRUE(lifecycle.on_suspended(t0));
  EXPECT_EQ(lifecycle.linger_deadline(), t0 + seconds(600));
  lifecycle.on_resume_sent();  // a client-only state
  EXPECT_EQ(lifecycle.state(), SessionState::kResuming);
  (void)lifecycle.on_resumed(t0 + seconds(1));
  EXPECT_FALSE(lifecycle.linger_deadline());
}

TEST(Lifecycle, ClosedDisarmsEverything) {
  Lifecycle lifecycle(Role::kClient, config(), t0);
  lifecycle.wait_for_attempt(t0 + seconds(1));
  lifecycle.on_closed();
  EXPECT_TRUE(lifecycle.closed());
  EXPECT_EQ(lifecycle.phase(), Phase::kClosed);
  EXPECT_FALSE(lifecycle.give_up_deadline());
  EXPECT_FALSE(lifecycle.reconnect_deadline());
  EXPECT_FALSE(lifecycle.on_suspended(t0));
}

TEST(Lifecycle, WaitingAttemptCanBeHurried) {
  Lifecycle lifecycle(Role::kClient, config(), t0);
  lifecycle.hurry_waiting_attempt(t0);  // nothing waits: nothing happens
  EXPECT_FALSE(lifecycle.reconnect_deadline());
  lifecycle.wait_for_attempt(t0 + seconds(10));
  lifecycle.hurry_waiting_attempt(t0 + seconds(1));
  EXPECT_EQ(lifecycle.reconnect_deadline(), t0 + seconds(1));
}

TEST(Lifecycle, CloseHandshakeCrossesOnceBothCloseMessagesPassed) {
  Lifecycle lifecycle(Role::kServer, config(), t0);
  CloseHandshake& close = lifecycle.close_handshake();
  EXPECT_FALSE(close.crossed());
  close.sent = true;
  EXPECT_FALSE(close.crossed());
  close.peer_received = true;
  EXPECT_TRUE(close.crossed());
}

TEST(Lifecycle, ReservedStatesMapOntoPhases) {
  EXPECT_STREQ(to_string(SessionState::kAuthenticating), "authenticating");
  EXPECT_STREQ(to_string(SessionState::kReauthenticating), "re-authenticating");
}

}  // namespace
}  // namespace tether::session
