// log_safety: what every layer that logs or prints uses for text it did not write itself:
// escape_for_log (a peer's bytes become one inert line) and LogRateLimiter (a peer that repeats a
// warning cannot flood the log).
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace tether::transport {

// `text` with every byte outside printable ASCII (0x20-0x7e) written as \xNN (two lowercase hex
// digits) and every backslash as \\, so that the result is printable ASCII, holds no newline or
// terminal escape, and can be read back unambiguously. UTF-8 is escaped byte by byte. The result is
// at most four times as long as `text`.
[[nodiscard]] std::string escape_for_log(std::string_view text);

// LogRateLimiter decides which lines of a repeated kind are logged: at most `lines_per_interval`
// lines of one kind in each `interval` (fixed windows, starting at the first line of the kind).
// The first line admitted after some were held back carries how many were (the kernel's
// printk_ratelimit idea): the count is reported late, never lost. Kinds are short fixed names
// chosen by the code ("refused target"), never peer data, so the table stays small. Thread-safe.
class LogRateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  struct Decision {
    bool log = false;              // log this line
    std::uint64_t suppressed = 0;  // when log: lines of this kind held back since the last one
  };

  LogRateLimiter(std::size_t lines_per_interval, Clock::duration interval)
      : lines_per_interval_(lines_per_interval), interval_(interval) {}

  [[nodiscard]] Decision admit(std::string_view kind, Clock::time_point now);

 private:
  struct Window {
    Clock::time_point start;
    std::size_t logged = 0;
    std::uint64_t suppressed = 0;
  };

  std::size_t lines_per_interval_;
  Clock::duration interval_;
  std::mutex mutex_;
  std::unordered_map<std::string, Window> windows_;
};

// The process's limiter for peer-triggered log lines: 10 lines per kind every 10 seconds.
[[nodiscard]] LogRateLimiter& log_rate_limiter();

// Logs one line at `level` unless log_rate_limiter() holds lines of `kind` back; the first line
// logged after some were held back is preceded by "N similar lines (KIND) suppressed".
template <typename... Arguments>
void log_limited(spdlog::level::level_enum level, std::string_view kind,
                 fmt::format_string<Arguments...> format, Arguments&&... arguments) {
  if (!spdlog::should_log(level)) return;
  const auto decision = log_rate_limiter().admit(kind, LogRateLimiter::Clock::now());
  if (!decision.log) return;
  if (decision.suppressed > 0)
    spdlog::log(level, "{} similar lines ({}) suppressed", decision.suppressed, kind);
  spdlog::log(level, format, std::forward<Arguments>(arguments)...);
}

}  // namespace tether::transport
