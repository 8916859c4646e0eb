// Tests of StreamSet: ids by role, acknowledgement accounting, releases, resume positions and the
// counts a session reads.
#include "session/stream_set.hpp"

#include <gtest/gtest.h>

#include "session/session.hpp"

namespace tether::session {
namespace {

std::vector<std::byte> bytes(std::size_t count) {
  return std::vector<std::byte>(count);
}

void write(StreamSet& streams, Stream& stream, std::size_t count) {
  stream.send.buffer.append(bytes(count));
  stream.send.written += count;
  streams.add_written(count);
}

TEST(StreamSet, HoldsTheControlStreamAndHandsOutIdsByRole) {
  SessionStats stats;
  StreamSet client(Role::kClient, stats);
  StreamSet server(Role::kServer, stats);
  EXPECT_NE(client.find(kControlStream), nullptr);
  EXPECT_EQ(client.open_count(), 0u);
  EXPECT_EQ(client.take_local_id(), 1u);
  EXPECT_EQ(client.take_local_id(), 3u);
  EXPECT_EQ(server.take_local_id(), 2u);
  EXPECT_TRUE(client.is_local(5));
  EXPECT_FALSE(client.is_local(4));
  EXPECT_FALSE(client.is_local(kControlStream));
  client.create(1, 0);
  client.create(2, 0);
  EXPECT_EQ(client.local_count(), 1u);
  EXPECT_EQ(client.peer_count(), 1u);
  EXPECT_EQ(client.ids(), (std::vector<StreamId>{1, 2}));
}

TEST(StreamSet, AcknowledgementsFreeBytesAndRefuseTheImpossible) {
  SessionStats stats;
  StreamSet streams(Role::kClient, stats);
  Stream& stream = streams.create(streams.take_local_id(), 0);
  write(streams, stream, 100);
  bool progressed = false;
  EXPECT_TRUE(streams.acknowledge(stream, 40, progressed));
  EXPECT_TRUE(progressed);
  EXPECT_EQ(streams.unacknowledged_bytes(), 60u);
  EXPECT_EQ(stats.bytes_acknowledged, 40u);
  progressed = false;
  EXPECT_TRUE(streams.acknowledge(stream, 30, progressed));  // old news: idempotent
  EXPECT_FALSE(progressed);
  EXPECT_FALSE(streams.acknowledge(stream, 101, progressed));  // no FIN written
  bool control_progressed = false;
  EXPECT_FALSE(streams.acknowledge(streams.control(), kClosedStreamAck, control_progressed));
}

TEST(StreamSet, FinishedStreamsAreReleasedOnce) {
  SessionStats stats;
  StreamSet streams(Role::kClient, stats);
  Stream& stream = streams.create(streams.take_local_id(), 0);
  write(streams, stream, 10);
  stream.send.fin_written = true;
  stream.receive.fin_delivered = true;
  bool progressed = false;
  EXPECT_TRUE(streams.acknowledge(stream, 11, progressed));
  std::vector<StreamId> released;
  streams.release_finished([&](StreamId id) {
    released.push_back(id);
    streams.drop(id);
  });
  EXPECT_EQ(released, (std::vector<StreamId>{1}));
  streams.release_finished([&](StreamId id) { released.push_back(id); });
  EXPECT_EQ(released.size(), 1u);
  EXPECT_EQ(streams.find(1), nullptr);
}

TEST(StreamSet, DroppedBytesCountAsAbandoned) {
  SessionStats stats;
  StreamSet streams(Role::kServer, stats);
  Stream& stream = streams.create(streams.take_local_id(), 0);
  write(streams, stream, 25);
  streams.drop(stream.id);
  EXPECT_EQ(stats.bytes_abandoned, 25u);
  EXPECT_EQ(streams.unacknowledged_bytes(), 0u);
  // A peer stream's id joins the ended set when dropped.
  streams.create(1, 0);
  streams.drop(1);
  EXPECT_TRUE(streams.closed_peer_streams().contains(1));
}

TEST(StreamSet, PeerPositionsAreCheckedThenApplied) {
  SessionStats stats;
  StreamSet streams(Role::kClient, stats);
  Stream& stream = streams.create(streams.take_local_id(), 0);
  write(streams, stream, 50);
  EXPECT_FALSE(streams.peer_positions_possible({{1, 51}}));
  EXPECT_TRUE(streams.peer_positions_possible({{1, 50}, {99, 7}}));  // unknown streams are ignored
  EXPECT_TRUE(streams.apply_peer_positions({{1, 20}}));
  EXPECT_EQ(streams.unacknowledged_bytes(), 30u);
  const auto positions = streams.receive_positions();
  ASSERT_EQ(positions.size(), 2u);  // the control stream and stream 1
  EXPECT_EQ(positions[1].stream_id, 1u);
}

TEST(StreamSet, RewindReplaysFromTheAcknowledgedOffset) {
  SessionStats stats;
  StreamSet streams(Role::kClient, stats);
  Stream& stream = streams.create(streams.take_local_id(), 0);
  write(streams, stream, 100);
  // Sent as the scheduler sends: the set is told the stream now has bytes outstanding.
  const bool was_outstanding = stream.send.outstanding();
  stream.send.next_to_send = 100;
  stream.send.highest_sent = 100;
  streams.note_outstanding(was_outstanding, stream.send.outstanding());
  EXPECT_TRUE(streams.any_outstanding());
  bool progressed = false;
  EXPECT_TRUE(streams.acknowledge(stream, 60, progressed));
  std::size_t seen = 0;
  streams.rewind_all([&](Stream&) { ++seen; });
  EXPECT_EQ(seen, 2u);
  EXPECT_EQ(stream.send.next_to_send, 60u);
  EXPECT_EQ(streams.planned_replay(), 40u);
  EXPECT_FALSE(streams.any_outstanding());
}

TEST(StreamSet, GracefulCloseKeepsOnlyUnreadStreams) {
  SessionStats stats;
  StreamSet streams(Role::kClient, stats);
  Stream& unread = streams.create(streams.take_local_id(), 0);
  unread.receive.buffer.append(bytes(5));
  streams.add_buffered(5);
  streams.create(streams.take_local_id(), 0);
  streams.close(true);
  EXPECT_EQ(streams.ids(), (std::vector<StreamId>{1}));
  EXPECT_EQ(streams.receive_buffered(), 5u);
  streams.close(false);
  EXPECT_EQ(streams.size(), 0u);
}

}  // namespace
}  // namespace tether::session
