// Tests of in-band authentication in the core: the exchange before Welcome (one round and several),
// refusals with their reasons and messages in both directions of capability, the client's check of
// the server's final message, throttling, the pending-handshake bounds, and resumption without a
// new exchange. The mechanisms are test doubles; the real ones have their own tests.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "session/authentication_throttle.hpp"
#include "session/authenticator.hpp"
#include "tests/unit/authentication_doubles.hpp"
#include "tests/unit/loopback.hpp"

namespace tether::test {
namespace {

TEST(Authentication, TwoRoundExchangeEstablishesAnAuthenticatedSession) {
  Fixture fixture;
  fixture.server_auth->counters.lifetime = seconds(300);
  const auto id = fixture.loop->establish();
  session::Session* server_session = fixture.loop->server.find(id);
  ASSERT_NE(server_session, nullptr);
  EXPECT_EQ(server_session->peer().principal, "alice");
  EXPECT_EQ(server_session->peer().mechanism, "TWO-ROUND");
  ASSERT_TRUE(server_session->peer().credential_expiry.has_value());
  EXPECT_EQ(*server_session->peer().credential_expiry, fixture.loop->now + seconds(300));
  EXPECT_EQ(fixture.loop->client.peer().principal, "alice");
  EXPECT_EQ(fixture.loop->client.peer().mechanism, "TWO-ROUND");
  EXPECT_EQ(fixture.loop->frames_sent<wire::AuthChallenge>(false), 1u);
  EXPECT_EQ(fixture.loop->frames_sent<wire::AuthResponse>(true), 1u);
  EXPECT_EQ(fixture.loop->server.stats().authentications_succeeded, 1u);

  // Data flows as on any session.
  auto stream = fixture.loop->client.open_stream(0, fixture.loop->now);
  ASSERT_TRUE(stream);
  ASSERT_TRUE(fixture.loop->client.write(*stream, to_bytes("hello"), fixture.loop->now));
  fixture.loop->pump();
  EXPECT_EQ(read_all(*server_session, *stream, fixture.loop->now), to_bytes("hello"));
}

TEST(Authentication, ASessionEndsWhenItsCredentialExpires) {
  // A client that does not re-authenticate (the re-authentication tests cover the others).
  Fixture fixture(true, true,
                  [](SessionConfig& client, SessionConfig&) { client.reauthenticate = false; });
  fixture.server_auth->counters.lifetime = seconds(5);
  const auto id = fixture.loop->establish();
  fixture.loop->advance(seconds(4));
  EXPECT_EQ(fixture.loop->client.phase(), session::Phase::kOpen);
  fixture.loop->advance(seconds(2));
  const auto closed = fixture.client_closed();
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->reason, wire::Reason::kCredentialsExpired);
  EXPECT_TRUE(closed->by_peer);
  const auto server_closed = events_of<session::events::Closed>(fixture.loop->server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, wire::Reason::kCredentialsExpired);
  EXPECT_EQ(fixture.loop->server.find(id), nullptr);
}

TEST(Authentication, ACredentialExpiredAtLoginIsRefused) {
  // Kafka's KAFKA-13848: "expired at login" must never be read as "never expires".
  for (const Duration lifetime : {Duration::zero(), Duration(-seconds(30))}) {
    Fixture fixture;
    fixture.server_auth->counters.lifetime = lifetime;
    fixture.loop->process_events();
    fixture.loop->pump();
    const auto closed = fixture.client_closed();
    ASSERT_TRUE(closed.has_value());
    EXPECT_EQ(closed->reason, wire::Reason::kCredentialsExpired);
    EXPECT_TRUE(closed->by_peer);
    EXPECT_NE(closed->message.find("already expired"), std::string::npos) << closed->message;
    EXPECT_EQ(fixture.loop->server.stats().sessions_created, 0u);
    EXPECT_TRUE(events_of<session::events::Established>(fixture.loop->client_events).empty());
  }
}

TEST(Authentication, OneRoundExchangeCostsNoRoundTripBeyondHelloAndWelcome) {
  Fixture fixture;
  fixture.client_auth->credential.mechanism = "ONE-ROUND";
  const auto id = fixture.loop->establish();
  EXPECT_EQ(fixture.loop->server.find(id)->peer().principal, "alice");
  EXPECT_EQ(fixture.loop->frames_sent<wire::AuthChallenge>(false), 0u);
  EXPECT_EQ(fixture.loop->frames_sent<wire::AuthResponse>(true), 0u);
  // Without an expiring credential the session records none.
  EXPECT_FALSE(fixture.loop->server.find(id)->peer().credential_expiry.has_value());
}

TEST(Authentication, WrongCredentialEndsTheClientSessionWithAuthFailedAndWhy) {
  Fixture fixture;
  fixture.client_auth->credential.secret = "guess";
  fixture.loop->process_events();
  fixture.loop->pump();
  const auto closed = fixture.client_closed();
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->reason, wire::Reason::kAuthFailed);
  EXPECT_TRUE(closed->by_peer);
  EXPECT_FALSE(closed->transient);
  EXPECT_EQ(closed->message, "TWO-ROUND: wrong secret");
  EXPECT_EQ(fixture.loop->server.session_count(), 0u);
  EXPECT_EQ(fixture.loop->server.stats().authentication_failures, 1u);
  EXPECT_EQ(fixture.loop->server.stats().sessions_created, 0u);
}

