// ByteWriter appends big-endian integers, QUIC varints and raw bytes to a growable byte vector.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace tether::wire {

inline constexpr std::uint64_t kMaxVarint = (std::uint64_t{1} << 62) - 1;

// Number of bytes the QUIC varint encoding of `value` takes (1, 2, 4 or 8).
[[nodiscard]] constexpr std::size_t varint_size(std::uint64_t value) {
  if (value < (1u << 6)) return 1;
  if (value < (1u << 14)) return 2;
  if (value < (1u << 30)) return 4;
  return 8;
}

// Appends to a caller-owned vector, so one buffer can collect many frames without reallocation.
class ByteWriter {
 public:
  explicit ByteWriter(std::vector<std::byte>& out) : out_(out) {}

  void write_u8(std::uint8_t value) { out_.push_back(static_cast<std::byte>(value)); }

  // Precondition: value <= kMaxVarint (a programmer error otherwise).
  void write_varint(std::uint64_t value) {
    assert(value <= kMaxVarint);
    const std::size_t length = varint_size(value);
    const std::uint8_t prefix = length == 1 ? 0x00 : length == 2 ? 0x40 : length == 4 ? 0x80 : 0xc0;
    for (std::size_t index = 0; index < length; ++index) {
      auto byte = static_cast<std::uint8_t>(value >> (8 * (length - 1 - index)));
      if (index == 0) byte = static_cast<std::uint8_t>(byte | prefix);
      write_u8(byte);
    }
  }

  void write_bytes(std::span<const std::byte> bytes) {
    out_.insert(out_.end(), bytes.begin(), bytes.end());
  }

  [[nodiscard]] std::size_t size() const { return out_.size(); }

 private:
  std::vector<std::byte>& out_;
};

}  // namespace tether::wire
