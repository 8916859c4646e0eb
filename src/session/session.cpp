// Session: construction, the transport entry points, frame dispatch, establishment and resumption.
// Streams are in session_streams.cpp, paths, liveness and ending in session_paths.cpp, timers in
// session_timers.cpp; each mechanism's state lives in its own part (see session.hpp).
#include "session/session.hpp"

#include <algorithm>
#include <cassert>

#include "crypto/primitives.hpp"
#include "session/overloaded.hpp"
#include "session/session_lifetime.hpp"
#include "wire/codec.hpp"

namespace tether::session {
namespace {

std::uint64_t to_milliseconds(Duration duration) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<milliseconds>(duration).count());
}

}  // namespace

const char* to_string(SuspendCause cause) {
  switch (cause) {
    case SuspendCause::kHeartbeatTimeout:
      return "heartbeat-timeout";
    case SuspendCause::kAcknowledgementStall:
      return "acknowledgement-stall";
    case SuspendCause::kTransportClosed:
      return "transport-closed";
    case SuspendCause::kNetworkChange:
      return "network-change";
  }
  return "unknown";
}

const char* to_string(StreamError error) {
  switch (error) {
    case StreamError::kWouldBlock:
      return "would block: unacknowledged-bytes bound reached";
    case StreamError::kUnknownStream:
      return "unknown or ended stream";
    case StreamError::kStreamFinished:
      return "stream already finished for writing";
    case StreamError::kNotOpen:
      return "session not open for writing";
    case StreamError::kTooManyStreams:
      return "too many streams";
    case StreamError::kLifetimePassed:
      return "the session's lifetime passed; no new stream before it re-authenticates";
  }
  return "unknown";
}

// ---- Construction ------------------------------------------------------------------------------

Session::Session(SessionConfig config, RandomSource& random, Time now)
    : role_(Role::kClient),
      config_(config),
      random_(random),
      heartbeat_(config.proposed_heartbeat()),
      lifecycle_(Role::kClient, config, now),
      streams_(Role::kClient, stats_),
      scheduler_(config.max_data_frame_payload),
      acks_(config),
      stream_opens_(config.max_stream_opens_per_second, config.max_streams, now) {
  request_path(now);
  refresh_timers();
}

Session::Session(SessionConfig config, RandomSource& random, Time now, const SessionId& session_id,
                 PathId path, const ConnectionSecurity& security, const wire::Hello& hello,
                 const Secret& reset_token, std::deque<SessionEvent>& queue, AuthenticatedPeer peer,
                 std::span<const std::byte> server_final)
    : role_(Role::kServer),
      config_(config),
      random_(random),
      queue_(&queue),
      session_id_(session_id),
      capabilities_(hello.capabilities & config.capabilities),
      peer_(std::move(peer)),
      // Negotiate liveness: the client proposes, the server clamps into its policy.
      heartbeat_(heartbeat_policy::negotiate(hello.heartbeat_interval_ms,
                                             hello.missing_heartbeats_allowed,
                                             config.heartbeat_bounds())),
      lifecycle_(Role::kServer, config, now),
      streams_(Role::kServer, stats_),
      scheduler_(config.max_data_frame_payload),
      acks_(config),
      stream_opens_(config.max_stream_opens_per_second, config.max_streams, now) {
  const std::span<const std::byte> keying_material = security.keying_material;
  remember_connection(security, now);
  resume_.establish(session_id_, keying_material);
  Path& created = paths_.add(path, PathState::kActive, keying_material, heartbeat_, now, role_);
  paths_.set_data_path(path);
  ++stats_.paths_opened;
  wire::Welcome welcome;
  welcome.capabilities = capabilities_;
  welcome.session_id = session_id_;
  welcome.heartbeat_interval_ms = to_milliseconds(heartbeat_.interval);
  welcome.missing_heartbeats_allowed = heartbeat_.missing_allowed;
  // What was not negotiated is not used: without resume the session ends with its connection (it
  // lingers for nothing), and without stateless reset the client gets no token to trust.
  welcome.linger_ms = may_resume() ? to_milliseconds(config_.linger) : 0;
  if (trusts_stateless_reset()) welcome.reset_token = reset_token;
  welcome.authenticated = !peer_.mechanism.empty();
  welcome.principal = peer_.principal;
  welcome.server_final.assign(server_final.begin(), server_final.end());
  const std::optional<Duration> lifetime = start_lifetime(now);
  if (welcome.authenticated) welcome.session_lifetime_ms = lifetime::to_wire(lifetime);
  queue_frame(created, welcome);
  emit(events::Established{session_id_});
  refresh_timers();
}

