// Hardening regressions for the session core (issue #12): the control-stream release that crashed
// the server, frames answered to a peer that never reads, acknowledgement state a peer can
// multiply, time values that overflowed, and the server's limits on sessions and first frames.
// Each test fails on the code before the fix.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "loopback.hpp"
#include "session/server_endpoint.hpp"
#include "wire/byte_writer.hpp"
#include "wire/codec.hpp"

namespace tether::session {
namespace {

using test::Bytes;
using test::encode;
using test::events_of;
using test::Loopback;
using test::random_bytes;
using test::SplitMix64;
using test::test_config;

Bytes hex(std::initializer_list<int> values) {
  Bytes out;
  for (int value : values) out.push_back(static_cast<std::byte>(value));
  return out;
}

Bytes hello_bytes(std::uint64_t heartbeat_ms = 1000, std::uint64_t missing = 3) {
  wire::Hello hello;
  hello.heartbeat_interval_ms = heartbeat_ms;
  hello.missing_heartbeats_allowed = missing;
  hello.capabilities = SessionConfig{}.capabilities;
  return encode(hello);
}

// A server endpoint driven directly by raw connections, as a stranger would.
struct RawServer {
  explicit RawServer(SessionConfig config = test_config(), ServerLimits limits = {})
      : endpoint(config, wire::Secret{}, random, limits) {}

  PathId connect(std::string_view source = "192.0.2.1") {
    const PathId id = next++;
    endpoint.accept(id, random_bytes(keying, 32), now, source);
    return id;
  }
  // Connects and sends a Hello; returns the connection.
  PathId open_session(std::string_view source = "192.0.2.1") {
    const PathId id = connect(source);
    endpoint.receive(id, hello_bytes(), now);
    return id;
  }
  Bytes take(PathId id) {
    Bytes out;
    endpoint.take_outgoing(id, out, std::size_t{1} << 30, now);
    return out;
  }
  // `count` sessions from `source` that say Hello and disconnect, one second apart: each is
  // suspended.
  void abandon_sessions(std::string_view source, int count) {
    for (int index = 0; index < count; ++index) {
      const PathId id = open_session(source);
      drain();
      endpoint.on_connection_closed(id, now);
      now += std::chrono::seconds(1);
    }
    drain();
  }
  // Drains the events; closes every connection the endpoint is done with (as the runtime does).
  std::vector<SessionEvent> drain() {
    std::vector<SessionEvent> seen;
    while (auto event = endpoint.poll_event()) {
      seen.push_back(*event);
      if (const auto* done = std::get_if<events::PathDone>(&event->event)) {
        endpoint.on_connection_closed(done->path, now);
      }
    }
    return seen;
  }

  Time now{};
  SplitMix64 random{7};
  SplitMix64 keying{8};
  ServerEndpoint endpoint;
  PathId next = 1;
};

// ---- Item 1: the remote crash
// ---------------------------------------------------------------------

// The exact bytes of the review: Hello, Ack{stream 0, received_offset 2^62-1}, then a Close on the
// control stream. The "released" value used to move the control stream's send position below its
// buffer, and the next control message read out of bounds.
TEST(RemoteCrash, ReleasingTheControlStreamIsAProtocolError) {
  RawServer server;
  const PathId id = server.connect();
  server.endpoint.receive(id, hello_bytes(), server.now);
  ASSERT_EQ(server.endpoint.session_count(), 1u);
  server.endpoint.receive(
      id, hex({0x09, 0x0b, 0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}),
      server.now);
  server.endpoint.receive(id, hex({0x0a, 0x06, 0x00, 0x00, 0x00, 0x0e, 0x01, 0x0b}), server.now);
  const Bytes reply = server.take(id);
  const auto aborts = test::frames_of<wire::Abort>(reply);
  ASSERT_EQ(aborts.size(), 1u);
  EXPECT_EQ(aborts[0].reason, Reason::kProtocolError);
  const auto seen = server.drain();
  std::size_t closed = 0;
  for (const auto& event : seen) {
    if (const auto* value = std::get_if<events::Closed>(&event.event)) {
      ++closed;
      EXPECT_EQ(value->reason, Reason::kProtocolError);
    }
  }
  EXPECT_EQ(closed, 1u);
  EXPECT_EQ(server.endpoint.session_count(), 0u);
}

// The same release sent by a hostile server to a client.
TEST(RemoteCrash, AClientRefusesAReleaseOfTheControlStream) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  wire::Ack ack;
  ack.entries.push_back(wire::AckEntry{kControlStream, wire::kMaxVarint, 0});
  loop.client.receive(1, encode(ack), loop.now);
  EXPECT_EQ(loop.client.phase(), Phase::kClosed);
  const auto closed = events_of<events::Closed>(loop.client_events);
  loop.process_events();
  const auto after = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].reason, Reason::kProtocolError);
  (void)closed;
}

