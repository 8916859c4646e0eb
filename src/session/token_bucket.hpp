// TokenBucket is a sans-I/O rate limit: `rate` tokens per second, at most `burst` saved up (a rate
// of 0 means no limit); the caller passes the current time.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "session/types.hpp"

namespace tether::session {

class TokenBucket {
 public:
  TokenBucket(std::uint64_t rate_per_second, std::uint64_t burst, Time now)
      : rate_(rate_per_second), burst_(burst), tokens_(burst), refilled_at_(now) {}

  // Takes one token; false when none is left (the action is refused).
  bool try_take(Time now) {
    if (rate_ == 0) return true;
    refill(now);
    if (tokens_ == 0) return false;
    --tokens_;
    return true;
  }

 private:
  void refill(Time now) {
    if (rate_ == 0 || now <= refilled_at_) return;
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - refilled_at_).count();
    // Whole tokens earned since the last refill; the remainder of the interval is kept.
    const std::uint64_t nanoseconds_per_token = std::max<std::uint64_t>(1, 1'000'000'000 / rate_);
    const std::uint64_t earned = static_cast<std::uint64_t>(elapsed) / nanoseconds_per_token;
    if (earned == 0) return;
    if (tokens_ + earned >= burst_) {
      tokens_ = burst_;
      refilled_at_ = now;
      return;
    }
    tokens_ += earned;
    refilled_at_ += std::chrono::nanoseconds(earned * nanoseconds_per_token);
  }

  std::uint64_t rate_;
  std::uint64_t burst_;
  std::uint64_t tokens_;
  Time refilled_at_;
};

}  // namespace tether::session
