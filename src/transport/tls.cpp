#include "transport/tls.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <system_error>
#include <utility>

#include <asio/ip/address.hpp>

#include "transport/file_safety.hpp"

namespace tether::transport {
namespace {

namespace fs = std::filesystem;

// ---- OpenSSL helpers
// --------------------------------------------------------------------------------

template <auto Free>
struct OpenSslDeleter {
  template <typename Object>
  void operator()(Object* object) const {
    Free(object);
  }
};
using KeyPointer = std::unique_ptr<EVP_PKEY, OpenSslDeleter<&EVP_PKEY_free>>;
using CertificatePointer = std::unique_ptr<X509, OpenSslDeleter<&X509_free>>;
using BioPointer = std::unique_ptr<BIO, OpenSslDeleter<&BIO_free_all>>;
using BignumPointer = std::unique_ptr<BIGNUM, OpenSslDeleter<&BN_free>>;
using ExtensionPointer = std::unique_ptr<X509_EXTENSION, OpenSslDeleter<&X509_EXTENSION_free>>;

// Drains this thread's OpenSSL error queue and names its earliest entry, the cause (later entries
// are the layers that passed it on: "system lib", "PEM lib", ...).
std::string openssl_errors() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  if (ERR_SYSTEM_ERROR(code)) return std::generic_category().message(ERR_GET_REASON(code));
  if (const char* reason = ERR_reason_error_string(code); reason != nullptr) return reason;
  std::array<char, 256> buffer{};
  ERR_error_string_n(code, buffer.data(), buffer.size());
  return buffer.data();
}

Unexpected<std::string> failure(std::string what) {
  return make_unexpected(std::move(what));
}

// The password callback for every PEM read: never prompt on the terminal, so an encrypted key
// fails.
int refuse_password(char* /*buffer*/, int /*size*/, int /*writing*/, void* /*user*/) {
  return 0;
}

std::string to_hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  text.reserve(2 * size);
  for (std::size_t index = 0; index < size; ++index) {
    text += kDigits[bytes[index] >> 4];
    text += kDigits[bytes[index] & 0x0f];
  }
  return text;
}

int hex_value(char character) {
  if (character >= '0' && character <= '9') return character - '0';
  if (character >= 'a' && character <= 'f') return character - 'a' + 10;
  if (character >= 'A' && character <= 'F') return character - 'A' + 10;
  return -1;
}

std::string to_lower(std::string_view text) {
  std::string lower(text);
  for (char& character : lower) {
    if (character >= 'A' && character <= 'Z') character = static_cast<char>(character - 'A' + 'a');
  }
  return lower;
}

std::string pem_of(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

Expected<CertificatePointer, std::string> read_certificate(const fs::path& pem) {
  BioPointer file(BIO_new_file(pem.c_str(), "r"));
  if (!file) return failure("cannot open " + pem.string() + ": " + openssl_errors());
  CertificatePointer certificate(PEM_read_bio_X509(file.get(), nullptr, &refuse_password, nullptr));
  if (!certificate) {
    return failure("no PEM certificate in " + pem.string() + ": " + openssl_errors());
  }
  return certificate;
}

// The private key: read through read_trusted_file (no other user may be able to write it or the
// directories above it, nor read it), then parsed from memory, which is then wiped.
Expected<KeyPointer, std::string> read_private_key(const fs::path& pem) {
  auto contents = read_trusted_file(pem, TrustedFileOptions{.max_bytes = 1u << 20, .secret = true});
  if (!contents) return failure(contents.error());
  if (!contents->has_value()) return failure("cannot open " + pem.string() + ": no such file");
  std::string& text = **contents;
  BioPointer memory(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  KeyPointer key(memory ? PEM_read_bio_PrivateKey(memory.get(), nullptr, &refuse_password, nullptr)
                        : nullptr);
  OPENSSL_cleanse(text.data(), text.size());
  if (!key) {
    return failure("no unencrypted PEM private key in " + pem.string() + ": " + openssl_errors());
  }
  return key;
}

// ---- Per-context and per-connection state
// -----------------------------------------------------------

// What a client context needs beyond OpenSSL's own settings. Owned by the SSL_CTX (ex_data, freed
// with it), so that it lives exactly as long as every connection that can call back into it.
struct ClientState {
  std::string host;
  bool host_is_address = false;
  std::string expected_fingerprint;  // canonical; empty in CA mode
  std::mutex mutex;                  // guards session: connections may handshake on several threads
  SSL_SESSION* session = nullptr;    // the newest ticket received, one reference owned here

  ClientState() = default;
  ClientState(const ClientState&) = delete;
  ClientState& operator=(const ClientState&) = delete;
  ~ClientState() {
    if (session != nullptr) SSL_SESSION_free(session);
  }
};

void free_client_state(void* /*parent*/, void* pointer, CRYPTO_EX_DATA* /*data*/, int /*index*/,
                       long /*argument*/, void* /*argument_pointer*/) {
  delete static_cast<ClientState*>(pointer);
}

void free_string(void* /*parent*/, void* pointer, CRYPTO_EX_DATA* /*data*/, int /*index*/,
                 long /*argument*/, void* /*argument_pointer*/) {
  delete static_cast<std::string*>(pointer);
}

int client_state_index() {
  static const int index = [] {
    const int allocated =
        SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_client_state);
    if (allocated < 0) std::abort();
    return allocated;
  }();
  return index;
}

// The mismatch message recorded on a client connection whose server failed the pin.
int mismatch_index() {
  static const int index = [] {
    const int allocated = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_string);
    if (allocated < 0) std::abort();
    return allocated;
  }();
  return index;
}

