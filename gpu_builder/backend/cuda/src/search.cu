// Batched greedy search: one thread block per query runs core::greedy_search_one.
#include "detail/device.cuh"
#include "detail/teams.cuh"
#include "kernels.hpp"

namespace vs::cuda::kernels {

namespace {

constexpr unsigned kSearchThreads = 128;
static_assert(kSearchFullOccupancyBlocks * kSearchThreads == 2048, "an SM's most threads (sm_80, sm_90)");

// The searches of one block, b = blockIdx.x, blockIdx.x + gridDim.x, ...; kStagedQuery: each
// copies its query into shared memory (args.query_bytes).
template <class V, bool kStagedQuery>
__device__ __forceinline__ void search_queries(const core::SearchArgsOf<V>& args, const std::uint32_t* queries,
                                               std::uint32_t count, std::uint32_t start, std::uint32_t* tables,
                                               std::uint32_t table_slots, std::uint32_t* log_id, float* log_key,
                                               std::uint32_t* log_count, unsigned long long* counters) {
  VS_DYNAMIC_SHARED(float4, search_shared);
  const detail::BlockTeam team;
  const core::SearchShared shared =
      core::carve_search_shared(search_shared, args.list_size, args.stride, args.local_slots, args.query_bytes);
  for (std::uint32_t b = blockIdx.x; b < count; b += gridDim.x) {
    const V* query = args.vectors + static_cast<std::uint64_t>(queries[b]) * args.dims;
    const std::uint64_t log_base = static_cast<std::uint64_t>(b) * args.max_iters;
    const core::SearchResult r = core::greedy_search_one<kStagedQuery>(
        team, args, shared, query, start, tables + static_cast<std::uint64_t>(b) * table_slots, table_slots - 1,
        log_id + log_base, log_key + log_base);
    if (team.leader()) {
      log_count[b] = r.expanded;
      atomicAdd(&counters[kDistances], static_cast<unsigned long long>(r.computed));
      atomicAdd(&counters[kExpansions], static_cast<unsigned long long>(r.expanded));
      if (r.expanded == args.max_iters) atomicAdd(&counters[kCapped], 1ull);
      if (r.spilled) atomicAdd(&counters[kSpilled], 1ull);
    }
    team.sync();  // the next query reuses the shared memory
  }
}

// With the registers the compiler chooses.
template <class V, bool kStagedQuery>
__global__ void search_kernel(core::SearchArgsOf<V> args, const std::uint32_t* __restrict__ queries,
                              std::uint32_t count, std::uint32_t start, std::uint32_t* __restrict__ tables,
                              std::uint32_t table_slots, std::uint32_t* __restrict__ log_id,
                              float* __restrict__ log_key, std::uint32_t* __restrict__ log_count,
                              unsigned long long* __restrict__ counters) {
  search_queries<V, kStagedQuery>(args, queries, count, start, tables, table_slots, log_id, log_key, log_count,
                                  counters);
}

// Held to the registers that let kSearchFullOccupancyBlocks blocks share an SM (32 a thread;
// GraphOptions::search_full_occupancy).
template <class V, bool kStagedQuery>
__global__ void __launch_bounds__(kSearchThreads, kSearchFullOccupancyBlocks)
    search_kernel_full(core::SearchArgsOf<V> args, const std::uint32_t* __restrict__ queries, std::uint32_t count,
                       std::uint32_t start, std::uint32_t* __restrict__ tables, std::uint32_t table_slots,
                       std::uint32_t* __restrict__ log_id, float* __restrict__ log_key,
                       std::uint32_t* __restrict__ log_count, unsigned long long* __restrict__ counters) {
  search_queries<V, kStagedQuery>(args, queries, count, start, tables, table_slots, log_id, log_key, log_count,
                                  counters);
}

template <class V>
cudaError_t launch_search(const core::SearchArgsOf<V>& args, const std::uint32_t* queries, std::uint32_t count,
                          std::uint32_t start, std::uint32_t* tables, std::uint32_t table_slots, std::uint32_t* log_id,
                          float* log_key, std::uint32_t* log_count, unsigned long long* counters, bool full_occupancy,
                          cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  const bool staged = args.query_bytes != 0;
  const auto kernel = full_occupancy ? (staged ? search_kernel_full<V, true> : search_kernel_full<V, false>)
                                     : (staged ? search_kernel<V, true> : search_kernel<V, false>);
  const std::size_t shared = core::search_shared_bytes(args.list_size, args.stride, args.local_slots, args.query_bytes);
  if (shared > 48 * 1024) {
    const cudaError_t st =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared));
    if (st != cudaSuccess) return st;
  }
  const unsigned grid = count < 65535u * 32u ? count : 65535u * 32u;
  VS_LAUNCH(kernel, grid, kSearchThreads, shared, stream, args, queries, count, start, tables, table_slots, log_id,
            log_key, log_count, counters);
  return cudaGetLastError();
}

}  // namespace

std::size_t search_shared_bytes(std::uint32_t list_size, std::uint32_t stride, std::uint32_t local_slots,
                                std::uint32_t query_bytes) {
  return core::search_shared_bytes(list_size, stride, local_slots, query_bytes);
}

cudaError_t search(const core::SearchArgs& args, const std::uint32_t* queries, std::uint32_t count, std::uint32_t start,
                   std::uint32_t* tables, std::uint32_t table_slots, std::uint32_t* log_id, float* log_key,
                   std::uint32_t* log_count, unsigned long long* counters, bool full_occupancy, cudaStream_t stream) {
  return launch_search(args, queries, count, start, tables, table_slots, log_id, log_key, log_count, counters,
                       full_occupancy, stream);
}

cudaError_t search(const core::SearchArgsOf<core::Bf16>& args, const std::uint32_t* queries, std::uint32_t count,
                   std::uint32_t start, std::uint32_t* tables, std::uint32_t table_slots, std::uint32_t* log_id,
                   float* log_key, std::uint32_t* log_count, unsigned long long* counters, bool full_occupancy,
                   cudaStream_t stream) {
  return launch_search(args, queries, count, start, tables, table_slots, log_id, log_key, log_count, counters,
                       full_occupancy, stream);
}

}  // namespace vs::cuda::kernels
