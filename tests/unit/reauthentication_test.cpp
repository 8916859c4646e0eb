// Tests of session lifetime and in-place re-authentication in the core, in virtual time: the
// lifetime rule, the client's schedule, the exchange over the control stream while data flows,
// its checks (principal, mechanism, rate), the channel binding of each round, enforcement
// (immediate, on use, audit only) and a resume past the lifetime. The mechanisms are the test
// doubles of authentication_doubles.hpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "session/session_lifetime.hpp"
#include "tests/unit/authentication_doubles.hpp"
#include "tests/unit/loopback.hpp"
#include "tests/unit/reauthentication_support.hpp"

namespace tether::test {
namespace {

using session::ExpiryEnforcement;
namespace events = session::events;
namespace lifetime = session::lifetime;

// ---- The rule ----------------------------------------------------------------------------------

TEST(SessionLifetime, FollowsTheCredentialTheCapOrTheSmallerOfBoth) {
  struct Row {
    std::optional<Duration> credential;
    std::optional<Duration> cap;
    std::optional<Duration> expected;
  };
  const Row rows[] = {
      {std::nullopt, std::nullopt, std::nullopt},    // a password, no --max-reauth: no limit
      {std::nullopt, seconds(3600), seconds(3600)},  // a password: --max-reauth alone
      {seconds(300), std::nullopt, seconds(300)},    // a token, --max-reauth unset: its expiry
      {seconds(300), seconds(3600), seconds(300)},   // both: the smaller
      {seconds(7200), seconds(3600), seconds(3600)},
      {seconds(300), seconds(0), seconds(300)},  // a non-positive cap is no cap
      {seconds(300), -seconds(60), seconds(300)},
  };
  for (const Row& row : rows) {
    EXPECT_EQ(lifetime::session_lifetime(row.credential, row.cap), row.expected);
  }
}

TEST(SessionLifetime, TravelsInWholeMillisecondsWithZeroMeaningNoLimit) {
  EXPECT_EQ(lifetime::to_wire(std::nullopt), 0u);
  EXPECT_EQ(lifetime::to_wire(milliseconds(1500)), 1500u);
  EXPECT_EQ(lifetime::to_wire(Duration(10)), 1u);  // positive never rounds to "no limit"
  EXPECT_EQ(lifetime::from_wire(0), std::nullopt);
  EXPECT_EQ(lifetime::from_wire(2500), milliseconds(2500));
  // A hostile value cannot overflow the clock.
  const auto huge = lifetime::from_wire(~std::uint64_t{0});
  ASSERT_TRUE(huge.has_value());
  EXPECT_LT(start_time().time_since_epoch().count(),
            (start_time() + *huge).time_since_epoch().count());
}

TEST(SessionLifetime, ClientStartsBetween85And95PercentAndNeverSoonerThanTheMinimum) {
  const Duration life = seconds(100);
  EXPECT_EQ(lifetime::reauthentication_delay(life, 0.0, seconds(1)), seconds(85));
  EXPECT_EQ(lifetime::reauthentication_delay(life, 0.5, seconds(1)), seconds(90));
  const Duration near_top = lifetime::reauthentication_delay(life, 0.999999, seconds(1));
  EXPECT_GT(near_top, seconds(94));
  EXPECT_LE(near_top, seconds(95));
  EXPECT_EQ(lifetime::reauthentication_delay(milliseconds(500), 0.5, seconds(1)), seconds(1));
  SplitMix64 random(7);
  for (int draw = 0; draw < 1000; ++draw) {
    const double unit = lifetime::unit_interval(random.next_u64());
    ASSERT_GE(unit, 0.0);
    ASSERT_LT(unit, 1.0);
  }
}

// ---- Sessions ----------------------------------------------------------------------------------

TEST(Reauthentication, WelcomeCarriesTheLifetimeAndTheClientReauthenticatesBeforeItEnds) {
  Reauthentication test(seconds(100));
  const Time established = test.loop.now;
  ASSERT_NE(test.server_session(), nullptr);
  EXPECT_EQ(test.server_session()->lifetime_end(), established + seconds(100));
  EXPECT_EQ(test.loop.client.lifetime_end(), established + seconds(100));
  EXPECT_TRUE(wire::has(test.loop.client.capabilities(), wire::Capability::kReauthentication));
  EXPECT_EQ(test.loop.server.stats().authentications_without_reauthentication, 0u);

  test.loop.advance(seconds(84));
  EXPECT_TRUE(test.client_reauthentications().empty());
  test.loop.advance(seconds(12));  // to 96 s: past 95%
  const auto client = test.client_reauthentications();
  const auto server = test.server_reauthentications();
  ASSERT_EQ(client.size(), 1u);
  ASSERT_EQ(server.size(), 1u);
  EXPECT_EQ(server[0].principal, "alice");
  EXPECT_EQ(server[0].mechanism, "TWO-ROUND");
  EXPECT_EQ(server[0].lifetime, seconds(100));
  const auto at = first_time<events::Reauthenticated>(test.loop.server_events);
  ASSERT_TRUE(at.has_value());
  EXPECT_GE(*at, established + seconds(85));
  EXPECT_LE(*at, established + seconds(95));
  // The lifetime starts again from the exchange, on both sides.
  EXPECT_EQ(test.server_session()->lifetime_end(), *at + seconds(100));
  EXPECT_EQ(test.loop.client.lifetime_end(), *at + seconds(100));
  EXPECT_EQ(test.loop.server.stats().reauthentications_succeeded, 1u);
  EXPECT_EQ(test.loop.server.stats().reauthentication_latency.count(), 1u);
  EXPECT_EQ(test.loop.client.stats().reauthentications, 1u);
  EXPECT_EQ(test.fixture.server_auth->counters.exchanges, 2);
}

TEST(Reauthentication, ASessionLivesAcrossManyLifetimesWithoutLosingData) {
  Reauthentication test(seconds(5));
  const auto stream = test.loop.client.open_stream(0, test.loop.now);
  ASSERT_TRUE(stream);
  Bytes sent;
  Bytes received;
  for (int tick = 0; tick < 200; ++tick) {  // 100 s: twenty lifetimes
    const Bytes chunk = to_bytes("tick " + std::to_string(tick) + ";");
    ASSERT_TRUE(test.loop.client.write(*stream, chunk, test.loop.now));
    sent.insert(sent.end(), chunk.begin(), chunk.end());
    test.loop.advance(milliseconds(500));
    const Bytes got = read_all(*test.server_session(), *stream, test.loop.now);
    received.insert(received.end(), got.begin(), got.end());
  }
  EXPECT_EQ(received, sent);
  EXPECT_EQ(test.loop.client.phase(), session::Phase::kOpen);
  EXPECT_GE(test.loop.server.stats().reauthentications_succeeded, 20u);
  EXPECT_EQ(test.loop.server.stats().reauthentication_failures, 0u);
  EXPECT_EQ(test.loop.server.stats().expired_sessions_closed, 0u);
}

TEST(Reauthentication, DataFlowsBothWaysWhileTheExchangeRuns) {
  Reauthentication test(seconds(100));
  const auto stream = test.loop.client.open_stream(0, test.loop.now);
  ASSERT_TRUE(stream);
  ASSERT_TRUE(test.loop.client.write(*stream, to_bytes("open"), test.loop.now));
  test.loop.pump();
  ASSERT_EQ(read_all(*test.server_session(), *stream, test.loop.now), to_bytes("open"));
  // Stop at the start of the exchange: the client's Reauthenticate is queued, nothing moved yet.
  test.loop.auto_connect = false;
  const Time due = *test.loop.client.deadline(session::TimerSlot::kReauthenticate);
  test.loop.advance_to(due - milliseconds(1));  // heartbeats keep the path alive until then
  test.loop.now = due;
  test.loop.client.on_timeout(test.loop.now);
  ASSERT_TRUE(test.loop.client.reauthenticating());
  const PathId path = *test.loop.client.data_path();
  // Client -> server: the Reauthenticate, and data written behind it.
  ASSERT_TRUE(test.loop.client.write(*stream, to_bytes("during"), test.loop.now));
  test.loop.transfer(End::kClient, path);
  ASSERT_TRUE(test.server_session()->reauthenticating());  // the server's challenge is pending
  EXPECT_EQ(read_all(*test.server_session(), *stream, test.loop.now), to_bytes("during"));
  // Server -> client: the challenge, and data written behind it, while the exchange still runs.
  ASSERT_TRUE(test.server_session()->write(*stream, to_bytes("reply"), test.loop.now));
  test.loop.transfer(End::kServer, path);
  EXPECT_EQ(read_all(test.loop.client, *stream, test.loop.now), to_bytes("reply"));
  EXPECT_TRUE(test.server_session()->reauthenticating());
  test.loop.pump();
  EXPECT_FALSE(test.loop.client.reauthenticating());
  EXPECT_FALSE(test.server_session()->reauthenticating());
  EXPECT_EQ(test.server_reauthentications().size(), 1u);
}

TEST(Reauthentication, EachRoundHasItsOwnSessionBindingTheSameOnBothSides) {
  Reauthentication test(seconds(10));
  test.loop.advance(seconds(30));
  const auto& client = test.fixture.client_auth->credential.bindings;
  const auto& server = test.fixture.server_auth->counters.bindings;
  ASSERT_GE(server.size(), 4u);  // the login and at least three rounds
  ASSERT_EQ(client.size(), server.size());
  std::set<Bytes> distinct;
  for (std::size_t round = 0; round < server.size(); ++round) {
    EXPECT_EQ(client[round], server[round]) << "round " << round;
    EXPECT_EQ(server[round].size(), 32u);
    distinct.insert(server[round]);
  }
  EXPECT_EQ(distinct.size(), server.size());  // never reused, and not the connection's own
}

TEST(Reauthentication, TheNewCredentialsScopesApply) {
  Reauthentication test(seconds(10));
  EXPECT_TRUE(test.server_session()->peer().scopes.empty());
  test.fixture.server_auth->counters.scopes = {"tether:connect:db:5432"};
  test.loop.advance(seconds(10));
  ASSERT_EQ(test.server_reauthentications().size(), 1u);
  EXPECT_EQ(test.server_session()->peer().scopes,
            std::vector<std::string>{"tether:connect:db:5432"});
}

TEST(Reauthentication, APrincipalChangeEndsTheSession) {
  Reauthentication test(seconds(10));
  test.fixture.server_auth->counters.principal_override = "mallory";
  test.loop.advance(seconds(10));
  const auto server = test.server_closed();
  ASSERT_TRUE(server.has_value());
  EXPECT_EQ(server->reason, wire::Reason::kAuthFailed);
  EXPECT_NE(server->message.find("another principal"), std::string::npos);
  const auto client = test.fixture.client_closed();
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->reason, wire::Reason::kAuthFailed);
  EXPECT_TRUE(client->by_peer);
  EXPECT_NE(client->message.find("another principal"), std::string::npos);
  EXPECT_EQ(test.loop.server.stats().reauthentication_failures, 1u);
}

TEST(Reauthentication, AMechanismChangeIsRefusedBeforeAnyExchange) {
  Reauthentication test(seconds(10));
  test.fixture.client_auth->credential.mechanism = "ONE-ROUND";  // the credential source changed
  test.loop.advance(seconds(9) + milliseconds(600));
  // The client does not even try: it keeps its session until the server ends it at the lifetime.
  EXPECT_EQ(test.fixture.server_auth->counters.exchanges, 1);
  test.loop.advance(seconds(1));
  const auto client = test.fixture.client_closed();
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->reason, wire::Reason::kCredentialsExpired);
  EXPECT_TRUE(client->by_peer);
}

