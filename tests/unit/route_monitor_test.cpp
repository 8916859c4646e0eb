// Route monitor tests: the rtnetlink parser on hand-built kernel messages (addresses, default
// routes, what is ignored, and malformed input), the Asio conversions and the connection policy,
// and the monitor's socket life cycle. The fuzzer's seeds are these messages, written out by
// `TETHER_ROUTE_SEED_DIRECTORY=fuzz/corpus/route_message route_monitor_test
// --gtest_also_run_disabled_tests --gtest_filter='*WriteFuzzerSeeds'`.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "transport/route_monitor.hpp"

namespace tether::transport {
namespace {

using netlink::AddressAdded;
using netlink::AddressFamily;
using netlink::AddressRemoved;
using netlink::DefaultRouteChanged;
using netlink::IpAddress;
using netlink::parse_route_messages;
using netlink::RouteMessageEvent;
using Bytes = std::vector<std::byte>;

template <typename Structure>
void append(Bytes& out, const Structure& value) {
  const std::size_t at = out.size();
  out.resize(at + sizeof(Structure));
  std::memcpy(out.data() + at, &value, sizeof(Structure));
}

void pad(Bytes& out) {
  while (out.size() % 4 != 0) out.push_back(std::byte{0});
}

// One netlink message built field by field, independently of the library's encoder.
class Message {
 public:
  explicit Message(std::uint16_t type, std::uint16_t flags = 0) {
    nlmsghdr header{};
    header.nlmsg_type = type;
    header.nlmsg_flags = flags;
    header.nlmsg_seq = 7;
    append(bytes_, header);
  }
  template <typename Structure>
  Message& fixed(const Structure& value) {
    append(bytes_, value);
    pad(bytes_);
    return *this;
  }
  Message& attribute(std::uint16_t type, const Bytes& payload) {
    rtattr header{};
    header.rta_len = static_cast<std::uint16_t>(sizeof(rtattr) + payload.size());
    header.rta_type = type;
    append(bytes_, header);
    bytes_.insert(bytes_.end(), payload.begin(), payload.end());
    pad(bytes_);
    return *this;
  }
  Message& u32(std::uint16_t type, std::uint32_t value) {
    Bytes payload;
    append(payload, value);
    return attribute(type, payload);
  }
  Message& text(std::uint16_t type, const std::string& value) {
    Bytes payload;
    for (char character : value) payload.push_back(static_cast<std::byte>(character));
    payload.push_back(std::byte{0});
    return attribute(type, payload);
  }
  [[nodiscard]] Bytes bytes() const {
    Bytes result = bytes_;
    const auto length = static_cast<std::uint32_t>(result.size());
    std::memcpy(result.data(), &length, sizeof length);
    return result;
  }

