/**
 * @file device.hpp
 * @brief The device side of the CUDA emulator: what the backend's .cu files need from CUDA C++
 *        (built-in variables, barriers, warp shuffles, atomics, dynamic shared memory, kernel
 *        launches), for compiling them with the host compiler and running them on the CPU.
 *
 * Why: no GPU is lent to most sessions and CI has none, yet the kernels' launch
 * configurations, index arithmetic, barriers and the host orchestration around them
 * (device_build.cpp: buffers, plans, copies, cuBLAS and CUB calls) are code that only a device
 * ran. The emulator runs that very code on the CPU: vs_gpu_emu_tests are the `gpu` tests
 * linked against it instead of the CUDA runtime.
 *
 * Model (emu/src/runtime.cpp): a launch runs its blocks one after another on the calling
 * thread; the threads of a block are fibers (Boost.Context) run in turn until each reaches a
 * barrier (__syncthreads, __syncwarp, a shuffle) or exits. A barrier releases when every thread
 * it covers has arrived; a block whose threads wait at different barriers, or a warp-wide call
 * that some lanes of the warp never reach, fails the launch (a sticky error, as a device fault
 * is). Launch configurations are checked as a device checks them (grid and block limits,
 * dynamic shared memory above 48 KiB only after cudaFuncSetAttribute, and never above the
 * opt-in limit). Streams are synchronous. What it cannot find by itself: data races (threads
 * run one at a time between barriers), memory-model and timing effects, and out-of-bounds
 * accesses inside kernels (device memory is host memory: deploy/test.sh runs the emulated
 * kernels under AddressSanitizer for those; valgrind works too).
 *
 * Include it before the .cu file (the emu/kernels_*.cpp wrappers do); the .cu files use
 * VS_LAUNCH and VS_DYNAMIC_SHARED (src/detail/device.cuh) where CUDA syntax would not compile.
 */
#pragma once

#if defined(__CUDACC__)
#error "the CUDA emulator is for the host compiler"
#endif

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#define VS_CUDA_EMULATION 1

namespace vs::cuda::emu {

/** The built-in variables of the emulated thread that runs. */
struct ThreadIndex {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};

/** The running emulated thread's indices (set by the scheduler before it resumes a thread). */
extern thread_local const ThreadIndex* t_index;

/** __syncthreads: waits for every thread of the block. */
void sync_block();
/** __syncwarp(mask): waits for the lanes of mask (all 32 of the calling lane's warp). */
void sync_warp(unsigned mask);
/** The 64-bit value `bits` of lane (this lane ^ lane_mask) of the warp (a warp-wide barrier). */
std::uint64_t shuffle_xor(std::uint64_t bits, int lane_mask, unsigned mask);
/**
 * The xor-butterfly sum over the warp that five __shfl_xor_sync rounds compute (offsets 16, 8,
 * 4, 2, 1; each lane adds its partner's value), bit for bit, with one barrier instead of five:
 * teams.cuh's warp_sum, the search's and the prune's inner reduction, is most of what the
 * emulator runs.
 */
float warp_butterfly_sum(float v);
/** The block's dynamic shared memory (16-byte aligned, `shared` bytes of the launch). */
void* dynamic_shared();

/**
 * Runs kernel `body` (the call of the kernel with its arguments, for every thread) with this
 * configuration; a configuration a device refuses sets the launch error instead
 * (cudaGetLastError), as does a barrier the block cannot pass.
 */
void launch(const void* kernel, dim3 grid, dim3 block, std::size_t shared, cudaStream_t stream,
            const std::function<void()>& body);

/** `kernel<<<grid, block, shared, stream>>>`: call it with the kernel's arguments. */
template <class... P>
struct Launch {
  void (*kernel)(P...);
  dim3 grid, block;
  std::size_t shared;
  cudaStream_t stream;
  template <class... A>
  void operator()(A&&... args) const {
    static_assert(sizeof...(A) == sizeof...(P), "kernel argument count");
    // Arguments are converted to the parameters' types once, as a launch copies them.
    const std::tuple<std::decay_t<P>...> params(static_cast<std::decay_t<P>>(std::forward<A>(args))...);
    launch(reinterpret_cast<const void*>(kernel), grid, block, shared, stream, [&] { std::apply(kernel, params); });
  }
};

template <class... P>
Launch<P...> make_launch(void (*kernel)(P...), dim3 grid, dim3 block, std::size_t shared, cudaStream_t stream) {
  return Launch<P...>{kernel, grid, block, shared, stream};
}

/** Bits of a value of up to 8 bytes, and back (for shuffles). */
template <class T>
std::uint64_t to_bits(T v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffled values are at most 8 bytes");
  std::uint64_t b = 0;
  std::memcpy(&b, &v, sizeof v);
  return b;
}
template <class T>
T from_bits(std::uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof v);
  return v;
}

}  // namespace vs::cuda::emu

// ---- CUDA C++ as the kernels use it ------------------------------------------------------------
#define threadIdx (::vs::cuda::emu::t_index->thread_idx)
#define blockIdx (::vs::cuda::emu::t_index->block_idx)
#define blockDim (::vs::cuda::emu::t_index->block_dim)
#define gridDim (::vs::cuda::emu::t_index->grid_dim)

// Register and occupancy hints mean nothing on the CPU (cuda_runtime.h defines this for nvcc only).
#define __launch_bounds__(...)

inline void __syncthreads() {
  ::vs::cuda::emu::sync_block();
}
inline void __syncwarp(unsigned mask = 0xFFFFFFFFu) {
  ::vs::cuda::emu::sync_warp(mask);
}

// Across whole warps only (no `width`: a kernel that passes one does not compile here).
template <class T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask) {
  namespace e = ::vs::cuda::emu;
  return e::from_bits<T>(e::shuffle_xor(e::to_bits(value), lane_mask, mask));
}

// Atomics: device-wide, so real atomics (blocks of launches made by different host threads
// may run at once).
template <class T>
T atomicAdd(T* p, T v) {
  return std::atomic_ref<T>(*p).fetch_add(v);
}
template <class T>
T atomicMin(T* p, T v) {
  std::atomic_ref<T> a(*p);
  T old = a.load();
  while (v < old && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}
template <class T>
T atomicCAS(T* p, T expected, T desired) {
  std::atomic_ref<T>(*p).compare_exchange_strong(expected, desired);
  return expected;  // the value found: `desired` was stored when it equals the argument
}

// cuda_runtime.h declares this template only for nvcc.
template <class T>
cudaError_t cudaFuncSetAttribute(T* kernel, cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(kernel), attr, value);
}
