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
//
// Each key has a slot (found by hash once per call); the heap's nodes carry the slot, and a node
// that moves writes its new position into its slot's entry of a plain vector, so sifting costs no
// hash lookups (a deadline moved one heartbeat later sifts down the whole height of the heap).
template <typename Key, typename Hash = std::hash<Key>>
class DeadlineHeap {
 public:
  [[nodiscard]] bool empty() const { return nodes_.empty(); }
  [[nodiscard]] std::size_t size() const { return nodes_.size(); }
  [[nodiscard]] bool contains(const Key& key) const { return slots_.contains(key); }
  [[nodiscard]] std::optional<Time> deadline(const Key& key) const {
    auto it = slots_.find(key);
    if (it == slots_.end()) return std::nullopt;
    return nodes_[positions_[it->second]].deadline;
  }

  // The earliest deadline; nullopt when empty.
  [[nodiscard]] std::optional<Time> earliest() const {
    if (nodes_.empty()) return std::nullopt;
    return nodes_.front().deadline;
  }

  // Sets (or moves) the deadline of `key`; nullopt removes it.
  void set(const Key& key, std::optional<Time> deadline) {
    if (!deadline) {
      erase(key);
      return;
    }
    auto [it, inserted] =
        slots_.try_emplace(key, free_slots_.empty() ? positions_.size() : free_slots_.back());
    if (inserted) {
      const std::size_t slot = it->second;
      if (slot == positions_.size()) {
        positions_.push_back(nodes_.size());
      } else {
        free_slots_.pop_back();
        positions_[slot] = nodes_.size();
      }
      nodes_.push_back(Node{*deadline, key, slot});
      sift_up(nodes_.size() - 1);
      return;
    }
    const std::size_t position = positions_[it->second];
    const Time before = nodes_[position].deadline;
    nodes_[position].deadline = *deadline;
    if (*deadline < before) {
      sift_up(position);
    } else {
      sift_down(position);
    }
  }

  // Removes `key` if present.
  void erase(const Key& key) {
    auto it = slots_.find(key);
    if (it == slots_.end()) return;
    const std::size_t slot = it->second;
    const std::size_t position = positions_[slot];
    slots_.erase(it);
    free_slots_.push_back(slot);
    const std::size_t last = nodes_.size() - 1;
    if (position != last) {
      nodes_[position] = std::move(nodes_[last]);
      positions_[nodes_[position].slot] = position;
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
    while (!nodes_.empty() && nodes_.front().deadline <= now) {
      due.push_back(nodes_.front().key);
      erase(due.back());
    }
    return due;
  }

  void clear() {
    nodes_.clear();
    slots_.clear();
    positions_.clear();
    free_slots_.clear();
  }

 private:
  struct Node {
    Time deadline;
    Key key;
    std::size_t slot;
  };

  [[nodiscard]] static bool before(const Node& left, const Node& right) {
    if (left.deadline != right.deadline) return left.deadline < right.deadline;
    return left.key < right.key;
  }

  void place(std::size_t position, Node node) {
    positions_[node.slot] = position;
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
  std::unordered_map<Key, std::size_t, Hash> slots_;  // key -> its slot
  std::vector<std::size_t> positions_;                // slot -> its node's position in nodes_
  std::vector<std::size_t> free_slots_;               // slots of erased keys, for reuse
};

}  // namespace tether::session
