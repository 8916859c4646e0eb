#include "session/session.hpp"

#include <algorithm>
#include <cassert>
#include <type_traits>

#include "crypto/primitives.hpp"
#include "wire/codec.hpp"

namespace tether::session {
namespace {

// Both sides assume this window for a new stream until the receiver advertises its own.
constexpr std::uint64_t kInitialStreamWindow = 256u << 10;
// Control-stream messages are tiny; anything larger is a protocol error.
constexpr std::size_t kMaxControlMessage = 256;
// Unacknowledged control-stream bytes we keep: thousands of stream refusals.
constexpr std::uint64_t kMaxControlBacklog = 256u << 10;

template <typename... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <typename... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::uint64_t to_milliseconds(Duration duration) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<milliseconds>(duration).count());
}

}  // namespace

const char* to_string(SuspendCause cause) {
  switch (cause) {
    case SuspendCause::kHeartbeatTimeout:
      return "heartbeat-timeout";
    case SuspendCause::kAcknowledgementStall:
      return "acknowledgement-stall";
    case SuspendCause::kTransportClosed:
      return "transport-closed";
    case SuspendCause::kNetworkChange:
      return "network-change";
  }
  return "unknown";
}

const char* to_string(StreamError error) {
  switch (error) {
    case StreamError::kWouldBlock:
      return "would block: unacknowledged-bytes bound reached";
    case StreamError::kUnknownStream:
      return "unknown or ended stream";
    case StreamError::kStreamFinished:
      return "stream already finished for writing";
    case StreamError::kNotOpen:
      return "session not open for writing";
    case StreamError::kTooManyStreams:
      return "too many streams";
  }
  return "unknown";
}

// ---- Construction
// ---------------------------------------------------------------------------------

Session::Session(SessionConfig config, RandomSource& random, Time now)
    : role_(Role::kClient),
      config_(config),
      random_(random),
      heartbeat_{config.heartbeat_interval, config.missing_heartbeats_allowed},
      stream_opens_(config.max_stream_opens_per_second, config.max_streams, now),
      backoff_(config.reconnect_initial_backoff, config.reconnect_max_backoff) {
  next_local_stream_ = 1;
  create_stream(kControlStream, 0);
  give_up_deadline_ = now + config_.reconnect_limit;
  request_path(now);
  refresh_timers();
}

Session::Session(SessionConfig config, RandomSource& random, Time now, const SessionId& session_id,
                 PathId path, std::span<const std::byte> keying_material, const wire::Hello& hello,
                 const Secret& reset_token, std::deque<SessionEvent>& queue)
    : role_(Role::kServer),
      config_(config),
      random_(random),
      queue_(&queue),
      phase_(Phase::kOpen),
      session_id_(session_id),
      keys_(derive_session_keys(session_id, keying_material)),
      capabilities_(hello.capabilities & config.capabilities),
      stream_opens_(config.max_stream_opens_per_second, config.max_streams, now),
      backoff_(config.reconnect_initial_backoff, config.reconnect_max_backoff) {
  // Negotiate liveness: the client proposes, the server clamps into its policy.
  heartbeat_ = heartbeat_policy::negotiate(
      hello.heartbeat_interval_ms, hello.missing_heartbeats_allowed, config_.heartbeat_bounds());
  next_local_stream_ = 2;
  create_stream(kControlStream, 0);
  auto [it, inserted] =
      paths_.try_emplace(path, path, PathState::kActive, keying_material, heartbeat_, now);
  assert(inserted);
  data_path_ = path;
  ++stats_.paths_opened;
  wire::Welcome welcome;
  welcome.capabilities = capabilities_;
  welcome.session_id = session_id_;
  welcome.heartbeat_interval_ms = to_milliseconds(heartbeat_.interval);
  welcome.missing_heartbeats_allowed = heartbeat_.missing_allowed;
  // What was not negotiated is not used: without resume the session ends with its connection (it
  // lingers for nothing), and without stateless reset the client gets no token to trust.
  welcome.linger_ms = may_resume() ? to_milliseconds(config_.linger) : 0;
  if (has(capabilities_, wire::Capability::kStatelessReset)) welcome.reset_token = reset_token;
  queue_frame(it->second, welcome);
  emit(events::Established{session_id_});
  refresh_timers();
}

Session::~Session() {
  if (budget_ != nullptr) {
    budget_->update(budget_held_, 0);
    budget_->forget(this);
  }
}

// ---- Transport
// ------------------------------------------------------------------------------------

void Session::add_path(PathId path_id, std::span<const std::byte> keying_material, Time now) {
  const TimerRefresh refresh(*this);
  assert(role_ == Role::kClient);
  attempt_in_flight_ = false;
  if (phase_ == Phase::kClosed || paths_.contains(path_id) ||
      (phase_ == Phase::kOpen && !may_resume())) {
    emit(events::PathDone{path_id});
    return;
  }
  ++stats_.paths_opened;
  // One handshake at a time: a newer connection supersedes a pending attempt. Two resumes in flight
  // could both be accepted by the server from the same secret and leave the two ratchets apart.
  for (auto& [id, other] : paths_) {
    if (other.state == PathState::kHelloSent || other.state == PathState::kResumeSent)
      retire_path(other);
  }
  const PathState state =
      phase_ == Phase::kConnecting ? PathState::kHelloSent : PathState::kResumeSent;
  auto [it, inserted] =
      paths_.try_emplace(path_id, path_id, state, keying_material, heartbeat_, now);
  Path& path = it->second;
  path.handshake_deadline = now + config_.handshake_timeout;
  if (state == PathState::kHelloSent) {
    wire::Hello hello;
    hello.capabilities = config_.capabilities;
    hello.heartbeat_interval_ms = to_milliseconds(config_.heartbeat_interval);
    hello.missing_heartbeats_allowed = config_.missing_heartbeats_allowed;
    queue_frame(path, hello);
    return;
  }
  wire::Resume resume;
  resume.session_id = session_id_;
  resume.proof = resume_proof(keys_.resume_secret, Role::kClient, session_id_, keying_material);
  resume.received = receive_positions();
  queue_frame(path, resume);
  // Optimistic replay: send what the server has not acknowledged right behind the Resume, so
  // resuming costs no round trip; the server discards what it already has.
  switch_data_path(path_id, now);
}

void Session::on_path_failed(Time now) {
  const TimerRefresh refresh(*this);
  attempt_in_flight_ = false;
  if (phase_ == Phase::kClosed) return;
  request_path(now);
}

void Session::on_path_network_change(PathId path_id, Time now) {
  const TimerRefresh refresh(*this);
  if (role_ != Role::kClient || phase_ != Phase::kOpen) return;
  auto it = paths_.find(path_id);
  if (it == paths_.end() || it->second.state != PathState::kActive) return;
  // As if heartbeats had failed, without waiting for them: the path becomes suspect (kept, and
  // used again if it answers first) and a new connection is attempted at once.
  it->second.suspect = true;
  backoff_.on_success();
  next_attempt_at_.reset();
  if (data_path_ == path_id && !suspended_) {
    on_data_path_lost(SuspendCause::kNetworkChange, now);
  } else {
    request_path(now);
  }
}

void Session::on_network_available(Time now) {
  const TimerRefresh refresh(*this);
  if (role_ != Role::kClient || phase_ == Phase::kClosed) return;
  if (!suspended_ && phase_ != Phase::kConnecting) return;
  if (next_attempt_at_) next_attempt_at_ = now;  // the waiting attempt starts at the next timeout
}

void Session::receive(PathId path_id, std::span<const std::byte> bytes, Time now) {
  const TimerRefresh refresh(*this);
  auto it = paths_.find(path_id);
  if (it == paths_.end() || phase_ == Phase::kClosed) return;
  Path& path = it->second;
  if (path.state == PathState::kDone) return;
  path.liveness.on_inbound(now);
  path.suspect = false;
  if (role_ == Role::kServer && suspended_ && data_path_ == path_id) mark_resumed(now);

  const std::uint64_t unacknowledged_before = unacknowledged_bytes_;
  auto result = path.inbound.feed_streaming(
      bytes, decode_limits(),
      [&](const wire::Frame& frame) { return handle_frame(path, frame, now); },
      [&](const StreamDataPart& part) { return handle_stream_data_part(path, part, now); });
  if (!result && path.state != PathState::kDone && phase_ != Phase::kClosed) {
    if (path.state == PathState::kActive) {
      protocol_error(now);
    } else {
      attempt_failed(path, now);
    }
  }
  apply_deferred_failure();
  if (phase_ != Phase::kOpen) return;
  release_finished_streams();
  maybe_send_close(now);
  check_graceful_completion(now);
  announce_writable(unacknowledged_before);
  apply_deferred_failure();
  check_stream_bookkeeping();
}

