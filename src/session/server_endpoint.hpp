// ServerEndpoint is the sans-I/O server side of tether: it owns every session, routes each new
// transport connection to a new session (Hello), an existing one (Resume, FastClose) or a stateless
// reset.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "session/authentication_throttle.hpp"
#include "session/authenticator.hpp"
#include "session/deadline_heap.hpp"
#include "session/latency_histogram.hpp"
#include "session/session.hpp"
#include "session/session_table.hpp"

namespace tether::session {

// The server's bounds on what strangers and peers can make it hold (see ARCHITECTURE.md, "Bounds").
struct ServerLimits {
  std::size_t max_sessions = 10000;           // in total
  std::size_t max_sessions_per_source = 256;  // per source address (the runtime's key: see accept)
  std::size_t max_suspended_sessions = 2048;  // beyond it the oldest suspended session is freed
  // Stream bytes held by all sessions together (replay buffers and unread received bytes): past
  // it writes wait, data that would exceed it resets its stream, and new sessions are refused.
  std::uint64_t max_buffered_bytes = 1ull << 30;
  // Connections that have not finished their handshake (first frame and authentication): past it
  // a new connection is refused at once (lack-of-resources, transient). Each holds at most
  // first_frame_payload_limit() bytes of input and one exchange, for at most the handshake timeout.
  std::size_t max_pending_connections = 1024;
  // Failed authentications slow further attempts from the same source address, and for the same
  // claimed user name (whatever the source): past the allowance attempts are refused unheard.
  ThrottlePolicy source_throttle{5, std::chrono::seconds(60)};
  ThrottlePolicy user_throttle{10, std::chrono::seconds(60)};
};

// The largest payload a connection's first frame may have: a Hello, a FastClose, or a Resume whose
// position list names every stream; never near SessionConfig::max_frame_payload, so a stranger's
// first frame cannot make the server buffer a megabyte.
[[nodiscard]] std::size_t first_frame_payload_limit(const SessionConfig& config);

// The SessionStats counters that metrics add up over sessions (EndpointStats::freed_sessions, the
// metrics' totals).
struct SessionCounters {
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_replayed = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t resumes = 0;
  std::uint64_t reauthentications = 0;
  std::uint64_t heartbeats_missed = 0;

  void add(const SessionCounters& other) {
    bytes_sent += other.bytes_sent;
    bytes_replayed += other.bytes_replayed;
    bytes_received += other.bytes_received;
    resumes += other.resumes;
    reauthentications += other.reauthentications;
    heartbeats_missed += other.heartbeats_missed;
  }
  void add(const SessionStats& stats) { add(of(stats)); }
  [[nodiscard]] static SessionCounters of(const SessionStats& stats) {
    return SessionCounters{stats.bytes_sent, stats.bytes_replayed,    stats.bytes_received,
                           stats.resumes,    stats.reauthentications, stats.heartbeats_missed};
  }
};

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
  std::uint64_t sessions_refused = 0;  // Hello refused with lack-of-resources (a limit reached)
  std::uint64_t sessions_evicted = 0;  // suspended sessions freed to make room
  std::uint64_t authentications_succeeded = 0;
  std::uint64_t authentication_failures = 0;  // refused credentials, malformed exchanges, timeouts
  std::uint64_t authentications_throttled = 0;    // refused unheard: too many recent failures
  std::uint64_t pending_connections_refused = 0;  // max_pending_connections reached
  // Exchanges whose costly work was handed to the runtime (set_deferred_work), and those of them
  // refused because the runtime could not take the work (refuse_deferred: server busy).
  std::uint64_t authentications_deferred = 0;
  std::uint64_t authentications_refused_busy = 0;
  // Lifetime and re-authentication (KIP-368's metrics, issue #15).
  std::uint64_t reauthentications_succeeded = 0;
  std::uint64_t reauthentication_failures = 0;  // refused, malformed, timed out, identity changed
  // Sessions authenticated by a client that cannot re-authenticate (lacks the capability).
  std::uint64_t authentications_without_reauthentication = 0;
  std::uint64_t expired_sessions_closed = 0;     // ended because the credential's lifetime passed
  std::uint64_t frames_on_expired_sessions = 0;  // audit mode: frames carried past the lifetime
  std::uint64_t sessions_revoked = 0;            // ended by an operator's revocation
  LatencyHistogram reauthentication_latency;     // the server's view: first frame to result
  // The counters of the sessions already freed, as they stood when each was freed: the live
  // sessions' own plus these give exact totals over the server's life (a scrape that only summed
  // live sessions would lose whatever a session did after the last scrape).
  SessionCounters freed_sessions;
  // The endpoint's own work, for tests and benchmarks: sessions it looked at (a deadline or output
  // re-read, a due timeout, a collection) and connections awaiting their first frame whose
  // deadline it handled. Per call they grow with what the call touched, not with all sessions.
  std::uint64_t sessions_visited = 0;
  std::uint64_t pending_connections_visited = 0;
};

