// Tests of AckManager: delayed and eager acknowledgements, final acknowledgements of released
// streams, and the window credit an Ack carries.
#include "session/ack_manager.hpp"

#include <gtest/gtest.h>

#include "wire/codec.hpp"

namespace tether::session {
namespace {

const Time t0 = Time{} + seconds(100);

SessionConfig config() {
  SessionConfig result;
  result.ack_delay = milliseconds(10);
  result.ack_eager_bytes = 1000;
  result.stream_receive_window = 4096;
  result.max_receive_buffered_bytes = 1u << 20;
  result.max_streams = 4;
  return result;
}

std::vector<wire::AckEntry> entries_of(const std::vector<std::byte>& bytes) {
  auto decoded = wire::decode_frame(bytes, wire::DecodeLimits{});
  EXPECT_TRUE(decoded && decoded->has_value());
  if (!decoded || !decoded->has_value()) return {};
  const auto* ack = std::get_if<wire::Ack>(&(*decoded)->frame);
  EXPECT_NE(ack, nullptr);
  return ack == nullptr ? std::vector<wire::AckEntry>{} : ack->entries;
}

TEST(AckManager, ForgettingTheLastPendingStreamClearsTheDelay) {
  AckManager acks(config());
  Stream first;
  first.id = 1;
  acks.request(first, AckManager::Urgency::kImmediate, t0);
  EXPECT_TRUE(acks.forget(first));
  EXPECT_FALSE(acks.due(t0));
  // A later delayed request waits its own delay (not due at once from the forgotten one's state).
  Stream second;
  second.id = 2;
  acks.request(second, AckManager::Urgency::kDelayed, t0 + seconds(5));
  EXPECT_FALSE(acks.due_now());
  EXPECT_EQ(acks.deadline(), t0 + seconds(5) + milliseconds(10));
}

TEST(AckManager, DelayedRequestIsDueAfterTheDelay) {
  AckManager acks(config());
  Stream stream;
  stream.id = 1;
  acks.request(stream, AckManager::Urgency::kDelayed, t0);
  EXPECT_TRUE(stream.acknowledgement_pending);
  EXPECT_EQ(acks.deadline(), t0 + milliseconds(10));
  EXPECT_FALSE(acks.due(t0 + milliseconds(9)));
  EXPECT_TRUE(acks.due(t0 + milliseconds(10)));
  EXPECT_FALSE(acks.due_now());
  acks.on_deadline();
  EXPECT_TRUE(acks.due_now());
  EXPECT_FALSE(acks.deadline());  // no timer needed once due
}

TEST(AckManager, ImmediateRequestIsDueAtOnce) {
  AckManager acks(config());
  Stream stream;
  stream.id = 3;
  acks.request(stream, AckManager::Urgency::kImmediate, t0);
  EXPECT_TRUE(acks.due(t0));
  EXPECT_TRUE(acks.due_now());
}

TEST(AckManager, EagerAfterEnoughBytes) {
  AckManager acks(config());
  EXPECT_FALSE(acks.note_received(600));
  EXPECT_TRUE(acks.note_received(400));
}

TEST(AckManager, WriteAcknowledgesInIdOrderAndRaisesTheWindow) {
  AckManager acks(config());
  Stream five;
  five.id = 5;
  five.receive.received = 100;
  five.receive.consumed = 100;
  Stream one;
  one.id = 1;
  one.receive.received = 7;
  acks.request(five, AckManager::Urgency::kDelayed, t0);
  acks.request(one, AckManager::Urgency::kDelayed, t0);
  acks.request(one, AckManager::Urgency::kDelayed, t0);  // listed once
  EXPECT_EQ(acks.pending().size(), 2u);
  std::vector<std::byte> out;
  acks.write(out, 0);
  const auto entries = entries_of(out);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].stream_id, 1u);
  EXPECT_EQ(entries[0].received_offset, 7u);
  EXPECT_EQ(entries[1].stream_id, 5u);
  EXPECT_EQ(entries[1].window_limit, 100u + 4096u);
  EXPECT_FALSE(one.acknowledgement_pending);
  EXPECT_TRUE(acks.pending().empty());
  EXPECT_FALSE(acks.due(t0 + seconds(1)));
}

TEST(AckManager, WithholdsCreditFromAnUnreadStreamPastHalfTheBound) {
  AckManager acks(config());
  Stream stream;
  stream.id = 1;
  stream.receive.advertised_window_limit = 1000;
  stream.receive.buffer.append(std::vector<std::byte>(10));
  acks.request(stream, AckManager::Urgency::kImmediate, t0);
  std::vector<std::byte> out;
  acks.write(out, (1u << 20) / 2);
  const auto entries = entries_of(out);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].window_limit, 1000u);
}

TEST(AckManager, FinalAcknowledgementsAreAlwaysDueAndBounded) {
  AckManager acks(config());
  EXPECT_TRUE(acks.add_final(9, kClosedStreamAck));
  EXPECT_TRUE(acks.due_now());
  EXPECT_TRUE(acks.add_final(9, 5));  // one entry per stream
  for (StreamId id = 11; id < 11 + 2 * 23; id += 2) (void)acks.add_final(id, 1);
  EXPECT_FALSE(acks.add_final(1001, 1));  // 2 x max_streams + 16 = 24 entries at most
}

TEST(AckManager, ForgetUnlistsAStream) {
  AckManager acks(config());
  Stream stream;
  stream.id = 1;
  acks.request(stream, AckManager::Urgency::kDelayed, t0);
  EXPECT_TRUE(acks.forget(stream));
  EXPECT_FALSE(acks.forget(stream));
  EXPECT_TRUE(acks.pending().empty());
}

}  // namespace
}  // namespace tether::session
