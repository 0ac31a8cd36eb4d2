/**
 * @file reference.hpp
 * @brief The GPU graph build's algorithm, run on the CPU: the model the device pipeline follows.
 *
 * Same settings, insertion order and batches as the device pipeline (plan.hpp), and the same
 * core functions (the headers in core/), run serially; only the Gram matrix is computed with common/'s
 * dot products instead of cuBLAS. It exists so that the algorithm (batched insertion: search,
 * prune, reverse edges; final prune; connectivity) is tested on machines without a GPU, and
 * so that a GPU-built graph can be compared with it.
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include "vectorscale/core/control.hpp"
#include "vectorscale/cuda/plan.hpp"
#include "vectorscale/vamana/build.hpp"

namespace vs::cuda {

/** Counters of a GPU-style graph build (device pipeline or reference). */
struct GraphBuildStats {
  std::uint64_t distance_computations = 0;  ///< distances computed by searches (prunes use Gram matrices)
  std::uint64_t capped_searches = 0;        ///< searches stopped by max_iters
  std::uint64_t expansions = 0;             ///< nodes expanded by searches
  std::uint32_t refine_passes = 0;          ///< refinement passes made (GraphSettings::refine_passes_for)
  std::uint64_t spilled_searches = 0;       ///< device: searches whose visited set outgrew its team-shared table
  std::uint64_t reverse_prunes = 0;         ///< lists pruned because reverse edges overfilled them
  std::uint64_t final_prunes = 0;           ///< lists pruned to R at the end
  std::uint32_t repaired_unreachable = 0;   ///< nodes linked by the connectivity pass
  std::size_t batches = 0;                  ///< insertion batches
};

/**
 * Builds the graph of n row-major vectors (unit length for cosine) as the device pipeline does,
 * with insertion batches of at most max_batch rows (0: settings.batch_fraction of n). Polls
 * control.cancel between batches.
 */
[[nodiscard]] vamana::Graph reference_build_graph(const float* vectors, std::size_t n, std::size_t dims,
                                                  const vamana::BuildParams& params, const GraphOptions& options = {},
                                                  std::size_t max_batch = 0, const Control& control = {},
                                                  GraphBuildStats* stats = nullptr);

}  // namespace vs::cuda
