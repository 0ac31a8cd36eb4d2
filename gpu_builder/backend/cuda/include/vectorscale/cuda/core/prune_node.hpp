/**
 * @file prune_node.hpp
 * @brief One node's RobustPrune from a Gram matrix: order the candidates, prune, write the list.
 *
 * The device computes the Gram matrix of [p, c_1, ..., c_m] with one batched cuBLAS GEMM per
 * group of nodes; every distance the prune needs (d(p, c) and d(c_i, c_j)) comes from it by
 * distance_from_gram. The CPU reference passes dot products computed on the CPU instead.
 */
#pragma once

#include <cstdint>

#include "vectorscale/cuda/core/hd.hpp"
#include "vectorscale/cuda/core/prune.hpp"
#include "vectorscale/cuda/core/reverse.hpp"
#include "vectorscale/cuda/core/sort.hpp"

namespace vs::cuda::core {

/** Team-shared scratch of prune_node for up to `capacity` candidates. */
struct PruneShared {
  float* key;           ///< next_pow2(capacity)
  std::uint32_t* id;    ///< next_pow2(capacity)
  std::uint32_t* row;   ///< next_pow2(capacity): Gram row of each sorted entry
  float* factor;        ///< capacity
  std::uint32_t* kept;  ///< capacity (at most R are used)
  float* norm;          ///< capacity + 1: squared norm of each Gram row (L2 only)
};

/** Bytes of PruneShared for `capacity` candidates. */
VS_HD inline std::uint32_t prune_shared_bytes(std::uint32_t capacity) noexcept {
  return next_pow2(capacity < 1 ? 1 : capacity) * 12 + capacity * 8 + (capacity + 1) * 4;
}

/** Carves PruneShared out of prune_shared_bytes(capacity) bytes (4-byte aligned). */
VS_HD inline PruneShared carve_prune_shared(void* base, std::uint32_t capacity) noexcept {
  const std::uint32_t m = next_pow2(capacity < 1 ? 1 : capacity);
  PruneShared s;
  s.key = static_cast<float*>(base);
  s.id = reinterpret_cast<std::uint32_t*>(s.key + m);
  s.row = s.id + m;
  s.factor = reinterpret_cast<float*>(s.row + m);
  s.kept = reinterpret_cast<std::uint32_t*>(s.factor + capacity);
  s.norm = reinterpret_cast<float*>(s.kept + capacity);
  return s;
}

/** What prune_node needs besides the candidates. */
struct PruneParams {
  Metric metric = Metric::kL2;
  std::uint32_t R = 0;
  AlphaSchedule schedule;
  bool ratio_rule = true;
};

/**
 * Prunes the `count` distinct candidates of node p to at most R neighbours.
 *
 * @param gram  gram(a, b): dot product of Gram rows a and b; row 0 is p, row 1 + c is cand[c]
 * @param out   receives the kept ids nearest first (may alias cand: cand is read before out is written)
 * @param out_distance  receives their distances to p (may be null)
 * @return the number kept
 */
template <class Team, class Gram>
VS_HD std::uint32_t prune_node(const Team& team, std::uint32_t p, const std::uint32_t* cand, std::uint32_t count,
                               Gram&& gram, const PruneParams& params, const PruneShared& s, std::uint32_t* out,
                               float* out_distance) {
  const std::uint32_t m = next_pow2(count < 1 ? 1 : count);
  const std::uint32_t valid = count - (list_contains(cand, count, p) ? 1 : 0);
  // Squared norms (the Gram diagonal) are read once per row, and only for L2: the pair
  // distances of the prune would otherwise read two scattered diagonal entries each.
  const bool l2 = params.metric == Metric::kL2;
  const float pp = l2 ? gram(0, 0) : 0.0f;
  team.for_each(m, [&](std::uint32_t c) {
    if (c == 0) s.norm[0] = pp;
    if (c < count) s.norm[c + 1] = l2 ? gram(c + 1, c + 1) : 0.0f;
    if (c < count && cand[c] != p) {
      s.key[c] = distance_from_gram(params.metric, pp, s.norm[c + 1], gram(0, c + 1));
      s.id[c] = cand[c];
      s.row[c] = c + 1;
    } else {
      s.key[c] = infinity();
      s.id[c] = kNoNode;
      s.row[c] = 0;
    }
  });
  bitonic_sort(team, s.key, s.id, s.row, m);
  const std::uint32_t kept = robust_prune_sorted(
      team, s.key, valid,
      [&](std::uint32_t i, std::uint32_t j) {
        const std::uint32_t a = s.row[i], b = s.row[j];
        return distance_from_gram(params.metric, s.norm[a], s.norm[b], gram(a, b));
      },
      params.R, params.schedule, params.ratio_rule, s.factor, s.kept);
  team.for_each(kept, [&](std::uint32_t k) {
    out[k] = s.id[s.kept[k]];
    if (out_distance != nullptr) out_distance[k] = s.key[s.kept[k]];
  });
  return kept;
}

}  // namespace vs::cuda::core
