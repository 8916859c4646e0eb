// InboundBuffer reassembles frames from the byte chunks a transport delivers, without copying
// complete frames and without buffering more than one frame's worth of bytes.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "session/types.hpp"
#include "tether/expected.hpp"
#include "wire/byte_reader.hpp"
#include "wire/codec.hpp"

namespace tether::session {

// A StreamData frame, or a part of one handed over as soon as its bytes arrive (feed_streaming).
// `frame` carries the bytes of this part at frame.offset; its `open` flag (and priority) is set
// only on the first part and its `fin` flag only on the last. `frame_end` is the offset just after
// the whole frame's data, known from the frame's length before the data arrives. Parts of one frame
// come in order, with nothing else in between on the same buffer. A whole frame is one part (and
// may carry no byte); a frame in several parts has at least one byte in each.
struct StreamDataPart {
  wire::StreamData frame;
  std::uint64_t frame_end = 0;
  bool first = true;  // the first part of its frame
};

class InboundBuffer {
 public:
  // Decodes every complete frame of (held bytes + input), calling handle(const wire::Frame&) for
  // each; handle returns false to stop early, and the undecoded rest is then held (release() takes
  // it). Keeps an incomplete tail for the next call; its size is bounded by the frame limit in
  // `limits`. Returns the first decode error (held bytes are then discarded). Only the bytes of a
  // frame that straddles two calls are copied (once), and only that frame's.
  template <typename Handler>
  Expected<void, wire::DecodeError> feed(std::span<const std::byte> input,
                                         const wire::DecodeLimits& limits, Handler&& handle) {
    auto no_parts = [](const StreamDataPart&) { return false; };
    return feed_impl<false>(input, limits, handle, no_parts);
  }

  // Like feed, except that StreamData frames go to handle_part(const StreamDataPart&), and the data
  // of one that is not complete yet is handed over as it arrives instead of being held, so that
  // each received data byte is copied once, by the handler. Frames of the control stream are
  // always handed over whole. (A StreamData frame that was held across calls because its stream
  // fields had not arrived yet may still come whole to handle_frame.) Once a handler returned
  // false, the buffer must not be fed again (its held rest may start inside a frame).
  template <typename FrameHandler, typename PartHandler>
  Expected<void, wire::DecodeError> feed_streaming(std::span<const std::byte> input,
                                                   const wire::DecodeLimits& limits,
                                                   FrameHandler&& handle_frame,
                                                   PartHandler&& handle_part) {
    return feed_impl<true>(input, limits, handle_frame, handle_part);
  }

  // Bytes of an incomplete frame waiting for the rest (a frame being handed over in parts holds
  // none).
  [[nodiscard]] std::size_t held() const { return held_.size(); }
  [[nodiscard]] std::vector<std::byte> release() { return std::exchange(held_, {}); }

 private:
  // The StreamData frame being handed over in parts.
  struct PartialFrame {
    wire::StreamData header;  // stream_id, fin and priority of the frame; `offset` of the next part
    std::uint64_t frame_end = 0;
    std::size_t remaining = 0;  // data bytes of the frame still to come
    bool first = true;          // no part was handed over yet
  };

  template <bool kStreaming, typename FrameHandler, typename PartHandler>
  Expected<void, wire::DecodeError> feed_impl(std::span<const std::byte> input,
                                              const wire::DecodeLimits& limits,
                                              FrameHandler& handle_frame,
                                              PartHandler& handle_part) {
    std::size_t position = 0;  // bytes of `input` consumed so far
    if (!held_.empty()) {
      auto completed = complete_held<kStreaming>(input, limits, handle_frame, handle_part);
      if (!completed) return make_unexpected(completed.error());
      if (!completed->has_value()) return {};  // all input held, or the handler stopped
      position = **completed;
    }
    while (true) {
      if (partial_) {
        if (position == input.size()) return {};
        const std::size_t count = std::min(partial_->remaining, input.size() - position);
        if (!hand_over_part(input.subspan(position, count), handle_part)) {
          held_.assign(input.begin() + static_cast<std::ptrdiff_t>(position + count), input.end());
          return {};
        }
        position += count;
        continue;
      }
      if (position == input.size()) return {};
      const auto rest = input.subspan(position);
      if constexpr (kStreaming) {
        // StreamData frames, the bulk of the traffic, skip the Frame variant.
        auto prefix = wire::decode_stream_data_prefix(rest, limits);
        if (!prefix) return fail(prefix.error());
        if (prefix->has_value()) {
          const wire::StreamDataPrefix& start = **prefix;
          if (start.complete(rest.size())) {
            StreamDataPart part;
            part.frame = start.frame;
            part.frame.data = rest.subspan(start.prefix_size, start.data_size);
            part.frame_end = start.frame.offset + start.data_size;
            position += start.prefix_size + start.data_size;
            if (!handle_part(part)) {
              held_.assign(input.begin() + static_cast<std::ptrdiff_t>(position), input.end());
              return {};
            }
            continue;
          }
          if (start.frame.stream_id != kControlStream) {
            start_partial(start);
            position += start.prefix_size;
            continue;
          }
          held_.assign(rest.begin(), rest.end());
          return {};
        }
      }
      auto decoded = wire::decode_frame(rest, limits);
      if (!decoded) return fail(decoded.error());
      if (decoded->has_value()) {
        position += (*decoded)->consumed;
        if (!handle_frame((*decoded)->frame)) {
          held_.assign(input.begin() + static_cast<std::ptrdiff_t>(position), input.end());
          return {};
        }
        continue;
      }
      held_.assign(rest.begin(), rest.end());
      return {};
    }
  }

