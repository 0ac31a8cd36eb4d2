// The CUDA emulator's cuBLAS: the handle calls and the strided batched GEMMs the backend makes
// (FP32, and BF16 inputs with FP32 sums), column-major as cuBLAS defines them, with cuBLAS's
// argument checks. Every operand must lie inside one device allocation over all its batches:
// a GEMM that would read or write past its buffers is what a device reports as an illegal
// address, and the emulator does the same (a sticky cudaErrorIllegalAddress), which is how it
// finds a Gram buffer sized too small.
#include <cublas_v2.h>

#include <cstdint>
#include <string>
#include <vector>

#include "state.hpp"
#include "vectorscale/cuda/core/hd.hpp"
#include "vectorscale/distance/distance.hpp"

struct cublasContext {
  cudaStream_t stream = nullptr;
  cublasMath_t math = CUBLAS_DEFAULT_MATH;
};

namespace {

using vs::cuda::emu::CodeText;
using vs::cuda::emu::fail_sticky;

// TF32 keeps 10 mantissa bits (round to nearest even), as the tensor cores read FP32 inputs.
float to_tf32(float f) {
  std::uint32_t u = vs::cuda::core::float_bits(f);
  if ((u & 0x7F800000u) != 0x7F800000u) u = (u + 0xFFFu + ((u >> 13) & 1u)) & ~0x1FFFu;
  return vs::cuda::core::float_from_bits(u);
}

// Bytes an operand of rows x cols (as stored, leading dimension ld) spans over `batch` matrices.
std::uint64_t extent(int rows, int cols, int ld, long long stride, int batch, std::size_t element) {
  if (rows == 0 || cols == 0 || batch == 0) return 0;
  const std::uint64_t last = static_cast<std::uint64_t>(batch - 1) * static_cast<std::uint64_t>(stride) +
                             static_cast<std::uint64_t>(cols - 1) * static_cast<std::uint64_t>(ld) +
                             static_cast<std::uint64_t>(rows);
  return last * element;
}

struct Operand {
  cublasOperation_t op;
  const void* data;
  cudaDataType type;
  int ld;
  long long stride;
};

std::size_t element_bytes(cudaDataType t) {
  return t == CUDA_R_16BF ? 2 : 4;
}

// op(X)(i, l) of batch b, as float.
float element(const Operand& x, long long b, int i, int l) {
  const std::uint64_t idx =
      static_cast<std::uint64_t>(b) * static_cast<std::uint64_t>(x.stride) +
      (x.op == CUBLAS_OP_T ? static_cast<std::uint64_t>(l) + static_cast<std::uint64_t>(i) * x.ld
                           : static_cast<std::uint64_t>(i) + static_cast<std::uint64_t>(l) * x.ld);
  if (x.type == CUDA_R_16BF) return vs::cuda::core::to_float(static_cast<const vs::cuda::core::Bf16*>(x.data)[idx]);
  return static_cast<const float*>(x.data)[idx];
}

cublasStatus_t gemm(cublasHandle_t h, int m, int n, int k, float alpha, const Operand& a, const Operand& b, float beta,
                    float* c, int ldc, long long stride_c, int batch) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (vs::cuda::emu::sticky_error() != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
  if ((a.op != CUBLAS_OP_N && a.op != CUBLAS_OP_T) || (b.op != CUBLAS_OP_N && b.op != CUBLAS_OP_T))
    return CUBLAS_STATUS_INVALID_VALUE;
  const bool at = a.op == CUBLAS_OP_T, bt = b.op == CUBLAS_OP_T;
  if (m < 0 || n < 0 || k < 0 || batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (a.ld < std::max(1, at ? k : m) || b.ld < std::max(1, bt ? n : k) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!vs::cuda::emu::valid_stream(h->stream)) return CUBLAS_STATUS_EXECUTION_FAILED;
  if (m == 0 || n == 0 || batch == 0) return CUBLAS_STATUS_SUCCESS;
  const std::uint64_t ea = extent(at ? k : m, at ? m : k, a.ld, a.stride, batch, element_bytes(a.type));
  const std::uint64_t eb = extent(bt ? n : k, bt ? k : n, b.ld, b.stride, batch, element_bytes(b.type));
  const std::uint64_t ec = extent(m, n, ldc, stride_c, batch, sizeof(float));
  const char* bad = nullptr;
  if (k != 0 && !vs::cuda::emu::in_device_memory(a.data, ea))
    bad = "A";
  else if (k != 0 && !vs::cuda::emu::in_device_memory(b.data, eb))
    bad = "B";
  else if (!vs::cuda::emu::in_device_memory(c, ec))
    bad = "C";
  if (bad != nullptr) {
    fail_sticky(cudaErrorIllegalAddress, std::string("cuBLAS GEMM: operand ") + bad +
                                             " reaches outside its device allocation (m " + std::to_string(m) + ", n " +
                                             std::to_string(n) + ", k " + std::to_string(k) + ", batch " +
                                             std::to_string(batch) + ")");
    return CUBLAS_STATUS_EXECUTION_FAILED;
  }
  const bool tf32 = h->math == CUBLAS_TF32_TENSOR_OP_MATH && a.type == CUDA_R_32F;
  std::vector<float> ra(static_cast<std::size_t>(m) * k), rb(static_cast<std::size_t>(k) * n);
  for (long long bi = 0; bi < batch; ++bi) {
    // op(A) by rows and op(B) by columns, contiguous in l: the sums are plain dot products.
    for (int i = 0; i < m; ++i)
      for (int l = 0; l < k; ++l) {
        const float v = element(a, bi, i, l);
        ra[static_cast<std::size_t>(i) * k + l] = tf32 ? to_tf32(v) : v;
      }
    for (int j = 0; j < n; ++j)
      for (int l = 0; l < k; ++l) {
        const float v = element(b, bi, l, j);
        rb[static_cast<std::size_t>(j) * k + l] = tf32 ? to_tf32(v) : v;
      }
    float* cb = c + bi * stride_c;
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        const float s = vs::distance::dot(&ra[static_cast<std::size_t>(i) * k], &rb[static_cast<std::size_t>(j) * k],
                                          static_cast<std::size_t>(k));
        float& out = cb[static_cast<std::size_t>(j) * ldc + i];
        out = alpha * s + (beta == 0.0f ? 0.0f : beta * out);  // beta 0: C is not read (may be NaN)
      }
  }
  return CUBLAS_STATUS_SUCCESS;
}

// The statuses the emulator returns, with cuBLAS's names and texts.
const CodeText<cublasStatus_t>& describe_status(cublasStatus_t status) {
  static constexpr CodeText<cublasStatus_t> kStatuses[] = {
      {CUBLAS_STATUS_SUCCESS, "CUBLAS_STATUS_SUCCESS", "success"},
      {CUBLAS_STATUS_NOT_INITIALIZED, "CUBLAS_STATUS_NOT_INITIALIZED", "the library was not initialized"},
      {CUBLAS_STATUS_ALLOC_FAILED, "CUBLAS_STATUS_ALLOC_FAILED", "the resource allocation failed"},
      {CUBLAS_STATUS_INVALID_VALUE, "CUBLAS_STATUS_INVALID_VALUE", "an invalid numeric value was used as an argument"},
      {CUBLAS_STATUS_EXECUTION_FAILED, "CUBLAS_STATUS_EXECUTION_FAILED", "the GPU program failed to execute"},
      {CUBLAS_STATUS_NOT_SUPPORTED, "CUBLAS_STATUS_NOT_SUPPORTED", "the functionality requested is not supported"},
  };
  static constexpr CodeText<cublasStatus_t> kUnknown{CUBLAS_STATUS_INTERNAL_ERROR, "CUBLAS_STATUS_UNKNOWN",
                                                      "unknown error"};
  return vs::cuda::emu::describe(kStatuses, kUnknown, status);
}

}  // namespace

