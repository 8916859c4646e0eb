// Session is the sans-I/O protocol core of one tether session, client or server: it takes bytes,
// transport notices and the current time, and returns bytes, deadlines and events.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "session/ack_manager.hpp"
#include "session/authenticator.hpp"
#include "session/buffer_budget.hpp"
#include "session/control_channel.hpp"
#include "session/events.hpp"
#include "session/heartbeat_policy.hpp"
#include "session/lifecycle.hpp"
#include "session/path.hpp"
#include "session/reauthentication_state.hpp"
#include "session/resume_state.hpp"
#include "session/rtt_estimator.hpp"
#include "session/send_scheduler.hpp"
#include "session/stream_set.hpp"
#include "session/timer_set.hpp"
#include "session/token_bucket.hpp"
#include "session/types.hpp"
#include "tether/expected.hpp"
#include "wire/frame.hpp"

namespace tether::session {

enum class StreamError : std::uint8_t {
  kWouldBlock,      // the session-wide bound on unacknowledged bytes is reached; wait for Writable
  kUnknownStream,   // no such stream, or it has ended
  kStreamFinished,  // finish() was already called on this stream
  kNotOpen,         // the session is not established yet, or it is closing or closed
  kTooManyStreams,  // SessionConfig::max_streams streams are open
  // Server: the session's lifetime passed and no re-authentication has completed since (enforcing
  // servers only): no new stream until one does.
  kLifetimePassed,
};
[[nodiscard]] const char* to_string(StreamError error);

struct ReadResult {
  std::size_t bytes = 0;
  bool finished = false;  // the peer's FIN was reached: no byte will follow
};

struct SessionStats {
  std::optional<Duration> smoothed_rtt;
  Duration rtt_variation{};
  std::uint64_t bytes_written = 0;       // by the application, over all streams
  std::uint64_t bytes_acknowledged = 0;  // of those, acknowledged by the peer
  std::uint64_t bytes_abandoned = 0;     // of those, discarded unacknowledged by a stream reset
  std::uint64_t bytes_sent = 0;          // stream payload put on the wire, replays included
  std::uint64_t bytes_replayed = 0;      // stream payload sent again after a path change
  std::uint64_t bytes_received = 0;      // stream payload delivered (each byte once)
  std::uint64_t duplicate_bytes_received = 0;  // received again after a path change and discarded
  std::uint64_t resumes = 0;
  std::uint64_t reauthentications = 0;  // exchanges completed in place on the live session
  std::uint64_t heartbeats_missed = 0;
  std::uint64_t paths_opened = 0;
  std::uint64_t rejected_resume_attempts = 0;  // server: forged, replayed or stale proofs
  std::uint64_t forged_frames_ignored = 0;  // fast closes and resets whose key or token was wrong
  std::uint64_t invariant_failures = 0;     // sessions ended by a failed safety check (a bug)
  std::uint64_t streams_refused_for_memory = 0;  // reset: receive buffering past its bound
  std::uint64_t receive_buffered_bytes = 0;      // now: received, not yet read by the application
  std::uint64_t unacknowledged_bytes = 0;        // now: written - acknowledged - abandoned
  std::size_t open_streams = 0;
  Duration total_downtime{};
};

class ServerEndpoint;
struct EndpointStats;

// One window/kInteractiveReserveDivisor of the unacknowledged-bytes bound is reserved for streams
// with less than that outstanding (see Session::write).
inline constexpr std::size_t kInteractiveReserveDivisor = 16;

class Session {
 public:
  // A client session: it asks for its first path at once (PathWanted).
  Session(SessionConfig config, RandomSource& random, Time now);

  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // ---- Transport --------------------------------------------------------------------------------
  // Client: a transport connection for the session is up; `keying_material` is its exporter value.
  // The core writes a Hello (new session) or a Resume (existing session) on it.
  void add_path(PathId path, std::span<const std::byte> keying_material, Time now);
  // The same, with what the transport knows for authentication (the channel binding): the Hello
  // of a new session then carries SessionConfig::authenticator's initial response.
  void add_path(PathId path, const ConnectionSecurity& security, Time now);
  // Client: a connection attempt requested by PathWanted failed before add_path().
  void on_path_failed(Time now);
  // Client: the host's network changed in a way that may break `path` (its local address went
  // away, the default route moved). The path turns suspect at once, as if heartbeats had failed:
  // the session suspends and attempts a new connection without backoff, while the old one stays
  // open and resumes service if it answers first (make-before-break).
  void on_path_network_change(PathId path, Time now);
  // Client: connectivity appeared (an address or default route was added) while the session waits
  // to reconnect: the attempt waiting for its backoff becomes due now (see next_deadline()).
  void on_network_available(Time now);
  // Bytes that arrived on `path`.
  void receive(PathId path, std::span<const std::byte> bytes, Time now);
  // The transport connection is gone (after PathDone, or on its own).
  void on_path_closed(PathId path, Time now);
  // Appends bytes to send on `path` to `out`: all pending control frames, then stream data up to
  // about `max_bytes` in priority order. Returns how many bytes were appended.
  std::size_t take_outgoing(PathId path, std::vector<std::byte>& out, std::size_t max_bytes,
                            Time now);
  [[nodiscard]] bool has_outgoing(PathId path) const;
  // False while the frames queued on `path` (answers to the peer's Pings, handshake frames) reach
  // SessionConfig::max_queued_bytes: the runtime stops reading from that connection until
  // take_outgoing() drained it (backpressure: a peer that sends and never reads does not grow our
  // memory). A runtime that reads on regardless makes the session end with lack-of-resources.
  [[nodiscard]] bool wants_input(PathId path) const;

