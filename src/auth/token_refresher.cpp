#include "auth/token_refresher.hpp"

#include <random>

#include <nlohmann/json.hpp>

#include "auth/base64url.hpp"

namespace tether::auth {
namespace {

std::optional<WallTime> claim_time(const nlohmann::json& claims, const char* name) {
  const auto found = claims.find(name);
  if (found == claims.end() || !found->is_number()) return std::nullopt;
  const double seconds = found->get<double>();
  // Beyond year 2200 (or negative) is no usable time for a schedule.
  if (!(seconds >= 0 && seconds < 7.3e9)) return std::nullopt;
  return WallTime{} +
         std::chrono::duration_cast<WallClock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

TokenTimes read_token_times(std::string_view token) {
  TokenTimes times;
  const auto first = token.find('.');
  if (first == std::string_view::npos) return times;
  const auto second = token.find('.', first + 1);
  if (second == std::string_view::npos) return times;
  auto payload = base64url_decode(token.substr(first + 1, second - first - 1));
  if (!payload) return times;
  auto claims = parse_bounded_json(
      std::string_view(reinterpret_cast<const char*>(payload->data()), payload->size()), 16);
  if (!claims || !claims->is_object()) return times;
  if (const auto subject = claims->find("sub"); subject != claims->end() && subject->is_string()) {
    times.subject = subject->get<std::string>();
  }
  times.issued_at = claim_time(*claims, "iat");
  times.expiry = claim_time(*claims, "exp");
  return times;
}

RefreshingTokenSource::RefreshingTokenSource(Fetch fetch, RefreshPolicy policy, Clock clock,
                                             std::function<double()> unit_random)
    : fetch_(std::move(fetch)),
      policy_(policy),
      clock_(clock ? std::move(clock) : Clock([] { return WallClock::now(); })),
      unit_random_(std::move(unit_random)) {
  if (!unit_random_) {
    auto generator = std::make_shared<std::mt19937_64>(std::random_device{}());
    unit_random_ = [generator] {
      return std::uniform_real_distribution<double>(0.0, 1.0)(*generator);
    };
  }
  worker_ = std::thread([this] { run(); });
}

RefreshingTokenSource::~RefreshingTokenSource() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  worker_.join();
}

Expected<std::string, std::string> RefreshingTokenSource::token() {
  std::unique_lock lock(mutex_);
  const WallTime now = clock_();
  // Only a token with an expiry is reused; any other is fetched again for every use.
  const bool usable = token_ && times_.expiry && *times_.expiry > now;
  if (usable) return *token_;
  if (fetching_) {
    // The worker is fetching: wait for it rather than running the command twice at once.
    wake_.wait(lock, [this] { return !fetching_ || stopping_; });
  } else {
    refresh(lock);
  }
  if (token_ && (!times_.expiry || *times_.expiry > clock_())) return *token_;
  if (!last_error_.empty()) return make_unexpected(last_error_);
  return make_unexpected(std::string("the token has expired and no fresh one was obtained"));
}

void RefreshingTokenSource::refresh(std::unique_lock<std::mutex>& lock) {
  fetching_ = true;
  lock.unlock();
  auto fetched = fetch_();
  lock.lock();
  fetching_ = false;
  ++fetches_;
  const WallTime now = clock_();
  if (fetched) {
    token_ = std::move(*fetched);
    times_ = read_token_times(*token_);
    last_error_.clear();
    // A token without an expiry (not a JWT, or no exp) is fetched again for every exchange.
    if (times_.expiry) {
      next_refresh_ = next_refresh(times_.issued_at, *times_.expiry, std::nullopt, now, policy_,
                                   unit_random_());
    } else {
      next_refresh_.reset();
    }
  } else {
    last_error_ = fetched.error();
    next_refresh_ = retry_refresh(now, policy_);
  }
  wake_.notify_all();
}

void RefreshingTokenSource::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!next_refresh_ || fetching_) {
      wake_.wait(lock);
      continue;
    }
    // The wall clock may jump: wake at least once a second to look at it again.
    const WallTime now = clock_();
    if (now < *next_refresh_) {
      const auto wait =
          std::min<WallClock::duration>(*next_refresh_ - now, std::chrono::seconds(1));
      wake_.wait_for(lock, wait);
      continue;
    }
    refresh(lock);
  }
}

std::string RefreshingTokenSource::principal() const {
  const std::lock_guard lock(mutex_);
  return times_.subject;
}
std::optional<WallTime> RefreshingTokenSource::start() const {
  const std::lock_guard lock(mutex_);
  return times_.issued_at;
}
std::optional<WallTime> RefreshingTokenSource::expiry() const {
  const std::lock_guard lock(mutex_);
  return times_.expiry;
}
std::size_t RefreshingTokenSource::fetches() const {
  const std::lock_guard lock(mutex_);
  return fetches_;
}
std::optional<WallTime> RefreshingTokenSource::next_refresh_time() const {
  const std::lock_guard lock(mutex_);
  return next_refresh_;
}

}  // namespace tether::auth
