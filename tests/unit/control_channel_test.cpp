// Tests of ControlChannel: messages encoded onto the control stream, split back out of arbitrary
// chunks, refused when malformed, and bounded when unacknowledged.
#include "session/control_channel.hpp"

#include <gtest/gtest.h>

namespace tether::session {
namespace {

TEST(ControlChannel, QueuedMessagesComeBackWholeFromAnyChunking) {
  Stream sender;
  ASSERT_TRUE(ControlChannel::queue(sender, wire::ResetStream{5, 2}));
  ASSERT_TRUE(ControlChannel::queue(sender, wire::Close{Reason::kShutdown}));
  const auto bytes = sender.send.buffer.view(0, sender.send.buffer.size());
  const std::vector<std::byte> encoded(bytes.begin(), bytes.end());
  EXPECT_EQ(sender.send.written, encoded.size());

  ControlChannel receiver;
  std::vector<StreamId> resets;
  int closes = 0;
  for (const std::byte byte : encoded) {
    ASSERT_TRUE(receiver.deliver(
        std::span(&byte, 1),
        [&](const wire::Frame& frame) {
          if (const auto* reset = std::get_if<wire::ResetStream>(&frame))
            resets.push_back(reset->stream_id);
          if (std::holds_alternative<wire::Close>(frame)) ++closes;
        },
        [] { return true; }));
  }
  EXPECT_EQ(resets, (std::vector<StreamId>{5}));
  EXPECT_EQ(closes, 1);
}

TEST(ControlChannel, AnOversizedMessageIsRefused) {
  std::vector<std::byte> big;
  wire::StreamData data;
  data.stream_id = 1;
  wire::encode_stream_header(data, ControlChannel::kMaxMessage + 1, big);
  big.resize(big.size() + ControlChannel::kMaxMessage + 1);
  ControlChannel receiver;
  EXPECT_FALSE(receiver.deliver(
      big, [](const wire::Frame&) {}, [] { return true; }));
}

TEST(ControlChannel, StopsWhenTheSessionEnds) {
  Stream sender;
  ASSERT_TRUE(ControlChannel::queue(sender, wire::ResetStream{5, 2}));
  ASSERT_TRUE(ControlChannel::queue(sender, wire::ResetStream{7, 2}));
  const auto bytes = sender.send.buffer.view(0, sender.send.buffer.size());
  ControlChannel receiver;
  bool open = true;
  int seen = 0;
  EXPECT_TRUE(receiver.deliver(
      std::vector<std::byte>(bytes.begin(), bytes.end()),
      [&](const wire::Frame&) {
        ++seen;
        open = false;
      },
      [&] { return open; }));
  EXPECT_EQ(seen, 1);
}

TEST(ControlChannel, UnacknowledgedBacklogIsBounded) {
  Stream sender;
  bool accepted = true;
  for (int i = 0; i < 100000 && accepted; ++i) {
    accepted = ControlChannel::queue(sender, wire::ResetStream{static_cast<StreamId>(i), 2});
  }
  EXPECT_FALSE(accepted);
  EXPECT_GT(sender.send.unacknowledged_bytes(), ControlChannel::kMaxBacklog);
}

}  // namespace
}  // namespace tether::session
