// ReconnectBackoff spaces the client's reconnection attempts: immediate first, then exponential
// with jitter up to a cap.
#pragma once

#include <algorithm>
#include <cstdint>

#include "session/types.hpp"

namespace tether::session {

class ReconnectBackoff {
 public:
  ReconnectBackoff(Duration initial, Duration cap) : initial_(initial), cap_(cap) {}

  // Delay before the next attempt: zero for the first after a success, then initial * 2^(n-1)
  // capped, scaled by a uniform factor in [0.5, 1.0) drawn from `random` ("equal jitter").
  Duration next_delay(RandomSource& random) {
    const std::uint64_t failures = failures_++;
    if (failures == 0) return Duration::zero();
    Duration base = initial_;
    for (std::uint64_t step = 1; step < failures && base < cap_; ++step) base *= 2;
    base = std::min(base, cap_);
    // 52 random bits scaled into [0, 0.5): exact in a double, so the fraction never rounds up to 1.
    const double fraction = 0.5 + static_cast<double>(random.next_u64() >> 12) * 0x1.0p-53;
    return std::chrono::duration_cast<Duration>(base * fraction);
  }

  void on_success() { failures_ = 0; }
  [[nodiscard]] std::uint64_t failures() const { return failures_; }

 private:
  Duration initial_;
  Duration cap_;
  std::uint64_t failures_ = 0;
};

}  // namespace tether::session
