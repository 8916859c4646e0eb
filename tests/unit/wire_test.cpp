// Unit tests of the frame codec: round trips, exact encodings, varint boundaries, partial input and
// every way a complete frame can be refused.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "tests/support/bytes.hpp"
#include "wire/byte_writer.hpp"
#include "wire/codec.hpp"
#include "wire/frame.hpp"

namespace tether::wire {

// Lets GoogleTest print frames on failure as their type and encoding. GoogleTest prints a
// std::variant through its alternatives, so the overload is for each alternative type.
void print_frame(const Frame& frame, std::ostream* out) {
  std::vector<std::byte> bytes;
  encode_frame(frame, bytes);
  *out << to_string(frame_type(frame)) << " [";
  for (std::size_t index = 0; index < bytes.size(); ++index) {
    static constexpr char kDigits[] = "0123456789abcdef";
    const auto value = static_cast<unsigned>(bytes[index]);
    *out << (index == 0 ? "" : " ") << kDigits[value >> 4] << kDigits[value & 0xf];
  }
  *out << "]";
}

template <typename T>
requires std::is_class_v<T> && std::is_constructible_v<Frame, const T&>
void PrintTo(const T& frame, std::ostream* out) {
  print_frame(Frame{frame}, out);
}

namespace {

using tether::testing::Bytes;
using tether::testing::bytes;
using tether::testing::concat;

Bytes encode(const Frame& frame) {
  Bytes out;
  encode_frame(frame, out);
  return out;
}

// A frame with an arbitrary type byte and payload, length field in its shortest form.
Bytes raw_frame(std::uint8_t type, const Bytes& payload) {
  Bytes out;
  ByteWriter writer(out);
  writer.write_u8(type);
  writer.write_varint(payload.size());
  writer.write_bytes(payload);
  return out;
}

// Splits a frame encoding into type and payload (the header is re-parsed with the QUIC varint
// rules).
struct RawFrame {
  std::uint8_t type = 0;
  Bytes payload;
};
RawFrame split(const Bytes& encoding) {
  RawFrame raw;
  raw.type = static_cast<std::uint8_t>(encoding.at(0));
  const auto first = static_cast<std::uint8_t>(encoding.at(1));
  const std::size_t length_size = std::size_t{1} << (first >> 6);
  raw.payload.assign(encoding.begin() + static_cast<std::ptrdiff_t>(1 + length_size),
                     encoding.end());
  return raw;
}

template <std::size_t Size>
std::array<std::byte, Size> filled(std::uint8_t seed) {
  std::array<std::byte, Size> out{};
  for (std::size_t index = 0; index < Size; ++index) {
    out[index] = static_cast<std::byte>(seed + index * 7);
  }
  return out;
}

std::optional<DecodedFrame> decode_complete(std::span<const std::byte> input,
                                            const DecodeLimits& limits = {}) {
  auto result = decode_frame(input, limits);
  if (!result) {
    ADD_FAILURE() << "decode error: " << to_string(result.error().code) << " ("
                  << result.error().detail << ")";
    return std::nullopt;
  }
  if (!result->has_value()) {
    ADD_FAILURE() << "decoder asked for more bytes";
    return std::nullopt;
  }
  return std::move(**result);
}

std::optional<DecodeError> decode_failure(std::span<const std::byte> input,
                                          const DecodeLimits& limits = {}) {
  auto result = decode_frame(input, limits);
  if (result) {
    ADD_FAILURE() << (result->has_value() ? "decoded a frame" : "decoder asked for more bytes");
    return std::nullopt;
  }
  return result.error();
}

bool needs_more(std::span<const std::byte> input, const DecodeLimits& limits = {}) {
  auto result = decode_frame(input, limits);
  return result.has_value() && !result->has_value();
}

const std::array<std::byte, 5> kSmallData = filled<5>(0x30);
const std::array<std::byte, 300> kMediumData = filled<300>(0x51);

struct Sample {
  std::string name;
  Frame frame;
};

// One or more representative values of every frame type, with non-default fields.
std::vector<Sample> samples() {
  return {
      {"hello", Hello{kProtocolVersion, 0x3, 15000, 3}},
      {"hello_large_values", Hello{kMaxVarint, kMaxVarint, std::uint64_t{1} << 40, 1u << 30}},
      {"welcome", Welcome{kProtocolVersion, 0x1f, filled<16>(1), 20000, 4, 600000, filled<32>(9)}},
      {"resume", Resume{kProtocolVersion,
                        filled<16>(2),
                        filled<32>(3),
                        {{0, 1000}, {3, std::uint64_t{1} << 33}, {kMaxVarint, 0}}}},
      {"resume_no_positions", Resume{7, filled<16>(4), filled<32>(5), {}}},
      {"resume_accept", ResumeAccept{filled<32>(6), {{2, 70000}}}},
      {"resume_accept_no_positions", ResumeAccept{filled<32>(7), {}}},
      {"refuse", Refuse{Reason::kLackOfResources, true}},
      {"refuse_last_reason", Refuse{Reason::kApplicationAbort, false}},
      {"refuse_with_message", Refuse{Reason::kAuthFailed, false, "SCRAM-SHA-256: wrong password"}},
      {"hello_authenticating",
       Hello{kProtocolVersion, 0x3, 15000, 3, "SCRAM-SHA-256-PLUS", bytes({0x70, 0x2c, 0x2c})}},
      {"hello_empty_initial_response", Hello{kProtocolVersion, 0, 1000, 1, "EXTERNAL", Bytes{}}},
      {"hello_no_initial_response", Hello{kProtocolVersion, 0, 1000, 1, "SCRAM-SHA-256", {}}},
      {"welcome_authenticated", Welcome{kProtocolVersion, 0x7, filled<16>(1), 20000, 4, 600000,
                                        filled<32>(9), true, "alice", bytes({0x76, 0x3d})}},
      {"welcome_authenticated_empty_final",
       Welcome{
           kProtocolVersion, 0x7, filled<16>(1), 20000, 4, 600000, filled<32>(9), true, "bob", {}}},
      {"welcome_with_lifetime", Welcome{kProtocolVersion, 0x8, filled<16>(1), 20000, 4, 600000,
                                        filled<32>(9), true, "carol", bytes({0x76}), 3600000}},
      {"reauthenticate", Reauthenticate{"OAUTHBEARER", bytes({0x6e, 0x2c})}},
      {"reauthenticate_no_initial_response", Reauthenticate{"SCRAM-SHA-256-PLUS", {}}},
      {"reauthenticate_empty_initial_response", Reauthenticate{"EXTERNAL", Bytes{}}},
      {"reauthenticated", Reauthenticated{90000, bytes({0x76, 0x3d, 0x41})}},
      {"reauthenticated_no_limit", Reauthenticated{0, {}}},
      {"abort_with_message", Abort{Reason::kRevoked, false, "revoked by the operator"}},
      {"auth_challenge", AuthChallenge{bytes({0x72, 0x3d, 0x61})}},
      {"auth_challenge_empty", AuthChallenge{}},
      {"auth_response", AuthResponse{bytes({0x01})}},
      {"stateless_reset", StatelessReset{filled<16>(8), filled<32>(10)}},
      {"ping", Ping{0}},
      {"ping_large", Ping{std::uint64_t{1} << 50}},
      {"pong", Pong{kMaxVarint}},
      {"ack_empty", Ack{}},
      {"ack", Ack{{{0, 10, 65536}, {5, 1u << 20, (1u << 20) + 4096}, {kMaxVarint, kMaxVarint, 0}}}},
      {"stream", StreamData{3, 0, false, false, 0, kSmallData}},
      {"stream_open_fin", StreamData{5, 16384, true, true, 200, kMediumData}},
      {"stream_empty_fin", StreamData{7, 1u << 30, false, true, 0, {}}},
      {"stream_open_empty", StreamData{9, 0, true, false, 0, {}}},
      {"abort", Abort{Reason::kProtocolError, true}},
      {"fast_close", FastClose{filled<16>(11), filled<32>(12), Reason::kAuthFailed}},
      {"reset_stream", ResetStream{13, std::uint64_t{1} << 40}},
      {"close", Close{Reason::kShutdown}},
      {"close_idle", Close{Reason::kIdleTimeout}},
      {"ignored_lowest", Ignored{0x80}},
      {"ignored_highest", Ignored{0xff}},
  };
}

// Samples whose payload is a fixed sequence of required fields: everything but StreamData, whose
// data runs to the end of the payload, and Ignored, whose payload is never read.
std::vector<Sample> required_field_samples() {
  std::vector<Sample> out;
  for (auto& sample : samples()) {
    if (!std::holds_alternative<StreamData>(sample.frame) &&
        !std::holds_alternative<Ignored>(sample.frame)) {
      out.push_back(std::move(sample));
    }
  }
  return out;
}

std::string sample_name(const ::testing::TestParamInfo<Sample>& info) {
  return info.param.name;
}

class FrameSampleTest : public ::testing::TestWithParam<Sample> {};
class RequiredFieldsTest : public ::testing::TestWithParam<Sample> {};

TEST_P(FrameSampleTest, RoundTripsToAnEqualFrame) {
  const Frame& frame = GetParam().frame;
  const Bytes encoding = encode(frame);
  ASSERT_GE(encoding.size(), 2u);
  EXPECT_EQ(static_cast<std::uint8_t>(encoding[0]), static_cast<std::uint8_t>(frame_type(frame)));

  auto decoded = decode_complete(encoding);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->frame, frame);
  EXPECT_EQ(decoded->frame.index(), frame.index());
  EXPECT_EQ(decoded->consumed, encoding.size());
  EXPECT_EQ(encode(decoded->frame), encoding);
}

TEST_P(FrameSampleTest, DecodingIgnoresBytesAfterTheFrame) {
  const Bytes encoding = encode(GetParam().frame);
  const Bytes input = concat(encoding, encode(Ping{42}));
  auto decoded = decode_complete(input);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->frame, GetParam().frame);
  EXPECT_EQ(decoded->consumed, encoding.size());
}

