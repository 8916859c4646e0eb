// Session-level tests: a client Session and a ServerEndpoint connected in memory (Loopback) on a
// virtual clock. Covers the handshake, streams, flow control, priorities, heartbeats, liveness and
// acknowledgement-stall detection, resumption, and every way a session ends.
#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "loopback.hpp"
#include "session/key_schedule.hpp"

namespace tether::session {
namespace {

using std::chrono::microseconds;
using test::Bytes;
using test::events_of;
using test::first_time;
using test::frames_of;
using test::Loopback;
using test::random_bytes;
using test::read_all;
using test::SplitMix64;
using test::test_config;
using test::to_bytes;

const Time t0 = test::start_time();

// Collects what an application reads from each stream as soon as it becomes readable.
struct Reader {
  std::map<StreamId, Bytes> data;
  std::map<StreamId, bool> finished;
  void drain(Session& session, StreamId stream, Time now) {
    bool fin = false;
    const Bytes bytes = read_all(session, stream, now, &fin);
    auto& out = data[stream];
    out.insert(out.end(), bytes.begin(), bytes.end());
    if (fin) finished[stream] = true;
  }
};

// Attaches readers that drain every readable stream on both sides as events arrive.
void attach_readers(Loopback& loop, Reader& client_reader, Reader& server_reader) {
  loop.client_app = [&](const Event& event) {
    if (const auto* readable = std::get_if<events::StreamReadable>(&event)) {
      client_reader.drain(loop.client, readable->stream, loop.now);
    } else if (const auto* finished = std::get_if<events::StreamFinished>(&event)) {
      client_reader.drain(loop.client, finished->stream, loop.now);
    }
  };
  loop.server_app = [&](const SessionEvent& event) {
    Session* session = loop.server.find(event.session);
    if (session == nullptr) return;
    if (const auto* readable = std::get_if<events::StreamReadable>(&event.event)) {
      server_reader.drain(*session, readable->stream, loop.now);
    } else if (const auto* finished = std::get_if<events::StreamFinished>(&event.event)) {
      server_reader.drain(*session, finished->stream, loop.now);
    }
  };
}

std::size_t write_all(Session& session, StreamId stream, const Bytes& bytes, Time now) {
  auto written = session.write(stream, bytes, now);
  EXPECT_TRUE(written.has_value());
  EXPECT_EQ(written.value_or(0), bytes.size());
  return written.value_or(0);
}

constexpr std::uint64_t kAllCapabilities = 0b111;

// ---- Handshake
// ------------------------------------------------------------------------------------

TEST(Handshake, EstablishedOnBothSides) {
  Loopback loop;
  ASSERT_EQ(loop.client.phase(), Phase::kConnecting);
  ASSERT_EQ(events_of<events::PathWanted>(loop.client_events).size(), 0u);
  const SessionId id = loop.establish();
  EXPECT_NE(id, SessionId{});
  EXPECT_EQ(loop.path_requests_total, 1u);

  const auto client_established = events_of<events::Established>(loop.client_events);
  ASSERT_EQ(client_established.size(), 1u);
  EXPECT_EQ(client_established[0].session_id, id);
  ASSERT_EQ(loop.server_events.size(), 1u);
  EXPECT_EQ(loop.server_events[0].event.session, id);
  EXPECT_EQ(std::get<events::Established>(loop.server_events[0].event.event).session_id, id);

  Session* server = loop.server_session();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->role(), Role::kServer);
  EXPECT_EQ(server->phase(), Phase::kOpen);
  EXPECT_EQ(server->id(), id);
  EXPECT_EQ(loop.client.role(), Role::kClient);
  EXPECT_EQ(loop.client.capabilities(), kAllCapabilities);
  EXPECT_EQ(server->capabilities(), kAllCapabilities);
  EXPECT_EQ(loop.client.heartbeat().interval, seconds(1));
  EXPECT_EQ(server->heartbeat().missing_allowed, 3u);
  EXPECT_EQ(loop.client.data_path(), PathId{1});
  EXPECT_EQ(server->data_path(), PathId{1});
  EXPECT_EQ(loop.client.stats().paths_opened, 1u);
  EXPECT_EQ(loop.server.stats().connections_accepted, 1u);
  EXPECT_EQ(loop.server.stats().sessions_created, 1u);
  EXPECT_EQ(loop.server.session_count(), 1u);

  // The first frame of the connection is the Hello; the server answers with a Welcome carrying the
  // session id and the stateless-reset token made with its static key.
  const Bytes hello_bytes = loop.sent_on(1, true);
  const auto hellos = frames_of<wire::Hello>(hello_bytes);
  ASSERT_EQ(hellos.size(), 1u);
  EXPECT_EQ(hellos[0].version, wire::kProtocolVersion);
  EXPECT_EQ(hellos[0].heartbeat_interval_ms, 1000u);
  const Bytes welcome_bytes = loop.sent_on(1, false);
  const auto welcomes = frames_of<wire::Welcome>(welcome_bytes);
  ASSERT_EQ(welcomes.size(), 1u);
  EXPECT_EQ(welcomes[0].session_id, id);
  EXPECT_EQ(welcomes[0].linger_ms, 600000u);
  EXPECT_EQ(welcomes[0].reset_token, stateless_reset_token(loop.static_key, id));
}

TEST(Handshake, HeartbeatProposalIsClampedByServerBounds) {
  SessionConfig client_config = test_config();
  client_config.heartbeat_interval = milliseconds(50);
  client_config.missing_heartbeats_allowed = 30;
  SessionConfig server_config = test_config();
  server_config.min_heartbeat_interval = milliseconds(100);
  server_config.max_missing_heartbeats_allowed = 20;
  Loopback loop(client_config, server_config);
  loop.establish();
  Session* server = loop.server_session();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->heartbeat().interval, milliseconds(100));
  EXPECT_EQ(server->heartbeat().missing_allowed, 20u);
  EXPECT_EQ(loop.client.heartbeat().interval, milliseconds(100));
  EXPECT_EQ(loop.client.heartbeat().missing_allowed, 20u);
  const Bytes hello_bytes = loop.sent_on(1, true);
  const auto hello = frames_of<wire::Hello>(hello_bytes);
  ASSERT_EQ(hello.size(), 1u);
  EXPECT_EQ(hello[0].heartbeat_interval_ms, 50u);
  EXPECT_EQ(hello[0].missing_heartbeats_allowed, 30u);
}

TEST(Handshake, HeartbeatProposalIsClampedFromAbove) {
  SessionConfig client_config = test_config();
  client_config.heartbeat_interval = seconds(120);
  client_config.missing_heartbeats_allowed = 0;  // raised to the minimum of one
  SessionConfig server_config = test_config();
  server_config.max_heartbeat_interval = seconds(60);
  Loopback loop(client_config, server_config);
  loop.establish();
  EXPECT_EQ(loop.client.heartbeat().interval, seconds(60));
  EXPECT_EQ(loop.client.heartbeat().missing_allowed, 1u);
  // The client pings on the negotiated interval, not the one it proposed.
  loop.advance(seconds(60));
  EXPECT_EQ(loop.frames_sent<wire::Ping>(true), 1u);
}

TEST(Handshake, CapabilitiesAreIntersected) {
  SessionConfig client_config = test_config();
  client_config.capabilities = static_cast<std::uint64_t>(wire::Capability::kResume);
  Loopback loop(client_config);
  loop.establish();
  EXPECT_EQ(loop.client.capabilities(), static_cast<std::uint64_t>(wire::Capability::kResume));
  EXPECT_EQ(loop.server_session()->capabilities(),
            static_cast<std::uint64_t>(wire::Capability::kResume));
  // Without the fast-close capability, fast_close() falls back to an Abort.
  const Bytes encoded = loop.client.fast_close(Reason::kRevoked, loop.now);
  EXPECT_TRUE(encoded.empty());
  loop.pump();
  const auto closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, Reason::kRevoked);
  EXPECT_TRUE(closed[0].by_peer);
}

TEST(Handshake, StreamsCannotOpenBeforeEstablished) {
  Loopback loop;
  auto stream = loop.client.open_stream(0, loop.now);
  ASSERT_FALSE(stream.has_value());
  EXPECT_EQ(stream.error(), StreamError::kNotOpen);
}

