// Tests of the heartbeat policy: the default, the negotiation clamp, the dead rule and the kernel
// user timeout derived from negotiated values.
#include "session/heartbeat_policy.hpp"

#include <gtest/gtest.h>

#include "session/types.hpp"

namespace tether::session {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(HeartbeatPolicy, LibraryDefaultsAreThePolicyDefault) {
  const SessionConfig config;
  EXPECT_EQ(config.proposed_heartbeat(), heartbeat_policy::kDefault);
  EXPECT_EQ(config.heartbeat_bounds().min_interval, heartbeat_policy::kDefaultBounds.min_interval);
  EXPECT_EQ(config.heartbeat_bounds().max_interval, heartbeat_policy::kDefaultBounds.max_interval);
  EXPECT_EQ(config.heartbeat_bounds().max_missing_allowed,
            heartbeat_policy::kDefaultBounds.max_missing_allowed);
}

TEST(HeartbeatPolicy, NegotiationKeepsAProposalInsideTheBounds) {
  const auto agreed = heartbeat_policy::negotiate(2500, 4, heartbeat_policy::kDefaultBounds);
  EXPECT_EQ(agreed.interval, milliseconds(2500));
  EXPECT_EQ(agreed.missing_allowed, 4u);
}

TEST(HeartbeatPolicy, NegotiationClampsIntoTheBounds) {
  const HeartbeatBounds bounds{milliseconds(100), seconds(60), 20};
  EXPECT_EQ(heartbeat_policy::negotiate(1, 0, bounds), (HeartbeatParameters{milliseconds(100), 1}));
  EXPECT_EQ(heartbeat_policy::negotiate(120'000, 30, bounds),
            (HeartbeatParameters{seconds(60), 20}));
}

TEST(HeartbeatPolicy, NegotiationSurvivesHostileValues) {
  // No value a peer can send overflows the conversion to nanoseconds.
  const auto agreed = heartbeat_policy::negotiate(~std::uint64_t{0}, ~std::uint64_t{0},
                                                  heartbeat_policy::kDefaultBounds);
  EXPECT_EQ(agreed.interval, heartbeat_policy::kDefaultBounds.max_interval);
  EXPECT_EQ(agreed.missing_allowed, heartbeat_policy::kDefaultBounds.max_missing_allowed);
  // Bounds that allow no miss still allow one.
  EXPECT_EQ(heartbeat_policy::negotiate(1000, 5, HeartbeatBounds{seconds(1), seconds(1), 0})
                .missing_allowed,
            1u);
}

TEST(HeartbeatPolicy, BudgetIsMissesPlusSlackCappedAtOneInterval) {
  const HeartbeatParameters parameters{seconds(5), 3};
  EXPECT_EQ(parameters.budget(milliseconds(200)), seconds(15) + milliseconds(200));
  EXPECT_EQ(parameters.budget(seconds(60)), seconds(20));
  EXPECT_EQ(parameters.worst_case_budget(), seconds(20));
}

TEST(HeartbeatPolicy, DeadIsSilentForTwiceTheBudget) {
  EXPECT_EQ(heartbeat_policy::dead_after(seconds(20)), seconds(40));
}

TEST(HeartbeatPolicy, KernelUserTimeoutFollowsTheNegotiatedValues) {
  EXPECT_EQ(kernel_user_timeout(HeartbeatParameters{milliseconds(200), 2}), milliseconds(600));
  EXPECT_EQ(kernel_user_timeout(heartbeat_policy::kDefault), seconds(20));
  // The kernel never gives up before the session would call the path suspect.
  const HeartbeatParameters parameters{seconds(30), 5};
  EXPECT_GE(kernel_user_timeout(parameters), parameters.budget(seconds(60)));
}

}  // namespace
}  // namespace tether::session
