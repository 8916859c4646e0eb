// SessionPair is one client Session and one ServerEndpoint joined by in-memory transport
// connections on a virtual clock: it keeps the table of connections and which end of each is still
// attached, answers the client's PathWanted with a new connection and either end's PathDone by
// flushing and closing that connection, moves bytes between the ends and fires both sides'
// deadlines. The unit tests' Loopback, the simulator, the session fuzzer and the session benchmark
// are drivers built on it: each overrides only what is its own (when bytes arrive or are lost,
// what the applications do, what it records).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "session/events.hpp"
#include "session/server_endpoint.hpp"
#include "session/session.hpp"
#include "session/types.hpp"

namespace tether::testing {

// One side of the pair.
enum class End : std::uint8_t { kClient, kServer };

[[nodiscard]] constexpr End opposite(End end) {
  return end == End::kClient ? End::kServer : End::kClient;
}

class SessionPair {
 public:
  // One transport connection. Connections are never removed from the table, so that a test can
  // inspect a closed one.
  struct Connection {
    std::vector<std::byte> keying;  // the exporter value both ends were given
    bool open = true;               // neither end has closed it yet
    bool client_attached = true;    // the client has not yet been told it is closed
    bool server_attached = true;
    // Whether the default carry() delivers each direction's bytes (false: they are lost).
    bool to_server = true;
    bool to_client = true;
  };

  // The pair owns its three random sources: the client's, the server's, and the world's, from which
  // the server's static key is drawn first and then 32 bytes of keying material per connection.
  // Both sides start at `start`; the server is created first, then the client (which queues its
  // first PathWanted at once).
  SessionPair(const session::SessionConfig& client_config,
              const session::SessionConfig& server_config,
              std::unique_ptr<session::RandomSource> client_random,
              std::unique_ptr<session::RandomSource> server_random,
              std::unique_ptr<session::RandomSource> world_random, session::Time start,
              session::ServerLimits limits = {})
      : client_random_(std::move(client_random)),
        server_random_(std::move(server_random)),
        world_random_(std::move(world_random)),
        server_config_(server_config),
        limits_(limits),
        now(start),
        static_key(draw_static_key(*world_random_)),
        server_instance_(std::in_place, server_config_, static_key, *server_random_, limits_),
        server(*server_instance_),
        client(client_config, *client_random_, now) {}

  virtual ~SessionPair() = default;
  SessionPair(const SessionPair&) = delete;
  SessionPair& operator=(const SessionPair&) = delete;

 private:
  std::unique_ptr<session::RandomSource> client_random_;
  std::unique_ptr<session::RandomSource> server_random_;
  std::unique_ptr<session::RandomSource> world_random_;
  session::SessionConfig server_config_;
  session::ServerLimits limits_;

 public:
  session::Time now;  // the virtual clock: the driver advances it; every call passes it
  const session::Secret static_key;

 private:
  std::optional<session::ServerEndpoint> server_instance_;

 public:
  // Stays valid across restart_server(): the new endpoint takes the old one's place.
  session::ServerEndpoint& server;
  session::Session client;
  std::map<session::PathId, Connection> connections;
  // The most bytes transfer() takes from one end at a time (one write to the transport).
  std::size_t max_write = std::size_t{1} << 20;
  // The source address the server is given for the client's connections (its per-source limits).
  std::string source;
  // Connections carry a channel binding and are confidential, as TLS connections are.
  bool bind_channels = false;

  // ---- Connections ------------------------------------------------------------------------------

  [[nodiscard]] session::PathId next_connection_id() const { return next_connection_id_; }

  // A new connection that both ends know: the server accepts it, then the client adds it.
  session::PathId open_connection() {
    const session::PathId id = next_connection_id_++;
    Connection& connection = connections.emplace(id, Connection{draw_keying()}).first->second;
    if (!bind_channels) {
      server.accept(id, connection.keying, now, source);
      client.add_path(id, connection.keying, now);
      return id;
    }
    // As TLS would: a channel binding of the connection's own (here: its keying material reversed)
    // and confidentiality.
    session::ConnectionSecurity security;
    security.keying_material.assign(connection.keying.begin(), connection.keying.end());
    security.channel_binding.assign(connection.keying.rbegin(), connection.keying.rend());
    security.confidential = true;
    server.accept(id, security, now, source);
    client.add_path(id, security, now);
    return id;
  }

