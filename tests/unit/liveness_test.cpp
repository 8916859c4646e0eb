// Unit tests of the path-liveness building blocks: the RFC 6298 RTT estimator, the heartbeat
// budget and schedule, and liveness and acknowledgement-progress detection.
#include <gtest/gtest.h>

#include <chrono>

#include "session/liveness.hpp"
#include "session/rtt_estimator.hpp"

namespace tether::session {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;

const Time t0 = Time{} + seconds(1000);

// ---- RttEstimator -------------------------------------------------------------------------------

TEST(RttEstimator, InitialRetransmissionTimeoutIsOneSecond) {
  RttEstimator rtt;
  EXPECT_FALSE(rtt.smoothed().has_value());
  EXPECT_EQ(rtt.variation(), Duration::zero());
  EXPECT_EQ(rtt.retransmission_timeout(), seconds(1));
}

TEST(RttEstimator, FirstSampleSetsSmoothedAndHalfVariation) {
  RttEstimator rtt;
  rtt.add_sample(milliseconds(100));
  ASSERT_TRUE(rtt.smoothed().has_value());
  EXPECT_EQ(*rtt.smoothed(), milliseconds(100));
  EXPECT_EQ(rtt.variation(), milliseconds(50));
  EXPECT_EQ(rtt.latest(), milliseconds(100));
  EXPECT_EQ(rtt.retransmission_timeout(), milliseconds(300));  // 100 + 4 * 50
}

TEST(RttEstimator, LaterSamplesUseAlphaOneEighthAndBetaOneQuarter) {
  RttEstimator rtt;
  rtt.add_sample(milliseconds(100));
  rtt.add_sample(milliseconds(200));
  // RTTVAR = 3/4 * 50 + 1/4 * |100 - 200| = 62.5; SRTT = 7/8 * 100 + 1/8 * 200 = 112.5.
  EXPECT_EQ(rtt.variation(), microseconds(62500));
  EXPECT_EQ(*rtt.smoothed(), microseconds(112500));
  EXPECT_EQ(rtt.retransmission_timeout(), microseconds(362500));
  rtt.add_sample(milliseconds(50));
  // RTTVAR = 3/4 * 62.5 + 1/4 * |112.5 - 50| = 62.5; SRTT = 7/8 * 112.5 + 1/8 * 50 = 104.6875.
  EXPECT_EQ(rtt.variation(), microseconds(62500));
  EXPECT_EQ(*rtt.smoothed(), nanoseconds(104687500));
  EXPECT_EQ(rtt.latest(), milliseconds(50));
  EXPECT_EQ(rtt.retransmission_timeout(), nanoseconds(354687500));
}

TEST(RttEstimator, VariationUsesTheOldSmoothedValue) {
  // RFC 6298 (2.3): RTTVAR is updated with the SRTT from before this sample.
  RttEstimator rtt;
  rtt.add_sample(milliseconds(80));   // SRTT 80, RTTVAR 40
  rtt.add_sample(milliseconds(160));  // RTTVAR = 30 + 20 = 50 (|80 - 160| = 80), SRTT = 90
  EXPECT_EQ(rtt.variation(), milliseconds(50));
  EXPECT_EQ(*rtt.smoothed(), milliseconds(90));
}

TEST(RttEstimator, RetransmissionTimeoutIsClampedBelow) {
  RttEstimator rtt;
  rtt.add_sample(milliseconds(1));  // 1 + 4 * 0.5 = 3 ms
  EXPECT_EQ(rtt.retransmission_timeout(), milliseconds(200));
  RttEstimator zero;
  zero.add_sample(Duration::zero());
  EXPECT_EQ(*zero.smoothed(), Duration::zero());
  EXPECT_EQ(zero.retransmission_timeout(), RttEstimator::kMinimumRetransmissionTimeout);
}

TEST(RttEstimator, RetransmissionTimeoutIsClampedAbove) {
  RttEstimator rtt;
  rtt.add_sample(seconds(40));  // 40 + 4 * 20 = 120 s
  EXPECT_EQ(rtt.retransmission_timeout(), seconds(60));
}

TEST(RttEstimator, NegativeSampleIsIgnored) {
  RttEstimator rtt;
  rtt.add_sample(milliseconds(-5));
  EXPECT_FALSE(rtt.smoothed().has_value());
  rtt.add_sample(milliseconds(100));
  rtt.add_sample(milliseconds(-100));
  EXPECT_EQ(*rtt.smoothed(), milliseconds(100));
  EXPECT_EQ(rtt.variation(), milliseconds(50));
  EXPECT_EQ(rtt.latest(), milliseconds(100));
}

// ---- HeartbeatParameters / HeartbeatSchedule ----------------------------------------------------

TEST(HeartbeatParameters, BudgetIsMissesPlusOneRetransmissionTimeout) {
  const HeartbeatParameters parameters{seconds(15), 3};
  EXPECT_EQ(parameters.budget(seconds(1)), seconds(46));
  EXPECT_EQ(parameters.budget(milliseconds(200)), milliseconds(45200));
}

TEST(HeartbeatParameters, BudgetSlackIsCappedAtOneInterval) {
  const HeartbeatParameters parameters{seconds(2), 5};
  EXPECT_EQ(parameters.budget(seconds(7)), seconds(12));  // 10 + min(7, 2)
  EXPECT_EQ(parameters.budget(seconds(2)), seconds(12));
  const HeartbeatParameters one{milliseconds(100), 1};
  EXPECT_EQ(one.budget(seconds(1)), milliseconds(200));
}

TEST(HeartbeatSchedule, PingIsDueOneIntervalAfterTheLastOne) {
  HeartbeatSchedule schedule(seconds(15), t0);
  EXPECT_EQ(schedule.deadline(), t0 + seconds(15));
  EXPECT_FALSE(schedule.due(t0 + seconds(15) - nanoseconds(1)));
  EXPECT_TRUE(schedule.due(t0 + seconds(15)));
  schedule.on_ping_sent(t0 + seconds(16));
  EXPECT_EQ(schedule.deadline(), t0 + seconds(31));
  EXPECT_FALSE(schedule.due(t0 + seconds(30)));
  EXPECT_TRUE(schedule.due(t0 + seconds(31)));
}

// ---- LivenessDetector ---------------------------------------------------------------------------

TEST(LivenessDetector, CountsOneMissPerSilentIntervalThenSuspects) {
  const HeartbeatParameters parameters{seconds(1), 3};
  const Duration rto = milliseconds(200);
  LivenessDetector detector(parameters, t0);
  EXPECT_EQ(detector.last_inbound(), t0);
  // A heartbeat is missed one interval plus the slack (min(RTO, interval)) after the last inbound.
  EXPECT_EQ(detector.deadline(rto), t0 + milliseconds(1200));
  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(1199), rto), LivenessDetector::Verdict::kAlive);
  EXPECT_EQ(detector.missed(), 0u);

  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(1200), rto),
            LivenessDetector::Verdict::kMissedHeartbeat);
  EXPECT_EQ(detector.missed(), 1u);
  EXPECT_EQ(detector.deadline(rto), t0 + milliseconds(2200));
  // Calling again within the same interval is not another miss.
  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(1700), rto), LivenessDetector::Verdict::kAlive);
  EXPECT_EQ(detector.missed(), 1u);

  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(2200), rto),
            LivenessDetector::Verdict::kMissedHeartbeat);
  EXPECT_EQ(detector.missed(), 2u);
  // The last miss falls at the budget, 3 s + min(RTO, interval), where the path turns suspect.
  EXPECT_EQ(detector.deadline(rto), t0 + milliseconds(3200));
  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(3199), rto), LivenessDetector::Verdict::kAlive);
  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(3200), rto),
            LivenessDetector::Verdict::kMissedHeartbeat);
  EXPECT_EQ(detector.missed(), 3u);
  EXPECT_EQ(detector.deadline(rto), t0 + milliseconds(3200));
  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(3200), rto), LivenessDetector::Verdict::kSuspect);
  EXPECT_EQ(detector.missed(), 3u);
}

