// Session reactions to the host's network changing under a client (the runtime learns of them from
// rtnetlink): moving at once instead of waiting for heartbeats, and cutting a backoff short.
#include <gtest/gtest.h>

#include "loopback.hpp"

namespace tether::session {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test::events_of;
using test::Loopback;
using test::random_bytes;
using test::read_all;

TEST(NetworkChange, MovesAtOnceAndResumesWithEverythingExactlyOnce) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  Session* server = loop.server_session();
  ASSERT_NE(server, nullptr);
  const auto stream = loop.client.open_stream(0, loop.now);
  ASSERT_TRUE(stream);
  test::SplitMix64 random(5);
  const auto before = random_bytes(random, 5000);
  ASSERT_TRUE(loop.client.write(*stream, before, loop.now));
  loop.pump();
  loop.blackhole(1);  // the connection's address is gone: nothing crosses it any more
  const auto after = random_bytes(random, 7000);
  ASSERT_TRUE(loop.client.write(*stream, after, loop.now));
  loop.advance(milliseconds(10));
  EXPECT_FALSE(loop.client.suspended());  // heartbeats alone would take seconds
  const auto requests_before = loop.path_requests_total;

  const Time changed = loop.now;
  loop.client.on_path_network_change(1, loop.now);
  loop.process_events();
  const auto suspended = events_of<events::Suspended>(loop.client_events);
  ASSERT_EQ(suspended.size(), 1u);
  EXPECT_EQ(suspended[0].cause, SuspendCause::kNetworkChange);
  EXPECT_EQ(loop.path_requests_total, requests_before + 1);  // dialled now, without backoff

  loop.connect();
  loop.pump();
  const auto resumed = events_of<events::Resumed>(loop.client_events);
  ASSERT_EQ(resumed.size(), 1u);
  EXPECT_EQ(loop.now, changed);
  auto expected = before;
  expected.insert(expected.end(), after.begin(), after.end());
  EXPECT_EQ(read_all(*server, *stream, loop.now), expected);
}

TEST(NetworkChange, ASecondChangeWhileSuspendedDoesNotDialTwice) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  loop.client.on_path_network_change(1, loop.now);
  loop.process_events();
  const auto requests = loop.path_requests_total;
  loop.client.on_path_network_change(1, loop.now);  // repeated (netlink repeats itself)
  loop.process_events();
  EXPECT_EQ(loop.path_requests_total, requests);  // the attempt in flight is enough
  EXPECT_EQ(events_of<events::Suspended>(loop.client_events).size(), 1u);
}

TEST(NetworkChange, UnknownPathsAndServerSessionsAreIgnored) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  loop.client.on_path_network_change(99, loop.now);
  Session* server = loop.server_session();
  ASSERT_NE(server, nullptr);
  server->on_path_network_change(1, loop.now);
  loop.process_events();
  EXPECT_FALSE(loop.client.suspended());
  EXPECT_FALSE(server->suspended());
}

TEST(NetworkChange, ConnectivityAppearingCutsTheBackoffShort) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  loop.close_connection(1);
  loop.process_events();
  ASSERT_TRUE(loop.client.suspended());
  // The immediate attempt fails (no network), so the next one waits for its backoff.
  loop.client.on_path_failed(loop.now);
  loop.process_events();
  auto waiting_until = loop.client.next_deadline();
  ASSERT_TRUE(waiting_until);
  ASSERT_GT(*waiting_until, loop.now);
  const auto requests = loop.path_requests_total;

  loop.client.on_network_available(loop.now);
  ASSERT_EQ(loop.client.next_deadline(), loop.now);
  loop.client.on_timeout(loop.now);
  loop.process_events();
  EXPECT_EQ(loop.path_requests_total, requests + 1);
}

TEST(NetworkChange, ConnectivityAppearingWhileOpenChangesNothing) {
  Loopback loop;
  loop.auto_connect = false;
  loop.establish();
  const auto deadline = loop.client.next_deadline();
  loop.client.on_network_available(loop.now);
  EXPECT_EQ(loop.client.next_deadline(), deadline);
  EXPECT_FALSE(loop.client.suspended());
}

}  // namespace
}  // namespace tether::session
