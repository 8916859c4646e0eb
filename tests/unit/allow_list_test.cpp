// Unit tests of the server's allow lists: connect patterns (address blocks against the resolved
// address, one-label host-name wildcards, port ranges, the refusal of loopback, link-local and the
// server's own addresses to host-name patterns, IPv4-mapped IPv6), listen patterns (ports below
// 1024, port 0, the unspecified address), and the refusal of malformed patterns.
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "tunnel/allow_list.hpp"

namespace tether::tunnel {
namespace {

using asio::ip::make_address;
using Addresses = std::vector<asio::ip::address>;

Addresses addresses(std::initializer_list<const char*> texts) {
  Addresses out;
  for (const char* text : texts) out.push_back(make_address(text));
  return out;
}

ConnectAllowList connect_list(std::initializer_list<std::string_view> patterns) {
  ConnectAllowList list;
  for (const std::string_view pattern : patterns) {
    const auto added = list.add(pattern);
    EXPECT_TRUE(added) << pattern << ": " << (added ? "" : added.error());
  }
  return list;
}

ListenAllowList listen_list(std::initializer_list<std::string_view> patterns) {
  ListenAllowList list;
  for (const std::string_view pattern : patterns) {
    const auto added = list.add(pattern);
    EXPECT_TRUE(added) << pattern << ": " << (added ? "" : added.error());
  }
  return list;
}

// The server's own addresses in these tests.
const Addresses kOwn = addresses({"192.0.2.10", "2001:db8::10"});

// The addresses `list` lets the server dial for host:port resolving to `resolved` (empty: refused).
Addresses allowed(const ConnectAllowList& list, std::string_view host, std::uint16_t port,
                  const Addresses& resolved) {
  auto result = list.check(host, port, resolved, kOwn);
  if (!result) {
    EXPECT_FALSE(result.error().empty());
    return {};
  }
  EXPECT_FALSE(result->empty());
  return *result;
}

// The refusal text for host:port resolving to `resolved` (fails the test if it is allowed).
std::string refusal(const ConnectAllowList& list, std::string_view host, std::uint16_t port,
                    const Addresses& resolved) {
  auto result = list.check(host, port, resolved, kOwn);
  EXPECT_FALSE(result) << host << ":" << port << " was allowed";
  return result ? std::string() : result.error();
}

TEST(ConnectAllowList, AllowsNothingWhenEmpty) {
  const ConnectAllowList list;
  EXPECT_TRUE(list.empty());
  EXPECT_FALSE(list.may_allow("db.internal", 22));
  EXPECT_TRUE(allowed(list, "10.0.0.1", 22, addresses({"10.0.0.1"})).empty());
}

// The bypass of issue #12: with the old fnmatch rules '10.0.0.*' matched this name, which
// resolved to loopback. The pattern is now refused, and its CIDR form does not match the name.
TEST(ConnectAllowList, RefusesAWildcardAddressAndItsBypass) {
  ConnectAllowList old_style;
  const auto added = old_style.add("10.0.0.*:18002");
  ASSERT_FALSE(added);
  EXPECT_NE(added.error().find("CIDR"), std::string::npos) << added.error();

  const auto list = connect_list({"10.0.0.0/24:18002"});
  EXPECT_TRUE(allowed(list, "10.0.0.7.attacker.example", 18002, addresses({"127.0.0.1"})).empty());
  EXPECT_TRUE(allowed(list, "10.0.0.7", 18002, addresses({"10.0.0.7"})) == addresses({"10.0.0.7"}));
  // Even a name pattern that matches the name grants no loopback address.
  const auto by_name = connect_list({"*.attacker.example:18002", "*.*.*.*.attacker.example:*"});
  EXPECT_TRUE(
      allowed(by_name, "10.0.0.7.attacker.example", 18002, addresses({"127.0.0.1"})).empty());
  EXPECT_TRUE(allowed(by_name, "x.attacker.example", 18002, addresses({"127.0.0.1"})).empty());
}

TEST(ConnectAllowList, AddressPatternsCheckTheResolvedAddress) {
  const auto list = connect_list({"127.0.0.1:6379", "10.0.0.0/24:5432"});
  EXPECT_EQ(allowed(list, "127.0.0.1", 6379, addresses({"127.0.0.1"})), addresses({"127.0.0.1"}));
  EXPECT_TRUE(allowed(list, "127.0.0.1", 6380, addresses({"127.0.0.1"})).empty());
  EXPECT_TRUE(allowed(list, "127.0.0.2", 6379, addresses({"127.0.0.2"})).empty());
  // A name is fine when what it resolves to is in the block; only those addresses are dialled.
  EXPECT_EQ(allowed(list, "db.lan", 5432, addresses({"10.0.0.9", "10.0.1.9", "10.0.0.200"})),
            addresses({"10.0.0.9", "10.0.0.200"}));
  EXPECT_TRUE(allowed(list, "db.lan", 5432, addresses({"10.0.1.9"})).empty());
  EXPECT_TRUE(allowed(list, "10.0.0.255", 5432, addresses({"10.0.0.255"})).size() == 1);
  EXPECT_TRUE(allowed(list, "10.0.1.0", 5432, addresses({"10.0.1.0"})).empty());
}

TEST(ConnectAllowList, MatchesIpv4AndIpv6Blocks) {
  const auto list = connect_list({"[fd00::/8]:*", "[::1]:22", "172.16.0.0/12:443", "0.0.0.0/0:80"});
  EXPECT_EQ(allowed(list, "fd12:3456::1", 9, addresses({"fd12:3456::1"})).size(), 1u);
  EXPECT_TRUE(allowed(list, "fe00::1", 9, addresses({"fe00::1"})).empty());
  EXPECT_EQ(allowed(list, "::1", 22, addresses({"::1"})).size(), 1u);
  EXPECT_TRUE(allowed(list, "::1", 23, addresses({"::1"})).empty());
  EXPECT_EQ(allowed(list, "172.31.255.255", 443, addresses({"172.31.255.255"})).size(), 1u);
  EXPECT_TRUE(allowed(list, "172.32.0.0", 443, addresses({"172.32.0.0"})).empty());
  // An address block of /0 is everything of that family, loopback included: the admin said so.
  EXPECT_EQ(allowed(list, "127.0.0.1", 80, addresses({"127.0.0.1"})).size(), 1u);
  EXPECT_TRUE(allowed(list, "::2", 80, addresses({"::2"})).empty());
}

TEST(ConnectAllowList, HostNameWildcardIsOneLabel) {
  const auto list = connect_list({"*.internal:22"});
  const auto ordinary = addresses({"10.1.2.3"});
  EXPECT_EQ(allowed(list, "db.internal", 22, ordinary), ordinary);
  EXPECT_EQ(allowed(list, "DB.Internal", 22, ordinary), ordinary);
  EXPECT_EQ(allowed(list, "db.internal.", 22, ordinary), ordinary);
  EXPECT_TRUE(allowed(list, "a.b.internal", 22, ordinary).empty());
  EXPECT_TRUE(allowed(list, "internal", 22, ordinary).empty());
  EXPECT_TRUE(allowed(list, "db.internal.evil", 22, ordinary).empty());
  EXPECT_TRUE(allowed(list, "db.internal", 23, ordinary).empty());
  EXPECT_TRUE(allowed(list, "db..internal", 22, ordinary).empty());
  EXPECT_FALSE(list.may_allow("a.b.internal", 22));  // refused before any lookup
}

TEST(ConnectAllowList, HostNamesCompareCaseInsensitively) {
  const auto list = connect_list({"DB.Internal:22", "db.*.example:80"});
  const auto ordinary = addresses({"10.1.2.3"});
  EXPECT_EQ(allowed(list, "db.internal", 22, ordinary), ordinary);
  EXPECT_EQ(allowed(list, "db.EU.example", 80, ordinary), ordinary);
  EXPECT_TRUE(allowed(list, "db.eu.west.example", 80, ordinary).empty());
}

TEST(ConnectAllowList, LiteralAddressesAreCheckedOnlyAgainstAddressPatterns) {
  // '*' would match the single label of a name; a literal address is never matched by name.
  const auto list = connect_list({"*:22", "*.*.*.*:80"});
  EXPECT_TRUE(allowed(list, "10.1.2.3", 80, addresses({"10.1.2.3"})).empty());
  EXPECT_TRUE(allowed(list, "::1", 22, addresses({"::1"})).empty());
  // Numbers the resolver would read as addresses are not host names either.
  EXPECT_FALSE(list.may_allow("127.1", 80));
  EXPECT_FALSE(list.may_allow("0x7f.1", 80));
  EXPECT_FALSE(list.may_allow("2130706433", 22));
  EXPECT_EQ(allowed(list, "gateway", 22, addresses({"10.1.2.3"})).size(), 1u);
}

TEST(ConnectAllowList, PortRangesAndAnyPort) {
  const auto list = connect_list({"10.0.0.1:8000-8099", "10.0.0.2:*", "web.internal:8080-8081"});
  const auto one = addresses({"10.0.0.1"});
  EXPECT_EQ(allowed(list, "10.0.0.1", 8000, one).size(), 1u);
  EXPECT_EQ(allowed(list, "10.0.0.1", 8099, one).size(), 1u);
  EXPECT_TRUE(allowed(list, "10.0.0.1", 7999, one).empty());
  EXPECT_TRUE(allowed(list, "10.0.0.1", 8100, one).empty());
  EXPECT_EQ(allowed(list, "10.0.0.2", 1, addresses({"10.0.0.2"})).size(), 1u);
  EXPECT_EQ(allowed(list, "10.0.0.2", 65535, addresses({"10.0.0.2"})).size(), 1u);
  EXPECT_TRUE(allowed(list, "10.0.0.2", 0, addresses({"10.0.0.2"})).empty());
  EXPECT_EQ(allowed(list, "web.internal", 8081, addresses({"10.9.9.9"})).size(), 1u);
  EXPECT_TRUE(allowed(list, "web.internal", 8082, addresses({"10.9.9.9"})).empty());
}

TEST(ConnectAllowList, HostNamePatternsRefuseLocalAndOwnAddresses) {
  const auto list = connect_list({"*.internal:*", "localhost:5432"});
  for (const char* local : {"127.0.0.1", "127.9.9.9", "::1", "169.254.169.254", "fe80::1",
                            "0.0.0.0", "::", "::ffff:127.0.0.1", "::ffff:169.254.1.1",
                            "::ffff:0.0.0.0", "192.0.2.10", "2001:db8::10", "::ffff:192.0.2.10"}) {
    const std::string why = refusal(list, "db.internal", 80, addresses({local}));
    EXPECT_NE(why.find("loopback, link-local or the server's own"), std::string::npos)
        << local << ": " << why;
  }
  // localhost resolves to loopback: a name pattern never reaches it.
  EXPECT_TRUE(allowed(list, "localhost", 5432, addresses({"127.0.0.1", "::1"})).empty());
  // Of a mixed answer only the ordinary addresses are dialled.
  EXPECT_EQ(allowed(list, "db.internal", 80, addresses({"127.0.0.1", "10.0.0.5", "fe80::2"})),
            addresses({"10.0.0.5"}));
}

TEST(ConnectAllowList, AddressPatternsGrantWhatNamePatternsDoNot) {
  const auto list = connect_list({"localhost:5432", "127.0.0.1:5432"});
  // The name matches, ::1 is not granted by any address pattern, 127.0.0.1 is.
  EXPECT_EQ(allowed(list, "localhost", 5432, addresses({"::1", "127.0.0.1"})),
            addresses({"127.0.0.1"}));
}

TEST(ConnectAllowList, Ipv4MappedAddressesAreCheckedAsIpv4) {
  const auto list = connect_list({"10.0.0.0/8:443", "[::ffff:192.168.0.0/112]:443"});
  EXPECT_EQ(allowed(list, "::ffff:10.1.1.1", 443, addresses({"::ffff:10.1.1.1"})),
            addresses({"10.1.1.1"}));
  EXPECT_EQ(allowed(list, "192.168.3.4", 443, addresses({"192.168.3.4"})).size(), 1u);
  EXPECT_TRUE(allowed(list, "192.169.0.1", 443, addresses({"192.169.0.1"})).empty());
  // A mapped loopback is loopback: '10.0.0.0/8' does not cover it, a name pattern refuses it.
  EXPECT_TRUE(allowed(list, "::ffff:127.0.0.1", 443, addresses({"::ffff:127.0.0.1"})).empty());
}

TEST(ConnectAllowList, ResolutionsWithNothingLeftSayWhy) {
  const auto list = connect_list({"db.internal:5432"});
  EXPECT_NE(refusal(list, "db.internal", 5432, {}).find("no address"), std::string::npos);
  EXPECT_NE(refusal(list, "web.internal", 5432, addresses({"10.0.0.1"})).find("allow list"),
            std::string::npos);
  // Peer-chosen text is escaped in the reason.
  const std::string why = refusal(list, "bad\nname", 5432, addresses({"10.0.0.1"}));
  EXPECT_EQ(why.find('\n'), std::string::npos) << why;
}

TEST(ConnectAllowList, RefusesMalformedPatternsClearly) {
  const std::pair<const char*, const char*> cases[] = {
      {"localhost", "HOST:PORT"},
      {":22", "HOST:PORT"},
      {"localhost:", "HOST:PORT"},
      {"", "HOST:PORT"},
      {"10.0.0.*:22", "CIDR"},
      {"10.*.*.*:22", "CIDR"},
      {"127.1:22", "CIDR"},
      {"web?:80", "whole label"},
      {"web*.internal:80", "whole label"},
      {"[fe80::*]:443", "IPv6"},
      {"::1:22", "brackets"},
      {"fd00::/8:22", "brackets"},
      {"10.0.0.7/24:22", "past its /24"},
      {"10.0.0.0/33:22", "prefix length"},
      {"[10.0.0.1]:22", "IPv6"},
      {"host:0", "port 0"},
      {"host:8?", "range"},
      {"host:90-80", "range"},
      {"host:0-80", "range"},
      {"host:65536", "range"},
      {"host name:22", "neither"},
      {"[fe80::1%eth0]:22", "scope"},
  };
  for (const auto& [pattern, expected] : cases) {
    ConnectAllowList list;
    const auto added = list.add(pattern);
    ASSERT_FALSE(added) << pattern;
    EXPECT_NE(added.error().find(expected), std::string::npos) << pattern << ": " << added.error();
    EXPECT_TRUE(list.empty());
  }
}

TEST(ConnectAllowList, MayAllowSkipsLookupsNothingCouldAllow) {
  const auto names_only = connect_list({"db.internal:5432"});
  EXPECT_TRUE(names_only.may_allow("db.internal", 5432));
  EXPECT_FALSE(names_only.may_allow("other.example", 5432));
  // With an address block on that port, any name might resolve into it.
  const auto blocks = connect_list({"10.0.0.0/8:5432"});
  EXPECT_TRUE(blocks.may_allow("other.example", 5432));
  EXPECT_FALSE(blocks.may_allow("other.example", 5433));
  EXPECT_FALSE(blocks.may_allow("11.0.0.1", 5432));
}

// ---- listen

// The address `list` binds for a listen request on host:port, or "refused: REASON".
std::string bind_for(const ListenAllowList& list, std::string_view host, std::uint16_t port) {
  const auto result = list.check(host, port);
  return result ? result->to_string() : "refused: " + result.error();
}

TEST(ListenAllowList, RefusesEverythingByDefault) {
  const ListenAllowList list;
  EXPECT_TRUE(list.empty());
  EXPECT_NE(bind_for(list, "127.0.0.1", 8080).find("no --allow-listen"), std::string::npos);
}

TEST(ListenAllowList, MatchesTheBindAddress) {
  const auto list = listen_list({"127.0.0.1:8080", "10.0.0.0/24:9000-9099", "[::1]:*"});
  EXPECT_EQ(bind_for(list, "127.0.0.1", 8080), "127.0.0.1");
  EXPECT_EQ(bind_for(list, "localhost", 8080), "127.0.0.1");
  EXPECT_EQ(bind_for(list, "::ffff:127.0.0.1", 8080), "127.0.0.1");
  EXPECT_EQ(bind_for(list, "10.0.0.4", 9050), "10.0.0.4");
  EXPECT_EQ(bind_for(list, "::1", 2222), "::1");
  EXPECT_NE(bind_for(list, "127.0.0.1", 8081).find("refused"), std::string::npos);
  EXPECT_NE(bind_for(list, "10.0.0.4", 9100).find("refused"), std::string::npos);
  // Host names are not resolved for listeners.
  EXPECT_NE(bind_for(list, "my.host", 8080).find("IP address or localhost"), std::string::npos);
}

TEST(ListenAllowList, PortsBelow1024OnlyWhenListedExactly) {
  const auto list = listen_list({"127.0.0.1:*", "127.0.0.1:1-2000", "127.0.0.2:22"});
  EXPECT_EQ(bind_for(list, "127.0.0.1", 1024), "127.0.0.1");
  EXPECT_EQ(bind_for(list, "127.0.0.1", 65535), "127.0.0.1");
  const std::string why = bind_for(list, "127.0.0.1", 25);
  EXPECT_NE(why.find("below 1024"), std::string::npos) << why;
  EXPECT_EQ(bind_for(list, "127.0.0.2", 22), "127.0.0.2");
}

TEST(ListenAllowList, PortZeroOnlyWhenListed) {
  const auto without = listen_list({"127.0.0.1:*"});
  EXPECT_NE(bind_for(without, "127.0.0.1", 0).find("port 0"), std::string::npos);
  const auto with = listen_list({"127.0.0.1:0"});
  EXPECT_EQ(bind_for(with, "127.0.0.1", 0), "127.0.0.1");
  EXPECT_NE(bind_for(with, "127.0.0.1", 8080).find("refused"), std::string::npos);
}

TEST(ListenAllowList, EveryAddressOnlyWhenNamedExactly) {
  const auto blocks = listen_list({"0.0.0.0/0:18010", "[::/0]:18010"});
  EXPECT_EQ(bind_for(blocks, "192.0.2.1", 18010), "192.0.2.1");
  EXPECT_NE(bind_for(blocks, "0.0.0.0", 18010).find("every address"), std::string::npos);
  EXPECT_NE(bind_for(blocks, "::", 18010).find("every address"), std::string::npos);
  EXPECT_NE(bind_for(blocks, "::ffff:0.0.0.0", 18010).find("every address"), std::string::npos);
  const auto exact = listen_list({"0.0.0.0:18010"});
  EXPECT_EQ(bind_for(exact, "0.0.0.0", 18010), "0.0.0.0");
}

TEST(ListenAllowList, ConnectPatternsNeverGrantAListener) {
  // The same texts as connect patterns allow targets; as a listen list is separate and empty, -R
  // is refused (the types keep the lists apart: a ServerTunnel has one of each).
  const auto connect = connect_list({"127.0.0.1:*", "*:18010"});
  EXPECT_EQ(allowed(connect, "127.0.0.1", 25, addresses({"127.0.0.1"})).size(), 1u);
  const ListenAllowList listen;
  EXPECT_NE(bind_for(listen, "127.0.0.1", 25).find("refused"), std::string::npos);
  // And a host-name pattern is no listen pattern at all.
  ListenAllowList names;
  const auto added = names.add("*:18010");
  ASSERT_FALSE(added);
  EXPECT_NE(added.error().find("not host names"), std::string::npos) << added.error();
}

TEST(ListenAllowList, RefusesMalformedPatterns) {
  for (const char* pattern :
       {"127.0.0.1", "127.0.0.*:80", "my.host:80", "127.0.0.1:0-10", "[::1]:x", "10.0.0.1/8:80"}) {
    ListenAllowList list;
    EXPECT_FALSE(list.add(pattern)) << pattern;
  }
}

TEST(HostAddresses, IncludesLoopback) {
  const Addresses own = host_addresses();
  EXPECT_NE(std::find(own.begin(), own.end(), make_address("127.0.0.1")), own.end());
}

}  // namespace
}  // namespace tether::tunnel
