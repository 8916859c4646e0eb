#include "tests/sim/simulation.hpp"

#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>

namespace tether::sim {
namespace {

using session::Event;
using session::PathId;
using session::StreamId;
namespace events = session::events;

constexpr Time kStart = Time{} + std::chrono::hours(1);

std::vector<std::byte> pattern(std::uint64_t seed, std::size_t size) {
  std::vector<std::byte> bytes(size);
  SeededRandom random(seed);
  random.fill(bytes);
  return bytes;
}

struct Chunk {
  std::vector<std::byte> bytes;
  bool close_marker = false;
};

// One direction of a transport connection: a serialising link with latency, and TCP's
// retransmission reduced to its effect: bytes sent into a blackhole arrive, in order, once the
// blackhole ends.
struct Direction {
  std::deque<Chunk> held;
  std::size_t in_flight = 0;
  Time link_free_at{};
  Time blackhole_until{};
  bool blackhole_forever = false;
  bool closed_by_sender = false;
};

struct Connection {
  PathId id = 0;
  bool client_attached = true;  // the client endpoint still knows this connection
  bool server_attached = true;
  bool broken = false;  // reset: nothing more is delivered
  Direction to_server;
  Direction to_client;
};

struct StreamState {
  StreamPlan plan;
  StreamId id = 0;
  std::vector<std::byte> client_data;
  std::vector<std::byte> server_data;
  bool opened = false;
  std::size_t client_written = 0;
  bool client_finished = false;
  std::size_t client_read = 0;
  bool client_saw_end = false;
  bool server_known = false;  // the current server session announced it
  std::size_t server_written = 0;
  bool server_finished = false;
  std::size_t server_read = 0;
  bool server_saw_end = false;
  [[nodiscard]] bool complete() const {
    return client_finished && client_saw_end && server_finished && server_saw_end;
  }
};

class World {
 public:
  explicit World(const SimulationConfig& config)
      : config_(config),
        world_random_(config.seed * 0x100000001b3ULL + 7),
        client_random_(config.seed * 3 + 1),
        server_random_(config.seed * 5 + 2) {
    static_key_ = {};
    world_random_.fill(static_key_);
    for (std::size_t index = 0; index < config.streams.size(); ++index) {
      StreamState state;
      state.plan = config.streams[index];
      state.id = 2 * index + 1;
      state.client_data = pattern(config.seed * 1000 + 2 * index, state.plan.client_to_server);
      state.server_data = pattern(config.seed * 1000 + 2 * index + 1, state.plan.server_to_client);
      streams_.push_back(std::move(state));
    }
  }

  SimulationResult run() {
    now_ = kStart;
    server_ =
        std::make_unique<session::ServerEndpoint>(config_.session, static_key_, server_random_);
    client_ = std::make_unique<session::Session>(config_.session, client_random_, now_);
    for (const auto& fault : config_.faults) {
      schedule(kStart + fault.at, [this, fault] { inject(fault); });
    }
    pump();
    const Time limit = kStart + config_.time_limit;
    while (!queue_.empty() && !done()) {
      auto item = queue_.top();
      queue_.pop();
      if (item.at > limit) break;
      now_ = std::max(now_, item.at);
      item.action();
    }
    finish_checks();
    return std::move(result_);
  }

 private:
  struct Scheduled {
    Time at;
    std::uint64_t sequence;
    std::function<void()> action;
    bool operator>(const Scheduled& other) const {
      return at != other.at ? at > other.at : sequence > other.sequence;
    }
  };

  void schedule(Time at, std::function<void()> action) {
    queue_.push(Scheduled{at, next_sequence_++, std::move(action)});
  }

  void log(const std::string& line) {
    char prefix[32];
    std::snprintf(prefix, sizeof prefix, "t=%9.3fs ",
                  std::chrono::duration<double>(now_ - kStart).count());
    result_.log += prefix + line + "\n";
  }

  void violation(const std::string& text) {
    log("VIOLATION " + text);
    result_.violations.push_back(text);
  }

  [[nodiscard]] bool client_asleep() const { return now_ < client_asleep_until_; }

  [[nodiscard]] bool done() const {
    return client_->phase() == session::Phase::kClosed && server_->session_count() == 0;
  }

  // ---- Faults ---------------------------------------------------------------------------------