void Session::announce_writable(std::uint64_t unacknowledged_before) {
  if (write_blocked_ && unacknowledged_bytes_ < unacknowledged_before) {
    write_blocked_ = false;
    emit(events::Writable{});
  }
}

void Session::on_path_closed(PathId path_id, Time now) {
  const TimerRefresh refresh(*this);
  auto it = paths_.find(path_id);
  if (it == paths_.end()) return;
  const bool was_data_path = data_path_ == path_id;
  const bool was_handshake =
      it->second.state == PathState::kHelloSent || it->second.state == PathState::kResumeSent;
  const bool already_done = it->second.state == PathState::kDone;
  paths_.erase(it);
  if (was_data_path) data_path_.reset();
  if (phase_ == Phase::kClosed || already_done) return;
  if (close_sent_ && peer_close_received_) {
    finish_session(events::Closed{Reason::kShutdown, !close_initiated_locally_, false, 0});
    return;
  }
  if (was_handshake) {
    if (role_ == Role::kClient) {
      // A failed attempt: fall back to a still-active path if the failed one carried the data.
      if (was_data_path) {
        for (auto& [id, path] : paths_) {
          if (path.state == PathState::kActive) {
            switch_data_path(id, now);
            break;
          }
        }
      }
      request_path(now);
    }
    return;
  }
  if (!was_data_path) return;
  for (auto& [id, path] : paths_) {
    if (path.state == PathState::kActive && !path.suspect) {
      switch_data_path(id, now);
      return;
    }
  }
  on_data_path_lost(SuspendCause::kTransportClosed, now);
}

std::size_t Session::take_outgoing(PathId path_id, std::vector<std::byte>& out,
                                   std::size_t max_bytes, Time now) {
  const TimerRefresh refresh(*this);
  auto it = paths_.find(path_id);
  if (it == paths_.end()) return 0;
  Path& path = it->second;
  const std::size_t start = out.size();
  out.insert(out.end(), path.outgoing.begin(), path.outgoing.end());
  path.outgoing.clear();
  const bool carries_data = path.state == PathState::kActive ||
                            (role_ == Role::kClient && path.state == PathState::kResumeSent);
  if (phase_ == Phase::kOpen && data_path_ == path_id && carries_data) {
    // Pending acknowledgements ride along with anything else going out; alone only when due.
    if (out.size() > start || acknowledgement_due(now) || has_stream_frames()) write_ack_frame(out);
    const std::size_t used = out.size() - start;
    if (used < max_bytes) write_stream_frames(out, max_bytes - used);
    update_ack_progress(false, now);
  }
  if (deferred_failure_) {
    // The Abort goes out on this connection with what was already taken.
    apply_deferred_failure();
    out.insert(out.end(), path.outgoing.begin(), path.outgoing.end());
    path.outgoing.clear();
  }
  check_stream_bookkeeping();
  return out.size() - start;
}

bool Session::has_outgoing(PathId path_id) const {
  auto it = paths_.find(path_id);
  if (it == paths_.end()) return false;
  if (!it->second.outgoing.empty()) return true;
  if (phase_ != Phase::kOpen || data_path_ != path_id) return false;
  // Delayed acknowledgements count once on_timeout() found them due (it sets ack_now_).
  if (!final_acks_.empty() || (!acknowledgement_pending_streams_.empty() && ack_now_)) return true;
  return has_stream_frames();
}

// ---- Frames
// ---------------------------------------------------------------------------------------

bool Session::handle_frame(Path& path, const wire::Frame& frame, Time now) {
  if (path.state == PathState::kDone || phase_ == Phase::kClosed) return false;
  if (path.state == PathState::kHelloSent || path.state == PathState::kResumeSent) {
    return handle_handshake_frame(path, frame, now);
  }
  std::visit(Overloaded{
                 [&](const wire::Ping& ping) { queue_frame(path, wire::Pong{ping.sequence}); },
                 [&](const wire::Pong& pong) {
                   if (path.outstanding_ping && path.outstanding_ping->first == pong.sequence) {
                     rtt_.add_sample(now - path.outstanding_ping->second);
                     path.outstanding_ping.reset();
                     if (data_path_ == path.id) update_ack_progress(true, now);
                   }
                 },
                 [&](const wire::Ack& ack) { handle_ack(ack, now); },
                 [&](const wire::StreamData& data) {
                   handle_stream_data(data, data.offset + data.data.size(), true, now);
                 },
                 [&](const wire::Abort& abort) {
                   fail_session(abort.reason, true, abort.transient, now, false);
                 },
                 [&](const wire::FastClose& close) {
                   const Secret& own_key =
                       role_ == Role::kClient ? keys_.client_close_key : keys_.server_close_key;
                   if (has(capabilities_, wire::Capability::kFastClose) &&
                       crypto::constant_time_equal(close.session_id, session_id_) &&
                       crypto::constant_time_equal(close.key, own_key)) {
                     fail_session(close.reason, true, false, now, false);
                   } else {
                     ++stats_.forged_frames_ignored;
                   }
                 },
                 [&](const wire::StatelessReset& reset) {
                   if (role_ == Role::kClient && trusts_stateless_reset() &&
                       crypto::constant_time_equal(reset.session_id, session_id_) &&
                       crypto::constant_time_equal(reset.token, reset_token_)) {
                     fail_session(Reason::kUnknownSession, true, false, now, false);
                   } else {
                     ++stats_.forged_frames_ignored;
                   }
                 },
                 [&](const wire::Ignored&) {},
                 [&](const auto&) { protocol_error(now); },
             },
             frame);
  return phase_ == Phase::kOpen && path.state == PathState::kActive && !deferred_failure_;
}

bool Session::handle_handshake_frame(Path& path, const wire::Frame& frame, Time now) {
  if (const auto* refuse = std::get_if<wire::Refuse>(&frame)) {
    if (refuse->transient) {
      attempt_failed(path, now);
    } else {
      fail_session(refuse->reason, true, false, now, false);
    }
    return false;
  }
  if (const auto* reset = std::get_if<wire::StatelessReset>(&frame)) {
    if (phase_ == Phase::kOpen && trusts_stateless_reset() &&
        crypto::constant_time_equal(reset->session_id, session_id_) &&
        crypto::constant_time_equal(reset->token, reset_token_)) {
      fail_session(Reason::kUnknownSession, true, false, now, false);
    } else {
      ++stats_.forged_frames_ignored;
      attempt_failed(path, now);
    }
    return false;
  }
  if (path.state == PathState::kHelloSent) {
    const auto* welcome = std::get_if<wire::Welcome>(&frame);
    if (welcome == nullptr || welcome->version != wire::kProtocolVersion ||
        welcome->heartbeat_interval_ms == 0 || welcome->missing_heartbeats_allowed == 0) {
      attempt_failed(path, now);
      return false;
    }
    session_id_ = welcome->session_id;
    keys_ = derive_session_keys(session_id_, path.keying_material);
    reset_token_ = welcome->reset_token;
    capabilities_ = welcome->capabilities & config_.capabilities;
    // A hostile server must not make us heartbeat every microsecond, or overflow a conversion: its
    // figures are clamped into our own bounds.
    heartbeat_ = heartbeat_policy::negotiate(welcome->heartbeat_interval_ms,
                                             welcome->missing_heartbeats_allowed,
                                             config_.heartbeat_bounds());
    path.liveness = LivenessDetector(heartbeat_, now);
    path.heartbeat_schedule = HeartbeatSchedule(heartbeat_.interval, now);
    path.state = PathState::kActive;
    path.handshake_deadline.reset();
    phase_ = Phase::kOpen;
    give_up_deadline_.reset();
    backoff_.on_success();
    switch_data_path(path.id, now);
    emit(events::Established{session_id_});
    return true;
  }
  // kResumeSent: only a ResumeAccept with the server's proof moves the session here.
  const auto* accept = std::get_if<wire::ResumeAccept>(&frame);
  if (accept == nullptr) {
    attempt_failed(path, now);
    return false;
  }
  const Secret expected =
      resume_proof(keys_.resume_secret, Role::kServer, session_id_, path.keying_material);
  if (!crypto::constant_time_equal(expected, accept->proof)) {
    ++stats_.forged_frames_ignored;
    attempt_failed(path, now);
    return false;
  }
  keys_.resume_secret = ratchet_resume_secret(keys_.resume_secret, path.keying_material);
  path.state = PathState::kActive;
  path.handshake_deadline.reset();
  path.liveness = LivenessDetector(heartbeat_, now);
  path.heartbeat_schedule = HeartbeatSchedule(heartbeat_.interval, now);
  if (!apply_peer_positions(accept->received)) {
    protocol_error(now);
    return false;
  }
  for (auto& [id, other] : paths_) {
    if (id != path.id && other.state != PathState::kDone) retire_path(other);
  }
  if (data_path_ != path.id) switch_data_path(path.id, now);
  ++stats_.resumes;
  backoff_.on_success();
  next_attempt_at_.reset();
  mark_resumed(now);
  return true;
}

