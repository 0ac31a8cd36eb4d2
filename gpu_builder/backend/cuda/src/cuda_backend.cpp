// The CUDA backend: vs::cuda::build_on_device for the quantizer, codes and graph, then
// common/'s Index::from_parts and write_index_pages, as the CPU backend lays its index out.
#include "vectorscale/builder/cuda_backend.hpp"

#include <algorithm>
#include <chrono>
#include <thread>
#include <utility>

#include "vectorscale/core/error.hpp"
#include "vectorscale/core/threads.hpp"
#include "vectorscale/cuda/device_build.hpp"
#include "vectorscale/distance/distance.hpp"

namespace vs::builder {

namespace {

using Clock = std::chrono::steady_clock;

// Scales every row to unit length in place (what Index::build does for cosine), on `threads`.
void normalize_rows(float* v, std::size_t n, std::size_t dims, std::size_t threads) {
  const std::size_t workers = std::max<std::size_t>(1, std::min(threads, n / 4096));
  run_workers(workers, [&](std::size_t w) {
    for (std::size_t i = n * w / workers; i < n * (w + 1) / workers; ++i) (void)distance::normalize(v + i * dims, dims);
  });
}

}  // namespace

std::unique_ptr<CudaBackend> CudaBackend::create(const CudaBackendOptions& options) {
  const cuda::DeviceChoice c = cuda::choose_device(options.device);
  if (c.device < 0) VS_FAIL(ErrorCode::kUnsupported, "no usable CUDA device: %s", c.reason.c_str());
  std::string description = detail::format("%s (device %d, %s; %.1f of %.1f GiB free)", c.name.c_str(), c.device,
                                           c.reason.c_str(), static_cast<double>(c.free_bytes) / (1ull << 30),
                                           static_cast<double>(c.total_bytes) / (1ull << 30));
  return std::unique_ptr<CudaBackend>(new CudaBackend(options, c.device, std::move(description)));
}

CudaBackend::CudaBackend(const CudaBackendOptions& options, int device, std::string description)
    : options_(options), device_(device), description_(std::move(description)) {}

DeviceMemory CudaBackend::device_memory() const noexcept {
  const cuda::DeviceMemoryInfo m = cuda::device_memory_info(device_);
  return DeviceMemory{m.total_bytes - m.free_bytes, m.total_bytes};
}

BackendStats CudaBackend::build_on_cpu(BuildInput&& in, const Control& control, const format::PageSink& sink,
                                       const std::string& why) {
  if (control.log) control.log(LogLevel::kInfo, "cuda backend: building on the CPU: " + why);
  in.page_options.provenance.backend = format::BuildBackend::kCpu;
  BackendStats stats = cpu_.build(std::move(in), control, sink);
  stats.backend = format::BuildBackend::kCpu;
  return stats;
}

BackendStats CudaBackend::build(BuildInput&& in, const Control& control, const format::PageSink& sink) {
  if (in.labels.has_value() || in.page_options.labeled)
    return build_on_cpu(std::move(in), control, sink, "labelled builds (Filtered DiskANN) run on the CPU backend");
  if (in.rows == 0) return build_on_cpu(std::move(in), control, sink, "no rows");
  if (faulted_.load(std::memory_order_acquire))
    return build_on_cpu(
        std::move(in), control, sink,
        "the CUDA device failed earlier in this process (" + fault_ + "); restart gpu_builder to build on it again");
  cuda::DeviceBuildOptions o;
  o.device = device_;
  o.graph = options_.graph;
  o.limits = options_.limits;
  o.train_phase = kPhaseTrain;
  std::string why;
  if (!cuda::device_supports(in.params, in.rows, in.dims, o, why))
    return build_on_cpu(std::move(in), control, sink, why);

  // One GPU build at a time: wait for the device, still answering cancellation.
  std::unique_lock<std::mutex> lock(device_mutex_, std::defer_lock);
  while (!lock.try_lock()) {
    if (control.cancel && control.cancel()) throw Cancelled();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // With the device to itself: does the build fit its free memory?
  if (!cuda::device_memory_fits(in.params, in.rows, in.dims, o, why)) {
    lock.unlock();
    return build_on_cpu(std::move(in), control, sink, why);
  }

  const auto t0 = Clock::now();
  if (control.progress) control.progress(kPhaseTrain, 0, in.rows);
  VS_EXPECTS(in.vectors.size() >= in.rows * in.dims, "%zu rows of %zu dimensions need %zu floats, got %zu", in.rows,
             in.dims, in.rows * in.dims, in.vectors.size());
  if (in.params.build.metric == distance::Metric::kCosine)
    normalize_rows(in.vectors.data(), in.rows, in.dims, in.params.build.threads);

  auto device_build = [&] {
    try {
      return cuda::build_on_device(in.vectors.data(), in.rows, in.dims, in.params, control, o);
    } catch (const vs::Error&) {
      // A sticky error leaves the context unusable: later builds go to the CPU backend.
      if (!faulted_.load(std::memory_order_relaxed)) {
        std::string fault = cuda::device_fault(device_);
        if (!fault.empty()) {
          fault_ = std::move(fault);
          faulted_.store(true, std::memory_order_release);
          if (control.log) control.log(LogLevel::kWarning, "cuda backend: the device is unusable: " + fault_);
        }
      }
      throw;
    }
  };
  cuda::DeviceBuildResult r = device_build();
  if (control.log)
    control.log(
        LogLevel::kInfo,
        detail::format("cuda build: %zu rows, train %.3f s, insert %.3f s, prune %.3f s, connect %.3f s; %s vectors; "
                       "%s; %s",
                       in.rows, r.times.train, r.times.insert, r.times.prune, r.times.connect,
                       r.bf16_vectors ? "bf16" : "fp32", r.plan.describe().c_str(), r.gram.describe().c_str()));
  const vamana::Index index = vamana::Index::from_parts(std::move(in.vectors), in.rows, in.dims, in.params,
                                                        std::move(r.quantizer), std::move(r.codes), std::move(r.graph));
  const auto t1 = Clock::now();
  (void)vamana::write_index_pages(index, in.params.build, in.heap_tids, in.page_options, sink);
  BackendStats out;
  out.build_seconds = std::chrono::duration<double>(t1 - t0).count();
  out.write_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  out.nodes = index.size();
  out.distance_computations = r.stats.distance_computations;
  out.repaired_unreachable = r.stats.repaired_unreachable;
  out.backend = format::BuildBackend::kCuda;
  return out;
}

}  // namespace vs::builder