TEST_P(FrameSampleTest, EveryStrictPrefixNeedsMoreBytes) {
  const Bytes encoding = encode(GetParam().frame);
  for (std::size_t size = 0; size < encoding.size(); ++size) {
    EXPECT_TRUE(needs_more(std::span(encoding).first(size))) << "prefix of " << size << " bytes";
  }
}

TEST_P(RequiredFieldsTest, TruncatedPayloadIsMalformedAndNamesTheFrame) {
  const Frame& frame = GetParam().frame;
  const RawFrame raw = split(encode(frame));
  const std::string name(to_string(frame_type(frame)));

  // Resume and ResumeAccept end with a position list whose errors name the list, not the frame.
  std::size_t positions_start = raw.payload.size();
  if (const auto* resume = std::get_if<Resume>(&frame)) {
    positions_start = varint_size(resume->version) + 16 + 32;
  } else if (std::holds_alternative<ResumeAccept>(frame)) {
    positions_start = 32;
  }

  for (std::size_t size = 0; size < raw.payload.size(); ++size) {
    SCOPED_TRACE("payload truncated to " + std::to_string(size) + " bytes");
    const Bytes truncated(raw.payload.begin(),
                          raw.payload.begin() + static_cast<std::ptrdiff_t>(size));
    auto error = decode_failure(raw_frame(raw.type, truncated));
    ASSERT_TRUE(error);
    EXPECT_EQ(error->code, DecodeErrorCode::kMalformed);
    const std::string expected_prefix = size < positions_start ? name + ": " : "positions: ";
    EXPECT_TRUE(error->detail.starts_with(expected_prefix)) << "detail: " << error->detail;
    EXPECT_GT(error->detail.size(), expected_prefix.size());
  }
}

