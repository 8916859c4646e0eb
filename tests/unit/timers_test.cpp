// Unit tests of the session's timing and key-derivation building blocks: the RFC 6298 RTT
// estimator, heartbeat budget and schedule, liveness and acknowledgement-progress detection,
// reconnect backoff, and the key schedule (with known-answer vectors computed independently from
// the documented HMAC/HKDF formulas).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <set>
#include <span>
#include <string_view>

#include "loopback.hpp"
#include "session/key_schedule.hpp"
#include "session/liveness.hpp"
#include "session/reconnect_backoff.hpp"
#include "session/rtt_estimator.hpp"

namespace tether::session {
namespace {

using std::chrono::microseconds;
using std::chrono::nanoseconds;
using test::SplitMix64;

const Time t0 = Time{} + seconds(1000);

template <std::size_t Size>
std::array<std::byte, Size> sequence_from(unsigned first) {
  std::array<std::byte, Size> out{};
  for (std::size_t index = 0; index < Size; ++index) {
    out[index] = static_cast<std::byte>(first + index);
  }
  return out;
}

Secret from_hex(std::string_view hex) {
  Secret out{};
  auto digit = [](char c) { return static_cast<unsigned>(c <= '9' ? c - '0' : c - 'a' + 10); };
  for (std::size_t index = 0; index < out.size(); ++index) {
    out[index] = static_cast<std::byte>(digit(hex[2 * index]) * 16 + digit(hex[2 * index + 1]));
  }
  return out;
}

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
  EXPECT_EQ(detector.deadline(rto), t0 + seconds(1));
  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(999), rto), LivenessDetector::Verdict::kAlive);
  EXPECT_EQ(detector.missed(), 0u);

  EXPECT_EQ(detector.on_timeout(t0 + seconds(1), rto), LivenessDetector::Verdict::kMissedHeartbeat);
  EXPECT_EQ(detector.missed(), 1u);
  EXPECT_EQ(detector.deadline(rto), t0 + seconds(2));
  // Calling again within the same interval is not another miss.
  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(1500), rto), LivenessDetector::Verdict::kAlive);
  EXPECT_EQ(detector.missed(), 1u);

  EXPECT_EQ(detector.on_timeout(t0 + seconds(2), rto), LivenessDetector::Verdict::kMissedHeartbeat);
  EXPECT_EQ(detector.on_timeout(t0 + seconds(3), rto), LivenessDetector::Verdict::kMissedHeartbeat);
  EXPECT_EQ(detector.missed(), 3u);
  // All misses spent: the deadline is the budget, 3 s + min(RTO, interval).
  EXPECT_EQ(detector.deadline(rto), t0 + milliseconds(3200));
  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(3199), rto), LivenessDetector::Verdict::kAlive);
  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(3200), rto), LivenessDetector::Verdict::kSuspect);
  EXPECT_EQ(detector.missed(), 3u);
}

TEST(LivenessDetector, InboundResetsTheCount) {
  const HeartbeatParameters parameters{seconds(1), 2};
  LivenessDetector detector(parameters, t0);
  EXPECT_EQ(detector.on_timeout(t0 + seconds(1), seconds(1)),
            LivenessDetector::Verdict::kMissedHeartbeat);
  EXPECT_EQ(detector.on_timeout(t0 + seconds(2), seconds(1)),
            LivenessDetector::Verdict::kMissedHeartbeat);
  EXPECT_EQ(detector.missed(), 2u);
  detector.on_inbound(t0 + milliseconds(2500));
  EXPECT_EQ(detector.missed(), 0u);
  EXPECT_EQ(detector.last_inbound(), t0 + milliseconds(2500));
  EXPECT_EQ(detector.deadline(seconds(1)), t0 + milliseconds(3500));
  EXPECT_EQ(detector.on_timeout(t0 + seconds(3), seconds(1)), LivenessDetector::Verdict::kAlive);
  EXPECT_EQ(detector.on_timeout(t0 + milliseconds(3500), seconds(1)),
            LivenessDetector::Verdict::kMissedHeartbeat);
}