ClientState* client_state(const SSL_CTX* context) {
  if (context == nullptr) return nullptr;
  return static_cast<ClientState*>(SSL_CTX_get_ex_data(context, client_state_index()));
}

// Replaces OpenSSL's chain verification in fingerprint mode: the leaf's fingerprint is the whole
// decision. Called once per full handshake (a resumed session carries the earlier decision).
int verify_pinned_certificate(X509_STORE_CTX* store, void* argument) {
  const auto* state = static_cast<const ClientState*>(argument);
  X509* leaf = X509_STORE_CTX_get0_cert(store);
  if (leaf == nullptr) {
    X509_STORE_CTX_set_error(store, X509_V_ERR_UNSPECIFIED);
    return 0;
  }
  const std::string actual = fingerprint_of(leaf);
  if (actual == state->expected_fingerprint) {
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
  }
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (ssl != nullptr) {
    auto message = std::make_unique<std::string>("server certificate fingerprint " + actual +
                                                 " does not match the expected " +
                                                 state->expected_fingerprint);
    auto* earlier = static_cast<std::string*>(SSL_get_ex_data(ssl, mismatch_index()));
    if (SSL_set_ex_data(ssl, mismatch_index(), message.get()) == 1) {
      message.release();  // the SSL frees it (free_string)
      delete earlier;
    }
  }
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

// New-session callback of client contexts: keep the newest ticket for the next connection. A copy
// is kept, not the connection's own session object: OpenSSL marks that one not resumable when the
// connection ends without a TLS close_notify, which is exactly how a tether connection usually ends
// (a cut or a blackhole), and TLS 1.3 does not require giving up the ticket then.
int remember_session(SSL* ssl, SSL_SESSION* session) {
  ClientState* state = client_state(SSL_get_SSL_CTX(ssl));
  if (state == nullptr) return 0;
  SSL_SESSION* copy = SSL_SESSION_dup(session);
  if (copy == nullptr) {
    ERR_clear_error();
    return 0;  // no resumption next time; nothing else is affected
  }
  const std::lock_guard lock(state->mutex);
  if (state->session != nullptr) SSL_SESSION_free(state->session);
  state->session = copy;
  return 0;  // OpenSSL keeps its reference to `session`
}

// Wraps a fresh SSL_CTX for `method`, restricted to TLS 1.3, in an asio context that owns it.
Expected<std::shared_ptr<asio::ssl::context>, std::string> new_tls13_context(
    const SSL_METHOD* method) {
  SSL_CTX* handle = SSL_CTX_new(method);
  if (handle == nullptr) return failure("cannot create a TLS context: " + openssl_errors());
  auto context = std::make_shared<asio::ssl::context>(handle);  // owns handle from here on
  if (SSL_CTX_set_min_proto_version(handle, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(handle, TLS1_3_VERSION) != 1) {
    return failure("this OpenSSL cannot restrict TLS to version 1.3: " + openssl_errors());
  }
  return context;
}

std::string without_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return std::string(host);
}

// Loads a certificate chain and its private key into `handle` and checks that they belong
// together; `whose` ("server", "client") names them in errors. OpenSSL opens the certificate by
// name: only after the path was found safe from other users.
Expected<void, std::string> use_certificate_and_key(SSL_CTX* handle, const fs::path& certificate,
                                                    const fs::path& key, std::string_view whose) {
  if (auto safe = check_path_safety(certificate); !safe) return failure(safe.error());
  if (SSL_CTX_use_certificate_chain_file(handle, certificate.c_str()) != 1) {
    return failure("cannot load the " + std::string(whose) + " certificate from " +
                   certificate.string() + ": " + openssl_errors());
  }
  auto private_key = read_private_key(key);
  if (!private_key) return make_unexpected(private_key.error());
  X509* leaf = SSL_CTX_get0_certificate(handle);
  if (leaf == nullptr || X509_check_private_key(leaf, private_key->get()) != 1) {
    ERR_clear_error();
    return failure("the private key in " + key.string() +
                   " does not belong to the certificate in " + certificate.string() +
                   " (use the key generated with that certificate)");
  }
  if (SSL_CTX_use_PrivateKey(handle, private_key->get()) != 1 ||
      SSL_CTX_check_private_key(handle) != 1) {
    return failure("cannot use the private key in " + key.string() + ": " + openssl_errors());
  }
  return {};
}

// ---- Client certificates (server side)

// What a server context that verifies client certificates needs beyond OpenSSL's own settings.
// Owned by the SSL_CTX (ex_data).
struct ServerState {
  ClientIdentitySource identity = ClientIdentitySource::kCommonName;
};

void free_server_state(void* /*parent*/, void* pointer, CRYPTO_EX_DATA* /*data*/, int /*index*/,
                       long /*argument*/, void* /*argument_pointer*/) {
  delete static_cast<ServerState*>(pointer);
}

int server_state_index() {
  static const int index = [] {
    const int allocated =
        SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_server_state);
    if (allocated < 0) std::abort();
    return allocated;
  }();
  return index;
}

