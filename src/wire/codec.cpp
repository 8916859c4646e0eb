#include "wire/codec.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <type_traits>

#include "wire/byte_reader.hpp"
#include "wire/byte_writer.hpp"

namespace tether::wire {
namespace {

using Result = Expected<std::optional<DecodedFrame>, DecodeError>;

[[nodiscard]] Unexpected<DecodeError> malformed(std::string_view detail) {
  return make_unexpected(DecodeError{DecodeErrorCode::kMalformed, detail});
}

// Field readers that turn a truncated field into a named error. The payload is complete when these
// run, so truncation inside it is malformation, not "need more".
class PayloadReader {
 public:
  explicit PayloadReader(std::span<const std::byte> payload) : reader_(payload) {}

  bool varint(std::uint64_t& out) {
    auto value = reader_.read_varint();
    if (!value) return false;
    out = *value;
    return true;
  }
  bool u8(std::uint8_t& out) {
    auto value = reader_.read_u8();
    if (!value) return false;
    out = *value;
    return true;
  }
  template <std::size_t Size>
  bool array(std::array<std::byte, Size>& out) {
    auto value = reader_.template read_array<Size>();
    if (!value) return false;
    out = *value;
    return true;
  }
  bool reason(Reason& out) {
    std::uint8_t raw = 0;
    if (!u8(raw) || raw > kMaxReason) return false;
    out = static_cast<Reason>(raw);
    return true;
  }
  // A length-prefixed byte string of at most `max` bytes.
  bool bytes(std::vector<std::byte>& out, std::size_t max) {
    std::uint64_t length = 0;
    if (!varint(length) || length > max || length > reader_.remaining()) return false;
    auto view = reader_.read_bytes(static_cast<std::size_t>(length));
    if (!view) return false;
    out.assign(view->begin(), view->end());
    return true;
  }
  // A length-prefixed text of at most `max` bytes (not checked for UTF-8: escape before logging).
  bool text(std::string& out, std::size_t max) {
    std::uint64_t length = 0;
    if (!varint(length) || length > max || length > reader_.remaining()) return false;
    auto view = reader_.read_bytes(static_cast<std::size_t>(length));
    if (!view) return false;
    out.assign(reinterpret_cast<const char*>(view->data()), view->size());
    return true;
  }
  ByteReader& raw() { return reader_; }
  [[nodiscard]] bool done() const { return reader_.empty(); }

