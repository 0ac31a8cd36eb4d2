/**
 * @file labels.hpp
 * @brief Label sets of Filtered DiskANN: sorted, duplicate-free int16 lists per node.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace vs::vamana {

/** Label id (SQL smallint). */
using Label = std::int16_t;

/** Labels of n nodes in CSR form: node i has values[offsets[i] .. offsets[i+1]), sorted, unique. */
struct LabelSets {
  std::vector<std::uint32_t> offsets{0};
  std::vector<Label> values;

  /** Number of nodes described. */
  [[nodiscard]] std::size_t size() const noexcept { return offsets.size() - 1; }
  /** Labels of node i. */
  [[nodiscard]] std::span<const Label> of(std::size_t i) const noexcept {
    return {values.data() + offsets[i], offsets[i + 1] - offsets[i]};
  }
  /** Appends a node; `labels` may be unsorted and hold duplicates. */
  void push_back(std::span<const Label> labels);
  /** True when no node has a label. */
  [[nodiscard]] bool empty() const noexcept { return values.empty(); }
};

/** True when two sorted label lists share an element. */
[[nodiscard]] inline bool labels_overlap(std::span<const Label> a, std::span<const Label> b) noexcept {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) return true;
    if (a[i] < b[j]) ++i;
    else ++j;
  }
  return false;
}

/** True when sorted `s` holds every element of (c ∩ p), all sorted (label-aware occlusion). */
[[nodiscard]] inline bool covers_intersection(std::span<const Label> s, std::span<const Label> c,
                                              std::span<const Label> p) noexcept {
  std::size_t i = 0, j = 0, k = 0;
  while (i < c.size() && j < p.size()) {
    if (c[i] < p[j]) { ++i; continue; }
    if (p[j] < c[i]) { ++j; continue; }
    const Label need = c[i];
    while (k < s.size() && s[k] < need) ++k;
    if (k == s.size() || s[k] != need) return false;
    ++i;
    ++j;
  }
  return true;
}

}  // namespace vs::vamana
