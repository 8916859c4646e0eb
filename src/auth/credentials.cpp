#include "auth/credentials.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "auth/credential_sources.hpp"
#include "auth/jwks.hpp"
#include "auth/jwt.hpp"
#include "auth/oauthbearer.hpp"
#include "auth/sasl_client.hpp"
#include "auth/sasl_server.hpp"
#include "auth/token_refresher.hpp"
#include "auth/user_store.hpp"

namespace tether::auth {
namespace {

constexpr std::size_t kMaxTokenBytes = 16 * 1024;
constexpr std::chrono::seconds kTokenCommandTimeout{10};

std::string trim_trailing_space(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ' ||
                           text.back() == '\t')) {
    text.pop_back();
  }
  return text;
}

// Offers the SASL mechanisms and OAUTHBEARER behind one list, in the configured order.
class CombinedServerAuthenticator final : public session::ServerAuthenticator {
 public:
  CombinedServerAuthenticator(std::vector<Mechanism> order,
                              std::shared_ptr<SaslServerAuthenticator> sasl,
                              std::shared_ptr<const TokenVerifier> tokens,
                              std::shared_ptr<const TokenDenyList> deny_list)
      : order_(std::move(order)),
        sasl_(std::move(sasl)),
        tokens_(std::move(tokens)),
        deny_list_(std::move(deny_list)) {}

  [[nodiscard]] std::vector<std::string> mechanisms() const override {
    std::vector<std::string> names;
    for (Mechanism mechanism : order_) names.emplace_back(name(mechanism));
    return names;
  }

  [[nodiscard]] std::unique_ptr<session::ServerAuthentication> start(
      std::string_view mechanism_name, const session::ConnectionSecurity& security) override {
    const auto mechanism = mechanism_named(mechanism_name);
    if (!mechanism || std::find(order_.begin(), order_.end(), *mechanism) == order_.end()) {
      return nullptr;
    }
    if (*mechanism == Mechanism::kOAuthBearer) {
      // A bearer token is a replayable secret: accepted only over TLS.
      if (tokens_ == nullptr || !security.confidential) return nullptr;
      return std::make_unique<OAuthBearerServer>(tokens_, deny_list_);
    }
    return sasl_ == nullptr ? nullptr : sasl_->start(mechanism_name, security);
  }

 private:
  std::vector<Mechanism> order_;
  std::shared_ptr<SaslServerAuthenticator> sasl_;
  std::shared_ptr<const TokenVerifier> tokens_;
  std::shared_ptr<const TokenDenyList> deny_list_;
};

// The client's authenticator: SASL mechanisms through GNU SASL, OAUTHBEARER with its provider.
class CombinedClientAuthenticator final : public session::ClientAuthenticator {
 public:
  CombinedClientAuthenticator(std::optional<Mechanism> mechanism, SaslClientConfig sasl,
                              OAuthBearerClient::TokenProvider tokens, std::string authzid,
                              std::shared_ptr<ExpiringCredential> token_source)
      : mechanism_(mechanism),
        sasl_(std::move(sasl)),
        tokens_(std::move(tokens)),
        authzid_(std::move(authzid)),
        token_source_(std::move(token_source)) {}

  // The token file's or command's source the tokens come from (nullptr without tokens).
  [[nodiscard]] const std::shared_ptr<ExpiringCredential>& token_source() const {
    return token_source_;
  }

  [[nodiscard]] std::unique_ptr<session::ClientAuthentication> start(
      const session::ConnectionSecurity& security) override {
    if (tokens_ && (!mechanism_ || *mechanism_ == Mechanism::kOAuthBearer)) {
      // A bearer token is a replayable secret: it goes only over TLS to an authenticated server.
      if (!security.confidential) return nullptr;
      return std::make_unique<OAuthBearerClient>(tokens_, authzid_);
    }
    if (mechanism_) return start_sasl_client(*mechanism_, sasl_, security);
    return SaslClientAuthenticator(sasl_).start(security);
  }

 private:
  std::optional<Mechanism> mechanism_;
  SaslClientConfig sasl_;
  OAuthBearerClient::TokenProvider tokens_;
  std::string authzid_;
  std::shared_ptr<ExpiringCredential> token_source_;
};

}  // namespace