 private:
  ByteReader reader_;
};

bool read_positions(PayloadReader& reader, const DecodeLimits& limits,
                    std::vector<StreamPosition>& out, std::string_view& error) {
  std::uint64_t count = 0;
  if (!reader.varint(count)) {
    error = "positions: count truncated";
    return false;
  }
  // Each entry takes at least two bytes: bound the count before reserving.
  if (count > limits.max_list_entries || count > reader.raw().remaining() / 2) {
    error = "positions: count exceeds limit or payload";
    return false;
  }
  out.reserve(count);
  for (std::uint64_t index = 0; index < count; ++index) {
    StreamPosition position;
    if (!reader.varint(position.stream_id) || !reader.varint(position.offset)) {
      error = "positions: entry truncated";
      return false;
    }
    out.push_back(position);
  }
  return true;
}

void write_bytes_field(ByteWriter& writer, std::span<const std::byte> bytes) {
  writer.write_varint(bytes.size());
  writer.write_bytes(bytes);
}

// Texts longer than their bound are cut to it: the encoder never writes what the decoder refuses.
void write_text(ByteWriter& writer, std::string_view text, std::size_t max = SIZE_MAX) {
  text = text.substr(0, max);
  writer.write_varint(text.size());
  writer.write_bytes(std::as_bytes(std::span<const char>(text.data(), text.size())));
}

void write_positions(ByteWriter& writer, const std::vector<StreamPosition>& positions) {
  writer.write_varint(positions.size());
  for (const auto& position : positions) {
    writer.write_varint(position.stream_id);
    writer.write_varint(position.offset);
  }
}

// Reads the fields of a StreamData payload that come before its data. On failure returns the
// error detail and sets `truncated` when the failure was running out of bytes (rather than a bad
// value), which a partial payload may cure.
std::string_view read_stream_fields(ByteReader& reader, StreamData& stream, bool& truncated) {
  truncated = true;
  auto stream_id = reader.read_varint();
  if (!stream_id) return "stream: stream_id truncated";
  stream.stream_id = *stream_id;
  auto offset = reader.read_varint();
  if (!offset) return "stream: offset truncated";
  stream.offset = *offset;
  auto flags = reader.read_u8();
  if (!flags) return "stream: flags truncated";
  truncated = false;
  if ((*flags & ~(StreamData::kOpenFlag | StreamData::kFinFlag)) != 0) {
    return "stream: unknown flag bits";
  }
  stream.open = (*flags & StreamData::kOpenFlag) != 0;
  stream.fin = (*flags & StreamData::kFinFlag) != 0;
  if (stream.open) {
    auto priority = reader.read_u8();
    if (!priority) {
      truncated = true;
      return "stream: priority truncated";
    }
    stream.priority = *priority;
  }
  return {};
}

Expected<Frame, DecodeError> decode_payload(std::uint8_t type, std::span<const std::byte> payload,
                                            const DecodeLimits& limits) {
  PayloadReader reader(payload);
  auto finish = [&](Frame frame) -> Expected<Frame, DecodeError> {
    if (!reader.done()) {
      return make_unexpected(
          DecodeError{DecodeErrorCode::kTrailingBytes, to_string(frame_type(frame))});
    }
    return frame;
  };

  switch (static_cast<FrameType>(type)) {
    case FrameType::kHello: {
      Hello hello;
      if (!reader.varint(hello.version)) return malformed("hello: version truncated");
      if (!reader.varint(hello.capabilities)) return malformed("hello: capabilities truncated");
      if (!reader.varint(hello.heartbeat_interval_ms))
        return malformed("hello: heartbeat_interval truncated");
      if (!reader.varint(hello.missing_heartbeats_allowed)) {
        return malformed("hello: missing_heartbeats_allowed truncated");
      }
      // Authentication: the mechanism (empty: none), then a flag and the initial response.
      if (!reader.text(hello.mechanism, kMaxMechanismName)) {
        return malformed("hello: mechanism truncated or too long");
      }
      std::uint8_t has_response = 0;
      if (!reader.u8(has_response) || has_response > 1 ||
          (has_response == 1 && hello.mechanism.empty())) {
        return malformed("hello: initial response flag invalid");
      }
      if (has_response == 1) {
        hello.initial_response.emplace();
        if (!reader.bytes(*hello.initial_response, payload.size())) {
          return malformed("hello: initial response truncated");
        }
      }
      return finish(std::move(hello));
    }
    case FrameType::kWelcome: {
      Welcome welcome;
      if (!reader.varint(welcome.version)) return malformed("welcome: version truncated");
      if (!reader.varint(welcome.capabilities)) return malformed("welcome: capabilities truncated");
      if (!reader.array(welcome.session_id)) return malformed("welcome: session_id truncated");
      if (!reader.varint(welcome.heartbeat_interval_ms)) {
        return malformed("welcome: heartbeat_interval truncated");
      }
      if (!reader.varint(welcome.missing_heartbeats_allowed)) {
        return malformed("welcome: missing_heartbeats_allowed truncated");
      }
      if (!reader.varint(welcome.linger_ms)) return malformed("welcome: linger truncated");
      if (!reader.array(welcome.reset_token)) return malformed("welcome: reset_token truncated");
      std::uint8_t authenticated = 0;
      if (!reader.u8(authenticated) || authenticated > 1) {
        return malformed("welcome: authenticated flag invalid");
      }
      welcome.authenticated = authenticated == 1;
      if (welcome.authenticated) {
        if (!reader.text(welcome.principal, kMaxPrincipal)) {
          return malformed("welcome: principal truncated or too long");
        }
        if (!reader.bytes(welcome.server_final, payload.size())) {
          return malformed("welcome: server final message truncated");
        }
        if (!reader.varint(welcome.session_lifetime_ms)) {
          return malformed("welcome: session lifetime truncated");
        }
      }
      return finish(std::move(welcome));
    }
    case FrameType::kResume: {
      Resume resume;
      if (!reader.varint(resume.version)) return malformed("resume: version truncated");
      if (!reader.array(resume.session_id)) return malformed("resume: session_id truncated");
      if (!reader.array(resume.proof)) return malformed("resume: proof truncated");
      std::string_view error;
      if (!read_positions(reader, limits, resume.received, error)) return malformed(error);
      return finish(std::move(resume));
    }
    case FrameType::kResumeAccept: {
      ResumeAccept accept;
      if (!reader.array(accept.proof)) return malformed("resume_accept: proof truncated");
      std::string_view error;
      if (!read_positions(reader, limits, accept.received, error)) return malformed(error);
      return finish(std::move(accept));
    }
    case FrameType::kRefuse: {
      Refuse refuse;
      std::uint8_t transient = 0;
      if (!reader.reason(refuse.reason)) return malformed("refuse: reason truncated or unknown");
      if (!reader.u8(transient) || transient > 1)
        return malformed("refuse: transient flag invalid");
      refuse.transient = transient == 1;
      if (!reader.text(refuse.message, kMaxRefuseMessage)) {
        return malformed("refuse: message truncated or too long");
      }
      return finish(std::move(refuse));
    }
    case FrameType::kAuthChallenge: {
      AuthChallenge challenge;
      if (!reader.bytes(challenge.data, payload.size())) {
        return malformed("auth_challenge: data truncated");
      }
      return finish(std::move(challenge));
    }
    case FrameType::kAuthResponse: {
      AuthResponse response;
      if (!reader.bytes(response.data, payload.size())) {
        return malformed("auth_response: data truncated");
      }
      return finish(std::move(response));
    }
    case FrameType::kReauthenticate: {
      Reauthenticate reauthenticate;
      if (!reader.text(reauthenticate.mechanism, kMaxMechanismName) ||
          reauthenticate.mechanism.empty()) {
        return malformed("reauthenticate: mechanism truncated, empty or too long");
      }
      std::uint8_t has_response = 0;
      if (!reader.u8(has_response) || has_response > 1) {
        return malformed("reauthenticate: initial response flag invalid");
      }
      if (has_response == 1) {
        reauthenticate.initial_response.emplace();
        if (!reader.bytes(*reauthenticate.initial_response, payload.size())) {
          return malformed("reauthenticate: initial response truncated");
        }
      }
      return finish(std::move(reauthenticate));
    }
    case FrameType::kReauthenticated: {
      Reauthenticated reauthenticated;
      if (!reader.varint(reauthenticated.session_lifetime_ms)) {
        return malformed("reauthenticated: session lifetime truncated");
      }
      if (!reader.bytes(reauthenticated.server_final, payload.size())) {
        return malformed("reauthenticated: server final message truncated");
      }
      return finish(std::move(reauthenticated));
    }
    case FrameType::kStatelessReset: {
      StatelessReset reset;
      if (!reader.array(reset.session_id))
        return malformed("stateless_reset: session_id truncated");
      if (!reader.array(reset.token)) return malformed("stateless_reset: token truncated");
      return finish(reset);
    }
    case FrameType::kPing: {
      Ping ping;
      if (!reader.varint(ping.sequence)) return malformed("ping: sequence truncated");
      return finish(ping);
    }
    case FrameType::kPong: {
      Pong pong;
      if (!reader.varint(pong.sequence)) return malformed("pong: sequence truncated");
      return finish(pong);
    }
    case FrameType::kAck: {
      Ack ack;
      std::uint64_t count = 0;
      if (!reader.varint(count)) return malformed("ack: count truncated");
      if (count > limits.max_list_entries || count > reader.raw().remaining() / 3) {
        return malformed("ack: count exceeds limit or payload");
      }
      ack.entries.reserve(count);
      for (std::uint64_t index = 0; index < count; ++index) {
        AckEntry entry;
        if (!reader.varint(entry.stream_id)) return malformed("ack: entry stream_id truncated");
        if (!reader.varint(entry.received_offset))
          return malformed("ack: entry received_offset truncated");
        if (!reader.varint(entry.window_limit))
          return malformed("ack: entry window_limit truncated");
        ack.entries.push_back(entry);
      }
      return finish(std::move(ack));
    }
    case FrameType::kStream: {
      StreamData stream;
      bool truncated = false;
      if (auto error = read_stream_fields(reader.raw(), stream, truncated); !error.empty()) {
        return malformed(error);
      }
      stream.data = reader.raw().read_rest();
      if (stream.offset > kMaxVarint - stream.data.size())
        return malformed("stream: offset overflows");
      return finish(stream);
    }
    case FrameType::kAbort: {
      Abort abort;
      std::uint8_t transient = 0;
      if (!reader.reason(abort.reason)) return malformed("abort: reason truncated or unknown");
      if (!reader.u8(transient) || transient > 1) return malformed("abort: transient flag invalid");
      abort.transient = transient == 1;
      if (!reader.text(abort.message, kMaxRefuseMessage)) {
        return malformed("abort: message truncated or too long");
      }
      return finish(std::move(abort));
    }
    case FrameType::kFastClose: {
      FastClose close;
      if (!reader.array(close.session_id)) return malformed("fast_close: session_id truncated");
      if (!reader.array(close.key)) return malformed("fast_close: key truncated");
      if (!reader.reason(close.reason)) return malformed("fast_close: reason truncated or unknown");
      return finish(close);
    }
    case FrameType::kResetStream: {
      ResetStream reset;
      if (!reader.varint(reset.stream_id)) return malformed("reset_stream: stream_id truncated");
      if (!reader.varint(reset.error_code)) return malformed("reset_stream: error_code truncated");
      return finish(reset);
    }
    case FrameType::kClose: {
      Close close;
      if (!reader.reason(close.reason)) return malformed("close: reason truncated or unknown");
      return finish(close);
    }
  }
  if ((type & kIgnorableTypeBit) != 0) return Ignored{type};
  return make_unexpected(DecodeError{DecodeErrorCode::kUnknownFrameType, "unknown frame type"});
}

void encode_payload(const Frame& frame, ByteWriter& writer) {
  std::visit(
      [&](const auto& value) {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, Hello>) {
          writer.write_varint(value.version);
          writer.write_varint(value.capabilities);
          writer.write_varint(value.heartbeat_interval_ms);
          writer.write_varint(value.missing_heartbeats_allowed);
          write_text(writer, value.mechanism, kMaxMechanismName);
          const bool has_response = value.initial_response && !value.mechanism.empty();
          writer.write_u8(has_response ? 1 : 0);
          if (has_response) write_bytes_field(writer, *value.initial_response);
        } else if constexpr (std::is_same_v<T, Welcome>) {
          writer.write_varint(value.version);
          writer.write_varint(value.capabilities);
          writer.write_bytes(value.session_id);
          writer.write_varint(value.heartbeat_interval_ms);
          writer.write_varint(value.missing_heartbeats_allowed);
          writer.write_varint(value.linger_ms);
          writer.write_bytes(value.reset_token);
          writer.write_u8(value.authenticated ? 1 : 0);
          if (value.authenticated) {
            write_text(writer, value.principal, kMaxPrincipal);
            write_bytes_field(writer, value.server_final);
            writer.write_varint(value.session_lifetime_ms);
          }
        } else if constexpr (std::is_same_v<T, Resume>) {
          writer.write_varint(value.version);
          writer.write_bytes(value.session_id);
          writer.write_bytes(value.proof);
          write_positions(writer, value.received);
        } else if constexpr (std::is_same_v<T, ResumeAccept>) {
          writer.write_bytes(value.proof);
          write_positions(writer, value.received);
        } else if constexpr (std::is_same_v<T, Refuse>) {
          writer.write_u8(static_cast<std::uint8_t>(value.reason));
          writer.write_u8(value.transient ? 1 : 0);
          write_text(writer, value.message, kMaxRefuseMessage);
        } else if constexpr (std::is_same_v<T, Abort>) {
          writer.write_u8(static_cast<std::uint8_t>(value.reason));
          writer.write_u8(value.transient ? 1 : 0);
          write_text(writer, value.message, kMaxRefuseMessage);
        } else if constexpr (std::is_same_v<T, Reauthenticate>) {
          write_text(writer, value.mechanism, kMaxMechanismName);
          writer.write_u8(value.initial_response ? 1 : 0);
          if (value.initial_response) write_bytes_field(writer, *value.initial_response);
        } else if constexpr (std::is_same_v<T, Reauthenticated>) {
          writer.write_varint(value.session_lifetime_ms);
          write_bytes_field(writer, value.server_final);
        } else if constexpr (std::is_same_v<T, AuthChallenge> || std::is_same_v<T, AuthResponse>) {
          write_bytes_field(writer, value.data);
        } else if constexpr (std::is_same_v<T, StatelessReset>) {
          writer.write_bytes(value.session_id);
          writer.write_bytes(value.token);
        } else if constexpr (std::is_same_v<T, Ping> || std::is_same_v<T, Pong>) {
          writer.write_varint(value.sequence);
        } else if constexpr (std::is_same_v<T, Ack>) {
          assert(false && "Ack is encoded by encode_ack_frame");
        } else if constexpr (std::is_same_v<T, StreamData>) {
          assert(false && "StreamData is encoded by encode_frame directly");
        } else if constexpr (std::is_same_v<T, FastClose>) {
          writer.write_bytes(value.session_id);
          writer.write_bytes(value.key);
          writer.write_u8(static_cast<std::uint8_t>(value.reason));
        } else if constexpr (std::is_same_v<T, ResetStream>) {
          writer.write_varint(value.stream_id);
          writer.write_varint(value.error_code);
        } else if constexpr (std::is_same_v<T, Close>) {
          writer.write_u8(static_cast<std::uint8_t>(value.reason));
        } else if constexpr (std::is_same_v<T, Ignored>) {
          // An ignored frame has no payload of ours to re-encode.
        }
      },
      frame);
}

// Writes the QUIC varint encoding of `value` (precondition: value <= kMaxVarint) at `cursor` and
// advances it: the same bytes as ByteWriter::write_varint, for encoders that size their output
// first and then fill it without a capacity check per byte.
void put_varint(std::byte*& cursor, std::uint64_t value) {
  assert(value <= kMaxVarint);
  auto put = [&cursor](std::uint64_t marked, std::size_t length) {
    for (std::size_t index = 0; index < length; ++index)
      cursor[index] = static_cast<std::byte>(marked >> (8 * (length - 1 - index)));
    cursor += length;
  };
  // One branch per length, so each loop has a constant trip count and unrolls.
  if (value < (std::uint64_t{1} << 6)) {
    put(value, 1);
  } else if (value < (std::uint64_t{1} << 14)) {
    put(value | (std::uint64_t{0x40} << 8), 2);
  } else if (value < (std::uint64_t{1} << 30)) {
    put(value | (std::uint64_t{0x80} << 24), 4);
  } else {
    put(value | (std::uint64_t{0xc0} << 56), 8);
  }
}

std::size_t ack_payload_size(std::span<const AckEntry> entries) {
  std::size_t size = varint_size(entries.size());
  for (const auto& entry : entries) {
    size += varint_size(entry.stream_id) + varint_size(entry.received_offset) +
            varint_size(entry.window_limit);
  }
  return size;
}

std::size_t stream_fields_size(const StreamData& frame) {
  return varint_size(frame.stream_id) + varint_size(frame.offset) + 1 + (frame.open ? 1 : 0);
}

}  // namespace

