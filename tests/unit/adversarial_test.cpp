// Adversarial tests: forged, replayed and stale resume proofs, forged fast closes and stateless
// resets, oversized and malformed frames, flow-control violations and impossible resume positions.
// Each checks that the attack is refused, counted, and leaves the live session working.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <variant>
#include <vector>

#include "loopback.hpp"
#include "session/key_schedule.hpp"
#include "wire/byte_writer.hpp"

namespace tether::session {
namespace {

using test::Bytes;
using test::encode;
using test::events_of;
using test::frames_of;
using test::Loopback;
using test::random_array;
using test::random_bytes;
using test::read_all;
using test::SplitMix64;
using test::test_config;
using test::to_bytes;

// Raw connection ids for the attacker, far from the loopback's own.
constexpr PathId kAttacker = 1000;

Bytes resume_bytes(const SessionId& id, const Secret& proof,
                   std::vector<wire::StreamPosition> positions = {}) {
  wire::Resume resume;
  resume.session_id = id;
  resume.proof = proof;
  resume.received = std::move(positions);
  return encode(resume);
}

std::optional<wire::Refuse> only_refuse(const Bytes& reply) {
  const auto frames = test::decode_all(reply);
  if (frames.size() != 1) return std::nullopt;
  if (const auto* refuse = std::get_if<wire::Refuse>(&frames[0])) return *refuse;
  return std::nullopt;
}

// The client's resume secret as created by the handshake on connection 1.
Secret initial_resume_secret(Loopback& loop) {
  return derive_session_keys(loop.client.id(), loop.connections.at(1).keying).resume_secret;
}

// Writes `text` on the client's stream and checks the server reads exactly it.
void expect_data_flows(Loopback& loop, StreamId stream, std::string_view text) {
  const Bytes data = to_bytes(text);
  auto written = loop.client.write(stream, data, loop.now);
  ASSERT_TRUE(written.has_value());
  loop.pump();
  Session* server = loop.server_session();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(read_all(*server, stream, loop.now), data);
}

// The first frame of what the client sent on `connection`, byte for byte.
Bytes first_frame_sent(const Loopback& loop, PathId connection) {
  const Bytes sent = loop.sent_on(connection, true);
  auto decoded = wire::decode_frame(sent);
  if (!decoded || !decoded->has_value()) return {};
  return Bytes(sent.begin(), sent.begin() + static_cast<std::ptrdiff_t>((*decoded)->consumed));
}

// Closes the data path and resumes on a fresh connection; returns its id.
PathId reconnect(Loopback& loop) {
  loop.close_connection(*loop.client.data_path());
  loop.pump();
  if (loop.path_requests == 0) loop.advance(std::chrono::seconds(1));
  EXPECT_EQ(loop.path_requests, 1u);
  const PathId id = loop.connect();
  loop.pump();
  return id;
}

// ---- Resume proofs
// --------------------------------------------------------------------------------

TEST(ResumeProof, ForgedProofIsRefusedAndTheLiveSessionContinues) {
  Loopback loop;
  loop.auto_connect = false;
  const SessionId id = loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  expect_data_flows(loop, stream, "before the attack");

  SplitMix64 attacker(99);
  const Bytes reply = loop.raw_exchange(kAttacker, random_bytes(attacker, 32),
                                        resume_bytes(id, random_array<32>(attacker)));
  const auto refuse = only_refuse(reply);
  ASSERT_TRUE(refuse.has_value());
  EXPECT_EQ(refuse->reason, Reason::kAuthFailed);
  EXPECT_FALSE(refuse->transient);
  EXPECT_EQ(loop.server.stats().resumes_rejected, 1u);
  EXPECT_EQ(loop.server.stats().resumes_accepted, 0u);
  Session* server = loop.server_session();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->stats().rejected_resume_attempts, 1u);
  loop.process_events();
  // The attacker's connection is done, tagged with no session.
  ASSERT_FALSE(loop.server_events.empty());
  EXPECT_EQ(loop.server_events.back().event.session, SessionId{});
  EXPECT_EQ(std::get<events::PathDone>(loop.server_events.back().event.event).path, kAttacker);

