// Fuzzes the SOCKS5 handshake: arbitrary bytes fed in arbitrary chunkings (chosen by the first two
// input bytes) must give the same outcome as feeding them whole, never take more than given, never
// ask to send more than the documented bound, and stay put once complete or failed.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "fuzz_check.hpp"
#include "tunnel/socks5.hpp"

namespace {

using tether::tunnel::Socks5AddressType;
using tether::tunnel::Socks5Handshake;
using tether::tunnel::Socks5Reply;
using tether::tunnel::Socks5Target;
using State = Socks5Handshake::State;

// What a sequence of feed() calls produced, added up.
struct Outcome {
  std::size_t consumed = 0;
  std::vector<std::byte> sent;
  std::optional<Socks5Target> request;
  std::optional<std::string> failure;
  State state = State::kGreeting;
};

// Feeds one chunk and checks what must hold for any single call.
void feed(Socks5Handshake& handshake, std::span<const std::byte> chunk, Outcome& outcome) {
  const State before = handshake.state();
  auto result = handshake.feed(chunk);
  const State after = handshake.state();
  if (!result) {
    FUZZ_CHECK(after == State::kFailed);
    FUZZ_CHECK(!result.error().reason.empty());
    FUZZ_CHECK(result.error().to_send.size() <= tether::tunnel::kMaxSocks5HandshakeOutput);
    FUZZ_CHECK(!handshake.request().has_value());
    if (before == State::kFailed) {
      // A failed handshake repeats its reason and asks to send nothing more.
      FUZZ_CHECK(result.error().to_send.empty());
      FUZZ_CHECK(outcome.failure && *outcome.failure == result.error().reason);
    } else {
      FUZZ_CHECK(!outcome.failure.has_value());
      outcome.failure = result.error().reason;
    }
    outcome.sent.insert(outcome.sent.end(), result.error().to_send.begin(),
                        result.error().to_send.end());
    outcome.state = after;
    return;
  }
  FUZZ_CHECK(before != State::kFailed && after != State::kFailed);
  FUZZ_CHECK(result->consumed <= chunk.size());
  FUZZ_CHECK(result->to_send.size() <= tether::tunnel::kMaxSocks5HandshakeOutput);
  if (before == State::kComplete) {
    // Once complete, everything further is payload: nothing taken, sent or reported.
    FUZZ_CHECK(after == State::kComplete);
    FUZZ_CHECK(result->consumed == 0 && result->to_send.empty() && !result->request);
    FUZZ_CHECK(handshake.request() == outcome.request);
  } else if (after == State::kComplete) {
    FUZZ_CHECK(result->request.has_value());
    FUZZ_CHECK(handshake.request() == result->request);
    outcome.request = result->request;
  } else {
    // Not complete: the handshake took the whole chunk and waits for more.
    FUZZ_CHECK(!result->request.has_value());
    FUZZ_CHECK(result->consumed == chunk.size());
  }
  outcome.consumed += result->consumed;
  outcome.sent.insert(outcome.sent.end(), result->to_send.begin(), result->to_send.end());
  outcome.state = after;
}

std::uint8_t byte_at(std::span<const std::byte> bytes, std::size_t at) {
  return static_cast<std::uint8_t>(bytes[at]);
}

// A completed request must be what the consumed bytes say: the greeting then the request, whose
// address re-encodes (through encode_socks5_reply, which shares the request's layout) to the same
// bytes for IPv4 and IPv6, and is the domain as sent for a name.
void check_request(std::span<const std::byte> input, const Outcome& outcome) {
  const Socks5Target& target = *outcome.request;
  const std::size_t greeting = 2 + byte_at(input, 1);
  const auto request = input.subspan(greeting, outcome.consumed - greeting);
  FUZZ_CHECK(request.size() >= 4 + 1 + 1 + 2);  // the shortest: a one-byte domain
  FUZZ_CHECK(static_cast<std::uint8_t>(target.address_type) == byte_at(request, 3));
  FUZZ_CHECK(target.port ==
             ((byte_at(request, request.size() - 2) << 8) | byte_at(request, request.size() - 1)));
  if (target.address_type == Socks5AddressType::kDomain) {
    FUZZ_CHECK(target.host.size() == byte_at(request, 4));
    FUZZ_CHECK(request.size() == 4 + 1 + target.host.size() + 2);
    FUZZ_CHECK(std::equal(
        target.host.begin(), target.host.end(), request.begin() + 5,
        [](char left, std::byte right) { return static_cast<std::byte>(left) == right; }));
    return;
  }
  const std::vector<std::byte> encoding =
      tether::tunnel::encode_socks5_reply(Socks5Reply::kGeneralFailure, target.host, target.port);
  FUZZ_CHECK(encoding.size() == request.size());
  FUZZ_CHECK(std::equal(encoding.begin(), encoding.end(), request.begin()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // Byte 0 picks the largest chunk, byte 1 seeds the sequence of chunk sizes.
  const std::size_t largest = 1 + data[0] % 64;
  std::uint32_t seed = data[1];
  const std::span<const std::byte> input(reinterpret_cast<const std::byte*>(data) + 2, size - 2);

  Socks5Handshake whole_handshake;
  Outcome whole;
  feed(whole_handshake, input, whole);
  if (whole.request) check_request(input, whole);
  if (whole.failure) FUZZ_CHECK(!whole.request);
  if (whole.state == State::kComplete || whole.state == State::kFailed) {
    const Outcome before = whole;
    feed(whole_handshake, input, whole);  // stable: takes, sends and reports nothing new
    FUZZ_CHECK(whole.consumed == before.consumed && whole.sent == before.sent);
    FUZZ_CHECK(whole.request == before.request && whole.state == before.state);
  }

  Socks5Handshake chunked_handshake;
  Outcome chunked;
  std::size_t offset = 0;
  while (offset < input.size()) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t length =
        std::min<std::size_t>(1 + (seed >> 16) % largest, input.size() - offset);
    // The caller's contract: once complete, the rest of the chunk is payload; here it is fed again
    // anyway, which must take nothing.
    feed(chunked_handshake, input.subspan(offset, length), chunked);
    offset += length;
  }
  feed(chunked_handshake, {}, chunked);

  // The outcome depends on the bytes, not on how they were split.
  FUZZ_CHECK(chunked.state == whole.state);
  FUZZ_CHECK(chunked.sent == whole.sent);
  FUZZ_CHECK(chunked.failure == whole.failure);
  FUZZ_CHECK(chunked.request == whole.request);
  if (whole.state != State::kFailed) FUZZ_CHECK(chunked.consumed == whole.consumed);
  FUZZ_CHECK(whole.consumed <= input.size());
  if (whole.state == State::kGreeting || whole.state == State::kRequest) {
    FUZZ_CHECK(whole.consumed == input.size());
  }
  FUZZ_CHECK(whole.sent.size() <= tether::tunnel::kMaxSocks5HandshakeOutput);
  return 0;
}
