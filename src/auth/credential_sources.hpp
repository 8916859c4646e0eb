// The CLI's client credential sources as ExpiringCredentials (credential_refresh.hpp): a password,
// a token file and a client certificate each say whose credential they hold, since when and until
// when, so that the client can report them and schedule their renewal like the token command's
// RefreshingTokenSource (token_refresher.hpp). A password the client holds does not expire as far
// as the client knows (the server's users file may still give it an expiry, which the server
// enforces).
#pragma once

#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

#include "auth/credential_refresh.hpp"
#include "tether/expected.hpp"

namespace tether::auth {

// A user name and password (SCRAM, PLAIN): no expiry the client can know.
class PasswordCredential final : public ExpiringCredential {
 public:
  explicit PasswordCredential(std::string user) : user_(std::move(user)) {}
  [[nodiscard]] std::string principal() const override { return user_; }
  [[nodiscard]] std::optional<WallTime> start() const override { return std::nullopt; }
  [[nodiscard]] std::optional<WallTime> expiry() const override { return std::nullopt; }
  [[nodiscard]] std::optional<WallTime> absolute_last_refresh() const override {
    return std::nullopt;
  }

 private:
  std::string user_;
};

// A bearer token read from a file for every exchange (so that a rewritten file is used at once);
// its unverified claims (sub, iat, exp) describe the last token read. Thread-safe.
class TokenFileCredential final : public ExpiringCredential {
 public:
  explicit TokenFileCredential(std::filesystem::path path) : path_(std::move(path)) {}
  // Reads the file (bounded; see read_token_file) and remembers the token's claims.
  Expected<std::string, std::string> token();

  [[nodiscard]] std::string principal() const override;
  [[nodiscard]] std::optional<WallTime> start() const override;
  [[nodiscard]] std::optional<WallTime> expiry() const override;
  [[nodiscard]] std::optional<WallTime> absolute_last_refresh() const override {
    return std::nullopt;
  }

 private:
  std::filesystem::path path_;
  mutable std::mutex mutex_;
  std::string subject_;
  std::optional<WallTime> issued_at_;
  std::optional<WallTime> expiry_;
};

// A TLS client certificate (EXTERNAL): its subject's common name, notBefore and notAfter, read
// from the PEM file when loaded. Renewing it means a new file and new connections.
class CertificateCredential final : public ExpiringCredential {
 public:
  // The first certificate of a PEM file; an error names the file and what is wrong with it.
  [[nodiscard]] static Expected<CertificateCredential, std::string> load(
      const std::filesystem::path& path);

  [[nodiscard]] std::string principal() const override { return common_name_; }
  [[nodiscard]] std::optional<WallTime> start() const override { return not_before_; }
  [[nodiscard]] std::optional<WallTime> expiry() const override { return not_after_; }
  [[nodiscard]] std::optional<WallTime> absolute_last_refresh() const override {
    return std::nullopt;
  }

 private:
  std::string common_name_;  // empty when the subject has none; from the file: escape it in logs
  WallTime not_before_;
  WallTime not_after_;
};

// One line for the client's log about `credential` at `now`: whose it is, when it expires, and,
// once `policy`'s refresh window has passed (start + validity x (factor + jitter x unit_random);
// within `buffer` of the expiry when the start is unknown), that it is due for renewal
// (`renewal_due`). Empty for a credential that does not expire.
[[nodiscard]] std::string describe_expiry(const ExpiringCredential& credential, WallTime now,
                                          const RefreshPolicy& policy, double unit_random,
                                          bool& renewal_due);

}  // namespace tether::auth
