// What the client does when its session ends (client_outcome, over every reason, side and transient
// flag that matters) and when a connect fails (is_fatal, connect_error_kind, fatal_exit_code).
#include <gtest/gtest.h>

#include <asio.hpp>

#include "transport/transport_error.hpp"
#include "tunnel/outcome.hpp"

namespace tether::tunnel {
namespace {

using transport::TransportErrorKind;
using wire::Reason;

constexpr ClientOutcome kNewSession{true, kExitGraceful};
constexpr ClientOutcome exits(int code) {
  return ClientOutcome{false, code};
}

// One end of a session, and the outcome with and without a new session on loss.
struct Row {
  Reason reason;
  bool by_peer;
  bool transient;
  ClientOutcome when_replacing;  // tether client's default
  ClientOutcome when_exiting;    // --exit-on-session-loss, and stdio
  const char* what;
};

const Row kRows[] = {
    // Graceful ends, from either side.
    {Reason::kShutdown, false, false, exits(0), exits(0), "our close (SIGINT) completed"},
    {Reason::kShutdown, true, false, exits(0), exits(0), "the peer closed gracefully"},
    {Reason::kShutdown, false, true, exits(0), exits(0), "our own transient shutdown"},
    // The defect of issue #13: SIGTERM to the server sends Abort(shutdown, transient).
    {Reason::kShutdown, true, true, kNewSession, exits(kExitSessionLost), "the server stopped"},
    // The server no longer has the session.
    {Reason::kUnknownSession, true, false, kNewSession, exits(kExitSessionLost), "stateless reset"},
    {Reason::kUnknownSession, true, true, kNewSession, exits(kExitSessionLost),
     "unknown, transient"},
    {Reason::kLingerExpired, true, false, kNewSession, exits(kExitSessionLost), "server's linger"},
    {Reason::kLingerExpired, false, false, kNewSession, exits(kExitSessionLost), "our linger"},
    // The client gave up reaching the server (the session reports it transient).
    {Reason::kReconnectExhausted, false, true, exits(kExitUnreachable), exits(kExitUnreachable),
     "reconnect limit"},
    {Reason::kReconnectExhausted, false, false, exits(kExitUnreachable), exits(kExitUnreachable),
     "reconnect limit, not transient"},
    // A server at its limits made room: transient from the peer is a loss, else a refusal.
    {Reason::kLackOfResources, true, true, kNewSession, exits(kExitSessionLost), "room made"},
    {Reason::kLackOfResources, true, false, exits(kExitRefused), exits(kExitRefused),
     "out of resources for good"},
    {Reason::kAdministrativelyProhibited, true, true, kNewSession, exits(kExitSessionLost),
     "prohibited for now"},
    {Reason::kAdministrativelyProhibited, true, false, exits(kExitRefused), exits(kExitRefused),
     "prohibited"},
    // Refusals and errors, either side.
    {Reason::kProtocolError, false, false, exits(kExitRefused), exits(kExitRefused),
     "the peer broke the protocol"},
    {Reason::kProtocolError, true, false, exits(kExitRefused), exits(kExitRefused),
     "the peer says we broke the protocol"},
    {Reason::kAuthFailed, false, false, exits(kExitAuthFailed), exits(kExitAuthFailed),
     "we refused the server's authentication (or had no usable credential)"},
    {Reason::kAuthFailed, true, false, exits(kExitAuthFailed), exits(kExitAuthFailed),
     "the server refused the credentials"},
    {Reason::kCredentialsExpired, true, false, exits(kExitAuthFailed), exits(kExitAuthFailed),
     "credentials expired"},
    // An operator revoked the session: a new one with the same credential would undo that.
    {Reason::kRevoked, true, false, exits(kExitAuthFailed), exits(kExitAuthFailed), "revoked"},
    {Reason::kIdleTimeout, true, false, exits(kExitRefused), exits(kExitRefused), "idle timeout"},
    {Reason::kTooMuchOutstandingData, true, false, exits(kExitRefused), exits(kExitRefused),
     "too much outstanding data"},
    {Reason::kUnacceptablePerformance, true, false, exits(kExitRefused), exits(kExitRefused),
     "unacceptable performance"},
    {Reason::kApplicationAbort, false, false, exits(kExitRefused), exits(kExitRefused),
     "our application aborted"},
    {Reason::kApplicationAbort, false, true, exits(kExitRefused), exits(kExitRefused),
     "our transient abort is no loss"},
    {Reason::kUnspecified, true, false, exits(kExitRefused), exits(kExitRefused), "unspecified"},
    {Reason::kReconnectExhausted, true, false, exits(kExitRefused), exits(kExitRefused),
     "a peer's meaningless reconnect-exhausted"},
};

TEST(ClientOutcome, EveryRowOfTheTable) {
  for (const Row& row : kRows) {
    const session::events::Closed closed{row.reason, row.by_peer, row.transient, 0};
    EXPECT_EQ(client_outcome(closed, {.new_session_on_loss = true}), row.when_replacing)
        << row.what << " (new session on loss)";
    EXPECT_EQ(client_outcome(closed, {.new_session_on_loss = false}), row.when_exiting)
        << row.what << " (--exit-on-session-loss)";
  }
}

// Over every reason, side and flag: without a new session on loss there is never a new session,
// and with it the only difference is a new session in place of kExitSessionLost.
TEST(ClientOutcome, ExitingOnLossOnlyTurnsNewSessionsIntoExitFour) {
  for (unsigned code = 0; code <= wire::kMaxReason; ++code) {
    for (const bool by_peer : {false, true}) {
      for (const bool transient : {false, true}) {
        const session::events::Closed closed{static_cast<Reason>(code), by_peer, transient, 7};
        const auto replacing = client_outcome(closed, {.new_session_on_loss = true});
        const auto exiting = client_outcome(closed, {.new_session_on_loss = false});
        EXPECT_FALSE(exiting.new_session) << code;
        if (replacing.new_session) {
          EXPECT_EQ(exiting.exit_code, kExitSessionLost) << code;
        } else {
          EXPECT_EQ(exiting, replacing) << code;
          EXPECT_NE(replacing.exit_code, kExitSessionLost) << code;
        }
        // A transient end the peer sent always leaves room for a new session.
        if (by_peer && transient) {
          EXPECT_TRUE(replacing.new_session) << code;
        }
      }
    }
  }
}

TEST(ClientOutcome, StdioGracefulEndExitsWithHowItsStreamEnded) {
  const OutcomePolicy stdio{.new_session_on_loss = false, .graceful_exit_code = kExitStreamReset};
  EXPECT_EQ(client_outcome({Reason::kShutdown, false, false, 0}, stdio), exits(kExitStreamReset));
  EXPECT_EQ(client_outcome({Reason::kShutdown, true, false, 0}, stdio), exits(kExitStreamReset));
  // A lost session or an error is not the stream's graceful end.
  EXPECT_EQ(client_outcome({Reason::kShutdown, true, true, 0}, stdio), exits(kExitSessionLost));
  EXPECT_EQ(client_outcome({Reason::kUnknownSession, true, false, 0}, stdio),
            exits(kExitSessionLost));
  EXPECT_EQ(client_outcome({Reason::kProtocolError, true, false, 0}, stdio), exits(kExitRefused));
}

TEST(TransportError, OnlyAFingerprintMismatchIsFatal) {
  EXPECT_TRUE(transport::is_fatal(TransportErrorKind::kFingerprintMismatch));
  for (const auto kind :
       {TransportErrorKind::kResolve, TransportErrorKind::kRefused, TransportErrorKind::kTimedOut,
        TransportErrorKind::kUnreachable, TransportErrorKind::kConnect,
        TransportErrorKind::kHandshake, TransportErrorKind::kResources}) {
    EXPECT_FALSE(transport::is_fatal(kind)) << transport::to_string(kind);
  }
  EXPECT_EQ(fatal_exit_code(TransportErrorKind::kFingerprintMismatch), kExitFingerprintMismatch);
}

TEST(TransportError, ConnectErrorsAreClassified) {
  EXPECT_EQ(transport::connect_error_kind(asio::error::connection_refused),
            TransportErrorKind::kRefused);
  EXPECT_EQ(transport::connect_error_kind(asio::error::connection_reset),
            TransportErrorKind::kRefused);
  EXPECT_EQ(transport::connect_error_kind(asio::error::timed_out), TransportErrorKind::kTimedOut);
  EXPECT_EQ(transport::connect_error_kind(asio::error::network_unreachable),
            TransportErrorKind::kUnreachable);
  EXPECT_EQ(transport::connect_error_kind(asio::error::host_unreachable),
            TransportErrorKind::kUnreachable);
  EXPECT_EQ(transport::connect_error_kind(asio::error::address_family_not_supported),
            TransportErrorKind::kConnect);
}

// A fingerprint mismatch from a message that does not say "fingerprint", and a message that does
// say it from another failure: the decision is the kind's, not the text's.
TEST(TransportError, TheDecisionIgnoresTheMessage) {
  const transport::TransportError quiet{TransportErrorKind::kFingerprintMismatch, "certificate"};
  const transport::TransportError loud{TransportErrorKind::kResolve,
                                       "cannot resolve fingerprint.example: not found"};
  EXPECT_TRUE(transport::is_fatal(quiet.kind));
  EXPECT_FALSE(transport::is_fatal(loud.kind));
}

}  // namespace
}  // namespace tether::tunnel
