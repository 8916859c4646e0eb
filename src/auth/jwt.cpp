#include "auth/jwt.hpp"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>

#include "auth/base64url.hpp"
#include "crypto/primitives.hpp"

namespace tether::auth {

namespace {

using Json = nlohmann::json;
using std::chrono::system_clock;

// NumericDate values from the year 2255 on are refused, so that every date fits
// system_clock::time_point (64-bit nanoseconds, good to 2262) with room for the leeway.
constexpr std::int64_t kMaxNumericDate = 9'000'000'000;
constexpr std::size_t kMaxScopes = 256;

Unexpected<TokenFailure> failure(TokenError error, std::string message) {
  return make_unexpected(TokenFailure{error, std::move(message)});
}

std::string_view as_text(const std::vector<std::byte>& bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::span<const std::byte> as_bytes(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

// A base64url part holding a JSON object.
Expected<Json, std::string> json_part(std::string_view encoded, std::size_t max_depth) {
  auto decoded = base64url_decode(encoded);
  if (!decoded) return make_unexpected(decoded.error());
  auto json = parse_bounded_json(as_text(*decoded), max_depth);
  if (!json) return make_unexpected(json.error());
  if (!json->is_object()) return make_unexpected(std::string("not a JSON object"));
  return json;
}

// A NumericDate claim (RFC 7519 section 2: seconds since the epoch, possibly fractional), or
// nullopt when absent; an error when not a number in [0, kMaxNumericDate].
Expected<std::optional<system_clock::time_point>, std::string> date_claim(const Json& claims,
                                                                          const char* claim) {
  const auto found = claims.find(claim);
  if (found == claims.end()) return std::optional<system_clock::time_point>();
  double seconds = 0;
  if (found->is_number_unsigned()) {
    const auto value = found->get<std::uint64_t>();
    if (value > static_cast<std::uint64_t>(kMaxNumericDate))
      return make_unexpected(std::string("claim \"") + claim + "\" out of range");
    return std::optional(system_clock::time_point(std::chrono::seconds(value)));
  }
  if (found->is_number_integer()) {
    return make_unexpected(std::string("claim \"") + claim + "\" out of range");  // negative
  }
  if (!found->is_number_float())
    return make_unexpected(std::string("claim \"") + claim + "\" is not a number");
  seconds = found->get<double>();
  if (!std::isfinite(seconds) || seconds < 0 || seconds > static_cast<double>(kMaxNumericDate))
    return make_unexpected(std::string("claim \"") + claim + "\" out of range");
  const auto whole = static_cast<std::int64_t>(std::floor(seconds));
  return std::optional(system_clock::time_point(std::chrono::seconds(whole)));
}

struct MessageDigestContextDeleter {
  void operator()(EVP_MD_CTX* context) const { EVP_MD_CTX_free(context); }
};
struct EcdsaSignatureDeleter {
  void operator()(ECDSA_SIG* signature) const { ECDSA_SIG_free(signature); }
};

// An asymmetric signature check with EVP_DigestVerify; `digest` is nullptr for Ed25519.
bool digest_verify(EVP_PKEY* key, const EVP_MD* digest, bool pss,
                   std::span<const unsigned char> signature, std::string_view signing_input) {
  std::unique_ptr<EVP_MD_CTX, MessageDigestContextDeleter> context(EVP_MD_CTX_new());
  if (!context) return false;
  EVP_PKEY_CTX* key_context = nullptr;  // owned by `context`
  if (EVP_DigestVerifyInit(context.get(), &key_context, digest, nullptr, key) != 1) return false;
  if (pss) {
    if (EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PSS_PADDING) != 1 ||
        EVP_PKEY_CTX_set_rsa_mgf1_md(key_context, EVP_sha256()) != 1 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(key_context, 32) != 1)
      return false;
  }
  return EVP_DigestVerify(context.get(), signature.data(), signature.size(),
                          reinterpret_cast<const unsigned char*>(signing_input.data()),
                          signing_input.size()) == 1;
}

// JOSE's ES256 signature is r || s, 32 bytes each (RFC 7518 section 3.4); EVP wants DER.
std::optional<std::vector<unsigned char>> ecdsa_der(std::span<const std::byte> raw) {
  if (raw.size() != 64) return std::nullopt;
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  BIGNUM* r = BN_bin2bn(bytes, 32, nullptr);
  BIGNUM* s = BN_bin2bn(bytes + 32, 32, nullptr);
  std::unique_ptr<ECDSA_SIG, EcdsaSignatureDeleter> signature(ECDSA_SIG_new());
  if (!r || !s || !signature || ECDSA_SIG_set0(signature.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return std::nullopt;
  }
  const int length = i2d_ECDSA_SIG(signature.get(), nullptr);
  if (length <= 0) return std::nullopt;
  std::vector<unsigned char> der(static_cast<std::size_t>(length));
  unsigned char* cursor = der.data();
  if (i2d_ECDSA_SIG(signature.get(), &cursor) != length) return std::nullopt;
  return der;
}

bool signature_valid(const JsonWebKey& key, std::span<const std::byte> signature,
                     std::string_view signing_input) {
  const auto unsigned_signature = std::span<const unsigned char>(
      reinterpret_cast<const unsigned char*>(signature.data()), signature.size());
  switch (key.algorithm()) {
    case JwsAlgorithm::kRs256:
    case JwsAlgorithm::kPs256:
      // RFC 7518 section 3.3: the signature is exactly as long as the modulus.
      if (signature.size() != static_cast<std::size_t>(EVP_PKEY_get_size(key.public_key())))
        return false;
      return digest_verify(key.public_key(), EVP_sha256(), key.algorithm() == JwsAlgorithm::kPs256,
                           unsigned_signature, signing_input);
    case JwsAlgorithm::kEs256: {
      const auto der = ecdsa_der(signature);
      return der && digest_verify(key.public_key(), EVP_sha256(), false, *der, signing_input);
    }
    case JwsAlgorithm::kEdDsa:
      return signature.size() == 64 &&
             digest_verify(key.public_key(), nullptr, false, unsigned_signature, signing_input);
    case JwsAlgorithm::kHs256: {
      if (signature.size() != 32) return false;
      const auto expected = crypto::hmac_sha256(key.secret(), {as_bytes(signing_input)});
      return crypto::constant_time_equal(expected, signature);  // CRYPTO_memcmp
    }
  }
  return false;
}

// The scopes the claims grant: `scope` (a space-separated string, RFC 8693 section 4.2), else
// `scp` (an array of strings, or a space-separated string, as identity providers write it).
Expected<std::vector<std::string>, std::string> scopes_of(const Json& claims) {
  std::vector<std::string> scopes;
  auto add_spaced = [&](const std::string& text) {
    std::size_t start = 0;
    while (start < text.size()) {
      const std::size_t end = std::min(text.find(' ', start), text.size());
      if (end > start) scopes.push_back(text.substr(start, end - start));
      start = end + 1;
    }
  };
  const auto scope = claims.find("scope");
  const auto scp = claims.find("scp");
  if (scope != claims.end()) {
    if (!scope->is_string()) return make_unexpected(std::string("claim \"scope\" is not a string"));
    add_spaced(scope->get_ref<const std::string&>());
  } else if (scp != claims.end()) {
    if (scp->is_string()) {
      add_spaced(scp->get_ref<const std::string&>());
    } else if (scp->is_array()) {
      for (const Json& item : *scp) {
        if (!item.is_string())
          return make_unexpected(std::string("claim \"scp\" holds a non-string"));
        if (!item.get_ref<const std::string&>().empty()) scopes.push_back(item.get<std::string>());
      }
    } else {
      return make_unexpected(std::string("claim \"scp\" is neither an array nor a string"));
    }
  }
  if (scopes.size() > kMaxScopes)
    return make_unexpected("more than " + std::to_string(kMaxScopes) + " scopes");
  return scopes;
}

}  // namespace

std::string_view to_string(TokenError error) {
  switch (error) {
    case TokenError::kTooLarge:
      return "too-large";
    case TokenError::kMalformed:
      return "malformed";
    case TokenError::kUnknownKey:
      return "unknown-key";
    case TokenError::kAlgorithmNotAllowed:
      return "algorithm-not-allowed";
    case TokenError::kBadSignature:
      return "bad-signature";
    case TokenError::kExpired:
      return "expired";
    case TokenError::kNotYetValid:
      return "not-yet-valid";
    case TokenError::kWrongIssuer:
      return "wrong-issuer";
    case TokenError::kWrongAudience:
      return "wrong-audience";
    case TokenError::kMissingScope:
      return "missing-scope";
    case TokenError::kNoKeys:
      return "no-keys";
  }
  return "unknown";
}

std::string format_utc(system_clock::time_point time) {
  const std::time_t seconds =
      system_clock::to_time_t(std::chrono::time_point_cast<std::chrono::seconds>(time));
  std::tm calendar{};
  if (!gmtime_r(&seconds, &calendar)) return "(unrepresentable time)";
  char text[32];
  const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &calendar);
  return std::string(text, length);
}

Expected<TokenVerifier, std::string> TokenVerifier::create(KeySource keys, TokenPolicy policy,
                                                           WallClock clock) {
  if (!keys) return make_unexpected(std::string("token verifier: no key source"));
  if (!clock) return make_unexpected(std::string("token verifier: no clock"));
  if (policy.audience.empty())
    return make_unexpected(std::string("token verifier: an audience is required"));
  if (policy.leeway < std::chrono::seconds(0) || policy.leeway > std::chrono::hours(1))
    return make_unexpected(std::string("token verifier: leeway must be 0 to 3600 seconds"));
  return TokenVerifier(std::move(keys), std::move(policy), std::move(clock));
}

TokenVerifier::KeySource TokenVerifier::fixed_keys(std::shared_ptr<const JsonWebKeySet> keys) {
  return [keys = std::move(keys)] { return keys; };
}

TokenVerifier::KeySource TokenVerifier::file_keys(std::shared_ptr<JwksFile> file) {
  return [file = std::move(file)] { return file->keys(); };
}

Expected<VerifiedToken, TokenFailure> TokenVerifier::verify(std::string_view token) const {
  if (token.size() > policy_.max_token_size)
    return failure(TokenError::kTooLarge, "token of " + std::to_string(token.size()) +
                                              " bytes (at most " +
                                              std::to_string(policy_.max_token_size) + ")");
  const std::size_t first_dot = token.find('.');
  const std::size_t second_dot =
      first_dot == std::string_view::npos ? first_dot : token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos || token.find('.', second_dot + 1) != token.npos)
    return failure(TokenError::kMalformed, "not a JWS compact serialisation (three parts)");
  const std::string_view header_part = token.substr(0, first_dot);
  const std::string_view payload_part = token.substr(first_dot + 1, second_dot - first_dot - 1);
  const std::string_view signature_part = token.substr(second_dot + 1);
  const std::string_view signing_input = token.substr(0, second_dot);

