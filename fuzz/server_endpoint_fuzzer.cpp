// Stateful fuzz target for the server side: a ServerEndpoint driven by hostile clients. The input
// chooses connections, first frames built with the codec (Hello, Resume with a correct or forged
// proof, FastClose), in-session frames with edge values (Ack, StreamData, control messages, Ping),
// raw bytes, repetitions (floods), time steps, slow reads, transport closes and the server
// application's calls. The harness plays the runtime (it flushes and closes a connection on
// PathDone) and a client that decodes everything the server sends. After every step it checks:
// the endpoint's events are well formed, every session it lists exists and accounts its bytes
// exactly, the server's output decodes, respects the client's flow-control windows and proves the
// resume correctly, and what it queues besides stream data stays proportional to what it received
// (no amplification). AddressSanitizer catches the rest (out-of-bounds, use after free).
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "session/key_schedule.hpp"
#include "session/server_endpoint.hpp"
#include "session/session.hpp"
#include "wire/codec.hpp"

namespace {

using namespace tether::session;
namespace wire = tether::wire;

// TETHER_FUZZ_TRACE=1 prints each step and each frame the server sends (to read what an input
// does, e.g. a crash libFuzzer found).
const bool kTrace = std::getenv("TETHER_FUZZ_TRACE") != nullptr;

using tether::fuzz::FixedRandom;

class Input : public tether::fuzz::FuzzInput {
 public:
  using FuzzInput::FuzzInput;
  // A varint value: mostly the edges of the encoding and of tether's limits, sometimes any.
  std::uint64_t edge() {
    static constexpr std::uint64_t kEdges[] = {
        0,
        1,
        2,
        3,
        63,
        64,
        255,
        16383,
        16384,
        65535,
        kInitialWindow - 1,
        kInitialWindow,
        kInitialWindow + 1,
        1u << 20,
        (1u << 20) + 1,
        (std::uint64_t{1} << 30) - 1,
        std::uint64_t{1} << 30,
        (std::uint64_t{1} << 32) - 1,
        wire::kMaxVarint - 2,
        wire::kMaxVarint - 1,
        wire::kMaxVarint,  // "released": see PROTOCOL.md, acknowledgement space
    };
    const std::uint8_t choice = u8();
    if (choice < 224) return kEdges[choice % std::size(kEdges)];
    if (choice < 240) return choice - 224u + 4u;
    std::uint64_t value = 0;
    for (int index = 0; index < 8; ++index) value = value << 8 | u8();
    return value & wire::kMaxVarint;
  }

  static constexpr std::uint64_t kInitialWindow = 256u << 10;
};

// What a client knows of one of its sessions.
struct ClientSession {
  Secret resume_secret{};
  Secret server_close_key{};
  std::uint64_t control_offset = 0;        // the client's next control-stream offset
  std::uint64_t next_stream = 1;           // the client's next stream id
  std::map<StreamId, std::uint64_t> sent;  // client streams: next offset
  // Every stream the server sent on: what arrived (acknowledgement space, FIN included) and the
  // window the client advertised.
  struct Received {
    std::uint64_t offset = 0;
    std::uint64_t window = Input::kInitialWindow;
  };
  std::map<StreamId, Received> received;
  // Bytes the harness did not build itself (raw bytes, frames before it knew the session) reached
  // the session: they may have raised windows behind its back, so flow control is not checked.
  bool tainted = false;
};

// One transport connection as the harness sees it.
struct Connection {
  std::vector<std::byte> keying;
  std::optional<SessionId> session;   // set by Hello/Welcome or Resume
  std::optional<SessionId> resuming;  // Resume sent, ResumeAccept not seen yet
  Secret resume_secret{};             // the secret that Resume's proof used
  bool first_frame_sent = false;
  bool tainted = false;  // see ClientSession::tainted; passed on once the session is known
  bool done = false;     // PathDone seen
  std::vector<std::byte> inbound;     // server bytes not decoded yet
  std::vector<std::byte> last_frame;  // for repetitions
  std::uint64_t bytes_in = 0;         // fed to the server
  std::uint64_t control_out = 0;      // server bytes other than data of streams != 0
};

// Server output per byte received, besides stream data (which flow control bounds): a 5-byte
// StreamData on a released stream earns a 10-byte Ack entry; a Ping earns a Pong of its size.
constexpr std::uint64_t kAmplification = 4;
constexpr std::size_t kMaxConnections = 64;        // accepted over one input
constexpr std::size_t kMaxFloodBytes = 64u << 10;  // per input, over all repetitions

struct World {
  SessionConfig config = make_config();
  // Output a connection may get besides what its own bytes ask for: the Welcome or ResumeAccept
  // (a position for every stream), the acknowledgement of every stream after a resume, heartbeats,
  // the server application's control messages.
  const std::uint64_t output_allowance = (64u << 10) + 40 * (2 * config.max_streams + 1);
  FixedRandom random{7};
  Secret static_key{};
  Time now = Time{} + std::chrono::hours(1);
  ServerEndpoint server{config, static_key, random};
  std::map<PathId, Connection> connections;
  std::map<SessionId, ClientSession> clients;
  std::set<PathId> path_done_seen;
  PathId next_id = 1;
  std::size_t flooded = 0;
  std::array<std::byte, 4096> scratch{};

