// Lifecycle is where a session is in its life (the states of docs/PROTOCOL.md), with what each
// state carries: when a suspension began, the graceful-close handshake, and the client's
// reconnection (backoff, the attempt in flight, the give-up deadline) or the server's linger.
#pragma once

#include <cstdint>
#include <optional>

#include "session/reconnect_backoff.hpp"
#include "session/types.hpp"

namespace tether::session {

// PROTOCOL.md "States". kAuthenticating and kReauthenticating are reserved for the
// authentication issue (in-band authentication of a new session, and of a live one); nothing
// enters them yet.
enum class SessionState : std::uint8_t {
  kConnecting,        // client: no Welcome yet
  kAuthenticating,    // reserved
  kOpen,              // a data path carries the session
  kReauthenticating,  // reserved: open, credentials being renewed
  kSuspended,         // the data path was lost; waiting for a resume (server: lingering)
  kResuming,          // client: suspended, a Resume is in flight on a new connection
  kClosed,
};
[[nodiscard]] const char* to_string(SessionState state);

// The coarse view of the public API (Session::phase()).
enum class Phase : std::uint8_t { kConnecting, kOpen, kClosed };

// The graceful-close handshake (PROTOCOL.md "Ending a session").
struct CloseHandshake {
  bool requested = false;  // no new writes; Close goes out once everything is acknowledged
  bool initiated_locally = false;
  bool sent = false;
  std::uint64_t acknowledgement = 0;  // control-stream position that acknowledges our Close
  bool peer_received = false;
  // Both Close messages crossed: a lost connection now ends the session as a graceful close.
  [[nodiscard]] bool crossed() const { return sent && peer_received; }
};

class Lifecycle {
 public:
  Lifecycle(Role role, const SessionConfig& config, Time now)
      : state_(role == Role::kClient ? SessionState::kConnecting : SessionState::kOpen),
        role_(role),
        linger_(config.linger),
        reconnect_limit_(config.reconnect_limit),
        backoff_(config.reconnect_initial_backoff, config.reconnect_max_backoff) {
    if (role == Role::kClient) give_up_at_ = now + reconnect_limit_;
  }

  [[nodiscard]] SessionState state() const { return state_; }
  [[nodiscard]] Phase phase() const {
    switch (state_) {
      case SessionState::kConnecting:
      case SessionState::kAuthenticating:
        return Phase::kConnecting;
      case SessionState::kClosed:
        return Phase::kClosed;
      default:
        return Phase::kOpen;
    }
  }
  [[nodiscard]] bool open() const { return phase() == Phase::kOpen; }
  [[nodiscard]] bool closed() const { return state_ == SessionState::kClosed; }
  [[nodiscard]] bool suspended() const {
    return state_ == SessionState::kSuspended || state_ == SessionState::kResuming;
  }
  [[nodiscard]] Time suspended_since() const { return suspended_since_; }

  // Client: Welcome arrived.
  void on_established() {
    state_ = SessionState::kOpen;
    give_up_at_.reset();
    backoff_.on_success();
  }
  // The data path was lost; false when already suspended (or not open).
  bool on_suspended(Time now) {
    if (state_ != SessionState::kOpen && state_ != SessionState::kReauthenticating) return false;
    state_ = SessionState::kSuspended;
    suspended_since_ = now;
    if (role_ == Role::kServer) {
      linger_at_ = now + linger_;
    } else {
      give_up_at_ = now + reconnect_limit_;
    }
    return true;
  }
  // Client: a Resume went out on a new connection, or that attempt failed.
  void on_resume_sent() {
    if (state_ == SessionState::kSuspended) state_ = SessionState::kResuming;
  }
  void on_resume_attempt_over() {
    if (state_ == SessionState::kResuming) state_ = SessionState::kSuspended;
  }
  // The session carries data again; the downtime when it was suspended.
  std::optional<Duration> on_resumed(Time now) {
    linger_at_.reset();
    if (role_ == Role::kClient) give_up_at_.reset();
    if (!suspended()) return std::nullopt;
    state_ = SessionState::kOpen;
    return now - suspended_since_;
  }
  void on_closed() {
    state_ = SessionState::kClosed;
    linger_at_.reset();
    give_up_at_.reset();
    next_attempt_at_.reset();
  }

  CloseHandshake& close_handshake() { return close_; }
  [[nodiscard]] const CloseHandshake& close_handshake() const { return close_; }

  // Client reconnection. An attempt is "in flight" from PathWanted to add_path/on_path_failed.
  [[nodiscard]] bool attempt_in_flight() const { return attempt_in_flight_; }
  void set_attempt_in_flight(bool value) { attempt_in_flight_ = value; }
  [[nodiscard]] bool attempt_waiting() const { return next_attempt_at_.has_value(); }
  void wait_for_attempt(Time at) { next_attempt_at_ = at; }
  void cancel_waiting_attempt() { next_attempt_at_.reset(); }
  // Connectivity came back: the waiting attempt is due now.
  void hurry_waiting_attempt(Time now) {
    if (next_attempt_at_) next_attempt_at_ = now;
  }
  ReconnectBackoff& backoff() { return backoff_; }
  void cancel_linger() { linger_at_.reset(); }

  // Deadlines for the session's TimerSet.
  [[nodiscard]] std::optional<Time> linger_deadline() const { return linger_at_; }
  [[nodiscard]] std::optional<Time> give_up_deadline() const { return give_up_at_; }
  [[nodiscard]] std::optional<Time> reconnect_deadline() const { return next_attempt_at_; }

 private:
  SessionState state_;
  Role role_;
  Duration linger_;
  Duration reconnect_limit_;
  Time suspended_since_{};
  CloseHandshake close_;
  std::optional<Time> linger_at_;        // server
  std::optional<Time> give_up_at_;       // client
  std::optional<Time> next_attempt_at_;  // client: when to emit PathWanted
  bool attempt_in_flight_ = false;
  ReconnectBackoff backoff_;
};

inline const char* to_string(SessionState state) {
  switch (state) {
    case SessionState::kConnecting:
      return "connecting";
    case SessionState::kAuthenticating:
      return "authenticating";
    case SessionState::kOpen:
      return "open";
    case SessionState::kReauthenticating:
      return "re-authenticating";
    case SessionState::kSuspended:
      return "suspended";
    case SessionState::kResuming:
      return "resuming";
    case SessionState::kClosed:
      return "closed";
  }
  return "unknown";
}

}  // namespace tether::session
