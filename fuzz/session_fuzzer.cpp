// Stateful fuzz target for the whole session core: a live client/server pair whose connections the
// fuzzer drives with a mix of genuine traffic, arbitrary bytes, time jumps, cuts, new connections
// and application calls. Checks that nothing crashes and that byte accounting stays exact.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <span>
#include <vector>

#include "fuzz_input.hpp"
#include "session/server_endpoint.hpp"
#include "session/session.hpp"

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

struct World {
  SessionConfig config;
  FixedRandom client_random{1};
  FixedRandom server_random{2};
  Secret static_key{};
  Time now = Time{} + std::chrono::hours(1);
  ServerEndpoint server{config, static_key, server_random};
  Session client{config, client_random, now};
  std::map<PathId, bool> live;  // connections both sides know
  PathId next_id = 1;

  World() { config.heartbeat_interval = std::chrono::seconds(1); }

  void connect(std::span<const std::byte> first_bytes_override = {}) {
    const PathId id = next_id++;
    std::array<std::byte, 32> keying{};
    keying[0] = static_cast<std::byte>(id);
    server.accept(id, keying, now);
    if (!first_bytes_override.empty()) {
      server.receive(id, first_bytes_override, now);
      return;
    }
    client.add_path(id, keying, now);
    live[id] = true;
  }

  void exchange(std::size_t rounds) {
    for (std::size_t round = 0; round < rounds; ++round) {
      bool moved = false;
      for (auto& [id, up] : live) {
        if (!up) continue;
        std::vector<std::byte> buffer;
        if (client.take_outgoing(id, buffer, 64 << 10, now) > 0) {
          server.receive(id, buffer, now);
          moved = true;
        }
        buffer.clear();
        if (server.take_outgoing(id, buffer, 64 << 10, now) > 0) {
          client.receive(id, buffer, now);
          moved = true;
        }
      }
      drain();
      if (!moved) break;
    }
  }

  void drain() {
    while (auto event = client.poll_event()) {
      if (std::holds_alternative<events::PathWanted>(*event)) connect();
      if (const auto* done = std::get_if<events::PathDone>(&*event)) close_connection(done->path);
    }
    while (auto event = server.poll_event()) {
      if (const auto* done = std::get_if<events::PathDone>(&event->event))
        close_connection(done->path);
    }
  }

  void close_connection(PathId id) {
    live[id] = false;
    client.on_path_closed(id, now);
    server.on_connection_closed(id, now);
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
  world.drain();  // PathWanted -> first connection
  world.exchange(8);
  std::array<std::byte, 4096> scratch{};
  for (std::size_t step = 0; step < 256 && !input.empty(); ++step) {
    const std::uint8_t operation = input.u8() % 12;
    switch (operation) {
      case 0: {  // time passes
        world.now += std::chrono::milliseconds(input.u16());
        world.client.on_timeout(world.now);
        world.server.on_timeout(world.now);
        world.drain();
        break;
      }
      case 1: {  // arbitrary bytes to the server on a live connection
        if (world.live.empty()) break;
        const PathId id = 1 + input.u8() % world.next_id;
        world.server.receive(id, input.bytes(input.u8()), world.now);
        world.drain();
        break;
      }
      case 2: {  // arbitrary bytes to the client
        const PathId id = 1 + input.u8() % world.next_id;
        world.client.receive(id, input.bytes(input.u8()), world.now);
        world.drain();
        break;
      }
      case 3:  // a stranger's connection with arbitrary first bytes
        world.connect(input.bytes(1 + input.u8()));
        world.drain();
        break;
      case 4:
        world.exchange(1 + input.u8() % 16);
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
        if (world.live.empty()) break;
        const PathId id = 1 + input.u8() % world.next_id;
        world.close_connection(id);
        world.drain();
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
        world.drain();
        break;
      case 11:
        if (input.u8() % 4 == 0)
          (void)world.client.abort(tether::wire::Reason::kApplicationAbort, world.now);
        world.drain();
        break;
    }
    check_accounting(world.client);
    if (Session* session = world.server_session()) check_accounting(*session);
  }
  return 0;
}