TEST(Handshake, UnansweredHelloTimesOutAndANewConnectionIsTried) {
  SessionConfig client_config = test_config();
  client_config.handshake_timeout = seconds(2);
  Loopback loop(client_config);
  loop.auto_connect = false;
  loop.process_events();
  ASSERT_EQ(loop.path_requests, 1u);
  loop.connect(/*to_server=*/true, /*to_client=*/false);  // the Welcome never arrives
  loop.pump();
  EXPECT_EQ(loop.server.stats().sessions_created, 1u);
  loop.advance(seconds(1));
  EXPECT_EQ(loop.path_requests, 0u);
  loop.advance(seconds(2));
  // At 2 s the attempt was abandoned (its connection closed) and, after a backoff, another wanted.
  EXPECT_FALSE(loop.connections.at(1).open);
  EXPECT_EQ(test::first_time<events::Suspended>(loop.server_events), t0 + seconds(2));
  ASSERT_EQ(loop.path_requests, 1u);
  std::vector<Time> wanted;
  for (const auto& entry : loop.client_events) {
    if (std::holds_alternative<events::PathWanted>(entry.event)) wanted.push_back(entry.at);
  }
  ASSERT_EQ(wanted.size(), 2u);
  EXPECT_GE(wanted[1], t0 + seconds(2) + milliseconds(100));
  EXPECT_LT(wanted[1], t0 + seconds(2) + milliseconds(200));
  EXPECT_EQ(loop.client.phase(), Phase::kConnecting);

  loop.connect();
  loop.pump();
  EXPECT_EQ(loop.client.phase(), Phase::kOpen);
  EXPECT_EQ(loop.server.stats().sessions_created, 2u);
  Session* session = loop.server.find(loop.client.id());
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->data_path(), PathId{2});
}

// Moves bytes on `connection` one byte per receive() call until both sides are quiet.
void trickle(Loopback& loop, PathId connection) {
  for (int round = 0; round < 1000; ++round) {
    Bytes up;
    loop.client.take_outgoing(connection, up, 1u << 20, loop.now);
    for (std::byte byte : up) loop.server.receive(connection, std::span(&byte, 1), loop.now);
    Bytes down;
    loop.server.take_outgoing(connection, down, 1u << 20, loop.now);
    for (std::byte byte : down) loop.client.receive(connection, std::span(&byte, 1), loop.now);
    loop.process_events();
    if (up.empty() && down.empty()) return;
  }
  ADD_FAILURE() << "trickle did not settle";
}

TEST(Handshake, ByteAtATimeDeliveryHandshakesAndResumes) {
  Loopback loop;
  loop.auto_connect = false;
  loop.process_events();
  loop.connect();
  trickle(loop, 1);
  ASSERT_EQ(loop.client.phase(), Phase::kOpen);
  Session* server = loop.server_session();
  ASSERT_NE(server, nullptr);
  SplitMix64 random(17);
  const Bytes up = random_bytes(random, 40000);
  const Bytes down = random_bytes(random, 20000);
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  write_all(loop.client, stream, up, loop.now);
  trickle(loop, 1);
  write_all(*server, stream, down, loop.now);  // the stream exists on the server now
  trickle(loop, 1);
  EXPECT_EQ(read_all(*server, stream, loop.now), up);
  EXPECT_EQ(read_all(loop.client, stream, loop.now), down);

  // A Resume (followed by replayed data) that reaches the server one byte at a time.
  loop.close_connection(1);
  loop.process_events();
  const Bytes more = random_bytes(random, 3000);
  write_all(loop.client, stream, more, loop.now);
  ASSERT_EQ(loop.path_requests, 1u);
  const PathId second = loop.connect();
  trickle(loop, second);
  EXPECT_EQ(events_of<events::Resumed>(loop.client_events).size(), 1u);
  EXPECT_EQ(read_all(*server, stream, loop.now), more);
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 0u);
}

// ---- Streams
// --------------------------------------------------------------------------------------

TEST(Streams, OpenWriteReadFinishBothDirections) {
  Loopback loop;
  loop.establish();
  Session* server = loop.server_session();
  ASSERT_NE(server, nullptr);

  auto opened = loop.client.open_stream(3, loop.now);
  ASSERT_TRUE(opened.has_value());
  const StreamId stream = *opened;
  EXPECT_EQ(stream, 1u);

  SplitMix64 random(7);
  const Bytes upstream = random_bytes(random, 5000);
  const Bytes downstream = random_bytes(random, 7777);
  write_all(loop.client, stream, upstream, loop.now);
  loop.pump();
  const auto server_opened = events_of<events::StreamOpened>(loop.server_events);
  ASSERT_EQ(server_opened.size(), 1u);
  EXPECT_EQ(server_opened[0].stream, stream);
  ASSERT_EQ(events_of<events::StreamReadable>(loop.server_events).size(), 1u);
  EXPECT_EQ(read_all(*server, stream, loop.now), upstream);

  write_all(*server, stream, downstream, loop.now);
  loop.pump();
  ASSERT_EQ(events_of<events::StreamReadable>(loop.client_events).size(), 1u);
  EXPECT_EQ(events_of<events::StreamReadable>(loop.client_events)[0].stream, stream);
  EXPECT_EQ(read_all(loop.client, stream, loop.now), downstream);

  // Client half-closes: the server sees the end, the client can still read.
  ASSERT_TRUE(loop.client.finish(stream, loop.now).has_value());
  EXPECT_EQ(loop.client.write(stream, upstream, loop.now).error(), StreamError::kStreamFinished);
  EXPECT_EQ(loop.client.finish(stream, loop.now).error(), StreamError::kStreamFinished);
  loop.pump();
  const auto server_finished = events_of<events::StreamFinished>(loop.server_events);
  ASSERT_EQ(server_finished.size(), 1u);
  EXPECT_EQ(server_finished[0].stream, stream);
  std::array<std::byte, 16> buffer{};
  auto end = server->read(stream, buffer, loop.now);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->bytes, 0u);
  EXPECT_TRUE(end->finished);

  const Bytes last = to_bytes("last words");
  write_all(*server, stream, last, loop.now);
  ASSERT_TRUE(server->finish(stream, loop.now).has_value());
  loop.pump();
  bool finished = false;
  EXPECT_EQ(read_all(loop.client, stream, loop.now, &finished), last);
  EXPECT_TRUE(finished);
  loop.pump();
  // Both directions ended and were acknowledged: the stream is gone on both sides.
  EXPECT_TRUE(loop.client.stream_ids().empty());
  EXPECT_TRUE(server->stream_ids().empty());
  EXPECT_EQ(loop.client.write(stream, last, loop.now).error(), StreamError::kUnknownStream);

  const SessionStats client_stats = loop.client.stats();
  EXPECT_EQ(client_stats.bytes_written, upstream.size());
  EXPECT_EQ(client_stats.bytes_acknowledged, upstream.size());
  EXPECT_EQ(client_stats.bytes_sent, upstream.size());
  EXPECT_EQ(client_stats.bytes_received, downstream.size() + last.size());
  EXPECT_EQ(client_stats.unacknowledged_bytes, 0u);
  EXPECT_EQ(client_stats.open_streams, 0u);
  // Client-opened ids are odd and never reused.
  EXPECT_EQ(*loop.client.open_stream(0, loop.now), 3u);
  EXPECT_EQ(server->stats().bytes_received, upstream.size());
}

TEST(Streams, ServerOpenedStreamsHaveEvenIds) {
  Loopback loop;
  loop.establish();
  Session* server = loop.server_session();
  const StreamId stream = *server->open_stream(0, loop.now);
  EXPECT_EQ(stream, 2u);
  EXPECT_EQ(*server->open_stream(0, loop.now), 4u);
  const Bytes data = to_bytes("from the server");
  write_all(*server, stream, data, loop.now);
  loop.pump();
  // Opening is announced even before the first byte: stream 4 arrives as an empty open frame.
  const auto opened = events_of<events::StreamOpened>(loop.client_events);
  ASSERT_EQ(opened.size(), 2u);
  EXPECT_EQ(opened[0].stream, 2u);
  EXPECT_EQ(opened[1].stream, 4u);
  EXPECT_TRUE(read_all(loop.client, 4, loop.now).empty());
  EXPECT_EQ(read_all(loop.client, stream, loop.now), data);
}