Session::~Session() {
  if (budget_ != nullptr) {
    budget_->update(budget_held_, 0);
    budget_->forget(this);
  }
}

// ---- Transport ---------------------------------------------------------------------------------

void Session::add_path(PathId path_id, std::span<const std::byte> keying_material, Time now) {
  ConnectionSecurity security;
  security.keying_material.assign(keying_material.begin(), keying_material.end());
  add_path(path_id, security, now);
}

void Session::add_path(PathId path_id, const ConnectionSecurity& security, Time now) {
  const std::span<const std::byte> keying_material = security.keying_material;
  const TimerRefresh refresh(*this);
  assert(role_ == Role::kClient);
  lifecycle_.set_attempt_in_flight(false);
  if (lifecycle_.closed() || paths_.contains(path_id) || (lifecycle_.open() && !may_resume())) {
    emit(events::PathDone{path_id});
    return;
  }
  ++stats_.paths_opened;
  // One handshake at a time: a newer connection supersedes a pending attempt. Two resumes in flight
  // could both be accepted by the server from the same secret and leave the two ratchets apart.
  for (auto& [id, other] : paths_) {
    if (other.handshaking()) retire_path(other);
  }
  const bool connecting = phase() == Phase::kConnecting;
  Path& path = paths_.add(path_id, connecting ? PathState::kHelloSent : PathState::kResumeSent,
                          keying_material, heartbeat_, now, role_);
  handshake_connection_.emplace(security, now);
  handshake_connection_->first.keying_material.clear();
  path.handshake_deadline = now + config_.handshake_timeout;
  if (connecting) {
    wire::Hello hello;
    hello.capabilities = offered_capabilities();
    hello.heartbeat_interval_ms = to_milliseconds(config_.heartbeat_interval);
    hello.missing_heartbeats_allowed = config_.missing_heartbeats_allowed;
    authentication_.reset();
    if (config_.authenticator != nullptr) {
      authentication_ = config_.authenticator->start(security);
      AuthenticationStep step =
          authentication_ == nullptr
              ? AuthenticationStep::fail(AuthenticationFailure::kUnavailable,
                                         "no credential usable on this connection (passwords and "
                                         "tokens are sent only over TLS)")
              : authentication_->start();
      if (step.status != AuthenticationStep::Status::kContinue) {
        // The credential cannot be used (an unreadable token file, a failing token command):
        // nothing is sent, and the session ends saying why.
        authentication_.reset();
        retire_path(path);
        fail_session(Reason::kAuthFailed, false, false, now, false, std::move(step.message));
        return;
      }
      hello.mechanism = authentication_->mechanism();
      hello.initial_response = std::move(step.output);
      authentication_path_ = path_id;
    }
    reauthentication_.request_sent = now;
    queue_frame(path, hello);
    return;
  }
  wire::Resume resume;
  resume.session_id = session_id_;
  resume.proof = resume_.client_proof(session_id_, keying_material);
  resume.received = streams_.receive_positions();
  queue_frame(path, resume);
  lifecycle_.on_resume_sent();
  // Optimistic replay: send what the server has not acknowledged right behind the Resume, so
  // resuming costs no round trip; the server discards what it already has.
  switch_data_path(path_id, now);
}

void Session::on_path_failed(Time now) {
  const TimerRefresh refresh(*this);
  lifecycle_.set_attempt_in_flight(false);
  if (lifecycle_.closed()) return;
  request_path(now);
}

