// TLS tests: identity generation, fingerprints, real TLS 1.3 handshakes over loopback TCP (pinned
// fingerprint, CA file and host name, resumption, keying material) and the known-servers file.
#include <gtest/gtest.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <asio.hpp>
#include <asio/ssl.hpp>

#include "tests/support/temporary_directory.hpp"
#include "transport/byte_stream.hpp"
#include "transport/known_servers.hpp"
#include "transport/tls.hpp"

namespace tether::transport {
namespace {

namespace fs = std::filesystem;
using tether::testing::TemporaryDirectory;
using Material = std::array<std::byte, 32>;

// The permission bits of a file.
unsigned mode_of(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777u;
}

std::string read_text(const fs::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
}

// An identity generated into its own directory.
struct Identity {
  fs::path certificate;
  fs::path key;
  std::string fingerprint;
};

Identity make_identity(const fs::path& directory) {
  auto fingerprint = generate_identity(directory);
  EXPECT_TRUE(fingerprint.has_value()) << fingerprint.error();
  return Identity{directory / kCertificateFileName, directory / kKeyFileName,
                  fingerprint.value_or("")};
}

std::shared_ptr<asio::ssl::context> server_context(const Identity& identity) {
  auto context = make_server_context(identity.certificate, identity.key);
  EXPECT_TRUE(context.has_value()) << context.error();
  return context.value_or(nullptr);
}

std::shared_ptr<asio::ssl::context> client_context(const ServerTrust& trust) {
  auto context = make_client_context(trust);
  EXPECT_TRUE(context.has_value()) << context.error();
  return context.value_or(nullptr);
}

ServerTrust pinned(std::string fingerprint, std::string host = "localhost") {
  ServerTrust trust;
  trust.fingerprint = std::move(fingerprint);
  trust.host = std::move(host);
  return trust;
}

ServerTrust with_ca(fs::path ca_file, std::string host) {
  ServerTrust trust;
  trust.ca_file = std::move(ca_file);
  trust.host = std::move(host);
  return trust;
}

// What each end saw of one connection.
struct Connection {
  std::error_code client_error;
  std::error_code server_error;
  std::optional<std::string> mismatch;      // fingerprint_mismatch() on the client
  std::optional<std::string> verification;  // verification_failure() on the client
  Material client_material{};
  Material server_material{};
  int client_version = 0;
  int server_version = 0;
  bool client_resumed = false;
  bool server_resumed = false;
  char received = 0;            // the byte the server sent after the handshake
  std::string client_identity;  // client_certificate_identity() on the server
  std::optional<std::chrono::system_clock::time_point>
      client_expiry;  // client_certificate_expiry()
};

// One TCP connection over loopback with both TLS handshakes run synchronously, the server's in a
// thread. After the handshake the server sends one byte and the client reads it, which also makes
// the client process the session tickets that TLS 1.3 sends after the handshake.
Connection connect(asio::ssl::context& server, asio::ssl::context& client, bool prepare = true) {
  Connection result;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});

  std::thread server_thread([&] {
    asio::ip::tcp::socket socket(io);
    acceptor.accept(socket, result.server_error);
    if (result.server_error) return;
    asio::ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), server);
    stream.handshake(asio::ssl::stream_base::server, result.server_error);
    if (result.server_error) return;
    result.server_material = export_keying_material(stream.native_handle());
    result.server_version = SSL_version(stream.native_handle());
    result.server_resumed = SSL_session_reused(stream.native_handle()) == 1;
    result.client_identity = client_certificate_identity(stream.native_handle());
    result.client_expiry = client_certificate_expiry(stream.native_handle());
    const char byte = 'x';
    std::error_code ignored;
    asio::write(stream, asio::buffer(&byte, 1), ignored);
    char unused = 0;
    asio::read(stream, asio::buffer(&unused, 1), ignored);  // until the client closes
  });

  asio::ssl::stream<asio::ip::tcp::socket> stream(io, client);
  stream.lowest_layer().connect(acceptor.local_endpoint(), result.client_error);
  if (!result.client_error) {
    if (prepare) prepare_client_connection(stream.native_handle());
    stream.handshake(asio::ssl::stream_base::client, result.client_error);
    result.mismatch = fingerprint_mismatch(stream.native_handle());
    result.verification = verification_failure(stream.native_handle());
    if (!result.client_error) {
      result.client_material = export_keying_material(stream.native_handle());
      result.client_version = SSL_version(stream.native_handle());
      result.client_resumed = SSL_session_reused(stream.native_handle()) == 1;
      std::error_code read_error;
      asio::read(stream, asio::buffer(&result.received, 1), read_error);
      EXPECT_FALSE(read_error) << read_error.message();
    }
  }
  std::error_code ignored;
  stream.lowest_layer().close(ignored);
  server_thread.join();
  return result;
}

// ---- Identities and fingerprints
// -------------------------------------------------------------------

TEST(GenerateIdentity, WritesKeyAndCertificateWithModesAndReturnsTheFingerprint) {
  TemporaryDirectory temporary;
  const fs::path directory = temporary.path() / "new" / "identity";  // does not exist yet
  auto fingerprint = generate_identity(directory);
  ASSERT_TRUE(fingerprint.has_value()) << fingerprint.error();

  EXPECT_EQ(mode_of(directory), 0700u);
  EXPECT_EQ(mode_of(directory / "key.pem"), 0600u);
  EXPECT_EQ(mode_of(directory / "certificate.pem"), 0644u);
  EXPECT_EQ(fingerprint->size(), 7u + 64u);
  EXPECT_EQ(fingerprint->rfind("sha256:", 0), 0u);
  EXPECT_EQ(parse_fingerprint(*fingerprint).value_or(""), *fingerprint);  // canonical already

  auto from_file = fingerprint_of_certificate_file(directory / "certificate.pem");
  ASSERT_TRUE(from_file.has_value()) << from_file.error();
  EXPECT_EQ(*from_file, *fingerprint);
  EXPECT_NE(read_text(directory / "key.pem").find("BEGIN PRIVATE KEY"), std::string::npos);
  for (const auto& entry : fs::directory_iterator(directory)) {
    EXPECT_TRUE(entry.path().filename() == "key.pem" ||
                entry.path().filename() == "certificate.pem")
        << "left behind: " << entry.path();
  }
}