TEST(Reauthentication, AWrongCredentialEndsTheSessionWithAuthFailedOnBothSides) {
  Reauthentication test(seconds(10));
  test.fixture.client_auth->credential.secret = "changed";
  test.loop.advance(seconds(10));
  const auto client = test.fixture.client_closed();
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->reason, wire::Reason::kAuthFailed);
  EXPECT_NE(client->message.find("re-authentication failed"), std::string::npos);
  EXPECT_NE(client->message.find("wrong secret"), std::string::npos);
  ASSERT_TRUE(test.server_closed().has_value());
  EXPECT_EQ(test.server_closed()->reason, wire::Reason::kAuthFailed);
  EXPECT_EQ(test.loop.server.stats().reauthentication_failures, 1u);
}

TEST(Reauthentication, AClientThatStartsMoreThanOnceASecondIsCut) {
  // An honest client never starts that fast (lifetimes are at least twice the interval), so a
  // hostile one is played by injecting a second start 200 ms after a real round.
  Reauthentication test(seconds(10));
  test.loop.advance(seconds(8));
  while (test.server_reauthentications().empty() && test.loop.now < start_time() + seconds(10)) {
    test.loop.advance(milliseconds(10));
  }
  ASSERT_EQ(test.server_reauthentications().size(), 1u);
  test.loop.advance(milliseconds(200));
  const PathId path = *test.loop.client.data_path();
  inject_control(test.loop, path, wire::Reauthenticate{"TWO-ROUND", to_bytes("again")});
  test.loop.pump();
  const auto server = test.server_closed();
  ASSERT_TRUE(server.has_value());
  EXPECT_EQ(server->reason, wire::Reason::kProtocolError);
  EXPECT_NE(server->message.find("more often than once"), std::string::npos) << server->message;
}

