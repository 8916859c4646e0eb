#include "auth/base64url.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "wire/text_escape.hpp"

namespace tether::auth {

namespace {

bool is_base64url_character(char character) {
  return (character >= 'A' && character <= 'Z') || (character >= 'a' && character <= 'z') ||
         (character >= '0' && character <= '9') || character == '-' || character == '_';
}

}  // namespace

Expected<std::vector<std::byte>, std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return make_unexpected(std::string("base64url: impossible length"));
  if (!std::all_of(text.begin(), text.end(), is_base64url_character))
    return make_unexpected(std::string("base64url: character outside the alphabet"));
  if (text.empty()) return std::vector<std::byte>{};
  // The standard alphabet with padding, which EVP_DecodeBlock reads.
  std::string standard(text);
  std::replace(standard.begin(), standard.end(), '-', '+');
  std::replace(standard.begin(), standard.end(), '_', '/');
  const std::size_t padding = (4 - text.size() % 4) % 4;
  standard.append(padding, '=');
  std::vector<std::byte> decoded(standard.size() / 4 * 3);
  const int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(decoded.data()),
                                     reinterpret_cast<const unsigned char*>(standard.data()),
                                     static_cast<int>(standard.size()));
  if (length < 0 || static_cast<std::size_t>(length) < padding ||
      static_cast<std::size_t>(length) - padding != text.size() * 3 / 4)
    return make_unexpected(std::string("base64url: undecodable"));
  decoded.resize(static_cast<std::size_t>(length) - padding);
  // Canonical form: the unused low bits of the last character are zero, i.e. re-encoding gives
  // back the same text.
  if (base64url_encode(decoded) != text)
    return make_unexpected(std::string("base64url: non-canonical trailing bits"));
  return decoded;
}

std::string base64url_encode(std::span<const std::byte> data) {
  std::string encoded(4 * ((data.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()),
                                     reinterpret_cast<const unsigned char*>(data.data()),
                                     static_cast<int>(data.size()));
  encoded.resize(static_cast<std::size_t>(std::max(length, 0)));
  while (!encoded.empty() && encoded.back() == '=') encoded.pop_back();
  std::replace(encoded.begin(), encoded.end(), '+', '-');
  std::replace(encoded.begin(), encoded.end(), '/', '_');
  return encoded;
}

std::string base64url_encode(std::string_view data) {
  return base64url_encode(std::as_bytes(std::span<const char>(data.data(), data.size())));
}

Expected<nlohmann::json, std::string> parse_bounded_json(std::string_view text,
                                                         std::size_t max_depth) {
  // Depth first, by a scan that knows only strings and brackets: the parser then never sees a
  // document nested deeper than the bound. Brackets inside strings do not count.
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char character : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (character == '\\')
        escaped = true;
      else if (character == '"')
        in_string = false;
    } else if (character == '"') {
      in_string = true;
    } else if (character == '[' || character == '{') {
      if (++depth > max_depth)
        return make_unexpected("JSON nested deeper than " + std::to_string(max_depth) + " levels");
    } else if ((character == ']' || character == '}') && depth > 0) {
      --depth;
    }
  }

  // Duplicate member names, per object: a stack of the names seen in each open object (arrays
  // push an empty set that receives no keys).
  std::vector<std::set<std::string>> open_objects;
  bool duplicate = false;
  auto callback = [&](int /*depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        open_objects.emplace_back();
        break;
      case Event::object_end:
      case Event::array_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Event::key:
        if (!open_objects.empty() && parsed.is_string() &&
            !open_objects.back().insert(parsed.get_ref<const std::string&>()).second)
          duplicate = true;
        break;
      case Event::value:
        break;
    }
    return true;
  };
  nlohmann::json value = nlohmann::json::parse(text.begin(), text.end(), callback,
                                               /*allow_exceptions=*/false);
  if (value.is_discarded()) return make_unexpected(std::string("malformed JSON"));
  if (duplicate) return make_unexpected(std::string("JSON object with a duplicate member name"));
  return value;
}

std::string escape_peer_text(std::string_view text, std::size_t max_input) {
  return wire::escape_text(text, max_input);
}

}  // namespace tether::auth