TEST(Authentication, ServerThatRequiresAuthenticationRefusesAClientWithoutItAndListsMechanisms) {
  Fixture fixture(/*client_authenticates=*/false);
  fixture.loop->process_events();
  fixture.loop->pump();
  const auto closed = fixture.client_closed();
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->reason, wire::Reason::kAuthFailed);  // not protocol-error
  EXPECT_NE(closed->message.find("requires authentication"), std::string::npos);
  EXPECT_NE(closed->message.find("TWO-ROUND, ONE-ROUND"), std::string::npos);
  EXPECT_EQ(fixture.server_auth->counters.exchanges, 0);
}

TEST(Authentication, ClientThatAuthenticatesRefusesAServerThatDoesNot) {
  Fixture fixture(/*client_authenticates=*/true, /*server_authenticates=*/false);
  fixture.loop->process_events();
  fixture.loop->pump();
  const auto closed = fixture.client_closed();
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->reason, wire::Reason::kAuthFailed);
  EXPECT_FALSE(closed->by_peer);
  EXPECT_NE(closed->message.find("does not authenticate"), std::string::npos);
  EXPECT_NE(fixture.loop->client.phase(), session::Phase::kOpen);
  EXPECT_TRUE(events_of<session::events::Established>(fixture.loop->client_events).empty());
}

TEST(Authentication, ServerFinalMessageThatProvesNothingEndsTheSession) {
  Fixture fixture;
  fixture.server_auth->counters.final_override = "proof:forged";
  fixture.loop->process_events();
  fixture.loop->pump();
  const auto closed = fixture.client_closed();
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->reason, wire::Reason::kAuthFailed);
  EXPECT_NE(closed->message.find("did not prove"), std::string::npos);
  EXPECT_TRUE(events_of<session::events::Established>(fixture.loop->client_events).empty());
}

TEST(Authentication, UnusableCredentialSendsNothingAndSaysWhy) {
  Fixture fixture;
  fixture.client_auth->credential.unavailable = true;
  fixture.loop->process_events();
  fixture.loop->pump();
  const auto closed = fixture.client_closed();
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->reason, wire::Reason::kAuthFailed);
  EXPECT_EQ(closed->message, "token file unreadable");
  EXPECT_EQ(fixture.loop->server.stats().sessions_created, 0u);
  EXPECT_EQ(fixture.loop->frames_sent<wire::Hello>(true), 0u);
}