TEST(Reauthentication, AShortMaximumIsRaisedToTheShortestRenewableLifetime) {
  // --max-reauth below twice the minimum interval could never be renewed: it is raised to that.
  Reauthentication test(std::nullopt, [](SessionConfig&, SessionConfig& server) {
    server.max_reauthentication = milliseconds(300);
  });
  EXPECT_EQ(test.loop.client.lifetime_end(), start_time() + seconds(2));
  test.loop.advance(seconds(20));
  EXPECT_EQ(test.loop.client.phase(), session::Phase::kOpen);
  EXPECT_GE(test.server_reauthentications().size(), 9u);
  EXPECT_EQ(test.loop.server.stats().expired_sessions_closed, 0u);
}

TEST(Reauthentication, ACredentialAboutToExpireIsRefusedAtLoginAndWhenReauthenticating) {
  {
    Reauthentication test(milliseconds(1500), {}, false);
    test.loop.process_events();
    test.loop.pump();
    const auto client = test.fixture.client_closed();
    ASSERT_TRUE(client.has_value());
    EXPECT_EQ(client->reason, wire::Reason::kCredentialsExpired);
    EXPECT_NE(client->message.find("expires in less than 2 s"), std::string::npos)
        << client->message;
  }
  Reauthentication test(seconds(10));
  test.fixture.server_auth->counters.lifetime = milliseconds(1500);  // the refreshed credential
  test.loop.advance(seconds(10));
  const auto server = test.server_closed();
  ASSERT_TRUE(server.has_value());
  EXPECT_EQ(server->reason, wire::Reason::kCredentialsExpired);
  EXPECT_NE(server->message.find("expires in less than 2 s"), std::string::npos) << server->message;
}