// Marks a server connection whose client certificate failed verification (a pointer to this
// object; nothing to free). Kept besides SSL_get_verify_result, so that an identity needs both to
// agree.
constexpr char kVerificationFailed = 0;
int verification_failed_index() {
  static const int index = [] {
    const int allocated = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    if (allocated < 0) std::abort();
    return allocated;
  }();
  return index;
}

// The server's verify callback: records a failed check on the connection and lets the handshake
// go on (see make_server_context). OpenSSL keeps the error for SSL_get_verify_result.
int record_client_verification_failure(int preverified, X509_STORE_CTX* store) {
  if (preverified != 1) {
    auto* ssl =
        static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
    if (ssl != nullptr) {
      SSL_set_ex_data(ssl, verification_failed_index(),
                      const_cast<char*>(&kVerificationFailed));  // never written through
    }
  }
  return 1;
}

// Printable ASCII without spaces: what a dNSName or an email address may hold here.
bool is_clean_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char character) { return character > 0x20 && character < 0x7f; });
}

// Well-formed UTF-8 (shortest forms, no surrogates) without control characters (C0, DEL, C1).
bool is_clean_utf8(std::string_view text) {
  std::size_t index = 0;
  while (index < text.size()) {
    const auto lead = static_cast<unsigned char>(text[index]);
    std::size_t length = 0;
    std::uint32_t code = 0;
    if (lead < 0x80) {
      length = 1;
      code = lead;
    } else if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
      code = lead & 0x1fu;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      code = lead & 0x0fu;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      code = lead & 0x07u;
    } else {
      return false;
    }
    if (text.size() - index < length) return false;
    for (std::size_t next = 1; next < length; ++next) {
      const auto continuation = static_cast<unsigned char>(text[index + next]);
      if ((continuation & 0xc0u) != 0x80u) return false;
      code = (code << 6) | (continuation & 0x3fu);
    }
    static constexpr std::uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) {
      return false;
    }
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return false;
    index += length;
  }
  return true;
}