// ---- Item 3: a peer that sends and never reads
// -----------------------------------------------------

TEST(Backpressure, PingsFromAPeerThatNeverReadsStopInputThenEndTheSession) {
  SessionConfig config = test_config();
  config.max_queued_bytes = 4096;
  RawServer server(config);
  const PathId id = server.open_session();
  const Bytes ping = encode(wire::Ping{1});
  Bytes burst;
  for (int index = 0; index < 5000; ++index) burst.insert(burst.end(), ping.begin(), ping.end());
  // One read's worth of Pings fills the queue past the bound: the runtime must stop reading.
  server.endpoint.receive(id, burst, server.now);
  EXPECT_FALSE(server.endpoint.wants_input(id));
  // Once the queue is taken, input is wanted again.
  const Bytes answered = server.take(id);
  EXPECT_GT(answered.size(), 4096u);
  EXPECT_TRUE(server.endpoint.wants_input(id));
  // A runtime that reads on regardless cannot grow the queue without end: the session ends.
  for (int round = 0; round < 64; ++round) server.endpoint.receive(id, burst, server.now);
  Session* session = server.endpoint.find(server.endpoint.session_ids().front());
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->phase(), Phase::kClosed);
  EXPECT_LT(server.take(id).size(), 4 * config.max_queued_bytes + (128u << 10));
}

// Data on a stream the peer itself reset, repeated: one acknowledgement entry, not one per frame.
TEST(Backpressure, RepeatedDataOnAReleasedStreamQueuesOneAcknowledgement) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  loop.pump();
  loop.client.reset_stream(stream, 1, loop.now);
  loop.pump();
  Session* server = loop.server_session();
  ASSERT_NE(server, nullptr);
  wire::StreamData data;
  data.stream_id = stream;
  const Bytes payload(100, std::byte{1});
  data.data = payload;
  const Bytes frame = encode(data);
  Bytes flood;
  for (int index = 0; index < 10000; ++index) flood.insert(flood.end(), frame.begin(), frame.end());
  loop.server.receive(1, flood, loop.now);
  ASSERT_EQ(server->phase(), Phase::kOpen);
  Bytes out;
  loop.server.take_outgoing(1, out, std::size_t{1} << 20, loop.now);
  const auto acks = test::frames_of<wire::Ack>(out);
  std::size_t entries = 0;
  for (const auto& ack : acks) {
    for (const auto& entry : ack.entries) {
      if (entry.stream_id == stream) ++entries;
    }
  }
  EXPECT_EQ(entries, 1u);
}

// Streams refused past max_streams each queue a ResetStream on the control stream; a peer that
// never acknowledges them cannot grow that queue without end.
TEST(Backpressure, UnacknowledgedStreamRefusalsAreBounded) {
  SessionConfig config = test_config();
  config.max_streams = 4;
  RawServer server(config);
  const PathId id = server.open_session();
  Session* session = server.endpoint.find(server.endpoint.session_ids().front());
  ASSERT_NE(session, nullptr);
  for (StreamId stream = 1; stream < 400000 && session->phase() == Phase::kOpen; stream += 2) {
    wire::StreamData data;
    data.stream_id = stream;
    data.open = true;
    server.endpoint.receive(id, encode(data), server.now);
    // Whatever was queued goes to the attacker, who never acknowledges the control stream.
    server.take(id);
  }
  EXPECT_EQ(session->phase(), Phase::kClosed);
}

