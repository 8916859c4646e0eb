// Unit tests of ReconnectBackoff: exponential delays with jitter, the cap, and the restart after a
// success.
#include "session/reconnect_backoff.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <span>

#include "tests/support/seeded_random.hpp"

namespace tether::session {
namespace {

using std::chrono::nanoseconds;
using SplitMix64 = tether::testing::SeededRandom;

// A RandomSource that always yields the same byte, to pin the jitter factor.
class ConstantRandom final : public RandomSource {
 public:
  explicit ConstantRandom(std::byte value) : value_(value) {}
  void fill(std::span<std::byte> out) override {
    for (auto& byte : out) byte = value_;
  }

 private:
  std::byte value_;
};

TEST(ReconnectBackoff, FirstDelayIsZeroThenDoublesWithJitter) {
  SplitMix64 random(42);
  ReconnectBackoff backoff(milliseconds(200), seconds(30));
  EXPECT_EQ(backoff.next_delay(random), Duration::zero());
  EXPECT_EQ(backoff.failures(), 1u);
  Duration base = milliseconds(200);
  for (int attempt = 1; attempt <= 12; ++attempt) {
    const Duration delay = backoff.next_delay(random);
    const Duration capped = std::min<Duration>(base, seconds(30));
    EXPECT_GE(delay, capped / 2) << "attempt " << attempt;
    EXPECT_LT(delay, capped) << "attempt " << attempt;
    base *= 2;
  }
  EXPECT_EQ(backoff.failures(), 13u);
}

TEST(ReconnectBackoff, ExactValuesAtTheEndsOfTheJitterRange) {
  ConstantRandom low(std::byte{0});  // fraction exactly 0.5
  ReconnectBackoff backoff(milliseconds(200), seconds(1));
  EXPECT_EQ(backoff.next_delay(low), Duration::zero());
  EXPECT_EQ(backoff.next_delay(low), milliseconds(100));
  EXPECT_EQ(backoff.next_delay(low), milliseconds(200));
  EXPECT_EQ(backoff.next_delay(low), milliseconds(400));
  EXPECT_EQ(backoff.next_delay(low), milliseconds(500));  // 1600 ms capped to 1 s, halved
  EXPECT_EQ(backoff.next_delay(low), milliseconds(500));
}

TEST(ReconnectBackoff, LargestRandomValueStaysBelowTheBase) {
  ConstantRandom high(std::byte{0xff});  // the largest draw: the factor must still be below 1
  ReconnectBackoff top(milliseconds(200), seconds(1));
  EXPECT_EQ(top.next_delay(high), Duration::zero());
  const Duration first = top.next_delay(high);
  EXPECT_LT(first, milliseconds(200));
  EXPECT_GE(first, milliseconds(200) - nanoseconds(1));
  top.next_delay(high);
  top.next_delay(high);
  const Duration capped = top.next_delay(high);
  EXPECT_LT(capped, seconds(1));
  EXPECT_GE(capped, seconds(1) - nanoseconds(1));
}

TEST(ReconnectBackoff, SuccessRestartsAtZero) {
  ConstantRandom low(std::byte{0});
  ReconnectBackoff backoff(milliseconds(200), seconds(30));
  backoff.next_delay(low);
  backoff.next_delay(low);
  EXPECT_EQ(backoff.next_delay(low), milliseconds(200));
  backoff.on_success();
  EXPECT_EQ(backoff.failures(), 0u);
  EXPECT_EQ(backoff.next_delay(low), Duration::zero());
  EXPECT_EQ(backoff.next_delay(low), milliseconds(100));
}

TEST(ReconnectBackoff, CapIsReachedAndHeldWithoutOverflow) {
  ConstantRandom low(std::byte{0});
  ReconnectBackoff backoff(milliseconds(200), seconds(30));
  for (int attempt = 0; attempt < 200; ++attempt) backoff.next_delay(low);
  EXPECT_EQ(backoff.next_delay(low), seconds(15));
}

}  // namespace
}  // namespace tether::session
