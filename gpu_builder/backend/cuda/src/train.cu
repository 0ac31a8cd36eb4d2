// SBQ statistics (per-dimension sums in double, deterministic), SBQ codes and the medoid.
#include "detail/cub.cuh"
#include "detail/device.cuh"
#include "kernels.hpp"
#include "vectorscale/cuda/core/sbq.hpp"

namespace vs::cuda::kernels {

namespace {

constexpr std::uint32_t kStatsRows = 256;  // plan.hpp's kStatsRows (checked in device_build.cpp)
constexpr std::uint32_t kDimsPerBlock = 128;

// One thread per dimension, one block row per group of kStatsRows rows: reads are coalesced
// across the dimensions of a row.
__global__ void column_sums_kernel(const float* __restrict__ x, std::size_t rows, std::size_t dims,
                                   const double* __restrict__ mean, std::size_t first_group, std::size_t group_offset,
                                   double* __restrict__ partials) {
  const std::size_t d = static_cast<std::size_t>(blockIdx.x) * kDimsPerBlock + threadIdx.x;
  const std::size_t g = group_offset + blockIdx.y;
  if (d >= dims) return;
  const std::size_t r0 = g * kStatsRows;
  const std::size_t r1 = r0 + kStatsRows < rows ? r0 + kStatsRows : rows;
  double s = 0.0;
  if (mean == nullptr) {
    for (std::size_t r = r0; r < r1; ++r) s += static_cast<double>(x[r * dims + d]);
  } else {
    const double m = mean[d];
    for (std::size_t r = r0; r < r1; ++r) {
      const double v = static_cast<double>(x[r * dims + d]) - m;
      s += v * v;
    }
  }
  partials[(first_group + g) * dims + d] = s;
}

__global__ void reduce_groups_kernel(const double* __restrict__ partials, std::size_t groups, std::size_t dims,
                                     double divisor, double* __restrict__ out) {
  const std::size_t d = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (d >= dims) return;
  double s = 0.0;
  for (std::size_t g = 0; g < groups; ++g) s += partials[g * dims + d];
  out[d] = s / divisor;
}

__global__ void sbq_encode_kernel(const float* __restrict__ x, std::size_t rows, std::size_t dims,
                                  const float* __restrict__ mean, const float* __restrict__ inv_stddev,
                                  std::uint32_t bits, std::size_t words, std::uint64_t* __restrict__ codes) {
  const std::size_t total = rows * words;
  for (std::size_t t = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; t < total;
       t += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const std::size_t i = t / words, w = t % words;
    codes[t] = core::sbq_word(x + i * dims, mean, inv_stddev, dims, bits, w);
  }
}

// One warp per row.
__global__ void medoid_keys_kernel(const float* __restrict__ x, std::size_t n, std::size_t dims,
                                   const float* __restrict__ centroid, std::uint64_t* __restrict__ keys) {
  const std::size_t warp = (static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const std::uint32_t lane = threadIdx.x & 31u;
  if (warp >= n) return;
  const float* v = x + warp * dims;
  float s = 0.0f;
  for (std::size_t d = lane; d < dims; d += 32) s += core::distance_term(core::Metric::kL2, centroid[d], v[d]);
  for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_xor_sync(0xFFFFFFFFu, s, offset);
  if (lane == 0) keys[warp] = (static_cast<std::uint64_t>(core::float_order_bits(s)) << 32) | warp;
}

struct MinOp {
  __device__ std::uint64_t operator()(std::uint64_t a, std::uint64_t b) const { return a < b ? a : b; }
};

unsigned grid_for(std::size_t items, unsigned block) {
  const std::size_t g = (items + block - 1) / block;
  return static_cast<unsigned>(g < 65535u * 16u ? (g == 0 ? 1 : g) : 65535u * 16u);
}

// out[i] = bfloat16 of x[i] (round to nearest even), a grid-stride loop.
__global__ void round_bf16_kernel(const float* __restrict__ x, std::size_t count, core::Bf16* __restrict__ out) {
  for (std::size_t i = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    out[i] = core::to_bf16(x[i]);
}

}  // namespace

cudaError_t round_bf16(const float* x, std::size_t count, core::Bf16* out, cudaStream_t stream) {
  if (count == 0) return cudaSuccess;
  VS_LAUNCH(round_bf16_kernel, grid_for(count, 256), 256, 0, stream, x, count, out);
  return cudaGetLastError();
}

cudaError_t column_sums(const float* x, std::size_t rows, std::size_t dims, const double* mean, std::size_t first_group,
                        double* partials, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  const std::size_t groups = (rows + kStatsRows - 1) / kStatsRows;
  constexpr std::size_t kMaxGridY = 65535;
  for (std::size_t g0 = 0; g0 < groups; g0 += kMaxGridY) {
    const std::size_t gy = groups - g0 < kMaxGridY ? groups - g0 : kMaxGridY;
    const dim3 grid(static_cast<unsigned>((dims + kDimsPerBlock - 1) / kDimsPerBlock), static_cast<unsigned>(gy));
    VS_LAUNCH(column_sums_kernel, grid, kDimsPerBlock, 0, stream, x, rows, dims, mean, first_group, g0, partials);
    const cudaError_t st = cudaGetLastError();
    if (st != cudaSuccess) return st;
  }
  return cudaSuccess;
}

cudaError_t reduce_groups(const double* partials, std::size_t groups, std::size_t dims, double divisor, double* out,
                          cudaStream_t stream) {
  VS_LAUNCH(reduce_groups_kernel, static_cast<unsigned>((dims + 127) / 128), 128, 0, stream, partials, groups, dims,
            divisor, out);
  return cudaGetLastError();
}

cudaError_t sbq_encode(const float* x, std::size_t rows, std::size_t dims, const float* mean, const float* inv_stddev,
                       std::uint32_t bits, std::uint64_t* codes, cudaStream_t stream) {
  const std::size_t words = (dims * bits + 63) / 64;
  if (rows == 0) return cudaSuccess;
  VS_LAUNCH(sbq_encode_kernel, grid_for(rows * words, 256), 256, 0, stream, x, rows, dims, mean, inv_stddev, bits,
            words, codes);
  return cudaGetLastError();
}

cudaError_t medoid_keys(const float* x, std::size_t n, std::size_t dims, const float* centroid, std::uint64_t* keys,
                        cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const std::size_t threads = n * 32;
  VS_LAUNCH(medoid_keys_kernel, static_cast<unsigned>((threads + 255) / 256), 256, 0, stream, x, n, dims, centroid,
            keys);
  return cudaGetLastError();
}

cudaError_t min_key(void* temp, std::size_t& temp_bytes, const std::uint64_t* keys, std::size_t n, std::uint64_t* out,
                    cudaStream_t stream) {
  return cub::DeviceReduce::Reduce(temp, temp_bytes, keys, out, static_cast<std::int64_t>(n), MinOp{},
                                   ~std::uint64_t{0}, stream);
}

}  // namespace vs::cuda::kernels
