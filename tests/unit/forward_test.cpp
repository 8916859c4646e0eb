// Forward-spec parsing (-L, -R, -D): the accepted forms and errors that name the flag and the spec.
#include <gtest/gtest.h>

#include <string>

#include "tunnel/tunnel.hpp"

namespace tether {
namespace {

using tunnel::Forward;
using tunnel::parse_forward;

TEST(ParseForward, LocalWithDefaultBind) {
  auto forward = parse_forward(Forward::Kind::kLocal, "8080:db.internal:5432");
  ASSERT_TRUE(forward) << forward.error();
  EXPECT_EQ(forward->bind_address, "127.0.0.1");
  EXPECT_EQ(forward->bind_port, 8080);
  EXPECT_EQ(forward->target.host, "db.internal");
  EXPECT_EQ(forward->target.port, 5432);
  EXPECT_EQ(forward->target.kind, tunnel::RequestKind::kConnect);
}

TEST(ParseForward, RemoteWithBindAndIpv6Target) {
  auto forward = parse_forward(Forward::Kind::kRemote, "0.0.0.0:2222:[::1]:22");
  ASSERT_TRUE(forward) << forward.error();
  EXPECT_EQ(forward->kind, Forward::Kind::kRemote);
  EXPECT_EQ(forward->bind_address, "0.0.0.0");
  EXPECT_EQ(forward->bind_port, 2222);
  EXPECT_EQ(forward->target.host, "::1");
  EXPECT_EQ(forward->target.port, 22);
}

TEST(ParseForward, RemoteMayAskForAnyFreePort) {
  auto forward = parse_forward(Forward::Kind::kRemote, "0:127.0.0.1:22");
  ASSERT_TRUE(forward) << forward.error();
  EXPECT_EQ(forward->bind_address, "127.0.0.1");
  EXPECT_EQ(forward->bind_port, 0);
  EXPECT_FALSE(parse_forward(Forward::Kind::kLocal, "0:127.0.0.1:22"));
  EXPECT_FALSE(parse_forward(Forward::Kind::kRemote, "8080:127.0.0.1:0"));
}

TEST(ParseForward, LocalWithIpv6Bind) {
  auto forward = parse_forward(Forward::Kind::kLocal, "[::1]:8080:example.com:80");
  ASSERT_TRUE(forward) << forward.error();
  EXPECT_EQ(forward->bind_address, "::1");
  EXPECT_EQ(forward->bind_port, 8080);
  EXPECT_EQ(forward->target.host, "example.com");
}

TEST(ParseForward, DynamicPortOnlyAndWithBind) {
  auto port_only = parse_forward(Forward::Kind::kDynamic, "1080");
  ASSERT_TRUE(port_only) << port_only.error();
  EXPECT_EQ(port_only->bind_address, "127.0.0.1");
  EXPECT_EQ(port_only->bind_port, 1080);
  auto with_bind = parse_forward(Forward::Kind::kDynamic, "[::1]:1081");
  ASSERT_TRUE(with_bind) << with_bind.error();
  EXPECT_EQ(with_bind->bind_address, "::1");
  EXPECT_EQ(with_bind->bind_port, 1081);
}

TEST(ParseForward, ErrorsNameTheFlagAndTheSpec) {
  const struct {
    Forward::Kind kind;
    const char* text;
    const char* expected;
  } cases[] = {
      {Forward::Kind::kLocal, "8080", "-L expects [BIND:]PORT:HOST:HOSTPORT, got '8080'"},
      {Forward::Kind::kRemote, "8080:host", "-R expects"},
      {Forward::Kind::kLocal, "8080:host:99999", "-L 8080:host:99999"},
      {Forward::Kind::kLocal, "x:host:80", "-L x:host:80"},
      {Forward::Kind::kDynamic, "socks", "-D socks"},
      {Forward::Kind::kDynamic, "", "-D "},
  };
  for (const auto& entry : cases) {
    auto forward = parse_forward(entry.kind, entry.text);
    ASSERT_FALSE(forward) << entry.text;
    EXPECT_NE(forward.error().find(entry.expected), std::string::npos)
        << entry.text << " gave: " << forward.error();
  }
}

}  // namespace
}  // namespace tether