  auto header = json_part(header_part, policy_.max_json_depth);
  if (!header) return failure(TokenError::kMalformed, "header: " + header.error());
  const auto alg = header->find("alg");
  if (alg == header->end() || !alg->is_string())
    return failure(TokenError::kMalformed, "header: no \"alg\" string");
  const std::string& algorithm_name = alg->get_ref<const std::string&>();
  if (algorithm_name == "none")
    return failure(TokenError::kAlgorithmNotAllowed, "algorithm \"none\" (unsigned) is refused");
  const auto algorithm = jws_algorithm_named(algorithm_name);
  if (!algorithm)
    return failure(TokenError::kAlgorithmNotAllowed,
                   "algorithm \"" + escape_peer_text(algorithm_name) + "\" is not supported");
  if (header->contains("crit"))
    return failure(TokenError::kMalformed,
                   "header: critical extensions (\"crit\") are not supported");
  const auto kid = header->find("kid");
  if (kid != header->end() && !kid->is_string())
    return failure(TokenError::kMalformed, "header: \"kid\" is not a string");

  const auto keys = keys_();
  if (!keys) return failure(TokenError::kNoKeys, "no verification keys are loaded");
  const JsonWebKey* key = nullptr;
  if (kid != header->end()) {
    const std::string& key_id = kid->get_ref<const std::string&>();
    key = keys->find(key_id);
    if (!key)
      return failure(TokenError::kUnknownKey,
                     "unknown key id \"" + escape_peer_text(key_id) + "\"");
  } else {
    std::size_t candidates = 0;
    for (const JsonWebKey& candidate : keys->keys()) {
      if (candidate.algorithm() == *algorithm) {
        key = &candidate;
        ++candidates;
      }
    }
    if (candidates == 0)
      return failure(TokenError::kAlgorithmNotAllowed,
                     "no key is pinned to algorithm " + std::string(name(*algorithm)));
    if (candidates > 1)
      return failure(TokenError::kUnknownKey, "token has no key id and " +
                                                  std::to_string(candidates) + " keys use " +
                                                  std::string(name(*algorithm)));
  }
  if (key->algorithm() != *algorithm)
    return failure(TokenError::kAlgorithmNotAllowed,
                   "algorithm " + std::string(name(*algorithm)) + " not allowed for key \"" +
                       escape_peer_text(key->key_id()) + "\" (pinned to " +
                       std::string(name(key->algorithm())) + ")");

