// Tests of TimerSet: named slots, the earliest deadline and the changed bit.
#include "session/timer_set.hpp"

#include <gtest/gtest.h>

namespace tether::session {
namespace {

const Time t0 = Time{} + seconds(100);

TEST(TimerSet, EmptyHasNoDeadline) {
  TimerSet timers;
  EXPECT_FALSE(timers.earliest());
  EXPECT_FALSE(timers.armed(TimerSlot::kHeartbeat));
  EXPECT_FALSE(timers.due(TimerSlot::kHeartbeat, t0));
}

TEST(TimerSet, EarliestIsTheMinimumOverArmedSlots) {
  TimerSet timers;
  timers.set(TimerSlot::kLinger, t0 + seconds(600));
  timers.set(TimerSlot::kHeartbeat, t0 + seconds(5));
  timers.set(TimerSlot::kAckDelay, t0 + milliseconds(10));
  EXPECT_EQ(timers.earliest(), t0 + milliseconds(10));
  timers.cancel(TimerSlot::kAckDelay);
  EXPECT_EQ(timers.earliest(), t0 + seconds(5));
  EXPECT_EQ(timers.get(TimerSlot::kLinger), t0 + seconds(600));
}

TEST(TimerSet, DueAtAndAfterItsDeadline) {
  TimerSet timers;
  timers.set(TimerSlot::kHandshake, t0);
  EXPECT_FALSE(timers.due(TimerSlot::kHandshake, t0 - milliseconds(1)));
  EXPECT_TRUE(timers.due(TimerSlot::kHandshake, t0));
  EXPECT_TRUE(timers.due(TimerSlot::kHandshake, t0 + seconds(1)));
  EXPECT_FALSE(timers.due(TimerSlot::kGiveUp, t0 + seconds(1)));
}

TEST(TimerSet, ChangedBitTracksRealChangesOnly) {
  TimerSet timers;
  EXPECT_FALSE(timers.take_changed());
  timers.set(TimerSlot::kReconnect, t0);
  EXPECT_TRUE(timers.changed());
  EXPECT_TRUE(timers.take_changed());
  EXPECT_FALSE(timers.take_changed());
  timers.set(TimerSlot::kReconnect, t0);  // the same value: no change
  EXPECT_FALSE(timers.take_changed());
  timers.cancel(TimerSlot::kGiveUp);  // already disarmed: no change
  EXPECT_FALSE(timers.take_changed());
  timers.set(TimerSlot::kReconnect, t0 + seconds(1));
  EXPECT_TRUE(timers.take_changed());
  timers.clear();
  EXPECT_TRUE(timers.take_changed());
  EXPECT_FALSE(timers.earliest());
}

TEST(TimerSet, EverySlotHasAName) {
  for (std::size_t index = 0; index < kTimerSlotCount; ++index) {
    EXPECT_STRNE(to_string(static_cast<TimerSlot>(index)), "unknown");
  }
}

}  // namespace
}  // namespace tether::session
