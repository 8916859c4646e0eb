// Session: its connections (the data path, suspension, resumption, reconnection) and how a session
// ends (graceful close, abort, fast close, failures).
#include <algorithm>
#include <cassert>

#include "session/server_endpoint.hpp"
#include "session/session.hpp"
#include "wire/codec.hpp"

namespace tether::session {

// ---- Paths -------------------------------------------------------------------------------------

void Session::queue_frame(Path& path, const wire::Frame& frame) {
  wire::encode_frame(frame, path.outgoing);
  // wants_input() stops the runtime from reading while the queue is past max_queued_bytes; a queue
  // far past it means a runtime that does not honour that: end the session instead of growing.
  if (path.outgoing.size() > 4 * config_.max_queued_bytes + (64u << 10)) {
    defer_failure(Reason::kLackOfResources);
  }
}

void Session::switch_data_path(PathId path_id, Time now) {
  paths_.set_data_path(path_id);
  streams_.rewind_all([&](Stream& stream) {
    // The new path gets the full acknowledgement state.
    acks_.request(stream, AckManager::Urgency::kImmediate, now);
  });
  ack_progress_.reset();
  update_ack_progress(false, now);
}

void Session::retire_path(Path& path) {
  if (path.state == PathState::kDone) return;
  path.state = PathState::kDone;
  path.handshake_deadline.reset();
  if (paths_.is_data_path(path.id)) paths_.clear_data_path();
  emit(events::PathDone{path.id});
}

void Session::fall_back_to_active_path(Time now) {
  if (paths_.data_path()) return;
  if (Path* active = paths_.first_active(false)) switch_data_path(active->id, now);
}

void Session::attempt_failed(Path& path, Time now) {
  const bool was_data_path = paths_.is_data_path(path.id);
  retire_path(path);
  if (lifecycle_.closed()) return;
  lifecycle_.on_resume_attempt_over();
  if (was_data_path) fall_back_to_active_path(now);
  request_path(now);
}

void Session::on_data_path_lost(SuspendCause cause, Time now) {
  if (lifecycle_.close_handshake().crossed()) {
    // Both Close messages crossed; only the last acknowledgement is missing. Nothing is left to
    // deliver.
    finish_session(events::Closed{Reason::kShutdown,
                                  !lifecycle_.close_handshake().initiated_locally, false, 0});
    return;
  }
  if (!may_resume() && !paths_.data_path()) {
    // Without resume no other connection can take the session over: it ends with its last one.
    // The client reports reconnect-exhausted (transient: a new session may work), the server
    // linger-expired (its linger for such a session is zero).
    if (role_ == Role::kClient) {
      fail_session(Reason::kReconnectExhausted, false, true, now, false);
    } else {
      fail_session(Reason::kLingerExpired, false, false, now, false);
    }
    return;
  }
  suspend(cause, now);
  if (role_ == Role::kClient) request_path(now);
}

void Session::suspend(SuspendCause cause, Time now) {
  if (!lifecycle_.on_suspended(now)) return;
  if (suspended_index_ != nullptr) suspended_index_->insert({now, session_id_});
  pause_exchange_clock(now);
  streams_.trim_pool();  // nothing moves while suspended
  emit(events::Suspended{cause});
}

void Session::mark_resumed(Time now) {
  events::Resumed resumed;
  resumed.bytes_replayed = streams_.planned_replay();
  const Time since = lifecycle_.suspended_since();
  resume_exchange_clock(now);
  if (const auto downtime = lifecycle_.on_resumed(now)) {
    resumed.downtime = *downtime;
    stats_.total_downtime += *downtime;
    if (suspended_index_ != nullptr) suspended_index_->erase({since, session_id_});
  }
  emit(resumed);
}

void Session::request_path(Time now) {
  if (role_ != Role::kClient || lifecycle_.closed() || lifecycle_.attempt_in_flight() ||
      lifecycle_.attempt_waiting())
    return;
  if (lifecycle_.open() && !may_resume()) return;  // a new connection could not resume
  if (paths_.handshaking()) return;
  const Duration delay = lifecycle_.backoff().next_delay(random_);
  if (delay == Duration::zero()) {
    lifecycle_.set_attempt_in_flight(true);
    emit(events::PathWanted{});
  } else {
    lifecycle_.wait_for_attempt(now + delay);
  }
}

Duration Session::budget() const {
  return heartbeat_.budget(rtt_.retransmission_timeout());
}

wire::DecodeLimits Session::decode_limits() const {
  wire::DecodeLimits limits;
  limits.max_payload = config_.max_frame_payload;
  limits.max_list_entries = std::max<std::size_t>(4096, 2 * config_.max_streams + 1);
  return limits;
}

bool Session::has_outstanding() const {
  const Path* data = paths_.data();
  if (!paths_.data_path()) return false;
  if (data != nullptr && data->liveness.ping_outstanding()) return true;
  return streams_.any_outstanding();
}

void Session::update_ack_progress(bool progressed, Time now) {
  ack_progress_.update(has_outstanding(), progressed, now);
}

// ---- Ending ------------------------------------------------------------------------------------

void Session::protocol_error(Time now) {
  fail_session(Reason::kProtocolError, false, false, now, true);
}

void Session::invariant_failed() {
  ++stats_.invariant_failures;
  defer_failure(Reason::kProtocolError);
}

void Session::defer_failure(Reason reason) {
  if (!deferred_failure_) deferred_failure_ = reason;
}

void Session::apply_deferred_failure() {
  if (!deferred_failure_) return;
  const Reason reason = *deferred_failure_;
  deferred_failure_.reset();
  fail_session(reason, false, false, Time{}, true);
}

void Session::fail_session(Reason reason, bool by_peer, bool transient, Time, bool send_abort,
                           std::string message) {
  if (lifecycle_.closed()) return;
  if (role_ == Role::kServer && reason == Reason::kCredentialsExpired && !by_peer &&
      endpoint_stats_ != nullptr) {
    ++endpoint_stats_->expired_sessions_closed;
  }
  if (send_abort) {
    if (Path* data = paths_.data()) queue_frame(*data, wire::Abort{reason, transient, message});
  }
  // A session that ends after transient refusals (or a re-authentication that could not start)
  // says what the last one was, beside the peer's own words.
  if (message.empty()) {
    message = !last_refusal_.empty() ? std::move(last_refusal_) : reauthentication_problem_;
  } else if (by_peer && reason == Reason::kCredentialsExpired &&
             !reauthentication_problem_.empty()) {
    message += " (" + reauthentication_problem_ + ")";
  }
  finish_session(events::Closed{reason, by_peer, transient, streams_.unacknowledged_bytes(),
                                std::move(message)});
}

void Session::finish_session(const events::Closed& closed) {
  if (lifecycle_.closed()) return;
  const bool was_suspended = suspended();
  const Time suspended_since = lifecycle_.suspended_since();
  lifecycle_.on_closed();
  stats_.unacknowledged_bytes = streams_.unacknowledged_bytes();
  emit(closed);
  for (auto& [id, path] : paths_) retire_path(path);
  // Free everything the session held; the statistics stay readable. After a graceful close, bytes
  // received and not yet read stay readable, as after a TCP FIN; any other end discards them.
  acks_.clear();
  reauthentication_.end_exchange();
  reauthentication_.next_attempt.reset();
  streams_.close(closed.reason == Reason::kShutdown && !closed.transient);
  if (budget_ != nullptr) budget_->forget(this);
  sync_budget();
  control_.clear();
  if (was_suspended && suspended_index_ != nullptr) {
    suspended_index_->erase({suspended_since, session_id_});
  }
  timers_.clear();
}

void Session::close(Time now) {
  const TimerRefresh refresh(*this);
  if (phase() == Phase::kConnecting) {
    finish_session(
        events::Closed{Reason::kShutdown, false, false, streams_.unacknowledged_bytes()});
    return;
  }
  CloseHandshake& handshake = lifecycle_.close_handshake();
  if (!lifecycle_.open() || handshake.requested) return;
  handshake.requested = true;
  handshake.initiated_locally = true;
  maybe_send_close(now);
  apply_deferred_failure();
}

void Session::maybe_send_close(Time now) {
  CloseHandshake& handshake = lifecycle_.close_handshake();
  if (!handshake.requested || handshake.sent || !lifecycle_.open() ||
      streams_.unacknowledged_bytes() != 0)
    return;
  queue_control_message(wire::Close{Reason::kShutdown});
  handshake.sent = true;
  handshake.acknowledgement = streams_.control().send.written;
  check_graceful_completion(now);
}

void Session::check_graceful_completion(Time) {
  const CloseHandshake& handshake = lifecycle_.close_handshake();
  if (!lifecycle_.open() || !handshake.crossed()) return;
  if (streams_.control().send.acknowledged < handshake.acknowledgement) return;
  // Both Close messages are exchanged and ours is acknowledged: acknowledge the peer's on the way
  // out.
  if (Path* data = paths_.data(); data != nullptr && data->state == PathState::kActive)
    write_ack_frame(data->outgoing);
  finish_session(events::Closed{Reason::kShutdown, !handshake.initiated_locally, false, 0});
}

events::Closed Session::abort(Reason reason, Time now, bool transient) {
  const TimerRefresh refresh(*this);
  events::Closed closed{reason, false, transient, streams_.unacknowledged_bytes()};
  fail_session(reason, false, transient, now, true);
  return closed;
}

std::vector<std::byte> Session::fast_close(Reason reason, Time now) {
  const TimerRefresh refresh(*this);
  std::vector<std::byte> encoded;
  if (!lifecycle_.open()) return encoded;
  if (!has(capabilities_, wire::Capability::kFastClose)) {
    abort(reason, now);
    return encoded;
  }
  wire::encode_frame(wire::FastClose{session_id_, resume_.peer_close_key(role_), reason}, encoded);
  if (Path* data = paths_.data()) {
    data->outgoing.insert(data->outgoing.end(), encoded.begin(), encoded.end());
  }
  fail_session(reason, false, false, now, false);
  return encoded;
}

}  // namespace tether::session