// The first subjectAltName entry of `type` (GEN_DNS, GEN_EMAIL), if clean; else empty.
std::string subject_alternative_name(X509* certificate, int type) {
  int critical = 0;
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, &critical, nullptr));
  ERR_clear_error();
  if (names == nullptr) return {};  // none, malformed, or several extensions (ambiguous)
  std::string identity;
  for (int index = 0; index < sk_GENERAL_NAME_num(names); ++index) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, index);
    if (name == nullptr || name->type != type) continue;
    const ASN1_IA5STRING* text = type == GEN_DNS ? name->d.dNSName : name->d.rfc822Name;
    if (text != nullptr && ASN1_STRING_length(text) > 0 &&
        static_cast<std::size_t>(ASN1_STRING_length(text)) <= kMaxClientIdentityBytes) {
      identity.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(text)),
                      static_cast<std::size_t>(ASN1_STRING_length(text)));
      if (!is_clean_ascii(identity)) identity.clear();
    }
    break;  // the first entry of the type decides
  }
  GENERAL_NAMES_free(names);
  return identity;
}

// The subject's only commonName as UTF-8, if clean; else empty (none, several, or not clean).
std::string common_name(X509* certificate) {
  X509_NAME* subject = X509_get_subject_name(certificate);
  if (subject == nullptr) return {};
  const int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, index) >= 0) return {};
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  // A UTF-8 character takes at most 4 bytes, a BMPString's or UniversalString's at least 2.
  if (data == nullptr ||
      static_cast<std::size_t>(ASN1_STRING_length(data)) > 4 * kMaxClientIdentityBytes) {
    return {};
  }
  unsigned char* converted = nullptr;
  const int length = ASN1_STRING_to_UTF8(&converted, data);
  if (length < 0) {
    ERR_clear_error();
    return {};
  }
  std::string identity(reinterpret_cast<const char*>(converted), static_cast<std::size_t>(length));
  OPENSSL_free(converted);
  if (identity.empty() || identity.size() > kMaxClientIdentityBytes || !is_clean_utf8(identity)) {
    return {};
  }
  return identity;
}

}  // namespace

// ---- Identities and fingerprints
// -------------------------------------------------------------------

Expected<std::string, std::string> generate_identity(const fs::path& directory, bool overwrite) {
  const fs::path certificate_path = directory / kCertificateFileName;
  const fs::path key_path = directory / kKeyFileName;
  if (!overwrite) {
    for (const fs::path& path : {key_path, certificate_path}) {
      std::error_code error;
      const fs::file_status status = fs::symlink_status(path, error);
      if (fs::exists(status)) {
        return failure("refusing to overwrite " + path.string() +
                       ": it already exists (remove it, or ask to overwrite)");
      }
      if (error && error != std::errc::no_such_file_or_directory) {
        return failure("cannot check " + path.string() + ": " + error.message());
      }
    }
  }

  KeyPointer key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return failure("cannot generate a P-256 key: " + openssl_errors());

  CertificatePointer certificate(X509_new());
  if (!certificate) return failure("cannot create a certificate: " + openssl_errors());
  X509* raw = certificate.get();
  bool built = X509_set_version(raw, X509_VERSION_3) == 1;

  // RFC 5280: a positive serial of at most 20 octets; the top byte keeps it positive and 20 long.
  std::array<unsigned char, 20> serial_bytes{};
  built = built && RAND_bytes(serial_bytes.data(), static_cast<int>(serial_bytes.size())) == 1;
  serial_bytes[0] = static_cast<unsigned char>((serial_bytes[0] & 0x7f) | 0x40);
  BignumPointer serial(
      BN_bin2bn(serial_bytes.data(), static_cast<int>(serial_bytes.size()), nullptr));
  built =
      built && serial && BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(raw)) != nullptr;

  constexpr long kSkewSeconds = 60 * 60;
  constexpr int kValidDays = 3652;  // ten years
  built = built && X509_gmtime_adj(X509_getm_notBefore(raw), -kSkewSeconds) != nullptr;
  built = built && X509_time_adj_ex(X509_getm_notAfter(raw), kValidDays, 0, nullptr) != nullptr;

  X509_NAME* name = X509_get_subject_name(raw);
  static constexpr unsigned char kCommonName[] = "tether server";
  built =
      built && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, kCommonName, -1, -1, 0) == 1;
  built = built && X509_set_issuer_name(raw, name) == 1;
  built = built && X509_set_pubkey(raw, key.get()) == 1;

  X509V3_CTX extension_context;
  X509V3_set_ctx_nodb(&extension_context);
  X509V3_set_ctx(&extension_context, raw, raw, nullptr, nullptr, 0);
  // The subject key identifier first: the authority key identifier of a self-signed certificate
  // copies it.
  const std::pair<int, const char*> extensions[] = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature"},
      {NID_ext_key_usage, "serverAuth"},
      {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"},
  };
  for (const auto& [nid, value] : extensions) {
    if (!built) break;
    ExtensionPointer extension(X509V3_EXT_nconf_nid(nullptr, &extension_context, nid, value));
    built = extension && X509_add_ext(raw, extension.get(), -1) == 1;
  }
  built = built && X509_sign(raw, key.get(), EVP_sha256()) > 0;
  if (!built) return failure("cannot build the self-signed certificate: " + openssl_errors());

  BioPointer key_bio(BIO_new(BIO_s_mem()));
  BioPointer certificate_bio(BIO_new(BIO_s_mem()));
  if (!key_bio || !certificate_bio ||
      PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
          1 ||
      PEM_write_bio_X509(certificate_bio.get(), raw) != 1) {
    return failure("cannot encode the identity as PEM: " + openssl_errors());
  }
  std::string key_pem = pem_of(key_bio.get());
  const auto key_written =
      write_file_atomically(key_path, key_pem, fs::perms::owner_read | fs::perms::owner_write);
  OPENSSL_cleanse(key_pem.data(), key_pem.size());
  if (!key_written) return make_unexpected(key_written.error());
  const auto certificate_written =
      write_file_atomically(certificate_path, pem_of(certificate_bio.get()),
                            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                                fs::perms::others_read);
  if (!certificate_written) return make_unexpected(certificate_written.error());
  return fingerprint_of(raw);
}