  // ---- Time -------------------------------------------------------------------------------------
  // The earliest deadline of the session's TimerSet (nullopt once closed).
  [[nodiscard]] std::optional<Time> next_deadline() const;
  // Handles every due timer slot, in TimerSlot order.
  void on_timeout(Time now);
  // Whether next_deadline() may have changed since the last call (and clears the bit): a server can
  // re-index only the sessions whose deadline moved.
  [[nodiscard]] bool take_deadline_changed() { return timers_.take_changed(); }
  // The deadline of one slot (nullopt when disarmed), for inspection and tests.
  [[nodiscard]] std::optional<Time> deadline(TimerSlot slot) const { return timers_.get(slot); }

  // ---- Events -----------------------------------------------------------------------------------
  std::optional<Event> poll_event();

  // ---- Streams ----------------------------------------------------------------------------------
  Expected<StreamId, StreamError> open_stream(std::uint8_t priority, Time now);
  // Accepts as many bytes as the session-wide bound allows (possibly fewer than given); WouldBlock
  // when it can accept none. A stream with a sixteenth of the bound or more outstanding may fill
  // only the rest of it, so that streams with little outstanding always find room. Accepted bytes
  // are delivered exactly once or counted in Closed.
  Expected<std::size_t, StreamError> write(StreamId stream, std::span<const std::byte> bytes,
                                           Time now);
  // Half-close: no more writes; the peer sees the end after the last byte.
  Expected<void, StreamError> finish(StreamId stream, Time now);
  Expected<ReadResult, StreamError> read(StreamId stream, std::span<std::byte> out, Time now);
  // Zero-copy read: a view of the next received bytes (empty when none), then consume() them.
  [[nodiscard]] std::span<const std::byte> peek(StreamId stream) const;
  void consume(StreamId stream, std::size_t count, Time now);
  // Abandons the stream in both directions; the peer gets StreamReset.
  void reset_stream(StreamId stream, std::uint64_t error_code, Time now);

