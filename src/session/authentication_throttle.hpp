// AuthenticationThrottle counts recent authentication failures per key (a source address, a user
// name) in fixed memory, so that guessing is slowed however many keys an attacker uses.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <vector>

#include "session/types.hpp"

namespace tether::session {

struct ThrottlePolicy {
  double failures_allowed = 5;  // failures a key may have before its attempts are refused
  // Failures are forgotten exponentially: each one counts half after this long.
  Duration half_life = std::chrono::seconds(60);
};

// A count-min sketch with decay: two rows of counters indexed by two keyed hashes of the key. A
// key's estimate is the smaller of its two counters, so it is never below the key's own decayed
// failure count, and keys that collide in one row rarely collide in the other. Memory is fixed
// (2 x kWidth counters of 16 bytes) whatever the number of keys; the hash key (from the server's
// secret) keeps a stranger from choosing keys that collide with a victim's.
class AuthenticationThrottle {
 public:
  static constexpr std::size_t kWidth = 4096;

  AuthenticationThrottle(ThrottlePolicy policy, std::uint64_t hash_key)
      : policy_(policy), hash_key_(hash_key), counters_(2 * kWidth) {}

  // True when `key` has had too many recent failures: its next attempt is refused unheard.
  [[nodiscard]] bool throttled(std::string_view key, Time now) const {
    return !key.empty() && estimate(key, now) >= policy_.failures_allowed;
  }

  void record_failure(std::string_view key, Time now) {
    if (key.empty()) return;
    for (std::size_t row = 0; row < 2; ++row) {
      Counter& counter = counters_[row * kWidth + index(key, row)];
      counter.value = decayed(counter, now) + 1.0;
      counter.updated = now;
    }
  }

  // How long until `key` may try again (zero when it is not throttled).
  [[nodiscard]] Duration retry_after(std::string_view key, Time now) const {
    const double value = estimate(key, now);
    if (value < policy_.failures_allowed) return Duration::zero();
    // value * 2^(-t / half_life) falls below the allowance after t = half_life * log2(value / a).
    const double halvings = std::log2(value / policy_.failures_allowed);
    return std::chrono::duration_cast<Duration>(policy_.half_life * halvings) +
           std::chrono::milliseconds(1);
  }

 private:
  struct Counter {
    double value = 0;
    Time updated{};
  };

  [[nodiscard]] std::size_t index(std::string_view key, std::size_t row) const {
    // Keyed per row: the seed mixes the secret with the row before hashing the key.
    const std::uint64_t seed = hash_key_ ^ (0x9e3779b97f4a7c15ull * (row + 1));
    std::uint64_t hash = seed;
    for (char c : key) {
      hash ^= static_cast<unsigned char>(c);
      hash *= 0x100000001b3ull;
      hash ^= hash >> 29;
    }
    hash ^= seed;
    hash *= 0xff51afd7ed558ccdull;
    hash ^= hash >> 33;
    return static_cast<std::size_t>(hash % kWidth);
  }

  [[nodiscard]] double decayed(const Counter& counter, Time now) const {
    if (counter.value == 0 || now <= counter.updated) return counter.value;
    const double elapsed = std::chrono::duration<double>(now - counter.updated).count();
    const double half_life = std::chrono::duration<double>(policy_.half_life).count();
    return counter.value * std::exp2(-elapsed / half_life);
  }

  [[nodiscard]] double estimate(std::string_view key, Time now) const {
    if (key.empty()) return 0;
    return std::min(decayed(counters_[index(key, 0)], now),
                    decayed(counters_[kWidth + index(key, 1)], now));
  }

  ThrottlePolicy policy_;
  std::uint64_t hash_key_;
  std::vector<Counter> counters_;  // row 0, then row 1 (128 KiB in all)
};

}  // namespace tether::session