Expected<void, Reason> Session::accept_resume(PathId path_id,
                                              std::span<const std::byte> keying_material,
                                              const wire::Resume& resume, Time now) {
  const TimerRefresh refresh(*this);
  assert(role_ == Role::kServer);
  if (phase_ != Phase::kOpen) return make_unexpected(Reason::kUnknownSession);
  if (!may_resume()) {
    // The client did not offer resume (or we did not): it has no business resuming.
    ++stats_.rejected_resume_attempts;
    return make_unexpected(Reason::kProtocolError);
  }
  if (resume.version != wire::kProtocolVersion) return make_unexpected(Reason::kProtocolError);
  // The proof must be bound to this connection; accept the previous secret too, for a client that
  // never saw our last ResumeAccept. Anything older is stale.
  const Secret* base = nullptr;
  const Secret current =
      resume_proof(keys_.resume_secret, Role::kClient, session_id_, keying_material);
  if (crypto::constant_time_equal(current, resume.proof)) {
    base = &keys_.resume_secret;
  } else if (previous_resume_secret_) {
    const Secret previous =
        resume_proof(*previous_resume_secret_, Role::kClient, session_id_, keying_material);
    if (crypto::constant_time_equal(previous, resume.proof)) base = &*previous_resume_secret_;
  }
  if (base == nullptr) {
    ++stats_.rejected_resume_attempts;
    return make_unexpected(Reason::kAuthFailed);
  }
  const Secret base_secret = *base;
  // Validate the client's positions before touching anything.
  for (const auto& position : resume.received) {
    const Stream* stream = find_stream(position.stream_id);
    if (stream != nullptr &&
        position.offset > stream->send.written + (stream->send.fin_written ? 1 : 0)) {
      ++stats_.rejected_resume_attempts;
      return make_unexpected(Reason::kProtocolError);
    }
  }
  wire::ResumeAccept accept;
  accept.proof = resume_proof(base_secret, Role::kServer, session_id_, keying_material);
  accept.received = receive_positions();
  previous_resume_secret_ = base_secret;
  keys_.resume_secret = ratchet_resume_secret(base_secret, keying_material);

  for (auto& [id, other] : paths_) {
    if (other.state != PathState::kDone) retire_path(other);
  }
  auto [it, inserted] =
      paths_.try_emplace(path_id, path_id, PathState::kActive, keying_material, heartbeat_, now);
  assert(inserted);
  ++stats_.paths_opened;
  queue_frame(it->second, accept);
  const std::uint64_t unacknowledged_before = unacknowledged_bytes_;
  const bool positions_valid = apply_peer_positions(resume.received);
  assert(positions_valid);
  (void)positions_valid;
  switch_data_path(path_id, now);
  ++stats_.resumes;
  linger_deadline_.reset();
  mark_resumed(now);
  announce_writable(unacknowledged_before);
  return {};
}

bool Session::accept_fast_close(const wire::FastClose& frame, Time now) {
  const TimerRefresh refresh(*this);
  if (phase_ != Phase::kOpen || !has(capabilities_, wire::Capability::kFastClose) ||
      !crypto::constant_time_equal(frame.key, keys_.server_close_key)) {
    ++stats_.forged_frames_ignored;
    return false;
  }
  fail_session(frame.reason, true, false, now, false);
  return true;
}

bool Session::handle_stream_data_part(Path& path, const StreamDataPart& part, Time now) {
  // As handle_frame does for a whole StreamData frame.
  if (path.state == PathState::kDone || phase_ == Phase::kClosed) return false;
  if (path.state == PathState::kHelloSent || path.state == PathState::kResumeSent) {
    return handle_handshake_frame(path, wire::Frame{part.frame}, now);
  }
  handle_stream_data(part.frame, part.frame_end, part.first, now);
  return phase_ == Phase::kOpen && path.state == PathState::kActive && !deferred_failure_;
}

void Session::handle_stream_data(const wire::StreamData& frame, std::uint64_t frame_end,
                                 bool first_part, Time now) {
  if (phase_ != Phase::kOpen) return;
  const StreamId id = frame.stream_id;
  Stream* stream = find_stream(id);
  if (stream == nullptr) {
    // The first part of the frame already settled an unknown stream (answered, refused or found
    // an error); the later parts of a frame whose stream has since ended are dropped.
    if (!first_part) return;
    if (is_local_stream(id)) {
      if (id < next_local_stream_) {
        add_final_ack(id, kClosedStreamAck);
        return;
      }
      protocol_error(now);  // data on a stream of ours that we never opened
      return;
    }
    if (closed_peer_streams_.contains(id)) {
      add_final_ack(id, kClosedStreamAck);
      return;
    }
    if (id >= closed_peer_streams_.horizon(2 * config_.max_streams) || !frame.open ||
        frame.offset != 0) {
      protocol_error(now);
      return;
    }
    // Refused at open, before any data, rather than reset later: past max_streams, past the open
    // rate, or while the session already holds half its bound of unread bytes (a new stream may
    // send its whole initial window at once).
    if (peer_stream_count_ >= config_.max_streams ||
        receive_buffered_ >= config_.max_receive_buffered_bytes / 2 ||
        !stream_opens_.try_take(now)) {
      queue_control_message(
          wire::ResetStream{id, static_cast<std::uint64_t>(Reason::kLackOfResources)});
      closed_peer_streams_.insert(id);
      return;
    }
    stream = &create_stream(id, frame.priority);
    emit(events::StreamOpened{id});
  }
  ReceiveHalf& receive = stream->receive;
  // The bytes here end at `end`; the whole frame's at `frame_end` (the same for a whole frame, and
  // for the last part, which alone carries the FIN). The limits are checked for the whole frame.
  const std::uint64_t end = frame.offset + frame.data.size();
  const bool control = id == kControlStream;
  if ((control && frame.fin) || (receive.final_size && frame_end > *receive.final_size) ||
      (frame.fin && receive.final_size && *receive.final_size != end) ||
      frame.offset > receive.received ||
      (!control && frame_end > std::max(receive.advertised_window_limit, kInitialStreamWindow))) {
    protocol_error(now);
    return;
  }
  // Delayed unless this frame makes the acknowledgement matter now: a FIN (the peer releases the
  // stream once it is acknowledged), bytes we already had (the peer is replaying: stop it), or
  // enough bytes since the last acknowledgement to keep the peer's send buffer moving.
  bytes_since_ack_ += frame.data.size();
  const bool eager =
      frame.fin || frame.offset < receive.received || bytes_since_ack_ >= config_.ack_eager_bytes;
  request_acknowledgement(*stream, eager ? AckUrgency::kImmediate : AckUrgency::kDelayed, now);
  if (end > receive.received) {
    const std::uint64_t skip = receive.received - frame.offset;
    const auto fresh = frame.data.subspan(static_cast<std::size_t>(skip));
    stats_.duplicate_bytes_received += skip;
    stats_.bytes_received += fresh.size();
    receive.received = end;
    if (control) {
      deliver_control_bytes(fresh, now);
      return;
    }
    // Received-but-unread bytes are bounded per session and, on a server, in total: a stream that
    // would take more is reset (lack-of-resources) rather than buffered.
    if (receive_buffered_ + fresh.size() > config_.max_receive_buffered_bytes ||
        (budget_ != nullptr && budget_->available() < fresh.size())) {
      ++stats_.streams_refused_for_memory;
      emit(events::StreamReset{id, static_cast<std::uint64_t>(Reason::kLackOfResources)});
      abandon_stream(id, static_cast<std::uint64_t>(Reason::kLackOfResources));
      return;
    }
    receive.buffer.append(fresh);
    receive_buffered_ += fresh.size();
    sync_budget();
  } else {
    stats_.duplicate_bytes_received += frame.data.size();
  }
  if (frame.fin) receive.final_size = end;
  if (control) return;
  if (!stream->readable_reported && !receive.buffer.empty()) {
    stream->readable_reported = true;
    emit(events::StreamReadable{id});
  }
  if (receive.fin_received() && !receive.fin_reported) {
    receive.fin_reported = true;
    emit(events::StreamFinished{id});
  }
}

