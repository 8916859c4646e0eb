#include "transport/route_monitor.hpp"

#include <linux/if_addr.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <system_error>
#include <type_traits>
#include <utility>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/generic/raw_protocol.hpp>
#include <asio/use_awaitable.hpp>

namespace tether::transport {
namespace netlink {
namespace {

using Bytes = std::span<const std::byte>;

constexpr std::size_t align4(std::size_t length) {
  return (length + 3) & ~std::size_t{3};
}

// Copies a kernel structure out of possibly unaligned bytes; the caller has checked the size.
template <typename Structure>
Structure load(Bytes bytes) {
  static_assert(std::is_trivially_copyable_v<Structure>);
  Structure value;
  std::memcpy(&value, bytes.data(), sizeof(Structure));
  return value;
}

template <typename Structure>
void store(const Structure& value, std::vector<std::byte>& out) {
  static_assert(std::is_trivially_copyable_v<Structure>);
  const std::size_t at = out.size();
  out.resize(at + sizeof(Structure));
  std::memcpy(out.data() + at, &value, sizeof(Structure));
}

Unexpected<RouteMessageError> failure(std::string detail, std::size_t offset) {
  return make_unexpected(RouteMessageError{std::move(detail), offset, 0});
}

// One route attribute: its type (without the nested and byte-order flags) and its payload.
struct Attribute {
  std::uint16_t type = 0;
  Bytes payload;
  std::size_t offset = 0;  // of the attribute header, in the datagram
};

// Splits `bytes` (which start at `offset` in the datagram) into attributes, each length checked.
Expected<std::vector<Attribute>, RouteMessageError> split_attributes(Bytes bytes,
                                                                     std::size_t offset) {
  std::vector<Attribute> attributes;
  while (!bytes.empty()) {
    if (bytes.size() < sizeof(rtattr)) {
      return failure("attribute header cut short (" + std::to_string(bytes.size()) + " bytes)",
                     offset);
    }
    const auto header = load<rtattr>(bytes);
    if (header.rta_len < sizeof(rtattr) || header.rta_len > bytes.size()) {
      return failure("attribute length " + std::to_string(header.rta_len) + " outside 4.." +
                         std::to_string(bytes.size()),
                     offset);
    }
    attributes.push_back({static_cast<std::uint16_t>(header.rta_type & NLA_TYPE_MASK),
                          bytes.subspan(sizeof(rtattr), header.rta_len - sizeof(rtattr)), offset});
    // The last attribute may lack its padding.
    const std::size_t step = std::min(align4(header.rta_len), bytes.size());
    bytes = bytes.subspan(step);
    offset += step;
  }
  return attributes;
}

std::size_t address_size(AddressFamily family) {
  return family == AddressFamily::kIpv4 ? 4 : 16;
}

Expected<IpAddress, RouteMessageError> read_address(const Attribute& attribute,
                                                    AddressFamily family) {
  const std::size_t size = address_size(family);
  if (attribute.payload.size() != size) {
    return failure("address attribute of " + std::to_string(attribute.payload.size()) +
                       " bytes, expected " + std::to_string(size),
                   attribute.offset);
  }
  IpAddress address;
  address.family = family;
  std::memcpy(address.bytes.data(), attribute.payload.data(), size);
  return address;
}

Expected<std::uint32_t, RouteMessageError> read_u32(const Attribute& attribute) {
  if (attribute.payload.size() != sizeof(std::uint32_t)) {
    return failure("32-bit attribute of " + std::to_string(attribute.payload.size()) + " bytes",
                   attribute.offset);
  }
  return load<std::uint32_t>(attribute.payload);
}

std::optional<AddressFamily> family_of(unsigned family) {
  if (family == AF_INET) return AddressFamily::kIpv4;
  if (family == AF_INET6) return AddressFamily::kIpv6;
  return std::nullopt;
}

std::uint8_t kernel_family(AddressFamily family) {
  return family == AddressFamily::kIpv4 ? AF_INET : AF_INET6;
}

using MaybeEvent = Expected<std::optional<RouteMessageEvent>, RouteMessageError>;

// RTM_NEWADDR / RTM_DELADDR: ifaddrmsg then attributes.
MaybeEvent parse_address_message(std::uint16_t type, Bytes payload, std::size_t offset) {
  if (payload.size() < sizeof(ifaddrmsg)) {
    return failure("address message of " + std::to_string(payload.size()) + " bytes", offset);
  }
  const auto header = load<ifaddrmsg>(payload);
  const auto family = family_of(header.ifa_family);
  if (!family) return std::nullopt;
  const std::size_t start = std::min(align4(sizeof(ifaddrmsg)), payload.size());
  auto attributes = split_attributes(payload.subspan(start), offset + start);
  if (!attributes) return make_unexpected(std::move(attributes.error()));
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's on a point-to-point link
  // and the same as IFA_LOCAL otherwise (IPv6 usually sends IFA_ADDRESS alone).
  std::optional<IpAddress> local;
  std::optional<IpAddress> address;
  for (const Attribute& attribute : *attributes) {
    if (attribute.type != IFA_LOCAL && attribute.type != IFA_ADDRESS) continue;
    auto value = read_address(attribute, *family);
    if (!value) return make_unexpected(std::move(value.error()));
    (attribute.type == IFA_LOCAL ? local : address) = *value;
  }
  if (!local) local = address;
  if (!local) return failure("address message without an address", offset);
  if (type == RTM_NEWADDR) return AddressAdded{header.ifa_index, *local};
  return AddressRemoved{header.ifa_index, *local};
}

// RTM_NEWROUTE / RTM_DELROUTE: rtmsg then attributes.
MaybeEvent parse_route_message(std::uint16_t type, Bytes payload, std::size_t offset) {
  if (payload.size() < sizeof(rtmsg)) {
    return failure("route message of " + std::to_string(payload.size()) + " bytes", offset);
  }
  const auto header = load<rtmsg>(payload);
  const auto family = family_of(header.rtm_family);
  if (!family) return std::nullopt;
  const std::size_t start = std::min(align4(sizeof(rtmsg)), payload.size());
  auto attributes = split_attributes(payload.subspan(start), offset + start);
  if (!attributes) return make_unexpected(std::move(attributes.error()));
  // rtm_table holds only 8 bits; RTA_TABLE holds the full table id.
  std::uint32_t table = header.rtm_table;
  DefaultRouteChanged event;
  event.family = *family;
  event.removed = type == RTM_DELROUTE;
  for (const Attribute& attribute : *attributes) {
    if (attribute.type == RTA_TABLE || attribute.type == RTA_OIF ||
        attribute.type == RTA_PRIORITY) {
      auto value = read_u32(attribute);
      if (!value) return make_unexpected(std::move(value.error()));
      if (attribute.type == RTA_TABLE) table = *value;
      if (attribute.type == RTA_OIF) event.output_interface_index = *value;
      if (attribute.type == RTA_PRIORITY) event.priority = *value;
    } else if (attribute.type == RTA_GATEWAY) {
      auto value = read_address(attribute, *family);
      if (!value) return make_unexpected(std::move(value.error()));
      event.gateway = *value;
    }
  }
  if (header.rtm_dst_len != 0 || table != RT_TABLE_MAIN) return std::nullopt;
  return event;
}

MaybeEvent parse_error_message(Bytes payload, std::size_t offset) {
  if (payload.size() < sizeof(std::int32_t)) {
    return failure("error message of " + std::to_string(payload.size()) + " bytes", offset);
  }
  const auto code = load<std::int32_t>(payload);
  // We send no requests, so even an acknowledgement (0) is unexpected.
  const std::int64_t error_number = -static_cast<std::int64_t>(code);
  std::string detail = "netlink error message: ";
  if (error_number > 0 && error_number < 4096) {
    detail += std::generic_category().message(static_cast<int>(error_number));
  } else {
    detail += "code " + std::to_string(code);
  }
  return make_unexpected(RouteMessageError{std::move(detail), offset, code});
}

}  // namespace

Expected<std::vector<RouteMessageEvent>, RouteMessageError> parse_route_messages(
    std::span<const std::byte> datagram) {
  std::vector<RouteMessageEvent> events;
  std::size_t offset = 0;
  Bytes rest = datagram;
  while (!rest.empty()) {
    if (rest.size() < sizeof(nlmsghdr)) {
      return failure("message header cut short (" + std::to_string(rest.size()) + " bytes)",
                     offset);
    }
    const auto header = load<nlmsghdr>(rest);
    if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > rest.size()) {
      return failure("message length " + std::to_string(header.nlmsg_len) + " outside 16.." +
                         std::to_string(rest.size()),
                     offset);
    }
    const Bytes payload = rest.subspan(sizeof(nlmsghdr), header.nlmsg_len - sizeof(nlmsghdr));
    const std::size_t payload_offset = offset + sizeof(nlmsghdr);
    MaybeEvent event = std::optional<RouteMessageEvent>();
    switch (header.nlmsg_type) {
      case NLMSG_ERROR:
        event = parse_error_message(payload, offset);
        break;
      case NLMSG_OVERRUN:
        event = failure("netlink overrun message: changes were lost", offset);
        break;
      case RTM_NEWADDR:
      case RTM_DELADDR:
        event = parse_address_message(header.nlmsg_type, payload, payload_offset);
        break;
      case RTM_NEWROUTE:
      case RTM_DELROUTE:
        event = parse_route_message(header.nlmsg_type, payload, payload_offset);
        break;
      default:  // NLMSG_NOOP, NLMSG_DONE and everything we did not subscribe to
        break;
    }
    if (!event) return make_unexpected(std::move(event.error()));
    if (*event) events.push_back(std::move(**event));
    // The last message may lack its padding.
    const std::size_t step = std::min(align4(header.nlmsg_len), rest.size());
    rest = rest.subspan(step);
    offset += step;
  }
  return events;
}

namespace {

// Builds one message: header, fixed part, attributes; fills in the lengths.
class MessageWriter {
 public:
  MessageWriter(std::vector<std::byte>& out, std::uint16_t type) : out_(out), start_(out.size()) {
    nlmsghdr header{};
    header.nlmsg_type = type;
    store(header, out_);
  }
  template <typename Structure>
  void fixed(const Structure& value) {
    store(value, out_);
    pad();
  }
  void attribute(std::uint16_t type, const void* data, std::size_t size) {
    rtattr header{};
    header.rta_len = static_cast<std::uint16_t>(sizeof(rtattr) + size);
    header.rta_type = type;
    store(header, out_);
    const std::size_t at = out_.size();
    out_.resize(at + size);
    if (size != 0) std::memcpy(out_.data() + at, data, size);
    pad();
  }
  void address(std::uint16_t type, const IpAddress& value) {
    attribute(type, value.bytes.data(), address_size(value.family));
  }
  void u32(std::uint16_t type, std::uint32_t value) { attribute(type, &value, sizeof value); }
  ~MessageWriter() {
    const auto length = static_cast<std::uint32_t>(out_.size() - start_);
    std::memcpy(out_.data() + start_ + offsetof(nlmsghdr, nlmsg_len), &length, sizeof length);
  }
  MessageWriter(const MessageWriter&) = delete;
  MessageWriter& operator=(const MessageWriter&) = delete;

