// Tests of deferred verification in the core (ServerEndpoint::set_deferred_work): an exchange that
// hands its costly work (PLAIN's PBKDF2) to the runtime leaves its connection pending until the
// runtime reports the work done, in virtual time; the handshake timeout still applies; a connection
// that goes away drops its exchange and its queued work; a full pool refuses the attempt as
// transient; and every refused authentication reaches the refusal observer once. The mechanism is a
// test double that defers only when allowed to.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "session/authenticator.hpp"
#include "tests/unit/authentication_doubles.hpp"
#include "tests/unit/loopback.hpp"

namespace tether::test {
namespace {

using session::DeferredWork;
using session::ServerEndpoint;

// Checks "name:secret" when run; counts its runs.
class SecretCheck final : public DeferredWork {
 public:
  explicit SecretCheck(std::string secret) : secret_(std::move(secret)) {}
  void run() override {
    ++runs;
    matched = secret_ == "secret";
  }
  int runs = 0;
  bool matched = false;

 private:
  std::string secret_;
};

// "ONE-ROUND" ("name:secret" in the Hello) whose check is deferred once allow_deferral() was
// called.
class DeferringExchange final : public session::ServerAuthentication {
 public:
  explicit DeferringExchange(int& deferrals_allowed) : deferrals_allowed_(deferrals_allowed) {}
  void allow_deferral() override {
    allowed_ = true;
    ++deferrals_allowed_;
  }
  AuthenticationStep start(std::optional<std::span<const std::byte>> initial) override {
    const std::string text = initial ? text_of(*initial) : std::string{};
    const auto colon = text.find(':');
    name_ = text.substr(0, colon);
    work_ = std::make_shared<SecretCheck>(colon == std::string::npos ? "" : text.substr(colon + 1));
    if (!allowed_) {
      work_->run();
      return verdict();
    }
    AuthenticationStep step = AuthenticationStep::proceed({});
    step.deferred = work_;
    step.claimed_identity = name_;
    return step;
  }
  AuthenticationStep step(std::span<const std::byte>) override {
    return AuthenticationStep::fail(AuthenticationFailure::kMalformed, "one round only");
  }
  AuthenticationStep resume() override { return verdict(); }

 private:
  AuthenticationStep verdict() {
    AuthenticationStep step;
    if (work_->runs == 1 && work_->matched) {
      step.status = Status::kSucceeded;
      step.principal = name_;
    } else {
      step = AuthenticationStep::fail(AuthenticationFailure::kBadCredentials, "wrong secret");
    }
    step.claimed_identity = name_;
    return step;
  }
  int& deferrals_allowed_;
  bool allowed_ = false;
  std::string name_;
  std::shared_ptr<SecretCheck> work_;
};

class DeferringAuthenticator final : public session::ServerAuthenticator {
 public:
  int deferrals_allowed = 0;
  std::vector<std::string> mechanisms() const override { return {"ONE-ROUND"}; }
  std::unique_ptr<session::ServerAuthentication> start(std::string_view mechanism,
                                                       const ConnectionSecurity&) override {
    if (mechanism != "ONE-ROUND") return nullptr;
    return std::make_unique<DeferringExchange>(deferrals_allowed);
  }
};

Bytes hello_with(const std::string& initial) {
  wire::Hello hello;
  hello.heartbeat_interval_ms = 1000;
  hello.missing_heartbeats_allowed = 3;
  hello.mechanism = "ONE-ROUND";
  hello.initial_response = to_bytes(initial);
  return encode(hello);
}

struct Server {
  SplitMix64 random{21};
  Loopback loop;
  std::shared_ptr<DeferringAuthenticator> auth = std::make_shared<DeferringAuthenticator>();
  Bytes keying = random_bytes(random, 32);
  std::vector<ServerEndpoint::AuthenticationRefusal> refusals;
  std::vector<std::string> refusal_messages;  // the views live for the call only: copies
  std::vector<std::string> refusal_sources;