extern "C" {

cublasStatus_t cublasCreate_v2(cublasHandle_t* handle) {
  if (vs::cuda::emu::sticky_error() != cudaSuccess) return CUBLAS_STATUS_NOT_INITIALIZED;
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!vs::cuda::emu::valid_stream(stream)) return CUBLAS_STATUS_INVALID_VALUE;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t status) {
  return describe_status(status).name;
}

const char* cublasGetStatusString(cublasStatus_t status) {
  return describe_status(status).text;
}

cublasStatus_t cublasSgemmStridedBatched(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                         int m, int n, int k, const float* alpha, const float* A, int lda,
                                         long long int strideA, const float* B, int ldb, long long int strideB,
                                         const float* beta, float* C, int ldc, long long int strideC, int batchCount) {
  return gemm(handle, m, n, k, *alpha, Operand{transa, A, CUDA_R_32F, lda, strideA},
              Operand{transb, B, CUDA_R_32F, ldb, strideB}, *beta, C, ldc, strideC, batchCount);
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void* alpha, const void* A, cudaDataType Atype,
                                          int lda, long long int strideA, const void* B, cudaDataType Btype, int ldb,
                                          long long int strideB, const void* beta, void* C, cudaDataType Ctype, int ldc,
                                          long long int strideC, int batchCount, cublasComputeType_t computeType,
                                          cublasGemmAlgo_t algo) {
  (void)algo;
  // The combinations the backend uses: FP32 or BF16 inputs, FP32 output and sums.
  const bool inputs_ok = Atype == Btype && (Atype == CUDA_R_32F || Atype == CUDA_R_16BF);
  if (!inputs_ok || Ctype != CUDA_R_32F || computeType != CUBLAS_COMPUTE_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
  return gemm(handle, m, n, k, *static_cast<const float*>(alpha), Operand{transa, A, Atype, lda, strideA},
              Operand{transb, B, Btype, ldb, strideB}, *static_cast<const float*>(beta), static_cast<float*>(C), ldc,
              strideC, batchCount);
}

}  // extern "C"
