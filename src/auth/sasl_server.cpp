#include "auth/sasl_server.hpp"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include "auth/gsasl_support.hpp"
#include "auth/jwt.hpp"
#include "crypto/primitives.hpp"

namespace tether::auth {

using session::AuthenticationFailure;
using session::AuthenticationStep;

struct SaslServerAuthenticator::Shared {
  std::vector<Mechanism> offered;
  std::shared_ptr<UserDirectory> users;
  std::vector<std::byte> secret;
  std::uint32_t fake_iterations = 0;  // 0: users->typical_iterations()
  std::function<std::chrono::system_clock::time_point()> wall_clock;  // never empty
  [[nodiscard]] bool offers(Mechanism mechanism) const {
    return std::find(offered.begin(), offered.end(), mechanism) != offered.end();
  }
};

ScramVerifier fake_verifier(std::span<const std::byte> secret, std::string_view name,
                            std::uint32_t iterations) {
  ScramVerifier verifier;
  verifier.iterations = iterations;
  const auto salt =
      crypto::hmac_sha256(secret, {crypto::label("tether fake scram salt"), crypto::label(name)});
  verifier.salt.assign(salt.begin(), salt.begin() + 16);  // the length `tether passwd` makes
  verifier.stored_key = crypto::hmac_sha256(
      secret, {crypto::label("tether fake scram stored key"), crypto::label(name)});
  verifier.server_key = crypto::hmac_sha256(
      secret, {crypto::label("tether fake scram server key"), crypto::label(name)});
  return verifier;
}

namespace {

using Shared = SaslServerAuthenticator::Shared;

std::string bad_credentials_message(Mechanism mechanism) {
  return std::string(name(mechanism)) + ": authentication failed (unknown user or wrong password)";
}

// PLAIN's password check, handed to the caller's worker (ServerAuthentication::allow_deferral):
// derives StoredKey from the password with the verifier's salt and iterations (the costly part) and
// compares it in constant time. Owns copies of everything; the password is wiped once used.
class PlainVerification final : public session::DeferredWork {
 public:
  PlainVerification(std::string password, const ScramVerifier& verifier)
      : password_(std::move(password)), verifier_(verifier) {}
  PlainVerification(const PlainVerification&) = delete;
  PlainVerification& operator=(const PlainVerification&) = delete;
  ~PlainVerification() override { OPENSSL_cleanse(password_.data(), password_.size()); }

  void run() override {
    auto derived = make_verifier(password_, verifier_.salt, verifier_.iterations);
    matched_ = derived && CRYPTO_memcmp(derived->stored_key.data(), verifier_.stored_key.data(),
                                        verifier_.stored_key.size()) == 0;
    OPENSSL_cleanse(password_.data(), password_.size());
    ran_ = true;
  }
  // After run(): whether the password derives the stored key.
  [[nodiscard]] bool matched() const { return ran_ && matched_; }

 private:
  std::string password_;
  ScramVerifier verifier_;
  bool matched_ = false;
  bool ran_ = false;
};

class ServerExchange final : public session::ServerAuthentication, public detail::GsaslExchange {
 public:
  ServerExchange(Mechanism mechanism, std::shared_ptr<const Shared> shared,
                 const session::ConnectionSecurity& security)
      : mechanism_(mechanism),
        shared_(std::move(shared)),
        binding_(security.channel_binding),
        certificate_identity_(security.peer_certificate_identity),
        certificate_lifetime_(security.peer_certificate_lifetime) {
    started_ = begin(true, std::string(name(mechanism)).c_str());
  }

  AuthenticationStep start(std::optional<std::span<const std::byte>> initial_response) override {
    if (initial_response) return step(*initial_response);
    // No initial response: an empty challenge, and the client's first message comes in step().
    try {
      const std::string mechanism_name(name(mechanism_));
      if (!started_) {
        return finish_with_failure(
            AuthenticationFailure::kUnavailable,
            mechanism_name + ": the SASL library could not start the exchange");
      }
      if (finished_ || messages_ != 0) {
        return finish_with_failure(AuthenticationFailure::kMalformed,
                                   mechanism_name + ": the exchange has already started");
      }
      return AuthenticationStep::proceed({});
    } catch (...) {
      return AuthenticationStep{};  // kFailed, kMalformed, no message: out of memory
    }
  }