void Session::on_path_network_change(PathId path_id, Time now) {
  const TimerRefresh refresh(*this);
  if (role_ != Role::kClient || !lifecycle_.open()) return;
  Path* path = paths_.find(path_id);
  if (path == nullptr || path->state != PathState::kActive) return;
  // As if heartbeats had failed, without waiting for them: the path becomes suspect (kept, and
  // used again if it answers first) and a new connection is attempted at once.
  path->liveness.mark_suspect();
  lifecycle_.backoff().on_success();
  lifecycle_.cancel_waiting_attempt();
  if (paths_.is_data_path(path_id) && !suspended()) {
    on_data_path_lost(SuspendCause::kNetworkChange, now);
  } else {
    request_path(now);
  }
}

void Session::on_network_available(Time now) {
  const TimerRefresh refresh(*this);
  if (role_ != Role::kClient || lifecycle_.closed()) return;
  if (!suspended() && phase() != Phase::kConnecting) return;
  lifecycle_.hurry_waiting_attempt(now);  // the waiting attempt starts at the next timeout
}

void Session::receive(PathId path_id, std::span<const std::byte> bytes, Time now) {
  const TimerRefresh refresh(*this);
  Path* found = paths_.find(path_id);
  if (found == nullptr || lifecycle_.closed()) return;
  Path& path = *found;
  if (path.state == PathState::kDone) return;
  path.liveness.on_inbound(now);
  if (role_ == Role::kServer && suspended() && paths_.is_data_path(path_id)) mark_resumed(now);
  // A lifetime that ended before these bytes is applied before them, even if its timer has not
  // run yet (the runtime may read before it handles due timers).
  if (role_ == Role::kServer) catch_up_lifetime(now);
  if (lifecycle_.closed()) return;

  const std::uint64_t unacknowledged_before = streams_.unacknowledged_bytes();
  auto result = path.inbound.feed_streaming(
      bytes, decode_limits(),
      [&](const wire::Frame& frame) { return handle_frame(path, frame, now); },
      [&](const StreamDataPart& part) { return handle_stream_data_part(path, part, now); });
  if (!result && path.state != PathState::kDone && !lifecycle_.closed()) {
    if (path.state == PathState::kActive) {
      protocol_error(now);
    } else {
      attempt_failed(path, now);
    }
  }
  apply_deferred_failure();
  if (!lifecycle_.open()) return;
  streams_.release_finished([&](StreamId id) { drop_stream(id); });
  maybe_send_close(now);
  check_graceful_completion(now);
  announce_writable(unacknowledged_before);
  apply_deferred_failure();
  check_stream_bookkeeping();
}

void Session::on_path_closed(PathId path_id, Time now) {
  const TimerRefresh refresh(*this);
  Path* path = paths_.find(path_id);
  if (path == nullptr) return;
  const bool was_handshake = path->handshaking();
  const bool already_done = path->state == PathState::kDone;
  const bool was_data_path = paths_.erase(path_id);
  if (lifecycle_.closed() || already_done) return;
  if (lifecycle_.close_handshake().crossed()) {
    finish_session(events::Closed{Reason::kShutdown,
                                  !lifecycle_.close_handshake().initiated_locally, false, 0});
    return;
  }
  if (was_handshake) {
    if (role_ == Role::kClient) {
      lifecycle_.on_resume_attempt_over();
      // A failed attempt: fall back to a still-active path if the failed one carried the data.
      if (was_data_path) fall_back_to_active_path(now);
      request_path(now);
    }
    return;
  }
  if (!was_data_path) return;
  if (Path* active = paths_.first_active(true)) {
    switch_data_path(active->id, now);
    return;
  }
  on_data_path_lost(SuspendCause::kTransportClosed, now);
}

