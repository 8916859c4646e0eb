// ServerEndpoint is the sans-I/O server side of tether: it owns every session, routes each new
// transport connection to a new session (Hello), an existing one (Resume, FastClose) or a stateless
// reset.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "session/session.hpp"

namespace tether::session {

struct EndpointStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t sessions_created = 0;
  std::uint64_t resumes_accepted = 0;
  std::uint64_t resumes_rejected = 0;  // forged, replayed or stale proofs, bad positions
  std::uint64_t stateless_resets_sent = 0;
  std::uint64_t fast_closes_accepted = 0;
  std::uint64_t fast_closes_rejected = 0;
  std::uint64_t handshake_failures =
      0;  // malformed or unexpected first frames, timeouts, bad versions
};

class ServerEndpoint {
 public:
  // `static_key` makes stateless-reset tokens; it must survive restarts (and be shared by servers
  // that may receive each other's clients) for resets to work after the state is lost.
  ServerEndpoint(SessionConfig config, const Secret& static_key, RandomSource& random);

  // A new transport connection, named by the caller (ids must be unique among live connections).
  void accept(PathId connection, std::span<const std::byte> keying_material, Time now);
  void receive(PathId connection, std::span<const std::byte> bytes, Time now);
  void on_connection_closed(PathId connection, Time now);
  std::size_t take_outgoing(PathId connection, std::vector<std::byte>& out, std::size_t max_bytes,
                            Time now);

  [[nodiscard]] std::optional<Time> next_deadline() const;
  void on_timeout(Time now);

  // Events of every session, tagged with the session id (all zeros for a connection that never
  // joined a session: its only event is PathDone).
  std::optional<SessionEvent> poll_event();

  // The session, while it exists. A session is destroyed once it is closed and all its connections
  // have been reported closed; its Closed event is queued before that.
  [[nodiscard]] Session* find(const SessionId& session_id);
  [[nodiscard]] std::size_t session_count() const { return sessions_.size(); }
  [[nodiscard]] std::vector<SessionId> session_ids() const;
  [[nodiscard]] const EndpointStats& stats() const { return stats_; }

 private:
  struct PendingConnection {
    std::vector<std::byte> keying_material;
    InboundBuffer inbound;
    std::vector<std::byte> outgoing;
    Time deadline;
    bool done = false;
  };

  void handle_first_frame(PathId connection, PendingConnection& pending, const wire::Frame& frame,
                          Time now);
  void refuse(PathId connection, PendingConnection& pending, Reason reason, bool transient);
  void finish_pending(PathId connection, PendingConnection& pending);
  void collect_closed_sessions();
  [[nodiscard]] SessionId new_session_id();

  SessionConfig config_;
  Secret static_key_;
  RandomSource& random_;
  std::deque<SessionEvent> events_;
  std::map<SessionId, std::unique_ptr<Session>> sessions_;
  std::map<PathId, SessionId> connection_sessions_;
  std::map<PathId, PendingConnection> pending_;
  EndpointStats stats_;
};

}  // namespace tether::session
