// Authentication cost per mechanism on one core: JWS verification per algorithm (a whole
// TokenVerifier::verify, claims included), the OAUTHBEARER server exchange around it, and parsing a
// JWKS document. Run by hand: build/gcc/bench/auth_benchmark --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "auth/jwks.hpp"
#include "auth/jwt.hpp"
#include "auth/oauthbearer.hpp"
#include "tests/support/jose_keys.hpp"

namespace {

using tether::auth::JsonWebKeySet;
using tether::auth::JwsAlgorithm;
using tether::auth::TokenVerifier;
using tether::testing::TestSigningKey;

constexpr std::int64_t kNow = 1'800'000'000;

struct Fixture {
  TestSigningKey rsa{JwsAlgorithm::kRs256, "rsa"};
  TestSigningKey pss{rsa, JwsAlgorithm::kPs256, "pss"};
  TestSigningKey ec{JwsAlgorithm::kEs256, "ec"};
  TestSigningKey ed{JwsAlgorithm::kEdDsa, "ed"};
  TestSigningKey hmac{JwsAlgorithm::kHs256, "hmac"};
  std::string document = tether::testing::jwks_document({&rsa, &pss, &ec, &ed, &hmac});
  std::shared_ptr<const TokenVerifier> verifier;

  Fixture() {
    auto set = JsonWebKeySet::parse(document);
    tether::auth::TokenPolicy policy;
    policy.issuer = "https://issuer.example";
    policy.audience = "tether";
    policy.required_scope = "tether:connect";
    auto made = TokenVerifier::create(
        TokenVerifier::fixed_keys(std::make_shared<const JsonWebKeySet>(std::move(*set))), policy,
        [] { return std::chrono::system_clock::time_point(std::chrono::seconds(kNow)); });
    verifier = std::make_shared<const TokenVerifier>(std::move(*made));
  }

  const TestSigningKey& key(JwsAlgorithm algorithm) const {
    switch (algorithm) {
      case JwsAlgorithm::kRs256:
        return rsa;
      case JwsAlgorithm::kPs256:
        return pss;
      case JwsAlgorithm::kEs256:
        return ec;
      case JwsAlgorithm::kEdDsa:
        return ed;
      case JwsAlgorithm::kHs256:
        break;
    }
    return hmac;
  }

  static nlohmann::json claims() {
    return {{"iss", "https://issuer.example"},
            {"aud", "tether"},
            {"sub", "alice"},
            {"scope", "openid tether:connect"},
            {"exp", kNow + 600}};
  }
};

const Fixture& fixture() {
  static const Fixture made;
  return made;
}

void verify(benchmark::State& state) {
  const auto algorithm = static_cast<JwsAlgorithm>(state.range(0));
  const std::string token = fixture().key(algorithm).token(Fixture::claims());
  state.SetLabel(std::string(tether::auth::name(algorithm)));
  for (auto _ : state) {
    auto result = fixture().verifier->verify(token);
    if (!result) state.SkipWithError(result.error().message.c_str());
    benchmark::DoNotOptimize(result);
  }
}
BENCHMARK(verify)->DenseRange(0, 4)->Unit(benchmark::kMicrosecond);

void oauthbearer_server_exchange(benchmark::State& state) {
  const auto algorithm = static_cast<JwsAlgorithm>(state.range(0));
  const auto message = *tether::auth::build_oauthbearer_client_message(
      {"alice", fixture().key(algorithm).token(Fixture::claims()), "server.example", "443"});
  state.SetLabel(std::string(tether::auth::name(algorithm)));
  for (auto _ : state) {
    tether::auth::OAuthBearerServer server(fixture().verifier);
    auto step = server.start(message);
    if (step.status != tether::session::AuthenticationStep::Status::kSucceeded)
      state.SkipWithError(step.message.c_str());
    benchmark::DoNotOptimize(step);
  }
}
BENCHMARK(oauthbearer_server_exchange)->Arg(0)->Arg(2)->Arg(3)->Unit(benchmark::kMicrosecond);

void refuse_unknown_key(benchmark::State& state) {
  const TestSigningKey stranger(JwsAlgorithm::kEs256, "stranger");
  const std::string token = stranger.token(Fixture::claims());
  for (auto _ : state) benchmark::DoNotOptimize(fixture().verifier->verify(token));
}
BENCHMARK(refuse_unknown_key)->Unit(benchmark::kMicrosecond);

void parse_jwks(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(JsonWebKeySet::parse(fixture().document));
}
BENCHMARK(parse_jwks)->Unit(benchmark::kMicrosecond);

}  // namespace