class ServerEndpoint {
 public:
  // `static_key` makes stateless-reset tokens; it must survive restarts (and be shared by servers
  // that may receive each other's clients) for resets to work after the state is lost.
  ServerEndpoint(SessionConfig config, const Secret& static_key, RandomSource& random,
                 ServerLimits limits = {});

  // A new transport connection, named by the caller (ids must be unique among live connections).
  // `source` names where it came from for the per-source limits (the runtime passes the client's
  // IPv4 address, or its IPv6 /64 prefix); an empty source is its own group.
  void accept(PathId connection, std::span<const std::byte> keying_material, Time now,
              std::string_view source = {});
  // The same, with what the transport knows for authentication (channel binding, a verified
  // client certificate's identity); `security.keying_material` is the exporter value.
  void accept(PathId connection, ConnectionSecurity security, Time now,
              std::string_view source = {});

  // Requires every new session to authenticate through `authenticator` (nullptr, the default:
  // no authentication, --auth none). A Hello without a mechanism is then refused with
  // auth-failed, naming the mechanisms offered.
  // Sessions then also offer in-place re-authentication (Capability::kReauthentication), which
  // uses the authenticator set at the time (one replaced later, reloaded credentials, applies to
  // the next re-authentication of every session).
  void set_authenticator(std::shared_ptr<ServerAuthenticator> authenticator) {
    authenticator_ = std::move(authenticator);
    const auto reauthentication = static_cast<std::uint64_t>(wire::Capability::kReauthentication);
    config_.capabilities &= ~reauthentication;
    if (authenticator_ != nullptr) config_.capabilities |= reauthentication;
  }
  [[nodiscard]] bool authenticates() const { return authenticator_ != nullptr; }

  // ---- Deferred verification (PLAIN's PBKDF2 off the runtime's event loop) --------------------
  // Lets the handshake's exchanges hand their costly work to the caller (ServerAuthentication::
  // allow_deferral). Off by default: every step is then computed inside receive(). On, the caller
  // takes the work with take_deferred_work, runs it off its thread, and then calls
  // complete_deferred (or refuse_deferred) on this endpoint's thread. Meanwhile the connection
  // stays pending: its handshake timeout runs, any frame from it is a protocol error, and closing
  // it drops the exchange (the work's weak pointer then expires, so work not yet started is
  // skipped).
  void set_deferred_work(bool enabled) { deferred_work_enabled_ = enabled; }
  struct DeferredAuthentication {
    PathId connection = 0;
    std::weak_ptr<DeferredWork> work;  // expired once the exchange is gone: skip it
  };
  // Moves into `out` (replacing its contents) the work handed over since the last call, each once.
  void take_deferred_work(std::vector<DeferredAuthentication>& out);
  // `work` of `connection` has run: the exchange resumes (a challenge, the session or a refusal).
  // Ignored when the connection is gone or done, or is not waiting for this work.
  void complete_deferred(PathId connection, const DeferredWork& work, Time now);
  // `work` will not run (the caller's queue is full): the attempt is refused with
  // lack-of-resources, transient ("server busy"). Ignored like complete_deferred.
  void refuse_deferred(PathId connection, const DeferredWork& work);

