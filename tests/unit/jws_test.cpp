// TokenVerifier: a valid token of each algorithm is accepted; every bad input of issue #14 is
// refused with its typed error and a message that names why and never holds the token. Keys are
// generated in-process and tokens signed by the test.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "auth/base64url.hpp"
#include "auth/jwks.hpp"
#include "auth/jwt.hpp"
#include "tests/support/jose_keys.hpp"

namespace {

using nlohmann::json;
using std::chrono::seconds;
using std::chrono::system_clock;
using tether::auth::base64url_decode;
using tether::auth::base64url_encode;
using tether::auth::JsonWebKeySet;
using tether::auth::JwsAlgorithm;
using tether::auth::TokenError;
using tether::auth::TokenPolicy;
using tether::auth::TokenVerifier;
using tether::testing::TestSigningKey;

constexpr std::int64_t kNow = 1'800'000'000;  // 2027-01-15T08:00:00Z

struct Keys {
  TestSigningKey rsa{JwsAlgorithm::kRs256, "rsa-1"};
  TestSigningKey pss{rsa, JwsAlgorithm::kPs256, "pss-1"};
  TestSigningKey ec{JwsAlgorithm::kEs256, "ec-1"};
  TestSigningKey ed{JwsAlgorithm::kEdDsa, "ed-1"};
  TestSigningKey hmac{JwsAlgorithm::kHs256, "hmac-1"};
};

const Keys& keys() {
  static const Keys generated;
  return generated;
}

class JwsTest : public ::testing::Test {
 protected:
  JwsTest() {
    use_keys(tether::testing::jwks_document(
        {&keys().rsa, &keys().pss, &keys().ec, &keys().ed, &keys().hmac}));
  }

  void use_keys(const std::string& document) {
    auto parsed = JsonWebKeySet::parse(document);
    ASSERT_TRUE(parsed) << parsed.error();
    set_ = std::make_shared<const JsonWebKeySet>(std::move(*parsed));
  }

  TokenVerifier verifier(TokenPolicy policy = default_policy()) {
    auto made = TokenVerifier::create(TokenVerifier::fixed_keys(set_), std::move(policy),
                                      [this] { return now_; });
    EXPECT_TRUE(made);
    return std::move(*made);
  }

  static TokenPolicy default_policy() {
    TokenPolicy policy;
    policy.issuer = "https://issuer.example";
    policy.audience = "tether";
    policy.required_scope = "tether:connect";
    return policy;
  }

  static json claims() {
    return {{"iss", "https://issuer.example"},
            {"aud", "tether"},
            {"sub", "alice"},
            {"scope", "openid tether:connect tether:connect:db.internal:5432"},
            {"exp", kNow + 600},
            {"nbf", kNow - 10},
            {"iat", kNow - 10}};
  }

  // The error of verifying `token`, checking that the message never quotes the token.
  TokenError refusal(const std::string& token, const std::string& expected_in_message = {},
                     TokenPolicy policy = default_policy()) {
    auto result = verifier(std::move(policy)).verify(token);
    EXPECT_FALSE(result) << "accepted";
    if (result) return TokenError::kNoKeys;
    const std::string& message = result.error().message;
    EXPECT_FALSE(message.empty());
    if (!token.empty()) {
      EXPECT_EQ(message.find(token), std::string::npos);
    }
    const auto last_dot = token.rfind('.');
    if (last_dot != std::string::npos && token.size() - last_dot > 8) {
      EXPECT_EQ(message.find(token.substr(last_dot + 1)), std::string::npos) << message;
    }
    if (!expected_in_message.empty()) {
      EXPECT_NE(message.find(expected_in_message), std::string::npos) << message;
    }
    return result.error().error;
  }

