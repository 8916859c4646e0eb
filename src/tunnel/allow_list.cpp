#include "tunnel/allow_list.hpp"

#include "transport/log_safety.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>

#include "tunnel/tunnel_protocol.hpp"

namespace tether::tunnel {
namespace {

constexpr std::size_t kMaxNameLength = 253;
constexpr std::size_t kMaxLabelLength = 63;

// The host and port texts of a pattern, and whether the host was in brackets.
struct PatternParts {
  std::string_view host;
  std::string_view port;
  bool bracketed = false;
};

// ASCII lower case (host names compare case-insensitively, independent of the locale).
std::string lower_case(std::string_view text) {
  std::string lower(text);
  for (char& character : lower) {
    if (character >= 'A' && character <= 'Z') character = static_cast<char>(character - 'A' + 'a');
  }
  return lower;
}

std::string quote(std::string_view text) {
  return "'" + transport::escape_for_log(text) + "'";
}

Expected<PatternParts, std::string> split_pattern(std::string_view pattern) {
  PatternParts parts;
  if (!pattern.empty() && pattern.front() == '[') {
    const auto close = pattern.find(']');
    if (close == std::string_view::npos || close + 1 >= pattern.size() ||
        pattern[close + 1] != ':') {
      return make_unexpected("expected [IPV6]:PORT in " + quote(pattern));
    }
    parts.host = pattern.substr(1, close - 1);
    parts.port = pattern.substr(close + 2);
    parts.bracketed = true;
  } else {
    const auto colon = pattern.rfind(':');
    if (colon == std::string_view::npos)
      return make_unexpected("expected HOST:PORT in " + quote(pattern));
    parts.host = pattern.substr(0, colon);
    parts.port = pattern.substr(colon + 1);
    if (parts.host.find(':') != std::string_view::npos) {
      return make_unexpected("an IPv6 address goes in brackets, as in [::1]:22 or [fd00::/8]:*: " +
                             quote(pattern));
    }
  }
  if (parts.host.empty() || parts.port.empty())
    return make_unexpected("expected HOST:PORT in " + quote(pattern));
  return parts;
}

std::optional<unsigned> parse_number(std::string_view text, unsigned maximum) {
  unsigned value = 0;
  if (text.empty() || text.size() > 5 || text.front() == '+') return std::nullopt;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value > maximum)
    return std::nullopt;
  return value;
}

// "*" (1-65535), "N" or "N-M"; port 0 only as a single port and only when `allow_zero`.
Expected<PortPattern, std::string> parse_ports(std::string_view text, bool allow_zero) {
  const auto error = [&] {
    return make_unexpected("the port must be a number, a range such as 8000-8099, or *; not " +
                           quote(text));
  };
  if (text == "*") return PortPattern{1, 65535};
  const auto dash = text.find('-');
  if (dash == std::string_view::npos) {
    const auto port = parse_number(text, 65535);
    if (!port) return error();
    if (*port == 0 && !allow_zero)
      return make_unexpected(std::string("port 0 is not a target port"));
    return PortPattern{static_cast<std::uint16_t>(*port), static_cast<std::uint16_t>(*port)};
  }
  const auto first = parse_number(text.substr(0, dash), 65535);
  const auto last = parse_number(text.substr(dash + 1), 65535);
  if (!first || !last) return error();
  if (*first == 0 || *first > *last) {
    return make_unexpected("a port range runs from a port of at least 1 up to a larger one: " +
                           quote(text));
  }
  return PortPattern{static_cast<std::uint16_t>(*first), static_cast<std::uint16_t>(*last)};
}

bool prefix_equal(std::span<const unsigned char> left, std::span<const unsigned char> right,
                  unsigned bits) {
  const unsigned whole = bits / 8;
  if (!std::equal(left.begin(), left.begin() + whole, right.begin())) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (left[whole] & mask) == (right[whole] & mask);
}

template <typename Bytes>
bool host_bits_clear(const Bytes& bytes, unsigned prefix_length) {
  Bytes zeroed{};
  for (unsigned bit = 0; bit < prefix_length; ++bit) {
    const auto mask = static_cast<unsigned char>(0x80 >> (bit % 8));
    zeroed[bit / 8] |= static_cast<unsigned char>(bytes[bit / 8] & mask);
  }
  return zeroed == bytes;
}

// The address block `text` names, nullopt when it is not an address (then it is a host name), or
// what is wrong with it. `bracketed` texts must be IPv6.
Expected<std::optional<AddressBlock>, std::string> parse_block(std::string_view text,
                                                               bool bracketed) {
  const auto slash = text.find('/');
  const std::string address_text(text.substr(0, slash));
  if (address_text.find('%') != std::string::npos)
    return make_unexpected("scope ids (%) are not supported in patterns: " + quote(text));
  std::error_code error;
  asio::ip::address address;
  if (bracketed) {
    address = asio::ip::make_address_v6(address_text, error);
    if (error) return make_unexpected("not an IPv6 address or block: " + quote(text));
  } else {
    address = asio::ip::make_address_v4(address_text, error);
    if (error) {
      if (slash != std::string_view::npos) {
        return make_unexpected("not an IPv4 block (an IPv6 block goes in brackets): " +
                               quote(text));
      }
      return std::optional<AddressBlock>{};
    }
  }
  const unsigned width = address.is_v4() ? 32 : 128;
  unsigned prefix_length = width;
  if (slash != std::string_view::npos) {
    const auto parsed = parse_number(text.substr(slash + 1), width);
    if (!parsed) {
      return make_unexpected("the prefix length of " + quote(text) + " must be 0 to " +
                             std::to_string(width));
    }
    prefix_length = *parsed;
  }
  const bool clear = address.is_v4() ? host_bits_clear(address.to_v4().to_bytes(), prefix_length)
                                     : host_bits_clear(address.to_v6().to_bytes(), prefix_length);
  if (!clear) {
    return make_unexpected(quote(text) + " has address bits set past its /" +
                           std::to_string(prefix_length) +
                           " prefix: write the block's first address");
  }
  if (address.is_v6() && address.to_v6().is_v4_mapped() && prefix_length >= 96) {
    return std::optional<AddressBlock>{AddressBlock{unmapped(address), prefix_length - 96}};
  }
  return std::optional<AddressBlock>{AddressBlock{address, prefix_length}};
}

bool is_name_character(char character) {
  return (character >= 'a' && character <= 'z') || (character >= '0' && character <= '9') ||
         character == '-' || character == '_';
}
bool is_digit(char character) {
  return character >= '0' && character <= '9';
}

// `text` in lower case, without one trailing dot, split into labels; nullopt if it is not a host
// name: empty labels, characters other than letters, digits, '-' and '_' (and '*' as a whole label
// when `wildcards`), or a last label starting with a digit (which the resolver may read as a
// number: 127.1 and 0x7f.1 are addresses).
std::optional<std::vector<std::string>> name_labels(std::string_view text, bool wildcards) {
  if (!text.empty() && text.back() == '.') text.remove_suffix(1);
  if (text.empty() || text.size() > kMaxNameLength) return std::nullopt;
  std::vector<std::string> labels;
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto dot = std::min(text.find('.', start), text.size());
    std::string label = lower_case(text.substr(start, dot - start));
    if (label.empty() || label.size() > kMaxLabelLength) return std::nullopt;
    if (!(wildcards && label == "*") && !std::all_of(label.begin(), label.end(), is_name_character))
      return std::nullopt;
    labels.push_back(std::move(label));
    start = dot + 1;
  }
  if (is_digit(labels.back().front())) return std::nullopt;
  return labels;
}

