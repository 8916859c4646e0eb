#include "transport/log_safety.hpp"

#include "wire/text_escape.hpp"

namespace tether::transport {

std::string escape_for_log(std::string_view text) {
  return wire::escape_text(text);
}

LogRateLimiter::Decision LogRateLimiter::admit(std::string_view kind, Clock::time_point now) {
  const std::lock_guard lock(mutex_);
  Window& window = windows_.try_emplace(std::string(kind), Window{now, 0, 0}).first->second;
  if (now - window.start >= interval_) {
    window.start = now;
    window.logged = 0;
  }
  if (window.logged >= lines_per_interval_) {
    ++window.suppressed;
    return Decision{false, 0};
  }
  ++window.logged;
  return Decision{true, std::exchange(window.suppressed, 0)};
}

LogRateLimiter& log_rate_limiter() {
  static LogRateLimiter limiter(10, std::chrono::seconds(10));
  return limiter;
}

}  // namespace tether::transport
