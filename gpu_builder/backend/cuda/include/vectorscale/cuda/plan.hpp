/**
 * @file plan.hpp
 * @brief How the GPU graph build is shaped: settings derived from BuildParams, the insertion
 *        batches (over common/'s vamana::insertion_order), and the device-memory plan. Host code, shared by the device
 *        pipeline and its CPU reference.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vectorscale/cuda/core/prune_node.hpp"
#include "vectorscale/vamana/params.hpp"

namespace vs::cuda {

/** Knobs of the GPU graph build beyond BuildParams (defaults are the tuned values). */
struct GraphOptions {
  /** Largest insertion batch as a fraction of the rows (cuVS Vamana's max_fraction). */
  double batch_fraction = 0.06;
  /** Largest insertion batch as a fraction of the rows inserted before it. */
  double batch_growth = 1.0;
  /** Most expansions of one search, as a multiple of L (bounds the scratch memory). */
  double max_iters_factor = 3.0;
  /**
   * Passes over all rows after the insertion, each searching the finished graph for every row
   * and pruning the expanded nodes together with its current list (DiskANN's second pass):
   * recovers the edges between rows of one batch, which could not see each other. Builds of
   * more than refine_max_rows rows make none.
   */
  std::uint32_t refine_passes = 1;
  /**
   * Most rows of a build that refines (0: no limit). A pass costs as many searches as the
   * insertion, the largest part of the build, and on realistic data it bought little: on
   * docs768 (50,000 rows) recall@10 at L=10/20/50 was 0.7296/0.9176/0.9900 with a pass,
   * 0.7265/0.9137/0.9889 without, 0.7254/0.9148/0.9890 for the CPU build; on small sets of
   * near-tie clusters it is worth 1 to 2 points, and there it costs little time.
   */
  std::size_t refine_max_rows = 100000;
  /**
   * Gram matrices of the prunes with TF32 tensor cores (inputs rounded to 10-bit mantissas,
   * FP32 sums) instead of FP32: several times faster on Ampere and Hopper, distances to about
   * 1e-3 relative, which can change RobustPrune's choice between near ties. A tuning knob; off
   * by default until benchmarks show recall is unchanged.
   */
  bool tf32_gram = false;
  /**
   * The graph build reads the vectors (the searches' distances and the prunes' Gram matrices,
   * by a BF16 GEMM with FP32 sums) rounded to bfloat16: half the memory traffic of the
   * searches, which are bound by it, and tensor-core GEMMs. The index still stores the float
   * vectors, and the medoid, SBQ training and codes use them. Recall on docs768 (cosine) was
   * unchanged in the CPU reference (see the CUDA backend in gpu_builder/README.md).
   */
  bool bf16_vectors = true;
  /**
   * Slots of the visited set each search keeps in shared memory, in front of its table in
   * global memory (core::visit_two_level): a power of two, at least core::kLocalProbes, or 0 for
   * the global table alone. The global table is then touched (and cleared) only by the few
   * searches that see more nodes than the shared table holds, instead of every search writing
   * its whole table (256 KiB at R 50, L 100) and probing it with global atomics. Cut to fit the
   * device's shared memory.
   */
  std::uint32_t local_visited_slots = 4096;
  /**
   * The search kernel held to 32 registers a thread (__launch_bounds__), so that 16 blocks of
   * 128 threads share an SM instead of the 10 that its shared memory allows on sm_90 (ptxas
   * fits the bfloat16 kernel without spills by keeping fewer loads in flight; the float one
   * spills 16 bytes); the shared visited table is cut so that 16 blocks' shared memory fits
   * too (2,048 slots at L 100). A tuning knob until a GPU run compares the two.
   */
  bool search_full_occupancy = false;
  /**
   * Each search copies its query row into shared memory and reads it from there (768 bfloat16
   * dims: 1.5 KiB a block), where it would otherwise read it from global memory for every
   * distance, through an L1 that the streaming rows keep evicting it from. Only where it fits
   * beside the smallest shared visited table; the visited table is cut to make room for it.
   */
  bool search_query_in_shared = true;
};

/** The derived settings every stage of the GPU build uses. */
struct GraphSettings {
  core::Metric metric = core::Metric::kCosine;
  std::uint32_t R = 0;               ///< final out-degree bound
  std::uint32_t L = 0;               ///< build search list size
  std::uint32_t stride = 0;          ///< list capacity while building: ceil(slack * R)
  std::uint32_t max_iters = 0;       ///< most expansions (RobustPrune candidates) of one search
  std::uint32_t max_candidates = 0;  ///< most candidates of one prune: max(max_iters, stride + R)
  double batch_fraction = 0.06;
  double batch_growth = 1.0;
  std::uint32_t refine_passes = 1;
  std::size_t refine_max_rows = 100000;
  std::uint32_t local_slots = 0;  ///< team-shared visited slots: the option, at most the global table's
  core::PruneParams prune;  ///< metric, R, alpha schedule, ratio rule