  // A connection the client knows nothing about (a stranger's): only the server accepts it.
  session::PathId open_stranger_connection() {
    const session::PathId id = next_connection_id_++;
    Connection incoming{draw_keying()};
    incoming.client_attached = false;
    Connection& connection = connections.emplace(id, std::move(incoming)).first->second;
    server.accept(id, connection.keying, now);
    return id;
  }

  // Whether `end` still holds the connection (false for one the pair never made).
  [[nodiscard]] bool is_attached(End end, session::PathId id) const {
    auto found = connections.find(id);
    if (found == connections.end()) return false;
    return end == End::kClient ? found->second.client_attached : found->second.server_attached;
  }

  // The transport reports the connection closed to `end` (on_path_closed or
  // on_connection_closed), once. A connection the pair never made (the driver's own raw one) is
  // reported at once.
  void detach(End end, session::PathId id) {
    auto found = connections.find(id);
    if (found != connections.end()) {
      bool& attached =
          end == End::kClient ? found->second.client_attached : found->second.server_attached;
      found->second.open = false;
      if (!attached) return;
      attached = false;
    }
    if (end == End::kClient) {
      client.on_path_closed(id, now);
    } else {
      server.on_connection_closed(id, now);
    }
  }

  // The connection is gone at both ends at once (a reset): the client is told, then the server.
  void close_connection(session::PathId id) {
    detach(End::kClient, id);
    detach(End::kServer, id);
  }

  // ---- Bytes ------------------------------------------------------------------------------------

  // Appends to `out` up to about `max_bytes` that `from` has to send on `id`; nothing from an end
  // that is no longer attached. Returns how many bytes were appended.
  std::size_t take(End from, session::PathId id, std::vector<std::byte>& out,
                   std::size_t max_bytes) {
    if (!is_attached(from, id)) return 0;
    return from == End::kClient ? client.take_outgoing(id, out, max_bytes, now)
                                : server.take_outgoing(id, out, max_bytes, now);
  }

  // Hands `bytes` to `to` as arrived on `id`; false (and dropped) when that end is not attached.
  bool deliver(End to, session::PathId id, std::span<const std::byte> bytes) {
    if (!is_attached(to, id)) return false;
    if (to == End::kClient) {
      client.receive(id, bytes, now);
    } else {
      server.receive(id, bytes, now);
    }
    return true;
  }

  // Takes what `from` has for `id` (at most max_write) and gives it to carry() (which must not call
  // transfer() again: the bytes sit in a buffer the pair reuses). Returns the number of bytes
  // taken.
  std::size_t transfer(End from, session::PathId id) {
    scratch_.clear();
    const std::size_t taken = take(from, id, scratch_, max_write);
    if (taken > 0) carry(from, id, scratch_);
    return taken;
  }

  // Moves bytes both ways on every open connection, draining events after each, until a round
  // moves nothing. False when that did not happen within `max_rounds` rounds.
  bool pump(std::size_t max_rounds = 100000) {
    std::vector<session::PathId> ids;
    for (std::size_t round = 0; round < max_rounds; ++round) {
      drain_events();
      ids.clear();
      for (const auto& [id, connection] : connections) {
        if (connection.open) ids.push_back(id);
      }
      bool moved = false;
      for (session::PathId id : ids) {
        moved |= transfer(End::kClient, id) > 0;
        moved |= transfer(End::kServer, id) > 0;
        drain_events();
      }
      if (!moved) return true;
    }
    return false;
  }

  // ---- Events -----------------------------------------------------------------------------------

  // Polls every event the client has queued. Each goes to on_client_event(), then the pair acts
  // on the transport's share: PathWanted -> on_path_wanted(), PathDone -> on_path_done(). Returns
  // whether there was any.
  bool drain_client_events() {
    bool any = false;
    while (auto event = client.poll_event()) {
      any = true;
      on_client_event(*event);
      act_on(End::kClient, *event);
    }
    return any;
  }