  explicit Server(bool deferred = true) {
    loop.server.set_authenticator(auth);
    loop.server.set_deferred_work(deferred);
    loop.server.set_refusal_observer([this](const ServerEndpoint::AuthenticationRefusal& refusal) {
      refusals.push_back(refusal);
      refusal_messages.emplace_back(std::string(refusal.claimed_identity) + "|" +
                                    std::string(refusal.mechanism) + "|" +
                                    std::string(refusal.message));
      refusal_sources.emplace_back(refusal.source);
    });
  }
  // Accepts `id` and sends its Hello.
  void hello(PathId id, const std::string& initial) {
    loop.server.accept(id, keying, loop.now, "192.0.2.1");
    loop.server.receive(id, hello_with(initial), loop.now);
  }
  std::vector<ServerEndpoint::DeferredAuthentication> take() {
    std::vector<ServerEndpoint::DeferredAuthentication> out;
    loop.server.take_deferred_work(out);
    return out;
  }
  std::vector<wire::Frame> reply(PathId id) {
    Bytes bytes;
    loop.server.take_outgoing(id, bytes, 1 << 20, loop.now);
    return decode_all(bytes);
  }
};

TEST(DeferredAuthentication, TheConnectionWaitsForTheWorkAndThenGetsItsVerdict) {
  Server server;
  server.hello(7, "alice:secret");
  EXPECT_EQ(server.auth->deferrals_allowed, 1);
  // Nothing is sent, the connection stays pending, and the work is handed over once.
  EXPECT_TRUE(server.reply(7).empty());
  EXPECT_TRUE(server.loop.server.is_pending(7));
  auto work = server.take();
  ASSERT_EQ(work.size(), 1u);
  EXPECT_EQ(work[0].connection, 7u);
  EXPECT_TRUE(server.take().empty());
  EXPECT_EQ(server.loop.server.stats().authentications_deferred, 1u);
  // Virtual time passes (less than the handshake timeout): still waiting, nothing decided.
  server.loop.now += test_config().handshake_timeout / 2;
  server.loop.server.on_timeout(server.loop.now);
  EXPECT_TRUE(server.reply(7).empty());
  EXPECT_EQ(server.loop.server.session_count(), 0u);
  // The runtime runs the work (on its pool) and reports it: the session is created.
  auto job = work[0].work.lock();
  ASSERT_NE(job, nullptr);
  job->run();
  server.loop.server.complete_deferred(7, *job, server.loop.now);
  auto frames = server.reply(7);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<wire::Welcome>(frames[0]));
  EXPECT_FALSE(server.loop.server.is_pending(7));
  EXPECT_EQ(server.loop.server.session_count(), 1u);
  EXPECT_EQ(server.loop.server.stats().authentications_succeeded, 1u);
  EXPECT_TRUE(server.refusals.empty());
  // A second report of the same work changes nothing.
  server.loop.server.complete_deferred(7, *job, server.loop.now);
  EXPECT_EQ(server.loop.server.session_count(), 1u);
}

TEST(DeferredAuthentication, AWrongSecretIsRefusedOnceTheWorkReports) {
  Server server;
  server.hello(7, "mallory:guess");
  auto work = server.take();
  ASSERT_EQ(work.size(), 1u);
  auto job = work[0].work.lock();
  job->run();
  server.loop.server.complete_deferred(7, *job, server.loop.now);
  auto frames = server.reply(7);
  ASSERT_EQ(frames.size(), 1u);
  const auto& refuse = std::get<wire::Refuse>(frames[0]);
  EXPECT_EQ(refuse.reason, wire::Reason::kAuthFailed);
  EXPECT_FALSE(refuse.transient);
  EXPECT_EQ(refuse.message, "ONE-ROUND: wrong secret");
  ASSERT_EQ(server.refusals.size(), 1u);
  EXPECT_EQ(server.refusal_messages[0], "mallory|ONE-ROUND|ONE-ROUND: wrong secret");
  EXPECT_EQ(server.refusals[0].reason, wire::Reason::kAuthFailed);
}

TEST(DeferredAuthentication, TheHandshakeTimeoutStillAppliesAndDropsTheQueuedWork) {
  Server server;
  server.hello(7, "alice:secret");
  auto work = server.take();
  ASSERT_EQ(work.size(), 1u);
  server.loop.now += test_config().handshake_timeout;
  server.loop.server.on_timeout(server.loop.now);
  auto frames = server.reply(7);
  ASSERT_EQ(frames.size(), 1u);
  const auto& refuse = std::get<wire::Refuse>(frames[0]);
  EXPECT_EQ(refuse.reason, wire::Reason::kAuthFailed);
  EXPECT_TRUE(refuse.transient);
  EXPECT_NE(refuse.message.find("did not finish"), std::string::npos) << refuse.message;
  // The exchange is gone: the pool's weak pointer has expired, so a queued job is skipped unrun.
  EXPECT_TRUE(work[0].work.expired());
  ASSERT_EQ(server.refusals.size(), 1u);
}

TEST(DeferredAuthentication, AConnectionThatGoesAwayCostsNoMoreThanItsWork) {
  Server server;
  server.hello(7, "alice:secret");
  // Closed before the runtime even took the work: nothing is handed over.
  server.loop.server.on_connection_closed(7, server.loop.now);
  EXPECT_TRUE(server.take().empty());
  // Closed while the work waits in the runtime's queue: the weak pointer expires.
  server.hello(8, "alice:secret");
  auto work = server.take();
  ASSERT_EQ(work.size(), 1u);
  server.loop.server.on_connection_closed(8, server.loop.now);
  EXPECT_TRUE(work[0].work.expired());
  // Closed while the work runs (the job holds it): the late report is ignored.
  server.hello(9, "alice:secret");
  work = server.take();
  ASSERT_EQ(work.size(), 1u);
  auto job = work[0].work.lock();
  server.loop.server.on_connection_closed(9, server.loop.now);
  job->run();
  server.loop.server.complete_deferred(9, *job, server.loop.now);
  EXPECT_EQ(server.loop.server.session_count(), 0u);
  EXPECT_TRUE(server.reply(9).empty());
  EXPECT_FALSE(server.loop.server.next_deadline().has_value());
}

TEST(DeferredAuthentication, AFullPoolRefusesTheAttemptAsTransient) {
  Server server;
  server.hello(7, "alice:secret");
  auto work = server.take();
  ASSERT_EQ(work.size(), 1u);
  server.loop.server.refuse_deferred(7, *work[0].work.lock());
  auto frames = server.reply(7);
  ASSERT_EQ(frames.size(), 1u);
  const auto& refuse = std::get<wire::Refuse>(frames[0]);
  EXPECT_EQ(refuse.reason, wire::Reason::kLackOfResources);
  EXPECT_TRUE(refuse.transient);
  EXPECT_NE(refuse.message.find("busy"), std::string::npos) << refuse.message;
  EXPECT_TRUE(work[0].work.expired());
  EXPECT_EQ(server.loop.server.stats().authentications_refused_busy, 1u);
  ASSERT_EQ(server.refusals.size(), 1u);
  EXPECT_TRUE(server.refusals[0].transient);
}

TEST(DeferredAuthentication, AFrameWhileTheWorkRunsIsAProtocolError) {
  Server server;
  server.hello(7, "alice:secret");
  server.loop.server.receive(7, encode(wire::Ping{1}), server.loop.now);
  auto frames = server.reply(7);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<wire::Refuse>(frames[0]).reason, wire::Reason::kProtocolError);
  EXPECT_TRUE(server.take().empty());  // its work expired with the exchange
}

