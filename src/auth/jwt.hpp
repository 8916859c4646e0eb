// TokenVerifier checks a JWS compact-serialised JWT (RFC 7515, RFC 7519) against a key set whose
// keys are each pinned to one algorithm, and the claims tether requires of a bearer token: exp
// (required), nbf, iss, aud, a required scope and sub (the principal).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/jwks.hpp"
#include "tether/expected.hpp"

namespace tether::auth {

// Why a token was refused.
enum class TokenError : unsigned char {
  kTooLarge,             // longer than the configured maximum
  kMalformed,            // not three base64url parts of JSON objects, bad claim types, crit, ...
  kUnknownKey,           // the kid names no key, or no kid and no single key to use
  kAlgorithmNotAllowed,  // alg is "none", unknown, or not the algorithm the key is pinned to
  kBadSignature,
  kExpired,      // exp (plus leeway) is past
  kNotYetValid,  // nbf (minus leeway) is still ahead
  kWrongIssuer,
  kWrongAudience,
  kMissingScope,
  kNoKeys,  // the key source has no key set (a programmer or start-up error)
};
[[nodiscard]] std::string_view to_string(TokenError error);

struct TokenFailure {
  TokenError error = TokenError::kMalformed;
  // Why, for the peer and the logs: never the token, peer strings (kid, iss, ...) only escaped
  // and shortened (escape_peer_text).
  std::string message;
};

// What a verified token says.
struct VerifiedToken {
  std::string principal;                         // sub
  std::vector<std::string> scopes;               // scope (space-separated) or scp (array or string)
  std::chrono::system_clock::time_point expiry;  // exp
  // exp minus the verifier's clock at verification; zero when exp has passed (within leeway).
  std::chrono::nanoseconds lifetime{0};
  std::string issuer;    // iss, empty when absent
  std::string key_id;    // the kid of the key that verified the signature
  std::string token_id;  // jti, empty when absent (what a deny list names; a peer string)
  JwsAlgorithm algorithm = JwsAlgorithm::kRs256;
};

struct TokenPolicy {
  // Required value of iss; empty accepts any issuer (the keys then stand for the issuer).
  std::string issuer;
  // The audience this server is: aud (a string, or an array holding it) must name it. Required:
  // a token minted for another service must not be accepted here.
  std::string audience;
  // A scope the token must grant; empty requires none.
  std::string required_scope;
  std::chrono::seconds leeway{60};  // allowed clock skew for exp and nbf
  std::size_t max_token_size = 8 * 1024;
  std::size_t max_json_depth = 16;  // header and claims
};

class TokenVerifier {
 public:
  using WallClock = std::function<std::chrono::system_clock::time_point()>;
  // Where the current keys come from: a fixed set, or JwksFile::keys() (reloaded on change).
  using KeySource = std::function<std::shared_ptr<const JsonWebKeySet>()>;

  // An error when the policy is unusable (no audience).
  [[nodiscard]] static Expected<TokenVerifier, std::string> create(KeySource keys,
                                                                   TokenPolicy policy,
                                                                   WallClock clock);
  [[nodiscard]] static KeySource fixed_keys(std::shared_ptr<const JsonWebKeySet> keys);
  [[nodiscard]] static KeySource file_keys(std::shared_ptr<JwksFile> file);

  // Verifies `token` (a JWS compact serialisation: header.payload.signature).
  //
  // Key choice: with a kid, the key with that kid (none: kUnknownKey); without one, the only key
  // pinned to the header's alg (none: kAlgorithmNotAllowed; several: kUnknownKey, since trying each
  // would multiply the cost a stranger can cause). Either way the header's alg must be the key's
  // pinned algorithm, so a token never chooses how its key is used. Refused outright: alg "none",
  // a crit header (no extension is understood), duplicate member names. Header keys (jwk, jku,
  // x5u, x5c) are never used. The signature is checked before any claim is read.
  [[nodiscard]] Expected<VerifiedToken, TokenFailure> verify(std::string_view token) const;

  [[nodiscard]] const TokenPolicy& policy() const { return policy_; }

 private:
  TokenVerifier(KeySource keys, TokenPolicy policy, WallClock clock)
      : keys_(std::move(keys)), policy_(std::move(policy)), clock_(std::move(clock)) {}

  KeySource keys_;
  TokenPolicy policy_;
  WallClock clock_;
};

// `time` as an RFC 3339 UTC timestamp with seconds ("2026-12-02T04:00:00Z").
[[nodiscard]] std::string format_utc(std::chrono::system_clock::time_point time);

}  // namespace tether::auth
