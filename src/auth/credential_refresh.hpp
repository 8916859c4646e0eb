// ExpiringCredential is a client credential that expires (KIP-368's ExpiringCredential: who, since
// when, until when, and the last instant it can be refreshed); RefreshPolicy and next_refresh()
// are Kafka's schedule for refreshing one before it expires. Pure: the caller passes the time and
// a random number, so the schedule is tested exactly.
#pragma once

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include "tether/expected.hpp"

namespace tether::auth {

using WallClock = std::chrono::system_clock;
using WallTime = WallClock::time_point;

// What an application's credential source says about its current credential. Applications
// implement it for their own sources (the CLI's token file, token command, password and client
// certificate do).
class ExpiringCredential {
 public:
  virtual ~ExpiringCredential() = default;
  [[nodiscard]] virtual std::string principal() const = 0;
  // When the credential was issued, if known (a token's iat).
  [[nodiscard]] virtual std::optional<WallTime> start() const = 0;
  // When it expires; nullopt for one that does not (a password without an expiry).
  [[nodiscard]] virtual std::optional<WallTime> expiry() const = 0;
  // The last instant it can be refreshed; after it a new login is needed (nullopt: no limit).
  [[nodiscard]] virtual std::optional<WallTime> absolute_last_refresh() const = 0;
};

// Kafka's sasl.login.refresh.* settings, with its defaults and ranges.
struct RefreshPolicy {
  double window_factor = 0.80;                   // 0.5 .. 1.0
  double window_jitter = 0.05;                   // 0 .. 0.25
  std::chrono::seconds min_period{60};           // 0 .. 900 s
  std::chrono::seconds buffer{300};              // 0 .. 3600 s
  std::chrono::seconds retry_after_failure{10};  // a failed refresh is tried again then
};

// Why a policy is out of Kafka's ranges (the message names the option), or nothing.
[[nodiscard]] inline Expected<void, std::string> validate(const RefreshPolicy& policy) {
  if (!(policy.window_factor >= 0.5 && policy.window_factor <= 1.0))
    return make_unexpected(std::string("--refresh-window-factor must be between 0.5 and 1.0"));
  if (!(policy.window_jitter >= 0.0 && policy.window_jitter <= 0.25))
    return make_unexpected(std::string("--refresh-window-jitter must be between 0 and 0.25"));
  if (policy.min_period < std::chrono::seconds(0) || policy.min_period > std::chrono::seconds(900))
    return make_unexpected(std::string("--refresh-min-period must be between 0 and 900 s"));
  if (policy.buffer < std::chrono::seconds(0) || policy.buffer > std::chrono::seconds(3600))
    return make_unexpected(std::string("--refresh-buffer must be between 0 and 3600 s"));
  return {};
}

// When to refresh a credential that expires at `expiry` (issued at `start`, if known; else the
// schedule counts from `now`), `unit_random` in [0, 1) drawing the jitter:
//   start + (expiry - start) x (factor + jitter x random),
// no later than expiry - buffer and no sooner than now + min_period; when both cannot hold (the
// credential is too close to its expiry), now + (expiry - now) x the same fraction. Never later
// than `last_refresh`, and `now` for a credential already expired.
[[nodiscard]] inline WallTime next_refresh(std::optional<WallTime> start, WallTime expiry,
                                           std::optional<WallTime> last_refresh, WallTime now,
                                           const RefreshPolicy& policy, double unit_random) {
  if (expiry <= now) return now;
  const double fraction =
      policy.window_factor + policy.window_jitter * std::clamp(unit_random, 0.0, 1.0);
  const auto scaled = [fraction](WallClock::duration span) {
    return std::chrono::duration_cast<WallClock::duration>(
        std::chrono::duration<double, WallClock::duration::period>(
            static_cast<double>(span.count()) * fraction));
  };
  const WallTime from = std::min(start.value_or(now), now);
  WallTime refresh = from + scaled(expiry - from);
  const WallTime earliest = now + policy.min_period;
  const WallTime latest = expiry - policy.buffer;
  if (earliest > latest) {
    refresh = now + scaled(expiry - now);
  } else {
    refresh = std::clamp(refresh, earliest, latest);
  }
  if (last_refresh) refresh = std::min(refresh, std::max(*last_refresh, now));
  return refresh;
}

// The same for an ExpiringCredential: nullopt when it does not expire (nothing to refresh).
[[nodiscard]] inline std::optional<WallTime> next_refresh(const ExpiringCredential& credential,
                                                          WallTime now, const RefreshPolicy& policy,
                                                          double unit_random) {
  const std::optional<WallTime> expiry = credential.expiry();
  if (!expiry) return std::nullopt;
  return next_refresh(credential.start(), *expiry, credential.absolute_last_refresh(), now, policy,
                      unit_random);
}

// After a refresh failed at `now`: when to try again.
[[nodiscard]] inline WallTime retry_refresh(WallTime now, const RefreshPolicy& policy) {
  return now + policy.retry_after_failure;
}

}  // namespace tether::auth
