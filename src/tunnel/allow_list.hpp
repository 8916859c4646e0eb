// The server's allow lists: ConnectAllowList says which targets a stream may reach (--allow),
// ListenAllowList which addresses and ports a -R listener may bind (--allow-listen).
//
// A connect pattern is HOST:PORT where HOST is either
//   - an address pattern: an IPv4 address or CIDR block (127.0.0.1, 10.0.0.0/24), or an IPv6 one
//     in brackets ([::1], [fd00::/8]); it is checked against each address the server would
//     actually connect to, whatever name the client asked for; or
//   - a host-name pattern (db.internal, *.internal): '*' stands for exactly one whole label, as in
//     TLS certificates, and names compare case-insensitively. It is checked against the name the
//     client asked for (never against a literal address), and then every address that name
//     resolves to must be an ordinary one: loopback, link-local, unspecified (and the IPv4-mapped
//     IPv6 forms of those) and the server's own addresses are refused unless an address pattern
//     allows them.
// PORT is a single port (5432), a range (8000-8099) or '*' (1-65535).
//
// A listen pattern is an address pattern only (`localhost` means 127.0.0.1), checked against the
// bind address, which a listen request must give as a literal address or `localhost`. Ports below
// 1024 and port 0 (any free port) are granted only by a pattern naming that single port, and the
// unspecified addresses (0.0.0.0, ::) only by a pattern naming that single address.
//
// The checks are pure: resolution and the server's own addresses (host_addresses) come from the
// caller.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <asio/ip/address.hpp>

#include "tether/expected.hpp"

namespace tether::tunnel {

// A port pattern: one port, an inclusive range, or any port.
struct PortPattern {
  std::uint16_t first = 0;
  std::uint16_t last = 0;
  bool single() const { return first == last; }
  bool contains(std::uint16_t port) const { return first <= port && port <= last; }
};

// An address block: `network` with its first `prefix_length` bits significant. IPv4-mapped IPv6
// blocks are stored as IPv4 blocks.
struct AddressBlock {
  asio::ip::address network;
  unsigned prefix_length = 0;
  [[nodiscard]] bool contains(const asio::ip::address& address) const;
  // The block is one address (a /32 or /128).
  [[nodiscard]] bool single() const { return prefix_length == (network.is_v4() ? 32u : 128u); }
};

// ::ffff:a.b.c.d becomes a.b.c.d; every other address is returned unchanged.
[[nodiscard]] asio::ip::address unmapped(const asio::ip::address& address);

// Loopback, link-local or unspecified (0.0.0.0/8, ::), after unmapping: addresses a host-name
// pattern never grants.
[[nodiscard]] bool is_local_scope(const asio::ip::address& address);

// The addresses of this host's interfaces (getifaddrs), unmapped; empty if they cannot be read.
[[nodiscard]] std::vector<asio::ip::address> host_addresses();

class ConnectAllowList {
 public:
  // Adds one --allow pattern; the error says what is wrong and how to write it.
  Expected<void, std::string> add(std::string_view pattern);
  [[nodiscard]] bool empty() const { return addresses_.empty() && names_.empty(); }

  // A cheap check before resolving `host`: a refusal when no resolution could be allowed (so that a
  // client cannot make the server look up names nobody allowed). Passing it decides nothing.
  [[nodiscard]] Expected<void, std::string> may_allow(std::string_view host,
                                                      std::uint16_t port) const;

  // The decision: of `resolved` (what `host` resolved to; for a literal address, that address), the
  // addresses the server may connect to on `port`, unmapped, in their order, without duplicates;
  // or, when there are none, the reason (for the client; it quotes `host`). `own` are the server's
  // own addresses.
  [[nodiscard]] Expected<std::vector<asio::ip::address>, std::string> check(
      std::string_view host, std::uint16_t port, std::span<const asio::ip::address> resolved,
      std::span<const asio::ip::address> own) const;

 private:
  struct AddressRule {
    AddressBlock block;
    PortPattern ports;
  };
  struct NameRule {
    std::vector<std::string> labels;  // lower case; "*" is a one-label wildcard
    PortPattern ports;
  };
  [[nodiscard]] bool address_allowed(const asio::ip::address& address, std::uint16_t port) const;
  [[nodiscard]] bool name_allowed(const std::vector<std::string>& labels, std::uint16_t port) const;

  std::vector<AddressRule> addresses_;
  std::vector<NameRule> names_;
};

class ListenAllowList {
 public:
  // Adds one --allow-listen pattern; the error says what is wrong and how to write it.
  Expected<void, std::string> add(std::string_view pattern);
  [[nodiscard]] bool empty() const { return rules_.empty(); }

  // The address to bind for a listen request on host:port (unmapped), or the reason it is refused.
  [[nodiscard]] Expected<asio::ip::address, std::string> check(std::string_view host,
                                                               std::uint16_t port) const;

 private:
  struct Rule {
    AddressBlock block;
    PortPattern ports;
  };
  std::vector<Rule> rules_;
};

}  // namespace tether::tunnel