Expected<std::optional<DecodedFrame>, DecodeError> decode_frame(std::span<const std::byte> input,
                                                                const DecodeLimits& limits) {
  ByteReader reader(input);
  auto type = reader.read_u8();
  if (!type) return std::optional<DecodedFrame>{};
  auto length = reader.read_varint();
  if (!length) return std::optional<DecodedFrame>{};
  if (*length > limits.max_payload) {
    return make_unexpected(
        DecodeError{DecodeErrorCode::kFrameTooLarge, "frame length exceeds limit"});
  }
  auto payload = reader.read_bytes(static_cast<std::size_t>(*length));
  if (!payload) return std::optional<DecodedFrame>{};
  auto frame = decode_payload(*type, *payload, limits);
  if (!frame) return make_unexpected(frame.error());
  return std::optional<DecodedFrame>{DecodedFrame{std::move(*frame), reader.position()}};
}

Expected<std::optional<StreamDataPrefix>, DecodeError> decode_stream_data_prefix(
    std::span<const std::byte> input, const DecodeLimits& limits) {
  ByteReader reader(input);
  auto type = reader.read_u8();
  if (!type || *type != static_cast<std::uint8_t>(FrameType::kStream)) {
    return std::optional<StreamDataPrefix>{};
  }
  auto length = reader.read_varint();
  if (!length) return std::optional<StreamDataPrefix>{};
  if (*length > limits.max_payload) {
    return make_unexpected(
        DecodeError{DecodeErrorCode::kFrameTooLarge, "frame length exceeds limit"});
  }
  const auto payload_size = static_cast<std::size_t>(*length);
  const bool complete = reader.remaining() >= payload_size;
  // The fields are read from the payload bytes that are here: running out of them is malformation
  // when the payload is complete (as decode_frame says), and only "need more" otherwise.
  ByteReader fields(input.subspan(reader.position(), std::min(reader.remaining(), payload_size)));
  StreamDataPrefix prefix;
  bool truncated = false;
  if (auto error = read_stream_fields(fields, prefix.frame, truncated); !error.empty()) {
    if (truncated && !complete) return std::optional<StreamDataPrefix>{};
    return make_unexpected(DecodeError{DecodeErrorCode::kMalformed, error});
  }
  prefix.prefix_size = reader.position() + fields.position();
  prefix.data_size = payload_size - fields.position();
  if (prefix.frame.offset > kMaxVarint - prefix.data_size) {
    return make_unexpected(DecodeError{DecodeErrorCode::kMalformed, "stream: offset overflows"});
  }
  return std::optional<StreamDataPrefix>{prefix};
}

