// What every .cu file of the backend needs beyond CUDA C++ itself: a kernel launch and a
// kernel's dynamic shared memory written so that the same file also compiles for the CUDA
// emulator (emu/include/vectorscale/cuda/emu/device.hpp), which has no <<< >>> syntax and no
// `extern __shared__`.
#pragma once

#if defined(VS_CUDA_EMULATION)
/** kernel<<<grid, block, shared, stream>>>(args...) is VS_LAUNCH(kernel, grid, block, shared, stream, args...). */
#define VS_LAUNCH(kernel, grid, block, shared, stream, ...) \
  ::vs::cuda::emu::make_launch(kernel, grid, block, shared, stream)(__VA_ARGS__)
/** The kernel's dynamic shared memory as `T name[]`. */
#define VS_DYNAMIC_SHARED(T, name) T* const name = static_cast<T*>(::vs::cuda::emu::dynamic_shared())
#else
#define VS_LAUNCH(kernel, grid, block, shared, stream, ...) kernel<<<grid, block, shared, stream>>>(__VA_ARGS__)
#define VS_DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif
