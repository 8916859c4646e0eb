#include "auth/sasl_client.hpp"

#include <openssl/crypto.h>

#include <optional>
#include <vector>

#include "auth/gsasl_support.hpp"
#include "auth/user_store.hpp"

namespace tether::auth {

using session::AuthenticationFailure;
using session::AuthenticationStep;

ScramCredential::ScramCredential(std::string user, std::string password)
    : user_(std::move(user)), password_(std::move(password)) {}

ScramCredential::~ScramCredential() {
  OPENSSL_cleanse(password_.data(), password_.size());
  OPENSSL_cleanse(salted_password_.data(), salted_password_.size());
}

std::optional<std::string> ScramCredential::salted_password(std::string_view salt,
                                                            std::string_view iterations) const {
  const std::lock_guard lock(mutex_);
  if (salted_password_.empty() || salt != salt_ || iterations != iterations_) return std::nullopt;
  return salted_password_;
}

void ScramCredential::remember(std::string salt, std::string iterations,
                               std::string salted_password) {
  const std::lock_guard lock(mutex_);
  OPENSSL_cleanse(salted_password_.data(), salted_password_.size());
  salt_ = std::move(salt);
  iterations_ = std::move(iterations);
  salted_password_ = std::move(salted_password);
}

std::uint64_t ScramCredential::derivations() const {
  const std::lock_guard lock(mutex_);
  return derivations_;
}

void ScramCredential::count_derivation() {
  const std::lock_guard lock(mutex_);
  ++derivations_;
}

namespace {

std::string_view as_text(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

bool is_scram(Mechanism mechanism) {
  return mechanism == Mechanism::kScramSha256Plus || mechanism == Mechanism::kScramSha256;
}

class ClientExchange final : public session::ClientAuthentication, public detail::GsaslExchange {
 public:
  ClientExchange(Mechanism mechanism, SaslClientConfig config,
                 const session::ConnectionSecurity& security)
      : mechanism_(mechanism), config_(std::move(config)) {
    if (mechanism == Mechanism::kScramSha256Plus) binding_ = security.channel_binding;
    started_ = begin(false, std::string(name(mechanism)).c_str());
  }

  [[nodiscard]] std::string mechanism() const override { return std::string(name(mechanism_)); }

  AuthenticationStep start() override {
    try {
      if (!started_ || stage_ != Stage::kInitial) {
        return fail(AuthenticationFailure::kUnavailable, "cannot start the exchange");
      }
      auto result = run_step({});
      if (is_scram(mechanism_)) {
        if (result.status != GSASL_NEEDS_MORE) return fail_status(result.status);
        client_nonce_ = nonce_of_client_first(as_text(result.output));
        if (client_nonce_.empty()) {
          return fail(AuthenticationFailure::kUnavailable, "no nonce in the client-first message");
        }
        stage_ = Stage::kAwaitServerFirst;
        return AuthenticationStep::proceed(std::move(result.output));
      }
      // PLAIN and EXTERNAL are done after their one message.
      if (result.status != GSASL_OK) return fail_status(result.status);
      stage_ = Stage::kAwaitFinal;
      return AuthenticationStep::proceed(std::move(result.output));
    } catch (...) {
      return fail(AuthenticationFailure::kUnavailable, "out of memory");
    }
  }

  AuthenticationStep step(std::span<const std::byte> challenge) override {
    try {
      if (stage_ != Stage::kAwaitServerFirst) {
        return fail(AuthenticationFailure::kMalformed, "unexpected challenge from the server");
      }
      if (challenge.size() > detail::kMaximumSaslMessage) {
        return fail(AuthenticationFailure::kMalformed, "server message too long");
      }
      // CVE-2024-56128: the server's nonce must begin with ours and add to it.
      const std::string_view server_first = as_text(challenge);
      const std::string expected = "r=" + client_nonce_;
      if (!server_first.starts_with(expected) || server_first.size() <= expected.size() ||
          server_first[expected.size()] == ',') {
        return fail(AuthenticationFailure::kMalformed,
                    "the server's nonce does not extend the client's nonce");
      }
      // A server (or anyone on a --plain-insecure path) must not make us derive for hours: the
      // iteration count is bounded as the users file bounds it.
      if (const auto count = iterations_of_server_first(server_first);
          !count || *count < kMinimumScramIterations || *count > kMaximumScramIterations) {
        return fail(AuthenticationFailure::kMalformed,
                    "the server's iteration count is missing or outside 4096..10000000");
      }
      auto result = run_step(challenge);
      if (result.status != GSASL_NEEDS_MORE) return fail_status(result.status);
      stage_ = Stage::kAwaitFinal;
      return AuthenticationStep::proceed(std::move(result.output));
    } catch (...) {
      return fail(AuthenticationFailure::kUnavailable, "out of memory");
    }
  }

  AuthenticationStep finish(std::span<const std::byte> server_final) override {
    try {
      if (stage_ != Stage::kAwaitFinal) {
        return fail(AuthenticationFailure::kMalformed, "the server ended the exchange early");
      }
      if (!is_scram(mechanism_)) {
        if (!server_final.empty()) {
          return fail(AuthenticationFailure::kMalformed,
                      "unexpected final message from the server");
        }
        return succeed();
      }
      if (server_final.empty()) {
        return fail(AuthenticationFailure::kBadCredentials,
                    "the server did not prove that it knows the password (no v=)");
      }
      if (server_final.size() > detail::kMaximumSaslMessage) {
        return fail(AuthenticationFailure::kMalformed, "server message too long");
      }
      auto result = run_step(server_final);
      if (result.status != GSASL_OK) {
        return fail(AuthenticationFailure::kBadCredentials,
                    "the server's signature is wrong: it does not know the password");
      }
      const std::string salted = property(GSASL_SCRAM_SALTED_PASSWORD);
      const std::string salt = property(GSASL_SCRAM_SALT);
      const std::string iterations = property(GSASL_SCRAM_ITER);
      if (config_.credential && !salted.empty() && !salt.empty() && !iterations.empty()) {
        config_.credential->remember(salt, iterations, salted);
      }
      return succeed();
    } catch (...) {
      return fail(AuthenticationFailure::kUnavailable, "out of memory");
    }
  }

  int answer(Gsasl_session* session, Gsasl_property property_id) override {
    switch (property_id) {
      case GSASL_AUTHID:
        if (!config_.credential) return GSASL_NO_CALLBACK;
        return gsasl_property_set(session, property_id, config_.credential->user().c_str());
      case GSASL_AUTHZID:
        if (config_.authorization_identity.empty()) return GSASL_NO_CALLBACK;
        return gsasl_property_set(session, property_id, config_.authorization_identity.c_str());
      case GSASL_PASSWORD:
        if (!config_.credential) return GSASL_NO_CALLBACK;
        if (is_scram(mechanism_)) config_.credential->count_derivation();
        return gsasl_property_set(session, property_id, config_.credential->password().c_str());
      case GSASL_SCRAM_SALTED_PASSWORD: {
        if (!config_.credential) return GSASL_NO_CALLBACK;
        const char* salt = gsasl_property_fast(session, GSASL_SCRAM_SALT);
        const char* iterations = gsasl_property_fast(session, GSASL_SCRAM_ITER);
        if (salt == nullptr || iterations == nullptr) return GSASL_NO_CALLBACK;
        const auto kept = config_.credential->salted_password(salt, iterations);
        if (!kept) return GSASL_NO_CALLBACK;
        return gsasl_property_set(session, property_id, kept->c_str());
      }
      case GSASL_CB_TLS_EXPORTER:
        if (binding_.empty()) return GSASL_NO_CALLBACK;
        return detail::set_base64_property(session, property_id, binding_);
      default:
        return GSASL_NO_CALLBACK;
    }
  }

 private:
  enum class Stage : unsigned char { kInitial, kAwaitServerFirst, kAwaitFinal, kDone };

  // The r= value of a client-first message (after its GS2 header; names and authzids cannot hold
  // a raw ',' in SCRAM, so the first ",r=" is the nonce's).
  // The i= value of a server-first message (r=...,s=...,i=N), if it is a decimal number.
  static std::optional<std::uint64_t> iterations_of_server_first(std::string_view message) {
    const auto position = message.find(",i=");
    if (position == std::string_view::npos) return std::nullopt;
    std::string_view digits = message.substr(position + 3);
    digits = digits.substr(0, digits.find(','));
    if (digits.empty() || digits.size() > 10) return std::nullopt;
    std::uint64_t value = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return value;
  }

  static std::string nonce_of_client_first(std::string_view message) {
    const auto position = message.find(",r=");
    if (position == std::string_view::npos) return {};
    std::string_view rest = message.substr(position + 3);
    return std::string(rest.substr(0, rest.find(',')));
  }

  AuthenticationStep fail(AuthenticationFailure failure, std::string why) {
    stage_ = Stage::kDone;
    end();
    return AuthenticationStep::fail(failure, std::string(name(mechanism_)) + ": " + why);
  }

  AuthenticationStep fail_status(int status) {
    switch (status) {
      case GSASL_NO_AUTHID:
      case GSASL_NO_PASSWORD:
        return fail(AuthenticationFailure::kUnavailable, "no user name or password configured");
      case GSASL_MALLOC_ERROR:
        return fail(AuthenticationFailure::kUnavailable, "out of memory");
      case GSASL_AUTHENTICATION_ERROR:
        return fail(AuthenticationFailure::kBadCredentials, "the server's message was refused");
      default:
        return fail(AuthenticationFailure::kMalformed,
                    std::string("malformed server message (") + gsasl_strerror_name(status) + ")");
    }
  }

  AuthenticationStep succeed() {
    stage_ = Stage::kDone;
    end();
    AuthenticationStep result;
    result.status = AuthenticationStep::Status::kSucceeded;
    return result;
  }

  Mechanism mechanism_;
  SaslClientConfig config_;
  std::vector<std::byte> binding_;
  bool started_ = false;
  Stage stage_ = Stage::kInitial;
  std::string client_nonce_;
};

}  // namespace

std::unique_ptr<session::ClientAuthentication> start_sasl_client(
    Mechanism mechanism, const SaslClientConfig& config,
    const session::ConnectionSecurity& security) {
  try {
    switch (mechanism) {
      case Mechanism::kScramSha256Plus:
        if (security.channel_binding.empty() || !config.credential) return nullptr;
        break;
      case Mechanism::kScramSha256:
        if (!config.credential) return nullptr;
        break;
      case Mechanism::kPlain:
        if (!security.confidential || !config.credential) return nullptr;
        break;
      case Mechanism::kExternal:
        break;
      case Mechanism::kOAuthBearer:
        return nullptr;
    }
    return std::make_unique<ClientExchange>(mechanism, config, security);
  } catch (...) {
    return nullptr;
  }
}

std::unique_ptr<session::ClientAuthentication> SaslClientAuthenticator::start(
    const session::ConnectionSecurity& security) {
  Mechanism mechanism = Mechanism::kExternal;
  if (config_.mechanism) {
    mechanism = *config_.mechanism;
  } else if (config_.credential) {
    mechanism =
        security.channel_binding.empty() ? Mechanism::kScramSha256 : Mechanism::kScramSha256Plus;
  }
  return start_sasl_client(mechanism, config_, security);
}

}  // namespace tether::auth
