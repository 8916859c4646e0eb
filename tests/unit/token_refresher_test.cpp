// Tests of RefreshingTokenSource: a JWT's claims read for scheduling, a token fetched once and
// reused until its refresh is due, the refresh made by the worker on Kafka's schedule (so an
// exchange never waits for the command), a failed refresh retried after 10 s while the old token
// stays in use, and a token without an expiry fetched for every use.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "auth/base64url.hpp"
#include "auth/token_refresher.hpp"

namespace tether::auth {
namespace {

using std::chrono::seconds;

const WallTime kStart = WallTime{} + seconds(1'800'000'000);

std::string jwt(std::int64_t iat, std::int64_t exp, const std::string& subject = "carol") {
  const std::string header = base64url_encode(std::string_view(R"({"alg":"HS256"})"));
  const std::string body =
      base64url_encode("{\"sub\":\"" + subject + "\",\"iat\":" + std::to_string(iat) +
                       ",\"exp\":" + std::to_string(exp) + "}");
  return header + "." + body + ".c2ln";
}

std::int64_t epoch(WallTime time) {
  return std::chrono::duration_cast<seconds>(time.time_since_epoch()).count();
}

// A clock the test moves, and a fetch that mints a one-hour token at the clock's time.
struct Fixture {
  std::mutex mutex;
  WallTime now = kStart;
  std::atomic<bool> failing{false};
  std::atomic<int> fetched{0};
  WallTime time() {
    const std::lock_guard lock(mutex);
    return now;
  }
  void advance(WallClock::duration by) {
    const std::lock_guard lock(mutex);
    now += by;
  }
  RefreshingTokenSource::Fetch fetch() {
    return [this]() -> Expected<std::string, std::string> {
      ++fetched;
      if (failing) return make_unexpected(std::string("the token command failed (exit 1)"));
      const WallTime at = time();
      return jwt(epoch(at), epoch(at + std::chrono::hours(1)));
    };
  }
};

// Waits (real time) until `condition` holds, at most 5 s.
template <typename Condition>
bool eventually(Condition condition) {
  for (int tick = 0; tick < 500; ++tick) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

TEST(TokenTimes, ReadsSubjectIssuedAtAndExpiryFromAJwt) {
  const TokenTimes times = read_token_times(jwt(100, 3700, "dora"));
  EXPECT_EQ(times.subject, "dora");
  EXPECT_EQ(times.issued_at, WallTime{} + seconds(100));
  EXPECT_EQ(times.expiry, WallTime{} + seconds(3700));
  EXPECT_FALSE(read_token_times("opaque-token").expiry);
  EXPECT_FALSE(read_token_times("a.!!!.c").expiry);
  EXPECT_FALSE(read_token_times(jwt(0, -5)).expiry);  // a negative exp is no schedule
}

TEST(RefreshingTokenSource, FetchesOnceAndRefreshesOnTheWorkerOnKafkasSchedule) {
  Fixture fixture;
  RefreshingTokenSource source(
      fixture.fetch(), RefreshPolicy{}, [&] { return fixture.time(); }, [] { return 0.0; });
  auto first = source.token();
  ASSERT_TRUE(first);
  EXPECT_EQ(fixture.fetched, 1);
  EXPECT_EQ(source.principal(), "carol");
  // Jitter 0: 80% of the hour.
  EXPECT_EQ(source.next_refresh_time(), kStart + std::chrono::minutes(48));
  fixture.advance(std::chrono::minutes(47));
  EXPECT_EQ(*source.token(), *first);  // still the cached one, nothing run
  EXPECT_EQ(fixture.fetched, 1);
  fixture.advance(std::chrono::minutes(2));
  // The worker notices within a second and fetches; the caller never runs the command.
  ASSERT_TRUE(eventually([&] { return fixture.fetched == 2; }));
  ASSERT_TRUE(eventually([&] { return source.token() && *source.token() != *first; }));
  EXPECT_EQ(fixture.fetched, 2);
  EXPECT_EQ(source.expiry(), kStart + std::chrono::minutes(49) + std::chrono::hours(1));
}

TEST(RefreshingTokenSource, AFailedRefreshIsRetriedAfterTenSecondsAndTheOldTokenStaysInUse) {
  Fixture fixture;
  RefreshingTokenSource source(
      fixture.fetch(), RefreshPolicy{}, [&] { return fixture.time(); }, [] { return 0.0; });
  const auto first = source.token();
  ASSERT_TRUE(first);
  fixture.failing = true;
  fixture.advance(std::chrono::minutes(48));
  ASSERT_TRUE(eventually([&] { return fixture.fetched == 2; }));
  ASSERT_TRUE(eventually([&] {
    return source.next_refresh_time() == kStart + std::chrono::minutes(48) + seconds(10);
  }));
  EXPECT_EQ(*source.token(), *first);  // valid until its expiry
  fixture.failing = false;
  fixture.advance(seconds(10));
  ASSERT_TRUE(eventually([&] { return fixture.fetched == 3; }));
  ASSERT_TRUE(eventually([&] { return source.token() && *source.token() != *first; }));
}

TEST(RefreshingTokenSource, AnExpiredTokenIsNotUsedAndTheErrorIsTheFetchs) {
  Fixture fixture;
  RefreshingTokenSource source(
      fixture.fetch(), RefreshPolicy{}, [&] { return fixture.time(); }, [] { return 0.0; });
  ASSERT_TRUE(source.token());
  fixture.failing = true;
  fixture.advance(std::chrono::hours(2));
  const auto expired = source.token();
  ASSERT_FALSE(expired);
  EXPECT_NE(expired.error().find("exit 1"), std::string::npos);
}

TEST(RefreshingTokenSource, ATokenWithoutExpiryIsFetchedForEveryUse) {
  std::atomic<int> fetched{0};
  RefreshingTokenSource source(
      [&]() -> Expected<std::string, std::string> {
        ++fetched;
        return std::string("opaque");
      },
      RefreshPolicy{});
  EXPECT_EQ(*source.token(), "opaque");
  EXPECT_EQ(*source.token(), "opaque");
  EXPECT_EQ(fetched, 2);
  EXPECT_EQ(source.next_refresh_time(), std::nullopt);
}

}  // namespace
}  // namespace tether::auth
