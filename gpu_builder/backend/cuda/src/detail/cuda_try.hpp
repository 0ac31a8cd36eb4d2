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

// Evaluates `call` once; a status other than `ok` goes to `thrower` with `text` (the call as
// written: stringified by the caller, before its macros expand).
#define VS_CUDA_DETAIL_TRY_(type, ok, thrower, call, text)                     \
  do {                                                                         \
    const type vs_cuda_status_ = (call);                                       \
    if (vs_cuda_status_ != (ok)) [[unlikely]]                                  \
      ::vs::cuda::detail::thrower(vs_cuda_status_, text, __FILE__, __LINE__);  \
  } while (0)

/** Checks a CUDA runtime call (or a kernel launcher returning cudaError_t). */
#define VS_CUDA_TRY(call) VS_CUDA_DETAIL_TRY_(cudaError_t, cudaSuccess, throw_cuda_error, call, #call)

/** Checks a cuBLAS call. */
#define VS_CUBLAS_TRY(call) VS_CUDA_DETAIL_TRY_(cublasStatus_t, CUBLAS_STATUS_SUCCESS, throw_cublas_error, call, #call)