TEST(GenerateIdentity, CertificateIsSelfSignedV3ForLocalhostForTenYears) {
  TemporaryDirectory temporary;
  const Identity identity = make_identity(temporary.path());
  const std::string pem = read_text(identity.certificate);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* certificate = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(certificate, nullptr);

  EXPECT_EQ(X509_get_version(certificate), X509_VERSION_3);
  std::array<char, 128> common_name{};
  X509_NAME_get_text_by_NID(X509_get_subject_name(certificate), NID_commonName, common_name.data(),
                            static_cast<int>(common_name.size()));
  EXPECT_STREQ(common_name.data(), "tether server");
  EXPECT_EQ(X509_NAME_cmp(X509_get_subject_name(certificate), X509_get_issuer_name(certificate)),
            0);
  EXPECT_EQ(X509_check_host(certificate, "localhost", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(certificate, "127.0.0.1", 0), 1);
  EXPECT_EQ(X509_check_ip_asc(certificate, "::1", 0), 1);
  EXPECT_EQ(X509_check_host(certificate, "example.com", 0, 0, nullptr), 0);
  EVP_PKEY* key = X509_get0_pubkey(certificate);
  ASSERT_NE(key, nullptr);
  EXPECT_TRUE(EVP_PKEY_is_a(key, "EC"));
  std::array<char, 64> group{};
  std::size_t group_length = 0;
  EVP_PKEY_get_group_name(key, group.data(), group.size(), &group_length);
  EXPECT_STREQ(group.data(), "prime256v1");

  int days = 0;
  int seconds = 0;
  ASSERT_EQ(ASN1_TIME_diff(&days, &seconds, X509_get0_notBefore(certificate),
                           X509_get0_notAfter(certificate)),
            1);
  EXPECT_GE(days, 3650);
  EXPECT_LE(days, 3654);
  EXPECT_LT(X509_cmp_current_time(X509_get0_notBefore(certificate)), 0);  // valid already

  const ASN1_INTEGER* serial = X509_get0_serialNumber(certificate);
  BIGNUM* number = ASN1_INTEGER_to_BN(serial, nullptr);
  EXPECT_FALSE(BN_is_negative(number));
  EXPECT_GT(BN_num_bits(number), 128);
  BN_free(number);
  X509_free(certificate);

  TemporaryDirectory other;
  EXPECT_NE(make_identity(other.path()).fingerprint, identity.fingerprint);
}

TEST(GenerateIdentity, RefusesToOverwriteUnlessAsked) {
  TemporaryDirectory temporary;
  const Identity first = make_identity(temporary.path());
  const std::string key_before = read_text(first.key);

  auto again = generate_identity(temporary.path());
  ASSERT_FALSE(again.has_value());
  EXPECT_NE(again.error().find("refusing to overwrite"), std::string::npos) << again.error();
  EXPECT_NE(again.error().find("key.pem"), std::string::npos) << again.error();
  EXPECT_EQ(read_text(first.key), key_before);
  EXPECT_EQ(fingerprint_of_certificate_file(first.certificate).value_or(""), first.fingerprint);

  // Either file alone blocks it too.
  fs::remove(first.key);
  EXPECT_FALSE(generate_identity(temporary.path()).has_value());

  auto replaced = generate_identity(temporary.path(), /*overwrite=*/true);
  ASSERT_TRUE(replaced.has_value()) << replaced.error();
  EXPECT_NE(*replaced, first.fingerprint);
  EXPECT_EQ(fingerprint_of_certificate_file(first.certificate).value_or(""), *replaced);
  EXPECT_EQ(mode_of(first.key), 0600u);
}

TEST(Fingerprint, ParseAcceptsCanonicalUppercaseAndColonForms) {
  const std::string hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  const std::string canonical = "sha256:" + hex;
  std::string upper_hex = hex;
  for (char& character : upper_hex) character = static_cast<char>(std::toupper(character));
  std::string colons;
  for (std::size_t index = 0; index < hex.size(); index += 2) {
    if (index > 0) colons += ':';
    colons += hex.substr(index, 2);
  }
  for (const std::string& form : {canonical, "sha256:" + upper_hex, "SHA256:" + hex,
                                  "sha256:" + colons, "  " + canonical + "\n"}) {
    auto parsed = parse_fingerprint(form);
    ASSERT_TRUE(parsed.has_value()) << form << ": " << parsed.error();
    EXPECT_EQ(*parsed, canonical) << form;
  }
}

TEST(Fingerprint, ParseRejectsWithAReason) {
  const std::string hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  const struct {
    std::string text;
    std::string reason;
  } cases[] = {
      {"", "empty"},
      {hex, "does not start with sha256:"},
      {"md5:" + hex, "does not start with sha256:"},
      {"sha256:", "has 0 hex digits"},
      {"sha256:" + hex.substr(1), "has 63 hex digits"},
      {"sha256:" + hex + "0", "has 65 hex digits"},
      {"sha256:" + hex.substr(1) + "g", "'g', which is not a hex digit"},
      {"sha256:0:1" + hex.substr(2), "':'"},
      {"sha256::" + hex, "':'"},
      {"sha256:" + hex + ":", "':'"},
      {"sha256:01::" + hex.substr(2), "':'"},
      {"sha256:" + hex.substr(0, 32) + " " + hex.substr(32), "' ', which is not a hex digit"},
  };
  for (const auto& [text, reason] : cases) {
    auto parsed = parse_fingerprint(text);
    ASSERT_FALSE(parsed.has_value()) << text;
    EXPECT_NE(parsed.error().find(reason), std::string::npos) << text << " -> " << parsed.error();
  }
}

TEST(Fingerprint, OfCertificateFileReportsMissingAndNonPemFiles) {
  TemporaryDirectory temporary;
  auto missing = fingerprint_of_certificate_file(temporary.path() / "absent.pem");
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().find("absent.pem"), std::string::npos) << missing.error();
  EXPECT_NE(missing.error().find("No such file"), std::string::npos) << missing.error();

  write_text(temporary.path() / "junk.pem", "not a certificate\n");
  auto junk = fingerprint_of_certificate_file(temporary.path() / "junk.pem");
  ASSERT_FALSE(junk.has_value());
  EXPECT_NE(junk.error().find("no PEM certificate in"), std::string::npos) << junk.error();
}

