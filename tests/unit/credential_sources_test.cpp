// Tests of the client credential sources as ExpiringCredentials (auth/credential_sources.hpp): a
// password, a token file re-read for every exchange, and a client certificate made here with
// OpenSSL; and the client's line about when its credential expires and is due for renewal.
#include "auth/credential_sources.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "auth/base64url.hpp"
#include "auth/credentials.hpp"

namespace tether::auth {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::seconds;

fs::path temporary(const std::string& name) {
  return fs::temp_directory_path() /
         ("tether-credential-sources-" + std::to_string(::getpid()) + "-" + name);
}

std::string base64url(const std::string& text) {
  return base64url_encode(std::span(reinterpret_cast<const std::byte*>(text.data()), text.size()));
}

// A JWT-shaped token (the client reads its claims unverified; the signature is the server's job).
std::string token_with(const std::string& subject, std::int64_t issued, std::int64_t expires) {
  return base64url(R"({"alg":"HS256","typ":"JWT"})") + "." +
         base64url(R"({"sub":")" + subject + R"(","iat":)" + std::to_string(issued) + R"(,"exp":)" +
                   std::to_string(expires) + "}") +
         ".c2lnbmF0dXJl";
}

std::int64_t unix_seconds(WallTime time) {
  return std::chrono::duration_cast<seconds>(time.time_since_epoch()).count();
}

// A self-signed certificate for `common_name`, valid from now + `from` to now + `to`, as PEM.
fs::path write_certificate(const std::string& name, const std::string& common_name,
                           std::chrono::seconds from, std::chrono::seconds to) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  X509* certificate = X509_new();
  X509_set_version(certificate, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(certificate), 7);
  X509_gmtime_adj(X509_getm_notBefore(certificate), static_cast<long>(from.count()));
  X509_gmtime_adj(X509_getm_notAfter(certificate), static_cast<long>(to.count()));
  X509_NAME* subject = X509_get_subject_name(certificate);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(certificate, subject);
  X509_set_pubkey(certificate, key);
  EXPECT_GT(X509_sign(certificate, key, nullptr), 0);
  const fs::path path = temporary(name);
  FILE* file = std::fopen(path.c_str(), "w");
  PEM_write_X509(file, certificate);
  std::fclose(file);
  X509_free(certificate);
  EVP_PKEY_free(key);
  return path;
}

TEST(CredentialSources, APasswordHasNoExpiryTheClientCanKnow) {
  const PasswordCredential password("alice");
  EXPECT_EQ(password.principal(), "alice");
  EXPECT_FALSE(password.expiry().has_value());
  bool due = true;
  EXPECT_TRUE(describe_expiry(password, WallClock::now(), RefreshPolicy{}, 0.5, due).empty());
  EXPECT_FALSE(due);
}

TEST(CredentialSources, ATokenFileDescribesTheLastTokenRead) {
  const fs::path path = temporary("token");
  const std::int64_t now = unix_seconds(WallClock::now());
  std::ofstream(path) << token_with("alice", now - 60, now + 3600) << "\n";
  TokenFileCredential source(path);
  EXPECT_FALSE(source.expiry().has_value());  // nothing read yet
  ASSERT_TRUE(source.token().has_value());
  EXPECT_EQ(source.principal(), "alice");
  EXPECT_EQ(unix_seconds(*source.start()), now - 60);
  EXPECT_EQ(unix_seconds(*source.expiry()), now + 3600);
  // Rewritten (a refresher outside tether): the next exchange reads, and reports, the new one.
  std::ofstream(path) << token_with("alice", now, now + 7200) << "\n";
  ASSERT_TRUE(source.token().has_value());
  EXPECT_EQ(unix_seconds(*source.expiry()), now + 7200);
  fs::remove(path);
  EXPECT_FALSE(source.token().has_value());
  EXPECT_EQ(unix_seconds(*source.expiry()), now + 7200);  // the last one read stays described
}