TEST(Streams, PeekAndConsumeAreZeroCopyReads) {
  Loopback loop;
  loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  write_all(loop.client, stream, to_bytes("abcdefgh"), loop.now);
  loop.pump();
  Session* server = loop.server_session();
  auto view = server->peek(stream);
  EXPECT_EQ(Bytes(view.begin(), view.end()), to_bytes("abcdefgh"));
  server->consume(stream, 3, loop.now);
  view = server->peek(stream);
  EXPECT_EQ(Bytes(view.begin(), view.end()), to_bytes("defgh"));
  server->consume(stream, 100, loop.now);  // clamped to what is there
  EXPECT_TRUE(server->peek(stream).empty());
}

TEST(Streams, ResetReachesThePeer) {
  Loopback loop;
  loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  write_all(loop.client, stream, to_bytes("doomed"), loop.now);
  loop.pump();
  loop.client.reset_stream(stream, 42, loop.now);
  EXPECT_TRUE(loop.client.stream_ids().empty());
  loop.pump();
  const auto resets = events_of<events::StreamReset>(loop.server_events);
  ASSERT_EQ(resets.size(), 1u);
  EXPECT_EQ(resets[0].stream, stream);
  EXPECT_EQ(resets[0].error_code, 42u);
  EXPECT_TRUE(loop.server_session()->stream_ids().empty());
}

TEST(Streams, PeerStreamsBeyondTheLimitAreReset) {
  SessionConfig server_config = test_config();
  server_config.max_streams = 2;
  Loopback loop(test_config(), server_config);
  loop.establish();
  std::vector<StreamId> streams;
  for (int index = 0; index < 3; ++index) {
    streams.push_back(*loop.client.open_stream(0, loop.now));
    write_all(loop.client, streams.back(), to_bytes("x"), loop.now);
  }
  loop.pump();
  const auto opened = events_of<events::StreamOpened>(loop.server_events);
  ASSERT_EQ(opened.size(), 2u);
  EXPECT_EQ(opened[0].stream, streams[0]);
  EXPECT_EQ(opened[1].stream, streams[1]);
  const auto resets = events_of<events::StreamReset>(loop.client_events);
  ASSERT_EQ(resets.size(), 1u);
  EXPECT_EQ(resets[0].stream, streams[2]);
  EXPECT_EQ(resets[0].error_code, static_cast<std::uint64_t>(Reason::kLackOfResources));
  EXPECT_EQ(loop.client.stream_ids(), (std::vector<StreamId>{streams[0], streams[1]}));
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 0u);
}

TEST(Streams, LocalStreamLimit) {
  SessionConfig client_config = test_config();
  client_config.max_streams = 2;
  Loopback loop(client_config);
  loop.establish();
  ASSERT_TRUE(loop.client.open_stream(0, loop.now).has_value());
  ASSERT_TRUE(loop.client.open_stream(0, loop.now).has_value());
  auto third = loop.client.open_stream(0, loop.now);
  ASSERT_FALSE(third.has_value());
  EXPECT_EQ(third.error(), StreamError::kTooManyStreams);
}

TEST(Streams, StreamReleasedByTheClientIsSettledWhenTheServerReplaysIt) {
  // The client finished and released a stream; its last acknowledgement was lost with the path.
  Loopback loop;
  loop.auto_connect = false;
  Reader client_reader;
  Reader server_reader;
  attach_readers(loop, client_reader, server_reader);
  loop.establish();
  Session* server = loop.server_session();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  write_all(loop.client, stream, to_bytes("request"), loop.now);
  ASSERT_TRUE(loop.client.finish(stream, loop.now).has_value());
  loop.pump();
  EXPECT_EQ(server_reader.data[stream], to_bytes("request"));
  EXPECT_TRUE(server_reader.finished[stream]);

  loop.connections.at(1).to_server = false;
  write_all(*server, stream, to_bytes("response"), loop.now);
  ASSERT_TRUE(server->finish(stream, loop.now).has_value());
  loop.pump();
  EXPECT_EQ(client_reader.data[stream], to_bytes("response"));
  EXPECT_TRUE(client_reader.finished[stream]);
  EXPECT_TRUE(loop.client.stream_ids().empty());                   // released
  EXPECT_EQ(server->stream_ids(), std::vector<StreamId>{stream});  // waiting for the ack
  EXPECT_EQ(server->stats().unacknowledged_bytes, 8u);

  loop.close_connection(1);
  loop.pump();
  loop.connect();
  loop.pump();
  ASSERT_EQ(events_of<events::Resumed>(loop.client_events).size(), 1u);
  // The server's replay hit a released stream: settled, nothing delivered twice or reopened.
  EXPECT_TRUE(server->stream_ids().empty());
  EXPECT_EQ(server->stats().unacknowledged_bytes, 0u);
  EXPECT_EQ(client_reader.data[stream], to_bytes("response"));
  EXPECT_TRUE(events_of<events::StreamOpened>(loop.client_events).empty());
  EXPECT_EQ(events_of<events::StreamReadable>(loop.client_events).size(), 1u);
  EXPECT_EQ(loop.client.phase(), Phase::kOpen);
}

// ---- Flow control
// ---------------------------------------------------------------------------------

TEST(FlowControl, StreamStopsAtTheWindowUntilTheReaderReads) {
  SessionConfig server_config = test_config();
  server_config.stream_receive_window = 64u << 10;
  Loopback loop(test_config(), server_config);
  loop.establish();
  Session* server = loop.server_session();
  SplitMix64 random(11);
  const Bytes data = random_bytes(random, 1u << 20);
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  write_all(loop.client, stream, data, loop.now);
  loop.pump();
  // Both sides assume a 256 KiB initial window; the server's smaller window does not shrink it.
  constexpr std::uint64_t kInitialWindow = 256u << 10;
  EXPECT_EQ(loop.client.stats().bytes_sent, kInitialWindow);
  EXPECT_EQ(server->stats().bytes_received, kInitialWindow);
  EXPECT_EQ(loop.client.has_outgoing(1), false);

  // Reading less than a quarter window below the limit grants nothing.
  Bytes first(200u << 10);
  ASSERT_EQ(server->read(stream, first, loop.now)->bytes, first.size());
  loop.pump();
  EXPECT_EQ(server->stats().bytes_received, kInitialWindow);

  // 216 KiB read: consumed + window (280 KiB) passes the limit by a quarter window: credit goes
  // out.
  Bytes second(16u << 10);
  ASSERT_EQ(server->read(stream, second, loop.now)->bytes, second.size());
  loop.pump();
  constexpr std::uint64_t kNewLimit = (216u << 10) + (64u << 10);
  EXPECT_EQ(server->stats().bytes_received, kNewLimit);
  EXPECT_EQ(loop.client.stats().bytes_sent, kNewLimit);
  // The credit was carried by an Ack entry with that window limit.
  std::uint64_t last_window = 0;
  for (const auto& chunk : loop.chunks) {
    if (chunk.to_server) continue;
    for (const auto& ack : frames_of<wire::Ack>(chunk.bytes)) {
      for (const auto& entry : ack.entries) {
        if (entry.stream_id == stream) last_window = entry.window_limit;
      }
    }
  }
  EXPECT_EQ(last_window, kNewLimit);

  // Reading everything lets the whole megabyte through, intact.
  Bytes received = first;
  received.insert(received.end(), second.begin(), second.end());
  for (int round = 0; round < 100 && received.size() < data.size(); ++round) {
    const Bytes more = read_all(*server, stream, loop.now);
    received.insert(received.end(), more.begin(), more.end());
    loop.pump();
  }
  EXPECT_EQ(received, data);
  EXPECT_EQ(server->stats().duplicate_bytes_received, 0u);
}