// ---- Contexts
// ---------------------------------------------------------------------------------------

TEST(ServerContext, ReportsMissingFilesAndAKeyOfAnotherCertificate) {
  TemporaryDirectory first_directory;
  TemporaryDirectory second_directory;
  const Identity first = make_identity(first_directory.path());
  const Identity second = make_identity(second_directory.path());

  auto missing = make_server_context(first_directory.path() / "absent.pem", first.key);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().find("cannot load the server certificate from"), std::string::npos)
      << missing.error();
  EXPECT_NE(missing.error().find("absent.pem"), std::string::npos) << missing.error();

  auto missing_key = make_server_context(first.certificate, first_directory.path() / "absent.pem");
  ASSERT_FALSE(missing_key.has_value());
  EXPECT_NE(missing_key.error().find("absent.pem"), std::string::npos) << missing_key.error();

  auto mismatched = make_server_context(first.certificate, second.key);
  ASSERT_FALSE(mismatched.has_value());
  EXPECT_NE(mismatched.error().find("does not belong to the certificate"), std::string::npos)
      << mismatched.error();

  auto good = make_server_context(first.certificate, first.key);
  ASSERT_TRUE(good.has_value()) << good.error();
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*good)->native_handle()), TLS1_3_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version((*good)->native_handle()), TLS1_3_VERSION);
}

TEST(ClientContext, NeedsExactlyOneTrustAndAHost) {
  const std::string fingerprint = "sha256:" + std::string(64, 'a');
  ServerTrust neither;
  neither.host = "localhost";
  auto no_trust = make_client_context(neither);
  ASSERT_FALSE(no_trust.has_value());
  EXPECT_NE(no_trust.error().find("neither was given"), std::string::npos) << no_trust.error();

  ServerTrust both = pinned(fingerprint);
  both.ca_file = "/nonexistent/ca.pem";
  auto two = make_client_context(both);
  ASSERT_FALSE(two.has_value());
  EXPECT_NE(two.error().find("both were given"), std::string::npos) << two.error();

  auto no_host = make_client_context(pinned(fingerprint, ""));
  ASSERT_FALSE(no_host.has_value());
  EXPECT_NE(no_host.error().find("host name is empty"), std::string::npos) << no_host.error();

  auto bad_pin = make_client_context(pinned("sha256:1234"));
  ASSERT_FALSE(bad_pin.has_value());
  EXPECT_NE(bad_pin.error().find("has 4 hex digits"), std::string::npos) << bad_pin.error();

  auto no_ca = make_client_context(with_ca("/nonexistent/ca.pem", "localhost"));
  ASSERT_FALSE(no_ca.has_value());
  EXPECT_NE(no_ca.error().find("cannot load CA certificates from /nonexistent/ca.pem"),
            std::string::npos)
      << no_ca.error();

  auto good = make_client_context(pinned(fingerprint));
  ASSERT_TRUE(good.has_value()) << good.error();
  EXPECT_EQ(SSL_CTX_get_min_proto_version((*good)->native_handle()), TLS1_3_VERSION);
  EXPECT_EQ(SSL_CTX_get_max_proto_version((*good)->native_handle()), TLS1_3_VERSION);
}

// ---- Handshakes
// ---------------------------------------------------------------------------------------

TEST(Handshake, PinnedFingerprintSucceedsOverTls13WithEqualKeyingMaterial) {
  TemporaryDirectory temporary;
  const Identity identity = make_identity(temporary.path());
  auto server = server_context(identity);
  auto client = client_context(pinned(identity.fingerprint));
  ASSERT_TRUE(server && client);

  const Connection first = connect(*server, *client);
  ASSERT_FALSE(first.client_error) << first.client_error.message();
  ASSERT_FALSE(first.server_error) << first.server_error.message();
  EXPECT_EQ(first.client_version, TLS1_3_VERSION);
  EXPECT_EQ(first.server_version, TLS1_3_VERSION);
  EXPECT_EQ(first.client_material, first.server_material);
  EXPECT_NE(first.client_material, Material{});
  EXPECT_EQ(first.received, 'x');
  EXPECT_EQ(first.mismatch, std::nullopt);
  EXPECT_EQ(first.verification, std::nullopt);

  const Connection second = connect(*server, *client);
  ASSERT_FALSE(second.client_error) << second.client_error.message();
  ASSERT_FALSE(second.server_error) << second.server_error.message();
  EXPECT_EQ(second.client_material, second.server_material);
  EXPECT_NE(second.client_material, first.client_material);
}

TEST(Handshake, ReconnectResumesTheTlsSessionAndStillGetsFreshKeyingMaterial) {
  TemporaryDirectory temporary;
  const Identity identity = make_identity(temporary.path());
  auto server = server_context(identity);
  auto client = client_context(pinned(identity.fingerprint));
  ASSERT_TRUE(server && client);

  const Connection first = connect(*server, *client);
  ASSERT_FALSE(first.client_error) << first.client_error.message();
  EXPECT_FALSE(first.client_resumed);

  const Connection second = connect(*server, *client);
  ASSERT_FALSE(second.client_error) << second.client_error.message();
  ASSERT_FALSE(second.server_error) << second.server_error.message();
  EXPECT_TRUE(second.client_resumed);
  EXPECT_TRUE(second.server_resumed);
  EXPECT_EQ(second.client_version, TLS1_3_VERSION);
  EXPECT_EQ(second.client_material, second.server_material);
  EXPECT_NE(second.client_material, first.client_material);

  // Without prepare_client_connection no ticket is offered: a full handshake.
  const Connection unprepared = connect(*server, *client, /*prepare=*/false);
  ASSERT_FALSE(unprepared.client_error) << unprepared.client_error.message();
  EXPECT_FALSE(unprepared.client_resumed);
}

