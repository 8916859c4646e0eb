// Simulation is a deterministic discrete-event world for the session core: a virtual clock, one
// client and one server endpoint, transport connections with latency and bandwidth, scripted or
// random faults, and applications that write and verify patterned streams.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "session/server_endpoint.hpp"
#include "session/session.hpp"
#include "tests/support/seeded_random.hpp"

namespace tether::sim {

using session::Duration;
using session::Time;
using std::chrono::milliseconds;
using std::chrono::seconds;

using testing::SeededRandom;

enum class FaultKind : std::uint8_t {
  kCut,              // both ends see the connection reset at once
  kBlackhole,        // nothing passes either way for `duration`, then TCP delivers what it held
  kOneWayBlackhole,  // client -> server bytes are held for `duration`
  kAddressChange,    // the client's address vanishes: its live connections go silent forever
  kNetworkDown,      // existing connections stall and new ones fail for `duration`
  kServerRestart,    // the server loses every session and closes every connection
  kClientSleep,      // the client process does nothing for `duration` (laptop lid closed)
};
[[nodiscard]] const char* to_string(FaultKind kind);

struct Fault {
  Duration at{};
  FaultKind kind = FaultKind::kCut;
  Duration duration{};
};

struct StreamPlan {
  std::uint8_t priority = 0;
  std::size_t client_to_server = 0;  // bytes
  std::size_t server_to_client = 0;
};

struct SimulationConfig {
  std::uint64_t seed = 1;
  session::SessionConfig session;
  Duration latency = milliseconds(10);  // one way
  double bytes_per_second = 50e6;
  std::size_t pipe_capacity = 256u << 10;    // bytes in flight per direction (socket buffers)
  Duration connect_time = milliseconds(30);  // TCP + TLS handshake on top of the path latency
  Duration connect_failure_time = milliseconds(500);
  std::vector<StreamPlan> streams;
  std::vector<Fault> faults;
  bool close_when_done = true;  // the client closes gracefully once every stream is verified
  Duration time_limit = std::chrono::minutes(30);
  std::size_t app_write_chunk = 8u << 10;
};

// The default configuration of the simulated world: fast heartbeats so that faults resolve quickly.
[[nodiscard]] SimulationConfig default_config(std::uint64_t seed);
// A random world: links, streams and faults drawn from the seed.
[[nodiscard]] SimulationConfig random_config(std::uint64_t seed);

struct SideReport {
  std::optional<session::events::Closed> closed;
  std::uint64_t resumes = 0;
  std::uint64_t suspensions = 0;
  std::uint64_t bytes_written = 0;
  std::uint64_t bytes_acknowledged = 0;
  std::uint64_t bytes_delivered = 0;  // verified bytes the application read
  std::uint64_t bytes_replayed = 0;
  std::vector<session::events::Resumed> resumed_events;
  std::vector<session::SuspendCause> suspend_causes;  // client only
  std::vector<Duration> suspended_at;                 // client only: when each began (from start)
};

struct SimulationResult {
  bool finished = false;  // everything ended before the time limit
  bool all_streams_complete = false;
  std::vector<std::string> violations;  // empty when every property held
  SideReport client;
  SideReport server;  // summed over server incarnations
  Time end_time{};
  Duration elapsed{};
  std::uint64_t connections = 0;
  std::uint64_t stateless_resets = 0;
  std::string log;  // a trace of lifecycle events, for failing seeds
};

// Runs the world to completion (or the time limit) and checks the properties: every stream
// delivered exactly once and in order, or the session ended on both sides with an explicit reason
// and an exact count of unacknowledged bytes.
[[nodiscard]] SimulationResult run_simulation(const SimulationConfig& config);

}  // namespace tether::sim
