// AckManager decides when this side acknowledges what it received: it keeps the streams with an
// acknowledgement pending, the final acknowledgements of released streams, and the delayed-ack
// deadline, and writes Ack frames.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "session/stream.hpp"
#include "session/types.hpp"
#include "wire/frame.hpp"

namespace tether::session {

class AckManager {
 public:
  enum class Urgency : std::uint8_t { kDelayed, kImmediate };

  explicit AckManager(const SessionConfig& config)
      : ack_delay_(config.ack_delay),
        eager_bytes_(config.ack_eager_bytes),
        receive_window_(config.stream_receive_window),
        max_receive_buffered_(config.max_receive_buffered_bytes),
        max_final_(2 * config.max_streams + 16) {}

  // Sets stream.acknowledgement_pending and lists the stream (once). An immediate request makes
  // the pending acknowledgements due now; otherwise they are due `ack_delay` after the first one.
  void request(Stream& stream, Urgency urgency, Time now);
  // Counts received stream bytes; true once `ack_eager_bytes` arrived since the last Ack.
  [[nodiscard]] bool note_received(std::size_t bytes) {
    bytes_since_ack_ += bytes;
    return bytes_since_ack_ >= eager_bytes_;
  }
  // An acknowledgement for a stream that is gone (or unknown: kClosedStreamAck), one per stream,
  // always due. False when far more are queued than an honest peer can cause (it sends data on
  // streams long gone to make us queue answers).
  [[nodiscard]] bool add_final(StreamId id, std::uint64_t acknowledgement);
  // Unlists a stream that is about to be dropped; returns whether it had one pending.
  bool forget(Stream& stream);

  // Whether acknowledgements must go out now even without other frames to carry them.
  [[nodiscard]] bool due(Time now) const;
  // Whether something is due without waiting for the deadline (final acks, or an immediate
  // request, or a deadline that on_deadline() found passed).
  [[nodiscard]] bool due_now() const { return !final_.empty() || (!pending_.empty() && now_); }
  // The delayed-ack deadline while one matters.
  [[nodiscard]] std::optional<Time> deadline() const {
    return !pending_.empty() && !now_ ? deadline_ : std::nullopt;
  }
  void on_deadline() { now_ = true; }

  // Writes Ack frames for everything pending (released streams first, then pending streams in id
  // order) and resets the delay. `receive_buffered` is the session's unread bytes: past half its
  // bound, a stream whose reader is behind gets no more window credit. Without `grant_credit` no
  // stream but the control stream gets more credit (a session past its lifetime, in its grace).
  void write(std::vector<std::byte>& out, std::uint64_t receive_buffered, bool grant_credit = true);
  // Drops everything (the session ended).
  void clear();

  [[nodiscard]] const std::vector<Stream*>& pending() const { return pending_; }

 private:
  Duration ack_delay_;
  std::size_t eager_bytes_;
  std::size_t receive_window_;
  std::size_t max_receive_buffered_;
  std::size_t max_final_;

  std::vector<Stream*> pending_;             // exactly the streams with acknowledgement_pending
  std::map<StreamId, std::uint64_t> final_;  // released streams: always due
  std::vector<wire::AckEntry> scratch_;      // write()'s reused entries
  std::optional<Time> deadline_;
  bool now_ = false;
  std::uint64_t bytes_since_ack_ = 0;
};

}  // namespace tether::session
