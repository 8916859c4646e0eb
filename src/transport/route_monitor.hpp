// RouteMonitor watches the host's IP addresses and default routes over rtnetlink and reports each
// change as it happens, so that the client can move to a new connection at once when the network
// under its connection changes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/ip/address.hpp>

#include "tether/expected.hpp"

namespace tether::transport {

// ---- The sans-I/O parser: rtnetlink datagrams in, events out (no Asio, no system calls).
namespace netlink {

enum class AddressFamily : std::uint8_t { kIpv4, kIpv6 };

// An IP address as the kernel reports it, in network byte order: IPv4 uses the first 4 bytes and
// leaves the other 12 zero.
struct IpAddress {
  AddressFamily family = AddressFamily::kIpv4;
  std::array<std::uint8_t, 16> bytes{};
  friend bool operator==(const IpAddress&, const IpAddress&) = default;
};

// RTM_NEWADDR: an address was added to an interface, or one of its properties changed (the kernel
// also sends it when an IPv6 address finishes duplicate address detection or its lifetime is
// refreshed), so the same address can be reported more than once.
struct AddressAdded {
  std::uint32_t interface_index = 0;
  IpAddress address;
  friend bool operator==(const AddressAdded&, const AddressAdded&) = default;
};

// RTM_DELADDR: the address is gone from the interface.
struct AddressRemoved {
  std::uint32_t interface_index = 0;
  IpAddress address;
  friend bool operator==(const AddressRemoved&, const AddressRemoved&) = default;
};

// RTM_NEWROUTE or RTM_DELROUTE of a default route (destination prefix length 0) in the main table.
struct DefaultRouteChanged {
  AddressFamily family = AddressFamily::kIpv4;
  bool removed = false;                      // RTM_DELROUTE; otherwise a new or replaced route
  std::uint32_t output_interface_index = 0;  // 0 when not given (for example several next hops)
  std::optional<IpAddress> gateway;
  std::uint32_t priority = 0;  // the route's metric; 0 when not given
  friend bool operator==(const DefaultRouteChanged&, const DefaultRouteChanged&) = default;
};

using RouteMessageEvent = std::variant<AddressAdded, AddressRemoved, DefaultRouteChanged>;

// Why a datagram was refused. A refused datagram may have carried changes that were lost, so the
// caller should treat it as a possible change.
struct RouteMessageError {
  std::string detail;             // what was wrong, for a log line
  std::size_t offset = 0;         // where in the datagram
  std::int32_t kernel_error = 0;  // NLMSG_ERROR only: the value the kernel sent (a negative errno)
};

// Parses one datagram read from an rtnetlink socket: a sequence of netlink messages, each aligned
// to 4 bytes. Returns the events in the order of the messages, or an error if any message or
// attribute is malformed (every length is checked against what contains it) or is an NLMSG_ERROR
// or NLMSG_OVERRUN. Ignored: NLMSG_NOOP and NLMSG_DONE, message types other than address and route
// messages, families other than IPv4 and IPv6, non-default routes and routes in other tables.
// Safe on any input: never reads outside `datagram` and makes no assumption about its alignment.
[[nodiscard]] Expected<std::vector<RouteMessageEvent>, RouteMessageError> parse_route_messages(
    std::span<const std::byte> datagram);

// Appends the netlink message the kernel would send for `event` (header, ifaddrmsg or rtmsg, and
// the attributes the parser reads), with sequence number 0 and sender port 0. For tests, the fuzzer
// and the integration probe: parse_route_messages gives the event back.
void encode_route_message(const RouteMessageEvent& event, std::vector<std::byte>& out);

}  // namespace netlink

// ---- What RouteMonitor reports, with Asio addresses.
namespace route_events {

// An address appeared on an interface (or was reported again: see netlink::AddressAdded).
struct AddressAdded {
  std::uint32_t interface_index = 0;
  asio::ip::address address;  // IPv6 link-local addresses carry the interface as scope id
};

// An address disappeared: a connection bound to it is dead.
struct AddressRemoved {
  std::uint32_t interface_index = 0;
  asio::ip::address address;  // IPv6 link-local addresses carry the interface as scope id
};

// A default route of this family was added, replaced or deleted: new connections may leave by
// another path than the current one.
struct DefaultRouteChanged {
  netlink::AddressFamily family = netlink::AddressFamily::kIpv4;
  bool removed = false;
  std::uint32_t output_interface_index = 0;  // 0 when not given
  std::optional<asio::ip::address> gateway;
  std::uint32_t priority = 0;
};

// Changes may have been lost (the socket's receive buffer overran, or a datagram could not be
// parsed): anything may have changed.
struct Resynchronise {
  std::string reason;
};

// The monitor stopped on a receive error and reports nothing more.
struct Failed {
  std::string reason;
};

}  // namespace route_events

using RouteEvent = std::variant<route_events::AddressAdded, route_events::AddressRemoved,
                                route_events::DefaultRouteChanged, route_events::Resynchronise,
                                route_events::Failed>;

// The Asio form of a kernel address; an IPv6 link-local address gets `interface_index` as its scope
// id, as the local endpoint of a socket bound to it has.
[[nodiscard]] asio::ip::address to_asio_address(const netlink::IpAddress& address,
                                                std::uint32_t interface_index);

// The policy for a connection whose local address is `local_address`: true when `event` means it
// may no longer work or no longer be the path the host would choose now — its address was removed
// (IPv4-mapped IPv6 compares equal to IPv4; scope ids compare when both are set), a default route
// of its family changed (unless it is a loopback connection), or changes were lost
// (Resynchronise). False for added addresses and Failed.
[[nodiscard]] bool may_break_connection(const RouteEvent& event,
                                        const asio::ip::address& local_address);

namespace detail {
struct RouteMonitorState;
}  // namespace detail

// Watches address and route changes on an rtnetlink socket (NETLINK_ROUTE, subscribed to the IPv4
// and IPv6 address and route groups) and calls back on the io_context for each change. Messages
// not sent by the kernel are ignored. Single-threaded: use it from the io_context's thread. Never
// throws.
class RouteMonitor {
 public:
  // Called on the io_context's thread; must not throw. It may call stop() or destroy the monitor.
  using Callback = std::function<void(const RouteEvent&)>;

  explicit RouteMonitor(asio::io_context& io);
  ~RouteMonitor();  // stops
  RouteMonitor(const RouteMonitor&) = delete;
  RouteMonitor& operator=(const RouteMonitor&) = delete;

  // Opens and binds the socket and starts reading. The error says why not (for example a sandbox
  // without netlink, or start() called twice); then nothing is ever reported and the caller goes on
  // without the monitor, relying on heartbeats.
  Expected<void, std::string> start(Callback callback);

  // Stops reading and closes the socket; no callback runs after it returns. Idempotent; safe from
  // inside the callback.
  void stop();

  // The netlink port id the kernel assigned to the socket; 0 before start(). For tests.
  [[nodiscard]] std::uint32_t port_id() const;

 private:
  asio::io_context& io_;
  std::shared_ptr<detail::RouteMonitorState>
      state_;  // shared with the read coroutine, which may outlive the monitor
};

}  // namespace tether::transport