  auto signature = base64url_decode(signature_part);
  if (!signature) return failure(TokenError::kMalformed, "signature: " + signature.error());
  if (!signature_valid(*key, *signature, signing_input))
    return failure(TokenError::kBadSignature, "bad signature");

  auto claims = json_part(payload_part, policy_.max_json_depth);
  if (!claims) return failure(TokenError::kMalformed, "claims: " + claims.error());
  auto expiry = date_claim(*claims, "exp");
  if (!expiry) return failure(TokenError::kMalformed, expiry.error());
  if (!*expiry) return failure(TokenError::kMalformed, "no expiry (\"exp\")");
  auto not_before = date_claim(*claims, "nbf");
  if (!not_before) return failure(TokenError::kMalformed, not_before.error());
  const auto subject = claims->find("sub");
  if (subject == claims->end() || !subject->is_string() ||
      subject->get_ref<const std::string&>().empty())
    return failure(TokenError::kMalformed, "no subject (\"sub\" string)");
  const auto issuer = claims->find("iss");
  if (issuer != claims->end() && !issuer->is_string())
    return failure(TokenError::kMalformed, "claim \"iss\" is not a string");
  auto scopes = scopes_of(*claims);
  if (!scopes) return failure(TokenError::kMalformed, scopes.error());
  const auto token_id = claims->find("jti");
  if (token_id != claims->end() && !token_id->is_string())
    return failure(TokenError::kMalformed, "claim \"jti\" is not a string");