  EXPECT_EQ(server->data_path(), PathId{1});
  EXPECT_FALSE(server->suspended());
  EXPECT_TRUE(events_of<events::Resumed>(loop.server_events).empty());
  expect_data_flows(loop, stream, "after the attack");
  // And the genuine client can still resume: nothing about the secrets changed.
  reconnect(loop);
  EXPECT_EQ(events_of<events::Resumed>(loop.client_events).size(), 1u);
  expect_data_flows(loop, stream, "after a genuine resume");
}

TEST(ResumeProof, ReplayedResumeOnAnotherConnectionIsRejected) {
  Loopback loop;
  loop.auto_connect = false;
  const SessionId id = loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  const PathId second = reconnect(loop);
  ASSERT_EQ(events_of<events::Resumed>(loop.client_events).size(), 1u);
  const Bytes captured = first_frame_sent(loop, second);
  ASSERT_FALSE(captured.empty());
  const auto resumes = frames_of<wire::Resume>(captured);
  ASSERT_EQ(resumes.size(), 1u);
  EXPECT_EQ(resumes[0].session_id, id);

  // While the session is live on the second connection.
  SplitMix64 attacker(5);
  auto refuse = only_refuse(loop.raw_exchange(kAttacker, random_bytes(attacker, 32), captured));
  ASSERT_TRUE(refuse.has_value());
  EXPECT_EQ(refuse->reason, Reason::kAuthFailed);

  // And while it is suspended, waiting for its client.
  loop.close_connection(second);
  loop.pump();
  ASSERT_TRUE(loop.server_session()->suspended());
  refuse = only_refuse(loop.raw_exchange(kAttacker + 1, random_bytes(attacker, 32), captured));
  ASSERT_TRUE(refuse.has_value());
  EXPECT_EQ(refuse->reason, Reason::kAuthFailed);
  EXPECT_EQ(loop.server.stats().resumes_rejected, 2u);
  EXPECT_EQ(loop.server_session()->stats().rejected_resume_attempts, 2u);
  EXPECT_TRUE(loop.server_session()->suspended());

  loop.pump();
  loop.advance(std::chrono::seconds(1));
  ASSERT_EQ(loop.path_requests, 1u);
  loop.connect();
  loop.pump();
  EXPECT_EQ(events_of<events::Resumed>(loop.client_events).size(), 2u);
  EXPECT_EQ(loop.server.stats().resumes_accepted, 2u);
  expect_data_flows(loop, stream, "still ours");
}

TEST(ResumeProof, ProofFromTwoResumesAgoIsStale) {
  Loopback loop;
  loop.auto_connect = false;
  const SessionId id = loop.establish();
  const Secret s0 = initial_resume_secret(loop);
  const PathId second = reconnect(loop);
  const Secret s1 = ratchet_resume_secret(s0, loop.connections.at(second).keying);
  reconnect(loop);
  ASSERT_EQ(loop.server.stats().resumes_accepted, 2u);

  // The server holds generations two (current) and one (previous); zero is stale.
  SplitMix64 attacker(6);
  const Bytes keying = random_bytes(attacker, 32);
  const Bytes stale = resume_bytes(id, resume_proof(s0, Role::kClient, id, keying));
  const auto refuse = only_refuse(loop.raw_exchange(kAttacker, keying, stale));
  ASSERT_TRUE(refuse.has_value());
  EXPECT_EQ(refuse->reason, Reason::kAuthFailed);
  EXPECT_EQ(loop.server.stats().resumes_rejected, 1u);
  EXPECT_EQ(loop.server_session()->stats().rejected_resume_attempts, 1u);
  EXPECT_FALSE(loop.server_session()->suspended());

  // Control: generation one, on the same keying material, is still accepted.
  const Bytes previous = resume_bytes(id, resume_proof(s1, Role::kClient, id, keying));
  const Bytes reply = loop.raw_exchange(kAttacker + 1, keying, previous);
  const auto accepts = frames_of<wire::ResumeAccept>(reply);
  ASSERT_EQ(accepts.size(), 1u);
  EXPECT_EQ(accepts[0].proof, resume_proof(s1, Role::kServer, id, keying));
  EXPECT_EQ(loop.server.stats().resumes_accepted, 3u);
}

TEST(ResumeProof, PreviousGenerationIsAcceptedWhenTheClientMissedTheAccept) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  Session* server = loop.server_session();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  loop.close_connection(1);
  loop.pump();
  const Bytes during = to_bytes("written during the outage");
  ASSERT_TRUE(loop.client.write(stream, during, loop.now).has_value());