TEST(Handshake, WrongFingerprintFailsAndNamesBothFingerprints) {
  TemporaryDirectory server_directory;
  TemporaryDirectory other_directory;
  const Identity identity = make_identity(server_directory.path());
  const Identity other = make_identity(other_directory.path());
  auto server = server_context(identity);
  auto client = client_context(pinned(other.fingerprint));
  ASSERT_TRUE(server && client);

  const Connection connection = connect(*server, *client);
  EXPECT_TRUE(connection.client_error);
  EXPECT_TRUE(connection.server_error);
  const std::string expected = "server certificate fingerprint " + identity.fingerprint +
                               " does not match the expected " + other.fingerprint;
  EXPECT_EQ(connection.mismatch, expected);
  EXPECT_EQ(connection.verification, expected);
}

TEST(Handshake, PinIsComparedInCanonicalForm) {
  TemporaryDirectory temporary;
  const Identity identity = make_identity(temporary.path());
  std::string upper = "SHA256:";
  for (char character : identity.fingerprint.substr(7)) {
    upper += static_cast<char>(std::toupper(character));
  }
  auto server = server_context(identity);
  auto client = client_context(pinned(upper));
  ASSERT_TRUE(server && client);
  const Connection connection = connect(*server, *client);
  EXPECT_FALSE(connection.client_error) << connection.client_error.message();
}

TEST(Handshake, CaFileOfAnotherIdentityFails) {
  TemporaryDirectory server_directory;
  TemporaryDirectory ca_directory;
  const Identity identity = make_identity(server_directory.path());
  const Identity ca = make_identity(ca_directory.path());
  auto server = server_context(identity);
  auto client = client_context(with_ca(ca.certificate, "localhost"));
  ASSERT_TRUE(server && client);

  const Connection connection = connect(*server, *client);
  EXPECT_TRUE(connection.client_error);
  EXPECT_TRUE(connection.server_error);
  EXPECT_EQ(connection.mismatch, std::nullopt);
  ASSERT_TRUE(connection.verification.has_value());
  EXPECT_NE(connection.verification->find("server certificate verification failed"),
            std::string::npos)
      << *connection.verification;
}

TEST(Handshake, OwnSelfSignedCertificateAsCaSucceedsForLocalhostAndLoopbackAddresses) {
  TemporaryDirectory temporary;
  const Identity identity = make_identity(temporary.path());
  auto server = server_context(identity);
  ASSERT_TRUE(server);
  for (const std::string host : {"localhost", "LOCALHOST", "127.0.0.1"}) {
    auto client = client_context(with_ca(identity.certificate, host));
    ASSERT_TRUE(client);
    const Connection connection = connect(*server, *client);
    EXPECT_FALSE(connection.client_error) << host << ": " << connection.client_error.message();
    EXPECT_FALSE(connection.server_error) << host << ": " << connection.server_error.message();
    EXPECT_EQ(connection.client_version, TLS1_3_VERSION) << host;
    EXPECT_EQ(connection.client_material, connection.server_material) << host;
  }
}

TEST(Handshake, CaFileChecksTheHostName) {
  TemporaryDirectory temporary;
  const Identity identity = make_identity(temporary.path());
  auto server = server_context(identity);
  ASSERT_TRUE(server);
  for (const std::string host : {"example.com", "10.0.0.1"}) {
    auto client = client_context(with_ca(identity.certificate, host));
    ASSERT_TRUE(client);
    const Connection connection = connect(*server, *client);
    EXPECT_TRUE(connection.client_error) << host;
    ASSERT_TRUE(connection.verification.has_value()) << host;
    EXPECT_NE(connection.verification->find("mismatch"), std::string::npos)
        << *connection.verification;
    EXPECT_NE(connection.verification->find(host), std::string::npos) << *connection.verification;
  }
}

TEST(Handshake, Tls12ClientIsRefused) {
  TemporaryDirectory temporary;
  const Identity identity = make_identity(temporary.path());
  auto server = server_context(identity);
  ASSERT_TRUE(server);
  asio::ssl::context tls12(asio::ssl::context::tls_client);
  ASSERT_EQ(SSL_CTX_set_max_proto_version(tls12.native_handle(), TLS1_2_VERSION), 1);
  tls12.set_verify_mode(asio::ssl::verify_none);

  const Connection connection = connect(*server, tls12);
  EXPECT_TRUE(connection.client_error);
  EXPECT_TRUE(connection.server_error);
}

// ---- Client certificates (mTLS)
// ------------------------------------------------------------------------------------

using KeyPointer = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertificatePointer = std::unique_ptr<X509, decltype(&X509_free)>;

// A key and its certificate, in memory and in PEM files (the key with mode 0600).
struct Issued {
  KeyPointer key{nullptr, &EVP_PKEY_free};
  CertificatePointer certificate{nullptr, &X509_free};
  fs::path certificate_file;
  fs::path key_file;
};

// What a test certificate says.
struct CertificateSpec {
  std::vector<std::string> common_names;  // UTF-8, in order
  std::string subject_alternative_names;  // OpenSSL's syntax ("DNS:a,email:b"); empty: none
  bool authority = false;
  long valid_from_seconds = -3600;  // relative to now
  long valid_until_seconds = 86400;
  std::string not_after;  // an ASN.1 time ("99991231235959Z") instead of valid_until_seconds
};

// A client certificate spec with these common names and subjectAltNames.
CertificateSpec named(std::vector<std::string> common_names, std::string alternative_names = {}) {
  CertificateSpec spec;
  spec.common_names = std::move(common_names);
  spec.subject_alternative_names = std::move(alternative_names);
  return spec;
}

CertificateSpec authority_named(std::string common_name) {
  CertificateSpec spec = named({std::move(common_name)});
  spec.authority = true;
  return spec;
}