  // A refused authentication attempt (any refusal of a Hello once the server authenticates:
  // credentials, throttles, mechanism, timeout, busy), for the runtime's log. The views live for
  // the call only; mechanism, claimed_identity and message hold peer strings: escape them.
  struct AuthenticationRefusal {
    PathId connection = 0;
    std::string_view source;
    std::string_view mechanism;         // as the Hello named it (may be empty)
    std::string_view claimed_identity;  // once the exchange read it, else empty
    Reason reason = Reason::kAuthFailed;
    bool transient = false;
    std::string_view message;  // what the client is told
  };
  // Called synchronously on each such refusal; it must not call into the endpoint.
  void set_refusal_observer(std::function<void(const AuthenticationRefusal&)> observer) {
    refusal_observer_ = std::move(observer);
  }
  void receive(PathId connection, std::span<const std::byte> bytes, Time now);
  void on_connection_closed(PathId connection, Time now);
  std::size_t take_outgoing(PathId connection, std::vector<std::byte>& out, std::size_t max_bytes,
                            Time now);
  // Session::wants_input for the connection's session: false while the runtime should not read.
  [[nodiscard]] bool wants_input(PathId connection) const;
  // True while the connection has not yet sent its first frame (it holds no session yet).
  [[nodiscard]] bool is_pending(PathId connection) const;

  // The earliest deadline of any session or connection. Like every call below, it costs work in
  // proportion to the sessions touched since the last call (a deadline heap), not to all sessions.
  [[nodiscard]] std::optional<Time> next_deadline();
  // Runs the timeouts of the sessions and connections that are due at `now`.
  void on_timeout(Time now);

  // Events of every session, tagged with the session id (all zeros for a connection that never
  // joined a session: its only event is PathDone).
  std::optional<SessionEvent> poll_event();

  // Moves into `out` (replacing its contents) the connections that may have bytes to send since
  // the last call: those of the sessions touched meanwhile whose Session::has_outgoing() holds,
  // each once. The runtime flushes only these (a connection ended by PathDone is flushed on that
  // event).
  void take_ready_connections(std::vector<PathId>& out);

  // ---- Revocation (an operator's decision; ARCHITECTURE.md, "Revocation") ----------------------
  // Each ends the matching sessions at once with reason revoked: an Abort(revoked) goes out on the
  // session's live connection (a suspended session has none: the client learns it from the
  // stateless reset or refusal its next Resume gets), the session's Closed event carries `message`
  // (the Abort carries it to the client too), and EndpointStats::sessions_revoked
  // counts each. Sessions already closed are not counted again. Each costs one pass over the
  // sessions (an operator's command, not a per-frame path).
  // Every session of `principal`; an empty principal (an anonymous session's) matches none.
  std::size_t revoke_principal(std::string_view principal, Time now, std::string_view message = {});
  // The session `session_id`; false when there is no such open session.
  bool revoke_session(const SessionId& session_id, Time now, std::string_view message = {});
  // Every session authenticated with the credential `credential_id` (AuthenticatedPeer::
  // credential_id, a token's jti); an empty id matches none.
  std::size_t revoke_credential(std::string_view credential_id, Time now,
                                std::string_view message = {});
  // Every session whose peer `matches` (e.g. a reloaded users file no longer has its user, or a
  // deny list names its credential). `matches` must not call into the endpoint.
  std::size_t revoke_matching(const std::function<bool(const AuthenticatedPeer&)>& matches,
                              Time now, std::string_view message = {});

  // The session, while it exists. A session is destroyed once it is closed and all its connections
  // have been reported closed; its Closed event is queued before that. The caller may change the
  // session through the pointer until its next call into the endpoint, which re-reads the
  // session's deadline and output: a caller that keeps the pointer past that call must find() it
  // again before changing the session.
  [[nodiscard]] Session* find(const SessionId& session_id);
  // The session, for reading only: the endpoint does not re-read it (no work at the next call).
  [[nodiscard]] const Session* find(const SessionId& session_id) const;
  // The connections routed to the session and not yet reported closed (empty for an unknown id).
  [[nodiscard]] std::vector<PathId> connections_of(const SessionId& session_id) const;
  [[nodiscard]] std::size_t session_count() const { return sessions_.size(); }
  [[nodiscard]] std::vector<SessionId> session_ids() const;
  [[nodiscard]] const EndpointStats& stats() const { return stats_; }
  [[nodiscard]] const BufferBudget& budget() const { return budget_; }
  [[nodiscard]] const ServerLimits& limits() const { return limits_; }
  [[nodiscard]] std::size_t suspended_count() const { return suspended_.size(); }

