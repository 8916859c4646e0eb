// Path is one transport connection of a session, and PathSet the session's connections with the
// one that carries data (the data path).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <vector>

#include "session/inbound_buffer.hpp"
#include "session/path_liveness.hpp"
#include "session/types.hpp"

namespace tether::session {

enum class PathState : std::uint8_t { kHelloSent, kResumeSent, kActive, kDone };

struct Path {
  Path(PathId path_id, PathState path_state, std::span<const std::byte> keying,
       HeartbeatParameters heartbeat, Time now, Role role = Role::kClient)
      : id(path_id),
        state(path_state),
        keying_material(keying.begin(), keying.end()),
        liveness(heartbeat, now, role) {}

  [[nodiscard]] bool handshaking() const {
    return state == PathState::kHelloSent || state == PathState::kResumeSent;
  }

  PathId id;
  PathState state;
  std::vector<std::byte> keying_material;
  InboundBuffer inbound;
  std::vector<std::byte> outgoing;
  PathLiveness liveness;
  std::optional<Time> handshake_deadline;
};

// The earliest per-connection deadline of each kind, over the live connections.
struct PathDeadlines {
  std::optional<Time> handshake;
  std::optional<Time> silence;
  std::optional<Time> dead;
  std::optional<Time> heartbeat;
};

class PathSet {
 public:
  using Map = std::map<PathId, Path>;

  [[nodiscard]] Path* find(PathId id) {
    auto it = paths_.find(id);
    return it == paths_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] const Path* find(PathId id) const {
    auto it = paths_.find(id);
    return it == paths_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] bool contains(PathId id) const { return paths_.contains(id); }
  Path& add(PathId id, PathState state, std::span<const std::byte> keying,
            HeartbeatParameters heartbeat, Time now, Role role = Role::kClient) {
    return paths_.try_emplace(id, id, state, keying, heartbeat, now, role).first->second;
  }
  // Forgets a connection the transport reported closed; returns whether it was the data path.
  bool erase(PathId id) {
    paths_.erase(id);
    if (data_ != id) return false;
    data_.reset();
    return true;
  }

  [[nodiscard]] std::optional<PathId> data_path() const { return data_; }
  [[nodiscard]] bool is_data_path(PathId id) const { return data_ == id; }
  void set_data_path(PathId id) { data_ = id; }
  void clear_data_path() { data_.reset(); }
  [[nodiscard]] Path* data() { return data_ ? find(*data_) : nullptr; }
  [[nodiscard]] const Path* data() const { return data_ ? find(*data_) : nullptr; }

  // A Hello or Resume is awaiting its answer on some connection.
  [[nodiscard]] bool handshaking() const {
    for (const auto& [id, path] : paths_) {
      if (path.handshaking()) return true;
    }
    return false;
  }
  // The first active connection (in id order), optionally skipping suspect ones.
  [[nodiscard]] Path* first_active(bool skip_suspect) {
    for (auto& [id, path] : paths_) {
      if (path.state == PathState::kActive && !(skip_suspect && path.liveness.suspect()))
        return &path;
    }
    return nullptr;
  }

  [[nodiscard]] PathDeadlines deadlines(Duration retransmission_timeout, Duration budget) const {
    PathDeadlines result;
    auto earlier = [](std::optional<Time>& slot, std::optional<Time> candidate) {
      if (candidate && (!slot || *candidate < *slot)) slot = candidate;
    };
    for (const auto& [id, path] : paths_) {
      if (path.state == PathState::kDone) continue;
      earlier(result.handshake, path.handshake_deadline);
      if (path.state != PathState::kActive) continue;
      earlier(result.heartbeat, path.liveness.heartbeat_deadline());
      earlier(result.silence, path.liveness.silence_deadline(retransmission_timeout));
      earlier(result.dead, path.liveness.dead_deadline(budget));
    }
    return result;
  }

  [[nodiscard]] std::size_t size() const { return paths_.size(); }
  Map::iterator begin() { return paths_.begin(); }
  Map::iterator end() { return paths_.end(); }
  [[nodiscard]] Map::const_iterator begin() const { return paths_.begin(); }
  [[nodiscard]] Map::const_iterator end() const { return paths_.end(); }

 private:
  Map paths_;
  std::optional<PathId> data_;
};

}  // namespace tether::session
