/**
 * @file prune.hpp
 * @brief RobustPrune with the alpha schedule 1.0, 1.2, ... <= max_alpha and label-aware occlusion.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "vectorscale/vamana/params.hpp"

namespace vs::vamana {

/** Alphas of the schedule: 1.0, 1.0 + step, ... while <= max_alpha (at least {1.0}). */
[[nodiscard]] inline std::vector<float> alpha_schedule(float max_alpha) {
  std::vector<float> out{1.0f};
  for (int k = 1;; ++k) {
    const float a = 1.0f + kAlphaStep * static_cast<float>(k);
    if (a > max_alpha + 1e-4f) break;
    out.push_back(a);
  }
  return out;
}

/**
 * Selects at most R of the candidates of node p (DiskANN RobustPrune).
 *
 * Candidates are given by their distance to p, sorted ascending. A kept candidate s occludes
 * a later candidate c at alpha a when a * d(s, c) < d(p, c); the schedule runs a = 1.0, 1.2,
 * ... so that the closest diverse neighbours are kept first and longer edges fill the list
 * at larger a. For metrics whose distances may be negative (inner product) the ratio is
 * meaningless, so `ratio_rule = false` uses the plain test d(s, c) < d(p, c) at a = 1 only.
 *
 * @param dist_to_p   d(p, c_i), ascending
 * @param pair        pair(i, j) = d(c_i, c_j)
 * @param may_occlude may_occlude(s, c): whether kept candidate s may occlude candidate c
 *                    (Filtered DiskANN: s carries every label c shares with p)
 * @param out         receives the indices of the kept candidates, in selection order
 */
template <class PairDistance, class MayOcclude>
void robust_prune(std::span<const float> dist_to_p, std::uint32_t R, float max_alpha, bool ratio_rule,
                  PairDistance&& pair, MayOcclude&& may_occlude, std::vector<std::uint32_t>& out,
                  std::vector<float>& factor) {
  out.clear();
  const std::size_t n = dist_to_p.size();
  factor.assign(n, 0.0f);
  constexpr float kSelected = std::numeric_limits<float>::infinity();
  std::vector<float> schedule = ratio_rule ? alpha_schedule(max_alpha) : std::vector<float>{1.0f};
  const float last_alpha = schedule.back();
  for (const float alpha : schedule) {
    for (std::size_t i = 0; i < n && out.size() < R; ++i) {
      if (factor[i] > alpha) continue;  // occluded at this alpha, or already kept
      factor[i] = kSelected;
      out.push_back(static_cast<std::uint32_t>(i));
      for (std::size_t j = i + 1; j < n; ++j) {
        if (factor[j] > last_alpha) continue;  // can never be chosen any more
        if (!may_occlude(i, j)) continue;
        const float dsc = pair(i, j);
        if (ratio_rule) {
          const float ratio = dsc > 0.0f ? dist_to_p[j] / dsc : std::numeric_limits<float>::max();
          if (ratio > factor[j]) factor[j] = ratio;
        } else if (dsc < dist_to_p[j]) {
          factor[j] = std::numeric_limits<float>::max();
        }
      }
    }
    if (out.size() >= R) break;
  }
}

}  // namespace vs::vamana