// ---- Item 11: time values from a peer
// ---------------------------------------------------------------

TEST(PeerTime, HugeHeartbeatIntervalIsClampedWithoutOverflow) {
  SessionConfig config = test_config();
  RawServer server(config);
  const PathId id = server.connect();
  server.endpoint.receive(id, hello_bytes(wire::kMaxVarint, wire::kMaxVarint), server.now);
  ASSERT_EQ(server.endpoint.session_count(), 1u);
  Session* session = server.endpoint.find(server.endpoint.session_ids().front());
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->heartbeat().interval, config.max_heartbeat_interval);
  EXPECT_EQ(session->heartbeat().missing_allowed, config.max_missing_heartbeats_allowed);
  // 9.2e12 ms was the smallest value that overflowed the nanosecond conversion.
  const PathId second = server.connect("192.0.2.2");
  server.endpoint.receive(second, hello_bytes(9'300'000'000'000ull), server.now);
  EXPECT_EQ(server.endpoint.session_count(), 2u);
}

TEST(PeerTime, AClientClampsTheServersHeartbeatFigures) {
  Loopback loop;
  loop.auto_connect = false;
  loop.process_events();
  const PathId id = loop.connect();
  Bytes hello;
  loop.client.take_outgoing(id, hello, 1u << 20, loop.now);
  wire::Welcome welcome;
  welcome.session_id[0] = std::byte{1};
  welcome.heartbeat_interval_ms = wire::kMaxVarint;
  welcome.missing_heartbeats_allowed = wire::kMaxVarint;
  welcome.linger_ms = wire::kMaxVarint;
  welcome.capabilities = SessionConfig{}.capabilities;
  loop.client.receive(id, encode(welcome), loop.now);
  ASSERT_EQ(loop.client.phase(), Phase::kOpen);
  const SessionConfig config = test_config();
  EXPECT_EQ(loop.client.heartbeat().interval, config.max_heartbeat_interval);
  EXPECT_EQ(loop.client.heartbeat().missing_allowed, config.max_missing_heartbeats_allowed);
  // And a microsecond interval cannot make it heartbeat in a busy loop.
  EXPECT_GE(*loop.client.next_deadline(), loop.now + std::chrono::milliseconds(100));
}

// ---- Items 4 and 5: first frames and sessions
// ------------------------------------------------------

TEST(FirstFrame, AHelloClaimingAMegabyteIsRefusedFromItsHeader) {
  RawServer server;
  const PathId id = server.connect();
  Bytes header;
  {
    wire::ByteWriter writer(header);
    writer.write_varint(0x01);      // Hello
    writer.write_varint(1u << 20);  // a payload of 1 MiB
  }
  server.endpoint.receive(id, header, server.now);
  const auto refusals = test::frames_of<wire::Refuse>(server.take(id));
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].reason, Reason::kProtocolError);
  EXPECT_FALSE(server.endpoint.is_pending(id));
}

TEST(SessionLimits, TotalLimitRefusesNewSessionsAsTransient) {
  ServerLimits limits;
  limits.max_sessions = 3;
  RawServer server(test_config(), limits);
  for (int index = 0; index < 3; ++index) {
    server.open_session(std::string("192.0.2.") + std::to_string(index + 1));
  }
  EXPECT_EQ(server.endpoint.session_count(), 3u);
  const PathId refused = server.open_session("192.0.2.9");
  const auto refusals = test::frames_of<wire::Refuse>(server.take(refused));
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].reason, Reason::kLackOfResources);
  EXPECT_TRUE(refusals[0].transient);
  EXPECT_EQ(server.endpoint.session_count(), 3u);
  EXPECT_EQ(server.endpoint.stats().sessions_refused, 1u);
}

