// ByteReader is a bounds-checked cursor over a span of input bytes that never reads past its end.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace tether::wire {

// Every read either succeeds and advances, or fails with std::nullopt and leaves the cursor where
// it was, so a caller can tell "truncated here" from "malformed here" and report which field it
// was.
class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> bytes) : bytes_(bytes) {}

  [[nodiscard]] std::size_t remaining() const { return bytes_.size() - position_; }
  [[nodiscard]] std::size_t position() const { return position_; }
  [[nodiscard]] bool empty() const { return remaining() == 0; }

  std::optional<std::uint8_t> read_u8() {
    if (remaining() < 1) return std::nullopt;
    return static_cast<std::uint8_t>(bytes_[position_++]);
  }

  // QUIC variable-length integer (RFC 9000 section 16): the two high bits of the first byte give
  // the length (1, 2, 4 or 8 bytes); values up to 2^62 - 1.
  std::optional<std::uint64_t> read_varint() {
    if (remaining() < 1) return std::nullopt;
    const auto first = static_cast<std::uint8_t>(bytes_[position_]);
    const std::size_t length = std::size_t{1} << (first >> 6);
    if (remaining() < length) return std::nullopt;
    std::uint64_t value = first & 0x3f;
    for (std::size_t index = 1; index < length; ++index) {
      value = (value << 8) | static_cast<std::uint8_t>(bytes_[position_ + index]);
    }
    position_ += length;
    return value;
  }

  // Returns a view of the next `count` bytes (no copy).
  std::optional<std::span<const std::byte>> read_bytes(std::size_t count) {
    if (remaining() < count) return std::nullopt;
    auto view = bytes_.subspan(position_, count);
    position_ += count;
    return view;
  }

  template <std::size_t Size>
  std::optional<std::array<std::byte, Size>> read_array() {
    auto view = read_bytes(Size);
    if (!view) return std::nullopt;
    std::array<std::byte, Size> out{};
    for (std::size_t index = 0; index < Size; ++index) out[index] = (*view)[index];
    return out;
  }

  // The unread rest of the input; the cursor moves to the end.
  std::span<const std::byte> read_rest() {
    auto view = bytes_.subspan(position_);
    position_ = bytes_.size();
    return view;
  }

 private:
  std::span<const std::byte> bytes_;
  std::size_t position_ = 0;
};

}  // namespace tether::wire
