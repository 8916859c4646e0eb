// ControlChannel is the session's control stream (stream 0) as messages: it encodes outgoing
// control messages into the stream's send half and splits received control bytes into messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "session/stream.hpp"
#include "wire/codec.hpp"
#include "wire/frame.hpp"

namespace tether::session {

class ControlChannel {
 public:
  // Control messages are tiny; anything larger is a protocol error.
  static constexpr std::size_t kMaxMessage = 256;
  // Unacknowledged control-stream bytes we keep: thousands of stream refusals.
  static constexpr std::uint64_t kMaxBacklog = 256u << 10;

  // Appends `message` to the control stream. False once the peer left more than kMaxBacklog of
  // them unacknowledged (a peer that makes us queue refusals and never acknowledges them would
  // grow the buffer without end): the session then ends with lack-of-resources.
  [[nodiscard]] static bool queue(Stream& control, const wire::Frame& message) {
    std::vector<std::byte> encoded;
    wire::encode_frame(message, encoded);
    control.send.buffer.append(encoded);
    control.send.written += encoded.size();
    return control.send.unacknowledged_bytes() <= kMaxBacklog;
  }

  // Takes received control-stream bytes and calls `on_message(frame)` for every complete message,
  // while `keep_going()` holds. False when the bytes are not a valid message of at most
  // `max_message` payload bytes (protocol error); a partial message waits for its rest, so at most
  // one message's bytes are kept.
  template <typename OnMessage, typename KeepGoing>
  [[nodiscard]] bool deliver(std::span<const std::byte> bytes, OnMessage&& on_message,
                             KeepGoing&& keep_going, std::size_t max_message = kMaxMessage) {
    inbound_.insert(inbound_.end(), bytes.begin(), bytes.end());
    std::size_t offset = 0;
    wire::DecodeLimits limits;
    limits.max_payload = max_message;
    while (offset < inbound_.size() && keep_going()) {
      auto decoded = wire::decode_frame(std::span(inbound_).subspan(offset), limits);
      if (!decoded) return false;
      if (!decoded->has_value()) break;
      offset += (*decoded)->consumed;
      on_message((*decoded)->frame);
    }
    if (keep_going()) {
      inbound_.erase(inbound_.begin(), inbound_.begin() + static_cast<std::ptrdiff_t>(offset));
    }
    return true;
  }

  void clear() {
    inbound_.clear();
    inbound_.shrink_to_fit();
  }

 private:
  std::vector<std::byte> inbound_;  // received control bytes not yet a whole message
};

}  // namespace tether::session
