// JsonWebKeySet and JwksFile: each key type is read and pinned to its alg; keys without alg, with
// the wrong kty, too weak or off the curve are refused; documents are bounded in size, keys and
// depth; a JWKS file is reloaded when it changes and a broken file keeps the old keys.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "auth/base64url.hpp"
#include "auth/jwks.hpp"
#include "auth/jwt.hpp"
#include "tests/support/jose_keys.hpp"
#include "tests/support/temporary_directory.hpp"

namespace {

using nlohmann::json;
using std::chrono::seconds;
using std::chrono::system_clock;
using tether::auth::JsonWebKeySet;
using tether::auth::JwksFile;
using tether::auth::JwksLimits;
using tether::auth::JwsAlgorithm;
using tether::testing::TestSigningKey;

const TestSigningKey& rsa_key() {
  static const TestSigningKey key(JwsAlgorithm::kRs256, "rsa");
  return key;
}
const TestSigningKey& ec_key() {
  static const TestSigningKey key(JwsAlgorithm::kEs256, "ec");
  return key;
}
const TestSigningKey& ed_key() {
  static const TestSigningKey key(JwsAlgorithm::kEdDsa, "ed");
  return key;
}
const TestSigningKey& hmac_key() {
  static const TestSigningKey key(JwsAlgorithm::kHs256, "hmac");
  return key;
}

std::string document_of(std::vector<json> jwks) {
  return json{{"keys", std::move(jwks)}}.dump();
}

// The parse error of a document holding `jwk`, which must mention `expected`.
void expect_refused(const json& jwk, const std::string& expected) {
  auto parsed = JsonWebKeySet::parse(document_of({jwk}));
  ASSERT_FALSE(parsed) << "accepted " << jwk.dump();
  EXPECT_NE(parsed.error().find(expected), std::string::npos) << parsed.error();
}

TEST(JwksTest, ReadsEachKeyTypePinnedToItsAlgorithm) {
  json pss = rsa_key().jwk();
  pss["alg"] = "PS256";
  pss["kid"] = "pss";
  auto parsed = JsonWebKeySet::parse(
      document_of({rsa_key().jwk(), pss, ec_key().jwk(), ed_key().jwk(), hmac_key().jwk()}));
  ASSERT_TRUE(parsed) << parsed.error();
  ASSERT_EQ(parsed->keys().size(), 5u);
  const std::vector<std::pair<std::string, JwsAlgorithm>> expected = {
      {"rsa", JwsAlgorithm::kRs256},
      {"pss", JwsAlgorithm::kPs256},
      {"ec", JwsAlgorithm::kEs256},
      {"ed", JwsAlgorithm::kEdDsa},
      {"hmac", JwsAlgorithm::kHs256}};
  for (const auto& [kid, algorithm] : expected) {
    const auto* key = parsed->find(kid);
    ASSERT_NE(key, nullptr) << kid;
    EXPECT_EQ(key->algorithm(), algorithm);
    EXPECT_EQ(key->public_key() == nullptr, algorithm == JwsAlgorithm::kHs256);
    EXPECT_EQ(key->secret().empty(), algorithm != JwsAlgorithm::kHs256);
  }
  EXPECT_EQ(parsed->find("absent"), nullptr);
  EXPECT_EQ(parsed->find(""), nullptr);
}

TEST(JwksTest, RefusesAKeyWithoutAlg) {
  json jwk = rsa_key().jwk();
  jwk.erase("alg");
  expect_refused(jwk, "no \"alg\"");
  expect_refused(jwk, "kid \"rsa\"");
}

TEST(JwksTest, RefusesAnAlgorithmTheKeyTypeCannotUse) {
  json jwk = rsa_key().jwk();
  jwk["alg"] = "HS256";
  expect_refused(jwk, "kty \"RSA\" cannot be used with HS256");
  jwk["alg"] = "ES256";
  expect_refused(jwk, "cannot be used with ES256");
  json hmac = hmac_key().jwk();
  hmac["alg"] = "RS256";
  expect_refused(hmac, "cannot be used with RS256");
  jwk["alg"] = "none";
  expect_refused(jwk, "not supported");
  jwk["alg"] = "RS512";
  expect_refused(jwk, "not supported");
}

TEST(JwksTest, RefusesEncryptionKeysAndBadMembers) {
  json jwk = ec_key().jwk();
  jwk["use"] = "enc";
  expect_refused(jwk, "\"use\"");
  json no_y = ec_key().jwk();
  no_y.erase("y");
  expect_refused(no_y, "\"y\"");
  json padded = ed_key().jwk();
  padded["x"] = padded["x"].get<std::string>() + "=";
  expect_refused(padded, "\"x\"");
  json wrong_curve = ec_key().jwk();
  wrong_curve["crv"] = "P-384";
  expect_refused(wrong_curve, "P-256");
  json numeric_kid = rsa_key().jwk();
  numeric_kid["kid"] = 7;
  expect_refused(numeric_kid, "kid");
}

TEST(JwksTest, RefusesWeakKeysAndPointsOffTheCurve) {
  const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> small(
      EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(1024)), EVP_PKEY_free);
  BIGNUM* modulus = nullptr;
  ASSERT_EQ(EVP_PKEY_get_bn_param(small.get(), "n", &modulus), 1);
  std::vector<std::byte> bytes(static_cast<std::size_t>(BN_num_bytes(modulus)));
  BN_bn2bin(modulus, reinterpret_cast<unsigned char*>(bytes.data()));
  BN_free(modulus);
  json weak = rsa_key().jwk();
  weak["n"] = tether::auth::base64url_encode(bytes);
  expect_refused(weak, "1024 bits");

