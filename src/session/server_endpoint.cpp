#include "session/server_endpoint.hpp"

#include <algorithm>
#include <cassert>
#include <utility>

#include "crypto/primitives.hpp"
#include "wire/codec.hpp"

namespace tether::session {

std::size_t first_frame_payload_limit(const SessionConfig& config) {
  constexpr std::size_t kFixedPart = 256;        // version, ids, proofs, capabilities
  constexpr std::size_t kPositionEntry = 2 * 8;  // stream id and offset, 8-byte varints at most
  const std::size_t resume = kFixedPart + kPositionEntry * (2 * config.max_streams + 1);
  const std::size_t hello = kFixedPart + config.max_authentication_message;
  return std::min(config.max_frame_payload, std::max(resume, hello));
}

namespace {

// A key for the throttles' hashes that strangers cannot know: derived from the static key.
std::uint64_t throttle_hash_key(const Secret& static_key, std::string_view label) {
  const crypto::Digest digest = crypto::hmac_sha256(static_key, {crypto::label(label)});
  std::uint64_t key = 0;
  for (std::size_t index = 0; index < 8; ++index) {
    key = (key << 8) | static_cast<std::uint8_t>(digest[index]);
  }
  return key;
}

std::string seconds_text(Duration duration) {
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(duration).count();
  return std::to_string(seconds) + " s";
}

}  // namespace

ServerEndpoint::ServerEndpoint(SessionConfig config, const Secret& static_key, RandomSource& random,
                               ServerLimits limits)
    : config_(config),
      static_key_(static_key),
      random_(random),
      limits_(limits),
      budget_(limits.max_buffered_bytes),
      source_throttle_(limits.source_throttle,
                       throttle_hash_key(static_key, "tether throttle source")),
      user_throttle_(limits.user_throttle, throttle_hash_key(static_key, "tether throttle user")) {}

void ServerEndpoint::accept(PathId connection, std::span<const std::byte> keying_material, Time now,
                            std::string_view source) {
  ConnectionSecurity security;
  security.keying_material.assign(keying_material.begin(), keying_material.end());
  accept(connection, std::move(security), now, source);
}

void ServerEndpoint::accept(PathId connection, ConnectionSecurity security, Time now,
                            std::string_view source) {
  assert(!pending_.contains(connection) && !connection_sessions_.contains(connection));
  ++stats_.connections_accepted;
  PendingConnection pending;
  pending.source = source;
  pending.security = std::move(security);
  pending.deadline = now + config_.handshake_timeout;
  const bool full = pending_.size() >= limits_.max_pending_connections;
  auto [it, inserted] = pending_.emplace(connection, std::move(pending));
  if (full) {
    // Too many handshakes in progress: refuse this one at once rather than hold its bytes.
    ++stats_.pending_connections_refused;
    refuse(connection, it->second, Reason::kLackOfResources, true,
           "too many connections are handshaking; try again later");
    return;
  }
  pending_deadlines_.set(connection, it->second.deadline);
}

void ServerEndpoint::receive(PathId connection, std::span<const std::byte> bytes, Time now) {
  refresh();
  if (auto routed = connection_sessions_.find(connection); routed != connection_sessions_.end()) {
    if (Session* session = find(routed->second)) session->receive(connection, bytes, now);
    refresh();
    return;
  }
  auto it = pending_.find(connection);
  if (it == pending_.end() || it->second.done) return;
  PendingConnection& pending = it->second;
  wire::DecodeLimits limits;
  limits.max_payload = first_frame_payload_limit(config_);
  limits.max_list_entries = std::max<std::size_t>(4096, 2 * config_.max_streams + 1);
  bool handshake_over = false;
  auto result = pending.inbound.feed(bytes, limits, [&](const wire::Frame& frame) {
    if (handle_pending_frame(connection, pending, frame, now)) return true;
    handshake_over = true;
    return false;  // whatever follows belongs to the session (or is dropped)
  });
  if (!result) {
    if (!pending.done) {
      ++stats_.handshake_failures;
      refuse(connection, pending, Reason::kProtocolError, false);
    }
    return;
  }
  if (!handshake_over) return;
  std::vector<std::byte> rest = pending.inbound.release();
  if (auto routed = connection_sessions_.find(connection); routed != connection_sessions_.end()) {
    pending_deadlines_.erase(connection);
    pending_.erase(it);
    if (Session* session = find(routed->second); session != nullptr && !rest.empty()) {
      session->receive(connection, rest, now);
    }
  }
  refresh();
}

std::string ServerEndpoint::offered_mechanisms() const {
  std::string text;
  if (authenticator_ == nullptr) return text;
  for (const std::string& mechanism : authenticator_->mechanisms()) {
    if (!text.empty()) text += ", ";
    text += mechanism;
  }
  return text;
}

void ServerEndpoint::handle_hello(PathId connection, PendingConnection& pending,
                                  const wire::Hello& hello, Time now) {
  if (hello.version != wire::kProtocolVersion) {
    ++stats_.handshake_failures;
    refuse(connection, pending, Reason::kProtocolError, false,
           "unsupported protocol version " + std::to_string(hello.version));
    return;
  }
  if (authenticator_ != nullptr) {
    pending.authenticating = true;
    pending.mechanism = hello.mechanism.substr(0, 64);  // a peer string, for the refusal report
  }
  if (authenticator_ == nullptr) {
    // No authentication (--auth none): whatever the client offered, the session is anonymous.
    // The Welcome says so, and a client that requires authentication ends it.
    create_session(connection, pending, hello, AuthenticatedPeer{}, {}, now);
    return;
  }
  if (hello.mechanism.empty()) {
    ++stats_.authentication_failures;
    refuse(connection, pending, Reason::kAuthFailed, false,
           "this server requires authentication; it offers " + offered_mechanisms());
    return;
  }
  if (hello.initial_response &&
      hello.initial_response->size() > config_.max_authentication_message) {
    ++stats_.authentication_failures;
    refuse(connection, pending, Reason::kAuthFailed, false,
           "authentication message too large (at most " +
               std::to_string(config_.max_authentication_message) + " bytes)");
    return;
  }
  if (source_throttle_.throttled(pending.source, now)) {
    ++stats_.authentications_throttled;
    refuse(connection, pending, Reason::kAuthFailed, true,
           "too many failed authentications from this address; retry in " +
               seconds_text(source_throttle_.retry_after(pending.source, now)));
    return;
  }
  // The attempt counts from now, taken back only if it succeeds: attempts run in parallel and
  // exchanges abandoned before their verdict count too.
  source_throttle_.record_failure(pending.source, now);
  pending.authentication = authenticator_->start(hello.mechanism, pending.security);
  if (pending.authentication == nullptr) {
    ++stats_.authentication_failures;
    refuse(connection, pending, Reason::kAuthFailed, false,
           "mechanism not offered on this connection; this server offers " + offered_mechanisms());
    return;
  }
  if (deferred_work_enabled_) pending.authentication->allow_deferral();
  pending.hello = hello;
  std::optional<std::span<const std::byte>> initial;
  if (hello.initial_response) initial = std::span<const std::byte>(*hello.initial_response);
  apply_authentication_step(connection, pending, pending.authentication->start(initial), now);
}

void ServerEndpoint::apply_authentication_step(PathId connection, PendingConnection& pending,
                                               AuthenticationStep step, Time now) {
  if (pending.claimed_identity.empty() && !step.claimed_identity.empty()) {
    // The first time the exchange names a user: a user past its limit is refused whatever the
    // step says, so right and wrong credentials get the same answer; otherwise the attempt counts
    // against the user from now on (taken back on success).
    pending.claimed_identity = step.claimed_identity;
    if (user_throttle_.throttled(pending.claimed_identity, now)) {
      ++stats_.authentications_throttled;
      const Duration wait = user_throttle_.retry_after(pending.claimed_identity, now);
      pending.authentication.reset();
      refuse(connection, pending, Reason::kAuthFailed, true,
             "too many failed authentications for this user; retry in " + seconds_text(wait));
      return;
    }
    user_throttle_.record_failure(pending.claimed_identity, now);
  }
  switch (step.status) {
    case AuthenticationStep::Status::kContinue:
      if (step.deferred != nullptr) {
        if (!deferred_work_enabled_) {  // a mechanism that broke the contract: never wait forever
          ++stats_.authentication_failures;
          pending.authentication.reset();
          refuse(connection, pending, Reason::kAuthFailed, true,
                 "authentication could not be completed");
          return;
        }
        // Nothing is sent: the runtime runs the work and calls complete_deferred.
        ++stats_.authentications_deferred;
        if (deferred_.size() >= limits_.max_pending_connections) {
          std::erase_if(deferred_,
                        [](const DeferredAuthentication& entry) { return entry.work.expired(); });
        }
        pending.deferred = std::move(step.deferred);
        deferred_.push_back(DeferredAuthentication{connection, pending.deferred});
        return;
      }
      if (step.output.size() > config_.max_authentication_message) {
        ++stats_.authentication_failures;
        pending.authentication.reset();
        refuse(connection, pending, Reason::kAuthFailed, false, "authentication message too large");
        return;
      }
      wire::encode_frame(wire::AuthChallenge{std::move(step.output)}, pending.outgoing);
      ready_connections_.insert(connection);  // the runtime flushes only connections listed ready
      return;
    case AuthenticationStep::Status::kFailed: {
      ++stats_.authentication_failures;  // already counted in the throttles when it started
      pending.authentication.reset();
      const bool transient = step.failure == AuthenticationFailure::kUnavailable;
      // The message names the mechanism (the mechanisms usually do so themselves).
      std::string message =
          step.message.empty() ? std::string(to_string(step.failure)) : std::move(step.message);
      if (pending.hello && !message.starts_with(pending.hello->mechanism)) {
        message = pending.hello->mechanism + ": " + message;
      }
      refuse(connection, pending, reason_for(step.failure), transient, std::move(message));
      return;
    }
    case AuthenticationStep::Status::kSucceeded: {
      ++stats_.authentications_succeeded;
      pending.authenticating = false;
      source_throttle_.refund(pending.source, now);
      user_throttle_.refund(pending.claimed_identity, now);
      AuthenticatedPeer peer;
      peer.principal = std::move(step.principal);
      peer.mechanism = pending.hello->mechanism;
      peer.scopes = std::move(step.scopes);
      peer.credential_id = std::move(step.credential_id);
      if (step.credential_lifetime) {
        if (*step.credential_lifetime < config_.minimum_lifetime()) {
          // Expired at login: refused, never read as "no expiry" (KAFKA-13848). One about to
          // expire is refused too: its session could not be renewed in time.
          ++stats_.authentication_failures;
          pending.authentication.reset();
          refuse(connection, pending, Reason::kCredentialsExpired, false,
                 pending.hello->mechanism +
                     (*step.credential_lifetime <= Duration::zero()
                          ? ": the credential has already expired"
                          : ": the credential expires in less than " +
                                std::to_string(std::chrono::ceil<std::chrono::seconds>(
                                                   config_.minimum_lifetime())
                                                   .count()) +
                                " s"));
          return;
        }
        peer.credential_expiry = now + *step.credential_lifetime;
      }
      pending.authentication.reset();
      const wire::Hello hello = std::move(*pending.hello);
      pending.hello.reset();
      create_session(connection, pending, hello, std::move(peer), step.output, now);
      return;
    }
  }
}

void ServerEndpoint::create_session(PathId connection, PendingConnection& pending,
                                    const wire::Hello& hello, AuthenticatedPeer peer,
                                    std::span<const std::byte> server_final, Time now) {
  if (!make_room(pending.source, now)) {
    ++stats_.sessions_refused;
    refuse(connection, pending, Reason::kLackOfResources, true);
    return;
  }
  const SessionId session_id = new_session_id();
  const Secret token = stateless_reset_token(static_key_, session_id);
  const bool authenticated = !peer.mechanism.empty();
  auto session = std::unique_ptr<Session>(new Session(config_, random_, now, session_id, connection,
                                                      pending.security, hello, token, events_,
                                                      std::move(peer), server_final));
  session->suspended_index_ = &suspended_;
  session->budget_ = &budget_;
  session->server_authenticator_ = &authenticator_;
  session->endpoint_stats_ = &stats_;
  if (authenticated && !session->may_reauthenticate()) {
    ++stats_.authentications_without_reauthentication;
  }
  SessionTable::Entry& entry = sessions_.insert(session_id, std::move(session), pending.source);
  entry.connections.push_back(connection);
  sessions_.touch(entry);
  connection_sessions_.emplace(connection, session_id);
  ++stats_.sessions_created;
}

bool ServerEndpoint::handle_pending_frame(PathId connection, PendingConnection& pending,
                                          const wire::Frame& frame, Time now) {
  if (pending.deferred != nullptr) {
    // The client waits for the verdict (Welcome or Refuse) before it sends anything more.
    ++stats_.handshake_failures;
    ++stats_.authentication_failures;
    pending.authentication.reset();
    refuse(connection, pending, Reason::kProtocolError, false,
           "a frame arrived while the credentials were being verified");
    return false;
  }
  if (pending.authentication != nullptr) {
    // Mid-exchange: only the client's next answer belongs here.
    const auto* response = std::get_if<wire::AuthResponse>(&frame);
    if (response == nullptr) {
      ++stats_.handshake_failures;
      ++stats_.authentication_failures;
      pending.authentication.reset();
      refuse(connection, pending, Reason::kProtocolError, false,
             "expected an authentication response");
      return false;
    }
    if (response->data.size() > config_.max_authentication_message) {
      ++stats_.authentication_failures;
      pending.authentication.reset();
      refuse(connection, pending, Reason::kAuthFailed, false,
             "authentication message too large (at most " +
                 std::to_string(config_.max_authentication_message) + " bytes)");
      return false;
    }
    apply_authentication_step(connection, pending, pending.authentication->step(response->data),
                              now);
    return pending.authentication != nullptr && !pending.done;
  }
  if (const auto* hello = std::get_if<wire::Hello>(&frame)) {
    handle_hello(connection, pending, *hello, now);
    return pending.authentication != nullptr && !pending.done;
  }
  if (const auto* resume = std::get_if<wire::Resume>(&frame)) {
    SessionTable::Entry* entry = lookup(resume->session_id);
    Session* session = entry == nullptr ? nullptr : entry->session.get();
    if (session == nullptr || session->phase() != Phase::kOpen) {
      if (!wire::has(config_.capabilities, wire::Capability::kStatelessReset)) {
        // We offer no stateless reset, so no client trusts one: say so plainly (the client ends its
        // session with unknown-session instead of trying until its reconnect limit).
        ++stats_.resumes_rejected;
        refuse(connection, pending, Reason::kUnknownSession, false);
        return false;
      }
      // We have no such session (any more): say so with a token only we can make, so the client
      // stops.
      wire::encode_frame(
          wire::StatelessReset{resume->session_id,
                               stateless_reset_token(static_key_, resume->session_id)},
          pending.outgoing);
      ++stats_.stateless_resets_sent;
      finish_pending(connection, pending);
      return false;
    }
    sessions_.touch(*entry);
    auto accepted = session->accept_resume(connection, pending.security, *resume, now);
    if (!accepted) {
      ++stats_.resumes_rejected;
      refuse(connection, pending, accepted.error(), false);
      return false;
    }
    ++stats_.resumes_accepted;
    entry->connections.push_back(connection);
    connection_sessions_.emplace(connection, resume->session_id);
    return false;
  }
  if (const auto* close = std::get_if<wire::FastClose>(&frame)) {
    Session* session = find(close->session_id);
    if (session != nullptr && session->accept_fast_close(*close, now)) {
      ++stats_.fast_closes_accepted;
    } else {
      ++stats_.fast_closes_rejected;
    }
    finish_pending(connection, pending);
    return false;
  }
  ++stats_.handshake_failures;
  refuse(connection, pending, Reason::kProtocolError, false);
  return false;
}

bool ServerEndpoint::make_room(const std::string& source, Time now) {
  // Sessions already closed and waiting for their connections to be reported do not count.
  refresh();
  collect_closed_sessions();
  if (sessions_.count_from(source) >= limits_.max_sessions_per_source) {
    // Free this source's oldest suspended session, if it has one; another source's are not ours
    // to take.
    for (const auto& [since, id] : suspended_) {
      const SessionTable::Entry* owner = lookup(id);
      if (owner != nullptr && owner->source == source) {
        evict(*owner->session, now);
        break;
      }
    }
    refresh();
    collect_closed_sessions();
    if (sessions_.count_from(source) >= limits_.max_sessions_per_source) return false;
  }
  // Suspended sessions are freed to make room, both when the total is reached, when too many are
  // suspended (a flood of sessions opened and abandoned) and when the shared buffer budget is
  // spent (suspended sessions hold their replay buffers). The victim is the oldest suspended
  // session of the source that holds the most of them, so that a flood from a few addresses frees
  // its own sessions before anyone else's.
  while (!suspended_.empty() &&
         (sessions_.open_count() >= limits_.max_sessions ||
          suspended_.size() >= limits_.max_suspended_sessions || budget_.exhausted())) {
    SessionTable::Entry* victim = lookup(pick_eviction());
    if (victim == nullptr) {
      suspended_.erase(suspended_.begin());  // cannot happen: sessions keep their entry current
      continue;
    }
    evict(*victim->session, now);
    refresh();
    collect_closed_sessions();
  }
  if (budget_.exhausted()) return false;
  return sessions_.open_count() < limits_.max_sessions;
}

SessionId ServerEndpoint::pick_eviction() const {
  // One pass over the suspended sessions (bounded by max_suspended_sessions), made only when a
  // limit is reached.
  std::map<std::string_view, std::pair<std::size_t, SessionId>> by_source;  // count, oldest
  for (const auto& [since, id] : suspended_) {
    const SessionTable::Entry* owner = sessions_.find(id);
    const std::string_view source = owner == nullptr ? std::string_view{} : owner->source;
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
  if (SessionTable::Entry* entry = lookup(session.id())) sessions_.touch(*entry);
  // An Abort goes out on the session's connection if it still has one; a client that comes back
  // later is told by a stateless reset that the session is gone.
  session.fail_session(Reason::kLackOfResources, false, true, now, true);
}

bool ServerEndpoint::revoke(SessionTable::Entry& entry, Time now, std::string_view message) {
  Session& session = *entry.session;
  if (session.phase() == Phase::kClosed) return false;
  ++stats_.sessions_revoked;
  sessions_.touch(entry);
  // Like a credential's expiry: an Abort on the live connection, then Closed(revoked) here.
  session.fail_session(
      Reason::kRevoked, false, false, now, true,
      message.empty() ? std::string("revoked by the operator") : std::string(message));
  return true;
}

std::size_t ServerEndpoint::revoke_matching(
    const std::function<bool(const AuthenticatedPeer&)>& matches, Time now,
    std::string_view message) {
  refresh();
  std::size_t revoked = 0;
  for (const SessionId& id : sessions_.ids()) {
    SessionTable::Entry* entry = lookup(id);
    if (entry == nullptr || entry->session->phase() == Phase::kClosed) continue;
    ++stats_.sessions_visited;
    if (!matches(entry->session->peer())) continue;
    if (revoke(*entry, now, message)) ++revoked;
  }
  refresh();
  collect_closed_sessions();
  return revoked;
}

std::size_t ServerEndpoint::revoke_principal(std::string_view principal, Time now,
                                             std::string_view message) {
  if (principal.empty()) return 0;
  return revoke_matching(
      [principal](const AuthenticatedPeer& peer) { return peer.principal == principal; }, now,
      message);
}

std::size_t ServerEndpoint::revoke_credential(std::string_view credential_id, Time now,
                                              std::string_view message) {
  if (credential_id.empty()) return 0;
  return revoke_matching(
      [credential_id](const AuthenticatedPeer& peer) {
        return peer.credential_id == credential_id;
      },
      now, message);
}

bool ServerEndpoint::revoke_session(const SessionId& session_id, Time now,
                                    std::string_view message) {
  refresh();
  SessionTable::Entry* entry = lookup(session_id);
  const bool revoked = entry != nullptr && revoke(*entry, now, message);
  refresh();
  collect_closed_sessions();
  return revoked;
}

void ServerEndpoint::refuse(PathId connection, PendingConnection& pending, Reason reason,
                            bool transient, std::string message) {
  pending.deferred.reset();  // work not yet started is skipped (its weak pointer expires)
  if (pending.authenticating && !pending.done && refusal_observer_) {
    pending.authenticating = false;
    refusal_observer_(AuthenticationRefusal{connection, pending.source, pending.mechanism,
                                            pending.claimed_identity, reason, transient, message});
  }
  wire::encode_frame(wire::Refuse{reason, transient, std::move(message)}, pending.outgoing);
  finish_pending(connection, pending);
}

void ServerEndpoint::take_deferred_work(std::vector<DeferredAuthentication>& out) {
  out.clear();
  for (DeferredAuthentication& entry : deferred_) {
    if (!entry.work.expired()) out.push_back(std::move(entry));
  }
  deferred_.clear();
}

void ServerEndpoint::complete_deferred(PathId connection, const DeferredWork& work, Time now) {
  refresh();
  auto it = pending_.find(connection);
  if (it == pending_.end() || it->second.done || it->second.deferred.get() != &work ||
      it->second.authentication == nullptr) {
    return;  // closed, timed out or refused meanwhile: the result is dropped
  }
  PendingConnection& pending = it->second;
  pending.deferred.reset();
  apply_authentication_step(connection, pending, pending.authentication->resume(), now);
  if (connection_sessions_.contains(connection)) {
    // Routed, as at the end of receive(): a partial frame already held belongs to the session.
    std::vector<std::byte> rest = pending.inbound.release();
    const SessionId session_id = connection_sessions_.at(connection);
    pending_deadlines_.erase(connection);
    pending_.erase(it);
    if (Session* session = find(session_id); session != nullptr && !rest.empty()) {
      session->receive(connection, rest, now);
    }
  }
  refresh();
}

void ServerEndpoint::refuse_deferred(PathId connection, const DeferredWork& work) {
  auto it = pending_.find(connection);
  if (it == pending_.end() || it->second.done || it->second.deferred.get() != &work) return;
  // The attempt stays counted in the throttles (taken back only on success), like any abandoned
  // one: a flood of PLAIN logins that fills the pool slows its own sources.
  ++stats_.authentications_refused_busy;
  it->second.authentication.reset();
  refuse(connection, it->second, Reason::kLackOfResources, true,
         "server busy verifying credentials; retry");
}

void ServerEndpoint::finish_pending(PathId connection, PendingConnection& pending) {
  if (pending.done) return;
  pending.done = true;
  pending_deadlines_.erase(connection);
  events_.push_back(SessionEvent{SessionId{}, events::PathDone{connection}});
}

void ServerEndpoint::on_connection_closed(PathId connection, Time now) {
  refresh();
  if (pending_.erase(connection) > 0) {
    pending_deadlines_.erase(connection);
    ready_connections_.erase(connection);  // a challenge it was never sent
    return;
  }
  auto routed = connection_sessions_.find(connection);
  if (routed == connection_sessions_.end()) return;
  const SessionId session_id = routed->second;
  connection_sessions_.erase(routed);
  ready_connections_.erase(connection);
  if (SessionTable::Entry* entry = lookup(session_id)) {
    std::erase(entry->connections, connection);
    sessions_.touch(*entry);
    entry->session->on_path_closed(connection, now);
  }
  refresh();
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
  refresh();
  auto routed = connection_sessions_.find(connection);
  if (routed == connection_sessions_.end()) return 0;
  Session* session = find(routed->second);
  const std::size_t count =
      session == nullptr ? 0 : session->take_outgoing(connection, out, max_bytes, now);
  refresh();
  return count;
}

bool ServerEndpoint::wants_input(PathId connection) const {
  auto routed = connection_sessions_.find(connection);
  if (routed == connection_sessions_.end()) return true;
  const SessionTable::Entry* entry = sessions_.find(routed->second);
  return entry == nullptr || entry->session->wants_input(connection);
}

bool ServerEndpoint::is_pending(PathId connection) const {
  auto it = pending_.find(connection);
  return it != pending_.end() && !it->second.done;
}

std::optional<Time> ServerEndpoint::next_deadline() {
  refresh();
  const auto sessions = session_deadlines_.earliest();
  const auto pending = pending_deadlines_.earliest();
  if (!sessions) return pending;
  if (!pending) return sessions;
  return std::min(*sessions, *pending);
}

void ServerEndpoint::on_timeout(Time now) {
  refresh();
  for (const PathId connection : pending_deadlines_.take_due(now)) {
    ++stats_.pending_connections_visited;
    auto it = pending_.find(connection);
    if (it != pending_.end() && !it->second.done) {
      ++stats_.handshake_failures;
      if (it->second.authentication != nullptr) {
        ++stats_.authentication_failures;
        it->second.authentication.reset();
        refuse(connection, it->second, Reason::kAuthFailed, true,
               "authentication did not finish within " + seconds_text(config_.handshake_timeout));
      } else {
        finish_pending(connection, it->second);
      }
    }
  }
  // Each due session runs its timeout once per call, and is re-read afterwards (refresh): one whose
  // deadline stays due runs again at the next call, not in a loop here.
  for (const SessionId& id : session_deadlines_.take_due(now)) {
    SessionTable::Entry* entry = lookup(id);
    if (entry == nullptr) continue;
    ++stats_.sessions_visited;
    sessions_.touch(*entry);
    entry->session->on_timeout(now);
  }
  refresh();
  collect_closed_sessions();
}

void ServerEndpoint::refresh() {
  if (sessions_.touched_count() == 0) return;
  sessions_.take_touched(touched_scratch_);
  for (const SessionId& id : touched_scratch_) {
    SessionTable::Entry* entry = lookup(id);
    if (entry == nullptr) continue;
    ++stats_.sessions_visited;
    const Session& session = *entry->session;
    session_deadlines_.set(id, session.next_deadline());
    if (session.phase() == Phase::kClosed) {
      sessions_.mark_closed(*entry);  // frees its slot in the limits at once
      if (session.path_count() == 0) collectable_.push_back(id);
    }
    for (const PathId connection : entry->connections) {
      if (session.has_outgoing(connection)) ready_connections_.insert(connection);
    }
  }
}

void ServerEndpoint::collect_closed_sessions() {
  if (collectable_.empty()) return;
  for (const SessionId& id : std::exchange(collectable_, {})) {
    const SessionTable::Entry* entry = lookup(id);
    if (entry == nullptr) continue;  // listed twice
    ++stats_.sessions_visited;
    // A closed session does not open again and gains no connection (Resume needs it open).
    assert(entry->session->phase() == Phase::kClosed && entry->session->path_count() == 0);
    for (const PathId connection : entry->connections) ready_connections_.erase(connection);
    stats_.freed_sessions.add(entry->session->stats());
    session_deadlines_.erase(id);
    sessions_.erase(id);
  }
}

std::optional<SessionEvent> ServerEndpoint::poll_event() {
  refresh();
  if (events_.empty()) {
    // Sessions whose writes waited for the shared budget are told when it has room again.
    for (Session* session : budget_.take_waiting()) {
      if (SessionTable::Entry* entry = lookup(session->id())) sessions_.touch(*entry);
      session->announce_budget_room();
    }
    refresh();
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

void ServerEndpoint::take_ready_connections(std::vector<PathId>& out) {
  refresh();
  out.assign(ready_connections_.begin(), ready_connections_.end());
  ready_connections_.clear();
}

std::vector<SessionId> ServerEndpoint::session_ids() const {
  return sessions_.ids();
}

Session* ServerEndpoint::find(const SessionId& session_id) {
  SessionTable::Entry* entry = sessions_.find(session_id);
  if (entry == nullptr) return nullptr;
  sessions_.touch(*entry);  // the caller may change it: re-read at the next call
  return entry->session.get();
}

const Session* ServerEndpoint::find(const SessionId& session_id) const {
  const SessionTable::Entry* entry = sessions_.find(session_id);
  return entry == nullptr ? nullptr : entry->session.get();
}

std::vector<PathId> ServerEndpoint::connections_of(const SessionId& session_id) const {
  const SessionTable::Entry* entry = sessions_.find(session_id);
  return entry == nullptr ? std::vector<PathId>{} : entry->connections;
}

SessionId ServerEndpoint::new_session_id() {
  SessionId id{};
  do {
    random_.fill(id);
  } while (sessions_.contains(id) || id == SessionId{});
  return id;
}

}  // namespace tether::session
