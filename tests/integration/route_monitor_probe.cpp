// route_monitor_probe runs a RouteMonitor and prints one line per event, for the integration test.
//   route_monitor_probe               prints "ready port N", then one line per event until SIGTERM
//                                     or SIGINT; exits 77 if netlink is unavailable
//   route_monitor_probe --forge PORT  sends PORT (a monitor's netlink port) messages that look like
//                                     changes but come from a process: the monitor must drop them
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <variant>
#include <vector>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include "transport/route_monitor.hpp"

namespace {

using namespace tether::transport;

const char* family_name(netlink::AddressFamily family) {
  return family == netlink::AddressFamily::kIpv4 ? "ipv4" : "ipv6";
}

std::string describe(const RouteEvent& event) {
  if (const auto* added = std::get_if<route_events::AddressAdded>(&event)) {
    return "address-added " + std::to_string(added->interface_index) + " " +
           added->address.to_string();
  }
  if (const auto* removed = std::get_if<route_events::AddressRemoved>(&event)) {
    return "address-removed " + std::to_string(removed->interface_index) + " " +
           removed->address.to_string();
  }
  if (const auto* route = std::get_if<route_events::DefaultRouteChanged>(&event)) {
    return std::string(route->removed ? "default-route-removed " : "default-route-added ") +
           family_name(route->family) + " interface " +
           std::to_string(route->output_interface_index) + " gateway " +
           (route->gateway ? route->gateway->to_string() : std::string("none")) + " priority " +
           std::to_string(route->priority);
  }
  if (const auto* lost = std::get_if<route_events::Resynchronise>(&event)) {
    return "resynchronise " + lost->reason;
  }
  return "failed " + std::get<route_events::Failed>(event).reason;
}

int forge(std::uint32_t port) {
  netlink::IpAddress address;
  address.family = netlink::AddressFamily::kIpv4;
  address.bytes = {192, 0, 2, 66};
  netlink::DefaultRouteChanged route;
  route.family = netlink::AddressFamily::kIpv4;
  route.gateway = address;
  route.priority = 66;
  std::vector<std::byte> datagram;
  netlink::encode_route_message(netlink::AddressRemoved{1, address}, datagram);
  netlink::encode_route_message(route, datagram);

  const int descriptor = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (descriptor < 0) {
    std::fprintf(stderr, "socket: %s\n", std::strerror(errno));
    return 1;
  }
  sockaddr_nl destination{};
  destination.nl_family = AF_NETLINK;
  destination.nl_pid = port;
  const auto sent = ::sendto(descriptor, datagram.data(), datagram.size(), 0,
                             reinterpret_cast<const sockaddr*>(&destination), sizeof destination);
  const int error = errno;
  ::close(descriptor);
  if (sent < 0) {
    std::fprintf(stderr, "sendto: %s\n", std::strerror(error));
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string(argv[1]) == "--forge") {
    return forge(static_cast<std::uint32_t>(std::strtoul(argv[2], nullptr, 10)));
  }
  if (argc != 1) {
    std::fprintf(stderr, "usage: %s [--forge PORT]\n", argv[0]);
    return 2;
  }
  asio::io_context io;
  RouteMonitor monitor(io);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  auto started = monitor.start([&](const RouteEvent& event) {
    std::printf("%s\n", describe(event).c_str());
    std::fflush(stdout);
    if (std::holds_alternative<route_events::Failed>(event)) signals.cancel();
  });
  if (!started) {
    std::fprintf(stderr, "unavailable: %s\n", started.error().c_str());
    return 77;
  }
  signals.async_wait([&](std::error_code, int) { monitor.stop(); });
  std::printf("ready port %u\n", monitor.port_id());
  std::fflush(stdout);
  io.run();
  return 0;
}
