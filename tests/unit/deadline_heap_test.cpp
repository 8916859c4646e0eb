// DeadlineHeap: the earliest deadline after any sequence of sets, moves and removals, checked
// against a plain map over random operations; due keys come out earliest first, ties by key.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <random>

#include "session/deadline_heap.hpp"

namespace tether::session {
namespace {

Time at(int seconds) {
  return Time{} + std::chrono::seconds(seconds);
}

TEST(DeadlineHeap, EmptyHasNoEarliest) {
  DeadlineHeap<std::uint64_t> heap;
  EXPECT_TRUE(heap.empty());
  EXPECT_FALSE(heap.earliest().has_value());
  EXPECT_TRUE(heap.take_due(at(100)).empty());
}

TEST(DeadlineHeap, SetMovesAndRemoves) {
  DeadlineHeap<std::uint64_t> heap;
  heap.set(1, at(10));
  heap.set(2, at(5));
  heap.set(3, at(7));
  EXPECT_EQ(heap.earliest(), at(5));
  heap.set(2, at(20));  // moved later
  EXPECT_EQ(heap.earliest(), at(7));
  heap.set(1, at(1));  // moved earlier
  EXPECT_EQ(heap.earliest(), at(1));
  heap.set(1, std::nullopt);  // removed
  EXPECT_FALSE(heap.contains(1));
  EXPECT_EQ(heap.size(), 2u);
  EXPECT_EQ(heap.earliest(), at(7));
  EXPECT_EQ(heap.deadline(2), at(20));
  heap.erase(42);  // unknown: nothing happens
  EXPECT_EQ(heap.size(), 2u);
}

TEST(DeadlineHeap, TakeDueReturnsEarliestFirstTiesByKey) {
  DeadlineHeap<std::uint64_t> heap;
  heap.set(9, at(3));
  heap.set(4, at(3));
  heap.set(7, at(1));
  heap.set(1, at(8));
  const auto due = heap.take_due(at(3));
  EXPECT_EQ(due, (std::vector<std::uint64_t>{7, 4, 9}));
  EXPECT_EQ(heap.size(), 1u);
  EXPECT_EQ(heap.earliest(), at(8));
}

TEST(DeadlineHeap, MatchesAPlainMapOverRandomOperations) {
  std::mt19937_64 random(13);
  DeadlineHeap<std::uint64_t> heap;
  std::map<std::uint64_t, Time> model;
  for (int step = 0; step < 20000; ++step) {
    const std::uint64_t key = random() % 64;
    switch (random() % 4) {
      case 0:
        heap.erase(key);
        model.erase(key);
        break;
      case 1: {
        const auto due = heap.take_due(at(static_cast<int>(random() % 1000)));
        for (const auto taken : due) {
          ASSERT_TRUE(model.contains(taken));
          model.erase(taken);
        }
        break;
      }
      default: {
        const Time deadline = at(static_cast<int>(random() % 1000));
        heap.set(key, deadline);
        model[key] = deadline;
      }
    }
    ASSERT_EQ(heap.size(), model.size());
    std::optional<Time> earliest;
    for (const auto& [id, deadline] : model) {
      if (!earliest || deadline < *earliest) earliest = deadline;
      ASSERT_EQ(heap.deadline(id), deadline);
    }
    ASSERT_EQ(heap.earliest(), earliest);
  }
}

}  // namespace
}  // namespace tether::session