  // Completes the frame whose start is held, copying from `input` only the bytes that frame needs
  // (or, for a StreamData frame handed over in parts, only the rest of its header and stream
  // fields). Returns the position in `input` where the next frame starts, or std::nullopt when all
  // of `input` is now held or a handler stopped.
  template <bool kStreaming, typename FrameHandler, typename PartHandler>
  Expected<std::optional<std::size_t>, wire::DecodeError> complete_held(
      std::span<const std::byte> input, const wire::DecodeLimits& limits,
      FrameHandler& handle_frame, PartHandler& handle_part) {
    std::size_t appended = 0;  // bytes of `input` copied to the end of held_
    while (true) {
      auto decoded = wire::decode_frame(held_, limits);
      if (!decoded) return fail(decoded.error());
      if (decoded->has_value()) {
        const std::size_t consumed = (*decoded)->consumed;
        const std::size_t after = held_.size() - consumed;  // held bytes after this frame
        const bool more = handle_frame((*decoded)->frame);
        if (after >= appended) {
          // The frame was all held before this call (only after a handler stopped): carry on
          // with the held rest.
          held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(consumed));
          if (!more) {
            held_.insert(held_.end(), input.begin() + static_cast<std::ptrdiff_t>(appended),
                         input.end());
            return std::optional<std::size_t>{};
          }
          continue;
        }
        const std::size_t position = appended - after;  // the input bytes past the frame
        held_.clear();
        if (!more) {
          held_.assign(input.begin() + static_cast<std::ptrdiff_t>(position), input.end());
          return std::optional<std::size_t>{};
        }
        return std::optional<std::size_t>{position};
      }
      // Whether to copy up to the end of the frame as soon as its length is known. A StreamData
      // frame of another stream than the control stream is copied only up to the end of its
      // stream fields, one byte at a time, so that none of its data is copied here.
      bool whole = !kStreaming;
      if constexpr (kStreaming) {
        auto prefix = wire::decode_stream_data_prefix(held_, limits);
        if (!prefix) return fail(prefix.error());
        if (prefix->has_value()) {
          if ((*prefix)->frame.stream_id != kControlStream) {
            // Every held byte belongs to this incomplete frame: hand its data over (if any came
            // with the prefix), then the rest of the frame comes straight from `input`.
            assert(!(*prefix)->complete(held_.size()));
            start_partial(**prefix);
            const auto data = std::span<const std::byte>(held_).subspan((*prefix)->prefix_size);
            const bool more = data.empty() || hand_over_part(data, handle_part);
            held_.clear();
            if (!more) {
              held_.assign(input.begin() + static_cast<std::ptrdiff_t>(appended), input.end());
              return std::optional<std::size_t>{};
            }
            return std::optional<std::size_t>{appended};
          }
          whole = true;  // the control stream's frames come whole
        }
      }
      if (appended == input.size()) return std::optional<std::size_t>{};
      std::size_t target = held_.size() + 1;  // while the header or stream fields are incomplete
      wire::ByteReader header(held_);
      const auto type = header.read_u8();
      const auto length = header.read_varint();
      if (type && length &&
          (whole || *type != static_cast<std::uint8_t>(wire::FrameType::kStream))) {
        target = header.position() + static_cast<std::size_t>(*length);
      }
      const std::size_t count = std::min(target - held_.size(), input.size() - appended);
      const auto step = input.subspan(appended, count);
      held_.insert(held_.end(), step.begin(), step.end());
      appended += count;
    }
  }

  void start_partial(const wire::StreamDataPrefix& prefix) {
    PartialFrame partial;
    partial.header = prefix.frame;
    partial.frame_end = prefix.frame.offset + prefix.data_size;
    partial.remaining = prefix.data_size;
    partial_ = partial;
  }

  // Hands `data` (the next bytes of the partial frame, at most its remaining count, at least one)
  // to the handler; returns what the handler returned.
  template <typename PartHandler>
  bool hand_over_part(std::span<const std::byte> data, PartHandler& handle_part) {
    PartialFrame& partial = *partial_;
    StreamDataPart part;
    part.frame.stream_id = partial.header.stream_id;
    part.frame.offset = partial.header.offset;
    part.frame.open = partial.first && partial.header.open;
    part.frame.priority = partial.header.priority;
    part.frame.fin = partial.header.fin && data.size() == partial.remaining;
    part.frame.data = data;
    part.frame_end = partial.frame_end;
    part.first = partial.first;
    partial.header.offset += data.size();
    partial.remaining -= data.size();
    partial.first = false;
    if (partial.remaining == 0) partial_.reset();
    if (handle_part(part)) return true;
    partial_.reset();
    return false;
  }

  Unexpected<wire::DecodeError> fail(const wire::DecodeError& error) {
    held_.clear();
    partial_.reset();
    return make_unexpected(error);
  }

  std::vector<std::byte> held_;
  std::optional<PartialFrame> partial_;  // when set, held_ is empty
};

}  // namespace tether::session
