// Device probe: counts usable CUDA devices and runs a smoke kernel.
#include "vectorscale/cuda/device_probe.hpp"

#include <cuda_runtime.h>

#include "detail/device.cuh"

namespace vs::cuda {
namespace {

__global__ void fill_iota(int* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = i * 3;
}

}  // namespace

DeviceReport probe_devices() noexcept {
  DeviceReport r;
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    r.reason = cudaGetErrorString(err);
    (void)cudaGetLastError();  // clear the sticky-free error state
    return r;
  }
  r.device_count = n;
  if (n == 0) {
    r.reason = "the CUDA runtime reports 0 devices";
    return r;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) == cudaSuccess) {
    r.first_name = prop.name;
    r.first_total_memory = prop.totalGlobalMem;
  }
  return r;
}

bool run_smoke_kernel(std::string& reason) noexcept {
  constexpr int kN = 1000;
  int* dev = nullptr;
  int host[kN];
  cudaError_t err = cudaMalloc(&dev, kN * sizeof(int));
  if (err == cudaSuccess) {
    VS_LAUNCH(fill_iota, (kN + 255) / 256, 256, 0, nullptr, dev, kN);
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) err = cudaMemcpy(host, dev, sizeof(host), cudaMemcpyDeviceToHost);
  if (dev != nullptr) cudaFree(dev);
  if (err != cudaSuccess) {
    reason = cudaGetErrorString(err);
    return false;
  }
  for (int i = 0; i < kN; ++i) {
    if (host[i] != i * 3) {
      reason = "smoke kernel wrote a wrong value";
      return false;
    }
  }
  return true;
}

}  // namespace vs::cuda
