// Named fault scenarios in the deterministic simulator, each with the outcome a user should see.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "tests/sim/simulation.hpp"

namespace tether::sim {
namespace {

using session::SuspendCause;
using wire::Reason;

// A bulk transfer that takes a few seconds at 300 kB/s, on three streams of different priorities.
SimulationConfig bulk_config(std::uint64_t seed = 42) {
  SimulationConfig config = default_config(seed);
  config.latency = milliseconds(20);
  config.bytes_per_second = 300e3;
  config.pipe_capacity = 64u << 10;
  config.streams = {
      {0, 200u << 10, 150u << 10}, {3, 300u << 10, 300u << 10}, {1, 10u << 10, 90u << 10}};
  return config;
}

SimulationConfig with_fault(SimulationConfig config, FaultKind kind, Duration at,
                            Duration duration = {}) {
  config.faults.push_back(Fault{at, kind, duration});
  return config;
}

void expect_clean(const SimulationResult& result) {
  EXPECT_TRUE(result.violations.empty()) << result.log;
  EXPECT_TRUE(result.finished) << result.log;
}

void expect_survived(const SimulationResult& result) {
  expect_clean(result);
  EXPECT_TRUE(result.all_streams_complete) << result.log;
  ASSERT_TRUE(result.client.closed.has_value()) << result.log;
  EXPECT_EQ(result.client.closed->reason, Reason::kShutdown) << result.log;
  EXPECT_FALSE(result.client.closed->by_peer);
  ASSERT_TRUE(result.server.closed.has_value()) << result.log;
  EXPECT_EQ(result.server.closed->reason, Reason::kShutdown) << result.log;
  EXPECT_TRUE(result.server.closed->by_peer);
  EXPECT_EQ(result.client.closed->unacknowledged_bytes, 0u);
}

bool suspended_by(const SimulationResult& result, SuspendCause cause) {
  return std::find(result.client.suspend_causes.begin(), result.client.suspend_causes.end(),
                   cause) != result.client.suspend_causes.end();
}

TEST(Scenario, NoFaultsDeliversEverythingAndClosesGracefully) {
  const auto result = run_simulation(bulk_config());
  expect_survived(result);
  EXPECT_EQ(result.client.suspensions, 0u);
  EXPECT_EQ(result.client.resumes, 0u);
  EXPECT_EQ(result.connections, 1u);
  EXPECT_EQ(result.client.bytes_replayed, 0u);
}

TEST(Scenario, CutMidTransferResumesAndReplaysExactly) {
  const auto result = run_simulation(with_fault(bulk_config(), FaultKind::kCut, milliseconds(700)));
  expect_survived(result);
  EXPECT_TRUE(suspended_by(result, SuspendCause::kTransportClosed)) << result.log;
  EXPECT_GE(result.client.resumes, 1u);
  EXPECT_EQ(result.connections, 2u);
  // A noticed cut recovers in about one connection setup: well under a second here.
  ASSERT_FALSE(result.client.resumed_events.empty());
  EXPECT_LT(result.client.resumed_events.front().downtime, milliseconds(300)) << result.log;
}

TEST(Scenario, ShortBlackholeBelowTheBudgetIsRiddenOut) {
  const auto result = run_simulation(
      with_fault(bulk_config(), FaultKind::kBlackhole, milliseconds(500), milliseconds(1500)));
  expect_survived(result);
  EXPECT_EQ(result.client.resumes, 0u) << result.log;
  EXPECT_EQ(result.connections, 1u);
}

TEST(Scenario, SilentBlackholeBeyondTheBudgetIsDetectedAndResumed) {
  const Duration blackhole_start = milliseconds(500);
  const auto config = with_fault(bulk_config(), FaultKind::kBlackhole, blackhole_start, seconds(8));
  // The heartbeat budget: silent for `missing` intervals plus at most one more (the budget's
  // retransmission-timeout slack is capped at one interval).
  const Duration interval = config.session.heartbeat_interval;
  const auto missing = static_cast<std::int64_t>(config.session.missing_heartbeats_allowed);
  const Duration budget = interval * (missing + 1);
  // The stated slack: what was already on the wire when the blackhole began still arrives, so the
  // silence starts up to one pipe's worth at the link's rate plus one latency later.
  const Duration slack =
      config.latency + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(
                           static_cast<double>(config.pipe_capacity) / config.bytes_per_second));
  const auto result = run_simulation(config);
  expect_survived(result);
  EXPECT_GE(result.client.resumes, 1u) << result.log;
  ASSERT_FALSE(result.client.suspended_at.empty()) << result.log;
  EXPECT_LE(result.client.suspended_at.front() - blackhole_start, budget + slack) << result.log;
  // The new connection does not cross the blackhole: service resumes in about one connection
  // setup, long before the blackhole lifts.
  ASSERT_FALSE(result.client.resumed_events.empty());
  EXPECT_LT(result.client.resumed_events.front().downtime, milliseconds(500)) << result.log;
}

TEST(Scenario, OneWayBlackholeIsDetectedByAcknowledgementStall) {
  const auto result = run_simulation(
      with_fault(bulk_config(), FaultKind::kOneWayBlackhole, milliseconds(500), seconds(10)));
  expect_survived(result);
  EXPECT_TRUE(suspended_by(result, SuspendCause::kAcknowledgementStall)) << result.log;
  EXPECT_GE(result.client.resumes, 1u);
}

TEST(Scenario, AddressChangeMovesToANewConnection) {
  const auto result =
      run_simulation(with_fault(bulk_config(), FaultKind::kAddressChange, milliseconds(900)));
  expect_survived(result);
  EXPECT_GE(result.client.resumes, 1u);
  EXPECT_GE(result.connections, 2u);
}

TEST(Scenario, FailedReconnectAttemptsBackOffAndSucceedLater) {
  auto config = with_fault(bulk_config(), FaultKind::kCut, milliseconds(600));
  config.faults.push_back(Fault{milliseconds(600), FaultKind::kNetworkDown, seconds(6)});
  const auto result = run_simulation(config);
  expect_survived(result);
  EXPECT_NE(result.log.find("connect failed"), std::string::npos) << result.log;
  ASSERT_FALSE(result.client.resumed_events.empty());
  EXPECT_GE(result.client.resumed_events.front().downtime, seconds(6)) << result.log;
}

TEST(Scenario, ServerRestartEndsTheSessionWithAStatelessReset) {
  const auto result =
      run_simulation(with_fault(bulk_config(), FaultKind::kServerRestart, milliseconds(800)));
  expect_clean(result);
  ASSERT_TRUE(result.client.closed.has_value());
  EXPECT_EQ(result.client.closed->reason, Reason::kUnknownSession) << result.log;
  EXPECT_TRUE(result.client.closed->by_peer);
  EXPECT_GT(result.client.closed->unacknowledged_bytes, 0u);
  EXPECT_EQ(result.stateless_resets, 1u);
}

TEST(Scenario, ClientAsleepBeyondTheBudgetResumesOnWake) {
  const auto result = run_simulation(
      with_fault(bulk_config(), FaultKind::kClientSleep, milliseconds(800), seconds(10)));
  expect_survived(result);
  EXPECT_GE(result.server.suspensions, 1u) << result.log;
  EXPECT_GE(result.client.resumes, 1u) << result.log;
}

TEST(Scenario, ClientAsleepBeyondTheLingerEndsOnBothSidesWithReasons) {
  const auto result = run_simulation(
      with_fault(bulk_config(), FaultKind::kClientSleep, milliseconds(800), seconds(40)));
  expect_clean(result);
  ASSERT_TRUE(result.server.closed.has_value());
  EXPECT_EQ(result.server.closed->reason, Reason::kLingerExpired) << result.log;
  ASSERT_TRUE(result.client.closed.has_value());
  EXPECT_EQ(result.client.closed->reason, Reason::kUnknownSession) << result.log;
}

TEST(Scenario, NetworkDownBeyondTheReconnectLimitEndsWithReasons) {
  auto config = with_fault(bulk_config(), FaultKind::kCut, milliseconds(600));
  config.faults.push_back(Fault{milliseconds(600), FaultKind::kNetworkDown, seconds(120)});
  const auto result = run_simulation(config);
  expect_clean(result);
  ASSERT_TRUE(result.client.closed.has_value());
  EXPECT_EQ(result.client.closed->reason, Reason::kReconnectExhausted) << result.log;
  ASSERT_TRUE(result.server.closed.has_value());
  EXPECT_EQ(result.server.closed->reason, Reason::kLingerExpired) << result.log;
}

TEST(Scenario, RepeatedCutsEveryFewHundredMilliseconds) {
  auto config = bulk_config();
  for (int index = 1; index <= 6; ++index)
    config.faults.push_back(Fault{milliseconds(300 * index), FaultKind::kCut, {}});
  const auto result = run_simulation(config);
  expect_survived(result);
  EXPECT_EQ(result.client.resumes, 6u) << result.log;
  EXPECT_EQ(result.connections, 7u);
}

}  // namespace
}  // namespace tether::sim
