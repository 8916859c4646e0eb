// The lifetime rule: how long a session may be used after each (re-)authentication, and when a
// client re-authenticates before that runs out (KIP-368's rule, without its gaps).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

#include "session/types.hpp"

namespace tether::session::lifetime {

// The session's lifetime after an authentication: the credential's remaining lifetime alone when
// there is no `max_reauthentication`, `max_reauthentication` alone when the credential does not
// expire, else the smaller of both; nullopt when neither limits it. Precondition: a
// `credential_remaining` that is set is positive (the server refuses an already-expired
// credential before it gets here: an expiry in the past is never read as "no expiry").
[[nodiscard]] inline std::optional<Duration> session_lifetime(
    std::optional<Duration> credential_remaining, std::optional<Duration> max_reauthentication) {
  if (max_reauthentication && *max_reauthentication <= Duration::zero()) {
    max_reauthentication.reset();  // a non-positive cap is no cap (the audit sign is separate)
  }
  if (!credential_remaining) return max_reauthentication;
  if (!max_reauthentication) return credential_remaining;
  return std::min(*credential_remaining, *max_reauthentication);
}

// A lifetime as Welcome and Reauthenticated carry it: whole milliseconds, rounded down but at
// least 1 for any positive lifetime, because 0 means "no limit".
[[nodiscard]] inline std::uint64_t to_wire(std::optional<Duration> lifetime) {
  if (!lifetime) return 0;
  const auto milliseconds = std::chrono::duration_cast<std::chrono::milliseconds>(*lifetime);
  return std::max<std::int64_t>(1, milliseconds.count());
}
[[nodiscard]] inline std::optional<Duration> from_wire(std::uint64_t milliseconds) {
  if (milliseconds == 0) return std::nullopt;
  // Bounded so that adding it to a time point cannot overflow (about 292 years in nanoseconds).
  constexpr std::uint64_t kMax = std::uint64_t{100} * 365 * 24 * 3600 * 1000;
  return std::chrono::milliseconds(std::min(milliseconds, kMax));
}

// Client: how long after an authentication to start the next one, for a session `lifetime`
// long: a point drawn uniformly between 85% and 95% of it (`unit_random` in [0, 1) does the
// drawing), so that a fleet of clients does not re-authenticate at once, and never sooner than
// `min_interval` (the server's once-per-interval limit).
[[nodiscard]] inline Duration reauthentication_delay(Duration lifetime, double unit_random,
                                                     Duration min_interval) {
  const double fraction = 0.85 + 0.10 * std::clamp(unit_random, 0.0, 1.0);
  const auto delay =
      std::chrono::duration_cast<Duration>(std::chrono::duration<double, Duration::period>(
          static_cast<double>(lifetime.count()) * fraction));
  return std::max(delay, min_interval);
}

// A uniform double in [0, 1) from 64 random bits.
[[nodiscard]] inline double unit_interval(std::uint64_t bits) {
  return static_cast<double>(bits >> 11) * (1.0 / 9007199254740992.0);  // 2^-53
}

}  // namespace tether::session::lifetime
