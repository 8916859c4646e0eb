// Unit tests of ByteQueue: appends that cross 16 KiB block boundaries, views that stop at them,
// consume and read, and a queue that returns to its empty state once drained.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "loopback.hpp"
#include "session/byte_queue.hpp"

namespace tether::session {
namespace {

using test::Bytes;
using test::SplitMix64;

constexpr std::size_t kBlock = ByteQueue::kBlockSize;

// Distinct, non-periodic content so that a byte read from the wrong place is noticed.
Bytes pattern(std::size_t size, std::uint64_t seed) {
  SplitMix64 random(seed);
  return test::random_bytes(random, size);
}

Bytes to_vector(std::span<const std::byte> view) {
  return Bytes(view.begin(), view.end());
}

Bytes slice(const Bytes& bytes, std::size_t offset, std::size_t count) {
  return Bytes(bytes.begin() + static_cast<std::ptrdiff_t>(offset),
               bytes.begin() + static_cast<std::ptrdiff_t>(offset + count));
}

TEST(ByteQueue, StartsEmpty) {
  ByteQueue queue;
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.size(), 0u);
  EXPECT_TRUE(queue.view(0, 100).empty());
  std::array<std::byte, 8> out{};
  EXPECT_EQ(queue.read(out), 0u);
}

TEST(ByteQueue, BlockSizeIs16KiB) {
  EXPECT_EQ(kBlock, 16384u);
}

TEST(ByteQueue, SmallAppendsAreContiguous) {
  ByteQueue queue;
  const Bytes first = test::to_bytes("hello, ");
  const Bytes second = test::to_bytes("world");
  queue.append(first);
  queue.append(second);
  EXPECT_EQ(queue.size(), 12u);
  EXPECT_FALSE(queue.empty());
  EXPECT_EQ(to_vector(queue.view(0, 100)), test::to_bytes("hello, world"));
  EXPECT_EQ(to_vector(queue.view(7, 3)), test::to_bytes("wor"));
  EXPECT_TRUE(queue.view(12, 10).empty());
}

TEST(ByteQueue, AppendAcrossBlockBoundaryAndViewsStopAtIt) {
  ByteQueue queue;
  const Bytes data = pattern(kBlock + 100, 1);
  queue.append(data);
  EXPECT_EQ(queue.size(), kBlock + 100);
  // A view never crosses a block boundary.
  const auto whole = queue.view(0, kBlock + 100);
  EXPECT_EQ(whole.size(), kBlock);
  EXPECT_EQ(to_vector(whole), slice(data, 0, kBlock));
  const auto before_boundary = queue.view(kBlock - 10, 100);
  EXPECT_EQ(before_boundary.size(), 10u);
  EXPECT_EQ(to_vector(before_boundary), slice(data, kBlock - 10, 10));
  const auto after_boundary = queue.view(kBlock, 1000);
  EXPECT_EQ(after_boundary.size(), 100u);
  EXPECT_EQ(to_vector(after_boundary), slice(data, kBlock, 100));
  EXPECT_EQ(to_vector(queue.view(kBlock + 40, 7)), slice(data, kBlock + 40, 7));
}

TEST(ByteQueue, AppendThatFillsTheTailOfAPartialBlock) {
  ByteQueue queue;
  const Bytes first = pattern(kBlock - 3, 2);
  const Bytes second = pattern(10, 3);
  queue.append(first);
  queue.append(second);
  EXPECT_EQ(queue.size(), kBlock + 7);
  EXPECT_EQ(to_vector(queue.view(kBlock - 3, 100)), slice(second, 0, 3));
  EXPECT_EQ(to_vector(queue.view(kBlock, 100)), slice(second, 3, 7));
}

TEST(ByteQueue, ConsumeMovesTheFrontAcrossBlocks) {
  ByteQueue queue;
  const Bytes data = pattern(3 * kBlock + 5, 4);
  queue.append(data);
  queue.consume(kBlock - 5);
  EXPECT_EQ(queue.size(), 2 * kBlock + 10);
  const auto first = queue.view(0, 100);
  EXPECT_EQ(first.size(), 5u);  // the rest of the first block
  EXPECT_EQ(to_vector(first), slice(data, kBlock - 5, 5));
  queue.consume(5 + kBlock);  // exactly to the start of the third block
  EXPECT_EQ(queue.size(), kBlock + 5);
  const auto third = queue.view(0, 2 * kBlock);
  EXPECT_EQ(third.size(), kBlock);
  EXPECT_EQ(to_vector(third), slice(data, 2 * kBlock, kBlock));
  queue.consume(kBlock + 2);
  EXPECT_EQ(to_vector(queue.view(0, 10)), slice(data, 3 * kBlock + 2, 3));
}

TEST(ByteQueue, ReadCopiesAcrossBlockBoundaries) {
  ByteQueue queue;
  const Bytes data = pattern(2 * kBlock + 300, 5);
  queue.append(data);
  Bytes out(kBlock + 200);
  EXPECT_EQ(queue.read(out), kBlock + 200);
  EXPECT_EQ(out, slice(data, 0, kBlock + 200));
  EXPECT_EQ(queue.size(), kBlock + 100);
  Bytes rest(5 * kBlock);
  EXPECT_EQ(queue.read(rest), kBlock + 100);
  rest.resize(kBlock + 100);
  EXPECT_EQ(rest, slice(data, kBlock + 200, kBlock + 100));
  EXPECT_TRUE(queue.empty());
}

TEST(ByteQueue, ReadIntoEmptySpanReadsNothing) {
  ByteQueue queue;
  queue.append(test::to_bytes("abc"));
  EXPECT_EQ(queue.read(std::span<std::byte>{}), 0u);
  EXPECT_EQ(queue.size(), 3u);
}

TEST(ByteQueue, DrainedQueueStartsAgainAtABlockBoundary) {
  ByteQueue queue;
  queue.append(pattern(kBlock + 1234, 6));
  queue.consume(kBlock + 1234);
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.size(), 0u);
  EXPECT_TRUE(queue.view(0, 10).empty());
  // Had the drained queue kept its old head offset, a full block would not be one contiguous view.
  const Bytes next = pattern(kBlock, 7);
  queue.append(next);
  const auto view = queue.view(0, kBlock);
  EXPECT_EQ(view.size(), kBlock);
  EXPECT_EQ(to_vector(view), next);
}

