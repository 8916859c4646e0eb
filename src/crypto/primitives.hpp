// The cryptographic primitives the session core uses: HMAC-SHA256, HKDF-SHA256 and constant-time
// comparison, all thin wrappers over OpenSSL 3's libcrypto.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <string_view>

namespace tether::crypto {

using Digest = std::array<std::byte, 32>;

// HMAC-SHA256 over the concatenation of `parts`.
[[nodiscard]] Digest hmac_sha256(std::span<const std::byte> key,
                                 std::initializer_list<std::span<const std::byte>> parts);

// HKDF-SHA256 (RFC 5869) extract-then-expand producing 32 bytes, with `info` as a label.
[[nodiscard]] Digest hkdf_sha256(std::span<const std::byte> salt,
                                 std::span<const std::byte> input_key, std::string_view info);

// Compares two byte strings in time that depends only on their length.
[[nodiscard]] bool constant_time_equal(std::span<const std::byte> left,
                                       std::span<const std::byte> right);

// A view of a label's characters as bytes.
[[nodiscard]] inline std::span<const std::byte> label(std::string_view text) {
  return std::as_bytes(std::span<const char>(text.data(), text.size()));
}

}  // namespace tether::crypto
