// OAUTHBEARER (RFC 7628): the client message framing with the RFC's section 4 examples, the
// server's verification and error flow, and the client's side of it.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "auth/jwks.hpp"
#include "auth/jwt.hpp"
#include "auth/oauthbearer.hpp"
#include "tests/support/jose_keys.hpp"

namespace {

using nlohmann::json;
using tether::auth::build_oauthbearer_client_message;
using tether::auth::JsonWebKeySet;
using tether::auth::JwsAlgorithm;
using tether::auth::OAuthBearerClient;
using tether::auth::OAuthBearerClientMessage;
using tether::auth::OAuthBearerServer;
using tether::auth::parse_oauthbearer_client_message;
using tether::auth::TokenPolicy;
using tether::auth::TokenVerifier;
using tether::session::AuthenticationFailure;
using tether::session::AuthenticationStep;
using Status = AuthenticationStep::Status;
using std::chrono::seconds;
using std::chrono::system_clock;

constexpr std::int64_t kNow = 1'800'000'000;

std::vector<std::byte> bytes(std::string_view text) {
  const auto view = std::as_bytes(std::span<const char>(text.data(), text.size()));
  return {view.begin(), view.end()};
}

std::string text(const std::vector<std::byte>& data) {
  return {reinterpret_cast<const char*>(data.data()), data.size()};
}

// RFC 7628 section 4.1 (IMAP): authzid, host, port and a Bearer token.
const std::string kRfcExample41 =
    "n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
    "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";
// RFC 7628 section 4.3 (SMTP, failed): no authzid.
const std::string kRfcExample43 =
    "n,,\x01"
    "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01";

TEST(OAuthBearerMessageTest, ParsesTheRfcExamples) {
  auto parsed = parse_oauthbearer_client_message(bytes(kRfcExample41));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->authorization_identity, "user@example.com");
  EXPECT_EQ(parsed->host, "server.example.com");
  EXPECT_EQ(parsed->port, "143");
  EXPECT_EQ(parsed->token, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");

  auto smtp = parse_oauthbearer_client_message(bytes(kRfcExample43));
  ASSERT_TRUE(smtp) << smtp.error();
  EXPECT_EQ(smtp->authorization_identity, "");
  EXPECT_EQ(smtp->host, "");
  EXPECT_EQ(smtp->token, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");

  // Section 4.2's OAuth 1.0a message is OAUTH10A, not OAUTHBEARER: its auth= is refused.
  auto oauth10a = parse_oauthbearer_client_message(
      bytes("n,a=user@example.com,\x01host=example.com\x01port=143\x01"
            "auth=OAuth realm=\"Example\",oauth_consumer_key=\"9djdj82h48djs9d2\"\x01\x01"));
  ASSERT_FALSE(oauth10a);
  EXPECT_NE(oauth10a.error().find("Bearer"), std::string::npos);
}

TEST(OAuthBearerMessageTest, BuildsWhatItParsesWithEscapedAuthzid) {
  OAuthBearerClientMessage fields{"a,b=c", "abc.def_-~+/==", "db.internal", "5432"};
  auto built = build_oauthbearer_client_message(fields);
  ASSERT_TRUE(built) << built.error();
  EXPECT_EQ(text(*built),
            "n,a=a=2Cb=3Dc,\x01host=db.internal\x01port=5432\x01"
            "auth=Bearer abc.def_-~+/==\x01\x01");
  auto parsed = parse_oauthbearer_client_message(*built);
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->authorization_identity, "a,b=c");
  EXPECT_EQ(parsed->token, fields.token);
  EXPECT_EQ(parsed->host, "db.internal");
  EXPECT_EQ(parsed->port, "5432");

  auto rfc = build_oauthbearer_client_message(
      {"user@example.com", "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==", "server.example.com",
       "143"});
  ASSERT_TRUE(rfc);
  EXPECT_EQ(text(*rfc), kRfcExample41);

  EXPECT_FALSE(build_oauthbearer_client_message({"", "has space", "", ""}));
  EXPECT_FALSE(build_oauthbearer_client_message({"", "", "", ""}));
  EXPECT_FALSE(build_oauthbearer_client_message({"", "tok", "bad\x01host", ""}));
  EXPECT_FALSE(build_oauthbearer_client_message({std::string("a\0b", 3), "tok", "", ""}));
}

void expect_malformed(const std::string& message, const std::string& expected = {}) {
  auto parsed = parse_oauthbearer_client_message(bytes(message));
  ASSERT_FALSE(parsed) << "accepted: " << tether::auth::escape_peer_text(message, 200);
  if (!expected.empty()) {
    EXPECT_NE(parsed.error().find(expected), std::string::npos) << parsed.error();
  }
}

TEST(OAuthBearerMessageTest, RefusesMalformedGs2Headers) {
  expect_malformed(
      "y,,\x01"
      "auth=Bearer abc\x01\x01",
      "channel binding");
  expect_malformed(
      "p=tls-exporter,,\x01"
      "auth=Bearer abc\x01\x01",
      "channel binding");
  expect_malformed(
      "x,,\x01"
      "auth=Bearer abc\x01\x01",
      "GS2");
  expect_malformed(
      "n\x01"
      "auth=Bearer abc\x01\x01",
      "GS2");
  expect_malformed(
      "n,a=,\x01"
      "auth=Bearer abc\x01\x01",
      "authzid");
  expect_malformed(
      "n,a=bad=2Xescape,\x01"
      "auth=Bearer abc\x01\x01",
      "2C or 3D");
  expect_malformed(
      "n,a=trailing=,\x01"
      "auth=Bearer abc\x01\x01",
      "2C or 3D");
  expect_malformed(
      "n,a=user\x01"
      "auth=Bearer abc\x01\x01",
      "GS2");
  expect_malformed(
      "n,b=user,\x01"
      "auth=Bearer abc\x01\x01",
      "GS2");
  expect_malformed("n,,auth=Bearer abc\x01\x01", "\\x01");
  expect_malformed("");
}

TEST(OAuthBearerMessageTest, RefusesMalformedPairs) {
  expect_malformed(
      "n,,\x01"
      "auth=Bearer abc\x01",
      "end with");
  expect_malformed(
      "n,,\x01"
      "auth=Bearer abc",
      "unterminated");
  expect_malformed(
      "n,,\x01"
      "auth=Bearer abc\x01\x01"
      "extra",
      "after the final");
  expect_malformed(
      "n,,\x01"
      "auth=Bearer abc\x01\x01\x01",
      "after the final");
  expect_malformed("n,,\x01\x01", "no auth=");
  expect_malformed(
      "n,,\x01"
      "host=x\x01\x01",
      "no auth=");
  expect_malformed(
      "n,,\x01"
      "auth=Bearer abc\x01"
      "auth=Bearer def\x01\x01",
      "twice");
  expect_malformed(
      "n,,\x01"
      "au th=Bearer abc\x01\x01",
      "letters");
  expect_malformed(
      "n,,\x01"
      "=Bearer abc\x01\x01",
      "key");
  expect_malformed(
      "n,,\x01"
      "auth\x01\x01",
      "key");
  expect_malformed(
      "n,,\x01"
      "host=a\x7f\x01"
      "auth=Bearer abc\x01\x01",
      "control");
  expect_malformed(
      "n,,\x01"
      "auth=Bearer\x01\x01",
      "Bearer");
  expect_malformed(
      "n,,\x01"
      "auth=Bearer \x01\x01",
      "b64token");
  expect_malformed(
      "n,,\x01"
      "auth=Bearer a=b\x01\x01",
      "b64token");
  expect_malformed(
      "n,,\x01"
      "auth=Basic dXNlcjpwYXNz\x01\x01",
      "Bearer");
  std::string many = "n,,\x01";
  for (int index = 0; index < 20; ++index)
    many += std::string(1, static_cast<char>('a' + index)) + "=1\x01";
  expect_malformed(many + "auth=Bearer abc\x01\x01", "pairs");
  expect_malformed(
      "n,,\x01"
      "auth=Bearer " +
          std::string(10000, 'a') + "\x01\x01",
      "at most");
}

TEST(OAuthBearerMessageTest, IgnoresUnknownKeysAndAcceptsAnyCaseOfBearer) {
  auto parsed =
      parse_oauthbearer_client_message(bytes("n,,\x01"
                                             "future=whatever value\tok\x01"
                                             "auth=bEaReR  abc\x01\x01"));
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->token, "abc");
}