TEST(LivenessDetector, AHeartbeatOnTimeIsNeverCountedMissed) {
  // The peer's heartbeat sent one interval after the last one arrives within the slack: no miss
  // is counted first (and the deadline moves on before it fires).
  const HeartbeatParameters parameters{seconds(30), 3};
  const Duration rto = seconds(1);
  LivenessDetector detector(parameters, t0);
  for (int beat = 1; beat <= 5; ++beat) {
    const Time arrival = t0 + seconds(30) * beat + milliseconds(5);
    EXPECT_LT(arrival, detector.deadline(rto));
    EXPECT_EQ(detector.on_timeout(arrival, rto), LivenessDetector::Verdict::kAlive);
    detector.on_inbound(arrival);
  }
  EXPECT_EQ(detector.missed(), 0u);
}

TEST(LivenessDetector, InboundResetsTheCount) {
  const HeartbeatParameters parameters{seconds(1), 2};
  LivenessDetector detector(parameters, t0);
  EXPECT_EQ(detector.on_timeout(t0 + seconds(2), seconds(1)),
            LivenessDetector::Verdict::kMissedHeartbeat);
  EXPECT_EQ(detector.missed(), 1u);
  detector.on_inbound(t0 + milliseconds(2500));
  EXPECT_EQ(detector.missed(), 0u);
  EXPECT_EQ(detector.last_inbound(), t0 + milliseconds(2500));
  EXPECT_EQ(detector.deadline(seconds(1)), t0 + milliseconds(4500));
  EXPECT_EQ(detector.on_timeout(t0 + seconds(4), seconds(1)), LivenessDetector::Verdict::kAlive);
  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(4500), seconds(1)),
            LivenessDetector::Verdict::kMissedHeartbeat);
}

