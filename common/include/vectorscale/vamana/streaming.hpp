/**
 * @file streaming.hpp
 * @brief Streaming greedy search: yields nodes nearest first, one at a time, until the graph
 *        reachable from the start nodes is exhausted.
 *
 * This is the scan of StreamingDiskANN. The window is a search list of L entries; every
 * candidate that does not fit it (or falls off its end) goes to a spill heap instead of being
 * dropped. next() expands window entries until all L are expanded (a converged greedy search
 * over what has not been returned yet), then removes and returns the closest one and refills
 * the window from the spill heap. Two invariants make this complete and ordered like a greedy
 * search: every discovered node is in the window, in the spill heap or already returned; and
 * every spilled entry is at least as far as every window entry (entries enter the spill heap
 * only when they lose against a full window, and the window takes back the closest spilled
 * entry only when it has room). So with L = 2 a scan still returns every reachable node, and
 * the first next() sees exactly the converged list of greedy_search with list size L; later
 * calls keep searching, so results 2..k are at least as good as that list's.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "vectorscale/vamana/search.hpp"

namespace vs::vamana {

/** A resumable greedy search over ids of type Id; reusable through reset(). */
template <class Id>
class StreamingSearch {
 public:
  explicit StreamingSearch(std::size_t search_list_size = 1) { reset(search_list_size); }

  /** Forgets everything and sets the window size L (>= 1). */
  void reset(std::size_t search_list_size) {
    window_.reset(search_list_size);
    spill_.clear();
    distance_computations_ = 0;
  }

  /** Adds a start node (the caller marks it visited). */
  void add_start(Id id, float distance) { push(Candidate<Id>{distance, id, false}); }

  /**
   * Returns the next nearest node, or nullopt when every reachable node has been returned.
   *
   * @param expand   expand(id, visit): calls visit(neighbour) for each neighbour the search
   *                 may enter (filtered search skips non-matching nodes here)
   * @param distance distance(id) -> float, smaller is closer
   * @param visited  test_and_set(id) -> bool (true when already visited)
   */
  template <class Expand, class Distance, class Visited>
  std::optional<Candidate<Id>> next(Expand&& expand, Distance&& distance, Visited& visited) {
    for (;;) {
      refill();
      const std::size_t i = window_.next_unexpanded();
      if (i == SearchList<Id>::npos) break;
      window_[i].expanded = true;
      const Id current = window_[i].id;
      expand(current, [&](Id n) {
        if (visited.test_and_set(n)) return;
        const float d = distance(n);
        ++distance_computations_;
        push(Candidate<Id>{d, n, false});
      });
    }
    if (window_.size() == 0) return std::nullopt;
    return window_.pop_front();
  }

  /** Distances computed so far (start nodes excluded). */
  [[nodiscard]] std::uint64_t distance_computations() const noexcept { return distance_computations_; }
  /** Candidates discovered and not yet returned. */
  [[nodiscard]] std::size_t pending() const noexcept { return window_.size() + spill_.size(); }

 private:
  static bool farther(const Candidate<Id>& a, const Candidate<Id>& b) noexcept {
    return a.distance > b.distance || (a.distance == b.distance && b.id < a.id);
  }
  void spill(const Candidate<Id>& c) {
    spill_.push_back(c);
    std::push_heap(spill_.begin(), spill_.end(), farther);
  }
  void push(const Candidate<Id>& c) {
    Candidate<Id> evicted{};
    bool did_evict = false;
    if (!window_.insert(c, &evicted, &did_evict)) spill(c);
    else if (did_evict) spill(evicted);
  }
  void refill() {
    while (window_.size() < window_.capacity() && !spill_.empty()) {
      std::pop_heap(spill_.begin(), spill_.end(), farther);
      const Candidate<Id> c = spill_.back();
      spill_.pop_back();
      (void)window_.insert(c, nullptr);
    }
  }

  SearchList<Id> window_;
  std::vector<Candidate<Id>> spill_;  // min-heap by (distance, id)
  std::uint64_t distance_computations_ = 0;
};

}  // namespace vs::vamana
