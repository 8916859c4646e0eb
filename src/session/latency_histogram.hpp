// LatencyHistogram counts durations into fixed buckets, Prometheus-style: the core records
// (sans-I/O, no allocation) and an exporter reads the cumulative counts.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace tether::session {

class LatencyHistogram {
 public:
  // Upper bounds of the buckets, in milliseconds; a last, implicit bucket holds everything above.
  static constexpr std::array<double, 12> kUpperBoundsMilliseconds = {
      0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 5000};

  void record(std::chrono::nanoseconds duration) {
    const double elapsed = std::chrono::duration<double, std::milli>(duration).count();
    std::size_t bucket = 0;
    while (bucket < kUpperBoundsMilliseconds.size() && elapsed > kUpperBoundsMilliseconds[bucket]) {
      ++bucket;
    }
    ++counts_[bucket];
    ++count_;
    sum_milliseconds_ += elapsed < 0 ? 0 : elapsed;
  }

  // Observations in bucket `index` alone (not cumulative); index kUpperBoundsMilliseconds.size()
  // is the overflow bucket.
  [[nodiscard]] std::uint64_t bucket_count(std::size_t index) const { return counts_.at(index); }
  [[nodiscard]] std::uint64_t count() const { return count_; }
  [[nodiscard]] double sum_milliseconds() const { return sum_milliseconds_; }

 private:
  std::array<std::uint64_t, kUpperBoundsMilliseconds.size() + 1> counts_{};
  std::uint64_t count_ = 0;
  double sum_milliseconds_ = 0;
};

}  // namespace tether::session