  // The server accepts the resume on the second connection, but its ResumeAccept never arrives.
  ASSERT_EQ(loop.path_requests, 1u);
  const PathId second = loop.connect(/*to_server=*/true, /*to_client=*/false);
  loop.pump();
  EXPECT_EQ(loop.server.stats().resumes_accepted, 1u);
  EXPECT_EQ(events_of<events::Resumed>(loop.server_events).size(), 1u);
  EXPECT_TRUE(events_of<events::Resumed>(loop.client_events).empty());
  EXPECT_EQ(read_all(*server, stream, loop.now), during);  // the optimistic replay arrived
  loop.close_connection(second);
  loop.pump();
  EXPECT_TRUE(server->suspended());

  // The client still holds the old secret; the server accepts it as the previous generation.
  loop.advance(std::chrono::seconds(1));
  ASSERT_EQ(loop.path_requests, 1u);
  loop.connect();
  loop.pump();
  EXPECT_EQ(loop.server.stats().resumes_accepted, 2u);
  EXPECT_EQ(loop.server.stats().resumes_rejected, 0u);
  ASSERT_EQ(events_of<events::Resumed>(loop.client_events).size(), 1u);
  EXPECT_EQ(events_of<events::Resumed>(loop.server_events).size(), 2u);
  EXPECT_FALSE(loop.client.suspended());
  EXPECT_FALSE(server->suspended());
  // The bytes replayed again were recognised as duplicates: delivered once.
  EXPECT_TRUE(read_all(*server, stream, loop.now).empty());
  EXPECT_EQ(server->stats().bytes_received, during.size());
  EXPECT_EQ(server->stats().duplicate_bytes_received, during.size());
  EXPECT_EQ(loop.client.stats().unacknowledged_bytes, 0u);

  // Both ends ratcheted from the same base: a further resume still authenticates.
  reconnect(loop);
  EXPECT_EQ(loop.server.stats().resumes_accepted, 3u);
  EXPECT_EQ(events_of<events::Resumed>(loop.client_events).size(), 2u);
  expect_data_flows(loop, stream, "in sync");
}

TEST(ResumeProof, ForgedResumeAcceptIsIgnoredByTheClient) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  loop.close_connection(1);
  loop.pump();
  const PathId second = loop.connect(/*to_server=*/false, /*to_client=*/true);
  loop.pump();
  SplitMix64 attacker(7);
  wire::ResumeAccept forged;
  forged.proof = random_array<32>(attacker);
  loop.client.receive(second, encode(forged), loop.now);
  EXPECT_EQ(loop.client.stats().forged_frames_ignored, 1u);
  EXPECT_EQ(loop.client.stats().resumes, 0u);
  EXPECT_TRUE(loop.client.suspended());
  EXPECT_EQ(loop.client.phase(), Phase::kOpen);
  loop.pump();
  EXPECT_TRUE(events_of<events::Resumed>(loop.client_events).empty());
  EXPECT_FALSE(loop.connections.at(second).open);  // the attempt was given up
  loop.advance(std::chrono::seconds(1));
  ASSERT_EQ(loop.path_requests, 1u);
  loop.connect();
  loop.pump();
  EXPECT_EQ(events_of<events::Resumed>(loop.client_events).size(), 1u);
}

