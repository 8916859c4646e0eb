// Session: its lifetime and in-place re-authentication (PROTOCOL.md "Re-authentication"). The
// exchange runs as control-stream messages, so data keeps flowing on every other stream while it
// runs, and it survives a change of connection (the control stream is replayed like any other).
#include <algorithm>
#include <cassert>

#include "session/server_endpoint.hpp"
#include "session/session.hpp"
#include "session/session_lifetime.hpp"

namespace tether::session {
namespace {

std::string seconds_text(Duration duration) {
  return std::to_string(std::chrono::ceil<std::chrono::seconds>(duration).count()) + " s";
}

std::string failure_text(const AuthenticationStep& step, const std::string& mechanism) {
  std::string message =
      step.message.empty() ? std::string(to_string(step.failure)) : std::string(step.message);
  if (!message.starts_with(mechanism)) message = mechanism + ": " + message;
  return message;
}

}  // namespace

wire::CapabilitySet Session::offered_capabilities() const {
  wire::CapabilitySet offered = config_.capabilities;
  const auto reauthentication = static_cast<std::uint64_t>(wire::Capability::kReauthentication);
  if (role_ == Role::kClient) {
    // Only a client with a credential can re-authenticate.
    offered &= ~reauthentication;
    if (config_.authenticator != nullptr && config_.reauthenticate) offered |= reauthentication;
  }
  return offered;
}

// ---- The lifetime ------------------------------------------------------------------------------

std::optional<Duration> Session::start_lifetime(Time now) {
  ReauthenticationState& state = reauthentication_;
  state.lifetime_passed = false;
  state.grace_end.reset();
  state.grace_allows_data = false;
  state.holding = false;
  state.hold_end.reset();
  if (peer_.mechanism.empty()) {
    state.lifetime_end.reset();  // without authentication there is no credential to outlive
    return std::nullopt;
  }
  std::optional<Duration> remaining;
  // The endpoint refuses a credential that has already expired, so this is positive.
  if (peer_.credential_expiry) remaining = std::max(Duration(1), *peer_.credential_expiry - now);
  // A cap shorter than the shortest renewable lifetime could never be renewed.
  std::optional<Duration> cap = config_.max_reauthentication;
  if (cap && *cap > Duration::zero()) cap = std::max(*cap, config_.minimum_lifetime());
  const std::optional<Duration> lifetime = lifetime::session_lifetime(remaining, cap);
  state.lifetime_end = lifetime ? std::optional<Time>(now + *lifetime) : std::nullopt;
  return lifetime;
}

void Session::accept_lifetime(std::uint64_t lifetime_ms, Time now) {
  ReauthenticationState& state = reauthentication_;
  const std::optional<Duration> lifetime = lifetime::from_wire(lifetime_ms);
  const Time from = std::min(state.request_sent.value_or(now), now);
  state.request_sent.reset();
  state.lifetime_passed = false;
  state.holding = false;
  state.hold_end.reset();
  state.next_attempt.reset();
  state.lifetime_end = lifetime ? std::optional<Time>(from + *lifetime) : std::nullopt;
  if (!lifetime || !may_reauthenticate()) return;
  Time next = std::max(now, from + lifetime::reauthentication_delay(
                                       *lifetime, lifetime::unit_interval(random_.next_u64()),
                                       config_.min_reauthentication_interval));
  if (state.last_started) {
    next = std::max(next, *state.last_started + config_.min_reauthentication_interval);
  }
  state.next_attempt = next;
}

void Session::on_lifetime_end(Time now) {
  ReauthenticationState& state = reauthentication_;
  state.lifetime_passed = true;
  if (role_ == Role::kClient) {
    // New data waits for the exchange (holding_data), but not without end: past the hold the
    // server decides. Start an exchange now unless one runs or a retry is already planned.
    state.holding = true;
    if (!suspended()) state.hold_end = now + config_.handshake_timeout;  // else at the resume
    if (!state.in_progress() && !state.next_attempt) state.next_attempt = now;
    return;
  }
  if (config_.lifetime_audit_only) {
    emit(events::LifetimePassed{true});
    return;
  }
  const bool credential_expired = peer_.credential_expiry && now >= *peer_.credential_expiry;
  std::string message = credential_expired
                            ? "the session's credential expired and it did not re-authenticate"
                            : "the session reached its maximum lifetime without re-authenticating";
  if (state.in_progress() && !suspended()) {
    // The exchange decides, within the grace; meanwhile the client gets no new credit and may open
    // no stream (holding_data, note_use).
    state.grace_end = now + config_.handshake_timeout;
    state.grace_allows_data = true;
    emit(events::LifetimePassed{false});
    return;
  }
  if (config_.expiry_enforcement == ExpiryEnforcement::kOnUse) {
    // The next frame that is not re-authentication ends it (note_use); a client that cannot
    // re-authenticate cannot resume it either (accept_resume).
    emit(events::LifetimePassed{false});
    return;
  }
  if (!may_reauthenticate()) {
    // Its client cannot re-authenticate, so it cannot come back either: it ends, suspended or not.
    fail_session(Reason::kCredentialsExpired, false, false, now, true,
                 message + " (the client does not support re-authentication)");
    return;
  }
  if (suspended()) {
    // The client re-authenticates as part of its resume, within a grace that starts then
    // (accept_resume); an exchange in flight continues on the new connection.
    emit(events::LifetimePassed{false});
    return;
  }
  fail_session(Reason::kCredentialsExpired, false, false, now, true, std::move(message));
}

void Session::pause_exchange_clock(Time now) {
  ReauthenticationState& state = reauthentication_;
  if (!state.in_progress() || !state.exchange_deadline) return;
  state.exchange_time_left = std::max(Duration::zero(), *state.exchange_deadline - now);
  state.exchange_deadline.reset();
}

void Session::resume_exchange_clock(Time now) {
  ReauthenticationState& state = reauthentication_;
  if (!state.in_progress() || !state.exchange_time_left) return;
  state.exchange_deadline = now + *state.exchange_time_left;
  state.exchange_time_left.reset();
}

void Session::catch_up_lifetime(Time now) {
  const ReauthenticationState& state = reauthentication_;
  if (!state.lifetime_passed && state.lifetime_end && now >= *state.lifetime_end &&
      lifecycle_.open()) {
    on_lifetime_end(now);
  }
}

bool Session::note_use(bool opens_stream, Time now) {
  const ReauthenticationState& state = reauthentication_;
  if (role_ != Role::kServer || !state.lifetime_passed) return true;
  if (config_.lifetime_audit_only) {
    if (endpoint_stats_ != nullptr) ++endpoint_stats_->frames_on_expired_sessions;
    return true;
  }
  // In the grace of an exchange that ran when the lifetime passed, data in flight is delivered,
  // but only up to the credit the client had then (holding_data freezes it). Anything else is use
  // (a client holds its data once its lifetime passed): on-use enforcement's rule, and in a
  // resume's grace or after an exchange begun late, a client that did not hold.
  if (state.grace_allows_data && !opens_stream) return true;
  fail_session(
      Reason::kCredentialsExpired, false, false, now, true,
      opens_stream && state.grace_end
          ? "the session opened a stream after its lifetime ended, before re-authenticating"
          : "the session was used after its lifetime ended without re-authenticating");
  return false;
}

bool Session::holding_data() const {
  const ReauthenticationState& state = reauthentication_;
  if (!state.lifetime_passed) return false;
  if (role_ == Role::kClient) return state.holding;
  // A server holds (and grants no credit) in a grace, while it waits for the exchange; on-use
  // enforcement without one sends on (answers to what came before the lifetime ended).
  return !config_.lifetime_audit_only && state.grace_end.has_value();
}

// ---- Deadlines ---------------------------------------------------------------------------------

std::optional<Time> Session::reauthentication_deadline() const {
  const ReauthenticationState& state = reauthentication_;
  const auto earliest = [](std::optional<Time> left, std::optional<Time> right) {
    if (!left) return right;
    if (!right) return left;
    return std::optional<Time>(std::min(*left, *right));
  };
  // Every deadline here is consumed (moved or cleared) when it fires: one that stayed in the past
  // would make the timer fire without end.
  if (role_ == Role::kClient) {
    return earliest(state.in_progress() ? state.exchange_deadline : state.next_attempt,
                    state.hold_end);
  }
  return earliest(state.in_progress() ? state.exchange_deadline : std::nullopt, state.grace_end);
}

void Session::on_reauthentication_deadline(Time now) {
  ReauthenticationState& state = reauthentication_;
  if (role_ == Role::kServer && state.grace_end && now >= *state.grace_end) {
    // The grace is granted once per lifetime and ends the session wherever it is: connected or
    // not, mid-exchange or not.
    if (state.in_progress() && endpoint_stats_ != nullptr) {
      ++endpoint_stats_->reauthentication_failures;
    }
    state.end_exchange();
    fail_session(Reason::kCredentialsExpired, false, false, now, true,
                 "the session's lifetime ended and it did not re-authenticate within " +
                     seconds_text(config_.handshake_timeout));
    return;
  }
  if (role_ == Role::kClient && state.hold_end && now >= *state.hold_end) {
    // Held long enough: the data flows again and the server decides (holding_data).
    state.holding = false;
    state.hold_end.reset();
  }
  if (state.in_progress() && state.exchange_deadline && now >= *state.exchange_deadline) {
    if (suspended() || !paths_.data_path()) {
      // Its messages wait in the control stream for the next connection (suspend() normally
      // stopped the clock already): what is left of it runs after the resume.
      pause_exchange_clock(now);
      return;
    }
    const std::string message = role_ == Role::kClient
                                    ? "the server did not answer the re-authentication within " +
                                          seconds_text(config_.handshake_timeout)
                                    : "the re-authentication did not finish within " +
                                          seconds_text(config_.handshake_timeout);
    fail_reauthentication(state.lifetime_passed ? Reason::kCredentialsExpired : Reason::kAuthFailed,
                          message, now);
    return;
  }
  if (role_ == Role::kClient && !state.in_progress() && state.next_attempt &&
      now >= *state.next_attempt) {
    start_client_reauthentication(now);
  }
}

// ---- The exchange ------------------------------------------------------------------------------

void Session::remember_connection(const ConnectionSecurity& security, Time now) {
  connection_security_ = security;
  connection_security_.keying_material.clear();
  certificate_expiry_.reset();
  if (security.peer_certificate_lifetime) {
    certificate_expiry_ = now + std::max(Duration::zero(), *security.peer_certificate_lifetime);
  }
}

void Session::start_hold_after_resume(Time now) {
  ReauthenticationState& state = reauthentication_;
  if (state.holding && !state.hold_end) state.hold_end = now + config_.handshake_timeout;
}

void Session::adopt_handshake_connection() {
  if (!handshake_connection_) return;
  remember_connection(handshake_connection_->first, handshake_connection_->second);
  handshake_connection_.reset();
}

ConnectionSecurity Session::reauthentication_security(std::uint64_t sequence, Time now) const {
  ConnectionSecurity security;
  // Bound to the session (and this round), not to one connection: the exchange outlives the
  // connection it starts on. Only a session whose connection offered a binding gets one, so the
  // mechanism the client picks (SCRAM or SCRAM-PLUS) is the one it authenticated with.
  if (!connection_security_.channel_binding.empty()) {
    const Secret binding = resume_.reauthentication_binding(session_id_, sequence);
    security.channel_binding.assign(binding.begin(), binding.end());
  }
  security.confidential = connection_security_.confidential;
  security.peer_certificate_identity = connection_security_.peer_certificate_identity;
  if (certificate_expiry_) {
    security.peer_certificate_lifetime = std::max(Duration::zero(), *certificate_expiry_ - now);
  }
  return security;
}

void Session::start_client_reauthentication(Time now) {
  ReauthenticationState& state = reauthentication_;
  state.next_attempt.reset();
  if (role_ != Role::kClient || !lifecycle_.open() || !may_reauthenticate() ||
      state.in_progress() || config_.authenticator == nullptr) {
    return;
  }
  const std::uint64_t sequence = state.sequence + 1;
  std::unique_ptr<ClientAuthentication> exchange =
      config_.authenticator->start(reauthentication_security(sequence, now));
  AuthenticationStep step = exchange == nullptr
                                ? AuthenticationStep::fail(AuthenticationFailure::kUnavailable,
                                                           "no credential usable on this session")
                                : exchange->start();
  std::string problem;
  if (step.status != AuthenticationStep::Status::kContinue) {
    problem = step.message.empty() ? std::string(to_string(step.failure)) : step.message;
  } else if (exchange->mechanism() != peer_.mechanism) {
    problem = "the credential's mechanism " + exchange->mechanism() + " is not the session's " +
              peer_.mechanism;
  } else if (step.output.size() > config_.max_authentication_message) {
    problem = "the credential is too large";
  }
  if (!problem.empty()) {
    // The credential cannot be used now (an unreadable token file, a failing token command): try
    // again later. If none succeeds the server ends the session at its lifetime's end, and the
    // Closed says why.
    reauthentication_problem_ = "re-authentication could not start: " + problem;
    state.next_attempt = now + config_.reauthentication_retry;
    return;
  }
  state.sequence = sequence;
  state.client_exchange = std::move(exchange);
  state.started = now;
  state.last_started = now;
  state.request_sent = now;
  state.exchange_deadline = now + config_.handshake_timeout;
  queue_control_message(wire::Reauthenticate{peer_.mechanism, std::move(step.output)});
}

void Session::handle_control(const wire::Reauthenticate& message, Time now) {
  ReauthenticationState& state = reauthentication_;
  if (role_ != Role::kServer || !may_reauthenticate() || server_authenticator_ == nullptr ||
      *server_authenticator_ == nullptr || state.in_progress()) {
    protocol_error(now);  // not negotiated, or a second exchange while one runs
    return;
  }
  // Half the interval: the client keeps the whole of it, and delay jitter may bring two starts
  // closer together on the way.
  if (state.last_started && now < *state.last_started + config_.min_reauthentication_interval / 2) {
    fail_reauthentication(Reason::kProtocolError,
                          "re-authentication started more often than once every " +
                              seconds_text(config_.min_reauthentication_interval),
                          now);
    return;
  }
  if (message.initial_response &&
      message.initial_response->size() > config_.max_authentication_message) {
    fail_reauthentication(Reason::kAuthFailed, "authentication message too large", now);
    return;
  }
  if (message.mechanism != peer_.mechanism) {
    fail_reauthentication(Reason::kAuthFailed,
                          "re-authentication must use the session's mechanism " + peer_.mechanism,
                          now);
    return;
  }
  if (state.lifetime_passed && !state.grace_end && !config_.lifetime_audit_only) {
    // Begun after the lifetime passed (on-use enforcement kept the session): it gets the grace's
    // bound, not its leave to carry data.
    state.grace_end = now + config_.handshake_timeout;
  }
  const std::uint64_t sequence = ++state.sequence;
  std::unique_ptr<ServerAuthentication> exchange =
      (*server_authenticator_)->start(message.mechanism, reauthentication_security(sequence, now));
  if (exchange == nullptr) {
    fail_reauthentication(Reason::kAuthFailed,
                          peer_.mechanism + ": no longer offered; re-authentication failed", now);
    return;
  }
  state.server_exchange = std::move(exchange);
  state.started = now;
  state.last_started = now;
  state.exchange_deadline = now + config_.handshake_timeout;
  std::optional<std::span<const std::byte>> initial;
  if (message.initial_response) initial = std::span<const std::byte>(*message.initial_response);
  apply_server_reauthentication_step(state.server_exchange->start(initial), now);
}

void Session::handle_control(const wire::AuthResponse& message, Time now) {
  ReauthenticationState& state = reauthentication_;
  if (role_ != Role::kServer || state.server_exchange == nullptr) {
    protocol_error(now);
    return;
  }
  if (message.data.size() > config_.max_authentication_message) {
    fail_reauthentication(Reason::kAuthFailed, "authentication message too large", now);
    return;
  }
  apply_server_reauthentication_step(state.server_exchange->step(message.data), now);
}

void Session::apply_server_reauthentication_step(AuthenticationStep step, Time now) {
  ReauthenticationState& state = reauthentication_;
  switch (step.status) {
    case AuthenticationStep::Status::kContinue:
      if (step.output.size() > config_.max_authentication_message) {
        fail_reauthentication(Reason::kAuthFailed, "authentication message too large", now);
        return;
      }
      queue_control_message(wire::AuthChallenge{std::move(step.output)});
      return;
    case AuthenticationStep::Status::kFailed:
      fail_reauthentication(reason_for(step.failure),
                            "re-authentication failed: " + failure_text(step, peer_.mechanism),
                            now);
      return;
    case AuthenticationStep::Status::kSucceeded:
      break;
  }
  if (step.principal != peer_.principal) {
    fail_reauthentication(Reason::kAuthFailed,
                          "re-authentication named another principal (a session's principal "
                          "cannot change)",
                          now);
    return;
  }
  if (step.credential_lifetime && *step.credential_lifetime < config_.minimum_lifetime()) {
    fail_reauthentication(Reason::kCredentialsExpired,
                          *step.credential_lifetime <= Duration::zero()
                              ? "re-authentication with a credential that has already expired"
                              : "re-authentication with a credential that expires in less than " +
                                    seconds_text(config_.minimum_lifetime()),
                          now);
    return;
  }
  const Duration latency = now - *state.started;
  state.end_exchange();
  peer_.scopes = std::move(step.scopes);
  peer_.credential_id = std::move(step.credential_id);
  peer_.credential_expiry = step.credential_lifetime
                                ? std::optional<Time>(now + *step.credential_lifetime)
                                : std::nullopt;
  const bool credit_was_frozen = holding_data();
  const std::optional<Duration> lifetime = start_lifetime(now);
  queue_control_message(wire::Reauthenticated{lifetime::to_wire(lifetime), std::move(step.output)});
  if (credit_was_frozen) grant_withheld_credit(now);
  ++stats_.reauthentications;
  if (endpoint_stats_ != nullptr) {
    ++endpoint_stats_->reauthentications_succeeded;
    endpoint_stats_->reauthentication_latency.record(latency);
  }
  emit(events::Reauthenticated{peer_.principal, peer_.mechanism, lifetime, latency});
}

void Session::handle_control(const wire::AuthChallenge& message, Time now) {
  ReauthenticationState& state = reauthentication_;
  if (role_ != Role::kClient || state.client_exchange == nullptr) {
    protocol_error(now);
    return;
  }
  AuthenticationStep step = state.client_exchange->step(message.data);
  if (step.status != AuthenticationStep::Status::kContinue ||
      step.output.size() > config_.max_authentication_message) {
    fail_reauthentication(Reason::kAuthFailed,
                          "re-authentication failed: " + failure_text(step, peer_.mechanism), now);
    return;
  }
  state.request_sent = now;
  queue_control_message(wire::AuthResponse{std::move(step.output)});
}

void Session::handle_control(const wire::Reauthenticated& message, Time now) {
  ReauthenticationState& state = reauthentication_;
  if (role_ != Role::kClient || state.client_exchange == nullptr) {
    protocol_error(now);
    return;
  }
  AuthenticationStep step = state.client_exchange->finish(message.server_final);
  if (step.status != AuthenticationStep::Status::kSucceeded) {
    fail_reauthentication(Reason::kAuthFailed,
                          peer_.mechanism +
                              ": the server did not prove it knows the credential when "
                              "re-authenticating" +
                              (step.message.empty() ? std::string{} : " (" + step.message + ")"),
                          now);
    return;
  }
  const Duration latency = now - *state.started;
  state.end_exchange();
  accept_lifetime(message.session_lifetime_ms, now);
  ++stats_.reauthentications;
  reauthentication_problem_.clear();
  emit(events::Reauthenticated{peer_.principal, peer_.mechanism,
                               lifetime::from_wire(message.session_lifetime_ms), latency});
}

void Session::fail_reauthentication(Reason reason, std::string message, Time now) {
  reauthentication_.end_exchange();
  if (endpoint_stats_ != nullptr) ++endpoint_stats_->reauthentication_failures;
  fail_session(reason, false, false, now, true, std::move(message));
}

}  // namespace tether::session
