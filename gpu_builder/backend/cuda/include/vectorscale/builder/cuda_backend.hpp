/**
 * @file cuda_backend.hpp
 * @brief The CUDA backend: SBQ training, codes and the Vamana graph on a GPU
 *        (vs::cuda::build_on_device), laid out by common/'s page writer like the CPU backend's.
 *
 * Host header (no CUDA types). Builds it cannot run on the GPU go to the CPU backend and are
 * recorded as CPU builds (meta page, Summary, log line), with a log line saying why:
 *  - labelled builds (Filtered DiskANN runs on the CPU only),
 *  - parameters whose kernels would not fit the device's shared memory (very large L or R),
 *  - empty builds.
 * A CUDA error fails only the build it happened in (vs::Error: kOutOfMemory when the device is
 * out of memory, kInternal otherwise), so the client sees a clear status and the extension
 * falls back to its local build. An unrecoverable one (cuda::device_fault: the process's
 * context is lost) sends every later build to the CPU backend, saying why, until gpu_builder
 * restarts. GPU builds run one at a time; others wait for the device.
 */
#pragma once
#include "vectorscale/builder/backend.hpp"
#include "vectorscale/builder/cpu_backend.hpp"
#include "vectorscale/cuda/plan.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

namespace vs::builder {

/** Options of the CUDA backend (`--cuda-device`; the rest are for tests and benchmarks). */
struct CudaBackendOptions {
  int device = -1;           ///< --cuda-device; -1: the device with the most free memory
  cuda::GraphOptions graph;  ///< algorithm knobs of the GPU build
  cuda::PlanLimits limits;   ///< memory-plan overrides (tests force the out-of-core paths)
};

/** Builds on one CUDA device. */
class CudaBackend final : public BuildBackend {
 public:
  /**
   * Opens the backend on the chosen device (creating its context). Throws vs::Error
   * kUnsupported, with the CUDA runtime's reason, when no device is usable.
   */
  [[nodiscard]] static std::unique_ptr<CudaBackend> create(const CudaBackendOptions& options);

  /** cudaMemGetInfo of the backend's device, in the context it builds in. */
  [[nodiscard]] DeviceMemory device_memory() const noexcept override;
  /** format::BuildBackend::kCuda. */
  [[nodiscard]] format::BuildBackend kind() const noexcept override { return format::BuildBackend::kCuda; }
  /** "cuda". */
  [[nodiscard]] std::string_view name() const noexcept override { return "cuda"; }
  /** Builds on the GPU, or hands the build to the CPU backend (see the file comment). */
  [[nodiscard]] BackendStats build(BuildInput&& input, const Control& control, const format::PageSink& sink) override;

  /** The device id. */
  [[nodiscard]] int device() const noexcept { return device_; }
  /** "NVIDIA H100 80GB HBM3 (device 0, the device with the most free memory of 1; ...)". */
  [[nodiscard]] const std::string& description() const noexcept { return description_; }

 private:
  CudaBackend(const CudaBackendOptions& options, int device, std::string description);
  BackendStats build_on_cpu(BuildInput&& input, const Control& control, const format::PageSink& sink,
                            const std::string& why);

  CudaBackendOptions options_;
  int device_;
  std::string description_;
  CpuBackend cpu_;
  std::mutex device_mutex_;  // one GPU build at a time
  // The device's unrecoverable error: written once, under device_mutex_, before faulted_ is set.
  std::string fault_;
  std::atomic<bool> faulted_{false};
};

}  // namespace vs::builder