// Issues a P-256 certificate signed by `issuer` (self-signed when null) into DIRECTORY/NAME.pem and
// DIRECTORY/NAME.key.
Issued issue(const fs::path& directory, const std::string& name, const CertificateSpec& spec,
             const Issued* issuer = nullptr) {
  Issued issued;
  issued.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  issued.certificate.reset(X509_new());
  X509* certificate = issued.certificate.get();
  EXPECT_TRUE(issued.key && certificate);
  EXPECT_EQ(X509_set_version(certificate, X509_VERSION_3), 1);
  static long serial = 1;
  ASN1_INTEGER_set(X509_get_serialNumber(certificate), serial++);
  X509_gmtime_adj(X509_getm_notBefore(certificate), spec.valid_from_seconds);
  X509_gmtime_adj(X509_getm_notAfter(certificate), spec.valid_until_seconds);
  if (!spec.not_after.empty()) {
    EXPECT_EQ(ASN1_TIME_set_string(X509_getm_notAfter(certificate), spec.not_after.c_str()), 1);
  }
  X509_NAME* subject = X509_get_subject_name(certificate);
  // As a UTF8String set directly: no length limit or conversion, so tests can exceed the bounds.
  for (const std::string& common_name : spec.common_names) {
    EXPECT_EQ(X509_NAME_add_entry_by_txt(subject, "CN", V_ASN1_UTF8STRING,
                                         reinterpret_cast<const unsigned char*>(common_name.data()),
                                         static_cast<int>(common_name.size()), -1, 0),
              1)
        << common_name;
  }
  X509* issuer_certificate = issuer != nullptr ? issuer->certificate.get() : certificate;
  EXPECT_EQ(X509_set_issuer_name(certificate, X509_get_subject_name(issuer_certificate)), 1);
  EXPECT_EQ(X509_set_pubkey(certificate, issued.key.get()), 1);
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer_certificate, certificate, nullptr, nullptr, 0);
  std::vector<std::pair<int, std::string>> extensions;
  if (spec.authority) {
    extensions = {{NID_basic_constraints, "critical,CA:TRUE"},
                  {NID_key_usage, "critical,keyCertSign"}};
  } else {
    extensions = {{NID_basic_constraints, "CA:FALSE"}, {NID_ext_key_usage, "clientAuth"}};
  }
  if (!spec.subject_alternative_names.empty()) {
    extensions.emplace_back(NID_subject_alt_name, spec.subject_alternative_names);
  }
  for (const auto& [nid, value] : extensions) {
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
    EXPECT_NE(extension, nullptr) << value;
    if (extension == nullptr) continue;
    X509_add_ext(certificate, extension, -1);
    X509_EXTENSION_free(extension);
  }
  EVP_PKEY* signer = issuer != nullptr ? issuer->key.get() : issued.key.get();
  EXPECT_GT(X509_sign(certificate, signer, EVP_sha256()), 0);

  issued.certificate_file = directory / (name + ".pem");
  issued.key_file = directory / (name + ".key");
  BIO* certificate_out = BIO_new_file(issued.certificate_file.c_str(), "w");
  EXPECT_EQ(PEM_write_bio_X509(certificate_out, certificate), 1);
  BIO_free(certificate_out);
  BIO* key_out = BIO_new_file(issued.key_file.c_str(), "w");
  EXPECT_EQ(
      PEM_write_bio_PrivateKey(key_out, issued.key.get(), nullptr, nullptr, 0, nullptr, nullptr),
      1);
  BIO_free(key_out);
  fs::permissions(issued.key_file, fs::perms::owner_read | fs::perms::owner_write);
  return issued;
}

// A server that verifies client certificates against `ca`, and a connection to it from a client
// presenting `client` (none when null); returns the connection.
class ClientCertificateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_identity_ = make_identity(temporary_.path() / "server");
    ca_ = issue(temporary_.path(), "ca", authority_named("test CA"));
  }

  std::shared_ptr<asio::ssl::context> verifying_server(
      ClientIdentitySource identity = ClientIdentitySource::kCommonName) {
    auto context = make_server_context(server_identity_.certificate, server_identity_.key,
                                       ClientCertificateTrust{ca_.certificate_file, identity});
    EXPECT_TRUE(context.has_value()) << context.error();
    return context.value_or(nullptr);
  }

  std::shared_ptr<asio::ssl::context> presenting_client(const Issued* client) {
    std::optional<ClientCertificate> certificate;
    if (client != nullptr) {
      certificate = ClientCertificate{client->certificate_file, client->key_file};
    }
    auto context = make_client_context(pinned(server_identity_.fingerprint), certificate);
    EXPECT_TRUE(context.has_value()) << context.error();
    return context.value_or(nullptr);
  }

  // The identity the server sees for a client certificate with `spec`, issued by the CA.
  std::string identity_of(const CertificateSpec& spec,
                          ClientIdentitySource source = ClientIdentitySource::kCommonName) {
    const Issued client =
        issue(temporary_.path(), "client" + std::to_string(++issued_), spec, &ca_);
    auto server = verifying_server(source);
    auto context = presenting_client(&client);
    if (!server || !context) return "(no context)";
    const Connection connection = connect(*server, *context);
    EXPECT_FALSE(connection.client_error) << connection.client_error.message();
    EXPECT_FALSE(connection.server_error) << connection.server_error.message();
    return connection.client_identity;
  }

  TemporaryDirectory temporary_;
  Identity server_identity_;
  Issued ca_;
  int issued_ = 0;
};

TEST_F(ClientCertificateTest, CommonNameIsTheIdentityAndSurvivesTlsResumption) {
  const Issued dave = issue(temporary_.path(), "dave", named({"dave"}), &ca_);
  auto server = verifying_server();
  auto client = presenting_client(&dave);
  ASSERT_TRUE(server && client);
  const Connection first = connect(*server, *client);
  ASSERT_FALSE(first.client_error) << first.client_error.message();
  ASSERT_FALSE(first.server_error) << first.server_error.message();
  EXPECT_EQ(first.client_identity, "dave");
  const Connection second = connect(*server, *client);
  ASSERT_FALSE(second.server_error) << second.server_error.message();
  EXPECT_TRUE(second.server_resumed);
  EXPECT_EQ(second.client_identity, "dave");
}

TEST_F(ClientCertificateTest, SubjectAlternativeNamesGiveTheFirstOfTheirType) {
  const CertificateSpec spec =
      named({"dave"}, "email:dave@example.test,DNS:first.example,DNS:second.example");
  EXPECT_EQ(identity_of(spec, ClientIdentitySource::kSanDns), "first.example");
  EXPECT_EQ(identity_of(spec, ClientIdentitySource::kSanEmail), "dave@example.test");
  EXPECT_EQ(identity_of(named({"dave"}, "DNS:a.example"), ClientIdentitySource::kSanEmail), "");
  EXPECT_EQ(identity_of(named({"dave"}), ClientIdentitySource::kSanDns), "");
}

