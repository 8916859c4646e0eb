#include "auth/jwks.hpp"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "auth/base64url.hpp"

namespace tether::auth {

namespace {

using Json = nlohmann::json;

constexpr std::size_t kMinRsaBits = 2048;
constexpr std::size_t kMaxRsaBits = 8192;
constexpr std::size_t kMinHmacKeyBytes = 32;  // RFC 7518 section 3.2: at least the hash size
constexpr std::size_t kMaxHmacKeyBytes = 1024;

struct ParamBuildDeleter {
  void operator()(OSSL_PARAM_BLD* builder) const { OSSL_PARAM_BLD_free(builder); }
};
struct ParamDeleter {
  void operator()(OSSL_PARAM* params) const { OSSL_PARAM_free(params); }
};
struct BignumDeleter {
  void operator()(BIGNUM* number) const { BN_free(number); }
};
struct PkeyContextDeleter {
  void operator()(EVP_PKEY_CTX* context) const { EVP_PKEY_CTX_free(context); }
};
using ParamBuild = std::unique_ptr<OSSL_PARAM_BLD, ParamBuildDeleter>;
using Params = std::unique_ptr<OSSL_PARAM, ParamDeleter>;
using Bignum = std::unique_ptr<BIGNUM, BignumDeleter>;
using PkeyContext = std::unique_ptr<EVP_PKEY_CTX, PkeyContextDeleter>;

std::shared_ptr<EVP_PKEY> share(EVP_PKEY* key) {
  return std::shared_ptr<EVP_PKEY>(key, [](EVP_PKEY* owned) { EVP_PKEY_free(owned); });
}

// A public key from OSSL_PARAMs (EVP_PKEY_fromdata), checked with EVP_PKEY_public_check when
// `check` (RSA and EC; for Ed25519 any 32 bytes are a key).
Expected<std::shared_ptr<EVP_PKEY>, std::string> key_from_params(const char* type,
                                                                 OSSL_PARAM_BLD* builder,
                                                                 bool check) {
  Params params(OSSL_PARAM_BLD_to_param(builder));
  PkeyContext context(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  if (!params || !context || EVP_PKEY_fromdata_init(context.get()) != 1)
    return make_unexpected(std::string("OpenSSL cannot build the key"));
  EVP_PKEY* raw = nullptr;
  if (EVP_PKEY_fromdata(context.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 || !raw)
    return make_unexpected(std::string("not a valid public key"));
  auto key = share(raw);
  if (check) {
    PkeyContext check_context(EVP_PKEY_CTX_new_from_pkey(nullptr, key.get(), nullptr));
    if (!check_context || EVP_PKEY_public_check(check_context.get()) != 1)
      return make_unexpected(std::string("not a valid public key"));
  }
  return key;
}

// A required base64url member of a JWK.
Expected<std::vector<std::byte>, std::string> bytes_member(const Json& jwk, const char* member) {
  const auto found = jwk.find(member);
  if (found == jwk.end() || !found->is_string())
    return make_unexpected(std::string("member \"") + member + "\" missing or not a string");
  auto decoded = base64url_decode(found->get_ref<const std::string&>());
  if (!decoded)
    return make_unexpected(std::string("member \"") + member + "\": " + decoded.error());
  return decoded;
}

// An optional string member; an error when present with another type.
Expected<std::optional<std::string>, std::string> string_member(const Json& jwk,
                                                                const char* member) {
  const auto found = jwk.find(member);
  if (found == jwk.end()) return std::optional<std::string>();
  if (!found->is_string())
    return make_unexpected(std::string("member \"") + member + "\" is not a string");
  return std::optional<std::string>(found->get<std::string>());
}

Expected<std::shared_ptr<EVP_PKEY>, std::string> rsa_key(const Json& jwk) {
  auto modulus = bytes_member(jwk, "n");
  if (!modulus) return make_unexpected(modulus.error());
  auto exponent = bytes_member(jwk, "e");
  if (!exponent) return make_unexpected(exponent.error());
  if (exponent->empty() || exponent->size() > 8)
    return make_unexpected(std::string("RSA exponent out of range"));
  Bignum n(BN_bin2bn(reinterpret_cast<const unsigned char*>(modulus->data()),
                     static_cast<int>(modulus->size()), nullptr));
  Bignum e(BN_bin2bn(reinterpret_cast<const unsigned char*>(exponent->data()),
                     static_cast<int>(exponent->size()), nullptr));
  if (!n || !e) return make_unexpected(std::string("OpenSSL cannot hold the key"));
  const auto bits = static_cast<std::size_t>(BN_num_bits(n.get()));
  if (bits < kMinRsaBits || bits > kMaxRsaBits)
    return make_unexpected("RSA modulus of " + std::to_string(bits) + " bits (" +
                           std::to_string(kMinRsaBits) + " to " + std::to_string(kMaxRsaBits) +
                           " accepted)");
  ParamBuild builder(OSSL_PARAM_BLD_new());
  if (!builder || OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) != 1 ||
      OSSL_PARAM_BLD_push_BN(builder.get(), OSSL_PKEY_PARAM_RSA_E, e.get()) != 1)
    return make_unexpected(std::string("OpenSSL cannot build the key"));
  return key_from_params("RSA", builder.get(), /*check=*/true);
}

Expected<std::shared_ptr<EVP_PKEY>, std::string> p256_key(const Json& jwk) {
  auto curve = string_member(jwk, "crv");
  if (!curve) return make_unexpected(curve.error());
  if (*curve != "P-256") return make_unexpected(std::string("EC key not on curve P-256"));
  auto x = bytes_member(jwk, "x");
  if (!x) return make_unexpected(x.error());
  auto y = bytes_member(jwk, "y");
  if (!y) return make_unexpected(y.error());
  if (x->size() != 32 || y->size() != 32)
    return make_unexpected(std::string("P-256 coordinates must be 32 bytes each"));
  std::array<unsigned char, 65> point{};
  point[0] = 0x04;  // uncompressed
  std::memcpy(point.data() + 1, x->data(), 32);
  std::memcpy(point.data() + 33, y->data(), 32);
  ParamBuild builder(OSSL_PARAM_BLD_new());
  if (!builder ||
      OSSL_PARAM_BLD_push_utf8_string(builder.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
          1 ||
      OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1)
    return make_unexpected(std::string("OpenSSL cannot build the key"));
  return key_from_params("EC", builder.get(), /*check=*/true);
}

Expected<std::shared_ptr<EVP_PKEY>, std::string> ed25519_key(const Json& jwk) {
  auto curve = string_member(jwk, "crv");
  if (!curve) return make_unexpected(curve.error());
  if (*curve != "Ed25519") return make_unexpected(std::string("OKP key not on curve Ed25519"));
  auto x = bytes_member(jwk, "x");
  if (!x) return make_unexpected(x.error());
  if (x->size() != 32) return make_unexpected(std::string("Ed25519 public key must be 32 bytes"));
  ParamBuild builder(OSSL_PARAM_BLD_new());
  if (!builder || OSSL_PARAM_BLD_push_octet_string(builder.get(), OSSL_PKEY_PARAM_PUB_KEY,
                                                   x->data(), x->size()) != 1)
    return make_unexpected(std::string("OpenSSL cannot build the key"));
  return key_from_params("ED25519", builder.get(), /*check=*/false);
}

// The kty each algorithm needs.
std::string_view key_type_for(JwsAlgorithm algorithm) {
  switch (algorithm) {
    case JwsAlgorithm::kRs256:
    case JwsAlgorithm::kPs256:
      return "RSA";
    case JwsAlgorithm::kEs256:
      return "EC";
    case JwsAlgorithm::kEdDsa:
      return "OKP";
    case JwsAlgorithm::kHs256:
      return "oct";
  }
  return "";
}

Expected<JsonWebKey, std::string> parse_key(const Json& jwk) {
  if (!jwk.is_object()) return make_unexpected(std::string("not a JSON object"));
  auto key_id = string_member(jwk, "kid");
  if (!key_id) return make_unexpected(key_id.error());
  auto key_type = string_member(jwk, "kty");
  if (!key_type) return make_unexpected(key_type.error());
  if (!*key_type) return make_unexpected(std::string("no \"kty\""));
  auto algorithm_name = string_member(jwk, "alg");
  if (!algorithm_name) return make_unexpected(algorithm_name.error());
  if (!*algorithm_name)
    return make_unexpected(std::string(
        "no \"alg\": every key must name the one algorithm it verifies (the defence against "
        "algorithm confusion)"));
  const auto algorithm = jws_algorithm_named(**algorithm_name);
  if (!algorithm)
    return make_unexpected("algorithm \"" + escape_peer_text(**algorithm_name) +
                           "\" not supported (RS256, PS256, ES256, EdDSA, HS256)");
  if (**key_type != key_type_for(*algorithm))
    return make_unexpected("kty \"" + escape_peer_text(**key_type) + "\" cannot be used with " +
                           std::string(name(*algorithm)));
  auto use = string_member(jwk, "use");
  if (!use) return make_unexpected(use.error());
  if (*use && **use != "sig")
    return make_unexpected("\"use\" is \"" + escape_peer_text(**use) + "\", not \"sig\"");

  std::shared_ptr<EVP_PKEY> public_key;
  std::vector<std::byte> secret;
  Expected<std::shared_ptr<EVP_PKEY>, std::string> built = nullptr;
  switch (*algorithm) {
    case JwsAlgorithm::kRs256:
    case JwsAlgorithm::kPs256:
      built = rsa_key(jwk);
      break;
    case JwsAlgorithm::kEs256:
      built = p256_key(jwk);
      break;
    case JwsAlgorithm::kEdDsa:
      built = ed25519_key(jwk);
      break;
    case JwsAlgorithm::kHs256: {
      auto k = bytes_member(jwk, "k");
      if (!k) return make_unexpected(k.error());
      if (k->size() < kMinHmacKeyBytes || k->size() > kMaxHmacKeyBytes)
        return make_unexpected("HS256 key of " + std::to_string(k->size()) + " bytes (" +
                               std::to_string(kMinHmacKeyBytes) + " to " +
                               std::to_string(kMaxHmacKeyBytes) + " accepted)");
      secret = std::move(*k);
      break;
    }
  }
  if (!built) return make_unexpected(built.error());
  public_key = std::move(*built);
  return JsonWebKey(key_id->value_or(""), *algorithm, std::move(public_key), std::move(secret));
}

// Reads at most `limit` bytes of an open file; an error when it holds more.
Expected<std::string, std::string> read_bounded(int descriptor, std::size_t limit) {
  std::string content;
  std::array<char, 16384> buffer{};
  while (true) {
    const ssize_t count = ::read(descriptor, buffer.data(), buffer.size());
    if (count < 0) {
      if (errno == EINTR) continue;
      return make_unexpected(std::string(std::strerror(errno)));
    }
    if (count == 0) break;
    content.append(buffer.data(), static_cast<std::size_t>(count));
    if (content.size() > limit)
      return make_unexpected("larger than " + std::to_string(limit) + " bytes");
  }
  return content;
}

JwksFile::FileIdentity identity_of(const struct stat& status) {
  return {
      static_cast<std::uintmax_t>(status.st_dev), static_cast<std::uintmax_t>(status.st_ino),
      static_cast<std::uintmax_t>(status.st_size),
      static_cast<std::int64_t>(status.st_mtim.tv_sec) * 1'000'000'000 + status.st_mtim.tv_nsec};
}

struct LoadedFile {
  JsonWebKeySet keys;
  JwksFile::FileIdentity identity;
};

// Opens, identifies and parses the file, identity and content from the same open file.
Expected<LoadedFile, std::string> load(const std::filesystem::path& path,
                                       const JwksLimits& limits) {
  const int descriptor = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (descriptor < 0)
    return make_unexpected("JWKS file " + path.string() + ": " + std::strerror(errno));
  struct stat status {};
  Expected<std::string, std::string> content = make_unexpected(std::string());
  if (::fstat(descriptor, &status) != 0)
    content = make_unexpected(std::string(std::strerror(errno)));
  else if (!S_ISREG(status.st_mode))
    content = make_unexpected(std::string("not a regular file"));
  else
    content = read_bounded(descriptor, limits.max_document_size);
  ::close(descriptor);
  if (!content) return make_unexpected("JWKS file " + path.string() + ": " + content.error());
  auto keys = JsonWebKeySet::parse(*content, limits);
  if (!keys) return make_unexpected("JWKS file " + path.string() + ": " + keys.error());
  return LoadedFile{std::move(*keys), identity_of(status)};
}

}  // namespace

std::string_view name(JwsAlgorithm algorithm) {
  switch (algorithm) {
    case JwsAlgorithm::kRs256:
      return "RS256";
    case JwsAlgorithm::kPs256:
      return "PS256";
    case JwsAlgorithm::kEs256:
      return "ES256";
    case JwsAlgorithm::kEdDsa:
      return "EdDSA";
    case JwsAlgorithm::kHs256:
      return "HS256";
  }
  return "";
}

std::optional<JwsAlgorithm> jws_algorithm_named(std::string_view text) {
  for (JwsAlgorithm algorithm : {JwsAlgorithm::kRs256, JwsAlgorithm::kPs256, JwsAlgorithm::kEs256,
                                 JwsAlgorithm::kEdDsa, JwsAlgorithm::kHs256}) {
    if (name(algorithm) == text) return algorithm;
  }
  return std::nullopt;
}

JsonWebKey::JsonWebKey(std::string key_id, JwsAlgorithm algorithm,
                       std::shared_ptr<EVP_PKEY> public_key, std::vector<std::byte> secret)
    : key_id_(std::move(key_id)),
      algorithm_(algorithm),
      public_key_(std::move(public_key)),
      secret_(std::move(secret)) {}

JsonWebKey::~JsonWebKey() {
  if (!secret_.empty()) OPENSSL_cleanse(secret_.data(), secret_.size());
}

Expected<JsonWebKeySet, std::string> JsonWebKeySet::parse(std::string_view document,
                                                          const JwksLimits& limits) {
  if (document.size() > limits.max_document_size)
    return make_unexpected("JWKS larger than " + std::to_string(limits.max_document_size) +
                           " bytes");
  auto json = parse_bounded_json(document, limits.max_depth);
  if (!json) return make_unexpected("JWKS: " + json.error());
  if (!json->is_object()) return make_unexpected(std::string("JWKS: not a JSON object"));
  const auto keys = json->find("keys");
  if (keys == json->end() || !keys->is_array())
    return make_unexpected(std::string("JWKS: no \"keys\" array"));
  if (keys->size() > limits.max_keys)
    return make_unexpected("JWKS: " + std::to_string(keys->size()) + " keys (at most " +
                           std::to_string(limits.max_keys) + ")");
  JsonWebKeySet set;
  std::set<std::string> key_ids;
  std::size_t position = 0;
  for (const Json& jwk : *keys) {
    auto key = parse_key(jwk);
    std::string where = "JWKS key " + std::to_string(position);
    if (jwk.is_object()) {
      const auto kid = jwk.find("kid");
      if (kid != jwk.end() && kid->is_string())
        where += " (kid \"" + escape_peer_text(kid->get_ref<const std::string&>()) + "\")";
    }
    if (!key) return make_unexpected(where + ": " + key.error());
    if (!key->key_id().empty() && !key_ids.insert(key->key_id()).second)
      return make_unexpected(where + ": another key has the same kid");
    set.keys_.push_back(std::move(*key));
    ++position;
  }
  return set;
}

const JsonWebKey* JsonWebKeySet::find(std::string_view key_id) const {
  for (const JsonWebKey& key : keys_) {
    if (!key.key_id().empty() && key.key_id() == key_id) return &key;
  }
  return nullptr;
}

Expected<std::shared_ptr<JwksFile>, std::string> JwksFile::open(std::filesystem::path path,
                                                                WallClock clock,
                                                                std::chrono::seconds check_interval,
                                                                JwksLimits limits,
                                                                Reporter reporter) {
  auto file = std::make_shared<JwksFile>(std::move(path), std::move(clock), check_interval, limits,
                                         std::move(reporter));
  auto loaded = load(file->path_, file->limits_);
  if (!loaded) return make_unexpected(loaded.error());
  file->keys_ = std::make_shared<const JsonWebKeySet>(std::move(loaded->keys));
  file->identity_ = loaded->identity;
  file->last_check_ = file->clock_();
  return file;
}

JwksFile::JwksFile(std::filesystem::path path, WallClock clock, std::chrono::seconds check_interval,
                   JwksLimits limits, Reporter reporter)
    : path_(std::move(path)),
      clock_(std::move(clock)),
      check_interval_(check_interval),
      limits_(limits),
      reporter_(std::move(reporter)) {}

std::shared_ptr<const JsonWebKeySet> JwksFile::keys() {
  {
    std::lock_guard lock(mutex_);
    const auto now = clock_();
    // A clock that went back also allows a check, rather than none until it catches up. One
    // caller reloads; the others meanwhile use the keys in place.
    const bool due = now - last_check_ >= check_interval_ || now < last_check_;
    if (!due || reloading_) return keys_;
    last_check_ = now;
    reloading_ = true;
  }
  // The file is read and parsed without the lock: RSA keys' public check costs milliseconds each,
  // and verifications go on with the old keys meanwhile.
  struct stat status {};
  const bool present = ::stat(path_.c_str(), &status) == 0;
  const FileIdentity seen = present ? identity_of(status) : FileIdentity{};
  std::optional<std::optional<std::string>> report;
  std::shared_ptr<const JsonWebKeySet> current;
  {
    std::unique_lock lock(mutex_);
    const bool changed = seen != identity_;
    lock.unlock();
    // A file that vanished or changed is reloaded; a failure is reported once per change.
    std::optional<Expected<LoadedFile, std::string>> loaded;
    if (changed) loaded.emplace(load(path_, limits_));
    lock.lock();
    if (loaded && *loaded) {
      keys_ = std::make_shared<const JsonWebKeySet>(std::move((*loaded)->keys));
      identity_ = (*loaded)->identity;
      last_error_.reset();
      report.emplace(std::nullopt);
    } else if (loaded) {
      identity_ = seen;
      last_error_ = loaded->error() + " (keeping the keys loaded before)";
      report.emplace(last_error_);
    }
    reloading_ = false;
    current = keys_;
  }
  if (report && reporter_) reporter_(*report);
  return current;
}

std::optional<std::string> JwksFile::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

}  // namespace tether::auth