 private:
  Bytes bytes_;
};

Bytes v4_bytes(const char* text) {
  in_addr address{};
  EXPECT_EQ(inet_pton(AF_INET, text, &address), 1) << text;
  Bytes out;
  append(out, address);
  return out;
}

Bytes v6_bytes(const char* text) {
  in6_addr address{};
  EXPECT_EQ(inet_pton(AF_INET6, text, &address), 1) << text;
  Bytes out;
  append(out, address);
  return out;
}

IpAddress ip(AddressFamily family, const Bytes& bytes) {
  IpAddress address;
  address.family = family;
  std::memcpy(address.bytes.data(), bytes.data(), bytes.size());
  return address;
}
IpAddress v4(const char* text) {
  return ip(AddressFamily::kIpv4, v4_bytes(text));
}
IpAddress v6(const char* text) {
  return ip(AddressFamily::kIpv6, v6_bytes(text));
}

Bytes concatenate(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

ifaddrmsg address_header(std::uint8_t family, std::uint8_t prefix, std::uint32_t index) {
  ifaddrmsg header{};
  header.ifa_family = family;
  header.ifa_prefixlen = prefix;
  header.ifa_scope = RT_SCOPE_UNIVERSE;
  header.ifa_index = index;
  return header;
}

rtmsg route_header(std::uint8_t family, std::uint8_t destination_length, std::uint8_t table) {
  rtmsg header{};
  header.rtm_family = family;
  header.rtm_dst_len = destination_length;
  header.rtm_table = table;
  header.rtm_protocol = RTPROT_BOOT;
  header.rtm_scope = RT_SCOPE_UNIVERSE;
  header.rtm_type = RTN_UNICAST;
  return header;
}

// ---- The messages (also the fuzzer's seeds)

// What `ip addr add 10.0.0.2/24 dev eth0` makes the kernel send (label and cache info included).
Bytes ipv4_address_added() {
  Bytes cache_info(16, std::byte{0xff});
  return Message(RTM_NEWADDR)
      .fixed(address_header(AF_INET, 24, 3))
      .attribute(IFA_ADDRESS, v4_bytes("10.0.0.2"))
      .attribute(IFA_LOCAL, v4_bytes("10.0.0.2"))
      .attribute(IFA_BROADCAST, v4_bytes("10.0.0.255"))
      .text(IFA_LABEL, "eth0")
      .u32(IFA_FLAGS, IFA_F_PERMANENT)
      .attribute(IFA_CACHEINFO, cache_info)
      .bytes();
}

Bytes ipv4_address_removed() {
  return Message(RTM_DELADDR)
      .fixed(address_header(AF_INET, 24, 3))
      .attribute(IFA_ADDRESS, v4_bytes("10.0.0.2"))
      .attribute(IFA_LOCAL, v4_bytes("10.0.0.2"))
      .text(IFA_LABEL, "eth0")
      .bytes();
}

// A point-to-point link: IFA_ADDRESS is the peer, IFA_LOCAL ours.
Bytes point_to_point_address_added() {
  return Message(RTM_NEWADDR)
      .fixed(address_header(AF_INET, 32, 9))
      .attribute(IFA_ADDRESS, v4_bytes("192.0.2.1"))
      .attribute(IFA_LOCAL, v4_bytes("192.0.2.2"))
      .bytes();
}

Bytes ipv6_address_added() {
  return Message(RTM_NEWADDR)
      .fixed(address_header(AF_INET6, 64, 4))
      .attribute(IFA_ADDRESS, v6_bytes("2001:db8::5"))
      .u32(IFA_FLAGS, IFA_F_NODAD)
      .bytes();
}

Bytes ipv6_address_removed() {
  return Message(RTM_DELADDR)
      .fixed(address_header(AF_INET6, 64, 4))
      .attribute(IFA_ADDRESS, v6_bytes("2001:db8::5"))
      .u32(IFA_FLAGS, IFA_F_NODAD)
      .bytes();
}

Bytes ipv4_default_route_added() {
  return Message(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL)
      .fixed(route_header(AF_INET, 0, RT_TABLE_MAIN))
      .u32(RTA_TABLE, RT_TABLE_MAIN)
      .u32(RTA_PRIORITY, 100)
      .attribute(RTA_GATEWAY, v4_bytes("10.0.0.1"))
      .u32(RTA_OIF, 3)
      .bytes();
}

// Router advertisements install IPv6 default routes through a link-local gateway.
Bytes ipv6_default_route_removed() {
  return Message(RTM_DELROUTE)
      .fixed(route_header(AF_INET6, 0, RT_TABLE_MAIN))
      .u32(RTA_TABLE, RT_TABLE_MAIN)
      .u32(RTA_PRIORITY, 1024)
      .attribute(RTA_GATEWAY, v6_bytes("fe80::1"))
      .u32(RTA_OIF, 4)
      .bytes();
}

Bytes ipv4_subnet_route_added() {
  return Message(RTM_NEWROUTE)
      .fixed(route_header(AF_INET, 24, RT_TABLE_MAIN))
      .u32(RTA_TABLE, RT_TABLE_MAIN)
      .attribute(RTA_DST, v4_bytes("10.0.0.0"))
      .attribute(RTA_PREFSRC, v4_bytes("10.0.0.2"))
      .u32(RTA_OIF, 3)
      .bytes();
}

Bytes local_table_default_route() {
  return Message(RTM_NEWROUTE)
      .fixed(route_header(AF_INET6, 0, RT_TABLE_LOCAL))
      .u32(RTA_TABLE, RT_TABLE_LOCAL)
      .u32(RTA_OIF, 1)
      .bytes();
}

// A table id above 255: rtm_table says RT_TABLE_COMPAT and RTA_TABLE has the real id.
Bytes large_table_default_route() {
  return Message(RTM_NEWROUTE)
      .fixed(route_header(AF_INET, 0, RT_TABLE_COMPAT))
      .u32(RTA_TABLE, 1000)
      .u32(RTA_OIF, 3)
      .bytes();
}

Bytes error_message(std::int32_t code) {
  nlmsgerr error{};
  error.error = code;
  return Message(NLMSG_ERROR).fixed(error).bytes();
}

Bytes link_message() {
  ifinfomsg link{};
  link.ifi_family = AF_UNSPEC;
  link.ifi_index = 3;
  return Message(RTM_NEWLINK).fixed(link).text(IFLA_IFNAME, "eth0").bytes();
}

Bytes several_messages() {
  return concatenate({ipv4_address_added(), Message(NLMSG_NOOP).bytes(), ipv4_subnet_route_added(),
                      link_message(), ipv6_default_route_removed(),
                      Message(NLMSG_DONE, NLM_F_MULTI).fixed(std::int32_t{0}).bytes()});
}

std::vector<RouteMessageEvent> parse_ok(const Bytes& bytes) {
  auto result = parse_route_messages(bytes);
  EXPECT_TRUE(result.has_value()) << (result ? "" : result.error().detail);
  return result ? *result : std::vector<RouteMessageEvent>{};
}

std::vector<RouteMessageEvent> events(std::initializer_list<RouteMessageEvent> list) {
  return list;
}

// ---- Addresses

TEST(RouteMessages, Ipv4AddressAddedAndRemoved) {
  EXPECT_EQ(parse_ok(ipv4_address_added()), events({AddressAdded{3, v4("10.0.0.2")}}));
  EXPECT_EQ(parse_ok(ipv4_address_removed()), events({AddressRemoved{3, v4("10.0.0.2")}}));
}

TEST(RouteMessages, PointToPointReportsTheLocalAddressNotThePeer) {
  EXPECT_EQ(parse_ok(point_to_point_address_added()), events({AddressAdded{9, v4("192.0.2.2")}}));
}

TEST(RouteMessages, Ipv6AddressAddedAndRemoved) {
  EXPECT_EQ(parse_ok(ipv6_address_added()), events({AddressAdded{4, v6("2001:db8::5")}}));
  EXPECT_EQ(parse_ok(ipv6_address_removed()), events({AddressRemoved{4, v6("2001:db8::5")}}));
}

TEST(RouteMessages, AddressMessageOfAnotherFamilyIsIgnored) {
  const Bytes message = Message(RTM_NEWADDR)
                            .fixed(address_header(AF_PACKET, 0, 3))
                            .attribute(IFA_ADDRESS, Bytes(6, std::byte{1}))
                            .bytes();
  EXPECT_TRUE(parse_ok(message).empty());
}

// ---- Routes

TEST(RouteMessages, DefaultRouteAdded) {
  DefaultRouteChanged expected;
  expected.family = AddressFamily::kIpv4;
  expected.removed = false;
  expected.output_interface_index = 3;
  expected.gateway = v4("10.0.0.1");
  expected.priority = 100;
  EXPECT_EQ(parse_ok(ipv4_default_route_added()), events({expected}));
}

TEST(RouteMessages, DefaultRouteDeleted) {
  DefaultRouteChanged expected;
  expected.family = AddressFamily::kIpv6;
  expected.removed = true;
  expected.output_interface_index = 4;
  expected.gateway = v6("fe80::1");
  expected.priority = 1024;
  EXPECT_EQ(parse_ok(ipv6_default_route_removed()), events({expected}));
}

TEST(RouteMessages, DefaultRouteWithoutAttributesUsesTheHeaderTable) {
  const Bytes message =
      Message(RTM_NEWROUTE).fixed(route_header(AF_INET, 0, RT_TABLE_MAIN)).bytes();
  DefaultRouteChanged expected;
  expected.family = AddressFamily::kIpv4;
  EXPECT_EQ(parse_ok(message), events({expected}));
}

TEST(RouteMessages, NonDefaultRouteIsIgnored) {
  EXPECT_TRUE(parse_ok(ipv4_subnet_route_added()).empty());
}

TEST(RouteMessages, OtherTablesAreIgnored) {
  EXPECT_TRUE(parse_ok(local_table_default_route()).empty());
  EXPECT_TRUE(parse_ok(large_table_default_route()).empty());
}

TEST(RouteMessages, TableAttributeOverridesTheHeader) {
  // rtm_table says "compat" but RTA_TABLE names the main table: a main-table default route.
  const Bytes message = Message(RTM_DELROUTE)
                            .fixed(route_header(AF_INET, 0, RT_TABLE_COMPAT))
                            .u32(RTA_TABLE, RT_TABLE_MAIN)
                            .bytes();
  const auto parsed = parse_ok(message);
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_TRUE(std::get<DefaultRouteChanged>(parsed[0]).removed);
}

TEST(RouteMessages, RouteOfAnotherFamilyIsIgnored) {
  const Bytes message =
      Message(RTM_NEWROUTE).fixed(route_header(AF_MPLS, 0, RT_TABLE_MAIN)).u32(RTA_OIF, 3).bytes();
  EXPECT_TRUE(parse_ok(message).empty());
}

// ---- Several messages, and what is skipped

TEST(RouteMessages, SeveralMessagesInOneDatagramInOrder) {
  const auto parsed = parse_ok(several_messages());
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[0], RouteMessageEvent(AddressAdded{3, v4("10.0.0.2")}));
  EXPECT_TRUE(std::get<DefaultRouteChanged>(parsed[1]).removed);
}

TEST(RouteMessages, EmptyDatagramHasNoEvents) {
  EXPECT_TRUE(parse_ok({}).empty());
}

TEST(RouteMessages, UnalignedInputParsesTheSame) {
  const Bytes message = several_messages();
  Bytes shifted(1, std::byte{0});
  shifted.insert(shifted.end(), message.begin(), message.end());
  const auto aligned = parse_route_messages(message);
  const auto unaligned = parse_route_messages(std::span(shifted).subspan(1));
  ASSERT_TRUE(aligned && unaligned);
  EXPECT_EQ(*aligned, *unaligned);
}

TEST(RouteMessages, LastMessageMayLackItsPadding) {
  // A label of 2 characters + NUL: 7-byte attribute, the message ends 1 byte short of alignment.
  Bytes message = Message(RTM_NEWADDR)
                      .fixed(address_header(AF_INET, 24, 3))
                      .attribute(IFA_LOCAL, v4_bytes("10.0.0.2"))
                      .text(IFA_LABEL, "lo")
                      .bytes();
  message.pop_back();
  const auto length = static_cast<std::uint32_t>(message.size());
  std::memcpy(message.data(), &length, sizeof length);
  EXPECT_EQ(parse_ok(message), events({AddressAdded{3, v4("10.0.0.2")}}));
}

// ---- Malformed input

TEST(RouteMessages, TruncatedMessageIsRefused) {
  const Bytes message = ipv4_default_route_added();
  for (std::size_t size = 1; size < message.size(); ++size) {
    const auto result = parse_route_messages(std::span(message).first(size));
    EXPECT_FALSE(result.has_value()) << "accepted the first " << size << " bytes";
  }
  // The second of two messages cut short: the whole datagram is refused.
  Bytes two = concatenate({ipv4_address_added(), ipv4_default_route_added()});
  two.resize(two.size() - 6);
  const auto result = parse_route_messages(two);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().offset, ipv4_address_added().size());
}

TEST(RouteMessages, AttributeLengthPastTheEndIsRefused) {
  Bytes message = ipv4_address_removed();
  // The first attribute follows the 16-byte header and the 8-byte ifaddrmsg.
  const std::uint16_t too_long = static_cast<std::uint16_t>(message.size());
  std::memcpy(message.data() + 24, &too_long, sizeof too_long);
  const auto result = parse_route_messages(message);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().offset, 24u);
  EXPECT_NE(result.error().detail.find("attribute length"), std::string::npos);
}

