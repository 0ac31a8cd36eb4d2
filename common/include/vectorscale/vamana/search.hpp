/**
 * @file search.hpp
 * @brief Greedy search (DiskANN's GreedySearch) over any graph and any distance.
 *
 * The loop is a template so that the in-memory build (dense uint32 ids, float vectors), the
 * in-memory SBQ index (Hamming on codes) and the extension's page-backed index (TIDs read
 * from buffers) all run the same algorithm: a candidate list of at most L entries sorted by
 * distance; repeatedly expand the closest unexpanded candidate, inserting its unvisited
 * neighbours; stop when all L candidates are expanded.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace vs::vamana {

/** Hints the first `bytes` bytes at p into cache (a vector about to be compared). */
inline void prefetch(const void* p, std::size_t bytes) noexcept {
  const char* c = static_cast<const char*>(p);
  for (std::size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
}

/** Bytes of a vector worth prefetching before a distance: the hardware prefetcher takes over after. */
inline constexpr std::size_t kPrefetchBytes = 256;

/** One entry of a search list. */
template <class Id>
struct Candidate {
  float distance;
  Id id;
  bool expanded = false;
};

/** The sorted list of the L best candidates seen so far (ties: smaller id first). */
template <class Id>
class SearchList {
 public:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  explicit SearchList(std::size_t capacity = 0) { reset(capacity); }

  /** Empties the list and sets its capacity L (>= 1). */
  void reset(std::size_t capacity) {
    capacity_ = capacity < 1 ? 1 : capacity;
    items_.clear();
    items_.reserve(capacity_ + 1);
    cursor_ = 0;
  }

  /** Inserts (id, distance) if it ranks among the best L; returns whether it did. */
  bool insert(Id id, float distance) { return insert(Candidate<Id>{distance, id, false}, nullptr); }

  /**
   * Inserts c if it ranks among the best L; returns whether it did. When that pushes the
   * worst entry off the list, it is copied to *evicted and *did_evict is set (both optional).
   */
  bool insert(const Candidate<Id>& c, Candidate<Id>* evicted, bool* did_evict = nullptr) {
    if (did_evict != nullptr) *did_evict = false;
    if (items_.size() == capacity_ && !less(c.distance, c.id, items_.back())) return false;
    auto pos = std::upper_bound(items_.begin(), items_.end(), c, [](const Candidate<Id>& a, const Candidate<Id>& b) {
      return less(a.distance, a.id, b);
    });
    const auto index = static_cast<std::size_t>(pos - items_.begin());
    items_.insert(pos, c);
    if (items_.size() > capacity_) {
      if (evicted != nullptr) *evicted = items_.back();
      if (did_evict != nullptr) *did_evict = true;
      items_.pop_back();
    }
    if (index < cursor_ && !c.expanded) cursor_ = index;
    return true;
  }

  /** Removes and returns the closest entry (the list must not be empty). */
  Candidate<Id> pop_front() {
    Candidate<Id> c = items_.front();
    items_.erase(items_.begin());
    if (cursor_ > 0) --cursor_;
    return c;
  }

  /** Index of the closest unexpanded candidate, or npos. */
  [[nodiscard]] std::size_t next_unexpanded() noexcept {
    while (cursor_ < items_.size() && items_[cursor_].expanded) ++cursor_;
    return cursor_ < items_.size() ? cursor_ : npos;
  }

  /** Distance a new candidate must beat once the list is full (+inf before). */
  [[nodiscard]] float bound() const noexcept {
    return items_.size() == capacity_ ? items_.back().distance : std::numeric_limits<float>::infinity();
  }

  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  Candidate<Id>& operator[](std::size_t i) noexcept { return items_[i]; }
  const Candidate<Id>& operator[](std::size_t i) const noexcept { return items_[i]; }
  [[nodiscard]] auto begin() const noexcept { return items_.begin(); }
  [[nodiscard]] auto end() const noexcept { return items_.end(); }

 private:
  static bool less(float d, Id id, const Candidate<Id>& c) noexcept {
    return d < c.distance || (d == c.distance && id < c.id);
  }
  std::vector<Candidate<Id>> items_;
  std::size_t capacity_ = 1;
  std::size_t cursor_ = 0;
};

/** Visited set over dense ids 0..n-1, cleared in O(1) by bumping an epoch. */
class EpochVisited {
 public:
  explicit EpochVisited(std::size_t n = 0) : tags_(n, 0) {}
  /** Forgets every id. */
  void clear() {
    if (++epoch_ == 0) {  // wrapped: reset the tags once every 2^32 searches
      std::fill(tags_.begin(), tags_.end(), 0);
      epoch_ = 1;
    }
  }
  /** Marks id visited; returns whether it already was. */
  bool test_and_set(std::uint32_t id) noexcept {
    if (tags_[id] == epoch_) return true;
    tags_[id] = epoch_;
    return false;
  }
  [[nodiscard]] bool test(std::uint32_t id) const noexcept { return tags_[id] == epoch_; }
  /** Ids this set can hold. */
  [[nodiscard]] std::size_t size() const noexcept { return tags_.size(); }

 private:
  std::vector<std::uint32_t> tags_;
  std::uint32_t epoch_ = 1;
};

/**
 * Runs greedy search to completion on a list already seeded with the start nodes (which the
 * caller has also marked visited).
 *
 * @param expand    expand(id, visit): calls visit(neighbour) for each out-neighbour of id
 *                  that the search may enter (filtered search skips non-matching nodes here)
 * @param distance  distance(id) -> float, smaller is closer
 * @param visited   test_and_set(id) -> bool (true when already visited)
 * @param on_expand on_expand(const Candidate&) for every expanded node, in expansion order
 *                  (the build uses these as RobustPrune candidates)
 * @return number of distance computations
 */
template <class Id, class Expand, class Distance, class Visited, class OnExpand>
std::size_t greedy_search(SearchList<Id>& list, Expand&& expand, Distance&& distance, Visited& visited,
                          OnExpand&& on_expand) {
  std::size_t computed = 0;
  for (std::size_t i = list.next_unexpanded(); i != SearchList<Id>::npos; i = list.next_unexpanded()) {
    list[i].expanded = true;
    const Candidate<Id> current = list[i];  // copy: inserts below may shift the list
    on_expand(current);
    expand(current.id, [&](Id n) {
      if (visited.test_and_set(n)) return;
      const float d = distance(n);
      ++computed;
      list.insert(n, d);
    });
  }
  return computed;
}

}  // namespace vs::vamana
