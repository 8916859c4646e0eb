// The property test: random streams under random faults, over many seeds. Every byte is delivered
// exactly once and in order, or both sides end with an explicit reason and an exact count of bytes
// the peer never acknowledged; no seed may hang.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>

#include "tests/sim/simulation.hpp"

namespace tether::sim {
namespace {

constexpr std::uint64_t kShards = 10;
constexpr std::uint64_t kSeedsPerShard = 1000;  // 10,000 seeds in the default run

std::uint64_t seeds_per_shard() {
  if (const char* override_count = std::getenv("TETHER_PROPERTY_SEEDS_PER_SHARD")) {
    return std::strtoull(override_count, nullptr, 10);
  }
  return kSeedsPerShard;
}

class PropertyTest : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(PropertyTest, ExactlyOnceOrExplicitEnd) {
  const std::uint64_t shard = GetParam();
  const std::uint64_t count = seeds_per_shard();
  std::map<std::string, std::uint64_t> outcomes;
  std::uint64_t failures = 0;
  for (std::uint64_t index = 0; index < count; ++index) {
    const std::uint64_t seed = shard * 1'000'000 + index + 1;
    const auto result = run_simulation(random_config(seed));
    const std::string outcome =
        result.client.closed ? std::string(wire::to_string(result.client.closed->reason)) : "none";
    ++outcomes[outcome];
    if (!result.violations.empty()) {
      ++failures;
      if (failures <= 3) {
        ADD_FAILURE() << "seed " << seed << " violated: " << result.violations.front()
                      << "\nreplay: TETHER_SIMULATION_SEED=" << seed
                      << " ./tests/sim/property_test --gtest_filter='Replay.*'\n"
                      << result.log;
      }
    }
  }
  std::string summary;
  for (const auto& [outcome, number] : outcomes)
    summary += outcome + "=" + std::to_string(number) + " ";
  std::printf("shard %llu: %llu seeds, %llu failures; client outcomes: %s\n",
              static_cast<unsigned long long>(shard), static_cast<unsigned long long>(count),
              static_cast<unsigned long long>(failures), summary.c_str());
  EXPECT_EQ(failures, 0u);
  // Most worlds must survive: shutdown is the outcome of every seed whose faults stop short of a
  // server restart or an outage longer than the linger time.
  EXPECT_GT(outcomes["shutdown"], count / 2);
}

INSTANTIATE_TEST_SUITE_P(Seeds, PropertyTest, ::testing::Range<std::uint64_t>(0, kShards));

// Replays one seed with its trace: TETHER_SIMULATION_SEED=N ./property_test
// --gtest_filter='Replay.*'
TEST(Replay, OneSeedFromTheEnvironment) {
  const char* seed_text = std::getenv("TETHER_SIMULATION_SEED");
  if (seed_text == nullptr) GTEST_SKIP() << "set TETHER_SIMULATION_SEED to replay a seed";
  const auto result = run_simulation(random_config(std::strtoull(seed_text, nullptr, 10)));
  std::printf("%s", result.log.c_str());
  EXPECT_TRUE(result.violations.empty());
}

}  // namespace
}  // namespace tether::sim