TEST(RouteMessages, AttributeLengthBelowItsHeaderIsRefused) {
  for (const std::uint16_t length : {std::uint16_t{0}, std::uint16_t{1}, std::uint16_t{3}}) {
    Bytes message = ipv4_address_removed();
    std::memcpy(message.data() + 24, &length, sizeof length);
    EXPECT_FALSE(parse_route_messages(message).has_value()) << "rta_len " << length;
  }
}

TEST(RouteMessages, ZeroLengthMessageIsRefused) {
  for (std::uint32_t length : {0u, 1u, 15u}) {
    Bytes message = ipv4_address_added();
    std::memcpy(message.data(), &length, sizeof length);
    const auto result = parse_route_messages(message);
    ASSERT_FALSE(result.has_value()) << "nlmsg_len " << length;
    EXPECT_NE(result.error().detail.find("message length"), std::string::npos);
  }
}

TEST(RouteMessages, MessageLengthPastTheDatagramIsRefused) {
  Bytes message = ipv6_address_added();
  const auto length = static_cast<std::uint32_t>(message.size() + 4);
  std::memcpy(message.data(), &length, sizeof length);
  EXPECT_FALSE(parse_route_messages(message).has_value());
}

TEST(RouteMessages, FixedPartCutShortIsRefused) {
  EXPECT_FALSE(parse_route_messages(Message(RTM_NEWADDR).fixed(std::uint32_t{2}).bytes()));
  EXPECT_FALSE(parse_route_messages(Message(RTM_DELROUTE).fixed(std::uint64_t{2}).bytes()));
  EXPECT_FALSE(parse_route_messages(Message(NLMSG_ERROR).bytes()));
}