  // ---- Ending -----------------------------------------------------------------------------------
  // Graceful: refuse new writes, deliver everything written, exchange Close; Closed(shutdown)
  // follows.
  void close(Time now);
  // Immediate: sends Abort on the live path; the session is Closed when the call returns.
  // `transient` tells the peer that a new session may succeed later (a server shutting down, for
  // example).
  events::Closed abort(Reason reason, Time now, bool transient = false);
  // Immediate and authenticated by the peer's fast-close key. The frame is queued on the live path
  // and also returned encoded, so a client without a live path can send it on a fresh connection.
  std::vector<std::byte> fast_close(Reason reason, Time now);

  // ---- Inspection -------------------------------------------------------------------------------
  [[nodiscard]] Phase phase() const { return lifecycle_.phase(); }
  // The state of PROTOCOL.md's "States" (finer than phase()).
  [[nodiscard]] SessionState state() const { return lifecycle_.state(); }
  [[nodiscard]] bool suspended() const { return lifecycle_.suspended(); }
  // When the current suspension began (nullopt while not suspended).
  [[nodiscard]] std::optional<Time> suspended_since() const {
    return suspended() ? std::optional<Time>(lifecycle_.suspended_since()) : std::nullopt;
  }
  [[nodiscard]] Role role() const { return role_; }
  [[nodiscard]] const SessionId& id() const { return session_id_; }
  // Who the client is, as the server authenticated it: on the server, from the exchange; on the
  // client, the principal the Welcome named (empty without authentication).
  [[nodiscard]] const AuthenticatedPeer& peer() const { return peer_; }
  // When the session's lifetime ends unless it re-authenticates first (nullopt: no limit); both
  // sides (the client learns it from Welcome and each Reauthenticated).
  [[nodiscard]] std::optional<Time> lifetime_end() const { return reauthentication_.lifetime_end; }
  [[nodiscard]] bool reauthenticating() const { return reauthentication_.in_progress(); }
  [[nodiscard]] SessionStats stats() const;
  // The heartbeat parameters in use: the negotiated ones once established (the client's own
  // proposal before). heartbeat_policy::kernel_user_timeout(heartbeat()) is the TCP_USER_TIMEOUT
  // for its connections.
  [[nodiscard]] HeartbeatParameters heartbeat() const { return heartbeat_; }
  [[nodiscard]] wire::CapabilitySet capabilities() const { return capabilities_; }
  [[nodiscard]] std::size_t path_count() const { return paths_.size(); }
  [[nodiscard]] std::optional<PathId> data_path() const { return paths_.data_path(); }
  [[nodiscard]] std::vector<StreamId> stream_ids() const;

 private:
  friend class ServerEndpoint;

  // Server session created by ServerEndpoint from a Hello on `path`.
  Session(SessionConfig config, RandomSource& random, Time now, const SessionId& session_id,
          PathId path, const ConnectionSecurity& security, const wire::Hello& hello,
          const Secret& reset_token, std::deque<SessionEvent>& queue, AuthenticatedPeer peer,
          std::span<const std::byte> server_final);

  // Server: verifies a Resume arriving as the first frame of `path`. On success the path becomes
  // the data path and the old one is retired; on failure nothing about the session changes.
  Expected<void, Reason> accept_resume(PathId path, const ConnectionSecurity& security,
                                       const wire::Resume& resume, Time now);
  // Server: a FastClose arrived as the first frame of a new connection.
  bool accept_fast_close(const wire::FastClose& frame, Time now);
  // Ends the session (Closed(reason)); `send_abort` queues an Abort on the data path first.
  void fail_session(Reason reason, bool by_peer, bool transient, Time now, bool send_abort,
                    std::string message = {});
  // The shared budget has room again after a write was refused for it: Writable.
  void announce_budget_room();