class OAuthBearerServerTest : public ::testing::Test {
 protected:
  OAuthBearerServerTest() {
    auto set = JsonWebKeySet::parse(tether::testing::jwks_document({&key()}));
    EXPECT_TRUE(set) << set.error();
    TokenPolicy policy;
    policy.issuer = "https://issuer.example";
    policy.audience = "tether";
    policy.required_scope = "tether:connect";
    auto verifier = TokenVerifier::create(
        TokenVerifier::fixed_keys(std::make_shared<const JsonWebKeySet>(std::move(*set))), policy,
        [this] { return now_; });
    EXPECT_TRUE(verifier);
    verifier_ = std::make_shared<const TokenVerifier>(std::move(*verifier));
  }

  static const tether::testing::TestSigningKey& key() {
    static const tether::testing::TestSigningKey generated(JwsAlgorithm::kEs256, "ec-1");
    return generated;
  }

  static json claims() {
    return {{"iss", "https://issuer.example"},
            {"aud", "tether"},
            {"sub", "alice"},
            {"scope", "tether:connect tether:connect:db.internal:5432"},
            {"exp", kNow + 300}};
  }

  static std::vector<std::byte> message(const std::string& token, const std::string& authzid = {}) {
    return *build_oauthbearer_client_message({authzid, token, "server.example", "443"});
  }

