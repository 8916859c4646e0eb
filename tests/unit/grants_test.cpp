// Tests of Grants: per user, per group and per token scope, enforced only once configured, and
// parse errors that say what is wrong.
#include "tunnel/grants.hpp"

#include <gtest/gtest.h>

namespace tether::tunnel {
namespace {

session::AuthenticatedPeer peer(std::string principal, std::vector<std::string> scopes = {}) {
  session::AuthenticatedPeer result;
  result.principal = std::move(principal);
  result.mechanism = "SCRAM-SHA-256-PLUS";
  result.scopes = std::move(scopes);
  return result;
}

const std::vector<asio::ip::address> kNoOwn;

bool may_connect(const PrincipalGrant& grant, const std::string& address, std::uint16_t port) {
  const std::vector<asio::ip::address> resolved{asio::ip::make_address(address)};
  return grant.any_connect && grant.connect.check(address, port, resolved, kNoOwn).has_value();
}

TEST(Grants, NotEnforcedUntilConfigured) {
  Grants grants;
  EXPECT_FALSE(grants.enforced());
  EXPECT_FALSE(grants.for_peer(peer("alice")).has_value());
}

TEST(Grants, UsersAndGroupsGetTheirOwnTargetsOnly) {
  Grants grants;
  ASSERT_TRUE(grants.add_group("ops=bob,carol"));
  ASSERT_TRUE(grants.add_connect("alice=10.0.0.5:5432"));
  ASSERT_TRUE(grants.add_connect("@ops=10.0.0.0/24:22"));
  ASSERT_TRUE(grants.add_listen("bob=127.0.0.1:8000-8099"));
  auto alice = grants.for_peer(peer("alice"));
  ASSERT_TRUE(alice.has_value());
  EXPECT_TRUE(may_connect(*alice, "10.0.0.5", 5432));
  EXPECT_FALSE(may_connect(*alice, "10.0.0.5", 22));
  EXPECT_FALSE(alice->any_listen);
  auto bob = grants.for_peer(peer("bob"));
  EXPECT_TRUE(may_connect(*bob, "10.0.0.9", 22));
  EXPECT_FALSE(may_connect(*bob, "10.0.0.5", 5432));
  EXPECT_TRUE(bob->any_listen && bob->listen.check("127.0.0.1", 8080).has_value());
  // Someone with no grant gets nothing, and so does a session without a principal.
  EXPECT_FALSE(grants.for_peer(peer("mallory"))->any_connect);
  EXPECT_FALSE(grants.for_peer(peer(""))->any_connect);
  // A user named like a group is not in it.
  EXPECT_FALSE(grants.for_peer(peer("@ops"))->any_connect);
}

TEST(Grants, TokenScopesGrantAndOtherScopesAreIgnored) {
  Grants grants;
  ASSERT_TRUE(grants.add_connect("alice=10.0.0.5:5432"));
  std::vector<std::string> ignored;
  auto carol = grants.for_peer(
      peer("carol", {"tether:connect:10.0.0.7:443", "read:mail", "tether:connect:not a pattern",
                     "tether:listen:127.0.0.1:9000"}),
      &ignored);
  ASSERT_TRUE(carol.has_value());
  EXPECT_TRUE(may_connect(*carol, "10.0.0.7", 443));
  EXPECT_FALSE(may_connect(*carol, "10.0.0.5", 5432));
  EXPECT_TRUE(carol->listen.check("127.0.0.1", 9000).has_value());
  EXPECT_EQ(ignored, std::vector<std::string>{"tether:connect:not a pattern"});
}

TEST(Grants, BadOptionsSayWhatIsWrong) {
  Grants grants;
  EXPECT_FALSE(grants.add_connect("alice"));
  EXPECT_FALSE(grants.add_connect("=10.0.0.1:22"));
  auto bad = grants.add_connect("alice=10.0.0.1");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().find("--grant"), std::string::npos);
  EXPECT_FALSE(grants.add_listen("alice=db.internal:80"));  // listen patterns are addresses
  EXPECT_FALSE(grants.add_group("=alice"));
  EXPECT_FALSE(grants.enforced());
}

}  // namespace
}  // namespace tether::tunnel