TEST(DeferredAuthentication, AReportForOtherWorkIsIgnored) {
  Server server;
  server.hello(7, "alice:secret");
  ASSERT_EQ(server.take().size(), 1u);
  SecretCheck stranger("secret");
  stranger.run();
  server.loop.server.complete_deferred(7, stranger, server.loop.now);
  server.loop.server.refuse_deferred(7, stranger);
  EXPECT_TRUE(server.reply(7).empty());
  EXPECT_TRUE(server.loop.server.is_pending(7));
}

TEST(DeferredAuthentication, WithoutDeferredWorkTheExchangeIsNeverAllowedToDefer) {
  Server server(/*deferred=*/false);
  server.hello(7, "alice:secret");
  EXPECT_EQ(server.auth->deferrals_allowed, 0);
  auto frames = server.reply(7);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<wire::Welcome>(frames[0]));
  EXPECT_TRUE(server.take().empty());
}

TEST(DeferredAuthentication, AClientEstablishesThroughADeferredExchange) {
  // The whole handshake over the loopback: the client waits (no timer fires on it) until the
  // server's work is reported, then its session opens as with any one-round mechanism.
  SessionConfig client_config = test_config();
  auto client_auth = std::make_shared<TestClientAuthenticator>();
  client_auth->credential.mechanism = "ONE-ROUND";
  client_config.authenticator = client_auth;
  Loopback loop(client_config, test_config());
  auto auth = std::make_shared<DeferringAuthenticator>();
  loop.server.set_authenticator(auth);
  loop.server.set_deferred_work(true);
  loop.process_events();
  loop.pump();
  EXPECT_EQ(loop.client.phase(), session::Phase::kConnecting);
  std::vector<ServerEndpoint::DeferredAuthentication> work;
  loop.server.take_deferred_work(work);
  ASSERT_EQ(work.size(), 1u);
  loop.advance(seconds(1));
  EXPECT_TRUE(events_of<session::events::Established>(loop.client_events).empty());
  auto job = work[0].work.lock();
  job->run();
  loop.server.complete_deferred(work[0].connection, *job, loop.now);
  loop.pump();
  EXPECT_EQ(loop.client.phase(), session::Phase::kOpen);
  EXPECT_EQ(loop.client.peer().principal, "alice");
  ASSERT_NE(loop.server_session(), nullptr);
  EXPECT_EQ(loop.server_session()->peer().mechanism, "ONE-ROUND");
}

