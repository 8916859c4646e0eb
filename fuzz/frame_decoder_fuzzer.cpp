// Fuzzes the frame decoder: every input must decode to a frame, "need more bytes" or a named error,
// and every decoded frame must survive a re-encode/decode round trip unchanged.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "fuzz_check.hpp"
#include "wire/codec.hpp"
#include "wire/frame.hpp"

namespace {

using tether::wire::DecodeLimits;

// Checks everything that must hold for one decode_frame call; returns the bytes the frame took, or
// 0 when decoding stopped (need more bytes or an error).
std::size_t check_one(std::span<const std::byte> input, const DecodeLimits& limits) {
  using namespace tether::wire;
  auto result = decode_frame(input, limits);
  if (!result) {
    FUZZ_CHECK(!result.error().detail.empty());
    return 0;
  }
  if (!result->has_value()) return 0;
  const DecodedFrame& decoded = **result;
  FUZZ_CHECK(decoded.consumed >= 2);
  FUZZ_CHECK(decoded.consumed <= input.size());

  // One byte less of the same frame can only ask for more.
  auto shorter = decode_frame(input.first(decoded.consumed - 1), limits);
  FUZZ_CHECK(shorter.has_value() && !shorter->has_value());

  // Re-encoding uses the shortest varints, so it is never longer than the input and must decode
  // under the same limits to an equal frame, taking exactly the re-encoded bytes.
  std::vector<std::byte> encoding;
  encode_frame(decoded.frame, encoding);
  FUZZ_CHECK(encoding.size() <= decoded.consumed);
  FUZZ_CHECK(static_cast<std::uint8_t>(encoding[0]) ==
             static_cast<std::uint8_t>(frame_type(decoded.frame)));
  auto again = decode_frame(encoding, limits);
  FUZZ_CHECK(again.has_value() && again->has_value());
  FUZZ_CHECK((*again)->frame == decoded.frame);
  FUZZ_CHECK((*again)->consumed == encoding.size());

  // Every varint has one shortest form, so a re-encoding as long as the input used only shortest
  // forms, and then the decoder must have read exactly what the encoder writes: the same bytes.
  if (encoding.size() == decoded.consumed) {
    FUZZ_CHECK(std::equal(encoding.begin(), encoding.end(), input.begin()));
  }

  // The encoding is canonical: encoding the re-decoded frame gives the same bytes.
  std::vector<std::byte> second;
  encode_frame((*again)->frame, second);
  FUZZ_CHECK(second == encoding);

  // The zero-copy stream path writes the same bytes as encode_frame.
  if (const auto* stream = std::get_if<StreamData>(&decoded.frame)) {
    std::vector<std::byte> header;
    encode_stream_header(*stream, stream->data.size(), header);
    FUZZ_CHECK(header.size() == stream_header_size(*stream, stream->data.size()));
    FUZZ_CHECK(header.size() + stream->data.size() == encoding.size());
    FUZZ_CHECK(std::equal(header.begin(), header.end(), encoding.begin()));
  }
  return decoded.consumed;
}

// Decodes `input` as a stream of frames until the decoder needs more bytes or refuses one.
void check_stream(std::span<const std::byte> input, const DecodeLimits& limits) {
  while (!input.empty()) {
    const std::size_t consumed = check_one(input, limits);
    if (consumed == 0) return;
    input = input.subspan(consumed);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data), size);
  check_stream(input, DecodeLimits{});
  check_stream(input, DecodeLimits{.max_payload = 64, .max_list_entries = 3});
  return 0;
}
