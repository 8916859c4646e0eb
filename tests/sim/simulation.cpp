#include "tests/sim/simulation.hpp"

#include <cassert>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>

#include "tests/support/session_pair.hpp"

namespace tether::sim {
namespace {

using session::Event;
using session::PathId;
using session::StreamId;
using testing::End;
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

// The simulated link under one of the pair's connections (which ends are still attached is the
// pair's).
struct Link {
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

// The world: the client and the server (a SessionPair, which answers PathWanted and PathDone
// through the hooks below), the links under its connections, the fault schedule and the two
// applications.
class World final : public testing::SessionPair {
 public:
  explicit World(const SimulationConfig& config)
      : SessionPair(config.session, config.session,
                    std::make_unique<SeededRandom>(config.seed * 3 + 1),
                    std::make_unique<SeededRandom>(config.seed * 5 + 2),
                    std::make_unique<SeededRandom>(config.seed * 0x100000001b3ULL + 7), kStart),
        config_(config) {
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
    for (const auto& fault : config_.faults) {
      schedule(kStart + fault.at, [this, fault] { inject(fault); });
    }
    settle();
    const Time limit = kStart + config_.time_limit;
    while (!queue_.empty() && !done()) {
      auto item = queue_.top();
      queue_.pop();
      if (item.at > limit) break;
      now = std::max(now, item.at);
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
                  std::chrono::duration<double>(now - kStart).count());
    result_.log += prefix + line + "\n";
  }

  void violation(const std::string& text) {
    log("VIOLATION " + text);
    result_.violations.push_back(text);
  }

  [[nodiscard]] bool client_asleep() const { return now < client_asleep_until_; }

  [[nodiscard]] bool done() const {
    return client.phase() == session::Phase::kClosed && server.session_count() == 0;
  }

  // ---- Faults ---------------------------------------------------------------------------------

  void inject(const Fault& fault) {
    log(std::string("fault ") + to_string(fault.kind) + " for " +
        std::to_string(std::chrono::duration_cast<milliseconds>(fault.duration).count()) + "ms");
    switch (fault.kind) {
      case FaultKind::kCut:
        for (auto& [id, link] : links_) cut(id, link);
        break;
      case FaultKind::kBlackhole:
      case FaultKind::kNetworkDown:
        for (auto& [id, link] : links_) {
          blackhole(id, link.to_server, fault.duration, true);
          blackhole(id, link.to_client, fault.duration, false);
        }
        if (fault.kind == FaultKind::kNetworkDown)
          network_down_until_ = std::max(network_down_until_, now + fault.duration);
        break;
      case FaultKind::kOneWayBlackhole:
        for (auto& [id, link] : links_) blackhole(id, link.to_server, fault.duration, true);
        break;
      case FaultKind::kAddressChange:
        for (auto& [id, link] : links_) {
          link.to_server.blackhole_forever = true;
          link.to_client.blackhole_forever = true;
        }
        break;
      case FaultKind::kServerRestart:
        server_lost_sessions_ += server.session_count();
        restart_server();  // the old process is gone; it hears nothing more
        for (auto& [id, link] : links_) cut(id, link);
        for (auto& stream : streams_) stream.server_known = false;
        break;
      case FaultKind::kClientSleep:
        client_asleep_until_ = std::max(client_asleep_until_, now + fault.duration);
        schedule(client_asleep_until_, [this] {
          if (client_asleep()) return;  // a later sleep extended this one
          log("client wakes");
          client_timer_at_.reset();
          auto inbox = std::move(sleep_inbox_);
          sleep_inbox_.clear();
          for (auto& [id, chunk] : inbox) arrive(id, false, std::move(chunk));
          on_client_timer();
        });
        break;
    }
    settle();
  }

  void blackhole(PathId id, Direction& direction, Duration duration, bool to_server) {
    const Time until = now + duration;
    if (until <= direction.blackhole_until) return;
    direction.blackhole_until = until;
    schedule(until, [this, id, to_server] { release_held(id, to_server); });
  }

  void release_held(PathId id, bool to_server) {
    auto it = links_.find(id);
    if (it == links_.end()) return;
    Direction& direction = to_server ? it->second.to_server : it->second.to_client;
    if (now < direction.blackhole_until || direction.blackhole_forever) return;
    while (!direction.held.empty()) {
      Chunk chunk = std::move(direction.held.front());
      direction.held.pop_front();
      transmit(id, direction, to_server, std::move(chunk));
    }
  }

  void cut(PathId id, Link& link) {
    if (link.broken) return;
    link.broken = true;
    link.to_server.held.clear();
    link.to_client.held.clear();
    close_connection(id);  // both ends still attached are told
  }

  // ---- Transport ------------------------------------------------------------------------------

  // PathWanted: the attempt completes after the handshake's round trips.
  void on_path_wanted() override {
    const Time ready = now + 2 * config_.latency + config_.connect_time;
    schedule(ready, [this] {
      if (client_asleep()) {  // the attempt completes when the process runs again
        schedule(client_asleep_until_, [this] { connect_now(); });
        return;
      }
      connect_now();
    });
  }

