// The client's GNU SASL mechanisms: a ScramCredential (user name, password, and the salted password
// kept from an earlier exchange), the session::ClientAuthentication of SCRAM-SHA-256-PLUS,
// SCRAM-SHA-256, PLAIN and EXTERNAL, and SaslClientAuthenticator, which picks one per connection.
//
// Contracts:
// - SCRAM's finish() succeeds only when the server-final message carries the server's correct
//   signature (mutual authentication); a missing or wrong `v=` fails.
// - A server-first message whose nonce does not strictly extend the client's nonce is refused
//   before GNU SASL sees it (Kafka CVE-2024-56128).
// - The channel binding is given to GNU SASL only for -PLUS (GNU SASL 2.2's plain SCRAM client
// fails
//   when it has one).
// - After a verified exchange the salted password (for that salt and iteration count) is kept in
//   the credential, so that the next exchange with the same salt skips PBKDF2.
// - PLAIN is used only on a confidential connection. Nothing throws.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "auth/mechanism.hpp"
#include "session/authenticator.hpp"

namespace tether::auth {

// A user's password credential, shared by the exchanges of one client (thread-safe).
class ScramCredential {
 public:
  ScramCredential(std::string user, std::string password);
  ~ScramCredential();
  ScramCredential(const ScramCredential&) = delete;
  ScramCredential& operator=(const ScramCredential&) = delete;

  [[nodiscard]] const std::string& user() const { return user_; }
  [[nodiscard]] const std::string& password() const { return password_; }

  // The kept salted password (hex, as GNU SASL takes it) when it was made for this salt (base64)
  // and iteration count (decimal), else nullopt.
  [[nodiscard]] std::optional<std::string> salted_password(std::string_view salt,
                                                           std::string_view iterations) const;
  // Keeps the salted password of a verified exchange.
  void remember(std::string salt, std::string iterations, std::string salted_password);
  // How many exchanges derived the salted password from the password (ran PBKDF2).
  [[nodiscard]] std::uint64_t derivations() const;
  void count_derivation();

 private:
  std::string user_;
  std::string password_;
  mutable std::mutex mutex_;
  std::string salt_;
  std::string iterations_;
  std::string salted_password_;
  std::uint64_t derivations_ = 0;
};

struct SaslClientConfig {
  // Pinned mechanism; nullopt: SCRAM-SHA-256-PLUS when the connection has a channel binding, else
  // SCRAM-SHA-256 (with a credential), else EXTERNAL.
  std::optional<Mechanism> mechanism;
  std::shared_ptr<ScramCredential> credential;  // SCRAM and PLAIN
  std::string authorization_identity;           // optional authzid (all four mechanisms)
};

// The exchange for `mechanism` on a connection, or nullptr when it cannot be used there (-PLUS
// without a binding, PLAIN not confidential, SCRAM or PLAIN without a credential, OAUTHBEARER).
[[nodiscard]] std::unique_ptr<session::ClientAuthentication> start_sasl_client(
    Mechanism mechanism, const SaslClientConfig& config,
    const session::ConnectionSecurity& security);

class SaslClientAuthenticator final : public session::ClientAuthenticator {
 public:
  explicit SaslClientAuthenticator(SaslClientConfig config) : config_(std::move(config)) {}
  // nullptr when the configured (or chosen) mechanism cannot be used on this connection.
  [[nodiscard]] std::unique_ptr<session::ClientAuthentication> start(
      const session::ConnectionSecurity& security) override;

 private:
  SaslClientConfig config_;
};

}  // namespace tether::auth