  std::shared_ptr<const JsonWebKeySet> set_;
  system_clock::time_point now_{seconds(kNow)};
};

TEST_F(JwsTest, AcceptsAValidTokenOfEachAlgorithm) {
  for (const TestSigningKey* key :
       {&keys().rsa, &keys().pss, &keys().ec, &keys().ed, &keys().hmac}) {
    SCOPED_TRACE(std::string(tether::auth::name(key->algorithm())));
    auto result = verifier().verify(key->token(claims()));
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(result->principal, "alice");
    EXPECT_EQ(result->scopes, (std::vector<std::string>{"openid", "tether:connect",
                                                        "tether:connect:db.internal:5432"}));
    EXPECT_EQ(result->expiry, system_clock::time_point(seconds(kNow + 600)));
    EXPECT_EQ(result->lifetime, seconds(600));
    EXPECT_EQ(result->issuer, "https://issuer.example");
    EXPECT_EQ(result->key_id, key->key_id());
    EXPECT_EQ(result->algorithm, key->algorithm());
  }
}

TEST_F(JwsTest, RefusesAlgNone) {
  const std::string token = base64url_encode(json{{"alg", "none"}}.dump()) + "." +
                            base64url_encode(claims().dump()) + ".";
  EXPECT_EQ(refusal(token, "\"none\""), TokenError::kAlgorithmNotAllowed);
  const std::string with_kid = base64url_encode(json{{"alg", "none"}, {"kid", "rsa-1"}}.dump()) +
                               "." + base64url_encode(claims().dump()) + ".";
  EXPECT_EQ(refusal(with_kid), TokenError::kAlgorithmNotAllowed);
}

TEST_F(JwsTest, RefusesAlgorithmConfusionHs256SignedWithTheRsaPublicKey) {
  // The classic attack: the token says HS256 and is MACed with the RSA public key's PEM, which a
  // library that lets the token pick the algorithm would use as the HMAC secret.
  use_keys(tether::testing::jwks_document({&keys().rsa}));
  const std::string pem = keys().rsa.public_pem();
  ASSERT_NE(pem.find("BEGIN PUBLIC KEY"), std::string::npos);
  const std::string with_kid =
      tether::testing::hmac_token({{"alg", "HS256"}, {"kid", "rsa-1"}}, claims(), pem);
  EXPECT_EQ(refusal(with_kid, "pinned to RS256"), TokenError::kAlgorithmNotAllowed);
  const std::string without_kid = tether::testing::hmac_token({{"alg", "HS256"}}, claims(), pem);
  EXPECT_EQ(refusal(without_kid, "HS256"), TokenError::kAlgorithmNotAllowed);
  // And another asymmetric algorithm on the same key: refused too.
  json header = {{"alg", "PS256"}, {"kid", "rsa-1"}};
  EXPECT_EQ(refusal(keys().pss.token(claims(), header)), TokenError::kAlgorithmNotAllowed);
}

TEST_F(JwsTest, RefusesAKeyIdNotInTheSetAndEscapesIt) {
  const std::string token = keys().rsa.token(claims(), {{"kid", "evil\n\x1b[31m"}});
  EXPECT_EQ(refusal(token, "unknown key id \"evil\\x0a\\x1b[31m\""), TokenError::kUnknownKey);
}

TEST_F(JwsTest, RefusesAKeyNotInTheSetEvenWithAKnownKid) {
  const TestSigningKey stranger(JwsAlgorithm::kEs256, "ec-1");
  EXPECT_EQ(refusal(stranger.token(claims()), "bad signature"), TokenError::kBadSignature);
}

TEST_F(JwsTest, WithoutKidUsesTheOnlyKeyPinnedToTheAlgorithmAndRefusesAmbiguity) {
  const TestSigningKey lone(JwsAlgorithm::kEdDsa, "");
  use_keys(tether::testing::jwks_document({&keys().rsa, &lone}));
  auto accepted = verifier().verify(lone.token(claims()));
  ASSERT_TRUE(accepted) << accepted.error().message;
  EXPECT_EQ(accepted->principal, "alice");

  const TestSigningKey second(JwsAlgorithm::kEdDsa, "");
  use_keys(tether::testing::jwks_document({&lone, &second}));
  EXPECT_EQ(refusal(lone.token(claims()), "2 keys use EdDSA"), TokenError::kUnknownKey);
}

TEST_F(JwsTest, ExpiredIsRefusedWithItsTimeAndAcceptedWithinTheLeeway) {
  json expired = claims();
  expired["exp"] = kNow - 61;
  EXPECT_EQ(refusal(keys().rsa.token(expired), "expired at 2027-01-15T07:58:59Z"),
            TokenError::kExpired);

  json within_leeway = claims();
  within_leeway["exp"] = kNow - 30;
  auto accepted = verifier().verify(keys().rsa.token(within_leeway));
  ASSERT_TRUE(accepted) << accepted.error().message;
  EXPECT_EQ(accepted->lifetime, std::chrono::nanoseconds(0));  // never negative

  TokenPolicy strict = default_policy();
  strict.leeway = seconds(0);
  EXPECT_EQ(refusal(keys().rsa.token(within_leeway), "expired at", strict), TokenError::kExpired);
}

TEST_F(JwsTest, NotYetValidIsRefusedAndAcceptedWithinTheLeeway) {
  json future = claims();
  future["nbf"] = kNow + 3600;
  EXPECT_EQ(refusal(keys().ec.token(future), "not valid before 2027-01-15T09:00:00Z"),
            TokenError::kNotYetValid);
  future["nbf"] = kNow + 30;
  EXPECT_TRUE(verifier().verify(keys().ec.token(future)));
}

TEST_F(JwsTest, ExpiryIsRequiredAndMustBeANumber) {
  json no_exp = claims();
  no_exp.erase("exp");
  EXPECT_EQ(refusal(keys().rsa.token(no_exp), "exp"), TokenError::kMalformed);
  json text_exp = claims();
  text_exp["exp"] = std::to_string(kNow + 600);
  EXPECT_EQ(refusal(keys().rsa.token(text_exp), "exp"), TokenError::kMalformed);
  json negative = claims();
  negative["exp"] = -5;
  EXPECT_EQ(refusal(keys().rsa.token(negative)), TokenError::kMalformed);
  json huge = claims();
  huge["exp"] = 1e300;
  EXPECT_EQ(refusal(keys().rsa.token(huge)), TokenError::kMalformed);
  json fractional = claims();
  fractional["exp"] = kNow + 600.5;
  EXPECT_TRUE(verifier().verify(keys().rsa.token(fractional)));
}

TEST_F(JwsTest, RefusesTheWrongAudienceAsAStringOrAnArray) {
  json other = claims();
  other["aud"] = "another-service";
  EXPECT_EQ(refusal(keys().ed.token(other), "audience"), TokenError::kWrongAudience);
  other["aud"] = json::array({"another-service", "a-third"});
  EXPECT_EQ(refusal(keys().ed.token(other), "audience"), TokenError::kWrongAudience);
  other["aud"] = json::array();
  EXPECT_EQ(refusal(keys().ed.token(other)), TokenError::kWrongAudience);
  other.erase("aud");
  EXPECT_EQ(refusal(keys().ed.token(other)), TokenError::kWrongAudience);
  other["aud"] = json::array({"another-service", "tether"});
  EXPECT_TRUE(verifier().verify(keys().ed.token(other)));
  other["aud"] = json::array({"tether", 5});
  EXPECT_EQ(refusal(keys().ed.token(other)), TokenError::kMalformed);
}

TEST_F(JwsTest, RefusesTheWrongIssuer) {
  json other = claims();
  other["iss"] = "https://evil.example";
  EXPECT_EQ(refusal(keys().hmac.token(other), "wrong issuer \"https://evil.example\""),
            TokenError::kWrongIssuer);
  other.erase("iss");
  EXPECT_EQ(refusal(keys().hmac.token(other), "issuer"), TokenError::kWrongIssuer);
  TokenPolicy any_issuer = default_policy();
  any_issuer.issuer.clear();
  EXPECT_TRUE(verifier(any_issuer).verify(keys().hmac.token(other)));
}

TEST_F(JwsTest, RefusesAMissingScopeAndReadsScpArraysAndStrings) {
  json other = claims();
  other["scope"] = "openid tether:connectx";
  EXPECT_EQ(refusal(keys().rsa.token(other), "missing scope \"tether:connect\""),
            TokenError::kMissingScope);
  other.erase("scope");
  EXPECT_EQ(refusal(keys().rsa.token(other)), TokenError::kMissingScope);
  other["scp"] = json::array({"openid", "tether:connect"});
  auto from_array = verifier().verify(keys().rsa.token(other));
  ASSERT_TRUE(from_array) << from_array.error().message;
  EXPECT_EQ(from_array->scopes, (std::vector<std::string>{"openid", "tether:connect"}));
  other["scp"] = "tether:connect  openid";
  auto from_string = verifier().verify(keys().rsa.token(other));
  ASSERT_TRUE(from_string) << from_string.error().message;
  EXPECT_EQ(from_string->scopes, (std::vector<std::string>{"tether:connect", "openid"}));
  other["scp"] = json::array({"tether:connect", 1});
  EXPECT_EQ(refusal(keys().rsa.token(other)), TokenError::kMalformed);
}

TEST_F(JwsTest, RequiresASubject) {
  json other = claims();
  other.erase("sub");
  EXPECT_EQ(refusal(keys().rsa.token(other), "sub"), TokenError::kMalformed);
  other["sub"] = "";
  EXPECT_EQ(refusal(keys().rsa.token(other), "sub"), TokenError::kMalformed);
  other["sub"] = 42;
  EXPECT_EQ(refusal(keys().rsa.token(other), "sub"), TokenError::kMalformed);
}

TEST_F(JwsTest, RefusesAnOversizedTokenBeforeReadingIt) {
  json big = claims();
  big["padding"] = std::string(9000, 'x');
  const std::string token = keys().hmac.token(big);
  ASSERT_GT(token.size(), 8192u);
  EXPECT_EQ(refusal(token, "at most 8192"), TokenError::kTooLarge);
  EXPECT_EQ(refusal(std::string(100000, 'A')), TokenError::kTooLarge);
}

TEST_F(JwsTest, RefusesMalformedBase64url) {
  const std::string good = keys().rsa.token(claims());
  const auto first_dot = good.find('.');
  // Padding, a standard-alphabet character, whitespace, an impossible length.
  EXPECT_EQ(refusal(good.substr(0, first_dot) + "=" + good.substr(first_dot)),
            TokenError::kMalformed);
  EXPECT_EQ(refusal("+" + good.substr(1)), TokenError::kMalformed);
  EXPECT_EQ(refusal(good.substr(0, first_dot) + " " + good.substr(first_dot)),
            TokenError::kMalformed);
  ASSERT_EQ((good.size() - good.rfind('.') - 1) % 4, 2u);
  EXPECT_EQ(refusal(good + "AAA"), TokenError::kMalformed);  // signature length % 4 == 1
  EXPECT_EQ(refusal(good + "."), TokenError::kMalformed);    // four parts
  EXPECT_EQ(refusal(good.substr(0, good.rfind('.'))), TokenError::kMalformed);  // two parts
  EXPECT_EQ(refusal(""), TokenError::kMalformed);
}

TEST_F(JwsTest, RefusesMalformedJson) {
  const std::string claims_part = base64url_encode(claims().dump());
  EXPECT_EQ(refusal(base64url_encode("{\"alg\":\"RS256\"") + "." + claims_part + ".AAAA",
                    "malformed JSON"),
            TokenError::kMalformed);
  EXPECT_EQ(refusal(base64url_encode("[\"RS256\"]") + "." + claims_part + ".AAAA", "object"),
            TokenError::kMalformed);
  EXPECT_EQ(refusal(base64url_encode("{\"alg\":\"RS256\",\"alg\":\"HS256\"}") + "." + claims_part +
                        ".AAAA",
                    "duplicate"),
            TokenError::kMalformed);
  EXPECT_EQ(refusal(base64url_encode("{\"alg\":\"RS2\xff\"}") + "." + claims_part + ".AAAA"),
            TokenError::kMalformed);
  EXPECT_EQ(refusal(base64url_encode("{\"kid\":\"rsa-1\"}") + "." + claims_part + ".AAAA", "alg"),
            TokenError::kMalformed);
  // Signed claims that are not JSON: refused after the signature check.
  const std::string header = base64url_encode(json{{"alg", "HS256"}, {"kid", "hmac-1"}}.dump());
  const std::string input = header + "." + base64url_encode("{\"sub\":");
  EXPECT_EQ(refusal(input + "." + base64url_encode(keys().hmac.sign(input)), "claims"),
            TokenError::kMalformed);
  json duplicate_claims = claims();
  const std::string duplicated =
      header + "." + base64url_encode(claims().dump().insert(1, "\"sub\":\"mallory\","));
  EXPECT_EQ(refusal(duplicated + "." + base64url_encode(keys().hmac.sign(duplicated)), "duplicate"),
            TokenError::kMalformed);
}

TEST_F(JwsTest, RefusesDeeplyNestedJsonWithoutRecursing) {
  const std::string deep = std::string(2000, '[') + std::string(2000, ']');
  const std::string deep_header = "{\"alg\":\"RS256\",\"x\":" + deep + "}";
  EXPECT_EQ(
      refusal(base64url_encode(deep_header) + "." + base64url_encode(claims().dump()) + ".AAAA",
              "nested deeper"),
      TokenError::kMalformed);
  // Far deeper than any stack would take, with the size limit raised to let it through.
  TokenPolicy roomy = default_policy();
  roomy.max_token_size = 4 * 1024 * 1024;
  const std::string very_deep = std::string(1'000'000, '{');
  EXPECT_EQ(refusal(base64url_encode(very_deep) + "." + base64url_encode(claims().dump()) + ".AAAA",
                    "nested deeper", roomy),
            TokenError::kMalformed);
  // Within the size limit and signed: the claims' depth is bounded too.
  json nested = claims();
  std::string claims_text = nested.dump();
  claims_text.insert(1, "\"deep\":" + std::string(40, '[') + std::string(40, ']') + ",");
  const std::string header = base64url_encode(json{{"alg", "HS256"}, {"kid", "hmac-1"}}.dump());
  const std::string input = header + "." + base64url_encode(claims_text);
  EXPECT_EQ(refusal(input + "." + base64url_encode(keys().hmac.sign(input)), "nested deeper"),
            TokenError::kMalformed);
}

TEST_F(JwsTest, RefusesAnEs256SignatureInDerForm) {
  const std::string der = keys().ec.token(claims(), json::object(), /*der_ecdsa=*/true);
  EXPECT_EQ(refusal(der, "bad signature"), TokenError::kBadSignature);
  EXPECT_TRUE(verifier().verify(keys().ec.token(claims())));
}

TEST_F(JwsTest, RefusesATamperedPayloadOrSignature) {
  for (const TestSigningKey* key :
       {&keys().rsa, &keys().pss, &keys().ec, &keys().ed, &keys().hmac}) {
    SCOPED_TRACE(std::string(tether::auth::name(key->algorithm())));
    const std::string token = key->token(claims());
    json changed = claims();
    changed["sub"] = "mallory";
    const std::string other = key->token(changed);
    const std::string spliced =
        token.substr(0, token.find('.') + 1) +
        other.substr(other.find('.') + 1, other.rfind('.') - other.find('.') - 1) +
        token.substr(token.rfind('.'));
    EXPECT_EQ(refusal(spliced, "bad signature"), TokenError::kBadSignature);
    // A signature of the wrong length (one byte short).
    auto signature = *base64url_decode(token.substr(token.rfind('.') + 1));
    signature.pop_back();
    EXPECT_EQ(refusal(token.substr(0, token.rfind('.') + 1) + base64url_encode(signature)),
              TokenError::kBadSignature);
  }
}

TEST_F(JwsTest, RefusesCriticalHeaderExtensions) {
  const std::string token =
      keys().rsa.token(claims(), {{"crit", json::array({"b64"})}, {"b64", false}});
  EXPECT_EQ(refusal(token, "crit"), TokenError::kMalformed);
}

TEST_F(JwsTest, IgnoresKeysEmbeddedInTheHeader) {
  // A token carrying its own key (jwk) signed by that key: the embedded key is never used.
  const TestSigningKey attacker(JwsAlgorithm::kRs256, "rsa-1");
  const std::string token = attacker.token(claims(), {{"jwk", attacker.jwk()}});
  EXPECT_EQ(refusal(token), TokenError::kBadSignature);
}

TEST_F(JwsTest, RefusesAPolicyWithoutAudience) {
  TokenPolicy policy = default_policy();
  policy.audience.clear();
  EXPECT_FALSE(TokenVerifier::create(TokenVerifier::fixed_keys(set_), policy,
                                     [] { return system_clock::now(); }));
}

TEST_F(JwsTest, ReportsMissingKeys) {
  auto made = TokenVerifier::create([] { return std::shared_ptr<const JsonWebKeySet>(); },
                                    default_policy(), [this] { return now_; });
  ASSERT_TRUE(made);
  auto result = made->verify(keys().rsa.token(claims()));
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().error, TokenError::kNoKeys);
}