void encode_frame(const Frame& frame, std::vector<std::byte>& out) {
  if (const auto* stream = std::get_if<StreamData>(&frame)) {
    encode_stream_header(*stream, stream->data.size(), out);
    out.insert(out.end(), stream->data.begin(), stream->data.end());
    return;
  }
  if (const auto* ack = std::get_if<Ack>(&frame)) {
    encode_ack_frame(ack->entries, out);
    return;
  }
  // Encode the payload into the tail of `out`, then insert the header in front of it: control
  // frames are small, so the move is cheap and we avoid a size pre-pass per frame type.
  const std::size_t start = out.size();
  ByteWriter payload_writer(out);
  encode_payload(frame, payload_writer);
  const std::size_t payload_size = out.size() - start;
  std::array<std::byte, kMaxFrameHeaderSize> header{};
  header[0] = static_cast<std::byte>(frame_type(frame));
  std::byte* cursor = header.data() + 1;
  put_varint(cursor, payload_size);
  out.insert(out.begin() + static_cast<std::ptrdiff_t>(start), header.data(), cursor);
}

void encode_ack_frame(std::span<const AckEntry> entries, std::vector<std::byte>& out) {
  const std::size_t payload_size = ack_payload_size(entries);
  const std::size_t start = out.size();
  // Sized first, then filled: the zero-fill of resize is cheap next to a capacity check per byte.
  out.resize(start + 1 + varint_size(payload_size) + payload_size);
  std::byte* cursor = out.data() + start;
  *cursor++ = static_cast<std::byte>(FrameType::kAck);
  put_varint(cursor, payload_size);
  put_varint(cursor, entries.size());
  for (const auto& entry : entries) {
    put_varint(cursor, entry.stream_id);
    put_varint(cursor, entry.received_offset);
    put_varint(cursor, entry.window_limit);
  }
  assert(cursor == out.data() + out.size());
}

