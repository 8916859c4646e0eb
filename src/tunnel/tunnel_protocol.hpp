// The tunnel's per-stream protocol: the first bytes of every stream name its target, and the
// server's first bytes back say whether the target was reached. Everything after is the
// connection's bytes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tether/expected.hpp"

namespace tether::tunnel {

// Request: version (1) | kind (u8) | host length (u16) | host | port (u16), big-endian.
// Reply:   status (u8) | message length (u16) | message.
// kind 1 (connect): connect the stream to host:port. Sent by the side that accepted a local
//   connection (the client for -L/-D; the server for a -R listener, naming the listener's address).
// kind 2 (listen): the client asks the server to listen on host:port for -R; the stream stays open
//   as long as the listener should, and the reply's message names the bound address.
inline constexpr std::uint8_t kTunnelVersion = 1;
inline constexpr std::size_t kMaxHostLength = 255;
inline constexpr std::size_t kMaxMessageLength = 512;

enum class ReplyStatus : std::uint8_t {
  kConnected = 0,
  kNotAllowed = 1,   // the target is not on the server's allow list
  kUnreachable = 2,  // resolving or connecting failed
  kRefused = 3,      // the target refused the connection
  kBadRequest = 4,
};
[[nodiscard]] const char* to_string(ReplyStatus status);

// The error code of a ResetStream on a tunnel stream says why it was reset (the numbers are the
// session's Reason codes). kResetClosed: the bridge on the other side ended (a local read or write
// failed, a bad header, the program is ending). kResetLackOfResources: sent by the session itself
// (too many unread bytes). kResetNotGranted: the server's grants no longer allow the stream's
// target (or the -R listener that accepted it) after a re-authentication with another credential.
inline constexpr std::uint64_t kResetClosed = 1;
inline constexpr std::uint64_t kResetLackOfResources = 2;
inline constexpr std::uint64_t kResetNotGranted = 3;  // administratively-prohibited
// Why a stream was reset, for the log of the side that receives the reset: the meaning of a known
// code, or the number.
[[nodiscard]] std::string reset_reason(std::uint64_t code);

enum class RequestKind : std::uint8_t { kConnect = 1, kListen = 2 };

struct StreamRequest {
  RequestKind kind = RequestKind::kConnect;
  std::string host;
  std::uint16_t port = 0;
};

struct Reply {
  ReplyStatus status = ReplyStatus::kConnected;
  std::string message;
};

[[nodiscard]] std::vector<std::byte> encode(const StreamRequest& request);
[[nodiscard]] std::vector<std::byte> encode(const Reply& reply);

// Parse from the start of `bytes`: nullopt means "need more bytes"; an error string means
// malformed. On success `consumed` tells how many bytes the header took.
[[nodiscard]] Expected<std::optional<StreamRequest>, std::string> parse_request(
    std::span<const std::byte> bytes, std::size_t& consumed);
[[nodiscard]] Expected<std::optional<Reply>, std::string> parse_reply(
    std::span<const std::byte> bytes, std::size_t& consumed);

// Splits "HOST:PORT" or "[V6]:PORT"; the error names what is wrong. Port 0 is refused unless
// `allow_port_zero` (a listener on any free port).
[[nodiscard]] Expected<std::pair<std::string, std::uint16_t>, std::string> split_host_port(
    std::string_view text, bool allow_port_zero = false);

}  // namespace tether::tunnel