TEST(Reauthentication, ACredentialThatCannotBeReadIsRetriedAndTheSessionEndsAtItsLifetime) {
  Reauthentication test(seconds(20), [](SessionConfig& client, SessionConfig&) {
    client.reauthentication_retry = seconds(1);
  });
  test.fixture.client_auth->credential.unavailable = true;
  test.loop.advance(seconds(19) + milliseconds(900));
  EXPECT_EQ(test.loop.client.phase(), session::Phase::kOpen);
  EXPECT_GE(test.fixture.client_auth->credential.exchanges, 3);  // login, then retries
  test.loop.advance(milliseconds(200));
  const auto client = test.fixture.client_closed();
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->reason, wire::Reason::kCredentialsExpired);
  EXPECT_TRUE(client->by_peer);
  EXPECT_NE(client->message.find("credential expired"), std::string::npos) << client->message;
  EXPECT_EQ(test.loop.server.stats().expired_sessions_closed, 1u);
}

TEST(Reauthentication, ACredentialThatComesBackInTimeSavesTheSession) {
  Reauthentication test(seconds(20), [](SessionConfig& client, SessionConfig&) {
    client.reauthentication_retry = seconds(1);
  });
  test.fixture.client_auth->credential.unavailable = true;
  test.loop.advance(seconds(18));
  test.fixture.client_auth->credential.unavailable = false;
  test.loop.advance(seconds(4));
  EXPECT_EQ(test.loop.client.phase(), session::Phase::kOpen);
  EXPECT_EQ(test.server_reauthentications().size(), 1u);
}

TEST(Reauthentication, AClientWithoutTheCapabilityIsCountedAndCutAtItsLifetime) {
  Reauthentication test(
      seconds(10), [](SessionConfig& client, SessionConfig&) { client.reauthenticate = false; });
  EXPECT_FALSE(wire::has(test.loop.client.capabilities(), wire::Capability::kReauthentication));
  EXPECT_EQ(test.loop.server.stats().authentications_without_reauthentication, 1u);
  test.loop.advance(seconds(10) + milliseconds(1));
  ASSERT_TRUE(test.server_closed().has_value());
  EXPECT_EQ(test.server_closed()->reason, wire::Reason::kCredentialsExpired);
  ASSERT_TRUE(test.fixture.client_closed().has_value());
  EXPECT_EQ(test.fixture.client_closed()->reason, wire::Reason::kCredentialsExpired);
}

TEST(Reauthentication, OnUseEnforcementKeepsAnIdleSessionAndEndsItAtItsNextUse) {
  Reauthentication test(seconds(10), [](SessionConfig& client, SessionConfig& server) {
    client.reauthenticate = false;
    server.expiry_enforcement = ExpiryEnforcement::kOnUse;
  });
  test.loop.advance(seconds(60));  // idle, heartbeats only
  EXPECT_EQ(test.loop.client.phase(), session::Phase::kOpen);
  EXPECT_EQ(events_of<events::LifetimePassed>(test.loop.server_events).size(), 1u);
  const auto stream = test.loop.client.open_stream(0, test.loop.now);
  ASSERT_TRUE(stream);
  ASSERT_TRUE(test.loop.client.write(*stream, to_bytes("late"), test.loop.now));
  test.loop.pump();
  ASSERT_TRUE(test.server_closed().has_value());
  EXPECT_EQ(test.server_closed()->reason, wire::Reason::kCredentialsExpired);
  EXPECT_NE(test.server_closed()->message.find("used after its lifetime"), std::string::npos);
  const auto client = test.fixture.client_closed();
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->reason, wire::Reason::kCredentialsExpired);
  EXPECT_EQ(client->unacknowledged_bytes, 4u);  // the write the server refused, counted
}

