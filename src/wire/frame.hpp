// Frame is the sum type of every message tether exchanges; this header defines the wire vocabulary.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace tether::wire {

// The protocol version this build speaks. A hello or resume naming another version is refused with
// reason protocol-error; later versions negotiate through the capability flags first.
inline constexpr std::uint64_t kProtocolVersion = 1;

using SessionId = std::array<std::byte, 16>;
using Secret = std::array<std::byte, 32>;  // proofs, keys and tokens are all 32 bytes (HMAC-SHA256)

// Capability flags carried in Hello/Welcome/Resume. The session uses the intersection of both
// sides' flags, so a peer that lacks a capability is treated as plain.
enum class Capability : std::uint64_t {
  kResume = 1u << 0,
  kFastClose = 1u << 1,
  kStatelessReset = 1u << 2,
  kReauthentication = 1u << 3,
  kMultipath = 1u << 4,
};
using CapabilitySet = std::uint64_t;
[[nodiscard]] constexpr bool has(CapabilitySet set, Capability capability) {
  return (set & static_cast<std::uint64_t>(capability)) != 0;
}

// Why a session, connection attempt or stream ended. The first values follow MPTCP's MP_TCPRST
// reason codes (RFC 8684 section 3.6); the rest are tether's own.
enum class Reason : std::uint8_t {
  kUnspecified = 0,
  kUnknownSession = 1,
  kLackOfResources = 2,
  kAdministrativelyProhibited = 3,
  kTooMuchOutstandingData = 4,
  kUnacceptablePerformance = 5,
  kProtocolError = 6,
  kAuthFailed = 7,
  kCredentialsExpired = 8,
  kRevoked = 9,
  kIdleTimeout = 10,
  kShutdown = 11,
  kLingerExpired = 12,  // the server freed a session that stayed disconnected past its linger time
  kReconnectExhausted = 13,  // the client stopped trying to reach the server
  kApplicationAbort = 14,    // the application aborted the session
};
inline constexpr std::uint8_t kMaxReason = 14;
[[nodiscard]] std::string_view to_string(Reason reason);

enum class FrameType : std::uint8_t {
  kHello = 0x01,
  kWelcome = 0x02,
  kResume = 0x03,
  kResumeAccept = 0x04,
  kRefuse = 0x05,
  kStatelessReset = 0x06,
  kPing = 0x07,
  kPong = 0x08,
  kAck = 0x09,
  kStream = 0x0a,
  kAbort = 0x0b,
  kFastClose = 0x0c,
  kResetStream = 0x0d,
  kClose = 0x0e,
  kAuthChallenge = 0x0f,
  kAuthResponse = 0x10,
  kReauthenticate = 0x11,
  kReauthenticated = 0x12,
};
// Frame types with this bit set may be skipped by a receiver that does not know them; any other
// unknown type is a protocol error.
inline constexpr std::uint8_t kIgnorableTypeBit = 0x80;

// SASL mechanism names are at most 20 characters (RFC 4422 section 3.1).
inline constexpr std::size_t kMaxMechanismName = 20;
// The longest principal a Welcome carries, and the longest human-readable message in a Refuse.
inline constexpr std::size_t kMaxPrincipal = 256;
inline constexpr std::size_t kMaxRefuseMessage = 512;

// Client -> server, first frame of a connection that starts a new session. A client that does not
// authenticate sends an empty mechanism, and a server that requires authentication refuses it with
// auth-failed (naming what it offers), not protocol-error.
struct Hello {
  std::uint64_t version = kProtocolVersion;
  CapabilitySet capabilities = 0;
  std::uint64_t heartbeat_interval_ms = 0;       // DOTS heartbeat-interval, proposed
  std::uint64_t missing_heartbeats_allowed = 0;  // DOTS missing-hb-allowed, proposed
  std::string mechanism{};  // the SASL mechanism the client chose; empty: no authentication
  // SASL's initial response (RFC 4422 section 5): absent is different from empty.
  std::optional<std::vector<std::byte>> initial_response{};
  friend bool operator==(const Hello&, const Hello&) = default;
};

// Server -> client during authentication: the mechanism's next challenge.
struct AuthChallenge {
  std::vector<std::byte> data;
  friend bool operator==(const AuthChallenge&, const AuthChallenge&) = default;
};

// Client -> server during authentication: the answer to a challenge.
struct AuthResponse {
  std::vector<std::byte> data;
  friend bool operator==(const AuthResponse&, const AuthResponse&) = default;
};

// Server -> client, accepts a Hello and names the session.
struct Welcome {
  std::uint64_t version = kProtocolVersion;
  CapabilitySet capabilities = 0;
  SessionId session_id{};
  std::uint64_t heartbeat_interval_ms = 0;       // negotiated
  std::uint64_t missing_heartbeats_allowed = 0;  // negotiated
  std::uint64_t linger_ms = 0;  // how long the server keeps the session while disconnected
  Secret
      reset_token{};  // the stateless-reset token the server will present if it loses the session
  // The server authenticated the client (false: it runs without authentication).
  bool authenticated = false;
  std::string principal{};  // who the server says the client is
  std::vector<std::byte>
      server_final{};  // the mechanism's final message (SCRAM's v=), may be empty
  // How long the session may be used before the client must re-authenticate (milliseconds from
  // this frame; 0: no limit). Present only when `authenticated`.
  std::uint64_t session_lifetime_ms = 0;
  friend bool operator==(const Welcome&, const Welcome&) = default;
};

// How far one stream has been received: every byte below `offset` has been received.
struct StreamPosition {
  std::uint64_t stream_id = 0;
  std::uint64_t offset = 0;
  friend bool operator==(const StreamPosition&, const StreamPosition&) = default;
};