  json short_secret = hmac_key().jwk();
  short_secret["k"] = tether::auth::base64url_encode(std::string_view("sixteen bytes!!!"));
  expect_refused(short_secret, "16 bytes");

  json off_curve = ec_key().jwk();
  auto y = *tether::auth::base64url_decode(off_curve["y"].get<std::string>());
  y[31] ^= std::byte{1};
  off_curve["y"] = tether::auth::base64url_encode(y);
  expect_refused(off_curve, "not a valid public key");
}

TEST(JwksTest, RefusesDuplicateKeyIds) {
  json second = ec_key().jwk();
  second["kid"] = "rsa";
  auto parsed = JsonWebKeySet::parse(document_of({rsa_key().jwk(), second}));
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().find("same kid"), std::string::npos) << parsed.error();
}

TEST(JwksTest, BoundsTheDocument) {
  JwksLimits limits;
  limits.max_keys = 2;
  auto too_many =
      JsonWebKeySet::parse(document_of({ed_key().jwk(), hmac_key().jwk(), ec_key().jwk()}), limits);
  ASSERT_FALSE(too_many);
  EXPECT_NE(too_many.error().find("3 keys (at most 2)"), std::string::npos) << too_many.error();

  limits = {};
  limits.max_document_size = 100;
  auto too_large = JsonWebKeySet::parse(document_of({rsa_key().jwk()}), limits);
  ASSERT_FALSE(too_large);
  EXPECT_NE(too_large.error().find("larger than 100"), std::string::npos);

  // A million levels: refused by the depth scan, no recursion, no allocation per level.
  const std::string deep =
      "{\"keys\":" + std::string(1'000'000, '[') + std::string(1'000'000, ']') + "}";
  limits = {};
  limits.max_document_size = 4 * 1024 * 1024;
  auto nested = JsonWebKeySet::parse(deep, limits);
  ASSERT_FALSE(nested);
  EXPECT_NE(nested.error().find("nested deeper than 16"), std::string::npos) << nested.error();
  // Brackets inside strings do not count.
  auto in_string = JsonWebKeySet::parse("{\"keys\":[], \"note\":\"" + std::string(100, '[') +
                                        "\\\"" + std::string(100, '{') + "\"}");
  EXPECT_TRUE(in_string) << in_string.error();

  EXPECT_FALSE(JsonWebKeySet::parse("[]"));
  EXPECT_FALSE(JsonWebKeySet::parse("{\"keys\":{}}"));
  EXPECT_FALSE(JsonWebKeySet::parse("{\"keys\":[1]}"));
  EXPECT_FALSE(JsonWebKeySet::parse("{\"keys\":[]"));
  EXPECT_FALSE(JsonWebKeySet::parse("{\"keys\":[],\"keys\":[]}"));
  EXPECT_TRUE(JsonWebKeySet::parse("{\"keys\":[]}"));
}

class JwksFileTest : public ::testing::Test {
 protected:
  void write(const std::string& content) {
    // Through a temporary file and a rename, as a deployment would: a new inode each time.
    const auto temporary = directory_.path() / "jwks.json.tmp";
    std::ofstream(temporary) << content;
    std::filesystem::rename(temporary, path());
  }
  std::filesystem::path path() const { return directory_.path() / "jwks.json"; }