TEST(Reauthentication, ImmediateEnforcementEndsAnIdleSessionByATimer) {
  Reauthentication test(
      seconds(10), [](SessionConfig& client, SessionConfig&) { client.reauthenticate = false; });
  test.loop.advance(seconds(9));
  EXPECT_FALSE(test.server_closed().has_value());
  test.loop.advance(seconds(1) + milliseconds(1));
  ASSERT_TRUE(test.server_closed().has_value());
  const auto at = first_time<events::Closed>(test.loop.server_events);
  EXPECT_EQ(*at, start_time() + seconds(10));  // at the lifetime's end, not at the next frame
}

TEST(Reauthentication, AuditModeKeepsTheSessionAndCountsWhatItCarries) {
  Reauthentication test(seconds(10), [](SessionConfig& client, SessionConfig& server) {
    client.reauthenticate = false;
    server.lifetime_audit_only = true;
  });
  const auto stream = test.loop.client.open_stream(0, test.loop.now);
  ASSERT_TRUE(stream);
  test.loop.advance(seconds(11));
  const auto passed = events_of<events::LifetimePassed>(test.loop.server_events);
  ASSERT_EQ(passed.size(), 1u);
  EXPECT_TRUE(passed[0].audit_only);
  for (int message = 0; message < 5; ++message) {
    ASSERT_TRUE(test.loop.client.write(*stream, to_bytes("m"), test.loop.now));
    test.loop.advance(milliseconds(100));
  }
  EXPECT_EQ(read_all(*test.server_session(), *stream, test.loop.now), to_bytes("mmmmm"));
  EXPECT_EQ(test.loop.client.phase(), session::Phase::kOpen);
  EXPECT_EQ(test.loop.server.stats().frames_on_expired_sessions, 5u);
  EXPECT_EQ(test.loop.server.stats().expired_sessions_closed, 0u);
  EXPECT_EQ(events_of<events::LifetimePassed>(test.loop.server_events).size(), 1u);  // once
}

TEST(Reauthentication, ASessionSuspendedPastItsLifetimeReauthenticatesBeforeAnyDataFlows) {
  Reauthentication test(seconds(10));
  const auto stream = test.loop.client.open_stream(0, test.loop.now);
  ASSERT_TRUE(stream);
  ASSERT_TRUE(test.loop.client.write(*stream, to_bytes("before"), test.loop.now));
  test.loop.pump();
  ASSERT_EQ(read_all(*test.server_session(), *stream, test.loop.now), to_bytes("before"));
  // The network goes away before the client's re-authentication is due, for 30 s.
  test.loop.network_up = false;
  const PathId first = *test.loop.client.data_path();
  test.loop.close_connection(first);
  test.loop.advance(seconds(5));
  ASSERT_TRUE(test.loop.client.write(*stream, to_bytes("while away"), test.loop.now));
  test.loop.advance(seconds(25));
  ASSERT_NE(test.server_session(), nullptr);  // suspended past its lifetime: kept (linger)
  EXPECT_TRUE(test.fixture.server_auth->counters.exchanges == 1);
  // Back: the server sees the re-authentication complete before the held data arrives.
  std::optional<Time> reauthenticated_at;
  std::optional<Time> data_at;
  test.loop.server_app = [&](const SessionEvent& event) {
    if (std::holds_alternative<events::Reauthenticated>(event.event) && !reauthenticated_at)
      reauthenticated_at = test.loop.now;
    if (std::holds_alternative<events::StreamReadable>(event.event) && !data_at) {
      data_at = test.loop.now;
      EXPECT_TRUE(reauthenticated_at.has_value()) << "data before the re-authentication";
    }
  };
  test.loop.network_up = true;
  test.loop.client.on_network_available(test.loop.now);
  test.loop.advance(seconds(2));
  EXPECT_EQ(test.loop.client.phase(), session::Phase::kOpen);
  EXPECT_FALSE(test.loop.client.suspended());
  EXPECT_EQ(test.loop.client.stats().resumes, 1u);
  EXPECT_TRUE(reauthenticated_at.has_value());
  EXPECT_EQ(read_all(*test.server_session(), *stream, test.loop.now), to_bytes("while away"));
  EXPECT_EQ(test.loop.server.stats().expired_sessions_closed, 0u);
}

