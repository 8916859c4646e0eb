#include "transport/log_safety.hpp"

namespace tether::transport {

std::string escape_for_log(std::string_view text) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string escaped;
  escaped.reserve(text.size());
  for (const char character : text) {
    const auto byte = static_cast<unsigned char>(character);
    if (byte == '\\') {
      escaped += "\\\\";
    } else if (byte >= 0x20 && byte <= 0x7e) {
      escaped += character;
    } else {
      escaped += "\\x";
      escaped += kDigits[byte >> 4];
      escaped += kDigits[byte & 0x0f];
    }
  }
  return escaped;
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
