/**
 * @file device_build.hpp
 * @brief The GPU build of gpu_builder's CUDA backend: SBQ training, codes, medoid and the
 *        Vamana graph on a CUDA device, handed back as host structures (FAISS's "build on the
 *        GPU, hand a CPU structure over"). Host header: no CUDA types.
 *
 * Phases (all on the device unless said):
 *  1. Upload and statistics: the vectors go to the device in chunks through two pinned staging
 *     buffers (copies on one stream overlap the column sums of the previous chunk on another),
 *     or, when they do not fit, stay in host memory mapped into the device's address space.
 *     Per-dimension sums in double give the mean (and, for SBQ with more than one bit, a second
 *     pass the standard deviation), deterministically (fixed groups of rows, reduced in order).
 *  2. SBQ codes (core::sbq_word, bit for bit common/'s encoder) and the medoid (the row nearest
 *     to the mean, ties to the smaller id, as common/'s medoid()).
 *  3. Batched insertion in common/'s seeded order (plan.hpp: batches of 1, 1, 2, 4, ... rows up
 *     to a fraction of n): one block per row searches the graph (core::greedy_search_one), the
 *     expanded nodes' Gram matrices come from batched cuBLAS SGEMMs over rows sorted by
 *     candidate count (gram_batches.hpp), one warp per row prunes (core::prune_node), and
 *     reverse edges are sorted by (target, distance) with CUB and merged
 *     (core::write_union); lists that outgrow ceil(slack * R) are pruned back to R. Refinement
 *     passes repeat this for all rows on the finished graph, pruning the expanded nodes with the
 *     current lists.
 *  4. Every list longer than R is pruned to R.
 *  5. On the host: common/'s connectivity pass (vamana::link_unreachable).
 * The CPU reference (reference.hpp) runs the same algorithm serially and is unit-tested on
 * CPUs; the `gpu` tests compare the two.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "vectorscale/core/control.hpp"
#include "vectorscale/core/memory.hpp"
#include "vectorscale/cuda/gram_batches.hpp"
#include "vectorscale/cuda/plan.hpp"
#include "vectorscale/cuda/reference.hpp"
#include "vectorscale/sbq/sbq.hpp"
#include "vectorscale/vamana/build.hpp"
#include "vectorscale/vamana/index.hpp"

namespace vs::cuda {

/** A CUDA device chosen for building. */
struct DeviceChoice {
  int device = -1;                ///< -1 when no device is usable
  std::string name;               ///< the device's name
  std::uint64_t free_bytes = 0;   ///< free memory when chosen
  std::uint64_t total_bytes = 0;  ///< the device's memory
  std::string reason;             ///< why this one (or why none)
};

/**
 * The device to build on: `requested` when >= 0 (an error when it does not exist), otherwise
 * the device with the most free memory (ties: the smaller id), releasing the contexts that
 * asking created on the other devices (so call it before the process builds on any device).
 * Never throws; device -1 and a reason (the CUDA runtime's words) when there is none.
 */
[[nodiscard]] DeviceChoice choose_device(int requested) noexcept;

/** Free and total memory of a device as its context sees them; both 0 on error. */
struct DeviceMemoryInfo {
  std::uint64_t free_bytes = 0;
  std::uint64_t total_bytes = 0;
};

/** cudaMemGetInfo of `device` (makes it current on the calling thread); never throws. */
[[nodiscard]] DeviceMemoryInfo device_memory_info(int device) noexcept;

/**
 * Why `device` can no longer be used by this process, empty when it can: after an
 * unrecoverable ("sticky") error such as an illegal address in a kernel, every later CUDA call
 * fails the same way until the process restarts. Waits for the device's queued work (call it
 * with no build running). Never throws.
 */
[[nodiscard]] std::string device_fault(int device) noexcept;

