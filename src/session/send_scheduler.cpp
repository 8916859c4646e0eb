#include "session/send_scheduler.hpp"

#include <algorithm>

#include "session/session.hpp"
#include "wire/codec.hpp"

namespace tether::session {

bool SendScheduler::sendable(const Stream& stream) {
  const SendHalf& send = stream.send;
  const std::uint64_t limit = std::min(send.written, send.peer_window_limit);
  if (send.next_to_send < limit) return true;
  if (send.fin_written && !send.fin_sent && send.next_to_send == send.written) return true;
  return stream.id != kControlStream && !send.open_sent && send.next_to_send == 0;
}

bool SendScheduler::has_frames(const StreamSet& streams, bool control_only) {
  const Stream* control = streams.find(kControlStream);
  if (control != nullptr && sendable(*control)) return true;
  if (control_only) return false;
  const auto& candidates = streams.send_candidates();
  return std::any_of(candidates.begin(), candidates.end(),
                     [](const Stream* stream) { return sendable(*stream); });
}

SendScheduler::Outcome SendScheduler::write(StreamSet& streams, std::vector<std::byte>& out,
                                            std::size_t budget, SessionStats& stats,
                                            std::size_t& written, bool control_only) {
  written = 0;
  Outcome outcome = Outcome::kOk;
  // The control stream goes first. Only sending changes what a stream has to send while this runs,
  // so once a stream has nothing left it stays so until the call returns.
  if (Stream* control = streams.find(kControlStream)) {
    while (written < budget && sendable(*control)) {
      const std::size_t before = out.size();
      if (!write_one(*control, streams, out, budget - written, stats, outcome)) return outcome;
      written += out.size() - before;
    }
  }
  std::vector<Stream*>& candidates = streams.send_candidates();
  if (control_only || written >= budget || candidates.empty()) return outcome;

  // Then the other streams: most urgent priority first; round-robin by id within it, starting after
  // the last one served. Candidates with nothing to send leave the list; the rest are ordered by
  // (priority, id), and a stream that runs dry is set to nullptr where it stands.
  std::erase_if(candidates, [&](Stream* stream) {
    if (sendable(*stream)) return false;
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
    while (position < group_end && candidates[position]->id <= last_served_) ++position;
    if (position == group_end) position = group_begin;
    while (written < budget) {
      Stream& chosen = *candidates[position];
      const std::size_t before = out.size();
      if (!write_one(chosen, streams, out, budget - written, stats, outcome)) {
        stopped = true;
        break;
      }
      written += out.size() - before;
      last_served_ = chosen.id;
      if (!sendable(chosen)) {
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
  return outcome;
}

bool SendScheduler::write_one(Stream& stream, StreamSet& streams, std::vector<std::byte>& out,
                              std::size_t budget, SessionStats& stats, Outcome& outcome) {
  SendHalf& send = stream.send;
  // The replay buffer holds exactly [acknowledged_bytes(), written): an offset outside it would
  // read memory that is not ours. Checked in every build; a broken invariant ends the session.
  if (send.next_to_send < send.acknowledged_bytes() || send.next_to_send > send.written ||
      send.buffer.size() != send.written - send.acknowledged_bytes()) {
    outcome = Outcome::kInvariantFailed;
    return false;
  }
  const std::uint64_t limit = std::min(send.written, send.peer_window_limit);
  const std::uint64_t available = limit > send.next_to_send ? limit - send.next_to_send : 0;
  std::size_t count =
      static_cast<std::size_t>(std::min<std::uint64_t>(available, max_frame_payload_));
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
    stats.bytes_sent += count;
    if (send.next_to_send < send.highest_sent) {
      stats.bytes_replayed +=
          std::min<std::uint64_t>(send.highest_sent, send.next_to_send + count) - send.next_to_send;
    }
  }
  send.next_to_send += count;
  send.highest_sent = std::max(send.highest_sent, send.next_to_send);
  if (frame.fin) send.fin_sent = true;
  if (frame.open) send.open_sent = true;
  streams.note_outstanding(was_outstanding, send.outstanding());
  return true;
}

}  // namespace tether::session
