/**
 * @file search.hpp
 * @brief Greedy search of one query on a team: vamana::greedy_search (common/) in lock step.
 *
 * The list holds the best L candidates by (distance, id). Each step expands the closest
 * unexpanded entry: its neighbours not seen before (a per-query hash set) get their distances
 * (a group of lanes per neighbour) and are merged into the list, which keeps the best L; the
 * merge also finds the next closest unexpanded entry. A step costs the team three barriers
 * (distances, merge, neighbours), so that a block's warps wait for each other as little as
 * possible. The search ends when every entry is expanded, as in common/, or after max_iters
 * expansions (a bound on the scratch memory; the planner sets it well above what searches
 * need). Expanded nodes are logged with their distances: they are the RobustPrune candidates
 * of the build, as in common/'s build.
 */
#pragma once

#include <cstdint>

#include "vectorscale/cuda/core/hd.hpp"
#include "vectorscale/cuda/core/sort.hpp"

namespace vs::cuda::core {

/** Empty slot of a visited-set hash table. */
inline constexpr std::uint32_t kEmptySlot = 0xFFFFFFFFu;

/** Slots of the visited-set hash table of one search: room for every node it can see, half full. */
VS_HD inline std::uint32_t visited_table_slots(std::uint32_t max_iters, std::uint32_t stride) noexcept {
  const std::uint64_t most = 1ull + static_cast<std::uint64_t>(max_iters) * stride;
  std::uint64_t slots = 64;
  while (slots < 2 * most) slots <<= 1;
  return static_cast<std::uint32_t>(slots);
}

/**
 * Inserts id into an open-addressing table (linear probing, `mask` = slots - 1); true when it
 * was not there. A full table answers "seen" (planned never to happen: visited_table_slots).
 */
template <class Team>
VS_HD bool visit(const Team& team, std::uint32_t* table, std::uint32_t mask, std::uint32_t id) {
  std::uint32_t h = (id * 2654435761u) & mask;
  for (std::uint32_t probe = 0; probe <= mask; ++probe) {
    const std::uint32_t old = team.atomic_cas(&table[h], kEmptySlot, id);
    if (old == kEmptySlot) return true;
    if (old == id) return false;
    h = (h + 1) & mask;
  }
  return false;
}

/** Probes of a search's team-shared visited table before an id goes to its global table. */
inline constexpr std::uint32_t kLocalProbes = 16;

/**
 * Inserts id into the visited set of one search: the team-shared table `local` (local_mask + 1
 * slots, a power of two >= kLocalProbes; null: none) in front of the search's global table
 * (`table`, `mask`). An id goes to the global table only when the kLocalProbes slots of its
 * local window hold other ids, and then sets *spilled (team-shared) to 1. Slots are never
 * emptied during a search, so a full window stays full and every id always lands in the same
 * table: the two tables are one exact set, as the global table alone would be. True when id was
 * not there.
 */
template <class Team>
VS_HD bool visit_two_level(const Team& team, std::uint32_t* local, std::uint32_t local_mask, std::uint32_t* table,
                           std::uint32_t mask, std::uint32_t* spilled, std::uint32_t id) {
  if (local != nullptr) {
    std::uint32_t h = (id * 2654435761u) & local_mask;
    for (std::uint32_t probe = 0; probe < kLocalProbes; ++probe) {
      const std::uint32_t old = team.atomic_cas(&local[h], kEmptySlot, id);
      if (old == kEmptySlot) return true;
      if (old == id) return false;
      h = (h + 1) & local_mask;
    }
  }
  (void)team.atomic_cas(spilled, 0u, 1u);
  return visit(team, table, mask, id);
}

/** What one search reads and writes in global memory; V: the vectors' element type (float, Bf16). */
template <class V>
struct SearchArgsOf {
  using Element = V;
  const V* vectors = nullptr;  ///< n x dims, row-major (device or mapped host memory)
  std::uint32_t dims = 0;
  Metric metric = Metric::kL2;
  const std::uint32_t* neighbors = nullptr;  ///< n x stride adjacency (all of it readable)
  const std::uint32_t* degrees = nullptr;    ///< n
  std::uint32_t stride = 0;
  std::uint32_t list_size = 0;  ///< L
  std::uint32_t max_iters = 0;  ///< most expansions (>= 1)
  /** Rows are read a Chunk at a time (set it to wide_rows(vectors, dims)); else an element at a time. */
  bool wide = false;
  /** Slots of the team-shared visited table (visit_two_level; 0: the global table alone). */
  std::uint32_t local_slots = 0;
  /** Team-shared bytes of the staged query (staged_query_bytes<V>(dims)); 0: read from global memory. */
  std::uint32_t query_bytes = 0;
};
using SearchArgs = SearchArgsOf<float>;

/** Team-shared working memory of one search (shared memory on the device). */
struct SearchShared {
  /**
   * The list, double buffered: its distances, ids and "expanded" flags, 2 L entries each, the
   * buffers at offsets 0 and L. (Offsets rather than pointer pairs indexed by the current
   * buffer: such an index puts the struct in the device's local memory.)
   */
  float* key;
  std::uint32_t* id;
  std::uint8_t* flag;
  float* new_key;         ///< new candidates (stride entries)
  std::uint32_t* new_id;
  /** [0], [1]: first unexpanded entry, of even and odd steps; [2] new candidates; [3] the global table was used. */
  std::uint32_t* scalars;
  std::uint32_t* local;    ///< the visited set's team-shared table (local_slots), null when none
  /**
   * The query row, copied in at the start (query_bytes; null: read from global memory). Every
   * distance reads the whole query, and the rows streaming through L1 would evict it.
   */
  void* query;
};

/** Entries of SearchShared::scalars. */
inline constexpr std::uint32_t kSearchScalars = 4;

/** Team-shared bytes of a query row of dims elements of V (whole Chunks). */
template <class V>
VS_HD inline std::uint32_t staged_query_bytes(std::uint32_t dims) noexcept {
  return static_cast<std::uint32_t>((dims * sizeof(V) + sizeof(Chunk) - 1) / sizeof(Chunk) * sizeof(Chunk));
}

/**
 * Team-shared bytes of SearchShared for L, stride, local_slots and a staged query of
 * query_bytes (0: none; staged_query_bytes) (device shared-memory planning).
 */
VS_HD inline std::uint32_t search_shared_bytes(std::uint32_t list_size, std::uint32_t stride,
                                               std::uint32_t local_slots = 0, std::uint32_t query_bytes = 0) noexcept {
  return query_bytes + 2 * list_size * (4 + 4 + 1) + stride * (4 + 4) + kSearchScalars * 4 + local_slots * 4 +
         32;  // + alignment slack
}

/**
 * Carves SearchShared out of one buffer of search_shared_bytes() bytes (16-byte aligned when a
 * query is staged and read a Chunk at a time, else 4-byte aligned). The query comes first.
 */
VS_HD inline SearchShared carve_search_shared(void* base, std::uint32_t list_size, std::uint32_t stride,
                                              std::uint32_t local_slots = 0, std::uint32_t query_bytes = 0) noexcept {
  auto* p = static_cast<std::uint8_t*>(base);
  SearchShared s;
  s.query = query_bytes != 0 ? p : nullptr;
  p += query_bytes;
  s.key = reinterpret_cast<float*>(p);
  s.new_key = s.key + 2 * list_size;
  s.id = reinterpret_cast<std::uint32_t*>(s.new_key + stride);
  s.new_id = s.id + 2 * list_size;
  s.scalars = s.new_id + stride;
  s.local = local_slots != 0 ? s.scalars + kSearchScalars : nullptr;
  s.flag = reinterpret_cast<std::uint8_t*>(s.scalars + kSearchScalars + local_slots);
  return s;
}

/** Outcome of one search. */
struct SearchResult {
  std::uint32_t expanded = 0;  ///< entries written to the log
  std::uint32_t computed = 0;  ///< distances computed
  bool spilled = false;        ///< the search used its global visited table
};

/**
 * Greedy search for `query` from `start` (a node of the graph). The visited set is the
 * team-shared table of a.local_slots slots (carved by carve_search_shared with the same count)
 * in front of `table` (visit_two_level). kStagedQuery: the search copies the query into `s`
 * (carved with staged_query_bytes<V>(a.dims) for it) and reads it from there; a compile-time
 * choice, so that the device code knows which memory it reads (a pointer that may be either
 * costs the kernel 12 more registers a thread).
 *
 * @param table   this query's global visited table, `mask` + 1 slots, all kEmptySlot; the
 *                search leaves it so (it clears it after use, which only searches that spill
 *                past the team-shared table pay for)
 * @param log_id  receives the expanded nodes in expansion order (max_iters entries)
 * @param log_key their distances to the query
 */
template <bool kStagedQuery = false, class Team, class V>
VS_HD SearchResult greedy_search_one(const Team& team, const SearchArgsOf<V>& a, const SearchShared& s, const V* query,
                                     std::uint32_t start, std::uint32_t* table, std::uint32_t mask,
                                     std::uint32_t* log_id, float* log_key) {
  constexpr std::uint32_t kNew = 2, kSpilled = 3;  // scalars[step % 2]: the step's first unexpanded entry
  SearchResult r;
  std::uint32_t size = 0, at = 0, step = 0;  // at: the current list's offset in s (0 or L)
  const std::uint32_t local_mask = a.local_slots - 1;
  // Clear the team-shared table and stage the query (one barrier for both).
  V* const staged = kStagedQuery ? static_cast<V*>(s.query) : nullptr;
  const std::uint32_t local_slots = s.local != nullptr ? a.local_slots : 0;
  const std::uint32_t first_items = kStagedQuery && a.dims > local_slots ? a.dims : local_slots;
  if (first_items != 0)
    team.for_each(first_items, [&](std::uint32_t i) {
      if (i < local_slots) s.local[i] = kEmptySlot;
      if constexpr (kStagedQuery) {
        if (i < a.dims) staged[i] = query[i];
      }
    });
  const V* const q = kStagedQuery ? staged : query;
  auto visit_node = [&](std::uint32_t id) {
    return visit_two_level(team, s.local, local_mask, table, mask, &s.scalars[kSpilled], id);
  };
  if (team.leader()) {
    s.scalars[kSpilled] = 0;
    (void)visit_node(start);
    s.new_id[0] = start;
    s.scalars[kNew] = 1;
    s.scalars[0] = kNoNode;
  }
  team.sync();
  for (;;) {
    std::uint32_t* const first_slot = &s.scalars[step & 1u];
    const std::uint32_t fresh = s.scalars[kNew];
    if (fresh > 0) {
      // Distances of the new candidates (a group of lanes per candidate, each lane a Chunk or
      // an element at a time), then merge them into the list.
      auto row = [&](std::uint32_t j) { return a.vectors + static_cast<std::uint64_t>(s.new_id[j]) * a.dims; };
      auto done = [&](std::uint32_t j, float total) { s.new_key[j] = finish_distance(a.metric, total); };
      if (a.wide) {
        constexpr std::uint32_t w = kChunkElements<V>;
        team.for_each_reduce(
            fresh, a.dims / w,
            [&](std::uint32_t j, std::uint32_t c) { return chunk_distance_terms(a.metric, q + c * w, row(j) + c * w); },
            done);
      } else {
        team.for_each_reduce(
            fresh, a.dims,
            [&](std::uint32_t j, std::uint32_t d) {
              return distance_term(a.metric, to_float(q[d]), to_float(row(j)[d]));
            },
            done);
      }
      // Every thread has read the count (before that barrier); the neighbours count from 0.
      if (team.leader()) s.scalars[kNew] = 0;
      const std::uint32_t next = a.list_size - at;
      size = merge_lists(team, s.key + at, s.id + at, s.flag + at, size, s.new_key, s.new_id, fresh, s.key + next,
                         s.id + next, s.flag + next, a.list_size, first_slot);
      at = next;
      r.computed += fresh;
    } else {
      // The list is as it was but for the entry expanded last.
      team.for_each(size, [&](std::uint32_t i) {
        if (s.flag[at + i] == 0) (void)team.atomic_min(first_slot, i);
      });
    }
    if (r.expanded == a.max_iters) break;
    const std::uint32_t first = *first_slot;
    if (first == kNoNode) break;
    const std::uint32_t node = s.id[at + first];
    ++step;
    if (team.leader()) {
      // Read by the merge or scan of the next step, after the barrier that ends this one.
      s.flag[at + first] = 1;
      log_id[r.expanded] = node;
      log_key[r.expanded] = s.key[at + first];
      // The next step's slot was last read in the step before this one, before its last barrier.
      s.scalars[step & 1u] = kNoNode;
    }
    ++r.expanded;
    // Its neighbours not seen before become the new candidates. The list's whole row is read
    // (the entries past the degree are ignored), so that its load need not wait for the degree's.
    const std::uint32_t degree = a.degrees[node];
    const std::uint32_t* nb = a.neighbors + static_cast<std::uint64_t>(node) * a.stride;
    team.for_each(a.stride, [&](std::uint32_t k) {
      const std::uint32_t x = nb[k];
      if (k < degree && visit_node(x)) s.new_id[team.atomic_add(&s.scalars[kNew], 1)] = x;
    });
  }
  // Every visit is behind a barrier here (each ends a for_each): the flag is final and uniform.
  r.spilled = s.scalars[kSpilled] != 0;
  if (r.spilled) team.for_each(mask + 1, [&](std::uint32_t i) { table[i] = kEmptySlot; });
  return r;
}

}  // namespace vs::cuda::core
