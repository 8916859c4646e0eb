// AuthenticationThrottle counts recent authentication attempts per key (a source address, a user
// name) in fixed memory, so that guessing is slowed however many keys an attacker uses, and a key
// it never saw is never slowed.
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
  double failures_allowed = 5;  // attempts a key may have pending or failed before it is refused
  // Attempts are forgotten exponentially: each one counts half after this long.
  Duration half_life = std::chrono::seconds(60);
};

// A fixed-size table of decaying counts, indexed by a keyed 64-bit hash of the key (the hash key
// comes from the server's secret, so a stranger cannot aim collisions at a victim). Each key has
// its own entry, found among kProbe slots from its hash; when all of them hold other keys, the one
// with the smallest decayed count is replaced. So a flood of keys evicts its own entries and never
// raises anyone else's count: a key is throttled only for its own attempts (or, with probability
// about 2^-64, a full hash collision). Memory is fixed: kSlots entries of 24 bytes (192 KiB).
//
// The caller counts an attempt when it starts (record) and takes it back when it succeeds
// (refund), so attempts running in parallel, and exchanges abandoned before their verdict, count.
class AuthenticationThrottle {
 public:
  static constexpr std::size_t kSlots = 8192;
  static constexpr std::size_t kProbe = 8;

  AuthenticationThrottle(ThrottlePolicy policy, std::uint64_t hash_key)
      : policy_(policy), hash_key_(hash_key), entries_(kSlots) {}

  // True when `key` has too many recent attempts: its next attempt is refused unheard.
  [[nodiscard]] bool throttled(std::string_view key, Time now) const {
    return !key.empty() && estimate(key, now) >= policy_.failures_allowed;
  }

  // One more attempt (or failure) for `key`.
  void record_failure(std::string_view key, Time now) { add(key, 1.0, now); }
  // An attempt that succeeded: takes back what record_failure added for it (never below zero).
  void refund(std::string_view key, Time now) { add(key, -1.0, now); }

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
  struct Entry {
    std::uint64_t tag = 0;  // the key's hash; 0: empty
    double value = 0;
    Time updated{};
  };

  [[nodiscard]] std::uint64_t hash(std::string_view key) const {
    // FNV-style mixing seeded with the secret, then a finaliser; never 0 (0 marks empty).
    std::uint64_t value = hash_key_ ^ 0x9e3779b97f4a7c15ull;
    for (char c : key) {
      value ^= static_cast<unsigned char>(c);
      value *= 0x100000001b3ull;
      value ^= value >> 29;
    }
    value ^= hash_key_;
    value *= 0xff51afd7ed558ccdull;
    value ^= value >> 33;
    value *= 0xc4ceb9fe1a85ec53ull;
    value ^= value >> 33;
    return value == 0 ? 1 : value;
  }

  [[nodiscard]] double decayed(const Entry& entry, Time now) const {
    if (entry.value <= 0 || now <= entry.updated) return std::max(entry.value, 0.0);
    const double elapsed = std::chrono::duration<double>(now - entry.updated).count();
    const double half_life = std::chrono::duration<double>(policy_.half_life).count();
    return entry.value * std::exp2(-elapsed / half_life);
  }

  [[nodiscard]] const Entry* find(std::uint64_t tag) const {
    const std::size_t start = static_cast<std::size_t>(tag % kSlots);
    for (std::size_t probe = 0; probe < kProbe; ++probe) {
      const Entry& entry = entries_[(start + probe) % kSlots];
      if (entry.tag == tag) return &entry;
    }
    return nullptr;
  }

  [[nodiscard]] double estimate(std::string_view key, Time now) const {
    if (key.empty()) return 0;
    const Entry* entry = find(hash(key));
    return entry == nullptr ? 0 : decayed(*entry, now);
  }

  void add(std::string_view key, double amount, Time now) {
    if (key.empty()) return;
    const std::uint64_t tag = hash(key);
    const std::size_t start = static_cast<std::size_t>(tag % kSlots);
    Entry* victim = nullptr;
    double victim_value = 0;
    for (std::size_t probe = 0; probe < kProbe; ++probe) {
      Entry& entry = entries_[(start + probe) % kSlots];
      if (entry.tag == tag) {
        entry.value = std::max(0.0, decayed(entry, now) + amount);
        entry.updated = now;
        return;
      }
      const double value = entry.tag == 0 ? -1 : decayed(entry, now);
      if (victim == nullptr || value < victim_value) {
        victim = &entry;
        victim_value = value;
      }
    }
    if (amount <= 0) return;  // nothing to take back from a key we do not hold
    *victim = Entry{tag, amount, now};
  }

  ThrottlePolicy policy_;
  std::uint64_t hash_key_;
  std::vector<Entry> entries_;
};

}  // namespace tether::session