TEST(Authentication, MechanismNotOfferedIsRefusedWithTheOfferedList) {
  Fixture fixture;
  fixture.client_auth->credential.mechanism = "SCRAM-SHA-1";
  fixture.loop->process_events();
  fixture.loop->pump();
  const auto closed = fixture.client_closed();
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->reason, wire::Reason::kAuthFailed);
  EXPECT_NE(closed->message.find("not offered"), std::string::npos);
  EXPECT_NE(closed->message.find("TWO-ROUND"), std::string::npos);
}

TEST(Authentication, ResumeNeedsNoNewExchange) {
  Fixture fixture;
  const auto id = fixture.loop->establish();
  const PathId first = fixture.loop->connections.begin()->first;
  fixture.loop->close_connection(first);
  fixture.loop->process_events();
  fixture.loop->pump();
  EXPECT_EQ(fixture.loop->client.phase(), session::Phase::kOpen);
  EXPECT_FALSE(fixture.loop->client.suspended());
  EXPECT_EQ(fixture.loop->client.stats().resumes, 1u);
  EXPECT_EQ(fixture.server_auth->counters.exchanges, 1);
  EXPECT_EQ(fixture.client_auth->credential.exchanges, 1);
  EXPECT_EQ(fixture.loop->server.find(id)->peer().principal, "alice");
}

// A raw connection that speaks the handshake by hand.
Bytes hello_with(std::string mechanism, std::optional<std::string> initial) {
  wire::Hello hello;
  hello.heartbeat_interval_ms = 1000;
  hello.missing_heartbeats_allowed = 3;
  hello.mechanism = std::move(mechanism);
  if (initial) hello.initial_response = to_bytes(*initial);
  return encode(hello);
}

// A raw ONE-ROUND attempt on its own connection; returns the server's frames.
struct RawServer {
  SplitMix64 random{13};
  Loopback loop;
  std::shared_ptr<TestServerAuthenticator> auth = std::make_shared<TestServerAuthenticator>();
  Bytes keying = random_bytes(random, 32);
  PathId next = 100;
  RawServer() { loop.server.set_authenticator(auth); }
  std::vector<wire::Frame> attempt(const std::string& mechanism, const std::string& initial,
                                   const std::string& source, bool close = true,
                                   PathId* id_out = nullptr) {
    const PathId id = next++;
    loop.server.accept(id, keying, loop.now, source);
    loop.server.receive(id, hello_with(mechanism, initial), loop.now);
    Bytes reply;
    loop.server.take_outgoing(id, reply, 1 << 20, loop.now);
    if (close) loop.server.on_connection_closed(id, loop.now);
    if (id_out != nullptr) *id_out = id;
    return decode_all(reply);
  }
};

TEST(Authentication, FailuresFromOneSourceAreThrottledThenForgiven) {
  RawServer server;
  auto& loop = server.loop;
  auto& server_auth = server.auth;
  auto attempt = [&](const std::string& initial, const std::string& source) {
    return server.attempt("ONE-ROUND", initial, source);
  };
  for (int failure = 0; failure < 5; ++failure) {
    auto frames = attempt("mallory:guess" + std::to_string(failure), "192.0.2.1");
    ASSERT_EQ(frames.size(), 1u);
    const auto& refuse = std::get<wire::Refuse>(frames[0]);
    EXPECT_EQ(refuse.reason, wire::Reason::kAuthFailed);
    EXPECT_FALSE(refuse.transient);
  }
  // The sixth attempt from that address is refused unheard, even with the right secret.
  const int exchanges_before = server_auth->counters.exchanges;
  auto frames = attempt("alice:secret", "192.0.2.1");
  ASSERT_EQ(frames.size(), 1u);
  const auto& refuse = std::get<wire::Refuse>(frames[0]);
  EXPECT_EQ(refuse.reason, wire::Reason::kAuthFailed);
  EXPECT_TRUE(refuse.transient);
  EXPECT_NE(refuse.message.find("retry in"), std::string::npos);
  EXPECT_EQ(server_auth->counters.exchanges, exchanges_before);
  EXPECT_EQ(loop.server.stats().authentications_throttled, 1u);
  // Another address is not disturbed.
  EXPECT_TRUE(std::holds_alternative<wire::Welcome>(attempt("alice:secret", "192.0.2.2")[0]));
  // After the failures decay (half-life 60 s: 5 -> below 5 within a minute) the address may try.
  loop.now += seconds(60);
  EXPECT_TRUE(std::holds_alternative<wire::Welcome>(attempt("alice:secret", "192.0.2.1")[0]));
}