  static SessionConfig make_config() {
    SessionConfig config;
    config.max_unacknowledged_bytes = 256u << 10;  // small enough for WouldBlock to happen
    config.linger = std::chrono::seconds(60);
    return config;
  }

  // One of the live connections, or null when there is none.
  Connection* pick(Input& input) {
    std::vector<Connection*> live;
    for (auto& [id, connection] : connections) {
      if (!connection.done) live.push_back(&connection);
    }
    if (live.empty()) return nullptr;
    return live[input.u8() % live.size()];
  }
  PathId id_of(const Connection& connection) const {
    for (const auto& [id, entry] : connections) {
      if (&entry == &connection) return id;
    }
    return 0;
  }

  void accept() {
    if (connections.size() >= kMaxConnections) return;  // over the whole input
    const PathId id = next_id++;
    Connection connection;
    connection.keying.assign(32, std::byte{0x5a});
    for (std::size_t index = 0; index < 8; ++index)
      connection.keying[index] = static_cast<std::byte>(id >> (8 * index));
    server.accept(id, connection.keying, now);
    connections.emplace(id, std::move(connection));
  }

  void send(Connection& connection, std::vector<std::byte> bytes) {
    if (bytes.empty()) return;
    connection.first_frame_sent = true;
    connection.bytes_in += bytes.size();
    server.receive(id_of(connection), bytes, now);
    connection.last_frame = std::move(bytes);
  }

  // g++ 12 misreads the copy below, once send() is inlined, as freeing a pointer into the input (a
  // false -Wfree-nonheap-object; AddressSanitizer checks the real frees).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#endif
  void send_raw(Connection& connection, std::span<const std::byte> bytes) {
    connection.tainted = true;
    if (ClientSession* client = client_of(connection)) client->tainted = true;
    send(connection, std::vector<std::byte>(bytes.begin(), bytes.end()));
  }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

  ClientSession* client_of(const Connection& connection) {
    if (!connection.session) return nullptr;
    auto it = clients.find(*connection.session);
    return it == clients.end() ? nullptr : &it->second;
  }

  // ---- the client reading what the server sent

  void take(PathId id, Connection& connection, std::size_t max_bytes) {
    std::vector<std::byte> out;
    server.take_outgoing(id, out, max_bytes, now);
    connection.inbound.insert(connection.inbound.end(), out.begin(), out.end());
    decode(connection);
  }

  void decode(Connection& connection) {
    wire::DecodeLimits limits;
    limits.max_payload = 16u << 20;
    limits.max_list_entries = 1u << 20;
    std::size_t offset = 0;
    while (offset < connection.inbound.size()) {
      auto decoded = wire::decode_frame(std::span(connection.inbound).subspan(offset), limits);
      FUZZ_CHECK(decoded.has_value());  // the server only ever sends well-formed frames
      if (!decoded->has_value()) break;
      const std::size_t consumed = (*decoded)->consumed;
      const auto* data = std::get_if<wire::StreamData>(&(*decoded)->frame);
      if (data == nullptr || data->stream_id == kControlStream) connection.control_out += consumed;
      on_server_frame(connection, (*decoded)->frame);
      offset += consumed;
    }
    connection.inbound.erase(connection.inbound.begin(),
                             connection.inbound.begin() + static_cast<std::ptrdiff_t>(offset));
    // Everything but stream data is in proportion to what the client sent.
    FUZZ_CHECK(connection.control_out <= output_allowance + kAmplification * connection.bytes_in);
  }

