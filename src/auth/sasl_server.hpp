// SaslServerAuthenticator is the server's GNU SASL policy: SCRAM-SHA-256-PLUS, SCRAM-SHA-256 and
// PLAIN checked against the users file's SCRAM verifiers, and EXTERNAL from the verified client
// certificate, each exchange a session::ServerAuthentication.
//
// Contracts of every exchange it makes:
// - An unknown or disabled user is answered with a fake verifier derived from a server secret and
//   the name (same salt length, the users' most common iteration count), so the exchange runs
//   exactly like a wrong password and fails at the same step with the same kBadCredentials message.
// - -PLUS always binds to ConnectionSecurity::channel_binding (tls-exporter); SCRAM-SHA-256 refuses
//   a client that says `y` (it supports binding but thinks the server does not) when the connection
//   has a binding and -PLUS is offered: that is a downgrade.
// - PLAIN only on a confidential connection; the password is checked by deriving StoredKey with
//   the stored salt and iterations (no plaintext is kept), compared with CRYPTO_memcmp.
//   After allow_deferral() that check (the PBKDF2, thousands of iterations) is handed to the caller
//   as DeferredWork, and resume() gives the verdict; otherwise it runs inside the step.
// - EXTERNAL: the principal is peer_certificate_identity; an authzid different from it is
//   kNotPermitted. SCRAM and PLAIN: an authzid different from the authid is kNotPermitted.
// - Credential lifetime: SCRAM and PLAIN give the users file's password expiry minus the wall
//   clock, EXTERNAL gives ConnectionSecurity::peer_certificate_lifetime; none when there is no
//   expiry. A password or certificate already expired is refused with kCredentialExpired, and for
//   a password only once its proof checked out: until then an expired user's exchange runs like
//   any other's, and a wrong password for it gets the ordinary kBadCredentials answer.
// - The principal is read only after GNU SASL says GSASL_OK; the server-final message (`v=`) is the
//   kSucceeded step's output. Input over 4096 bytes is refused; nothing throws.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/mechanism.hpp"
#include "auth/user_store.hpp"
#include "session/authenticator.hpp"

namespace tether::auth {

struct SaslServerConfig {
  // Offered in this order when their configuration is present: SCRAM and PLAIN need `users`;
  // EXTERNAL is offered only when listed (add it when the transport verifies client certificates,
  // --client-ca). OAUTHBEARER is not a GNU SASL mechanism and is ignored here.
  std::vector<Mechanism> mechanisms = {Mechanism::kScramSha256Plus, Mechanism::kScramSha256,
                                       Mechanism::kPlain};
  std::shared_ptr<UserDirectory> users;
  // Key of the fake verifiers. Empty: 32 random bytes for this process (fake salts then change at
  // a restart, which a patient prober could notice; give a persistent secret to avoid that).
  std::vector<std::byte> fake_verifier_secret;
  // Iterations of the fake verifiers; 0: the count most users have (UserDirectory::
  // typical_iterations), so an unknown user's iteration count looks like a real one's.
  std::uint32_t fake_iterations = 0;
  // The wall clock password expiries are compared with; empty: std::chrono::system_clock::now.
  std::function<std::chrono::system_clock::time_point()> wall_clock;
};

// The fake verifier of `name` for `secret` (exposed for tests).
[[nodiscard]] ScramVerifier fake_verifier(std::span<const std::byte> secret, std::string_view name,
                                          std::uint32_t iterations);

class SaslServerAuthenticator final : public session::ServerAuthenticator {
 public:
  explicit SaslServerAuthenticator(SaslServerConfig config);
  ~SaslServerAuthenticator() override;

  [[nodiscard]] std::vector<std::string> mechanisms() const override;
  // nullptr for a mechanism not offered, or one the connection cannot use: -PLUS without a channel
  // binding, PLAIN on a non-confidential connection, EXTERNAL without a certificate identity.
  [[nodiscard]] std::unique_ptr<session::ServerAuthentication> start(
      std::string_view mechanism, const session::ConnectionSecurity& security) override;

  struct Shared;  // what the exchanges keep of the configuration

 private:
  std::shared_ptr<const Shared> shared_;
};

}  // namespace tether::auth