std::size_t Session::take_outgoing(PathId path_id, std::vector<std::byte>& out,
                                   std::size_t max_bytes, Time now) {
  const TimerRefresh refresh(*this);
  Path* path = paths_.find(path_id);
  if (path == nullptr) return 0;
  const std::size_t start = out.size();
  out.insert(out.end(), path->outgoing.begin(), path->outgoing.end());
  path->outgoing.clear();
  const bool carries_data = path->state == PathState::kActive ||
                            (role_ == Role::kClient && path->state == PathState::kResumeSent);
  if (lifecycle_.open() && paths_.is_data_path(path_id) && carries_data) {
    // Pending acknowledgements ride along with anything else going out; alone only when due.
    const bool control_only = holding_data();
    if (out.size() > start || acks_.due(now) || SendScheduler::has_frames(streams_, control_only))
      write_ack_frame(out);
    const std::size_t used = out.size() - start;
    if (used < max_bytes) {
      std::size_t written = 0;
      if (scheduler_.write(streams_, out, max_bytes - used, stats_, written, control_only) ==
          SendScheduler::Outcome::kInvariantFailed)
        invariant_failed();
    }
    update_ack_progress(false, now);
  }
  if (deferred_failure_) {
    // The Abort goes out on this connection with what was already taken.
    apply_deferred_failure();
    out.insert(out.end(), path->outgoing.begin(), path->outgoing.end());
    path->outgoing.clear();
  }
  check_stream_bookkeeping();
  return out.size() - start;
}

bool Session::has_outgoing(PathId path_id) const {
  const Path* path = paths_.find(path_id);
  if (path == nullptr) return false;
  if (!path->outgoing.empty()) return true;
  if (!lifecycle_.open() || !paths_.is_data_path(path_id)) return false;
  // Delayed acknowledgements count once on_timeout() found them due.
  if (acks_.due_now()) return true;
  return SendScheduler::has_frames(streams_, holding_data());
}

bool Session::wants_input(PathId path_id) const {
  const Path* path = paths_.find(path_id);
  if (path == nullptr) return true;
  return path->outgoing.size() < config_.max_queued_bytes;
}

// ---- Frames ------------------------------------------------------------------------------------

bool Session::handle_frame(Path& path, const wire::Frame& frame, Time now) {
  if (path.state == PathState::kDone || lifecycle_.closed()) return false;
  if (path.handshaking()) return handle_handshake_frame(path, frame, now);
  std::visit(Overloaded{
                 [&](const wire::Ping& ping) { handle_ping(path, ping, now); },
                 [&](const wire::Pong& pong) { handle_pong(path, pong, now); },
                 [&](const wire::Ack& ack) { handle_ack(ack, now); },
                 [&](const wire::StreamData& data) {
                   handle_stream_data(data, data.offset + data.data.size(), true, now);
                 },
                 [&](const wire::Abort& abort) {
                   fail_session(abort.reason, true, abort.transient, now, false, abort.message);
                 },
                 [&](const wire::FastClose& close) { handle_fast_close(close, now); },
                 [&](const wire::StatelessReset& reset) { handle_stateless_reset(reset, now); },
                 [&](const wire::Ignored&) {},
                 [&](const auto&) { protocol_error(now); },
             },
             frame);
  return lifecycle_.open() && path.state == PathState::kActive && !deferred_failure_;
}

void Session::handle_ping(Path& path, const wire::Ping& ping, Time now) {
  queue_frame(path, wire::Pong{ping.sequence});
  path.liveness.on_peer_ping(now);
  // The peer's Ping stands for ours (see heartbeat_policy::own_ping_period), so the once-per-
  // interval pool trim of send_heartbeat() happens here too.
  if (paths_.is_data_path(path.id)) streams_.trim_pool();
}

void Session::handle_pong(Path& path, const wire::Pong& pong, Time now) {
  if (const auto sample = path.liveness.on_pong(pong.sequence, now)) {
    rtt_.add_sample(*sample);
    if (paths_.is_data_path(path.id)) update_ack_progress(true, now);
  }
}

void Session::handle_fast_close(const wire::FastClose& close, Time now) {
  if (has(capabilities_, wire::Capability::kFastClose) &&
      crypto::constant_time_equal(close.session_id, session_id_) &&
      crypto::constant_time_equal(close.key, resume_.own_close_key(role_))) {
    fail_session(close.reason, true, false, now, false);
  } else {
    ++stats_.forged_frames_ignored;
  }
}

void Session::handle_stateless_reset(const wire::StatelessReset& reset, Time now) {
  if (role_ == Role::kClient && trusts_stateless_reset() &&
      resume_.reset_matches(reset.session_id, session_id_, reset.token)) {
    fail_session(Reason::kUnknownSession, true, false, now, false);
  } else {
    ++stats_.forged_frames_ignored;
  }
}

