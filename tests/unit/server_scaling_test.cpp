// Issue #13, item 4: ServerEndpoint's work per call is proportional to what the call touched, not
// to the sessions it holds. Work is counted (EndpointStats::sessions_visited and
// pending_connections_visited), not timed: one active session is driven beside 100 and beside
// 10,000 idle sessions (and as many connections that never sent a first frame), and every call
// must visit exactly as many sessions in both.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "loopback.hpp"
#include "session/server_endpoint.hpp"
#include "wire/codec.hpp"

namespace tether::session {
namespace {

using test::Bytes;
using test::encode;

Bytes hello_bytes(std::uint64_t heartbeat_ms) {
  wire::Hello hello;
  hello.heartbeat_interval_ms = heartbeat_ms;
  hello.missing_heartbeats_allowed = 3;
  hello.capabilities = SessionConfig{}.capabilities;
  return encode(hello);
}

// When the active session's first timer is due at the latest: the server's own Ping (its period,
// an eighth longer than the 1 s interval, comes before its first miss at interval + min(RTO,
// interval)).
const Duration kActiveHeartbeat = heartbeat_policy::own_ping_period(seconds(1), /*server=*/true);

// A server holding `idle` sessions that said Hello with a 30 s heartbeat and stay silent, `idle`
// connections that never send their first frame, and one active session with a 1 s heartbeat.
struct ScalingServer {
  static ServerLimits limits_for(std::size_t idle) {
    ServerLimits limits;
    limits.max_sessions = idle + 16;
    limits.max_sessions_per_source = idle + 16;
    limits.max_suspended_sessions = idle + 16;
    limits.max_pending_connections = idle + 16;  // as many connections awaiting a first frame
    return limits;
  }

  explicit ScalingServer(std::size_t idle)
      : endpoint(test::test_config(), wire::Secret{}, random, limits_for(idle)) {
    const Bytes idle_hello = hello_bytes(30000);
    for (std::size_t index = 0; index < idle; ++index) {
      const PathId id = connect();
      endpoint.receive(id, idle_hello, now);
      take(id);
    }
    for (std::size_t index = 0; index < idle; ++index) connect();  // pending: no first frame
    active = connect();
    endpoint.receive(active, hello_bytes(1000), now);
    take(active);
    drain();
    for (const SessionId& id : endpoint.session_ids()) {
      if (endpoint.find(id)->data_path() == active) active_id = id;
    }
    std::vector<PathId> ready;
    endpoint.take_ready_connections(ready);  // what the setup left
  }

  PathId connect() {
    const PathId id = next++;
    endpoint.accept(id, test::random_bytes(keying, 32), now, "192.0.2.1");
    return id;
  }
  Bytes take(PathId id) {
    Bytes out;
    endpoint.take_outgoing(id, out, std::size_t{1} << 30, now);
    return out;
  }
  std::size_t drain() {
    std::size_t count = 0;
    while (auto event = endpoint.poll_event()) {
      ++count;
      if (const auto* done = std::get_if<events::PathDone>(&event->event))
        endpoint.on_connection_closed(done->path, now);
    }
    return count;
  }
  // Sessions plus pending connections the endpoint visited during `call`.
  template <typename Call>
  std::uint64_t visits(Call&& call) {
    const auto before =
        endpoint.stats().sessions_visited + endpoint.stats().pending_connections_visited;
    call();
    return endpoint.stats().sessions_visited + endpoint.stats().pending_connections_visited -
           before;
  }

