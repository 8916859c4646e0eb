// Test support for lifetime and re-authentication (reauthentication_test.cpp and
// reauthentication_review_test.cpp): Reauthentication is a client and server pair whose credentials
// last a given time on the server's word, over TLS-like connections; inject_control and
// inject_stream_data play a hostile client by writing frames straight to the server.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "tests/unit/authentication_doubles.hpp"
#include "tests/unit/loopback.hpp"

namespace tether::test {

// A fixture whose credentials last `life` (on the server's word), with TLS-like channel bindings.
struct Reauthentication {
  Fixture fixture;
  Loopback& loop;
  session::SessionId id{};

  explicit Reauthentication(
      std::optional<Duration> life,
      const std::function<void(SessionConfig&, SessionConfig&)>& configure = {},
      bool establish = true)
      : fixture(true, true, configure), loop(*fixture.loop) {
    fixture.server_auth->counters.lifetime = life;
    loop.bind_channels = true;
    if (establish) id = loop.establish();
  }

  session::Session* server_session() { return loop.server.find(id); }
  std::vector<session::events::Reauthenticated> client_reauthentications() const {
    return events_of<session::events::Reauthenticated>(loop.client_events);
  }
  std::vector<session::events::Reauthenticated> server_reauthentications() const {
    return events_of<session::events::Reauthenticated>(loop.server_events);
  }
  std::optional<session::events::Closed> server_closed() const {
    auto closed = events_of<session::events::Closed>(loop.server_events);
    if (closed.empty()) return std::nullopt;
    return closed.back();
  }
};

// A hostile client's message on the control stream: written at the end of what the real client
// sent there, straight to the server on `path`.
inline void inject_control(Loopback& loop, PathId path, const wire::Frame& message) {
  std::uint64_t end = 0;
  for (const auto& [id, connection] : loop.connections) {
    const Bytes sent = loop.sent_on(id, true);
    for (const auto& frame : frames_of<wire::StreamData>(sent)) {
      if (frame.stream_id == session::kControlStream) {
        end = std::max<std::uint64_t>(end, frame.offset + frame.data.size());
      }
    }
  }
  Bytes payload;
  wire::encode_frame(message, payload);
  wire::StreamData data;
  data.stream_id = session::kControlStream;
  data.offset = end;
  data.data = payload;
  const Bytes bytes = encode(data);
  loop.deliver(End::kServer, path, bytes);
}

// A hostile client's stream data, straight to the server on `path`.
inline bool inject_stream_data(Loopback& loop, PathId path, StreamId stream, std::uint64_t offset,
                               bool open, const Bytes& payload) {
  wire::StreamData data;
  data.stream_id = stream;
  data.offset = offset;
  data.open = open;
  data.data = payload;
  const Bytes bytes = encode(data);
  return loop.deliver(End::kServer, path, bytes);
}

}  // namespace tether::test