TEST_P(RequiredFieldsTest, ExtraPayloadByteIsTrailingBytes) {
  const Frame& frame = GetParam().frame;
  RawFrame raw = split(encode(frame));
  raw.payload.push_back(std::byte{0});
  auto error = decode_failure(raw_frame(raw.type, raw.payload));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, DecodeErrorCode::kTrailingBytes);
  EXPECT_EQ(error->detail, to_string(frame_type(frame)));
}

INSTANTIATE_TEST_SUITE_P(Wire, FrameSampleTest, ::testing::ValuesIn(samples()), sample_name);
INSTANTIATE_TEST_SUITE_P(Wire, RequiredFieldsTest, ::testing::ValuesIn(required_field_samples()),
                         sample_name);

TEST(WireCodecTest, SamplesCoverEveryFrameType) {
  std::vector<bool> seen(std::variant_size_v<Frame>, false);
  for (const auto& sample : samples()) seen[sample.frame.index()] = true;
  for (std::size_t index = 0; index < seen.size(); ++index) {
    EXPECT_TRUE(seen[index]) << "no sample for variant alternative " << index;
  }
}

TEST(WireCodecTest, ExactEncodings) {
  EXPECT_EQ(encode(Ping{5}), bytes({0x07, 0x01, 0x05}));
  EXPECT_EQ(encode(Pong{64}), bytes({0x08, 0x02, 0x40, 0x40}));
  EXPECT_EQ(encode(Close{Reason::kShutdown}), bytes({0x0e, 0x01, 0x0b}));
  EXPECT_EQ(encode(Refuse{Reason::kAuthFailed, true}), bytes({0x05, 0x03, 0x07, 0x01, 0x00}));
  EXPECT_EQ(encode(Refuse{Reason::kAuthFailed, false, "no"}),
            bytes({0x05, 0x05, 0x07, 0x00, 0x02, 0x6e, 0x6f}));
  EXPECT_EQ(encode(Hello{1, 0, 1000, 3, "PLAIN", bytes({0x00})}),
            bytes({0x01, 0x0e, 0x01, 0x00, 0x43, 0xe8, 0x03, 0x05, 0x50, 0x4c, 0x41, 0x49, 0x4e,
                   0x01, 0x01, 0x00}));
  EXPECT_EQ(encode(AuthResponse{bytes({0x01})}), bytes({0x10, 0x02, 0x01, 0x01}));
  EXPECT_EQ(encode(Abort{Reason::kRevoked, false}), bytes({0x0b, 0x03, 0x09, 0x00, 0x00}));
  EXPECT_EQ(encode(Abort{Reason::kAuthFailed, false, "no"}),
            bytes({0x0b, 0x05, 0x07, 0x00, 0x02, 0x6e, 0x6f}));
  EXPECT_EQ(encode(Reauthenticate{"PLAIN", bytes({0x00})}),
            bytes({0x11, 0x09, 0x05, 0x50, 0x4c, 0x41, 0x49, 0x4e, 0x01, 0x01, 0x00}));
  EXPECT_EQ(encode(Reauthenticated{1000, bytes({0x76})}),
            bytes({0x12, 0x04, 0x43, 0xe8, 0x01, 0x76}));
  EXPECT_EQ(encode(Hello{1, 0x3, 15000, 3}),
            bytes({0x01, 0x07, 0x01, 0x03, 0x7a, 0x98, 0x03, 0x00, 0x00}));
  EXPECT_EQ(encode(Ack{{{1, 300, 70000}}}),
            bytes({0x09, 0x08, 0x01, 0x01, 0x41, 0x2c, 0x80, 0x01, 0x11, 0x70}));
  EXPECT_EQ(encode(ResetStream{2, 16384}), bytes({0x0d, 0x05, 0x02, 0x80, 0x00, 0x40, 0x00}));
  EXPECT_EQ(encode(Ignored{0x9c}), bytes({0x9c, 0x00}));
  const Bytes data = bytes({0x61, 0x62});
  EXPECT_EQ(encode(StreamData{4, 100, true, true, 2, data}),
            bytes({0x0a, 0x07, 0x04, 0x40, 0x64, 0x03, 0x02, 0x61, 0x62}));
  EXPECT_EQ(encode(StreamData{4, 0, false, true, 9, data}),
            bytes({0x0a, 0x05, 0x04, 0x00, 0x02, 0x61, 0x62}));

  const Bytes fast_close = encode(FastClose{filled<16>(1), filled<32>(2), Reason::kRevoked});
  ASSERT_EQ(fast_close.size(), 2u + 16 + 32 + 1);
  EXPECT_EQ(fast_close[0], std::byte{0x0c});
  EXPECT_EQ(fast_close[1], std::byte{49});
  EXPECT_EQ(fast_close[2], std::byte{1});
  EXPECT_EQ(fast_close[18], std::byte{2});
  EXPECT_EQ(fast_close.back(), std::byte{9});
}

