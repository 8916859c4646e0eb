// ConnectSlots caps how many target connects (resolve and connect) one session has in progress at
// once: the others wait in arrival order until a slot frees or their deadline passes.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <optional>

#include <asio.hpp>

namespace tether::tunnel {

class ConnectSlots : public std::enable_shared_from_this<ConnectSlots> {
 public:
  // A held slot; destroying it frees the slot (for the first waiter, if any).
  class Slot {
   public:
    explicit Slot(std::shared_ptr<ConnectSlots> owner) : owner_(std::move(owner)) {}
    Slot(Slot&&) noexcept = default;
    Slot& operator=(Slot&& other) noexcept {
      if (this != &other) {
        if (owner_ != nullptr) owner_->release();
        owner_ = std::move(other.owner_);
      }
      return *this;
    }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() {
      if (owner_ != nullptr) owner_->release();
    }

   private:
    std::shared_ptr<ConnectSlots> owner_;
  };

  // `capacity` is at least 1 (0 is taken as 1).
  explicit ConnectSlots(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // A slot at once when one is free; otherwise waits in line for one. Nullopt when `deadline`
  // passed first. Must be called on a shared_ptr-owned object.
  asio::awaitable<std::optional<Slot>> acquire(std::chrono::steady_clock::time_point deadline);

  [[nodiscard]] std::size_t capacity() const { return capacity_; }
  [[nodiscard]] std::size_t in_use() const { return in_use_; }
  [[nodiscard]] std::size_t waiting() const { return waiters_.size(); }

 private:
  struct Waiter {
    explicit Waiter(const asio::any_io_executor& executor) : timer(executor) {}
    asio::steady_timer timer;
    bool granted = false;  // the slot was handed over by release(): in_use_ already counts it
  };
  void release();

  std::size_t capacity_;
  std::size_t in_use_ = 0;
  std::deque<std::shared_ptr<Waiter>> waiters_;
};

}  // namespace tether::tunnel
