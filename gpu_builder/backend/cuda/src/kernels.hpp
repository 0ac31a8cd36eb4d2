// The kernels of the CUDA backend, as launchers callable from host C++ (no CUDA syntax here:
// this header compiles with the host compiler too). Every launcher enqueues its work on
// `stream` and returns the status of the launch (cudaGetLastError right after it) or of the
// first CUB call that failed; the host code checks each with VS_CUDA_TRY. Pointers are device
// pointers (or mapped host memory for the vectors). Internal to the backend.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "vectorscale/cuda/core/prune_node.hpp"
#include "vectorscale/cuda/core/search.hpp"

namespace vs::cuda::kernels {

// ---- SBQ statistics, codes, medoid (train.cu) -------------------------------------------
/**
 * partials[(first_group + g) * dims + d] = sum of x[r][d] over the rows of group g (kStatsRows
 * rows each; the last may be short) of the `rows` rows at x; with mean != null the sum is of
 * (x[r][d] - mean[d])^2 instead. Sums in double.
 */
cudaError_t column_sums(const float* x, std::size_t rows, std::size_t dims, const double* mean, std::size_t first_group,
                        double* partials, cudaStream_t stream);
/** out[d] = (sum over g < groups of partials[g * dims + d], in order) / divisor (deterministic). */
cudaError_t reduce_groups(const double* partials, std::size_t groups, std::size_t dims, double divisor, double* out,
                          cudaStream_t stream);
/** codes[i * words + w] = core::sbq_word(x[i], ...) for rows i < rows. */
cudaError_t sbq_encode(const float* x, std::size_t rows, std::size_t dims, const float* mean, const float* inv_stddev,
                       std::uint32_t bits, std::uint64_t* codes, cudaStream_t stream);
/** out[i] = core::to_bf16(x[i]) for i < count (the vectors the graph build reads). */
cudaError_t round_bf16(const float* x, std::size_t count, core::Bf16* out, cudaStream_t stream);
/** keys[i] = (order bits of l2(centroid, x[i]) << 32) | i. */
cudaError_t medoid_keys(const float* x, std::size_t n, std::size_t dims, const float* centroid, std::uint64_t* keys,
                        cudaStream_t stream);
/** *out = min of keys[0..n) (CUB); temp/temp_bytes as CUB's: null temp asks for the size. */
cudaError_t min_key(void* temp, std::size_t& temp_bytes, const std::uint64_t* keys, std::size_t n, std::uint64_t* out,
                    cudaStream_t stream);

// ---- greedy search (search.cu) --------------------------------------------------------------
/** Blocks of the full-occupancy search kernel that share an SM (its registers allow them). */
inline constexpr unsigned kSearchFullOccupancyBlocks = 16;
/**
 * Dynamic shared memory the search kernel needs with a team-shared visited table of local_slots
 * and a staged query of query_bytes (SearchArgs::query_bytes).
 */
std::size_t search_shared_bytes(std::uint32_t list_size, std::uint32_t stride, std::uint32_t local_slots = 0,
                                std::uint32_t query_bytes = 0);
/**
 * One block per query: core::greedy_search_one for vectors queries[b] from `start`. Tables
 * (count * table_slots, all core::kEmptySlot, and left so) are the global halves of the visited
 * sets (each in front of a team-shared table of args.local_slots); log_id/log_key (count *
 * args.max_iters) receive the expansions, log_count[b] their number. The counters (kCounters)
 * grow by the distances computed, the searches that hit max_iters, the nodes expanded and the
 * searches that used their global table. full_occupancy: the kernel held to 32 registers a
 * thread, so that kSearchFullOccupancyBlocks blocks fit an SM (GraphOptions::search_full_occupancy;
 * their shared memory must fit too).
 */
enum SearchCounter : unsigned { kDistances, kCapped, kExpansions, kSpilled, kCounters };
cudaError_t search(const core::SearchArgs& args, const std::uint32_t* queries, std::uint32_t count, std::uint32_t start,
                   std::uint32_t* tables, std::uint32_t table_slots, std::uint32_t* log_id, float* log_key,
                   std::uint32_t* log_count, unsigned long long* counters, bool full_occupancy, cudaStream_t stream);
/** The same over bfloat16 vectors. */
cudaError_t search(const core::SearchArgsOf<core::Bf16>& args, const std::uint32_t* queries, std::uint32_t count,
                   std::uint32_t start, std::uint32_t* tables, std::uint32_t table_slots, std::uint32_t* log_id,
                   float* log_key, std::uint32_t* log_count, unsigned long long* counters, bool full_occupancy,
                   cudaStream_t stream);

// ---- prune (prune.cu) -----------------------------------------------------------------------
// A prune group is `count` items: nodes[i], its candidates cand[i * cand_stride ...] and
// counts[i]. order_by_count sorts the items by count; each GEMM sub-batch (gram_batches.hpp) is
// a run order[begin, end) of that order, and the kernels below take the run's `order` pointer:
// position j of the sub-batch is item order[j], its rows and Gram matrix sit at index j of the
// sub-batch's buffers, and everything read or written per item (nodes, cand, counts,
// kept_distance) is at the item's own index, so no caller sees the permutation.
/** CUB temporary storage order_by_count needs for `items` items. */
cudaError_t order_temp_bytes(std::uint32_t items, std::uint32_t max_count, std::size_t& bytes);
/**
 * histogram[c] = items i < count with counts[i] == c for c <= max_count, histogram[max_count +
 * 1] = items with more (an error of the caller: it must be 0); order[0..count) = the item indices
 * sorted by count, stable (CUB radix sort of (counts[i], i); ids and sorted_counts are scratch
 * of `count` entries).
 */
cudaError_t order_by_count(const std::uint32_t* counts, std::uint32_t count, std::uint32_t max_count,
                           std::uint32_t* histogram, std::uint32_t* ids, std::uint32_t* sorted_counts,
                           std::uint32_t* order, void* temp, std::size_t temp_bytes, cudaStream_t stream);
/**
 * Gram-matrix inputs of the `count` items order[0..count): for item i = order[j], rows[j][0] =
 * x[nodes[i]], rows[j][1 + c] = x[cand[i * cand_stride + c]] for c < counts[i], zero rows up to
 * gram_dim (row-major, gram_dim x dims per position).
 */
cudaError_t gather_rows(const float* x, std::size_t dims, const std::uint32_t* nodes, const std::uint32_t* cand,
                        std::size_t cand_stride, const std::uint32_t* counts, const std::uint32_t* order,
                        std::uint32_t count, std::uint32_t gram_dim, float* rows, cudaStream_t stream);
/** The same from bfloat16 vectors into bfloat16 rows (for a BF16 GEMM). */
cudaError_t gather_rows(const core::Bf16* x, std::size_t dims, const std::uint32_t* nodes, const std::uint32_t* cand,
                        std::size_t cand_stride, const std::uint32_t* counts, const std::uint32_t* order,
                        std::uint32_t count, std::uint32_t gram_dim, core::Bf16* rows, cudaStream_t stream);
/** Dynamic shared memory per warp (node) of the prune kernel for `capacity` candidates. */
std::size_t prune_shared_bytes(std::uint32_t capacity);
/**
 * One warp per position j < count: core::prune_node of item i = order[j] (node nodes[i], counts[i]
 * <= capacity candidates) with gram[j] (gram_dim^2, column-major), writing the kept list to
 * neighbors[nodes[i] * stride ...], degrees[nodes[i]], and (when kept_distance != null) the kept
 * distances to kept_distance[i * params.R ...]. The result depends only on the item's count and
 * Gram entries (rows 0..counts[i]), not on gram_dim, capacity or j.
 */
cudaError_t prune(const float* gram, std::uint32_t gram_dim, const std::uint32_t* nodes, const std::uint32_t* cand,
                  std::size_t cand_stride, const std::uint32_t* counts, const std::uint32_t* order, std::uint32_t count,
                  std::uint32_t capacity, const core::PruneParams& params, std::uint32_t* neighbors,
                  std::uint32_t stride, std::uint32_t* degrees, float* kept_distance, cudaStream_t stream);
/**
 * Candidates of a refining prune: cand[i] = core::write_union(list of nodes[i], log[i]), counts[i]
 * its size (at most max_candidates, the row stride of cand).
 */
cudaError_t refine_candidates(const std::uint32_t* nodes, const std::uint32_t* neighbors, std::uint32_t stride,
                              const std::uint32_t* degrees, const std::uint32_t* log_id, std::uint32_t log_stride,
                              const std::uint32_t* log_count, std::uint32_t count, std::uint32_t max_candidates,
                              std::uint32_t* cand, std::uint32_t* counts, cudaStream_t stream);
/** Appends every node with more than R neighbours to nodes[*count++] (order unspecified). */
cudaError_t select_overfull(const std::uint32_t* degrees, std::size_t n, std::uint32_t R, std::uint32_t* nodes,
                            std::uint32_t* count, cudaStream_t stream);
/** cand[i] = the list of nodes[i], counts[i] its degree (rows of max_candidates). */
cudaError_t list_candidates(const std::uint32_t* nodes, std::uint32_t count, const std::uint32_t* neighbors,
                            std::uint32_t stride, const std::uint32_t* degrees, std::uint32_t max_candidates,
                            std::uint32_t* cand, std::uint32_t* counts, cudaStream_t stream);

// ---- reverse edges (reverse.cu) -------------------------------------------------------------
/** Device buffers of the reverse-edge step of one batch (edges = batch rows * R). */
struct ReverseBuffers {
  std::uint64_t* keys[2];     ///< edge keys, in and sorted
  std::uint32_t* values[2];   ///< source nodes, in and sorted
  std::uint32_t* targets;     ///< target of each sorted edge
  std::uint32_t* run_target;  ///< per run: target node
  std::uint32_t* run_length;  ///< per run: edges
  std::uint32_t* run_start;   ///< per run: first sorted edge
  std::uint32_t* run_count;   ///< [0] runs, [1] overflowing runs
  std::uint32_t* overflow;    ///< runs whose union outgrows the list
  void* temp;                 ///< CUB temporary storage
  std::size_t temp_bytes;
};
/** CUB temporary storage the reverse step needs for `edges` edges. */
cudaError_t reverse_temp_bytes(std::size_t edges, std::size_t& bytes);
/**
 * The reverse edges of the `count` rows nodes[0..count): sorts the edges (q = kept neighbour
 * of p, d(p, q)) by (q, distance), then per target q appends its new in-neighbours to its list
 * in place when the union fits `stride`, or records the run in `overflow` (run_count[1]) for a
 * prune. kept_distance holds the distances written by the prune (R per row).
 */
cudaError_t reverse_edges(const std::uint32_t* nodes, std::uint32_t count, const float* kept_distance, std::uint32_t R,
                          std::uint32_t* neighbors, std::uint32_t stride, std::uint32_t* degrees,
                          std::uint32_t max_candidates, const ReverseBuffers& buf, cudaStream_t stream);
/**
 * Prune inputs of overflowing runs [first, first + count): nodes[i] = the target, cand[i] =
 * the union of its list and its in-neighbours (max_candidates per row), counts[i] its size.
 */
cudaError_t overflow_candidates(const ReverseBuffers& buf, std::uint32_t first, std::uint32_t count,
                                const std::uint32_t* neighbors, std::uint32_t stride, const std::uint32_t* degrees,
                                std::uint32_t max_candidates, std::uint32_t* nodes, std::uint32_t* cand,
                                std::uint32_t* counts, cudaStream_t stream);

}  // namespace vs::cuda::kernels