void encode_stream_header(const StreamData& frame, std::size_t data_size,
                          std::vector<std::byte>& out) {
  // Type, length, stream_id, offset (at most 8 bytes each), flags, priority.
  std::array<std::byte, 1 + 3 * 8 + 2> header{};
  std::byte* cursor = header.data();
  *cursor++ = static_cast<std::byte>(FrameType::kStream);
  put_varint(cursor, stream_fields_size(frame) + data_size);
  put_varint(cursor, frame.stream_id);
  put_varint(cursor, frame.offset);
  *cursor++ = static_cast<std::byte>((frame.open ? StreamData::kOpenFlag : 0) |
                                     (frame.fin ? StreamData::kFinFlag : 0));
  if (frame.open) *cursor++ = static_cast<std::byte>(frame.priority);
  out.insert(out.end(), header.data(), cursor);
}

std::size_t stream_header_size(const StreamData& frame, std::size_t data_size) {
  const std::size_t payload = stream_fields_size(frame) + data_size;
  return 1 + varint_size(payload) + stream_fields_size(frame);
}

FrameType frame_type(const Frame& frame) {
  static constexpr FrameType kTypes[] = {
      FrameType::kHello,        FrameType::kWelcome,        FrameType::kResume,
      FrameType::kResumeAccept, FrameType::kRefuse,         FrameType::kStatelessReset,
      FrameType::kPing,         FrameType::kPong,           FrameType::kAck,
      FrameType::kStream,       FrameType::kAbort,          FrameType::kFastClose,
      FrameType::kResetStream,  FrameType::kClose,          FrameType::kAuthChallenge,
      FrameType::kAuthResponse, FrameType::kReauthenticate, FrameType::kReauthenticated};
  if (const auto* ignored = std::get_if<Ignored>(&frame))
    return static_cast<FrameType>(ignored->type);
  return kTypes[frame.index()];
}

