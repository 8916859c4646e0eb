// StreamSet is a session's streams and their bookkeeping: the stream map, the ids of the peer's
// ended streams, the per-side counts, the streams that may have something to send, and the
// session-wide byte counts (unacknowledged written bytes, unread received bytes).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "session/byte_queue.hpp"
#include "session/stream.hpp"
#include "session/types.hpp"
#include "wire/frame.hpp"

namespace tether::session {

struct SessionStats;

// Both sides assume this window for a new stream until the receiver advertises its own.
inline constexpr std::uint64_t kInitialStreamWindow = 256u << 10;

class StreamSet {
 public:
  using Map = std::map<StreamId, Stream>;

  // `stats` receives the acknowledged and abandoned byte counts; it outlives the set.
  StreamSet(Role role, SessionStats& stats);

  Stream& create(StreamId id, std::uint8_t priority);
  [[nodiscard]] Stream* find(StreamId id);
  [[nodiscard]] const Stream* find(StreamId id) const;
  [[nodiscard]] Stream& control() { return streams_.at(kControlStream); }
  [[nodiscard]] const Stream& control() const { return streams_.at(kControlStream); }
  [[nodiscard]] bool is_local(StreamId id) const;
  // The next id this side opens (and reserves it).
  StreamId take_local_id() {
    const StreamId id = next_local_;
    next_local_ += 2;
    return id;
  }
  [[nodiscard]] StreamId next_local_id() const { return next_local_; }
  // Removes a stream: its unacknowledged bytes count as abandoned, its unread bytes leave the
  // count; a peer stream's id joins the ended set. The caller unlisted it from AckManager first.
  void drop(StreamId id);

  // Lists `stream` as one that may have something to send (once).
  void mark_send_candidate(Stream& stream);
  [[nodiscard]] std::vector<Stream*>& send_candidates() { return send_candidates_; }
  [[nodiscard]] const std::vector<Stream*>& send_candidates() const { return send_candidates_; }
  // Keeps the count of outstanding streams exact across a change of a sending half.
  void note_outstanding(bool before, bool after);
  [[nodiscard]] bool any_outstanding() const { return outstanding_ > 0; }

  // Advances what the peer acknowledged on `stream` (acknowledgement space); false when the value
  // is impossible. Sets `progressed` when it moved.
  [[nodiscard]] bool acknowledge(Stream& stream, std::uint64_t acknowledgement, bool& progressed);
  // Applies the peer's positions from Resume or ResumeAccept; false when one is impossible. A
  // stream the peer had acknowledged before and no longer lists counts as fully acknowledged.
  [[nodiscard]] bool apply_peer_positions(const std::vector<wire::StreamPosition>& positions);
  // Whether the peer's positions are all possible, without applying them.
  [[nodiscard]] bool peer_positions_possible(
      const std::vector<wire::StreamPosition>& positions) const;
  [[nodiscard]] std::vector<wire::StreamPosition> receive_positions() const;
  // A stream that is done both ways (and is not the control stream) is released.
  [[nodiscard]] static bool releasable(const Stream& stream) {
    return stream.id != kControlStream && stream.finished();
  }
  // Calls `release(id)` for each stream whose sending half finished since the last call and that
  // is releasable, in id order (the caller drops it: see Session::drop_stream).
  template <typename Release>
  void release_finished(Release&& release) {
    if (release_candidates_.empty()) return;
    std::vector<StreamId> candidates = std::move(release_candidates_);
    release_candidates_.clear();
    std::sort(candidates.begin(), candidates.end());
    candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
    for (const StreamId id : candidates) {
      if (const Stream* stream = find(id); stream != nullptr && releasable(*stream)) release(id);
    }
  }

  // Calls `each(stream)` for every open stream, the control stream included.
  template <typename Each>
  void for_each(Each&& each) {
    for (auto& [id, stream] : streams_) each(stream);
  }

  // Every stream sends again from what the peer acknowledged (a new data path); `each` is called
  // for every stream after its rewind.
  template <typename Each>
  void rewind_all(Each&& each) {
    for (auto& [id, stream] : streams_) {
      const bool was_outstanding = stream.send.outstanding();
      stream.send.rewind();
      note_outstanding(was_outstanding, stream.send.outstanding());
      mark_send_candidate(stream);
      each(stream);
    }
  }
  // Stream bytes that the current rewind re-sends.
  [[nodiscard]] std::uint64_t planned_replay() const;

  // The session ended: after a graceful close the streams with unread bytes stay readable;
  // otherwise everything goes.
  void close(bool keep_readable);
  void trim_pool() { block_pool_.trim(); }

  // Session-wide counts.
  [[nodiscard]] std::uint64_t unacknowledged_bytes() const { return unacknowledged_bytes_; }
  void add_written(std::size_t count) { unacknowledged_bytes_ += count; }
  [[nodiscard]] std::uint64_t receive_buffered() const { return receive_buffered_; }
  void add_buffered(std::size_t count) { receive_buffered_ += count; }
  void remove_buffered(std::size_t count) {
    receive_buffered_ -= std::min<std::uint64_t>(receive_buffered_, count);
  }
  [[nodiscard]] std::size_t local_count() const { return local_count_; }
  [[nodiscard]] std::size_t peer_count() const { return peer_count_; }
  [[nodiscard]] const ClosedStreamSet& closed_peer_streams() const { return closed_peer_; }
  void note_peer_stream_ended(StreamId id) { closed_peer_.insert(id); }
  [[nodiscard]] std::size_t size() const { return streams_.size(); }
  [[nodiscard]] std::size_t open_count() const {
    return streams_.size() - (streams_.contains(kControlStream) ? 1 : 0);
  }
  [[nodiscard]] std::vector<StreamId> ids() const;
  [[nodiscard]] const Map& all() const { return streams_; }

  // Checks (in builds with assertions) that the lists and counters match the map;
  // `acknowledgement_pending` is AckManager's list.
  void check(const std::vector<Stream*>& acknowledgement_pending,
             bool (*sendable)(const Stream&)) const;

 private:
  static constexpr std::size_t kMaxSpareBlocks = 64;

  Role role_;
  SessionStats& stats_;
  // Spare replay and receive blocks shared by the streams; declared before streams_ so that it
  // outlives every queue using it. Trimmed once per heartbeat interval on the data path, on
  // suspension and at the end, so an idle session holds no spare block for long.
  BlockPool block_pool_{kMaxSpareBlocks};
  Map streams_;
  // Per-call work on the send path is proportional to the streams that need it: every non-control
  // stream that can send is listed here (with send_candidate set; some may have nothing to send).
  std::vector<Stream*> send_candidates_;
  // Streams whose sending half finished (fully acknowledged) since the last release_finished();
  // ids, as a listed stream may be dropped in between.
  std::vector<StreamId> release_candidates_;
  std::size_t outstanding_ = 0;  // streams whose SendHalf::outstanding() holds
  std::size_t local_count_ = 0;  // streams opened by this side
  std::size_t peer_count_ = 0;   // streams opened by the peer (the control stream is neither)
  ClosedStreamSet closed_peer_;
  StreamId next_local_;
  std::uint64_t unacknowledged_bytes_ = 0;  // written - acknowledged - abandoned
  std::uint64_t receive_buffered_ = 0;      // received, not yet read
};

}  // namespace tether::session