std::string fingerprint_of(const X509* certificate) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  // SHA-256 of an in-memory certificate fails only if libcrypto itself is broken.
  if (X509_digest(certificate, EVP_sha256(), digest.data(), &length) != 1 || length != 32) {
    std::abort();
  }
  return std::string(kFingerprintPrefix) + to_hex(digest.data(), length);
}

Expected<std::string, std::string> fingerprint_of_certificate_file(const fs::path& pem) {
  auto certificate = read_certificate(pem);
  if (!certificate) return make_unexpected(certificate.error());
  return fingerprint_of(certificate->get());
}

Expected<std::string, std::string> parse_fingerprint(std::string_view text) {
  constexpr std::string_view kWhitespace = " \t\r\n";
  const std::size_t first = text.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) {
    return failure("the fingerprint is empty; expected sha256: followed by 64 hex digits");
  }
  text = text.substr(first, text.find_last_not_of(kWhitespace) - first + 1);
  if (text.size() < kFingerprintPrefix.size() ||
      to_lower(text.substr(0, kFingerprintPrefix.size())) != kFingerprintPrefix) {
    return failure("fingerprint \"" + std::string(text) +
                   "\" does not start with sha256: (expected sha256: followed by 64 hex digits)");
  }
  const std::string_view hex = text.substr(kFingerprintPrefix.size());
  std::string canonical(kFingerprintPrefix);
  std::size_t digits = 0;
  for (std::size_t index = 0; index < hex.size(); ++index) {
    const char character = hex[index];
    if (character == ':') {
      // Only between two complete byte pairs.
      const bool between_pairs = digits > 0 && digits % 2 == 0 && index + 1 < hex.size() &&
                                 hex[index - 1] != ':' && hex[index + 1] != ':';
      if (!between_pairs) {
        return failure("fingerprint \"" + std::string(text) +
                       "\" has a ':' that is not between two hex byte pairs");
      }
      continue;
    }
    const int value = hex_value(character);
    if (value < 0) {
      return failure("fingerprint \"" + std::string(text) + "\" contains '" +
                     std::string(1, character) + "', which is not a hex digit");
    }
    canonical += "0123456789abcdef"[value];
    ++digits;
  }
  if (digits != 64) {
    return failure("fingerprint \"" + std::string(text) + "\" has " + std::to_string(digits) +
                   " hex digits; a SHA-256 fingerprint has 64");
  }
  return canonical;
}

