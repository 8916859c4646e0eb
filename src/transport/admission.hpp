// ConnectionAdmission counts a server's connections that have not yet joined a session (TLS
// handshake or first frame still pending), in total and per source, and refuses new ones past its
// limits, so that strangers cannot hold an unbounded number of half-open connections.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include <asio/ip/address.hpp>

namespace tether::transport {

struct AdmissionLimits {
  std::size_t total = 256;      // connections before their first frame, from everyone
  std::size_t per_source = 16;  // from one source (see source_key)
};

class ConnectionAdmission {
 public:
  explicit ConnectionAdmission(AdmissionLimits limits) : limits_(limits) {}

  // Takes a slot for a connection from `source`; false when a limit is reached (the caller closes
  // the connection at once). Every true is matched by one release() with the same source.
  bool try_admit(const std::string& source);
  void release(const std::string& source);

  [[nodiscard]] std::size_t pending() const { return total_; }
  [[nodiscard]] std::size_t pending_from(std::string_view source) const;
  [[nodiscard]] const AdmissionLimits& limits() const { return limits_; }

 private:
  AdmissionLimits limits_;
  std::size_t total_ = 0;
  std::map<std::string, std::size_t, std::less<>> per_source_;
};

// The group a client address counts in for per-source limits: an IPv4 address (also when it comes
// IPv4-mapped), or the /64 prefix of an IPv6 address (one host commonly holds a whole /64).
[[nodiscard]] std::string source_key(const asio::ip::address& address);

}  // namespace tether::transport
