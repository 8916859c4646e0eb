// Test doubles for in-band authentication in the core: a two-round mechanism (name, nonce
// challenge, secret + nonce, a server proof the client checks) and a one-round one, on both sides,
// with counters the tests inspect, and a Fixture that pairs them on a Loopback.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "session/authenticator.hpp"
#include "tests/unit/loopback.hpp"

namespace tether::test {

using session::AuthenticationFailure;
using session::AuthenticationStep;
using session::ConnectionSecurity;
using Status = session::AuthenticationStep::Status;

inline std::string text_of(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// A two-round test mechanism: the client names itself in its initial response; the server
// challenges with a nonce; the client answers secret + nonce; the server's final message is
// "proof:" + nonce, which the client checks. "ONE-ROUND" instead takes "name:secret" at once.
struct ServerCounters {
  int exchanges = 0;
  std::optional<Duration> lifetime;
  std::string principal_override;  // a different principal than the client named
  std::vector<Bytes> bindings;     // the channel binding each exchange was given, in order
  std::vector<std::string> scopes;
  std::string final_override;      // a wrong server final, to test the client's check
  std::size_t challenge_size = 0;  // pad the challenge to this size
};

class TestServerExchange : public session::ServerAuthentication {
 public:
  TestServerExchange(std::string mechanism, ServerCounters& counters)
      : mechanism_(std::move(mechanism)), counters_(counters) {}

  AuthenticationStep start(std::optional<std::span<const std::byte>> initial) override {
    ++counters_.exchanges;
    if (!initial) return AuthenticationStep::fail(AuthenticationFailure::kMalformed, "no name");
    const std::string text = text_of(*initial);
    if (mechanism_ == "ONE-ROUND") {
      const auto colon = text.find(':');
      AuthenticationStep step =
          text.substr(colon + 1) == "secret" && colon != std::string::npos
              ? succeed(text.substr(0, colon), {})
              : AuthenticationStep::fail(AuthenticationFailure::kBadCredentials, "wrong secret");
      step.claimed_identity = text.substr(0, colon);
      return step;
    }
    name_ = text;
    std::string challenge = "nonce-" + std::to_string(counters_.exchanges);
    nonce_ = challenge;
    if (counters_.challenge_size > challenge.size())
      challenge.resize(counters_.challenge_size, 'x');
    AuthenticationStep step = AuthenticationStep::proceed(to_bytes(challenge));
    step.claimed_identity = name_;
    return step;
  }

  AuthenticationStep step(std::span<const std::byte> input) override {
    if (text_of(input) != "secret+" + nonce_) {
      return AuthenticationStep::fail(AuthenticationFailure::kBadCredentials, "wrong secret");
    }
    const std::string final_message =
        counters_.final_override.empty() ? "proof:" + nonce_ : counters_.final_override;
    return succeed(name_, to_bytes(final_message));
  }

 private:
  AuthenticationStep succeed(std::string principal, Bytes output) {
    AuthenticationStep step;
    step.status = Status::kSucceeded;
    step.principal = std::move(principal);
    step.output = std::move(output);
    step.credential_lifetime = counters_.lifetime;
    step.scopes = counters_.scopes;
    if (!counters_.principal_override.empty()) step.principal = counters_.principal_override;
    return step;
  }

  std::string mechanism_;
  ServerCounters& counters_;
  std::string name_;
  std::string nonce_;
};

class TestServerAuthenticator : public session::ServerAuthenticator {
 public:
  ServerCounters counters;
  std::vector<std::string> mechanisms() const override { return {"TWO-ROUND", "ONE-ROUND"}; }
  std::unique_ptr<session::ServerAuthentication> start(
      std::string_view mechanism, const ConnectionSecurity& security) override {
    if (mechanism != "TWO-ROUND" && mechanism != "ONE-ROUND") return nullptr;
    counters.bindings.push_back(security.channel_binding);
    return std::make_unique<TestServerExchange>(std::string(mechanism), counters);
  }
};

struct ClientCredential {
  std::string mechanism = "TWO-ROUND";
  std::string name = "alice";
  std::string secret = "secret";
  bool unavailable = false;
  int exchanges = 0;
  std::vector<Bytes> bindings;  // the channel binding each exchange was given, in order
};

class TestClientExchange : public session::ClientAuthentication {
 public:
  explicit TestClientExchange(ClientCredential& credential) : credential_(credential) {}
  std::string mechanism() const override { return credential_.mechanism; }
  AuthenticationStep start() override {
    ++credential_.exchanges;
    if (credential_.unavailable) {
      return AuthenticationStep::fail(AuthenticationFailure::kUnavailable, "token file unreadable");
    }
    if (credential_.mechanism == "ONE-ROUND") {
      return AuthenticationStep::proceed(to_bytes(credential_.name + ":" + credential_.secret));
    }
    return AuthenticationStep::proceed(to_bytes(credential_.name));
  }
  AuthenticationStep step(std::span<const std::byte> challenge) override {
    nonce_ = text_of(challenge);
    return AuthenticationStep::proceed(to_bytes(credential_.secret + "+" + nonce_));
  }
  AuthenticationStep finish(std::span<const std::byte> server_final) override {
    if (credential_.mechanism == "TWO-ROUND" && text_of(server_final) != "proof:" + nonce_) {
      return AuthenticationStep::fail(AuthenticationFailure::kBadCredentials,
                                      "server signature mismatch");
    }
    AuthenticationStep step;
    step.status = Status::kSucceeded;
    return step;
  }

 private:
  ClientCredential& credential_;
  std::string nonce_;
};

class TestClientAuthenticator : public session::ClientAuthenticator {
 public:
  ClientCredential credential;
  std::unique_ptr<session::ClientAuthentication> start(
      const ConnectionSecurity& security) override {
    credential.bindings.push_back(security.channel_binding);
    return std::make_unique<TestClientExchange>(credential);
  }
};

struct Fixture {
  std::shared_ptr<TestClientAuthenticator> client_auth =
      std::make_shared<TestClientAuthenticator>();
  std::shared_ptr<TestServerAuthenticator> server_auth =
      std::make_shared<TestServerAuthenticator>();
  std::unique_ptr<Loopback> loop;

  explicit Fixture(
      bool client_authenticates = true, bool server_authenticates = true,
      const std::function<void(SessionConfig& client, SessionConfig& server)>& configure = {}) {
    SessionConfig client_config = test_config();
    SessionConfig server_config = test_config();
    if (client_authenticates) client_config.authenticator = client_auth;
    if (configure) configure(client_config, server_config);
    loop = std::make_unique<Loopback>(client_config, server_config);
    if (server_authenticates) loop->server.set_authenticator(server_auth);
  }

  std::optional<session::events::Closed> client_closed() const {
    auto closed = events_of<session::events::Closed>(loop->client_events);
    if (closed.empty()) return std::nullopt;
    return closed.back();
  }
};

}  // namespace tether::test
