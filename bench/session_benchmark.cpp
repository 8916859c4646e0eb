// In-memory session-to-session benchmarks: a client and a server core exchange bytes through
// take_outgoing/receive with no I/O, and both applications drain their events as a runtime would.
// - session_throughput: bulk writes on a few streams, the server application drains with
//   peek/consume. The goal is that the core never limits the tunnel (at least 5 GB/s here).
// - session_throughput_chunked: the same, but the server receives the bytes in reads of a fixed
//   size, as from a socket or TLS records, so that frames straddle reads.
// - session_small_messages: request/response of 100 bytes on each of N streams per round (the
//   redis-benchmark -c N shape): the cost per small message, where per-call and per-stream work
//   dominates.
// - session_stream_churn: N streams per round each opened, sent one 100-byte request, answered and
//   finished both ways: the cost of a short-lived connection through the tunnel.
// Compare instruction counts (valgrind --tool=callgrind) rather than wall time on a shared machine:
// TETHER_BENCH_ITERATIONS=N runs every case exactly N iterations, so the difference between the
// counts of two runs (N and 2N) divided by N is the exact cost of one iteration, setup excluded.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "session/server_endpoint.hpp"
#include "session/session.hpp"
#include "tests/support/seeded_random.hpp"
#include "tests/support/session_pair.hpp"

namespace {

using namespace tether::session;

// Deterministic and cheap: the tests' SplitMix64 (no short period, so a server drawing thousands
// of session ids never sees one twice).
using tether::testing::SeededRandom;

// The benchmarks' SessionPair: established on one connection at construction; then each benchmark
// moves bytes with exchange() and drains events with its own handlers, as a runtime would.
struct Pair : tether::testing::SessionPair {
  Session* server_session = nullptr;
  PathId path = 0;

  explicit Pair(const SessionConfig& config)
      : SessionPair(config, config, std::make_unique<SeededRandom>(0),
                    std::make_unique<SeededRandom>(0), std::make_unique<SeededRandom>(0),
                    Time{} + std::chrono::hours(1)) {
    drain_events();  // PathWanted -> the connection
    path = connections.begin()->first;
    pump();
    server_session = server.find(client.id());
  }

  // Moves everything both ways once; returns the client-to-server byte count. The server receives
  // in reads of at most `read_size` bytes (0: everything at once).
  std::size_t exchange(std::size_t read_size = 0) {
    read_size_ = read_size;
    const std::size_t sent = transfer(tether::testing::End::kClient, path);
    transfer(tether::testing::End::kServer, path);
    return sent;
  }

  // Events the benchmarks do not act on are dropped, as a runtime that ignores them would.
  template <typename Handler>
  void handle_server_events(Handler&& handle) {
    while (auto event = server.poll_event()) handle(event->event);
  }
  template <typename Handler>
  void handle_client_events(Handler&& handle) {
    while (auto event = client.poll_event()) handle(*event);
  }

 protected:
  void carry(tether::testing::End from, PathId id, std::span<const std::byte> bytes) override {
    const auto to = tether::testing::opposite(from);
    const std::size_t step =
        read_size_ == 0 || to == tether::testing::End::kClient ? bytes.size() : read_size_;
    for (std::size_t offset = 0; offset < bytes.size(); offset += step)
      deliver(to, id, bytes.subspan(offset, std::min(step, bytes.size() - offset)));
  }

