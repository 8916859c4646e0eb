// Fuzzes the JWS / JWKS / OAUTHBEARER parsers. The first input byte picks the target:
//   0  a raw token for the TokenVerifier (header, claims and signature all hostile);
//   1  a header and claims (split at the first NUL) that the harness signs with the key set's
//      HS256 secret, so that the claim checks run behind a valid signature;
//   2  a JWKS document;
//   3  an OAUTHBEARER client message (then the rest, split at the first NUL, as the next client
//      message) for the server exchange, and the message framing's parse/build round trip;
//   4  a server challenge for the client exchange.
// Never a crash; every refusal has a printable message that does not quote the token; a parsed
// client message re-builds to a message that parses to the same fields.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "auth/base64url.hpp"
#include "auth/jwks.hpp"
#include "auth/jwt.hpp"
#include "auth/oauthbearer.hpp"
#include "crypto/primitives.hpp"
#include "fuzz_check.hpp"
#include "tests/support/jose_keys.hpp"

namespace {

using tether::auth::JsonWebKeySet;
using tether::auth::JwsAlgorithm;
using tether::auth::TokenVerifier;
using tether::session::AuthenticationStep;

constexpr std::int64_t kNow = 1'800'000'000;
constexpr std::string_view kSecret = "fuzzing-secret-of-thirty-two-by!";  // 32 bytes

bool printable(std::string_view text) {
  for (const char character : text) {
    const auto byte = static_cast<unsigned char>(character);
    if (byte < 0x20 || byte > 0x7e) return false;
  }
  return true;
}

std::shared_ptr<const TokenVerifier> make_verifier() {
  static const tether::testing::TestSigningKey rsa(JwsAlgorithm::kRs256, "r");
  static const tether::testing::TestSigningKey ec(JwsAlgorithm::kEs256, "e");
  static const tether::testing::TestSigningKey ed(JwsAlgorithm::kEdDsa, "d");
  nlohmann::json document = {{"keys", nlohmann::json::array()}};
  for (const auto* key : {&rsa, &ec, &ed}) document["keys"].push_back(key->jwk());
  document["keys"].push_back({{"kty", "oct"},
                              {"kid", "h"},
                              {"alg", "HS256"},
                              {"k", tether::auth::base64url_encode(kSecret)}});
  auto set = JsonWebKeySet::parse(document.dump());
  FUZZ_CHECK(set.has_value());
  tether::auth::TokenPolicy policy;
  policy.issuer = "iss";
  policy.audience = "aud";
  policy.required_scope = "s";
  auto verifier = TokenVerifier::create(
      TokenVerifier::fixed_keys(std::make_shared<const JsonWebKeySet>(std::move(*set))), policy,
      [] { return std::chrono::system_clock::time_point(std::chrono::seconds(kNow)); });
  FUZZ_CHECK(verifier.has_value());
  return std::make_shared<const TokenVerifier>(std::move(*verifier));
}

const std::shared_ptr<const TokenVerifier>& verifier() {
  static const auto made = make_verifier();
  return made;
}

void verify(std::string_view token) {
  const auto result = verifier()->verify(token);
  if (result) {
    FUZZ_CHECK(!result->principal.empty());
    FUZZ_CHECK(result->lifetime >= std::chrono::nanoseconds(0));
    FUZZ_CHECK(result->expiry + std::chrono::seconds(60) >=
               std::chrono::system_clock::time_point(std::chrono::seconds(kNow)));
    return;
  }
  FUZZ_CHECK(!result.error().message.empty());
  FUZZ_CHECK(printable(result.error().message));
  if (token.size() >= 80) FUZZ_CHECK(result.error().message.find(token) == std::string::npos);
}

void check_step(const AuthenticationStep& step) {
  if (step.status == AuthenticationStep::Status::kSucceeded) {
    FUZZ_CHECK(!step.principal.empty());
    FUZZ_CHECK(step.credential_lifetime.has_value());
    FUZZ_CHECK(*step.credential_lifetime >= std::chrono::nanoseconds(0));
  } else if (step.status == AuthenticationStep::Status::kFailed) {
    FUZZ_CHECK(!step.message.empty());
    FUZZ_CHECK(printable(step.message));
  }
}

void client_message(std::span<const std::byte> input) {
  const std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
  const std::size_t split = text.find('\0');
  const std::string_view first = text.substr(0, split);
  const auto first_bytes = std::as_bytes(std::span<const char>(first.data(), first.size()));

  auto parsed = tether::auth::parse_oauthbearer_client_message(first_bytes);
  if (parsed) {
    auto rebuilt = tether::auth::build_oauthbearer_client_message(*parsed);
    FUZZ_CHECK(rebuilt.has_value());
    auto reparsed = tether::auth::parse_oauthbearer_client_message(*rebuilt);
    FUZZ_CHECK(reparsed.has_value());
    FUZZ_CHECK(reparsed->authorization_identity == parsed->authorization_identity);
    FUZZ_CHECK(reparsed->token == parsed->token);
    FUZZ_CHECK(reparsed->host == parsed->host);
    FUZZ_CHECK(reparsed->port == parsed->port);
  } else {
    FUZZ_CHECK(printable(parsed.error()));
  }

  tether::auth::OAuthBearerServer server(verifier());
  const AuthenticationStep step = server.start(first_bytes);
  check_step(step);
  if (step.status == AuthenticationStep::Status::kContinue) {
    const std::string_view rest =
        split == std::string_view::npos ? std::string_view() : text.substr(split + 1);
    const AuthenticationStep next =
        server.step(std::as_bytes(std::span<const char>(rest.data(), rest.size())));
    check_step(next);
    FUZZ_CHECK(next.status != AuthenticationStep::Status::kContinue);
  }
}

void server_challenge(std::span<const std::byte> input) {
  tether::auth::OAuthBearerClient client(
      [] { return tether::Expected<std::string, std::string>(std::string("token")); });
  FUZZ_CHECK(client.start().status == AuthenticationStep::Status::kContinue);
  const AuthenticationStep step = client.step(input);
  if (step.status == AuthenticationStep::Status::kContinue) {
    FUZZ_CHECK(step.output.size() == 1 && step.output[0] == std::byte{0x01});
    FUZZ_CHECK(client.server_status().has_value());
    FUZZ_CHECK(printable(client.server_error_message()));
  } else {
    FUZZ_CHECK(step.status == AuthenticationStep::Status::kFailed);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  (void)verifier();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto input = std::as_bytes(std::span<const std::uint8_t>(data + 1, size - 1));
  const std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
  switch (data[0] % 5) {
    case 0:
      verify(text);
      break;
    case 1: {
      const std::size_t split = text.find('\0');
      const std::string_view header = text.substr(0, split);
      const std::string_view claims =
          split == std::string_view::npos ? std::string_view() : text.substr(split + 1);
      const std::string signing_input =
          tether::auth::base64url_encode(header) + "." + tether::auth::base64url_encode(claims);
      const auto mac = tether::crypto::hmac_sha256(tether::crypto::label(kSecret),
                                                   {tether::crypto::label(signing_input)});
      verify(signing_input + "." + tether::auth::base64url_encode(mac));
      break;
    }
    case 2: {
      auto set = JsonWebKeySet::parse(text);
      if (set) {
        FUZZ_CHECK(set->keys().size() <= tether::auth::JwksLimits{}.max_keys);
        for (const auto& key : set->keys())
          FUZZ_CHECK((key.public_key() == nullptr) == (key.algorithm() == JwsAlgorithm::kHs256));
      } else {
        FUZZ_CHECK(!set.error().empty());
        FUZZ_CHECK(printable(set.error()));
      }
      break;
    }
    case 3:
      client_message(input);
      break;
    case 4:
      server_challenge(input);
      break;
  }
  return 0;
}
