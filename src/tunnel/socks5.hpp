// Socks5Handshake is the server side of a SOCKS5 (RFC 1928) CONNECT handshake as a sans-I/O state
// machine: fed the bytes a local SOCKS client sends, it says what to send back and, once the
// request is complete, which target the client wants. It never touches a socket.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tether/expected.hpp"
#include "tunnel/tunnel_protocol.hpp"

namespace tether::tunnel {

// Greeting:  version (5) | method count (u8) | methods (one byte each).
// Selection: version (5) | method (0x00 no authentication; 0xFF none acceptable).
// Request:   version (5) | command (1 = connect) | reserved (0) | address type | address | port.
// Reply:     version (5) | reply code | reserved (0) | address type | bound address | bound port.
// Address type 1: 4 bytes IPv4; 3: length (u8, 1..255) then a domain name; 4: 16 bytes IPv6.
// Ports are u16, big-endian.
inline constexpr std::uint8_t kSocks5Version = 5;
inline constexpr std::uint8_t kSocks5NoAuthentication = 0x00;
inline constexpr std::uint8_t kSocks5NoAcceptableMethod = 0xff;

enum class Socks5AddressType : std::uint8_t {
  kIpv4 = 1,
  kDomain = 3,
  kIpv6 = 4,
};

// The reply codes of RFC 1928 §6.
enum class Socks5Reply : std::uint8_t {
  kSucceeded = 0x00,
  kGeneralFailure = 0x01,
  kNotAllowed = 0x02,  // "connection not allowed by ruleset"
  kNetworkUnreachable = 0x03,
  kHostUnreachable = 0x04,
  kConnectionRefused = 0x05,
  kTtlExpired = 0x06,
  kCommandNotSupported = 0x07,
  kAddressTypeNotSupported = 0x08,
};
[[nodiscard]] const char* to_string(Socks5Reply reply);

// The SOCKS5 reply that tells the local client what the tether server answered.
[[nodiscard]] Socks5Reply to_socks5_reply(ReplyStatus status);

// The longest messages a client sends: a greeting offering 255 methods, a request naming a
// 255-byte domain.
inline constexpr std::size_t kMaxSocks5GreetingLength = 2 + 255;
inline constexpr std::size_t kMaxSocks5RequestLength = 4 + 1 + 255 + 2;
// The most bytes one feed() asks the caller to send: a method selection and a reply with an IPv4
// (0.0.0.0) bound address.
inline constexpr std::size_t kMaxSocks5HandshakeOutput = 2 + 10;

// Encodes a reply. `bound_host` is IPv4 dotted text, IPv6 text without brackets, a domain name of
// 1..255 bytes, or empty for "unknown" (sent as 0.0.0.0). A longer domain is a programmer error.
[[nodiscard]] std::vector<std::byte> encode_socks5_reply(Socks5Reply reply,
                                                         std::string_view bound_host = {},
                                                         std::uint16_t bound_port = 0);

// The target a client asked to CONNECT to.
struct Socks5Target {
  // IPv4 dotted text, IPv6 text without brackets (RFC 5952 form), or the domain name as sent.
  std::string host;
  std::uint16_t port = 0;
  Socks5AddressType address_type = Socks5AddressType::kIpv4;  // how the client named it

  friend bool operator==(const Socks5Target&, const Socks5Target&) = default;
};

// What one successful feed() did.
struct Socks5Progress {
  // Input bytes the handshake took. Once `request` is set, the input bytes after them are the
  // connection's first payload bytes (a client may send them before it sees our reply).
  std::size_t consumed = 0;
  // Bytes to write to the client, in order (at most kMaxSocks5HandshakeOutput).
  std::vector<std::byte> to_send;
  // Set by the one feed() that completed the request: the target the client wants to reach.
  // Answer it with encode_socks5_reply once the target is known reachable or not.
  std::optional<Socks5Target> request;
};

// Why the handshake failed and what to send before closing the connection.
struct Socks5Failure {
  std::string reason;  // for the log
  // Bytes to write to the client before closing (a method selection made earlier in the same
  // feed() comes first); empty when the peer does not speak SOCKS5 and gets no answer at all.
  std::vector<std::byte> to_send;
};

// Feed it the client's bytes as they arrive, in any chunking; the outcome depends only on the
// bytes, never on how they were split. States: greeting → request → complete, or failed from
// either of the first two. Memory is bounded by one fixed buffer of kMaxSocks5RequestLength bytes.
//
// Only "no authentication" and the CONNECT command are supported. A domain name must be 1..255
// printable ASCII bytes (0x21..0x7e), so that nothing unprintable reaches the allow list or logs.
class Socks5Handshake {
 public:
  enum class State : std::uint8_t { kGreeting, kRequest, kComplete, kFailed };

  // Takes as many of `bytes` as the handshake needs. After the request completed it takes nothing
  // (consumed 0, nothing to send); after a failure it returns the same reason with nothing to send.
  [[nodiscard]] Expected<Socks5Progress, Socks5Failure> feed(std::span<const std::byte> bytes);

  [[nodiscard]] State state() const { return state_; }
  // The requested target once state() is kComplete, otherwise nullopt.
  [[nodiscard]] const std::optional<Socks5Target>& request() const { return request_; }

 private:
  // What the buffered prefix of the message being read tells so far.
  struct Examination {
    enum class Kind : std::uint8_t { kNeedBytes, kComplete, kFailed };
    Kind kind = Kind::kNeedBytes;
    std::size_t length = 0;  // kNeedBytes: the message needs this many bytes before the next look
    std::vector<std::byte> answer;  // kFailed: what to send before closing; may be empty
    std::string reason;             // kFailed

    static Examination need(std::size_t length);
    static Examination complete();
    static Examination failed(std::vector<std::byte> answer, std::string reason);
  };
  [[nodiscard]] Examination examine_greeting() const;
  [[nodiscard]] Examination examine_request() const;
  [[nodiscard]] Socks5Target parse_target() const;

  State state_ = State::kGreeting;
  static_assert(kMaxSocks5GreetingLength <= kMaxSocks5RequestLength);
  std::array<std::byte, kMaxSocks5RequestLength> buffer_{};
  std::size_t buffered_ = 0;  // bytes of the current message in buffer_
  std::optional<Socks5Target> request_;
  std::string failure_reason_;
};

}  // namespace tether::tunnel