 private:
  void pad() { out_.resize(start_ + align4(out_.size() - start_)); }
  std::vector<std::byte>& out_;
  std::size_t start_;
};

void encode_address(std::uint16_t type, std::uint32_t interface_index, const IpAddress& address,
                    std::vector<std::byte>& out) {
  MessageWriter writer(out, type);
  ifaddrmsg header{};
  header.ifa_family = kernel_family(address.family);
  header.ifa_prefixlen =
      static_cast<std::uint8_t>(address.family == AddressFamily::kIpv4 ? 24 : 64);
  header.ifa_scope = RT_SCOPE_UNIVERSE;
  header.ifa_index = interface_index;
  writer.fixed(header);
  writer.address(IFA_ADDRESS, address);
  if (address.family == AddressFamily::kIpv4) writer.address(IFA_LOCAL, address);
}

}  // namespace

void encode_route_message(const RouteMessageEvent& event, std::vector<std::byte>& out) {
  if (const auto* added = std::get_if<AddressAdded>(&event)) {
    encode_address(RTM_NEWADDR, added->interface_index, added->address, out);
  } else if (const auto* removed = std::get_if<AddressRemoved>(&event)) {
    encode_address(RTM_DELADDR, removed->interface_index, removed->address, out);
  } else if (const auto* route = std::get_if<DefaultRouteChanged>(&event)) {
    MessageWriter writer(out, route->removed ? RTM_DELROUTE : RTM_NEWROUTE);
    rtmsg header{};
    header.rtm_family = kernel_family(route->family);
    header.rtm_table = RT_TABLE_MAIN;
    header.rtm_protocol = RTPROT_STATIC;
    header.rtm_scope = route->gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    header.rtm_type = RTN_UNICAST;
    writer.fixed(header);
    writer.u32(RTA_TABLE, RT_TABLE_MAIN);
    if (route->priority != 0) writer.u32(RTA_PRIORITY, route->priority);
    if (route->gateway) writer.address(RTA_GATEWAY, *route->gateway);
    if (route->output_interface_index != 0) writer.u32(RTA_OIF, route->output_interface_index);
  }
}

}  // namespace netlink