Expected<std::shared_ptr<session::ServerAuthenticator>, std::string> make_server_authenticator(
    const ServerAuthenticationConfig& config) {
  std::vector<Mechanism> order = config.mechanisms;
  const bool users = !config.users_file.empty();
  const bool tokens = !config.jwks_file.empty();
  if (order.empty()) {
    // PLAIN is offered only when --auth lists it: it makes the server run PBKDF2 for every attempt
    // (milliseconds of the event loop each, at the users' iteration count).
    if (users) order = {Mechanism::kScramSha256Plus, Mechanism::kScramSha256};
    if (tokens) order.push_back(Mechanism::kOAuthBearer);
    if (config.client_certificates) order.push_back(Mechanism::kExternal);
  }
  if (order.empty()) {
    return make_unexpected(std::string(
        "no authentication is configured: give --users, --jwks or --client-ca (or --auth none "
        "for development)"));
  }
  for (Mechanism mechanism : order) {
    const bool needs_users = mechanism == Mechanism::kScramSha256Plus ||
                             mechanism == Mechanism::kScramSha256 || mechanism == Mechanism::kPlain;
    if (needs_users && !users) {
      return make_unexpected(std::string(name(mechanism)) + " needs --users FILE");
    }
    if (mechanism == Mechanism::kOAuthBearer && !tokens) {
      return make_unexpected(std::string("OAUTHBEARER needs --jwks FILE"));
    }
    if (mechanism == Mechanism::kExternal && !config.client_certificates) {
      return make_unexpected(std::string("EXTERNAL needs --client-ca FILE"));
    }
  }

  std::shared_ptr<SaslServerAuthenticator> sasl;
  if (users || config.client_certificates) {
    SaslServerConfig sasl_config;
    sasl_config.mechanisms.clear();
    for (Mechanism mechanism : order) {
      if (mechanism != Mechanism::kOAuthBearer) sasl_config.mechanisms.push_back(mechanism);
    }
    if (users && config.user_directory != nullptr) {
      sasl_config.users = config.user_directory;
    } else if (users) {
      auto directory = UserDirectory::open(config.users_file);
      if (!directory) return make_unexpected(directory.error());
      sasl_config.users = *directory;
    } else {
      sasl_config.users = std::make_shared<UserDirectory>(UserStore{});
    }
    sasl_config.fake_verifier_secret = config.fake_verifier_secret;
    sasl = std::make_shared<SaslServerAuthenticator>(std::move(sasl_config));
  }

  std::shared_ptr<const TokenVerifier> verifier;
  if (tokens) {
    if (config.audience.empty()) {
      return make_unexpected(
          std::string("--jwks needs --audience (a token minted for another service must not be "
                      "accepted here)"));
    }
    auto clock = [] { return std::chrono::system_clock::now(); };
    auto file = JwksFile::open(config.jwks_file, clock);
    if (!file) return make_unexpected("--jwks: " + file.error());
    TokenPolicy policy;
    policy.issuer = config.issuer;
    policy.audience = config.audience;
    policy.required_scope = config.required_scope;
    auto created = TokenVerifier::create(TokenVerifier::file_keys(*file), policy, clock);
    if (!created) return make_unexpected(created.error());
    verifier = std::make_shared<const TokenVerifier>(std::move(*created));
  }
  return std::shared_ptr<session::ServerAuthenticator>(
      std::make_shared<CombinedServerAuthenticator>(std::move(order), std::move(sasl),
                                                    std::move(verifier), config.token_deny_list));
}

Expected<std::shared_ptr<session::ClientAuthenticator>, std::string> make_client_authenticator(
    const ClientCredentialConfig& config) {
  const bool password = !config.user.empty();
  const bool token_file = !config.token_file.empty();
  const bool token_command = !config.token_command.empty();
  if (token_file && token_command) {
    return make_unexpected(std::string("give --token-file or --token-command, not both"));
  }
  if (password && (token_file || token_command)) {
    return make_unexpected(std::string("give --user or a token, not both"));
  }
  if (password && config.password.empty()) {
    return make_unexpected(
        std::string("--user needs a password: --password-file FILE, TETHER_PASSWORD, or a "
                    "terminal to ask on"));
  }
  if (!password && !token_file && !token_command && !config.certificate && !config.mechanism) {
    return std::shared_ptr<session::ClientAuthenticator>{};
  }
  if (config.mechanism) {
    const Mechanism pinned = *config.mechanism;
    const bool scram_like = pinned == Mechanism::kScramSha256Plus ||
                            pinned == Mechanism::kScramSha256 || pinned == Mechanism::kPlain;
    if (scram_like && !password) {
      return make_unexpected(std::string(name(pinned)) + " needs --user and a password");
    }
    if (pinned == Mechanism::kOAuthBearer && !token_file && !token_command) {
      return make_unexpected(std::string("OAUTHBEARER needs --token-file or --token-command"));
    }
    if (pinned == Mechanism::kExternal && !config.certificate) {
      return make_unexpected(std::string("EXTERNAL needs --cert and --key"));
    }
  }
  SaslClientConfig sasl;
  sasl.mechanism = config.mechanism;
  if (password) sasl.credential = std::make_shared<ScramCredential>(config.user, config.password);
  sasl.authorization_identity = config.authorization_identity;
  OAuthBearerClient::TokenProvider tokens;
  std::shared_ptr<ExpiringCredential> token_source;
  if (token_file) {
    auto source = std::make_shared<TokenFileCredential>(config.token_file);
    tokens = [source] { return source->token(); };
    token_source = source;
  } else if (token_command) {
    if (auto valid = validate(config.refresh); !valid) return make_unexpected(valid.error());
    auto source = std::make_shared<RefreshingTokenSource>(
        [command = config.token_command] { return run_token_command(command); }, config.refresh);
    tokens = [source] { return source->token(); };
    token_source = source;
  }
  return std::shared_ptr<session::ClientAuthenticator>(
      std::make_shared<CombinedClientAuthenticator>(
          config.mechanism, std::move(sasl), std::move(tokens), config.authorization_identity,
          std::move(token_source)));
}

