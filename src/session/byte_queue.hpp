// ByteQueue is a FIFO of bytes stored in fixed-size blocks: appends copy once, reads are views.
// BlockPool keeps a few spare blocks so that queues which fill and drain all the time (small
// messages, acknowledged replay buffers) do not allocate and free a block for each message.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <utility>
#include <vector>

namespace tether::session {

// Every block holds this many bytes. Blocks are allocated without zero-fill: a queue only ever
// views bytes it wrote.
inline constexpr std::size_t kQueueBlockSize = 16u << 10;

using QueueBlock = std::unique_ptr<std::byte[]>;

// A free list of spare blocks for the queues of one owner (a session). It keeps at most
// `max_spare_blocks` blocks; blocks given back beyond that are freed. The pool must outlive every
// queue that uses it. Not thread-safe: one owner, one thread, like the session itself.
class BlockPool {
 public:
  explicit BlockPool(std::size_t max_spare_blocks) : max_spare_blocks_(max_spare_blocks) {}
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // A block of kQueueBlockSize bytes with unspecified content: the most recently given back (still
  // warm in the cache) or a new one.
  [[nodiscard]] QueueBlock take() {
    if (spare_.empty()) return std::make_unique_for_overwrite<std::byte[]>(kQueueBlockSize);
    QueueBlock block = std::move(spare_.back());
    spare_.pop_back();
    return block;
  }

  // Takes a block back: kept as a spare while there is room, freed otherwise.
  void give(QueueBlock block) {
    if (spare_.size() >= max_spare_blocks_) return;
    if (spare_.capacity() == 0) spare_.reserve(max_spare_blocks_);
    spare_.push_back(std::move(block));
  }

  // Frees every spare block (an idle owner holds no memory it does not use).
  void trim() { std::vector<QueueBlock>().swap(spare_); }

  [[nodiscard]] std::size_t spare_blocks() const { return spare_.size(); }

 private:
  std::vector<QueueBlock> spare_;
  std::size_t max_spare_blocks_;
};

// Used for both the replay buffer of a sending stream (bytes written and not yet acknowledged) and
// the receive buffer of a stream (bytes received and not yet read). Memory is held in 16 KiB blocks
// laid out from offset 0 of the first block, so block boundaries fall at multiples of kBlockSize
// from the front of a queue that was last empty. A block is given back (to the pool, or freed
// without one) as soon as it is consumed, so an idle stream holds no block at all.
class ByteQueue {
 public:
  static constexpr std::size_t kBlockSize = kQueueBlockSize;

  ByteQueue() = default;
  // Blocks come from and go back to `pool`, which must outlive the queue (nullptr: the heap).
  explicit ByteQueue(BlockPool* pool) : pool_(pool) {}
  ByteQueue(const ByteQueue&) = delete;
  ByteQueue& operator=(const ByteQueue&) = delete;
  ByteQueue(ByteQueue&& other) noexcept
      : pool_(other.pool_),
        blocks_(std::move(other.blocks_)),
        front_block_(std::exchange(other.front_block_, 0)),
        head_(std::exchange(other.head_, 0)),
        size_(std::exchange(other.size_, 0)) {
    other.blocks_.clear();
  }
  ByteQueue& operator=(ByteQueue&& other) noexcept {
    if (this != &other) {
      clear();
      pool_ = other.pool_;
      blocks_ = std::move(other.blocks_);
      other.blocks_.clear();
      front_block_ = std::exchange(other.front_block_, 0);
      head_ = std::exchange(other.head_, 0);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~ByteQueue() { clear(); }

  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] bool empty() const { return size_ == 0; }

  void append(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
      const std::size_t tail = head_ + size_;
      const std::size_t within = tail % kBlockSize;
      const std::size_t index = front_block_ + tail / kBlockSize;
      if (index >= blocks_.size()) blocks_.push_back(take_block());
      const std::size_t count = std::min(bytes.size(), kBlockSize - within);
      std::memcpy(blocks_[index].get() + within, bytes.data(), count);
      size_ += count;
      bytes = bytes.subspan(count);
    }
  }

  // A contiguous view of at most `max` bytes starting `offset` bytes after the front. It may be
  // shorter than requested when it reaches a block boundary; it is valid until the next append or
  // consume. An offset past the end gives an empty view (checked in every build: the offsets come
  // from state a peer influences, and memory safety must not rest on an assertion).
  [[nodiscard]] std::span<const std::byte> view(std::size_t offset, std::size_t max) const {
    if (offset >= size_) return {};
    const std::size_t position = head_ + offset;
    const std::size_t within = position % kBlockSize;
    const std::size_t count = std::min({max, size_ - offset, kBlockSize - within});
    if (count == 0) return {};
    return {blocks_[front_block_ + position / kBlockSize].get() + within, count};
  }

  // Drops `count` bytes from the front; a count past the end drops everything (checked in every
  // build, as for view()).
  void consume(std::size_t count) {
    if (count >= size_) {
      // Drained: start again at a block boundary, keeping no block.
      clear();
      return;
    }
    head_ += count;
    size_ -= count;
    while (head_ >= kBlockSize) {
      give_block(std::move(blocks_[front_block_]));
      ++front_block_;
      head_ -= kBlockSize;
    }
    // Drop the consumed (empty) slots at the front once they are the majority, so the slot vector
    // stays proportional to the bytes held at amortized constant cost.
    if (front_block_ > 0 && 2 * front_block_ >= blocks_.size()) {
      blocks_.erase(blocks_.begin(), blocks_.begin() + static_cast<std::ptrdiff_t>(front_block_));
      front_block_ = 0;
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

  // Drops every byte and gives every block back.
  void clear() {
    for (std::size_t index = front_block_; index < blocks_.size(); ++index)
      give_block(std::move(blocks_[index]));
    blocks_.clear();
    front_block_ = 0;
    head_ = 0;
    size_ = 0;
  }

 private:
  QueueBlock take_block() {
    return pool_ != nullptr ? pool_->take()
                            : std::make_unique_for_overwrite<std::byte[]>(kBlockSize);
  }
  void give_block(QueueBlock block) {
    if (pool_ != nullptr) pool_->give(std::move(block));
  }

  BlockPool* pool_ = nullptr;
  // blocks_[front_block_] holds the front byte; slots before it are consumed (empty) and are
  // dropped in batches by consume().
  std::vector<QueueBlock> blocks_;
  std::size_t front_block_ = 0;
  std::size_t head_ = 0;  // offset of the first byte within blocks_[front_block_]
  std::size_t size_ = 0;
};

}  // namespace tether::session
