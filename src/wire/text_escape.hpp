// escape_text makes a peer's text (a wire string: a principal, a refusal's message, a token's kid)
// safe to log or show: printable ASCII stays, a backslash doubles, every other byte becomes \xNN.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace tether::wire {

// At most `max_input` bytes of `text` are shown; a longer text ends with "...".
[[nodiscard]] inline std::string escape_text(std::string_view text,
                                             std::size_t max_input = std::string_view::npos) {
  static constexpr char kDigits[] = "0123456789abcdef";
  const std::string_view shown = text.substr(0, max_input);
  std::string escaped;
  escaped.reserve(shown.size() + 3);
  for (const char character : shown) {
    const auto byte = static_cast<unsigned char>(character);
    if (byte == '\\') {
      escaped += "\\\\";
    } else if (byte >= 0x20 && byte <= 0x7e) {
      escaped += character;
    } else {
      escaped += "\\x";
      escaped += kDigits[byte >> 4];
      escaped += kDigits[byte & 0x0f];
    }
  }
  if (text.size() > shown.size()) escaped += "...";
  return escaped;
}

}  // namespace tether::wire