  const auto now = clock_();
  if (now > **expiry + policy_.leeway)
    return failure(TokenError::kExpired, "token expired at " + format_utc(**expiry));
  if (*not_before && now + policy_.leeway < **not_before)
    return failure(TokenError::kNotYetValid, "token not valid before " + format_utc(**not_before));

  if (!policy_.issuer.empty()) {
    if (issuer == claims->end())
      return failure(TokenError::kWrongIssuer, "token names no issuer (\"iss\")");
    if (issuer->get_ref<const std::string&>() != policy_.issuer)
      return failure(
          TokenError::kWrongIssuer,
          "wrong issuer \"" + escape_peer_text(issuer->get_ref<const std::string&>()) + "\"");
  }

  const auto audience = claims->find("aud");
  bool audience_matches = false;
  if (audience == claims->end())
    return failure(TokenError::kWrongAudience, "token names no audience (\"aud\")");
  if (audience->is_string()) {
    audience_matches = audience->get_ref<const std::string&>() == policy_.audience;
  } else if (audience->is_array()) {
    for (const Json& item : *audience) {
      if (!item.is_string())
        return failure(TokenError::kMalformed, "claim \"aud\" holds a non-string");
      if (item.get_ref<const std::string&>() == policy_.audience) audience_matches = true;
    }
  } else {
    return failure(TokenError::kMalformed, "claim \"aud\" is neither a string nor an array");
  }
  if (!audience_matches)
    return failure(TokenError::kWrongAudience,
                   "wrong audience: this server is not named in \"aud\"");

  if (!policy_.required_scope.empty() &&
      std::find(scopes->begin(), scopes->end(), policy_.required_scope) == scopes->end())
    return failure(TokenError::kMissingScope,
                   "missing scope \"" + escape_peer_text(policy_.required_scope) + "\"");

  VerifiedToken verified;
  verified.principal = subject->get<std::string>();
  verified.scopes = std::move(*scopes);
  verified.expiry = **expiry;
  verified.lifetime =
      std::max(std::chrono::nanoseconds(0),
               std::chrono::duration_cast<std::chrono::nanoseconds>(**expiry - now));
  if (issuer != claims->end()) verified.issuer = issuer->get<std::string>();
  verified.key_id = key->key_id();
  if (token_id != claims->end()) verified.token_id = token_id->get<std::string>();
  verified.algorithm = key->algorithm();
  return verified;
}

}  // namespace tether::auth
