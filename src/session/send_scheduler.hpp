// SendScheduler chooses which stream data goes out next and writes it as StreamData frames: the
// control stream first, then by priority, round-robin by id within one priority.
#pragma once

#include <cstddef>
#include <vector>

#include "session/stream.hpp"
#include "session/stream_set.hpp"

namespace tether::session {

struct SessionStats;

class SendScheduler {
 public:
  explicit SendScheduler(std::size_t max_frame_payload) : max_frame_payload_(max_frame_payload) {}

  // Whether `stream` has anything to send now (data within the peer's window, its FIN, or its
  // opening frame).
  [[nodiscard]] static bool sendable(const Stream& stream);
  // Whether write() would write anything (with `control_only`, on the control stream).
  [[nodiscard]] static bool has_frames(const StreamSet& streams, bool control_only = false);

  enum class Outcome : std::uint8_t { kOk, kInvariantFailed };
  // Appends frames to `out` up to about `budget` bytes; `written` gets the bytes appended. A
  // replay buffer found inconsistent (a bug) stops it with kInvariantFailed: the session ends.
  // With `control_only` only the control stream sends (data held during a re-authentication).
  Outcome write(StreamSet& streams, std::vector<std::byte>& out, std::size_t budget,
                SessionStats& stats, std::size_t& written, bool control_only = false);

 private:
  // One frame of `stream`; false when it wrote none (or the invariant failed: see `outcome`).
  bool write_one(Stream& stream, StreamSet& streams, std::vector<std::byte>& out,
                 std::size_t budget, SessionStats& stats, Outcome& outcome);

  std::size_t max_frame_payload_;
  StreamId last_served_ = 0;  // round-robin position within a priority
};

}  // namespace tether::session
