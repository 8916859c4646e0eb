// The vocabulary shared by the session core: time, identifiers, injected randomness and
// configuration.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include "session/heartbeat_policy.hpp"
#include "wire/frame.hpp"

namespace tether::session {

// The core never reads a clock: every call that may depend on time takes `now`. The runtime passes
// std::chrono::steady_clock::now(); tests and the simulator pass a virtual time.
using Clock = std::chrono::steady_clock;
using Time = Clock::time_point;
using Duration = std::chrono::nanoseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

using PathId = std::uint64_t;    // one transport connection, named by whoever owns the session
using StreamId = std::uint64_t;  // 0 is the control stream; clients open odd ids, servers even ids
using wire::Reason;
using wire::Secret;
using wire::SessionId;

inline constexpr StreamId kControlStream = 0;

enum class Role : std::uint8_t { kClient, kServer };

// The only source of randomness the core uses (session ids, reconnect jitter). The runtime backs it
// with a CSPRNG; tests back it with a seeded generator so that every run can be replayed.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  virtual void fill(std::span<std::byte> out) = 0;
  std::uint64_t next_u64() {
    std::uint64_t value = 0;
    fill(std::as_writable_bytes(std::span<std::uint64_t>(&value, 1)));
    return value;
  }
};

// How a server enforces the end of a session's lifetime.
enum class ExpiryEnforcement : std::uint8_t {
  kImmediate,  // at the lifetime's end, by a timer, even when the session is idle
  kOnUse,      // at the first frame after the lifetime's end that is not re-authentication (Kafka)
};

// Everything either side may tune. Defaults are the "normal" profile; tests use their own.
class ClientAuthenticator;

struct SessionConfig {
  // Liveness (DOTS names). The client proposes; the server clamps into its own bounds, and the
  // client clamps the server's answer into its own (see heartbeat_policy.hpp: the defaults and the
  // rule live there).
  Duration heartbeat_interval = heartbeat_policy::kDefault.interval;
  std::uint64_t missing_heartbeats_allowed = heartbeat_policy::kDefault.missing_allowed;
  Duration min_heartbeat_interval = heartbeat_policy::kDefaultBounds.min_interval;
  Duration max_heartbeat_interval = heartbeat_policy::kDefaultBounds.max_interval;
  std::uint64_t max_missing_heartbeats_allowed =
      heartbeat_policy::kDefaultBounds.max_missing_allowed;

  [[nodiscard]] HeartbeatParameters proposed_heartbeat() const {
    return {heartbeat_interval, missing_heartbeats_allowed};
  }
  [[nodiscard]] HeartbeatBounds heartbeat_bounds() const {
    return {min_heartbeat_interval, max_heartbeat_interval, max_missing_heartbeats_allowed};
  }

  // Bytes written by the application and not yet acknowledged by the peer, over all streams. A
  // write beyond it is refused with WouldBlock.
  std::size_t max_unacknowledged_bytes = 4u << 20;
  // Per-stream receive window: bytes the peer may send beyond what the application has read.
  std::size_t stream_receive_window = 1u << 20;
  // Largest data payload put in one frame, and so the scheduling quantum between streams.
  std::size_t max_data_frame_payload = 16u << 10;
  // Acknowledgements of received bytes are delayed so that they ride along with the next frame
  // going the other way (a request's acknowledgement with its response): a pending one goes out
  // with any outgoing frame, on its own after `ack_delay` at the latest, and at once when
  // `ack_eager_bytes` have arrived since the last one, with a FIN, or when a stream's window needs
  // more credit. Far below the heartbeat budget, so it never looks like a stall.
  Duration ack_delay = milliseconds(10);
  std::size_t ack_eager_bytes = 128u << 10;
  // Largest frame payload accepted from the peer.
  std::size_t max_frame_payload = 1u << 20;
  std::size_t max_streams = 4096;  // concurrent streams per session, each direction
  // New streams the peer may open per second, after a burst of max_streams; more are refused
  // (ResetStream, lack-of-resources) as past max_streams.
  std::uint64_t max_stream_opens_per_second = 1000;
  // Frames queued on one connection and not yet taken by the runtime (see Session::wants_input).
  std::size_t max_queued_bytes = 256u << 10;
  // Received bytes not yet read by the application, over all streams of a session. Past half of
  // it no stream gets more window credit; data past all of it resets the stream it arrives on
  // (lack-of-resources), so a peer cannot make us buffer streams x windows.
  std::size_t max_receive_buffered_bytes = 16u << 20;

  // Server: how long a disconnected session is kept before it is freed.
  Duration linger = seconds(600);
  // Pre-session handshake: a connection must send its first frame within this time (server), a
  // resume or hello must be answered within this time (client).
  Duration handshake_timeout = seconds(10);
  // Authentication (see authenticator.hpp). The largest message of an exchange either side sends
  // or accepts (an initial response, a challenge, an answer): a bearer token fits, a flood does
  // not.
  std::size_t max_authentication_message = 16u << 10;
  // Client: authenticates every new session through this (nullptr: the client does not
  // authenticate). With it, a server that does not authenticate is refused (auth-failed), as is
  // one whose final message does not prove it knew the credential.
  std::shared_ptr<ClientAuthenticator> authenticator;

  // Lifetime and re-authentication (see session_lifetime.hpp and PROTOCOL.md "Re-authentication").
  // Server: the longest a session may be used between (re-)authentications, Kafka's
  // connections.max.reauth.ms (nullopt: only the credential's own expiry bounds it).
  std::optional<Duration> max_reauthentication;
  // Server: audit only: a session past its lifetime lives on; the frames it carries are counted
  // and the application is told once (events::LifetimePassed) so operators see who would be cut.
  bool lifetime_audit_only = false;
  ExpiryEnforcement expiry_enforcement = ExpiryEnforcement::kImmediate;
  // Both: at most one re-authentication per this interval per session (the server ends a session
  // whose client starts them faster).
  Duration min_reauthentication_interval = seconds(1);
  // The shortest lifetime a session can be given and still renew: a credential with less left is
  // refused (at login and when re-authenticating), and a shorter max_reauthentication is raised
  // to it. Twice the interval, so that a client starting at 85% of it keeps the interval.
  [[nodiscard]] Duration minimum_lifetime() const { return 2 * min_reauthentication_interval; }
  // Client: re-authenticates in place before the lifetime the server gave runs out (with an
  // authenticator, when the server offers it). Off: the session ends at the lifetime's end.
  bool reauthenticate = true;
  // Client: a re-authentication that could not start (the credential was unavailable) is tried
  // again after this long.
  Duration reauthentication_retry = seconds(10);

  // Client reconnection: immediate first attempt, then exponential backoff with jitter to a cap;
  // give up after `reconnect_limit` without a working path.
  Duration reconnect_initial_backoff = milliseconds(200);
  Duration reconnect_max_backoff = seconds(30);
  Duration reconnect_limit = std::chrono::hours(24);

  wire::CapabilitySet capabilities = static_cast<std::uint64_t>(wire::Capability::kResume) |
                                     static_cast<std::uint64_t>(wire::Capability::kFastClose) |
                                     static_cast<std::uint64_t>(wire::Capability::kStatelessReset);
};

}  // namespace tether::session
