/**
 * @file prune.hpp
 * @brief RobustPrune on a team, the algorithm of vamana::robust_prune (common/) step for step.
 *
 * Candidates arrive sorted by (distance to p, id). For each alpha of the schedule 1.0, 1.2, ...
 * <= max_alpha, the closest candidate not yet occluded at that alpha is kept, and the team
 * raises the occlusion factor of every later candidate c by d(p, c) / d(kept, c) in parallel.
 * The selection itself is sequential and identical on every thread of the team (it only reads
 * factors written before the last barrier). Labels are not supported here (the CUDA backend
 * hands labelled builds to the CPU backend), so every kept candidate may occlude.
 */
#pragma once

#include <cstdint>

#include "vectorscale/cuda/core/hd.hpp"

namespace vs::cuda::core {

/** Most alphas of a schedule (max_alpha <= 5 and step 0.2 give 21). */
inline constexpr std::uint32_t kMaxAlphas = 32;

/** The alpha schedule of common/ (vamana::alpha_schedule with kAlphaStep = 0.2) in fixed storage. */
struct AlphaSchedule {
  float alpha[kMaxAlphas] = {1.0f};
  std::uint32_t count = 1;
};

/** Builds the schedule 1.0, 1.2, ... <= max_alpha (vamana::alpha_schedule; checked by a unit test). */
inline AlphaSchedule make_alpha_schedule(float max_alpha, bool ratio_rule) noexcept {
  AlphaSchedule s;
  if (!ratio_rule) return s;
  for (std::uint32_t k = 1; k < kMaxAlphas; ++k) {
    const float a = 1.0f + 0.2f * static_cast<float>(k);
    if (a > max_alpha + 1e-4f) break;
    s.alpha[s.count++] = a;
  }
  return s;
}

/**
 * Selects at most R of m candidates sorted by `dist` (distance to p, ascending).
 *
 * @param pair   pair(i, j) = d(c_i, c_j) for sorted positions i < j
 * @param ratio_rule  false for inner product: the plain test d(s, c) < d(p, c) at alpha 1
 * @param factor team-shared scratch of m floats
 * @param kept   receives the kept positions in selection order (written by the leader)
 * @return the number kept (the same on every thread)
 */
template <class Team, class Pair>
VS_HD std::uint32_t robust_prune_sorted(const Team& team, const float* dist, std::uint32_t m, Pair&& pair,
                                        std::uint32_t R, const AlphaSchedule& schedule, bool ratio_rule, float* factor,
                                        std::uint32_t* kept) {
  const float selected = infinity();
  team.for_each(m, [&](std::uint32_t i) { factor[i] = 0.0f; });
  const float last_alpha = schedule.alpha[schedule.count - 1];
  std::uint32_t count = 0;
  for (std::uint32_t a = 0; a < schedule.count && count < R; ++a) {
    const float alpha = schedule.alpha[a];
    for (std::uint32_t i = 0; i < m && count < R; ++i) {
      if (factor[i] > alpha) continue;  // occluded at this alpha, or kept already
      if (team.leader()) kept[count] = i;
      ++count;
      team.for_each(m - i - 1, [&](std::uint32_t t) {
        const std::uint32_t j = i + 1 + t;
        if (factor[j] > last_alpha) return;  // can never be chosen any more
        const float dsc = pair(i, j);
        if (ratio_rule) {
          const float ratio = dsc > 0.0f ? dist[j] / dsc : kFloatMax;
          if (ratio > factor[j]) factor[j] = ratio;
        } else if (dsc < dist[j]) {
          factor[j] = kFloatMax;
        }
      });
      // Every thread read factor[i] before the barrier that ended for_each.
      if (team.leader()) factor[i] = selected;
      team.sync();
    }
    // A thread that ends this pass early must not start raising factors in the next pass
    // while the others still read the tail of this one.
    team.sync();
  }
  return count;
}

}  // namespace vs::cuda::core
