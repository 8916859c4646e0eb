// The JOSE encodings tether reads from peers and files: strict base64url (RFC 7515 section 2: the
// URL-safe alphabet, no padding, no whitespace), JSON parsed within a depth bound and without
// duplicate member names, and the escaping of peer text quoted in messages.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "tether/expected.hpp"

namespace tether::auth {

// The bytes `text` encodes in base64url without padding. Refused: any character outside
// A-Z a-z 0-9 - _ (so padding '=' and whitespace too), a length that no byte string encodes
// (length % 4 == 1), and a non-canonical encoding (unused trailing bits not zero), so that one byte
// string has exactly one accepted spelling. The error names the problem, never the input.
[[nodiscard]] Expected<std::vector<std::byte>, std::string> base64url_decode(std::string_view text);

// `data` in base64url without padding.
[[nodiscard]] std::string base64url_encode(std::span<const std::byte> data);
[[nodiscard]] std::string base64url_encode(std::string_view data);

// The JSON value `text` holds, or why not: a syntax error (nlohmann's parser, no exceptions), an
// array or object nested deeper than `max_depth` (checked by a scan before parsing, so nothing deep
// is ever built), or an object with the same member name twice (RFC 7515 section 4 allows refusing
// it; refusing leaves no doubt which value counts). The error never quotes the input.
[[nodiscard]] Expected<nlohmann::json, std::string> parse_bounded_json(std::string_view text,
                                                                       std::size_t max_depth);

// `text` as one inert printable-ASCII line for a message: bytes outside 0x20-0x7e become \xNN and a
// backslash \\ (wire::escape_text, which transport::escape_for_log uses too), and at most
// `max_input` bytes of `text` are shown, followed by "..." when it was longer.
[[nodiscard]] std::string escape_peer_text(std::string_view text, std::size_t max_input = 64);

}  // namespace tether::auth
