// Session: its timers. Every deadline is a named TimerSet slot armed from the state of the part
// that owns it; next_deadline() is the earliest, and on_timeout() handles the due slots by name.
#include "session/session.hpp"
#include "wire/codec.hpp"

namespace tether::session {

std::optional<Time> Session::next_deadline() const {
  return timers_.earliest();
}

void Session::refresh_timers() {
  if (lifecycle_.closed()) {
    timers_.clear();
    return;
  }
  const PathDeadlines path = paths_.deadlines(rtt_.retransmission_timeout(), budget());
  timers_.set(TimerSlot::kHandshake, path.handshake);
  timers_.set(TimerSlot::kPathLiveness, path.silence);
  timers_.set(TimerSlot::kPathDead, path.dead);
  timers_.set(TimerSlot::kHeartbeat, path.heartbeat);
  const bool carrying = paths_.data_path().has_value();
  timers_.set(TimerSlot::kAckDelay, carrying ? acks_.deadline() : std::nullopt);
  timers_.set(TimerSlot::kAckProgress,
              carrying && !suspended() ? ack_progress_.deadline(budget()) : std::nullopt);
  timers_.set(TimerSlot::kLinger, lifecycle_.linger_deadline());
  timers_.set(TimerSlot::kGiveUp, lifecycle_.give_up_deadline());
  timers_.set(TimerSlot::kReconnect, lifecycle_.reconnect_deadline());
  // A session does not outlive its lifetime: each re-authentication moves this deadline. A
  // client watches it only to hold new data once it passes.
  const bool watch_lifetime = role_ == Role::kServer || may_reauthenticate();
  timers_.set(TimerSlot::kCredentialExpiry, watch_lifetime && !reauthentication_.lifetime_passed
                                                ? reauthentication_.lifetime_end
                                                : std::nullopt);
  timers_.set(TimerSlot::kReauthenticate, reauthentication_deadline());
}

void Session::refresh_acknowledgement_timer() {
  if (lifecycle_.closed()) {
    timers_.clear();
    return;
  }
  timers_.set(TimerSlot::kAckDelay, paths_.data_path() ? acks_.deadline() : std::nullopt);
}

void Session::on_timeout(Time now) {
  const TimerRefresh refresh(*this);
  // Each slot is looked at in TimerSlot order, against the state the previous ones left.
  for (std::size_t index = 0; index < kTimerSlotCount && !lifecycle_.closed(); ++index) {
    const auto slot = static_cast<TimerSlot>(index);
    refresh_timers();
    if (timers_.due(slot, now)) on_timer(slot, now);
  }
  apply_deferred_failure();
}

void Session::on_timer(TimerSlot slot, Time now) {
  switch (slot) {
    case TimerSlot::kHandshake:
      for (auto& [id, path] : paths_) {
        if (path.state != PathState::kDone && path.handshake_deadline &&
            now >= *path.handshake_deadline) {
          attempt_failed(path, now);
          if (lifecycle_.closed()) return;
        }
      }
      return;
    case TimerSlot::kPathLiveness:
      for (auto& [id, path] : paths_) {
        if (path.state != PathState::kActive) continue;
        const bool suspect = path.liveness.check_silence(now, rtt_.retransmission_timeout(),
                                                         stats_.heartbeats_missed);
        if (suspect && paths_.is_data_path(id))
          on_data_path_lost(SuspendCause::kHeartbeatTimeout, now);
        if (lifecycle_.closed()) return;
      }
      return;
    case TimerSlot::kPathDead:
      for (auto& [id, path] : paths_) {
        if (path.state != PathState::kActive || !path.liveness.dead(now, budget())) continue;
        const bool was_data_path = paths_.is_data_path(id);
        retire_path(path);
        if (was_data_path) on_data_path_lost(SuspendCause::kHeartbeatTimeout, now);
        if (lifecycle_.closed()) return;
      }
      return;
    case TimerSlot::kHeartbeat:
      for (auto& [id, path] : paths_) {
        if (path.state == PathState::kActive && path.liveness.heartbeat_due(now))
          send_heartbeat(path, now);
      }
      return;
    case TimerSlot::kAckDelay:
      acks_.on_deadline();
      return;
    case TimerSlot::kAckProgress:
      ack_progress_.reset();
      on_data_path_lost(SuspendCause::kAcknowledgementStall, now);
      return;
    case TimerSlot::kLinger:
      fail_session(Reason::kLingerExpired, false, false, now, false);
      return;
    case TimerSlot::kGiveUp:
      if (suspended() || phase() == Phase::kConnecting)
        fail_session(Reason::kReconnectExhausted, false, true, now, false);
      return;
    case TimerSlot::kReconnect:
      lifecycle_.cancel_waiting_attempt();
      lifecycle_.set_attempt_in_flight(true);
      emit(events::PathWanted{});
      return;
    case TimerSlot::kReauthenticate:
      on_reauthentication_deadline(now);
      return;
    case TimerSlot::kCredentialExpiry:
      on_lifetime_end(now);
      return;
  }
}

void Session::send_heartbeat(Path& path, Time now) {
  queue_frame(path, wire::Ping{path.liveness.on_ping_sent(now)});
  if (paths_.is_data_path(path.id)) {
    update_ack_progress(false, now);
    // Once per heartbeat interval: a busy session refills its pool at once, an idle one gives its
    // spare blocks back.
    streams_.trim_pool();
  }
}

}  // namespace tether::session
