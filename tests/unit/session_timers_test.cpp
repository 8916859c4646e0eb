// Session-level tests of the timers and the heartbeat policy: every deadline is a named slot,
// next_deadline() is their earliest, and both sides use the negotiated heartbeat.
#include <gtest/gtest.h>

#include <algorithm>

#include "loopback.hpp"

namespace tether::session {
namespace {

using test::events_of;
using test::frames_of;
using test::Loopback;
using test::test_config;

std::optional<Time> earliest_slot(const Session& session) {
  std::optional<Time> result;
  for (std::size_t index = 0; index < kTimerSlotCount; ++index) {
    const auto deadline = session.deadline(static_cast<TimerSlot>(index));
    if (deadline && (!result || *deadline < *result)) result = deadline;
  }
  return result;
}

TEST(SessionTimers, NextDeadlineIsTheEarliestSlot) {
  Loopback loop;
  loop.establish();
  const Time established = loop.now;
  EXPECT_EQ(loop.client.deadline(TimerSlot::kHeartbeat), established + seconds(1));
  // A miss counts at interval + min(RTO, interval); no RTT sample yet, so the RTO is the initial 1
  // s.
  EXPECT_EQ(loop.client.deadline(TimerSlot::kPathLiveness), established + seconds(2));
  EXPECT_FALSE(loop.client.deadline(TimerSlot::kGiveUp));  // reset once established
  EXPECT_FALSE(loop.client.deadline(TimerSlot::kHandshake));
  EXPECT_EQ(loop.client.next_deadline(), earliest_slot(loop.client));
  Session* server = loop.server_session();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->next_deadline(), earliest_slot(*server));
  EXPECT_FALSE(server->deadline(TimerSlot::kLinger));
}

TEST(SessionTimers, HeartbeatSlotMovesByOneIntervalPerPing) {
  Loopback loop;
  loop.establish();
  const Time first = *loop.client.deadline(TimerSlot::kHeartbeat);
  loop.advance_to(first);
  EXPECT_EQ(loop.client.deadline(TimerSlot::kHeartbeat), first + seconds(1));
  EXPECT_GE(loop.frames_sent<wire::Ping>(true), 1u);
  EXPECT_EQ(loop.client.next_deadline(), earliest_slot(loop.client));
}

TEST(SessionTimers, ChangedBitReportsMovedDeadlines) {
  Loopback loop;
  loop.establish();
  (void)loop.client.take_deadline_changed();
  EXPECT_FALSE(loop.client.take_deadline_changed());
  loop.advance(seconds(1));  // a heartbeat went out: its slot moved
  EXPECT_TRUE(loop.client.take_deadline_changed());
}

TEST(SessionTimers, SuspendedServerArmsLingerAndTheClientItsGiveUp) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  loop.close_connection(1);
  Session* server = loop.server_session();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->state(), SessionState::kSuspended);
  EXPECT_EQ(server->deadline(TimerSlot::kLinger), loop.now + test_config().linger);
  EXPECT_EQ(loop.client.state(), SessionState::kSuspended);
  EXPECT_EQ(loop.client.deadline(TimerSlot::kGiveUp), loop.now + test_config().reconnect_limit);
}

TEST(SessionTimers, ClosedSessionHasNoDeadline) {
  Loopback loop;
  loop.establish();
  (void)loop.client.abort(Reason::kApplicationAbort, loop.now);
  EXPECT_FALSE(loop.client.next_deadline());
  EXPECT_EQ(loop.client.state(), SessionState::kClosed);
}

TEST(HeartbeatNegotiation, BothSidesUseTheNegotiatedValuesAndKernelTimeoutFollows) {
  SessionConfig client_config = test_config();
  client_config.heartbeat_interval = milliseconds(50);
  client_config.missing_heartbeats_allowed = 30;
  SessionConfig server_config = test_config();
  server_config.min_heartbeat_interval = milliseconds(100);
  server_config.max_missing_heartbeats_allowed = 20;
  Loopback loop(client_config, server_config);
  loop.establish();
  const HeartbeatParameters agreed{milliseconds(100), 20};
  EXPECT_EQ(loop.client.heartbeat(), agreed);
  EXPECT_EQ(loop.server_session()->heartbeat(), agreed);
  // From the negotiated values, not the configured ones.
  EXPECT_EQ(kernel_user_timeout(loop.client.heartbeat()), milliseconds(2100));
  EXPECT_EQ(kernel_user_timeout(loop.server_session()->heartbeat()), milliseconds(2100));
}

}  // namespace
}  // namespace tether::session