TEST(Reauthentication, AResumePastTheLifetimeWithoutReauthenticationEndsInTheGrace) {
  // The client's credential is gone while it was away: the resume succeeds, the exchange cannot
  // start, and the server ends the session when the grace (the handshake timeout) runs out.
  Reauthentication test(seconds(10), [](SessionConfig& client, SessionConfig&) {
    client.reauthentication_retry = seconds(30);
  });
  test.loop.network_up = false;
  test.loop.close_connection(*test.loop.client.data_path());
  test.fixture.client_auth->credential.unavailable = true;
  test.loop.advance(seconds(30));
  test.loop.network_up = true;
  test.loop.client.on_network_available(test.loop.now);
  test.loop.advance(seconds(1));
  EXPECT_EQ(test.loop.client.stats().resumes, 1u);
  test.loop.advance(seconds(11));
  const auto client = test.fixture.client_closed();
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->reason, wire::Reason::kCredentialsExpired);
}

TEST(Reauthentication, ALifetimeThatEndsDuringTheExchangeHoldsDataUntilItCompletes) {
  Reauthentication test(seconds(10));
  const auto stream = test.loop.client.open_stream(0, test.loop.now);
  ASSERT_TRUE(stream);
  // Start the exchange and lose the server's challenge for a while: the lifetime ends meanwhile.
  const Time due = *test.loop.client.deadline(session::TimerSlot::kReauthenticate);
  test.loop.advance_to(due - milliseconds(1));  // heartbeats keep the path alive until then
  test.loop.now = due;
  test.loop.client.on_timeout(test.loop.now);
  const PathId path = *test.loop.client.data_path();
  test.loop.transfer(End::kClient, path);
  ASSERT_TRUE(test.server_session()->reauthenticating());
  Bytes challenge;
  test.loop.take(End::kServer, path, challenge, std::size_t{1} << 20);  // held back
  test.loop.now = start_time() + seconds(10) + milliseconds(1);
  test.loop.client.on_timeout(test.loop.now);
  test.loop.server.on_timeout(test.loop.now);
  ASSERT_EQ(test.loop.client.phase(), session::Phase::kOpen);
  ASSERT_NE(test.server_session(), nullptr);
  // Data written now is held by the client, not dropped.
  ASSERT_TRUE(test.loop.client.write(*stream, to_bytes("held"), test.loop.now));
  Bytes outgoing;
  test.loop.take(End::kClient, path, outgoing, std::size_t{1} << 20);
  for (const auto& frame : frames_of<wire::StreamData>(outgoing)) {
    EXPECT_EQ(frame.stream_id, session::kControlStream) << "stream data sent while held";
  }
  test.loop.deliver(End::kServer, path, outgoing);
  // The challenge arrives; the exchange completes; the data follows.
  test.loop.deliver(End::kClient, path, challenge);
  test.loop.pump();
  EXPECT_EQ(test.server_reauthentications().size(), 1u);
  EXPECT_EQ(read_all(*test.server_session(), *stream, test.loop.now), to_bytes("held"));
  EXPECT_EQ(test.loop.server.stats().expired_sessions_closed, 0u);
}

// ---- Review findings: what a hostile client must not get --------------------------------------

// Takes the session's connection away (the network is gone) and brings it back after `away`.
void drop_and_resume(Reauthentication& test, Duration away) {
  test.loop.network_up = false;
  if (const auto path = test.loop.client.data_path()) test.loop.close_connection(*path);
  test.loop.advance(away);
  test.loop.network_up = true;
  test.loop.client.on_network_available(test.loop.now);
  test.loop.advance(milliseconds(500));
}

// Starts the client's exchange when it is due and keeps the server's first answer from it; the
// lifetime then passes mid-exchange. Returns the held answer.
Bytes stall_exchange_past_lifetime(Reauthentication& test, PathId path) {
  const Time due = *test.loop.client.deadline(session::TimerSlot::kReauthenticate);
  test.loop.advance_to(due - milliseconds(1));
  test.loop.now = due;
  test.loop.client.on_timeout(test.loop.now);
  test.loop.transfer(End::kClient, path);
  EXPECT_TRUE(test.server_session()->reauthenticating());
  Bytes held;
  test.loop.take(End::kServer, path, held, std::size_t{1} << 20);
  test.loop.now = start_time() + seconds(10) + milliseconds(1);
  test.loop.server.on_timeout(test.loop.now);
  test.loop.client.on_timeout(test.loop.now);
  return held;
}

