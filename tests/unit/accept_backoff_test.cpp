// AcceptBackoffPolicy: exhaustion pauses 100 ms doubling to 1 s, lines are logged at most once a
// second with the count of failures, a success resets the pause.
#include <gtest/gtest.h>

#include <cerrno>

#include "transport/accept_backoff.hpp"

namespace tether::transport {
namespace {

using std::chrono::milliseconds;
using Policy = AcceptBackoffPolicy;

std::error_code errno_code(int value) {
  return {value, std::system_category()};
}

TEST(AcceptBackoffPolicy, ExhaustionPausesDoublingToOneSecond) {
  Policy policy("server");
  auto now = Policy::Clock::time_point{} + std::chrono::hours(1);
  std::vector<long> pauses;
  for (int index = 0; index < 6; ++index) {
    const auto decision = policy.on_failure(errno_code(EMFILE), now);
    pauses.push_back(static_cast<long>(decision.pause.count()));
    now += decision.pause;
  }
  EXPECT_EQ(pauses, (std::vector<long>{100, 200, 400, 800, 1000, 1000}));
  for (int error : {ENFILE, ENOBUFS, ENOMEM})
    EXPECT_GT(policy.on_failure(errno_code(error), now).pause.count(), 0);
  EXPECT_TRUE(policy.on_success(now + std::chrono::seconds(1)));  // "accepting again"
  EXPECT_EQ(policy.on_failure(errno_code(EMFILE), now).pause, milliseconds(100));
}

// Each freed descriptor taken at once: success and failure alternate every pause. Still at most
// one line (failure or "accepting again") per second.
TEST(AcceptBackoffPolicy, AlternatingSuccessAndFailureLogsAtTheSameRate) {
  Policy policy("client -L 127.0.0.1:8080");
  auto now = Policy::Clock::time_point{} + std::chrono::hours(1);
  std::size_t lines = 0;
  for (int index = 0; index < 100; ++index) {  // 100 x 100 ms: ten seconds
    const auto decision = policy.on_failure(errno_code(EMFILE), now);
    lines += decision.log ? 1 : 0;
    now += decision.pause;
    lines += policy.on_success(now) ? 1 : 0;
  }
  EXPECT_LE(lines, 11u);
}

TEST(AcceptBackoffPolicy, LogsAtMostOncePerSecondWithTheCount) {
  Policy policy("client -L 127.0.0.1:8080");
  auto now = Policy::Clock::time_point{} + std::chrono::hours(1);
  std::vector<std::string> lines;
  // A million failures spread over ten seconds: ten or eleven lines, not a million.
  for (int index = 0; index < 1'000'000; ++index) {
    auto decision = policy.on_failure(errno_code(EMFILE), now);
    if (decision.log) lines.push_back(*decision.log);
    now += std::chrono::microseconds(10);
  }
  EXPECT_GE(lines.size(), 10u);
  EXPECT_LE(lines.size(), 11u);
  EXPECT_NE(lines.front().find("client -L 127.0.0.1:8080: cannot accept connections"),
            std::string::npos)
      << lines.front();
  EXPECT_NE(lines.back().find("failures since the last report"), std::string::npos) << lines.back();
  EXPECT_EQ(policy.total_failures(), 1'000'000u);
}

TEST(AcceptBackoffPolicy, OtherErrorsRetryAtOnceUnlessTheyPersist) {
  Policy policy("server");
  const auto now = Policy::Clock::time_point{} + std::chrono::hours(1);
  EXPECT_FALSE(Policy::exhausted(errno_code(ECONNABORTED)));
  for (std::uint64_t index = 1; index < Policy::kConsecutiveBeforePause; ++index)
    EXPECT_EQ(policy.on_failure(errno_code(ECONNABORTED), now).pause.count(), 0);
  EXPECT_GT(policy.on_failure(errno_code(ECONNABORTED), now).pause.count(), 0);
  (void)policy.on_success(now);
  EXPECT_EQ(policy.on_failure(errno_code(ECONNABORTED), now).pause.count(), 0);
}

}  // namespace
}  // namespace tether::transport
