// TestSigningKey is a key pair (or HMAC secret) generated in-process with OpenSSL for the JOSE
// tests, the fuzzer's seeds and the benchmark: its public JWK, and JWS compact tokens it signs.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "auth/base64url.hpp"
#include "auth/jwks.hpp"
#include "crypto/primitives.hpp"

namespace tether::testing {

class TestSigningKey {
 public:
  // A fresh key for `algorithm`: RSA 2048 (RS256, PS256), P-256, Ed25519, or 32 random bytes.
  TestSigningKey(auth::JwsAlgorithm algorithm, std::string key_id)
      : algorithm_(algorithm), key_id_(std::move(key_id)) {
    EVP_PKEY* raw = nullptr;
    switch (algorithm) {
      case auth::JwsAlgorithm::kRs256:
      case auth::JwsAlgorithm::kPs256:
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<std::size_t>(2048));
        break;
      case auth::JwsAlgorithm::kEs256:
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
        break;
      case auth::JwsAlgorithm::kEdDsa:
        raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
        break;
      case auth::JwsAlgorithm::kHs256:
        secret_.resize(32);
        if (RAND_bytes(reinterpret_cast<unsigned char*>(secret_.data()), 32) != 1)
          throw std::runtime_error("RAND_bytes");
        break;
    }
    if (algorithm != auth::JwsAlgorithm::kHs256 && !raw) throw std::runtime_error("keygen");
    key_.reset(raw, EVP_PKEY_free);
  }

  // The same key material used with another algorithm of its type (RS256 and PS256 share an RSA
  // key: RSA key generation is the slow part of the tests).
  TestSigningKey(const TestSigningKey& other, auth::JwsAlgorithm algorithm, std::string key_id)
      : algorithm_(algorithm),
        key_id_(std::move(key_id)),
        key_(other.key_),
        secret_(other.secret_) {}

  [[nodiscard]] auth::JwsAlgorithm algorithm() const { return algorithm_; }
  [[nodiscard]] const std::string& key_id() const { return key_id_; }
  [[nodiscard]] EVP_PKEY* pkey() const { return key_.get(); }

  // The public JWK, with kid (when non-empty) and alg.
  [[nodiscard]] nlohmann::json jwk() const {
    nlohmann::json jwk;
    switch (algorithm_) {
      case auth::JwsAlgorithm::kRs256:
      case auth::JwsAlgorithm::kPs256:
        jwk = {{"kty", "RSA"},
               {"n", bignum(OSSL_PKEY_PARAM_RSA_N, 0)},
               {"e", bignum(OSSL_PKEY_PARAM_RSA_E, 0)}};
        break;
      case auth::JwsAlgorithm::kEs256:
        jwk = {{"kty", "EC"},
               {"crv", "P-256"},
               {"x", bignum(OSSL_PKEY_PARAM_EC_PUB_X, 32)},
               {"y", bignum(OSSL_PKEY_PARAM_EC_PUB_Y, 32)}};
        break;
      case auth::JwsAlgorithm::kEdDsa: {
        std::vector<std::byte> raw(32);
        std::size_t length = raw.size();
        EVP_PKEY_get_raw_public_key(key_.get(), reinterpret_cast<unsigned char*>(raw.data()),
                                    &length);
        jwk = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", auth::base64url_encode(raw)}};
        break;
      }
      case auth::JwsAlgorithm::kHs256:
        jwk = {{"kty", "oct"}, {"k", auth::base64url_encode(secret_)}};
        break;
    }
    jwk["alg"] = std::string(auth::name(algorithm_));
    if (!key_id_.empty()) jwk["kid"] = key_id_;
    return jwk;
  }