  void inject(const Fault& fault) {
    log(std::string("fault ") + to_string(fault.kind) + " for " +
        std::to_string(std::chrono::duration_cast<milliseconds>(fault.duration).count()) + "ms");
    switch (fault.kind) {
      case FaultKind::kCut:
        for (auto& [id, connection] : connections_) cut(connection);
        break;
      case FaultKind::kBlackhole:
      case FaultKind::kNetworkDown:
        for (auto& [id, connection] : connections_) {
          blackhole(connection.id, connection.to_server, fault.duration, true);
          blackhole(connection.id, connection.to_client, fault.duration, false);
        }
        if (fault.kind == FaultKind::kNetworkDown)
          network_down_until_ = std::max(network_down_until_, now_ + fault.duration);
        break;
      case FaultKind::kOneWayBlackhole:
        for (auto& [id, connection] : connections_)
          blackhole(connection.id, connection.to_server, fault.duration, true);
        break;
      case FaultKind::kAddressChange:
        for (auto& [id, connection] : connections_) {
          connection.to_server.blackhole_forever = true;
          connection.to_client.blackhole_forever = true;
        }
        break;
      case FaultKind::kServerRestart:
        for (auto& [id, connection] : connections_) {
          connection.server_attached = false;  // the old process is gone; it hears nothing more
          cut(connection);
        }
        server_lost_sessions_ += server_->session_count();
        for (auto& stream : streams_) stream.server_known = false;
        server_ =
            std::make_unique<session::ServerEndpoint>(config_.session, static_key_, server_random_);
        break;
      case FaultKind::kClientSleep:
        client_asleep_until_ = std::max(client_asleep_until_, now_ + fault.duration);
        schedule(client_asleep_until_, [this] {
          if (client_asleep()) return;  // a later sleep extended this one
          log("client wakes");
          client_timer_at_.reset();
          auto inbox = std::move(sleep_inbox_);
          sleep_inbox_.clear();
          for (auto& [id, chunk] : inbox) deliver(id, false, std::move(chunk));
          on_client_timer();
        });
        break;
    }
    pump();
  }

  void blackhole(PathId id, Direction& direction, Duration duration, bool to_server) {
    const Time until = now_ + duration;
    if (until <= direction.blackhole_until) return;
    direction.blackhole_until = until;
    schedule(until, [this, id, to_server] { release_held(id, to_server); });
  }

  void release_held(PathId id, bool to_server) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    Direction& direction = to_server ? it->second.to_server : it->second.to_client;
    if (now_ < direction.blackhole_until || direction.blackhole_forever) return;
    while (!direction.held.empty()) {
      Chunk chunk = std::move(direction.held.front());
      direction.held.pop_front();
      transmit(id, direction, to_server, std::move(chunk));
    }
  }

  void cut(Connection& connection) {
    if (connection.broken) return;
    connection.broken = true;
    connection.to_server.held.clear();
    connection.to_client.held.clear();
    if (connection.client_attached) {
      connection.client_attached = false;
      client_->on_path_closed(connection.id, now_);
    }
    if (connection.server_attached) {
      connection.server_attached = false;
      server_->on_connection_closed(connection.id, now_);
    }
  }

  // ---- Transport ------------------------------------------------------------------------------

  void connect() {
    const Time ready = now_ + 2 * config_.latency + config_.connect_time;
    schedule(ready, [this] {
      if (client_asleep()) {  // the attempt completes when the process runs again
        schedule(client_asleep_until_, [this] { connect_now(); });
        return;
      }
      connect_now();
    });
  }

  void connect_now() {
    if (now_ < network_down_until_) {
      schedule(now_ + config_.connect_failure_time, [this] {
        log("connect failed");
        client_->on_path_failed(now_);
        pump();
      });
      return;
    }
    const PathId id = next_connection_id_++;
    ++result_.connections;
    Connection connection;
    connection.id = id;
    connections_.emplace(id, std::move(connection));
    std::array<std::byte, 32> keying{};
    world_random_.fill(keying);
    server_->accept(id, keying, now_);
    client_->add_path(id, keying, now_);
    log("connection " + std::to_string(id) + " up");
    pump();
  }