 private:
  std::size_t read_size_ = 0;
};

// Fixes the iteration count when TETHER_BENCH_ITERATIONS is set (see the top of this file).
void fixed_iterations(benchmark::internal::Benchmark* benchmark) {
  if (const char* value = std::getenv("TETHER_BENCH_ITERATIONS")) {
    const long long iterations = std::atoll(value);
    if (iterations > 0) benchmark->Iterations(iterations);
  }
}

// Reads everything buffered on `stream` with peek/consume; returns the byte count.
std::size_t drain_stream(Session& session, StreamId stream, Time now) {
  std::size_t total = 0;
  auto view = session.peek(stream);
  while (!view.empty()) {
    total += view.size();
    session.consume(stream, view.size(), now);
    view = session.peek(stream);
  }
  return total;
}

// Bulk transfer on `stream_count` streams with frames of at most `frame_payload` bytes; the server
// receives in reads of `read_size` bytes (0: everything at once).
void run_throughput(benchmark::State& state, std::size_t stream_count, std::size_t frame_payload,
                    std::size_t read_size) {
  SessionConfig config;
  config.max_data_frame_payload = frame_payload;
  config.max_unacknowledged_bytes = 4u << 20;
  config.stream_receive_window = 2u << 20;
  Pair pair(config);
  std::vector<StreamId> streams;
  for (std::size_t index = 0; index < stream_count; ++index)
    streams.push_back(*pair.client.open_stream(0, pair.now));
  std::vector<std::byte> payload(64u << 10, std::byte{0x5a});
  std::size_t delivered = 0;
  for (auto _ : state) {
    for (StreamId id : streams) (void)pair.client.write(id, payload, pair.now);
    pair.exchange(read_size);
    for (StreamId id : streams) delivered += drain_stream(*pair.server_session, id, pair.now);
    pair.handle_server_events([](const Event&) {});
    pair.handle_client_events([](const Event&) {});
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(delivered));
}

// Arguments: streams, frame payload.
void session_throughput(benchmark::State& state) {
  run_throughput(state, static_cast<std::size_t>(state.range(0)),
                 static_cast<std::size_t>(state.range(1)), 0);
}
BENCHMARK(session_throughput)
    ->Args({1, 16u << 10})
    ->Args({1, 64u << 10})
    ->Args({4, 16u << 10})
    ->Args({4, 64u << 10})
    ->Apply(fixed_iterations);

// Arguments: streams, frame payload, read size.
void session_throughput_chunked(benchmark::State& state) {
  run_throughput(state, static_cast<std::size_t>(state.range(0)),
                 static_cast<std::size_t>(state.range(1)),
                 static_cast<std::size_t>(state.range(2)));
}
BENCHMARK(session_throughput_chunked)
    ->Args({4, 16u << 10, 16u << 10})
    ->Args({4, 16u << 10, 4u << 10})
    ->Apply(fixed_iterations);

constexpr std::size_t kMessageSize = 100;

void session_small_messages(benchmark::State& state) {
  const auto stream_count = static_cast<std::size_t>(state.range(0));
  Pair pair(SessionConfig{});
  std::vector<StreamId> streams;
  for (std::size_t index = 0; index < stream_count; ++index)
    streams.push_back(*pair.client.open_stream(0, pair.now));
  const std::vector<std::byte> request(kMessageSize, std::byte{0x51});
  const std::vector<std::byte> response(kMessageSize, std::byte{0x52});
  std::size_t messages = 0;
  for (auto _ : state) {
    for (StreamId id : streams) (void)pair.client.write(id, request, pair.now);
    pair.exchange();
    // The server answers each request it reads.
    pair.handle_server_events([&](const Event& event) {
      if (const auto* readable = std::get_if<events::StreamReadable>(&event)) {
        if (drain_stream(*pair.server_session, readable->stream, pair.now) > 0) {
          (void)pair.server_session->write(readable->stream, response, pair.now);
          ++messages;
        }
      }
    });
    pair.exchange();
    pair.handle_client_events([&](const Event& event) {
      if (const auto* readable = std::get_if<events::StreamReadable>(&event)) {
        if (drain_stream(pair.client, readable->stream, pair.now) > 0) ++messages;
      }
    });
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(messages));
}
BENCHMARK(session_small_messages)->Arg(1)->Arg(50)->Apply(fixed_iterations);

void session_stream_churn(benchmark::State& state) {
  const auto stream_count = static_cast<std::size_t>(state.range(0));
  Pair pair(SessionConfig{});
  const std::vector<std::byte> request(kMessageSize, std::byte{0x51});
  const std::vector<std::byte> response(kMessageSize, std::byte{0x52});
  std::vector<StreamId> streams;
  std::size_t completed = 0;
  for (auto _ : state) {
    streams.clear();
    for (std::size_t index = 0; index < stream_count; ++index) {
      const StreamId id = *pair.client.open_stream(0, pair.now);
      (void)pair.client.write(id, request, pair.now);
      (void)pair.client.finish(id, pair.now);
      streams.push_back(id);
    }
    pair.exchange();
    // The server reads each request to its end, answers and finishes.
    pair.handle_server_events([&](const Event& event) {
      if (const auto* finished = std::get_if<events::StreamFinished>(&event)) {
        std::array<std::byte, kMessageSize> buffer{};
        (void)pair.server_session->read(finished->stream, buffer, pair.now);
        (void)pair.server_session->write(finished->stream, response, pair.now);
        (void)pair.server_session->finish(finished->stream, pair.now);
      }
    });
    pair.exchange();
    pair.handle_client_events([&](const Event& event) {
      if (const auto* finished = std::get_if<events::StreamFinished>(&event)) {
        std::array<std::byte, kMessageSize> buffer{};
        if (pair.client.read(finished->stream, buffer, pair.now)->finished) ++completed;
      }
    });
    // Carries the client's final acknowledgements, so both sides release every stream.
    pair.exchange();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(completed));
}
BENCHMARK(session_stream_churn)->Arg(50)->Apply(fixed_iterations);

// The cost of ServerEndpoint::next_deadline() with N established, idle sessions: the runtime
// calls it after every processing pass; it reads a deadline heap (server_endpoint_benchmark has
// the other per-call costs).
void server_deadline_scan(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  SessionConfig config;
  SeededRandom server_random{0};
  SeededRandom client_random{0};
  const Time now = Time{} + std::chrono::hours(1);
  // All clients come from one (empty) source: the limits must admit them all.
  ServerLimits limits;
  limits.max_sessions = count;
  limits.max_sessions_per_source = count;
  ServerEndpoint server(config, Secret{}, server_random, limits);
  std::vector<std::unique_ptr<Session>> clients;
  std::vector<std::byte> wire;
  const std::array<std::byte, 32> keying{};
  for (std::size_t index = 0; index < count; ++index) {
    const auto path = static_cast<PathId>(index + 1);
    auto& client = *clients.emplace_back(std::make_unique<Session>(config, client_random, now));
    while (client.poll_event()) {
    }
    server.accept(path, keying, now);
    client.add_path(path, keying, now);
    wire.clear();
    client.take_outgoing(path, wire, 1u << 20, now);
    server.receive(path, wire, now);
    wire.clear();
    server.take_outgoing(path, wire, 1u << 20, now);
    client.receive(path, wire, now);
  }
  // Drained once.
  while (server.poll_event()) {
  }
  if (server.session_count() != count) state.SkipWithError("sessions did not establish");
  for (auto _ : state) benchmark::DoNotOptimize(server.next_deadline());
  state.counters["per_session"] =
      benchmark::Counter(static_cast<double>(count), benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
}
BENCHMARK(server_deadline_scan)->Arg(100)->Arg(1000)->Arg(10000)->Apply(fixed_iterations);

}  // namespace

BENCHMARK_MAIN();