  AuthenticationStep step(std::span<const std::byte> input) override {
    try {
      return advance(input);
    } catch (...) {
      return finish_with_failure(AuthenticationFailure::kUnavailable,
                                 std::string(name(mechanism_)) + ": out of memory");
    }
  }

  void allow_deferral() override { deferral_allowed_ = true; }

  AuthenticationStep resume() override {
    try {
      if (plain_verification_ == nullptr || finished_) {
        return finish_with_failure(AuthenticationFailure::kMalformed,
                                   std::string(name(mechanism_)) + ": nothing to resume");
      }
      const bool matched = plain_verification_->matched();
      plain_verification_.reset();
      if (!matched || !user_accepted_) {
        user_accepted_ = false;
        return finish_with_failure(AuthenticationFailure::kBadCredentials,
                                   bad_credentials_message(mechanism_));
      }
      return succeed({});
    } catch (...) {
      return finish_with_failure(AuthenticationFailure::kUnavailable,
                                 std::string(name(mechanism_)) + ": out of memory");
    }
  }

  int answer(Gsasl_session* session, Gsasl_property property) override {
    switch (property) {
      case GSASL_SCRAM_ITER: {
        resolve_verifier();
        return gsasl_property_set(session, property, std::to_string(verifier_.iterations).c_str());
      }
      case GSASL_SCRAM_SALT:
        resolve_verifier();
        return detail::set_base64_property(session, property, verifier_.salt);
      case GSASL_SCRAM_STOREDKEY:
        resolve_verifier();
        return detail::set_base64_property(session, property, verifier_.stored_key);
      case GSASL_SCRAM_SERVERKEY:
        resolve_verifier();
        return detail::set_base64_property(session, property, verifier_.server_key);
      case GSASL_CB_TLS_EXPORTER:
        if (mechanism_ != Mechanism::kScramSha256Plus || binding_.empty()) return GSASL_NO_CALLBACK;
        return detail::set_base64_property(session, property, binding_);
      case GSASL_VALIDATE_SIMPLE:
        return validate_plain();
      case GSASL_VALIDATE_EXTERNAL:
        return validate_external();
      default:
        return GSASL_NO_CALLBACK;
    }
  }

 private:
  AuthenticationStep finish_with_failure(AuthenticationFailure failure, std::string message) {
    finished_ = true;
    end();
    auto result = AuthenticationStep::fail(failure, std::move(message));
    result.claimed_identity = claimed_identity_;
    return result;
  }

  AuthenticationStep advance(std::span<const std::byte> input) {
    const std::string mechanism_name(name(mechanism_));
    if (!started_) {
      return finish_with_failure(
          AuthenticationFailure::kUnavailable,
          mechanism_name + ": the SASL library could not start the exchange");
    }
    if (finished_) {
      return finish_with_failure(AuthenticationFailure::kMalformed,
                                 mechanism_name + ": message after the end of the exchange");
    }
    if (input.size() > detail::kMaximumSaslMessage) {
      return finish_with_failure(AuthenticationFailure::kMalformed,
                                 mechanism_name + ": message longer than " +
                                     std::to_string(detail::kMaximumSaslMessage) + " bytes");
    }
    const bool scram =
        mechanism_ == Mechanism::kScramSha256 || mechanism_ == Mechanism::kScramSha256Plus;
    if (messages_ == 0 && scram && input.empty()) {
      // GNU SASL would answer an empty client-first with another empty challenge.
      return finish_with_failure(AuthenticationFailure::kMalformed,
                                 mechanism_name + ": empty client-first message");
    }
    if (messages_ == 0 && mechanism_ == Mechanism::kScramSha256 && !binding_.empty() &&
        shared_->offers(Mechanism::kScramSha256Plus) && !input.empty() &&
        input.front() == std::byte{'y'}) {
      return finish_with_failure(
          AuthenticationFailure::kBadCredentials,
          mechanism_name +
              ": the client says the server cannot bind the channel, but it offers "
              "SCRAM-SHA-256-PLUS (downgrade refused)");
    }
    ++messages_;
    auto result = run_step(input);
    const std::string authid = property(GSASL_AUTHID);
    if (!authid.empty()) claimed_identity_ = authid.substr(0, 256);
    if (mechanism_ == Mechanism::kExternal) claimed_identity_ = certificate_identity_;
    if (result.status == GSASL_NEEDS_MORE) {
      auto next = AuthenticationStep::proceed(std::move(result.output));
      next.claimed_identity = claimed_identity_;
      return next;
    }
    if (result.status == GSASL_OK && plain_verification_ != nullptr) {
      // PLAIN parsed; its password check is the caller's to run (resume() gives the verdict).
      AuthenticationStep deferred = AuthenticationStep::proceed({});
      deferred.deferred = plain_verification_;
      deferred.claimed_identity = claimed_identity_;
      return deferred;
    }
    if (result.status == GSASL_OK) return succeed(std::move(result.output));
    if (failure_override_) {
      return finish_with_failure(*failure_override_, override_message_);
    }
    switch (result.status) {
      case GSASL_AUTHENTICATION_ERROR:
      case GSASL_NO_PASSWORD:
      case GSASL_NO_AUTHID:
        if (mechanism_ == Mechanism::kExternal) {
          return finish_with_failure(AuthenticationFailure::kBadCredentials,
                                     mechanism_name + ": no verified client certificate");
        }
        return finish_with_failure(AuthenticationFailure::kBadCredentials,
                                   bad_credentials_message(mechanism_));
      case GSASL_MALLOC_ERROR:
        return finish_with_failure(AuthenticationFailure::kUnavailable,
                                   mechanism_name + ": out of memory");
      default:
        return finish_with_failure(
            AuthenticationFailure::kMalformed,
            mechanism_name + ": malformed message (" + gsasl_strerror_name(result.status) + ")");
    }
  }

