// Fuzzes the GNU SASL server exchanges and the users-file parser. The first byte picks a target:
// SCRAM-SHA-256-PLUS, SCRAM-SHA-256 or PLAIN with fuzzed client messages from the start; the same
// SCRAM mechanisms after a real client's client-first (so the fuzzed bytes reach the client-final
// step); EXTERNAL with or without a certificate identity; or the users file. Client messages are
// length-prefixed (two bytes). What must hold: no crash or leak, every step bounded, nothing after
// the end of an exchange, a success names a principal (and a SCRAM success is impossible without
// the password, which the fuzzer cannot learn from a fake or real verifier), and a parsed users
// file serializes to text that parses to the same text.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "auth/sasl_client.hpp"
#include "auth/sasl_server.hpp"
#include "auth/user_store.hpp"
#include "fuzz_check.hpp"
#include "fuzz_input.hpp"

namespace {

using namespace tether;
using Status = session::AuthenticationStep::Status;

struct Fixture {
  Fixture() {
    auth::UserStore store;
    const std::vector<std::byte> salt(16, std::byte{7});
    store.set("alice", *auth::make_verifier("pencil", salt, auth::kMinimumScramIterations));
    store.set("bob", *auth::make_verifier("hunter2", salt, auth::kMinimumScramIterations));
    store.set_disabled("bob", true);
    auth::SaslServerConfig config;
    config.users = std::make_shared<auth::UserDirectory>(std::move(store));
    config.mechanisms.push_back(auth::Mechanism::kExternal);
    config.fake_verifier_secret.assign(32, std::byte{42});
    server = std::make_unique<auth::SaslServerAuthenticator>(std::move(config));
    security.channel_binding.assign(32, std::byte{1});
    security.confidential = true;
  }
  std::unique_ptr<auth::SaslServerAuthenticator> server;
  session::ConnectionSecurity security;
};

Fixture& fixture() {
  static Fixture instance;
  return instance;
}

void check_step(const session::AuthenticationStep& step) {
  FUZZ_CHECK(step.output.size() <= 4096);
  if (step.status == Status::kSucceeded) FUZZ_CHECK(!step.principal.empty());
  if (step.status == Status::kFailed) FUZZ_CHECK(!step.message.empty());
}

void drive(session::ServerAuthentication& exchange, tether::fuzz::FuzzInput& input,
           session::AuthenticationStep step, bool may_succeed) {
  check_step(step);
  for (int round = 0; round < 4 && step.status == Status::kContinue && !input.empty(); ++round) {
    const std::size_t length = input.u16() % 5000;
    const auto message = input.bytes(length);
    step = exchange.step(message);
    check_step(step);
  }
  if (step.status == Status::kSucceeded) FUZZ_CHECK(may_succeed);
  if (step.status != Status::kContinue) {
    // Nothing more once the exchange is over.
    FUZZ_CHECK(exchange.step({}).status == Status::kFailed);
  }
}

void fuzz_users_file(tether::fuzz::FuzzInput& input) {
  const auto bytes = input.bytes(1u << 16);
  const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  const auto store = auth::UserStore::parse(text);
  if (!store) {
    FUZZ_CHECK(store.error().starts_with("line "));
    return;
  }
  const std::string serialized = store->serialize();
  const auto again = auth::UserStore::parse(serialized);
  FUZZ_CHECK(again);
  FUZZ_CHECK(again->serialize() == serialized);
  FUZZ_CHECK(again->size() == store->size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tether::fuzz::FuzzInput input(data, size);
  auto& state = fixture();
  const unsigned target = input.u8() % 8;
  if (target == 7) {
    fuzz_users_file(input);
    return 0;
  }
  static const char* const kMechanisms[] = {
      "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN",   "SCRAM-SHA-256-PLUS",
      "SCRAM-SHA-256",      "EXTERNAL",      "EXTERNAL"};
  session::ConnectionSecurity security = state.security;
  if (target == 5) security.peer_certificate_identity = "carol.example";
  if (target == 6) security.peer_certificate_identity.clear();
  auto exchange = state.server->start(kMechanisms[target], security);
  if (exchange == nullptr) {
    FUZZ_CHECK(target == 6);  // EXTERNAL without a certificate is not offered
    return 0;
  }
  if (target == 3 || target == 4) {
    // A real client's first message, then fuzzed messages.
    auth::SaslClientConfig config;
    config.credential =
        std::make_shared<auth::ScramCredential>(input.u8() % 2 == 0 ? "alice" : "mallory", "x");
    auto client = auth::start_sasl_client(
        target == 3 ? auth::Mechanism::kScramSha256Plus : auth::Mechanism::kScramSha256, config,
        security);
    FUZZ_CHECK(client != nullptr);
    const auto first = client->start();
    FUZZ_CHECK(first.status == Status::kContinue);
    const auto step = exchange->start(std::span<const std::byte>(first.output));
    FUZZ_CHECK(step.status == Status::kContinue);
    drive(*exchange, input, step, /*may_succeed=*/false);
    return 0;
  }
  // The initial response: absent (first byte odd) or the next length-prefixed message.
  const bool absent = input.u8() % 2 == 1;
  session::AuthenticationStep step;
  if (absent) {
    step = exchange->start(std::nullopt);
  } else {
    const std::size_t length = input.u16() % 5000;
    step = exchange->start(input.bytes(length));
  }
  // PLAIN with alice's password and EXTERNAL may succeed; SCRAM cannot without the password.
  drive(*exchange, input, step, target == 2 || target == 5);
  return 0;
}