bool Session::handle_handshake_frame(Path& path, const wire::Frame& frame, Time now) {
  if (const auto* refuse = std::get_if<wire::Refuse>(&frame)) {
    if (path.id == authentication_path_) authentication_.reset();
    if (refuse->transient) {
      last_refusal_ = refuse->message;
      attempt_failed(path, now);
    } else {
      fail_session(refuse->reason, true, false, now, false, refuse->message);
    }
    return false;
  }
  if (const auto* reset = std::get_if<wire::StatelessReset>(&frame)) {
    if (lifecycle_.open() && trusts_stateless_reset() &&
        resume_.reset_matches(reset->session_id, session_id_, reset->token)) {
      fail_session(Reason::kUnknownSession, true, false, now, false);
    } else {
      ++stats_.forged_frames_ignored;
      attempt_failed(path, now);
    }
    return false;
  }
  if (path.state == PathState::kHelloSent) {
    if (const auto* challenge = std::get_if<wire::AuthChallenge>(&frame)) {
      return handle_auth_challenge(path, *challenge, now);
    }
    const auto* welcome = std::get_if<wire::Welcome>(&frame);
    if (welcome == nullptr) {
      attempt_failed(path, now);
      return false;
    }
    return handle_welcome(path, *welcome, now);
  }
  // kResumeSent: only a ResumeAccept with the server's proof moves the session here.
  const auto* accept = std::get_if<wire::ResumeAccept>(&frame);
  if (accept == nullptr) {
    attempt_failed(path, now);
    return false;
  }
  return handle_resume_accept(path, *accept, now);
}

bool Session::handle_welcome(Path& path, const wire::Welcome& welcome, Time now) {
  if (welcome.version != wire::kProtocolVersion || welcome.heartbeat_interval_ms == 0 ||
      welcome.missing_heartbeats_allowed == 0) {
    attempt_failed(path, now);
    return false;
  }
  if (!accept_welcome_authentication(welcome, now)) return false;
  adopt_handshake_connection();
  last_refusal_.clear();  // refusals before this success say nothing about what comes later
  session_id_ = welcome.session_id;
  resume_.establish(session_id_, path.keying_material);
  resume_.set_reset_token(welcome.reset_token);
  capabilities_ = welcome.capabilities & offered_capabilities();
  // A hostile server must not make us heartbeat every microsecond, or overflow a conversion: its
  // figures are clamped into our own bounds.
  heartbeat_ =
      heartbeat_policy::negotiate(welcome.heartbeat_interval_ms, welcome.missing_heartbeats_allowed,
                                  config_.heartbeat_bounds());
  path.liveness.restart(heartbeat_, now);
  path.state = PathState::kActive;
  path.handshake_deadline.reset();
  lifecycle_.on_established();
  switch_data_path(path.id, now);
  emit(events::Established{session_id_});
  if (welcome.authenticated) accept_lifetime(welcome.session_lifetime_ms, now);
  return true;
}

bool Session::handle_auth_challenge(Path& path, const wire::AuthChallenge& challenge, Time now) {
  if (authentication_ == nullptr || path.id != authentication_path_) {
    // A challenge we did not ask for: the server is not speaking the protocol.
    attempt_failed(path, now);
    return false;
  }
  AuthenticationStep step = authentication_->step(challenge.data);
  if (step.status != AuthenticationStep::Status::kContinue ||
      step.output.size() > config_.max_authentication_message) {
    std::string message =
        authentication_->mechanism() + ": " +
        (step.message.empty() ? std::string(to_string(step.failure)) : std::move(step.message));
    authentication_.reset();
    retire_path(path);
    fail_session(Reason::kAuthFailed, false, false, now, false, std::move(message));
    return false;
  }
  reauthentication_.request_sent = now;
  queue_frame(path, wire::AuthResponse{std::move(step.output)});
  return true;
}