TEST(FlowControl, UnacknowledgedBoundRefusesWritesUntilAcknowledged) {
  SessionConfig client_config = test_config();
  client_config.max_unacknowledged_bytes = 1000;
  Loopback loop(client_config);
  loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  SplitMix64 random(5);
  const Bytes data = random_bytes(random, 1500);
  auto written = loop.client.write(stream, data, loop.now);
  ASSERT_TRUE(written.has_value());
  EXPECT_EQ(*written, 1000u);  // a partial write up to the bound
  auto blocked = loop.client.write(stream, std::span(data).subspan(1000), loop.now);
  ASSERT_FALSE(blocked.has_value());
  EXPECT_EQ(blocked.error(), StreamError::kWouldBlock);
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 1000u);
  EXPECT_TRUE(events_of<events::Writable>(loop.client_events).empty());

  loop.pump();
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 0u);
  EXPECT_EQ(loop.client.stats().bytes_acknowledged, 1000u);
  EXPECT_EQ(events_of<events::Writable>(loop.client_events).size(), 1u);
  auto rest = loop.client.write(stream, std::span(data).subspan(1000), loop.now);
  ASSERT_TRUE(rest.has_value());
  EXPECT_EQ(*rest, 500u);
  loop.pump();
  EXPECT_EQ(read_all(*loop.server_session(), stream, loop.now), data);
  // Writable is reported once per refusal, not on every acknowledgement.
  EXPECT_EQ(events_of<events::Writable>(loop.client_events).size(), 1u);
}

TEST(FlowControl, ClientIsWritableAgainWhenAResumeAcknowledgesItsBlockedBytes) {
  SessionConfig client_config = test_config();
  client_config.max_unacknowledged_bytes = 1000;
  Loopback loop(client_config);
  loop.auto_connect = false;
  loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  loop.connections.at(1).to_client = false;  // the server gets the bytes, its acks are lost
  write_all(loop.client, stream, Bytes(1000, std::byte{1}), loop.now);
  EXPECT_EQ(loop.client.write(stream, Bytes(1, std::byte{2}), loop.now).error(),
            StreamError::kWouldBlock);
  loop.pump();
  loop.close_connection(1);
  loop.pump();
  loop.connect();
  loop.pump();
  ASSERT_EQ(events_of<events::Resumed>(loop.client_events).size(), 1u);
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 0u);
  EXPECT_EQ(events_of<events::Writable>(loop.client_events).size(), 1u);
}

TEST(FlowControl, ServerIsWritableAgainWhenAResumeAcknowledgesItsBlockedBytes) {
  SessionConfig server_config = test_config();
  server_config.max_unacknowledged_bytes = 1000;
  Loopback loop(test_config(), server_config);
  loop.auto_connect = false;
  const SessionId id = loop.establish();
  Session* server = loop.server_session();
  const StreamId stream = *server->open_stream(0, loop.now);
  loop.connections.at(1).to_server = false;  // the client gets the bytes, its acks are lost
  write_all(*server, stream, Bytes(1000, std::byte{1}), loop.now);
  EXPECT_EQ(server->write(stream, Bytes(1, std::byte{2}), loop.now).error(),
            StreamError::kWouldBlock);
  loop.pump();
  EXPECT_EQ(read_all(loop.client, stream, loop.now).size(), 1000u);
  loop.close_connection(1);
  loop.pump();
  loop.connect();
  loop.pump();
  ASSERT_EQ(events_of<events::Resumed>(loop.server_events).size(), 1u);
  // The Resume told the server that the client has all 1000 bytes: room for writes again.
  EXPECT_EQ(server->stats().unacknowledged_bytes, 0u);
  ASSERT_TRUE(server->write(stream, Bytes(1, std::byte{3}), loop.now).has_value());
  std::size_t writable = 0;
  for (const auto& entry : loop.server_events) {
    if (entry.event.session == id && std::holds_alternative<events::Writable>(entry.event.event)) {
      ++writable;
    }
  }
  // accept_resume() acknowledges bytes from the Resume positions: that must wake a blocked writer.
  ASSERT_GT(writable, 0);
  EXPECT_EQ(writable, 1u);
}

TEST(FlowControl, EmptyWriteIsNotRefused) {
  Loopback loop;
  loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  auto written = loop.client.write(stream, std::span<const std::byte>{}, loop.now);
  ASSERT_TRUE(written.has_value());
  EXPECT_EQ(*written, 0u);
}

// ---- Priorities
// -----------------------------------------------------------------------------------

TEST(Priority, InteractiveBytesOvertakeQueuedBulkData) {
  Loopback loop;
  loop.establish();
  SplitMix64 random(3);
  const Bytes bulk_data = random_bytes(random, 200u << 10);
  const Bytes interactive_data = random_bytes(random, 100);
  const StreamId bulk = *loop.client.open_stream(7, loop.now);
  write_all(loop.client, bulk, bulk_data, loop.now);
  Bytes first;
  loop.client.take_outgoing(1, first, 4096, loop.now);
  loop.server.receive(1, first, loop.now);

  const StreamId interactive = *loop.client.open_stream(0, loop.now);
  write_all(loop.client, interactive, interactive_data, loop.now);
  Bytes second;
  loop.client.take_outgoing(1, second, 1000, loop.now);
  const auto frames = frames_of<wire::StreamData>(second);
  ASSERT_GE(frames.size(), 1u);
  EXPECT_EQ(frames[0].stream_id, interactive);
  EXPECT_TRUE(frames[0].open);
  EXPECT_EQ(frames[0].priority, 0u);
  EXPECT_EQ(Bytes(frames[0].data.begin(), frames[0].data.end()), interactive_data);
  for (std::size_t index = 1; index < frames.size(); ++index)
    EXPECT_EQ(frames[index].stream_id, bulk);
  loop.server.receive(1, second, loop.now);
  loop.pump();
  Session* server = loop.server_session();
  EXPECT_EQ(read_all(*server, interactive, loop.now), interactive_data);
  EXPECT_EQ(read_all(*server, bulk, loop.now), bulk_data);
}

TEST(Priority, LowerIdInteractiveStreamAlsoGoesFirst) {
  Loopback loop;
  loop.establish();
  SplitMix64 random(4);
  const StreamId interactive = *loop.client.open_stream(0, loop.now);
  const StreamId bulk = *loop.client.open_stream(7, loop.now);
  write_all(loop.client, bulk, random_bytes(random, 100u << 10), loop.now);
  Bytes first;
  loop.client.take_outgoing(1, first, 4096, loop.now);
  const Bytes interactive_data = to_bytes("keystroke");
  write_all(loop.client, interactive, interactive_data, loop.now);
  Bytes second;
  loop.client.take_outgoing(1, second, 500, loop.now);
  const auto frames = frames_of<wire::StreamData>(second);
  ASSERT_GE(frames.size(), 1u);
  EXPECT_EQ(frames[0].stream_id, interactive);
  EXPECT_EQ(Bytes(frames[0].data.begin(), frames[0].data.end()), interactive_data);
}

TEST(Priority, EqualPrioritiesShareRoundRobin) {
  Loopback loop;
  loop.establish();
  SplitMix64 random(6);
  const StreamId a = *loop.client.open_stream(3, loop.now);
  const StreamId b = *loop.client.open_stream(3, loop.now);
  write_all(loop.client, a, random_bytes(random, 64u << 10), loop.now);
  write_all(loop.client, b, random_bytes(random, 64u << 10), loop.now);
  Bytes out;
  loop.client.take_outgoing(1, out, 40u << 10, loop.now);
  std::vector<StreamId> order;
  for (const auto& frame : frames_of<wire::StreamData>(out)) order.push_back(frame.stream_id);
  EXPECT_EQ(order, (std::vector<StreamId>{a, b, a}));
}

// ---- Delayed acknowledgements
// -------------------------------------------------------------------------------

// Acknowledgement frames the server sent to the client at `at` or later.
std::size_t acks_to_client_since(const Loopback& loop, Time at) {
  std::size_t count = 0;
  for (const auto& chunk : loop.chunks) {
    if (!chunk.to_server && chunk.at >= at) count += frames_of<wire::Ack>(chunk.bytes).size();
  }
  return count;
}