TEST(SessionLimits, AbandonedSessionsAreFreedOldestFirst) {
  ServerLimits limits;
  limits.max_suspended_sessions = 5;
  RawServer server(test_config(), limits);
  server.abandon_sessions("198.51.100.7", 20);
  // At most the limit stays suspended (the next Hello makes room), and the newest survive.
  EXPECT_LE(server.endpoint.session_count(), 5u);
  EXPECT_EQ(server.endpoint.stats().sessions_evicted, 15u);
  // A legitimate session from elsewhere is still welcome.
  const PathId legit = server.open_session("203.0.113.1");
  const auto welcomes = test::frames_of<wire::Welcome>(server.take(legit));
  EXPECT_EQ(welcomes.size(), 1u);
}

// Suspended sessions whose connection is still open (suspect, not yet dead: make-before-break)
// close when evicted but are collected only once the runtime reports their connection closed. A
// Hello at the limit must count an evicted session as freed at once: it evicts one session, not
// every suspended one, and is welcome.
TEST(SessionLimits, AHelloAtTheLimitEvictsOneSuspendedSessionThatStillHasItsConnection) {
  ServerLimits limits;
  limits.max_sessions = 4;
  RawServer server(test_config(), limits);
  std::vector<PathId> connections;
  for (int index = 0; index < 4; ++index) {
    connections.push_back(server.open_session(std::string("192.0.2.") + std::to_string(index + 1)));
    for (const PathId connection : connections) (void)server.take(connection);
  }
  server.drain();
  // Nobody sends anything: every session turns suspect (suspended) on its still-open connection.
  for (int second = 0; second < 120 && server.endpoint.suspended_count() < 4; ++second) {
    server.now += std::chrono::seconds(1);
    server.endpoint.on_timeout(server.now);
    for (const PathId connection : connections) (void)server.take(connection);
  }
  ASSERT_EQ(server.endpoint.suspended_count(), 4u);
  ASSERT_EQ(server.endpoint.session_count(), 4u);
  for (const PathId connection : connections) ASSERT_TRUE(server.endpoint.wants_input(connection));

  const PathId fifth = server.open_session("203.0.113.1");
  EXPECT_EQ(test::frames_of<wire::Welcome>(server.take(fifth)).size(), 1u);
  EXPECT_EQ(server.endpoint.stats().sessions_evicted, 1u);
  EXPECT_EQ(server.endpoint.suspended_count(), 3u);
  EXPECT_EQ(server.endpoint.stats().sessions_refused, 0u);
}

TEST(SessionLimits, PerSourceLimitFreesThatSourcesSuspendedSessionFirst) {
  ServerLimits limits;
  limits.max_sessions_per_source = 2;
  RawServer server(test_config(), limits);
  const PathId first = server.open_session("198.51.100.7");
  server.drain();
  server.now += std::chrono::seconds(1);
  const PathId second = server.open_session("198.51.100.7");
  server.drain();
  // Both live: a third from the same source is refused.
  const PathId third = server.open_session("198.51.100.7");
  auto refusals = test::frames_of<wire::Refuse>(server.take(third));
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].reason, Reason::kLackOfResources);
  // Another source is not affected.
  const PathId other = server.open_session("203.0.113.1");
  EXPECT_EQ(test::frames_of<wire::Welcome>(server.take(other)).size(), 1u);
  // The first one disconnects (suspended): the next Hello from its source frees it.
  server.endpoint.on_connection_closed(first, server.now);
  server.drain();
  const PathId fourth = server.open_session("198.51.100.7");
  EXPECT_EQ(test::frames_of<wire::Welcome>(server.take(fourth)).size(), 1u);
  EXPECT_EQ(server.endpoint.stats().sessions_evicted, 1u);
  EXPECT_EQ(server.endpoint.session_count(), 3u);
  (void)second;
}

}  // namespace
}  // namespace tether::session