  AuthenticationStep succeed(std::vector<std::byte> output) {
    const std::string mechanism_name(name(mechanism_));
    std::string principal;
    const std::string authzid = property(GSASL_AUTHZID);
    std::optional<session::Duration> lifetime;
    if (mechanism_ == Mechanism::kExternal) {
      principal = certificate_identity_;
      if (certificate_lifetime_) {
        // Verified at the handshake, but a resumed TLS session keeps its first verdict.
        if (*certificate_lifetime_ <= session::Duration::zero()) {
          return finish_with_failure(AuthenticationFailure::kCredentialExpired,
                                     mechanism_name + ": the client certificate has expired");
        }
        lifetime = *certificate_lifetime_;
      }
    } else {
      principal = property(GSASL_AUTHID);
      if (principal.empty() || !user_accepted_) {
        // GNU SASL said OK without our verifier being used: never accept that.
        return finish_with_failure(AuthenticationFailure::kBadCredentials,
                                   bad_credentials_message(mechanism_));
      }
      if (expires_) {
        // Only now, with the proof checked: before it an expired user looked like any other.
        const auto now = shared_->wall_clock();
        if (*expires_ <= now) {
          return finish_with_failure(
              AuthenticationFailure::kCredentialExpired,
              mechanism_name + ": password expired at " + format_utc(*expires_));
        }
        lifetime = std::chrono::duration_cast<session::Duration>(*expires_ - now);
      }
    }
    if (!authzid.empty() && authzid != principal) {
      return finish_with_failure(
          AuthenticationFailure::kNotPermitted,
          mechanism_name + ": " + principal + " may not act as another authorization identity");
    }
    finished_ = true;
    AuthenticationStep result;
    result.status = AuthenticationStep::Status::kSucceeded;
    result.output = std::move(output);
    result.principal = principal;
    result.claimed_identity = principal;
    result.credential_lifetime = lifetime;
    end();
    return result;
  }

  // The verifier for the claimed name: the user's, or a fake one for an unknown or disabled user.
  void resolve_verifier() {
    if (resolved_) return;
    resolved_ = true;
    const std::string authid = property(GSASL_AUTHID);
    UserLookup lookup;
    if (shared_->users && valid_user_name(authid)) lookup = shared_->users->lookup(authid);
    // The fake verifier is made for every name, known or not, so that a known name costs the same
    // work as an unknown one (a review measured 4-7 us against 9-17 us when it was made only for
    // unknown names: a timing probe for user names).
    std::uint32_t iterations = shared_->fake_iterations;
    if (iterations == 0) {
      iterations = shared_->users ? shared_->users->typical_iterations() : kDefaultScramIterations;
    }
    ScramVerifier fake = fake_verifier(shared_->secret, authid, iterations);
    if (lookup.kind == UserLookup::Kind::kFound) {
      verifier_ = std::move(lookup.verifier);
      expires_ = lookup.expires;
      user_accepted_ = true;
    } else {
      verifier_ = std::move(fake);
      user_accepted_ = false;
    }
  }

