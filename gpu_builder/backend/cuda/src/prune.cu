// RobustPrune of many nodes: order a group's items by candidate count (CUB), gather each
// item's rows for its Gram matrix (the GEMM itself is a batched cuBLAS call per sub-batch in
// device_build.cpp), then one warp per item runs core::prune_node.
#include "detail/cub.cuh"
#include "detail/device.cuh"
#include "detail/teams.cuh"
#include "kernels.hpp"
#include "vectorscale/cuda/core/reverse.hpp"
#include "vectorscale/cuda/gram.hpp"

namespace vs::cuda::kernels {

namespace {

constexpr unsigned kPruneWarps = 4;  // warps (nodes) per block, fewer when their shared memory is large
constexpr std::size_t kDefaultShared = 48 * 1024;

// One thread per item: histogram of the counts (the last bin: counts over max_count), ids[i] = i.
__global__ void count_histogram_kernel(const std::uint32_t* __restrict__ counts, std::uint32_t count,
                                       std::uint32_t max_count, std::uint32_t* __restrict__ histogram,
                                       std::uint32_t* __restrict__ ids) {
  const std::uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= count) return;
  const std::uint32_t c = counts[i];
  atomicAdd(histogram + (c <= max_count ? c : max_count + 1), 1u);
  ids[i] = i;
}

// Bits of the largest sort key.
std::uint32_t key_bits(std::uint32_t max_count) {
  std::uint32_t bits = 1;
  while (bits < 32 && (max_count >> bits) != 0) ++bits;
  return bits;
}

// One warp per (row, position): copies a vector, or zeros for padding rows; kRowsPerBlock rows
// of a position per block (blockIdx.x: the group of rows; the grid's y is chunked below 65536,
// `first` is the position of blockIdx.y == 0). Wide: a Chunk per lane and step (rows whole
// Chunks, 16-byte aligned: core::wide_rows of x and of the output), else an element.
constexpr std::uint32_t kRowsPerBlock = 4;

template <class V, bool kWide>
__global__ void gather_rows_kernel(const V* __restrict__ x, std::size_t dims, const std::uint32_t* __restrict__ nodes,
                                   const std::uint32_t* __restrict__ cand, std::size_t cand_stride,
                                   const std::uint32_t* __restrict__ counts, const std::uint32_t* __restrict__ order,
                                   std::uint32_t first, std::uint32_t gram_dim, V* __restrict__ rows) {
  const std::uint32_t j = first + blockIdx.y, r = blockIdx.x * kRowsPerBlock + (threadIdx.x >> 5);
  const std::uint32_t lane = threadIdx.x & 31u;
  if (r >= gram_dim) return;
  const std::uint32_t item = order[j];
  V* out = rows + gram_row_offset(j, gram_dim, r, dims);
  const V* src = nullptr;
  if (r == 0)
    src = x + static_cast<std::uint64_t>(nodes[item]) * dims;
  else if (r - 1 < counts[item])
    src = x + static_cast<std::uint64_t>(cand[static_cast<std::uint64_t>(item) * cand_stride + (r - 1)]) * dims;
  if constexpr (kWide) {
    constexpr std::uint32_t w = core::kChunkElements<V>;
    for (std::size_t d = std::size_t{lane} * w; d < dims; d += 32 * w)
      core::store_chunk(out + d, src != nullptr ? core::load_chunk(src + d) : core::Chunk{});  // zero
  } else {
    for (std::size_t d = lane; d < dims; d += 32) out[d] = src != nullptr ? src[d] : V{};  // zero
  }
}

__global__ void prune_kernel(const float* __restrict__ gram, std::uint32_t gram_dim,
                             const std::uint32_t* __restrict__ nodes, const std::uint32_t* cand,
                             std::size_t cand_stride, const std::uint32_t* __restrict__ counts,
                             const std::uint32_t* __restrict__ order, std::uint32_t count, std::uint32_t capacity,
                             core::PruneParams params, std::uint32_t* neighbors, std::uint32_t stride,
                             std::uint32_t* __restrict__ degrees, float* __restrict__ kept_distance) {
  VS_DYNAMIC_SHARED(float4, prune_shared);
  const std::uint32_t warp = threadIdx.x >> 5;
  const std::uint32_t j = blockIdx.x * (blockDim.x >> 5) + warp;
  if (j >= count) return;  // the whole warp leaves together
  const std::uint32_t item = order[j];
  const detail::WarpTeam team;
  const core::PruneShared shared = core::carve_prune_shared(
      reinterpret_cast<std::uint8_t*>(prune_shared) + warp * core::prune_shared_bytes(capacity), capacity);
  const std::uint32_t p = nodes[item];
  // G is symmetric (both GEMM operands are the same rows), so G(a, b) is read as G(b, a): the
  // prune asks for G(kept, c) and G(0, c) with c running over the lanes, and in column-major
  // storage those lanes then read one column (a few cache lines) instead of one line each.
  auto gram_at = [&](std::uint32_t a, std::uint32_t b) { return gram[gram_entry_offset(j, gram_dim, b, a)]; };
  const std::uint32_t kept = core::prune_node(
      team, p, cand + static_cast<std::uint64_t>(item) * cand_stride, counts[item], gram_at, params, shared,
      neighbors + static_cast<std::uint64_t>(p) * stride,
      kept_distance != nullptr ? kept_distance + static_cast<std::uint64_t>(item) * params.R : nullptr);
  if (team.leader()) degrees[p] = kept;
}

__global__ void refine_candidates_kernel(const std::uint32_t* __restrict__ nodes,
                                         const std::uint32_t* __restrict__ neighbors, std::uint32_t stride,
                                         const std::uint32_t* __restrict__ degrees,
                                         const std::uint32_t* __restrict__ log_id, std::uint32_t log_stride,
                                         const std::uint32_t* __restrict__ log_count, std::uint32_t count,
                                         std::uint32_t max_candidates, std::uint32_t* __restrict__ cand,
                                         std::uint32_t* __restrict__ counts) {
  const std::uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= count) return;
  const std::uint32_t p = nodes[i];
  counts[i] = core::write_union(neighbors + static_cast<std::uint64_t>(p) * stride, degrees[p],
                                log_id + static_cast<std::uint64_t>(i) * log_stride, log_count[i], max_candidates,
                                cand + static_cast<std::uint64_t>(i) * max_candidates);
}