  // Runs the error flow: the first step must be the JSON error challenge with `status`; the lone
  // \x01 must then fail the exchange with `failure`. Returns the final step.
  AuthenticationStep expect_error_flow(const std::vector<std::byte>& client_message,
                                       const std::string& status, AuthenticationFailure failure) {
    OAuthBearerServer server(verifier_);
    const AuthenticationStep challenge = server.start(client_message);
    EXPECT_EQ(challenge.status, Status::kContinue);
    auto error = json::parse(text(challenge.output), nullptr, false);
    EXPECT_TRUE(error.is_object()) << text(challenge.output);
    if (error.is_object()) {
      EXPECT_EQ(error.value("status", ""), status);
    }
    const AuthenticationStep final_step = server.step(bytes("\x01"));
    EXPECT_EQ(final_step.status, Status::kFailed);
    EXPECT_EQ(final_step.failure, failure);
    EXPECT_EQ(final_step.message.rfind("OAUTHBEARER: ", 0), 0u) << final_step.message;
    EXPECT_EQ(server.step(bytes("\x01")).status, Status::kFailed);  // over
    return final_step;
  }

  std::shared_ptr<const TokenVerifier> verifier_;
  system_clock::time_point now_{seconds(kNow)};
};

TEST_F(OAuthBearerServerTest, AcceptsAValidTokenWithThePrincipalScopesAndLifetime) {
  OAuthBearerServer server(verifier_);
  const AuthenticationStep step = server.start(message(key().token(claims())));
  ASSERT_EQ(step.status, Status::kSucceeded) << step.message;
  EXPECT_TRUE(step.output.empty());
  EXPECT_EQ(step.principal, "alice");
  EXPECT_EQ(step.claimed_identity, "alice");
  EXPECT_EQ(step.scopes,
            (std::vector<std::string>{"tether:connect", "tether:connect:db.internal:5432"}));
  ASSERT_TRUE(step.credential_lifetime);
  EXPECT_EQ(*step.credential_lifetime, seconds(300));
  EXPECT_EQ(server.step(bytes("\x01")).status, Status::kFailed);
}