Expected<std::vector<std::string>, std::string> parse_name_pattern(std::string_view text) {
  // Digits, dots and '*' with at least one digit: an address with a wildcard (10.0.0.*), or a
  // number the resolver would read as an address (127.1).
  std::string_view trimmed = text;
  if (!trimmed.empty() && trimmed.back() == '.') trimmed.remove_suffix(1);
  const bool numeric = std::any_of(trimmed.begin(), trimmed.end(), is_digit) &&
                       std::all_of(trimmed.begin(), trimmed.end(), [](char character) {
                         return is_digit(character) || character == '.' || character == '*';
                       });
  const auto labels = name_labels(text, true);
  if (labels && !numeric) return *labels;
  // Say why, for the likely mistakes.
  if (numeric) {
    return make_unexpected(quote(text) +
                           " is not valid: '*' stands for one host-name label, not part of an "
                           "address; write an address block in CIDR form, such as 10.0.0.0/24");
  }
  if (text.find_first_of("*?[]") != std::string_view::npos) {
    return make_unexpected(quote(text) +
                           " is not valid: the only wildcard is '*' as a whole label, as in "
                           "*.internal (one label, like a TLS certificate's)");
  }
  return make_unexpected(quote(text) + " is neither an IP address, a CIDR block nor a host name");
}

bool same_address(const asio::ip::address& left, const asio::ip::address& right) {
  if (left.is_v4() != right.is_v4()) return false;
  if (left.is_v4()) return left.to_v4() == right.to_v4();
  return left.to_v6().to_bytes() == right.to_v6().to_bytes();  // scope ids aside
}