  /** Refinement passes of a build of n rows (refine_passes, or 0 above refine_max_rows). */
  [[nodiscard]] std::uint32_t refine_passes_for(std::size_t n) const noexcept {
    return refine_max_rows != 0 && n > refine_max_rows ? 0 : refine_passes;
  }
};

/**
 * Settings for params (checked with vamana::check). Throws vs::Error kInvalidArgument when one
 * search could see more than kMaxSearchReach nodes (search_list_size far beyond any device).
 */
[[nodiscard]] GraphSettings derive_settings(const vamana::BuildParams& params, const GraphOptions& options = {});

/**
 * Insertion batches [begin, end) over the order: each at most `growth` times the rows inserted
 * before it (at least 1) and at most max_batch, so that most neighbours of a batch's rows are
 * in the graph when they are searched (growth 1: 1, 1, 2, 4, 8, ...).
 */
[[nodiscard]] std::vector<std::pair<std::size_t, std::size_t>> insertion_batches(std::size_t n, std::size_t max_batch,
                                                                                 double growth = 1.0);

/** Most nodes one search may see (max_iters * stride): keeps the core's 32-bit sizes exact. */
inline constexpr double kMaxSearchReach = static_cast<double>(1u << 29);

/** Most edges (rows * R) of one batch's reverse-edge step: its run starts and counts, and CUB's counts, are int. */
inline constexpr std::size_t kMaxBatchEdges = (std::size_t{1} << 31) - 1;

/** Rows summed by one block of the SBQ statistics kernels; upload chunks are multiples of it. */
inline constexpr std::size_t kStatsRows = 256;

/** Overrides of the memory plan (tests force the out-of-core paths on small data). */
struct PlanLimits {
  std::uint64_t budget = 0;      ///< bytes to plan for; 0 = what the device has free
  std::size_t upload_rows = 0;   ///< rows per upload chunk; 0 = about 64 MiB
  std::size_t search_batch = 0;  ///< most rows searched at once; 0 = by memory
  std::size_t prune_batch = 0;   ///< most nodes per prune group (and Gram buffers); 0 = by memory
  bool force_mapped = false;     ///< never copy the vectors to the device
  /** Train from mapped host memory even where the float vectors fit the device (the bfloat16 copy is still made). */
  bool force_mapped_training = false;
};

/** The device-memory plan of one build. */
struct MemoryPlan {
  bool resident = true;  ///< float vectors on the device; false: read from mapped pinned host memory
  /**
   * The graph phase reads a bfloat16 copy of the vectors on the device (made from the resident
   * float vectors, which it then replaces, or from mapped host memory); false: the float vectors.
   */
  bool bf16_graph = false;
  std::uint64_t budget = 0;           ///< bytes planned for
  std::uint64_t peak = 0;             ///< bytes the plan uses at most
  std::size_t upload_rows = 0;        ///< rows per upload chunk (a multiple of kStatsRows)
  std::size_t search_batch = 0;       ///< rows searched per launch, the largest insertion batch
  std::size_t prune_batch = 0;        ///< nodes per prune group; the Gram buffers hold this many at gram_dim
  std::uint32_t gram_dim = 0;         ///< rows of the largest Gram matrix: max_candidates + 1, rounded up to 4
  std::uint32_t table_slots = 0;      ///< visited-table slots per search
  std::uint64_t vector_bytes = 0;     ///< the graph phase's vectors on the device (0 when mapped)
  std::uint64_t train_vector_bytes = 0;  ///< the float vectors on the device while training (0 when mapped)
  std::uint64_t graph_bytes = 0;      ///< adjacency, degrees, order
  std::uint64_t train_bytes = 0;      ///< SBQ partial sums and codes (before the graph phase)
  std::uint64_t per_query_bytes = 0;  ///< search + reverse-edge scratch + prune order per batch row
  std::uint64_t per_prune_bytes = 0;  ///< gathered vectors + Gram matrix + candidates + order per pruned node

  /** One line for logs. */
  [[nodiscard]] std::string describe() const;
};

/**
 * Plans a build of n rows of `dims` floats with `code_words` SBQ words per row (0 for plain)
 * into `budget` bytes of device memory; bf16_graph: the graph phase may read bfloat16 copies
 * (GraphOptions::bf16_vectors on a device with BF16 GEMMs). The first that fits, with a
 * working set of at least one row:
 *  - the float vectors resident (uploaded once; training reads them there), replaced by their
 *    bfloat16 copy for the graph phase when bf16_graph (both on the device for a moment);
 *  - bf16_graph: training reads the float vectors from mapped host memory, the graph phase the
 *    bfloat16 copy on the device (half the bytes of float: mid-size builds keep their searches
 *    in device memory instead of on the bus);
 *  - the vectors in mapped host memory throughout (slow, the bus).
 * Batch sizes shrink to fit. Throws vs::Error kOutOfMemory when none fits (not even the graph).
 */
[[nodiscard]] MemoryPlan plan_device_memory(std::uint64_t budget, std::size_t n, std::size_t dims,
                                            std::size_t code_words, const GraphSettings& settings,
                                            const PlanLimits& limits = {}, bool bf16_graph = false);

}  // namespace vs::cuda
