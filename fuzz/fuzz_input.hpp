// FuzzInput reads a fuzzer's input as a stream of choices (bytes, small integers, byte runs) that
// simply run out as zeros; FixedRandom is the deterministic RandomSource the stateful targets give
// the session core.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "session/types.hpp"

namespace tether::fuzz {

class FixedRandom final : public session::RandomSource {
 public:
  explicit FixedRandom(std::uint64_t seed) : state_(seed) {}
  void fill(std::span<std::byte> out) override {
    for (auto& byte : out) {
      state_ = state_ * 6364136223846793005ULL + 1442695040888963407ULL;
      byte = static_cast<std::byte>(state_ >> 56);
    }
  }

 private:
  std::uint64_t state_;
};

class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  [[nodiscard]] bool empty() const { return position_ >= size_; }
  std::uint8_t u8() { return empty() ? 0 : data_[position_++]; }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() << 8 | u8()); }
  // Up to `count` bytes (fewer at the end of the input).
  std::span<const std::byte> bytes(std::size_t count) {
    count = std::min(count, size_ - std::min(size_, position_));
    auto view = std::as_bytes(std::span<const std::uint8_t>(data_ + position_, count));
    position_ += count;
    return view;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t position_ = 0;
};

}  // namespace tether::fuzz