TEST(Reauthentication, ReconnectingDoesNotBuyANewGrace) {
  // A client past its lifetime that cannot re-authenticate resumes, drops, resumes again: the
  // grace starts at the first resume and ends the session, suspended or not.
  Reauthentication test(seconds(10), [](SessionConfig& client, SessionConfig&) {
    client.reauthentication_retry = seconds(300);
  });
  test.fixture.client_auth->credential.unavailable = true;
  test.loop.network_up = false;
  test.loop.close_connection(*test.loop.client.data_path());
  test.loop.advance(seconds(30));
  test.loop.network_up = true;
  test.loop.client.on_network_available(test.loop.now);
  test.loop.advance(milliseconds(500));
  ASSERT_EQ(test.loop.client.stats().resumes, 1u);
  const Time first_resume = test.loop.now;
  // Connected for 8 s, away while the grace ends, back: again and again.
  for (int cycle = 0; cycle < 6 && !test.server_closed(); ++cycle) {
    test.loop.advance(seconds(8));
    drop_and_resume(test, seconds(4));
  }
  const auto server = test.server_closed();
  ASSERT_TRUE(server.has_value()) << "the session outlived its grace by reconnecting";
  EXPECT_EQ(server->reason, wire::Reason::kCredentialsExpired);
  const auto at = first_time<events::Closed>(test.loop.server_events);
  EXPECT_LE(*at, first_resume + seconds(10) + milliseconds(1));
}

TEST(Reauthentication, AnExchangeInFlightPastTheLifetimeCannotOutliveTheGraceWhileSuspended) {
  Reauthentication test(seconds(10));
  const PathId path = *test.loop.client.data_path();
  const Bytes never_answered = stall_exchange_past_lifetime(test, path);
  // The client goes away and never comes back.
  test.loop.network_up = false;
  test.loop.close_connection(path);
  test.loop.advance(seconds(60));
  const auto server = test.server_closed();
  ASSERT_TRUE(server.has_value()) << "the exchange's deadline kept moving while suspended";
  EXPECT_EQ(server->reason, wire::Reason::kCredentialsExpired);
  const auto at = first_time<events::Closed>(test.loop.server_events);
  EXPECT_LE(*at, start_time() + seconds(20) + milliseconds(2));
}

TEST(Reauthentication, InTheGraceTheClientGetsNoNewCredit) {
  Reauthentication test(seconds(10));
  const auto stream = test.loop.client.open_stream(0, test.loop.now);
  ASSERT_TRUE(stream);
  const std::size_t window = test_config().stream_receive_window;
  ASSERT_TRUE(test.loop.client.write(*stream, Bytes(window, std::byte{1}), test.loop.now));
  test.loop.pump();
  const PathId path = *test.loop.client.data_path();
  const Bytes challenge = stall_exchange_past_lifetime(test, path);
  // The server's application reads the whole window: no credit beyond it goes out.
  ASSERT_EQ(read_all(*test.server_session(), *stream, test.loop.now).size(), window);
  Bytes acknowledgements;
  test.loop.take(End::kServer, path, acknowledgements, std::size_t{1} << 20);
  for (const auto& ack : frames_of<wire::Ack>(acknowledgements)) {
    for (const auto& entry : ack.entries) {
      if (entry.stream_id == *stream) {
        EXPECT_LE(entry.window_limit, window) << "credit granted";
      }
    }
  }
  // Once the exchange completes, the credit comes.
  test.loop.deliver(End::kClient, path, challenge);
  test.loop.deliver(End::kClient, path, acknowledgements);
  test.loop.pump();
  ASSERT_EQ(test.server_reauthentications().size(), 1u);
  std::uint64_t granted = 0;
  const Bytes sent = test.loop.sent_on(path, false);
  for (const auto& ack : frames_of<wire::Ack>(sent)) {
    for (const auto& entry : ack.entries) {
      if (entry.stream_id == *stream) granted = std::max(granted, entry.window_limit);
    }
  }
  EXPECT_GT(granted, window);
}

TEST(Reauthentication, InTheGraceANewStreamEndsTheSession) {
  Reauthentication test(seconds(10));
  const PathId path = *test.loop.client.data_path();
  const Bytes held = stall_exchange_past_lifetime(test, path);
  const auto fresh = test.loop.client.open_stream(0, test.loop.now);  // an id the client would use
  ASSERT_TRUE(fresh);
  const bool delivered = inject_stream_data(test.loop, path, *fresh, 0, true, to_bytes("new use"));
  EXPECT_TRUE(delivered);
  test.loop.process_events();
  const auto server = test.server_closed();
  ASSERT_TRUE(server.has_value()) << *fresh;
  EXPECT_EQ(server->reason, wire::Reason::kCredentialsExpired);
  EXPECT_NE(server->message.find("opened a stream"), std::string::npos) << server->message;
}