  void send(Connection& connection, bool to_server, Chunk chunk) {
    if (connection.broken) return;
    Direction& direction = to_server ? connection.to_server : connection.to_client;
    direction.in_flight += chunk.bytes.size();
    if (direction.blackhole_forever || now_ < direction.blackhole_until ||
        !direction.held.empty()) {
      direction.held.push_back(std::move(chunk));
      return;
    }
    transmit(connection.id, direction, to_server, std::move(chunk));
  }

  // Serialises the chunk onto the link in segments, so that the first bytes of a large write arrive
  // first (as they do over TCP) instead of all at once after the whole write was serialised.
  void transmit(PathId id, Direction& direction, bool to_server, Chunk chunk) {
    constexpr std::size_t kSegment = 4096;
    std::size_t offset = 0;
    do {
      Chunk segment;
      const std::size_t size = std::min(kSegment, chunk.bytes.size() - offset);
      segment.bytes.assign(chunk.bytes.begin() + static_cast<std::ptrdiff_t>(offset),
                           chunk.bytes.begin() + static_cast<std::ptrdiff_t>(offset + size));
      offset += size;
      segment.close_marker = chunk.close_marker && offset == chunk.bytes.size();
      const auto serialisation = std::chrono::duration_cast<Duration>(
          std::chrono::duration<double>(static_cast<double>(size) / config_.bytes_per_second));
      const Time depart = std::max(now_, direction.link_free_at) + serialisation;
      direction.link_free_at = depart;
      schedule(depart + config_.latency,
               [this, id, to_server, segment = std::move(segment)]() mutable {
                 deliver(id, to_server, std::move(segment));
               });
    } while (offset < chunk.bytes.size());
  }

  void deliver(PathId id, bool to_server, Chunk chunk) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    Connection& connection = it->second;
    if (!to_server && client_asleep()) {
      // The process is frozen: the kernel holds the bytes; they are read at wake-up, in order.
      sleep_inbox_.emplace_back(id, std::move(chunk));
      return;
    }
    Direction& direction = to_server ? connection.to_server : connection.to_client;
    direction.in_flight -= std::min(direction.in_flight, chunk.bytes.size());
    if (connection.broken) return;
    if (to_server) {
      if (!connection.server_attached) return;
      if (chunk.close_marker) {
        connection.server_attached = false;
        server_->on_connection_closed(id, now_);
      } else {
        server_->receive(id, chunk.bytes, now_);
      }
    } else {
      if (!connection.client_attached) return;
      if (chunk.close_marker) {
        connection.client_attached = false;
        client_->on_path_closed(id, now_);
      } else {
        client_->receive(id, chunk.bytes, now_);
      }
    }
    forget_if_finished(id);
    pump();
  }

  void forget_if_finished(PathId id) {
    auto it = connections_.find(id);
    if (it != connections_.end() && !it->second.client_attached && !it->second.server_attached &&
        it->second.to_server.held.empty() && it->second.to_client.held.empty()) {
      connections_.erase(it);
    }
  }

  // Flushes what the side still has for the connection, then closes it (FIN after the data).
  void close_side(PathId id, bool client_side) {
    auto it = connections_.find(id);
    if (it == connections_.end()) {
      if (client_side)
        client_->on_path_closed(id, now_);
      else
        server_->on_connection_closed(id, now_);
      return;
    }
    Connection& connection = it->second;
    bool& attached = client_side ? connection.client_attached : connection.server_attached;
    if (!attached) return;
    Chunk rest;
    if (client_side) {
      client_->take_outgoing(id, rest.bytes, SIZE_MAX, now_);
    } else {
      server_->take_outgoing(id, rest.bytes, SIZE_MAX, now_);
    }
    if (!rest.bytes.empty()) send(connection, client_side, std::move(rest));
    Chunk marker;
    marker.close_marker = true;
    send(connection, client_side, std::move(marker));
    attached = false;
    if (client_side) {
      client_->on_path_closed(id, now_);
    } else {
      server_->on_connection_closed(id, now_);
    }
    forget_if_finished(id);
  }

  // ---- Event handling -------------------------------------------------------------------------

