#include "session/stream_set.hpp"

#include <algorithm>
#include <cassert>

#include "session/session.hpp"

namespace tether::session {

StreamSet::StreamSet(Role role, SessionStats& stats)
    : role_(role), stats_(stats), next_local_(role == Role::kClient ? 1 : 2) {
  create(kControlStream, 0);
}

Stream& StreamSet::create(StreamId id, std::uint8_t priority) {
  auto [it, inserted] = streams_.try_emplace(id);
  assert(inserted);
  Stream& stream = it->second;
  stream.id = id;
  stream.priority = priority;
  const bool is_control = id == kControlStream;
  stream.send.buffer = ByteQueue(&block_pool_);
  stream.receive.buffer = ByteQueue(&block_pool_);
  stream.send.peer_window_limit = is_control ? wire::kMaxVarint : kInitialStreamWindow;
  stream.receive.advertised_window_limit = is_control ? wire::kMaxVarint : kInitialStreamWindow;
  if (is_control) {
    stream.send.open_sent = true;
  } else {
    ++(is_local(id) ? local_count_ : peer_count_);
    mark_send_candidate(stream);  // its opening frame
  }
  return stream;
}

Stream* StreamSet::find(StreamId id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

const Stream* StreamSet::find(StreamId id) const {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : &it->second;
}

bool StreamSet::is_local(StreamId id) const {
  if (id == kControlStream) return false;
  return (id % 2 == 1) == (role_ == Role::kClient);
}

void StreamSet::drop(StreamId id) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  Stream& stream = it->second;
  note_outstanding(stream.send.outstanding(), false);
  if (id != kControlStream) --(is_local(id) ? local_count_ : peer_count_);
  if (stream.send_candidate) std::erase(send_candidates_, &stream);
  // Bytes of a reset stream that the peer never acknowledged are abandoned, not lost: counted
  // apart.
  unacknowledged_bytes_ -= stream.send.unacknowledged_bytes();
  stats_.bytes_abandoned += stream.send.unacknowledged_bytes();
  remove_buffered(stream.receive.buffer.size());
  if (!is_local(id)) closed_peer_.insert(id);
  streams_.erase(it);
}

void StreamSet::mark_send_candidate(Stream& stream) {
  if (stream.send_candidate || stream.id == kControlStream) return;
  stream.send_candidate = true;
  send_candidates_.push_back(&stream);
}

void StreamSet::note_outstanding(bool before, bool after) {
  if (before == after) return;
  if (after) {
    ++outstanding_;
  } else {
    assert(outstanding_ > 0);
    --outstanding_;
  }
}

bool StreamSet::acknowledge(Stream& stream, std::uint64_t acknowledgement, bool& progressed) {
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
  }
  if (send.next_to_send < after) send.next_to_send = after;
  if (send.acknowledged == send.written + 1) send.fin_sent = true;
  if (send.acknowledged > 0) send.open_sent = true;
  note_outstanding(was_outstanding, send.outstanding());
  if (send.finished()) release_candidates_.push_back(stream.id);
  progressed = true;
  return true;
}

bool StreamSet::peer_positions_possible(const std::vector<wire::StreamPosition>& positions) const {
  return std::all_of(positions.begin(), positions.end(), [&](const wire::StreamPosition& position) {
    const Stream* stream = find(position.stream_id);
    return stream == nullptr ||
           position.offset <= stream->send.written + (stream->send.fin_written ? 1 : 0);
  });
}

bool StreamSet::apply_peer_positions(const std::vector<wire::StreamPosition>& positions) {
  std::vector<StreamId> listed;
  listed.reserve(positions.size());
  for (const auto& position : positions) {
    Stream* stream = find(position.stream_id);
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
      (void)acknowledge(stream, stream.send.written + 1, progressed);
    }
  }
  return true;
}

std::vector<wire::StreamPosition> StreamSet::receive_positions() const {
  std::vector<wire::StreamPosition> positions;
  positions.reserve(streams_.size());
  for (const auto& [id, stream] : streams_)
    positions.push_back({id, stream.receive.acknowledgement()});
  return positions;
}

std::uint64_t StreamSet::planned_replay() const {
  std::uint64_t total = 0;
  for (const auto& [id, stream] : streams_) {
    if (id == kControlStream) continue;
    const std::uint64_t acknowledged = stream.send.acknowledged_bytes();
    if (stream.send.replay_end > acknowledged) total += stream.send.replay_end - acknowledged;
  }
  return total;
}

void StreamSet::close(bool keep_readable) {
  if (keep_readable) {
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
  release_candidates_.clear();
  outstanding_ = 0;
  local_count_ = 0;
  peer_count_ = 0;
  receive_buffered_ = 0;
  for (const auto& [id, stream] : streams_) {
    if (id != kControlStream) ++(is_local(id) ? local_count_ : peer_count_);
    receive_buffered_ += stream.receive.buffer.size();
  }
  block_pool_.trim();
}

std::vector<StreamId> StreamSet::ids() const {
  std::vector<StreamId> result;
  for (const auto& [id, stream] : streams_) {
    if (id != kControlStream) result.push_back(id);
  }
  return result;
}

void StreamSet::check(const std::vector<Stream*>& acknowledgement_pending,
                      bool (*sendable)(const Stream&)) const {
#ifndef NDEBUG
  std::size_t outstanding = 0;
  std::size_t local = 0;
  std::size_t peer = 0;
  std::size_t pending = 0;
  std::size_t candidates = 0;
  for (const auto& [id, stream] : streams_) {
    if (stream.send.outstanding()) ++outstanding;
    if (id != kControlStream) ++(is_local(id) ? local : peer);
    if (stream.acknowledgement_pending) ++pending;
    if (stream.send_candidate) ++candidates;
    assert(id == kControlStream || !sendable(stream) || stream.send_candidate);
  }
  assert(outstanding == outstanding_);
  assert(local == local_count_);
  assert(peer == peer_count_);
  // Each list holds distinct streams, all flagged, as many as are flagged: exactly the flagged
  // ones.
  auto lists_exactly = [](std::vector<Stream*> listed, std::size_t flagged, auto flag) {
    std::sort(listed.begin(), listed.end());
    return std::adjacent_find(listed.begin(), listed.end()) == listed.end() &&
           listed.size() == flagged && std::all_of(listed.begin(), listed.end(), flag);
  };
  assert(lists_exactly(send_candidates_, candidates,
                       [](const Stream* stream) { return stream->send_candidate; }));
  assert(lists_exactly(acknowledgement_pending, pending,
                       [](const Stream* stream) { return stream->acknowledgement_pending; }));
  (void)outstanding;
  (void)local;
  (void)peer;
  (void)pending;
  (void)candidates;
  (void)lists_exactly;
#else
  (void)acknowledgement_pending;
  (void)sendable;
#endif
}

}  // namespace tether::session