  void on_server_frame(Connection& connection, const wire::Frame& frame) {
    if (kTrace) {
      std::fprintf(stderr, "  server -> connection %llu: %s\n",
                   static_cast<unsigned long long>(id_of(connection)),
                   std::string(wire::to_string(wire::frame_type(frame))).c_str());
    }
    if (const auto* welcome = std::get_if<wire::Welcome>(&frame)) {
      FUZZ_CHECK(!connection.session.has_value());
      FUZZ_CHECK(welcome->session_id != SessionId{});
      const SessionKeys keys = derive_session_keys(welcome->session_id, connection.keying);
      ClientSession client;
      client.resume_secret = keys.resume_secret;
      client.server_close_key = keys.server_close_key;
      client.tainted = connection.tainted;
      clients[welcome->session_id] = client;
      connection.session = welcome->session_id;
      return;
    }
    if (const auto* accept = std::get_if<wire::ResumeAccept>(&frame)) {
      FUZZ_CHECK(connection.resuming.has_value());
      ClientSession& client = clients.at(*connection.resuming);
      // The server proves the resume with the secret the client proved it with.
      const Secret expected = resume_proof(connection.resume_secret, Role::kServer,
                                           *connection.resuming, connection.keying);
      FUZZ_CHECK(accept->proof == expected);
      client.resume_secret = ratchet_resume_secret(connection.resume_secret, connection.keying);
      client.tainted = client.tainted || connection.tainted;
      connection.session = connection.resuming;
      connection.resuming.reset();
      return;
    }
    const auto* data = std::get_if<wire::StreamData>(&frame);
    if (data == nullptr) return;
    ClientSession* client = client_of(connection);
    FUZZ_CHECK(client != nullptr);  // stream data only flows in a session
    auto& received = client->received[data->stream_id];
    const std::uint64_t end = data->offset + data->data.size();
    // The server never sends beyond the window the client advertised (the control stream has none).
    FUZZ_CHECK(client->tainted || data->stream_id == kControlStream || end <= received.window);
    received.offset = std::max(received.offset, end + (data->fin ? 1 : 0));
  }

  // ---- the runtime

  void drain() {
    for (int rounds = 0; rounds < 64; ++rounds) {
      std::vector<PathId> finished;
      while (auto event = server.poll_event()) {
        const auto* done = std::get_if<events::PathDone>(&event->event);
        // Only a connection that never joined a session has events without a session id: its
        // PathDone.
        if (event->session == SessionId{}) FUZZ_CHECK(done != nullptr);
        if (done == nullptr) continue;
        FUZZ_CHECK(connections.contains(done->path));
        FUZZ_CHECK(path_done_seen.insert(done->path).second);  // once per connection
        finished.push_back(done->path);
      }
      if (finished.empty()) return;
      for (const PathId id : finished) {
        Connection& connection = connections.at(id);
        take(id, connection, std::numeric_limits<std::size_t>::max());  // flush, then close
        connection.done = true;
        server.on_connection_closed(id, now);
      }
    }
  }

  void timeout() {
    const auto deadline = server.next_deadline();
    if (deadline && *deadline <= now) server.on_timeout(now);
  }

  void check() {
    for (const SessionId& id : server.session_ids()) {
      const Session* session = server.find(id);
      FUZZ_CHECK(session != nullptr);
      FUZZ_CHECK(session->role() == Role::kServer);
      const auto stats = session->stats();
      if (session->phase() != Phase::kClosed) {
        FUZZ_CHECK(stats.unacknowledged_bytes ==
                   stats.bytes_written - stats.bytes_acknowledged - stats.bytes_abandoned);
        FUZZ_CHECK(stats.unacknowledged_bytes <= config.max_unacknowledged_bytes);
      }
      FUZZ_CHECK(stats.open_streams <= 2 * config.max_streams + 1);
    }
    FUZZ_CHECK(server.session_count() <= server.stats().sessions_created);
  }