TEST(RouteMessages, AddressOfTheWrongSizeIsRefused) {
  const Bytes address = Message(RTM_DELADDR)
                            .fixed(address_header(AF_INET, 24, 3))
                            .attribute(IFA_LOCAL, v6_bytes("2001:db8::1"))
                            .bytes();
  EXPECT_FALSE(parse_route_messages(address).has_value());
  const Bytes gateway = Message(RTM_NEWROUTE)
                            .fixed(route_header(AF_INET6, 0, RT_TABLE_MAIN))
                            .attribute(RTA_GATEWAY, v4_bytes("10.0.0.1"))
                            .bytes();
  EXPECT_FALSE(parse_route_messages(gateway).has_value());
  const Bytes table = Message(RTM_NEWROUTE)
                          .fixed(route_header(AF_INET, 0, RT_TABLE_MAIN))
                          .attribute(RTA_TABLE, Bytes(2, std::byte{0}))
                          .bytes();
  EXPECT_FALSE(parse_route_messages(table).has_value());
}

TEST(RouteMessages, AddressMessageWithoutAnAddressIsRefused) {
  const Bytes message =
      Message(RTM_NEWADDR).fixed(address_header(AF_INET6, 64, 4)).u32(IFA_FLAGS, 0).bytes();
  EXPECT_FALSE(parse_route_messages(message).has_value());
}