  Time now = test::start_time();
  test::SplitMix64 random{11};
  test::SplitMix64 keying{12};
  ServerEndpoint endpoint;
  PathId next = 1;
  PathId active = 0;
  SessionId active_id{};
};

// What one active round costs: a Ping read, the events drained, the ready list, the Pong taken,
// the next deadline, a timeout pass with nothing due, then the active session's own deadline.
struct Round {
  std::vector<std::uint64_t> visits;
  std::vector<PathId> ready;
  Bytes reply;
};

Round active_round(ScalingServer& server) {
  Round round;
  auto& visits = round.visits;
  visits.push_back(server.visits(
      [&] { server.endpoint.receive(server.active, encode(wire::Ping{7}), server.now); }));
  visits.push_back(server.visits([&] { server.drain(); }));
  visits.push_back(server.visits([&] { server.endpoint.take_ready_connections(round.ready); }));
  visits.push_back(server.visits([&] { round.reply = server.take(server.active); }));
  visits.push_back(server.visits([&] { (void)server.endpoint.next_deadline(); }));
  visits.push_back(server.visits([&] { server.endpoint.on_timeout(server.now); }));
  visits.push_back(server.visits([&] { server.drain(); }));  // empty poll_event
  // Only the active session is due at the next deadline (its heartbeat).
  const auto deadline = server.endpoint.next_deadline();
  EXPECT_TRUE(deadline.has_value());
  if (deadline) {
    EXPECT_LE(*deadline, server.now + kActiveHeartbeat);
    server.now = *deadline;
  }
  visits.push_back(server.visits([&] { server.endpoint.on_timeout(server.now); }));
  visits.push_back(server.visits([&] { (void)server.endpoint.next_deadline(); }));
  // A new session (creating one used to scan every session for closed ones to collect), then its
  // connection lost (it suspends).
  PathId fresh = 0;
  visits.push_back(server.visits([&] {
    fresh = server.connect();
    server.endpoint.receive(fresh, hello_bytes(30000), server.now);
  }));
  visits.push_back(server.visits([&] { server.drain(); }));
  visits.push_back(server.visits([&] { server.endpoint.on_connection_closed(fresh, server.now); }));
  visits.push_back(server.visits([&] { server.drain(); }));
  return round;
}

TEST(ServerScaling, VisitsPerCallDoNotGrowWithIdleSessions) {
  ScalingServer small(100);
  ScalingServer large(10000);
  ASSERT_EQ(large.endpoint.session_count(), 10001u);
  const Round few = active_round(small);
  const Round many = active_round(large);
  EXPECT_EQ(few.visits, many.visits);
  // And each call looks at a handful of sessions: the active one, a few times at most.
  for (const auto count : many.visits) EXPECT_LE(count, 2u);
  // The Ping was answered, and only the active connection was named for a flush.
  EXPECT_EQ(test::frames_of<wire::Pong>(many.reply).size(), 1u);
  EXPECT_EQ(many.ready, std::vector<PathId>{large.active});
}

TEST(ServerScaling, DueIdleSessionsAreTheOnlyOnesVisited) {
  // At the idle sessions' heartbeat every one of them is due: the pass visits each once (and the
  // pending connections, whose handshake timed out long before, were visited once each then).
  ScalingServer server(1000);
  server.now += seconds(11);
  const auto timed_out = server.visits([&] { server.endpoint.on_timeout(server.now); });
  EXPECT_GE(timed_out, 1000u + 1u);  // the pending connections and the active session
  EXPECT_EQ(server.endpoint.stats().handshake_failures, 1000u);
  server.drain();  // their PathDone: the connections are closed
  server.now += seconds(30);
  const auto heartbeats = server.visits([&] { server.endpoint.on_timeout(server.now); });
  EXPECT_GE(heartbeats, 1000u);
  EXPECT_LE(heartbeats, 2u * 1001u);  // each due session: its timeout, then the re-read
}

TEST(ServerScaling, ApplicationChangesThroughFindAreSeenAtTheNextCall) {
  ScalingServer server(100);
  const auto before = server.endpoint.next_deadline();
  ASSERT_TRUE(before.has_value());
  EXPECT_LE(*before, server.now + kActiveHeartbeat);  // the active session's heartbeat
  // The application ends the active session through find(): the endpoint's next call re-reads it
  // (its deadline goes, its Abort makes the connection ready), with no scan.
  Session* session = server.endpoint.find(server.active_id);
  ASSERT_NE(session, nullptr);
  session->abort(Reason::kShutdown, server.now);
  std::vector<PathId> ready;
  const auto visited = server.visits([&] { server.endpoint.take_ready_connections(ready); });
  EXPECT_EQ(visited, 1u);
  EXPECT_EQ(ready, std::vector<PathId>{server.active});
  const auto after = server.endpoint.next_deadline();
  ASSERT_TRUE(after.has_value());
  EXPECT_GT(*after, server.now + seconds(1));  // the pending connections' handshake timeout
  // Collected once its connection is reported closed.
  EXPECT_EQ(test::frames_of<wire::Abort>(server.take(server.active)).size(), 1u);
  server.drain();
  server.endpoint.on_connection_closed(server.active, server.now);
  EXPECT_EQ(server.endpoint.find(server.active_id), nullptr);
  EXPECT_EQ(server.endpoint.session_count(), 100u);
}

}  // namespace
}  // namespace tether::session
