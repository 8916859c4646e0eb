// Test support for the session unit tests: a seeded RandomSource, byte helpers, and Loopback, which
// connects one client Session and one ServerEndpoint in memory on a virtual clock advanced by hand.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
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

// One transport connection as the loopback sees it.
struct Connection {
  Bytes keying;
  bool open = true;
  bool to_server = true;  // bytes from the client arrive at the server (else they are dropped)
  bool to_client = true;
};

// A chunk of bytes one side handed to the transport.
struct Chunk {
  Time at;
  PathId connection = 0;
  bool to_server = true;
  bool delivered = true;
  Bytes bytes;
};

class Loopback {
 public:
  explicit Loopback(SessionConfig client_config = test_config(),
                    SessionConfig server_config = test_config(), std::uint64_t seed = 1)
      : now(start_time()),
        client_random(seed * 3 + 1),
        server_random(seed * 3 + 2),
        keying_random(seed * 3 + 3),
        static_key(random_array<32>(keying_random)),
        server(server_config, static_key, server_random),
        client(client_config, client_random, now) {}

  Time now;
  SplitMix64 client_random;
  SplitMix64 server_random;
  SplitMix64 keying_random;
  wire::Secret static_key;
  session::ServerEndpoint server;
  session::Session client;

  std::map<PathId, Connection> connections;
  PathId next_connection = 1;
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
    const PathId id = next_connection++;
    Connection connection;
    connection.keying = random_bytes(keying_random, 32);
    connection.to_server = to_server;
    connection.to_client = to_client;
    auto& stored = connections.emplace(id, std::move(connection)).first->second;
    server.accept(id, stored.keying, now);
    client.add_path(id, stored.keying, now);
    return id;
  }

  // The transport reports the connection gone at both ends.
  void close_connection(PathId id) {
    auto it = connections.find(id);
    if (it == connections.end() || !it->second.open) return;
    it->second.open = false;
    client.on_path_closed(id, now);
    server.on_connection_closed(id, now);
  }

  void blackhole(PathId id) {
    connections.at(id).to_server = false;
    connections.at(id).to_client = false;
  }

  // Moves bytes both ways on every open connection until neither side has anything to send.
  void pump() {
    for (int round = 0; round < 100000; ++round) {
      process_events();
      bool moved = false;
      std::vector<PathId> ids;
      for (const auto& [id, connection] : connections) {
        if (connection.open) ids.push_back(id);
      }
      for (PathId id : ids) {
        moved |= move_to_server(id);
        moved |= move_to_client(id);
        process_events();
      }
      if (!moved) return;
    }
    ADD_FAILURE() << "pump did not settle";
  }

  // Advances the virtual clock to `target`, firing every deadline on the way (and pumping).
  void advance_to(Time target) {
    pump();
    for (int step = 0; step < 1000000; ++step) {
      std::optional<Time> next = client.next_deadline();
      const auto server_next = server.next_deadline();
      if (server_next && (!next || *server_next < *next)) next = server_next;
      if (!next || *next > target) break;
      now = std::max(now, *next);
      client.on_timeout(now);
      server.on_timeout(now);
      pump();
    }
    now = std::max(now, target);
    pump();
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

  void process_events() {
    for (bool any = true; any;) {
      any = false;
      while (auto event = client.poll_event()) {
        any = true;
        client_events.push_back({now, *event});
        if (client_app) client_app(*event);
        on_client_event(*event);
      }
      while (auto event = server.poll_event()) {
        any = true;
        server_events.push_back({now, *event});
        if (server_app) server_app(*event);
        on_server_event(event->event);
      }
    }
  }

 private:
  bool move_to_server(PathId id) {
    Bytes buffer;
    if (client.take_outgoing(id, buffer, std::size_t{1} << 20, now) == 0) return false;
    Connection& connection = connections.at(id);
    const bool deliver = connection.open && connection.to_server;
    chunks.push_back({now, id, true, deliver, buffer});
    if (deliver) server.receive(id, buffer, now);
    return true;
  }

  bool move_to_client(PathId id) {
    Bytes buffer;
    if (server.take_outgoing(id, buffer, std::size_t{1} << 20, now) == 0) return false;
    Connection& connection = connections.at(id);
    const bool deliver = connection.open && connection.to_client;
    chunks.push_back({now, id, false, deliver, buffer});
    if (deliver) client.receive(id, buffer, now);
    return true;
  }

  void on_client_event(const Event& event) {
    if (std::holds_alternative<session::events::PathWanted>(event)) {
      ++path_requests;
      ++path_requests_total;
      if (!auto_connect) return;
      if (network_up) {
        connect();
      } else {
        --path_requests;
        client.on_path_failed(now);
      }
      return;
    }
    if (const auto* done = std::get_if<session::events::PathDone>(&event)) {
      auto it = connections.find(done->path);
      if (it == connections.end() || !it->second.open) return;
      move_to_server(done->path);
      close_connection(done->path);
    }
  }

  void on_server_event(const Event& event) {
    const auto* done = std::get_if<session::events::PathDone>(&event);
    if (done == nullptr) return;
    auto it = connections.find(done->path);
    if (it == connections.end()) {
      server.on_connection_closed(done->path, now);  // a raw connection of the test
      return;
    }
    if (!it->second.open) return;
    move_to_client(done->path);
    close_connection(done->path);
  }
};

}  // namespace tether::test
