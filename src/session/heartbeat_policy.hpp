// HeartbeatPolicy is the one place that states tether's heartbeat rule: the default interval and
// allowed misses, how the two sides agree on them, when a silent path is suspect and when it is
// dead, and the kernel's TCP_USER_TIMEOUT that follows from the agreed values. Change the rule
// here.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace tether::session {

using HeartbeatDuration = std::chrono::nanoseconds;

// The negotiated heartbeat parameters (DOTS heartbeat-interval and missing-hb-allowed) and the
// detection budget derived from them.
struct HeartbeatParameters {
  HeartbeatDuration interval = std::chrono::seconds(5);
  std::uint64_t missing_allowed = 3;

  // How long a path may stay silent (or stall) before it is suspect: the allowed misses plus one
  // RTO of slack for a heartbeat in flight, the slack capped at one interval.
  [[nodiscard]] HeartbeatDuration budget(HeartbeatDuration retransmission_timeout) const {
    return interval * static_cast<std::int64_t>(missing_allowed) +
           std::min(retransmission_timeout, interval);
  }
  // The budget with the largest slack: the latest a silent path turns suspect, whatever the RTT.
  [[nodiscard]] HeartbeatDuration worst_case_budget() const { return budget(interval); }
  // How long a path may stay silent before its `count`-th heartbeat (1 .. missing_allowed) counts
  // as missed: `count` intervals plus the same slack for one in flight, so that a peer's heartbeat
  // sent one interval after the last one is not counted missed before it can arrive (and a
  // heartbeat on time costs no timer firing). The last miss falls at the budget.
  [[nodiscard]] HeartbeatDuration missed_after(std::uint64_t count,
                                               HeartbeatDuration retransmission_timeout) const {
    return interval * static_cast<std::int64_t>(count) + std::min(retransmission_timeout, interval);
  }

  friend bool operator==(const HeartbeatParameters&, const HeartbeatParameters&) = default;
};

// The bounds a side accepts from its peer (the server for Hello, the client for Welcome).
struct HeartbeatBounds {
  HeartbeatDuration min_interval = std::chrono::milliseconds(100);
  HeartbeatDuration max_interval = std::chrono::seconds(300);
  std::uint64_t max_missing_allowed = 20;
};

namespace heartbeat_policy {

// The default both the library (SessionConfig) and the command line use: a heartbeat every 5 s, 3
// may go missing, so a silent path is suspect after at most 20 s and dead after at most 40 s.
inline constexpr HeartbeatParameters kDefault{std::chrono::seconds(5), 3};
inline constexpr HeartbeatBounds kDefaultBounds{};

// A peer's milliseconds as a duration, clamped into [low, high] *before* the conversion, so that no
// value a peer can send overflows the nanosecond representation.
[[nodiscard]] inline HeartbeatDuration clamp_peer_milliseconds(std::uint64_t value,
                                                               HeartbeatDuration low,
                                                               HeartbeatDuration high) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto low_ms = static_cast<std::uint64_t>(duration_cast<milliseconds>(low).count());
  const auto high_ms =
      std::max(low_ms, static_cast<std::uint64_t>(duration_cast<milliseconds>(high).count()));
  return milliseconds(static_cast<milliseconds::rep>(std::clamp(value, low_ms, high_ms)));
}

// Negotiation: the client proposes in Hello; the server clamps the proposal into its bounds and
// answers the result in Welcome; the client clamps that into its own bounds (a hostile server must
// not make it heartbeat every microsecond). Both sides then use the same values. At least one miss
// is always allowed.
[[nodiscard]] inline HeartbeatParameters negotiate(std::uint64_t interval_ms,
                                                   std::uint64_t missing_allowed,
                                                   const HeartbeatBounds& bounds) {
  HeartbeatParameters result;
  result.interval = clamp_peer_milliseconds(interval_ms, bounds.min_interval, bounds.max_interval);
  result.missing_allowed = std::clamp<std::uint64_t>(
      missing_allowed, 1, std::max<std::uint64_t>(1, bounds.max_missing_allowed));
  return result;
}

// One round trip per interval, not two: a side that received a Ping on a connection within its
// own period sends none of its own there (the Pong it returns is the peer's proof of life, the
// Ping was its own), so own_ping_after() restarts the side's schedule when a Ping arrives. The
// client's period is the interval; the server's is an eighth longer, so the client, whose schedule
// starts no earlier, keeps the Pings and the server only answers them. If the client's Pings stop,
// the server pings on its own period; since the client pings whenever it heard no Ping for one
// interval, neither side ever sees a gap longer than the interval plus one round trip while the
// other is alive, and silence is detected exactly as before.
[[nodiscard]] inline HeartbeatDuration own_ping_period(HeartbeatDuration interval, bool server) {
  return server ? interval + interval / 8 : interval;
}

// The dead rule: a suspect path that stays silent for twice the budget is dead, not just slow; it
// is closed (make-before-break keeps it only until then).
[[nodiscard]] inline HeartbeatDuration dead_after(HeartbeatDuration budget) {
  return 2 * budget;
}

// TCP_USER_TIMEOUT for a connection of a session with these negotiated parameters: the kernel gives
// up on unacknowledged bytes no earlier than the session itself would call the path suspect.
[[nodiscard]] inline std::chrono::milliseconds kernel_user_timeout(
    const HeartbeatParameters& parameters) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(parameters.worst_case_budget());
}

}  // namespace heartbeat_policy

// The free-function name the runtime uses (see transport/runtime.cpp's socket tuning).
[[nodiscard]] inline std::chrono::milliseconds kernel_user_timeout(
    const HeartbeatParameters& parameters) {
  return heartbeat_policy::kernel_user_timeout(parameters);
}

}  // namespace tether::session
