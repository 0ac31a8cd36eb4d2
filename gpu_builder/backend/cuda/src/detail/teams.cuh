// The device teams of the core algorithms (core/team.hpp describes the interface): a thread
// block, or one warp of a block. for_each_reduce gives each item to a warp (32 lanes, a
// shuffle reduction), so block sizes are multiples of 32.
#pragma once

#include <cstdint>

namespace vs::cuda::detail {

/** Sums v over the 32 lanes of the calling warp (all lanes get the total). */
__device__ __forceinline__ float warp_sum(float v) {
#if defined(VS_CUDA_EMULATION)
  return ::vs::cuda::emu::warp_butterfly_sum(v);  // the loop below, bit for bit, at one barrier
#else
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xFFFFFFFFu, v, offset);
  return v;
#endif
}

/** For j = first, first + step, ... < n: the warp sums part(j, k) over k < len; lane 0 calls done(j, sum). */
template <class Part, class Done>
__device__ __forceinline__ void warp_reduce_each(std::uint32_t first, std::uint32_t step, std::uint32_t n,
                                                 std::uint32_t len, Part& part, Done& done) {
  const std::uint32_t lane = threadIdx.x & 31u;
  for (std::uint32_t j = first; j < n; j += step) {  // uniform within a warp
    float s = 0.0f;
    for (std::uint32_t k = lane; k < len; k += 32) s += part(j, k);
    s = warp_sum(s);
    if (lane == 0) done(j, s);
  }
}

/** The atomics of both teams (device-wide, whatever the team). */
struct TeamAtomics {
  __device__ std::uint32_t atomic_add(std::uint32_t* p, std::uint32_t v) const { return atomicAdd(p, v); }
  __device__ std::uint32_t atomic_min(std::uint32_t* p, std::uint32_t v) const { return atomicMin(p, v); }
  __device__ std::uint32_t atomic_cas(std::uint32_t* p, std::uint32_t expected, std::uint32_t desired) const {
    return atomicCAS(p, expected, desired);
  }
};

/** Every thread of the block. */
struct BlockTeam : TeamAtomics {
  __device__ std::uint32_t rank() const { return threadIdx.x; }
  __device__ std::uint32_t size() const { return blockDim.x; }
  __device__ bool leader() const { return threadIdx.x == 0; }
  __device__ void sync() const { __syncthreads(); }
  template <class F>
  __device__ void for_each(std::uint32_t n, F&& f) const {
    for (std::uint32_t i = threadIdx.x; i < n; i += blockDim.x) f(i);
    __syncthreads();
  }
  template <class Part, class Done>
  __device__ void for_each_reduce(std::uint32_t n, std::uint32_t len, Part&& part, Done&& done) const {
    warp_reduce_each(threadIdx.x >> 5, blockDim.x >> 5, n, len, part, done);
    __syncthreads();
  }
};

/** The 32 lanes of one warp (every lane of the warp must take part). */
struct WarpTeam : TeamAtomics {
  __device__ std::uint32_t rank() const { return threadIdx.x & 31u; }
  __device__ std::uint32_t size() const { return 32; }
  __device__ bool leader() const { return (threadIdx.x & 31u) == 0; }
  __device__ void sync() const { __syncwarp(); }
  template <class F>
  __device__ void for_each(std::uint32_t n, F&& f) const {
    for (std::uint32_t i = threadIdx.x & 31u; i < n; i += 32) f(i);
    __syncwarp();
  }
  template <class Part, class Done>
  __device__ void for_each_reduce(std::uint32_t n, std::uint32_t len, Part&& part, Done&& done) const {
    warp_reduce_each(0, 1, n, len, part, done);
    __syncwarp();
  }
};

}  // namespace vs::cuda::detail