  // ---- Timers (session_timers.cpp) ----
  // Re-arms every timer slot from the parts' state; run on the way out of every entry point that
  // may move a deadline (TimerRefresh) so that next_deadline() is always current. The stream calls
  // of the application move at most the delayed-ack deadline (kAcknowledgementsOnly): they run
  // per message, so they re-arm only that slot. open_stream, write and finish move none.
  void refresh_timers();
  void refresh_acknowledgement_timer();
  struct TimerRefresh {
    enum class Scope : std::uint8_t { kAll, kAcknowledgementsOnly };
    explicit TimerRefresh(Session& session, Scope scope = Scope::kAll)
        : session_(session), scope_(scope) {}
    ~TimerRefresh() {
      if (scope_ == Scope::kAll) {
        session_.refresh_timers();
      } else {
        session_.refresh_acknowledgement_timer();
      }
    }
    TimerRefresh(const TimerRefresh&) = delete;
    TimerRefresh& operator=(const TimerRefresh&) = delete;
    Session& session_;
    Scope scope_;
  };
  void on_timer(TimerSlot slot, Time now);
  void send_heartbeat(Path& path, Time now);

  // ---- Lifetime and re-authentication (session_reauthentication.cpp) ----
  [[nodiscard]] bool may_reauthenticate() const {
    return has(capabilities_, wire::Capability::kReauthentication);
  }
  // What this side offers in Hello (client): the configured capabilities, plus re-authentication
  // when it has a credential to re-authenticate with.
  [[nodiscard]] wire::CapabilitySet offered_capabilities() const;
  // Server: starts the session's lifetime after an authentication at `now` (the rule in
  // session_lifetime.hpp) and returns it, nullopt for none.
  std::optional<Duration> start_lifetime(Time now);
  // Client: the lifetime a Welcome or Reauthenticated gave, and when to re-authenticate.
  // Client: the lifetime a verdict gave, counted from reauthentication_.request_sent.
  void accept_lifetime(std::uint64_t lifetime_ms, Time now);
  // What an exchange on the live session binds to and may use: the session's own binding for the
  // `sequence`th exchange and what the latest connection offers (TLS, a certificate identity).
  [[nodiscard]] ConnectionSecurity reauthentication_security(std::uint64_t sequence,
                                                             Time now) const;
  // Keeps what the latest connection offers (without its keying material); its certificate's
  // lifetime is kept as an instant, so that a later exchange gets what is left of it.
  void remember_connection(const ConnectionSecurity& security, Time now);
  // Client: the connection in handshake was accepted; remember it (see handshake_connection_).
  void adopt_handshake_connection();
  // Client: a resume was accepted; a hold that began while suspended starts its clock now.
  void start_hold_after_resume(Time now);
  void start_client_reauthentication(Time now);
  void handle_control(const wire::Reauthenticate& message, Time now);
  void handle_control(const wire::Reauthenticated& message, Time now);
  void handle_control(const wire::AuthChallenge& message, Time now);
  void handle_control(const wire::AuthResponse& message, Time now);
  void apply_server_reauthentication_step(AuthenticationStep step, Time now);
  // Ends the session because a re-authentication failed (both sides count it).
  void fail_reauthentication(Reason reason, std::string message, Time now);
  // The lifetime ended (the kCredentialExpiry slot).
  void on_lifetime_end(Time now);
  // The exchange in flight counts connected time only: its clock stops at a suspension and goes on
  // at the resume.
  void pause_exchange_clock(Time now);
  void resume_exchange_clock(Time now);
  // Server: runs on_lifetime_end now if the lifetime has ended and its timer has not run yet.
  void catch_up_lifetime(Time now);
  // The exchange in flight ran out of time, or a session past its lifetime did not complete one
  // in its grace (the kReauthenticate slot on a server).
  void on_reauthentication_deadline(Time now);
  [[nodiscard]] std::optional<Time> reauthentication_deadline() const;
  // Server: a frame that uses the session arrived (stream data; `opens_stream` when it opens a
  // new stream): audit counts it; on-use enforcement ends a session past its lifetime outside a
  // grace; a new stream ends it inside one too. False when the session ended.
  bool note_use(bool opens_stream, Time now);
  // Whether only the control stream may send now: new stream data is held while a session past its
  // lifetime re-authenticates (never dropped). On a server it also means that the client gets no
  // new stream credit (write_ack_frame), so what it can still send is what was in flight.
  [[nodiscard]] bool holding_data() const;
  // Server, after a re-authentication that ended a hold: acknowledges every stream whose credit
  // was withheld, so that the client may send again.
  void grant_withheld_credit(Time now);