  // The JWS signature of `input` in this key's algorithm (ES256: raw r||s, as JOSE wants; with
  // `der_ecdsa`, the DER form EVP produces, which JOSE forbids).
  [[nodiscard]] std::vector<std::byte> sign(std::string_view input, bool der_ecdsa = false) const {
    const auto* data = reinterpret_cast<const unsigned char*>(input.data());
    if (algorithm_ == auth::JwsAlgorithm::kHs256) {
      const auto mac = crypto::hmac_sha256(secret_, {crypto::label(input)});
      return {mac.begin(), mac.end()};
    }
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                    EVP_MD_CTX_free);
    EVP_PKEY_CTX* key_context = nullptr;
    const EVP_MD* digest = algorithm_ == auth::JwsAlgorithm::kEdDsa ? nullptr : EVP_sha256();
    if (EVP_DigestSignInit(context.get(), &key_context, digest, nullptr, key_.get()) != 1)
      throw std::runtime_error("EVP_DigestSignInit");
    if (algorithm_ == auth::JwsAlgorithm::kPs256) {
      EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PSS_PADDING);
      EVP_PKEY_CTX_set_rsa_pss_saltlen(key_context, 32);
    }
    std::size_t length = 0;
    EVP_DigestSign(context.get(), nullptr, &length, data, input.size());
    std::vector<std::byte> signature(length);
    if (EVP_DigestSign(context.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                       data, input.size()) != 1)
      throw std::runtime_error("EVP_DigestSign");
    signature.resize(length);
    if (algorithm_ != auth::JwsAlgorithm::kEs256 || der_ecdsa) return signature;
    const auto* cursor = reinterpret_cast<const unsigned char*>(signature.data());
    ECDSA_SIG* parsed = d2i_ECDSA_SIG(nullptr, &cursor, static_cast<long>(signature.size()));
    std::vector<std::byte> raw(64);
    BN_bn2binpad(ECDSA_SIG_get0_r(parsed), reinterpret_cast<unsigned char*>(raw.data()), 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(parsed), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
    ECDSA_SIG_free(parsed);
    return raw;
  }

  // A compact JWS: header {"alg": this algorithm, "kid": key id (when non-empty)} merged with
  // `header_extra` (whose members win), the claims, and this key's signature.
  [[nodiscard]] std::string token(const nlohmann::json& claims,
                                  const nlohmann::json& header_extra = nlohmann::json::object(),
                                  bool der_ecdsa = false) const {
    nlohmann::json header = {{"alg", std::string(auth::name(algorithm_))}};
    if (!key_id_.empty()) header["kid"] = key_id_;
    for (const auto& [name, value] : header_extra.items()) header[name] = value;
    const std::string input =
        auth::base64url_encode(header.dump()) + "." + auth::base64url_encode(claims.dump());
    return input + "." + auth::base64url_encode(sign(input, der_ecdsa));
  }

  // The public key as PEM (SubjectPublicKeyInfo): the "HMAC secret" of the confusion attack.
  [[nodiscard]] std::string public_pem() const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    PEM_write_bio_PUBKEY(bio.get(), key_.get());
    char* data = nullptr;
    const long length = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(length));
  }

 private:
  std::string bignum(const char* parameter, int pad) const {
    BIGNUM* number = nullptr;
    if (EVP_PKEY_get_bn_param(key_.get(), parameter, &number) != 1)
      throw std::runtime_error("EVP_PKEY_get_bn_param");
    std::vector<std::byte> bytes(static_cast<std::size_t>(pad ? pad : BN_num_bytes(number)));
    BN_bn2binpad(number, reinterpret_cast<unsigned char*>(bytes.data()),
                 static_cast<int>(bytes.size()));
    BN_free(number);
    return auth::base64url_encode(bytes);
  }

  auth::JwsAlgorithm algorithm_;
  std::string key_id_;
  std::shared_ptr<EVP_PKEY> key_;
  std::vector<std::byte> secret_;
};

// A signed compact JWS with an arbitrary header and claims, HMAC-SHA256 under `secret` (for the
// confusion attack, whose secret is a PEM text).
[[nodiscard]] inline std::string hmac_token(const nlohmann::json& header,
                                            const nlohmann::json& claims, std::string_view secret) {
  const std::string input =
      auth::base64url_encode(header.dump()) + "." + auth::base64url_encode(claims.dump());
  const auto mac = crypto::hmac_sha256(crypto::label(secret), {crypto::label(input)});
  return input + "." + auth::base64url_encode(mac);
}

// A JWKS document holding `keys`' public JWKs.
[[nodiscard]] inline std::string jwks_document(std::initializer_list<const TestSigningKey*> keys) {
  nlohmann::json document = {{"keys", nlohmann::json::array()}};
  for (const TestSigningKey* key : keys) document["keys"].push_back(key->jwk());
  return document.dump();
}

}  // namespace tether::testing