TEST(ByteQueue, DrainedByReadAlsoResets) {
  ByteQueue queue;
  queue.append(pattern(100, 8));
  Bytes out(100);
  EXPECT_EQ(queue.read(out), 100u);
  EXPECT_TRUE(queue.empty());
  const Bytes next = pattern(kBlock, 9);
  queue.append(next);
  EXPECT_EQ(queue.view(0, kBlock).size(), kBlock);
}

TEST(ByteQueue, ConsumeZeroAndEverythingInOneBlock) {
  ByteQueue queue;
  queue.append(test::to_bytes("0123456789"));
  queue.consume(0);
  EXPECT_EQ(queue.size(), 10u);
  queue.consume(4);
  EXPECT_EQ(to_vector(queue.view(0, 100)), test::to_bytes("456789"));
  queue.consume(6);
  EXPECT_TRUE(queue.empty());
}

// Random appends, consumes and reads against a std::deque reference.
TEST(ByteQueue, MatchesAReferenceUnderRandomOperations) {
  SplitMix64 random(2024);
  ByteQueue queue;
  std::deque<std::byte> reference;
  for (int step = 0; step < 3000; ++step) {
    const std::uint64_t choice = random.next() % 4;
    if (choice == 0 || choice == 1) {
      const std::size_t size = static_cast<std::size_t>(random.next() % (kBlock / 2 + 1));
      const Bytes bytes = test::random_bytes(random, size);
      queue.append(bytes);
      reference.insert(reference.end(), bytes.begin(), bytes.end());
    } else if (choice == 2) {
      const std::size_t count = static_cast<std::size_t>(random.next() % (reference.size() + 1));
      queue.consume(count);
      reference.erase(reference.begin(), reference.begin() + static_cast<std::ptrdiff_t>(count));
    } else {
      Bytes out(static_cast<std::size_t>(random.next() % (kBlock + 1)));
      const std::size_t count = queue.read(out);
      ASSERT_EQ(count, std::min(out.size(), reference.size()));
      ASSERT_TRUE(std::equal(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(count),
                             reference.begin()));
      reference.erase(reference.begin(), reference.begin() + static_cast<std::ptrdiff_t>(count));
    }
    ASSERT_EQ(queue.size(), reference.size());
    if (!reference.empty()) {
      const std::size_t offset = static_cast<std::size_t>(random.next() % reference.size());
      const auto view = queue.view(offset, 64);
      ASSERT_FALSE(view.empty());
      ASSERT_LE(view.size(), 64u);
      ASSERT_TRUE(std::equal(view.begin(), view.end(),
                             reference.begin() + static_cast<std::ptrdiff_t>(offset)));
    }
  }
}

}  // namespace
}  // namespace tether::session
