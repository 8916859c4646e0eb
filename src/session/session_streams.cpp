// Session: received stream data, the control channel's handlers, and the application's stream API.
// The stream bookkeeping itself is StreamSet's, sending is SendScheduler's and acknowledging is
// AckManager's.
#include <algorithm>
#include <cassert>

#include "session/overloaded.hpp"
#include "session/session.hpp"

namespace tether::session {
namespace {

constexpr auto kLackOfResources = static_cast<std::uint64_t>(Reason::kLackOfResources);

}  // namespace

// ---- Received stream data ----------------------------------------------------------------------

Stream* Session::accept_peer_stream(const wire::StreamData& frame, bool first_part, Time now) {
  const StreamId id = frame.stream_id;
  // The first part of the frame already settled an unknown stream (answered, refused or found an
  // error); the later parts of a frame whose stream has since ended are dropped.
  if (!first_part) return nullptr;
  if (streams_.is_local(id)) {
    if (id < streams_.next_local_id()) {
      add_final_ack(id, kClosedStreamAck);
    } else {
      protocol_error(now);  // data on a stream of ours that we never opened
    }
    return nullptr;
  }
  if (streams_.closed_peer_streams().contains(id)) {
    add_final_ack(id, kClosedStreamAck);
    return nullptr;
  }
  if (id >= streams_.closed_peer_streams().horizon(2 * config_.max_streams) || !frame.open ||
      frame.offset != 0) {
    protocol_error(now);
    return nullptr;
  }
  // Refused at open, before any data, rather than reset later: past max_streams, past the open
  // rate, or while the session already holds half its bound of unread bytes (a new stream may send
  // its whole initial window at once).
  if (streams_.peer_count() >= config_.max_streams ||
      streams_.receive_buffered() >= config_.max_receive_buffered_bytes / 2 ||
      !stream_opens_.try_take(now)) {
    queue_control_message(wire::ResetStream{id, kLackOfResources});
    streams_.note_peer_stream_ended(id);
    return nullptr;
  }
  Stream& stream = streams_.create(id, frame.priority);
  emit(events::StreamOpened{id});
  return &stream;
}

void Session::handle_stream_data(const wire::StreamData& frame, std::uint64_t frame_end,
                                 bool first_part, Time now) {
  if (!lifecycle_.open()) return;
  const StreamId id = frame.stream_id;
  Stream* stream = streams_.find(id);
  // Application data past the lifetime: counted (audit) or refused (on-use enforcement).
  if (id != kControlStream && first_part &&
      !note_use(stream == nullptr && frame.open && !streams_.closed_peer_streams().contains(id),
                now)) {
    return;
  }
  if (stream == nullptr) stream = accept_peer_stream(frame, first_part, now);
  if (stream == nullptr) return;
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
  const bool many = acks_.note_received(frame.data.size());
  const bool eager = frame.fin || frame.offset < receive.received || many;
  acks_.request(*stream, eager ? AckManager::Urgency::kImmediate : AckManager::Urgency::kDelayed,
                now);
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
    if (streams_.receive_buffered() + fresh.size() > config_.max_receive_buffered_bytes ||
        (budget_ != nullptr && budget_->available() < fresh.size())) {
      ++stats_.streams_refused_for_memory;
      emit(events::StreamReset{id, kLackOfResources});
      abandon_stream(id, kLackOfResources);
      return;
    }
    receive.buffer.append(fresh);
    streams_.add_buffered(fresh.size());
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

// ---- The control channel -----------------------------------------------------------------------

void Session::deliver_control_bytes(std::span<const std::byte> bytes, Time now) {
  const bool valid = control_.deliver(
      bytes,
      [&](const wire::Frame& message) {
        std::visit(
            Overloaded{
                [&](const wire::ResetStream& reset) { handle_control(reset, now); },
                [&](const wire::Close& close) { handle_control(close, now); },
                [&](const wire::Reauthenticate& start) { handle_control(start, now); },
                [&](const wire::Reauthenticated& result) { handle_control(result, now); },
                [&](const wire::AuthChallenge& challenge) { handle_control(challenge, now); },
                [&](const wire::AuthResponse& response) { handle_control(response, now); },
                [&](const wire::Ignored&) {},
                [&](const auto&) { protocol_error(now); },
            },
            message);
      },
      [&] { return lifecycle_.open(); },
      // Exchange messages carry up to an authentication message; the others are tiny.
      may_reauthenticate() ? config_.max_authentication_message + 64 : ControlChannel::kMaxMessage);
  if (!valid) protocol_error(now);
}

void Session::handle_control(const wire::ResetStream& reset, Time now) {
  if (reset.stream_id == kControlStream) {
    protocol_error(now);
    return;
  }
  if (streams_.find(reset.stream_id) != nullptr) {
    emit(events::StreamReset{reset.stream_id, reset.error_code});
    drop_stream(reset.stream_id);
  } else if (!streams_.is_local(reset.stream_id) &&
             reset.stream_id < streams_.closed_peer_streams().horizon(2 * config_.max_streams)) {
    streams_.note_peer_stream_ended(reset.stream_id);
  }
}

void Session::handle_control(const wire::Close&, Time now) {
  lifecycle_.close_handshake().peer_received = true;
  lifecycle_.close_handshake().requested = true;
  maybe_send_close(now);
}

void Session::queue_control_message(const wire::Frame& frame) {
  if (!ControlChannel::queue(streams_.control(), frame)) defer_failure(Reason::kLackOfResources);
}

// ---- Acknowledgements and bookkeeping ----------------------------------------------------------

void Session::drop_stream(StreamId id) {
  Stream* stream = streams_.find(id);
  if (stream == nullptr) return;
  const bool acknowledgement_pending = acks_.forget(*stream);
  const std::uint64_t acknowledgement = stream->receive.acknowledgement();
  streams_.drop(id);
  if (acknowledgement_pending) add_final_ack(id, acknowledgement);
  sync_budget();
}

void Session::add_final_ack(StreamId id, std::uint64_t acknowledgement) {
  // Honest peers cause at most one entry per stream they had open.
  if (!acks_.add_final(id, acknowledgement)) defer_failure(Reason::kProtocolError);
}

void Session::write_ack_frame(std::vector<std::byte>& out) {
  acks_.write(out, streams_.receive_buffered(), role_ == Role::kClient || !holding_data());
}

void Session::grant_withheld_credit(Time now) {
  streams_.for_each([&](Stream& stream) {
    if (stream.id != kControlStream && !stream.receive.fin_received() &&
        stream.receive.consumed + config_.stream_receive_window >
            stream.receive.advertised_window_limit) {
      acks_.request(stream, AckManager::Urgency::kImmediate, now);
    }
  });
}

void Session::sync_budget() {
  // While open: the replay buffers and the unread bytes; once closed only unread bytes remain
  // (after a graceful close they stay readable).
  const std::uint64_t held =
      streams_.receive_buffered() + (lifecycle_.closed() ? 0 : streams_.unacknowledged_bytes());
  if (budget_ != nullptr) budget_->update(budget_held_, held);
  budget_held_ = held;
}

void Session::announce_writable(std::uint64_t unacknowledged_before) {
  if (write_blocked_ && streams_.unacknowledged_bytes() < unacknowledged_before) {
    write_blocked_ = false;
    emit(events::Writable{});
  }
}

void Session::announce_budget_room() {
  const TimerRefresh refresh(*this);
  if (!lifecycle_.open() || !write_blocked_) return;
  write_blocked_ = false;
  emit(events::Writable{});
}

void Session::check_stream_bookkeeping() const {
  if (lifecycle_.closed()) return;
  streams_.check(acks_.pending(), &SendScheduler::sendable);
}

// ---- The application's stream API -------------------------------------------------------------

Expected<StreamId, StreamError> Session::open_stream(std::uint8_t priority, Time) {
  if (!lifecycle_.open() || lifecycle_.close_handshake().requested)
    return make_unexpected(StreamError::kNotOpen);
  if (streams_.local_count() >= config_.max_streams)
    return make_unexpected(StreamError::kTooManyStreams);
  if (role_ == Role::kServer && reauthentication_.lifetime_passed && !config_.lifetime_audit_only)
    return make_unexpected(StreamError::kLifetimePassed);
  const StreamId id = streams_.take_local_id();
  streams_.create(id, priority);
  return id;
}

Expected<std::size_t, StreamError> Session::write(StreamId id, std::span<const std::byte> bytes,
                                                  Time) {
  if (!lifecycle_.open() || lifecycle_.close_handshake().requested)
    return make_unexpected(StreamError::kNotOpen);
  Stream* stream = id == kControlStream ? nullptr : streams_.find(id);
  if (stream == nullptr) return make_unexpected(StreamError::kUnknownStream);
  if (stream->send.fin_written) return make_unexpected(StreamError::kStreamFinished);
  if (bytes.empty()) return std::size_t{0};
  // The last part of the window is kept for streams with little outstanding: a bulk transfer that
  // refills the window as fast as acknowledgements free it must not starve a new stream's request
  // or an interactive stream's keystroke (they would otherwise lose every race for room).
  const std::size_t window = config_.max_unacknowledged_bytes;
  const std::size_t reserve = window / kInteractiveReserveDivisor;
  const std::size_t limit =
      stream->send.unacknowledged_bytes() >= reserve ? window - reserve : window;
  std::size_t room = limit - std::min<std::size_t>(streams_.unacknowledged_bytes(), limit);
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
  streams_.add_written(count);
  stats_.bytes_written += count;
  sync_budget();
  streams_.mark_send_candidate(*stream);
  return count;
}

Expected<void, StreamError> Session::finish(StreamId id, Time) {
  if (!lifecycle_.open()) return make_unexpected(StreamError::kNotOpen);
  Stream* stream = id == kControlStream ? nullptr : streams_.find(id);
  if (stream == nullptr) return make_unexpected(StreamError::kUnknownStream);
  if (stream->send.fin_written) return make_unexpected(StreamError::kStreamFinished);
  stream->send.fin_written = true;
  streams_.mark_send_candidate(*stream);
  return {};
}

Expected<ReadResult, StreamError> Session::read(StreamId id, std::span<std::byte> out, Time now) {
  const TimerRefresh refresh(*this, TimerRefresh::Scope::kAcknowledgementsOnly);
  Stream* stream = id == kControlStream ? nullptr : streams_.find(id);
  if (stream == nullptr) return make_unexpected(StreamError::kUnknownStream);
  const std::size_t count = stream->receive.buffer.read(out);
  const bool finished = note_consumed(*stream, count, now);
  if (StreamSet::releasable(*stream)) drop_stream(id);
  apply_deferred_failure();
  return ReadResult{count, finished};
}

std::span<const std::byte> Session::peek(StreamId id) const {
  const Stream* stream = id == kControlStream ? nullptr : streams_.find(id);
  if (stream == nullptr) return {};
  return stream->receive.buffer.view(0, stream->receive.buffer.size());
}

void Session::consume(StreamId id, std::size_t count, Time now) {
  const TimerRefresh refresh(*this, TimerRefresh::Scope::kAcknowledgementsOnly);
  Stream* stream = id == kControlStream ? nullptr : streams_.find(id);
  if (stream == nullptr) return;
  count = std::min(count, stream->receive.buffer.size());
  stream->receive.buffer.consume(count);
  note_consumed(*stream, count, now);
  if (StreamSet::releasable(*stream)) drop_stream(id);
  apply_deferred_failure();
}

bool Session::note_consumed(Stream& stream, std::size_t count, Time now) {
  ReceiveHalf& receive = stream.receive;
  receive.consumed += count;
  streams_.remove_buffered(count);
  sync_budget();
  if (receive.buffer.empty()) stream.readable_reported = false;
  // Advertise more credit once a quarter of the window has been read.
  if (receive.consumed + config_.stream_receive_window >=
      receive.advertised_window_limit + config_.stream_receive_window / 4) {
    acks_.request(stream, AckManager::Urgency::kImmediate, now);
  }
  if (receive.fin_received() && receive.consumed == *receive.final_size) {
    receive.fin_delivered = true;
    return true;
  }
  return false;
}

void Session::reset_stream(StreamId id, std::uint64_t error_code, Time) {
  const TimerRefresh refresh(*this, TimerRefresh::Scope::kAcknowledgementsOnly);
  abandon_stream(id, error_code);
  apply_deferred_failure();
}

void Session::abandon_stream(StreamId id, std::uint64_t error_code) {
  if (!lifecycle_.open() || id == kControlStream || streams_.find(id) == nullptr) return;
  queue_control_message(wire::ResetStream{id, error_code});
  drop_stream(id);
}

}  // namespace tether::session