  // ---- the hostile client's frames

  // A stream id for a frame: the control stream, one the client knows of, a small or an edge one.
  static StreamId pick_stream(Input& input, const ClientSession* client) {
    switch (input.u8() % 4) {
      case 0:
        return kControlStream;
      case 1:
        if (client != nullptr && !client->received.empty()) {
          auto it = client->received.begin();
          std::advance(it, input.u8() % client->received.size());
          return it->first;
        }
        return 1;
      case 2:
        return input.u8() % 8u;
      default:
        return input.edge();
    }
  }

  // An acknowledged offset: the released mark, what arrived (give or take one), or an edge value.
  static std::uint64_t acknowledgement(Input& input, const ClientSession* client, StreamId stream) {
    switch (input.u8() % 4) {
      case 0:
        return wire::kMaxVarint;
      case 1: {
        std::uint64_t received = 0;
        if (client != nullptr) {
          if (auto it = client->received.find(stream); it != client->received.end())
            received = it->second.offset;
        }
        return received + input.u8() % 3;
      }
      default:
        return input.edge();
    }
  }

  std::vector<std::byte> session_frame(Input& input, Connection& connection) {
    ClientSession* client = client_of(connection);
    std::vector<std::byte> bytes;
    switch (input.u8() % 9) {
      case 0:
        wire::encode_frame(wire::Ping{input.edge()}, bytes);
        break;
      case 1:
        wire::encode_frame(wire::Pong{input.edge()}, bytes);
        break;
      case 2: {  // Ack: any stream, any offset (2^62-1 releases), any window
        wire::Ack ack;
        const std::size_t count = 1 + input.u8() % 4;
        for (std::size_t index = 0; index < count; ++index) {
          wire::AckEntry entry;
          entry.stream_id = pick_stream(input, client);
          entry.received_offset = acknowledgement(input, client, entry.stream_id);
          entry.window_limit = input.edge();
          ack.entries.push_back(entry);
          if (client == nullptr) {
            connection.tainted = true;
          } else if (entry.stream_id != kControlStream) {
            auto& received = client->received[entry.stream_id];
            received.window = std::max(received.window, entry.window_limit);
          }
        }
        wire::encode_frame(ack, bytes);
        break;
      }
      case 3: {  // Ack as a good client sends it: what arrived, a window ahead
        if (client == nullptr) break;
        wire::Ack ack;
        for (auto& [stream, received] : client->received) {
          received.window = std::max(received.window, received.offset + Input::kInitialWindow);
          ack.entries.push_back(wire::AckEntry{stream, received.offset, received.window});
        }
        if (!ack.entries.empty()) wire::encode_frame(ack, bytes);
        break;
      }
      case 4: {  // StreamData on a stream of the client's: new, continued, finished
        if (client == nullptr) break;
        const std::uint8_t flags = input.u8();
        StreamId stream = client->next_stream;
        if ((flags & 1) == 0 && !client->sent.empty()) {
          auto it = client->sent.begin();
          std::advance(it, input.u8() % client->sent.size());
          stream = it->first;
        }
        const bool opening = !client->sent.contains(stream);
        if (opening) client->next_stream += 2;
        const std::uint64_t offset = client->sent[stream];
        wire::StreamData data;
        data.stream_id = stream;
        data.offset = offset;
        data.open = opening;
        data.fin = (flags & 2) != 0;
        data.priority = input.u8() % 4;
        data.data = std::span(scratch).first(input.u16() % 2048);
        client->sent[stream] = offset + data.data.size();
        wire::encode_frame(data, bytes);
        break;
      }
      case 5: {  // StreamData with any fields
        wire::StreamData data;
        data.stream_id = input.u8() < 200 ? input.u8() % 16 : input.edge();
        data.offset = input.edge();
        const std::uint8_t flags = input.u8();
        data.open = (flags & 1) != 0;
        data.fin = (flags & 2) != 0;
        data.priority = flags >> 2;
        data.data = std::span(scratch).first(input.u8());
        if (data.offset > wire::kMaxVarint - data.data.size()) data.offset = 0;
        wire::encode_frame(data, bytes);
        break;
      }
      case 6: {  // a control message on stream 0, at the client's offset (or any)
        std::vector<std::byte> message;
        switch (input.u8() % 5) {
          case 0:
            wire::encode_frame(wire::ResetStream{input.u8() % 16u, input.edge()}, message);
            break;
          case 1:
            wire::encode_frame(wire::Close{wire::Reason::kShutdown}, message);
            break;
          case 2:
            wire::encode_frame(wire::ResetStream{input.edge(), 0}, message);
            break;
          case 3:
            message.assign({std::byte{0xa1}, std::byte{0}});  // an ignorable type, no payload
            break;
          default: {
            auto raw = input.bytes(input.u8() % 16);
            message.assign(raw.begin(), raw.end());
            break;
          }
        }
        const bool at_offset = client != nullptr && input.u8() % 8 != 0;
        wire::StreamData data;
        data.stream_id = kControlStream;
        data.offset = at_offset ? client->control_offset : input.edge();
        data.data = message;
        if (data.offset > wire::kMaxVarint - data.data.size()) data.offset = 0;
        if (at_offset) client->control_offset += message.size();
        wire::encode_frame(data, bytes);
        break;
      }
      case 7: {
        const auto reason = static_cast<wire::Reason>(input.u8() % (wire::kMaxReason + 1));
        wire::encode_frame(wire::Abort{reason, (input.u8() & 1) != 0}, bytes);
        break;
      }
      default: {  // an ignorable frame of an unknown type
        const auto payload = input.bytes(input.u8() % 32);
        const auto type = static_cast<std::byte>(0x80 | input.u8());
        bytes.resize(2 + payload.size());
        bytes[0] = type;
        bytes[1] = static_cast<std::byte>(payload.size());
        std::copy(payload.begin(), payload.end(), bytes.begin() + 2);
        break;
      }
    }
    return bytes;
  }