  int validate_plain() {
    const std::string password = property(GSASL_PASSWORD);
    resolve_verifier();
    if (deferral_allowed_) {
      // Accepted for now so that GNU SASL finishes parsing; the verdict is resume()'s.
      plain_verification_ = std::make_shared<PlainVerification>(password, verifier_);
      return GSASL_OK;
    }
    // Derive even for an unknown user, so that the answer takes as long as for a known one.
    auto derived = make_verifier(password, verifier_.salt, verifier_.iterations);
    const bool match =
        derived && CRYPTO_memcmp(derived->stored_key.data(), verifier_.stored_key.data(),
                                 verifier_.stored_key.size()) == 0;
    if (match && user_accepted_) return GSASL_OK;
    user_accepted_ = false;
    return GSASL_AUTHENTICATION_ERROR;
  }

  int validate_external() {
    if (certificate_identity_.empty()) return GSASL_AUTHENTICATION_ERROR;
    const std::string authzid = property(GSASL_AUTHZID);
    if (!authzid.empty() && authzid != certificate_identity_) {
      failure_override_ = AuthenticationFailure::kNotPermitted;
      override_message_ =
          "EXTERNAL: " + certificate_identity_ + " may not act as another authorization identity";
      return GSASL_AUTHENTICATION_ERROR;
    }
    return GSASL_OK;
  }

  Mechanism mechanism_;
  std::shared_ptr<const Shared> shared_;
  std::vector<std::byte> binding_;
  std::string certificate_identity_;
  std::optional<session::Duration> certificate_lifetime_;
  bool started_ = false;
  bool finished_ = false;
  int messages_ = 0;
  bool resolved_ = false;
  bool user_accepted_ = false;
  ScramVerifier verifier_;
  std::optional<std::chrono::system_clock::time_point> expires_;  // the found user's, if any
  std::string claimed_identity_;
  std::optional<AuthenticationFailure> failure_override_;
  std::string override_message_;
  bool deferral_allowed_ = false;
  std::shared_ptr<PlainVerification> plain_verification_;  // handed out, until resume()
};

}  // namespace

SaslServerAuthenticator::SaslServerAuthenticator(SaslServerConfig config) {
  auto shared = std::make_shared<Shared>();
  for (const Mechanism mechanism : config.mechanisms) {
    if (mechanism == Mechanism::kOAuthBearer) continue;
    if (mechanism != Mechanism::kExternal && !config.users) continue;
    if (shared->offers(mechanism)) continue;
    shared->offered.push_back(mechanism);
  }
  shared->users = std::move(config.users);
  shared->secret = std::move(config.fake_verifier_secret);
  shared->wall_clock = config.wall_clock ? std::move(config.wall_clock)
                                         : [] { return std::chrono::system_clock::now(); };
  if (shared->secret.empty()) {
    shared->secret.resize(32);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(shared->secret.data()),
                   static_cast<int>(shared->secret.size())) != 1) {
      // No randomness: fall back to a per-process value that is at least not a constant.
      const auto address = reinterpret_cast<std::uintptr_t>(shared.get());
      std::memcpy(shared->secret.data(), &address, sizeof address);
    }
  }
  if (config.fake_iterations != 0) {
    shared->fake_iterations =
        std::clamp(config.fake_iterations, kMinimumScramIterations, kMaximumScramIterations);
  }
  shared_ = std::move(shared);
}

SaslServerAuthenticator::~SaslServerAuthenticator() = default;

std::vector<std::string> SaslServerAuthenticator::mechanisms() const {
  std::vector<std::string> names;
  for (const Mechanism mechanism : shared_->offered) names.emplace_back(name(mechanism));
  return names;
}

std::unique_ptr<session::ServerAuthentication> SaslServerAuthenticator::start(
    std::string_view mechanism_name, const session::ConnectionSecurity& security) {
  try {
    const auto mechanism = mechanism_named(mechanism_name);
    if (!mechanism || !shared_->offers(*mechanism)) return nullptr;
    if (*mechanism == Mechanism::kScramSha256Plus && security.channel_binding.empty())
      return nullptr;
    if (*mechanism == Mechanism::kPlain && !security.confidential) return nullptr;
    if (*mechanism == Mechanism::kExternal && security.peer_certificate_identity.empty()) {
      return nullptr;
    }
    return std::make_unique<ServerExchange>(*mechanism, shared_, security);
  } catch (...) {
    return nullptr;
  }
}

}  // namespace tether::auth