struct VarintCase {
  std::uint64_t value;
  Bytes encoding;
};

TEST(WireCodecTest, VarintBoundaries) {
  const std::vector<VarintCase> cases = {
      {0, bytes({0x00})},
      {63, bytes({0x3f})},
      {64, bytes({0x40, 0x40})},
      {16383, bytes({0x7f, 0xff})},
      {16384, bytes({0x80, 0x00, 0x40, 0x00})},
      {(std::uint64_t{1} << 30) - 1, bytes({0xbf, 0xff, 0xff, 0xff})},
      {std::uint64_t{1} << 30, bytes({0xc0, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00})},
      {(std::uint64_t{1} << 62) - 1, bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})},
  };
  for (const auto& test : cases) {
    SCOPED_TRACE("value " + std::to_string(test.value));
    EXPECT_EQ(varint_size(test.value), test.encoding.size());

    const Bytes expected = raw_frame(0x07, test.encoding);
    const Bytes encoding = encode(Ping{test.value});
    EXPECT_EQ(encoding, expected);

    auto decoded = decode_complete(encoding);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(decoded->frame, Frame{Ping{test.value}});
    EXPECT_EQ(decoded->consumed, 2 + test.encoding.size());

    // The same value in a multi-varint frame, followed by a field that must still line up.
    auto reset = decode_complete(encode(ResetStream{test.value, 17}));
    ASSERT_TRUE(reset);
    EXPECT_EQ(reset->frame, (Frame{ResetStream{test.value, 17}}));
  }
}

TEST(WireCodecTest, LengthFieldBoundaries) {
  // StreamData{stream 1, offset 0, no flags} has 3 bytes of fields before its data.
  const std::vector<std::pair<std::size_t, Bytes>> cases = {
      {63, bytes({0x3f})},
      {64, bytes({0x40, 0x40})},
      {16383, bytes({0x7f, 0xff})},
      {16384, bytes({0x80, 0x00, 0x40, 0x00})},
  };
  for (const auto& [payload_size, length_field] : cases) {
    SCOPED_TRACE("payload " + std::to_string(payload_size));
    const Bytes data(payload_size - 3, std::byte{0x5a});
    const StreamData frame{1, 0, false, false, 0, data};
    const Bytes encoding = encode(frame);
    ASSERT_EQ(encoding.size(), 1 + length_field.size() + payload_size);
    EXPECT_EQ(Bytes(encoding.begin() + 1,
                    encoding.begin() + 1 + static_cast<std::ptrdiff_t>(length_field.size())),
              length_field);
    auto decoded = decode_complete(encoding);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(decoded->frame, Frame{frame});
    EXPECT_EQ(decoded->consumed, encoding.size());
  }
}

TEST(WireCodecTest, EmptyInputNeedsMoreBytes) {
  EXPECT_TRUE(needs_more({}));
}

TEST(WireCodecTest, PrefixesOfLargeStreamFrameNeedMoreBytes) {
  const Bytes data(20000, std::byte{0x11});
  const Bytes encoding = encode(StreamData{1, 0, true, false, 3, data});
  for (std::size_t size = 0; size < encoding.size(); ++size) {
    ASSERT_TRUE(needs_more(std::span(encoding).first(size))) << "prefix of " << size << " bytes";
  }
  EXPECT_TRUE(decode_complete(encoding));
}

TEST(WireCodecTest, PrefixesOfIgnorableFramesNeedMoreBytes) {
  const Bytes payload = bytes({0xde, 0xad, 0xbe, 0xef});
  for (std::uint8_t type : {std::uint8_t{0x80}, std::uint8_t{0x90}, std::uint8_t{0xff}}) {
    const Bytes encoding = raw_frame(type, payload);
    for (std::size_t size = 0; size < encoding.size(); ++size) {
      EXPECT_TRUE(needs_more(std::span(encoding).first(size)))
          << "type " << int{type} << ", prefix of " << size << " bytes";
    }
  }
}