  void connect_now() {
    if (now < network_down_until_) {
      schedule(now + config_.connect_failure_time, [this] {
        log("connect failed");
        client.on_path_failed(now);
        settle();
      });
      return;
    }
    const PathId id = open_connection();
    ++result_.connections;
    links_.emplace(id, Link{});
    log("connection " + std::to_string(id) + " up");
    settle();
  }

  void send(PathId id, Link& link, bool to_server, Chunk chunk) {
    if (link.broken) return;
    Direction& direction = to_server ? link.to_server : link.to_client;
    direction.in_flight += chunk.bytes.size();
    if (direction.blackhole_forever || now < direction.blackhole_until || !direction.held.empty()) {
      direction.held.push_back(std::move(chunk));
      return;
    }
    transmit(id, direction, to_server, std::move(chunk));
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
      const Time depart = std::max(now, direction.link_free_at) + serialisation;
      direction.link_free_at = depart;
      schedule(depart + config_.latency,
               [this, id, to_server, segment = std::move(segment)]() mutable {
                 arrive(id, to_server, std::move(segment));
               });
    } while (offset < chunk.bytes.size());
  }

  void arrive(PathId id, bool to_server, Chunk chunk) {
    auto it = links_.find(id);
    if (it == links_.end()) return;
    Link& link = it->second;
    if (!to_server && client_asleep()) {
      // The process is frozen: the kernel holds the bytes; they are read at wake-up, in order.
      sleep_inbox_.emplace_back(id, std::move(chunk));
      return;
    }
    Direction& direction = to_server ? link.to_server : link.to_client;
    direction.in_flight -= std::min(direction.in_flight, chunk.bytes.size());
    if (link.broken) return;
    const End to = to_server ? End::kServer : End::kClient;
    if (!is_attached(to, id)) return;
    if (chunk.close_marker) {
      detach(to, id);
    } else {
      deliver(to, id, chunk.bytes);
    }
    forget_if_finished(id);
    settle();
  }

  void forget_if_finished(PathId id) {
    auto it = links_.find(id);
    if (it != links_.end() && !is_attached(End::kClient, id) && !is_attached(End::kServer, id) &&
        it->second.to_server.held.empty() && it->second.to_client.held.empty()) {
      links_.erase(it);
    }
  }

  // PathDone: flushes what the side still has for the connection, then closes its end (the FIN
  // follows the data over the link).
  void on_path_done(End end, PathId id) override {
    auto it = links_.find(id);
    if (it == links_.end()) {
      detach(end, id);
      return;
    }
    if (!is_attached(end, id)) return;
    const bool client_side = end == End::kClient;
    Chunk rest;
    take(end, id, rest.bytes, SIZE_MAX);
    if (!rest.bytes.empty()) send(id, it->second, client_side, std::move(rest));
    Chunk marker;
    marker.close_marker = true;
    send(id, it->second, client_side, std::move(marker));
    detach(end, id);
    forget_if_finished(id);
  }

  // ---- Event handling -------------------------------------------------------------------------

  void on_client_event(const Event& event) override {
    std::visit(
        [&](const auto& value) {
          using T = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<T, events::Established>) {
            log("client established");
          } else if constexpr (std::is_same_v<T, events::Suspended>) {
            ++result_.client.suspensions;
            result_.client.suspend_causes.push_back(value.cause);
            result_.client.suspended_at.push_back(now - kStart);
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
            check_closed_accounting(value, client.stats(), "client");
          } else if constexpr (std::is_same_v<T, events::StreamReset>) {
            violation("client saw an unexpected stream reset on " + std::to_string(value.stream));
          } else if constexpr (std::is_same_v<T, events::StreamOpened>) {
            violation("client saw an unexpected server-opened stream " +
                      std::to_string(value.stream));
          }
        },
        event);
  }