namespace tether::session {
namespace {

// ---- Receive buffering per session and in total
// ------------------------------------------------------

// Streams the application does not read: past half the session's bound no new stream is accepted
// and no unread stream gets more credit, so the buffers stop growing.
TEST(ReceiveBudget, UnreadStreamsAreBoundedPerSession) {
  SessionConfig config = test_config();
  config.max_receive_buffered_bytes = 1u << 20;  // four initial windows
  RawServer server(config);
  const PathId id = server.open_session();
  Session* session = server.endpoint.find(server.endpoint.session_ids().front());
  ASSERT_NE(session, nullptr);
  const Bytes payload(16u << 10, std::byte{3});
  // Eight streams, each sending its whole initial window (256 KiB), nobody reading.
  for (StreamId stream = 1; stream < 17; stream += 2) {
    for (std::uint64_t offset = 0; offset < (256u << 10); offset += payload.size()) {
      wire::StreamData data;
      data.stream_id = stream;
      data.open = offset == 0;
      data.offset = offset;
      data.data = payload;
      server.endpoint.receive(id, encode(data), server.now);
    }
  }
  ASSERT_EQ(session->phase(), Phase::kOpen);
  EXPECT_LE(session->stats().receive_buffered_bytes, config.max_receive_buffered_bytes);
  // Past half the bound new streams are refused at open (before their data), not reset later.
  EXPECT_LT(session->stream_ids().size(), 8u);
  EXPECT_GE(session->stream_ids().size(), 2u);
}

TEST(ReceiveBudget, TheServersSharedBudgetRefusesNewSessionsWhenSpent) {
  ServerLimits limits;
  limits.max_buffered_bytes = 256u << 10;
  RawServer server(test_config(), limits);
  const PathId id = server.open_session();
  const Bytes payload(16u << 10, std::byte{4});
  for (std::uint64_t offset = 0; offset < (256u << 10); offset += payload.size()) {
    wire::StreamData data;
    data.stream_id = 1;
    data.open = offset == 0;
    data.offset = offset;
    data.data = payload;
    server.endpoint.receive(id, encode(data), server.now);
  }
  EXPECT_TRUE(server.endpoint.budget().exhausted());
  const PathId refused = server.open_session("192.0.2.77");
  const auto refusals = test::frames_of<wire::Refuse>(server.take(refused));
  ASSERT_EQ(refusals.size(), 1u);
  EXPECT_EQ(refusals[0].reason, Reason::kLackOfResources);
  EXPECT_TRUE(refusals[0].transient);
  // Reading frees the budget: sessions are welcome again.
  Session* session = server.endpoint.find(server.endpoint.session_ids().front());
  ASSERT_NE(session, nullptr);
  std::vector<std::byte> sink(1u << 20);
  ASSERT_TRUE(session->read(1, sink, server.now).has_value());
  EXPECT_EQ(server.endpoint.budget().used(), 0u);
  const PathId welcome = server.open_session("192.0.2.78");
  EXPECT_EQ(test::frames_of<wire::Welcome>(server.take(welcome)).size(), 1u);
}

TEST(ReceiveBudget, WritesWaitForTheSharedBudgetAndResumeOnWritable) {
  ServerLimits limits;
  limits.max_buffered_bytes = 64u << 10;
  RawServer server(test_config(), limits);
  const PathId id = server.open_session();
  server.drain();
  Session* session = server.endpoint.find(server.endpoint.session_ids().front());
  ASSERT_NE(session, nullptr);
  const StreamId stream = *session->open_stream(0, server.now);
  const Bytes block(100u << 10, std::byte{5});
  auto written = session->write(stream, block, server.now);
  ASSERT_TRUE(written.has_value());
  EXPECT_EQ(*written, 64u << 10);
  EXPECT_EQ(session->write(stream, block, server.now).error(), StreamError::kWouldBlock);
  // The peer acknowledges everything: the budget is free again and the writer is told.
  server.take(id);
  wire::Ack ack;
  ack.entries.push_back(wire::AckEntry{stream, 64u << 10, 1u << 20});
  server.endpoint.receive(id, encode(ack), server.now);
  EXPECT_EQ(server.endpoint.budget().used(), 0u);
  bool writable = false;
  for (const auto& event : server.drain()) {
    writable |= std::holds_alternative<events::Writable>(event.event);
  }
  EXPECT_TRUE(writable);
}

// ---- Stream opens
// ------------------------------------------------------------------------------------

TEST(StreamOpens, PastTheBurstTheOpenRateIsLimited) {
  SessionConfig config = test_config();
  config.max_streams = 8;
  config.max_stream_opens_per_second = 10;
  RawServer server(config);
  const PathId id = server.open_session();
  Session* session = server.endpoint.find(server.endpoint.session_ids().front());
  ASSERT_NE(session, nullptr);
  auto open_and_reset = [&](StreamId stream) {
    wire::StreamData data;
    data.stream_id = stream;
    data.open = true;
    server.endpoint.receive(id, encode(data), server.now);
    const bool opened = session->stream_ids().size() == 1;
    if (opened) session->reset_stream(stream, 0, server.now);
    return opened;
  };
  StreamId next = 1;
  std::size_t opened = 0;
  for (int index = 0; index < 100; ++index, next += 2) opened += open_and_reset(next) ? 1 : 0;
  EXPECT_EQ(opened, 8u);  // the burst, then nothing within the same instant
  server.now += std::chrono::seconds(1);
  opened = 0;
  for (int index = 0; index < 100; ++index, next += 2) opened += open_and_reset(next) ? 1 : 0;
  EXPECT_EQ(opened, 8u);  // ten earned in a second, capped at the burst
  EXPECT_EQ(session->phase(), Phase::kOpen);
}

}  // namespace
}  // namespace tether::session