// An open stream from the client whose opening exchange is over: later bytes on it are plain data.
StreamId settled_stream(Loopback& loop) {
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  write_all(loop.client, stream, to_bytes("hello"), loop.now);
  loop.pump();
  EXPECT_EQ(read_all(*loop.server_session(), stream, loop.now), to_bytes("hello"));
  loop.advance(milliseconds(20));
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 0u);
  return stream;
}

TEST(Acknowledgements, AloneTheyWaitForTheAckDelay) {
  Loopback loop;
  loop.establish();
  const StreamId stream = settled_stream(loop);
  const Time sent = loop.now;
  write_all(loop.client, stream, to_bytes("no answer to this"), loop.now);
  loop.pump();
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 17u);
  EXPECT_EQ(acks_to_client_since(loop, sent), 0u);
  EXPECT_EQ(loop.server_session()->next_deadline(), sent + test_config().ack_delay);

  loop.advance(test_config().ack_delay - milliseconds(1));
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 17u);
  loop.advance(milliseconds(1));
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 0u);
  EXPECT_EQ(acks_to_client_since(loop, sent), 1u);
}

TEST(Acknowledgements, RideAlongWithTheAnswer) {
  Loopback loop;
  loop.establish();
  const StreamId stream = settled_stream(loop);
  const Time sent = loop.now;
  write_all(loop.client, stream, to_bytes("PING"), loop.now);
  loop.pump();
  EXPECT_EQ(read_all(*loop.server_session(), stream, loop.now), to_bytes("PING"));
  write_all(*loop.server_session(), stream, to_bytes("PONG"), loop.now);
  loop.pump();
  // No time passed: the acknowledgement left in the same chunk as the answer.
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 0u);
  std::size_t chunks_to_client = 0;
  for (const auto& chunk : loop.chunks) {
    if (chunk.to_server || chunk.at < sent || chunk.bytes.empty()) continue;
    ++chunks_to_client;
    EXPECT_EQ(frames_of<wire::Ack>(chunk.bytes).size(), 1u);
    EXPECT_EQ(frames_of<wire::StreamData>(chunk.bytes).size(), 1u);
  }
  EXPECT_EQ(chunks_to_client, 1u);
}

TEST(Acknowledgements, EagerAfterEnoughBytes) {
  SessionConfig server_config = test_config();
  server_config.ack_eager_bytes = 1000;
  Loopback loop(test_config(), server_config);
  loop.establish();
  const StreamId stream = settled_stream(loop);
  SplitMix64 random(9);
  write_all(loop.client, stream, random_bytes(random, 999), loop.now);
  loop.pump();
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 999u);
  write_all(loop.client, stream, random_bytes(random, 1), loop.now);
  loop.pump();
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 0u);
}

TEST(Acknowledgements, FinIsAcknowledgedAtOnce) {
  Loopback loop;
  loop.establish();
  const StreamId stream = settled_stream(loop);
  write_all(loop.client, stream, to_bytes("last words"), loop.now);
  ASSERT_TRUE(loop.client.finish(stream, loop.now).has_value());
  loop.pump();
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 0u);
}

TEST(Acknowledgements, WindowCreditIsSentAtOnce) {
  SessionConfig server_config = test_config();
  server_config.ack_eager_bytes = 4u << 20;  // only the window decides here
  Loopback loop(test_config(), server_config);
  loop.establish();
  const StreamId stream = settled_stream(loop);
  SplitMix64 random(10);
  const Bytes data = random_bytes(random, server_config.stream_receive_window / 4 + 100);
  write_all(loop.client, stream, data, loop.now);
  loop.pump();
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, data.size());
  // Reading more than a quarter of the window makes the server advertise credit without waiting.
  const Time read_at = loop.now;
  EXPECT_EQ(read_all(*loop.server_session(), stream, loop.now), data);
  loop.pump();
  EXPECT_EQ(acks_to_client_since(loop, read_at), 1u);
  EXPECT_EQ(loop.now, read_at);
}

// ---- Heartbeats
// -----------------------------------------------------------------------------------

TEST(Heartbeat, PingsFlowEveryIntervalWithoutTraffic) {
  Loopback loop;
  loop.establish();
  loop.advance(seconds(10));
  // One round trip per interval: the client pings, the server answers and sends no Ping of its
  // own (heartbeat_policy::own_ping_period).
  EXPECT_EQ(loop.frames_sent<wire::Ping>(true), 10u);
  EXPECT_EQ(loop.frames_sent<wire::Ping>(false), 0u);
  EXPECT_EQ(loop.frames_sent<wire::Pong>(true), 0u);
  EXPECT_EQ(loop.frames_sent<wire::Pong>(false), 10u);
  std::vector<std::uint64_t> sequences;
  for (const auto& chunk : loop.chunks) {
    if (!chunk.to_server) continue;
    for (const auto& ping : frames_of<wire::Ping>(chunk.bytes)) {
      sequences.push_back(ping.sequence);
      EXPECT_EQ(chunk.at - t0, seconds(ping.sequence));  // one per second, on the second
    }
  }
  EXPECT_EQ(sequences, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  ASSERT_TRUE(loop.client.stats().smoothed_rtt.has_value());
  EXPECT_EQ(*loop.client.stats().smoothed_rtt, Duration::zero());  // the loopback has no latency
  EXPECT_FALSE(loop.server_session()->stats().smoothed_rtt.has_value());  // it timed no Ping
  EXPECT_TRUE(events_of<events::Suspended>(loop.client_events).empty());
  EXPECT_TRUE(events_of<events::Suspended>(loop.server_events).empty());
}

TEST(Heartbeat, RoundTripTimeIsMeasuredFromPingToPong) {
  Loopback loop;
  loop.establish();
  EXPECT_FALSE(loop.client.stats().smoothed_rtt.has_value());
  const auto deadline = loop.client.next_deadline();
  ASSERT_TRUE(deadline.has_value());
  EXPECT_EQ(*deadline, t0 + seconds(1));

  // The Ping spends 30 ms in flight.
  loop.client.on_timeout(*deadline);
  Bytes ping;
  loop.client.take_outgoing(1, ping, 1u << 20, *deadline);
  ASSERT_EQ(frames_of<wire::Ping>(ping).size(), 1u);
  const Time arrival = *deadline + milliseconds(30);
  loop.server.receive(1, ping, arrival);
  Bytes pong;
  loop.server.take_outgoing(1, pong, 1u << 20, arrival);
  ASSERT_EQ(frames_of<wire::Pong>(pong).size(), 1u);
  loop.client.receive(1, pong, arrival);
  SessionStats stats = loop.client.stats();
  ASSERT_TRUE(stats.smoothed_rtt.has_value());
  EXPECT_EQ(*stats.smoothed_rtt, milliseconds(30));
  EXPECT_EQ(stats.rtt_variation, milliseconds(15));

  // A second round trip of 50 ms: SRTT = 7/8 * 30 + 1/8 * 50, RTTVAR = 3/4 * 15 + 1/4 * 20.
  const Time second = *deadline + seconds(1);
  loop.client.on_timeout(second);
  Bytes ping2;
  loop.client.take_outgoing(1, ping2, 1u << 20, second);
  ASSERT_EQ(frames_of<wire::Ping>(ping2).size(), 1u);
  loop.server.receive(1, ping2, second + milliseconds(50));
  Bytes pong2;
  loop.server.take_outgoing(1, pong2, 1u << 20, second + milliseconds(50));
  loop.client.receive(1, pong2, second + milliseconds(50));
  stats = loop.client.stats();
  EXPECT_EQ(*stats.smoothed_rtt, microseconds(32500));
  EXPECT_EQ(stats.rtt_variation, microseconds(16250));
}

// ---- Liveness and resumption
// ---------------------------------------------------------------------

TEST(Liveness, SilenceForTheBudgetSuspendsAndWantsAPath) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  loop.advance(seconds(5));
  const std::uint64_t missed_before = loop.client.stats().heartbeats_missed;
  loop.connections.at(1).to_client = false;  // nothing reaches the client any more
  loop.advance(seconds(3));
  // Three silent intervals are two missed heartbeats (each counts once the slack has passed too:
  // interval + min(RTO, interval)), not yet a suspension.
  EXPECT_EQ(loop.client.stats().heartbeats_missed - missed_before, 2u);
  EXPECT_FALSE(loop.client.suspended());
  EXPECT_EQ(loop.path_requests_total, 1u);

  loop.advance(seconds(1));
  // Budget: 3 intervals + min(RTO, interval); the loopback measured RTT 0, so RTO is 200 ms. The
  // third miss falls at the budget too.
  EXPECT_EQ(loop.client.stats().heartbeats_missed - missed_before, 3u);
  const auto suspended = events_of<events::Suspended>(loop.client_events);
  ASSERT_EQ(suspended.size(), 1u);
  EXPECT_EQ(suspended[0].cause, SuspendCause::kHeartbeatTimeout);
  EXPECT_EQ(first_time<events::Suspended>(loop.client_events), t0 + milliseconds(8200));
  EXPECT_EQ(first_time<events::PathWanted>(loop.client_events), t0);
  EXPECT_EQ(loop.path_requests_total, 2u);
  EXPECT_EQ(loop.client_events.back().at, t0 + milliseconds(8200));
  EXPECT_TRUE(std::holds_alternative<events::PathWanted>(loop.client_events.back().event));
  EXPECT_TRUE(loop.client.suspended());
  EXPECT_EQ(loop.client.phase(), Phase::kOpen);
  // The server still hears the client: it is not suspended.
  EXPECT_TRUE(events_of<events::Suspended>(loop.server_events).empty());
}