std::string_view to_string(FrameType type) {
  switch (type) {
    case FrameType::kHello:
      return "hello";
    case FrameType::kWelcome:
      return "welcome";
    case FrameType::kResume:
      return "resume";
    case FrameType::kResumeAccept:
      return "resume_accept";
    case FrameType::kRefuse:
      return "refuse";
    case FrameType::kStatelessReset:
      return "stateless_reset";
    case FrameType::kPing:
      return "ping";
    case FrameType::kPong:
      return "pong";
    case FrameType::kAck:
      return "ack";
    case FrameType::kStream:
      return "stream";
    case FrameType::kAbort:
      return "abort";
    case FrameType::kFastClose:
      return "fast_close";
    case FrameType::kResetStream:
      return "reset_stream";
    case FrameType::kClose:
      return "close";
    case FrameType::kAuthChallenge:
      return "auth_challenge";
    case FrameType::kAuthResponse:
      return "auth_response";
    case FrameType::kReauthenticate:
      return "reauthenticate";
    case FrameType::kReauthenticated:
      return "reauthenticated";
  }
  return "unknown";
}

std::string_view to_string(Reason reason) {
  switch (reason) {
    case Reason::kUnspecified:
      return "unspecified";
    case Reason::kUnknownSession:
      return "unknown-session";
    case Reason::kLackOfResources:
      return "lack-of-resources";
    case Reason::kAdministrativelyProhibited:
      return "administratively-prohibited";
    case Reason::kTooMuchOutstandingData:
      return "too-much-outstanding-data";
    case Reason::kUnacceptablePerformance:
      return "unacceptable-performance";
    case Reason::kProtocolError:
      return "protocol-error";
    case Reason::kAuthFailed:
      return "auth-failed";
    case Reason::kCredentialsExpired:
      return "credentials-expired";
    case Reason::kRevoked:
      return "revoked";
    case Reason::kIdleTimeout:
      return "idle-timeout";
    case Reason::kShutdown:
      return "shutdown";
    case Reason::kLingerExpired:
      return "linger-expired";
    case Reason::kReconnectExhausted:
      return "reconnect-exhausted";
    case Reason::kApplicationAbort:
      return "application-abort";
  }
  return "unknown-reason";
}

std::string_view to_string(DecodeErrorCode code) {
  switch (code) {
    case DecodeErrorCode::kFrameTooLarge:
      return "frame too large";
    case DecodeErrorCode::kMalformed:
      return "malformed frame";
    case DecodeErrorCode::kUnknownFrameType:
      return "unknown frame type";
    case DecodeErrorCode::kTrailingBytes:
      return "trailing bytes in frame";
  }
  return "unknown decode error";
}

}  // namespace tether::wire