TEST(WireCodecTest, FrameTooLargeIsRefusedFromTheLengthFieldAlone) {
  // Default limit 2^20: a length of 2^20 + 1 with no payload byte present.
  auto error = decode_failure(bytes({0x0a, 0x80, 0x10, 0x00, 0x01}));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, DecodeErrorCode::kFrameTooLarge);
  EXPECT_FALSE(error->detail.empty());

  // The largest length a varint can carry.
  error = decode_failure(bytes({0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, DecodeErrorCode::kFrameTooLarge);

  // Exactly at the limit is fine: it only needs more bytes.
  EXPECT_TRUE(needs_more(bytes({0x0a, 0x80, 0x10, 0x00, 0x00})));

  // Ignorable and unknown types are bounded the same way.
  for (unsigned type : {0x80u, 0xffu, 0x00u, 0x20u}) {
    error = decode_failure(bytes({type, 0x80, 0x10, 0x00, 0x01}));
    ASSERT_TRUE(error);
    EXPECT_EQ(error->code, DecodeErrorCode::kFrameTooLarge) << "type " << type;
  }
}

TEST(WireCodecTest, FrameTooLargeHonoursCustomLimit) {
  const DecodeLimits limits{.max_payload = 8, .max_list_entries = 4096};
  auto error = decode_failure(bytes({0x07, 0x09}), limits);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, DecodeErrorCode::kFrameTooLarge);

  EXPECT_TRUE(needs_more(bytes({0x07, 0x08}), limits));

  const Bytes data(5, std::byte{1});
  const Bytes fits = encode(StreamData{1, 0, false, false, 0, data});  // payload 3 + 5 = 8
  EXPECT_TRUE(decode_complete(fits, limits));
  const Bytes one_more(6, std::byte{1});
  error = decode_failure(encode(StreamData{1, 0, false, false, 0, one_more}), limits);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, DecodeErrorCode::kFrameTooLarge);
}

struct MalformedCase {
  std::string_view name;
  Bytes input;
  std::string_view detail;
};

TEST(WireCodecTest, MalformedFieldsAreNamed) {
  const std::vector<MalformedCase> cases = {
      {"hello without fields", raw_frame(0x01, {}), "hello: version truncated"},
      {"hello cut in a varint", raw_frame(0x01, bytes({0x01, 0x01, 0x40})),
       "hello: heartbeat_interval truncated"},
      {"welcome short session id", raw_frame(0x02, concat(bytes({0x01, 0x00}), Bytes(10))),
       "welcome: session_id truncated"},
      {"welcome short reset token",
       raw_frame(0x02, concat(bytes({0x01, 0x00}),
                              concat(Bytes(16), concat(bytes({1, 2, 3}), Bytes(31))))),
       "welcome: reset_token truncated"},
      {"resume short proof", raw_frame(0x03, concat(bytes({0x01}), Bytes(16 + 31))),
       "resume: proof truncated"},
      {"resume_accept short proof", raw_frame(0x04, Bytes(20)), "resume_accept: proof truncated"},
      {"refuse transient 2", raw_frame(0x05, bytes({0x01, 0x02})),
       "refuse: transient flag invalid"},
      {"refuse without transient", raw_frame(0x05, bytes({0x01})),
       "refuse: transient flag invalid"},
      {"stateless_reset short token", raw_frame(0x06, Bytes(16 + 10)),
       "stateless_reset: token truncated"},
      {"ping cut in a varint", raw_frame(0x07, bytes({0x80, 0x00})), "ping: sequence truncated"},
      {"pong without fields", raw_frame(0x08, {}), "pong: sequence truncated"},
      {"ack count above payload", raw_frame(0x09, bytes({0x02, 0x01, 0x02, 0x03})),
       "ack: count exceeds limit or payload"},
      {"ack window_limit cut", raw_frame(0x09, bytes({0x01, 0x05, 0x06, 0x40})),
       "ack: entry window_limit truncated"},
      {"ack received_offset cut", raw_frame(0x09, bytes({0x01, 0x05, 0x80, 0x00})),
       "ack: entry received_offset truncated"},
      {"stream without flags", raw_frame(0x0a, bytes({0x01, 0x00})), "stream: flags truncated"},
      {"stream open without priority", raw_frame(0x0a, bytes({0x01, 0x00, 0x01})),
       "stream: priority truncated"},
      {"abort transient 255", raw_frame(0x0b, bytes({0x00, 0xff})),
       "abort: transient flag invalid"},
      {"fast_close without reason", raw_frame(0x0c, Bytes(48)),
       "fast_close: reason truncated or unknown"},
      {"reset_stream without error code", raw_frame(0x0d, bytes({0x04})),
       "reset_stream: error_code truncated"},
      {"close without reason", raw_frame(0x0e, {}), "close: reason truncated or unknown"},
  };
  for (const auto& test : cases) {
    SCOPED_TRACE(test.name);
    auto error = decode_failure(test.input);
    ASSERT_TRUE(error);
    EXPECT_EQ(error->code, DecodeErrorCode::kMalformed);
    EXPECT_EQ(error->detail, test.detail);
  }
}

TEST(WireCodecTest, StreamOffsetMayNotOverflowVarintRange) {
  const Bytes data = bytes({0x01});
  auto error = decode_failure(encode(StreamData{1, kMaxVarint, false, false, 0, data}));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, DecodeErrorCode::kMalformed);
  EXPECT_EQ(error->detail, "stream: offset overflows");

  // The last byte of the stream may sit just below 2^62 - 1.
  EXPECT_TRUE(decode_complete(encode(StreamData{1, kMaxVarint - 1, false, true, 0, data})));
  EXPECT_TRUE(decode_complete(encode(StreamData{1, kMaxVarint, false, true, 0, {}})));
}