void Session::handle_ack(const wire::Ack& ack, Time now) {
  bool progressed = false;
  for (const auto& entry : ack.entries) {
    Stream* stream = find_stream(entry.stream_id);
    if (stream == nullptr) continue;
    if (entry.stream_id != kControlStream && entry.window_limit > stream->send.peer_window_limit) {
      stream->send.peer_window_limit = entry.window_limit;
      mark_send_candidate(*stream);
    }
    if (!acknowledge(*stream, entry.received_offset, progressed)) {
      protocol_error(now);
      return;
    }
  }
  update_ack_progress(progressed, now);
  if (progressed && suspended_ && role_ == Role::kClient && !attempt_in_flight_) {
    const bool resuming = std::any_of(paths_.begin(), paths_.end(), [](const auto& entry) {
      return entry.second.state == PathState::kResumeSent;
    });
    if (!resuming) {
      next_attempt_at_.reset();
      mark_resumed(now);
    }
  }
}

bool Session::acknowledge(Stream& stream, std::uint64_t acknowledgement, bool& progressed) {
  SendHalf& send = stream.send;
  const bool was_outstanding = send.outstanding();
  if (acknowledgement == kClosedStreamAck) {
    // The control stream lives as long as the session: a peer cannot release it.
    if (stream.id == kControlStream) return false;
    // The peer released the stream: it has everything it will ever want from us.
    acknowledgement = send.written + 1;
    send.fin_written = true;
  }
  if (acknowledgement <= send.acknowledged) return true;
  if (acknowledgement > send.written + (send.fin_written ? 1 : 0)) return false;
  const std::uint64_t before = send.acknowledged_bytes();
  send.acknowledged = acknowledgement;
  const std::uint64_t after = send.acknowledged_bytes();
  send.buffer.consume(static_cast<std::size_t>(after - before));
  if (stream.id != kControlStream) {
    unacknowledged_bytes_ -= after - before;
    stats_.bytes_acknowledged += after - before;
    sync_budget();
  }
  if (send.next_to_send < after) send.next_to_send = after;
  if (send.acknowledged == send.written + 1) send.fin_sent = true;
  if (send.acknowledged > 0) send.open_sent = true;
  note_outstanding(was_outstanding, send.outstanding());
  if (send.finished()) release_candidates_.push_back(stream.id);
  progressed = true;
  return true;
}

void Session::deliver_control_bytes(std::span<const std::byte> bytes, Time now) {
  control_inbound_.insert(control_inbound_.end(), bytes.begin(), bytes.end());
  std::size_t offset = 0;
  wire::DecodeLimits limits;
  limits.max_payload = kMaxControlMessage;
  while (offset < control_inbound_.size() && phase_ == Phase::kOpen) {
    auto decoded = wire::decode_frame(std::span(control_inbound_).subspan(offset), limits);
    if (!decoded) {
      protocol_error(now);
      return;
    }
    if (!decoded->has_value()) break;
    offset += (*decoded)->consumed;
    handle_control_message((*decoded)->frame, now);
  }
  if (phase_ == Phase::kOpen) {
    control_inbound_.erase(control_inbound_.begin(),
                           control_inbound_.begin() + static_cast<std::ptrdiff_t>(offset));
  }
}

void Session::handle_control_message(const wire::Frame& frame, Time now) {
  if (const auto* reset = std::get_if<wire::ResetStream>(&frame)) {
    if (reset->stream_id == kControlStream) {
      protocol_error(now);
      return;
    }
    if (find_stream(reset->stream_id) != nullptr) {
      emit(events::StreamReset{reset->stream_id, reset->error_code});
      drop_stream(reset->stream_id);
    } else if (!is_local_stream(reset->stream_id) &&
               reset->stream_id < closed_peer_streams_.horizon(2 * config_.max_streams)) {
      closed_peer_streams_.insert(reset->stream_id);
    }
    return;
  }
  if (std::holds_alternative<wire::Close>(frame)) {
    peer_close_received_ = true;
    close_requested_ = true;
    maybe_send_close(now);
    return;
  }
  if (std::holds_alternative<wire::Ignored>(frame)) return;
  protocol_error(now);
}

bool Session::apply_peer_positions(const std::vector<wire::StreamPosition>& positions) {
  std::vector<StreamId> listed;
  listed.reserve(positions.size());
  for (const auto& position : positions) {
    Stream* stream = find_stream(position.stream_id);
    if (stream == nullptr) continue;
    bool progressed = false;
    if (!acknowledge(*stream, position.offset, progressed)) return false;
    listed.push_back(position.stream_id);
  }
  std::sort(listed.begin(), listed.end());
  for (auto& [id, stream] : streams_) {
    if (std::binary_search(listed.begin(), listed.end(), id)) continue;
    // The peer no longer has a stream it acknowledged before: it released it after receiving all.
    if (stream.send.acknowledged > 0 && stream.send.fin_written) {
      bool progressed = false;
      acknowledge(stream, stream.send.written + 1, progressed);
    }
  }
  return true;
}

std::vector<wire::StreamPosition> Session::receive_positions() const {
  std::vector<wire::StreamPosition> positions;
  positions.reserve(streams_.size());
  for (const auto& [id, stream] : streams_)
    positions.push_back({id, stream.receive.acknowledgement()});
  return positions;
}

// ---- Streams
// --------------------------------------------------------------------------------------

Stream& Session::create_stream(StreamId id, std::uint8_t priority) {
  auto [it, inserted] = streams_.try_emplace(id);
  assert(inserted);
  Stream& stream = it->second;
  stream.id = id;
  stream.priority = priority;
  const bool control = id == kControlStream;
  stream.send.buffer = ByteQueue(&block_pool_);
  stream.receive.buffer = ByteQueue(&block_pool_);
  stream.send.peer_window_limit = control ? wire::kMaxVarint : kInitialStreamWindow;
  stream.receive.advertised_window_limit = control ? wire::kMaxVarint : kInitialStreamWindow;
  if (control) {
    stream.send.open_sent = true;
  } else {
    ++(is_local_stream(id) ? local_stream_count_ : peer_stream_count_);
    mark_send_candidate(stream);  // its opening frame
  }
  return stream;
}

