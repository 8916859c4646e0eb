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
  // Server: a session whose lifetime passed must complete a re-authentication by then, or it
  // ends, connected or not. Set once per lifetime: when the lifetime passes during an exchange, or
  // at the first resume past it; never moved later (reconnecting does not buy a new grace); cleared
  // only by a successful re-authentication.
  std::optional<Time> grace_end;
  // Server: stream data may still arrive in the grace (up to the credit the client had), because
  // the lifetime passed while an exchange ran on a connected session and data was in flight. Not
  // so after a resume past the lifetime (an honest client sends nothing before Reauthenticated),
  // nor for an exchange begun after the lifetime passed: then stream data is use.
  bool grace_allows_data = false;
  // Client: new stream data is held while this is set (from the lifetime's end) until the
  // exchange completes or until hold_end, whichever comes first; past it the data flows and the
  // server decides (it ends the session, or counts the frames in audit mode), so the client never
  // holds data without end. Like the server's grace, the hold's clock starts when the lifetime
  // passes on a connected session or at the first resume after it, once per lifetime.
  bool holding = false;
  std::optional<Time> hold_end;

  // The exchange in flight: one of these is set, on its side, while it runs.
  std::unique_ptr<ServerAuthentication> server_exchange;
  std::unique_ptr<ClientAuthentication> client_exchange;
  std::optional<Time> started;  // when the exchange in flight began (on this side)
  // When the exchange in flight must have finished: the handshake timeout of connected time (its
  // messages ride the control stream and continue after a resume; on a server whose session is
  // past its lifetime, grace_end bounds it all the same).
  std::optional<Time> exchange_deadline;
  // While suspended, the exchange's clock stops: what was left of it (exchange_deadline unset).
  std::optional<Duration> exchange_time_left;
  std::optional<Time> last_started;  // the once-per-interval rule
  // Client: when it sent the last message the next verdict answers (the Hello or the login's last
  // AuthResponse; Reauthenticate or the exchange's last AuthResponse). The server's verdict comes
  // after it, so a lifetime counted from here never ends after the server's, however long the
  // verdict took to arrive (a slow network, a suspension before it was delivered).
  std::optional<Time> request_sent;
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
    exchange_time_left.reset();
  }
};

}  // namespace tether::session
