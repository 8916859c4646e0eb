// Test support for the session unit tests: a seeded RandomSource, byte helpers, and Loopback, a
// SessionPair (one client Session and one ServerEndpoint in memory, on a virtual clock advanced by
// hand) that records what happens for the tests to inspect.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "session/events.hpp"
#include "session/key_schedule.hpp"
#include "session/server_endpoint.hpp"
#include "session/session.hpp"
#include "session/types.hpp"
#include "tests/support/seeded_random.hpp"
#include "tests/support/session_pair.hpp"
#include "wire/byte_writer.hpp"
#include "wire/codec.hpp"
#include "wire/frame.hpp"

namespace tether::test {

using session::Duration;
using session::Event;
using session::milliseconds;
using session::PathId;
using session::seconds;
using session::SessionConfig;
using session::SessionEvent;
using session::StreamId;
using session::Time;
using Bytes = std::vector<std::byte>;

using SplitMix64 = tether::testing::SeededRandom;

inline Time start_time() {
  return Time{} + seconds(1000);
}

inline Bytes random_bytes(SplitMix64& random, std::size_t size) {
  Bytes out(size);
  random.fill(out);
  return out;
}

template <std::size_t Size>
std::array<std::byte, Size> random_array(SplitMix64& random) {
  std::array<std::byte, Size> out{};
  random.fill(out);
  return out;
}

inline Bytes to_bytes(std::string_view text) {
  const auto view = std::as_bytes(std::span<const char>(text.data(), text.size()));
  return Bytes(view.begin(), view.end());
}

inline Bytes concat(Bytes left, const Bytes& right) {
  left.insert(left.end(), right.begin(), right.end());
  return left;
}

inline Bytes encode(const wire::Frame& frame) {
  Bytes out;
  wire::encode_frame(frame, out);
  return out;
}

// Decodes every frame of `bytes` (which must stay alive while StreamData views are used). Stops at
// the first error or incomplete frame.
inline std::vector<wire::Frame> decode_all(std::span<const std::byte> bytes) {
  std::vector<wire::Frame> frames;
  wire::DecodeLimits limits;
  limits.max_payload = std::size_t{1} << 30;
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    auto decoded = wire::decode_frame(bytes.subspan(offset), limits);
    if (!decoded || !decoded->has_value()) break;
    offset += (*decoded)->consumed;
    frames.push_back(std::move((*decoded)->frame));
  }
  return frames;
}

template <typename T>
std::vector<T> frames_of(std::span<const std::byte> bytes) {
  std::vector<T> out;
  for (auto& frame : decode_all(bytes)) {
    if (auto* value = std::get_if<T>(&frame)) out.push_back(*value);
  }
  return out;
}

struct TimedEvent {
  Time at;
  Event event;
};
struct TimedSessionEvent {
  Time at;
  SessionEvent event;
};

template <typename T>
std::vector<T> events_of(const std::vector<TimedEvent>& log) {
  std::vector<T> out;
  for (const auto& entry : log) {
    if (const auto* value = std::get_if<T>(&entry.event)) out.push_back(*value);
  }
  return out;
}
template <typename T>
std::vector<T> events_of(const std::vector<TimedSessionEvent>& log) {
  std::vector<T> out;
  for (const auto& entry : log) {
    if (const auto* value = std::get_if<T>(&entry.event.event)) out.push_back(*value);
  }
  return out;
}
// When the first event of type T was logged.
template <typename T, typename Log>
std::optional<Time> first_time(const Log& log) {
  for (const auto& entry : log) {
    const Event* event = nullptr;
    if constexpr (std::is_same_v<Log, std::vector<TimedEvent>>) {
      event = &entry.event;
    } else {
      event = &entry.event.event;
    }
    if (std::holds_alternative<T>(*event)) return entry.at;
  }
  return std::nullopt;
}

// Reads everything currently readable on `stream`.
inline Bytes read_all(session::Session& session, StreamId stream, Time now,
                      bool* finished = nullptr) {
  Bytes out;
  std::array<std::byte, 4096> chunk{};
  for (;;) {
    auto result = session.read(stream, chunk, now);
    if (!result) break;
    out.insert(out.end(), chunk.begin(),
               chunk.begin() + static_cast<std::ptrdiff_t>(result->bytes));
    if (finished != nullptr && result->finished) *finished = true;
    if (result->bytes == 0) break;
  }
  return out;
}

// The test profile: one-second heartbeats, three misses allowed.
inline SessionConfig test_config() {
  SessionConfig config;
  config.heartbeat_interval = seconds(1);
  config.missing_heartbeats_allowed = 3;
  return config;
}

// One transport connection as the loopback sees it (keying, open, and the to_server / to_client
// flags that lose one direction's bytes).
using Connection = tether::testing::SessionPair::Connection;
using tether::testing::End;

