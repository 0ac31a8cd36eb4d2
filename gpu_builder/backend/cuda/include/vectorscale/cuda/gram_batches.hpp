/**
 * @file gram_batches.hpp
 * @brief How one group of prunes is cut into Gram GEMM sub-batches of similar candidate counts.
 *        Host code (vs_cuda_core), shared by the device pipeline and its CPU tests.
 *
 * Each pruned item needs a Gram matrix of 1 + count rows (gram.hpp), and a batched GEMM pads
 * every item to one gram_dim, so a group padded to its longest list does several times the
 * work its items need (counts run from a few dozen to max_candidates). The device sorts a
 * group's items by candidate count (stable; ties keep item order) and copies back the
 * histogram of counts; from that histogram alone plan_gram_batches cuts the sorted items into
 * runs [begin, end), each with the smallest gram_dim its longest list allows, as many items as
 * the planned row and Gram buffers hold at that gram_dim (more than the plan's prune batch when
 * gram_dim is small), and neighbouring classes merged only where the saved GEMM launches are
 * worth more than the padding they add (a cost model, below). Every item is in exactly one
 * sub-batch; a prune's result depends only on its own Gram entries (rows 0..count), never on
 * gram_dim or on which sub-batch holds it.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vs::cuda {

struct MemoryPlan;

/** gram_dim is a multiple of this (16-byte columns), as the plan's gram_dim is. */
inline constexpr std::uint32_t kGramAlign = 4;

/**
 * Cost model of plan_gram_batches, in GEMM multiply-adds: an item at gram_dim g costs
 * g * dims * (g + kGramRowCost) (the GEMM's g^2 * dims, plus the g * dims floats gathered,
 * written and read again by the GEMM, which cost about as much as kGramRowCost multiply-adds
 * each on an FP32 GEMM at HBM bandwidth), and every sub-batch kGramLaunchCost more (its three
 * launches, about 10 us of an H100). Tuning constants: only the choice of merges depends on them.
 */
inline constexpr double kGramRowCost = 64;
inline constexpr double kGramLaunchCost = 2.5e8;

/** One GEMM sub-batch: positions [begin, end) of the group's items sorted by candidate count. */
struct GramBatch {
  std::uint32_t begin = 0;
  std::uint32_t end = 0;
  std::uint32_t most = 0;      ///< the largest candidate count in the sub-batch (its last item's)
  std::uint32_t gram_dim = 0;  ///< gram_dim_for(most): rows per item
};

/** The Gram buffers one group's sub-batches share (device_build.cpp's Work::rows and ::gram). */
struct GramCapacity {
  std::uint64_t row_floats = 0;    ///< gathered rows: items * gram_dim * dims at most
  std::uint64_t gram_floats = 0;   ///< Gram matrices: items * gram_dim^2 at most
  std::uint32_t max_gram_dim = 0;  ///< the largest gram_dim (the plan's: max_candidates + 1, aligned)
  std::size_t dims = 0;
};

/** The buffers of a memory plan: prune_batch items at the plan's gram_dim. */
[[nodiscard]] GramCapacity gram_capacity(const MemoryPlan& plan, std::size_t dims);

/** Rows of the Gram matrix of items with at most `most` candidates: 1 + most, aligned, at most max_gram_dim. */
[[nodiscard]] std::uint32_t gram_dim_for(std::uint32_t most, std::uint32_t max_gram_dim) noexcept;

/**
 * Most items of one strided-batched GEMM call. cuBLAS takes the count as an int, and batch
 * counts above 65,535 (a grid's y and z limit) have broken batched GEMMs before (cuBLAS on
 * sm_70, CUTLASS's GemmBatched); an extra call per 65,535 items costs next to nothing.
 */
inline constexpr std::uint64_t kMaxGemmBatch = 65535;

/**
 * Items of gram_dim rows that fit the buffers at once, at most kMaxGemmBatch (at least 1 when
 * gram_dim <= max_gram_dim fits).
 */
[[nodiscard]] std::uint64_t gram_batch_items(const GramCapacity& cap, std::uint32_t gram_dim) noexcept;

/**
 * The sub-batches of a group whose items have the candidate counts in `histogram`
 * (histogram[c] = items with c candidates; their sorted positions follow from it). The
 * sub-batches are in order, cover [0, items) exactly once, have gram_dim >= 1 + every member's
 * count and stay within `cap`. Among the cuts of the sorted items into runs of whole gram_dim
 * classes (each run split evenly where the buffers cannot hold it) it is the cheapest under the
 * cost model, so its padded work exceeds the one-run-per-class layout's by at most
 * launch_cost per class. Throws vs::Error kInvalidArgument when a count needs more than
 * cap.max_gram_dim rows or one item of max_gram_dim does not fit, or when there are 2^32 or
 * more items.
 */
[[nodiscard]] std::vector<GramBatch> plan_gram_batches(std::span<const std::uint32_t> histogram,
                                                       const GramCapacity& cap, double launch_cost = kGramLaunchCost);

/** Cost of a layout under the model above (for tests and tuning). */
[[nodiscard]] double gram_batches_cost(std::span<const GramBatch> batches, std::size_t dims,
                                       double launch_cost = kGramLaunchCost) noexcept;

/**
 * Work of the prunes' Gram GEMMs over a build, as done (sub-batches) and as the layout before
 * bucketing would have done it (every item of a group at the gram_dim of the group's longest
 * list), for logs: the saving can be read without a profiler.
 */
struct GramWork {
  std::uint64_t items = 0;        ///< prunes (each item of each group once)
  std::uint64_t groups = 0;       ///< prune groups (one histogram each)
  std::uint64_t sub_batches = 0;  ///< GEMMs launched
  double flops = 0;               ///< 2 * sum of items * gram_dim^2 * dims over the sub-batches
  double row_bytes = 0;           ///< gathered rows: sum of items * gram_dim * dims * element bytes
  double flops_unbucketed = 0;    ///< the same, every item of a group at the group's gram_dim
  double row_bytes_unbucketed = 0;

  /**
   * Adds one group: its histogram and the sub-batches planned for it, with rows of
   * element_bytes per value (4: float, 2: bfloat16).
   */
  void add_group(std::span<const std::uint32_t> histogram, std::span<const GramBatch> batches, std::size_t dims,
                 std::uint32_t max_gram_dim, double element_bytes = 4) noexcept;
  /** One line for logs. */
  [[nodiscard]] std::string describe() const;
};

}  // namespace vs::cuda
