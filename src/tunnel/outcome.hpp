// ClientOutcome is what `tether client` and `tether stdio` do when their session ends: exit with a
// code a script can act on, or put a new session in place of a lost one; client_outcome() decides.
#pragma once

#include "session/events.hpp"
#include "transport/transport_error.hpp"

namespace tether::tunnel {

// Exit codes of `tether client` and `tether stdio` (the README lists them).
inline constexpr int kExitGraceful = 0;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitFingerprintMismatch = 3;
// The server no longer has the session (restarted: stateless reset; linger expired; shut down).
inline constexpr int kExitSessionLost = 4;
inline constexpr int kExitUnreachable = 5;   // reconnect limit reached
inline constexpr int kExitRefused = 6;       // protocol error, auth failed, refused by the server
inline constexpr int kExitTargetFailed = 7;  // stdio: the target was not allowed or not reachable
inline constexpr int kExitStreamReset = 8;   // stdio: the stream was reset (by either side)
// The server refused the credentials (or we refused it), or an operator revoked the session.
inline constexpr int kExitAuthFailed = 9;
// A forward asked for could not be set up: a local port in use or not bindable, or a -R the server
// refused (ssh's ExitOnForwardFailure; ClientTunnelOptions::exit_on_forward_failure): a
// configuration error, the README's 2.
inline constexpr int kExitForwardFailed = kExitUsage;

struct ClientOutcome {
  bool new_session = false;       // start a new session and keep running
  int exit_code = kExitGraceful;  // otherwise: exit with this
  friend bool operator==(const ClientOutcome&, const ClientOutcome&) = default;
};

// What the outcome depends on besides the event.
struct OutcomePolicy {
  // A lost session is replaced by a new one (`tether client`'s default); false exits with
  // kExitSessionLost (--exit-on-session-loss, and always for stdio: its stream cannot continue
  // in another session).
  bool new_session_on_loss = true;
  // The exit code of a graceful end (`tether stdio`: how its one stream ended).
  int graceful_exit_code = kExitGraceful;
};

// The client's outcome of events::Closed:
// - graceful: shutdown, not transient (either side closed; both Close messages exchanged), or
//   shutdown by this side -> exit graceful_exit_code;
// - session lost: the server no longer has the session (unknown-session: stateless reset or a
//   refused resume; linger-expired), or the peer ended it saying that trying again may succeed
//   (transient from the peer, whatever the reason: shutdown when the server stops,
//   lack-of-resources when it made room) -> a new session, or exit kExitSessionLost;
// - reconnect-exhausted, by this side (it stopped trying to reach the server) -> kExitUnreachable;
// - auth-failed, credentials-expired or revoked, not transient (wrong or missing credentials, a
//   server that does not authenticate or cannot prove it, an operator's revocation: never
//   replaced by a new session) -> kExitAuthFailed;
// - anything else (protocol error, refused, idle timeout, aborted) -> kExitRefused.
[[nodiscard]] ClientOutcome client_outcome(const session::events::Closed& closed,
                                           const OutcomePolicy& policy);

// The exit code of a transport error no retry can fix (transport::is_fatal).
[[nodiscard]] int fatal_exit_code(transport::TransportErrorKind kind);

}  // namespace tether::tunnel
