// Unit tests of ConnectSlots, the cap on a session's concurrent target connects: free slots are
// taken at once, more wait in arrival order, a freed slot goes to the first waiter, and a waiter
// whose deadline passes gets none.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tunnel/connect_slots.hpp"

namespace tether::tunnel {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Takes a slot from `slots` (waiting until `deadline`), records "NAME got" or "NAME timed out" in
// `log`, and holds the slot until `release` is cancelled.
asio::awaitable<void> take(std::shared_ptr<ConnectSlots> slots, std::string name,
                           Clock::time_point deadline, std::vector<std::string>& log,
                           asio::steady_timer& release) {
  auto slot = co_await slots->acquire(deadline);
  log.push_back(name + (slot ? " got" : " timed out"));
  if (!slot) co_return;
  release.expires_at(asio::steady_timer::time_point::max());
  std::error_code ignored;
  co_await release.async_wait(asio::redirect_error(asio::use_awaitable, ignored));
}

TEST(ConnectSlots, WaitersGetFreedSlotsInArrivalOrder) {
  asio::io_context io;
  auto slots = std::make_shared<ConnectSlots>(2);
  std::vector<std::string> log;
  std::vector<std::unique_ptr<asio::steady_timer>> releases;
  const auto later = Clock::now() + 60s;
  for (const char* name : {"a", "b", "c", "d"}) {
    releases.push_back(std::make_unique<asio::steady_timer>(io));
    asio::co_spawn(io, take(slots, name, later, log, *releases.back()), asio::detached);
  }
  io.run_for(50ms);
  EXPECT_EQ(log, (std::vector<std::string>{"a got", "b got"}));
  EXPECT_EQ(slots->in_use(), 2u);
  EXPECT_EQ(slots->waiting(), 2u);
  releases[1]->cancel();  // b ends: c, the first waiter, gets its slot
  io.restart();
  io.run_for(50ms);
  EXPECT_EQ(log, (std::vector<std::string>{"a got", "b got", "c got"}));
  EXPECT_EQ(slots->in_use(), 2u);
  EXPECT_EQ(slots->waiting(), 1u);
  for (auto& release : releases) release->cancel();  // a and c end: d gets a slot
  io.restart();
  io.run_for(50ms);
  EXPECT_EQ(log, (std::vector<std::string>{"a got", "b got", "c got", "d got"}));
  EXPECT_EQ(slots->in_use(), 1u);
  releases[3]->cancel();
  io.restart();
  io.run_for(50ms);
  EXPECT_EQ(slots->in_use(), 0u);
  EXPECT_EQ(slots->waiting(), 0u);
}

TEST(ConnectSlots, AWaiterWhoseDeadlinePassesGetsNone) {
  asio::io_context io;
  auto slots = std::make_shared<ConnectSlots>(1);
  std::vector<std::string> log;
  asio::steady_timer hold(io);
  asio::steady_timer unused(io);
  asio::co_spawn(io, take(slots, "a", Clock::now() + 60s, log, hold), asio::detached);
  asio::co_spawn(io, take(slots, "b", Clock::now() + 20ms, log, unused), asio::detached);
  io.run_for(200ms);
  EXPECT_EQ(log, (std::vector<std::string>{"a got", "b timed out"}));
  EXPECT_EQ(slots->waiting(), 0u);
  hold.cancel();
  io.restart();
  io.run_for(20ms);
  EXPECT_EQ(slots->in_use(), 0u);
}

}  // namespace
}  // namespace tether::tunnel
