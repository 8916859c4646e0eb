// The liveness rules of one path: when to send a heartbeat, when silence means a missed heartbeat
// or a dead path, and when unacknowledged data that stopped making progress means a stalled path.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

#include "session/heartbeat_policy.hpp"
#include "session/types.hpp"

namespace tether::session {

// HeartbeatSchedule owns one deadline: the next time this side sends a Ping on a path.
class HeartbeatSchedule {
 public:
  HeartbeatSchedule(Duration interval, Time now) : interval_(interval), next_(now + interval) {}
  [[nodiscard]] Time deadline() const { return next_; }
  [[nodiscard]] bool due(Time now) const { return now >= next_; }
  void on_ping_sent(Time now) { next_ = now + interval_; }
  // The peer's Ping arrived: this side's own Ping waits a full period from now (see
  // heartbeat_policy::own_ping_period).
  void on_peer_ping(Time now) { next_ = std::max(next_, now + interval_); }

 private:
  Duration interval_;
  Time next_;
};

// LivenessDetector counts heartbeat intervals that pass with no inbound byte at all (any byte is
// proof of life), each once its slack has passed too (HeartbeatParameters::missed_after), and
// declares the path suspect once the budget is spent.
class LivenessDetector {
 public:
  enum class Verdict : std::uint8_t { kAlive, kMissedHeartbeat, kSuspect };

  LivenessDetector(HeartbeatParameters parameters, Time now)
      : parameters_(parameters), last_inbound_(now) {}

  void on_inbound(Time now) {
    last_inbound_ = now;
    missed_ = 0;
  }

  [[nodiscard]] Time last_inbound() const { return last_inbound_; }
  [[nodiscard]] std::uint64_t missed() const { return missed_; }

  [[nodiscard]] Time deadline(Duration retransmission_timeout) const {
    if (missed_ < parameters_.missing_allowed) {
      return last_inbound_ + parameters_.missed_after(missed_ + 1, retransmission_timeout);
    }
    return last_inbound_ + parameters_.budget(retransmission_timeout);
  }

  // Call when now >= deadline(): reports one missed heartbeat, or the path as suspect.
  Verdict on_timeout(Time now, Duration retransmission_timeout) {
    if (now < deadline(retransmission_timeout)) return Verdict::kAlive;
    if (missed_ < parameters_.missing_allowed) {
      ++missed_;
      return Verdict::kMissedHeartbeat;
    }
    return Verdict::kSuspect;
  }

 private:
  HeartbeatParameters parameters_;
  Time last_inbound_;
  std::uint64_t missed_ = 0;
};

// AckProgressDetector notices a stalled path while data is queued behind it: when this side has
// bytes (or a Ping) outstanding and acknowledgements stop advancing for the budget, the path is
// suspect even if the peer's own heartbeats still arrive (the DOTS head-of-line problem).
class AckProgressDetector {
 public:
  // `outstanding` says whether anything sent is still unacknowledged; `progressed` whether the
  // acknowledged position advanced at `now`.
  void update(bool outstanding, bool progressed, Time now) {
    if (!outstanding) {
      waiting_since_.reset();
    } else if (progressed || !waiting_since_) {
      waiting_since_ = now;
    }
  }
  void reset() { waiting_since_.reset(); }

  [[nodiscard]] std::optional<Time> deadline(Duration budget) const {
    if (!waiting_since_) return std::nullopt;
    return *waiting_since_ + budget;
  }

 private:
  std::optional<Time> waiting_since_;
};

}  // namespace tether::session