  bool drain_client_events() {
    bool any = false;
    while (auto event = client_->poll_event()) {
      any = true;
      std::visit(
          [&](const auto& value) {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, events::Established>) {
              log("client established");
            } else if constexpr (std::is_same_v<T, events::Suspended>) {
              ++result_.client.suspensions;
              result_.client.suspend_causes.push_back(value.cause);
              log(std::string("client suspended: ") + session::to_string(value.cause));
            } else if constexpr (std::is_same_v<T, events::Resumed>) {
              ++result_.client.resumes;
              result_.client.resumed_events.push_back(value);
              log("client resumed after " +
                  std::to_string(std::chrono::duration_cast<milliseconds>(value.downtime).count()) +
                  "ms, replay " + std::to_string(value.bytes_replayed));
            } else if constexpr (std::is_same_v<T, events::Closed>) {
              result_.client.closed = value;
              log(std::string("client closed: ") + std::string(wire::to_string(value.reason)) +
                  (value.by_peer ? " by peer" : " locally") + ", unacknowledged " +
                  std::to_string(value.unacknowledged_bytes));
              check_closed_accounting(value, client_->stats(), "client");
            } else if constexpr (std::is_same_v<T, events::PathWanted>) {
              connect();
            } else if constexpr (std::is_same_v<T, events::PathDone>) {
              close_side(value.path, true);
            } else if constexpr (std::is_same_v<T, events::StreamReset>) {
              violation("client saw an unexpected stream reset on " + std::to_string(value.stream));
            } else if constexpr (std::is_same_v<T, events::StreamOpened>) {
              violation("client saw an unexpected server-opened stream " +
                        std::to_string(value.stream));
            }
          },
          *event);
    }
    return any;
  }

  bool drain_server_events() {
    bool any = false;
    while (auto tagged = server_->poll_event()) {
      any = true;
      session::Session* session = server_->find(tagged->session);
      std::visit(
          [&](const auto& value) {
            using T = std::decay_t<decltype(value)>;
            if constexpr (std::is_same_v<T, events::Established>) {
              log("server established");
              server_session_ = tagged->session;
            } else if constexpr (std::is_same_v<T, events::Suspended>) {
              ++result_.server.suspensions;
              log(std::string("server suspended: ") + session::to_string(value.cause));
            } else if constexpr (std::is_same_v<T, events::Resumed>) {
              ++result_.server.resumes;
              result_.server.resumed_events.push_back(value);
              log("server resumed, replay " + std::to_string(value.bytes_replayed));
            } else if constexpr (std::is_same_v<T, events::Closed>) {
              result_.server.closed = value;
              log(std::string("server closed: ") + std::string(wire::to_string(value.reason)) +
                  (value.by_peer ? " by peer" : " locally") + ", unacknowledged " +
                  std::to_string(value.unacknowledged_bytes));
              if (session != nullptr) {
                const auto stats = session->stats();
                check_closed_accounting(value, stats, "server");
                result_.server.bytes_written += stats.bytes_written;
                result_.server.bytes_acknowledged += stats.bytes_acknowledged;
              }
            } else if constexpr (std::is_same_v<T, events::PathDone>) {
              close_side(value.path, false);
            } else if constexpr (std::is_same_v<T, events::StreamOpened>) {
              const std::size_t index = (value.stream - 1) / 2;
              if (value.stream % 2 == 0 || index >= streams_.size()) {
                violation("server saw an unplanned stream " + std::to_string(value.stream));
              } else {
                streams_[index].server_known = true;
              }
            } else if constexpr (std::is_same_v<T, events::StreamReset>) {
              violation("server saw an unexpected stream reset on " + std::to_string(value.stream));
            }
          },
          tagged->event);
    }
    return any;
  }

  void check_closed_accounting(const events::Closed& closed, const session::SessionStats& stats,
                               const char* side) {
    if (closed.unacknowledged_bytes !=
        stats.bytes_written - stats.bytes_acknowledged - stats.bytes_abandoned) {
      violation(std::string(side) + " reported " + std::to_string(closed.unacknowledged_bytes) +
                " unacknowledged bytes but wrote " + std::to_string(stats.bytes_written) +
                " and had " + std::to_string(stats.bytes_acknowledged) + " acknowledged");
    }
    if (closed.reason == wire::Reason::kProtocolError ||
        closed.reason == wire::Reason::kAuthFailed) {
      violation(std::string(side) + " closed with " + std::string(wire::to_string(closed.reason)));
    }
  }

  // ---- Applications ---------------------------------------------------------------------------

  bool run_client_app() {
    if (client_->phase() != session::Phase::kOpen || client_asleep()) return false;
    bool any = false;
    for (auto& stream : streams_) {
      if (!stream.opened) {
        auto id = client_->open_stream(stream.plan.priority, now_);
        if (!id) break;
        if (*id != stream.id)
          violation("client stream id " + std::to_string(*id) + " != " + std::to_string(stream.id));
        stream.opened = true;
        any = true;
      }
      while (stream.client_written < stream.client_data.size()) {
        const std::size_t count =
            std::min(config_.app_write_chunk, stream.client_data.size() - stream.client_written);
        auto written = client_->write(
            stream.id, std::span(stream.client_data).subspan(stream.client_written, count), now_);
        if (!written) break;
        stream.client_written += *written;
        any = true;
      }
      if (stream.client_written == stream.client_data.size() && !stream.client_finished) {
        if (client_->finish(stream.id, now_)) {
          stream.client_finished = true;
          any = true;
        }
      }
      any |= read_stream(*client_, stream.id, stream.server_data, stream.client_read,
                         stream.client_saw_end, "client");
    }
    if (config_.close_when_done && !close_requested_ &&
        std::all_of(streams_.begin(), streams_.end(),
                    [](const StreamState& stream) { return stream.complete(); })) {
      close_requested_ = true;
      result_.all_streams_complete = true;
      log("all streams verified; client closes");
      client_->close(now_);
      any = true;
    }
    return any;
  }

  bool run_server_app() {
    session::Session* session = server_->find(server_session_);
    if (session == nullptr || session->phase() != session::Phase::kOpen) return false;
    bool any = false;
    for (auto& stream : streams_) {
      if (!stream.server_known) continue;
      while (stream.server_written < stream.server_data.size()) {
        const std::size_t count =
            std::min(config_.app_write_chunk, stream.server_data.size() - stream.server_written);
        auto written = session->write(
            stream.id, std::span(stream.server_data).subspan(stream.server_written, count), now_);
        if (!written) break;
        stream.server_written += *written;
        any = true;
      }
      if (stream.server_written == stream.server_data.size() && !stream.server_finished) {
        if (session->finish(stream.id, now_)) {
          stream.server_finished = true;
          any = true;
        }
      }
      any |= read_stream(*session, stream.id, stream.client_data, stream.server_read,
                         stream.server_saw_end, "server");
    }
    return any;
  }

  bool read_stream(session::Session& session, StreamId id, const std::vector<std::byte>& expected,
                   std::size_t& position, bool& saw_end, const char* side) {
    if (saw_end) return false;
    bool any = false;
    std::array<std::byte, 16384> buffer{};
    while (true) {
      auto result = session.read(id, buffer, now_);
      if (!result) return any;
      if (result->bytes > 0) {
        any = true;
        if (position + result->bytes > expected.size() ||
            std::memcmp(buffer.data(), expected.data() + position, result->bytes) != 0) {
          violation(std::string(side) + " read wrong bytes on stream " + std::to_string(id) +
                    " at offset " + std::to_string(position));
          saw_end = true;
          return true;
        }
        position += result->bytes;
        (std::string_view(side) == "client" ? result_.client : result_.server).bytes_delivered +=
            result->bytes;
      }
      if (result->finished) {
        if (position != expected.size()) {
          violation(std::string(side) + " saw the end of stream " + std::to_string(id) +
                    " early at " + std::to_string(position));
        }
        saw_end = true;
        return true;
      }
      if (result->bytes == 0) return any;
    }
  }

  // ---- The pump -------------------------------------------------------------------------------

  void pump() {
    for (int round = 0; round < 10000; ++round) {
      bool any = false;
      if (!client_asleep()) any |= drain_client_events();
      any |= drain_server_events();
      any |= run_client_app();
      any |= run_server_app();
      if (!client_asleep()) any |= drain_client_events();
      any |= drain_server_events();
      any |= flush_outputs();
      if (!any) break;
    }
    arm_timers();
  }

  bool flush_outputs() {
    bool any = false;
    std::vector<PathId> ids;
    for (const auto& [id, connection] : connections_) ids.push_back(id);
    for (PathId id : ids) {
      auto it = connections_.find(id);
      if (it == connections_.end()) continue;
      Connection& connection = it->second;
      if (connection.broken) continue;
      if (connection.client_attached && !client_asleep()) {
        const std::size_t room =
            config_.pipe_capacity - std::min(config_.pipe_capacity, connection.to_server.in_flight);
        if (room > 0) {
          Chunk chunk;
          if (client_->take_outgoing(id, chunk.bytes, room, now_) > 0) {
            send(connection, true, std::move(chunk));
            any = true;
          }
        }
      }
      if (connection.server_attached) {
        const std::size_t room =
            config_.pipe_capacity - std::min(config_.pipe_capacity, connection.to_client.in_flight);
        if (room > 0) {
          Chunk chunk;
          if (server_->take_outgoing(id, chunk.bytes, room, now_) > 0) {
            send(connection, false, std::move(chunk));
            any = true;
          }
        }
      }
    }
    return any;
  }

  void arm_timers() {
    const auto client_deadline = client_->next_deadline();
    if (client_deadline && !client_asleep() && client_timer_at_ != client_deadline) {
      client_timer_at_ = client_deadline;
      const std::uint64_t generation = ++client_timer_generation_;
      schedule(std::max(*client_deadline, now_), [this, generation] {
        if (generation != client_timer_generation_) return;
        client_timer_at_.reset();
        on_client_timer();
      });
    }
    const auto server_deadline = server_->next_deadline();
    if (server_deadline && server_timer_at_ != server_deadline) {
      server_timer_at_ = server_deadline;
      const std::uint64_t generation = ++server_timer_generation_;
      schedule(std::max(*server_deadline, now_), [this, generation] {
        if (generation != server_timer_generation_) return;
        server_timer_at_.reset();
        server_->on_timeout(now_);
        pump();
      });
    }
  }

  void on_client_timer() {
    if (client_asleep()) return;
    client_->on_timeout(now_);
    pump();
  }

  // ---- Final checks ---------------------------------------------------------------------------

  void finish_checks() {
    result_.end_time = now_;
    result_.elapsed = now_ - kStart;
    result_.finished = done();
    for (const auto& stream : streams_) {
      log("stream " + std::to_string(stream.id) + ": client wrote " +
          std::to_string(stream.client_written) + "/" + std::to_string(stream.client_data.size()) +
          (stream.client_finished ? " fin" : "") + ", server read " +
          std::to_string(stream.server_read) + (stream.server_saw_end ? " end" : "") +
          "; server wrote " + std::to_string(stream.server_written) + "/" +
          std::to_string(stream.server_data.size()) + (stream.server_finished ? " fin" : "") +
          ", client read " + std::to_string(stream.client_read) +
          (stream.client_saw_end ? " end" : ""));
    }
    {
      const auto& endpoint = server_->stats();
      log("server endpoint: accepted " + std::to_string(endpoint.connections_accepted) +
          " resumes accepted " + std::to_string(endpoint.resumes_accepted) + " rejected " +
          std::to_string(endpoint.resumes_rejected) + " resets " +
          std::to_string(endpoint.stateless_resets_sent) + " handshake failures " +
          std::to_string(endpoint.handshake_failures));
    }
    if (!result_.finished) {
      violation("did not finish within the time limit (client phase " +
                std::to_string(static_cast<int>(client_->phase())) + ", server sessions " +
                std::to_string(server_->session_count()) + ")");
    }
    const auto client_stats = client_->stats();
    result_.client.bytes_written = client_stats.bytes_written;
    result_.client.bytes_acknowledged = client_stats.bytes_acknowledged;
    result_.client.bytes_replayed = client_stats.bytes_replayed;
    result_.stateless_resets = server_->stats().stateless_resets_sent;
    const auto& closed = result_.client.closed;
    if (!closed) {
      violation("client never closed");
      return;
    }
    if (closed->reason == wire::Reason::kShutdown) {
      if (!result_.all_streams_complete) violation("graceful close before every stream completed");
      if (closed->unacknowledged_bytes != 0) violation("graceful close with unacknowledged bytes");
    }
    // Nothing the peer acknowledged may be missing at the receiving application.
    std::uint64_t server_delivered = 0;
    for (const auto& stream : streams_) server_delivered += stream.server_read;
    if (server_delivered + closed->unacknowledged_bytes < client_stats.bytes_written) {
      violation("server application got " + std::to_string(server_delivered) +
                " bytes, client wrote " + std::to_string(client_stats.bytes_written) + " with " +
                std::to_string(closed->unacknowledged_bytes) + " unacknowledged");
    }
    if (!result_.server.closed && server_lost_sessions_ == 0)
      violation("server session never closed");
  }

  SimulationConfig config_;
  SeededRandom world_random_;
  SeededRandom client_random_;
  SeededRandom server_random_;
  session::Secret static_key_{};
  Time now_{};
  std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<>> queue_;
  std::uint64_t next_sequence_ = 0;
  std::unique_ptr<session::ServerEndpoint> server_;
  std::unique_ptr<session::Session> client_;
  std::map<PathId, Connection> connections_;
  PathId next_connection_id_ = 1;
  std::vector<StreamState> streams_;
  std::deque<std::pair<PathId, Chunk>> sleep_inbox_;
  session::SessionId server_session_{};
  Time network_down_until_{};
  Time client_asleep_until_{};
  std::optional<Time> client_timer_at_;
  std::optional<Time> server_timer_at_;
  std::uint64_t client_timer_generation_ = 0;
  std::uint64_t server_timer_generation_ = 0;
  std::size_t server_lost_sessions_ = 0;
  bool close_requested_ = false;
  SimulationResult result_;
};

}  // namespace