TEST(WireCodecTest, AuthenticationFieldsAreBounded) {
  // A mechanism name longer than SASL allows, an initial response without a mechanism, a flag
  // other than 0/1, a principal or refusal message past its bound: each malformed.
  const std::string long_name(kMaxMechanismName + 1, 'A');
  Bytes hello = encode(Hello{1, 0, 1000, 3});
  RawFrame raw = split(hello);
  raw.payload.resize(raw.payload.size() - 2);
  auto with_tail = [&](const Bytes& tail) { return raw_frame(0x01, concat(raw.payload, tail)); };
  Bytes name_field = bytes({static_cast<unsigned>(long_name.size())});
  for (char c : long_name) name_field.push_back(static_cast<std::byte>(c));
  EXPECT_TRUE(decode_failure(with_tail(concat(name_field, bytes({0x00})))));
  EXPECT_TRUE(decode_failure(with_tail(bytes({0x00, 0x01, 0x00}))));  // response, no mechanism
  EXPECT_TRUE(decode_failure(with_tail(bytes({0x01, 0x41, 0x02}))));  // flag 2
  EXPECT_TRUE(decode_complete(with_tail(bytes({0x01, 0x41, 0x01, 0x00}))));
  const std::string long_message(kMaxRefuseMessage + 1, 'm');
  Bytes refuse = bytes({0x07, 0x00, 0x42, 0x01});  // reason, transient, length 513 (2-byte varint)
  for (char c : long_message) refuse.push_back(static_cast<std::byte>(c));
  EXPECT_TRUE(decode_failure(raw_frame(0x05, refuse)));
  // The encoder never writes what the decoder refuses: an over-long message is cut to the bound.
  auto decoded = decode_complete(encode(Refuse{Reason::kAuthFailed, false, long_message}));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<Refuse>(decoded->frame).message.size(), kMaxRefuseMessage);
}

TEST(WireCodecTest, UnknownTypeWithoutIgnorableBitIsAnError) {
  for (unsigned type : {0x00u, 0x13u, 0x20u, 0x40u, 0x7fu}) {
    SCOPED_TRACE("type " + std::to_string(type));
    for (const Bytes& payload : {Bytes{}, bytes({0x01, 0x02, 0x03})}) {
      auto error = decode_failure(raw_frame(static_cast<std::uint8_t>(type), payload));
      ASSERT_TRUE(error);
      EXPECT_EQ(error->code, DecodeErrorCode::kUnknownFrameType);
      EXPECT_FALSE(error->detail.empty());
    }
  }
}

TEST(WireCodecTest, UnknownTypeWithIgnorableBitIsSkippedWhole) {
  const Bytes payload = bytes({0x01, 0x02, 0xff, 0x40, 0x00});
  // 0x81 and 0x8a carry known type numbers under the ignorable bit: they must not decode as those.
  for (unsigned type : {0x80u, 0x81u, 0x8au, 0xc3u, 0xffu}) {
    SCOPED_TRACE("type " + std::to_string(type));
    const Bytes frame = raw_frame(static_cast<std::uint8_t>(type), payload);
    const Bytes input = concat(frame, encode(Ping{9}));
    auto decoded = decode_complete(input);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(decoded->frame, Frame{Ignored{static_cast<std::uint8_t>(type)}});
    EXPECT_EQ(decoded->consumed, frame.size());
    EXPECT_EQ(decoded->consumed, 7u);
    EXPECT_EQ(frame_type(decoded->frame), static_cast<FrameType>(type));

    auto next = decode_complete(std::span(input).subspan(decoded->consumed));
    ASSERT_TRUE(next);
    EXPECT_EQ(next->frame, Frame{Ping{9}});
  }

  // An ignorable frame with an empty payload, and one with a large payload.
  auto empty = decode_complete(bytes({0x99, 0x00}));
  ASSERT_TRUE(empty);
  EXPECT_EQ(empty->consumed, 2u);
  const Bytes large = raw_frame(0xa0, Bytes(70000, std::byte{0x0a}));
  auto skipped = decode_complete(large);
  ASSERT_TRUE(skipped);
  EXPECT_EQ(skipped->frame, Frame{Ignored{0xa0}});
  EXPECT_EQ(skipped->consumed, 1u + 4 + 70000);
}

Bytes ack_payload(std::size_t count) {
  Bytes payload;
  ByteWriter writer(payload);
  writer.write_varint(count);
  for (std::size_t index = 0; index < count; ++index) {
    writer.write_varint(index % 60);
    writer.write_varint(index % 50);
    writer.write_varint(index % 40);
  }
  return payload;
}