__global__ void select_overfull_kernel(const std::uint32_t* __restrict__ degrees, std::size_t n, std::uint32_t R,
                                       std::uint32_t* __restrict__ nodes, std::uint32_t* __restrict__ count) {
  const std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n && degrees[i] > R) nodes[atomicAdd(count, 1u)] = static_cast<std::uint32_t>(i);
}

__global__ void list_candidates_kernel(const std::uint32_t* __restrict__ nodes, std::uint32_t count,
                                       const std::uint32_t* __restrict__ neighbors, std::uint32_t stride,
                                       const std::uint32_t* __restrict__ degrees, std::uint32_t max_candidates,
                                       std::uint32_t* __restrict__ cand, std::uint32_t* __restrict__ counts) {
  const std::uint32_t i = blockIdx.x;
  if (i >= count) return;
  const std::uint32_t p = nodes[i], deg = degrees[p];
  for (std::uint32_t k = threadIdx.x; k < deg; k += blockDim.x)
    cand[static_cast<std::uint64_t>(i) * max_candidates + k] = neighbors[static_cast<std::uint64_t>(p) * stride + k];
  if (threadIdx.x == 0) counts[i] = deg;
}

template <class V>
cudaError_t launch_gather_rows(const V* x, std::size_t dims, const std::uint32_t* nodes, const std::uint32_t* cand,
                               std::size_t cand_stride, const std::uint32_t* counts, const std::uint32_t* order,
                               std::uint32_t count, std::uint32_t gram_dim, V* rows, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  constexpr std::uint32_t kMaxGridY = 65535;
  const bool wide = dims < 0x80000000u && core::wide_rows(x, static_cast<std::uint32_t>(dims)) &&
                    core::wide_rows(rows, static_cast<std::uint32_t>(dims));
  const auto kernel = wide ? gather_rows_kernel<V, true> : gather_rows_kernel<V, false>;
  for (std::uint32_t first = 0; first < count; first += kMaxGridY) {
    const std::uint32_t items = count - first < kMaxGridY ? count - first : kMaxGridY;
    const dim3 grid((gram_dim + kRowsPerBlock - 1) / kRowsPerBlock, items);
    VS_LAUNCH(kernel, grid, 32 * kRowsPerBlock, 0, stream, x, dims, nodes, cand, cand_stride, counts, order, first,
              gram_dim, rows);
    const cudaError_t st = cudaGetLastError();
    if (st != cudaSuccess) return st;
  }
  return cudaSuccess;
}

}  // namespace

cudaError_t order_temp_bytes(std::uint32_t items, std::uint32_t max_count, std::size_t& bytes) {
  bytes = 0;
  return cub::DeviceRadixSort::SortPairs(
      nullptr, bytes, static_cast<const std::uint32_t*>(nullptr), static_cast<std::uint32_t*>(nullptr),
      static_cast<const std::uint32_t*>(nullptr), static_cast<std::uint32_t*>(nullptr),
      static_cast<std::int64_t>(items), 0, static_cast<int>(key_bits(max_count)));
}

