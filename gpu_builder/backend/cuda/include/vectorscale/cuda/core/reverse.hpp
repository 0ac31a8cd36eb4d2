/**
 * @file reverse.hpp
 * @brief Reverse edges of a batch: the union of a node's list with the nodes that chose it.
 *
 * After a batch is pruned, every kept edge p -> q adds the reverse edge q -> p (common/'s
 * add_reverse_edge). On the GPU the edges of a batch are sorted by (q, d(p, q)), and each
 * target q appends its new in-neighbours, nearest first, to its list: while the union fits the
 * in-memory capacity ceil(slack * R) it is written in place, otherwise it (at most
 * max_candidates entries) is pruned back to R, as common/ prunes a list that outgrows its slack.
 */
#pragma once

#include <cstdint>

#include "vectorscale/cuda/core/hd.hpp"

namespace vs::cuda::core {

/** Whether id is among the first n entries of list. */
VS_HD inline bool list_contains(const std::uint32_t* list, std::uint32_t n, std::uint32_t id) noexcept {
  for (std::uint32_t k = 0; k < n; ++k)
    if (list[k] == id) return true;
  return false;
}

/**
 * Size of list (degree entries) plus the entries of `incoming` not already in it, at most
 * `max_candidates`.
 */
VS_HD inline std::uint32_t union_size(const std::uint32_t* list, std::uint32_t degree, const std::uint32_t* incoming,
                                      std::uint32_t count, std::uint32_t max_candidates) noexcept {
  std::uint32_t size = degree;
  for (std::uint32_t k = 0; k < count && size < max_candidates; ++k)
    if (!list_contains(list, degree, incoming[k])) ++size;
  return size;
}

/**
 * Writes that union to out: the list first (out may be the list itself, to append in place),
 * then the new in-neighbours in the order given; returns its size.
 */
VS_HD inline std::uint32_t write_union(const std::uint32_t* list, std::uint32_t degree, const std::uint32_t* incoming,
                                       std::uint32_t count, std::uint32_t max_candidates, std::uint32_t* out) noexcept {
  if (out != list)
    for (std::uint32_t k = 0; k < degree; ++k) out[k] = list[k];
  std::uint32_t size = degree;
  for (std::uint32_t k = 0; k < count && size < max_candidates; ++k)
    if (!list_contains(list, degree, incoming[k])) out[size++] = incoming[k];
  return size;
}

}  // namespace vs::cuda::core
