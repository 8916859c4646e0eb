// ByteQueue is a FIFO of bytes stored in fixed-size blocks: appends copy once, reads are views.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstring>
#include <deque>
#include <memory>
#include <span>

namespace tether::session {

// Used for both the replay buffer of a sending stream (bytes written and not yet acknowledged) and
// the receive buffer of a stream (bytes received and not yet read). Memory is held in 16 KiB blocks
// that are freed as soon as they are consumed, so an idle stream holds no block at all.
class ByteQueue {
 public:
  static constexpr std::size_t kBlockSize = 16u << 10;

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  void append(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      const std::size_t tail = head_ + size_;
      const std::size_t within = tail % kBlockSize;
      if (tail / kBlockSize >= blocks_.size())
        blocks_.push_back(std::make_unique<std::byte[]>(kBlockSize));
      const std::size_t count = std::min(bytes.size(), kBlockSize - within);
      std::memcpy(blocks_[tail / kBlockSize].get() + within, bytes.data(), count);
      size_ += count;
      bytes = bytes.subspan(count);
    }
  }

  // A contiguous view of at most `max` bytes starting `offset` bytes after the front. It may be
  // shorter than requested when it reaches a block boundary; it is valid until the next append or
  // consume.
  [[nodiscard]] std::span<const std::byte> view(std::size_t offset, std::size_t max) const {
    assert(offset <= size_);
    const std::size_t position = head_ + offset;
    const std::size_t within = position % kBlockSize;
    const std::size_t count = std::min({max, size_ - offset, kBlockSize - within});
    if (count == 0) return {};
    return {blocks_[position / kBlockSize].get() + within, count};
  }

  // Drops `count` bytes from the front. Precondition: count <= size().
  void consume(std::size_t count) {
    assert(count <= size_);
    head_ += count;
    size_ -= count;
    while (head_ >= kBlockSize) {
      blocks_.pop_front();
      head_ -= kBlockSize;
    }
    if (size_ == 0) {
      blocks_.clear();
      head_ = 0;
    }
  }

  // Copies up to out.size() bytes from the front into `out` and consumes them; returns the count.
  std::size_t read(std::span<std::byte> out) {
    std::size_t total = 0;
    while (total < out.size() && size_ > 0) {
      auto chunk = view(0, out.size() - total);
      std::memcpy(out.data() + total, chunk.data(), chunk.size());
      total += chunk.size();
      consume(chunk.size());
    }
    return total;
  }

 private:
  std::deque<std::unique_ptr<std::byte[]>> blocks_;
  std::size_t head_ = 0;  // offset of the first byte within blocks_.front()
  std::size_t size_ = 0;
};

}  // namespace tether::session
