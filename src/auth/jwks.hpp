// JsonWebKeySet is a set of verification keys read from a JWKS document (RFC 7517), each pinned to
// the one JWS algorithm its `alg` member names; JwksFile keeps one loaded from a file and reloads
// it when the file changes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>

#include "tether/expected.hpp"

namespace tether::auth {

// The JWS algorithms tether verifies (RFC 7518 section 3, RFC 8037 for EdDSA with Ed25519).
enum class JwsAlgorithm : unsigned char { kRs256, kPs256, kEs256, kEdDsa, kHs256 };

// The JOSE name ("RS256", ...).
[[nodiscard]] std::string_view name(JwsAlgorithm algorithm);
// The algorithm with that JOSE name (case-sensitive, as JOSE names are), if tether verifies it.
[[nodiscard]] std::optional<JwsAlgorithm> jws_algorithm_named(std::string_view name);

// Bounds on a JWKS document: whatever a file holds costs at most this much to read.
struct JwksLimits {
  std::size_t max_document_size = 1024 * 1024;
  std::size_t max_keys = 64;
  std::size_t max_depth = 16;
};

// One verification key: an OpenSSL public key (RS256, PS256, ES256, EdDSA) or an HMAC secret
// (HS256), usable with `algorithm` only.
class JsonWebKey {
 public:
  JsonWebKey(std::string key_id, JwsAlgorithm algorithm, std::shared_ptr<EVP_PKEY> public_key,
             std::vector<std::byte> secret);
  ~JsonWebKey();
  JsonWebKey(const JsonWebKey&) = delete;
  JsonWebKey& operator=(const JsonWebKey&) = delete;
  JsonWebKey(JsonWebKey&&) noexcept = default;
  JsonWebKey& operator=(JsonWebKey&&) noexcept = default;

  // The `kid` member; empty when the key has none.
  [[nodiscard]] const std::string& key_id() const { return key_id_; }
  // The one algorithm this key verifies (its `alg` member).
  [[nodiscard]] JwsAlgorithm algorithm() const { return algorithm_; }
  // The public key for the asymmetric algorithms; nullptr for HS256.
  [[nodiscard]] EVP_PKEY* public_key() const { return public_key_.get(); }
  // The HMAC secret for HS256 (at least 32 bytes); empty for the others. Wiped on destruction.
  [[nodiscard]] const std::vector<std::byte>& secret() const { return secret_; }

 private:
  std::string key_id_;
  JwsAlgorithm algorithm_;
  std::shared_ptr<EVP_PKEY> public_key_;
  std::vector<std::byte> secret_;
};

// The keys of one JWKS document. Immutable once parsed; shared between verifications.
class JsonWebKeySet {
 public:
  // Parses a JWKS document: a JSON object whose `keys` member is an array of JWKs. Each key needs
  // `kty` and `alg` and the members of its type: RSA `n`, `e` (RS256 or PS256; modulus of 2048 to
  // 8192 bits), EC `crv` "P-256", `x`, `y` (ES256), OKP `crv` "Ed25519", `x` (EdDSA), oct `k`
  // (HS256; at least 32 bytes). `use`, when present, must be "sig"; `kid`, when present, a string
  // no other key of the set has. Any key refused refuses the whole document, with an error naming
  // the key by its position and kid: the file is the operator's, and a key silently left out is
  // worse than a clear start-up error. Private members (d, p, ...) are ignored.
  [[nodiscard]] static Expected<JsonWebKeySet, std::string> parse(std::string_view document,
                                                                  const JwksLimits& limits = {});

  [[nodiscard]] const std::vector<JsonWebKey>& keys() const { return keys_; }
  // The key with this kid, or nullptr.
  [[nodiscard]] const JsonWebKey* find(std::string_view key_id) const;

 private:
  std::vector<JsonWebKey> keys_;
};

// A JWKS file and the key set last loaded from it. keys() reloads the file when it has changed
// (device, inode, size or modification time differ), looking at most once per `check_interval` of
// the injected clock. A reload that fails keeps the old keys; the failure is kept (last_error())
// and passed to the reporter, once per change of the file. Thread-safe: one caller reads the file,
// without the lock, while the others go on with the keys in place.
class JwksFile {
 public:
  using WallClock = std::function<std::chrono::system_clock::time_point()>;
  // Told of each reload: the error when it failed, nullopt when new keys were loaded.
  using Reporter = std::function<void(const std::optional<std::string>& error)>;

  // Loads the file once; a file that cannot be read or parsed is an error here (start-up).
  [[nodiscard]] static Expected<std::shared_ptr<JwksFile>, std::string> open(
      std::filesystem::path path, WallClock clock,
      std::chrono::seconds check_interval = std::chrono::seconds(5), JwksLimits limits = {},
      Reporter reporter = {});

  // The current keys, after a reload if one is due and the file changed.
  [[nodiscard]] std::shared_ptr<const JsonWebKeySet> keys();
  // Why the last reload failed, while the keys in use are older than the file; nullopt otherwise.
  [[nodiscard]] std::optional<std::string> last_error() const;

  struct FileIdentity {
    std::uintmax_t device = 0;
    std::uintmax_t inode = 0;
    std::uintmax_t size = 0;
    std::int64_t modified_nanoseconds = 0;
    bool operator==(const FileIdentity&) const = default;
  };

  JwksFile(std::filesystem::path path, WallClock clock, std::chrono::seconds check_interval,
           JwksLimits limits, Reporter reporter);

 private:
  std::filesystem::path path_;
  WallClock clock_;
  std::chrono::seconds check_interval_;
  JwksLimits limits_;
  Reporter reporter_;

  mutable std::mutex mutex_;
  std::shared_ptr<const JsonWebKeySet> keys_;
  FileIdentity identity_;
  std::chrono::system_clock::time_point last_check_;
  std::optional<std::string> last_error_;
  bool reloading_ = false;  // one caller is reading the file (without the lock)
};

}  // namespace tether::auth