// ---- Contexts
// ---------------------------------------------------------------------------------------

Expected<std::shared_ptr<asio::ssl::context>, std::string> make_server_context(
    const fs::path& certificate, const fs::path& key,
    const std::optional<ClientCertificateTrust>& clients) {
  auto context = new_tls13_context(TLS_server_method());
  if (!context) return context;
  SSL_CTX* handle = (*context)->native_handle();

  if (auto loaded = use_certificate_and_key(handle, certificate, key, "server"); !loaded) {
    return make_unexpected(loaded.error());
  }

  // TLS 1.3 resumption: stateless tickets (OpenSSL's default, stated here because the runtime
  // relies on it), two per full handshake so that a client can resume twice.
  SSL_CTX_clear_options(handle, SSL_OP_NO_TICKET);
  static constexpr unsigned char kSessionContext[] = "tether";
  if (SSL_CTX_set_num_tickets(handle, 2) != 1 ||
      SSL_CTX_set_session_id_context(handle, kSessionContext, sizeof kSessionContext - 1) != 1) {
    return failure("cannot enable TLS session tickets: " + openssl_errors());
  }
  SSL_CTX_set_session_cache_mode(handle, SSL_SESS_CACHE_SERVER);

  if (clients.has_value()) {
    // Whoever can write the CA file decides which clients are trusted.
    if (auto safe = check_path_safety(clients->ca_file); !safe) return failure(safe.error());
    if (SSL_CTX_load_verify_file(handle, clients->ca_file.c_str()) != 1) {
      return failure("cannot load client CA certificates from " + clients->ca_file.string() + ": " +
                     openssl_errors());
    }
    // The CertificateRequest names the accepted CAs, so that a client can pick its certificate.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(clients->ca_file.c_str());
        names != nullptr) {
      SSL_CTX_set_client_CA_list(handle, names);  // owned by the context from here on
    }
    ERR_clear_error();
    auto state = std::make_unique<ServerState>();
    state->identity = clients->identity;
    if (SSL_CTX_set_ex_data(handle, server_state_index(), state.get()) != 1) {
      return failure("cannot attach server state to the TLS context: " + openssl_errors());
    }
    state.release();  // the SSL_CTX frees it (free_server_state)
    // OpenSSL verifies the chain against the store (its default purpose for a server's peer is
    // the TLS client purpose); the callback lets the handshake go on whatever the verdict, which
    // client_certificate_identity reads back.
    SSL_CTX_set_verify(handle, SSL_VERIFY_PEER, &record_client_verification_failure);
  }
  return context;
}