TEST(ResumeProof, ResumeForAnotherVersionIsRefused) {
  Loopback loop;
  loop.auto_connect = false;
  const SessionId id = loop.establish();
  SplitMix64 attacker(9);
  const Bytes keying = random_bytes(attacker, 32);
  wire::Resume resume;
  resume.version = 2;
  resume.session_id = id;
  resume.proof = resume_proof(initial_resume_secret(loop), Role::kClient, id, keying);
  const auto refuse = only_refuse(loop.raw_exchange(kAttacker, keying, encode(resume)));
  ASSERT_TRUE(refuse.has_value());
  EXPECT_EQ(refuse->reason, Reason::kProtocolError);
  EXPECT_EQ(loop.server.stats().resumes_accepted, 0u);
  EXPECT_EQ(loop.server_session()->data_path(), PathId{1});
}

TEST(ResumeProof, ResumeForAnUnknownSessionGetsAStatelessReset) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  SplitMix64 attacker(10);
  const SessionId unknown = random_array<16>(attacker);
  const Bytes reply = loop.raw_exchange(kAttacker, random_bytes(attacker, 32),
                                        resume_bytes(unknown, random_array<32>(attacker)));
  const auto resets = frames_of<wire::StatelessReset>(reply);
  ASSERT_EQ(resets.size(), 1u);
  EXPECT_EQ(resets[0].session_id, unknown);
  EXPECT_EQ(resets[0].token, stateless_reset_token(loop.static_key, unknown));
  EXPECT_EQ(loop.server.stats().stateless_resets_sent, 1u);
  EXPECT_EQ(loop.server.session_count(), 1u);
}

TEST(ResumeProof, PositionsBeyondWhatWasWrittenAreRejected) {
  Loopback loop;
  loop.auto_connect = false;
  const SessionId id = loop.establish();
  Session* server = loop.server_session();
  const StreamId stream = *server->open_stream(0, loop.now);
  ASSERT_TRUE(server->write(stream, Bytes(10, std::byte{0x5a}), loop.now).has_value());
  loop.pump();
  EXPECT_EQ(read_all(loop.client, stream, loop.now).size(), 10u);

  // A correctly authenticated resume that claims bytes the server never wrote.
  const Secret s0 = initial_resume_secret(loop);
  SplitMix64 attacker(8);
  PathId next = kAttacker;
  for (const std::uint64_t offset : {std::uint64_t{50}, std::uint64_t{11}}) {
    const Bytes keying = random_bytes(attacker, 32);
    const Bytes resume = resume_bytes(id, resume_proof(s0, Role::kClient, id, keying),
                                      {{kControlStream, 0}, {stream, offset}});
    const auto refuse = only_refuse(loop.raw_exchange(next++, keying, resume));
    ASSERT_TRUE(refuse.has_value()) << "offset " << offset;
    EXPECT_EQ(refuse->reason, Reason::kProtocolError);
  }
  EXPECT_EQ(loop.server.stats().resumes_rejected, 2u);
  EXPECT_EQ(server->stats().rejected_resume_attempts, 2u);
  EXPECT_EQ(server->data_path(), PathId{1});
  EXPECT_EQ(server->stats().unacknowledged_bytes, 0u);

  // The live session is unharmed, in both directions, and its secret did not move.
  const StreamId client_stream = *loop.client.open_stream(0, loop.now);
  expect_data_flows(loop, client_stream, "unharmed");
  ASSERT_TRUE(server->write(stream, to_bytes("more"), loop.now).has_value());
  loop.pump();
  EXPECT_EQ(read_all(loop.client, stream, loop.now), to_bytes("more"));
  reconnect(loop);
  EXPECT_EQ(loop.server.stats().resumes_accepted, 1u);
}