  void on_server_event(const session::SessionEvent& tagged) override {
    session::Session* session = server.find(tagged.session);
    std::visit(
        [&](const auto& value) {
          using T = std::decay_t<decltype(value)>;
          if constexpr (std::is_same_v<T, events::Established>) {
            log("server established");
            server_session_ = tagged.session;
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
        tagged.event);
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
    if (client.phase() != session::Phase::kOpen || client_asleep()) return false;
    bool any = false;
    for (auto& stream : streams_) {
      if (!stream.opened) {
        auto id = client.open_stream(stream.plan.priority, now);
        if (!id) break;
        if (*id != stream.id)
          violation("client stream id " + std::to_string(*id) + " != " + std::to_string(stream.id));
        stream.opened = true;
        any = true;
      }
      while (stream.client_written < stream.client_data.size()) {
        const std::size_t count =
            std::min(config_.app_write_chunk, stream.client_data.size() - stream.client_written);
        auto written = client.write(
            stream.id, std::span(stream.client_data).subspan(stream.client_written, count), now);
        if (!written) break;
        stream.client_written += *written;
        any = true;
      }
      if (stream.client_written == stream.client_data.size() && !stream.client_finished) {
        if (client.finish(stream.id, now)) {
          stream.client_finished = true;
          any = true;
        }
      }
      any |= read_stream(client, stream.id, stream.server_data, stream.client_read,
                         stream.client_saw_end, "client");
    }
    if (config_.close_when_done && !close_requested_ &&
        std::all_of(streams_.begin(), streams_.end(),
                    [](const StreamState& stream) { return stream.complete(); })) {
      close_requested_ = true;
      result_.all_streams_complete = true;
      log("all streams verified; client closes");
      client.close(now);
      any = true;
    }
    return any;
  }

  bool run_server_app() {
    session::Session* session = server.find(server_session_);
    if (session == nullptr || session->phase() != session::Phase::kOpen) return false;
    bool any = false;
    for (auto& stream : streams_) {
      if (!stream.server_known) continue;
      while (stream.server_written < stream.server_data.size()) {
        const std::size_t count =
            std::min(config_.app_write_chunk, stream.server_data.size() - stream.server_written);
        auto written = session->write(
            stream.id, std::span(stream.server_data).subspan(stream.server_written, count), now);
        if (!written) break;
        stream.server_written += *written;
        any = true;
      }
      if (stream.server_written == stream.server_data.size() && !stream.server_finished) {
        if (session->finish(stream.id, now)) {
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
      auto result = session.read(id, buffer, now);
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

  // Runs events, applications and outputs until nothing changes, then arms the timers.
  void settle() {
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
    for (const auto& [id, link] : links_) ids.push_back(id);
    for (PathId id : ids) {
      auto it = links_.find(id);
      if (it == links_.end()) continue;
      Link& link = it->second;
      if (link.broken) continue;
      if (!client_asleep()) {
        const std::size_t room =
            config_.pipe_capacity - std::min(config_.pipe_capacity, link.to_server.in_flight);
        if (room > 0) {
          Chunk chunk;
          if (take(End::kClient, id, chunk.bytes, room) > 0) {
            send(id, link, true, std::move(chunk));
            any = true;
          }
        }
      }
      const std::size_t room =
          config_.pipe_capacity - std::min(config_.pipe_capacity, link.to_client.in_flight);
      if (room > 0) {
        Chunk chunk;
        if (take(End::kServer, id, chunk.bytes, room) > 0) {
          send(id, link, false, std::move(chunk));
          any = true;
        }
      }
    }
    return any;
  }

  void arm_timers() {
    const auto client_deadline = client.next_deadline();
    if (client_deadline && !client_asleep() && client_timer_at_ != client_deadline) {
      client_timer_at_ = client_deadline;
      const std::uint64_t generation = ++client_timer_generation_;
      schedule(std::max(*client_deadline, now), [this, generation] {
        if (generation != client_timer_generation_) return;
        client_timer_at_.reset();
        on_client_timer();
      });
    }
    const auto server_deadline = server.next_deadline();
    if (server_deadline && server_timer_at_ != server_deadline) {
      server_timer_at_ = server_deadline;
      const std::uint64_t generation = ++server_timer_generation_;
      schedule(std::max(*server_deadline, now), [this, generation] {
        if (generation != server_timer_generation_) return;
        server_timer_at_.reset();
        server.on_timeout(now);
        settle();
      });
    }
  }

  void on_client_timer() {
    if (client_asleep()) return;
    client.on_timeout(now);
    settle();
  }

  // ---- Final checks ---------------------------------------------------------------------------

  void finish_checks() {
    result_.end_time = now;
    result_.elapsed = now - kStart;
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
      const auto& endpoint = server.stats();
      log("server endpoint: accepted " + std::to_string(endpoint.connections_accepted) +
          " resumes accepted " + std::to_string(endpoint.resumes_accepted) + " rejected " +
          std::to_string(endpoint.resumes_rejected) + " resets " +
          std::to_string(endpoint.stateless_resets_sent) + " handshake failures " +
          std::to_string(endpoint.handshake_failures));
    }
    if (!result_.finished) {
      violation("did not finish within the time limit (client phase " +
                std::to_string(static_cast<int>(client.phase())) + ", server sessions " +
                std::to_string(server.session_count()) + ")");
    }
    const auto client_stats = client.stats();
    result_.client.bytes_written = client_stats.bytes_written;
    result_.client.bytes_acknowledged = client_stats.bytes_acknowledged;
    result_.client.bytes_replayed = client_stats.bytes_replayed;
    result_.stateless_resets = server.stats().stateless_resets_sent;
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
  std::priority_queue<Scheduled, std::vector<Scheduled>, std::greater<>> queue_;
  std::uint64_t next_sequence_ = 0;
  std::map<PathId, Link> links_;
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