  // ---- Capabilities: what one side did not offer is not used ----
  [[nodiscard]] bool may_resume() const { return has(capabilities_, wire::Capability::kResume); }
  [[nodiscard]] bool trusts_stateless_reset() const {
    return has(capabilities_, wire::Capability::kStatelessReset);
  }

  // ---- Frames (session.cpp) ----
  bool handle_frame(Path& path, const wire::Frame& frame, Time now);
  bool handle_handshake_frame(Path& path, const wire::Frame& frame, Time now);
  bool handle_welcome(Path& path, const wire::Welcome& welcome, Time now);
  bool handle_resume_accept(Path& path, const wire::ResumeAccept& accept, Time now);
  void handle_ping(Path& path, const wire::Ping& ping, Time now);
  void handle_pong(Path& path, const wire::Pong& pong, Time now);
  void handle_fast_close(const wire::FastClose& frame, Time now);
  void handle_stateless_reset(const wire::StatelessReset& reset, Time now);
  // A StreamData frame, whole or a part of one whose rest has not arrived yet (see
  // InboundBuffer::feed_streaming); returns as handle_frame does.
  bool handle_stream_data_part(Path& path, const StreamDataPart& part, Time now);
  void handle_ack(const wire::Ack& ack, Time now);

  // ---- Streams (session_streams.cpp) ----
  // `frame` is a whole StreamData frame or a part of one: `frame_end` is the end offset of the
  // whole frame's data, which the flow-control and final-size checks use; `first_part` is false
  // for the later parts of a frame.
  void handle_stream_data(const wire::StreamData& frame, std::uint64_t frame_end, bool first_part,
                          Time now);
  // The stream a peer's first frame opens, or nullptr when it was refused or answered.
  Stream* accept_peer_stream(const wire::StreamData& frame, bool first_part, Time now);
  // Control messages, one handler per type.
  void deliver_control_bytes(std::span<const std::byte> bytes, Time now);
  void handle_control(const wire::ResetStream& reset, Time now);
  void handle_control(const wire::Close& close, Time now);
  void queue_control_message(const wire::Frame& frame);
  // Bookkeeping after the application took `count` bytes; true once it has read to the end.
  bool note_consumed(Stream& stream, std::size_t count, Time now);
  // reset_stream without ending the session on a deferred failure (for calls inside a loop).
  void abandon_stream(StreamId id, std::uint64_t error_code);
  void drop_stream(StreamId id);
  void add_final_ack(StreamId id, std::uint64_t acknowledgement);
  void write_ack_frame(std::vector<std::byte>& out);
  // Brings the server's shared budget up to date with what this session holds now.
  void sync_budget();
  // Emits Writable if a write was refused and acknowledgements have since made room.
  void announce_writable(std::uint64_t unacknowledged_before);
  void check_stream_bookkeeping() const;

  // ---- Paths and liveness (session_paths.cpp) ----
  void queue_frame(Path& path, const wire::Frame& frame);
  void switch_data_path(PathId path, Time now);
  void retire_path(Path& path);
  void attempt_failed(Path& path, Time now);
  // Client, a Hello in flight: the server's challenge, answered through the exchange.
  bool handle_auth_challenge(Path& path, const wire::AuthChallenge& challenge, Time now);
  // Client: whether Welcome's authentication is what this client requires; ends the session
  // (auth-failed) when it is not.
  bool accept_welcome_authentication(const wire::Welcome& welcome, Time now);
  // With no data path left, the first active path (if any) becomes the data path.
  void fall_back_to_active_path(Time now);
  void on_data_path_lost(SuspendCause cause, Time now);
  void suspend(SuspendCause cause, Time now);
  void mark_resumed(Time now);
  void request_path(Time now);
  void update_ack_progress(bool progressed, Time now);
  [[nodiscard]] bool has_outstanding() const;
  [[nodiscard]] Duration budget() const;
  [[nodiscard]] wire::DecodeLimits decode_limits() const;