Expected<std::shared_ptr<asio::ssl::context>, std::string> make_client_context(
    const ServerTrust& trust, const std::optional<ClientCertificate>& certificate) {
  if (trust.ca_file.has_value() == trust.fingerprint.has_value()) {
    return failure(std::string("give exactly one way to trust the server, a CA file or a ") +
                   "certificate fingerprint (" +
                   (trust.ca_file.has_value() ? "both were given" : "neither was given") + ")");
  }
  auto state = std::make_unique<ClientState>();
  state->host = without_brackets(trust.host);
  if (state->host.empty()) {
    return failure(
        "the server's host name is empty; it is needed for SNI and the certificate check");
  }
  std::error_code address_error;
  (void)asio::ip::make_address(state->host, address_error);
  state->host_is_address = !address_error;
  if (trust.fingerprint.has_value()) {
    auto canonical = parse_fingerprint(*trust.fingerprint);
    if (!canonical) return failure("expected server fingerprint: " + canonical.error());
    state->expected_fingerprint = std::move(*canonical);
  }

  auto context = new_tls13_context(TLS_client_method());
  if (!context) return context;
  SSL_CTX* handle = (*context)->native_handle();
  ClientState* installed = state.get();
  if (SSL_CTX_set_ex_data(handle, client_state_index(), installed) != 1) {
    return failure("cannot attach client state to the TLS context: " + openssl_errors());
  }
  state.release();  // the SSL_CTX frees it (free_client_state)

  SSL_CTX_set_verify(handle, SSL_VERIFY_PEER, nullptr);
  if (trust.ca_file.has_value()) {
    // Whoever can write the CA file decides which servers are trusted.
    if (auto safe = check_path_safety(*trust.ca_file); !safe) return failure(safe.error());
    if (SSL_CTX_load_verify_file(handle, trust.ca_file->c_str()) != 1) {
      return failure("cannot load CA certificates from " + trust.ca_file->string() + ": " +
                     openssl_errors());
    }
    X509_VERIFY_PARAM* parameters = SSL_CTX_get0_param(handle);
    X509_VERIFY_PARAM_set_hostflags(parameters, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = installed->host_is_address
                        ? X509_VERIFY_PARAM_set1_ip_asc(parameters, installed->host.c_str())
                        : X509_VERIFY_PARAM_set1_host(parameters, installed->host.c_str(), 0);
    if (set != 1) {
      return failure("cannot check certificates against host \"" + installed->host +
                     "\": " + openssl_errors());
    }
  } else {
    SSL_CTX_set_cert_verify_callback(handle, &verify_pinned_certificate, installed);
  }

  if (certificate.has_value()) {
    if (auto loaded =
            use_certificate_and_key(handle, certificate->certificate, certificate->key, "client");
        !loaded) {
      return make_unexpected(loaded.error());
    }
  }

  SSL_CTX_set_session_cache_mode(handle, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(handle, &remember_session);
  return context;
}

void prepare_client_connection(SSL* ssl) {
  ClientState* state = client_state(SSL_get_SSL_CTX(ssl));
  if (state == nullptr) return;
  if (!state->host_is_address) SSL_set_tlsext_host_name(ssl, state->host.c_str());
  const std::lock_guard lock(state->mutex);
  if (state->session != nullptr && SSL_SESSION_is_resumable(state->session) == 1) {
    SSL_set_session(ssl, state->session);
  }
}

// ---- After the handshake
// ----------------------------------------------------------------------------

std::optional<std::string> fingerprint_mismatch(const SSL* ssl) {
  const auto* message = static_cast<const std::string*>(SSL_get_ex_data(ssl, mismatch_index()));
  if (message == nullptr) return std::nullopt;
  return *message;
}

std::optional<std::string> verification_failure(const SSL* ssl) {
  if (auto mismatch = fingerprint_mismatch(ssl)) return mismatch;
  const long result = SSL_get_verify_result(ssl);
  if (result == X509_V_OK) return std::nullopt;
  std::string message = "server certificate verification failed: ";
  message += X509_verify_cert_error_string(result);
  if (const ClientState* state = client_state(SSL_get_SSL_CTX(ssl)); state != nullptr) {
    message += " (server " + state->host + ")";
  }
  return message;
}

std::optional<ClientIdentitySource> parse_client_identity_source(std::string_view text) {
  if (text == "cn") return ClientIdentitySource::kCommonName;
  if (text == "san-dns") return ClientIdentitySource::kSanDns;
  if (text == "san-email") return ClientIdentitySource::kSanEmail;
  return std::nullopt;
}

namespace {

// The client certificate of a server connection whose context verifies them, when it verified;
// else null (with `state` the context's ServerState when there is one).
X509* verified_client_certificate(const SSL* ssl, const ServerState*& state) {
  state = static_cast<const ServerState*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), server_state_index()));
  if (state == nullptr || SSL_is_server(ssl) != 1) return nullptr;
  if (SSL_get_ex_data(ssl, verification_failed_index()) != nullptr) return nullptr;
  X509* certificate = SSL_get0_peer_certificate(ssl);
  if (certificate == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return nullptr;
  return certificate;
}

}  // namespace

std::string client_certificate_identity(const SSL* ssl) {
  const ServerState* state = nullptr;
  X509* certificate = verified_client_certificate(ssl, state);
  if (certificate == nullptr) return {};
  switch (state->identity) {
    case ClientIdentitySource::kCommonName:
      return common_name(certificate);
    case ClientIdentitySource::kSanDns:
      return subject_alternative_name(certificate, GEN_DNS);
    case ClientIdentitySource::kSanEmail:
      return subject_alternative_name(certificate, GEN_EMAIL);
  }
  return {};
}