TEST(Liveness, ResumeAfterOutageDeliversEverythingExactlyOnceInOrder) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  Session* server = loop.server_session();
  SplitMix64 random(21);
  const Bytes a = random_bytes(random, 1000);
  const Bytes b = random_bytes(random, 2000);
  const Bytes c = random_bytes(random, 1500);
  const Bytes x = random_bytes(random, 700);
  const Bytes y = random_bytes(random, 900);
  const StreamId stream = *loop.client.open_stream(1, loop.now);
  write_all(loop.client, stream, a, loop.now);
  loop.pump();
  Bytes at_server = read_all(*server, stream, loop.now);
  write_all(*server, stream, x, loop.now);
  loop.pump();
  Bytes at_client = read_all(loop.client, stream, loop.now);

  loop.advance(seconds(5));
  loop.blackhole(1);
  loop.advance(milliseconds(500));
  write_all(loop.client, stream, b, loop.now);  // sent into the void
  write_all(*server, stream, y, loop.now);
  loop.pump();
  loop.advance(seconds(1));
  write_all(loop.client, stream, c, loop.now);
  loop.pump();
  loop.advance_to(t0 + seconds(9));

  const auto client_suspended = events_of<events::Suspended>(loop.client_events);
  ASSERT_EQ(client_suspended.size(), 1u);
  EXPECT_EQ(client_suspended[0].cause, SuspendCause::kHeartbeatTimeout);
  EXPECT_EQ(first_time<events::Suspended>(loop.client_events), t0 + milliseconds(8200));
  const auto server_suspended = events_of<events::Suspended>(loop.server_events);
  ASSERT_EQ(server_suspended.size(), 1u);
  EXPECT_EQ(server_suspended[0].cause, SuspendCause::kHeartbeatTimeout);
  // The server timed no Ping (the client's stand for its own), so its slack is the initial RTO of
  // 1 s, not the measured one: suspect at 5 s + 3 x 1 s + 1 s.
  EXPECT_EQ(first_time<events::Suspended>(loop.server_events), t0 + milliseconds(9000));
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, b.size() + c.size());
  EXPECT_EQ(loop.path_requests, 1u);

  // The network is back: a second connection resumes.
  loop.advance_to(t0 + seconds(10));
  const PathId second = loop.connect();
  loop.pump();
  const Bytes resume_bytes = loop.sent_on(second, true);
  ASSERT_FALSE(resume_bytes.empty());
  const auto first_frame = test::decode_all(resume_bytes);
  ASSERT_FALSE(first_frame.empty());
  EXPECT_TRUE(std::holds_alternative<wire::Resume>(first_frame[0]));
  const Bytes accept_bytes = loop.sent_on(second, false);
  ASSERT_FALSE(accept_bytes.empty());
  EXPECT_TRUE(std::holds_alternative<wire::ResumeAccept>(test::decode_all(accept_bytes)[0]));

  const auto client_resumed = events_of<events::Resumed>(loop.client_events);
  ASSERT_EQ(client_resumed.size(), 1u);
  EXPECT_EQ(client_resumed[0].downtime, milliseconds(1800));
  EXPECT_EQ(client_resumed[0].bytes_replayed, b.size() + c.size());
  const auto server_resumed = events_of<events::Resumed>(loop.server_events);
  ASSERT_EQ(server_resumed.size(), 1u);
  EXPECT_EQ(server_resumed[0].downtime, milliseconds(1000));
  EXPECT_EQ(server_resumed[0].bytes_replayed, y.size());
  EXPECT_FALSE(loop.client.suspended());
  EXPECT_FALSE(server->suspended());
  EXPECT_EQ(loop.client.data_path(), second);
  EXPECT_EQ(server->data_path(), second);
  EXPECT_FALSE(loop.connections.at(1).open);  // the dead path was retired and closed
  EXPECT_EQ(loop.client.path_count(), 1u);

  const Bytes more_server = read_all(*server, stream, loop.now);
  at_server.insert(at_server.end(), more_server.begin(), more_server.end());
  const Bytes more_client = read_all(loop.client, stream, loop.now);
  at_client.insert(at_client.end(), more_client.begin(), more_client.end());
  EXPECT_EQ(at_server, test::concat(test::concat(a, b), c));
  EXPECT_EQ(at_client, test::concat(x, y));
  EXPECT_EQ(server->stats().bytes_received, a.size() + b.size() + c.size());
  EXPECT_EQ(loop.client.stats().bytes_received, x.size() + y.size());
  EXPECT_EQ(loop.client.stats().bytes_replayed, b.size() + c.size());
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 0u);
  EXPECT_EQ(loop.client.stats().resumes, 1u);
  EXPECT_EQ(server->stats().resumes, 1u);
  EXPECT_EQ(loop.client.stats().total_downtime, milliseconds(1800));
  EXPECT_EQ(loop.server.stats().resumes_accepted, 1u);

  // And the session keeps working on the new path.
  const Bytes d = to_bytes("after the resume");
  write_all(loop.client, stream, d, loop.now);
  loop.pump();
  EXPECT_EQ(read_all(*server, stream, loop.now), d);
}

TEST(Liveness, DataDeliveredBeforeTheOutageIsNotDuplicatedOnResume) {
  // Only the server's replies are lost: the server already holds what the client replays.
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  Session* server = loop.server_session();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  loop.advance(seconds(5));
  loop.connections.at(1).to_client = false;
  SplitMix64 random(8);
  const Bytes data = random_bytes(random, 3000);
  write_all(loop.client, stream, data, loop.now);
  loop.pump();
  EXPECT_EQ(server->stats().bytes_received, data.size());
  loop.advance(seconds(4));
  ASSERT_TRUE(loop.client.suspended());
  // Written while suspended: the replay frame will straddle old and new bytes.
  const Bytes extra = random_bytes(random, 500);
  write_all(loop.client, stream, extra, loop.now);
  loop.connect();
  loop.pump();
  ASSERT_EQ(events_of<events::Resumed>(loop.client_events).size(), 1u);
  EXPECT_EQ(events_of<events::Resumed>(loop.client_events)[0].bytes_replayed, 0u);
  EXPECT_EQ(read_all(*server, stream, loop.now), test::concat(data, extra));
  EXPECT_EQ(server->stats().bytes_received, data.size() + extra.size());
  // The optimistic replay behind the Resume carried the bytes again; the server discarded them.
  EXPECT_EQ(loop.client.stats().bytes_replayed, data.size());
  EXPECT_EQ(loop.client.stats().bytes_sent, 2 * data.size() + extra.size());
  EXPECT_EQ(server->stats().duplicate_bytes_received, data.size());
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 0u);
}

