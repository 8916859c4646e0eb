// The frame codec turns Frames into bytes and bytes into Frames, with every decode failure named.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "tether/expected.hpp"
#include "wire/frame.hpp"

namespace tether::wire {

// Every frame is: type (1 byte) | payload length (QUIC varint) | payload.
inline constexpr std::size_t kMaxFrameHeaderSize = 1 + 8;

struct DecodeLimits {
  // Payloads longer than this are refused from the length field alone, before any byte is buffered
  // or allocated for them.
  std::size_t max_payload = 1u << 20;
  // Upper bound on entries in a list field (ack entries, resume positions).
  std::size_t max_list_entries = 4096;
};

enum class DecodeErrorCode : std::uint8_t {
  kFrameTooLarge,     // the length field exceeds DecodeLimits::max_payload
  kMalformed,         // a field is truncated or out of range inside a complete payload
  kUnknownFrameType,  // a type without the ignorable bit that this build does not know
  kTrailingBytes,     // the payload has bytes after its last field
};

struct DecodeError {
  DecodeErrorCode code = DecodeErrorCode::kMalformed;
  std::string_view
      detail;  // static text naming the field, e.g. "ack: entry window_limit truncated"
};

struct DecodedFrame {
  Frame frame;
  std::size_t consumed = 0;  // bytes of input the frame occupied, header included
};

// Decodes the first frame of `input`. Returns std::nullopt when `input` holds only part of a frame
// ("need more bytes", never an error); a DecodeError when the bytes can never become a valid frame.
// StreamData::data in the result views `input`.
[[nodiscard]] Expected<std::optional<DecodedFrame>, DecodeError> decode_frame(
    std::span<const std::byte> input, const DecodeLimits& limits = {});

// The start of a StreamData frame, possibly with its data still arriving: lets a receiver take the
// data as it comes, copying each byte once, straight to where it is kept.
struct StreamDataPrefix {
  StreamData frame;             // stream_id, offset, open, fin and priority; `data` is empty
  std::size_t prefix_size = 0;  // bytes of frame header and stream fields: the data starts here
  std::size_t data_size = 0;    // bytes of data the whole frame carries
  // The whole frame (prefix_size + data_size bytes) is in the input.
  [[nodiscard]] bool complete(std::size_t input_size) const {
    return input_size - prefix_size >= data_size;
  }
};

// When `input` starts with a StreamData frame whose header and stream fields are all there, returns
// them, whether its data is complete or not. std::nullopt when `input` starts with another type or
// is too short to tell. The errors are exactly those decode_frame reports for that frame (length
// over the limit, a field the frame's own length truncates, unknown flag bits, offset overflow),
// found as soon as the bytes that cause them are there.
[[nodiscard]] Expected<std::optional<StreamDataPrefix>, DecodeError> decode_stream_data_prefix(
    std::span<const std::byte> input, const DecodeLimits& limits = {});

// Appends the encoding of `frame` to `out`.
void encode_frame(const Frame& frame, std::vector<std::byte>& out);

// Appends one Ack frame carrying `entries` to `out`: the encoding of encode_frame(Ack{entries})
// without copying the entries into a Frame first.
void encode_ack_frame(std::span<const AckEntry> entries, std::vector<std::byte>& out);

// Appends the header of a StreamData frame whose payload data (`data_size` bytes, `frame.data` is
// ignored) the caller sends separately: lets the sender keep data in its own buffer (zero copy).
void encode_stream_header(const StreamData& frame, std::size_t data_size,
                          std::vector<std::byte>& out);

// Size of the header encode_stream_header would write.
[[nodiscard]] std::size_t stream_header_size(const StreamData& frame, std::size_t data_size);

[[nodiscard]] std::string_view to_string(DecodeErrorCode code);

}  // namespace tether::wire