namespace tether::session {
namespace {

// ---- Found by review: ending a session inside a loop over its streams
// -------------------------------

Bytes control_bytes(std::uint64_t offset, const Bytes& messages) {
  wire::StreamData data;
  data.stream_id = kControlStream;
  data.offset = offset;
  data.data = messages;
  return encode(data);
}

// The acknowledgement cap reached while a stream is being dropped used to end the session (and
// free every stream) under drop_stream's feet: a use after free any peer could trigger.
TEST(DeferredFailure, TheFinalAcknowledgementCapReachedInsideDropStream) {
  SessionConfig config = test_config();
  config.max_streams = 4;  // the cap is 2 x 4 + 16 = 24 entries
  RawServer server(config);
  const PathId id = server.open_session();
  server.take(id);
  Bytes input;
  Bytes resets;
  for (StreamId stream = 1; stream <= 47; stream += 2) {
    const Bytes reset = encode(wire::ResetStream{stream, 0});
    resets.insert(resets.end(), reset.begin(), reset.end());
  }
  const Bytes first = control_bytes(0, resets);
  input.insert(input.end(), first.begin(), first.end());
  for (StreamId stream = 1; stream <= 47; stream += 2) {  // 24 final acknowledgements
    wire::StreamData data;
    data.stream_id = stream;
    const Bytes frame = encode(data);
    input.insert(input.end(), frame.begin(), frame.end());
  }
  wire::StreamData opened;
  opened.stream_id = 49;
  opened.open = true;
  const Bytes one(1, std::byte{9});
  opened.data = one;
  const Bytes open_frame = encode(opened);
  input.insert(input.end(), open_frame.begin(), open_frame.end());
  const Bytes last = control_bytes(resets.size(), encode(wire::ResetStream{49, 0}));
  input.insert(input.end(), last.begin(), last.end());
  server.endpoint.receive(id, input, server.now);
  const auto aborts = test::frames_of<wire::Abort>(server.take(id));
  ASSERT_EQ(aborts.size(), 1u);
  EXPECT_EQ(aborts[0].reason, Reason::kProtocolError);
}

// ---- Evictions start with the source holding the most suspended sessions
// ----------------------------

TEST(SessionLimits, AFloodFromOneSourceFreesItsOwnSuspendedSessionsFirst) {
  ServerLimits limits;
  limits.max_suspended_sessions = 5;
  RawServer server(test_config(), limits);
  // A legitimate client is suspended first (the oldest of all).
  const PathId legit = server.open_session("203.0.113.1");
  server.drain();
  const SessionId legit_id = server.endpoint.session_ids().front();
  server.endpoint.on_connection_closed(legit, server.now);
  server.now += std::chrono::seconds(1);
  server.abandon_sessions("198.51.100.7", 20);
  EXPECT_NE(server.endpoint.find(legit_id), nullptr);
  EXPECT_LE(server.endpoint.suspended_count(), 5u);
}

}  // namespace
}  // namespace tether::session
