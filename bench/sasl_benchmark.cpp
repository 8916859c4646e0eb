// The cost of the GNU SASL mechanisms: the server's CPU per SCRAM-SHA-256-PLUS exchange (only the
// server's steps are timed; the client reuses its salted password), a whole exchange with the
// client's PBKDF2 kept, the client's PBKDF2 at 4096 iterations, and a PLAIN check (PBKDF2 on the
// server). Run by hand: build/gcc/bench/sasl_benchmark --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <vector>

#include "auth/sasl_client.hpp"
#include "auth/sasl_server.hpp"
#include "auth/user_store.hpp"

namespace {

using namespace tether;
using Status = session::AuthenticationStep::Status;

struct Setup {
  Setup() {
    auth::UserStore store;
    const std::vector<std::byte> salt(16, std::byte{7});
    store.set("alice", *auth::make_verifier("pencil", salt, 4096));
    auth::SaslServerConfig config;
    config.users = std::make_shared<auth::UserDirectory>(std::move(store));
    server = std::make_unique<auth::SaslServerAuthenticator>(std::move(config));
    security.channel_binding.assign(32, std::byte{1});
    security.confidential = true;
    client_config.credential = std::make_shared<auth::ScramCredential>("alice", "pencil");
  }
  std::unique_ptr<auth::SaslServerAuthenticator> server;
  session::ConnectionSecurity security;
  auth::SaslClientConfig client_config;
};

// One SCRAM-SHA-256-PLUS exchange; returns the seconds spent in the server's calls.
double scram_exchange(Setup& setup) {
  using Clock = std::chrono::steady_clock;
  auto client = auth::start_sasl_client(auth::Mechanism::kScramSha256Plus, setup.client_config,
                                        setup.security);
  const auto first = client->start();
  auto begin = Clock::now();
  auto exchange = setup.server->start("SCRAM-SHA-256-PLUS", setup.security);
  const auto challenge = exchange->start(std::span<const std::byte>(first.output));
  auto server_time = Clock::now() - begin;
  const auto answer = client->step(challenge.output);
  begin = Clock::now();
  const auto done = exchange->step(answer.output);
  exchange.reset();
  server_time += Clock::now() - begin;
  if (done.status != Status::kSucceeded ||
      client->finish(done.output).status != Status::kSucceeded) {
    std::abort();
  }
  return std::chrono::duration<double>(server_time).count();
}

void BM_ScramServerPerExchange(benchmark::State& state) {
  Setup setup;
  scram_exchange(setup);  // the client keeps its salted password from here on
  for (auto _ : state) state.SetIterationTime(scram_exchange(setup));
}
BENCHMARK(BM_ScramServerPerExchange)->UseManualTime()->Unit(benchmark::kMicrosecond);

void BM_ScramWholeExchangeSaltedPasswordKept(benchmark::State& state) {
  Setup setup;
  scram_exchange(setup);
  for (auto _ : state) benchmark::DoNotOptimize(scram_exchange(setup));
}
BENCHMARK(BM_ScramWholeExchangeSaltedPasswordKept)->Unit(benchmark::kMicrosecond);

void BM_ClientPbkdf2(benchmark::State& state) {
  const std::vector<std::byte> salt(16, std::byte{7});
  const auto iterations = static_cast<std::uint32_t>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(auth::make_verifier("pencil", salt, iterations));
}
BENCHMARK(BM_ClientPbkdf2)->Arg(4096)->Unit(benchmark::kMillisecond);

void BM_PlainServerCheck(benchmark::State& state) {
  Setup setup;
  const std::string message("\0alice\0pencil", 13);
  const auto* bytes = reinterpret_cast<const std::byte*>(message.data());
  for (auto _ : state) {
    auto exchange = setup.server->start("PLAIN", setup.security);
    const auto step = exchange->start(std::span<const std::byte>(bytes, message.size()));
    if (step.status != Status::kSucceeded) std::abort();
  }
}
BENCHMARK(BM_PlainServerCheck)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
