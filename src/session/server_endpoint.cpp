#include "session/server_endpoint.hpp"

#include <cassert>

#include "wire/codec.hpp"

namespace tether::session {

std::size_t first_frame_payload_limit(const SessionConfig& config) {
  constexpr std::size_t kFixedPart = 256;        // version, ids, proofs, capabilities
  constexpr std::size_t kPositionEntry = 2 * 8;  // stream id and offset, 8-byte varints at most
  return std::min(config.max_frame_payload,
                  kFixedPart + kPositionEntry * (2 * config.max_streams + 1));
}

ServerEndpoint::ServerEndpoint(SessionConfig config, const Secret& static_key, RandomSource& random,
                               ServerLimits limits)
    : config_(config),
      static_key_(static_key),
      random_(random),
      limits_(limits),
      budget_(limits.max_buffered_bytes) {}

void ServerEndpoint::accept(PathId connection, std::span<const std::byte> keying_material, Time now,
                            std::string_view source) {
  assert(!pending_.contains(connection) && !connection_sessions_.contains(connection));
  ++stats_.connections_accepted;
  PendingConnection pending;
  pending.source = source;
  pending.keying_material.assign(keying_material.begin(), keying_material.end());
  pending.deadline = now + config_.handshake_timeout;
  pending_.emplace(connection, std::move(pending));
}

void ServerEndpoint::receive(PathId connection, std::span<const std::byte> bytes, Time now) {
  if (auto routed = connection_sessions_.find(connection); routed != connection_sessions_.end()) {
    if (Session* session = find(routed->second)) session->receive(connection, bytes, now);
    return;
  }
  auto it = pending_.find(connection);
  if (it == pending_.end() || it->second.done) return;
  PendingConnection& pending = it->second;
  wire::DecodeLimits limits;
  limits.max_payload = first_frame_payload_limit(config_);
  limits.max_list_entries = std::max<std::size_t>(4096, 2 * config_.max_streams + 1);
  bool first_frame_seen = false;
  auto result = pending.inbound.feed(bytes, limits, [&](const wire::Frame& frame) {
    first_frame_seen = true;
    handle_first_frame(connection, pending, frame, now);
    return false;  // whatever follows belongs to the session (or is dropped)
  });
  if (!result) {
    ++stats_.handshake_failures;
    refuse(connection, pending, Reason::kProtocolError, false);
    return;
  }
  if (!first_frame_seen) return;
  std::vector<std::byte> rest = pending.inbound.release();
  if (auto routed = connection_sessions_.find(connection); routed != connection_sessions_.end()) {
    pending_.erase(it);
    if (Session* session = find(routed->second); session != nullptr && !rest.empty()) {
      session->receive(connection, rest, now);
    }
  }
}

void ServerEndpoint::handle_first_frame(PathId connection, PendingConnection& pending,
                                        const wire::Frame& frame, Time now) {
  if (const auto* hello = std::get_if<wire::Hello>(&frame)) {
    if (hello->version != wire::kProtocolVersion) {
      ++stats_.handshake_failures;
      refuse(connection, pending, Reason::kProtocolError, false);
      return;
    }
    if (!make_room(pending.source, now)) {
      ++stats_.sessions_refused;
      refuse(connection, pending, Reason::kLackOfResources, true);
      return;
    }
    const SessionId session_id = new_session_id();
    const Secret token = stateless_reset_token(static_key_, session_id);
    auto session =
        std::unique_ptr<Session>(new Session(config_, random_, now, session_id, connection,
                                             pending.keying_material, *hello, token, events_));
    session->suspended_index_ = &suspended_;
    session->budget_ = &budget_;
    sessions_.emplace(session_id, std::move(session));
    session_sources_.emplace(session_id, pending.source);
    ++sessions_per_source_[pending.source];
    connection_sessions_.emplace(connection, session_id);
    ++stats_.sessions_created;
    return;
  }
  if (const auto* resume = std::get_if<wire::Resume>(&frame)) {
    Session* session = find(resume->session_id);
    if (session == nullptr || session->phase() != Phase::kOpen) {
      // We have no such session (any more): say so with a token only we can make, so the client
      // stops.
      wire::encode_frame(
          wire::StatelessReset{resume->session_id,
                               stateless_reset_token(static_key_, resume->session_id)},
          pending.outgoing);
      ++stats_.stateless_resets_sent;
      finish_pending(connection, pending);
      return;
    }
    auto accepted = session->accept_resume(connection, pending.keying_material, *resume, now);
    if (!accepted) {
      ++stats_.resumes_rejected;
      refuse(connection, pending, accepted.error(), false);
      return;
    }
    ++stats_.resumes_accepted;
    connection_sessions_.emplace(connection, resume->session_id);
    return;
  }
  if (const auto* close = std::get_if<wire::FastClose>(&frame)) {
    Session* session = find(close->session_id);
    if (session != nullptr && session->accept_fast_close(*close, now)) {
      ++stats_.fast_closes_accepted;
    } else {
      ++stats_.fast_closes_rejected;
    }
    finish_pending(connection, pending);
    return;
  }
  ++stats_.handshake_failures;
  refuse(connection, pending, Reason::kProtocolError, false);
}

bool ServerEndpoint::make_room(const std::string& source, Time now) {
  // Sessions already closed and waiting for their connections to be reported do not count.
  collect_closed_sessions();
  const auto per_source = sessions_per_source_.find(source);
  const std::size_t from_source = per_source == sessions_per_source_.end() ? 0 : per_source->second;
  if (from_source >= limits_.max_sessions_per_source) {
    // Free this source's oldest suspended session, if it has one; another source's are not ours
    // to take.
    for (const auto& [since, id] : suspended_) {
      auto owner = session_sources_.find(id);
      if (owner != session_sources_.end() && owner->second == source) {
        if (Session* session = find(id)) evict(*session, now);
        break;
      }
    }
    collect_closed_sessions();
    const auto again = sessions_per_source_.find(source);
    if (again != sessions_per_source_.end() && again->second >= limits_.max_sessions_per_source)
      return false;
  }
  // Suspended sessions are freed to make room, both when the total is reached, when too many are
  // suspended (a flood of sessions opened and abandoned) and when the shared buffer budget is
  // spent (suspended sessions hold their replay buffers). The victim is the oldest suspended
  // session of the source that holds the most of them, so that a flood from a few addresses frees
  // its own sessions before anyone else's.
  while (!suspended_.empty() &&
         (sessions_.size() >= limits_.max_sessions ||
          suspended_.size() >= limits_.max_suspended_sessions || budget_.exhausted())) {
    Session* session = find(pick_eviction());
    if (session == nullptr) {
      suspended_.erase(suspended_.begin());  // cannot happen: sessions keep their entry current
      continue;
    }
    evict(*session, now);
    collect_closed_sessions();
  }
  if (budget_.exhausted()) return false;
  return sessions_.size() < limits_.max_sessions;
}

SessionId ServerEndpoint::pick_eviction() const {
  // One pass over the suspended sessions (bounded by max_suspended_sessions), made only when a
  // limit is reached.
  std::map<std::string_view, std::pair<std::size_t, SessionId>> by_source;  // count, oldest
  for (const auto& [since, id] : suspended_) {
    auto owner = session_sources_.find(id);
    const std::string_view source =
        owner == session_sources_.end() ? std::string_view{} : owner->second;
    auto [it, inserted] = by_source.try_emplace(source, 0, id);
    ++it->second.first;
  }
  const auto most = std::max_element(
      by_source.begin(), by_source.end(),
      [](const auto& left, const auto& right) { return left.second.first < right.second.first; });
  return most->second.second;
}

void ServerEndpoint::evict(Session& session, Time now) {
  ++stats_.sessions_evicted;
  // An Abort goes out on the session's connection if it still has one; a client that comes back
  // later is told by a stateless reset that the session is gone.
  session.fail_session(Reason::kLackOfResources, false, true, now, true);
}

void ServerEndpoint::refuse(PathId connection, PendingConnection& pending, Reason reason,
                            bool transient) {
  wire::encode_frame(wire::Refuse{reason, transient}, pending.outgoing);
  finish_pending(connection, pending);
}

void ServerEndpoint::finish_pending(PathId connection, PendingConnection& pending) {
  if (pending.done) return;
  pending.done = true;
  events_.push_back(SessionEvent{SessionId{}, events::PathDone{connection}});
}

void ServerEndpoint::on_connection_closed(PathId connection, Time now) {
  if (pending_.erase(connection) > 0) return;
  auto routed = connection_sessions_.find(connection);
  if (routed == connection_sessions_.end()) return;
  const SessionId session_id = routed->second;
  connection_sessions_.erase(routed);
  if (Session* session = find(session_id)) session->on_path_closed(connection, now);
  collect_closed_sessions();
}

std::size_t ServerEndpoint::take_outgoing(PathId connection, std::vector<std::byte>& out,
                                          std::size_t max_bytes, Time now) {
  if (auto it = pending_.find(connection); it != pending_.end()) {
    const std::size_t count = it->second.outgoing.size();
    out.insert(out.end(), it->second.outgoing.begin(), it->second.outgoing.end());
    it->second.outgoing.clear();
    return count;
  }
  auto routed = connection_sessions_.find(connection);
  if (routed == connection_sessions_.end()) return 0;
  Session* session = find(routed->second);
  return session == nullptr ? 0 : session->take_outgoing(connection, out, max_bytes, now);
}

bool ServerEndpoint::wants_input(PathId connection) const {
  auto routed = connection_sessions_.find(connection);
  if (routed == connection_sessions_.end()) return true;
  auto it = sessions_.find(routed->second);
  return it == sessions_.end() || it->second->wants_input(connection);
}

bool ServerEndpoint::is_pending(PathId connection) const {
  auto it = pending_.find(connection);
  return it != pending_.end() && !it->second.done;
}

std::optional<Time> ServerEndpoint::next_deadline() const {
  // Linear in sessions: 42 us with 1,000 idle sessions, 1.9 ms with 10,000 (session_benchmark
  // server_deadline_scan). A deadline heap fed by the sessions a call touched replaces it.
  std::optional<Time> earliest;
  for (const auto& [id, pending] : pending_) {
    if (!pending.done && (!earliest || pending.deadline < *earliest)) earliest = pending.deadline;
  }
  for (const auto& [id, session] : sessions_) {
    const auto deadline = session->next_deadline();
    if (deadline && (!earliest || *deadline < *earliest)) earliest = deadline;
  }
  return earliest;
}

void ServerEndpoint::on_timeout(Time now) {
  for (auto& [connection, pending] : pending_) {
    if (!pending.done && now >= pending.deadline) {
      ++stats_.handshake_failures;
      finish_pending(connection, pending);
    }
  }
  for (auto& [id, session] : sessions_) {
    const auto deadline = session->next_deadline();
    if (deadline && now >= *deadline) session->on_timeout(now);
  }
  collect_closed_sessions();
}

void ServerEndpoint::collect_closed_sessions() {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second->phase() == Phase::kClosed && it->second->path_count() == 0) {
      if (auto source = session_sources_.find(it->first); source != session_sources_.end()) {
        auto count = sessions_per_source_.find(source->second);
        if (count != sessions_per_source_.end() && --count->second == 0)
          sessions_per_source_.erase(count);
        session_sources_.erase(source);
      }
      it = sessions_.erase(it);
    } else {
      ++it;
    }
  }
}

std::optional<SessionEvent> ServerEndpoint::poll_event() {
  if (events_.empty()) {
    // Sessions whose writes waited for the shared budget are told when it has room again.
    for (Session* session : budget_.take_waiting()) session->announce_budget_room();
  }
  if (events_.empty()) {
    // A session ended by an application call (abort, fast close) with no connection left is freed
    // here.
    collect_closed_sessions();
    return std::nullopt;
  }
  SessionEvent event = std::move(events_.front());
  events_.pop_front();
  return event;
}

std::vector<SessionId> ServerEndpoint::session_ids() const {
  std::vector<SessionId> ids;
  ids.reserve(sessions_.size());
  for (const auto& [id, session] : sessions_) ids.push_back(id);
  return ids;
}

Session* ServerEndpoint::find(const SessionId& session_id) {
  auto it = sessions_.find(session_id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

SessionId ServerEndpoint::new_session_id() {
  SessionId id{};
  do {
    random_.fill(id);
  } while (sessions_.contains(id) || id == SessionId{});
  return id;
}

}  // namespace tether::session