TEST(CredentialSources, ACertificateGivesItsCommonNameAndValidity) {
  const auto before = WallClock::now();
  const fs::path path = write_certificate("cert.pem", "dave", -hours(24), hours(24 * 30));
  auto loaded = CertificateCredential::load(path);
  ASSERT_TRUE(loaded.has_value()) << loaded.error();
  EXPECT_EQ(loaded->principal(), "dave");
  EXPECT_NEAR(static_cast<double>(unix_seconds(*loaded->start()) - unix_seconds(before)),
              -24.0 * 3600, 5);
  EXPECT_NEAR(static_cast<double>(unix_seconds(*loaded->expiry()) - unix_seconds(before)),
              30.0 * 24 * 3600, 5);
  bool due = true;
  const std::string line = describe_expiry(*loaded, WallClock::now(), RefreshPolicy{}, 0.5, due);
  EXPECT_FALSE(due) << line;
  EXPECT_NE(line.find("the credential of dave expires at"), std::string::npos) << line;
  EXPECT_NE(line.find("(in 29 days)"), std::string::npos) << line;
  fs::remove(path);
}

TEST(CredentialSources, ACertificatePastItsRefreshWindowIsDueForRenewal) {
  // Ten days of eleven gone: past 80-85% of its validity.
  const fs::path path = write_certificate("old.pem", "dave", -hours(240), hours(24));
  auto loaded = CertificateCredential::load(path);
  ASSERT_TRUE(loaded.has_value()) << loaded.error();
  bool due = false;
  const std::string line = describe_expiry(*loaded, WallClock::now(), RefreshPolicy{}, 0.5, due);
  EXPECT_TRUE(due) << line;
  EXPECT_NE(line.find("renew it"), std::string::npos) << line;
  fs::remove(path);
  // Expired: said so.
  const fs::path expired = write_certificate("expired.pem", "dave", -hours(48), -hours(1));
  auto gone = CertificateCredential::load(expired);
  ASSERT_TRUE(gone.has_value());
  EXPECT_NE(describe_expiry(*gone, WallClock::now(), RefreshPolicy{}, 0.5, due).find("expired at"),
            std::string::npos);
  EXPECT_TRUE(due);
  fs::remove(expired);
}

TEST(CredentialSources, ANameWithControlCharactersIsEscapedInTheLine) {
  const fs::path path = write_certificate("escape.pem", "eve\x1b[2J", -hours(1), hours(100));
  auto loaded = CertificateCredential::load(path);
  ASSERT_TRUE(loaded.has_value());
  bool due = false;
  const std::string line = describe_expiry(*loaded, WallClock::now(), RefreshPolicy{}, 0.5, due);
  EXPECT_EQ(line.find('\x1b'), std::string::npos) << line;
  fs::remove(path);
}

TEST(CredentialSources, AFileWithoutACertificateIsRefusedByName) {
  const fs::path path = temporary("not-a-certificate");
  std::ofstream(path) << "hello\n";
  auto loaded = CertificateCredential::load(path);
  ASSERT_FALSE(loaded.has_value());
  EXPECT_NE(loaded.error().find("holds no PEM certificate"), std::string::npos) << loaded.error();
  fs::remove(path);
  auto missing = CertificateCredential::load(path);
  ASSERT_FALSE(missing.has_value());
  EXPECT_NE(missing.error().find("cannot read"), std::string::npos);
}

TEST(CredentialSources, TheClientsConfigurationNamesItsSource) {
  ClientCredentialConfig password;
  password.user = "alice";
  password.password = "secret";
  auto authenticator = make_client_authenticator(password);
  ASSERT_TRUE(authenticator.has_value());
  auto credential = client_credential(password, authenticator->get());
  ASSERT_TRUE(credential.has_value());
  ASSERT_NE(*credential, nullptr);
  EXPECT_EQ((*credential)->principal(), "alice");

  // The token file's source is the very object the authenticator reads tokens through.
  const fs::path path = temporary("token-config");
  const std::int64_t now = unix_seconds(WallClock::now());
  std::ofstream(path) << token_with("carol", now, now + 600) << "\n";
  ClientCredentialConfig token;
  token.token_file = path;
  authenticator = make_client_authenticator(token);
  ASSERT_TRUE(authenticator.has_value());
  credential = client_credential(token, authenticator->get());
  ASSERT_TRUE(credential.has_value());
  auto* file = dynamic_cast<TokenFileCredential*>(credential->get());
  ASSERT_NE(file, nullptr);
  ASSERT_TRUE(file->token().has_value());
  EXPECT_EQ((*credential)->principal(), "carol");
  fs::remove(path);

  ClientCredentialConfig nothing;
  credential = client_credential(nothing, nullptr);
  ASSERT_TRUE(credential.has_value());
  EXPECT_EQ(*credential, nullptr);
}

}  // namespace
}  // namespace tether::auth