TEST_F(OAuthBearerServerTest, WithoutAnInitialResponseAsksWithAnEmptyChallenge) {
  OAuthBearerServer server(verifier_);
  const AuthenticationStep first = server.start(std::nullopt);
  ASSERT_EQ(first.status, Status::kContinue);
  EXPECT_TRUE(first.output.empty());
  EXPECT_EQ(server.step(message(key().token(claims()))).status, Status::kSucceeded);
}

TEST_F(OAuthBearerServerTest, AcceptsAnAuthzidEqualToTheSubjectAndRefusesAnother) {
  OAuthBearerServer server(verifier_);
  EXPECT_EQ(server.start(message(key().token(claims()), "alice")).status, Status::kSucceeded);
  const AuthenticationStep refused =
      expect_error_flow(message(key().token(claims()), "root"), "invalid_request",
                        AuthenticationFailure::kNotPermitted);
  EXPECT_NE(refused.message.find("\"root\" is not the token's subject \"alice\""),
            std::string::npos)
      << refused.message;
  EXPECT_EQ(refused.claimed_identity, "root");
}

TEST_F(OAuthBearerServerTest, TheRfcFailedExchangeFollowsTheErrorFlow) {
  // Section 4.3: the example token is no JWS; the server answers invalid_token, then fails.
  const AuthenticationStep final_step = expect_error_flow(bytes(kRfcExample41), "invalid_token",
                                                          AuthenticationFailure::kBadCredentials);
  EXPECT_EQ(final_step.message.find("vF9dft4"), std::string::npos);  // never the token
  expect_error_flow(bytes(kRfcExample43), "invalid_token", AuthenticationFailure::kBadCredentials);
}

TEST_F(OAuthBearerServerTest, AnExpiredTokenFailsAsExpiredWithItsTime) {
  json expired = claims();
  expired["exp"] = kNow - 3600;
  const AuthenticationStep final_step = expect_error_flow(
      message(key().token(expired)), "invalid_token", AuthenticationFailure::kCredentialExpired);
  EXPECT_NE(final_step.message.find("expired at 2027-01-15T07:00:00Z"), std::string::npos)
      << final_step.message;
}

TEST_F(OAuthBearerServerTest, ATokenInsideTheLeewayHasAZeroLifetime) {
  json just_expired = claims();
  just_expired["exp"] = kNow - 10;
  OAuthBearerServer server(verifier_);
  const AuthenticationStep step = server.start(message(key().token(just_expired)));
  ASSERT_EQ(step.status, Status::kSucceeded) << step.message;
  ASSERT_TRUE(step.credential_lifetime);
  EXPECT_EQ(*step.credential_lifetime, std::chrono::nanoseconds(0));
}

TEST_F(OAuthBearerServerTest, AMissingScopeAnswersInsufficientScopeWithTheScope) {
  json narrow = claims();
  narrow["scope"] = "openid";
  OAuthBearerServer server(verifier_);
  const AuthenticationStep challenge = server.start(message(key().token(narrow)));
  ASSERT_EQ(challenge.status, Status::kContinue);
  EXPECT_EQ(text(challenge.output), R"({"scope":"tether:connect","status":"insufficient_scope"})");
  const AuthenticationStep final_step = server.step(bytes("\x01"));
  EXPECT_EQ(final_step.status, Status::kFailed);
  EXPECT_EQ(final_step.failure, AuthenticationFailure::kNotPermitted);
  EXPECT_NE(final_step.message.find("missing scope"), std::string::npos);
}

TEST_F(OAuthBearerServerTest, TokenRefusalsMapToTheirFailureKinds) {
  json wrong_audience = claims();
  wrong_audience["aud"] = json::array({"other"});
  expect_error_flow(message(key().token(wrong_audience)), "invalid_token",
                    AuthenticationFailure::kBadCredentials);
  json future = claims();
  future["nbf"] = kNow + 3600;
  expect_error_flow(message(key().token(future)), "invalid_token",
                    AuthenticationFailure::kCredentialExpired);
  const tether::testing::TestSigningKey stranger(JwsAlgorithm::kEs256, "unknown");
  const AuthenticationStep unknown = expect_error_flow(
      message(stranger.token(claims())), "invalid_token", AuthenticationFailure::kBadCredentials);
  EXPECT_NE(unknown.message.find("unknown key id \"unknown\""), std::string::npos);
}