TEST(WireCodecTest, AckEntryCountIsLimited) {
  const DecodeLimits limits{.max_payload = 1u << 20, .max_list_entries = 2};
  auto decoded = decode_complete(raw_frame(0x09, ack_payload(2)), limits);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<Ack>(decoded->frame).entries.size(), 2u);

  auto error = decode_failure(raw_frame(0x09, ack_payload(3)), limits);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, DecodeErrorCode::kMalformed);
  EXPECT_EQ(error->detail, "ack: count exceeds limit or payload");

  // The default limit of 4096 entries.
  decoded = decode_complete(raw_frame(0x09, ack_payload(4096)));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::get<Ack>(decoded->frame).entries.size(), 4096u);
  error = decode_failure(raw_frame(0x09, ack_payload(4097)));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, DecodeErrorCode::kMalformed);

  // A huge count with no entries behind it is refused without reserving for it.
  error = decode_failure(raw_frame(0x09, bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, DecodeErrorCode::kMalformed);
}

Bytes positions(std::size_t count) {
  Bytes out;
  ByteWriter writer(out);
  writer.write_varint(count);
  for (std::size_t index = 0; index < count; ++index) {
    writer.write_varint(index);
    writer.write_varint(index * 1000);
  }
  return out;
}

TEST(WireCodecTest, PositionCountIsLimited) {
  const DecodeLimits limits{.max_payload = 1u << 20, .max_list_entries = 2};
  const Bytes resume_head = concat(bytes({0x01}), Bytes(16 + 32, std::byte{0x33}));
  const Bytes accept_head(32, std::byte{0x44});
  for (const auto& [type, head] :
       {std::pair{std::uint8_t{0x03}, resume_head}, std::pair{std::uint8_t{0x04}, accept_head}}) {
    SCOPED_TRACE("type " + std::to_string(type));
    auto decoded = decode_complete(raw_frame(type, concat(head, positions(2))), limits);
    ASSERT_TRUE(decoded);

    auto error = decode_failure(raw_frame(type, concat(head, positions(3))), limits);
    ASSERT_TRUE(error);
    EXPECT_EQ(error->code, DecodeErrorCode::kMalformed);
    EXPECT_EQ(error->detail, "positions: count exceeds limit or payload");

    EXPECT_TRUE(decode_complete(raw_frame(type, concat(head, positions(4096)))));
    error = decode_failure(raw_frame(type, concat(head, positions(4097))));
    ASSERT_TRUE(error);
    EXPECT_EQ(error->code, DecodeErrorCode::kMalformed);
  }
  auto decoded = decode_complete(raw_frame(0x04, concat(accept_head, positions(3))));
  ASSERT_TRUE(decoded);
  const auto& accept = std::get<ResumeAccept>(decoded->frame);
  ASSERT_EQ(accept.received.size(), 3u);
  EXPECT_EQ(accept.received[2], (StreamPosition{2, 2000}));
}

TEST(WireCodecTest, ReasonByteIsValidated) {
  const Bytes key_material(48, std::byte{0x77});
  struct ReasonFrame {
    std::uint8_t type;
    std::string_view name;
    Bytes head;  // payload before the reason byte
    Bytes tail;  // payload after it
  };
  const std::vector<ReasonFrame> frames = {
      {0x05, "refuse", {}, bytes({0x00, 0x00})},
      {0x0b, "abort", {}, bytes({0x01, 0x00})},
      {0x0c, "fast_close", key_material, {}},
      {0x0e, "close", {}, {}},
  };
  for (const auto& frame : frames) {
    SCOPED_TRACE(std::string(frame.name));
    for (unsigned reason = 0; reason <= kMaxReason; ++reason) {
      auto decoded = decode_complete(
          raw_frame(frame.type, concat(concat(frame.head, bytes({reason})), frame.tail)));
      ASSERT_TRUE(decoded) << "reason " << reason;
      const Bytes reencoded = encode(decoded->frame);
      EXPECT_EQ(split(reencoded).payload.at(frame.head.size()), static_cast<std::byte>(reason));
    }
    for (unsigned reason : {kMaxReason + 1u, 0x40u, 0x80u, 0xffu}) {
      auto error = decode_failure(
          raw_frame(frame.type, concat(concat(frame.head, bytes({reason})), frame.tail)));
      ASSERT_TRUE(error) << "reason " << reason;
      EXPECT_EQ(error->code, DecodeErrorCode::kMalformed);
      EXPECT_EQ(error->detail, std::string(frame.name) + ": reason truncated or unknown");
    }
  }
  auto decoded = decode_complete(raw_frame(0x0e, bytes({14})));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->frame, Frame{Close{Reason::kApplicationAbort}});
}

TEST(WireCodecTest, UnknownStreamFlagBitsAreRefused) {
  for (unsigned flags : {0x04u, 0x05u, 0x08u, 0x10u, 0x40u, 0x80u, 0xffu}) {
    SCOPED_TRACE("flags " + std::to_string(flags));
    auto error = decode_failure(raw_frame(0x0a, bytes({0x01, 0x00, flags, 0x00, 0x61})));
    ASSERT_TRUE(error);
    EXPECT_EQ(error->code, DecodeErrorCode::kMalformed);
    EXPECT_EQ(error->detail, "stream: unknown flag bits");
  }
  const std::vector<std::pair<unsigned, StreamData>> valid = {
      {0x00, StreamData{1, 0, false, false, 0, {}}},
      {0x01, StreamData{1, 0, true, false, 0x61, {}}},
      {0x02, StreamData{1, 0, false, true, 0, {}}},
      {0x03, StreamData{1, 0, true, true, 0x61, {}}},
  };
  for (const auto& [flags, expected] : valid) {
    SCOPED_TRACE("flags " + std::to_string(flags));
    auto decoded = decode_complete(raw_frame(0x0a, bytes({0x01, 0x00, flags, 0x61})));
    ASSERT_TRUE(decoded);
    const auto& stream = std::get<StreamData>(decoded->frame);
    EXPECT_EQ(stream.open, expected.open);
    EXPECT_EQ(stream.fin, expected.fin);
    EXPECT_EQ(stream.priority, expected.priority);
    EXPECT_EQ(stream.data.size(), expected.open ? 0u : 1u);
  }
}

