// GNU SASL mechanisms of tether_auth: RFC 7677's vector, and client <-> server exchanges of each
// mechanism in process, with the bad inputs of issue #14.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <array>
#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "auth/sasl_client.hpp"
#include "auth/sasl_server.hpp"
#include "auth/user_store.hpp"

namespace tether::auth {
namespace {

using session::AuthenticationFailure;
using session::AuthenticationStep;
using session::ConnectionSecurity;
using Status = AuthenticationStep::Status;

std::vector<std::byte> bytes_of(std::string_view text) {
  const auto* data = reinterpret_cast<const std::byte*>(text.data());
  return {data, data + text.size()};
}
std::string text_of(std::span<const std::byte> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}
std::vector<std::byte> filled(std::size_t count, unsigned char value) {
  return std::vector<std::byte>(count, std::byte{value});
}

// RFC 7677 section 3: user "user", password "pencil".
TEST(ScramVector, Rfc7677ProofAndSignature) {
  const auto salt = decode_base64("W22ZaJ0SNY7soEsUEjb6gQ==");
  ASSERT_TRUE(salt);
  const auto verifier = make_verifier("pencil", *salt, 4096);
  ASSERT_TRUE(verifier) << verifier.error();
  EXPECT_EQ(format_verifier(*verifier).substr(0, 19), "SCRAM-SHA-256$4096:");

  const std::string client_first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
  const std::string server_first =
      "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
  const std::string client_final_without_proof =
      "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
  const std::string auth_message =
      client_first_bare + "," + server_first + "," + client_final_without_proof;

  unsigned char signature[32];
  unsigned int length = 0;
  HMAC(EVP_sha256(), verifier->stored_key.data(), 32,
       reinterpret_cast<const unsigned char*>(auth_message.data()), auth_message.size(), signature,
       &length);
  // ClientProof = ClientKey XOR ClientSignature; check H(ClientKey) == StoredKey with the RFC's
  // proof.
  const auto proof = decode_base64("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
  ASSERT_TRUE(proof && proof->size() == 32);
  unsigned char client_key[32];
  for (int index = 0; index < 32; ++index) {
    client_key[index] = std::to_integer<unsigned char>((*proof)[index]) ^ signature[index];
  }
  unsigned char stored[32];
  SHA256(client_key, 32, stored);
  EXPECT_EQ(0, std::memcmp(stored, verifier->stored_key.data(), 32));

  unsigned char server_signature[32];
  HMAC(EVP_sha256(), verifier->server_key.data(), 32,
       reinterpret_cast<const unsigned char*>(auth_message.data()), auth_message.size(),
       server_signature, &length);
  const auto expected = decode_base64("6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
  ASSERT_TRUE(expected);
  EXPECT_EQ(0, std::memcmp(server_signature, expected->data(), 32));
}

std::string bad_credentials_text(Mechanism mechanism) {
  return std::string(name(mechanism)) + ": authentication failed (unknown user or wrong password)";
}

class SaslExchangeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    UserStore store;
    const auto salt = filled(16, 7);
    store.set("alice", *make_verifier("pencil", salt, 4096));
    store.set("bob", *make_verifier("hunter2", salt, 4096));
    store.set_disabled("bob", true);
    // erin's password expires in an hour, frank's expired a second ago, gina's expires now.
    store.set("erin", *make_verifier("eraser", salt, 4096));
    store.set_expiry("erin", kNow + std::chrono::hours(1));
    store.set("frank", *make_verifier("marker", salt, 4096));
    store.set_expiry("frank", kNow - std::chrono::seconds(1));
    store.set("gina", *make_verifier("chalk", salt, 4096));
    store.set_expiry("gina", kNow);
    users_ = std::make_shared<UserDirectory>(std::move(store));
    SaslServerConfig config;
    config.users = users_;
    config.wall_clock = [] { return kNow; };
    config.mechanisms.push_back(Mechanism::kExternal);
    config.fake_verifier_secret = filled(32, 42);
    server_ = std::make_unique<SaslServerAuthenticator>(std::move(config));
    tls_.channel_binding = filled(32, 1);
    tls_.keying_material = filled(32, 2);
    tls_.confidential = true;
  }

  struct Outcome {
    AuthenticationStep server;  // the server's last step
    AuthenticationStep client;  // the client's last step
    std::vector<std::string> transcript;
    std::vector<AuthenticationStep> server_steps;
  };

  // Runs a whole exchange: client start -> server start -> (challenge -> answer)* -> finish.
  Outcome run(session::ClientAuthentication& client, const ConnectionSecurity& server_security) {
    Outcome outcome;
    auto exchange = server_->start(client.mechanism(), server_security);
    if (!exchange) {
      outcome.server = AuthenticationStep::fail(AuthenticationFailure::kUnsupportedMechanism, "");
      return outcome;
    }
    auto client_step = client.start();
    if (client_step.status == Status::kFailed) {
      outcome.client = client_step;
      return outcome;
    }
    outcome.transcript.push_back(text_of(client_step.output));
    auto server_step = exchange->start(std::span<const std::byte>(client_step.output));
    outcome.server_steps.push_back(server_step);
    while (server_step.status == Status::kContinue) {
      outcome.transcript.push_back(text_of(server_step.output));
      client_step = client.step(server_step.output);
      if (client_step.status != Status::kContinue) break;
      outcome.transcript.push_back(text_of(client_step.output));
      server_step = exchange->step(client_step.output);
      outcome.server_steps.push_back(server_step);
    }
    outcome.server = server_step;
    if (server_step.status == Status::kSucceeded) {
      outcome.transcript.push_back(text_of(server_step.output));
      outcome.client = client.finish(server_step.output);
    } else if (client_step.status == Status::kFailed) {
      outcome.client = client_step;
    }
    return outcome;
  }

  SaslClientConfig credential(std::string user, std::string password, Mechanism mechanism) {
    SaslClientConfig config;
    config.mechanism = mechanism;
    config.credential = std::make_shared<ScramCredential>(std::move(user), std::move(password));
    return config;
  }

  // The server's wall clock: 2027-01-01T12:00:00Z.
  static constexpr std::chrono::system_clock::time_point kNow{
      std::chrono::sys_days(std::chrono::year(2027) / 1 / 1) + std::chrono::hours(12)};

  std::shared_ptr<UserDirectory> users_;
  std::unique_ptr<SaslServerAuthenticator> server_;
  ConnectionSecurity tls_;
};

TEST_F(SaslExchangeTest, OffersMechanismsPlusFirst) {
  SaslServerConfig defaults;
  defaults.users = users_;
  EXPECT_EQ(SaslServerAuthenticator(defaults).mechanisms(),
            (std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN"}));
  EXPECT_EQ(server_->mechanisms(),
            (std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN", "EXTERNAL"}));
}

TEST_F(SaslExchangeTest, EachMechanismSucceeds) {
  for (const Mechanism mechanism :
       {Mechanism::kScramSha256Plus, Mechanism::kScramSha256, Mechanism::kPlain}) {
    SCOPED_TRACE(std::string(name(mechanism)));
    auto config = credential("alice", "pencil", mechanism);
    auto client = start_sasl_client(mechanism, config, tls_);
    ASSERT_TRUE(client);
    const auto outcome = run(*client, tls_);
    EXPECT_EQ(outcome.server.status, Status::kSucceeded) << outcome.server.message;
    EXPECT_EQ(outcome.server.principal, "alice");
    EXPECT_EQ(outcome.client.status, Status::kSucceeded) << outcome.client.message;
  }
  ConnectionSecurity with_certificate = tls_;
  with_certificate.peer_certificate_identity = "carol.example";
  auto client = start_sasl_client(Mechanism::kExternal, {}, with_certificate);
  ASSERT_TRUE(client);
  const auto outcome = run(*client, with_certificate);
  EXPECT_EQ(outcome.server.status, Status::kSucceeded) << outcome.server.message;
  EXPECT_EQ(outcome.server.principal, "carol.example");
  EXPECT_EQ(outcome.client.status, Status::kSucceeded);
}

TEST_F(SaslExchangeTest, ScramPlusBindsAndSendsServerFinal) {
  auto config = credential("alice", "pencil", Mechanism::kScramSha256Plus);
  auto client = start_sasl_client(Mechanism::kScramSha256Plus, config, tls_);
  const auto outcome = run(*client, tls_);
  ASSERT_EQ(outcome.server.status, Status::kSucceeded);
  EXPECT_TRUE(outcome.transcript.front().starts_with("p=tls-exporter,,n=alice,r="));
  EXPECT_TRUE(outcome.transcript.back().starts_with("v="));
}

TEST_F(SaslExchangeTest, AutomaticChoiceFollowsTheBinding) {
  SaslClientConfig config = credential("alice", "pencil", Mechanism::kScramSha256);
  config.mechanism.reset();
  SaslClientAuthenticator authenticator(config);
  EXPECT_EQ(authenticator.start(tls_)->mechanism(), "SCRAM-SHA-256-PLUS");
  ConnectionSecurity plain_tcp;
  EXPECT_EQ(authenticator.start(plain_tcp)->mechanism(), "SCRAM-SHA-256");
}

TEST_F(SaslExchangeTest, SecondExchangeSkipsPbkdf2) {
  auto config = credential("alice", "pencil", Mechanism::kScramSha256Plus);
  for (int round = 0; round < 3; ++round) {
    auto client = start_sasl_client(Mechanism::kScramSha256Plus, config, tls_);
    const auto outcome = run(*client, tls_);
    ASSERT_EQ(outcome.client.status, Status::kSucceeded) << outcome.client.message;
  }
  EXPECT_EQ(config.credential->derivations(), 1u);
}

TEST_F(SaslExchangeTest, WrongPasswordAndUnknownUserLookAlike) {
  const auto attempt = [&](const std::string& user, const std::string& password) {
    auto config = credential(user, password, Mechanism::kScramSha256Plus);
    auto client = start_sasl_client(Mechanism::kScramSha256Plus, config, tls_);
    return run(*client, tls_);
  };
  const auto wrong = attempt("alice", "wrong");
  const auto unknown = attempt("mallory", "wrong");
  const auto disabled = attempt("bob", "hunter2");
  for (const auto* outcome : {&wrong, &unknown, &disabled}) {
    EXPECT_EQ(outcome->server.status, Status::kFailed);
    EXPECT_EQ(outcome->server.failure, AuthenticationFailure::kBadCredentials);
    EXPECT_EQ(outcome->server.message, wrong.server.message);
    EXPECT_EQ(outcome->server_steps.size(), 2u);  // fails at the client-final, not before
    // server-first: r=...,s=<24 base64 characters>,i=4096
    const std::string& server_first = outcome->transcript.at(1);
    const auto salt_start = server_first.find(",s=");
    const auto iterations_start = server_first.find(",i=");
    ASSERT_NE(salt_start, std::string::npos);
    EXPECT_EQ(iterations_start - salt_start - 3, 24u);
    EXPECT_EQ(server_first.substr(iterations_start), ",i=4096");
  }
  EXPECT_EQ(unknown.server.claimed_identity, "mallory");
  // The fake salt is stable per name (a second probe sees the same salt).
  const auto again = attempt("mallory", "other");
  EXPECT_EQ(again.transcript.at(1).substr(again.transcript.at(1).find(",s=")),
            unknown.transcript.at(1).substr(unknown.transcript.at(1).find(",s=")));
}

TEST(FakeVerifier, UsesTheUsersMostCommonIterationCount) {
  UserStore store;
  const auto salt = filled(16, 7);
  store.set("alice", *make_verifier("pencil", salt, 5000));
  store.set("bob", *make_verifier("pencil", salt, 5000));
  store.set("carol", *make_verifier("pencil", salt, 4096));
  SaslServerConfig config;
  config.users = std::make_shared<UserDirectory>(std::move(store));
  SaslServerAuthenticator server(config);
  ConnectionSecurity security;
  auto exchange = server.start("SCRAM-SHA-256", security);
  const auto challenge = exchange->start(bytes_of("n,,n=mallory,r=abcdefghijklmnop"));
  ASSERT_EQ(challenge.status, Status::kContinue);
  EXPECT_TRUE(text_of(challenge.output).ends_with(",i=5000")) << text_of(challenge.output);
}

TEST_F(SaslExchangeTest, PlainWrongUnknownDisabledAlike) {
  std::string message;
  for (const auto& [user, password] : std::vector<std::pair<std::string, std::string>>{
           {"alice", "wrong"}, {"mallory", "pencil"}, {"bob", "hunter2"}}) {
    auto config = credential(user, password, Mechanism::kPlain);
    auto client = start_sasl_client(Mechanism::kPlain, config, tls_);
    const auto outcome = run(*client, tls_);
    EXPECT_EQ(outcome.server.status, Status::kFailed);
    EXPECT_EQ(outcome.server.failure, AuthenticationFailure::kBadCredentials);
    if (message.empty()) message = outcome.server.message;
    EXPECT_EQ(outcome.server.message, message);
  }
}

constexpr std::array<Mechanism, 3> kPasswordMechanisms = {
    Mechanism::kScramSha256Plus, Mechanism::kScramSha256, Mechanism::kPlain};

TEST_F(SaslExchangeTest, PasswordExpiryGivesTheCredentialLifetime) {
  for (const Mechanism mechanism : kPasswordMechanisms) {
    SCOPED_TRACE(std::string(name(mechanism)));
    auto expiring = credential("erin", "eraser", mechanism);
    auto client = start_sasl_client(mechanism, expiring, tls_);
    const auto outcome = run(*client, tls_);
    ASSERT_EQ(outcome.server.status, Status::kSucceeded) << outcome.server.message;
    EXPECT_EQ(outcome.server.credential_lifetime, std::chrono::hours(1));
    EXPECT_EQ(outcome.client.status, Status::kSucceeded);
    // A password without expiry has no lifetime.
    auto lasting = credential("alice", "pencil", mechanism);
    auto other = start_sasl_client(mechanism, lasting, tls_);
    const auto unlimited = run(*other, tls_);
    ASSERT_EQ(unlimited.server.status, Status::kSucceeded) << unlimited.server.message;
    EXPECT_EQ(unlimited.server.credential_lifetime, std::nullopt);
  }
}

TEST_F(SaslExchangeTest, ExpiredPasswordIsRefusedAsExpiredOnlyAfterTheProof) {
  for (const Mechanism mechanism : kPasswordMechanisms) {
    SCOPED_TRACE(std::string(name(mechanism)));
    for (const auto& [user, password, expired_at] :
         std::vector<std::tuple<std::string, std::string, std::string>>{
             {"frank", "marker", "2027-01-01T11:59:59Z"},
             {"gina", "chalk", "2027-01-01T12:00:00Z"}}) {  // expiring now is expired
      auto config = credential(user, password, mechanism);
      auto client = start_sasl_client(mechanism, config, tls_);
      const auto outcome = run(*client, tls_);
      EXPECT_EQ(outcome.server.status, Status::kFailed);
      EXPECT_EQ(outcome.server.failure, AuthenticationFailure::kCredentialExpired)
          << outcome.server.message;
      EXPECT_EQ(outcome.server.message,
                std::string(name(mechanism)) + ": password expired at " + expired_at);
      EXPECT_TRUE(outcome.server.output.empty());  // no server signature for an expired password
      EXPECT_EQ(outcome.server.claimed_identity, user);
      // SCRAM: refused at the client-final, where the proof is checked, as a wrong password is.
      if (mechanism != Mechanism::kPlain) {
        EXPECT_EQ(outcome.server_steps.size(), 2u);
      }
    }
  }
}

TEST_F(SaslExchangeTest, ExpiredUserWithAWrongPasswordLooksLikeAnyOther) {
  for (const Mechanism mechanism : kPasswordMechanisms) {
    SCOPED_TRACE(std::string(name(mechanism)));
    const auto attempt = [&](const std::string& user, const std::string& password) {
      auto config = credential(user, password, mechanism);
      auto client = start_sasl_client(mechanism, config, tls_);
      return run(*client, tls_);
    };
    const auto expired = attempt("frank", "wrong");
    const auto wrong = attempt("alice", "wrong");
    const auto unknown = attempt("mallory", "wrong");
    for (const auto* outcome : {&expired, &wrong, &unknown}) {
      EXPECT_EQ(outcome->server.status, Status::kFailed);
      EXPECT_EQ(outcome->server.failure, AuthenticationFailure::kBadCredentials);
      EXPECT_EQ(outcome->server.message, bad_credentials_text(mechanism));
      EXPECT_EQ(outcome->server_steps.size(), expired.server_steps.size());
      if (mechanism == Mechanism::kPlain) continue;
      // The same server-first shape: a 16-byte salt and the usual iteration count.
      const std::string& server_first = outcome->transcript.at(1);
      const auto salt_start = server_first.find(",s=");
      const auto iterations_start = server_first.find(",i=");
      ASSERT_NE(salt_start, std::string::npos);
      EXPECT_EQ(iterations_start - salt_start - 3, 24u);
      EXPECT_EQ(server_first.substr(iterations_start), ",i=4096");
    }
  }
}

TEST_F(SaslExchangeTest, ExternalLifetimeIsTheCertificates) {
  ConnectionSecurity with_certificate = tls_;
  with_certificate.peer_certificate_identity = "carol.example";
  const auto run_external = [&](std::optional<session::Duration> lifetime) {
    with_certificate.peer_certificate_lifetime = lifetime;
    auto client = start_sasl_client(Mechanism::kExternal, {}, with_certificate);
    return run(*client, with_certificate).server;
  };
  const auto valid = run_external(std::chrono::hours(2));
  ASSERT_EQ(valid.status, Status::kSucceeded) << valid.message;
  EXPECT_EQ(valid.credential_lifetime, std::chrono::hours(2));
  const auto lasting = run_external(std::nullopt);
  ASSERT_EQ(lasting.status, Status::kSucceeded) << lasting.message;
  EXPECT_EQ(lasting.credential_lifetime, std::nullopt);
  // A resumed TLS session keeps its first verdict: a certificate that expired since is refused.
  const auto expired = run_external(session::Duration::zero());
  EXPECT_EQ(expired.status, Status::kFailed);
  EXPECT_EQ(expired.failure, AuthenticationFailure::kCredentialExpired);
  EXPECT_EQ(expired.message, "EXTERNAL: the client certificate has expired");
}

TEST_F(SaslExchangeTest, PlainRefusedWithoutConfidentiality) {
  ConnectionSecurity plain_tcp;
  EXPECT_EQ(server_->start("PLAIN", plain_tcp), nullptr);
  auto config = credential("alice", "pencil", Mechanism::kPlain);
  EXPECT_EQ(start_sasl_client(Mechanism::kPlain, config, plain_tcp), nullptr);
}

TEST_F(SaslExchangeTest, UnusableMechanismsAreNotStarted) {
  ConnectionSecurity no_binding = tls_;
  no_binding.channel_binding.clear();
  EXPECT_EQ(server_->start("SCRAM-SHA-256-PLUS", no_binding), nullptr);
  EXPECT_EQ(server_->start("EXTERNAL", tls_), nullptr);  // no certificate identity
  EXPECT_EQ(server_->start("OAUTHBEARER", tls_), nullptr);
  EXPECT_EQ(server_->start("scram-sha-256", tls_), nullptr);
  SaslServerConfig only_external;
  only_external.mechanisms = {Mechanism::kScramSha256, Mechanism::kExternal};
  SaslServerAuthenticator without_users(only_external);
  EXPECT_EQ(without_users.mechanisms(), std::vector<std::string>{"EXTERNAL"});
}

TEST_F(SaslExchangeTest, AuthzidDifferentFromAuthidIsNotPermitted) {
  for (const Mechanism mechanism : {Mechanism::kScramSha256Plus, Mechanism::kPlain}) {
    auto config = credential("alice", "pencil", mechanism);
    config.authorization_identity = "root";
    auto client = start_sasl_client(mechanism, config, tls_);
    const auto outcome = run(*client, tls_);
    EXPECT_EQ(outcome.server.status, Status::kFailed);
    EXPECT_EQ(outcome.server.failure, AuthenticationFailure::kNotPermitted)
        << outcome.server.message;
  }
  auto config = credential("alice", "pencil", Mechanism::kScramSha256);
  config.authorization_identity = "alice";
  auto client = start_sasl_client(Mechanism::kScramSha256, config, tls_);
  EXPECT_EQ(run(*client, tls_).server.status, Status::kSucceeded);
}

TEST_F(SaslExchangeTest, ExternalCertificateAndAuthzid) {
  ConnectionSecurity with_certificate = tls_;
  with_certificate.peer_certificate_identity = "carol.example";
  SaslClientConfig config;
  config.authorization_identity = "carol.example";
  auto same = start_sasl_client(Mechanism::kExternal, config, with_certificate);
  EXPECT_EQ(run(*same, with_certificate).server.status, Status::kSucceeded);

  config.authorization_identity = "dave.example";
  auto other = start_sasl_client(Mechanism::kExternal, config, with_certificate);
  const auto refused = run(*other, with_certificate);
  EXPECT_EQ(refused.server.status, Status::kFailed);
  EXPECT_EQ(refused.server.failure, AuthenticationFailure::kNotPermitted);

  // Without a certificate the mechanism is not offered on the connection.
  EXPECT_EQ(server_->start("EXTERNAL", tls_), nullptr);
  // No initial response: an empty challenge, then the (empty) authzid message.
  auto exchange = server_->start("EXTERNAL", with_certificate);
  auto first = exchange->start(std::nullopt);
  EXPECT_EQ(first.status, Status::kContinue);
  EXPECT_TRUE(first.output.empty());
  EXPECT_EQ(exchange->step({}).status, Status::kSucceeded);
}

TEST_F(SaslExchangeTest, ChannelBindingFromAnotherConnectionFails) {
  auto config = credential("alice", "pencil", Mechanism::kScramSha256Plus);
  ConnectionSecurity client_side = tls_;
  client_side.channel_binding = filled(32, 9);  // the client's TLS connection is another one
  auto client = start_sasl_client(Mechanism::kScramSha256Plus, config, client_side);
  const auto outcome = run(*client, tls_);
  EXPECT_EQ(outcome.server.status, Status::kFailed);
  EXPECT_NE(outcome.server.failure, AuthenticationFailure::kNotPermitted);
}

TEST_F(SaslExchangeTest, DowngradeToNoBindingIsRefused) {
  // "y,,": the client supports binding but believes the server does not.
  for (const char* mechanism : {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}) {
    SCOPED_TRACE(mechanism);
    auto exchange = server_->start(mechanism, tls_);
    ASSERT_TRUE(exchange);
    const auto step = exchange->start(bytes_of("y,,n=alice,r=abcdefghijklmnop"));
    EXPECT_EQ(step.status, Status::kFailed);
  }
  // Without a binding on the connection, y,, to SCRAM-SHA-256 is the honest answer.
  ConnectionSecurity no_binding = tls_;
  no_binding.channel_binding.clear();
  auto exchange = server_->start("SCRAM-SHA-256", no_binding);
  EXPECT_EQ(exchange->start(bytes_of("y,,n=alice,r=abcdefghijklmnop")).status, Status::kContinue);
}

TEST_F(SaslExchangeTest, MalformedGs2HeaderIsRefused) {
  for (const std::string& message : std::vector<std::string>{
           "x,,n=alice,r=abc", "n,n=alice,r=abc", "", "n,,", "p=tls-unique,,n=alice,r=abc",
           "n,,n=alice", std::string("n,,n=al\0ice,r=abc", 16), std::string(5000, 'n')}) {
    SCOPED_TRACE(message.substr(0, 40));
    auto exchange = server_->start("SCRAM-SHA-256-PLUS", tls_);
    const auto step = exchange->start(bytes_of(message));
    EXPECT_EQ(step.status, Status::kFailed);
    EXPECT_EQ(step.failure, AuthenticationFailure::kMalformed) << step.message;
  }
}

TEST_F(SaslExchangeTest, ServerNonceMustExtendClientNonce) {
  auto config = credential("alice", "pencil", Mechanism::kScramSha256);
  const std::string rest = ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
  // Kafka CVE-2024-56128: a server nonce unrelated to the client's, equal to it, or a prefix of it.
  const std::vector<std::function<std::string(const std::string&)>> forgeries = {
      [&](const std::string&) { return "r=somethingelse" + rest; },
      [&](const std::string& nonce) { return "r=" + nonce + rest; },
      [&](const std::string& nonce) { return "r=" + nonce.substr(0, 4) + "xyz" + rest; },
      [&](const std::string& nonce) { return "r=X" + nonce + rest; },
      [&](const std::string&) { return std::string(); },
  };
  for (const auto& forge : forgeries) {
    auto client = start_sasl_client(Mechanism::kScramSha256, config, tls_);
    const auto first = client->start();
    ASSERT_EQ(first.status, Status::kContinue);
    const std::string client_first = text_of(first.output);
    const std::string nonce = client_first.substr(client_first.find(",r=") + 3);
    const std::string challenge = forge(nonce);
    const auto step = client->step(bytes_of(challenge));
    EXPECT_EQ(step.status, Status::kFailed) << challenge;
  }
  // The honest shape passes this check (and then GNU SASL's).
  auto client = start_sasl_client(Mechanism::kScramSha256, config, tls_);
  const std::string client_first = text_of(client->start().output);
  const std::string nonce = client_first.substr(client_first.find(",r=") + 3);
  EXPECT_EQ(client->step(bytes_of("r=" + nonce + "server" + rest)).status, Status::kContinue);
}

TEST_F(SaslExchangeTest, ReplayedClientFinalFails) {
  auto config = credential("alice", "pencil", Mechanism::kScramSha256Plus);
  auto client = start_sasl_client(Mechanism::kScramSha256Plus, config, tls_);
  const auto captured = run(*client, tls_);
  ASSERT_EQ(captured.server.status, Status::kSucceeded);
  // An attacker replays the captured client-first and client-final into a new exchange.
  auto exchange = server_->start("SCRAM-SHA-256-PLUS", tls_);
  const auto first = exchange->start(bytes_of(captured.transcript.at(0)));
  ASSERT_EQ(first.status, Status::kContinue);
  const auto final_step = exchange->step(bytes_of(captured.transcript.at(2)));
  EXPECT_EQ(final_step.status, Status::kFailed);
}

TEST_F(SaslExchangeTest, ClientRejectsWrongOrMissingServerSignature) {
  auto config = credential("alice", "pencil", Mechanism::kScramSha256Plus);
  for (const std::string& forged : std::vector<std::string>{
           "", "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "e=other-error"}) {
    auto client = start_sasl_client(Mechanism::kScramSha256Plus, config, tls_);
    auto exchange = server_->start("SCRAM-SHA-256-PLUS", tls_);
    const auto first = client->start();
    const auto challenge = exchange->start(std::span<const std::byte>(first.output));
    const auto answer = client->step(challenge.output);
    const auto done = exchange->step(answer.output);
    ASSERT_EQ(done.status, Status::kSucceeded);
    EXPECT_EQ(client->finish(bytes_of(forged)).status, Status::kFailed) << forged;
  }
}

TEST_F(SaslExchangeTest, PlainDefersItsPasswordCheckWhenAllowed) {
  // With allow_deferral() the PBKDF2 is handed out as DeferredWork, run here on another thread, and
  // resume() gives the verdict: the same as the synchronous check's, for every kind of user.
  std::string synchronous_message;
  for (const auto& [user, password, succeeds] :
       std::vector<std::tuple<std::string, std::string, bool>>{{"alice", "pencil", true},
                                                               {"alice", "wrong", false},
                                                               {"mallory", "pencil", false},
                                                               {"bob", "hunter2", false}}) {
    const std::string message = std::string("\0", 1) + user + std::string("\0", 1) + password;
    auto exchange = server_->start("PLAIN", tls_);
    ASSERT_NE(exchange, nullptr);
    exchange->allow_deferral();
    auto step = exchange->start(bytes_of(message));
    ASSERT_EQ(step.status, Status::kContinue) << user;
    ASSERT_NE(step.deferred, nullptr);
    EXPECT_TRUE(step.output.empty());
    EXPECT_EQ(step.claimed_identity, user);
    std::thread([work = step.deferred] { work->run(); }).join();
    const auto verdict = exchange->resume();
    auto synchronous = server_->start("PLAIN", tls_);
    const auto expected = synchronous->start(bytes_of(message));
    EXPECT_EQ(verdict.status, expected.status) << user;
    EXPECT_EQ(verdict.message, expected.message) << user;
    EXPECT_EQ(verdict.failure, expected.failure) << user;
    if (succeeds) {
      EXPECT_EQ(verdict.status, Status::kSucceeded);
      EXPECT_EQ(verdict.principal, "alice");
    } else {
      EXPECT_EQ(verdict.failure, AuthenticationFailure::kBadCredentials);
    }
    // Nothing more to resume, and the exchange is over.
    EXPECT_EQ(exchange->resume().status, Status::kFailed);
  }
  // SCRAM has no costly server work: allowed or not, it never defers.
  auto scram = server_->start("SCRAM-SHA-256", tls_);
  scram->allow_deferral();
  const auto first = scram->start(bytes_of("n,,n=alice,r=abcdefghijklmnop"));
  EXPECT_EQ(first.status, Status::kContinue);
  EXPECT_EQ(first.deferred, nullptr);
  // An exchange destroyed while its work is out: the work stays valid on its own.
  auto abandoned = server_->start("PLAIN", tls_);
  abandoned->allow_deferral();
  auto work = abandoned->start(bytes_of(std::string("\0alice\0pencil", 13))).deferred;
  ASSERT_NE(work, nullptr);
  abandoned.reset();
  work->run();
}

TEST_F(SaslExchangeTest, MessagesAfterTheEndAndDestructionMidExchange) {
  auto exchange = server_->start("SCRAM-SHA-256", tls_);
  EXPECT_EQ(exchange->start(bytes_of("n,,n=alice,r=abcdefghijklmnop")).status, Status::kContinue);
  exchange.reset();  // destroyed mid-exchange: gsasl session freed (ASan/valgrind would tell)
  auto plain = server_->start("PLAIN", tls_);
  const std::string message("\0alice\0pencil", 13);
  EXPECT_EQ(plain->start(bytes_of(message)).status, Status::kSucceeded);
  EXPECT_EQ(plain->step(bytes_of(message)).status, Status::kFailed);
}

TEST_F(SaslExchangeTest, ConcurrentExchangesShareOneContext) {
  // One Gsasl context, one session per exchange, on four threads at once.
  std::vector<std::thread> threads;
  std::vector<int> successes(4, 0);
  for (int thread = 0; thread < 4; ++thread) {
    threads.emplace_back([&, thread] {
      auto config =
          credential(thread % 2 == 0 ? "alice" : "mallory", "pencil", Mechanism::kScramSha256Plus);
      for (int round = 0; round < 5; ++round) {
        auto client = start_sasl_client(Mechanism::kScramSha256Plus, config, tls_);
        if (run(*client, tls_).client.status == Status::kSucceeded) ++successes[thread];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(successes, (std::vector<int>{5, 0, 5, 0}));
}

}  // namespace
}  // namespace tether::auth
