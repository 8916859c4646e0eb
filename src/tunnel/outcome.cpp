#include "tunnel/outcome.hpp"

namespace tether::tunnel {

ClientOutcome client_outcome(const session::events::Closed& closed, const OutcomePolicy& policy) {
  using wire::Reason;
  const ClientOutcome lost = policy.new_session_on_loss ? ClientOutcome{true, kExitGraceful}
                                                        : ClientOutcome{false, kExitSessionLost};
  const bool peer_says_transient = closed.by_peer && closed.transient;
  switch (closed.reason) {
    case Reason::kShutdown:
      if (peer_says_transient) return lost;  // the server is stopping; it may be back
      return {false, policy.graceful_exit_code};
    case Reason::kUnknownSession:
    case Reason::kLingerExpired:
      return lost;
    case Reason::kReconnectExhausted:
      if (!closed.by_peer) return {false, kExitUnreachable};
      break;
    case Reason::kAuthFailed:
    case Reason::kCredentialsExpired:
    case Reason::kRevoked:
      // A new session with the same credential would be refused, or would undo an operator's
      // revocation: exit, and let whoever runs the client decide.
      if (!closed.transient) return {false, kExitAuthFailed};
      break;
    default:
      break;
  }
  if (peer_says_transient) return lost;
  return {false, kExitRefused};
}

int fatal_exit_code(transport::TransportErrorKind kind) {
  switch (kind) {
    case transport::TransportErrorKind::kFingerprintMismatch:
      return kExitFingerprintMismatch;
    default:
      return kExitRefused;
  }
}

}  // namespace tether::tunnel
