// VS_CUDA_TRY / VS_CUBLAS_TRY: every CUDA runtime and cuBLAS call of the backend goes through
// one of them. Host code only (.cpp): they throw vs::Error, which gpu_builder maps to a gRPC
// status for that build alone. Out of device memory is kOutOfMemory (RESOURCE_EXHAUSTED), any
// other failure kInternal, with the call, file and line in the message.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "vectorscale/core/error.hpp"

namespace vs::cuda::detail {

/** Throws vs::Error for a failed CUDA runtime call. */
[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line);
/** Throws vs::Error for a failed cuBLAS call. */
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);

}  // namespace vs::cuda::detail

/** Checks a CUDA runtime call (or a kernel launcher returning cudaError_t). */
#define VS_CUDA_TRY(call)                                                               \
  do {                                                                                  \
    const cudaError_t vs_cuda_status_ = (call);                                         \
    if (vs_cuda_status_ != cudaSuccess) [[unlikely]]                                    \
      ::vs::cuda::detail::throw_cuda_error(vs_cuda_status_, #call, __FILE__, __LINE__); \
  } while (0)

/** Checks a cuBLAS call. */
#define VS_CUBLAS_TRY(call)                                                                 \
  do {                                                                                      \
    const cublasStatus_t vs_cublas_status_ = (call);                                        \
    if (vs_cublas_status_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                            \
      ::vs::cuda::detail::throw_cublas_error(vs_cublas_status_, #call, __FILE__, __LINE__); \
  } while (0)
