// The GPU build (device_build.hpp): host orchestration of the kernels in *.cu, cuBLAS and CUB.
//
// Every CUDA and cuBLAS call goes through VS_CUDA_TRY / VS_CUBLAS_TRY; every device buffer,
// pinned buffer, registration, stream, event and handle is an RAII owner (detail/resources.hpp),
// so an error or a cancellation anywhere releases everything and fails only this build. Work
// is queued on one compute stream (plus a copy stream during the upload); the host waits at
// batch boundaries, where it also polls cancellation and reports progress.
#include "vectorscale/cuda/device_build.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "detail/cuda_try.hpp"
#include "detail/resources.hpp"
#include "kernels.hpp"
#include "vectorscale/core/threads.hpp"
#include "vectorscale/cuda/gram.hpp"
#include "vectorscale/cuda/gram_batches.hpp"

namespace vs::cuda {

namespace detail {

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  const ErrorCode code = status == cudaErrorMemoryAllocation ? ErrorCode::kOutOfMemory : ErrorCode::kInternal;
  (void)cudaGetLastError();  // clear a non-sticky error so the next build starts clean
  const char* base = std::strrchr(file, '/');
  throw Error(code, vs::detail::format("CUDA error %s (%s) in %s at %s:%d", cudaGetErrorName(status),
                                       cudaGetErrorString(status), call, base != nullptr ? base + 1 : file, line));
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  const ErrorCode code = status == CUBLAS_STATUS_ALLOC_FAILED ? ErrorCode::kOutOfMemory : ErrorCode::kInternal;
  const char* base = std::strrchr(file, '/');
  throw Error(code, vs::detail::format("cuBLAS error %s (%s) in %s at %s:%d", cublasGetStatusName(status),
                                       cublasGetStatusString(status), call, base != nullptr ? base + 1 : file, line));
}

}  // namespace detail

namespace {

using Clock = std::chrono::steady_clock;
using detail::DeviceBuffer;
using detail::Event;
using detail::PinnedBuffer;
using detail::Stream;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Device time by kind of work. mark(kind) records a timing event on the stream: the work
// queued after it, until the next mark, is of that kind. settle(), once the stream is
// synchronized, adds up the intervals that have ended; the last mark stays open, so that the
// time the stream then waits for the host is counted when the next mark comes (as kHost, the
// kind marked before each synchronization). Events are reused.
class KernelClock {
 public:
  enum Kind : std::uint8_t { kSearch, kCandidates, kOrder, kGather, kGemm, kPrune, kReverse, kHost, kKinds };

  explicit KernelClock(const Stream& stream) : stream_(stream) {}

  void mark(Kind kind) {
    if (free_.empty()) {
      events_.push_back(std::make_unique<Event>(cudaEventDefault));
      free_.push_back(events_.back()->get());
    }
    const cudaEvent_t e = free_.back();
    VS_CUDA_TRY(cudaEventRecord(e, stream_.get()));
    free_.pop_back();
    open_.push_back({e, kind});
  }

  void settle() {
    for (std::size_t i = 0; i + 1 < open_.size(); ++i) {
      float ms = 0;
      VS_CUDA_TRY(cudaEventElapsedTime(&ms, open_[i].event, open_[i + 1].event));
      seconds_[open_[i].kind] += 1e-3 * ms;
      free_.push_back(open_[i].event);
    }
    if (open_.size() > 1) open_.erase(open_.begin(), open_.end() - 1);
  }

  [[nodiscard]] DeviceKernelTimes times() const {
    return {seconds_[kSearch], seconds_[kCandidates], seconds_[kOrder], seconds_[kGather],
            seconds_[kGemm],   seconds_[kPrune],      seconds_[kReverse], seconds_[kHost]};
  }