  bool drain_server_events() {
    bool any = false;
    while (auto event = server.poll_event()) {
      any = true;
      on_server_event(*event);
      act_on(End::kServer, event->event);
    }
    return any;
  }

  // Drains both sides until neither has an event left.
  bool drain_events() {
    bool any = false;
    for (bool more = true; more;) {
      more = drain_client_events();
      more |= drain_server_events();
      any |= more;
    }
    return any;
  }

  // ---- Time -------------------------------------------------------------------------------------

  // The earlier of both sides' deadlines.
  [[nodiscard]] std::optional<session::Time> next_deadline() const {
    std::optional<session::Time> next = client.next_deadline();
    const auto server_next = server.next_deadline();
    if (server_next && (!next || *server_next < *next)) next = server_next;
    return next;
  }

  // Both sides' on_timeout() at `now`, the client first.
  void fire_timers() {
    client.on_timeout(now);
    server.on_timeout(now);
  }

  // Advances the clock to `target`, stopping at every deadline on the way to fire both sides'
  // timers and pump(). False when a pump did not settle (or the deadlines never ran out).
  bool advance_to(session::Time target) {
    bool settled = pump();
    for (int step = 0;; ++step) {
      const std::optional<session::Time> next = next_deadline();
      if (!next || *next > target) break;
      if (step == 1000000) return false;
      now = std::max(now, *next);
      fire_timers();
      settled &= pump();
    }
    now = std::max(now, target);
    settled &= pump();
    return settled;
  }

  // ---- Faults -----------------------------------------------------------------------------------

  // The server process loses all its state: its ends of every connection are dropped without a
  // word (the old process hears nothing more) and a new endpoint with the same configuration,
  // static key and random source takes its place. The client is not told anything.
  void restart_server() {
    for (auto& [id, connection] : connections) {
      if (connection.server_attached) {
        connection.server_attached = false;
        connection.open = false;
      }
    }
    server_instance_.reset();
    server_instance_.emplace(server_config_, static_key, *server_random_, limits_);
  }

 protected:
  // Every client event, before the pair acts on it.
  virtual void on_client_event(const session::Event& /*event*/) {}
  // Every server event, before the pair acts on it.
  virtual void on_server_event(const session::SessionEvent& /*event*/) {}
  // The client asked for a connection. Default: open_connection() at once.
  virtual void on_path_wanted() { open_connection(); }
  // `end` is done with `id` (PathDone). Default: what `end` still has for it is moved to the other
  // end, then the connection closes at both ends.
  virtual void on_path_done(End end, session::PathId id) {
    auto found = connections.find(id);
    if (found == connections.end()) {
      detach(end, id);  // the driver's own raw connection
      return;
    }
    if (!found->second.open) return;
    transfer(end, id);
    close_connection(id);
  }
  // Bytes `from` handed to the transport on `id`. Default: they reach the other end at once and
  // whole, unless the connection's to_server / to_client flag says they are lost.
  virtual void carry(End from, session::PathId id, std::span<const std::byte> bytes) {
    auto found = connections.find(id);
    if (found == connections.end()) return;
    const bool passes = from == End::kClient ? found->second.to_server : found->second.to_client;
    if (passes) deliver(opposite(from), id, bytes);
  }

 private:
  static session::Secret draw_static_key(session::RandomSource& random) {
    session::Secret key{};
    random.fill(key);
    return key;
  }

  std::vector<std::byte> draw_keying() {
    std::vector<std::byte> keying(32);
    world_random_->fill(keying);
    return keying;
  }

  void act_on(End end, const session::Event& event) {
    if (std::holds_alternative<session::events::PathWanted>(event)) {
      on_path_wanted();
    } else if (const auto* done = std::get_if<session::events::PathDone>(&event)) {
      on_path_done(end, done->path);
    }
  }

  session::PathId next_connection_id_ = 1;
  std::vector<std::byte> scratch_;
};

}  // namespace tether::testing
