// Tests of revocation in the core (ServerEndpoint::revoke_principal, revoke_session,
// revoke_credential, revoke_matching): the matching sessions end at once with reason revoked on
// both sides (an Abort on the live connection), the others stay up, each is counted once, and the
// credential id a mechanism reports reaches the session's peer. The mechanism is a test double.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "session/authenticator.hpp"
#include "tests/unit/loopback.hpp"

namespace tether::test {
namespace {

using session::AuthenticationFailure;
using session::AuthenticationStep;
using session::ConnectionSecurity;

std::string text_of(std::span<const std::byte> bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// "NAME-ID": one round, the initial response "name:credential-id" (the id may be empty).
class NamedServerExchange : public session::ServerAuthentication {
 public:
  AuthenticationStep start(std::optional<std::span<const std::byte>> initial) override {
    if (!initial) return AuthenticationStep::fail(AuthenticationFailure::kMalformed, "no name");
    const std::string text = text_of(*initial);
    const auto colon = text.find(':');
    if (colon == std::string::npos || colon == 0)
      return AuthenticationStep::fail(AuthenticationFailure::kMalformed, "no name");
    AuthenticationStep step;
    step.status = AuthenticationStep::Status::kSucceeded;
    step.principal = text.substr(0, colon);
    step.claimed_identity = step.principal;
    step.credential_id = text.substr(colon + 1);
    return step;
  }
  AuthenticationStep step(std::span<const std::byte>) override {
    return AuthenticationStep::fail(AuthenticationFailure::kMalformed, "one round only");
  }
};

class NamedServerAuthenticator : public session::ServerAuthenticator {
 public:
  std::vector<std::string> mechanisms() const override { return {"NAME-ID"}; }
  std::unique_ptr<session::ServerAuthentication> start(std::string_view mechanism,
                                                       const ConnectionSecurity&) override {
    if (mechanism != "NAME-ID") return nullptr;
    return std::make_unique<NamedServerExchange>();
  }
};

class NamedClientExchange : public session::ClientAuthentication {
 public:
  explicit NamedClientExchange(std::string initial) : initial_(std::move(initial)) {}
  std::string mechanism() const override { return "NAME-ID"; }
  AuthenticationStep start() override { return AuthenticationStep::proceed(to_bytes(initial_)); }
  AuthenticationStep step(std::span<const std::byte>) override {
    return AuthenticationStep::fail(AuthenticationFailure::kMalformed, "one round only");
  }
  AuthenticationStep finish(std::span<const std::byte>) override {
    AuthenticationStep step;
    step.status = AuthenticationStep::Status::kSucceeded;
    return step;
  }

 private:
  std::string initial_;
};

class NamedClientAuthenticator : public session::ClientAuthenticator {
 public:
  std::string initial = "alice:token-a";
  std::unique_ptr<session::ClientAuthentication> start(const ConnectionSecurity&) override {
    return std::make_unique<NamedClientExchange>(initial);
  }
};

// The loopback's client is alice (credential token-a); other sessions are opened by hand on raw
// connections and their server-side frames read back.
struct Fixture {
  std::shared_ptr<NamedClientAuthenticator> client_auth =
      std::make_shared<NamedClientAuthenticator>();
  std::unique_ptr<Loopback> loop;
  SplitMix64 random{29};
  PathId next_raw = 1000;

  Fixture() {
    SessionConfig client_config = test_config();
    client_config.authenticator = client_auth;
    loop = std::make_unique<Loopback>(client_config, test_config());
    loop->server.set_authenticator(std::make_shared<NamedServerAuthenticator>());
  }

  struct RawSession {
    PathId connection = 0;
    session::SessionId id{};
  };

  // A session opened by hand: Hello with "name:credential", the Welcome read back.
  RawSession open_raw(const std::string& initial) {
    RawSession raw;
    raw.connection = next_raw++;
    const Bytes keying = random_bytes(random, 32);
    wire::Hello hello;
    hello.heartbeat_interval_ms = 1000;
    hello.missing_heartbeats_allowed = 3;
    hello.mechanism = "NAME-ID";
    hello.initial_response = to_bytes(initial);
    const auto frames = decode_all(loop->raw_exchange(raw.connection, keying, encode(hello)));
    for (const auto& frame : frames) {
      if (const auto* welcome = std::get_if<wire::Welcome>(&frame)) raw.id = welcome->session_id;
    }
    EXPECT_NE(raw.id, session::SessionId{}) << "no Welcome for " << initial;
    return raw;
  }

  // The frames the server has queued on a raw connection since the last call.
  std::vector<wire::Frame> raw_output(PathId connection) {
    Bytes out;
    loop->server.take_outgoing(connection, out, std::size_t{1} << 20, loop->now);
    return decode_all(out);
  }

  std::optional<session::events::Closed> client_closed() const {
    auto closed = events_of<session::events::Closed>(loop->client_events);
    if (closed.empty()) return std::nullopt;
    return closed.back();
  }

  // The Closed events the server queued for `id` (drained first).
  std::vector<session::events::Closed> server_closed(const session::SessionId& id) {
    loop->process_events();
    std::vector<session::events::Closed> out;
    for (const auto& entry : loop->server_events) {
      const auto* closed = std::get_if<session::events::Closed>(&entry.event.event);
      if (closed != nullptr && entry.event.session == id) out.push_back(*closed);
    }
    return out;
  }
};

bool has_revoking_abort(const std::vector<wire::Frame>& frames) {
  for (const auto& frame : frames) {
    const auto* abort = std::get_if<wire::Abort>(&frame);
    if (abort != nullptr && abort->reason == wire::Reason::kRevoked && !abort->transient)
      return true;
  }
  return false;
}

TEST(Revocation, TheCredentialIdReachesTheSessionsPeer) {
  Fixture fixture;
  const auto id = fixture.loop->establish();
  ASSERT_NE(fixture.loop->server.find(id), nullptr);
  EXPECT_EQ(fixture.loop->server.find(id)->peer().principal, "alice");
  EXPECT_EQ(fixture.loop->server.find(id)->peer().credential_id, "token-a");
}

TEST(Revocation, RevokingAPrincipalEndsItsSessionsAtOnceAndLeavesOthersUp) {
  Fixture fixture;
  const auto alice = fixture.loop->establish();
  const auto alice_again = fixture.open_raw("alice:token-b");
  const auto bob = fixture.open_raw("bob:token-c");
  (void)fixture.raw_output(bob.connection);

  const std::size_t revoked =
      fixture.loop->server.revoke_principal("alice", fixture.loop->now, "revoked by test");
  EXPECT_EQ(revoked, 2u);
  EXPECT_EQ(fixture.loop->server.stats().sessions_revoked, 2u);

  // Both of alice's sessions are closed on the server at once, with the message; the Abort is
  // queued on the second one's connection (read before the events are acted on).
  EXPECT_TRUE(has_revoking_abort(fixture.raw_output(alice_again.connection)));
  const auto closed = fixture.server_closed(alice);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, wire::Reason::kRevoked);
  EXPECT_FALSE(closed[0].by_peer);
  EXPECT_EQ(closed[0].message, "revoked by test");
  ASSERT_EQ(fixture.server_closed(alice_again.id).size(), 1u);

  // The client learns it from the Abort, without waiting for any timer.
  fixture.loop->pump();
  fixture.loop->process_events();
  const auto client = fixture.client_closed();
  ASSERT_TRUE(client.has_value());
  EXPECT_EQ(client->reason, wire::Reason::kRevoked);
  EXPECT_TRUE(client->by_peer);
  EXPECT_FALSE(client->transient);

  // Bob's session is untouched: open, nothing sent to it, no Closed.
  ASSERT_NE(fixture.loop->server.find(bob.id), nullptr);
  EXPECT_EQ(fixture.loop->server.find(bob.id)->phase(), session::Phase::kOpen);
  EXPECT_FALSE(has_revoking_abort(fixture.raw_output(bob.connection)));
  EXPECT_TRUE(fixture.server_closed(bob.id).empty());

  // Revoking again finds nothing more to end and counts nothing.
  EXPECT_EQ(fixture.loop->server.revoke_principal("alice", fixture.loop->now), 0u);
  EXPECT_EQ(fixture.loop->server.stats().sessions_revoked, 2u);
}

TEST(Revocation, RevokingOneSessionLeavesTheSameUsersOtherSessions) {
  Fixture fixture;
  const auto alice = fixture.loop->establish();
  const auto alice_again = fixture.open_raw("alice:token-b");
  (void)fixture.raw_output(alice_again.connection);

  EXPECT_TRUE(fixture.loop->server.revoke_session(alice_again.id, fixture.loop->now, "one"));
  EXPECT_TRUE(has_revoking_abort(fixture.raw_output(alice_again.connection)));
  EXPECT_EQ(fixture.loop->server.stats().sessions_revoked, 1u);
  fixture.loop->pump();
  EXPECT_EQ(fixture.loop->client.phase(), session::Phase::kOpen);
  EXPECT_TRUE(fixture.server_closed(alice).empty());

  // Unknown and already-ended sessions: false, and nothing counted.
  EXPECT_FALSE(fixture.loop->server.revoke_session(alice_again.id, fixture.loop->now));
  session::SessionId unknown{};
  unknown[0] = std::byte{0x42};
  EXPECT_FALSE(fixture.loop->server.revoke_session(unknown, fixture.loop->now));
  EXPECT_EQ(fixture.loop->server.stats().sessions_revoked, 1u);
}

TEST(Revocation, RevokingACredentialEndsOnlyTheSessionsItAuthenticated) {
  Fixture fixture;
  const auto alice = fixture.loop->establish();  // token-a
  const auto alice_again = fixture.open_raw("alice:token-b");
  const auto bob = fixture.open_raw("bob:token-a");  // the same id from another user's token
  const auto carol = fixture.open_raw("carol:");     // no credential id
  (void)fixture.raw_output(alice_again.connection);
  (void)fixture.raw_output(carol.connection);

  EXPECT_EQ(fixture.loop->server.revoke_credential("token-a", fixture.loop->now), 2u);
  EXPECT_TRUE(has_revoking_abort(fixture.raw_output(bob.connection)));
  fixture.loop->pump();
  fixture.loop->process_events();
  ASSERT_TRUE(fixture.client_closed().has_value());
  EXPECT_EQ(fixture.client_closed()->reason, wire::Reason::kRevoked);
  ASSERT_EQ(fixture.server_closed(alice).size(), 1u);
  // A revocation without a message still says why in the server's Closed event.
  EXPECT_FALSE(fixture.server_closed(alice)[0].message.empty());
  EXPECT_EQ(fixture.loop->server.find(alice_again.id)->phase(), session::Phase::kOpen);
  EXPECT_FALSE(has_revoking_abort(fixture.raw_output(alice_again.connection)));

  // An empty id names no credential: sessions without one are never matched by it.
  EXPECT_EQ(fixture.loop->server.revoke_credential("", fixture.loop->now), 0u);
  EXPECT_EQ(fixture.loop->server.find(carol.id)->phase(), session::Phase::kOpen);
  EXPECT_EQ(fixture.loop->server.revoke_principal("", fixture.loop->now), 0u);
}

TEST(Revocation, ASuspendedSessionIsRevokedAndItsResumeIsRefused) {
  Fixture fixture;
  const auto alice = fixture.loop->establish();
  // The client's connection breaks: both sides suspend the session.
  fixture.loop->auto_connect = false;
  fixture.loop->close_connection(fixture.loop->connections.begin()->first);
  fixture.loop->process_events();
  ASSERT_TRUE(fixture.loop->server.find(alice)->suspended());

  EXPECT_EQ(fixture.loop->server.revoke_principal("alice", fixture.loop->now), 1u);
  ASSERT_EQ(fixture.server_closed(alice).size(), 1u);
  EXPECT_EQ(fixture.server_closed(alice)[0].reason, wire::Reason::kRevoked);
  // The session is freed (it has no connection left), so a Resume finds nothing to resume.
  EXPECT_EQ(fixture.loop->server.find(alice), nullptr);
  fixture.loop->auto_connect = true;
  fixture.loop->connect();
  fixture.loop->pump();
  fixture.loop->process_events();
  ASSERT_TRUE(fixture.client_closed().has_value());
  EXPECT_EQ(fixture.client_closed()->reason, wire::Reason::kUnknownSession);
}

TEST(Revocation, RevokeMatchingSeesEachOpenSessionsPeer) {
  Fixture fixture;
  (void)fixture.loop->establish();
  const auto bob = fixture.open_raw("bob:token-b");
  const auto carol = fixture.open_raw("carol:token-c");
  std::vector<std::string> seen;
  const std::size_t revoked = fixture.loop->server.revoke_matching(
      [&](const session::AuthenticatedPeer& peer) {
        seen.push_back(peer.principal);
        return peer.principal != "carol";
      },
      fixture.loop->now, "users file: disabled");
  EXPECT_EQ(revoked, 2u);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"alice", "bob", "carol"}));
  ASSERT_EQ(fixture.server_closed(bob.id).size(), 1u);
  EXPECT_EQ(fixture.server_closed(bob.id)[0].message, "users file: disabled");
  EXPECT_EQ(fixture.loop->server.find(carol.id)->phase(), session::Phase::kOpen);
  // Closed sessions are not offered again.
  seen.clear();
  EXPECT_EQ(fixture.loop->server.revoke_matching(
                [&](const session::AuthenticatedPeer& peer) {
                  seen.push_back(peer.principal);
                  return true;
                },
                fixture.loop->now),
            1u);
  EXPECT_EQ(seen, (std::vector<std::string>{"carol"}));
}

}  // namespace
}  // namespace tether::test
