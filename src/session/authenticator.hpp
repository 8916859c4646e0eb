// Authenticator is the sans-I/O contract between the session core and one SASL-style
// authentication exchange: bytes in, bytes out, and at the end a principal and how long its
// credential stays valid. The core drives it; the mechanisms (GNU SASL's SCRAM, PLAIN and EXTERNAL,
// OAUTHBEARER with JWS verification) live in tether_auth, so the core links neither GNU SASL nor
// OpenSSL's TLS.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "session/types.hpp"

namespace tether::session {

// What the transport knows about one connection that an exchange may use. Owned copies: the core
// keeps it for as long as the exchange runs.
struct ConnectionSecurity {
  // tether's own exporter value (session keys and resume proofs), as passed to add_path / accept.
  std::vector<std::byte> keying_material;
  // RFC 9266 tls-exporter channel binding (32 bytes from the label "EXPORTER-Channel-Binding");
  // empty when the connection has none, and then no -PLUS mechanism is used.
  std::vector<std::byte> channel_binding;
  // The connection is encrypted and the server authenticated (TLS): PLAIN and bearer tokens are
  // sent or accepted only then.
  bool confidential = false;
  // Server side, mTLS: the identity taken from the client certificate the transport verified
  // (SAN or subject CN, as the server is configured); empty when the client presented none.
  std::string peer_certificate_identity;
  // With that identity: the certificate's notAfter minus now (zero once past), for EXTERNAL.
  std::optional<Duration> peer_certificate_lifetime;
};

// Who a session's client is, as the server authenticated it (an empty principal: the server runs
// without authentication, --auth none). The client learns the principal from Welcome.
struct AuthenticatedPeer {
  std::string principal;
  std::string mechanism;
  std::vector<std::string> scopes;
  std::optional<Time> credential_expiry;  // when the credential stops being valid, if it expires
  // The credential's own id when it has one (a token's jti), for revocation by credential
  // (ServerEndpoint::revoke_credential); empty otherwise. A peer string: escape it in logs.
  std::string credential_id;
};

// Why an exchange failed. Each maps to one answer on the wire; none tells a stranger more than
// the kind of failure.
enum class AuthenticationFailure : std::uint8_t {
  kBadCredentials,     // wrong password, unknown user (answered alike), bad signature, unknown key
  kCredentialExpired,  // expired, or not yet valid
  kNotPermitted,       // authenticated, but the authorization identity or scope is refused
  kUnsupportedMechanism,  // the mechanism is not offered (on this connection)
  kMalformed,             // the peer broke the mechanism's syntax
  kThrottled,             // too many recent failures from this source or for this user
  kUnavailable,           // the credential could not be obtained or checked now (transient)
};
[[nodiscard]] std::string_view to_string(AuthenticationFailure failure);
// The reason a session or attempt ends with for a failure: credentials-expired,
// administratively-prohibited (not permitted) or auth-failed.
[[nodiscard]] Reason reason_for(AuthenticationFailure failure);

// CPU-bound work a server exchange hands to its caller instead of doing it on the caller's thread
// (PLAIN's PBKDF2), when the caller allowed it (ServerAuthentication::allow_deferral). It holds
// owned copies of what it reads and writes only its own result, so that any one thread may run it,
// once; the exchange reads that result in resume(), which its caller calls on the exchange's own
// thread after run() has returned (the hand-over between the threads orders the two).
class DeferredWork {
 public:
  virtual ~DeferredWork() = default;
  virtual void run() = 0;
};

// One step of an exchange, on either side.
struct AuthenticationStep {
  enum class Status : std::uint8_t {
    kContinue,   // send `output` and wait for the peer's next message
    kSucceeded,  // done: send `output` if non-empty (a server's final message, e.g. SCRAM's v=)
    kFailed,     // done: nothing more is sent by the mechanism
  };
  Status status = Status::kFailed;
  std::vector<std::byte> output;
  // kSucceeded on the server: the authenticated principal (the authorization identity when one
  // was given and allowed, else the authentication identity).
  std::string principal;
  // kSucceeded: how long the credential stays valid from now, when it expires (a token's exp; a
  // password has none). The server ends the session when it passes (credentials-expired);
  // zero means already expired, and the session ends at once ("expired at login" is "expire now").
  std::optional<Duration> credential_lifetime;
  // kSucceeded on the server: the scopes a token granted (OAUTHBEARER), for per-scope grants;
  // empty for the other mechanisms, whose grants follow the principal.
  std::vector<std::string> scopes;
  // kSucceeded on the server: the credential's id when it has one (OAUTHBEARER: the token's jti),
  // copied into AuthenticatedPeer::credential_id; empty for the other mechanisms.
  std::string credential_id;
  // kFailed: the kind of failure and a message for the peer and the logs that names the mechanism
  // and why, and never holds a secret or anything about another user.
  AuthenticationFailure failure = AuthenticationFailure::kMalformed;
  std::string message;
  // Who the peer claimed to be, once the mechanism has read it (empty before); for throttling per
  // user and for logs (escape it: it is a peer string). Not authenticated unless kSucceeded.
  std::string claimed_identity;
  // Server, only after allow_deferral(): kContinue with nothing to send yet; `deferred` must run
  // (off the caller's thread, once) and then resume() gives the step it decided. Null otherwise.
  std::shared_ptr<DeferredWork> deferred;

