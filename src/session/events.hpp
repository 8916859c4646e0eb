// Event is what the session core tells the application: lifecycle changes, transport requests and
// stream readiness, drained with poll_event().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "session/types.hpp"

namespace tether::session {

enum class SuspendCause : std::uint8_t {
  kHeartbeatTimeout,      // no inbound byte for the heartbeat budget
  kAcknowledgementStall,  // data outstanding and acknowledgements stopped advancing
  kTransportClosed,       // the transport reported the connection gone
  kNetworkChange,         // the host's addresses or routes changed under the connection
};
[[nodiscard]] const char* to_string(SuspendCause cause);

namespace events {

struct Established {
  SessionId session_id{};
};
struct Suspended {
  SuspendCause cause = SuspendCause::kTransportClosed;
};
struct Resumed {
  Duration downtime{};  // from suspension to the path being usable again
  std::uint64_t bytes_replayed =
      0;  // stream bytes this side sent again because the peer had not received them
};
// The session is over. `unacknowledged_bytes` is the exact count of bytes this side's application
// wrote that the peer never acknowledged (zero after a graceful close).
struct Closed {
  Reason reason = Reason::kUnspecified;
  bool by_peer = false;
  bool transient = false;
  std::uint64_t unacknowledged_bytes = 0;
  // Why, in words, when the peer said more than the reason (a Refuse's message: which mechanism
  // and what was wrong) or the failure was local (an unreadable credential). A peer string:
  // escape it before logging.
  std::string message{};
};
// A re-authentication over the live session succeeded (both sides). The server applies the new
// credential's scopes from now on (AuthenticatedPeer in Session::peer()); `lifetime` is the new
// session lifetime (nullopt: no limit); `latency` is from the exchange's start to its result on
// this side.
struct Reauthenticated {
  std::string principal{};
  std::string mechanism{};
  std::optional<Duration> lifetime{};
  Duration latency{};
};
// Server: the session's lifetime ended and the session goes on for now: in audit mode
// (`audit_only`: it is never cut, and its frames are counted), or while a re-authentication in
// flight, a suspension, or on-use enforcement defers the verdict.
struct LifetimePassed {
  bool audit_only = false;
};
// Client: dial a new transport connection and hand it in with add_path() (or report
// on_path_failed()).
struct PathWanted {};
// Flush what take_outgoing() still returns for this path, then close its transport connection and
// call on_path_closed(). The core ignores further input on it.
struct PathDone {
  PathId path = 0;
};
struct StreamOpened {
  StreamId stream = 0;
};
struct StreamReadable {
  StreamId stream = 0;
};
// The peer finished sending on the stream: read() reports the end once the buffered bytes are read.
struct StreamFinished {
  StreamId stream = 0;
};
struct StreamReset {
  StreamId stream = 0;
  std::uint64_t error_code = 0;
};
// Room for writes again after one was refused with WouldBlock.
struct Writable {};

}  // namespace events

using Event = std::variant<events::Established, events::Suspended, events::Resumed, events::Closed,
                           events::PathWanted, events::PathDone, events::StreamOpened,
                           events::StreamReadable, events::StreamFinished, events::StreamReset,
                           events::Writable, events::Reauthenticated, events::LifetimePassed>;

// An event tagged with the session it belongs to (all zeros: a server connection that never joined
// a session). A client's Session yields bare Events; a ServerEndpoint yields SessionEvents.
struct SessionEvent {
  SessionId session{};
  Event event;
};

}  // namespace tether::session
