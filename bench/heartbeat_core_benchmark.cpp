// The server core's heartbeat cost at scale, core only (no TLS, no sockets, no syscalls): a
// ServerEndpoint holding N idle sessions (30 s heartbeat, 3 misses) whose clients are a cheap peer
// that sends one Ping per interval per session, spread evenly over the interval, as clients
// started at random times would. Virtual time advances through the intervals; the server's due
// timers fire (on_timeout at next_deadline), each Ping is received, the events drained and the
// Pong taken, as the server runtime does. Reports the server core's CPU per session per interval
// (process CPU time over the measured intervals, after one warm-up interval), the heap in use per
// idle session (mallinfo2 before/after the sessions were opened), and what the server sent and
// how often its timers fired per session per interval.
//   build/gcc/bench/heartbeat_core_benchmark [sessions=100000] [intervals=3]
#include <malloc.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <vector>

#include "session/server_endpoint.hpp"
#include "tests/support/seeded_random.hpp"
#include "wire/codec.hpp"

namespace {

using namespace tether::session;

// Deterministic and cheap: the tests' SplitMix64 (no short period, so a server drawing thousands
// of session ids never sees one twice).
using tether::testing::SeededRandom;

double cpu_seconds() {
  timespec spec{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &spec);
  return static_cast<double>(spec.tv_sec) + static_cast<double>(spec.tv_nsec) * 1e-9;
}

struct Counts {
  std::uint64_t timeouts = 0;
  std::uint64_t bytes_out = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const std::size_t sessions = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 100000;
  const int intervals = argc > 2 ? std::atoi(argv[2]) : 3;
  const auto interval = std::chrono::seconds(30);

  const std::size_t heap_before = mallinfo2().uordblks;
  SeededRandom random{0};
  ServerLimits limits;
  limits.max_sessions = sessions + 16;
  limits.max_sessions_per_source = sessions + 16;
  Time now = Time{} + std::chrono::hours(1);
  const Time start = now;
  ServerEndpoint endpoint(SessionConfig{}, Secret{}, random, limits);

  tether::wire::Hello hello;
  hello.heartbeat_interval_ms = 30000;
  hello.missing_heartbeats_allowed = 3;
  hello.capabilities = SessionConfig{}.capabilities;
  std::vector<std::byte> hello_bytes;
  tether::wire::encode_frame(hello, hello_bytes);
  const std::array<std::byte, 32> keying{};
  std::vector<std::byte> out;
  // Session i opens at start + i * interval / N, so its client pings at that phase.
  const auto spacing = std::chrono::duration_cast<Duration>(interval) / sessions;
  for (std::size_t index = 0; index < sessions; ++index) {
    now = start + spacing * static_cast<std::int64_t>(index);
    const auto path = static_cast<PathId>(index + 1);
    endpoint.accept(path, keying, now, "192.0.2.1");
    endpoint.receive(path, hello_bytes, now);
    out.clear();
    endpoint.take_outgoing(path, out, 1u << 20, now);
    while (endpoint.poll_event()) {
    }
  }
  if (endpoint.session_count() != sessions) {
    std::fprintf(stderr, "only %zu of %zu sessions established\n", endpoint.session_count(),
                 sessions);
    return 1;
  }
  const std::size_t heap_after = mallinfo2().uordblks;

  std::vector<std::byte> ping;
  Counts counts;
  double measured_from = 0;
  Counts measured_base;
  for (int round = 0; round <= intervals; ++round) {
    if (round == 1) {
      measured_from = cpu_seconds();
      measured_base = counts;
    }
    for (std::size_t index = 0; index < sessions; ++index) {
      now = start + interval * (round + 1) + spacing * static_cast<std::int64_t>(index);
      while (const auto deadline = endpoint.next_deadline()) {
        if (*deadline > now) break;
        endpoint.on_timeout(*deadline);
        ++counts.timeouts;
        while (endpoint.poll_event()) {
        }
      }
      const auto path = static_cast<PathId>(index + 1);
      ping.clear();
      tether::wire::encode_frame(tether::wire::Ping{static_cast<std::uint64_t>(round + 1)}, ping);
      endpoint.receive(path, ping, now);
      while (endpoint.poll_event()) {
      }
      out.clear();
      counts.bytes_out += endpoint.take_outgoing(path, out, 1u << 20, now);
    }
  }
  const double cpu = cpu_seconds() - measured_from;
  const double per_session_interval = static_cast<double>(sessions) * intervals;
  if (endpoint.session_count() != sessions) {
    std::fprintf(stderr, "sessions lost: %zu of %zu left\n", endpoint.session_count(), sessions);
    return 1;
  }
  std::printf(
      "core only (no TLS, no syscalls): %zu idle sessions, 30 s heartbeat, %d intervals measured\n"
      "server core CPU per session per interval: %.2f us (%.4f%% of a core at this count)\n"
      "heap per idle session: %.0f bytes (mallinfo2 uordblks %zu -> %zu)\n"
      "per session per interval: %.2f bytes sent by the server, %.3f timer firings\n",
      sessions, intervals, cpu / per_session_interval * 1e6,
      cpu / (static_cast<double>(intervals) * 30.0) * 100.0,
      static_cast<double>(heap_after - heap_before) / static_cast<double>(sessions), heap_before,
      heap_after,
      static_cast<double>(counts.bytes_out - measured_base.bytes_out) / per_session_interval,
      static_cast<double>(counts.timeouts - measured_base.timeouts) / per_session_interval);
  return 0;
}