// ---- Forged close and reset frames
// ----------------------------------------------------------------

TEST(ForgedFrames, FastCloseWithAWrongKeyIsIgnored) {
  Loopback loop;
  loop.auto_connect = false;
  const SessionId id = loop.establish();
  Session* server = loop.server_session();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  SplitMix64 attacker(10);

  // As the first frame of a new connection.
  wire::FastClose forged{id, random_array<32>(attacker), Reason::kRevoked};
  const Bytes reply = loop.raw_exchange(kAttacker, random_bytes(attacker, 32), encode(forged));
  EXPECT_TRUE(reply.empty());
  EXPECT_EQ(loop.server.stats().fast_closes_rejected, 1u);
  EXPECT_EQ(loop.server.stats().fast_closes_accepted, 0u);
  EXPECT_EQ(server->stats().forged_frames_ignored, 1u);

  // Reflected: the client's own key is not the server's.
  const SessionKeys keys = derive_session_keys(id, loop.connections.at(1).keying);
  wire::FastClose reflected{id, keys.client_close_key, Reason::kRevoked};
  loop.raw_exchange(kAttacker + 1, random_bytes(attacker, 32), encode(reflected));
  EXPECT_EQ(loop.server.stats().fast_closes_rejected, 2u);
  EXPECT_EQ(server->stats().forged_frames_ignored, 2u);

  // On the live path, in both directions.
  loop.pump();
  loop.server.receive(1, encode(forged), loop.now);
  EXPECT_EQ(server->stats().forged_frames_ignored, 3u);
  wire::FastClose to_client{id, keys.server_close_key, Reason::kRevoked};
  loop.client.receive(1, encode(to_client), loop.now);
  EXPECT_EQ(loop.client.stats().forged_frames_ignored, 1u);

  EXPECT_EQ(server->phase(), Phase::kOpen);
  EXPECT_EQ(loop.client.phase(), Phase::kOpen);
  loop.pump();
  EXPECT_TRUE(events_of<events::Closed>(loop.server_events).empty());
  EXPECT_TRUE(events_of<events::Closed>(loop.client_events).empty());
  expect_data_flows(loop, stream, "alive");
}

TEST(ForgedFrames, FastCloseForAnUnknownSessionIsRejected) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  SplitMix64 attacker(11);
  wire::FastClose forged{random_array<16>(attacker), random_array<32>(attacker), Reason::kRevoked};
  EXPECT_TRUE(loop.raw_exchange(kAttacker, random_bytes(attacker, 32), encode(forged)).empty());
  EXPECT_EQ(loop.server.stats().fast_closes_rejected, 1u);
  EXPECT_EQ(loop.server.session_count(), 1u);
}

TEST(ForgedFrames, StatelessResetWithAWrongTokenIsIgnored) {
  Loopback loop;
  loop.auto_connect = false;
  const SessionId id = loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  SplitMix64 attacker(12);
  loop.client.receive(1, encode(wire::StatelessReset{id, random_array<32>(attacker)}), loop.now);
  EXPECT_EQ(loop.client.stats().forged_frames_ignored, 1u);
  // The right token for another session id is no better.
  SessionId other = id;
  other[0] ^= std::byte{1};
  loop.client.receive(
      1, encode(wire::StatelessReset{other, stateless_reset_token(loop.static_key, other)}),
      loop.now);
  EXPECT_EQ(loop.client.stats().forged_frames_ignored, 2u);
  EXPECT_EQ(loop.client.phase(), Phase::kOpen);
  expect_data_flows(loop, stream, "not reset");
}