// A chunk of bytes one side handed to the transport.
struct Chunk {
  Time at;
  PathId connection = 0;
  bool to_server = true;
  bool delivered = true;
  Bytes bytes;
};

// A SessionPair that records every event and every chunk for the tests to inspect, lets a test
// answer PathWanted by hand (auto_connect, network_up), and checks that pumping settles.
class Loopback : public tether::testing::SessionPair {
 public:
  explicit Loopback(SessionConfig client_config = test_config(),
                    SessionConfig server_config = test_config(), std::uint64_t seed = 1)
      : SessionPair(client_config, server_config, std::make_unique<SplitMix64>(seed * 3 + 1),
                    std::make_unique<SplitMix64>(seed * 3 + 2),
                    std::make_unique<SplitMix64>(seed * 3 + 3), start_time()) {}

  // On PathWanted: connect at once (when network_up), or report the attempt failed.
  bool auto_connect = true;
  bool network_up = true;
  std::size_t path_requests = 0;  // PathWanted not yet answered
  std::size_t path_requests_total = 0;
  std::vector<TimedEvent> client_events;
  std::vector<TimedSessionEvent> server_events;
  std::vector<Chunk> chunks;
  // The application: called for every event, before the loopback acts on it (e.g. to read data as
  // soon as it is readable).
  std::function<void(const Event&)> client_app;
  std::function<void(const SessionEvent&)> server_app;

  // Runs the handshake; returns the session id.
  session::SessionId establish() {
    process_events();
    if (path_requests > 0 && connections.empty()) connect();
    pump();
    EXPECT_EQ(client.phase(), session::Phase::kOpen);
    EXPECT_EQ(events_of<session::events::Established>(client_events).size(), 1u);
    EXPECT_EQ(events_of<session::events::Established>(server_events).size(), 1u);
    return client.id();
  }

  session::Session* server_session() { return server.find(client.id()); }

  // Opens a connection for an outstanding PathWanted (or unprompted).
  PathId connect(bool to_server = true, bool to_client = true) {
    if (path_requests > 0) --path_requests;
    const PathId id = open_connection();
    connections.at(id).to_server = to_server;
    connections.at(id).to_client = to_client;
    return id;
  }

  void blackhole(PathId id) {
    connections.at(id).to_server = false;
    connections.at(id).to_client = false;
  }

  // Moves bytes both ways on every open connection until neither side has anything to send.
  void pump() {
    if (!SessionPair::pump()) ADD_FAILURE() << "pump did not settle";
  }

  // Advances the virtual clock to `target`, firing every deadline on the way (and pumping).
  void advance_to(Time target) {
    if (!SessionPair::advance_to(target)) ADD_FAILURE() << "pump did not settle";
  }
  void advance(Duration duration) { advance_to(now + duration); }

  // A connection the client knows nothing about: `bytes` arrive first; returns the server's reply.
  Bytes raw_exchange(PathId id, std::span<const std::byte> keying,
                     std::span<const std::byte> bytes) {
    server.accept(id, keying, now);
    server.receive(id, bytes, now);
    Bytes reply;
    server.take_outgoing(id, reply, std::size_t{1} << 20, now);
    return reply;
  }

  // Bytes sent from one side on `id` (delivered or not), in order.
  Bytes sent_on(PathId id, bool to_server) const {
    Bytes out;
    for (const auto& chunk : chunks) {
      if (chunk.connection == id && chunk.to_server == to_server) {
        out.insert(out.end(), chunk.bytes.begin(), chunk.bytes.end());
      }
    }
    return out;
  }

  template <typename T>
  std::size_t frames_sent(bool to_server) const {
    std::size_t count = 0;
    for (const auto& chunk : chunks) {
      if (chunk.to_server == to_server) count += frames_of<T>(chunk.bytes).size();
    }
    return count;
  }

  void process_events() { drain_events(); }

 protected:
  void on_client_event(const Event& event) override {
    client_events.push_back({now, event});
    if (client_app) client_app(event);
  }

  void on_server_event(const SessionEvent& event) override {
    server_events.push_back({now, event});
    if (server_app) server_app(event);
  }

  void on_path_wanted() override {
    ++path_requests;
    ++path_requests_total;
    if (!auto_connect) return;
    if (network_up) {
      connect();
    } else {
      --path_requests;
      client.on_path_failed(now);
    }
  }

  // Records the chunk; it arrives unless the connection is closed or loses that direction.
  void carry(End from, PathId id, std::span<const std::byte> bytes) override {
    const Connection& connection = connections.at(id);
    const bool to_server = from == End::kClient;
    const bool delivered =
        connection.open && (to_server ? connection.to_server : connection.to_client);
    chunks.push_back({now, id, to_server, delivered, Bytes(bytes.begin(), bytes.end())});
    if (delivered) deliver(tether::testing::opposite(from), id, bytes);
  }
};

}  // namespace tether::test
