// RefreshingTokenSource keeps a client's bearer token fresh on Kafka's refresh schedule
// (credential_refresh.hpp): it fetches a token (runs --token-command) on a worker thread of its
// own before the current one expires, so that an exchange, a re-authentication in particular,
// takes the freshest token at once and the client's event loop never waits for the command.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "auth/credential_refresh.hpp"
#include "tether/expected.hpp"

namespace tether::auth {

// The unverified claims a client reads from its own JWT to schedule refreshes (sub, iat, exp); all
// empty for a token that is not a JWT (then it is fetched again for every exchange).
struct TokenTimes {
  std::string subject;
  std::optional<WallTime> issued_at;
  std::optional<WallTime> expiry;
};
[[nodiscard]] TokenTimes read_token_times(std::string_view token);

class RefreshingTokenSource final : public ExpiringCredential {
 public:
  using Fetch = std::function<Expected<std::string, std::string>()>;
  using Clock = std::function<WallTime()>;
  // `unit_random` draws the jitter (in [0, 1)); the defaults are the system clock and a
  // std::random_device-seeded generator.
  RefreshingTokenSource(Fetch fetch, RefreshPolicy policy, Clock clock = {},
                        std::function<double()> unit_random = {});
  // Stops the worker (waiting for a fetch in progress, at most the command's own 10 s bound).
  ~RefreshingTokenSource() override;
  RefreshingTokenSource(const RefreshingTokenSource&) = delete;
  RefreshingTokenSource& operator=(const RefreshingTokenSource&) = delete;

  // The token to use now: the cached one while it has not expired; otherwise (the first use, or
  // refreshes failed until it expired) one fetched here and now. The error is the last fetch's.
  Expected<std::string, std::string> token();

  // ExpiringCredential, from the cached token's claims.
  [[nodiscard]] std::string principal() const override;
  [[nodiscard]] std::optional<WallTime> start() const override;
  [[nodiscard]] std::optional<WallTime> expiry() const override;
  [[nodiscard]] std::optional<WallTime> absolute_last_refresh() const override {
    return std::nullopt;
  }

  // For tests: fetches made so far, and when the next refresh is due (nullopt: none planned).
  [[nodiscard]] std::size_t fetches() const;
  [[nodiscard]] std::optional<WallTime> next_refresh_time() const;

 private:
  // Fetches and stores the result, then plans the next refresh. Called with `lock` held; releases
  // it while the command runs.
  void refresh(std::unique_lock<std::mutex>& lock);
  void run();

  Fetch fetch_;
  RefreshPolicy policy_;
  Clock clock_;
  std::function<double()> unit_random_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::optional<std::string> token_;
  TokenTimes times_;
  std::string last_error_;
  std::optional<WallTime> next_refresh_;
  bool fetching_ = false;
  bool stopping_ = false;
  std::size_t fetches_ = 0;
  std::thread worker_;  // last: started once everything above is ready
};

}  // namespace tether::auth