// ---- Conversions and policy
// ----------------------------------------------------------------------

asio::ip::address to_asio_address(const netlink::IpAddress& address,
                                  std::uint32_t interface_index) {
  if (address.family == netlink::AddressFamily::kIpv4) {
    asio::ip::address_v4::bytes_type bytes{};
    std::copy_n(address.bytes.begin(), bytes.size(), bytes.begin());
    return asio::ip::address_v4(bytes);
  }
  asio::ip::address_v6::bytes_type bytes{};
  std::copy_n(address.bytes.begin(), bytes.size(), bytes.begin());
  asio::ip::address_v6 result(bytes);
  if (result.is_link_local()) result.scope_id(interface_index);
  return result;
}

namespace {

asio::ip::address unmapped(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return address;
}

bool same_address(const asio::ip::address& first, const asio::ip::address& second) {
  const auto left = unmapped(first);
  const auto right = unmapped(second);
  if (left.is_v4() || right.is_v4()) return left == right;
  const auto left_v6 = left.to_v6();
  const auto right_v6 = right.to_v6();
  if (left_v6.to_bytes() != right_v6.to_bytes()) return false;
  return left_v6.scope_id() == 0 || right_v6.scope_id() == 0 ||
         left_v6.scope_id() == right_v6.scope_id();
}

}  // namespace