TEST(LivenessDetector, SuspectDeadlineUsesCurrentRetransmissionTimeout) {
  const HeartbeatParameters parameters{seconds(10), 1};
  LivenessDetector detector(parameters, t0);
  // One miss allowed: it and the suspicion both fall at the budget, 10 s + min(RTO, interval).
  EXPECT_EQ(detector.deadline(seconds(4)), t0 + seconds(14));
  EXPECT_EQ(detector.deadline(seconds(30)), t0 + seconds(20));  // slack capped at one interval
  EXPECT_EQ(detector.on_timeout(t0 + seconds(13), seconds(4)), LivenessDetector::Verdict::kAlive);
  EXPECT_EQ(detector.on_timeout(t0 + seconds(14), seconds(4)),
            LivenessDetector::Verdict::kMissedHeartbeat);
  EXPECT_EQ(detector.deadline(seconds(4)), t0 + seconds(14));
  EXPECT_EQ(detector.deadline(seconds(2)), t0 + seconds(12));  // the RTO at the time counts
  EXPECT_EQ(detector.on_timeout(t0 + seconds(14), seconds(4)), LivenessDetector::Verdict::kSuspect);
}

// ---- AckProgressDetector ------------------------------------------------------------------------

TEST(AckProgressDetector, ArmedOnlyWhileSomethingIsOutstanding) {
  AckProgressDetector detector;
  const Duration budget = seconds(5);
  EXPECT_FALSE(detector.deadline(budget).has_value());
  detector.update(false, false, t0);
  EXPECT_FALSE(detector.deadline(budget).has_value());
  detector.update(true, false, t0 + seconds(1));
  ASSERT_TRUE(detector.deadline(budget).has_value());
  EXPECT_EQ(*detector.deadline(budget), t0 + seconds(6));
  // More sends without progress do not push the deadline back.
  detector.update(true, false, t0 + seconds(3));
  EXPECT_EQ(*detector.deadline(budget), t0 + seconds(6));
  // Nothing outstanding any more: disarmed.
  detector.update(false, true, t0 + seconds(4));
  EXPECT_FALSE(detector.deadline(budget).has_value());
}

TEST(AckProgressDetector, ProgressRestartsTheWait) {
  AckProgressDetector detector;
  detector.update(true, false, t0);
  detector.update(true, true, t0 + seconds(2));
  EXPECT_EQ(*detector.deadline(seconds(5)), t0 + seconds(7));
  detector.update(true, false, t0 + seconds(4));
  EXPECT_EQ(*detector.deadline(seconds(5)), t0 + seconds(7));
  detector.reset();
  EXPECT_FALSE(detector.deadline(seconds(5)).has_value());
  detector.update(true, false, t0 + seconds(9));
  EXPECT_EQ(*detector.deadline(seconds(1)), t0 + seconds(10));
}

}  // namespace
}  // namespace tether::session