TEST_F(OAuthBearerServerTest, AnythingButALoneSeparatorAfterTheErrorIsMalformed) {
  for (const std::string& answer : {std::string(), std::string("\x01\x01"), std::string("x")}) {
    OAuthBearerServer server(verifier_);
    json expired = claims();
    expired["exp"] = kNow - 3600;
    ASSERT_EQ(server.start(message(key().token(expired))).status, Status::kContinue);
    const AuthenticationStep final_step = server.step(bytes(answer));
    EXPECT_EQ(final_step.status, Status::kFailed);
    EXPECT_EQ(final_step.failure, AuthenticationFailure::kMalformed);
  }
}

TEST_F(OAuthBearerServerTest, AMalformedMessageFailsAtOnce) {
  for (const std::string& bad : {std::string("y,,\x01"
                                             "auth=Bearer abc\x01\x01"),
                                 std::string(), std::string("\x01")}) {
    OAuthBearerServer server(verifier_);
    const AuthenticationStep step = server.start(bytes(bad));
    EXPECT_EQ(step.status, Status::kFailed);
    EXPECT_EQ(step.failure, AuthenticationFailure::kMalformed);
  }
}

TEST_F(OAuthBearerServerTest, ClientAndServerTogether) {
  std::string token = key().token(claims());
  OAuthBearerClient client([&] { return tether::Expected<std::string, std::string>(token + "\n"); },
                           "alice");
  EXPECT_EQ(client.mechanism(), "OAUTHBEARER");
  OAuthBearerServer server(verifier_);
  const AuthenticationStep hello = client.start();
  ASSERT_EQ(hello.status, Status::kContinue) << hello.message;
  const AuthenticationStep accepted = server.start(hello.output);
  ASSERT_EQ(accepted.status, Status::kSucceeded) << accepted.message;
  EXPECT_EQ(accepted.principal, "alice");
  EXPECT_EQ(client.finish(accepted.output).status, Status::kSucceeded);
  EXPECT_FALSE(client.server_status());

  // A refused token: the client acknowledges the error and remembers its status.
  json narrow = claims();
  narrow["scope"] = "openid";
  token = key().token(narrow);
  OAuthBearerClient refused_client(
      [&] { return tether::Expected<std::string, std::string>(token); });
  OAuthBearerServer refusing_server(verifier_);
  const AuthenticationStep challenge = refusing_server.start(refused_client.start().output);
  ASSERT_EQ(challenge.status, Status::kContinue);
  const AuthenticationStep acknowledgement = refused_client.step(challenge.output);
  ASSERT_EQ(acknowledgement.status, Status::kContinue);
  EXPECT_EQ(text(acknowledgement.output), "\x01");
  EXPECT_EQ(refused_client.server_status(), std::optional<std::string>("insufficient_scope"));
  EXPECT_EQ(refused_client.server_error_message(),
            "OAUTHBEARER: the server refused the token (insufficient_scope, scope "
            "\"tether:connect\")");
  const AuthenticationStep failed = refusing_server.step(acknowledgement.output);
  EXPECT_EQ(failed.status, Status::kFailed);
  EXPECT_EQ(failed.failure, AuthenticationFailure::kNotPermitted);
  EXPECT_EQ(refused_client.finish({}).status, Status::kFailed);
}

TEST(OAuthBearerClientTest, ReportsAProviderFailureAsUnavailable) {
  OAuthBearerClient client([] {
    return tether::Expected<std::string, std::string>(
        tether::make_unexpected(std::string("token file unreadable")));
  });
  const AuthenticationStep step = client.start();
  EXPECT_EQ(step.status, Status::kFailed);
  EXPECT_EQ(step.failure, AuthenticationFailure::kUnavailable);
  EXPECT_NE(step.message.find("token file unreadable"), std::string::npos);
}