  // A first frame; on a connection that already sent one it is just another frame (which the
  // session takes as a protocol error) and the harness learns nothing from the answer.
  void first_frame(Input& input, Connection& connection) {
    const bool first = !connection.first_frame_sent;
    std::vector<std::byte> bytes;
    auto send_first = [&](const wire::Frame& frame) {
      wire::encode_frame(frame, bytes);
      send(connection, std::move(bytes));
    };
    switch (input.u8() % 4) {
      case 0:
      case 1: {
        wire::Hello hello;
        const std::uint8_t choice = input.u8();
        hello.version = choice < 240 ? wire::kProtocolVersion : input.edge();
        hello.capabilities = input.u8();
        hello.heartbeat_interval_ms = input.u8() < 128 ? input.u16() : input.edge();
        hello.missing_heartbeats_allowed = input.u8() < 128 ? input.u8() % 32 : input.edge();
        send_first(hello);
        break;
      }
      case 2: {  // Resume of a session the client has (with a correct or forged proof) or not
        wire::Resume resume;
        resume.session_id[0] = std::byte{input.u8()};
        const bool known = !clients.empty() && input.u8() % 8 != 0;
        if (known) {
          auto it = clients.begin();
          std::advance(it, input.u8() % clients.size());
          resume.session_id = it->first;
          resume.proof =
              resume_proof(it->second.resume_secret, Role::kClient, it->first, connection.keying);
          if (input.u8() % 8 == 0) resume.proof[input.u8() % 32] ^= std::byte{1};
          for (const auto& [stream, received] : it->second.received) {
            resume.received.push_back({stream, received.offset});
          }
          if (first) {
            connection.resuming = it->first;
            connection.resume_secret = it->second.resume_secret;
          }
        }
        const std::size_t extra = input.u8() % 4;
        for (std::size_t index = 0; index < extra; ++index)
          resume.received.push_back({input.edge(), input.edge()});
        send_first(resume);
        break;
      }
      default: {  // FastClose as a first frame, with the right key or not
        wire::FastClose close;
        if (!clients.empty()) {
          auto it = clients.begin();
          std::advance(it, input.u8() % clients.size());
          close.session_id = it->first;
          if (input.u8() % 4 != 0) close.key = it->second.server_close_key;
        }
        close.reason = static_cast<wire::Reason>(input.u8() % (wire::kMaxReason + 1));
        send_first(close);
        break;
      }
    }
  }

