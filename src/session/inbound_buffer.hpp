// InboundBuffer reassembles frames from the byte chunks a transport delivers, without copying
// complete frames and without buffering more than one frame's worth of bytes.
#pragma once

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "tether/expected.hpp"
#include "wire/codec.hpp"

namespace tether::session {

class InboundBuffer {
 public:
  // Decodes every complete frame of (held bytes + input), calling handle(const wire::Frame&) for
  // each; handle returns false to stop early, and the undecoded rest is then held (release() takes
  // it). Keeps an incomplete tail for the next call; its size is bounded by the frame limit in
  // `limits`. Returns the first decode error (held bytes are then discarded).
  template <typename Handler>
  Expected<void, wire::DecodeError> feed(std::span<const std::byte> input,
                                         const wire::DecodeLimits& limits, Handler&& handle) {
    std::span<const std::byte> bytes = input;
    if (!held_.empty()) {
      held_.insert(held_.end(), input.begin(), input.end());
      bytes = held_;
    }
    std::size_t offset = 0;
    while (offset < bytes.size()) {
      auto decoded = wire::decode_frame(bytes.subspan(offset), limits);
      if (!decoded) {
        held_.clear();
        return make_unexpected(decoded.error());
      }
      if (!decoded->has_value()) break;
      offset += (*decoded)->consumed;
      if (!handle((*decoded)->frame)) break;
    }
    if (bytes.data() == held_.data()) {
      held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(offset));
    } else {
      held_.assign(bytes.begin() + static_cast<std::ptrdiff_t>(offset), bytes.end());
    }
    return {};
  }

  // Bytes of an incomplete frame waiting for the rest.
  [[nodiscard]] std::size_t held() const { return held_.size(); }
  [[nodiscard]] std::vector<std::byte> release() { return std::exchange(held_, {}); }

 private:
  std::vector<std::byte> held_;
};

}  // namespace tether::session
