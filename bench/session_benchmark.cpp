// In-memory session-to-session throughput: a client writes on streams, bytes move between the two
// cores through take_outgoing/receive with no I/O, the server application drains with peek/consume.
// The goal is that the core never limits the tunnel (at least 5 GB/s here).
#include <benchmark/benchmark.h>

#include <array>
#include <vector>

#include "session/server_endpoint.hpp"
#include "session/session.hpp"

namespace {

using namespace tether::session;

class CounterRandom final : public RandomSource {
 public:
  void fill(std::span<std::byte> out) override {
    for (auto& byte : out) byte = static_cast<std::byte>(++counter_ * 0x9d);
  }

 private:
  std::uint64_t counter_ = 0;
};

struct Pair {
  SessionConfig config;
  CounterRandom client_random;
  CounterRandom server_random;
  Time now = Time{} + std::chrono::hours(1);
  ServerEndpoint server;
  Session client;
  Session* server_session = nullptr;
  std::vector<std::byte> wire;

  explicit Pair(SessionConfig session_config)
      : config(session_config),
        server(config, Secret{}, server_random),
        client(config, client_random, now) {
    wire.reserve(4u << 20);
    std::array<std::byte, 32> keying{};
    while (client.poll_event()) {
    }
    server.accept(1, keying, now);
    client.add_path(1, keying, now);
    exchange();
    server_session = server.find(client.id());
  }

  // Moves everything both ways once; returns the client-to-server byte count.
  std::size_t exchange() {
    wire.clear();
    const std::size_t sent = client.take_outgoing(1, wire, 1u << 20, now);
    if (sent > 0) server.receive(1, wire, now);
    wire.clear();
    if (server.take_outgoing(1, wire, 1u << 20, now) > 0) client.receive(1, wire, now);
    return sent;
  }
};

void session_throughput(benchmark::State& state) {
  const auto stream_count = static_cast<std::size_t>(state.range(0));
  SessionConfig config;
  config.max_data_frame_payload = static_cast<std::size_t>(state.range(1));
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
    pair.exchange();
    for (StreamId id : streams) {
      auto view = pair.server_session->peek(id);
      while (!view.empty()) {
        delivered += view.size();
        pair.server_session->consume(id, view.size(), pair.now);
        view = pair.server_session->peek(id);
      }
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(delivered));
}
BENCHMARK(session_throughput)
    ->Args({1, 16u << 10})
    ->Args({1, 64u << 10})
    ->Args({4, 16u << 10})
    ->Args({4, 64u << 10});

}  // namespace

BENCHMARK_MAIN();