TEST_F(ClientCertificateTest, CommonNameMustBeOneCleanBoundedName) {
  EXPECT_EQ(identity_of(named({"Zo\xc3\xab Dupont"})), "Zo\xc3\xab Dupont");
  EXPECT_EQ(identity_of(named({"dave", "root"})), "");  // ambiguous
  EXPECT_EQ(identity_of(named({})), "");
  EXPECT_EQ(identity_of(named({"dave\x1b[2Jroot"})), "");  // terminal escape
  EXPECT_EQ(identity_of(named({"dave\xc2\x85"})), "");     // C1 control (NEL)
  EXPECT_EQ(identity_of(named({std::string(kMaxClientIdentityBytes, 'a')})),
            std::string(kMaxClientIdentityBytes, 'a'));
  EXPECT_EQ(identity_of(named({std::string(kMaxClientIdentityBytes + 1, 'a')})), "");
  EXPECT_EQ(identity_of(named({"dave"}, "DNS:a b"), ClientIdentitySource::kSanDns), "");
}

TEST_F(ClientCertificateTest, NoIdentityUnlessTheCertificateVerifies) {
  auto server = verifying_server();
  ASSERT_TRUE(server);
  // Another CA's certificate with the same name, an expired one, and none: the handshake goes on
  // (other mechanisms may be used), with no identity.
  const Issued other_ca = issue(temporary_.path(), "other-ca", authority_named("test CA"));
  const Issued impostor = issue(temporary_.path(), "impostor", named({"dave"}), &other_ca);
  CertificateSpec expired_spec = named({"dave"});
  expired_spec.valid_from_seconds = -7200;
  expired_spec.valid_until_seconds = -3600;
  const Issued expired = issue(temporary_.path(), "expired", expired_spec, &ca_);
  const Issued self_signed = issue(temporary_.path(), "self", named({"dave"}));
  for (const Issued* client :
       {&impostor, &expired, &self_signed, static_cast<const Issued*>(nullptr)}) {
    auto context = presenting_client(client);
    ASSERT_TRUE(context);
    const Connection connection = connect(*server, *context);
    EXPECT_FALSE(connection.client_error) << connection.client_error.message();
    EXPECT_FALSE(connection.server_error) << connection.server_error.message();
    EXPECT_EQ(connection.client_identity, "");
  }
  // A server without --client-ca takes no identity from a certificate a client sends anyway.
  const Issued dave = issue(temporary_.path(), "dave", named({"dave"}), &ca_);
  auto plain_server = server_context(server_identity_);
  auto client = presenting_client(&dave);
  ASSERT_TRUE(plain_server && client);
  const Connection connection = connect(*plain_server, *client);
  EXPECT_FALSE(connection.server_error) << connection.server_error.message();
  EXPECT_EQ(connection.client_identity, "");
}

TEST_F(ClientCertificateTest, ExpiryIsTheVerifiedCertificatesNotAfter) {
  using std::chrono::seconds;
  using std::chrono::system_clock;
  auto server = verifying_server();
  ASSERT_TRUE(server);
  const auto expiry_of = [&](const CertificateSpec& spec) {
    const Issued client =
        issue(temporary_.path(), "client" + std::to_string(++issued_), spec, &ca_);
    auto context = presenting_client(&client);
    const Connection connection = connect(*server, *context);
    EXPECT_FALSE(connection.server_error) << connection.server_error.message();
    return connection.client_expiry;
  };
  // Valid for another 2 hours (and one second, so that whole seconds cannot round it below).
  CertificateSpec two_hours = named({"dave"});
  two_hours.valid_until_seconds = 2 * 3600 + 1;
  const auto issued_at = system_clock::now();
  const auto expiry = expiry_of(two_hours);
  ASSERT_TRUE(expiry);
  const auto lifetime = *expiry - issued_at;
  EXPECT_GE(lifetime, seconds(2 * 3600 - 1));
  EXPECT_LE(lifetime, seconds(2 * 3600 + 2));
  // An exact notAfter, as UTCTime and as GeneralizedTime.
  CertificateSpec exact = named({"dave"});
  exact.not_after = "20490102030405Z";
  EXPECT_EQ(expiry_of(exact), std::chrono::sys_days(std::chrono::year(2049) / 1 / 2) +
                                  std::chrono::hours(3) + std::chrono::minutes(4) + seconds(5));
  exact.not_after = "21990102030405Z";
  EXPECT_EQ(expiry_of(exact), std::chrono::sys_days(std::chrono::year(2199) / 1 / 2) +
                                  std::chrono::hours(3) + std::chrono::minutes(4) + seconds(5));
  // RFC 5280's "no well-defined expiration date".
  CertificateSpec forever = named({"dave"});
  forever.not_after = "99991231235959Z";
  EXPECT_EQ(expiry_of(forever), std::nullopt);
  // No expiry without a verified certificate: none, expired, or from another CA.
  CertificateSpec expired = named({"dave"});
  expired.valid_from_seconds = -7200;
  expired.valid_until_seconds = -3600;
  EXPECT_EQ(expiry_of(expired), std::nullopt);
  auto anonymous = presenting_client(nullptr);
  EXPECT_EQ(connect(*server, *anonymous).client_expiry, std::nullopt);
}

// What the server's end of a connection that open_tls made on both ends hands the session core.
session::ConnectionSecurity server_security(asio::ssl::context& server,
                                            asio::ssl::context& client) {
  using Opened = Expected<std::unique_ptr<ByteStream>, TransportError>;
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
  asio::ip::tcp::socket client_socket(io);
  client_socket.connect(acceptor.local_endpoint());
  asio::ip::tcp::socket server_socket = acceptor.accept();
  std::optional<Opened> client_end;
  std::optional<Opened> server_end;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        client_end.emplace(co_await open_tls(std::move(client_socket), client, Side::kClient));
      },
      asio::detached);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        server_end.emplace(co_await open_tls(std::move(server_socket), server, Side::kServer));
      },
      asio::detached);
  io.run();
  if (!client_end || !*client_end || !server_end || !*server_end) {
    ADD_FAILURE() << "open_tls failed";
    return {};
  }
  return (**server_end)->security();
}