cudaError_t order_by_count(const std::uint32_t* counts, std::uint32_t count, std::uint32_t max_count,
                           std::uint32_t* histogram, std::uint32_t* ids, std::uint32_t* sorted_counts,
                           std::uint32_t* order, void* temp, std::size_t temp_bytes, cudaStream_t stream) {
  cudaError_t st = cudaMemsetAsync(histogram, 0, (std::size_t{max_count} + 2) * sizeof(std::uint32_t), stream);
  if (st != cudaSuccess || count == 0) return st;
  VS_LAUNCH(count_histogram_kernel, (count + 255) / 256, 256, 0, stream, counts, count, max_count, histogram, ids);
  st = cudaGetLastError();
  if (st != cudaSuccess) return st;
  return cub::DeviceRadixSort::SortPairs(temp, temp_bytes, counts, sorted_counts, ids, order,
                                         static_cast<std::int64_t>(count), 0, static_cast<int>(key_bits(max_count)),
                                         stream);
}

cudaError_t gather_rows(const float* x, std::size_t dims, const std::uint32_t* nodes, const std::uint32_t* cand,
                        std::size_t cand_stride, const std::uint32_t* counts, const std::uint32_t* order,
                        std::uint32_t count, std::uint32_t gram_dim, float* rows, cudaStream_t stream) {
  return launch_gather_rows(x, dims, nodes, cand, cand_stride, counts, order, count, gram_dim, rows, stream);
}

cudaError_t gather_rows(const core::Bf16* x, std::size_t dims, const std::uint32_t* nodes, const std::uint32_t* cand,
                        std::size_t cand_stride, const std::uint32_t* counts, const std::uint32_t* order,
                        std::uint32_t count, std::uint32_t gram_dim, core::Bf16* rows, cudaStream_t stream) {
  return launch_gather_rows(x, dims, nodes, cand, cand_stride, counts, order, count, gram_dim, rows, stream);
}

std::size_t prune_shared_bytes(std::uint32_t capacity) {
  return core::prune_shared_bytes(capacity);
}

cudaError_t prune(const float* gram, std::uint32_t gram_dim, const std::uint32_t* nodes, const std::uint32_t* cand,
                  std::size_t cand_stride, const std::uint32_t* counts, const std::uint32_t* order, std::uint32_t count,
                  std::uint32_t capacity, const core::PruneParams& params, std::uint32_t* neighbors,
                  std::uint32_t stride, std::uint32_t* degrees, float* kept_distance, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const std::size_t per_warp = core::prune_shared_bytes(capacity);
  const unsigned warps = per_warp * kPruneWarps <= kDefaultShared ? kPruneWarps : 1;
  const std::size_t shared = per_warp * warps;
  if (shared > kDefaultShared) {
    const cudaError_t st =
        cudaFuncSetAttribute(prune_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
    if (st != cudaSuccess) return st;
  }
  const unsigned grid = (count + warps - 1) / warps;
  VS_LAUNCH(prune_kernel, grid, warps * 32, shared, stream, gram, gram_dim, nodes, cand, cand_stride, counts, order,
            count, capacity, params, neighbors, stride, degrees, kept_distance);
  return cudaGetLastError();
}

cudaError_t refine_candidates(const std::uint32_t* nodes, const std::uint32_t* neighbors, std::uint32_t stride,
                              const std::uint32_t* degrees, const std::uint32_t* log_id, std::uint32_t log_stride,
                              const std::uint32_t* log_count, std::uint32_t count, std::uint32_t max_candidates,
                              std::uint32_t* cand, std::uint32_t* counts, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  VS_LAUNCH(refine_candidates_kernel, (count + 127) / 128, 128, 0, stream, nodes, neighbors, stride, degrees, log_id,
            log_stride, log_count, count, max_candidates, cand, counts);
  return cudaGetLastError();
}

cudaError_t select_overfull(const std::uint32_t* degrees, std::size_t n, std::uint32_t R, std::uint32_t* nodes,
                            std::uint32_t* count, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  VS_LAUNCH(select_overfull_kernel, static_cast<unsigned>((n + 255) / 256), 256, 0, stream, degrees, n, R, nodes,
            count);
  return cudaGetLastError();
}

cudaError_t list_candidates(const std::uint32_t* nodes, std::uint32_t count, const std::uint32_t* neighbors,
                            std::uint32_t stride, const std::uint32_t* degrees, std::uint32_t max_candidates,
                            std::uint32_t* cand, std::uint32_t* counts, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  VS_LAUNCH(list_candidates_kernel, count, 64, 0, stream, nodes, count, neighbors, stride, degrees, max_candidates,
            cand, counts);
  return cudaGetLastError();
}

}  // namespace vs::cuda::kernels
