// TLS 1.3 for tether connections: server identities (a P-256 key and a self-signed certificate),
// certificate fingerprints, and the Asio SSL contexts that verify a server by CA or by a pinned
// fingerprint, and a client by its certificate (mTLS).
#pragma once

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <asio/ssl/context.hpp>

#include "tether/expected.hpp"

namespace tether::transport {

// File names inside an identity directory.
inline constexpr std::string_view kCertificateFileName = "certificate.pem";
inline constexpr std::string_view kKeyFileName = "key.pem";

// The label both ends pass to SSL_export_keying_material (RFC 8446 section 7.5).
inline constexpr std::string_view kExporterLabel = "EXPORTER-tether-session";

// Every fingerprint tether prints or stores is this prefix followed by 64 lowercase hex digits.
inline constexpr std::string_view kFingerprintPrefix = "sha256:";

// ---- Identities and fingerprints
// -------------------------------------------------------------------

// Writes DIRECTORY/certificate.pem (mode 0644) and DIRECTORY/key.pem (mode 0600): a fresh ECDSA
// P-256 key (unencrypted PKCS#8) and a self-signed X.509 v3 certificate for it (CN=tether server;
// SAN DNS:localhost, IP:127.0.0.1, IP:::1; a random 159-bit serial; valid from one hour ago, to
// absorb clock skew, until ten years from now). The directory is created (mode 0700) if missing.
// Existing files are refused unless `overwrite` is true. Each file is written atomically (temporary
// file + rename), the key first. Returns the certificate's fingerprint "sha256:<64 lowercase hex>".
[[nodiscard]] Expected<std::string, std::string> generate_identity(
    const std::filesystem::path& directory, bool overwrite = false);

// "sha256:" + lowercase hex SHA-256 of the DER encoding of `certificate` (not null).
[[nodiscard]] std::string fingerprint_of(const X509* certificate);

// The fingerprint of the first certificate in a PEM file.
[[nodiscard]] Expected<std::string, std::string> fingerprint_of_certificate_file(
    const std::filesystem::path& pem);

// Accepts "sha256:HEX": the prefix in any case, 64 hex digits in any case, optionally with one ':'
// between byte pairs (as `openssl x509 -fingerprint` prints them); surrounding whitespace is
// ignored. Returns the canonical form "sha256:<64 lowercase hex>", or an error saying what is
// wrong.
[[nodiscard]] Expected<std::string, std::string> parse_fingerprint(std::string_view text);

// ---- Contexts
// ---------------------------------------------------------------------------------------

// Which field of a verified client certificate names the client (mTLS, the EXTERNAL mechanism).
enum class ClientIdentitySource : std::uint8_t {
  kCommonName,  // the subject's commonName; a subject with no CN or with several CNs names no one
  kSanDns,      // the first dNSName of the subjectAltName extension
  kSanEmail,    // the first rfc822Name (email address) of the subjectAltName extension
};
// "cn", "san-dns" or "san-email" (the --client-identity values); nullopt for anything else.
[[nodiscard]] std::optional<ClientIdentitySource> parse_client_identity_source(
    std::string_view text);

// Longest client identity taken from a certificate, in bytes; a longer one names no one.
inline constexpr std::size_t kMaxClientIdentityBytes = 256;

// How a server verifies client certificates.
struct ClientCertificateTrust {
  // The CA certificates (PEM) a client certificate must chain to; must pass check_path_safety.
  std::filesystem::path ca_file;
  ClientIdentitySource identity = ClientIdentitySource::kCommonName;
};

// A server context: TLS 1.3 only, the certificate chain and private key loaded from PEM files and
// checked to belong together (encrypted keys are refused, never prompted for), stateless session
// tickets on so that a reconnecting client resumes TLS cheaply. Ticket keys live in the context, so
// tickets stay valid for as long as this context (this server process) does. Both files must pass
// check_path_safety (file_safety.hpp: no other user can write them or a directory above them), and
// the key must be readable by the user alone (mode 0600 or stricter).
//
// With `clients`, the server asks every client for a certificate and verifies the one it gets
// against clients->ca_file (chain, validity dates, the TLS client purpose). The handshake fails
// neither for a missing certificate nor for one that fails verification: such a client simply has
// no certificate identity (client_certificate_identity), so that it can still use the other
// mechanisms, and a client that asks for EXTERNAL is refused by the authentication exchange, with
// a message it gets to see (a TLS alert would reach a TLS 1.3 client only after its handshake, as
// a connection failure it would retry).
[[nodiscard]] Expected<std::shared_ptr<asio::ssl::context>, std::string> make_server_context(
    const std::filesystem::path& certificate, const std::filesystem::path& key,
    const std::optional<ClientCertificateTrust>& clients = std::nullopt);

// How a client decides that it reached the right server.
struct ServerTrust {
  // Verify the chain against the CA certificates in this PEM file, and the certificate against
  // `host` (a DNS name, or an IP address literal checked against the certificate's IP SANs). The
  // file must pass check_path_safety (file_safety.hpp).
  std::optional<std::filesystem::path> ca_file;
  // Or pin the leaf certificate: accepted iff its fingerprint equals this ("sha256:...", any form
  // parse_fingerprint accepts). Self-signed certificates, expiry and names are not looked at.
  std::optional<std::string> fingerprint;
  // The name the client dialled, without port (brackets around an IPv6 literal are allowed). Sent
  // as SNI by prepare_client_connection unless it is an IP address literal.
  std::string host;
};

// A certificate a client presents when the server asks for one (mTLS): a PEM chain, leaf first,
// and its private key, with the same file checks as the server's (make_server_context).
struct ClientCertificate {
  std::filesystem::path certificate;
  std::filesystem::path key;
};

// A client context: TLS 1.3 only; exactly one of trust.ca_file and trust.fingerprint must be set,
// and trust.host must not be empty (else an error). With a fingerprint, a mismatch fails the
// handshake and is recorded on the connection for fingerprint_mismatch(). Client session caching is
// on: the newest session ticket received on any connection of this context is kept in the context
// and offered by prepare_client_connection, so that a reconnect resumes TLS without a full
// handshake. Use one context per server. Do not change the verify mode or verify callback of the
// context or of its streams (asio's set_verify_mode/set_verify_callback): that would bypass the pin
// or the CA check. With `certificate`, it is presented to a server that asks for one.
[[nodiscard]] Expected<std::shared_ptr<asio::ssl::context>, std::string> make_client_context(
    const ServerTrust& trust, const std::optional<ClientCertificate>& certificate = std::nullopt);

// Call on each new client connection's SSL (asio::ssl::stream::native_handle()) before its
// handshake: sets SNI to the trusted host (unless it is an IP literal) and offers the context's
// newest session ticket, if any. Does nothing for an SSL whose context make_client_context did not
// make.
void prepare_client_connection(SSL* ssl);

// ---- After the handshake
// ----------------------------------------------------------------------------

// After a failed client handshake on `ssl`: if verification failed because the server's certificate
// did not match the pinned fingerprint, "server certificate fingerprint sha256:AAA does not match
// the expected sha256:BBB"; otherwise nullopt.
[[nodiscard]] std::optional<std::string> fingerprint_mismatch(const SSL* ssl);

// After a failed client handshake on `ssl`: why the server's certificate was refused (the
// fingerprint mismatch above, or OpenSSL's verification error such as "hostname mismatch" or
// "self-signed certificate"), or nullopt if the certificate was not the problem.
[[nodiscard]] std::optional<std::string> verification_failure(const SSL* ssl);

// After a completed server handshake on `ssl`: the client's identity from its certificate, taken
// as the context's ClientCertificateTrust says, or empty when the context verifies no client
// certificates, the client presented none, its verification failed, or the chosen field is
// missing, empty, longer than kMaxClientIdentityBytes or not clean text (a dNSName or email must
// be printable ASCII without spaces; a CN is converted to UTF-8 and must hold no control
// character). A resumed TLS session keeps the certificate and verdict of its first handshake.
[[nodiscard]] std::string client_certificate_identity(const SSL* ssl);

// After a completed server handshake on `ssl`, when the context verifies client certificates and
// the connection got no certificate identity: why, for the server's log ("no client certificate",
// "verification failed: " and OpenSSL's X509_verify_cert_error_string such as "unable to get local
// issuer certificate", or that the chosen field is unusable). Empty when the identity was taken or
// the context verifies no client certificates.
[[nodiscard]] std::string client_certificate_problem(const SSL* ssl);

// After a completed server handshake on `ssl`: the notAfter of the client certificate that
// client_certificate_identity reads, when it verified (kept across TLS resumption like the
// identity); nullopt when there is none, and for a notAfter after kLatestCertificateExpiry (RFC
// 5280's 99991231235959Z, "no well-defined expiration", and anything else past year 2255, beyond
// system_clock's range). A notAfter OpenSSL cannot read gives the epoch: expired, never "none".
inline constexpr std::int64_t kLatestCertificateExpiry = 9'000'000'000;  // seconds, year 2255
[[nodiscard]] std::optional<std::chrono::system_clock::time_point> client_certificate_expiry(
    const SSL* ssl);

// 32 bytes from SSL_export_keying_material with kExporterLabel and no context. Both ends of one TLS
// connection get the same value; different connections get different values. Precondition: the
// handshake of `ssl` completed (calling it earlier is a programmer error and aborts).
[[nodiscard]] std::array<std::byte, 32> export_keying_material(SSL* ssl);
// The RFC 9266 tls-exporter channel binding: 32 bytes with the label "EXPORTER-Channel-Binding"
// and no context, for SCRAM-SHA-256-PLUS.
[[nodiscard]] std::array<std::byte, 32> export_channel_binding(SSL* ssl);

// ---- Files
// ------------------------------------------------------------------------------------------

// Replaces `path` with `contents` atomically: writes a temporary file in the same directory with
// `mode`, fsyncs it, renames it over `path`, and fsyncs the directory. Creates the parent directory
// (mode 0700) if it is missing. Used for identities and the known-servers file.
[[nodiscard]] Expected<void, std::string> write_file_atomically(const std::filesystem::path& path,
                                                                std::string_view contents,
                                                                std::filesystem::perms mode);

}  // namespace tether::transport