bool may_break_connection(const RouteEvent& event, const asio::ip::address& local_address) {
  if (const auto* removed = std::get_if<route_events::AddressRemoved>(&event)) {
    return same_address(removed->address, local_address);
  }
  if (const auto* route = std::get_if<route_events::DefaultRouteChanged>(&event)) {
    const auto local = unmapped(local_address);
    if (local.is_loopback()) return false;
    return (route->family == netlink::AddressFamily::kIpv4) == local.is_v4();
  }
  return std::holds_alternative<route_events::Resynchronise>(event);
}

// ---- RouteMonitor
// --------------------------------------------------------------------------------

namespace {

constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);
// Kernel notifications are at most a page or two; a larger datagram would arrive cut short and be
// refused by the parser (reported as Resynchronise).
constexpr std::size_t kDatagramBuffer = 64u << 10;
// Room for bursts (a link going down removes many addresses and routes at once); the kernel caps it
// at net.core.rmem_max.
constexpr int kSocketReceiveBuffer = 1 << 20;

RouteEvent to_route_event(const netlink::RouteMessageEvent& event) {
  if (const auto* added = std::get_if<netlink::AddressAdded>(&event)) {
    return route_events::AddressAdded{added->interface_index,
                                      to_asio_address(added->address, added->interface_index)};
  }
  if (const auto* removed = std::get_if<netlink::AddressRemoved>(&event)) {
    return route_events::AddressRemoved{
        removed->interface_index, to_asio_address(removed->address, removed->interface_index)};
  }
  const auto& route = std::get<netlink::DefaultRouteChanged>(event);
  route_events::DefaultRouteChanged result;
  result.family = route.family;
  result.removed = route.removed;
  result.output_interface_index = route.output_interface_index;
  if (route.gateway) result.gateway = to_asio_address(*route.gateway, route.output_interface_index);
  result.priority = route.priority;
  return result;
}

std::optional<sockaddr_nl> netlink_address(const asio::generic::raw_protocol::endpoint& endpoint) {
  if (endpoint.size() < sizeof(sockaddr_nl)) return std::nullopt;
  sockaddr_nl address{};
  std::memcpy(&address, endpoint.data(), sizeof address);
  if (address.nl_family != AF_NETLINK) return std::nullopt;
  return address;
}

}  // namespace