Expected<std::shared_ptr<ExpiringCredential>, std::string> client_credential(
    const ClientCredentialConfig& config,
    const session::ClientAuthenticator* authenticator_source) {
  if (const auto* combined = dynamic_cast<const CombinedClientAuthenticator*>(authenticator_source);
      combined != nullptr && combined->token_source() != nullptr) {
    return combined->token_source();
  }
  if (!config.token_file.empty()) {
    return std::shared_ptr<ExpiringCredential>(
        std::make_shared<TokenFileCredential>(config.token_file));
  }
  if (!config.user.empty()) {
    return std::shared_ptr<ExpiringCredential>(std::make_shared<PasswordCredential>(config.user));
  }
  if (!config.certificate_file.empty()) {
    auto certificate = CertificateCredential::load(config.certificate_file);
    if (!certificate) return make_unexpected(certificate.error());
    return std::shared_ptr<ExpiringCredential>(
        std::make_shared<CertificateCredential>(std::move(*certificate)));
  }
  return std::shared_ptr<ExpiringCredential>{};
}

Expected<std::string, std::string> read_token_file(const std::filesystem::path& path) {
  std::ifstream input(path, std::ios::binary);
  if (!input) return make_unexpected("cannot read the token file " + path.string());
  std::string token;
  token.resize(kMaxTokenBytes + 1);
  input.read(token.data(), static_cast<std::streamsize>(token.size()));
  token.resize(static_cast<std::size_t>(input.gcount()));
  if (token.size() > kMaxTokenBytes) {
    return make_unexpected("the token file " + path.string() + " is larger than 16 KiB");
  }
  token = trim_trailing_space(std::move(token));
  if (token.empty()) return make_unexpected("the token file " + path.string() + " is empty");
  return token;
}

Expected<std::string, std::string> run_token_command(const std::string& command) {
  int pipe_ends[2];
  if (::pipe2(pipe_ends, O_CLOEXEC) != 0) return make_unexpected(std::string("pipe failed"));
  const pid_t child = ::fork();
  if (child < 0) {
    ::close(pipe_ends[0]);
    ::close(pipe_ends[1]);
    return make_unexpected(std::string("fork failed"));
  }
  if (child == 0) {
    ::dup2(pipe_ends[1], STDOUT_FILENO);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(pipe_ends[1]);
  std::string output;
  bool too_large = false;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + kTokenCommandTimeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd readable{pipe_ends[0], POLLIN, 0};
    const int ready = ::poll(&readable, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      timed_out = ready == 0;
      break;
    }
    char buffer[4096];
    const ssize_t got = ::read(pipe_ends[0], buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    output.append(buffer, static_cast<std::size_t>(got));
    if (output.size() > kMaxTokenBytes) {
      too_large = true;
      break;
    }
  }
  ::close(pipe_ends[0]);
  if (timed_out || too_large) ::kill(child, SIGKILL);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return make_unexpected(std::string("the token command did not finish in 10 s"));
  if (too_large) return make_unexpected(std::string("the token command wrote more than 16 KiB"));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return make_unexpected(std::string("the token command failed (exit status ") +
                           std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")");
  }
  output = trim_trailing_space(std::move(output));
  if (output.empty()) return make_unexpected(std::string("the token command printed nothing"));
  return output;
}

}  // namespace tether::auth
