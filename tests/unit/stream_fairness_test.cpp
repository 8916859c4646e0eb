// The session-wide bound on unacknowledged bytes keeps room for streams with little outstanding:
// a bulk stream that keeps the window full cannot starve a new or interactive stream.
#include <gtest/gtest.h>

#include "loopback.hpp"

namespace tether::session {
namespace {

using test::Loopback;
using test::random_bytes;
using test::read_all;

TEST(StreamFairness, ABulkStreamLeavesRoomForAnInteractiveOne) {
  Loopback loop;
  loop.establish();
  const auto window = test::test_config().max_unacknowledged_bytes;
  const auto bulk = loop.client.open_stream(0, loop.now);
  ASSERT_TRUE(bulk);
  test::SplitMix64 random(3);
  const auto chunk = random_bytes(random, 64 * 1024);
  std::size_t accepted = 0;
  for (;;) {
    auto written = loop.client.write(*bulk, chunk, loop.now);
    if (!written) {
      EXPECT_EQ(written.error(), StreamError::kWouldBlock);
      break;
    }
    accepted += *written;
    ASSERT_LE(accepted, window);
  }
  // The bulk stream stops short of the bound by the reserve.
  EXPECT_EQ(accepted, window - window / kInteractiveReserveDivisor);

  const auto interactive = loop.client.open_stream(0, loop.now);
  ASSERT_TRUE(interactive);
  const auto keystrokes = test::to_bytes("ls -l\n");
  auto written = loop.client.write(*interactive, keystrokes, loop.now);
  ASSERT_TRUE(written);
  EXPECT_EQ(*written, keystrokes.size());
  // The bulk stream still may not take the reserve.
  EXPECT_FALSE(loop.client.write(*bulk, chunk, loop.now));

  loop.pump();
  Session* server = loop.server_session();
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(read_all(*server, *interactive, loop.now), keystrokes);
  std::size_t bulk_received = 0;
  for (int round = 0; round < 100 && bulk_received < accepted; ++round) {
    bulk_received += read_all(*server, *bulk, loop.now).size();  // per-stream credit: read, pump
    loop.pump();
  }
  EXPECT_EQ(bulk_received, accepted);
}

TEST(StreamFairness, ALoneSmallStreamMayUseTheWholeWindow) {
  Loopback loop;
  loop.establish();
  const auto window = test::test_config().max_unacknowledged_bytes;
  const auto reserve = window / kInteractiveReserveDivisor;
  const auto stream = loop.client.open_stream(0, loop.now);
  ASSERT_TRUE(stream);
  test::SplitMix64 random(4);
  // Below the reserve a stream is "small": a write that crosses the threshold is accepted whole
  // while the session-wide bound allows it.
  const auto first = random_bytes(random, reserve - 1);
  ASSERT_EQ(loop.client.write(*stream, first, loop.now).value(), first.size());
  const auto second = random_bytes(random, 2 * reserve);
  EXPECT_EQ(loop.client.write(*stream, second, loop.now).value(), second.size());
}

}  // namespace
}  // namespace tether::session