TEST(OAuthBearerClientTest, RefusesATokenItCannotSend) {
  OAuthBearerClient client(
      [] { return tether::Expected<std::string, std::string>(std::string("two words")); });
  const AuthenticationStep step = client.start();
  EXPECT_EQ(step.status, Status::kFailed);
  EXPECT_EQ(step.failure, AuthenticationFailure::kMalformed);
  EXPECT_EQ(step.message.find("two words"), std::string::npos);
}

TEST(OAuthBearerClientTest, RefusesAChallengeThatIsNoErrorAndServerData) {
  auto provider = [] { return tether::Expected<std::string, std::string>(std::string("abc")); };
  OAuthBearerClient client(provider);
  ASSERT_EQ(client.start().status, Status::kContinue);
  EXPECT_EQ(client.step(bytes("not json")).status, Status::kFailed);
  OAuthBearerClient second(provider);
  ASSERT_EQ(second.start().status, Status::kContinue);
  EXPECT_EQ(second.step(bytes(R"({"status":7})")).status, Status::kFailed);
  OAuthBearerClient third(provider);
  ASSERT_EQ(third.start().status, Status::kContinue);
  EXPECT_EQ(third.finish(bytes("surprise")).status, Status::kFailed);
  OAuthBearerClient fourth(provider);
  ASSERT_EQ(fourth.start().status, Status::kContinue);
  ASSERT_EQ(fourth.step(bytes(R"({"status":"invalid_token"})")).status, Status::kContinue);
  EXPECT_EQ(fourth.step(bytes(R"({"status":"invalid_token"})")).status, Status::kFailed);
}

}  // namespace

TEST_F(OAuthBearerServerTest, ReportsTheTokensJtiAsTheCredentialId) {
  OAuthBearerServer server(verifier_);
  json with_id = claims();
  with_id["jti"] = "token-1";
  const AuthenticationStep step = server.start(message(key().token(with_id)));
  ASSERT_EQ(step.status, Status::kSucceeded) << step.message;
  EXPECT_EQ(step.credential_id, "token-1");
  OAuthBearerServer without(verifier_);
  EXPECT_EQ(without.start(message(key().token(claims()))).credential_id, "");
  // A jti that is not a string is a malformed token.
  json numeric = claims();
  numeric["jti"] = 7;
  expect_error_flow(message(key().token(numeric)), "invalid_token",
                    AuthenticationFailure::kBadCredentials);
}

TEST_F(OAuthBearerServerTest, RefusesATokenTheDenyListNames) {
  auto deny_list = std::make_shared<tether::auth::TokenDenyList>(
      tether::auth::TokenIdSet{"token-1", "token-\x1b"});
  json denied = claims();
  denied["jti"] = "token-1";
  OAuthBearerServer server(verifier_, deny_list);
  const AuthenticationStep challenge = server.start(message(key().token(denied)));
  ASSERT_EQ(challenge.status, Status::kContinue);
  EXPECT_EQ(json::parse(text(challenge.output), nullptr, false).value("status", ""),
            "invalid_token");
  const AuthenticationStep refused = server.step(bytes("\x01"));
  EXPECT_EQ(refused.status, Status::kFailed);
  EXPECT_EQ(refused.failure, AuthenticationFailure::kBadCredentials);
  EXPECT_NE(refused.message.find("token \"token-1\" is revoked"), std::string::npos)
      << refused.message;
  // Peer text in the message is escaped.
  json hostile = claims();
  hostile["jti"] = "token-\x1b";
  OAuthBearerServer second(verifier_, deny_list);
  ASSERT_EQ(second.start(message(key().token(hostile))).status, Status::kContinue);
  const AuthenticationStep escaped = second.step(bytes("\x01"));
  EXPECT_EQ(escaped.message.find('\x1b'), std::string::npos) << escaped.message;
  // Other tokens, and tokens without a jti, pass.
  json other = claims();
  other["jti"] = "token-2";
  OAuthBearerServer third(verifier_, deny_list);
  EXPECT_EQ(third.start(message(key().token(other))).status, Status::kSucceeded);
  OAuthBearerServer fourth(verifier_, deny_list);
  EXPECT_EQ(fourth.start(message(key().token(claims()))).status, Status::kSucceeded);
}