TEST(Base64urlTest, RoundTripsAndIsStrict) {
  for (std::size_t length = 0; length < 40; ++length) {
    std::string data;
    for (std::size_t index = 0; index < length; ++index)
      data += static_cast<char>(index * 37 + 250);
    const std::string encoded = base64url_encode(data);
    EXPECT_EQ(encoded.find_first_of("=+/"), std::string::npos);
    auto decoded = base64url_decode(encoded);
    ASSERT_TRUE(decoded) << decoded.error();
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(decoded->data()), decoded->size()), data);
  }
  EXPECT_EQ(base64url_encode(std::string_view("\xfb\xff")), "-_8");
  EXPECT_TRUE(base64url_decode(""));
  EXPECT_FALSE(base64url_decode("QQ=="));  // padding
  EXPECT_FALSE(base64url_decode("QQ="));
  EXPECT_FALSE(base64url_decode("Q"));   // impossible length
  EXPECT_FALSE(base64url_decode("QR"));  // non-canonical: unused bits set
  EXPECT_TRUE(base64url_decode("QQ"));
  EXPECT_FALSE(base64url_decode("+/8A"));  // standard alphabet
  EXPECT_FALSE(base64url_decode("QU FB"));
  EXPECT_FALSE(base64url_decode("QUFB\n"));
  EXPECT_FALSE(base64url_decode(std::string_view("QU\0B", 4)));
}

TEST(EscapePeerTextTest, WritesControlBytesAndBackslashesAndShortens) {
  EXPECT_EQ(tether::auth::escape_peer_text("a\\b\n\xff"), "a\\\\b\\x0a\\xff");
  EXPECT_EQ(tether::auth::escape_peer_text(std::string(100, 'k'), 4), "kkkk...");
}

TEST(FormatUtcTest, WritesRfc3339) {
  EXPECT_EQ(tether::auth::format_utc(system_clock::time_point(seconds(0))), "1970-01-01T00:00:00Z");
  EXPECT_EQ(tether::auth::format_utc(system_clock::time_point(seconds(kNow))),
            "2027-01-15T08:00:00Z");
}

}  // namespace