const char* to_string(FaultKind kind) {
  switch (kind) {
    case FaultKind::kCut:
      return "cut";
    case FaultKind::kBlackhole:
      return "blackhole";
    case FaultKind::kOneWayBlackhole:
      return "one-way-blackhole";
    case FaultKind::kAddressChange:
      return "address-change";
    case FaultKind::kNetworkDown:
      return "network-down";
    case FaultKind::kServerRestart:
      return "server-restart";
    case FaultKind::kClientSleep:
      return "client-sleep";
  }
  return "unknown";
}

SimulationConfig default_config(std::uint64_t seed) {
  SimulationConfig config;
  config.seed = seed;
  config.session.heartbeat_interval = seconds(1);
  config.session.missing_heartbeats_allowed = 3;
  config.session.linger = seconds(20);
  config.session.handshake_timeout = seconds(3);
  config.session.reconnect_initial_backoff = milliseconds(100);
  config.session.reconnect_max_backoff = seconds(2);
  config.session.reconnect_limit = seconds(60);
  config.session.max_unacknowledged_bytes = 256u << 10;
  config.session.stream_receive_window = 128u << 10;
  return config;
}

SimulationConfig random_config(std::uint64_t seed) {
  SimulationConfig config = default_config(seed);
  SeededRandom random(seed ^ 0xfeedfacecafebeefULL);
  config.latency = milliseconds(random.uniform(1, 60));
  // 20 kB/s to 2 MB/s, log-uniform: transfers last long enough for faults to land in them.
  config.bytes_per_second =
      20e3 * std::pow(100.0, static_cast<double>(random.uniform(0, 1000)) / 1000.0);
  config.pipe_capacity = random.uniform(4, 256) << 10;
  const std::size_t stream_count = random.uniform(1, 4);
  for (std::size_t index = 0; index < stream_count; ++index) {
    StreamPlan plan;
    plan.priority = static_cast<std::uint8_t>(random.uniform(0, 3));
    plan.client_to_server = random.uniform(0, 96u << 10);
    plan.server_to_client = random.uniform(0, 96u << 10);
    config.streams.push_back(plan);
  }
  const std::size_t fault_count = random.uniform(0, 5);
  for (std::size_t index = 0; index < fault_count; ++index) {
    Fault fault;
    fault.at = milliseconds(random.uniform(0, 4000));
    const auto roll = random.uniform(0, 99);
    fault.kind = roll < 25   ? FaultKind::kCut
                 : roll < 45 ? FaultKind::kBlackhole
                 : roll < 57 ? FaultKind::kOneWayBlackhole
                 : roll < 70 ? FaultKind::kAddressChange
                 : roll < 82 ? FaultKind::kNetworkDown
                 : roll < 92 ? FaultKind::kClientSleep
                             : FaultKind::kServerRestart;
    // Short (below the heartbeat budget) or long (beyond it, sometimes beyond the linger time).
    fault.duration = random.chance(0.5) ? milliseconds(random.uniform(50, 2500))
                                        : milliseconds(random.uniform(4000, 30000));
    config.faults.push_back(fault);
  }
  return config;
}

SimulationResult run_simulation(const SimulationConfig& config) {
  return World(config).run();
}

}  // namespace tether::sim