bool Session::accept_welcome_authentication(const wire::Welcome& welcome, Time now) {
  if (config_.authenticator == nullptr) {
    // We did not authenticate; a server that says it did is confused, but it is its session.
    peer_.principal = welcome.principal;
    return true;
  }
  std::string failure;
  if (!welcome.authenticated || authentication_ == nullptr) {
    failure =
        "the server does not authenticate clients (it runs without authentication); "
        "refusing to use it";
  } else {
    AuthenticationStep step = authentication_->finish(welcome.server_final);
    if (step.status != AuthenticationStep::Status::kSucceeded) {
      failure = authentication_->mechanism() +
                ": the server did not prove it knows the credential" +
                (step.message.empty() ? std::string{} : " (" + step.message + ")");
    } else {
      peer_.mechanism = authentication_->mechanism();
    }
  }
  authentication_.reset();
  if (!failure.empty()) {
    if (Path* path = paths_.find(authentication_path_)) retire_path(*path);
    fail_session(Reason::kAuthFailed, false, false, now, false, std::move(failure));
    return false;
  }
  peer_.principal = welcome.principal;
  return true;
}

bool Session::handle_resume_accept(Path& path, const wire::ResumeAccept& accept, Time now) {
  if (!resume_.accept_server_proof(session_id_, path.keying_material, accept.proof)) {
    ++stats_.forged_frames_ignored;
    attempt_failed(path, now);
    return false;
  }
  path.state = PathState::kActive;
  path.handshake_deadline.reset();
  path.liveness.restart(heartbeat_, now);
  adopt_handshake_connection();
  start_hold_after_resume(now);
  last_refusal_.clear();
  if (!streams_.apply_peer_positions(accept.received)) {
    protocol_error(now);
    return false;
  }
  sync_budget();
  for (auto& [id, other] : paths_) {
    if (id != path.id && other.state != PathState::kDone) retire_path(other);
  }
  if (!paths_.is_data_path(path.id)) switch_data_path(path.id, now);
  ++stats_.resumes;
  lifecycle_.backoff().on_success();
  lifecycle_.cancel_waiting_attempt();
  mark_resumed(now);
  return true;
}

Expected<void, Reason> Session::accept_resume(PathId path_id, const ConnectionSecurity& security,
                                              const wire::Resume& resume, Time now) {
  const std::span<const std::byte> keying_material = security.keying_material;
  const TimerRefresh refresh(*this);
  assert(role_ == Role::kServer);
  if (!lifecycle_.open()) return make_unexpected(Reason::kUnknownSession);
  if (!may_resume()) {
    // The client did not offer resume (or we did not): it has no business resuming.
    ++stats_.rejected_resume_attempts;
    return make_unexpected(Reason::kProtocolError);
  }
  if (resume.version != wire::kProtocolVersion) return make_unexpected(Reason::kProtocolError);
  const auto base = resume_.match_client_proof(session_id_, keying_material, resume.proof);
  if (!base) {
    ++stats_.rejected_resume_attempts;
    return make_unexpected(Reason::kAuthFailed);
  }
  // Validate the client's positions before touching anything.
  if (!streams_.peer_positions_possible(resume.received)) {
    ++stats_.rejected_resume_attempts;
    return make_unexpected(Reason::kProtocolError);
  }
  ReauthenticationState& reauthentication = reauthentication_;
  const bool past_lifetime = reauthentication.lifetime_end && now >= *reauthentication.lifetime_end;
  if (past_lifetime && !config_.lifetime_audit_only &&
      (!may_reauthenticate() ||
       (reauthentication.grace_end && now >= *reauthentication.grace_end))) {
    // A client that cannot re-authenticate cannot come back after its lifetime, nor one whose
    // grace ran out (reconnecting does not buy a new one): the session ends here, on both sides.
    // Only for a proven Resume: a stranger's changes nothing (checked above).
    fail_session(Reason::kCredentialsExpired, false, false, now, true,
                 may_reauthenticate()
                     ? "the session's lifetime ended and it did not re-authenticate in time"
                     : "the session's lifetime ended (the client does not support "
                       "re-authentication)");
    return make_unexpected(Reason::kCredentialsExpired);
  }
  wire::ResumeAccept accept;
  accept.proof = resume_.accept_client(*base, session_id_, keying_material);
  accept.received = streams_.receive_positions();

  for (auto& [id, other] : paths_) {
    if (other.state != PathState::kDone) retire_path(other);
  }
  Path& path = paths_.add(path_id, PathState::kActive, keying_material, heartbeat_, now, role_);
  ++stats_.paths_opened;
  queue_frame(path, accept);
  const std::uint64_t unacknowledged_before = streams_.unacknowledged_bytes();
  const bool positions_valid = streams_.apply_peer_positions(resume.received);
  assert(positions_valid);
  (void)positions_valid;
  sync_budget();
  switch_data_path(path_id, now);
  ++stats_.resumes;
  lifecycle_.cancel_linger();
  remember_connection(security, now);
  if (past_lifetime && !config_.lifetime_audit_only) {
    // Suspended past its lifetime: the client re-authenticates before any new data flows, within
    // the handshake timeout (resuming is otherwise free of round trips). The grace starts at the
    // first such resume and is never moved by a later one.
    reauthentication.lifetime_passed = true;
    if (!reauthentication.grace_end) reauthentication.grace_end = now + config_.handshake_timeout;
  }
  mark_resumed(now);
  announce_writable(unacknowledged_before);
  return {};
}