TEST_F(ClientCertificateTest, StreamGivesTheCertificatesLifetimeWithItsIdentity) {
  using std::chrono::seconds;
  auto server = verifying_server();
  CertificateSpec spec = named({"dave"});
  spec.valid_until_seconds = 3 * 3600 + 1;
  const Issued dave = issue(temporary_.path(), "dave", spec, &ca_);
  auto client = presenting_client(&dave);
  ASSERT_TRUE(server && client);
  const auto security = server_security(*server, *client);
  EXPECT_EQ(security.peer_certificate_identity, "dave");
  ASSERT_TRUE(security.peer_certificate_lifetime);
  EXPECT_GE(*security.peer_certificate_lifetime, seconds(3 * 3600 - 1));
  EXPECT_LE(*security.peer_certificate_lifetime, seconds(3 * 3600 + 1));
  // No certificate: no identity and no lifetime.
  auto anonymous = presenting_client(nullptr);
  const auto without = server_security(*server, *anonymous);
  EXPECT_EQ(without.peer_certificate_identity, "");
  EXPECT_EQ(without.peer_certificate_lifetime, std::nullopt);
}

TEST_F(ClientCertificateTest, ClientKeyIsCheckedLikeTheServers) {
  const Issued dave = issue(temporary_.path(), "dave", named({"dave"}), &ca_);
  const Issued other = issue(temporary_.path(), "other", named({"other"}), &ca_);
  const ServerTrust trust = pinned(server_identity_.fingerprint);
  fs::permissions(dave.key_file, fs::perms::group_read, fs::perm_options::add);
  auto readable =
      make_client_context(trust, ClientCertificate{dave.certificate_file, dave.key_file});
  ASSERT_FALSE(readable.has_value());
  EXPECT_NE(readable.error().find("group or others may read"), std::string::npos)
      << readable.error();
  auto mismatched =
      make_client_context(trust, ClientCertificate{dave.certificate_file, other.key_file});
  ASSERT_FALSE(mismatched.has_value());
  EXPECT_NE(mismatched.error().find("does not belong to the certificate"), std::string::npos)
      << mismatched.error();
  auto missing = make_client_context(
      trust, ClientCertificate{temporary_.path() / "absent.pem", other.key_file});
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().find("cannot load the client certificate"), std::string::npos)
      << missing.error();
  auto missing_ca = make_server_context(server_identity_.certificate, server_identity_.key,
                                        ClientCertificateTrust{temporary_.path() / "absent.pem"});
  ASSERT_FALSE(missing_ca.has_value());
  EXPECT_NE(missing_ca.error().find("absent.pem"), std::string::npos) << missing_ca.error();
}

TEST(ClientIdentitySource, ParsesTheOptionValues) {
  EXPECT_EQ(parse_client_identity_source("cn"), ClientIdentitySource::kCommonName);
  EXPECT_EQ(parse_client_identity_source("san-dns"), ClientIdentitySource::kSanDns);
  EXPECT_EQ(parse_client_identity_source("san-email"), ClientIdentitySource::kSanEmail);
  EXPECT_EQ(parse_client_identity_source("CN"), std::nullopt);
  EXPECT_EQ(parse_client_identity_source(""), std::nullopt);
}

// ---- Known servers
// ------------------------------------------------------------------------------------

const std::string kFingerprintA = "sha256:" + std::string(64, 'a');
const std::string kFingerprintB = "sha256:" + std::string(64, 'b');

TEST(KnownServers, MissingFileIsEmptyAndRememberCreatesItPrivately) {
  TemporaryDirectory temporary;
  const fs::path path = temporary.path() / "config" / "tether" / "known_servers";
  auto known = KnownServers::load(path);
  ASSERT_TRUE(known.has_value()) << known.error();
  EXPECT_EQ(known->size(), 0u);
  EXPECT_EQ(known->lookup("example.com:7000"), std::nullopt);
  EXPECT_FALSE(fs::exists(path));

  auto stored = known->remember("example.com:7000", kFingerprintA);
  ASSERT_TRUE(stored.has_value()) << stored.error();
  EXPECT_EQ(known->lookup("example.com:7000"), kFingerprintA);
  EXPECT_EQ(known->lookup("EXAMPLE.com:7000"), kFingerprintA);
  EXPECT_EQ(known->lookup("example.com:7001"), std::nullopt);
  EXPECT_EQ(known->lookup("example.com"), std::nullopt);
  EXPECT_EQ(mode_of(path), 0600u);
  EXPECT_EQ(mode_of(path.parent_path()), 0700u);
  EXPECT_EQ(read_text(path), "example.com:7000 " + kFingerprintA + "\n");
}

TEST(KnownServers, RememberUpdatesAndKeepsOtherLines) {
  TemporaryDirectory temporary;
  const fs::path path = temporary.path() / "known_servers";
  write_text(path, "# servers I trust\n\nalpha:1 " + kFingerprintA + "\n[::1]:7000\t" +
                       kFingerprintA + "\n");
  auto known = KnownServers::load(path);
  ASSERT_TRUE(known.has_value()) << known.error();
  EXPECT_EQ(known->size(), 2u);
  EXPECT_EQ(known->lookup("[::1]:7000"), kFingerprintA);
  EXPECT_EQ(known->lookup(host_port("::1", 7000)), kFingerprintA);

  // Written in another form; stored canonical, in place.
  std::string upper = "SHA256:" + std::string(64, 'B');
  ASSERT_TRUE(known->remember("Alpha:1", upper).has_value());
  EXPECT_EQ(known->lookup("alpha:1"), kFingerprintB);
  ASSERT_TRUE(known->remember("beta:2", kFingerprintA).has_value());
  EXPECT_EQ(read_text(path), "# servers I trust\n\nalpha:1 " + kFingerprintB + "\n[::1]:7000\t" +
                                 kFingerprintA + "\nbeta:2 " + kFingerprintA + "\n");
  EXPECT_EQ(mode_of(path), 0600u);

  auto reloaded = KnownServers::load(path);
  ASSERT_TRUE(reloaded.has_value()) << reloaded.error();
  EXPECT_EQ(reloaded->lookup("alpha:1"), kFingerprintB);
  EXPECT_EQ(reloaded->lookup("beta:2"), kFingerprintA);
  EXPECT_EQ(reloaded->size(), 3u);
}