TEST(Reauthentication, AClientHoldsDataOnlyUntilTheGraceEndsThenTheServerDecides) {
  // An audit-only server never ends the session: the client's credential is gone, so without a
  // bound on its hold its data would wait forever.
  Reauthentication test(seconds(10), [](SessionConfig& client, SessionConfig& server) {
    client.reauthentication_retry = seconds(300);
    server.lifetime_audit_only = true;
  });
  const auto stream = test.loop.client.open_stream(0, test.loop.now);
  ASSERT_TRUE(stream);
  test.fixture.client_auth->credential.unavailable = true;
  test.loop.advance(seconds(11));
  ASSERT_TRUE(test.loop.client.write(*stream, to_bytes("late"), test.loop.now));
  test.loop.advance(seconds(5));
  EXPECT_TRUE(read_all(*test.server_session(), *stream, test.loop.now).empty());  // held
  test.loop.advance(seconds(6));
  EXPECT_EQ(read_all(*test.server_session(), *stream, test.loop.now), to_bytes("late"));
  EXPECT_GE(test.loop.server.stats().frames_on_expired_sessions, 1u);
  EXPECT_EQ(test.loop.client.phase(), session::Phase::kOpen);
}

TEST(Reauthentication, AResumeRefusedPastTheLifetimeEndsTheSessionAtOnce) {
  Reauthentication test(seconds(10), [](SessionConfig& client, SessionConfig& server) {
    client.reauthenticate = false;
    server.expiry_enforcement = ExpiryEnforcement::kOnUse;
  });
  test.loop.network_up = false;
  test.loop.close_connection(*test.loop.client.data_path());
  test.loop.advance(seconds(30));
  ASSERT_FALSE(test.server_closed().has_value());  // on-use: kept while unused
  test.loop.network_up = true;
  test.loop.client.on_network_available(test.loop.now);
  test.loop.advance(milliseconds(500));
  const auto server = test.server_closed();
  ASSERT_TRUE(server.has_value()) << "the refused session lingered";
  EXPECT_EQ(server->reason, wire::Reason::kCredentialsExpired);
  const auto client = test.fixture.client_closed();
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->reason, wire::Reason::kCredentialsExpired);
}

TEST(Reauthentication, AFreedSessionsCountersStayInTheEndpointsTotals) {
  // Metrics sum the live sessions and what the endpoint kept of the freed ones: nothing a session
  // did before it was freed is lost.
  Reauthentication test(seconds(10));
  const auto stream = test.loop.client.open_stream(0, test.loop.now);
  ASSERT_TRUE(stream);
  ASSERT_TRUE(test.loop.client.write(*stream, Bytes(1000, std::byte{7}), test.loop.now));
  test.loop.advance(seconds(30));
  const std::uint64_t rounds = test.server_session()->stats().reauthentications;
  const std::uint64_t received = test.server_session()->stats().bytes_received;
  ASSERT_GE(rounds, 3u);
  ASSERT_GE(received, 1000u);
  test.loop.client.close(test.loop.now);
  test.loop.advance(seconds(2));
  EXPECT_EQ(test.server_session(), nullptr);  // freed
  const session::SessionCounters& freed = test.loop.server.stats().freed_sessions;
  EXPECT_EQ(freed.reauthentications, rounds);
  EXPECT_GE(freed.bytes_received, received);
}

TEST(Reauthentication, ATransientRefusalBeforeLoginIsNotTheReasonGivenForALaterEnd) {
  // The first connection meets a full server (refused, transient); the retry succeeds. When the
  // session later ends at its lifetime, its Closed must not repeat that old refusal.
  Reauthentication test(
      seconds(10), [](SessionConfig& client, SessionConfig&) { client.reauthenticate = false; },
      false);
  const std::size_t cap = test.loop.server.limits().max_pending_connections;
  const Bytes keying(32, std::byte{9});
  for (PathId stranger = 100000; stranger < 100000 + cap; ++stranger) {
    test.loop.server.accept(stranger, keying, test.loop.now, "source-" + std::to_string(stranger));
  }
  test.loop.process_events();
  test.loop.pump();
  ASSERT_NE(test.loop.client.phase(), session::Phase::kOpen);
  for (PathId stranger = 100000; stranger < 100000 + cap; ++stranger) {
    test.loop.server.on_connection_closed(stranger, test.loop.now);
  }
  test.loop.advance(seconds(2));
  ASSERT_EQ(test.loop.client.phase(), session::Phase::kOpen);
  test.loop.advance(seconds(11));
  const auto client = test.fixture.client_closed();
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->reason, wire::Reason::kCredentialsExpired);
  EXPECT_EQ(client->message.find("handshaking"), std::string::npos) << client->message;
}

}  // namespace
}  // namespace tether::test