  // ---- the server application (what ServerTunnel does with a session)

  void application(Input& input) {
    const auto ids = server.session_ids();
    if (ids.empty()) return;
    Session* session = server.find(ids[input.u8() % ids.size()]);
    if (session == nullptr) return;
    const auto streams = session->stream_ids();
    const StreamId stream = streams.empty() ? 0 : streams[input.u8() % streams.size()];
    switch (input.u8() % 8) {
      case 0:
        (void)session->open_stream(input.u8() % 4, now);
        break;
      case 1:
        if (!streams.empty())
          (void)session->write(stream, std::span(scratch).first(input.u16() % scratch.size()), now);
        break;
      case 2:
        for (const StreamId id : streams) (void)session->read(id, scratch, now);
        break;
      case 3:
        if (!streams.empty()) (void)session->finish(stream, now);
        break;
      case 4:
        if (!streams.empty()) session->reset_stream(stream, input.u8(), now);
        break;
      case 5:
        session->close(now);
        break;
      case 6:
        if (input.u8() % 4 == 0) (void)session->abort(wire::Reason::kShutdown, now, true);
        break;
      default:
        if (input.u8() % 4 == 0) (void)session->fast_close(wire::Reason::kShutdown, now);
        break;
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input input(data, size);
  World world;
  for (std::size_t step = 0; step < 512 && !input.empty(); ++step) {
    const std::uint8_t operation = input.u8() % 11;
    if (kTrace) {
      static constexpr const char* kNames[] = {
          "accept", "first frame",      "frame",       "frame",   "flood", "raw bytes", "time",
          "read",   "transport closed", "application", "read all"};
      std::fprintf(stderr, "step %zu: %s\n", step, kNames[operation]);
    }
    switch (operation) {
      case 0:
        world.accept();
        break;
      case 1:  // a first frame (or a second one, which a session takes as a protocol error)
        if (Connection* connection = world.pick(input)) world.first_frame(input, *connection);
        break;
      case 2:
      case 3:  // a frame inside the session
        if (Connection* connection = world.pick(input))
          world.send(*connection, world.session_frame(input, *connection));
        break;
      case 4:  // the same frame again, many times: a flood
        if (Connection* connection = world.pick(input);
            connection && !connection->last_frame.empty()) {
          const std::size_t frame_size = connection->last_frame.size();
          std::size_t count = 1 + input.u16();
          count = std::min(count, (kMaxFloodBytes - world.flooded) / frame_size);
          std::vector<std::byte> flood;
          flood.reserve(count * frame_size);
          for (std::size_t index = 0; index < count; ++index)
            flood.insert(flood.end(), connection->last_frame.begin(), connection->last_frame.end());
          world.flooded += flood.size();
          const auto frame = connection->last_frame;
          world.send(*connection, std::move(flood));
          connection->last_frame = frame;
        }
        break;
      case 5:  // raw bytes
        if (Connection* connection = world.pick(input)) {
          world.send_raw(*connection, input.bytes(input.u8()));
        }
        break;
      case 6: {  // time passes: up to a minute, or a jump past the linger time
        const std::uint8_t scale = input.u8();
        world.now += scale < 240 ? std::chrono::milliseconds(input.u16())
                                 : std::chrono::milliseconds(std::chrono::minutes(2));
        world.timeout();
        break;
      }
      case 7:  // the client reads, maybe a little at a time
        if (Connection* connection = world.pick(input)) {
          const std::size_t max_bytes = input.u8() < 64 ? std::size_t{1} + input.u16()
                                                        : std::numeric_limits<std::size_t>::max();
          world.take(world.id_of(*connection), *connection, max_bytes);
        }
        break;
      case 8:  // the transport loses the connection
        if (Connection* connection = world.pick(input)) {
          const PathId id = world.id_of(*connection);
          connection->done = true;
          world.server.on_connection_closed(id, world.now);
        }
        break;
      case 9:
        world.application(input);
        break;
      default:  // the client reads everything on every connection
        for (auto& [id, connection] : world.connections) {
          if (connection.done) continue;
          world.take(id, connection, std::numeric_limits<std::size_t>::max());
        }
        break;
    }
    world.drain();
    world.check();
  }
  return 0;
}
