/**
 * @file sort.hpp
 * @brief Team-parallel sorting network and merge of candidate lists (distance, id[, payload]).
 */
#pragma once

#include <cstdint>

#include "vectorscale/cuda/core/hd.hpp"

namespace vs::cuda::core {

/**
 * Sorts m entries (m a power of two) by candidate_less on (key, id) with a bitonic network;
 * `payload` (may be null) moves with its entry. Pad unused entries with (+inf, kNoNode): they
 * sort last. Every compare-exchange of a stage touches its own pair, so stages are race-free.
 */
template <class Team>
VS_HD void bitonic_sort(const Team& team, float* key, std::uint32_t* id, std::uint32_t* payload, std::uint32_t m) {
  for (std::uint32_t k = 2; k <= m; k <<= 1) {
    for (std::uint32_t j = k >> 1; j > 0; j >>= 1) {
      team.for_each(m >> 1, [&](std::uint32_t t) {
        // The t-th pair of this stage: i has bit j clear, l = i | j.
        const std::uint32_t i = ((t & ~(j - 1)) << 1) | (t & (j - 1));
        const std::uint32_t l = i | j;
        const bool ascending = (i & k) == 0;
        const bool out_of_order =
            ascending ? candidate_less(key[l], id[l], key[i], id[i]) : candidate_less(key[i], id[i], key[l], id[l]);
        if (out_of_order) {
          const float tk = key[i];
          key[i] = key[l];
          key[l] = tk;
          const std::uint32_t ti = id[i];
          id[i] = id[l];
          id[l] = ti;
          if (payload != nullptr) {
            const std::uint32_t tp = payload[i];
            payload[i] = payload[l];
            payload[l] = tp;
          }
        }
      });
    }
  }
}

/** Number of the first n entries of a sorted list that come before (d, i). */
VS_HD inline std::uint32_t count_before(const float* key, const std::uint32_t* id, std::uint32_t n, float d,
                                        std::uint32_t i) noexcept {
  std::uint32_t lo = 0, hi = n;
  while (lo < hi) {
    const std::uint32_t mid = (lo + hi) >> 1;
    if (candidate_less(key[mid], id[mid], d, i))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/** Number of the n entries of a list in any order that come before (d, i). */
VS_HD inline std::uint32_t count_before_unsorted(const float* key, const std::uint32_t* id, std::uint32_t n, float d,
                                                 std::uint32_t i) noexcept {
  std::uint32_t c = 0;
  for (std::uint32_t k = 0; k < n; ++k) c += candidate_less(key[k], id[k], d, i) ? 1u : 0u;
  return c;
}

/**
 * Merges sorted list a (na entries with flags) and the nb entries of b, in any order (flag 0),
 * into out, keeping the first `cap` entries; returns the merged size. The ids of a and b must be
 * distinct: then every entry has its own output position (the entries of a and of b before
 * it: a binary search in a, a count over b), which is what lets the team write them in
 * parallel without sorting b first (b is short: the new candidates of one search step).
 * When first_unexpanded (team-shared) is not null, the least output position of an entry with
 * flag 0 is atomic_min'ed into it; the caller sets it to kNoNode before.
 */
template <class Team>
VS_HD std::uint32_t merge_lists(const Team& team, const float* a_key, const std::uint32_t* a_id,
                                const std::uint8_t* a_flag, std::uint32_t na, const float* b_key,
                                const std::uint32_t* b_id, std::uint32_t nb, float* out_key, std::uint32_t* out_id,
                                std::uint8_t* out_flag, std::uint32_t cap, std::uint32_t* first_unexpanded = nullptr) {
  team.for_each(na + nb, [&](std::uint32_t t) {
    const bool in_a = t < na;
    const std::uint32_t j = in_a ? t : t - na;
    const float key = in_a ? a_key[j] : b_key[j];
    const std::uint32_t id = in_a ? a_id[j] : b_id[j];
    const std::uint8_t flag = in_a ? a_flag[j] : 0;
    const std::uint32_t pos =
        (in_a ? j : count_before(a_key, a_id, na, key, id)) + count_before_unsorted(b_key, b_id, nb, key, id);
    if (pos < cap) {
      out_key[pos] = key;
      out_id[pos] = id;
      out_flag[pos] = flag;
      if (flag == 0 && first_unexpanded != nullptr) (void)team.atomic_min(first_unexpanded, pos);
    }
  });
  return na + nb < cap ? na + nb : cap;
}

}  // namespace vs::cuda::core
