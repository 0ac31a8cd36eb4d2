// Reverse edges of a batch: sort the batch's edges by (target, distance) with CUB, find the
// runs of one target, and let each target take its new in-neighbours (core::union_size,
// core::write_union); runs whose union outgrows the list are left for a prune.
#include "detail/cub.cuh"
#include "detail/device.cuh"
#include "kernels.hpp"
#include "vectorscale/cuda/core/reverse.hpp"

namespace vs::cuda::kernels {

namespace {

// keys[i * R + k] = edge_key(q, d(p, q)) for the k-th kept neighbour q of p = nodes[i]; unused
// slots get the largest key (they sort last, in one run of target kNoNode that is skipped).
__global__ void edge_keys_kernel(const std::uint32_t* __restrict__ nodes, std::uint32_t count,
                                 const float* __restrict__ kept_distance, std::uint32_t R,
                                 const std::uint32_t* __restrict__ neighbors, std::uint32_t stride,
                                 const std::uint32_t* __restrict__ degrees, std::uint64_t* __restrict__ keys,
                                 std::uint32_t* __restrict__ values) {
  const std::uint64_t t = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= static_cast<std::uint64_t>(count) * R) return;
  const std::uint32_t i = static_cast<std::uint32_t>(t / R), k = static_cast<std::uint32_t>(t % R);
  const std::uint32_t p = nodes[i];
  if (k < degrees[p]) {
    keys[t] = core::edge_key(neighbors[static_cast<std::uint64_t>(p) * stride + k], kept_distance[t]);
    values[t] = p;
  } else {
    keys[t] = ~std::uint64_t{0};
    values[t] = core::kNoNode;
  }
}

__global__ void edge_targets_kernel(const std::uint64_t* __restrict__ keys, std::uint64_t edges,
                                    std::uint32_t* __restrict__ targets) {
  const std::uint64_t t = static_cast<std::uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t < edges) targets[t] = core::edge_key_target(keys[t]);
}

// One thread per run (target).
__global__ void apply_runs_kernel(const std::uint32_t* __restrict__ run_target,
                                  const std::uint32_t* __restrict__ run_length,
                                  const std::uint32_t* __restrict__ run_start, std::uint32_t* run_count,
                                  const std::uint32_t* __restrict__ sources, std::uint32_t* neighbors,
                                  std::uint32_t stride, std::uint32_t* degrees, std::uint32_t max_candidates,
                                  std::uint32_t* __restrict__ overflow, std::uint32_t max_runs) {
  const std::uint32_t r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= run_count[0] || r >= max_runs) return;
  const std::uint32_t q = run_target[r];
  if (q == core::kNoNode) return;  // the unused slots
  std::uint32_t* list = neighbors + static_cast<std::uint64_t>(q) * stride;
  const std::uint32_t* incoming = sources + run_start[r];
  const std::uint32_t size = core::union_size(list, degrees[q], incoming, run_length[r], max_candidates);
  if (size <= stride)
    degrees[q] = core::write_union(list, degrees[q], incoming, run_length[r], max_candidates, list);
  else
    overflow[atomicAdd(&run_count[1], 1u)] = r;
}

// One thread per overflowing run of [first, first + count).
__global__ void overflow_candidates_kernel(kernels::ReverseBuffers buf, std::uint32_t first, std::uint32_t count,
                                           const std::uint32_t* __restrict__ neighbors, std::uint32_t stride,
                                           const std::uint32_t* __restrict__ degrees, std::uint32_t max_candidates,
                                           std::uint32_t* __restrict__ nodes, std::uint32_t* __restrict__ cand,
                                           std::uint32_t* __restrict__ counts) {
  const std::uint32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= count) return;
  const std::uint32_t r = buf.overflow[first + i];
  const std::uint32_t q = buf.run_target[r];
  nodes[i] = q;
  counts[i] = core::write_union(neighbors + static_cast<std::uint64_t>(q) * stride, degrees[q],
                                buf.values[1] + buf.run_start[r], buf.run_length[r], max_candidates,
                                cand + static_cast<std::uint64_t>(i) * max_candidates);
}

unsigned blocks_for(std::uint64_t items, unsigned block) {
  return static_cast<unsigned>((items + block - 1) / block);
}

#define VS_RETURN_IF_FAILED(call)       \
  do {                                  \
    const cudaError_t st_ = (call);     \
    if (st_ != cudaSuccess) return st_; \
  } while (0)

}  // namespace