TEST(Authentication, FailuresForOneUserAreThrottledWhateverTheSource) {
  RawServer server;
  auto attempt = [&](const std::string& initial, const std::string& source) {
    return server.attempt("ONE-ROUND", initial, source);
  };
  for (int failure = 0; failure < 10; ++failure) {
    attempt("bob:guess", "198.51.100." + std::to_string(failure));
  }
  auto frames = attempt("bob:secret", "203.0.113.9");
  const auto& refuse = std::get<wire::Refuse>(frames.at(0));
  EXPECT_TRUE(refuse.transient);
  EXPECT_NE(refuse.message.find("for this user"), std::string::npos);
  // Another user from the same fresh address is not disturbed.
  EXPECT_TRUE(std::holds_alternative<wire::Welcome>(attempt("alice:secret", "203.0.113.9")[0]));
}

TEST(Authentication, PendingHandshakesAreCappedAndTimedOut) {
  SplitMix64 random(9);
  Loopback loop;
  loop.server.set_authenticator(std::make_shared<TestServerAuthenticator>());
  // The default cap is 1024; fill it with connections that start an exchange and never answer.
  const std::size_t cap = loop.server.limits().max_pending_connections;
  const Bytes keying = random_bytes(random, 32);
  for (PathId id = 1000; id < 1000 + cap; ++id) {
    // Each from its own source and for its own user: the throttles are not what this tests.
    loop.server.accept(id, keying, loop.now, "source-" + std::to_string(id));
    loop.server.receive(id, hello_with("TWO-ROUND", "user-" + std::to_string(id)), loop.now);
  }
  EXPECT_EQ(loop.server.stats().pending_connections_refused, 0u);
  // One more is refused at once, without reading anything.
  const PathId extra = 1000 + cap;
  loop.server.accept(extra, keying, loop.now, "192.0.2.8");
  Bytes reply;
  loop.server.take_outgoing(extra, reply, 1 << 20, loop.now);
  auto frames = decode_all(reply);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<wire::Refuse>(frames[0]).reason, wire::Reason::kLackOfResources);
  EXPECT_TRUE(std::get<wire::Refuse>(frames[0]).transient);
  EXPECT_EQ(loop.server.stats().pending_connections_refused, 1u);
  // The handshake timeout ends every stalled exchange with a transient auth-failed.
  loop.now += test_config().handshake_timeout;
  loop.server.on_timeout(loop.now);
  reply.clear();
  loop.server.take_outgoing(1000, reply, 1 << 20, loop.now);
  frames = decode_all(reply);
  ASSERT_EQ(frames.size(), 2u);  // the challenge, then the refusal
  EXPECT_TRUE(std::holds_alternative<wire::AuthChallenge>(frames[0]));
  EXPECT_EQ(std::get<wire::Refuse>(frames[1]).reason, wire::Reason::kAuthFailed);
  EXPECT_NE(std::get<wire::Refuse>(frames[1]).message.find("did not finish"), std::string::npos);
  EXPECT_EQ(loop.server.stats().authentication_failures, cap);
}