// Client -> server, first frame of a connection that resumes an existing session.
struct Resume {
  std::uint64_t version = kProtocolVersion;
  SessionId session_id{};
  Secret
      proof{};  // HMAC(resume secret, "client" || session id || this connection's keying material)
  std::vector<StreamPosition> received;  // what the client has received, per stream
  friend bool operator==(const Resume&, const Resume&) = default;
};

// Server -> client, accepts a Resume.
struct ResumeAccept {
  Secret
      proof{};  // HMAC(resume secret, "server" || session id || this connection's keying material)
  std::vector<StreamPosition> received;  // what the server has received, per stream
  friend bool operator==(const ResumeAccept&, const ResumeAccept&) = default;
};

// Server -> client, refuses a Hello or a Resume on this connection; the connection then closes.
struct Refuse {
  Reason reason = Reason::kUnspecified;
  bool transient = false;  // trying again later may succeed
  // Why, for the user (which mechanism and what was wrong; may be empty), never a secret.
  std::string message{};
  friend bool operator==(const Refuse&, const Refuse&) = default;
};

// Server -> client, "I have no session with this id": the token proves it came from the server.
struct StatelessReset {
  SessionId session_id{};
  Secret token{};
  friend bool operator==(const StatelessReset&, const StatelessReset&) = default;
};

struct Ping {
  std::uint64_t sequence = 0;
  friend bool operator==(const Ping&, const Ping&) = default;
};

struct Pong {
  std::uint64_t sequence = 0;  // echoes the Ping it answers
  friend bool operator==(const Pong&, const Pong&) = default;
};

// Cumulative acknowledgement and flow-control credit for one stream.
struct AckEntry {
  std::uint64_t stream_id = 0;
  std::uint64_t received_offset = 0;  // every byte below has been received
  std::uint64_t window_limit = 0;     // the sender may send bytes below this offset
  friend bool operator==(const AckEntry&, const AckEntry&) = default;
};

struct Ack {
  std::vector<AckEntry> entries;
  friend bool operator==(const Ack&, const Ack&) = default;
};

// Bytes of one stream at an absolute offset. The data view points into the decoder's input buffer
// and is valid only until that buffer changes.
struct StreamData {
  static constexpr std::uint8_t kOpenFlag = 0x01;
  static constexpr std::uint8_t kFinFlag = 0x02;
  std::uint64_t stream_id = 0;
  std::uint64_t offset = 0;
  bool open = false;          // first frame of a stream: carries its priority
  bool fin = false;           // the last byte of the stream is the last byte of this frame
  std::uint8_t priority = 0;  // 0 is most urgent; only meaningful with `open`
  std::span<const std::byte> data;
  friend bool operator==(const StreamData& left, const StreamData& right) {
    // The priority travels only with `open`, so only then is it part of the frame's value.
    return left.stream_id == right.stream_id && left.offset == right.offset &&
           left.open == right.open && left.fin == right.fin &&
           (!left.open || left.priority == right.priority) &&
           std::equal(left.data.begin(), left.data.end(), right.data.begin(), right.data.end());
  }
};

// Immediate end of the session on the live path, sent by a side that has already freed its state.
struct Abort {
  Reason reason = Reason::kUnspecified;
  bool transient = false;
  // Why, for the user (at most kMaxRefuseMessage bytes; may be empty), never a secret.
  std::string message{};
  friend bool operator==(const Abort&, const Abort&) = default;
};

// Authenticated immediate end of a session, valid on any connection (also as its first frame): the
// key is the receiver's fast-close key, which only the two ends of the session know.
struct FastClose {
  SessionId session_id{};
  Secret key{};
  Reason reason = Reason::kUnspecified;
  friend bool operator==(const FastClose&, const FastClose&) = default;
};

// Control-stream message: the sender abandons stream `stream_id`.
struct ResetStream {
  std::uint64_t stream_id = 0;
  std::uint64_t error_code = 0;
  friend bool operator==(const ResetStream&, const ResetStream&) = default;
};

// Control-stream message: the sender has finished and every byte it wrote has been acknowledged.
struct Close {
  Reason reason = Reason::kShutdown;
  friend bool operator==(const Close&, const Close&) = default;
};

// Control-stream message, client -> server: re-authenticate the live session in place (the
// session must have negotiated Capability::kReauthentication). The exchange then continues with
// AuthChallenge / AuthResponse as control-stream messages and ends with Reauthenticated, or with
// an Abort (auth-failed) that ends the session.
struct Reauthenticate {
  std::string mechanism{};  // must be the mechanism the session authenticated with
  std::optional<std::vector<std::byte>> initial_response{};
  friend bool operator==(const Reauthenticate&, const Reauthenticate&) = default;
};

// Control-stream message, server -> client: the re-authentication succeeded.
struct Reauthenticated {
  std::uint64_t session_lifetime_ms = 0;  // the new lifetime from this message; 0: no limit
  std::vector<std::byte> server_final{};  // the mechanism's final message, may be empty
  friend bool operator==(const Reauthenticated&, const Reauthenticated&) = default;
};

// An ignorable frame of a type this build does not know; decoding skips its payload.
struct Ignored {
  std::uint8_t type = 0;
  friend bool operator==(const Ignored&, const Ignored&) = default;
};

using Frame = std::variant<Hello, Welcome, Resume, ResumeAccept, Refuse, StatelessReset, Ping, Pong,
                           Ack, StreamData, Abort, FastClose, ResetStream, Close, AuthChallenge,
                           AuthResponse, Reauthenticate, Reauthenticated, Ignored>;

[[nodiscard]] FrameType frame_type(const Frame& frame);
[[nodiscard]] std::string_view to_string(FrameType type);

}  // namespace tether::wire
