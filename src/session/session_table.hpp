// SessionTable is a server's index of its sessions: by id, with what the endpoint keeps about each
// (the source it came from, the connections routed to it) and the number of sessions per source;
// it also lists the sessions "touched" since the endpoint last looked at them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "session/session.hpp"

namespace tether::session {

// Hashes a session id (all its bytes: ids drawn by a test's generator may share a prefix).
struct SessionIdHash {
  std::size_t operator()(const SessionId& id) const noexcept;
};

class SessionTable {
 public:
  struct Entry {
    SessionId id{};
    std::unique_ptr<Session> session;
    std::string source;               // the per-source limits' key (see ServerEndpoint::accept)
    std::vector<PathId> connections;  // routed to the session and not yet reported closed
    bool touched = false;             // listed in the touched list
    bool closed = false;              // seen closed (mark_closed): no longer counted as held
  };

  // Adds a session; precondition: no session with this id is present.
  Entry& insert(const SessionId& id, std::unique_ptr<Session> session, std::string source);
  // Removes the session (destroying it) and its count for its source; no-op for an unknown id.
  void erase(const SessionId& id);

  [[nodiscard]] Entry* find(const SessionId& id);
  [[nodiscard]] const Entry* find(const SessionId& id) const;
  [[nodiscard]] bool contains(const SessionId& id) const { return entries_.contains(id); }
  [[nodiscard]] std::size_t size() const { return entries_.size(); }
  // Sessions not yet seen closed: what the limits count. A closed session stays in the table until
  // the runtime reports its last connection closed, but it holds a limit's slot no longer.
  [[nodiscard]] std::size_t open_count() const { return entries_.size() - closed_; }
  [[nodiscard]] bool empty() const { return entries_.empty(); }
  // The ids of every session, in id order (linear: for inspection and shutdown, not per call).
  [[nodiscard]] std::vector<SessionId> ids() const;
  // Open sessions (not marked closed) held for `source` (an index by principal would sit beside
  // this one).
  [[nodiscard]] std::size_t count_from(std::string_view source) const;

  // Notes that the entry's session has closed: it no longer counts in open_count() or
  // count_from(). Idempotent.
  void mark_closed(Entry& entry);

  // Lists the entry's session as touched: a call may have changed its deadline, its output or
  // whether it can be collected. Listed once until the next take_touched().
  void touch(Entry& entry);
  // Moves the touched sessions' ids into `out` (replacing its contents), in the order touched;
  // ids of sessions erased since are included (find() returns null for them).
  void take_touched(std::vector<SessionId>& out);
  [[nodiscard]] std::size_t touched_count() const { return touched_.size(); }

 private:
  // Hashed, not ordered: a lookup per call must not cost log2(N) 16-byte compares. Node-based, so
  // an Entry stays put while it exists (rehashing moves no element).
  std::unordered_map<SessionId, Entry, SessionIdHash> entries_;
  std::map<std::string, std::size_t, std::less<>> per_source_;
  std::vector<SessionId> touched_;
  std::size_t closed_ = 0;  // entries marked closed
};

}  // namespace tether::session