TEST(LivenessDetector, SuspectDeadlineUsesCurrentRetransmissionTimeout) {
  const HeartbeatParameters parameters{seconds(10), 1};
  LivenessDetector detector(parameters, t0);
  EXPECT_EQ(detector.on_timeout(t0 + seconds(10), seconds(4)),
            LivenessDetector::Verdict::kMissedHeartbeat);
  EXPECT_EQ(detector.deadline(seconds(4)), t0 + seconds(14));
  EXPECT_EQ(detector.deadline(seconds(30)), t0 + seconds(20));  // slack capped at one interval
  EXPECT_EQ(detector.on_timeout(t0 + seconds(13), seconds(4)), LivenessDetector::Verdict::kAlive);
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

// ---- ReconnectBackoff ---------------------------------------------------------------------------

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

// ---- Key schedule -------------------------------------------------------------------------------

const SessionId kSessionId = sequence_from<16>(0x00);
const std::array<std::byte, 32> kKeying = sequence_from<32>(0x20);
const Secret kStaticKey = sequence_from<32>(0x40);
const Secret kSecret = sequence_from<32>(0x60);

TEST(KeySchedule, DerivedKeysMatchKnownAnswers) {
  // HKDF-SHA256(salt = session id, ikm = keying, "tether v1 session master"), then one HKDF with an
  // absent salt per purpose (values computed with an independent HKDF implementation).
  const SessionKeys keys = derive_session_keys(kSessionId, kKeying);
  EXPECT_EQ(keys.resume_secret,
            from_hex("76c135afaab6e996fb3b915375f7d6801c25b230bf6ca9bca4ef2e855e367f5e"));
  EXPECT_EQ(keys.client_close_key,
            from_hex("a05803f7f909c0256b3ac4987847bb92b6068cb4fdcd37a4c4d8883431fec514"));
  EXPECT_EQ(keys.server_close_key,
            from_hex("a8cb1dd7b2ab634b36ea791e8b44341e5a2a499d506a5ef9f41cc804b810b887"));
}

TEST(KeySchedule, DerivationIsDeterministicAndDistinctPerLabel) {
  const SessionKeys first = derive_session_keys(kSessionId, kKeying);
  const SessionKeys second = derive_session_keys(kSessionId, kKeying);
  EXPECT_EQ(first.resume_secret, second.resume_secret);
  EXPECT_EQ(first.client_close_key, second.client_close_key);
  EXPECT_EQ(first.server_close_key, second.server_close_key);
  const std::set<Secret> distinct{first.resume_secret, first.client_close_key,
                                  first.server_close_key};
  EXPECT_EQ(distinct.size(), 3u);
  EXPECT_NE(first.resume_secret, Secret{});
}

TEST(KeySchedule, DerivationDependsOnSessionIdAndKeyingMaterial) {
  const SessionKeys base = derive_session_keys(kSessionId, kKeying);
  SessionId other_id = kSessionId;
  other_id[15] ^= std::byte{1};
  auto other_keying = kKeying;
  other_keying[0] ^= std::byte{0x80};
  const SessionKeys by_id = derive_session_keys(other_id, kKeying);
  const SessionKeys by_keying = derive_session_keys(kSessionId, other_keying);
  EXPECT_NE(by_id.resume_secret, base.resume_secret);
  EXPECT_NE(by_id.client_close_key, base.client_close_key);
  EXPECT_NE(by_id.server_close_key, base.server_close_key);
  EXPECT_NE(by_keying.resume_secret, base.resume_secret);
  EXPECT_NE(by_keying.client_close_key, base.client_close_key);
  EXPECT_NE(by_keying.server_close_key, base.server_close_key);
}

TEST(KeySchedule, ResumeProofMatchesKnownAnswers) {
  EXPECT_EQ(resume_proof(kSecret, Role::kClient, kSessionId, kKeying),
            from_hex("26a4309456494c8636a9e4d7b9cbcf405ce5fc99360c24efed4639fd5b9dbe8e"));
  EXPECT_EQ(resume_proof(kSecret, Role::kServer, kSessionId, kKeying),
            from_hex("84f171f4372a2d1d9422371127818096de975ba1dd8bd5fca78c58f39e68a967"));
}

TEST(KeySchedule, ResumeProofDiffersPerRoleKeyingSecretAndSession) {
  const Secret client = resume_proof(kSecret, Role::kClient, kSessionId, kKeying);
  EXPECT_EQ(client, resume_proof(kSecret, Role::kClient, kSessionId, kKeying));
  EXPECT_NE(client, resume_proof(kSecret, Role::kServer, kSessionId, kKeying));
  auto other_keying = kKeying;
  other_keying[31] ^= std::byte{1};
  EXPECT_NE(client, resume_proof(kSecret, Role::kClient, kSessionId, other_keying));
  Secret other_secret = kSecret;
  other_secret[0] ^= std::byte{1};
  EXPECT_NE(client, resume_proof(other_secret, Role::kClient, kSessionId, kKeying));
  SessionId other_id = kSessionId;
  other_id[0] ^= std::byte{1};
  EXPECT_NE(client, resume_proof(kSecret, Role::kClient, other_id, kKeying));
}

TEST(KeySchedule, RatchetChangesTheSecretPerConnection) {
  const Secret next = ratchet_resume_secret(kSecret, kKeying);
  EXPECT_EQ(next, from_hex("4e0e0028444448e56ad6c124bae6a5f68bbf05a55ed2984b9c947354da198672"));
  EXPECT_NE(next, kSecret);
  EXPECT_EQ(next, ratchet_resume_secret(kSecret, kKeying));
  auto other_keying = kKeying;
  other_keying[5] ^= std::byte{1};
  EXPECT_NE(next, ratchet_resume_secret(kSecret, other_keying));
  // A second ratchet moves on again; no value repeats.
  const Secret after = ratchet_resume_secret(next, kKeying);
  EXPECT_NE(after, next);
  EXPECT_NE(after, kSecret);
  // The proof made with the old secret is not the proof made with the new one.
  EXPECT_NE(resume_proof(kSecret, Role::kClient, kSessionId, kKeying),
            resume_proof(next, Role::kClient, kSessionId, kKeying));
}

TEST(KeySchedule, StatelessResetTokenDependsOnStaticKeyAndSessionId) {
  const Secret token = stateless_reset_token(kStaticKey, kSessionId);
  EXPECT_EQ(token, from_hex("97b1a3847a0d6c7731a06e05a22eb1a6a85cbe17ec10288763e48e3e904febfe"));
  EXPECT_EQ(token, stateless_reset_token(kStaticKey, kSessionId));
  Secret other_key = kStaticKey;
  other_key[31] ^= std::byte{1};
  EXPECT_NE(token, stateless_reset_token(other_key, kSessionId));
  SessionId other_id = kSessionId;
  other_id[7] ^= std::byte{1};
  EXPECT_NE(token, stateless_reset_token(kStaticKey, other_id));
}

}  // namespace
}  // namespace tether::session
