#include "tunnel/connect_slots.hpp"

#include <algorithm>

#include <asio/experimental/as_tuple.hpp>

namespace tether::tunnel {

asio::awaitable<std::optional<ConnectSlots::Slot>> ConnectSlots::acquire(
    std::chrono::steady_clock::time_point deadline) {
  auto self = shared_from_this();
  if (in_use_ < capacity_ && waiters_.empty()) {
    ++in_use_;
    co_return Slot(self);
  }
  auto waiter = std::make_shared<Waiter>(co_await asio::this_coro::executor);
  waiter->timer.expires_at(deadline);
  waiters_.push_back(waiter);
  auto [error] =
      co_await waiter->timer.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
  (void)error;  // cancelled by release() or expired: `granted` says which
  if (waiter->granted) co_return Slot(self);
  waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), waiter), waiters_.end());
  co_return std::nullopt;
}

void ConnectSlots::release() {
  if (!waiters_.empty()) {
    // The slot passes straight to the first waiter.
    auto next = waiters_.front();
    waiters_.pop_front();
    next->granted = true;
    next->timer.cancel();
    return;
  }
  if (in_use_ > 0) --in_use_;
}

}  // namespace tether::tunnel
