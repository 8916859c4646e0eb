#include "session/session_table.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace tether::session {

std::size_t SessionIdHash::operator()(const SessionId& id) const noexcept {
  static_assert(sizeof(SessionId) == 16);
  std::uint64_t halves[2];
  std::memcpy(halves, id.data(), sizeof halves);
  // SplitMix64's finaliser over the two halves.
  std::uint64_t mixed = halves[0] ^ (halves[1] * 0x9e3779b97f4a7c15ULL);
  mixed = (mixed ^ (mixed >> 30)) * 0xbf58476d1ce4e5b9ULL;
  mixed = (mixed ^ (mixed >> 27)) * 0x94d049bb133111ebULL;
  return static_cast<std::size_t>(mixed ^ (mixed >> 31));
}

SessionTable::Entry& SessionTable::insert(const SessionId& id, std::unique_ptr<Session> session,
                                          std::string source) {
  assert(!entries_.contains(id));
  ++per_source_[source];
  Entry entry;
  entry.id = id;
  entry.session = std::move(session);
  entry.source = std::move(source);
  return entries_.insert_or_assign(id, std::move(entry)).first->second;
}

namespace {

void decrement(std::map<std::string, std::size_t, std::less<>>& counts, const std::string& key) {
  if (auto count = counts.find(key); count != counts.end() && --count->second == 0) {
    counts.erase(count);
  }
}

}  // namespace

void SessionTable::erase(const SessionId& id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (it->second.closed) {
    --closed_;
  } else {
    decrement(per_source_, it->second.source);
  }
  entries_.erase(it);
}

void SessionTable::mark_closed(Entry& entry) {
  if (entry.closed) return;
  entry.closed = true;
  ++closed_;
  decrement(per_source_, entry.source);
}

SessionTable::Entry* SessionTable::find(const SessionId& id) {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second;
}

const SessionTable::Entry* SessionTable::find(const SessionId& id) const {
  auto it = entries_.find(id);
  return it == entries_.end() ? nullptr : &it->second;
}

std::vector<SessionId> SessionTable::ids() const {
  std::vector<SessionId> ids;
  ids.reserve(entries_.size());
  for (const auto& [id, entry] : entries_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::size_t SessionTable::count_from(std::string_view source) const {
  auto it = per_source_.find(source);
  return it == per_source_.end() ? 0 : it->second;
}

void SessionTable::touch(Entry& entry) {
  if (entry.touched) return;
  entry.touched = true;
  touched_.push_back(entry.id);
}

void SessionTable::take_touched(std::vector<SessionId>& out) {
  out.clear();
  out.swap(touched_);
  for (const SessionId& id : out) {
    if (Entry* entry = find(id)) entry->touched = false;
  }
}

}  // namespace tether::session
