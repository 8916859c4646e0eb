// Tests of SendScheduler: the control stream first, then priority order, round-robin within a
// priority, the peer's window, and the replay-buffer invariant.
#include "session/send_scheduler.hpp"

#include <gtest/gtest.h>

#include "session/session.hpp"
#include "wire/codec.hpp"

namespace tether::session {
namespace {

std::vector<wire::StreamData> frames_of(const std::vector<std::byte>& bytes) {
  std::vector<wire::StreamData> result;
  std::size_t offset = 0;
  while (offset < bytes.size()) {
    auto decoded = wire::decode_frame(std::span(bytes).subspan(offset), wire::DecodeLimits{});
    if (!decoded || !decoded->has_value()) break;
    offset += (*decoded)->consumed;
    if (const auto* data = std::get_if<wire::StreamData>(&(*decoded)->frame))
      result.push_back(*data);
  }
  return result;
}

void write(StreamSet& streams, Stream& stream, std::size_t count) {
  stream.send.buffer.append(std::vector<std::byte>(count, std::byte{1}));
  stream.send.written += count;
  streams.add_written(count);
  streams.mark_send_candidate(stream);
}

TEST(SendScheduler, UrgentPriorityFirstThenRoundRobin) {
  SessionStats stats;
  StreamSet streams(Role::kClient, stats);
  SendScheduler scheduler(100);
  Stream& bulk_a = streams.create(streams.take_local_id(), 5);
  Stream& bulk_b = streams.create(streams.take_local_id(), 5);
  Stream& urgent = streams.create(streams.take_local_id(), 0);
  write(streams, bulk_a, 300);
  write(streams, bulk_b, 300);
  write(streams, urgent, 150);
  EXPECT_TRUE(SendScheduler::has_frames(streams));
  std::vector<std::byte> out;
  std::size_t written = 0;
  ASSERT_EQ(scheduler.write(streams, out, 1u << 20, stats, written), SendScheduler::Outcome::kOk);
  EXPECT_EQ(written, out.size());
  const auto frames = frames_of(out);
  ASSERT_GE(frames.size(), 4u);
  EXPECT_EQ(frames[0].stream_id, urgent.id);
  EXPECT_EQ(frames[1].stream_id, urgent.id);
  EXPECT_EQ(frames[2].stream_id, bulk_a.id);
  EXPECT_EQ(frames[3].stream_id, bulk_b.id);
  EXPECT_EQ(frames[4].stream_id, bulk_a.id);
  EXPECT_EQ(stats.bytes_sent, 750u);
  EXPECT_FALSE(SendScheduler::has_frames(streams));
}

TEST(SendScheduler, ControlStreamGoesFirst) {
  SessionStats stats;
  StreamSet streams(Role::kClient, stats);
  SendScheduler scheduler(100);
  Stream& data = streams.create(streams.take_local_id(), 0);
  write(streams, data, 10);
  Stream& control = streams.control();
  control.send.buffer.append(std::vector<std::byte>(3));
  control.send.written += 3;
  std::vector<std::byte> out;
  std::size_t written = 0;
  (void)scheduler.write(streams, out, 1u << 20, stats, written);
  const auto frames = frames_of(out);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].stream_id, kControlStream);
  EXPECT_EQ(stats.bytes_sent, 10u);  // control bytes are not stream payload
}

TEST(SendScheduler, StaysWithinThePeersWindow) {
  SessionStats stats;
  StreamSet streams(Role::kClient, stats);
  SendScheduler scheduler(1u << 20);
  Stream& stream = streams.create(streams.take_local_id(), 0);
  stream.send.peer_window_limit = 64;
  write(streams, stream, 100);
  std::vector<std::byte> out;
  std::size_t written = 0;
  (void)scheduler.write(streams, out, 1u << 20, stats, written);
  EXPECT_EQ(stream.send.next_to_send, 64u);
  EXPECT_FALSE(SendScheduler::sendable(stream));
}

TEST(SendScheduler, ABrokenReplayBufferStopsWithAnInvariantFailure) {
  SessionStats stats;
  StreamSet streams(Role::kClient, stats);
  SendScheduler scheduler(100);
  Stream& stream = streams.create(streams.take_local_id(), 0);
  write(streams, stream, 10);
  stream.send.written = 20;  // the buffer no longer holds [acknowledged, written)
  std::vector<std::byte> out;
  std::size_t written = 0;
  EXPECT_EQ(scheduler.write(streams, out, 1u << 20, stats, written),
            SendScheduler::Outcome::kInvariantFailed);
  EXPECT_TRUE(out.empty());
}

}  // namespace
}  // namespace tether::session