TEST(RouteMessages, ErrorMessageIsReported) {
  const auto result =
      parse_route_messages(concatenate({ipv4_address_added(), error_message(-EPERM)}));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().kernel_error, -EPERM);
  EXPECT_EQ(result.error().offset, ipv4_address_added().size());
  EXPECT_NE(result.error().detail.find("netlink error"), std::string::npos);
  // Even an acknowledgement: the monitor sends no requests.
  EXPECT_FALSE(parse_route_messages(error_message(0)).has_value());
  EXPECT_FALSE(parse_route_messages(error_message(std::numeric_limits<std::int32_t>::min())));
}

TEST(RouteMessages, OverrunMessageIsReported) {
  EXPECT_FALSE(parse_route_messages(Message(NLMSG_OVERRUN).bytes()).has_value());
}

// ---- The encoder (used by the fuzzer and the probe)

TEST(RouteMessages, EncoderRoundTrips) {
  DefaultRouteChanged route;
  route.family = AddressFamily::kIpv6;
  route.removed = true;
  route.output_interface_index = 2;
  route.gateway = v6("fe80::1");
  route.priority = 1024;
  DefaultRouteChanged bare;
  bare.family = AddressFamily::kIpv4;
  const std::vector<RouteMessageEvent> all = {AddressAdded{3, v4("10.0.0.2")},
                                              AddressRemoved{4, v6("2001:db8::5")}, route, bare};
  Bytes datagram;
  for (const auto& event : all) {
    Bytes one;
    netlink::encode_route_message(event, one);
    EXPECT_EQ(one.size() % 4, 0u);
    EXPECT_EQ(parse_ok(one), events({event}));
    datagram.insert(datagram.end(), one.begin(), one.end());
  }
  EXPECT_EQ(parse_ok(datagram), all);
}