namespace detail {

// What the read coroutine shares with the monitor; it outlives the monitor until the coroutine
// ends.
struct RouteMonitorState {
  explicit RouteMonitorState(asio::io_context& io) : socket(io) {}
  asio::generic::raw_protocol::socket socket;
  RouteMonitor::Callback callback;
  bool started = false;
  bool stopped = false;
  std::uint32_t port_id = 0;

  // Delivers one event unless stopped; returns false once stopped (possibly by the callback).
  bool deliver(const RouteEvent& event) {
    if (stopped) return false;
    callback(event);
    return !stopped;
  }
  void close() {
    stopped = true;
    std::error_code ignored;
    socket.close(ignored);
  }
};

}  // namespace detail

namespace {

asio::awaitable<void> read_loop(std::shared_ptr<detail::RouteMonitorState> state);

}  // namespace

RouteMonitor::RouteMonitor(asio::io_context& io)
    : io_(io), state_(std::make_shared<detail::RouteMonitorState>(io)) {}

RouteMonitor::~RouteMonitor() {
  stop();
}

Expected<void, std::string> RouteMonitor::start(Callback callback) {
  if (state_->started) return make_unexpected(std::string("route monitor already started"));
  if (!callback) return make_unexpected(std::string("route monitor started without a callback"));
  state_->started = true;
  asio::generic::raw_protocol::socket& socket = state_->socket;
  std::error_code error;
  socket.open(asio::generic::raw_protocol(AF_NETLINK, NETLINK_ROUTE), error);
  if (error) {
    state_->stopped = true;
    return make_unexpected("cannot open a netlink route socket: " + error.message());
  }
  sockaddr_nl address{};
  address.nl_family = AF_NETLINK;
  address.nl_groups = RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_ROUTE |
                      RTMGRP_IPV6_ROUTE;  // port id 0: the kernel assigns one
  socket.bind(asio::generic::raw_protocol::endpoint(&address, sizeof address, NETLINK_ROUTE),
              error);
  if (error) {
    state_->close();
    return make_unexpected("cannot subscribe to netlink route changes: " + error.message());
  }
  std::error_code ignored;  // the default buffer works too, with more risk of overruns
  socket.set_option(asio::socket_base::receive_buffer_size(kSocketReceiveBuffer), ignored);
  if (const auto bound = netlink_address(socket.local_endpoint(ignored))) {
    state_->port_id = bound->nl_pid;
  }
  state_->callback = std::move(callback);
  asio::co_spawn(io_, read_loop(state_), asio::detached);
  return {};
}

void RouteMonitor::stop() {
  state_->close();
}

std::uint32_t RouteMonitor::port_id() const {
  return state_->port_id;
}

namespace {

asio::awaitable<void> read_loop(std::shared_ptr<detail::RouteMonitorState> state) {
  std::vector<std::byte> buffer(kDatagramBuffer);
  while (!state->stopped) {
    asio::generic::raw_protocol::endpoint sender;
    auto [error, count] =
        co_await state->socket.async_receive_from(asio::buffer(buffer), sender, kTuple);
    if (state->stopped) co_return;
    if (error == asio::error::no_buffer_space) {
      // The kernel dropped notifications it could not queue: we no longer know the state.
      if (!state->deliver(route_events::Resynchronise{
              "netlink receive buffer overrun (ENOBUFS): changes were lost"})) {
        co_return;
      }
      continue;
    }
    if (error == asio::error::interrupted || error == asio::error::would_block ||
        error == asio::error::try_again) {
      continue;
    }
    if (error) {
      // Not stopped by the caller (checked above): close, then report the last event.
      state->close();
      state->callback(route_events::Failed{"netlink receive failed: " + error.message()});
      co_return;
    }
    // Only the kernel (port 0) reports changes; a process with CAP_NET_ADMIN could send us
    // anything.
    const auto from = netlink_address(sender);
    if (!from || from->nl_pid != 0) continue;
    auto events = netlink::parse_route_messages(std::span(buffer).first(count));
    if (!events) {
      if (!state->deliver(route_events::Resynchronise{"unreadable netlink datagram: " +
                                                      events.error().detail})) {
        co_return;
      }
      continue;
    }
    for (const auto& event : *events) {
      if (!state->deliver(to_route_event(event))) co_return;
    }
  }
}

}  // namespace

}  // namespace tether::transport