TEST(ForgedFrames, StatelessResetWithAWrongTokenDuringResumeFailsOnlyThatAttempt) {
  Loopback loop;
  loop.auto_connect = false;
  const SessionId id = loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  loop.close_connection(1);
  loop.pump();
  const PathId second = loop.connect(/*to_server=*/false, /*to_client=*/true);
  SplitMix64 attacker(13);
  loop.client.receive(second, encode(wire::StatelessReset{id, random_array<32>(attacker)}),
                      loop.now);
  EXPECT_EQ(loop.client.stats().forged_frames_ignored, 1u);
  EXPECT_EQ(loop.client.phase(), Phase::kOpen);
  loop.pump();
  EXPECT_TRUE(events_of<events::Closed>(loop.client_events).empty());
  loop.advance(std::chrono::seconds(1));
  ASSERT_EQ(loop.path_requests, 1u);
  loop.connect();
  loop.pump();
  EXPECT_EQ(events_of<events::Resumed>(loop.client_events).size(), 1u);
  expect_data_flows(loop, stream, "resumed after the fake reset");
}

// ---- Malformed input
// ------------------------------------------------------------------------------

Bytes header(std::uint8_t type, std::uint64_t length) {
  Bytes out;
  wire::ByteWriter writer(out);
  writer.write_u8(type);
  writer.write_varint(length);
  return out;
}

TEST(Malformed, OversizedFrameLengthIsRefusedFromTheHeaderAlone) {
  Loopback loop;
  loop.auto_connect = false;
  SplitMix64 attacker(14);
  // A length at the first frame's limit is merely incomplete: the server waits for the payload.
  const std::uint64_t limit = first_frame_payload_limit(test_config());
  EXPECT_LT(limit, std::uint64_t{1} << 20);
  const Bytes at_limit = header(0x01, limit);
  EXPECT_TRUE(loop.raw_exchange(kAttacker, random_bytes(attacker, 32), at_limit).empty());
  EXPECT_EQ(loop.server.stats().handshake_failures, 0u);
  // One byte more, a megabyte or a 1 GiB claim, is refused at once (only the header was sent).
  PathId connection = kAttacker + 1;
  for (const std::uint64_t length :
       {limit + 1, std::uint64_t{1} << 20, std::uint64_t{0x3fffffff}}) {
    const Bytes too_large = header(0x01, length);
    const auto refuse =
        only_refuse(loop.raw_exchange(connection++, random_bytes(attacker, 32), too_large));
    ASSERT_TRUE(refuse.has_value());
    EXPECT_EQ(refuse->reason, Reason::kProtocolError);
  }
  EXPECT_EQ(loop.server.stats().handshake_failures, 3u);
  EXPECT_EQ(loop.server.session_count(), 0u);
}

TEST(Malformed, OversizedFrameOnAnEstablishedPathIsAProtocolError) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  loop.server.receive(1, header(0x0a, std::uint64_t{1} << 40), loop.now);
  loop.pump();
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kProtocolError);
  EXPECT_FALSE(server_closed[0].by_peer);
  const auto client_closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].reason, Reason::kProtocolError);
  EXPECT_TRUE(client_closed[0].by_peer);
}

TEST(Malformed, WelcomeFromTheClientOnAnEstablishedPathClosesTheSession) {
  Loopback loop;
  loop.auto_connect = false;
  const SessionId id = loop.establish();
  wire::Welcome welcome;
  welcome.session_id = id;
  welcome.heartbeat_interval_ms = 1000;
  welcome.missing_heartbeats_allowed = 3;
  loop.server.receive(1, encode(welcome), loop.now);
  loop.pump();
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kProtocolError);
  EXPECT_FALSE(server_closed[0].by_peer);
  // The server told the client why with an Abort.
  const Bytes to_client = loop.sent_on(1, false);
  const auto aborts = frames_of<wire::Abort>(to_client);
  ASSERT_EQ(aborts.size(), 1u);
  EXPECT_EQ(aborts[0].reason, Reason::kProtocolError);
  const auto client_closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].reason, Reason::kProtocolError);
  EXPECT_TRUE(client_closed[0].by_peer);
  EXPECT_EQ(loop.server.session_count(), 0u);
}