// ---- Conversions and policy

TEST(RouteMonitorPolicy, AsioAddresses) {
  EXPECT_EQ(to_asio_address(v4("10.0.0.2"), 3), asio::ip::make_address("10.0.0.2"));
  EXPECT_EQ(to_asio_address(v6("2001:db8::5"), 4), asio::ip::make_address("2001:db8::5"));
  const auto link_local = to_asio_address(v6("fe80::1"), 4);
  EXPECT_EQ(link_local.to_v6().scope_id(), 4u);
}

TEST(RouteMonitorPolicy, RemovedAddressBreaksOnlyItsConnections) {
  const RouteEvent removed = route_events::AddressRemoved{3, asio::ip::make_address("10.0.0.2")};
  EXPECT_TRUE(may_break_connection(removed, asio::ip::make_address("10.0.0.2")));
  EXPECT_TRUE(may_break_connection(removed, asio::ip::make_address("::ffff:10.0.0.2")));
  EXPECT_FALSE(may_break_connection(removed, asio::ip::make_address("10.0.0.3")));
  EXPECT_FALSE(may_break_connection(removed, asio::ip::make_address("2001:db8::5")));

  const RouteEvent link_local = route_events::AddressRemoved{4, to_asio_address(v6("fe80::2"), 4)};
  EXPECT_TRUE(may_break_connection(link_local, asio::ip::make_address("fe80::2%4")));
  EXPECT_TRUE(may_break_connection(link_local, asio::ip::make_address("fe80::2")));
  EXPECT_FALSE(may_break_connection(link_local, asio::ip::make_address("fe80::2%5")));

  const RouteEvent added = route_events::AddressAdded{3, asio::ip::make_address("10.0.0.2")};
  EXPECT_FALSE(may_break_connection(added, asio::ip::make_address("10.0.0.2")));
}

TEST(RouteMonitorPolicy, DefaultRouteChangeBreaksConnectionsOfItsFamily) {
  route_events::DefaultRouteChanged route;
  route.family = AddressFamily::kIpv4;
  const RouteEvent event = route;
  EXPECT_TRUE(may_break_connection(event, asio::ip::make_address("10.0.0.2")));
  EXPECT_TRUE(may_break_connection(event, asio::ip::make_address("::ffff:10.0.0.2")));
  EXPECT_FALSE(may_break_connection(event, asio::ip::make_address("2001:db8::5")));
  EXPECT_FALSE(may_break_connection(event, asio::ip::make_address("127.0.0.1")));
  route.family = AddressFamily::kIpv6;
  EXPECT_TRUE(may_break_connection(route, asio::ip::make_address("2001:db8::5")));
  EXPECT_FALSE(may_break_connection(route, asio::ip::make_address("::1")));
}

TEST(RouteMonitorPolicy, LostChangesMayBreakAnythingFailureNothing) {
  const auto local = asio::ip::make_address("10.0.0.2");
  EXPECT_TRUE(may_break_connection(route_events::Resynchronise{"overrun"}, local));
  EXPECT_FALSE(may_break_connection(route_events::Failed{"gone"}, local));
}

