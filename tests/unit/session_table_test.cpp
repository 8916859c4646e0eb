// SessionTable: sessions by id, counts per source, and the touched list (each session once).
#include <gtest/gtest.h>

#include <memory>
#include <unordered_set>

#include "loopback.hpp"
#include "session/session_table.hpp"

namespace tether::session {
namespace {

SessionId id_of(std::uint8_t value) {
  SessionId id{};
  id[15] = static_cast<std::byte>(value);
  return id;
}

struct Fixture {
  std::unique_ptr<Session> session() {
    return std::make_unique<Session>(test::test_config(), random, Time{});
  }
  test::SplitMix64 random{3};
  SessionTable table;
};

TEST(SessionTable, FindsByIdAndCountsPerSource) {
  Fixture fixture;
  fixture.table.insert(id_of(1), fixture.session(), "192.0.2.1");
  fixture.table.insert(id_of(2), fixture.session(), "192.0.2.1");
  fixture.table.insert(id_of(3), fixture.session(), "192.0.2.2");
  EXPECT_EQ(fixture.table.size(), 3u);
  EXPECT_EQ(fixture.table.count_from("192.0.2.1"), 2u);
  EXPECT_EQ(fixture.table.count_from("192.0.2.2"), 1u);
  EXPECT_EQ(fixture.table.count_from("192.0.2.3"), 0u);
  ASSERT_NE(fixture.table.find(id_of(2)), nullptr);
  EXPECT_EQ(fixture.table.find(id_of(2))->source, "192.0.2.1");
  EXPECT_EQ(fixture.table.find(id_of(4)), nullptr);
  EXPECT_EQ(fixture.table.ids(), (std::vector<SessionId>{id_of(1), id_of(2), id_of(3)}));
  fixture.table.erase(id_of(1));
  fixture.table.erase(id_of(9));  // unknown: nothing happens
  EXPECT_EQ(fixture.table.size(), 2u);
  EXPECT_EQ(fixture.table.count_from("192.0.2.1"), 1u);
  fixture.table.erase(id_of(2));
  EXPECT_EQ(fixture.table.count_from("192.0.2.1"), 0u);
}

TEST(SessionTable, ListsATouchedSessionOnceUntilTaken) {
  Fixture fixture;
  auto& first = fixture.table.insert(id_of(1), fixture.session(), "");
  auto& second = fixture.table.insert(id_of(2), fixture.session(), "");
  fixture.table.touch(second);
  fixture.table.touch(first);
  fixture.table.touch(second);
  EXPECT_EQ(fixture.table.touched_count(), 2u);
  std::vector<SessionId> touched;
  fixture.table.take_touched(touched);
  EXPECT_EQ(touched, (std::vector<SessionId>{id_of(2), id_of(1)}));
  EXPECT_EQ(fixture.table.touched_count(), 0u);
  fixture.table.touch(first);  // listed again after it was taken
  fixture.table.erase(id_of(1));
  fixture.table.take_touched(touched);
  EXPECT_EQ(touched, (std::vector<SessionId>{id_of(1)}));  // erased since: find() says so
  EXPECT_EQ(fixture.table.find(id_of(1)), nullptr);
}

TEST(SessionTable, HashUsesEveryByte) {
  // Ids that differ only in their last bytes (a counter-like generator) hash apart.
  std::unordered_set<std::size_t> hashes;
  for (int value = 0; value < 256; ++value)
    hashes.insert(SessionIdHash{}(id_of(static_cast<std::uint8_t>(value))));
  EXPECT_EQ(hashes.size(), 256u);
}

}  // namespace
}  // namespace tether::session
