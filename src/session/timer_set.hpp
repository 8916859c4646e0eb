// TimerSet holds every deadline of a session, each in its own named slot: the session's next
// deadline is the earliest armed slot, and a timeout is dispatched by the slots that are due.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "session/types.hpp"

namespace tether::session {

// One slot per timing rule. Slots that are per connection hold the earliest over the session's
// connections (the session looks up which connection is due). The order is the order in which
// on_timeout() handles due slots.
enum class TimerSlot : std::uint8_t {
  kHandshake,         // a connection's first frame or its Hello/Resume answer is overdue
  kPathLiveness,      // a heartbeat interval passed in silence (a miss) or the budget ran out
  kPathDead,          // a suspect connection stayed silent for twice the budget (the dead rule)
  kHeartbeat,         // the next Ping on a connection
  kAckDelay,          // delayed acknowledgements are due
  kAckProgress,       // outstanding data made no acknowledgement progress for the budget
  kLinger,            // server: a suspended session is freed
  kGiveUp,            // client: the reconnect limit ran out
  kReconnect,         // client: the backoff before the next connection attempt ended
  kReauthenticate,    // client: start the next re-authentication; both: an exchange's deadline;
                      // server: the grace of a session past its lifetime
  kCredentialExpiry,  // the session's lifetime ends (server: it ends or is flagged; client: data
                      // is held until re-authentication completes)
};
inline constexpr std::size_t kTimerSlotCount =
    static_cast<std::size_t>(TimerSlot::kCredentialExpiry) + 1;
[[nodiscard]] const char* to_string(TimerSlot slot);

class TimerSet {
 public:
  // Arms `slot` at `deadline` (nullopt disarms it).
  void set(TimerSlot slot, std::optional<Time> deadline) {
    auto& entry = slots_[index(slot)];
    if (entry == deadline) return;
    entry = deadline;
    changed_ = true;
  }
  void cancel(TimerSlot slot) { set(slot, std::nullopt); }
  void clear() {
    for (std::size_t i = 0; i < kTimerSlotCount; ++i) set(static_cast<TimerSlot>(i), std::nullopt);
  }

  [[nodiscard]] std::optional<Time> get(TimerSlot slot) const { return slots_[index(slot)]; }
  [[nodiscard]] bool armed(TimerSlot slot) const { return slots_[index(slot)].has_value(); }
  [[nodiscard]] bool due(TimerSlot slot, Time now) const {
    const auto& entry = slots_[index(slot)];
    return entry && now >= *entry;
  }

  // The earliest armed deadline, if any.
  [[nodiscard]] std::optional<Time> earliest() const {
    std::optional<Time> result;
    for (const auto& entry : slots_) {
      if (entry && (!result || *entry < *result)) result = entry;
    }
    return result;
  }

  // Whether any slot changed since the last take_changed() (a server's deadline index re-reads
  // earliest() only for sessions whose timers changed). Returns the bit and clears it.
  [[nodiscard]] bool take_changed() {
    const bool result = changed_;
    changed_ = false;
    return result;
  }
  [[nodiscard]] bool changed() const { return changed_; }

 private:
  static constexpr std::size_t index(TimerSlot slot) { return static_cast<std::size_t>(slot); }

  std::array<std::optional<Time>, kTimerSlotCount> slots_{};
  bool changed_ = false;
};

inline const char* to_string(TimerSlot slot) {
  switch (slot) {
    case TimerSlot::kHandshake:
      return "handshake";
    case TimerSlot::kPathLiveness:
      return "path-liveness";
    case TimerSlot::kPathDead:
      return "path-dead";
    case TimerSlot::kHeartbeat:
      return "heartbeat";
    case TimerSlot::kAckDelay:
      return "ack-delay";
    case TimerSlot::kAckProgress:
      return "ack-progress";
    case TimerSlot::kLinger:
      return "linger";
    case TimerSlot::kGiveUp:
      return "give-up";
    case TimerSlot::kReconnect:
      return "reconnect";
    case TimerSlot::kReauthenticate:
      return "re-authenticate";
    case TimerSlot::kCredentialExpiry:
      return "credential-expiry";
  }
  return "unknown";
}

}  // namespace tether::session