 private:
  struct Open {
    cudaEvent_t event;
    Kind kind;
  };
  const Stream& stream_;
  std::vector<std::unique_ptr<Event>> events_;
  std::vector<cudaEvent_t> free_;
  std::vector<Open> open_;
  std::array<double, kKinds> seconds_{};
};

// Copies a device array to a host vector (synchronously on `stream`).
template <class T>
std::vector<T> download(const T* dev, std::size_t n, const Stream& stream) {
  std::vector<T> out(n);
  if (n != 0) VS_CUDA_TRY(cudaMemcpyAsync(out.data(), dev, n * sizeof(T), cudaMemcpyDeviceToHost, stream.get()));
  stream.sync();
  return out;
}

// Copies one device value to the host (synchronously on `stream`); no allocation, for the
// counts read once per batch or phase.
template <class T>
T download_one(const T* dev, const Stream& stream) {
  T out{};
  VS_CUDA_TRY(cudaMemcpyAsync(&out, dev, sizeof(T), cudaMemcpyDeviceToHost, stream.get()));
  stream.sync();
  return out;
}

// Copies a host array to the device (the host memory must outlive the copy: sync after).
template <class T>
void upload(T* dev, const T* host, std::size_t n, const Stream& stream) {
  if (n != 0) VS_CUDA_TRY(cudaMemcpyAsync(dev, host, n * sizeof(T), cudaMemcpyHostToDevice, stream.get()));
}

// Largest dynamic shared memory a block of `device` may use.
std::size_t max_shared_bytes(int device) {
  int bytes = 0;
  VS_CUDA_TRY(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return static_cast<std::size_t>(bytes);
}

// Bits per dimension of the build's SBQ codes; 0 for plain storage (no codes).
std::uint32_t sbq_bits(const vamana::IndexParams& params, std::size_t dims) {
  if (params.storage != vamana::Storage::kMemoryOptimized) return 0;
  return params.bits_per_dim == 0 ? sbq::default_bits_per_dim(dims) : params.bits_per_dim;
}

// 64-bit words of one row's SBQ code; 0 for plain storage.
std::size_t code_words(const vamana::IndexParams& params, std::size_t dims) {
  const std::uint32_t bits = sbq_bits(params, dims);
  return bits != 0 ? sbq::code_words(dims, bits) : 0;
}

// Whether the graph phase may read bfloat16 copies of the vectors: asked for
// (GraphOptions::bf16_vectors), and the device has BF16 GEMMs (compute capability 8.0).
bool bf16_graph_possible(const DeviceBuildOptions& options) {
  if (!options.graph.bf16_vectors) return false;
  int major = 0;
  VS_CUDA_TRY(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, options.device));
  return major >= 8;
}

// The memory plan of a build on options.device while free_bytes of its memory are free.
MemoryPlan plan_build(std::uint64_t free_bytes, std::size_t rows, std::size_t dims, const vamana::IndexParams& params,
                      const GraphSettings& s, const DeviceBuildOptions& options) {
  return plan_device_memory(static_cast<std::uint64_t>(static_cast<double>(free_bytes) * options.memory_fraction), rows,
                            dims, code_words(params, dims), s, options.limits, bf16_graph_possible(options));
}

// Most dynamic shared memory of a search block: what a block may opt in to, and with the
// full-occupancy kernel what lets kSearchFullOccupancyBlocks blocks share an SM.
std::size_t search_shared_limit(int device, bool full_occupancy) {
  std::size_t limit = max_shared_bytes(device);
  if (full_occupancy) {
    int per_sm = 0, reserved = 0;
    VS_CUDA_TRY(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
    VS_CUDA_TRY(cudaDeviceGetAttribute(&reserved, cudaDevAttrReservedSharedMemoryPerBlock, device));
    const std::size_t share = static_cast<std::size_t>(per_sm) / kernels::kSearchFullOccupancyBlocks;
    limit = std::min(limit, share > static_cast<std::size_t>(reserved) ? share - reserved : 0);
  }
  return limit;
}

// The device half of one build; members live as long as the build.
class DeviceBuilder {
 public:
  DeviceBuilder(const float* vectors, std::size_t n, std::size_t dims, const vamana::IndexParams& params,
                const Control& control, const DeviceBuildOptions& options)
      : host_(vectors),
        n_(n),
        dims_(dims),
        params_(params),
        control_(control),
        options_(options),
        s_(derive_settings(params.build, options.graph)),
        bits_(sbq_bits(params, dims)),
        words_(code_words(params, dims)),
        blas_(stream_.get()) {}
  DeviceBuilder(const DeviceBuilder&) = delete;
  DeviceBuilder& operator=(const DeviceBuilder&) = delete;
  // On every exit (errors, cancellation): no queued work may still use the buffers and the
  // mapped host memory that the members release.
  ~DeviceBuilder() { (void)cudaStreamSynchronize(stream_.get()); }

  DeviceBuildResult run() {
    DeviceBuildResult out;
    if (options_.graph.tf32_gram) VS_CUBLAS_TRY(cublasSetMathMode(blas_.get(), CUBLAS_TF32_TENSOR_OP_MATH));
    const auto t0 = Clock::now();
    std::size_t free_bytes = 0, total_bytes = 0;
    VS_CUDA_TRY(cudaMemGetInfo(&free_bytes, &total_bytes));
    plan_ = plan_build(free_bytes, n_, dims_, params_, s_, options_);
    out.plan = plan_;
    if (control_.log) control_.log(LogLevel::kInfo, "cuda build plan: " + plan_.describe());

    auto t = Clock::now();
    train(out);
    graph_vectors();
    out.bf16_vectors = xh_ != nullptr;
    out.times.train = seconds_since(t);
    t = Clock::now();
    allocate_graph();
    insert_all();
    out.times.insert = seconds_since(t);
    t = Clock::now();
    final_prune();
    out.times.prune = seconds_since(t);
    out.times.device = clock_.times();
    out.local_visited_slots = local_slots_;
    out.query_in_shared = query_bytes_ != 0;
    t = Clock::now();
    out.graph = download_graph();
    release_device_memory();
    out.stats = stats_;
    out.gram = gram_work_;
    out.stats.repaired_unreachable =
        vamana::link_unreachable(out.graph, host_, dims_, params_.build, control_, &out.stats.distance_computations);
    out.times.connect = seconds_since(t);
    out.times.total = seconds_since(t0);
    return out;
  }

 private:
  void poll(std::uint32_t phase, std::uint64_t done, std::uint64_t total) {
    if (control_.cancel && control_.cancel()) throw Cancelled();
    if (phase != 0 && control_.progress) control_.progress(phase, done, total);
  }

  // ---- 1-2: vectors, statistics, codes, medoid ----------------------------------------------
  void train(DeviceBuildResult& out) {
    const std::size_t groups = (n_ + kStatsRows - 1) / kStatsRows;
    DeviceBuffer<double> partials(groups * dims_);
    DeviceBuffer<double> moments(2 * dims_);  // mean, then variance
    poll(options_.train_phase, 0, n_);
    if (plan_.resident) {
      upload_with_sums(partials.data());
    } else {
      mapped_.emplace(host_, n_ * dims_ * sizeof(float));
      x_ = static_cast<const float*>(mapped_->device_pointer());
      VS_CUDA_TRY(kernels::column_sums(x_, n_, dims_, nullptr, 0, partials.data(), stream_.get()));
    }
    VS_CUDA_TRY(
        kernels::reduce_groups(partials.data(), groups, dims_, static_cast<double>(n_), moments.data(), stream_.get()));
    const bool second_moment = bits_ > 1;
    if (second_moment) {
      VS_CUDA_TRY(kernels::column_sums(x_, n_, dims_, moments.data(), 0, partials.data(), stream_.get()));
      VS_CUDA_TRY(kernels::reduce_groups(partials.data(), groups, dims_, static_cast<double>(n_),
                                         moments.data() + dims_, stream_.get()));
    }
    const std::vector<double> m = download(moments.data(), second_moment ? 2 * dims_ : dims_, stream_);
    partials.reset();
    poll(options_.train_phase, n_, n_);

    // The quantizer as common/'s Trainer::finish would write it (mean, population deviation).
    std::vector<float> centroid(dims_);
    for (std::size_t d = 0; d < dims_; ++d) centroid[d] = static_cast<float>(m[d]);
    DeviceBuffer<float> centroid_d(dims_);
    upload(centroid_d.data(), centroid.data(), dims_, stream_);
    if (bits_ != 0) {  // SBQ storage
      std::vector<float> stream_values(sbq::stream_length(dims_, bits_));
      std::copy(centroid.begin(), centroid.end(), stream_values.begin());
      if (bits_ > 1)
        for (std::size_t d = 0; d < dims_; ++d) stream_values[dims_ + d] = static_cast<float>(std::sqrt(m[dims_ + d]));
      out.quantizer = sbq::Quantizer(dims_, bits_, stream_values);
      encode(out);
    }
    medoid_ = find_medoid(centroid_d.data());
    stream_.sync();
  }

  // Copies the vectors to the device in chunks through two pinned buffers: the host fills one
  // while the copy engine moves the other and the compute stream sums the previous chunk.
  void upload_with_sums(double* partials) {
    vectors_ = DeviceBuffer<float>(n_ * dims_);
    x_ = vectors_.data();
    const std::size_t rows = std::min(plan_.upload_rows, n_);
    PinnedBuffer<float> staging[2] = {PinnedBuffer<float>(rows * dims_), PinnedBuffer<float>(rows * dims_)};
    Event copied[2];
    Stream copy;
    const detail::StreamSyncGuard copies_done(copy);  // no copy still reads `staging` when it is freed
    const std::size_t threads = std::max<std::uint32_t>(1, params_.build.threads);
    std::size_t chunk = 0;
    for (std::size_t r0 = 0; r0 < n_; r0 += rows, ++chunk) {
      const std::size_t r1 = std::min(n_, r0 + rows), slot = chunk % 2;
      if (chunk >= 2) copied[slot].sync();  // the copy that used this buffer is done
      float* dst = staging[slot].data();
      const std::size_t count = r1 - r0;
      const std::size_t workers = std::min(threads, std::max<std::size_t>(1, count / 1024));
      run_workers(workers, [&](std::size_t w) {
        const std::size_t a = count * w / workers, b = count * (w + 1) / workers;
        std::memcpy(dst + a * dims_, host_ + (r0 + a) * dims_, (b - a) * dims_ * sizeof(float));
      });
      VS_CUDA_TRY(cudaMemcpyAsync(vectors_.data() + r0 * dims_, dst, count * dims_ * sizeof(float),
                                  cudaMemcpyHostToDevice, copy.get()));
      copied[slot].record(copy.get());
      VS_CUDA_TRY(cudaStreamWaitEvent(stream_.get(), copied[slot].get(), 0));
      VS_CUDA_TRY(kernels::column_sums(vectors_.data() + r0 * dims_, count, dims_, nullptr, r0 / kStatsRows, partials,
                                       stream_.get()));
      poll(options_.train_phase, r1, n_);
    }
    copy.sync();
  }

  void encode(DeviceBuildResult& out) {
    std::vector<float> inv(bits_ > 1 ? dims_ : 1, 0.0f);
    if (bits_ > 1)  // as sbq::Quantizer's constructor computes it
      for (std::size_t d = 0; d < dims_; ++d) {
        const float sd = out.quantizer.stddev()[d];
        inv[d] = sd > 0.0f ? 1.0f / sd : 0.0f;
      }
    DeviceBuffer<float> mean_d(dims_), inv_d(inv.size());
    upload(mean_d.data(), out.quantizer.mean().data(), dims_, stream_);
    upload(inv_d.data(), inv.data(), inv.size(), stream_);
    DeviceBuffer<std::uint64_t> codes(n_ * words_);
    VS_CUDA_TRY(kernels::sbq_encode(x_, n_, dims_, mean_d.data(), inv_d.data(), bits_, codes.data(), stream_.get()));
    out.codes = Array<std::uint64_t>(n_ * words_, kUninitialized);  // all of it downloaded
    VS_CUDA_TRY(cudaMemcpyAsync(out.codes.data(), codes.data(), codes.bytes(), cudaMemcpyDeviceToHost, stream_.get()));
    stream_.sync();
  }

  std::uint32_t find_medoid(const float* centroid) {
    DeviceBuffer<std::uint64_t> keys(n_), best(1);
    VS_CUDA_TRY(kernels::medoid_keys(x_, n_, dims_, centroid, keys.data(), stream_.get()));
    std::size_t temp_bytes = 0;
    VS_CUDA_TRY(kernels::min_key(nullptr, temp_bytes, keys.data(), n_, best.data(), stream_.get()));
    DeviceBuffer<std::uint8_t> temp(temp_bytes);
    VS_CUDA_TRY(kernels::min_key(temp.data(), temp_bytes, keys.data(), n_, best.data(), stream_.get()));
    return static_cast<std::uint32_t>(download_one(best.data(), stream_) & 0xFFFFFFFFu);
  }

  // The vectors the graph phase reads (MemoryPlan::bf16_graph): a bfloat16 copy, rounded from
  // the float vectors on the device or in mapped host memory, which it then replaces (the
  // device's float copy is freed, the host memory unpinned).
  void graph_vectors() {
    if (!plan_.bf16_graph) {
      if (options_.graph.bf16_vectors && control_.log)
        control_.log(LogLevel::kInfo,
                     std::string("cuda build: float vectors for the graph: ") +
                         (bf16_graph_possible(options_)
                              ? "no device memory for a bfloat16 copy: the vectors stay in mapped host memory"
                              : "the device has no BF16 GEMM (compute capability below 8.0)"));
      return;
    }
    half_ = DeviceBuffer<core::Bf16>(n_ * dims_);
    VS_CUDA_TRY(kernels::round_bf16(x_, n_ * dims_, half_.data(), stream_.get()));
    stream_.sync();
    vectors_.reset();
    mapped_.reset();
    x_ = nullptr;
    xh_ = half_.data();
  }

  // ---- 3: batched insertion -----------------------------------------------------------------
  // Device memory of the graph phase (MemoryPlan::graph_bytes + per_query_bytes * search_batch
  // + per_prune_bytes * prune_batch), released as a whole.
  struct Work {
    Work(std::size_t n, std::size_t dims, const GraphSettings& s, const MemoryPlan& plan)
        : neighbors(n * s.stride),
          degrees(n),
          order(n),
          over(n),
          tables(plan.search_batch * plan.table_slots),
          log_id(plan.search_batch * s.max_iters),
          log_key(plan.search_batch * s.max_iters),
          log_count(plan.search_batch),
          kept_distance(plan.search_batch * s.R),
          counters(kernels::kCounters),
          rows(plan.prune_batch * plan.gram_dim * dims),
          gram(plan.prune_batch * plan.gram_dim * plan.gram_dim),
          cand(plan.prune_batch * s.max_candidates),
          cand_counts(plan.prune_batch),
          prune_nodes(plan.prune_batch),
          histogram(std::size_t{s.max_candidates} + 2),
          histogram_host(std::size_t{s.max_candidates} + 2),
          count_ids(std::max(plan.search_batch, plan.prune_batch)),
          count_keys(count_ids.size()),
          by_count(count_ids.size()),
          edge_keys{DeviceBuffer<std::uint64_t>(plan.search_batch * s.R),
                    DeviceBuffer<std::uint64_t>(plan.search_batch * s.R)},
          edge_values{DeviceBuffer<std::uint32_t>(plan.search_batch * s.R),
                      DeviceBuffer<std::uint32_t>(plan.search_batch * s.R)},
          targets(plan.search_batch * s.R),
          run_target(plan.search_batch * s.R),
          run_length(plan.search_batch * s.R),
          run_start(plan.search_batch * s.R),
          run_count(2),
          overflow(plan.search_batch * s.R) {
      std::size_t temp_bytes = 0;
      VS_CUDA_TRY(kernels::order_temp_bytes(static_cast<std::uint32_t>(by_count.size()), s.max_candidates, temp_bytes));
      count_temp = DeviceBuffer<std::uint8_t>(temp_bytes);
      VS_CUDA_TRY(kernels::reverse_temp_bytes(plan.search_batch * s.R, temp_bytes));
      reverse_temp = DeviceBuffer<std::uint8_t>(temp_bytes);
      reverse = kernels::ReverseBuffers{{edge_keys[0].data(), edge_keys[1].data()},
                                        {edge_values[0].data(), edge_values[1].data()},
                                        targets.data(),
                                        run_target.data(),
                                        run_length.data(),
                                        run_start.data(),
                                        run_count.data(),
                                        overflow.data(),
                                        reverse_temp.data(),
                                        temp_bytes};
    }
    DeviceBuffer<std::uint32_t> neighbors, degrees, order, over;  // graph, insertion order, lists over R
    DeviceBuffer<std::uint32_t> tables, log_id;                   // search: visited sets, expansions
    DeviceBuffer<float> log_key;
    DeviceBuffer<std::uint32_t> log_count;
    DeviceBuffer<float> kept_distance;                            // prune output for reverse edges
    DeviceBuffer<unsigned long long> counters;                    // kernels::SearchCounter
    DeviceBuffer<float> rows, gram;                               // prune: gathered rows, Gram matrices
    DeviceBuffer<std::uint32_t> cand, cand_counts, prune_nodes;   // prune: candidate lists
    DeviceBuffer<std::uint32_t> histogram;                        // prune group: items per candidate count
    PinnedBuffer<std::uint32_t> histogram_host;                   // its copy on the host
    DeviceBuffer<std::uint32_t> count_ids, count_keys, by_count;  // prune group: items sorted by count
    DeviceBuffer<std::uint8_t> count_temp;                        // CUB's storage for that sort
    DeviceBuffer<std::uint64_t> edge_keys[2];                     // reverse edges
    DeviceBuffer<std::uint32_t> edge_values[2], targets, run_target, run_length, run_start, run_count, overflow;
    DeviceBuffer<std::uint8_t> reverse_temp;
    kernels::ReverseBuffers reverse{};
  };

  void allocate_graph() {
    w_.emplace(n_, dims_, s_, plan_);
    // The searches' global visited tables start empty and every search leaves its table so.
    VS_CUDA_TRY(cudaMemsetAsync(w_->tables.data(), 0xFF, w_->tables.bytes(), stream_.get()));
    // The staged query (where it fits beside the smallest visited table) and the team-shared
    // tables: the settings' slots, halved until a search block fits the device (and, for the
    // full-occupancy kernel, until that many blocks fit an SM).
    const std::size_t limit = search_shared_limit(options_.device, options_.graph.search_full_occupancy);
    const auto dims = static_cast<std::uint32_t>(dims_);
    query_bytes_ = 0;
    if (options_.graph.search_query_in_shared) {
      const std::uint32_t bytes =
          xh_ != nullptr ? core::staged_query_bytes<core::Bf16>(dims) : core::staged_query_bytes<float>(dims);
      if (kernels::search_shared_bytes(s_.L, s_.stride, core::kLocalProbes, bytes) <= limit) query_bytes_ = bytes;
    }
    local_slots_ = s_.local_slots;
    while (local_slots_ >= core::kLocalProbes &&
           kernels::search_shared_bytes(s_.L, s_.stride, local_slots_, query_bytes_) > limit)
      local_slots_ /= 2;
    if (local_slots_ < core::kLocalProbes) local_slots_ = 0;
    if (control_.log)
      control_.log(LogLevel::kInfo,
                   vs::detail::format("cuda build: visited sets of %u slots in shared memory in front of %u in global "
                                      "memory per search; the query %s",
                                      local_slots_, plan_.table_slots,
                                      query_bytes_ != 0 ? "in shared memory" : "read from global memory"));
    VS_CUDA_TRY(cudaMemsetAsync(w_->degrees.data(), 0, w_->degrees.bytes(), stream_.get()));
    // Searches read whole list rows (core::greedy_search_one): no uninitialised reads.
    VS_CUDA_TRY(cudaMemsetAsync(w_->neighbors.data(), 0, w_->neighbors.bytes(), stream_.get()));
    VS_CUDA_TRY(cudaMemsetAsync(w_->counters.data(), 0, w_->counters.bytes(), stream_.get()));
    order_host_ = vamana::insertion_order(n_, params_.build.seed);
    upload(w_->order.data(), order_host_.data(), n_, stream_);
  }

  // What the search kernel reads, over the graph phase's vectors (element type V).
  template <class V>
  core::SearchArgsOf<V> search_args(const V* vectors) const {
    core::SearchArgsOf<V> a;
    a.vectors = vectors;
    a.dims = static_cast<std::uint32_t>(dims_);
    a.metric = s_.metric;
    a.neighbors = w_->neighbors.data();
    a.degrees = w_->degrees.data();
    a.stride = s_.stride;
    a.list_size = s_.L;
    a.max_iters = s_.max_iters;
    a.wide = core::wide_rows(vectors, a.dims);
    a.local_slots = local_slots_;
    a.query_bytes = query_bytes_;
    return a;
  }

  void insert_all() {
    stats_.refine_passes = s_.refine_passes_for(n_);
    const std::size_t total = n_ * (1 + stats_.refine_passes);
    std::size_t done = 0;
    poll(vamana::kPhaseInsert, 0, total);
    for (const auto& [begin, end] : insertion_batches(n_, plan_.search_batch, s_.batch_growth)) {
      run_batch(begin, end, false);
      done += end - begin;
      poll(vamana::kPhaseInsert, done, total);
    }
    for (std::uint32_t pass = 0; pass < stats_.refine_passes; ++pass)
      for (std::size_t begin = 0; begin < n_; begin += plan_.search_batch) {
        const std::size_t end = std::min(n_, begin + plan_.search_batch);
        run_batch(begin, end, true);
        done += end - begin;
        poll(vamana::kPhaseInsert, done, total);
      }
    const auto counters = download(w_->counters.data(), kernels::kCounters, stream_);
    stats_.distance_computations += counters[kernels::kDistances];
    stats_.capped_searches = counters[kernels::kCapped];
    stats_.expansions = counters[kernels::kExpansions];
    stats_.spilled_searches = counters[kernels::kSpilled];
  }

  // One batch of rows order[begin, end): search, prune, reverse edges (reference.cpp's run_batch).
  void run_batch(std::size_t begin, std::size_t end, bool refine) {
    const auto count = static_cast<std::uint32_t>(end - begin);
    const std::uint32_t* rows = w_->order.data() + begin;
    clock_.mark(KernelClock::kSearch);
    auto search = [&](const auto& args) {
      VS_CUDA_TRY(kernels::search(args, rows, count, medoid_, w_->tables.data(), plan_.table_slots, w_->log_id.data(),
                                  w_->log_key.data(), w_->log_count.data(), w_->counters.data(),
                                  options_.graph.search_full_occupancy, stream_.get()));
    };
    if (xh_ != nullptr)
      search(search_args(xh_));
    else
      search(search_args(x_));
    if (!refine) {
      // The candidates are the expansion logs, already on the device for the whole batch: one
      // group, so that sorting by count has the most items to fill each gram_dim class with.
      prune(rows, w_->log_id.data(), s_.max_iters, w_->log_count.data(), count, w_->kept_distance.data());
    } else {
      // The candidate unions go to the prune buffers, prune_batch at a time.
      for (std::uint32_t first = 0; first < count; first += static_cast<std::uint32_t>(plan_.prune_batch)) {
        const std::uint32_t c = std::min<std::uint32_t>(static_cast<std::uint32_t>(plan_.prune_batch), count - first);
        const std::uint32_t* log = w_->log_id.data() + std::size_t{first} * s_.max_iters;
        clock_.mark(KernelClock::kCandidates);
        VS_CUDA_TRY(kernels::refine_candidates(rows + first, w_->neighbors.data(), s_.stride, w_->degrees.data(), log,
                                               s_.max_iters, w_->log_count.data() + first, c, s_.max_candidates,
                                               w_->cand.data(), w_->cand_counts.data(), stream_.get()));
        prune(rows + first, w_->cand.data(), s_.max_candidates, w_->cand_counts.data(), c,
              w_->kept_distance.data() + std::size_t{first} * s_.R);
      }
    }
    clock_.mark(KernelClock::kReverse);
    VS_CUDA_TRY(kernels::reverse_edges(rows, count, w_->kept_distance.data(), s_.R, w_->neighbors.data(), s_.stride,
                                       w_->degrees.data(), s_.max_candidates, w_->reverse, stream_.get()));
    clock_.mark(KernelClock::kHost);
    const std::uint32_t overflowing = download_one(w_->run_count.data() + 1, stream_);
    for (std::uint32_t first = 0; first < overflowing; first += static_cast<std::uint32_t>(plan_.prune_batch)) {
      const std::uint32_t c =
          std::min<std::uint32_t>(static_cast<std::uint32_t>(plan_.prune_batch), overflowing - first);
      clock_.mark(KernelClock::kCandidates);
      VS_CUDA_TRY(kernels::overflow_candidates(w_->reverse, first, c, w_->neighbors.data(), s_.stride,
                                               w_->degrees.data(), s_.max_candidates, w_->prune_nodes.data(),
                                               w_->cand.data(), w_->cand_counts.data(), stream_.get()));
      prune(w_->prune_nodes.data(), w_->cand.data(), s_.max_candidates, w_->cand_counts.data(), c, nullptr);
    }
    stats_.reverse_prunes += overflowing;
    ++stats_.batches;
    clock_.mark(KernelClock::kHost);
    stream_.sync();
    clock_.settle();
  }

  // RobustPrune of a group of `count` items (nodes[i], cand[i * cand_stride ...], counts[i]):
  // sort the items by candidate count, copy the histogram of counts back, and run each GEMM
  // sub-batch of similar counts (gram_batches.hpp) with the smallest Gram matrices its longest
  // list needs: gather rows, one batched SGEMM, prune. The kernels address every per-item input
  // and output (kept_distance + i * R included) by the item's own index i, so the order is
  // invisible to the callers; each item is pruned exactly once, and its result depends on its
  // own Gram entries only, not on the sub-batch or gram_dim (up to the GEMM's summation order).
  void prune(const std::uint32_t* nodes, const std::uint32_t* cand, std::size_t cand_stride,
             const std::uint32_t* counts, std::uint32_t count, float* kept_distance) {
    if (count == 0) return;
    VS_ASSERT(count <= w_->by_count.size());
    Work& w = *w_;
    clock_.mark(KernelClock::kOrder);
    VS_CUDA_TRY(kernels::order_by_count(counts, count, s_.max_candidates, w.histogram.data(), w.count_ids.data(),
                                        w.count_keys.data(), w.by_count.data(), w.count_temp.data(),
                                        w.count_temp.bytes(), stream_.get()));
    VS_CUDA_TRY(cudaMemcpyAsync(w.histogram_host.data(), w.histogram.data(), w.histogram.bytes(),
                                cudaMemcpyDeviceToHost, stream_.get()));
    clock_.mark(KernelClock::kHost);
    stream_.sync();
    const std::span<const std::uint32_t> histogram(w.histogram_host.data(), std::size_t{s_.max_candidates} + 1);
    VS_ASSERT(w.histogram_host.data()[s_.max_candidates + 1] == 0);  // no list is longer than max_candidates
    const GramCapacity cap = gram_capacity(plan_, dims_);
    const std::vector<GramBatch> batches = plan_gram_batches(histogram, cap);
    VS_ASSERT(!batches.empty() && batches.back().end == count);  // every item once (plan_gram_batches)
    gram_work_.add_group(histogram, batches, dims_, plan_.gram_dim, xh_ != nullptr ? 2 : 4);
    const float one = 1.0f, zero = 0.0f;
    for (const GramBatch& b : batches) {
      const std::uint32_t items = b.end - b.begin, M = b.gram_dim;
      VS_ASSERT(M <= plan_.gram_dim && std::uint64_t{items} * M * dims_ <= w.rows.size() &&
                std::uint64_t{items} * M * M <= w.gram.size());
      const std::uint32_t* order = w.by_count.data() + b.begin;
      // rows: per position M x dims row-major = dims x M column-major (lda = dims); gram = rows^T
      // rows (gram.hpp; CudaGram tests the layout against a column-major GEMM on the CPU).
      const GramGemm g = gram_gemm(M, dims_, items);
      clock_.mark(KernelClock::kGather);
      if (xh_ != nullptr) {
        // BF16 rows (half the float buffer) and a BF16 GEMM with FP32 sums into FP32 Gram matrices.
        auto* rows = reinterpret_cast<core::Bf16*>(w.rows.data());
        VS_CUDA_TRY(kernels::gather_rows(xh_, dims_, nodes, cand, cand_stride, counts, order, items, M, rows,
                                         stream_.get()));
        clock_.mark(KernelClock::kGemm);
        VS_CUBLAS_TRY(cublasGemmStridedBatchedEx(blas_.get(), CUBLAS_OP_T, CUBLAS_OP_N, g.m, g.n, g.k, &one, rows,
                                                 CUDA_R_16BF, g.lda, g.stride_a, rows, CUDA_R_16BF, g.ldb, g.stride_b,
                                                 &zero, w.gram.data(), CUDA_R_32F, g.ldc, g.stride_c, g.batch,
                                                 CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      } else {
        VS_CUDA_TRY(kernels::gather_rows(x_, dims_, nodes, cand, cand_stride, counts, order, items, M, w.rows.data(),
                                         stream_.get()));
        clock_.mark(KernelClock::kGemm);
        VS_CUBLAS_TRY(cublasSgemmStridedBatched(blas_.get(), CUBLAS_OP_T, CUBLAS_OP_N, g.m, g.n, g.k, &one,
                                                w.rows.data(), g.lda, g.stride_a, w.rows.data(), g.ldb, g.stride_b,
                                                &zero, w.gram.data(), g.ldc, g.stride_c, g.batch));
      }
      // Shared memory for the sub-batch's longest list only (more warps per SM for short lists).
      clock_.mark(KernelClock::kPrune);
      VS_CUDA_TRY(kernels::prune(w.gram.data(), M, nodes, cand, cand_stride, counts, order, items,
                                 std::max<std::uint32_t>(1, b.most), s_.prune, w.neighbors.data(), s_.stride,
                                 w.degrees.data(), kept_distance, stream_.get()));
    }
  }

  // ---- 4: every list to at most R -------------------------------------------------------------
  void final_prune() {
    if (control_.cancel && control_.cancel()) throw Cancelled();
    clock_.mark(KernelClock::kCandidates);
    VS_CUDA_TRY(cudaMemsetAsync(w_->run_count.data(), 0, sizeof(std::uint32_t), stream_.get()));
    VS_CUDA_TRY(
        kernels::select_overfull(w_->degrees.data(), n_, s_.R, w_->over.data(), w_->run_count.data(), stream_.get()));
    clock_.mark(KernelClock::kHost);
    const std::uint32_t over = download_one(w_->run_count.data(), stream_);
    clock_.settle();
    poll(vamana::kPhasePrune, 0, over);
    for (std::uint32_t first = 0; first < over; first += static_cast<std::uint32_t>(plan_.prune_batch)) {
      const std::uint32_t c = std::min<std::uint32_t>(static_cast<std::uint32_t>(plan_.prune_batch), over - first);
      const std::uint32_t* nodes = w_->over.data() + first;
      clock_.mark(KernelClock::kCandidates);
      VS_CUDA_TRY(kernels::list_candidates(nodes, c, w_->neighbors.data(), s_.stride, w_->degrees.data(),
                                           s_.max_candidates, w_->cand.data(), w_->cand_counts.data(), stream_.get()));
      prune(nodes, w_->cand.data(), s_.max_candidates, w_->cand_counts.data(), c, nullptr);
      clock_.mark(KernelClock::kHost);
      stream_.sync();
      clock_.settle();
      poll(vamana::kPhasePrune, first + c, over);
    }
    stats_.final_prunes = over;
  }

  vamana::Graph download_graph() {
    vamana::Graph g;
    g.num_nodes = static_cast<std::uint32_t>(n_);
    g.stride = s_.stride;
    g.medoid = medoid_;
    g.neighbors = Array<std::uint32_t>(n_ * s_.stride, kUninitialized);  // downloaded, tails cleared below
    g.degrees = Array<std::uint32_t>(n_, kUninitialized);
    VS_CUDA_TRY(cudaMemcpyAsync(g.neighbors.data(), w_->neighbors.data(), w_->neighbors.bytes(), cudaMemcpyDeviceToHost,
                                stream_.get()));
    VS_CUDA_TRY(cudaMemcpyAsync(g.degrees.data(), w_->degrees.data(), w_->degrees.bytes(), cudaMemcpyDeviceToHost,
                                stream_.get()));
    stream_.sync();
    // Slots past a node's degree were never written on the device: clear them (pages never read
    // them, but the graph should not carry stale memory).
    for (std::size_t i = 0; i < n_; ++i)
      std::fill(g.neighbors.data() + i * s_.stride + g.degrees[i], g.neighbors.data() + (i + 1) * s_.stride, 0u);
    return g;
  }

  void release_device_memory() {
    w_.reset();
    vectors_.reset();
    half_.reset();
    mapped_.reset();
  }

  const float* host_;
  std::size_t n_, dims_;
  const vamana::IndexParams& params_;
  const Control& control_;
  const DeviceBuildOptions& options_;
  const GraphSettings s_;
  const std::uint32_t bits_;  // SBQ bits per dimension; 0: plain storage, no codes
  const std::size_t words_;
  MemoryPlan plan_;
  GraphBuildStats stats_;
  GramWork gram_work_;
  std::uint32_t medoid_ = 0;
  std::uint32_t local_slots_ = 0;  // team-shared visited slots per search (SearchArgs::local_slots)
  std::uint32_t query_bytes_ = 0;  // team-shared bytes of the staged query (SearchArgs::query_bytes)

  // Declared before the buffers, destroyed after them.
  Stream stream_;
  detail::CublasHandle blas_;
  KernelClock clock_{stream_};
  std::optional<detail::HostRegistration> mapped_;
  DeviceBuffer<float> vectors_;
  const float* x_ = nullptr;  // the vectors as the device sees them (vectors_ or mapped_)
  DeviceBuffer<core::Bf16> half_;
  const core::Bf16* xh_ = nullptr;  // the graph phase's bfloat16 vectors (half_), or null: x_
  std::optional<Work> w_;
  std::vector<std::uint32_t> order_host_;
};

}  // namespace

DeviceChoice choose_device(int requested) noexcept {
  DeviceChoice c;
  int count = 0;
  const cudaError_t st = cudaGetDeviceCount(&count);
  if (st != cudaSuccess) {
    (void)cudaGetLastError();
    c.reason = cudaGetErrorString(st);
    return c;
  }
  if (count == 0) {
    c.reason = "the CUDA runtime reports no device";
    return c;
  }
  if (requested >= count) {
    c.reason =
        vs::detail::format("--cuda-device %d does not exist (%d device%s)", requested, count, count == 1 ? "" : "s");
    return c;
  }
  int best = -1;
  DeviceMemoryInfo best_mem;
  for (int d = requested >= 0 ? requested : 0; d < (requested >= 0 ? requested + 1 : count); ++d) {
    const DeviceMemoryInfo m = device_memory_info(d);
    if (m.total_bytes == 0) continue;  // unusable (error already cleared)
    if (best < 0 || m.free_bytes > best_mem.free_bytes) best = d, best_mem = m;
  }
  if (best < 0) {
    c.reason =
        requested >= 0 ? vs::detail::format("CUDA device %d cannot be used", requested) : "no CUDA device can be used";
    return c;
  }
  // Asking for free memory created a context on every device; keep only the chosen one's (this
  // runs at startup, before anything else in the process uses a device).
  if (requested < 0)
    for (int d = 0; d < count; ++d)
      if (d != best && cudaSetDevice(d) == cudaSuccess) (void)cudaDeviceReset();
  (void)cudaGetLastError();
  (void)cudaSetDevice(best);
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, best) == cudaSuccess)
    c.name = prop.name;
  else
    (void)cudaGetLastError();
  c.device = best;
  c.free_bytes = best_mem.free_bytes;
  c.total_bytes = best_mem.total_bytes;
  c.reason = requested >= 0 ? "chosen with --cuda-device"
                            : vs::detail::format("the device with the most free memory of %d", count);
  return c;
}

DeviceMemoryInfo device_memory_info(int device) noexcept {
  DeviceMemoryInfo m;
  std::size_t free_bytes = 0, total_bytes = 0;
  if (cudaSetDevice(device) != cudaSuccess || cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
    (void)cudaGetLastError();
    return m;
  }
  m.free_bytes = free_bytes;
  m.total_bytes = total_bytes;
  return m;
}

std::string device_fault(int device) noexcept {
  try {
    cudaError_t st = cudaSetDevice(device);
    if (st == cudaSuccess) st = cudaDeviceSynchronize();
    if (st == cudaSuccess) return {};
    (void)cudaGetLastError();  // clears an ordinary error; a sticky one stays
    st = cudaSetDevice(device);
    if (st == cudaSuccess) st = cudaDeviceSynchronize();
    if (st == cudaSuccess) return {};
    return vs::detail::format("%s (%s)", cudaGetErrorName(st), cudaGetErrorString(st));
  } catch (...) {  // formatting the message ran out of memory
    return "unrecoverable CUDA error";
  }
}

namespace {

// Why the kernels cannot run with these settings on `device` (their shared memory per block
// exceeds what the device lets a block opt in to); empty when they can.
std::string shared_memory_problem(const GraphSettings& s, int device) {
  const std::size_t limit = max_shared_bytes(device);
  const std::size_t search = kernels::search_shared_bytes(s.L, s.stride);  // the least: no team-shared visited table
  const std::size_t prune = kernels::prune_shared_bytes(s.max_candidates);
  if (search <= limit && prune <= limit) return {};
  return vs::detail::format(
      "search_list_size %u with num_neighbors %u needs %zu bytes of shared memory per block; the device has %zu", s.L,
      s.R, std::max(search, prune), limit);
}

}  // namespace

bool device_supports(const vamana::IndexParams& params, std::size_t rows, std::size_t dims,
                     const DeviceBuildOptions& options, std::string& reason) {
  // Far beyond any device's shared memory (and beyond what derive_settings accepts): the CPU
  // backend decides what to do with such a list size.
  if (std::ceil(options.graph.max_iters_factor * params.build.search_list_size) *
          std::ceil(params.build.slack * static_cast<float>(params.build.num_neighbors)) >
      kMaxSearchReach) {
    reason = vs::detail::format("search_list_size %u is too large for the GPU build", params.build.search_list_size);
    return false;
  }
  const GraphSettings s = derive_settings(params.build, options.graph);
  if (dims == 0 || dims > 0xFFFFFFFFu) {
    reason = "unsupported number of dimensions";
    return false;
  }
  if (rows >= 0x80000000u) {
    reason = vs::detail::format("%zu rows are more than the GPU build's 32-bit node ids allow", rows);
    return false;
  }
  reason = shared_memory_problem(s, options.device);
  return reason.empty();
}

bool device_memory_fits(const vamana::IndexParams& params, std::size_t rows, std::size_t dims,
                        const DeviceBuildOptions& options, std::string& reason) {
  if (rows == 0) return true;
  const GraphSettings s = derive_settings(params.build, options.graph);
  const DeviceMemoryInfo m = device_memory_info(options.device);
  if (m.total_bytes == 0 && options.limits.budget == 0) {
    reason = "the device's free memory cannot be queried";
    return false;
  }
  try {
    (void)plan_build(m.free_bytes, rows, dims, params, s, options);
  } catch (const vs::Error& e) {
    if (e.code() != ErrorCode::kOutOfMemory) throw;
    reason = e.what();
    return false;
  }
  return true;
}

DeviceBuildResult build_on_device(const float* vectors, std::size_t n, std::size_t dims,
                                  const vamana::IndexParams& params, const Control& control,
                                  const DeviceBuildOptions& options) {
  static_assert(kStatsRows == 256, "train.cu sums groups of 256 rows");
  VS_EXPECTS(n >= 1, "nothing to build");
  VS_EXPECTS(n < 0x80000000u, "too many vectors for the GPU build: %zu", n);
  VS_EXPECTS(dims >= 1, "vectors must have at least one dimension");
  VS_EXPECTS(params.storage == vamana::Storage::kMemoryOptimized || params.bits_per_dim <= 1,
             "num_bits_per_dimension > 1 requires storage_layout memory_optimized");
  VS_CUDA_TRY(cudaSetDevice(options.device));
  // A clear error rather than a failed launch (CudaBackend asks device_supports first).
  const std::string problem = shared_memory_problem(derive_settings(params.build, options.graph), options.device);
  if (!problem.empty()) VS_FAIL(ErrorCode::kUnsupported, "%s", problem.c_str());
  DeviceBuilder b(vectors, n, dims, params, control, options);
  return b.run();
}

}  // namespace vs::cuda
