// Tests of Kafka's credential refresh schedule (auth/credential_refresh.hpp) with seeded
// randomness: the window factor and jitter, the minimum period, the buffer, the credential too
// close to its expiry, the last refresh time, the retry, and the policy's ranges.
#include <gtest/gtest.h>

#include <random>

#include "auth/credential_refresh.hpp"

namespace tether::auth {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

const WallTime kNow = WallTime{} + hours(24 * 365 * 50);

TEST(CredentialRefresh, AnHourTokenIsRefreshedBetween80And85PercentOfItsLife) {
  const RefreshPolicy policy;
  const WallTime expiry = kNow + hours(1);
  EXPECT_EQ(next_refresh(kNow, expiry, std::nullopt, kNow, policy, 0.0), kNow + minutes(48));
  EXPECT_EQ(next_refresh(kNow, expiry, std::nullopt, kNow, policy, 1.0), kNow + minutes(51));
  std::mt19937_64 random(42);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int draw = 0; draw < 1000; ++draw) {
    const WallTime at = next_refresh(kNow, expiry, std::nullopt, kNow, policy, unit(random));
    ASSERT_GE(at, kNow + minutes(48));
    ASSERT_LE(at, kNow + minutes(51));
  }
}

TEST(CredentialRefresh, CountsFromTheStartWhenKnown) {
  const RefreshPolicy policy;
  // Issued 30 min ago, expires in 30 min: 80% of the hour is 18 min from now.
  EXPECT_EQ(next_refresh(kNow - minutes(30), kNow + minutes(30), std::nullopt, kNow, policy, 0.0),
            kNow + minutes(18));
}

TEST(CredentialRefresh, NeverLaterThanExpiryMinusTheBuffer) {
  RefreshPolicy policy;
  policy.window_factor = 1.0;
  // 100% of a 2 h life would be its expiry; the buffer takes 5 min off.
  EXPECT_EQ(next_refresh(kNow, kNow + hours(2), std::nullopt, kNow, policy, 0.0),
            kNow + hours(2) - minutes(5));
}

TEST(CredentialRefresh, NeverSoonerThanTheMinimumPeriod) {
  const RefreshPolicy policy;
  // Issued long ago, 20 min left: 80% of the life has passed already; wait the minimum minute.
  EXPECT_EQ(next_refresh(kNow - hours(10), kNow + minutes(20), std::nullopt, kNow, policy, 0.5),
            kNow + seconds(60));
}

TEST(CredentialRefresh, TooCloseToItsExpiryUsesTheFractionOfWhatIsLeft) {
  const RefreshPolicy policy;
  // 4 min left: now + 60 s is after expiry - 300 s, so both bounds cannot hold: 80% of 4 min.
  EXPECT_EQ(next_refresh(kNow - hours(1), kNow + minutes(4), std::nullopt, kNow, policy, 0.0),
            kNow + seconds(192));
  // A 5-second token (the integration tests' kind) with Kafka's defaults: 4 s.
  EXPECT_EQ(next_refresh(kNow, kNow + seconds(5), std::nullopt, kNow, policy, 0.0),
            kNow + seconds(4));
}

TEST(CredentialRefresh, NeverAfterTheLastRefreshTimeAndAtOnceWhenExpired) {
  const RefreshPolicy policy;
  EXPECT_EQ(next_refresh(kNow, kNow + hours(1), kNow + minutes(10), kNow, policy, 0.0),
            kNow + minutes(10));
  EXPECT_EQ(next_refresh(kNow - hours(1), kNow - seconds(1), std::nullopt, kNow, policy, 0.3),
            kNow);
}

TEST(CredentialRefresh, AFailureIsRetriedAfterTenSeconds) {
  EXPECT_EQ(retry_refresh(kNow, RefreshPolicy{}), kNow + seconds(10));
}

class FixedCredential : public ExpiringCredential {
 public:
  std::optional<WallTime> expires;
  std::string principal() const override { return "carol"; }
  std::optional<WallTime> start() const override { return kNow; }
  std::optional<WallTime> expiry() const override { return expires; }
  std::optional<WallTime> absolute_last_refresh() const override { return std::nullopt; }
};

TEST(CredentialRefresh, ACredentialThatDoesNotExpireIsNeverRefreshed) {
  FixedCredential credential;
  EXPECT_EQ(next_refresh(credential, kNow, RefreshPolicy{}, 0.5), std::nullopt);
  credential.expires = kNow + hours(1);
  EXPECT_EQ(next_refresh(credential, kNow, RefreshPolicy{}, 0.0), kNow + minutes(48));
}

TEST(CredentialRefresh, PolicyRangesAreKafkas) {
  EXPECT_TRUE(validate(RefreshPolicy{}));
  RefreshPolicy policy;
  policy.window_factor = 0.4;
  EXPECT_FALSE(validate(policy));
  policy = {};
  policy.window_jitter = 0.3;
  EXPECT_FALSE(validate(policy));
  policy = {};
  policy.min_period = seconds(901);
  EXPECT_FALSE(validate(policy));
  policy = {};
  policy.buffer = seconds(3601);
  EXPECT_FALSE(validate(policy));
  policy = {};
  policy.window_factor = 1.0;
  policy.window_jitter = 0.25;
  policy.min_period = seconds(0);
  policy.buffer = seconds(3600);
  EXPECT_TRUE(validate(policy));
}

}  // namespace
}  // namespace tether::auth