TEST(Malformed, GarbageFirstFrameIsRefusedWithoutCreatingASession) {
  Loopback loop;
  loop.auto_connect = false;
  SplitMix64 attacker(15);
  // An unknown frame type without the ignorable bit.
  auto refuse = only_refuse(loop.raw_exchange(kAttacker, random_bytes(attacker, 32),
                                              Bytes{std::byte{0x7f}, std::byte{0x00}}));
  ASSERT_TRUE(refuse.has_value());
  EXPECT_EQ(refuse->reason, Reason::kProtocolError);
  // A well-formed frame that cannot open a connection.
  refuse = only_refuse(
      loop.raw_exchange(kAttacker + 1, random_bytes(attacker, 32), encode(wire::Ping{1})));
  ASSERT_TRUE(refuse.has_value());
  EXPECT_EQ(refuse->reason, Reason::kProtocolError);
  // A Hello with a truncated payload.
  Bytes truncated = header(0x01, 1);
  truncated.push_back(std::byte{0x40});  // a two-byte varint cut short
  refuse = only_refuse(loop.raw_exchange(kAttacker + 2, random_bytes(attacker, 32), truncated));
  ASSERT_TRUE(refuse.has_value());
  EXPECT_EQ(refuse->reason, Reason::kProtocolError);
  // A Hello for another protocol version.
  wire::Hello hello;
  hello.version = 2;
  hello.heartbeat_interval_ms = 1000;
  hello.missing_heartbeats_allowed = 3;
  refuse = only_refuse(loop.raw_exchange(kAttacker + 3, random_bytes(attacker, 32), encode(hello)));
  ASSERT_TRUE(refuse.has_value());
  EXPECT_EQ(refuse->reason, Reason::kProtocolError);

  EXPECT_EQ(loop.server.stats().handshake_failures, 4u);
  EXPECT_EQ(loop.server.stats().sessions_created, 0u);
  EXPECT_EQ(loop.server.session_count(), 0u);
  loop.process_events();
  for (const auto& entry : loop.server_events) {
    EXPECT_EQ(entry.event.session, SessionId{});
    EXPECT_TRUE(std::holds_alternative<events::PathDone>(entry.event.event));
  }
  EXPECT_EQ(loop.server_events.size(), 4u);
}

TEST(Malformed, SilentConnectionTimesOut) {
  SessionConfig server_config = test_config();
  server_config.handshake_timeout = std::chrono::seconds(3);
  Loopback loop(test_config(), server_config);
  loop.auto_connect = false;
  SplitMix64 attacker(16);
  EXPECT_TRUE(
      loop.raw_exchange(kAttacker, random_bytes(attacker, 32), Bytes{std::byte{0x01}}).empty());
  EXPECT_EQ(loop.server.next_deadline(), loop.now + std::chrono::seconds(3));
  loop.advance(std::chrono::seconds(3));
  EXPECT_EQ(loop.server.stats().handshake_failures, 1u);
  ASSERT_EQ(loop.server_events.size(), 1u);
  EXPECT_EQ(std::get<events::PathDone>(loop.server_events[0].event.event).path, kAttacker);
}

