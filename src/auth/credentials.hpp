// The authentication the command line and the TOML file configure: the server's set of mechanisms
// (SCRAM, PLAIN and EXTERNAL over GNU SASL; OAUTHBEARER with JWS) behind one ServerAuthenticator,
// and the client's credential (a password, a token file or command, a certificate) behind one
// ClientAuthenticator.
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/credential_refresh.hpp"
#include "auth/mechanism.hpp"
#include "auth/token_deny_list.hpp"
#include "auth/user_store.hpp"
#include "session/authenticator.hpp"
#include "tether/expected.hpp"

namespace tether::auth {

struct ServerAuthenticationConfig {
  // Offered mechanisms, in order. Empty: every mechanism whose configuration is present, SCRAM-PLUS
  // first (SCRAM-SHA-256-PLUS, SCRAM-SHA-256, PLAIN with users; OAUTHBEARER with a JWKS; EXTERNAL
  // with client certificates).
  std::vector<Mechanism> mechanisms;
  std::filesystem::path users_file;  // SCRAM verifiers (see user_store.hpp); empty: none
  std::filesystem::path jwks_file;   // OAUTHBEARER's keys; empty: no OAUTHBEARER
  std::string issuer;                // required iss (empty: any)
  std::string audience;              // required aud (required with a JWKS)
  std::string required_scope;        // a scope every token must grant (empty: none)
  bool client_certificates = false;  // the transport verifies client certificates (EXTERNAL)
  // The users already opened (the server keeps it to act on reloads); when set, users_file is
  // not opened again (but must still be given: it says the users are configured).
  std::shared_ptr<UserDirectory> user_directory;
  // Token ids OAUTHBEARER refuses (--token-deny-list); null: none.
  std::shared_ptr<const TokenDenyList> token_deny_list;
  // Key of the fake verifiers given to unknown users; persistent so they survive restarts.
  std::vector<std::byte> fake_verifier_secret;
};

// The server's authenticator; an error names what is missing or unreadable (refuse to start).
[[nodiscard]] Expected<std::shared_ptr<session::ServerAuthenticator>, std::string>
make_server_authenticator(const ServerAuthenticationConfig& config);

struct ClientCredentialConfig {
  std::optional<Mechanism> mechanism;  // pinned (--auth-mechanism); nullopt: from the credential
  std::string user;                    // SCRAM and PLAIN
  std::string password;                // SCRAM and PLAIN (from a file, a prompt or TETHER_PASSWORD)
  std::filesystem::path token_file;    // OAUTHBEARER: read for every exchange
  // OAUTHBEARER: its stdout is the token. A JWT is refreshed ahead of its expiry on `refresh`'s
  // schedule by a worker thread (token_refresher.hpp); any other token is fetched per exchange.
  std::string token_command;
  RefreshPolicy refresh;
  bool certificate = false;                // EXTERNAL: the TLS client certificate is configured
  std::filesystem::path certificate_file;  // its PEM file, to describe it (may be empty)
  std::string authorization_identity;      // optional authzid
};

// The client's authenticator, or nullptr when no credential is configured (the client does not
// authenticate); an error when the configuration is contradictory.
[[nodiscard]] Expected<std::shared_ptr<session::ClientAuthenticator>, std::string>
make_client_authenticator(const ClientCredentialConfig& config);

// The credential the client's configuration names, as an ExpiringCredential (credential_sources.hpp
// and token_refresher.hpp): the token command's or the token file's source (the same object the
// authenticator reads, when `authenticator_source` is the one make_client_authenticator made), the
// password, or the client certificate; nullptr when there is none. An error when the certificate
// file cannot be read.
[[nodiscard]] Expected<std::shared_ptr<ExpiringCredential>, std::string> client_credential(
    const ClientCredentialConfig& config, const session::ClientAuthenticator* authenticator_source);

// A token from a file (trailing whitespace trimmed), bounded in size.
[[nodiscard]] Expected<std::string, std::string> read_token_file(const std::filesystem::path& path);
// A token from a command's standard output (run through /bin/sh -c, like AWS's credential_process;
// its exit status must be 0), bounded in size and time.
[[nodiscard]] Expected<std::string, std::string> run_token_command(const std::string& command);

}  // namespace tether::auth
