// TransportError is why the client's attempt to open a transport connection (resolve, connect,
// handshake) failed: a kind the runtime decides on, and a message for the log.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <system_error>

#include <asio/error.hpp>

namespace tether::transport {

enum class TransportErrorKind : std::uint8_t {
  kResolve,              // the server's name did not resolve
  kRefused,              // nothing listens there (connection refused or reset while connecting)
  kTimedOut,             // the connect ran past its deadline
  kUnreachable,          // no route to the server's network or host
  kConnect,              // another socket error while connecting (bind, SO_BINDTODEVICE...)
  kHandshake,            // the TLS (or plain) handshake failed: closed, cut, not TLS 1.3...
  kFingerprintMismatch,  // the server's certificate is not the pinned one
  kResources,            // no memory or no randomness for the handshake
};

[[nodiscard]] constexpr std::string_view to_string(TransportErrorKind kind) {
  switch (kind) {
    case TransportErrorKind::kResolve:
      return "resolve";
    case TransportErrorKind::kRefused:
      return "refused";
    case TransportErrorKind::kTimedOut:
      return "timed-out";
    case TransportErrorKind::kUnreachable:
      return "unreachable";
    case TransportErrorKind::kConnect:
      return "connect";
    case TransportErrorKind::kHandshake:
      return "handshake";
    case TransportErrorKind::kFingerprintMismatch:
      return "fingerprint-mismatch";
    case TransportErrorKind::kResources:
      return "resources";
  }
  return "unknown";
}

// True when trying again cannot help: the client stops and reports it (on_fatal) instead of
// retrying with backoff. A pinned fingerprint does not change by itself; every other failure may
// pass (the server starts, the network returns, the handshake is not cut the next time).
[[nodiscard]] constexpr bool is_fatal(TransportErrorKind kind) {
  switch (kind) {
    case TransportErrorKind::kFingerprintMismatch:
      return true;
    case TransportErrorKind::kResolve:
    case TransportErrorKind::kRefused:
    case TransportErrorKind::kTimedOut:
    case TransportErrorKind::kUnreachable:
    case TransportErrorKind::kConnect:
    case TransportErrorKind::kHandshake:
    case TransportErrorKind::kResources:
      return false;
  }
  return false;
}

// The kind of a socket error (Asio's system category) from connecting to the server.
[[nodiscard]] inline TransportErrorKind connect_error_kind(const std::error_code& error) {
  if (error == asio::error::connection_refused || error == asio::error::connection_reset)
    return TransportErrorKind::kRefused;
  if (error == asio::error::timed_out) return TransportErrorKind::kTimedOut;
  if (error == asio::error::network_unreachable || error == asio::error::host_unreachable)
    return TransportErrorKind::kUnreachable;
  return TransportErrorKind::kConnect;
}

struct TransportError {
  TransportErrorKind kind = TransportErrorKind::kConnect;
  std::string message;  // what failed, for the log (may hold a peer's certificate fingerprint)
};

inline std::ostream& operator<<(std::ostream& out, const TransportError& error) {
  return out << to_string(error.kind) << ": " << error.message;
}

}  // namespace tether::transport