// ---- The socket

TEST(RouteMonitor, StartsStopsAndRefusesASecondStart) {
  asio::io_context io;
  RouteMonitor monitor(io);
  EXPECT_EQ(monitor.port_id(), 0u);
  int calls = 0;
  auto started = monitor.start([&](const RouteEvent&) { ++calls; });
  if (!started) GTEST_SKIP() << "no netlink here: " << started.error();
  EXPECT_NE(monitor.port_id(), 0u);
  EXPECT_FALSE(RouteMonitor(io).start(nullptr).has_value());
  auto again = monitor.start([](const RouteEvent&) {});
  ASSERT_FALSE(again.has_value());
  EXPECT_NE(again.error().find("already"), std::string::npos);
  io.poll();
  monitor.stop();
  monitor.stop();
  io.run();  // the read coroutine ends: run() returns
  EXPECT_EQ(calls, 0);
}

TEST(RouteMonitor, DestroyedWhileReadingIsSafe) {
  asio::io_context io;
  {
    RouteMonitor monitor(io);
    if (auto started = monitor.start([](const RouteEvent&) { FAIL(); }); !started) {
      GTEST_SKIP() << "no netlink here: " << started.error();
    }
    io.poll();
  }
  io.run();
}

// A message from a process rather than the kernel is dropped. Sending to another netlink socket
// needs CAP_NET_ADMIN; without it the test is skipped. Unicast netlink delivery is synchronous, so
// after sendto returns the datagram is queued and polling the io_context is enough.
TEST(RouteMonitor, MessagesFromProcessesAreIgnored) {
  asio::io_context io;
  RouteMonitor monitor(io);
  std::vector<RouteEvent> seen;
  if (auto started = monitor.start([&](const RouteEvent& event) { seen.push_back(event); });
      !started) {
    GTEST_SKIP() << "no netlink here: " << started.error();
  }
  const int sender = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  ASSERT_GE(sender, 0);
  sockaddr_nl destination{};
  destination.nl_family = AF_NETLINK;
  destination.nl_pid = monitor.port_id();
  const Bytes forged = ipv4_address_removed();
  const auto sent = ::sendto(sender, forged.data(), forged.size(), 0,
                             reinterpret_cast<const sockaddr*>(&destination), sizeof destination);
  const int send_error = errno;
  ::close(sender);
  if (sent < 0) GTEST_SKIP() << "cannot send to a netlink socket: " << std::strerror(send_error);
  for (int round = 0; round < 20; ++round) io.poll();
  EXPECT_TRUE(seen.empty());
}

// ---- Seeds

TEST(RouteMessages, DISABLED_WriteFuzzerSeeds) {
  const char* directory = std::getenv("TETHER_ROUTE_SEED_DIRECTORY");
  ASSERT_NE(directory, nullptr) << "set TETHER_ROUTE_SEED_DIRECTORY";
  const std::vector<std::pair<const char*, Bytes>> seeds = {
      {"ipv4_address_added", ipv4_address_added()},
      {"ipv4_address_removed", ipv4_address_removed()},
      {"point_to_point_address_added", point_to_point_address_added()},
      {"ipv6_address_added", ipv6_address_added()},
      {"ipv6_address_removed", ipv6_address_removed()},
      {"ipv4_default_route_added", ipv4_default_route_added()},
      {"ipv6_default_route_removed", ipv6_default_route_removed()},
      {"ipv4_subnet_route_added", ipv4_subnet_route_added()},
      {"local_table_default_route", local_table_default_route()},
      {"large_table_default_route", large_table_default_route()},
      {"error_message", error_message(-EPERM)},
      {"link_message", link_message()},
      {"several_messages", several_messages()},
  };
  std::filesystem::create_directories(directory);
  for (const auto& [name, bytes] : seeds) {
    std::ofstream file(std::filesystem::path(directory) / name, std::ios::binary);
    file.write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    ASSERT_TRUE(file.good()) << name;
  }
}

}  // namespace
}  // namespace tether::transport