bool listed_in(const asio::ip::address& address, std::span<const asio::ip::address> addresses) {
  return std::any_of(addresses.begin(), addresses.end(), [&](const asio::ip::address& other) {
    return same_address(address, unmapped(other));
  });
}

std::string describe(std::string_view host, std::uint16_t port) {
  const std::string shown = transport::escape_for_log(host);
  return (shown.find(':') != std::string::npos ? "[" + shown + "]" : shown) + ":" +
         std::to_string(port);
}

}  // namespace

// ---- addresses
// ------------------------------------------------------------------------------------

bool AddressBlock::contains(const asio::ip::address& candidate) const {
  const asio::ip::address address = unmapped(candidate);
  if (address.is_v4() != network.is_v4()) return false;
  if (address.is_v4()) {
    return prefix_equal(address.to_v4().to_bytes(), network.to_v4().to_bytes(), prefix_length);
  }
  return prefix_equal(address.to_v6().to_bytes(), network.to_v6().to_bytes(), prefix_length);
}

asio::ip::address unmapped(const asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  return address;
}

bool is_local_scope(const asio::ip::address& candidate) {
  const asio::ip::address address = unmapped(candidate);
  if (address.is_v4()) {
    const auto bytes = address.to_v4().to_bytes();
    return bytes[0] == 127 || bytes[0] == 0 || (bytes[0] == 169 && bytes[1] == 254);
  }
  const auto v6 = address.to_v6();
  return v6.is_loopback() || v6.is_unspecified() || v6.is_link_local();
}

std::vector<asio::ip::address> host_addresses() {
  std::vector<asio::ip::address> addresses;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return addresses;
  for (const ifaddrs* entry = list; entry != nullptr; entry = entry->ifa_next) {
    if (entry->ifa_addr == nullptr) continue;
    if (entry->ifa_addr->sa_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(entry->ifa_addr);
      addresses.emplace_back(asio::ip::address_v4(ntohl(in->sin_addr.s_addr)));
    } else if (entry->ifa_addr->sa_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(entry->ifa_addr);
      asio::ip::address_v6::bytes_type bytes{};
      std::copy(std::begin(in6->sin6_addr.s6_addr), std::end(in6->sin6_addr.s6_addr),
                bytes.begin());
      addresses.emplace_back(unmapped(asio::ip::address_v6(bytes)));
    }
  }
  ::freeifaddrs(list);
  return addresses;
}

// ---- ConnectAllowList
// -----------------------------------------------------------------------------

Expected<void, std::string> ConnectAllowList::add(std::string_view pattern) {
  auto parts = split_pattern(pattern);
  if (!parts) return make_unexpected(parts.error());
  auto ports = parse_ports(parts->port, false);
  if (!ports) return make_unexpected(ports.error() + " (in " + quote(pattern) + ")");
  auto block = parse_block(parts->host, parts->bracketed);
  if (!block) return make_unexpected(block.error());
  if (*block) {
    addresses_.push_back(AddressRule{**block, *ports});
    return {};
  }
  auto labels = parse_name_pattern(parts->host);
  if (!labels) return make_unexpected(labels.error());
  names_.push_back(NameRule{std::move(*labels), *ports});
  return {};
}

bool ConnectAllowList::address_allowed(const asio::ip::address& address, std::uint16_t port) const {
  return std::any_of(addresses_.begin(), addresses_.end(), [&](const AddressRule& rule) {
    return rule.ports.contains(port) && rule.block.contains(address);
  });
}

bool ConnectAllowList::name_allowed(const std::vector<std::string>& labels,
                                    std::uint16_t port) const {
  return std::any_of(names_.begin(), names_.end(), [&](const NameRule& rule) {
    if (!rule.ports.contains(port) || rule.labels.size() != labels.size()) return false;
    for (std::size_t index = 0; index < labels.size(); ++index) {
      if (rule.labels[index] != "*" && rule.labels[index] != labels[index]) return false;
    }
    return true;
  });
}

Expected<void, std::string> ConnectAllowList::may_allow(std::string_view host,
                                                        std::uint16_t port) const {
  const auto refusal = [&] {
    return make_unexpected(describe(host, port) + " is not on the server's allow list");
  };
  if (port == 0) return make_unexpected(std::string("port 0 is not a target port"));
  std::error_code error;
  const auto literal = asio::ip::make_address(std::string(host), error);
  if (!error) {
    if (!address_allowed(literal, port)) return refusal();
    return {};
  }
  const auto labels = name_labels(host, false);
  if (!labels) return make_unexpected(quote(host) + " is not a valid host name or IP address");
  if (name_allowed(*labels, port)) return {};
  // A name no name pattern allows can still resolve to an address an address pattern allows.
  const bool port_listed =
      std::any_of(addresses_.begin(), addresses_.end(),
                  [&](const AddressRule& rule) { return rule.ports.contains(port); });
  if (!port_listed) return refusal();
  return {};
}