TEST(KnownServers, ForgetRemovesOnlyThatServerAndKeepsComments) {
  TemporaryDirectory temporary;
  const fs::path path = temporary.path() / "known_servers";
  write_text(path, "# mine\nalpha:1 " + kFingerprintA + "\n[::1]:7000 " + kFingerprintB + "\n");
  auto known = KnownServers::load(path);
  ASSERT_TRUE(known.has_value()) << known.error();
  auto removed = known->forget("[::1]:7000");
  ASSERT_TRUE(removed.has_value()) << removed.error();
  EXPECT_TRUE(*removed);
  EXPECT_EQ(known->lookup("[::1]:7000"), std::nullopt);
  EXPECT_EQ(known->lookup("alpha:1"), kFingerprintA);
  EXPECT_EQ(read_text(path), "# mine\nalpha:1 " + kFingerprintA + "\n");
  EXPECT_EQ(mode_of(path), 0600u);

  // Not listed: nothing written; a malformed name is an error.
  auto again = known->forget("ALPHA:2");
  ASSERT_TRUE(again.has_value());
  EXPECT_FALSE(*again);
  EXPECT_EQ(read_text(path), "# mine\nalpha:1 " + kFingerprintA + "\n");
  EXPECT_FALSE(known->forget("::1:7000").has_value());
  auto upper = known->forget("Alpha:1");
  ASSERT_TRUE(upper.has_value());
  EXPECT_TRUE(*upper);
  EXPECT_EQ(read_text(path), "# mine\n");
}

TEST(KnownServers, RememberKeepsEntriesAnotherProcessAdded) {
  TemporaryDirectory temporary;
  const fs::path path = temporary.path() / "known_servers";
  auto first = KnownServers::load(path);
  auto second = KnownServers::load(path);
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(first->remember("one:1", kFingerprintA).has_value());
  ASSERT_TRUE(second->remember("two:2", kFingerprintB).has_value());
  EXPECT_EQ(second->lookup("one:1"), kFingerprintA);
  auto reloaded = KnownServers::load(path);
  ASSERT_TRUE(reloaded.has_value());
  EXPECT_EQ(reloaded->size(), 2u);
}

TEST(KnownServers, MalformedLinesAreErrorsNamingTheLine) {
  TemporaryDirectory temporary;
  const fs::path path = temporary.path() / "known_servers";
  const struct {
    std::string line;
    std::string reason;
  } cases[] = {
      {"alpha:1", "expected \"host:port sha256:HEX\""},
      {"alpha:1 " + kFingerprintA + " extra", "expected \"host:port sha256:HEX\""},
      {"alpha " + kFingerprintA, "has no port"},
      {"alpha:0 " + kFingerprintA, "no valid port"},
      {"alpha:65536 " + kFingerprintA, "no valid port"},
      {"::1:7000 " + kFingerprintA, "in brackets"},
      {"alpha:1 sha256:abc", "has 3 hex digits"},
      {"Other:1 " + kFingerprintB, "other:1 is already listed on line 2"},
  };
  for (const auto& [line, reason] : cases) {
    write_text(path, "# header\nother:1 " + kFingerprintA + "\n" + line + "\n");
    auto known = KnownServers::load(path);
    ASSERT_FALSE(known.has_value()) << line;
    EXPECT_NE(known.error().find(path.string() + " line 3: "), std::string::npos)
        << line << " -> " << known.error();
    EXPECT_NE(known.error().find(reason), std::string::npos) << line << " -> " << known.error();
  }
}

TEST(KnownServers, RememberRejectsBadInputAndChangesNothing) {
  TemporaryDirectory temporary;
  const fs::path path = temporary.path() / "known_servers";
  auto known = KnownServers::load(path);
  ASSERT_TRUE(known.has_value());
  EXPECT_FALSE(known->remember("no-port", kFingerprintA).has_value());
  EXPECT_FALSE(known->remember("host:1", "sha256:00").has_value());
  EXPECT_FALSE(known->remember("host name:1", kFingerprintA).has_value());
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(known->size(), 0u);

  auto empty_path = KnownServers::load("");
  ASSERT_FALSE(empty_path.has_value());
  EXPECT_NE(empty_path.error().find("HOME"), std::string::npos) << empty_path.error();
}

TEST(KnownServers, HostPortBracketsIpv6AndLowercases) {
  EXPECT_EQ(host_port("Example.COM", 7000), "example.com:7000");
  EXPECT_EQ(host_port("::1", 443), "[::1]:443");
  EXPECT_EQ(host_port("[::1]", 443), "[::1]:443");
  EXPECT_EQ(host_port("127.0.0.1", 1), "127.0.0.1:1");
  EXPECT_EQ(normalize_host_port("[FE80::1]:22").value_or(""), "[fe80::1]:22");
}

// Restores an environment variable when it goes out of scope.
class EnvironmentOverride {
 public:
  EnvironmentOverride(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  EnvironmentOverride(const EnvironmentOverride&) = delete;
  EnvironmentOverride& operator=(const EnvironmentOverride&) = delete;
  ~EnvironmentOverride() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(KnownServers, DefaultPathFollowsXdgConfigHomeThenHome) {
  {
    EnvironmentOverride config("XDG_CONFIG_HOME", "/config");
    EnvironmentOverride home("HOME", "/home/someone");
    EXPECT_EQ(default_known_servers_path(), fs::path("/config/tether/known_servers"));
  }
  {
    EnvironmentOverride config("XDG_CONFIG_HOME", nullptr);
    EnvironmentOverride home("HOME", "/home/someone");
    EXPECT_EQ(default_known_servers_path(), fs::path("/home/someone/.config/tether/known_servers"));
  }
  {
    EnvironmentOverride config("XDG_CONFIG_HOME", "relative/is/ignored");
    EnvironmentOverride home("HOME", "/home/someone");
    EXPECT_EQ(default_known_servers_path(), fs::path("/home/someone/.config/tether/known_servers"));
  }
}

}  // namespace
}  // namespace tether::transport
