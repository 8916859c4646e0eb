#include "crypto/primitives.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include <cassert>
#include <cstdlib>
#include <vector>

namespace tether::crypto {

Digest hmac_sha256(std::span<const std::byte> key,
                   std::initializer_list<std::span<const std::byte>> parts) {
  // Inputs are small (labels, ids, 32-byte secrets): one contiguous buffer and the one-shot call.
  std::array<unsigned char, 256> stack_buffer{};
  std::vector<unsigned char> heap_buffer;
  std::size_t total = 0;
  for (const auto& part : parts) total += part.size();
  unsigned char* data = stack_buffer.data();
  if (total > stack_buffer.size()) {
    heap_buffer.resize(total);
    data = heap_buffer.data();
  }
  std::size_t offset = 0;
  for (const auto& part : parts) {
    for (std::byte byte : part) data[offset++] = static_cast<unsigned char>(byte);
  }
  Digest out{};
  unsigned int out_length = 0;
  const unsigned char* result =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data, total,
           reinterpret_cast<unsigned char*>(out.data()), &out_length);
  // HMAC-SHA256 with in-memory inputs fails only if libcrypto itself is broken.
  if (result == nullptr || out_length != out.size()) std::abort();
  return out;
}

Digest hkdf_sha256(std::span<const std::byte> salt, std::span<const std::byte> input_key,
                   std::string_view info) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) std::abort();
  EVP_KDF_CTX* context = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  if (context == nullptr) std::abort();
  char digest_name[] = "SHA256";
  // RFC 5869: an absent salt is a string of HashLen zeros; OpenSSL wants the parameter left out
  // then.
  OSSL_PARAM params[5];
  std::size_t count = 0;
  params[count++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest_name, 0);
  params[count++] = OSSL_PARAM_construct_octet_string(
      OSSL_KDF_PARAM_KEY, const_cast<std::byte*>(input_key.data()), input_key.size());
  if (!salt.empty()) {
    params[count++] = OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, const_cast<std::byte*>(salt.data()), salt.size());
  }
  params[count++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                      const_cast<char*>(info.data()), info.size());
  params[count] = OSSL_PARAM_construct_end();
  Digest out{};
  const int status =
      EVP_KDF_derive(context, reinterpret_cast<unsigned char*>(out.data()), out.size(), params);
  EVP_KDF_CTX_free(context);
  if (status != 1) std::abort();
  return out;
}

bool constant_time_equal(std::span<const std::byte> left, std::span<const std::byte> right) {
  if (left.size() != right.size()) return false;
  return CRYPTO_memcmp(left.data(), right.data(), left.size()) == 0;
}

}  // namespace tether::crypto