TEST(AckProgress, StalledAcknowledgementsSuspendWhilePingsStillArrive) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  loop.advance(seconds(5));
  loop.connections.at(1).to_server = false;  // the client's bytes stop arriving
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  write_all(loop.client, stream, to_bytes("stuck behind a dead path"), loop.now);
  loop.pump();
  loop.advance(seconds(3));
  EXPECT_FALSE(loop.client.suspended());
  loop.advance(seconds(1));
  const auto suspended = events_of<events::Suspended>(loop.client_events);
  ASSERT_EQ(suspended.size(), 1u);
  EXPECT_EQ(suspended[0].cause, SuspendCause::kAcknowledgementStall);
  EXPECT_EQ(first_time<events::Suspended>(loop.client_events), t0 + milliseconds(8200));
  // The server's heartbeats kept arriving: the client's liveness never tripped.
  std::size_t pings_to_client_after_stall = 0;
  for (const auto& chunk : loop.chunks) {
    if (!chunk.to_server && chunk.delivered && chunk.at > t0 + seconds(5)) {
      pings_to_client_after_stall += frames_of<wire::Ping>(chunk.bytes).size();
    }
  }
  // The client's Pings no longer arrive, so the server pings on its own period of 1.125 s: at
  // 6.125, 7.25 and 8.375 s.
  EXPECT_EQ(pings_to_client_after_stall, 3u);
  EXPECT_EQ(loop.path_requests_total, 2u);
}

TEST(Transport, ClosedConnectionSuspendsThenResumes) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  Session* server = loop.server_session();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  const Bytes a = to_bytes("before ");
  write_all(loop.client, stream, a, loop.now);
  loop.pump();
  EXPECT_EQ(read_all(*server, stream, loop.now), a);

  loop.advance(seconds(1));
  loop.close_connection(1);
  loop.process_events();
  const auto client_suspended = events_of<events::Suspended>(loop.client_events);
  ASSERT_EQ(client_suspended.size(), 1u);
  EXPECT_EQ(client_suspended[0].cause, SuspendCause::kTransportClosed);
  const auto server_suspended = events_of<events::Suspended>(loop.server_events);
  ASSERT_EQ(server_suspended.size(), 1u);
  EXPECT_EQ(server_suspended[0].cause, SuspendCause::kTransportClosed);
  EXPECT_EQ(loop.path_requests, 1u);
  EXPECT_EQ(loop.client.path_count(), 0u);

  // Writes are accepted while suspended and delivered after the resume.
  const Bytes b = to_bytes("during");
  write_all(loop.client, stream, b, loop.now);
  const Bytes y = to_bytes("server during");
  write_all(*server, stream, y, loop.now);
  loop.advance(milliseconds(1500));
  loop.connect();
  loop.pump();
  ASSERT_EQ(events_of<events::Resumed>(loop.client_events).size(), 1u);
  EXPECT_EQ(events_of<events::Resumed>(loop.client_events)[0].downtime, milliseconds(1500));
  ASSERT_EQ(events_of<events::Resumed>(loop.server_events).size(), 1u);
  EXPECT_EQ(events_of<events::Resumed>(loop.server_events)[0].downtime, milliseconds(1500));
  EXPECT_EQ(read_all(*server, stream, loop.now), b);
  EXPECT_EQ(read_all(loop.client, stream, loop.now), y);
  EXPECT_EQ(loop.client.stats().resumes, 1u);
}

TEST(Transport, AutomaticReconnectAfterEachClose) {
  Loopback loop;
  loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  Bytes expected;
  for (int round = 0; round < 5; ++round) {
    const Bytes chunk = to_bytes("round " + std::to_string(round) + ";");
    write_all(loop.client, stream, chunk, loop.now);
    expected.insert(expected.end(), chunk.begin(), chunk.end());
    loop.close_connection(*loop.client.data_path());
    loop.pump();
    loop.advance(seconds(1));
  }
  EXPECT_EQ(read_all(*loop.server_session(), stream, loop.now), expected);
  EXPECT_EQ(loop.client.stats().resumes, 5u);
  EXPECT_EQ(loop.server.stats().resumes_accepted, 5u);
  EXPECT_EQ(*loop.client.data_path(), PathId{6});
}

// ---- Ending
// ---------------------------------------------------------------------------------------

TEST(Close, GracefulCloseDeliversEverythingThenClosesBothSides) {
  Loopback loop;
  Reader client_reader;
  Reader server_reader;
  attach_readers(loop, client_reader, server_reader);
  loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  SplitMix64 random(9);
  const Bytes data = random_bytes(random, 40000);
  write_all(loop.client, stream, data, loop.now);
  loop.client.close(loop.now);  // before anything was sent: Close waits for the acknowledgement
  EXPECT_EQ(loop.client.write(stream, data, loop.now).error(), StreamError::kNotOpen);
  EXPECT_EQ(loop.client.open_stream(0, loop.now).error(), StreamError::kNotOpen);
  loop.pump();

  EXPECT_EQ(server_reader.data[stream], data);
  const auto client_closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].reason, Reason::kShutdown);
  EXPECT_FALSE(client_closed[0].by_peer);
  EXPECT_FALSE(client_closed[0].transient);
  EXPECT_EQ(client_closed[0].unacknowledged_bytes, 0u);
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kShutdown);
  EXPECT_TRUE(server_closed[0].by_peer);
  EXPECT_EQ(server_closed[0].unacknowledged_bytes, 0u);
  EXPECT_EQ(loop.client.phase(), Phase::kClosed);
  EXPECT_FALSE(loop.client.next_deadline().has_value());
  EXPECT_FALSE(loop.connections.at(1).open);
  EXPECT_EQ(loop.server.session_count(), 0u);  // freed once its connection was closed
  EXPECT_EQ(loop.client.stats().bytes_acknowledged, data.size());
}

TEST(Close, ServerInitiatedGracefulClose) {
  Loopback loop;
  loop.establish();
  loop.server_session()->close(loop.now);
  loop.pump();
  const auto client_closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].reason, Reason::kShutdown);
  EXPECT_TRUE(client_closed[0].by_peer);
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_FALSE(server_closed[0].by_peer);
  EXPECT_EQ(server_closed[0].unacknowledged_bytes, 0u);
}

TEST(Close, DataUnreadAtGracefulCloseStaysReadable) {
  Loopback loop;
  loop.establish();
  Session* server = loop.server_session();
  const StreamId stream = *server->open_stream(0, loop.now);
  const Bytes data = to_bytes("the last message before goodbye");
  write_all(*server, stream, data, loop.now);
  ASSERT_TRUE(server->finish(stream, loop.now).has_value());
  server->close(loop.now);
  loop.pump();  // the client application has not had time to read yet
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].unacknowledged_bytes, 0u);  // the server believes it was delivered
  ASSERT_EQ(events_of<events::StreamReadable>(loop.client_events).size(), 1u);
  const auto client_closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].reason, Reason::kShutdown);
  EXPECT_EQ(loop.client.phase(), Phase::kClosed);
  // As after a TCP FIN, what arrived before the close can still be read.
  bool finished = false;
  EXPECT_EQ(read_all(loop.client, stream, loop.now, &finished), data);
  EXPECT_TRUE(finished);
}

TEST(Close, GracefulCloseRequestedWhileSuspendedCompletesAfterTheResume) {
  Loopback loop;
  loop.auto_connect = false;
  Reader client_reader;
  Reader server_reader;
  attach_readers(loop, client_reader, server_reader);
  loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  write_all(loop.client, stream, to_bytes("one "), loop.now);
  loop.pump();
  loop.close_connection(1);
  loop.pump();
  write_all(loop.client, stream, to_bytes("two"), loop.now);
  loop.client.close(loop.now);
  loop.advance(seconds(2));
  EXPECT_TRUE(events_of<events::Closed>(loop.client_events).empty());
  loop.connect();
  loop.pump();
  EXPECT_EQ(server_reader.data[stream], to_bytes("one two"));
  const auto client_closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].reason, Reason::kShutdown);
  EXPECT_FALSE(client_closed[0].by_peer);
  EXPECT_EQ(client_closed[0].unacknowledged_bytes, 0u);
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kShutdown);
  EXPECT_TRUE(server_closed[0].by_peer);
}