TEST(Malformed, StreamDataBeyondTheFlowControlWindowIsAProtocolError) {
  SessionConfig server_config = test_config();
  server_config.stream_receive_window = 64u << 10;
  Loopback loop(test_config(), server_config);
  loop.auto_connect = false;
  loop.establish();
  Session* server = loop.server_session();
  constexpr std::size_t kWindow = 256u << 10;  // the initial window both sides assume
  const Bytes payload(kWindow, std::byte{0x11});
  wire::StreamData first;
  first.stream_id = 1;
  first.open = true;
  first.data = payload;
  loop.server.receive(1, encode(first), loop.now);
  ASSERT_EQ(server->phase(), Phase::kOpen);  // exactly the window is fine
  EXPECT_EQ(server->stats().bytes_received, kWindow);

  const Bytes one(1, std::byte{0x22});
  wire::StreamData beyond;
  beyond.stream_id = 1;
  beyond.offset = kWindow;
  beyond.data = one;
  loop.server.receive(1, encode(beyond), loop.now);
  EXPECT_EQ(server->phase(), Phase::kClosed);
  loop.pump();
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kProtocolError);
  const auto client_closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].reason, Reason::kProtocolError);
  EXPECT_TRUE(client_closed[0].by_peer);
}

TEST(Malformed, StreamDataOnAStreamTheClientNeverOpenedIsAProtocolError) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  // Server-parity id (even) that the server never opened, sent by the client.
  wire::StreamData data;
  data.stream_id = 2;
  data.open = true;
  const Bytes payload = to_bytes("x");
  data.data = payload;
  loop.server.receive(1, encode(data), loop.now);
  loop.pump();
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kProtocolError);
}

TEST(Malformed, AcknowledgementOfBytesNeverWrittenIsAProtocolError) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  const StreamId stream = *loop.client.open_stream(0, loop.now);
  ASSERT_TRUE(loop.client.write(stream, Bytes(10, std::byte{7}), loop.now).has_value());
  loop.pump();
  wire::Ack ack;
  ack.entries.push_back(wire::AckEntry{stream, 11, 1u << 20});  // 10 bytes and no FIN were written
  loop.client.receive(1, encode(ack), loop.now);
  EXPECT_EQ(loop.client.phase(), Phase::kClosed);
  loop.pump();
  const auto client_closed = events_of<events::Closed>(loop.client_events);
  ASSERT_EQ(client_closed.size(), 1u);
  EXPECT_EQ(client_closed[0].reason, Reason::kProtocolError);
  EXPECT_FALSE(client_closed[0].by_peer);
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kProtocolError);
  EXPECT_TRUE(server_closed[0].by_peer);
}

TEST(Malformed, ResetOfTheControlStreamIsAProtocolError) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  const Bytes message = encode(wire::ResetStream{kControlStream, 1});
  wire::StreamData data;
  data.stream_id = kControlStream;
  data.data = message;
  loop.server.receive(1, encode(data), loop.now);
  loop.pump();
  const auto server_closed = events_of<events::Closed>(loop.server_events);
  ASSERT_EQ(server_closed.size(), 1u);
  EXPECT_EQ(server_closed[0].reason, Reason::kProtocolError);
}

TEST(Malformed, ControlStreamMessageIsDecodedAcrossFrames) {
  // Control messages are a byte stream: one split over two frames is still one message.
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  const StreamId stream = *loop.server_session()->open_stream(0, loop.now);
  loop.pump();
  ASSERT_EQ(events_of<events::StreamOpened>(loop.client_events).size(), 1u);
  const Bytes message = encode(wire::ResetStream{stream, 77});
  wire::StreamData head;
  head.stream_id = kControlStream;
  head.data = std::span(message).first(2);
  wire::StreamData tail;
  tail.stream_id = kControlStream;
  tail.offset = 2;
  tail.data = std::span(message).subspan(2);
  loop.client.receive(1, encode(head), loop.now);
  EXPECT_TRUE(events_of<events::StreamReset>(loop.client_events).empty());
  loop.client.receive(1, encode(tail), loop.now);
  loop.process_events();
  const auto resets = events_of<events::StreamReset>(loop.client_events);
  ASSERT_EQ(resets.size(), 1u);
  EXPECT_EQ(resets[0].stream, stream);
  EXPECT_EQ(resets[0].error_code, 77u);
  EXPECT_EQ(loop.client.phase(), Phase::kOpen);
}

}  // namespace
}  // namespace tether::session
