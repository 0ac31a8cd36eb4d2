// The CUDA emulator itself (label `unit`, in vs_gpu_emu_tests): barriers, warp shuffles and the
// warp sum, atomics, launch-configuration checks, device-memory checks, cuBLAS GEMMs and CUB
// calls, and sticky faults. The backend's kernels are tested on it by the `gpu` tests; these
// check that it runs CUDA code as a device would, and refuses what a device refuses.
#include "vectorscale/cuda/emu/device.hpp"
// (the emulator's definitions before any other header)

#include <cublas_v2.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <thread>
#include <vector>

#include "detail/device.cuh"
#include "detail/resources.hpp"
#include "vectorscale/cuda/emu/cub.hpp"

namespace {

// ---- kernels, in CUDA C++ -----------------------------------------------------------------
// Each thread publishes its index in shared memory, then reads its right neighbour's: correct
// only if every thread's write happens before any thread's read (the barrier).
__global__ void rotate_kernel(std::uint32_t* out) {
  VS_DYNAMIC_SHARED(std::uint32_t, shared);
  const std::uint32_t t = threadIdx.x;
  shared[t] = t + 1000 * blockIdx.x;
  __syncthreads();
  out[blockIdx.x * blockDim.x + t] = shared[(t + 1) % blockDim.x];
}

// out[t] = the value of lane t ^ mask, and sum[t] = the xor-butterfly sum of the warp, once
// through __shfl_xor_sync and once through the emulator's one-barrier sum.
__global__ void shuffle_kernel(const float* in, int mask, float* partner, float* loop_sum, float* fast_sum) {
  const std::uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
  const float v = in[t];
  partner[t] = __shfl_xor_sync(0xFFFFFFFFu, v, mask);
  float s = v;
  for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_xor_sync(0xFFFFFFFFu, s, offset);
  loop_sum[t] = s;
  fast_sum[t] = ::vs::cuda::emu::warp_butterfly_sum(v);
}

__global__ void count_kernel(unsigned* counter, unsigned* lowest) {
  atomicAdd(counter, 1u);
  atomicMin(lowest, blockIdx.x * blockDim.x + threadIdx.x + 7);
}

// Thread 0 skips the barrier the others wait at: a device hangs or faults; the emulator fails
// the launch.
__global__ void divergent_kernel(unsigned* out) {
  if (threadIdx.x == 0) {
    __syncwarp();
  } else {
    __syncthreads();
  }
  out[threadIdx.x] = 1;
}

__global__ void noop_kernel(unsigned* out) {
  if (out != nullptr && threadIdx.x == 0) out[0] = 1;
}

using vs::cuda::detail::DeviceBuffer;

template <class T>
std::vector<T> download(const DeviceBuffer<T>& d) {
  std::vector<T> h(d.size());
  EXPECT_EQ(cudaMemcpy(h.data(), d.data(), d.bytes(), cudaMemcpyDeviceToHost), cudaSuccess);
  return h;
}

template <class T>
void upload(DeviceBuffer<T>& d, const std::vector<T>& h) {
  ASSERT_EQ(h.size(), d.size());
  EXPECT_EQ(cudaMemcpy(d.data(), h.data(), d.bytes(), cudaMemcpyHostToDevice), cudaSuccess);
}

TEST(CudaEmulator, BarriersOrderSharedMemoryAcrossThreads) {
  DeviceBuffer<std::uint32_t> out(3 * 96);
  VS_LAUNCH(rotate_kernel, 3, 96, 96 * sizeof(std::uint32_t), nullptr, out.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const auto h = download(out);
  for (std::uint32_t b = 0; b < 3; ++b)
    for (std::uint32_t t = 0; t < 96; ++t) ASSERT_EQ(h[b * 96 + t], (t + 1) % 96 + 1000 * b) << b << " " << t;
}

TEST(CudaEmulator, WarpShufflesAndTheWarpSum) {
  const std::size_t n = 4 * 64;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-100.0f, 100.0f);
  std::vector<float> in(n);
  for (float& v : in) v = u(rng);
  DeviceBuffer<float> d_in(n), partner(n), loop_sum(n), fast_sum(n);
  upload(d_in, in);
  VS_LAUNCH(shuffle_kernel, 4, 64, 0, nullptr, d_in.data(), 5, partner.data(), loop_sum.data(), fast_sum.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const auto p = download(partner), ls = download(loop_sum), fs = download(fast_sum);
  for (std::size_t t = 0; t < n; ++t) {
    ASSERT_EQ(p[t], in[(t & ~std::size_t{31}) | ((t & 31) ^ 5)]) << t;
    // The butterfly as a device computes it: lane i adds lane i ^ offset, five rounds.
    std::vector<float> s(in.begin() + static_cast<long>(t & ~std::size_t{31}),
                         in.begin() + static_cast<long>((t & ~std::size_t{31}) + 32));
    for (int offset = 16; offset > 0; offset >>= 1) {
      std::vector<float> next(32);
      for (int i = 0; i < 32; ++i) next[i] = s[i] + s[i ^ offset];
      s = next;
    }
    ASSERT_EQ(ls[t], s[t & 31]) << t;
    ASSERT_EQ(fs[t], ls[t]) << t;  // bit for bit
  }
}

TEST(CudaEmulator, AtomicsCountEveryThread) {
  DeviceBuffer<unsigned> counter(1), lowest(1);
  upload(counter, {0});
  upload(lowest, {~0u});
  VS_LAUNCH(count_kernel, dim3(5, 2), 160, 0, nullptr, counter.data(), lowest.data());
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(download(counter)[0], 5u * 2u * 160u);
  EXPECT_EQ(download(lowest)[0], 7u);
}

TEST(CudaEmulator, RefusesWhatADeviceRefuses) {
  DeviceBuffer<unsigned> out(1);
  VS_LAUNCH(noop_kernel, 1, 2048, 0, nullptr, out.data());  // over 1024 threads
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);                          // read once
  VS_LAUNCH(noop_kernel, dim3(1, 70000), 32, 0, nullptr, out.data());  // grid y over 65535
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  VS_LAUNCH(noop_kernel, 0, 32, 0, nullptr, out.data());  // an empty grid
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  // Dynamic shared memory above 48 KiB needs the kernel's attribute first, and never more than
  // the opt-in limit.
  VS_LAUNCH(noop_kernel, 1, 32, 64 * 1024, nullptr, out.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  int optin = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0), cudaSuccess);
  EXPECT_EQ(cudaFuncSetAttribute(noop_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, optin + 1),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);  // a failed call is the last error too
  ASSERT_EQ(cudaFuncSetAttribute(noop_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 64 * 1024), cudaSuccess);
  VS_LAUNCH(noop_kernel, 1, 32, 64 * 1024, nullptr, out.data());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  // Copies must stay inside their allocations and go the way their kind says.
  std::vector<unsigned> host(4);
  EXPECT_EQ(cudaMemcpy(out.data(), host.data(), 4 * sizeof(unsigned), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(host.data(), out.data(), sizeof(unsigned), cudaMemcpyHostToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemsetAsync(out.data(), 0, 8, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(host.data(), out.data(), sizeof(unsigned), cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(out.data(), out.data(), sizeof(unsigned), cudaMemcpyDeviceToDevice), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(host.data(), out.data(), sizeof(unsigned), cudaMemcpyDeviceToDevice), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(&host[1], host.data(), sizeof(unsigned), cudaMemcpyHostToHost), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(&host[1], out.data(), sizeof(unsigned), cudaMemcpyHostToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(host.data(), out.data(), sizeof(unsigned), cudaMemcpyDefault), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(host.data(), out.data(), 2 * sizeof(unsigned), cudaMemcpyDefault), cudaErrorInvalidValue);
  // Device memory is finite and accounted.
  std::size_t free_before = 0, total = 0, free_after = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_before, &total), cudaSuccess);
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, total + 1), cudaErrorMemoryAllocation);
  ASSERT_EQ(cudaMalloc(&p, 1 << 20), cudaSuccess);
  ASSERT_EQ(cudaMemGetInfo(&free_after, &total), cudaSuccess);
  EXPECT_EQ(free_before - free_after, std::size_t{1} << 20);
  EXPECT_EQ(cudaFree(p), cudaSuccess);
  EXPECT_EQ(cudaFree(host.data()), cudaErrorInvalidValue);  // not device memory
  (void)cudaGetLastError();
}

// Timing events measure the time between their records (streams are synchronous); the runtime's
// rules: both recorded, neither created with cudaEventDisableTiming.
TEST(CudaEmulator, TimingEventsMeasureBetweenRecords) {
  const vs::cuda::detail::Event a(cudaEventDefault), b(cudaEventDefault), untimed;
  float ms = -1;
  EXPECT_EQ(cudaEventElapsedTime(&ms, a.get(), b.get()), cudaErrorInvalidResourceHandle);  // not recorded
  a.record(nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  b.record(nullptr);
  ASSERT_EQ(cudaEventElapsedTime(&ms, a.get(), b.get()), cudaSuccess);
  EXPECT_GE(ms, 20.0f);
  EXPECT_LT(ms, 10000.0f);
  untimed.record(nullptr);
  EXPECT_EQ(cudaEventElapsedTime(&ms, a.get(), untimed.get()), cudaErrorInvalidResourceHandle);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidResourceHandle);
}

TEST(CudaEmulator, GemmsAreCublasColumnMajorGemms) {
  // C (m x n) = op(A) op(B) for every transposition, batched with strides, against a plain
  // triple loop; FP32 and BF16 inputs.
  const int m = 5, n = 7, k = 9, batch = 3;
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> u(-4, 4);  // small integers: every sum exact
  cublasHandle_t h = nullptr;
  ASSERT_EQ(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  for (const bool ta : {false, true})
    for (const bool tb : {false, true}) {
      const int lda = (ta ? k : m) + 2, ldb = (tb ? n : k) + 1, ldc = m + 3;
      const long long sa = static_cast<long long>(lda) * (ta ? m : k), sb = static_cast<long long>(ldb) * (tb ? k : n),
                      sc = static_cast<long long>(ldc) * n;
      std::vector<float> a(static_cast<std::size_t>(sa * batch)), b(static_cast<std::size_t>(sb * batch));
      for (float& v : a) v = static_cast<float>(u(rng));
      for (float& v : b) v = static_cast<float>(u(rng));
      DeviceBuffer<float> da(a.size()), db(b.size()), dc(static_cast<std::size_t>(sc * batch));
      upload(da, a);
      upload(db, b);
      const float one = 1.0f, zero = 0.0f;
      ASSERT_EQ(
          cublasSgemmStridedBatched(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &one,
                                    da.data(), lda, sa, db.data(), ldb, sb, &zero, dc.data(), ldc, sc, batch),
          CUBLAS_STATUS_SUCCESS);
      const auto c = download(dc);
      for (int bi = 0; bi < batch; ++bi)
        for (int i = 0; i < m; ++i)
          for (int j = 0; j < n; ++j) {
            float want = 0;
            for (int l = 0; l < k; ++l) {
              const float x = ta ? a[bi * sa + l + i * lda] : a[bi * sa + i + l * lda];
              const float y = tb ? b[bi * sb + j + l * ldb] : b[bi * sb + l + j * ldb];
              want += x * y;
            }
            ASSERT_EQ(c[bi * sc + i + j * ldc], want) << ta << tb << " " << bi << " " << i << " " << j;
          }
    }
  // A leading dimension below the rows is refused, as cuBLAS refuses it.
  DeviceBuffer<float> x(64), y(64);
  const float one = 1.0f, zero = 0.0f;
  EXPECT_EQ(cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, x.data(), 3, 16, x.data(), 4, 16,
                                      &zero, y.data(), 4, 16, 1),
            CUBLAS_STATUS_INVALID_VALUE);
  EXPECT_EQ(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}

TEST(CudaEmulator, CubCallsFollowCubsProtocol) {
  const std::vector<std::uint32_t> keys = {5, 3, 5, 1, 3, 0x80000003u};
  const std::vector<std::uint32_t> values = {0, 1, 2, 3, 4, 5};
  std::vector<std::uint32_t> ko(keys.size()), vo(keys.size());
  std::size_t bytes = 0;
  ASSERT_EQ(cub::DeviceRadixSort::SortPairs(nullptr, bytes, keys.data(), ko.data(), values.data(), vo.data(),
                                            static_cast<int>(keys.size()), 0, 8),
            cudaSuccess);
  std::vector<std::uint8_t> temp(bytes);
  std::size_t small = bytes - 1;
  EXPECT_EQ(cub::DeviceRadixSort::SortPairs(temp.data(), small, keys.data(), ko.data(), values.data(), vo.data(),
                                            static_cast<int>(keys.size()), 0, 8),
            cudaErrorInvalidValue);
  ASSERT_EQ(cub::DeviceRadixSort::SortPairs(temp.data(), bytes, keys.data(), ko.data(), values.data(), vo.data(),
                                            static_cast<int>(keys.size()), 0, 8),
            cudaSuccess);
  // Bits 0..8 only: 0x80000003 sorts with the 3s, and equal keys keep their order.
  EXPECT_EQ(vo, (std::vector<std::uint32_t>{3, 1, 4, 5, 0, 2}));
  std::vector<std::uint32_t> unique(keys.size()), lengths(keys.size());
  std::uint32_t runs = 0;
  const std::vector<std::uint32_t> sorted = {1, 1, 2, 7, 7, 7};
  ASSERT_EQ(cub::DeviceRunLengthEncode::Encode(temp.data(), bytes, sorted.data(), unique.data(), lengths.data(), &runs,
                                               static_cast<int>(sorted.size())),
            cudaSuccess);
  ASSERT_EQ(runs, 3u);
  EXPECT_EQ(std::vector<std::uint32_t>(unique.begin(), unique.begin() + 3), (std::vector<std::uint32_t>{1, 2, 7}));
  EXPECT_EQ(std::vector<std::uint32_t>(lengths.begin(), lengths.begin() + 3), (std::vector<std::uint32_t>{2, 1, 3}));
  std::vector<std::uint32_t> sums(3);
  ASSERT_EQ(cub::DeviceScan::ExclusiveSum(temp.data(), bytes, lengths.data(), sums.data(), 3), cudaSuccess);
  EXPECT_EQ(sums, (std::vector<std::uint32_t>{0, 2, 3}));
}

// A fault is sticky, as a device's is: every later call of the process fails. Each case runs in
// a child process (a death test), so the fault stays there; the child reports by its exit code
// what it saw, and its stderr must carry the emulator's reason.
int faulted_process_code(cudaError_t want) {
  int wrong = 0;
  wrong += cudaGetLastError() != want;
  wrong += cudaDeviceSynchronize() != want;
  void* p = nullptr;
  wrong += cudaMalloc(&p, 16) != want;
  wrong += cudaGetLastError() != want;  // reading it does not clear it
  return wrong;
}

[[noreturn]] void diverge() {
  DeviceBuffer<unsigned> out(64);
  VS_LAUNCH(divergent_kernel, 1, 64, 0, nullptr, out.data());
  std::exit(faulted_process_code(cudaErrorLaunchFailure));
}

[[noreturn]] void gemm_past_the_output() {
  DeviceBuffer<float> x(16);
  DeviceBuffer<float> y(15);  // C needs 16 floats
  cublasHandle_t h = nullptr;
  if (cublasCreate(&h) != CUBLAS_STATUS_SUCCESS) std::exit(100);
  const float one = 1.0f, zero = 0.0f;
  const cublasStatus_t st = cublasSgemmStridedBatched(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, x.data(), 4, 16,
                                                      x.data(), 4, 16, &zero, y.data(), 4, 16, 1);
  if (st != CUBLAS_STATUS_EXECUTION_FAILED) std::exit(101);
  std::exit(faulted_process_code(cudaErrorIllegalAddress));
}

TEST(CudaEmulatorDeathTest, BarrierDivergenceIsAStickyLaunchFailure) {
  EXPECT_EXIT(diverge(), ::testing::ExitedWithCode(0), "threads of the block wait at different barriers");
}

TEST(CudaEmulatorDeathTest, GemmPastItsBufferIsAStickyIllegalAddress) {
  EXPECT_EXIT(gemm_past_the_output(), ::testing::ExitedWithCode(0), "operand C reaches outside its device allocation");
}

}  // namespace