TEST(Close, AbortReportsTheExactUnacknowledgedCount) {
  Loopback loop;
  loop.establish();
  Session* server = loop.server_session();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  SplitMix64 random(10);
  write_all(loop.client, stream, random_bytes(random, 40), loop.now);
  loop.pump();                                                          // acknowledged
  write_all(loop.client, stream, random_bytes(random, 123), loop.now);  // never sent
  const StreamId server_stream = *server->open_stream(0, loop.now);
  write_all(*server, server_stream, random_bytes(random, 77), loop.now);

  const events::Closed closed = loop.client.abort(Reason::kApplicationAbort, loop.now);
  EXPECT_EQ(closed.reason, Reason::kApplicationAbort);
  EXPECT_FALSE(closed.by_peer);
  EXPECT_FALSE(closed.transient);
  EXPECT_EQ(closed.unacknowledged_bytes, 123u);
  EXPECT_EQ(loop.client.phase(), Phase::kClosed);
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 123u);
  EXPECT_EQ(loop.client.write(stream, Bytes(1), loop.now).error(), StreamError::kNotOpen);
  loop.pump();
  const auto client_closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].unacknowledged_bytes, 123u);
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kApplicationAbort);
  EXPECT_TRUE(server_closed[0].by_peer);
  EXPECT_EQ(server_closed[0].unacknowledged_bytes, 77u);
  EXPECT_EQ(loop.server.session_count(), 0u);
}

TEST(Close, FastCloseFromTheClient) {
  Loopback loop;
  const SessionId id = loop.establish();
  const Bytes encoded = loop.client.fast_close(Reason::kAdministrativelyProhibited, loop.now);
  const auto frames = frames_of<wire::FastClose>(encoded);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].session_id, id);
  EXPECT_EQ(frames[0].key, derive_session_keys(id, loop.connections.at(1).keying).server_close_key);
  EXPECT_EQ(frames[0].reason, Reason::kAdministrativelyProhibited);
  EXPECT_EQ(loop.client.phase(), Phase::kClosed);
  loop.pump();
  const auto client_closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].reason, Reason::kAdministrativelyProhibited);
  EXPECT_FALSE(client_closed[0].by_peer);
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kAdministrativelyProhibited);
  EXPECT_TRUE(server_closed[0].by_peer);
  EXPECT_EQ(loop.server.session_count(), 0u);
}

TEST(Close, FastCloseFromTheServer) {
  Loopback loop;
  const SessionId id = loop.establish();
  const Bytes encoded = loop.server_session()->fast_close(Reason::kRevoked, loop.now);
  const auto frames = frames_of<wire::FastClose>(encoded);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].key, derive_session_keys(id, loop.connections.at(1).keying).client_close_key);
  loop.pump();
  const auto client_closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].reason, Reason::kRevoked);
  EXPECT_TRUE(client_closed[0].by_peer);
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kRevoked);
  EXPECT_FALSE(server_closed[0].by_peer);
}

TEST(Close, FastCloseOnAFreshConnectionWhileSuspended) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  loop.close_connection(1);
  ASSERT_TRUE(loop.client.suspended());
  const Bytes encoded = loop.client.fast_close(Reason::kApplicationAbort, loop.now);
  ASSERT_FALSE(encoded.empty());
  SplitMix64 random(12);
  const Bytes reply = loop.raw_exchange(100, random_bytes(random, 32), encoded);
  EXPECT_TRUE(reply.empty());
  EXPECT_EQ(loop.server.stats().fast_closes_accepted, 1u);
  loop.process_events();
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kApplicationAbort);
  EXPECT_TRUE(server_closed[0].by_peer);
  const Session* server = loop.server.find(loop.client.id());
  EXPECT_TRUE(server == nullptr || server->phase() == Phase::kClosed);
}

TEST(Close, SessionClosedWithoutConnectionsIsFreed) {
  // "A session is destroyed once it is closed and all its connections have been reported closed."
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  loop.close_connection(1);
  const Bytes encoded = loop.client.fast_close(Reason::kApplicationAbort, loop.now);
  SplitMix64 random(13);
  loop.raw_exchange(100, random_bytes(random, 32), encoded);
  loop.pump();
  EXPECT_EQ(loop.server.stats().fast_closes_accepted, 1u);
  EXPECT_FALSE(loop.server.next_deadline().has_value());
  // No later on_timeout() is needed to free it.
  EXPECT_EQ(loop.server.session_count(), 0u);
  EXPECT_EQ(loop.server.find(loop.client.id()), nullptr);
}

TEST(Linger, ExpiredSessionAnswersAResumeWithAStatelessReset) {
  SessionConfig server_config = test_config();
  server_config.linger = seconds(5);
  Loopback loop(test_config(), server_config);
  loop.auto_connect = false;
  const SessionId id = loop.establish();
  loop.advance(seconds(1));
  loop.close_connection(1);
  loop.advance(seconds(4));
  EXPECT_TRUE(events_of<events::Closed>(loop.server_events).empty());
  EXPECT_EQ(loop.server.session_count(), 1u);
  loop.advance(seconds(2));
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kLingerExpired);
  EXPECT_FALSE(server_closed[0].by_peer);
  EXPECT_EQ(first_time<events::Closed>(loop.server_events), t0 + seconds(6));
  EXPECT_EQ(loop.server.session_count(), 0u);
  EXPECT_EQ(loop.client.phase(), Phase::kOpen);

  const PathId second = loop.connect();
  loop.pump();
  const Bytes reply = loop.sent_on(second, false);
  const auto resets = frames_of<wire::StatelessReset>(reply);
  ASSERT_EQ(resets.size(), 1u);
  EXPECT_EQ(resets[0].session_id, id);
  EXPECT_EQ(resets[0].token, stateless_reset_token(loop.static_key, id));
  EXPECT_EQ(loop.server.stats().stateless_resets_sent, 1u);
  const auto client_closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].reason, Reason::kUnknownSession);
  EXPECT_TRUE(client_closed[0].by_peer);
  EXPECT_EQ(loop.client.phase(), Phase::kClosed);
}

TEST(Reconnect, LimitExhaustedClosesTheClient) {
  SessionConfig client_config = test_config();
  client_config.reconnect_limit = seconds(10);
  Loopback loop(client_config);
  loop.establish();
  loop.advance(seconds(1));
  loop.network_up = false;
  loop.close_connection(1);
  loop.pump();
  loop.advance(seconds(20));
  const auto closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, Reason::kReconnectExhausted);
  EXPECT_FALSE(closed[0].by_peer);
  EXPECT_TRUE(closed[0].transient);
  EXPECT_EQ(first_time<events::Closed>(loop.client_events), t0 + seconds(11));
  EXPECT_EQ(loop.client.phase(), Phase::kClosed);
  // Attempts: the first at once, then with growing delays; none after the end.
  std::vector<Time> attempts;
  for (const auto& entry : loop.client_events) {
    if (std::holds_alternative<events::PathWanted>(entry.event)) attempts.push_back(entry.at);
  }
  ASSERT_GE(attempts.size(), 6u);
  EXPECT_EQ(attempts[0], t0);  // the initial connection
  EXPECT_EQ(attempts[1], t0 + seconds(1));
  for (std::size_t index = 3; index < attempts.size(); ++index) {
    EXPECT_GT(attempts[index] - attempts[index - 1], attempts[index - 1] - attempts[index - 2]);
  }
  EXPECT_LE(attempts.back(), t0 + seconds(11));
  EXPECT_FALSE(loop.client.next_deadline().has_value());
}

TEST(Reconnect, ConnectingClientGivesUpToo) {
  SessionConfig client_config = test_config();
  client_config.reconnect_limit = seconds(5);
  Loopback loop(client_config);
  loop.network_up = false;
  loop.process_events();
  loop.advance(seconds(10));
  const auto closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].reason, Reason::kReconnectExhausted);
  EXPECT_EQ(first_time<events::Closed>(loop.client_events), t0 + seconds(5));
  EXPECT_TRUE(events_of<events::Established>(loop.client_events).empty());
}

}  // namespace
}  // namespace tether::session