  std::shared_ptr<JwksFile> open() {
    auto file = JwksFile::open(
        path(), [this] { return now_; }, seconds(5), JwksLimits{},
        [this](const std::optional<std::string>& error) { reports_.push_back(error); });
    EXPECT_TRUE(file) << file.error();
    return file ? *file : nullptr;
  }

  tether::testing::TemporaryDirectory directory_;
  system_clock::time_point now_{seconds(1'800'000'000)};
  std::vector<std::optional<std::string>> reports_;
};

TEST_F(JwksFileTest, ReloadsWhenTheFileChangesAtMostOncePerInterval) {
  const TestSigningKey first(JwsAlgorithm::kEdDsa, "first");
  const TestSigningKey second(JwsAlgorithm::kEdDsa, "second");
  write(tether::testing::jwks_document({&first}));
  auto file = open();
  ASSERT_TRUE(file);
  ASSERT_NE(file->keys()->find("first"), nullptr);

  tether::auth::TokenPolicy policy;
  policy.audience = "tether";
  auto verifier = tether::auth::TokenVerifier::create(tether::auth::TokenVerifier::file_keys(file),
                                                      policy, [this] { return now_; });
  ASSERT_TRUE(verifier);
  const json claims = {{"sub", "alice"}, {"aud", "tether"}, {"exp", 1'800'000'600}};
  EXPECT_TRUE(verifier->verify(first.token(claims)));
  EXPECT_FALSE(verifier->verify(second.token(claims)));

  write(tether::testing::jwks_document({&second}));
  now_ += seconds(4);  // not yet time to look
  EXPECT_NE(file->keys()->find("first"), nullptr);
  EXPECT_TRUE(reports_.empty());
  now_ += seconds(1);
  auto verified = verifier->verify(second.token(claims));
  EXPECT_TRUE(verified) << verified.error().message;
  EXPECT_FALSE(verifier->verify(first.token(claims)));
  ASSERT_EQ(reports_.size(), 1u);
  EXPECT_FALSE(reports_[0]);
  EXPECT_FALSE(file->last_error());

  // Unchanged: no reload, no report.
  now_ += seconds(60);
  EXPECT_NE(file->keys()->find("second"), nullptr);
  EXPECT_EQ(reports_.size(), 1u);
}

TEST_F(JwksFileTest, ABrokenFileKeepsTheOldKeysAndReportsOnce) {
  const TestSigningKey first(JwsAlgorithm::kEs256, "first");
  write(tether::testing::jwks_document({&first}));
  auto file = open();
  ASSERT_TRUE(file);

  write("{\"keys\": [ {\"kty\": \"EC\"");  // truncated
  now_ += seconds(10);
  EXPECT_NE(file->keys()->find("first"), nullptr);
  ASSERT_EQ(reports_.size(), 1u);
  ASSERT_TRUE(reports_[0]);
  EXPECT_NE(reports_[0]->find("malformed JSON"), std::string::npos) << *reports_[0];
  EXPECT_NE(reports_[0]->find("keeping the keys loaded before"), std::string::npos);
  ASSERT_TRUE(file->last_error());
  now_ += seconds(10);
  EXPECT_NE(file->keys()->find("first"), nullptr);
  EXPECT_EQ(reports_.size(), 1u);  // the same broken file is reported once

  std::filesystem::remove(path());  // a vanished file: the same
  now_ += seconds(10);
  EXPECT_NE(file->keys()->find("first"), nullptr);
  EXPECT_EQ(reports_.size(), 2u);

  const TestSigningKey fixed(JwsAlgorithm::kEs256, "fixed");
  write(tether::testing::jwks_document({&fixed}));
  now_ += seconds(10);
  EXPECT_NE(file->keys()->find("fixed"), nullptr);
  EXPECT_FALSE(file->last_error());
  ASSERT_EQ(reports_.size(), 3u);
  EXPECT_FALSE(reports_[2]);
}

TEST_F(JwksFileTest, AFileThatCannotBeLoadedAtStartIsAnError) {
  auto missing = JwksFile::open(path(), [this] { return now_; });
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().find("jwks.json"), std::string::npos) << missing.error();
  json no_alg = rsa_key().jwk();
  no_alg.erase("alg");
  write(document_of({no_alg}));
  auto refused = JwksFile::open(path(), [this] { return now_; });
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("alg"), std::string::npos);
  auto directory = JwksFile::open(directory_.path(), [this] { return now_; });
  EXPECT_FALSE(directory);
}

}  // namespace
