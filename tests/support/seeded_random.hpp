// SeededRandom is the tests' RandomSource: splitmix64, tiny and fully determined by its seed, so
// that every test run and every simulated world replays exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "session/types.hpp"

namespace tether::testing {

class SeededRandom final : public session::RandomSource {
 public:
  explicit SeededRandom(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  void fill(std::span<std::byte> out) override {
    for (std::size_t index = 0; index < out.size(); index += 8) {
      const std::uint64_t value = next();
      for (std::size_t part = 0; part < 8 && index + part < out.size(); ++part) {
        out[index + part] = static_cast<std::byte>(value >> (8 * part));
      }
    }
  }
  // Uniform in [low, high] (modulo bias is irrelevant for test choices).
  std::uint64_t uniform(std::uint64_t low, std::uint64_t high) {
    return low + next() % (high - low + 1);
  }
  bool chance(double probability) {
    return static_cast<double>(next() >> 11) * 0x1.0p-53 < probability;
  }

 private:
  std::uint64_t state_;
};

}  // namespace tether::testing
