// Stateful fuzz target for the whole session core: a live client/server pair whose connections the
// fuzzer drives with a mix of genuine traffic, arbitrary bytes, time jumps, cuts, new connections
// and application calls. Checks that nothing crashes and that byte accounting stays exact.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "session/server_endpoint.hpp"
#include "session/session.hpp"
#include "tests/support/session_pair.hpp"

namespace {

using namespace tether::session;

using tether::fuzz::FixedRandom;
using Input = tether::fuzz::FuzzInput;

void check_accounting(const Session& session) {
  const auto stats = session.stats();
  if (session.phase() != Phase::kClosed &&
      stats.unacknowledged_bytes !=
          stats.bytes_written - stats.bytes_acknowledged - stats.bytes_abandoned) {
    std::abort();
  }
}

// The fuzzer's heartbeat interval: short, so that time jumps cross heartbeat and liveness
// deadlines.
constexpr Duration kHeartbeatInterval = std::chrono::seconds(1);

SessionConfig fuzz_config() {
  SessionConfig config;
  config.heartbeat_interval = kHeartbeatInterval;
  return config;
}

// A SessionPair with the default transport (PathWanted connects at once, PathDone flushes and
// closes); the fuzzer adds its own mutations on top through the sessions' public calls.
struct World : tether::testing::SessionPair {
  World()
      : SessionPair(fuzz_config(), fuzz_config(), std::make_unique<FixedRandom>(1),
                    std::make_unique<FixedRandom>(2), std::make_unique<FixedRandom>(3),
                    Time{} + std::chrono::hours(1)) {
    max_write = 64 << 10;
  }

  Session* server_session() {
    Session* found = nullptr;
    // The fuzzer keeps one client, so the server has at most one live session.
    if (client.phase() != Phase::kConnecting) found = server.find(client.id());
    return found;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input input(data, size);
  World world;
  // The sessions fuzz with the fuzzer's heartbeat, not SessionConfig's default.
  FUZZ_CHECK(world.client.heartbeat().interval == kHeartbeatInterval);
  world.drain_events();  // PathWanted -> first connection
  world.pump(8);
  std::array<std::byte, 4096> scratch{};
  for (std::size_t step = 0; step < 256 && !input.empty(); ++step) {
    const std::uint8_t operation = input.u8() % 12;
    switch (operation) {
      case 0: {  // time passes
        world.now += std::chrono::milliseconds(input.u16());
        world.fire_timers();
        world.drain_events();
        break;
      }
      case 1: {  // arbitrary bytes to the server on a live connection
        if (world.connections.empty()) break;
        const PathId id = 1 + input.u8() % world.next_connection_id();
        world.server.receive(id, input.bytes(input.u8()), world.now);
        world.drain_events();
        break;
      }
      case 2: {  // arbitrary bytes to the client
        const PathId id = 1 + input.u8() % world.next_connection_id();
        world.client.receive(id, input.bytes(input.u8()), world.now);
        world.drain_events();
        break;
      }
      case 3: {  // a stranger's connection with arbitrary first bytes
        const PathId id = world.open_stranger_connection();
        world.server.receive(id, input.bytes(1 + input.u8()), world.now);
        world.drain_events();
        break;
      }
      case 4:
        world.pump(1 + input.u8() % 16);
        break;
      case 5: {  // the client application writes
        auto stream = world.client.open_stream(input.u8() % 4, world.now);
        const auto ids = world.client.stream_ids();
        if (!ids.empty()) {
          const StreamId id = ids[input.u8() % ids.size()];
          (void)world.client.write(id, std::span(scratch).first(input.u16() % scratch.size()),
                                   world.now);
          if (input.u8() % 8 == 0) (void)world.client.finish(id, world.now);
        }
        (void)stream;
        break;
      }
      case 6: {  // both applications read and the server answers
        for (StreamId id : world.client.stream_ids())
          (void)world.client.read(id, scratch, world.now);
        if (Session* session = world.server_session()) {
          for (StreamId id : session->stream_ids()) {
            (void)session->read(id, scratch, world.now);
            (void)session->write(id, std::span(scratch).first(input.u8()), world.now);
          }
        }
        break;
      }
      case 7: {  // the transport cuts a connection
        if (world.connections.empty()) break;
        const PathId id = 1 + input.u8() % world.next_connection_id();
        world.close_connection(id);
        world.drain_events();
        break;
      }
      case 8: {  // stream reset by either side
        const auto ids = world.client.stream_ids();
        if (!ids.empty())
          world.client.reset_stream(ids[input.u8() % ids.size()], input.u8(), world.now);
        break;
      }
      case 9:
        world.client.close(world.now);
        break;
      case 10:
        if (input.u8() % 4 == 0)
          (void)world.client.fast_close(tether::wire::Reason::kShutdown, world.now);
        world.drain_events();
        break;
      case 11:
        if (input.u8() % 4 == 0)
          (void)world.client.abort(tether::wire::Reason::kApplicationAbort, world.now);
        world.drain_events();
        break;
    }
    check_accounting(world.client);
    if (Session* session = world.server_session()) check_accounting(*session);
  }
  return 0;
}
