// PathLiveness is the liveness state of one connection: its heartbeat schedule and Ping sequence,
// the silence detector, whether it is suspect, and its deadlines under the heartbeat policy.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>

#include "session/heartbeat_policy.hpp"
#include "session/liveness.hpp"
#include "session/types.hpp"

namespace tether::session {

class PathLiveness {
 public:
  // `role` is this side's: it sets the period of its own Pings (heartbeat_policy::own_ping_period).
  PathLiveness(HeartbeatParameters heartbeat, Time now, Role role = Role::kClient)
      : detector_(heartbeat, now), schedule_(own_period(heartbeat, role), now), role_(role) {}

  // Starts over with (newly negotiated) parameters: the path proved itself at `now`.
  void restart(HeartbeatParameters heartbeat, Time now) {
    detector_ = LivenessDetector(heartbeat, now);
    schedule_ = HeartbeatSchedule(own_period(heartbeat, role_), now);
  }

  // Any inbound byte is proof of life: misses are forgotten and a suspect path is trusted again.
  void on_inbound(Time now) {
    detector_.on_inbound(now);
    suspect_ = false;
  }
  void mark_suspect() { suspect_ = true; }
  [[nodiscard]] bool suspect() const { return suspect_; }
  [[nodiscard]] Time last_inbound() const { return detector_.last_inbound(); }

  // The next missed heartbeat or the end of the budget (while not suspect).
  [[nodiscard]] std::optional<Time> silence_deadline(Duration retransmission_timeout) const {
    if (suspect_) return std::nullopt;
    return detector_.deadline(retransmission_timeout);
  }
  // When a suspect path is dead (the dead rule of heartbeat_policy.hpp).
  [[nodiscard]] std::optional<Time> dead_deadline(Duration budget) const {
    if (!suspect_) return std::nullopt;
    return last_inbound() + heartbeat_policy::dead_after(budget);
  }
  [[nodiscard]] bool dead(Time now, Duration budget) const {
    const auto deadline = dead_deadline(budget);
    return deadline && now >= *deadline;
  }

  // Counts the heartbeats missed by `now` into `missed`; true when the budget is spent (the path
  // turns suspect).
  [[nodiscard]] bool check_silence(Time now, Duration retransmission_timeout,
                                   std::uint64_t& missed) {
    if (suspect_) return false;
    while (now >= detector_.deadline(retransmission_timeout)) {
      const auto verdict = detector_.on_timeout(now, retransmission_timeout);
      if (verdict == LivenessDetector::Verdict::kMissedHeartbeat) {
        ++missed;
        continue;
      }
      if (verdict == LivenessDetector::Verdict::kSuspect) {
        suspect_ = true;
        return true;
      }
      break;
    }
    return false;
  }

  [[nodiscard]] Time heartbeat_deadline() const { return schedule_.deadline(); }
  [[nodiscard]] bool heartbeat_due(Time now) const { return schedule_.due(now); }
  // The peer's Ping arrived (and is answered): it stands for this side's own Ping of the period.
  void on_peer_ping(Time now) { schedule_.on_peer_ping(now); }
  // A Ping goes out now: returns its sequence number (the first unanswered one is timed).
  std::uint64_t on_ping_sent(Time now) {
    const std::uint64_t sequence = next_ping_sequence_++;
    if (!outstanding_ping_) outstanding_ping_ = {sequence, now};
    schedule_.on_ping_sent(now);
    return sequence;
  }
  // A Pong arrived: the RTT sample when it answers the timed Ping.
  [[nodiscard]] std::optional<Duration> on_pong(std::uint64_t sequence, Time now) {
    if (!outstanding_ping_ || outstanding_ping_->first != sequence) return std::nullopt;
    const Duration sample = now - outstanding_ping_->second;
    outstanding_ping_.reset();
    return sample;
  }
  [[nodiscard]] bool ping_outstanding() const { return outstanding_ping_.has_value(); }

 private:
  static Duration own_period(const HeartbeatParameters& heartbeat, Role role) {
    return heartbeat_policy::own_ping_period(heartbeat.interval, role == Role::kServer);
  }

  LivenessDetector detector_;
  HeartbeatSchedule schedule_;
  std::uint64_t next_ping_sequence_ = 1;
  std::optional<std::pair<std::uint64_t, Time>> outstanding_ping_;
  Role role_;
  bool suspect_ = false;
};

}  // namespace tether::session