 private:
  struct PendingConnection {
    ConnectionSecurity security;
    std::string source;
    // While authenticating: the Hello (the session is created from it on success), the exchange
    // and the identity it claims.
    std::optional<wire::Hello> hello;
    std::unique_ptr<ServerAuthentication> authentication;
    std::string claimed_identity;
    // Set from the Hello on (once the server authenticates) until the exchange succeeds: a refusal
    // meanwhile is an AuthenticationRefusal.
    bool authenticating = false;
    std::string mechanism;
    // The exchange's work handed to the runtime, until complete_deferred or refuse_deferred.
    std::shared_ptr<DeferredWork> deferred;
    InboundBuffer inbound;
    std::vector<std::byte> outgoing;
    Time deadline;
    bool done = false;
  };

  // Handles a frame of a connection that holds no session yet; true while more frames belong to
  // the handshake (authentication continues), false once the connection is routed or refused.
  bool handle_pending_frame(PathId connection, PendingConnection& pending, const wire::Frame& frame,
                            Time now);
  void handle_hello(PathId connection, PendingConnection& pending, const wire::Hello& hello,
                    Time now);
  // Applies one step of the connection's exchange: a challenge, the session, or a refusal.
  void apply_authentication_step(PathId connection, PendingConnection& pending,
                                 AuthenticationStep step, Time now);
  void create_session(PathId connection, PendingConnection& pending, const wire::Hello& hello,
                      AuthenticatedPeer peer, std::span<const std::byte> server_final, Time now);
  void refuse(PathId connection, PendingConnection& pending, Reason reason, bool transient,
              std::string message = {});
  [[nodiscard]] std::string offered_mechanisms() const;
  void finish_pending(PathId connection, PendingConnection& pending);
  // The session's entry, without listing it as touched (for the endpoint's own bookkeeping).
  [[nodiscard]] SessionTable::Entry* lookup(const SessionId& session_id) {
    return sessions_.find(session_id);
  }
  // Re-reads what the touched sessions' calls may have changed: their deadline in the heap,
  // whether they can be collected, which of their connections have output.
  void refresh();
  // Frees the sessions found closed with no connection left (listed by refresh()).
  void collect_closed_sessions();
  // Makes room for one more session from `source`, freeing the oldest suspended session where a
  // limit requires it; false when the limits leave no room (the Hello is refused).
  bool make_room(const std::string& source, Time now);
  // The suspended session to free first: the oldest of the source holding the most. Precondition:
  // suspended_ is not empty.
  [[nodiscard]] SessionId pick_eviction() const;
  // Ends `session` to free its resources (lack-of-resources); it is collected once closed.
  void evict(Session& session, Time now);
  // Ends the open session of `entry` with reason revoked; false when it was already closed.
  bool revoke(SessionTable::Entry& entry, Time now, std::string_view message);
  [[nodiscard]] SessionId new_session_id();

  SessionConfig config_;
  Secret static_key_;
  RandomSource& random_;
  ServerLimits limits_;
  BufferBudget budget_;  // declared before sessions_: every session uses it until destroyed
  std::deque<SessionEvent> events_;
  SessionTable sessions_;
  std::map<PathId, SessionId> connection_sessions_;
  std::map<PathId, PendingConnection> pending_;
  std::set<std::pair<Time, SessionId>> suspended_;  // kept current by the sessions themselves
  // Every session's next_deadline() as last re-read (sessions with none are absent), and every
  // pending connection's handshake deadline (removed once it is done).
  DeadlineHeap<SessionId, SessionIdHash> session_deadlines_;
  DeadlineHeap<PathId> pending_deadlines_;
  std::vector<SessionId> collectable_;  // closed with no connection left: freed at the next collect
  std::set<PathId> ready_connections_;  // may have output (see take_ready_connections)
  std::vector<SessionId> touched_scratch_;
  std::shared_ptr<ServerAuthenticator> authenticator_;
  bool deferred_work_enabled_ = false;
  // Work not yet taken; at most one live entry per pending connection (expired ones are pruned).
  std::vector<DeferredAuthentication> deferred_;
  std::function<void(const AuthenticationRefusal&)> refusal_observer_;
  AuthenticationThrottle source_throttle_;
  AuthenticationThrottle user_throttle_;
  EndpointStats stats_;
};

}  // namespace tether::session
