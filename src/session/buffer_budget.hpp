// BufferBudget is a server's shared allowance of stream bytes held in memory (replay buffers and
// received-but-unread bytes) over all its sessions: past it new data waits and new sessions are
// refused.
#pragma once

#include <algorithm>
#include <cstdint>
#include <set>
#include <utility>

namespace tether::session {

class Session;

class BufferBudget {
 public:
  explicit BufferBudget(std::uint64_t limit) : limit_(limit) {}

  [[nodiscard]] std::uint64_t limit() const { return limit_; }
  [[nodiscard]] std::uint64_t used() const { return used_; }
  [[nodiscard]] std::uint64_t available() const { return used_ >= limit_ ? 0 : limit_ - used_; }
  [[nodiscard]] bool exhausted() const { return used_ >= limit_; }

  // A session's holding changed from `before` to `after` bytes.
  void update(std::uint64_t before, std::uint64_t after) {
    used_ = used_ - std::min(used_, before) + after;
  }

  // Sessions whose writes were refused because the budget was exhausted; they are told Writable
  // (take_waiting) once it has room again. A session removes itself when it ends.
  void wait(Session* session) { waiting_.insert(session); }
  void forget(Session* session) { waiting_.erase(session); }
  // The waiting sessions, once at least an eighth of the budget is free again (so that waking them
  // is worth it); empty otherwise.
  std::set<Session*> take_waiting() {
    if (waiting_.empty() || available() < limit_ / 8) return {};
    return std::exchange(waiting_, {});
  }

 private:
  std::uint64_t limit_;
  std::uint64_t used_ = 0;
  std::set<Session*> waiting_;  // a set: a blocked writer calls wait() on every refused write
};

}  // namespace tether::session