cudaError_t reverse_temp_bytes(std::size_t edges, std::size_t& bytes) {
  std::size_t sort = 0, rle = 0, scan = 0;
  const auto n = static_cast<std::int64_t>(edges);
  VS_RETURN_IF_FAILED(cub::DeviceRadixSort::SortPairs(
      nullptr, sort, static_cast<const std::uint64_t*>(nullptr), static_cast<std::uint64_t*>(nullptr),
      static_cast<const std::uint32_t*>(nullptr), static_cast<std::uint32_t*>(nullptr), n));
  VS_RETURN_IF_FAILED(cub::DeviceRunLengthEncode::Encode(
      nullptr, rle, static_cast<const std::uint32_t*>(nullptr), static_cast<std::uint32_t*>(nullptr),
      static_cast<std::uint32_t*>(nullptr), static_cast<std::uint32_t*>(nullptr), n));
  VS_RETURN_IF_FAILED(cub::DeviceScan::ExclusiveSum(nullptr, scan, static_cast<const std::uint32_t*>(nullptr),
                                                    static_cast<std::uint32_t*>(nullptr), n));
  bytes = sort > rle ? (sort > scan ? sort : scan) : (rle > scan ? rle : scan);
  return cudaSuccess;
}

cudaError_t reverse_edges(const std::uint32_t* nodes, std::uint32_t count, const float* kept_distance, std::uint32_t R,
                          std::uint32_t* neighbors, std::uint32_t stride, std::uint32_t* degrees,
                          std::uint32_t max_candidates, const ReverseBuffers& buf, cudaStream_t stream) {
  const std::uint64_t edges = static_cast<std::uint64_t>(count) * R;
  VS_RETURN_IF_FAILED(cudaMemsetAsync(buf.run_count, 0, 2 * sizeof(std::uint32_t), stream));
  if (edges == 0) return cudaSuccess;
  const auto n = static_cast<std::int64_t>(edges);
  VS_RETURN_IF_FAILED(cudaMemsetAsync(buf.run_length, 0, edges * sizeof(std::uint32_t), stream));
  VS_LAUNCH(edge_keys_kernel, blocks_for(edges, 256), 256, 0, stream, nodes, count, kept_distance, R, neighbors, stride,
            degrees, buf.keys[0], buf.values[0]);
  VS_RETURN_IF_FAILED(cudaGetLastError());
  std::size_t temp = buf.temp_bytes;
  VS_RETURN_IF_FAILED(cub::DeviceRadixSort::SortPairs(buf.temp, temp, buf.keys[0], buf.keys[1], buf.values[0],
                                                      buf.values[1], n, 0, 64, stream));
  VS_LAUNCH(edge_targets_kernel, blocks_for(edges, 256), 256, 0, stream, buf.keys[1], edges, buf.targets);
  VS_RETURN_IF_FAILED(cudaGetLastError());
  temp = buf.temp_bytes;
  VS_RETURN_IF_FAILED(cub::DeviceRunLengthEncode::Encode(buf.temp, temp, buf.targets, buf.run_target, buf.run_length,
                                                         buf.run_count, n, stream));
  // Run starts: an exclusive sum over every slot (slots past the last run hold garbage that is
  // never read).
  temp = buf.temp_bytes;
  VS_RETURN_IF_FAILED(cub::DeviceScan::ExclusiveSum(buf.temp, temp, buf.run_length, buf.run_start, n, stream));
  VS_LAUNCH(apply_runs_kernel, blocks_for(edges, 128), 128, 0, stream, buf.run_target, buf.run_length, buf.run_start,
            buf.run_count, buf.values[1], neighbors, stride, degrees, max_candidates, buf.overflow,
            static_cast<std::uint32_t>(edges));
  return cudaGetLastError();
}

cudaError_t overflow_candidates(const ReverseBuffers& buf, std::uint32_t first, std::uint32_t count,
                                const std::uint32_t* neighbors, std::uint32_t stride, const std::uint32_t* degrees,
                                std::uint32_t max_candidates, std::uint32_t* nodes, std::uint32_t* cand,
                                std::uint32_t* counts, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  VS_LAUNCH(overflow_candidates_kernel, (count + 127) / 128, 128, 0, stream, buf, first, count, neighbors, stride,
            degrees, max_candidates, nodes, cand, counts);
  return cudaGetLastError();
}

}  // namespace vs::cuda::kernels