bool Session::accept_fast_close(const wire::FastClose& frame, Time now) {
  const TimerRefresh refresh(*this);
  if (!lifecycle_.open() || !has(capabilities_, wire::Capability::kFastClose) ||
      !crypto::constant_time_equal(frame.key, resume_.own_close_key(Role::kServer))) {
    ++stats_.forged_frames_ignored;
    return false;
  }
  fail_session(frame.reason, true, false, now, false);
  return true;
}

bool Session::handle_stream_data_part(Path& path, const StreamDataPart& part, Time now) {
  // As handle_frame does for a whole StreamData frame.
  if (path.state == PathState::kDone || lifecycle_.closed()) return false;
  if (path.handshaking()) return handle_handshake_frame(path, wire::Frame{part.frame}, now);
  handle_stream_data(part.frame, part.frame_end, part.first, now);
  return lifecycle_.open() && path.state == PathState::kActive && !deferred_failure_;
}

void Session::handle_ack(const wire::Ack& ack, Time now) {
  bool progressed = false;
  for (const auto& entry : ack.entries) {
    Stream* stream = streams_.find(entry.stream_id);
    if (stream == nullptr) continue;
    if (entry.stream_id != kControlStream && entry.window_limit > stream->send.peer_window_limit) {
      // New credit asks for more data: past the lifetime that is use like sending it (a client
      // that only acknowledges would otherwise download without end under on-use enforcement).
      if (role_ == Role::kServer && reauthentication_.lifetime_passed &&
          !config_.lifetime_audit_only && !reauthentication_.grace_end && !note_use(false, now)) {
        return;
      }
      stream->send.peer_window_limit = entry.window_limit;
      streams_.mark_send_candidate(*stream);
    }
    if (!streams_.acknowledge(*stream, entry.received_offset, progressed)) {
      sync_budget();
      protocol_error(now);
      return;
    }
  }
  sync_budget();
  update_ack_progress(progressed, now);
  if (progressed && suspended() && role_ == Role::kClient && !lifecycle_.attempt_in_flight() &&
      !paths_.handshaking()) {
    // The suspect path answered before any new one: it carries the session again.
    lifecycle_.cancel_waiting_attempt();
    mark_resumed(now);
  }
}

// ---- Events and inspection ---------------------------------------------------------------------

std::optional<Event> Session::poll_event() {
  if (own_events_.empty()) return std::nullopt;
  Event event = std::move(own_events_.front().event);
  own_events_.pop_front();
  return event;
}

SessionStats Session::stats() const {
  SessionStats stats = stats_;
  stats.smoothed_rtt = rtt_.smoothed();
  stats.rtt_variation = rtt_.variation();
  stats.unacknowledged_bytes = streams_.unacknowledged_bytes();
  stats.receive_buffered_bytes = streams_.receive_buffered();
  stats.open_streams = streams_.open_count();
  return stats;
}

std::vector<StreamId> Session::stream_ids() const {
  return streams_.ids();
}

}  // namespace tether::session