TEST(Authentication, AChallengeMakesItsConnectionReadyToFlush) {
  // The runtime flushes only the connections take_ready_connections() names: a challenge to a
  // connection that holds no session yet must be among them, or the exchange stalls.
  SplitMix64 random(12);
  Loopback loop;
  loop.server.set_authenticator(std::make_shared<TestServerAuthenticator>());
  const Bytes keying = random_bytes(random, 32);
  std::vector<PathId> ready;
  loop.server.take_ready_connections(ready);
  loop.server.accept(5, keying, loop.now, "192.0.2.1");
  loop.server.receive(5, hello_with("TWO-ROUND", "alice"), loop.now);
  loop.server.take_ready_connections(ready);
  EXPECT_EQ(ready, std::vector<PathId>{5});
}

TEST(Authentication, AnythingButAnAnswerMidExchangeIsAProtocolError) {
  SplitMix64 random(10);
  Loopback loop;
  loop.server.set_authenticator(std::make_shared<TestServerAuthenticator>());
  const Bytes keying = random_bytes(random, 32);
  loop.server.accept(5, keying, loop.now, "192.0.2.1");
  loop.server.receive(5, concat(hello_with("TWO-ROUND", "alice"), encode(wire::Ping{1})), loop.now);
  Bytes reply;
  loop.server.take_outgoing(5, reply, 1 << 20, loop.now);
  auto frames = decode_all(reply);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(std::get<wire::Refuse>(frames[1]).reason, wire::Reason::kProtocolError);
  EXPECT_EQ(loop.server.session_count(), 0u);
}

TEST(Authentication, OversizedMessagesAreRefusedUnread) {
  SplitMix64 random(11);
  Loopback loop;
  auto server_auth = std::make_shared<TestServerAuthenticator>();
  loop.server.set_authenticator(server_auth);
  const Bytes keying = random_bytes(random, 32);
  loop.server.accept(5, keying, loop.now, "192.0.2.1");
  const std::string huge(test_config().max_authentication_message + 512, 'a');
  loop.server.receive(5, hello_with("ONE-ROUND", huge), loop.now);
  Bytes reply;
  loop.server.take_outgoing(5, reply, 1 << 20, loop.now);
  auto frames = decode_all(reply);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<wire::Refuse>(frames[0]).reason, wire::Reason::kAuthFailed);
  EXPECT_NE(std::get<wire::Refuse>(frames[0]).message.find("too large"), std::string::npos);
  EXPECT_EQ(server_auth->counters.exchanges, 0);
  // A frame past the first-frame limit is refused from its length field alone.
  loop.server.accept(6, keying, loop.now, "192.0.2.1");
  const std::string enormous(session::first_frame_payload_limit(test_config()) + 1, 'a');
  loop.server.receive(6, hello_with("ONE-ROUND", enormous), loop.now);
  reply.clear();
  loop.server.take_outgoing(6, reply, 1 << 20, loop.now);
  frames = decode_all(reply);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(std::get<wire::Refuse>(frames[0]).reason, wire::Reason::kProtocolError);
}

TEST(Authentication, ServerChallengeLargerThanTheBoundIsNotSent) {
  Fixture fixture;
  fixture.server_auth->counters.challenge_size = test_config().max_authentication_message + 1;
  fixture.loop->process_events();
  fixture.loop->pump();
  const auto closed = fixture.client_closed();
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(closed->reason, wire::Reason::kAuthFailed);
  EXPECT_EQ(fixture.loop->frames_sent<wire::AuthChallenge>(false), 0u);
}

TEST(Authentication, PastTheUserLimitRightAndWrongCredentialsGetTheSameAnswer) {
  // A review found that past the per-user limit a wrong password got "failed" and the right one
  // "throttled": the limit told a guesser which guess was right.
  RawServer server;
  for (int failure = 0; failure < 10; ++failure) {
    server.attempt("ONE-ROUND", "bob:guess", "198.51.100." + std::to_string(failure));
  }
  const auto wrong = server.attempt("ONE-ROUND", "bob:guess", "203.0.113.1");
  const auto right = server.attempt("ONE-ROUND", "bob:secret", "203.0.113.2");
  ASSERT_EQ(wrong.size(), 1u);
  ASSERT_EQ(right.size(), 1u);
  EXPECT_EQ(std::get<wire::Refuse>(wrong[0]), std::get<wire::Refuse>(right[0]));
  EXPECT_TRUE(std::get<wire::Refuse>(right[0]).transient);
}

