// tether-simulate: runs one simulated world and prints its trace, to watch a session survive
// faults.
//   tether-simulate                 a bulk transfer across a cut, a blackhole and an address change
//   tether-simulate --seed N        the random world of property-test seed N
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "tests/sim/simulation.hpp"

int main(int argc, char** argv) {
  using namespace tether::sim;
  SimulationConfig config;
  if (argc == 3 && std::strcmp(argv[1], "--seed") == 0) {
    config = random_config(std::strtoull(argv[2], nullptr, 10));
  } else if (argc == 1) {
    config = default_config(1);
    config.latency = milliseconds(25);
    config.bytes_per_second = 250e3;
    config.pipe_capacity = 64u << 10;
    config.streams = {{0, 16u << 10, 64u << 10}, {4, 512u << 10, 256u << 10}};
    config.faults = {{milliseconds(800), FaultKind::kCut, {}},
                     {milliseconds(2000), FaultKind::kBlackhole, seconds(6)},
                     {milliseconds(6500), FaultKind::kAddressChange, {}}};
  } else {
    std::fprintf(stderr, "usage: %s [--seed N]\n", argv[0]);
    return 2;
  }
  const auto result = run_simulation(config);
  std::printf("%s", result.log.c_str());
  std::printf(
      "client: %llu bytes written, %llu replayed, %llu resumes; server application verified %llu "
      "bytes\n",
      static_cast<unsigned long long>(result.client.bytes_written),
      static_cast<unsigned long long>(result.client.bytes_replayed),
      static_cast<unsigned long long>(result.client.resumes),
      static_cast<unsigned long long>(result.server.bytes_delivered));
  std::printf("%s\n", result.violations.empty() ? "every property held" : "PROPERTY VIOLATED");
  return result.violations.empty() ? 0 : 1;
}
