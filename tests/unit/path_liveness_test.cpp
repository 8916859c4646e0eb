// Tests of PathLiveness and PathSet: misses, suspicion, the dead rule, pings and the per-path
// deadlines the session's timers read.
#include "session/path_liveness.hpp"
#include "session/path.hpp"

#include <gtest/gtest.h>

namespace tether::session {
namespace {

const Time t0 = Time{} + seconds(100);
const HeartbeatParameters kHeartbeat{seconds(1), 3};
const Duration kRto = milliseconds(200);

TEST(PathLiveness, MissesThenSuspectThenDead) {
  PathLiveness liveness(kHeartbeat, t0);
  std::uint64_t missed = 0;
  // A miss counts one interval plus the slack, min(RTO, interval), after the last inbound byte.
  EXPECT_EQ(liveness.silence_deadline(kRto), t0 + seconds(1) + kRto);
  EXPECT_FALSE(liveness.check_silence(t0 + seconds(3), kRto, missed));
  EXPECT_EQ(missed, 2u);
  const Duration budget = kHeartbeat.budget(kRto);
  EXPECT_EQ(liveness.silence_deadline(kRto), t0 + budget);
  EXPECT_TRUE(liveness.check_silence(t0 + budget, kRto, missed));
  EXPECT_EQ(missed, 3u);  // the last miss falls at the budget
  EXPECT_TRUE(liveness.suspect());
  EXPECT_FALSE(liveness.silence_deadline(kRto));
  EXPECT_EQ(liveness.dead_deadline(budget), t0 + heartbeat_policy::dead_after(budget));
  EXPECT_FALSE(liveness.dead(t0 + 2 * budget - milliseconds(1), budget));
  EXPECT_TRUE(liveness.dead(t0 + 2 * budget, budget));
}

TEST(PathLiveness, AnyInboundByteRestoresTrust) {
  PathLiveness liveness(kHeartbeat, t0);
  liveness.mark_suspect();
  liveness.on_inbound(t0 + seconds(2));
  EXPECT_FALSE(liveness.suspect());
  EXPECT_FALSE(liveness.dead_deadline(seconds(1)));
  EXPECT_EQ(liveness.silence_deadline(kRto), t0 + seconds(3) + kRto);
}

TEST(PathLiveness, PingsAreSequencedAndTheFirstOutstandingIsTimed) {
  PathLiveness liveness(kHeartbeat, t0);
  EXPECT_FALSE(liveness.heartbeat_due(t0));
  EXPECT_TRUE(liveness.heartbeat_due(t0 + seconds(1)));
  EXPECT_EQ(liveness.on_ping_sent(t0 + seconds(1)), 1u);
  EXPECT_EQ(liveness.heartbeat_deadline(), t0 + seconds(2));
  EXPECT_EQ(liveness.on_ping_sent(t0 + seconds(2)), 2u);
  EXPECT_TRUE(liveness.ping_outstanding());
  EXPECT_FALSE(liveness.on_pong(2, t0 + seconds(3)));  // not the timed one
  EXPECT_EQ(liveness.on_pong(1, t0 + seconds(3)), seconds(2));
  EXPECT_FALSE(liveness.ping_outstanding());
}

TEST(PathSet, DeadlinesAreTheEarliestOverLiveConnections) {
  PathSet paths;
  const std::vector<std::byte> keying(32);
  Path& first = paths.add(1, PathState::kActive, keying, kHeartbeat, t0);
  Path& second = paths.add(2, PathState::kResumeSent, keying, kHeartbeat, t0 + seconds(1));
  second.handshake_deadline = t0 + seconds(10);
  const auto deadlines = paths.deadlines(kRto, kHeartbeat.budget(kRto));
  EXPECT_EQ(deadlines.handshake, t0 + seconds(10));
  EXPECT_EQ(deadlines.heartbeat, t0 + seconds(1));  // only active paths heartbeat
  EXPECT_EQ(deadlines.silence, t0 + seconds(1) + kRto);
  EXPECT_FALSE(deadlines.dead);
  EXPECT_TRUE(paths.handshaking());
  first.liveness.mark_suspect();
  EXPECT_EQ(paths.first_active(true), nullptr);
  EXPECT_EQ(paths.first_active(false), &first);
  paths.set_data_path(1);
  EXPECT_TRUE(paths.erase(1));
  EXPECT_FALSE(paths.data_path());
  EXPECT_FALSE(paths.erase(2));
  EXPECT_EQ(paths.size(), 0u);
}

// One round trip per interval: a Ping from the peer restarts this side's own heartbeat schedule,
// and the server's period is an eighth longer than the client's, so the client keeps the Pings.
TEST(PathLiveness, PeerPingPostponesOwnPingAndTheServerYieldsToTheClient) {
  PathLiveness client(kHeartbeat, t0, Role::kClient);
  PathLiveness server(kHeartbeat, t0, Role::kServer);
  const Duration server_period = kHeartbeat.interval + kHeartbeat.interval / 8;
  EXPECT_EQ(client.heartbeat_deadline(), t0 + kHeartbeat.interval);
  EXPECT_EQ(server.heartbeat_deadline(), t0 + server_period);
  const Time ping_at = t0 + kHeartbeat.interval;
  ASSERT_TRUE(client.heartbeat_due(ping_at));
  client.on_ping_sent(ping_at);
  server.on_peer_ping(ping_at);
  EXPECT_FALSE(server.heartbeat_due(ping_at + kHeartbeat.interval));
  EXPECT_EQ(server.heartbeat_deadline(), ping_at + server_period);
  // A Ping never brings the own one forward.
  server.on_peer_ping(t0);
  EXPECT_EQ(server.heartbeat_deadline(), ping_at + server_period);
}

}  // namespace
}  // namespace tether::session
