// Session is the sans-I/O protocol core of one tether session, client or server: it takes bytes,
// transport notices and the current time, and returns bytes, deadlines and events.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "session/buffer_budget.hpp"
#include "session/events.hpp"
#include "session/heartbeat_policy.hpp"
#include "session/inbound_buffer.hpp"
#include "session/key_schedule.hpp"
#include "session/liveness.hpp"
#include "session/reconnect_backoff.hpp"
#include "session/rtt_estimator.hpp"
#include "session/stream.hpp"
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

enum class Phase : std::uint8_t { kConnecting, kOpen, kClosed };

class ServerEndpoint;

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
  [[nodiscard]] Phase phase() const { return phase_; }
  [[nodiscard]] bool suspended() const { return suspended_; }
  // When the current suspension began (nullopt while not suspended).
  [[nodiscard]] std::optional<Time> suspended_since() const {
    return suspended_ ? std::optional<Time>(suspended_since_) : std::nullopt;
  }
  [[nodiscard]] Role role() const { return role_; }
  [[nodiscard]] const SessionId& id() const { return session_id_; }
  [[nodiscard]] SessionStats stats() const;
  [[nodiscard]] HeartbeatParameters heartbeat() const { return heartbeat_; }
  [[nodiscard]] wire::CapabilitySet capabilities() const { return capabilities_; }
  [[nodiscard]] std::size_t path_count() const { return paths_.size(); }
  [[nodiscard]] std::optional<PathId> data_path() const { return data_path_; }
  [[nodiscard]] std::vector<StreamId> stream_ids() const;

 private:
  friend class ServerEndpoint;

  enum class PathState : std::uint8_t { kHelloSent, kResumeSent, kActive, kDone };
  struct Path {
    Path(PathId path_id, PathState path_state, std::span<const std::byte> keying,
         HeartbeatParameters heartbeat, Time now)
        : id(path_id),
          state(path_state),
          keying_material(keying.begin(), keying.end()),
          liveness(heartbeat, now),
          heartbeat_schedule(heartbeat.interval, now) {}
    PathId id;
    PathState state;
    std::vector<std::byte> keying_material;
    InboundBuffer inbound;
    std::vector<std::byte> outgoing;
    LivenessDetector liveness;
    HeartbeatSchedule heartbeat_schedule;
    std::optional<Time> handshake_deadline;
    std::uint64_t next_ping_sequence = 1;
    std::optional<std::pair<std::uint64_t, Time>> outstanding_ping;
    bool suspect = false;
  };

  // Server session created by ServerEndpoint from a Hello on `path`.
  Session(SessionConfig config, RandomSource& random, Time now, const SessionId& session_id,
          PathId path, std::span<const std::byte> keying_material, const wire::Hello& hello,
          const Secret& reset_token, std::deque<SessionEvent>& queue);

  // Server: verifies a Resume arriving as the first frame of `path`. On success the path becomes
  // the data path and the old one is retired; on failure nothing about the session changes.
  Expected<void, Reason> accept_resume(PathId path, std::span<const std::byte> keying_material,
                                       const wire::Resume& resume, Time now);
  // Server: a FastClose arrived as the first frame of a new connection.
  bool accept_fast_close(const wire::FastClose& frame, Time now);

  // Re-arms every timer slot from the state; run on the way out of every entry point (TimerRefresh)
  // so that next_deadline() is always current.
  void refresh_timers();
  struct TimerRefresh {
    explicit TimerRefresh(Session& session) : session_(session) {}
    ~TimerRefresh() { session_.refresh_timers(); }
    TimerRefresh(const TimerRefresh&) = delete;
    TimerRefresh& operator=(const TimerRefresh&) = delete;
    Session& session_;
  };
  void on_timer(TimerSlot slot, Time now);
  // Negotiated capabilities, honoured: what one side did not offer is not used.
  [[nodiscard]] bool may_resume() const { return has(capabilities_, wire::Capability::kResume); }
  [[nodiscard]] bool trusts_stateless_reset() const {
    return has(capabilities_, wire::Capability::kStatelessReset);
  }
  void check_liveness(Path& path, Time now);
  void send_heartbeat(Path& path, Time now);

  bool handle_frame(Path& path, const wire::Frame& frame, Time now);
  bool handle_handshake_frame(Path& path, const wire::Frame& frame, Time now);
  // A StreamData frame, whole or a part of one whose rest has not arrived yet (see
  // InboundBuffer::feed_streaming); returns as handle_frame does.
  bool handle_stream_data_part(Path& path, const StreamDataPart& part, Time now);
  // `frame` is a whole StreamData frame or a part of one: `frame_end` is the end offset of the
  // whole frame's data, which the flow-control and final-size checks use; `first_part` is false
  // for the later parts of a frame.
  void handle_stream_data(const wire::StreamData& frame, std::uint64_t frame_end, bool first_part,
                          Time now);
  void handle_ack(const wire::Ack& ack, Time now);
  void handle_control_message(const wire::Frame& frame, Time now);
  void deliver_control_bytes(std::span<const std::byte> bytes, Time now);
  bool apply_peer_positions(const std::vector<wire::StreamPosition>& positions);
  // Advances what the peer acknowledged on `stream`; false when the value is impossible.
  bool acknowledge(Stream& stream, std::uint64_t acknowledgement, bool& progressed);
  void attempt_failed(Path& path, Time now);
  [[nodiscard]] std::uint64_t planned_replay() const;
  void protocol_error(Time now);
  // An internal invariant that guards memory safety does not hold (a bug, or a peer that found
  // one): the session ends with protocol-error, never the process.
  void invariant_failed();
  void defer_failure(Reason reason);
  // reset_stream without ending the session on a deferred failure (for calls inside a loop).
  void abandon_stream(StreamId id, std::uint64_t error_code);
  void apply_deferred_failure();
  [[nodiscard]] std::vector<wire::StreamPosition> receive_positions() const;

  Stream& create_stream(StreamId id, std::uint8_t priority);
  Stream* find_stream(StreamId id);
  [[nodiscard]] const Stream* find_stream(StreamId id) const;
  [[nodiscard]] bool is_local_stream(StreamId id) const;
  void release_stream_if_finished(StreamId id);
  void release_stream_if_finished(Stream& stream);  // `stream` may be dropped
  // Releases the streams listed in release_candidates_ that are finished, in id order.
  void release_finished_streams();
  // Lists `stream` in send_candidates_ (once).
  void mark_send_candidate(Stream& stream);
  // Sets acknowledgement_pending and lists the stream (once). An immediate request makes the
  // pending acknowledgements due now; otherwise they are due `ack_delay` after the first request.
  enum class AckUrgency { kDelayed, kImmediate };
  void request_acknowledgement(Stream& stream, AckUrgency urgency, Time now);
  // Whether the pending acknowledgements must go out now even without other frames to carry them.
  [[nodiscard]] bool acknowledgement_due(Time now) const;
  // Whether write_stream_frames would write anything (on the control stream or a data stream).
  [[nodiscard]] bool has_stream_frames() const;
  // Keeps outstanding_streams_ exact across a change of a sending half.
  void note_outstanding(bool before, bool after);
  // Checks (in builds with assertions) that the stream lists and counters match the stream map.
  void check_stream_bookkeeping() const;
  // Bookkeeping after the application took `count` bytes; true once it has read to the end.
  bool note_consumed(Stream& stream, std::size_t count, Time now);
  void drop_stream(StreamId id);
  void queue_control_message(const wire::Frame& frame);
  void add_final_ack(StreamId id, std::uint64_t acknowledgement);
  // Brings the server's shared budget up to date with what this session holds now.
  void sync_budget();
  // The shared budget has room again after a write was refused for it: Writable.
  void announce_budget_room();
  void queue_frame(Path& path, const wire::Frame& frame);
  void emit(Event event) { queue_->push_back(SessionEvent{session_id_, std::move(event)}); }

  void switch_data_path(PathId path, Time now);
  void retire_path(Path& path);
  void on_data_path_lost(SuspendCause cause, Time now);
  void suspend(SuspendCause cause, Time now);
  void mark_resumed(Time now);
  void request_path(Time now);
  void fail_session(Reason reason, bool by_peer, bool transient, Time now, bool send_abort);
  void finish_session(const events::Closed& closed);
  void maybe_send_close(Time now);
  void check_graceful_completion(Time now);
  void update_ack_progress(bool progressed, Time now);
  // Emits Writable if a write was refused and acknowledgements have since made room.
  void announce_writable(std::uint64_t unacknowledged_before);
  [[nodiscard]] bool has_outstanding() const;
  [[nodiscard]] Duration budget() const;
  [[nodiscard]] wire::DecodeLimits decode_limits() const;
  std::size_t write_stream_frames(std::vector<std::byte>& out, std::size_t budget);
  bool write_one_stream_frame(Stream& stream, std::vector<std::byte>& out, std::size_t budget);
  [[nodiscard]] bool stream_sendable(const Stream& stream) const;
  void write_ack_frame(std::vector<std::byte>& out);

  Role role_;
  SessionConfig config_;
  RandomSource& random_;
  std::deque<SessionEvent> own_events_;  // a client's queue; a server session uses its endpoint's
  std::deque<SessionEvent>* queue_ = &own_events_;
  // Server: the endpoint's index of suspended sessions by the time they were suspended (the
  // oldest is freed first when the server needs room); this session keeps its own entry current.
  std::set<std::pair<Time, SessionId>>* suspended_index_ = nullptr;
  Phase phase_ = Phase::kConnecting;

  SessionId session_id_{};
  SessionKeys keys_{};
  std::optional<Secret>
      previous_resume_secret_;            // server: the client may not have seen the last ratchet
  Secret reset_token_{};                  // client: from Welcome
  wire::CapabilitySet capabilities_ = 0;  // negotiated
  HeartbeatParameters heartbeat_;

  // The peer's stream opens: max_streams at once, then max_stream_opens_per_second.
  TokenBucket stream_opens_;

  std::map<PathId, Path> paths_;
  std::optional<PathId> data_path_;

  // Spare replay and receive blocks shared by this session's streams; declared before streams_ so
  // that it outlives every queue using it. Trimmed once per heartbeat interval on the data path,
  // on suspension and at the end, so an idle session holds no spare block for long.
  static constexpr std::size_t kMaxSpareBlocks = 64;
  BlockPool block_pool_{kMaxSpareBlocks};

  std::map<StreamId, Stream> streams_;
  // Per-call work on the send and acknowledgement paths is proportional to the streams that need
  // it, not to all streams. Every non-control stream that can send is in send_candidates_ (with
  // send_candidate set; some listed streams may have nothing to send); every stream with
  // acknowledgement_pending set is in acknowledgement_pending_streams_, once. drop_stream removes
  // a stream from both.
  std::vector<Stream*> send_candidates_;
  std::vector<Stream*> acknowledgement_pending_streams_;
  // Streams whose sending half became finished (fully acknowledged) since receive() last released
  // finished streams; ids, as a listed stream may be dropped in between.
  std::vector<StreamId> release_candidates_;
  std::size_t outstanding_streams_ = 0;  // streams whose SendHalf::outstanding() holds
  std::size_t local_stream_count_ = 0;   // streams opened by this side
  std::size_t peer_stream_count_ = 0;  // streams opened by the peer (the control stream is neither)
  ClosedStreamSet closed_peer_streams_;
  // Acknowledgements for streams already released (or unknown: kClosedStreamAck), one per stream
  // (a repeating peer does not grow it); always due. Bounded: see add_final_ack.
  std::map<StreamId, std::uint64_t> final_acks_;
  std::vector<wire::AckEntry> final_ack_entries_;  // write_ack_frame's reused scratch space
  // Delayed acknowledgements (see SessionConfig::ack_delay): while streams are listed in
  // acknowledgement_pending_streams_, they are due at ack_deadline_, or now when ack_now_ is set.
  // write_ack_frame resets all three.
  std::optional<Time> ack_deadline_;
  bool ack_now_ = false;
  std::uint64_t bytes_since_ack_ = 0;
  StreamId next_local_stream_ = 0;
  StreamId last_served_stream_ = 0;
  std::vector<std::byte> control_inbound_;

  std::uint64_t unacknowledged_bytes_ = 0;
  bool write_blocked_ = false;
  // Received bytes not yet read, over all streams (bounded by max_receive_buffered_bytes).
  std::uint64_t receive_buffered_ = 0;
  // A failure found inside a loop over streams or frames, where ending the session at once would
  // free what the loop uses: the entry point that made the call ends the session on its way out.
  std::optional<Reason> deferred_failure_;
  // Server: the endpoint's budget shared by all sessions, and what this session counts in it.
  BufferBudget* budget_ = nullptr;
  std::uint64_t budget_held_ = 0;

  RttEstimator rtt_;
  AckProgressDetector ack_progress_;

  bool suspended_ = false;
  Time suspended_since_{};
  std::optional<Time> linger_deadline_;   // server
  std::optional<Time> give_up_deadline_;  // client
  std::optional<Time> next_attempt_at_;   // client: when to emit PathWanted
  bool attempt_in_flight_ = false;  // client: PathWanted emitted, no add_path/on_path_failed yet
  ReconnectBackoff backoff_;

  bool close_requested_ = false;  // no new writes; Close goes out once everything is acknowledged
  bool close_initiated_locally_ = false;
  bool close_sent_ = false;
  std::uint64_t close_acknowledgement_ = 0;  // control-stream position that acknowledges our Close
  bool peer_close_received_ = false;

  SessionStats stats_;
  TimerSet timers_;
};

}  // namespace tether::session
