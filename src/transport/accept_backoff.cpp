#include "transport/accept_backoff.hpp"

#include <cerrno>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <asio/experimental/as_tuple.hpp>

namespace tether::transport {

bool AcceptBackoffPolicy::exhausted(const std::error_code& error) {
  if (error.category() != std::system_category() && error.category() != std::generic_category())
    return false;
  const int value = error.value();
  return value == EMFILE || value == ENFILE || value == ENOBUFS || value == ENOMEM;
}

AcceptBackoffPolicy::Decision AcceptBackoffPolicy::on_failure(const std::error_code& error,
                                                              Clock::time_point now) {
  ++total_failures_;
  ++unreported_;
  ++consecutive_;
  Decision decision;
  if (exhausted(error) || consecutive_ >= kConsecutiveBeforePause) {
    decision.pause = next_pause_;
    next_pause_ = std::min(next_pause_ * 2, kLongestPause);
  }
  if (!last_log_ || now - *last_log_ >= kLogInterval) {
    decision.log =
        fmt::format("{}: cannot accept connections: {} ({} failure{} since the last report)", what_,
                    error.message(), unreported_, unreported_ == 1 ? "" : "s");
    if (decision.pause.count() > 0)
      *decision.log += fmt::format("; pausing accepts for {} ms", decision.pause.count());
    last_log_ = now;
    unreported_ = 0;
  }
  return decision;
}

std::optional<std::string> AcceptBackoffPolicy::on_success(Clock::time_point now) {
  const bool was_failing = consecutive_ > 0;
  consecutive_ = 0;
  next_pause_ = kFirstPause;
  if (!was_failing || unreported_ == 0) return std::nullopt;
  // The same rate as the failure lines: a loop that alternates one success and one failure (each
  // freed descriptor taken at once) still logs at most one line per interval.
  if (last_log_ && now - *last_log_ < kLogInterval) return std::nullopt;
  auto line =
      fmt::format("{}: accepting connections again ({} more failure{} since the last report)",
                  what_, unreported_, unreported_ == 1 ? "" : "s");
  unreported_ = 0;
  last_log_ = now;
  return line;
}

asio::awaitable<void> AcceptBackoff::after_failure(std::error_code error) {
  const auto decision = policy_.on_failure(error, AcceptBackoffPolicy::Clock::now());
  if (decision.log) spdlog::warn("{}", *decision.log);
  if (decision.pause.count() == 0) co_return;
  asio::steady_timer timer(co_await asio::this_coro::executor, decision.pause);
  auto [ignored] = co_await timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  (void)ignored;
}

void AcceptBackoff::after_success() {
  if (auto line = policy_.on_success(AcceptBackoffPolicy::Clock::now())) spdlog::info("{}", *line);
}

}  // namespace tether::transport