Stream* Session::find_stream(StreamId id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

const Stream* Session::find_stream(StreamId id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

bool Session::is_local_stream(StreamId id) const {
  if (id == kControlStream) return false;
  return (id % 2 == 1) == (role_ == Role::kClient);
}

void Session::release_stream_if_finished(StreamId id) {
  if (Stream* stream = find_stream(id)) release_stream_if_finished(*stream);
}

void Session::release_stream_if_finished(Stream& stream) {
  if (stream.id != kControlStream && stream.finished()) drop_stream(stream.id);
}

void Session::release_finished_streams() {
  if (release_candidates_.empty()) return;
  std::sort(release_candidates_.begin(), release_candidates_.end());
  release_candidates_.erase(std::unique(release_candidates_.begin(), release_candidates_.end()),
                            release_candidates_.end());
  for (const StreamId id : release_candidates_) release_stream_if_finished(id);
  release_candidates_.clear();
}

void Session::mark_send_candidate(Stream& stream) {
  if (stream.send_candidate || stream.id == kControlStream) return;
  stream.send_candidate = true;
  send_candidates_.push_back(&stream);
}

void Session::request_acknowledgement(Stream& stream, AckUrgency urgency, Time now) {
  if (urgency == AckUrgency::kImmediate) {
    ack_now_ = true;
  } else if (!ack_deadline_) {
    ack_deadline_ = now + config_.ack_delay;
  }
  if (stream.acknowledgement_pending) return;
  stream.acknowledgement_pending = true;
  acknowledgement_pending_streams_.push_back(&stream);
}

bool Session::acknowledgement_due(Time now) const {
  if (!final_acks_.empty()) return true;
  if (acknowledgement_pending_streams_.empty()) return false;
  return ack_now_ || (ack_deadline_ && now >= *ack_deadline_);
}

bool Session::has_stream_frames() const {
  const Stream* control = find_stream(kControlStream);
  if (control != nullptr && stream_sendable(*control)) return true;
  return std::any_of(send_candidates_.begin(), send_candidates_.end(),
                     [&](const Stream* stream) { return stream_sendable(*stream); });
}

void Session::note_outstanding(bool before, bool after) {
  if (before == after) return;
  if (after) {
    ++outstanding_streams_;
  } else {
    assert(outstanding_streams_ > 0);
    --outstanding_streams_;
  }
}

void Session::check_stream_bookkeeping() const {
#ifndef NDEBUG
  if (phase_ == Phase::kClosed) return;
  std::size_t outstanding = 0;
  std::size_t local = 0;
  std::size_t peer = 0;
  std::size_t pending = 0;
  std::size_t candidates = 0;
  for (const auto& [id, stream] : streams_) {
    if (stream.send.outstanding()) ++outstanding;
    if (id != kControlStream) ++(is_local_stream(id) ? local : peer);
    if (stream.acknowledgement_pending) ++pending;
    if (stream.send_candidate) ++candidates;
    assert(id == kControlStream || !stream_sendable(stream) || stream.send_candidate);
  }
  assert(outstanding == outstanding_streams_);
  assert(local == local_stream_count_);
  assert(peer == peer_stream_count_);
  // Each list holds distinct streams, all flagged, as many as are flagged: exactly the flagged
  // ones.
  auto lists_exactly = [](std::vector<Stream*> listed, std::size_t flagged, auto flag) {
    std::sort(listed.begin(), listed.end());
    return std::adjacent_find(listed.begin(), listed.end()) == listed.end() &&
           listed.size() == flagged && std::all_of(listed.begin(), listed.end(), flag);
  };
  assert(lists_exactly(send_candidates_, candidates,
                       [](const Stream* stream) { return stream->send_candidate; }));
  assert(lists_exactly(acknowledgement_pending_streams_, pending,
                       [](const Stream* stream) { return stream->acknowledgement_pending; }));
  (void)outstanding;
  (void)local;
  (void)peer;
  (void)pending;
  (void)candidates;
  (void)lists_exactly;
#endif
}

void Session::drop_stream(StreamId id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Stream& stream = it->second;
  note_outstanding(stream.send.outstanding(), false);
  if (id != kControlStream) --(is_local_stream(id) ? local_stream_count_ : peer_stream_count_);
  if (stream.send_candidate) std::erase(send_candidates_, &stream);
  if (stream.acknowledgement_pending) std::erase(acknowledgement_pending_streams_, &stream);
  // Bytes of a reset stream that the peer never acknowledged are abandoned, not lost: count them
  // apart.
  unacknowledged_bytes_ -= stream.send.unacknowledged_bytes();
  stats_.bytes_abandoned += stream.send.unacknowledged_bytes();
  receive_buffered_ -= std::min<std::uint64_t>(receive_buffered_, stream.receive.buffer.size());
  const bool acknowledgement_pending = stream.acknowledgement_pending;
  const std::uint64_t acknowledgement = stream.receive.acknowledgement();
  if (!is_local_stream(id)) closed_peer_streams_.insert(id);
  streams_.erase(it);
  if (acknowledgement_pending) add_final_ack(id, acknowledgement);
  sync_budget();
}

void Session::sync_budget() {
  // While open: the replay buffers and the unread bytes; once closed only unread bytes remain
  // (after a graceful close they stay readable).
  const std::uint64_t held =
      receive_buffered_ + (phase_ == Phase::kClosed ? 0 : unacknowledged_bytes_);
  if (budget_ != nullptr) budget_->update(budget_held_, held);
  budget_held_ = held;
}

void Session::announce_budget_room() {
  const TimerRefresh refresh(*this);
  if (phase_ != Phase::kOpen || !write_blocked_) return;
  write_blocked_ = false;
  emit(events::Writable{});
}

std::vector<StreamId> Session::stream_ids() const {
  std::vector<StreamId> ids;
  for (const auto& [id, stream] : streams_) {
    if (id != kControlStream) ids.push_back(id);
  }
  return ids;
}

Expected<StreamId, StreamError> Session::open_stream(std::uint8_t priority, Time) {
  const TimerRefresh refresh(*this);
  if (phase_ != Phase::kOpen || close_requested_) return make_unexpected(StreamError::kNotOpen);
  if (local_stream_count_ >= config_.max_streams)
    return make_unexpected(StreamError::kTooManyStreams);
  const StreamId id = next_local_stream_;
  next_local_stream_ += 2;
  create_stream(id, priority);
  return id;
}

Expected<std::size_t, StreamError> Session::write(StreamId id, std::span<const std::byte> bytes,
                                                  Time) {
  const TimerRefresh refresh(*this);
  if (phase_ != Phase::kOpen || close_requested_) return make_unexpected(StreamError::kNotOpen);
  Stream* stream = id == kControlStream ? nullptr : find_stream(id);
  if (stream == nullptr) return make_unexpected(StreamError::kUnknownStream);
  if (stream->send.fin_written) return make_unexpected(StreamError::kStreamFinished);
  if (bytes.empty()) return std::size_t{0};
  // The last part of the window is kept for streams with little outstanding: a bulk transfer
  // that refills the window as fast as acknowledgements free it must not starve a new stream's
  // request or an interactive stream's keystroke (they would otherwise lose every race for room).
  const std::size_t window = config_.max_unacknowledged_bytes;
  const std::size_t reserve = window / kInteractiveReserveDivisor;
  const std::size_t limit =
      stream->send.unacknowledged_bytes() >= reserve ? window - reserve : window;
  std::size_t room = limit - std::min<std::size_t>(unacknowledged_bytes_, limit);
  if (budget_ != nullptr && budget_->available() < room) {
    // The server's shared budget is the tighter bound: the write waits for Writable, which comes
    // when this session's acknowledgements or the budget (BufferBudget::take_waiting) make room.
    room = static_cast<std::size_t>(budget_->available());
    if (room < bytes.size()) budget_->wait(this);
  }
  const std::size_t count = std::min(room, bytes.size());
  if (count < bytes.size()) write_blocked_ = true;
  if (count == 0) return make_unexpected(StreamError::kWouldBlock);
  stream->send.buffer.append(bytes.first(count));
  stream->send.written += count;
  unacknowledged_bytes_ += count;
  stats_.bytes_written += count;
  sync_budget();
  mark_send_candidate(*stream);
  return count;
}

Expected<void, StreamError> Session::finish(StreamId id, Time) {
  const TimerRefresh refresh(*this);
  if (phase_ != Phase::kOpen) return make_unexpected(StreamError::kNotOpen);
  Stream* stream = id == kControlStream ? nullptr : find_stream(id);
  if (stream == nullptr) return make_unexpected(StreamError::kUnknownStream);
  if (stream->send.fin_written) return make_unexpected(StreamError::kStreamFinished);
  stream->send.fin_written = true;
  mark_send_candidate(*stream);
  return {};
}

Expected<ReadResult, StreamError> Session::read(StreamId id, std::span<std::byte> out, Time now) {
  const TimerRefresh refresh(*this);
  Stream* stream = id == kControlStream ? nullptr : find_stream(id);
  if (stream == nullptr) return make_unexpected(StreamError::kUnknownStream);
  const std::size_t count = stream->receive.buffer.read(out);
  const bool finished = note_consumed(*stream, count, now);
  release_stream_if_finished(*stream);
  apply_deferred_failure();
  return ReadResult{count, finished};
}

std::span<const std::byte> Session::peek(StreamId id) const {
  const Stream* stream = id == kControlStream ? nullptr : find_stream(id);
  if (stream == nullptr) return {};
  return stream->receive.buffer.view(0, stream->receive.buffer.size());
}

void Session::consume(StreamId id, std::size_t count, Time now) {
  const TimerRefresh refresh(*this);
  Stream* stream = id == kControlStream ? nullptr : find_stream(id);
  if (stream == nullptr) return;
  count = std::min(count, stream->receive.buffer.size());
  stream->receive.buffer.consume(count);
  note_consumed(*stream, count, now);
  release_stream_if_finished(*stream);
  apply_deferred_failure();
}

bool Session::note_consumed(Stream& stream, std::size_t count, Time now) {
  ReceiveHalf& receive = stream.receive;
  receive.consumed += count;
  receive_buffered_ -= std::min<std::uint64_t>(receive_buffered_, count);
  sync_budget();
  if (receive.buffer.empty()) stream.readable_reported = false;
  // Advertise more credit once a quarter of the window has been read.
  if (receive.consumed + config_.stream_receive_window >=
      receive.advertised_window_limit + config_.stream_receive_window / 4) {
    request_acknowledgement(stream, AckUrgency::kImmediate, now);
  }
  if (receive.fin_received() && receive.consumed == *receive.final_size) {
    receive.fin_delivered = true;
    return true;
  }
  return false;
}

void Session::reset_stream(StreamId id, std::uint64_t error_code, Time) {
  const TimerRefresh refresh(*this);
  abandon_stream(id, error_code);
  apply_deferred_failure();
}

void Session::abandon_stream(StreamId id, std::uint64_t error_code) {
  if (phase_ != Phase::kOpen || id == kControlStream || find_stream(id) == nullptr) return;
  queue_control_message(wire::ResetStream{id, error_code});
  drop_stream(id);
}

void Session::queue_control_message(const wire::Frame& frame) {
  Stream& control = streams_.at(kControlStream);
  std::vector<std::byte> encoded;
  wire::encode_frame(frame, encoded);
  control.send.buffer.append(encoded);
  control.send.written += encoded.size();
  // A peer that makes us queue control messages (stream refusals) and never acknowledges them
  // would grow this buffer without end.
  if (control.send.unacknowledged_bytes() > kMaxControlBacklog) {
    defer_failure(Reason::kLackOfResources);
  }
}

void Session::queue_frame(Path& path, const wire::Frame& frame) {
  wire::encode_frame(frame, path.outgoing);
  // wants_input() stops the runtime from reading while the queue is past max_queued_bytes; a queue
  // far past it means a runtime that does not honour that: end the session instead of growing.
  if (path.outgoing.size() > 4 * config_.max_queued_bytes + (64u << 10)) {
    defer_failure(Reason::kLackOfResources);
  }
}

bool Session::wants_input(PathId path_id) const {
  auto it = paths_.find(path_id);
  if (it == paths_.end()) return true;
  return it->second.outgoing.size() < config_.max_queued_bytes;
}

// ---- Sending
// --------------------------------------------------------------------------------------

bool Session::stream_sendable(const Stream& stream) const {
  const SendHalf& send = stream.send;
  const std::uint64_t limit = std::min(send.written, send.peer_window_limit);
  if (send.next_to_send < limit) return true;
  if (send.fin_written && !send.fin_sent && send.next_to_send == send.written) return true;
  return stream.id != kControlStream && !send.open_sent && send.next_to_send == 0;
}

std::size_t Session::write_stream_frames(std::vector<std::byte>& out, std::size_t budget) {
  std::size_t written = 0;
  // The control stream goes first. Only sending changes what a stream has to send while this runs,
  // so once a stream has nothing left it stays so until the call returns.
  if (Stream* control = find_stream(kControlStream)) {
    while (written < budget && stream_sendable(*control)) {
      const std::size_t before = out.size();
      if (!write_one_stream_frame(*control, out, budget - written)) return written;
      written += out.size() - before;
    }
  }
  if (written >= budget || send_candidates_.empty()) return written;

  // Then the other streams: most urgent priority first; round-robin by id within it, starting after
  // the last one served. Candidates with nothing to send leave the list; the rest are ordered by
  // (priority, id), and a stream that runs dry is set to nullptr where it stands.
  std::vector<Stream*>& candidates = send_candidates_;
  std::erase_if(candidates, [&](Stream* stream) {
    if (stream_sendable(*stream)) return false;
    stream->send_candidate = false;
    return true;
  });
  std::sort(candidates.begin(), candidates.end(), [](const Stream* left, const Stream* right) {
    return left->priority != right->priority ? left->priority < right->priority
                                             : left->id < right->id;
  });
  std::size_t group_begin = 0;
  bool stopped = false;
  while (!stopped && written < budget && group_begin < candidates.size()) {
    const std::uint8_t priority = candidates[group_begin]->priority;
    std::size_t next_group = group_begin;
    while (next_group < candidates.size() && candidates[next_group]->priority == priority)
      ++next_group;
    std::size_t group_end = next_group;  // shrinks when the group's gaps are closed up
    std::size_t live = group_end - group_begin;
    std::size_t dry = 0;  // entries of the group set to nullptr
    std::size_t position = group_begin;
    while (position < group_end && candidates[position]->id <= last_served_stream_) ++position;
    if (position == group_end) position = group_begin;
    while (written < budget) {
      Stream& chosen = *candidates[position];
      const std::size_t before = out.size();
      if (!write_one_stream_frame(chosen, out, budget - written)) {
        stopped = true;
        break;
      }
      written += out.size() - before;
      last_served_stream_ = chosen.id;
      if (!stream_sendable(chosen)) {
        chosen.send_candidate = false;
        candidates[position] = nullptr;
        ++dry;
        if (--live == 0) break;
      }
      // The next live entry after `position`, wrapping around to the group's first. On wrapping,
      // close up the group's gaps once they are as many as its live entries, so skipping them
      // costs amortized constant time per frame.
      do {
        if (++position == group_end) {
          if (dry >= live) {
            auto kept =
                std::remove(candidates.begin() + static_cast<std::ptrdiff_t>(group_begin),
                            candidates.begin() + static_cast<std::ptrdiff_t>(group_end), nullptr);
            std::fill(kept, candidates.begin() + static_cast<std::ptrdiff_t>(group_end), nullptr);
            group_end = group_begin + live;
            dry = 0;
          }
          position = group_begin;
        }
      } while (candidates[position] == nullptr);
    }
    if (live > 0) break;  // out of budget (or stopped) within this group
    group_begin = next_group;
  }
  std::erase(candidates, nullptr);
  return written;
}

bool Session::write_one_stream_frame(Stream& stream, std::vector<std::byte>& out,
                                     std::size_t budget) {
  SendHalf& send = stream.send;
  // The replay buffer holds exactly [acknowledged_bytes(), written): an offset outside it would
  // read memory that is not ours. Checked in every build; a broken invariant ends the session.
  if (send.next_to_send < send.acknowledged_bytes() || send.next_to_send > send.written ||
      send.buffer.size() != send.written - send.acknowledged_bytes()) {
    invariant_failed();
    return false;
  }
  const std::uint64_t limit = std::min(send.written, send.peer_window_limit);
  const std::uint64_t available = limit > send.next_to_send ? limit - send.next_to_send : 0;
  std::size_t count =
      static_cast<std::size_t>(std::min<std::uint64_t>(available, config_.max_data_frame_payload));
  count = std::min(count, budget);
  const auto view = send.buffer.view(
      static_cast<std::size_t>(send.next_to_send - send.acknowledged_bytes()), count);
  count = view.size();
  wire::StreamData frame;
  frame.stream_id = stream.id;
  frame.offset = send.next_to_send;
  frame.open = send.next_to_send == 0 && stream.id != kControlStream;
  frame.priority = stream.priority;
  frame.fin = send.fin_written && !send.fin_sent && send.next_to_send + count == send.written;
  if (count == 0 && !frame.fin && !(frame.open && !send.open_sent)) return false;
  // The only copy of the data on the way out: from the replay buffer into `out`.
  wire::encode_stream_header(frame, count, out);
  out.insert(out.end(), view.begin(), view.end());
  const bool was_outstanding = send.outstanding();
  if (stream.id != kControlStream) {
    stats_.bytes_sent += count;
    if (send.next_to_send < send.highest_sent) {
      stats_.bytes_replayed +=
          std::min<std::uint64_t>(send.highest_sent, send.next_to_send + count) - send.next_to_send;
    }
  }
  send.next_to_send += count;
  send.highest_sent = std::max(send.highest_sent, send.next_to_send);
  if (frame.fin) send.fin_sent = true;
  if (frame.open) send.open_sent = true;
  note_outstanding(was_outstanding, send.outstanding());
  return true;
}

void Session::write_ack_frame(std::vector<std::byte>& out) {
  // Entries for released streams first, then the pending streams in id order.
  std::vector<wire::AckEntry> entries = std::move(final_ack_entries_);
  entries.clear();
  for (const auto& [id, value] : final_acks_) entries.push_back(wire::AckEntry{id, value, 0});
  final_acks_.clear();
  if (!acknowledgement_pending_streams_.empty()) {
    std::sort(acknowledgement_pending_streams_.begin(), acknowledgement_pending_streams_.end(),
              [](const Stream* left, const Stream* right) { return left->id < right->id; });
    for (Stream* stream : acknowledgement_pending_streams_) {
      stream->acknowledgement_pending = false;
      ReceiveHalf& receive = stream->receive;
      // Past half the session's bound, a stream whose application has not read what it has gets
      // no more credit; streams that are read promptly keep theirs (their bytes do not stay). The
      // withheld stream gets credit again when its reader catches up (note_consumed asks for an
      // acknowledgement then).
      const bool withhold = stream->id != kControlStream && !receive.buffer.empty() &&
                            receive_buffered_ >= config_.max_receive_buffered_bytes / 2;
      const std::uint64_t window_limit =
          stream->id == kControlStream ? wire::kMaxVarint
          : withhold                   ? receive.advertised_window_limit
                                       : std::max(receive.advertised_window_limit,
                                                  receive.consumed + config_.stream_receive_window);
      receive.advertised_window_limit = window_limit;
      entries.push_back(wire::AckEntry{stream->id, receive.acknowledgement(), window_limit});
    }
    acknowledgement_pending_streams_.clear();
  }
  ack_deadline_.reset();
  ack_now_ = false;
  bytes_since_ack_ = 0;
  constexpr std::size_t kEntriesPerFrame = 1024;
  for (std::size_t start = 0; start < entries.size(); start += kEntriesPerFrame) {
    const std::size_t count = std::min(entries.size() - start, kEntriesPerFrame);
    wire::encode_ack_frame(std::span(entries).subspan(start, count), out);
  }
  // Keep the entries' capacity for the next call.
  entries.clear();
  final_ack_entries_ = std::move(entries);
}

void Session::add_final_ack(StreamId id, std::uint64_t acknowledgement) {
  auto [it, inserted] = final_acks_.try_emplace(id, acknowledgement);
  if (!inserted) {
    // One entry per stream, whatever the peer repeats: the furthest position says it all.
    it->second = std::max(it->second, acknowledgement);
    return;
  }
  // Honest peers cause at most one entry per stream they had open; far more means a peer sends
  // data on streams long gone to make us queue answers.
  if (final_acks_.size() > 2 * config_.max_streams + 16) {
    defer_failure(Reason::kProtocolError);
  }
}

// ---- Paths and liveness
// ---------------------------------------------------------------------------

void Session::switch_data_path(PathId path_id, Time now) {
  data_path_ = path_id;
  for (auto& [id, stream] : streams_) {
    const bool was_outstanding = stream.send.outstanding();
    stream.send.rewind();
    note_outstanding(was_outstanding, stream.send.outstanding());
    mark_send_candidate(stream);
    // The new path gets the full acknowledgement state.
    request_acknowledgement(stream, AckUrgency::kImmediate, now);
  }
  ack_progress_.reset();
  update_ack_progress(false, now);
}

void Session::retire_path(Path& path) {
  if (path.state == PathState::kDone) return;
  path.state = PathState::kDone;
  path.handshake_deadline.reset();
  if (data_path_ == path.id) data_path_.reset();
  emit(events::PathDone{path.id});
}

void Session::attempt_failed(Path& path, Time now) {
  const bool was_data_path = data_path_ == path.id;
  retire_path(path);
  if (phase_ == Phase::kClosed) return;
  if (was_data_path) {
    for (auto& [id, other] : paths_) {
      if (other.state == PathState::kActive) {
        switch_data_path(id, now);
        break;
      }
    }
  }
  request_path(now);
}

void Session::on_data_path_lost(SuspendCause cause, Time now) {
  if (close_sent_ && peer_close_received_) {
    // Both Close messages crossed; only the last acknowledgement is missing. Nothing is left to
    // deliver.
    finish_session(events::Closed{Reason::kShutdown, !close_initiated_locally_, false, 0});
    return;
  }
  if (!may_resume() && !data_path_) {
    // Without resume no other connection can take the session over: it ends with its last one.
    // The client reports reconnect-exhausted (transient: a new session may work), the server
    // linger-expired (its linger for such a session is zero).
    if (role_ == Role::kClient) {
      fail_session(Reason::kReconnectExhausted, false, true, now, false);
    } else {
      fail_session(Reason::kLingerExpired, false, false, now, false);
    }
    return;
  }
  suspend(cause, now);
  if (role_ == Role::kClient) request_path(now);
}

void Session::suspend(SuspendCause cause, Time now) {
  if (suspended_ || phase_ != Phase::kOpen) return;
  suspended_ = true;
  suspended_since_ = now;
  if (suspended_index_ != nullptr) suspended_index_->insert({suspended_since_, session_id_});
  block_pool_.trim();  // nothing moves while suspended
  emit(events::Suspended{cause});
  if (role_ == Role::kServer) {
    linger_deadline_ = now + config_.linger;
  } else {
    give_up_deadline_ = now + config_.reconnect_limit;
  }
}

std::uint64_t Session::planned_replay() const {
  std::uint64_t total = 0;
  for (const auto& [id, stream] : streams_) {
    if (id == kControlStream) continue;
    const std::uint64_t acknowledged = stream.send.acknowledged_bytes();
    if (stream.send.replay_end > acknowledged) total += stream.send.replay_end - acknowledged;
  }
  return total;
}

void Session::mark_resumed(Time now) {
  events::Resumed resumed;
  resumed.bytes_replayed = planned_replay();
  if (suspended_) {
    resumed.downtime = now - suspended_since_;
    stats_.total_downtime += resumed.downtime;
    suspended_ = false;
    if (suspended_index_ != nullptr) suspended_index_->erase({suspended_since_, session_id_});
  }
  linger_deadline_.reset();
  if (role_ == Role::kClient) give_up_deadline_.reset();
  emit(resumed);
}

void Session::request_path(Time now) {
  if (role_ != Role::kClient || phase_ == Phase::kClosed || attempt_in_flight_ || next_attempt_at_)
    return;
  if (phase_ == Phase::kOpen && !may_resume()) return;  // a new connection could not resume
  const bool handshaking = std::any_of(paths_.begin(), paths_.end(), [](const auto& entry) {
    return entry.second.state == PathState::kHelloSent ||
           entry.second.state == PathState::kResumeSent;
  });
  if (handshaking) return;
  const Duration delay = backoff_.next_delay(random_);
  if (delay == Duration::zero()) {
    attempt_in_flight_ = true;
    emit(events::PathWanted{});
  } else {
    next_attempt_at_ = now + delay;
  }
}

Duration Session::budget() const {
  return heartbeat_.budget(rtt_.retransmission_timeout());
}

wire::DecodeLimits Session::decode_limits() const {
  wire::DecodeLimits limits;
  limits.max_payload = config_.max_frame_payload;
  limits.max_list_entries = std::max<std::size_t>(4096, 2 * config_.max_streams + 1);
  return limits;
}

bool Session::has_outstanding() const {
  if (!data_path_) return false;
  auto path = paths_.find(*data_path_);
  if (path != paths_.end() && path->second.outstanding_ping) return true;
  return outstanding_streams_ > 0;
}

void Session::update_ack_progress(bool progressed, Time now) {
  ack_progress_.update(has_outstanding(), progressed, now);
}

std::optional<Time> Session::next_deadline() const {
  return timers_.earliest();
}

void Session::refresh_timers() {
  if (phase_ == Phase::kClosed) {
    timers_.clear();
    return;
  }
  std::optional<Time> handshake;
  std::optional<Time> liveness;
  std::optional<Time> dead;
  std::optional<Time> heartbeat;
  auto earlier = [](std::optional<Time>& slot, std::optional<Time> candidate) {
    if (candidate && (!slot || *candidate < *slot)) slot = candidate;
  };
  const Duration rto = rtt_.retransmission_timeout();
  for (const auto& [id, path] : paths_) {
    if (path.state == PathState::kDone) continue;
    earlier(handshake, path.handshake_deadline);
    if (path.state != PathState::kActive) continue;
    earlier(heartbeat, path.heartbeat_schedule.deadline());
    if (path.suspect) {
      earlier(dead, path.liveness.last_inbound() + heartbeat_policy::dead_after(budget()));
    } else {
      earlier(liveness, path.liveness.deadline(rto));
    }
  }
  timers_.set(TimerSlot::kHandshake, handshake);
  timers_.set(TimerSlot::kPathLiveness, liveness);
  timers_.set(TimerSlot::kPathDead, dead);
  timers_.set(TimerSlot::kHeartbeat, heartbeat);
  timers_.set(TimerSlot::kAckDelay,
              data_path_ && !acknowledgement_pending_streams_.empty() && !ack_now_ ? ack_deadline_
                                                                                   : std::nullopt);
  timers_.set(TimerSlot::kAckProgress,
              data_path_ && !suspended_ ? ack_progress_.deadline(budget()) : std::nullopt);
  timers_.set(TimerSlot::kLinger, linger_deadline_);
  timers_.set(TimerSlot::kGiveUp, give_up_deadline_);
  timers_.set(TimerSlot::kReconnect, next_attempt_at_);
}

void Session::on_timeout(Time now) {
  const TimerRefresh refresh(*this);
  // Each slot is looked at in TimerSlot order, against the state the previous ones left.
  for (std::size_t index = 0; index < kTimerSlotCount && phase_ != Phase::kClosed; ++index) {
    const auto slot = static_cast<TimerSlot>(index);
    refresh_timers();
    if (timers_.due(slot, now)) on_timer(slot, now);
  }
  apply_deferred_failure();
}

void Session::on_timer(TimerSlot slot, Time now) {
  switch (slot) {
    case TimerSlot::kHandshake:
      for (auto& [id, path] : paths_) {
        if (path.state != PathState::kDone && path.handshake_deadline &&
            now >= *path.handshake_deadline) {
          attempt_failed(path, now);
          if (phase_ == Phase::kClosed) return;
        }
      }
      return;
    case TimerSlot::kPathLiveness:
      for (auto& [id, path] : paths_) {
        if (path.state == PathState::kActive && !path.suspect) check_liveness(path, now);
      }
      return;
    case TimerSlot::kPathDead:
      for (auto& [id, path] : paths_) {
        if (path.state != PathState::kActive || !path.suspect) continue;
        if (now < path.liveness.last_inbound() + heartbeat_policy::dead_after(budget())) continue;
        const bool was_data_path = data_path_ == id;
        retire_path(path);
        if (was_data_path) on_data_path_lost(SuspendCause::kHeartbeatTimeout, now);
        if (phase_ == Phase::kClosed) return;
      }
      return;
    case TimerSlot::kHeartbeat:
      for (auto& [id, path] : paths_) {
        if (path.state == PathState::kActive && path.heartbeat_schedule.due(now))
          send_heartbeat(path, now);
      }
      return;
    case TimerSlot::kAckDelay:
      ack_now_ = true;
      return;
    case TimerSlot::kAckProgress:
      ack_progress_.reset();
      on_data_path_lost(SuspendCause::kAcknowledgementStall, now);
      return;
    case TimerSlot::kLinger:
      fail_session(Reason::kLingerExpired, false, false, now, false);
      return;
    case TimerSlot::kGiveUp:
      if (suspended_ || phase_ == Phase::kConnecting)
        fail_session(Reason::kReconnectExhausted, false, true, now, false);
      return;
    case TimerSlot::kReconnect:
      next_attempt_at_.reset();
      attempt_in_flight_ = true;
      emit(events::PathWanted{});
      return;
    case TimerSlot::kReauthenticate:
    case TimerSlot::kCredentialExpiry:
      return;  // reserved for the authentication issue: never armed yet
  }
}

void Session::check_liveness(Path& path, Time now) {
  const Duration rto = rtt_.retransmission_timeout();
  while (now >= path.liveness.deadline(rto)) {
    const auto verdict = path.liveness.on_timeout(now, rto);
    if (verdict == LivenessDetector::Verdict::kMissedHeartbeat) {
      ++stats_.heartbeats_missed;
      continue;
    }
    if (verdict == LivenessDetector::Verdict::kSuspect) {
      path.suspect = true;
      if (data_path_ == path.id) on_data_path_lost(SuspendCause::kHeartbeatTimeout, now);
    }
    break;
  }
}

void Session::send_heartbeat(Path& path, Time now) {
  const std::uint64_t sequence = path.next_ping_sequence++;
  queue_frame(path, wire::Ping{sequence});
  if (!path.outstanding_ping) path.outstanding_ping = {sequence, now};
  path.heartbeat_schedule.on_ping_sent(now);
  if (data_path_ == path.id) {
    update_ack_progress(false, now);
    // Once per heartbeat interval: a busy session refills its pool at once, an idle one gives its
    // spare blocks back.
    block_pool_.trim();
  }
}

// ---- Ending
// ---------------------------------------------------------------------------------------

void Session::protocol_error(Time now) {
  fail_session(Reason::kProtocolError, false, false, now, true);
}

void Session::invariant_failed() {
  ++stats_.invariant_failures;
  defer_failure(Reason::kProtocolError);
}

void Session::defer_failure(Reason reason) {
  if (!deferred_failure_) deferred_failure_ = reason;
}

void Session::apply_deferred_failure() {
  if (!deferred_failure_) return;
  const Reason reason = *deferred_failure_;
  deferred_failure_.reset();
  fail_session(reason, false, false, Time{}, true);
}

void Session::fail_session(Reason reason, bool by_peer, bool transient, Time, bool send_abort) {
  if (phase_ == Phase::kClosed) return;
  if (send_abort && data_path_) {
    auto it = paths_.find(*data_path_);
    if (it != paths_.end()) queue_frame(it->second, wire::Abort{reason, transient});
  }
  finish_session(events::Closed{reason, by_peer, transient, unacknowledged_bytes_});
}

void Session::finish_session(const events::Closed& closed) {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  stats_.unacknowledged_bytes = unacknowledged_bytes_;
  emit(closed);
  for (auto& [id, path] : paths_) retire_path(path);
  // Free everything the session held; the statistics stay readable. After a graceful close, bytes
  // received and not yet read stay readable, as after a TCP FIN; any other end discards them.
  if (closed.reason == Reason::kShutdown && !closed.transient) {
    for (auto it = streams_.begin(); it != streams_.end();) {
      it->second.send.buffer.clear();
      it->second.send_candidate = false;
      it->second.acknowledgement_pending = false;
      it = it->second.receive.buffer.empty() ? streams_.erase(it) : std::next(it);
    }
  } else {
    streams_.clear();
  }
  send_candidates_.clear();
  acknowledgement_pending_streams_.clear();
  release_candidates_.clear();
  outstanding_streams_ = 0;
  local_stream_count_ = 0;
  peer_stream_count_ = 0;
  receive_buffered_ = 0;
  for (const auto& [id, stream] : streams_) {
    if (id != kControlStream) ++(is_local_stream(id) ? local_stream_count_ : peer_stream_count_);
    receive_buffered_ += stream.receive.buffer.size();
  }
  if (budget_ != nullptr) budget_->forget(this);
  sync_budget();
  block_pool_.trim();
  final_acks_.clear();
  control_inbound_.clear();
  linger_deadline_.reset();
  give_up_deadline_.reset();
  next_attempt_at_.reset();
  if (suspended_ && suspended_index_ != nullptr) {
    suspended_index_->erase({suspended_since_, session_id_});
  }
  suspended_ = false;
  timers_.clear();
}

void Session::close(Time now) {
  const TimerRefresh refresh(*this);
  if (phase_ == Phase::kConnecting) {
    finish_session(events::Closed{Reason::kShutdown, false, false, unacknowledged_bytes_});
    return;
  }
  if (phase_ != Phase::kOpen || close_requested_) return;
  close_requested_ = true;
  close_initiated_locally_ = true;
  maybe_send_close(now);
  apply_deferred_failure();
}

void Session::maybe_send_close(Time now) {
  if (!close_requested_ || close_sent_ || phase_ != Phase::kOpen || unacknowledged_bytes_ != 0)
    return;
  queue_control_message(wire::Close{Reason::kShutdown});
  close_sent_ = true;
  close_acknowledgement_ = streams_.at(kControlStream).send.written;
  check_graceful_completion(now);
}

void Session::check_graceful_completion(Time) {
  if (phase_ != Phase::kOpen || !close_sent_ || !peer_close_received_) return;
  if (streams_.at(kControlStream).send.acknowledged < close_acknowledgement_) return;
  // Both Close messages are exchanged and ours is acknowledged: acknowledge the peer's on the way
  // out.
  if (data_path_) {
    auto it = paths_.find(*data_path_);
    if (it != paths_.end() && it->second.state == PathState::kActive)
      write_ack_frame(it->second.outgoing);
  }
  finish_session(events::Closed{Reason::kShutdown, !close_initiated_locally_, false, 0});
}

events::Closed Session::abort(Reason reason, Time now, bool transient) {
  const TimerRefresh refresh(*this);
  events::Closed closed{reason, false, transient, unacknowledged_bytes_};
  fail_session(reason, false, transient, now, true);
  return closed;
}

std::vector<std::byte> Session::fast_close(Reason reason, Time now) {
  const TimerRefresh refresh(*this);
  std::vector<std::byte> encoded;
  if (phase_ != Phase::kOpen) return encoded;
  if (!has(capabilities_, wire::Capability::kFastClose)) {
    abort(reason, now);
    return encoded;
  }
  const Secret& peer_key = role_ == Role::kClient ? keys_.server_close_key : keys_.client_close_key;
  wire::encode_frame(wire::FastClose{session_id_, peer_key, reason}, encoded);
  if (data_path_) {
    auto it = paths_.find(*data_path_);
    if (it != paths_.end())
      it->second.outgoing.insert(it->second.outgoing.end(), encoded.begin(), encoded.end());
  }
  fail_session(reason, false, false, now, false);
  return encoded;
}

// ---- Events and inspection
// ------------------------------------------------------------------------

std::optional<Event> Session::poll_event() {
  if (own_events_.empty()) return std::nullopt;
  Event event = std::move(own_events_.front().event);
  own_events_.pop_front();
  return event;
}

SessionStats Session::stats() const {
  SessionStats stats = stats_;
  stats.smoothed_rtt = rtt_.smoothed();
  stats.rtt_variation = rtt_.variation();
  stats.unacknowledged_bytes = unacknowledged_bytes_;
  stats.receive_buffered_bytes = receive_buffered_;
  stats.open_streams = streams_.size() - (streams_.contains(kControlStream) ? 1 : 0);
  return stats;
}

}  // namespace tether::session
