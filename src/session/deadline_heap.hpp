// DeadlineHeap is an indexed binary min-heap of deadlines by key: setting, moving or removing one
// key's deadline costs O(log n), the earliest deadline O(1), so a server with many timers does work
// only for the timers that changed.
#pragma once

#include <cstddef>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "session/types.hpp"

namespace tether::session {

// `Key` needs operator< (ties between equal deadlines go to the smaller key, so that the order of
// due keys depends only on the calls made) and a hash.
template <typename Key, typename Hash = std::hash<Key>>
class DeadlineHeap {
 public:
  [[nodiscard]] bool empty() const { return nodes_.empty(); }
  [[nodiscard]] std::size_t size() const { return nodes_.size(); }
  [[nodiscard]] bool contains(const Key& key) const { return positions_.contains(key); }
  [[nodiscard]] std::optional<Time> deadline(const Key& key) const {
    auto it = positions_.find(key);
    if (it == positions_.end()) return std::nullopt;
    return nodes_[it->second].first;
  }

  // The earliest deadline; nullopt when empty.
  [[nodiscard]] std::optional<Time> earliest() const {
    if (nodes_.empty()) return std::nullopt;
    return nodes_.front().first;
  }

  // Sets (or moves) the deadline of `key`; nullopt removes it.
  void set(const Key& key, std::optional<Time> deadline) {
    if (!deadline) {
      erase(key);
      return;
    }
    auto [it, inserted] = positions_.try_emplace(key, nodes_.size());
    if (inserted) {
      nodes_.emplace_back(*deadline, key);
      sift_up(it->second);
      return;
    }
    const std::size_t position = it->second;
    const Time before = nodes_[position].first;
    nodes_[position].first = *deadline;
    if (*deadline < before) {
      sift_up(position);
    } else {
      sift_down(position);
    }
  }

  // Removes `key` if present.
  void erase(const Key& key) {
    auto it = positions_.find(key);
    if (it == positions_.end()) return;
    const std::size_t position = it->second;
    positions_.erase(it);
    const std::size_t last = nodes_.size() - 1;
    if (position != last) {
      nodes_[position] = std::move(nodes_[last]);
      positions_[nodes_[position].second] = position;
      nodes_.pop_back();
      // The moved node may belong above or below its new place.
      sift_down(sift_up(position));
    } else {
      nodes_.pop_back();
    }
  }

  // Removes every key whose deadline is at or before `now` and returns them, earliest first.
  std::vector<Key> take_due(Time now) {
    std::vector<Key> due;
    while (!nodes_.empty() && nodes_.front().first <= now) {
      due.push_back(nodes_.front().second);
      erase(due.back());
    }
    return due;
  }

  void clear() {
    nodes_.clear();
    positions_.clear();
  }

 private:
  using Node = std::pair<Time, Key>;

  [[nodiscard]] static bool before(const Node& left, const Node& right) {
    if (left.first != right.first) return left.first < right.first;
    return left.second < right.second;
  }

  void place(std::size_t position, Node node) {
    positions_[node.second] = position;
    nodes_[position] = std::move(node);
  }

  // Returns the node's final position.
  std::size_t sift_up(std::size_t position) {
    Node node = std::move(nodes_[position]);
    while (position > 0) {
      const std::size_t parent = (position - 1) / 2;
      if (!before(node, nodes_[parent])) break;
      place(position, std::move(nodes_[parent]));
      position = parent;
    }
    place(position, std::move(node));
    return position;
  }

  void sift_down(std::size_t position) {
    Node node = std::move(nodes_[position]);
    const std::size_t count = nodes_.size();
    while (true) {
      std::size_t child = 2 * position + 1;
      if (child >= count) break;
      if (child + 1 < count && before(nodes_[child + 1], nodes_[child])) ++child;
      if (!before(nodes_[child], node)) break;
      place(position, std::move(nodes_[child]));
      position = child;
    }
    place(position, std::move(node));
  }

  std::vector<Node> nodes_;
  std::unordered_map<Key, std::size_t, Hash> positions_;
};

}  // namespace tether::session