Expected<std::vector<asio::ip::address>, std::string> ConnectAllowList::check(
    std::string_view host, std::uint16_t port, std::span<const asio::ip::address> resolved,
    std::span<const asio::ip::address> own) const {
  if (auto possible = may_allow(host, port); !possible) return make_unexpected(possible.error());
  std::error_code error;
  (void)asio::ip::make_address(std::string(host), error);
  const bool literal = !error;
  bool name_matches = false;
  if (!literal) name_matches = name_allowed(*name_labels(host, false), port);
  std::vector<asio::ip::address> allowed;
  bool local_refused = false;
  for (const asio::ip::address& candidate : resolved) {
    const asio::ip::address address = unmapped(candidate);
    bool pass = address_allowed(address, port);
    if (!pass && name_matches) {
      // A host-name pattern grants ordinary addresses only.
      pass = !is_local_scope(address) && !listed_in(address, own);
      local_refused = local_refused || !pass;
    }
    if (pass && !listed_in(address, allowed)) allowed.push_back(address);
  }
  if (!allowed.empty()) return allowed;
  if (resolved.empty()) return make_unexpected(quote(host) + " resolved to no address");
  if (local_refused) {
    return make_unexpected(
        quote(host) +
        " resolves only to loopback, link-local or the server's own addresses, which a host-name "
        "pattern does not allow (an address pattern such as 127.0.0.1:" +
        std::to_string(port) + " would)");
  }
  return make_unexpected(describe(host, port) + " is not on the server's allow list");
}

// ---- ListenAllowList
// ------------------------------------------------------------------------------

Expected<void, std::string> ListenAllowList::add(std::string_view pattern) {
  auto parts = split_pattern(pattern);
  if (!parts) return make_unexpected(parts.error());
  auto ports = parse_ports(parts->port, true);
  if (!ports) return make_unexpected(ports.error() + " (in " + quote(pattern) + ")");
  const std::string host = lower_case(parts->host);
  auto block = host == "localhost" && !parts->bracketed
                   ? Expected<std::optional<AddressBlock>, std::string>{std::optional<AddressBlock>{
                         AddressBlock{asio::ip::make_address_v4("127.0.0.1"), 32}}}
                   : parse_block(parts->host, parts->bracketed);
  if (!block) return make_unexpected(block.error());
  if (!*block) {
    return make_unexpected(quote(pattern) +
                           ": a listen pattern names addresses, not host names: 127.0.0.1:8080, "
                           "10.0.0.0/24:8000-8099, [::1]:2222 (localhost means 127.0.0.1)");
  }
  rules_.push_back(Rule{**block, *ports});
  return {};
}

Expected<asio::ip::address, std::string> ListenAllowList::check(std::string_view host,
                                                                std::uint16_t port) const {
  asio::ip::address address;
  const std::string lower = lower_case(host);
  std::error_code error;
  if (lower == "localhost") {
    address = asio::ip::make_address_v4("127.0.0.1");
  } else {
    address = asio::ip::make_address(lower, error);
    if (error) {
      return make_unexpected("a listen address must be an IP address or localhost, not " +
                             quote(host));
    }
    address = unmapped(address);
  }
  const bool unspecified = address.is_unspecified();
  bool address_listed = false;
  for (const Rule& rule : rules_) {
    const bool address_matches = unspecified ? rule.block.single() && rule.block.network == address
                                             : rule.block.contains(address);
    if (!address_matches) continue;
    address_listed = true;
    const bool port_matches =
        rule.ports.single() ? rule.ports.first == port : port >= 1024 && rule.ports.contains(port);
    if (port_matches) return address;
  }
  const std::string requested = describe(address.to_string(), port);
  if (rules_.empty())
    return make_unexpected(std::string("the server allows no -R listeners (no --allow-listen)"));
  if (address_listed && port == 0) {
    return make_unexpected("listening on " + requested +
                           " (any free port) needs an --allow-listen pattern naming port 0 itself");
  }
  if (address_listed && port < 1024) {
    return make_unexpected("listening on " + requested +
                           " needs an --allow-listen pattern naming that port itself (ports below "
                           "1024 are never granted by a range or *)");
  }
  if (unspecified) {
    return make_unexpected("listening on " + requested +
                           " (every address) needs an --allow-listen pattern naming " +
                           address.to_string() + " itself");
  }
  return make_unexpected("listening on " + requested +
                         " is not on the server's --allow-listen list");
}

}  // namespace tether::tunnel
