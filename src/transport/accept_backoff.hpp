// AcceptBackoff is what an accept loop does after accept() fails: when the process or the system is
// out of a resource (descriptors, socket buffers, memory) it pauses accepting, 100 ms doubling to
// 1 s, instead of retrying at once (the listener stays readable, so a loop that retries spins at
// full CPU), and it logs at most one line per second, with the number of failures since the last.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

#include <asio.hpp>

namespace tether::transport {

// The decisions, without clocks or I/O (so that tests can drive them).
class AcceptBackoffPolicy {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kFirstPause{100};
  static constexpr std::chrono::milliseconds kLongestPause{1000};
  static constexpr std::chrono::milliseconds kLogInterval{1000};
  static constexpr std::uint64_t kConsecutiveBeforePause = 16;

  struct Decision {
    std::chrono::milliseconds pause{0};  // how long to stop accepting before the next accept
    std::optional<std::string> log;      // a line to log now (at most one per kLogInterval)
  };

  // `what` names the listener in the log lines (for example "server", "client -L 127.0.0.1:80").
  explicit AcceptBackoffPolicy(std::string what) : what_(std::move(what)) {}

  // True for the errors that pause: EMFILE, ENFILE, ENOBUFS, ENOMEM. Any other failure (a
  // connection that was reset before it was accepted) concerns one connection: the next accept
  // goes ahead at once, unless kConsecutiveBeforePause of them came in a row (an error that does
  // not go away must not spin either). Every failure is counted and logged at the same rate.
  [[nodiscard]] static bool exhausted(const std::error_code& error);

  // After a failed accept.
  Decision on_failure(const std::error_code& error, Clock::time_point now);
  // After a successful accept: the next pause starts from kFirstPause again. Returns a line to log
  // when failures since the last line were never reported (at most one line per kLogInterval,
  // counting the failure lines).
  std::optional<std::string> on_success(Clock::time_point now);

  [[nodiscard]] std::uint64_t total_failures() const { return total_failures_; }

 private:
  std::string what_;
  std::chrono::milliseconds next_pause_ = kFirstPause;
  std::optional<Clock::time_point> last_log_;
  std::uint64_t unreported_ = 0;   // failures since the last line
  std::uint64_t consecutive_ = 0;  // failures since the last successful accept
  std::uint64_t total_failures_ = 0;
};

// The policy with the pause (a steady timer on the calling coroutine's executor) and spdlog.
class AcceptBackoff {
 public:
  explicit AcceptBackoff(std::string what) : policy_(std::move(what)) {}
  // After a failed accept: logs (rate-limited) and waits the pause the error calls for.
  asio::awaitable<void> after_failure(std::error_code error);
  // After a successful accept.
  void after_success();

 private:
  AcceptBackoffPolicy policy_;
};

}  // namespace tether::transport