TEST(WireCodecTest, StreamDataViewsTheInput) {
  const Bytes data = bytes({0x10, 0x20, 0x30});
  const Bytes encoding = encode(StreamData{2, 8, true, false, 1, data});
  auto decoded = decode_complete(encoding);
  ASSERT_TRUE(decoded);
  const auto& stream = std::get<StreamData>(decoded->frame);
  ASSERT_EQ(stream.data.size(), 3u);
  EXPECT_EQ(stream.data.data(), encoding.data() + encoding.size() - 3);
}

TEST(WireCodecTest, StreamHeaderPlusDataEqualsEncodedFrame) {
  const std::vector<std::size_t> sizes = {0,     1,     55,    56,    57,    58,    59,    60,
                                          61,    62,    63,    64,    1000,  16370, 16371, 16372,
                                          16373, 16379, 16380, 16381, 16382, 16384, 70000};
  const std::vector<std::uint64_t> values = {0, 63, 64, 16384, std::uint64_t{1} << 40};
  const Bytes data_buffer(70000, std::byte{0xa5});
  for (std::size_t size : sizes) {
    for (std::uint64_t value : values) {
      for (unsigned flags = 0; flags < 4; ++flags) {
        const bool open = (flags & 1) != 0;
        const bool fin = (flags & 2) != 0;
        SCOPED_TRACE("size " + std::to_string(size) + ", value " + std::to_string(value) +
                     ", flags " + std::to_string(flags));
        const std::span<const std::byte> data = std::span(data_buffer).first(size);
        // The priority is only carried (and only compared equal after decoding) with `open`.
        const std::uint8_t priority = open ? 7 : 0;
        const StreamData full{value, value * 3, open, fin, priority, data};
        const StreamData header_only{value, value * 3, open, fin, priority, {}};

        Bytes streamed = bytes({0xee});  // the header is appended, not written from the start
        encode_stream_header(header_only, size, streamed);
        EXPECT_EQ(streamed.size() - 1, stream_header_size(header_only, size));
        EXPECT_EQ(stream_header_size(full, size), stream_header_size(header_only, size));
        streamed.insert(streamed.end(), data.begin(), data.end());

        const Bytes framed = encode(full);
        ASSERT_EQ(Bytes(streamed.begin() + 1, streamed.end()), framed);
        auto decoded = decode_complete(std::span(streamed).subspan(1));
        ASSERT_TRUE(decoded);
        EXPECT_EQ(decoded->frame, Frame{full});
        EXPECT_EQ(decoded->consumed, framed.size());
      }
    }
  }
}

TEST(WireCodecTest, StreamHeaderSizeExactValues) {
  // type + 1-byte length + stream id + offset + flags
  EXPECT_EQ(stream_header_size(StreamData{1, 0, false, false, 0, {}}, 10), 5u);
  // + priority
  EXPECT_EQ(stream_header_size(StreamData{1, 0, true, false, 0, {}}, 10), 6u);
  // payload 4 + 60 = 64: the length takes two bytes.
  EXPECT_EQ(stream_header_size(StreamData{1, 0, true, false, 0, {}}, 60), 7u);
  // 8-byte stream id and offset, 4-byte length.
  EXPECT_EQ(stream_header_size(StreamData{1u << 30, 1u << 30, false, true, 0, {}}, 20000),
            1u + 4 + 8 + 8 + 1);
}

TEST(WireCodecTest, ConcatenatedFramesDecodeInSequence) {
  const auto all = samples();
  Bytes buffer;
  for (const auto& sample : all) encode_frame(sample.frame, buffer);
  std::span<const std::byte> rest(buffer);
  for (const auto& sample : all) {
    SCOPED_TRACE(sample.name);
    auto decoded = decode_complete(rest);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(decoded->frame, sample.frame);
    EXPECT_EQ(decoded->consumed, encode(sample.frame).size());
    rest = rest.subspan(decoded->consumed);
  }
  EXPECT_TRUE(rest.empty());
  EXPECT_TRUE(needs_more(rest));
}

TEST(WireCodecTest, ErrorCodesHaveNames) {
  EXPECT_EQ(to_string(DecodeErrorCode::kFrameTooLarge), "frame too large");
  EXPECT_EQ(to_string(DecodeErrorCode::kMalformed), "malformed frame");
  EXPECT_EQ(to_string(DecodeErrorCode::kUnknownFrameType), "unknown frame type");
  EXPECT_EQ(to_string(DecodeErrorCode::kTrailingBytes), "trailing bytes in frame");
}

}  // namespace
}  // namespace tether::wire
