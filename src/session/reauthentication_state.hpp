// ReauthenticationState is one session's part for its lifetime and in-place re-authentication:
// when the lifetime ends, the exchange in flight (at most one) and, on a client, when to start
// the next one. Session drives it (session_reauthentication.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "session/authenticator.hpp"
#include "session/types.hpp"

namespace tether::session {

struct ReauthenticationState {
  // Both sides: when the session's current lifetime ends (nullopt: no limit). Reset by every
  // successful re-authentication.
  std::optional<Time> lifetime_end;
  // The lifetime ended and no re-authentication has completed since. Server: the verdict was
  // deferred (audit, on-use, an exchange in flight, a suspension). Client: new stream data is
  // held until the exchange completes.
  bool lifetime_passed = false;
  // Server: a session whose lifetime passed must complete a re-authentication by then (set when
  // the lifetime passes during an exchange, or the session resumes past it); then it ends.
  std::optional<Time> grace_end;

  // The exchange in flight: one of these is set, on its side, while it runs.
  std::unique_ptr<ServerAuthentication> server_exchange;
  std::unique_ptr<ClientAuthentication> client_exchange;
  std::optional<Time> started;  // when the exchange in flight began (on this side)
  // When the exchange in flight must have finished; pushed back while the session is suspended
  // (its messages ride the control stream and continue after the resume).
  std::optional<Time> exchange_deadline;
  std::optional<Time> last_started;  // the once-per-interval rule
  // Client: when to start the next exchange (nullopt: none is due, e.g. the lifetime is unlimited).
  std::optional<Time> next_attempt;
  // Exchanges begun on this session, in order; both sides count alike, and the count names the
  // channel binding of each (see reauthentication_binding in key_schedule.hpp).
  std::uint64_t sequence = 0;

  [[nodiscard]] bool in_progress() const { return started.has_value(); }
  void end_exchange() {
    server_exchange.reset();
    client_exchange.reset();
    started.reset();
    exchange_deadline.reset();
  }
};

}  // namespace tether::session