TEST(DeferredAuthentication, EveryRefusedAttemptIsReportedOnceAndSuccessesAreNot) {
  Server server(/*deferred=*/false);
  server.hello(7, "alice:secret");
  EXPECT_TRUE(server.refusals.empty());
  server.hello(8, "bob:guess");
  // A mechanism not offered, and a Hello without one.
  server.loop.server.accept(9, server.keying, server.loop.now, "192.0.2.2");
  wire::Hello hello;
  hello.heartbeat_interval_ms = 1000;
  hello.missing_heartbeats_allowed = 3;
  hello.mechanism = "EXTERNAL";
  server.loop.server.receive(9, encode(hello), server.loop.now);
  server.loop.server.accept(10, server.keying, server.loop.now, "192.0.2.3");
  hello.mechanism.clear();
  server.loop.server.receive(10, encode(hello), server.loop.now);
  ASSERT_EQ(server.refusals.size(), 3u);
  EXPECT_EQ(server.refusal_messages[0], "bob|ONE-ROUND|ONE-ROUND: wrong secret");
  EXPECT_EQ(server.refusals[1].connection, 9u);
  EXPECT_NE(server.refusal_messages[1].find("EXTERNAL|mechanism not offered"), std::string::npos)
      << server.refusal_messages[1];
  EXPECT_EQ(server.refusal_sources[2], "192.0.2.3");
  EXPECT_NE(server.refusal_messages[2].find("requires authentication"), std::string::npos);
}

}  // namespace
}  // namespace tether::test