  [[nodiscard]] static AuthenticationStep proceed(std::vector<std::byte> output) {
    AuthenticationStep step;
    step.status = Status::kContinue;
    step.output = std::move(output);
    return step;
  }
  [[nodiscard]] static AuthenticationStep fail(AuthenticationFailure failure, std::string message) {
    AuthenticationStep step;
    step.status = Status::kFailed;
    step.failure = failure;
    step.message = std::move(message);
    return step;
  }
};

// The server's half of one exchange on one connection.
class ServerAuthentication {
 public:
  virtual ~ServerAuthentication() = default;
  // The client's first message: the Hello's initial response, or nullopt when it carried none
  // (the mechanism then starts with an empty challenge, as SASL's rules say).
  virtual AuthenticationStep start(std::optional<std::span<const std::byte>> initial_response) = 0;
  // Each later client message.
  virtual AuthenticationStep step(std::span<const std::byte> input) = 0;
  // Called once, before start(), by a caller that can run DeferredWork elsewhere (the
  // ServerEndpoint's handshake, when its runtime has a worker pool). Only then may start() and
  // step() return a step with `deferred` set; a mechanism without costly work ignores it.
  virtual void allow_deferral() {}
  // After the last step's `deferred` work has run: the step it decided (never deferred again).
  virtual AuthenticationStep resume() {
    return AuthenticationStep::fail(AuthenticationFailure::kMalformed, "no deferred work");
  }
};

// The server's authentication policy: the mechanisms it offers and one exchange per connection.
class ServerAuthenticator {
 public:
  virtual ~ServerAuthenticator() = default;
  // Offered mechanisms, preferred first (SASL names, e.g. "SCRAM-SHA-256-PLUS").
  [[nodiscard]] virtual std::vector<std::string> mechanisms() const = 0;
  // An exchange for `mechanism` on a connection, or nullptr when that mechanism is not offered on
  // it (not configured, or it needs what the connection lacks: a binding, a certificate, TLS).
  [[nodiscard]] virtual std::unique_ptr<ServerAuthentication> start(
      std::string_view mechanism, const ConnectionSecurity& security) = 0;
};

// The client's half of one exchange on one connection.
class ClientAuthentication {
 public:
  virtual ~ClientAuthentication() = default;
  [[nodiscard]] virtual std::string mechanism() const = 0;
  // The initial response to send in Hello (kContinue with the bytes; an empty vector is sent as
  // an empty response), or kFailed when the credential cannot be used (unreadable token file...).
  virtual AuthenticationStep start() = 0;
  // A server challenge: kContinue with the answer, or kFailed.
  virtual AuthenticationStep step(std::span<const std::byte> challenge) = 0;
  // The server's final message from Welcome: kSucceeded when it proves the server knew the
  // credential (SCRAM's server signature) or when the mechanism has nothing to check; else
  // kFailed, and the session is not used.
  virtual AuthenticationStep finish(std::span<const std::byte> server_final) = 0;
};

// Makes the client's exchanges: one per Hello (a new session), from the configured credential.
class ClientAuthenticator {
 public:
  virtual ~ClientAuthenticator() = default;
  [[nodiscard]] virtual std::unique_ptr<ClientAuthentication> start(
      const ConnectionSecurity& security) = 0;
};

}  // namespace tether::session
