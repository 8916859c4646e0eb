// Byte-string helpers for tests that spell out encodings: bytes from numbers, bytes from text and
// concatenation.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string_view>
#include <vector>

namespace tether::testing {

using Bytes = std::vector<std::byte>;

// The bytes with the given values, e.g. bytes({5, 1, 0}).
inline Bytes bytes(std::initializer_list<unsigned> values) {
  Bytes out;
  for (unsigned value : values) out.push_back(static_cast<std::byte>(value));
  return out;
}

// `left` followed by `right`.
inline Bytes concat(Bytes left, const Bytes& right) {
  left.insert(left.end(), right.begin(), right.end());
  return left;
}

// The characters of `value` as bytes.
inline Bytes text(std::string_view value) {
  Bytes out;
  for (char character : value) out.push_back(static_cast<std::byte>(character));
  return out;
}

}  // namespace tether::testing