std::string client_certificate_problem(const SSL* ssl) {
  const auto* state = static_cast<const ServerState*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), server_state_index()));
  if (state == nullptr || SSL_is_server(ssl) != 1) return {};
  if (SSL_get0_peer_certificate(ssl) == nullptr) return "no client certificate";
  const long result = SSL_get_verify_result(ssl);
  if (result != X509_V_OK) {
    return std::string("verification failed: ") + X509_verify_cert_error_string(result);
  }
  if (SSL_get_ex_data(ssl, verification_failed_index()) != nullptr) return "verification failed";
  if (client_certificate_identity(ssl).empty()) {
    return "the certificate's identity field is missing or unusable";
  }
  return {};
}

std::optional<std::chrono::system_clock::time_point> client_certificate_expiry(const SSL* ssl) {
  const ServerState* state = nullptr;
  const X509* certificate = verified_client_certificate(ssl, state);
  if (certificate == nullptr) return std::nullopt;
  std::tm calendar{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &calendar) != 1) {
    ERR_clear_error();
    return std::chrono::system_clock::time_point{};  // unreadable: never "no expiry"
  }
  const std::time_t seconds = ::timegm(&calendar);
  if (seconds == static_cast<std::time_t>(-1) || seconds < 0) {
    return std::chrono::system_clock::time_point{};
  }
  if (seconds > kLatestCertificateExpiry) return std::nullopt;  // e.g. RFC 5280's 99991231235959Z
  return std::chrono::system_clock::from_time_t(seconds);
}

std::array<std::byte, 32> export_keying_material(SSL* ssl) {
  std::array<std::byte, 32> material{};
  if (SSL_export_keying_material(ssl, reinterpret_cast<unsigned char*>(material.data()),
                                 material.size(), kExporterLabel.data(), kExporterLabel.size(),
                                 nullptr, 0, 0) != 1) {
    std::abort();  // no completed handshake: a programmer error
  }
  return material;
}

std::array<std::byte, 32> export_channel_binding(SSL* ssl) {
  static constexpr std::string_view kLabel = "EXPORTER-Channel-Binding";
  std::array<std::byte, 32> binding{};
  if (SSL_export_keying_material(ssl, reinterpret_cast<unsigned char*>(binding.data()),
                                 binding.size(), kLabel.data(), kLabel.size(), nullptr, 0,
                                 0) != 1) {
    std::abort();  // no completed handshake: a programmer error
  }
  return binding;
}

// ---- Files
// ------------------------------------------------------------------------------------------

Expected<void, std::string> write_file_atomically(const fs::path& path, std::string_view contents,
                                                  fs::perms mode) {
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::error_code error;
  if (fs::create_directories(parent, error)) {
    fs::permissions(parent, fs::perms::owner_all, error);
  }
  if (error) return failure("cannot create directory " + parent.string() + ": " + error.message());

  std::string temporary = (parent / (path.filename().string() + ".tmp-XXXXXX")).string();
  const int descriptor = ::mkostemp(temporary.data(), O_CLOEXEC);
  if (descriptor < 0) {
    return failure("cannot create a temporary file in " + parent.string() + ": " +
                   std::generic_category().message(errno));
  }
  const auto abandon = [&](std::string what) {
    const int saved = errno;
    ::close(descriptor);
    ::unlink(temporary.c_str());
    return failure(what + ": " + std::generic_category().message(saved));
  };
  if (::fchmod(descriptor, static_cast<mode_t>(mode)) != 0) {
    return abandon("cannot set the mode of " + temporary);
  }
  while (!contents.empty()) {
    const ssize_t written = ::write(descriptor, contents.data(), contents.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return abandon("cannot write " + temporary);
    }
    contents.remove_prefix(static_cast<std::size_t>(written));
  }
  if (::fsync(descriptor) != 0) return abandon("cannot flush " + temporary);
  if (::close(descriptor) != 0) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    return failure("cannot write " + temporary + ": " + std::generic_category().message(saved));
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(temporary.c_str());
    return failure("cannot replace " + path.string() + ": " +
                   std::generic_category().message(saved));
  }
  // Make the rename itself durable; a failure here leaves a correct file, so it is not reported.
  if (const int directory = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      directory >= 0) {
    ::fsync(directory);
    ::close(directory);
  }
  return {};
}

}  // namespace tether::transport