TEST(Authentication, AttemptsCountWhenTheyStartSoParallelAndAbandonedOnesAreLimited) {
  RawServer server;
  // Six exchanges started in parallel from one address and never finished: the sixth is refused
  // unheard (the limit is 5), though no verdict was ever reached.
  std::vector<wire::Frame> last;
  for (int attempt = 0; attempt < 6; ++attempt) {
    last = server.attempt("TWO-ROUND", "user" + std::to_string(attempt), "192.0.2.50",
                          /*close=*/false);
  }
  ASSERT_EQ(last.size(), 1u);
  EXPECT_TRUE(std::get<wire::Refuse>(last[0]).transient);
  EXPECT_NE(std::get<wire::Refuse>(last[0]).message.find("from this address"), std::string::npos);
  EXPECT_EQ(server.auth->counters.exchanges, 5);
}

TEST(Authentication, SuccessfulAttemptsAreTakenBackAndNeverThrottle) {
  RawServer server;
  for (int attempt = 0; attempt < 50; ++attempt) {
    const auto frames = server.attempt("ONE-ROUND", "alice:secret", "192.0.2.60");
    ASSERT_TRUE(std::holds_alternative<wire::Welcome>(frames.at(0))) << "attempt " << attempt;
  }
}

TEST(AuthenticationThrottle, CountsDecayAndKeysStayApart) {
  session::AuthenticationThrottle throttle({3, seconds(10)}, 42);
  const Time start = start_time();
  for (int failure = 0; failure < 4; ++failure) throttle.record_failure("a", start);
  EXPECT_TRUE(throttle.throttled("a", start));
  EXPECT_FALSE(throttle.throttled("b", start));
  EXPECT_FALSE(throttle.throttled("", start));
  // 4 failures fall below the allowance of 3 after log2(4/3) half-lives; retry_after says when.
  const Duration wait = throttle.retry_after("a", start);
  EXPECT_GT(wait, Duration::zero());
  EXPECT_TRUE(throttle.throttled("a", start + wait / 2));
  EXPECT_FALSE(throttle.throttled("a", start + wait));
  // A success takes its attempt back.
  throttle.refund("a", start + wait);
  EXPECT_LT(throttle.retry_after("a", start + wait), milliseconds(2));
}

TEST(AuthenticationThrottle, AFloodOfKeysNeverThrottlesAKeyItNeverSaw) {
  // A review found that a count-min sketch filled by many keys just under the limit throttled 97%
  // of fresh keys: the table now holds exact counts per key, and a flood evicts its own entries.
  session::AuthenticationThrottle throttle({5, seconds(60)}, 7);
  const Time start = start_time();
  for (int key = 0; key < 40000; ++key) {
    for (int attempt = 0; attempt < 4; ++attempt) {
      throttle.record_failure("flood" + std::to_string(key), start);
    }
  }
  int falsely_throttled = 0;
  for (int key = 0; key < 1000; ++key) {
    if (throttle.throttled("fresh" + std::to_string(key), start)) ++falsely_throttled;
  }
  EXPECT_EQ(falsely_throttled, 0);
  // A key that really failed keeps its count through the flood (it is the largest in its slots).
  session::AuthenticationThrottle second({5, seconds(60)}, 7);
  for (int attempt = 0; attempt < 6; ++attempt) second.record_failure("guesser", start);
  for (int key = 0; key < 40000; ++key) second.record_failure("k" + std::to_string(key), start);
  EXPECT_TRUE(second.throttled("guesser", start));
}

}  // namespace
}  // namespace tether::test
