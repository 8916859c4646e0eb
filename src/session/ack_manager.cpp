#include "session/ack_manager.hpp"

#include <algorithm>

#include "wire/codec.hpp"

namespace tether::session {

void AckManager::request(Stream& stream, Urgency urgency, Time now) {
  if (urgency == Urgency::kImmediate) {
    now_ = true;
  } else if (!deadline_) {
    deadline_ = now + ack_delay_;
  }
  if (stream.acknowledgement_pending) return;
  stream.acknowledgement_pending = true;
  pending_.push_back(&stream);
}

bool AckManager::add_final(StreamId id, std::uint64_t acknowledgement) {
  auto [it, inserted] = final_.try_emplace(id, acknowledgement);
  if (!inserted) {
    // One entry per stream, whatever the peer repeats: the furthest position says it all.
    it->second = std::max(it->second, acknowledgement);
    return true;
  }
  return final_.size() <= max_final_;
}

bool AckManager::forget(Stream& stream) {
  if (!stream.acknowledgement_pending) return false;
  std::erase(pending_, &stream);
  stream.acknowledgement_pending = false;
  if (pending_.empty()) {
    // Nothing left to acknowledge: the next request starts its own delay.
    deadline_.reset();
    now_ = false;
  }
  return true;
}

bool AckManager::due(Time now) const {
  if (!final_.empty()) return true;
  if (pending_.empty()) return false;
  return now_ || (deadline_ && now >= *deadline_);
}

void AckManager::write(std::vector<std::byte>& out, std::uint64_t receive_buffered,
                       bool grant_credit) {
  std::vector<wire::AckEntry> entries = std::move(scratch_);
  entries.clear();
  for (const auto& [id, value] : final_) entries.push_back(wire::AckEntry{id, value, 0});
  final_.clear();
  if (!pending_.empty()) {
    std::sort(pending_.begin(), pending_.end(),
              [](const Stream* left, const Stream* right) { return left->id < right->id; });
    for (Stream* stream : pending_) {
      stream->acknowledgement_pending = false;
      ReceiveHalf& receive = stream->receive;
      // Past half the session's bound, a stream whose application has not read what it has gets
      // no more credit; streams that are read promptly keep theirs (their bytes do not stay). The
      // withheld stream gets credit again when its reader catches up (the session asks for an
      // acknowledgement then).
      const bool withhold = stream->id != kControlStream &&
                            (!grant_credit || (!receive.buffer.empty() &&
                                               receive_buffered >= max_receive_buffered_ / 2));
      const std::uint64_t window_limit = stream->id == kControlStream ? wire::kMaxVarint
                                         : withhold ? receive.advertised_window_limit
                                                    : std::max(receive.advertised_window_limit,
                                                               receive.consumed + receive_window_);
      receive.advertised_window_limit = window_limit;
      entries.push_back(wire::AckEntry{stream->id, receive.acknowledgement(), window_limit});
    }
    pending_.clear();
  }
  deadline_.reset();
  now_ = false;
  bytes_since_ack_ = 0;
  constexpr std::size_t kEntriesPerFrame = 1024;
  for (std::size_t start = 0; start < entries.size(); start += kEntriesPerFrame) {
    const std::size_t count = std::min(entries.size() - start, kEntriesPerFrame);
    wire::encode_ack_frame(std::span(entries).subspan(start, count), out);
  }
  // Keep the entries' capacity for the next call.
  entries.clear();
  scratch_ = std::move(entries);
}

void AckManager::clear() {
  for (Stream* stream : pending_) stream->acknowledgement_pending = false;
  pending_.clear();
  final_.clear();
  deadline_.reset();
  now_ = false;
  bytes_since_ack_ = 0;
}

}  // namespace tether::session