  // ---- Ending (session_paths.cpp) ----
  void protocol_error(Time now);
  // An internal invariant that guards memory safety does not hold (a bug, or a peer that found
  // one): the session ends with protocol-error, never the process.
  void invariant_failed();
  // A failure found inside a loop over streams or frames, where ending the session at once would
  // free what the loop uses: the entry point that made the call ends the session on its way out.
  void defer_failure(Reason reason);
  void apply_deferred_failure();
  void finish_session(const events::Closed& closed);
  void maybe_send_close(Time now);
  void check_graceful_completion(Time now);
  void emit(Event event) { queue_->push_back(SessionEvent{session_id_, std::move(event)}); }

  Role role_;
  SessionConfig config_;
  RandomSource& random_;
  std::deque<SessionEvent> own_events_;  // a client's queue; a server session uses its endpoint's
  std::deque<SessionEvent>* queue_ = &own_events_;
  // Server: the endpoint's index of suspended sessions by the time they were suspended (the
  // oldest is freed first when the server needs room); this session keeps its own entry current.
  std::set<std::pair<Time, SessionId>>* suspended_index_ = nullptr;
  // Server: the endpoint's budget shared by all sessions, and what this session counts in it.
  BufferBudget* budget_ = nullptr;
  std::uint64_t budget_held_ = 0;

  SessionId session_id_{};
  wire::CapabilitySet capabilities_ = 0;  // negotiated: the intersection of both offers
  AuthenticatedPeer peer_;
  ReauthenticationState reauthentication_;
  // What the latest connection offers an exchange on the live session (its keying material is
  // not kept here: the paths hold it).
  ConnectionSecurity connection_security_;
  std::optional<Time> certificate_expiry_;  // connection_security_'s certificate, as an instant
  // Client: what the connection in handshake offers, and when it was added; it becomes
  // connection_security_ only once the server accepts that connection (Welcome or ResumeAccept),
  // so a resume that fails changes nothing later exchanges bind to.
  std::optional<std::pair<ConnectionSecurity, Time>> handshake_connection_;
  // Server: the endpoint's authenticator (re-authentication) and statistics, owned by the
  // endpoint, which outlives its sessions.
  const std::shared_ptr<ServerAuthenticator>* server_authenticator_ = nullptr;
  EndpointStats* endpoint_stats_ = nullptr;
  // Client: the exchange of the Hello in flight, and the path it runs on.
  std::unique_ptr<ClientAuthentication> authentication_;
  PathId authentication_path_ = 0;
  // Client: the message of the last transient Refuse, until a connection is accepted.
  std::string last_refusal_;
  // Client: why the last re-authentication could not start, until one succeeds.
  std::string reauthentication_problem_;
  HeartbeatParameters heartbeat_;  // negotiated (see heartbeat_policy.hpp)
  SessionStats stats_;             // declared before the parts that count into it

  Lifecycle lifecycle_;
  ResumeState resume_;
  PathSet paths_;
  StreamSet streams_;
  SendScheduler scheduler_;
  AckManager acks_;
  ControlChannel control_;
  // The peer's stream opens: max_streams at once, then max_stream_opens_per_second.
  TokenBucket stream_opens_;
  RttEstimator rtt_;
  AckProgressDetector ack_progress_;
  TimerSet timers_;

  bool write_blocked_ = false;  // a write was refused: Writable follows when there is room
  std::optional<Reason> deferred_failure_;
};

}  // namespace tether::session
