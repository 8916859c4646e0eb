// ReleaseAfterLoad gives the allocator's free memory back to the system once many tunnelled
// connections have ended: glibc keeps what they freed (the sessions' 16 KiB blocks, scattered among
// allocations that live on) in its heap, where only malloc_trim() returns it; measured with
// bench/memory_after_load.sh, 2,000 closed connections left ~40 MiB free but resident in a client.
#pragma once

#include <chrono>
#include <cstddef>

#include <asio.hpp>

namespace tether::tunnel {

class ReleaseAfterLoad {
 public:
  // After kEndedBeforeCheck connections ended, a check runs kDelay later (at most one pending):
  // it trims the heap when at least kFreeBeforeTrim bytes of it are free.
  static constexpr std::size_t kEndedBeforeCheck = 64;
  static constexpr std::size_t kFreeBeforeTrim = 8u << 20;
  static constexpr auto kDelay = std::chrono::seconds(2);

  explicit ReleaseAfterLoad(asio::io_context& io) : timer_(io) {}
  // One tunnelled connection ended.
  void ended();
  [[nodiscard]] std::size_t trims() const { return trims_; }

 private:
  void check();

  asio::steady_timer timer_;
  std::size_t ended_ = 0;
  std::size_t trims_ = 0;
  bool armed_ = false;
};

}  // namespace tether::tunnel
