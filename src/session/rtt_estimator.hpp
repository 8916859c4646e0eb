// RttEstimator keeps the smoothed round-trip time and its variation (RFC 6298) from heartbeat
// echoes.
#pragma once

#include <algorithm>
#include <optional>

#include "session/types.hpp"

namespace tether::session {

class RttEstimator {
 public:
  static constexpr Duration kInitialRetransmissionTimeout = seconds(1);  // RFC 6298 (2.1)
  static constexpr Duration kMinimumRetransmissionTimeout = milliseconds(200);
  static constexpr Duration kMaximumRetransmissionTimeout = seconds(60);

  // Feeds one measured round trip. Negative samples (impossible with a monotonic clock) are
  // ignored.
  void add_sample(Duration sample) {
    if (sample < Duration::zero()) return;
    if (!smoothed_) {
      smoothed_ = sample;  // RFC 6298 (2.2)
      variation_ = sample / 2;
    } else {
      const Duration error = *smoothed_ > sample ? *smoothed_ - sample : sample - *smoothed_;
      variation_ = (3 * variation_ + error) / 4;   // beta = 1/4 (2.3)
      *smoothed_ = (7 * *smoothed_ + sample) / 8;  // alpha = 1/8
    }
    latest_ = sample;
  }

  [[nodiscard]] std::optional<Duration> smoothed() const { return smoothed_; }
  [[nodiscard]] Duration variation() const { return variation_; }
  [[nodiscard]] Duration latest() const { return latest_; }

  // SRTT + 4 * RTTVAR, clamped; 1 s before the first sample.
  [[nodiscard]] Duration retransmission_timeout() const {
    if (!smoothed_) return kInitialRetransmissionTimeout;
    return std::clamp(*smoothed_ + 4 * variation_, kMinimumRetransmissionTimeout,
                      kMaximumRetransmissionTimeout);
  }

 private:
  std::optional<Duration> smoothed_;
  Duration variation_ = Duration::zero();
  Duration latest_ = Duration::zero();
};

}  // namespace tether::session
