// The per-call cost of ServerEndpoint with N idle sessions beside one active one, driven by raw
// connections (Hello, then nothing) with no I/O, as the server runtime drives it:
// - server_next_deadline: next_deadline(), which the runtime calls after every processing pass;
// - server_empty_poll_event: poll_event() with no event queued (the runtime's last call of a pass);
// - server_on_timeout_nothing_due: on_timeout() when no idle session is due;
// - server_active_round: one read of the active session (a Ping) as the runtime handles it:
//   receive, poll_event() until empty, take_outgoing() of its Pong, next_deadline().
// The goal is a cost that does not grow with the idle sessions. Run with N = 1000, 10000, 100000:
//   build/gcc/bench/server_endpoint_benchmark --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "session/server_endpoint.hpp"
#include "tests/support/seeded_random.hpp"
#include "wire/codec.hpp"

namespace {

using namespace tether::session;

// Deterministic and cheap: the tests' SplitMix64 (no short period, so a server drawing thousands
// of session ids never sees one twice).
using tether::testing::SeededRandom;

// A server with `idle` sessions that said Hello with a 30 s heartbeat and stay silent, plus one
// more (connection `active`) that the benchmark drives.
struct IdleServer {
  static ServerLimits limits_for(std::size_t idle) {
    ServerLimits limits;
    limits.max_sessions = idle + 16;
    limits.max_sessions_per_source = idle + 16;
    return limits;
  }

  explicit IdleServer(std::size_t idle)
      : endpoint(SessionConfig{}, Secret{}, random, limits_for(idle)) {
    tether::wire::Hello hello;
    hello.heartbeat_interval_ms = 30000;
    hello.missing_heartbeats_allowed = 3;
    hello.capabilities = SessionConfig{}.capabilities;
    std::vector<std::byte> hello_bytes;
    tether::wire::encode_frame(hello, hello_bytes);
    const std::array<std::byte, 32> keying{};
    std::vector<std::byte> out;
    for (std::size_t index = 0; index <= idle; ++index) {
      const auto path = static_cast<PathId>(index + 1);
      endpoint.accept(path, keying, now, "192.0.2.1");
      endpoint.receive(path, hello_bytes, now);
      out.clear();
      endpoint.take_outgoing(path, out, 1u << 20, now);
    }
    active = static_cast<PathId>(idle + 1);
    while (endpoint.poll_event()) {
    }
    tether::wire::encode_frame(tether::wire::Ping{1}, ping);
  }

  SeededRandom random{0};
  Time now = Time{} + std::chrono::hours(1);
  ServerEndpoint endpoint;
  PathId active = 0;
  std::vector<std::byte> ping;
};

void report(benchmark::State& state, const IdleServer& server) {
  if (server.endpoint.session_count() != static_cast<std::size_t>(state.range(0)) + 1)
    state.SkipWithError("sessions did not establish");
}

void server_next_deadline(benchmark::State& state) {
  IdleServer server(static_cast<std::size_t>(state.range(0)));
  report(state, server);
  for (auto _ : state) benchmark::DoNotOptimize(server.endpoint.next_deadline());
}

void server_empty_poll_event(benchmark::State& state) {
  IdleServer server(static_cast<std::size_t>(state.range(0)));
  report(state, server);
  for (auto _ : state) benchmark::DoNotOptimize(server.endpoint.poll_event());
}

void server_on_timeout_nothing_due(benchmark::State& state) {
  IdleServer server(static_cast<std::size_t>(state.range(0)));
  report(state, server);
  for (auto _ : state) server.endpoint.on_timeout(server.now);
}

void server_active_round(benchmark::State& state) {
  IdleServer server(static_cast<std::size_t>(state.range(0)));
  report(state, server);
  std::vector<std::byte> out;
  for (auto _ : state) {
    server.endpoint.receive(server.active, server.ping, server.now);
    while (server.endpoint.poll_event()) {
    }
    out.clear();
    server.endpoint.take_outgoing(server.active, out, 1u << 20, server.now);
    benchmark::DoNotOptimize(server.endpoint.next_deadline());
  }
}

BENCHMARK(server_next_deadline)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond);
BENCHMARK(server_empty_poll_event)
    ->Arg(1000)
    ->Arg(10000)
    ->Arg(100000)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(server_on_timeout_nothing_due)
    ->Arg(1000)
    ->Arg(10000)
    ->Arg(100000)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(server_active_round)->Arg(1000)->Arg(10000)->Arg(100000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
