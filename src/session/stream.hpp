// Stream is the state of one bidirectional byte stream of a session: its replay buffer, its receive
// buffer, and the offsets that make delivery exactly-once across reconnects.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>

#include "session/byte_queue.hpp"
#include "session/types.hpp"
#include "wire/byte_writer.hpp"

namespace tether::session {

// Acknowledgement space: the byte offsets 0..size-1 of a stream, plus one more position for its FIN
// (as in TCP's sequence space). An acknowledgement of size+1 therefore says "all data and the FIN".
// An acknowledgement of kClosedStreamAck says "I have no such stream any more: consider it done".
inline constexpr std::uint64_t kClosedStreamAck = wire::kMaxVarint;

// The sending half. Invariant: buffer holds exactly the bytes [acknowledged_bytes(), written).
struct SendHalf {
  ByteQueue buffer;
  std::uint64_t written = 0;       // bytes the application wrote
  std::uint64_t acknowledged = 0;  // in acknowledgement space
  std::uint64_t next_to_send = 0;  // byte offset of the next byte to put on the data path
  std::uint64_t highest_sent =
      0;  // bytes below this were sent at least once: sending them again is replay
  std::uint64_t replay_end =
      0;  // highest_sent at the last rewind: [acknowledged, replay_end) is re-sent
  std::uint64_t peer_window_limit = 0;  // may send bytes below this offset
  bool fin_written = false;
  bool fin_sent = false;   // on the current data path
  bool open_sent = false;  // an offset-0 frame went out on the current data path

  [[nodiscard]] std::uint64_t acknowledged_bytes() const { return std::min(acknowledged, written); }
  [[nodiscard]] std::uint64_t unacknowledged_bytes() const {
    return written - acknowledged_bytes();
  }
  [[nodiscard]] bool finished() const { return fin_written && acknowledged == written + 1; }
  // Something went out on the data path (data, or the FIN) that the peer has not acknowledged.
  [[nodiscard]] bool outstanding() const {
    return next_to_send > acknowledged_bytes() || (fin_sent && acknowledged <= written);
  }
  // Rewind to what the peer acknowledged, for sending on a new data path.
  void rewind() {
    next_to_send = acknowledged_bytes();
    replay_end = highest_sent;
    fin_sent = fin_written && acknowledged == written + 1;
    open_sent = acknowledged > 0;
  }
};

// The receiving half. Invariant: buffer holds exactly the bytes [consumed, received).
struct ReceiveHalf {
  ByteQueue buffer;
  std::uint64_t received = 0;                 // every byte below this offset arrived
  std::uint64_t consumed = 0;                 // the application read every byte below this offset
  std::uint64_t advertised_window_limit = 0;  // the window limit last sent to the peer
  std::optional<std::uint64_t> final_size;    // known once the FIN arrived
  bool fin_reported = false;                  // StreamFinished was emitted
  bool fin_delivered = false;                 // the application read to the end

  [[nodiscard]] bool fin_received() const { return final_size && received == *final_size; }
  [[nodiscard]] std::uint64_t acknowledgement() const {
    return received + (fin_received() ? 1 : 0);
  }
};

struct Stream {
  StreamId id = 0;
  std::uint8_t priority = 0;  // 0 is most urgent
  SendHalf send;
  ReceiveHalf receive;
  // An Ack entry for this stream should go out. The session lists every stream with this set, once.
  bool acknowledgement_pending = false;
  // The session lists this stream as one that may have something to send; every stream that has
  // is listed (the sender drops listed streams that turn out to have nothing).
  bool send_candidate = false;
  bool readable_reported = false;  // StreamReadable emitted and not yet drained

  [[nodiscard]] bool finished() const { return send.finished() && receive.fin_delivered; }
};

// The set of the peer's stream ids that were opened and have since ended, stored as a low watermark
// plus the ended ids above it. Peer ids are spaced by two (one parity per role), so we store id
// / 2. Its size is bounded because the session refuses peer ids too far above the watermark.
class ClosedStreamSet {
 public:
  [[nodiscard]] bool contains(StreamId id) const {
    const std::uint64_t index = id / 2;
    return index < watermark_ || above_.contains(index);
  }
  void insert(StreamId id) {
    const std::uint64_t index = id / 2;
    if (index < watermark_) return;
    above_.insert(index);
    while (!above_.empty() && *above_.begin() == watermark_) {
      above_.erase(above_.begin());
      ++watermark_;
    }
  }
  // Peer ids at or above this are too far ahead to accept.
  [[nodiscard]] std::uint64_t horizon(std::uint64_t spread) const {
    return (watermark_ + spread) * 2;
  }

 private:
  std::uint64_t watermark_ = 0;
  std::set<std::uint64_t> above_;
};

}  // namespace tether::session