/** Options of one device build. */
struct DeviceBuildOptions {
  int device = 0;                 ///< from choose_device
  GraphOptions graph;             ///< algorithm knobs
  PlanLimits limits;              ///< memory-plan overrides (tests force the out-of-core paths)
  double memory_fraction = 0.9;   ///< share of the device's free memory the plan may use
  std::uint32_t train_phase = 0;  ///< progress phase of training (gpu_builder's kPhaseTrain); 0: not reported
};

/**
 * Whether build_on_device can build `rows` rows of `dims` dimensions with these parameters
 * and options on options.device (node ids, list sizes, the kernels' shared memory); the reason
 * when not.
 */
[[nodiscard]] bool device_supports(const vamana::IndexParams& params, std::size_t rows, std::size_t dims,
                                   const DeviceBuildOptions& options, std::string& reason);

/**
 * Whether the device's free memory now holds such a build's graph and its smallest batches
 * (the vectors may stay in host memory: plan_device_memory); the plan's reason when not. A
 * build that does not fit is the CPU backend's, so that a build that fits host memory never
 * fails for lack of device memory. Ask with no other build running on the device.
 */
[[nodiscard]] bool device_memory_fits(const vamana::IndexParams& params, std::size_t rows, std::size_t dims,
                                      const DeviceBuildOptions& options, std::string& reason);

/**
 * Device time of the graph phase (insertion, refinement, final prune) by kind of work, from
 * timing events recorded on the build's stream around each group of launches.
 */
struct DeviceKernelTimes {
  double search = 0;      ///< greedy searches
  double candidates = 0;  ///< candidate lists of refined, overflowing and overfull nodes
  double order = 0;       ///< prune items sorted by candidate count, the histogram copied back
  double gather = 0;      ///< rows gathered for the Gram matrices
  double gemm = 0;        ///< the Gram GEMMs
  double prune = 0;       ///< RobustPrune kernels
  double reverse = 0;     ///< reverse edges
  double host = 0;        ///< the stream idle, waiting for the host (synchronizations, planning)
};

/** Seconds per phase of a device build (host wall clock, device work included). */
struct DeviceBuildTimes {
  double train = 0;    ///< upload, statistics, codes, medoid
  double insert = 0;   ///< batched insertion and refinement passes
  double prune = 0;    ///< final prune
  double connect = 0;  ///< download and connectivity pass
  double total = 0;
  DeviceKernelTimes device;  ///< the graph phase (insert + prune) on the device, by kind of work
};

/** What a device build hands back: host structures only. */
struct DeviceBuildResult {
  vamana::Graph graph;         ///< finished: degree <= R, reachable from the medoid
  sbq::Quantizer quantizer;    ///< memory_optimized only
  Array<std::uint64_t> codes;  ///< memory_optimized only: n * quantizer.words()
  GraphBuildStats stats;
  GramWork gram;  ///< the prunes' Gram GEMMs, as done and as an unbucketed layout would have done them
  MemoryPlan plan;
  DeviceBuildTimes times;
  bool bf16_vectors = false;  ///< the graph phase read bfloat16 vectors (GraphOptions::bf16_vectors)
  std::uint32_t local_visited_slots = 0;  ///< the searches' shared-memory visited slots, as cut to fit the device
  bool query_in_shared = false;           ///< the searches read their query from shared memory (search_query_in_shared)
};

/**
 * Builds the quantizer, codes and graph of n row-major vectors (unit length for cosine; they
 * are only read) on options.device. Reports options.train_phase (rows uploaded) and vamana::BuildPhase
 * progress and polls control.cancel on the calling thread between chunks and batches. Throws
 * vs::Error (kOutOfMemory when the device runs out of memory, kInternal for other CUDA errors,
 * with the call and the runtime's message), vs::Cancelled, or std::bad_alloc.
 */
[[nodiscard]] DeviceBuildResult build_on_device(const float* vectors, std::size_t n, std::size_t dims,
                                                const vamana::IndexParams& params, const Control& control,
                                                const DeviceBuildOptions& options);

}  // namespace vs::cuda
