// The Build RPC over gRPC's callback API: one reactor and one job thread per call.
//
// Reactor callbacks (OnReadDone, OnWriteDone, OnCancel, OnDone) run on gRPC threads and only
// update state under mu_; the job thread runs run_build() and blocks on cv_ for messages
// and for room to write. gRPC operations (StartRead, StartWrite, Finish) are always started
// outside mu_. Reads are pulled: at most one request is buffered beyond the one being
// processed, so a waiting or slow build holds the client back through flow control. Writes
// go out one at a time from outbox_; an unsent progress message is replaced by a newer one.
// The reactor deletes itself once both OnDone has run and the job thread is finished.
//
// Counters: traffic is counted as each read or write completes; a build's outcome and its log
// line are recorded in end_call(), right before Finish, which runs after the last write. So
// the log line's pages and bytes are those actually written, and a client that has its status
// finds its build counted by GetStatus.
#include "service/builder_service.hpp"
#include "vectorscale/builder/auth.hpp"

#include <cstdio>
#include <deque>
#include <memory>
#include <optional>
#include <thread>
#include <utility>

#include <grpcpp/grpcpp.h>

namespace vs::builder {

namespace pb = vectorscale::builder::v1;

static_assert(static_cast<int>(StatusCode::kOk) == grpc::StatusCode::OK);
static_assert(static_cast<int>(StatusCode::kCancelled) == grpc::StatusCode::CANCELLED);
static_assert(static_cast<int>(StatusCode::kUnknown) == grpc::StatusCode::UNKNOWN);
static_assert(static_cast<int>(StatusCode::kInvalidArgument) == grpc::StatusCode::INVALID_ARGUMENT);
static_assert(static_cast<int>(StatusCode::kDeadlineExceeded) == grpc::StatusCode::DEADLINE_EXCEEDED);
static_assert(static_cast<int>(StatusCode::kNotFound) == grpc::StatusCode::NOT_FOUND);
static_assert(static_cast<int>(StatusCode::kAlreadyExists) == grpc::StatusCode::ALREADY_EXISTS);
static_assert(static_cast<int>(StatusCode::kPermissionDenied) == grpc::StatusCode::PERMISSION_DENIED);
static_assert(static_cast<int>(StatusCode::kResourceExhausted) == grpc::StatusCode::RESOURCE_EXHAUSTED);
static_assert(static_cast<int>(StatusCode::kFailedPrecondition) == grpc::StatusCode::FAILED_PRECONDITION);
static_assert(static_cast<int>(StatusCode::kAborted) == grpc::StatusCode::ABORTED);
static_assert(static_cast<int>(StatusCode::kOutOfRange) == grpc::StatusCode::OUT_OF_RANGE);
static_assert(static_cast<int>(StatusCode::kUnimplemented) == grpc::StatusCode::UNIMPLEMENTED);
static_assert(static_cast<int>(StatusCode::kInternal) == grpc::StatusCode::INTERNAL);
static_assert(static_cast<int>(StatusCode::kUnavailable) == grpc::StatusCode::UNAVAILABLE);
static_assert(static_cast<int>(StatusCode::kDataLoss) == grpc::StatusCode::DATA_LOSS);
static_assert(static_cast<int>(StatusCode::kUnauthenticated) == grpc::StatusCode::UNAUTHENTICATED);
static_assert(static_cast<int>(pb::METRIC_L2) == static_cast<int>(distance::Metric::kL2));
static_assert(static_cast<int>(pb::METRIC_COSINE) == static_cast<int>(distance::Metric::kCosine));
static_assert(static_cast<int>(pb::METRIC_INNER_PRODUCT) == static_cast<int>(distance::Metric::kInnerProduct));
static_assert(static_cast<int>(pb::STORAGE_LAYOUT_MEMORY_OPTIMIZED) ==
              static_cast<int>(format::StorageLayout::kMemoryOptimized));
static_assert(static_cast<int>(pb::STORAGE_LAYOUT_PLAIN) == static_cast<int>(format::StorageLayout::kPlain));
static_assert(static_cast<int>(pb::BACKEND_CPU) == static_cast<int>(format::BuildBackend::kCpu));
static_assert(static_cast<int>(pb::BACKEND_CUDA) == static_cast<int>(format::BuildBackend::kCuda));

namespace {

using Clock = std::chrono::system_clock;
constexpr auto kPoll = std::chrono::milliseconds(100);
// A cancellation this close to the deadline counts as the deadline passing.
constexpr auto kDeadlineSlack = std::chrono::milliseconds(500);

// A core status as a gRPC status.
grpc::Status to_grpc(const Status& s) {
  return {static_cast<grpc::StatusCode>(s.code), s.message};
}

// The message of a call refused by authorized().
constexpr const char* kBadToken = "missing or wrong bearer token";

// True when no token is configured or the call carries the right one.
bool authorized(const grpc::CallbackServerContext& ctx, const std::string& token) {
  if (token.empty()) return true;
  const auto& md = ctx.client_metadata();
  const auto it = md.find("authorization");
  if (it == md.end()) return false;
  return bearer_token_matches(std::string_view(it->second.data(), it->second.size()), token);
}

// The status of a builder: identity, limits, counters, load.
void fill_status(const BuilderService::Shared& shared, pb::StatusResponse& r) {
  const MetricsSnapshot m = shared.metrics.snapshot();
  const AdmissionStats load = shared.scheduler.stats();
  const AdmissionLimits& limits = shared.scheduler.limits();
  const DeviceMemory gpu = shared.backend.device_memory();
  r.set_builder_id(shared.options.session.builder_id);
  r.set_version(shared.options.version);
  r.set_backend(static_cast<pb::Backend>(shared.backend.kind()));
  r.set_uptime_seconds(m.uptime_seconds);
  r.set_threads(shared.options.session.server_threads);
  r.set_max_concurrent_builds(limits.max_running);
  r.set_max_queued_builds(limits.max_queued);
  r.set_builds_started(m.builds_started);
  r.set_builds_succeeded(m.builds_succeeded);
  r.set_builds_failed(m.builds_failed);
  r.set_builds_cancelled(m.builds_cancelled);
  r.set_builds_rejected(m.builds_rejected);
  r.set_builds_active(m.builds_active);
  r.set_unauthenticated_calls(m.unauthenticated_calls);
  r.set_builds_running(load.running);
  r.set_builds_queued(load.queued);
  r.set_vectors_received(m.vectors_received);
  r.set_bytes_received(m.bytes_received);
  r.set_pages_sent(m.pages_sent);
  r.set_bytes_sent(m.bytes_sent);
  r.set_memory_admitted_bytes(load.held_bytes);
  r.set_memory_limit_bytes(limits.max_memory);
  r.set_gpu_memory_used_bytes(gpu.used_bytes);
  r.set_gpu_memory_total_bytes(gpu.total_bytes);
}

// The core's view of a BuildSpec message.
BuildSpec from_proto(const pb::BuildSpec& m) {
  BuildSpec s;
  s.protocol_version = m.protocol_version();
  s.format_version = m.format_version();
  s.page_size = m.page_size();
  s.metric = static_cast<std::uint32_t>(m.metric());
  s.column_dims = m.column_dims();
  s.indexed_dims = m.indexed_dims();
  s.storage = static_cast<std::uint32_t>(m.storage());
  s.bits_per_dim = m.bits_per_dim();
  s.num_neighbors = m.num_neighbors();
  s.search_list_size = m.search_list_size();
  s.max_alpha = m.max_alpha();
  s.has_labels = m.has_labels();
  s.expected_rows = m.expected_rows();
  s.threads = m.threads();
  s.seed = m.seed();
  s.client = m.client();
  s.label_capacity = m.label_capacity();
  return s;
}

// A span over a repeated scalar field.
template <class T, class F>
std::span<const T> view(const F& field) {
  return std::span<const T>(reinterpret_cast<const T*>(field.data()), static_cast<std::size_t>(field.size()));
}

// One Build call: the gRPC reactor and the BuildCall the job thread sees.
class BuildReactor final : public grpc::ServerBidiReactor<pb::BuildRequest, pb::BuildResponse>, public BuildCall {
 public:
  // Checks the token and, when it passes, starts the first read and the job thread.
  BuildReactor(grpc::CallbackServerContext* ctx, BuilderService::Shared& shared) : ctx_(ctx), shared_(shared) {
    peer_ = ctx->peer();
    deadline_ = ctx->deadline();
    const std::uint64_t batch = std::max<std::uint64_t>(shared.options.session.page_batch_bytes, 32768);
    max_queued_bytes_ = 2 * batch;
    if (!authorized(*ctx, shared.options.token)) {
      shared_.metrics.unauthenticated();
      BuildReport report;
      report.peer = peer_;
      report.status = {StatusCode::kUnauthenticated, kBadToken};
      shared_.log(format_build_log(report));
      no_thread_ = true;
      Finish(to_grpc(report.status));
      return;
    }
    shared_.metrics.build_started();
    reading_ = true;
    StartRead(&read_buf_);
    try {
      std::thread([this] { run(); }).detach();
    } catch (...) {
      no_thread_ = true;
      report_.status = {StatusCode::kResourceExhausted, "cannot start a build thread"};
      report_.outcome = BuildOutcome::kRejected;
      report_.peer = peer_;
      end_call(to_grpc(report_.status));
    }
  }

  // --- gRPC reactions ------------------------------------------------------------------

  // A read finished: buffer the message, or note the end of the client's stream.
  void OnReadDone(bool ok) override {
    // read_buf_ is this reaction's until the next StartRead: size it before taking the lock.
    const std::uint64_t bytes = ok ? read_buf_.ByteSizeLong() : 0;
    const std::uint64_t rows =
        ok && read_buf_.has_vectors() ? static_cast<std::uint64_t>(read_buf_.vectors().heap_tids_size()) : 0;
    {
      std::lock_guard lock(mu_);
      reading_ = false;
      if (ok) {
        bytes_received_ += bytes;
        inbox_.Swap(&read_buf_);
        has_inbox_ = true;
      } else {
        read_eof_ = true;
      }
    }
    if (ok) shared_.metrics.received(rows, bytes);
    cv_.notify_all();
  }

  // A write finished: count it, start the next one, or the Finish that waited for it.
  void OnWriteDone(bool ok) override {
    const pb::BuildResponse* next = nullptr;
    bool finish_now = false;
    std::uint64_t pages = 0, bytes = 0;
    {
      std::lock_guard lock(mu_);
      if (writing_) {
        const std::uint64_t size = writing_->ByteSizeLong();
        outbox_bytes_ -= size;
        if (ok) {
          bytes = size;
          if (writing_->has_pages()) pages = static_cast<std::uint64_t>(writing_->pages().pages_size());
          bytes_sent_ += bytes;
          pages_sent_ += pages;
        }
      }
      writing_.reset();
      if (!ok) {
        write_failed_ = true;
        outbox_.clear();
        outbox_bytes_ = 0;
      }
      if (!outbox_.empty()) {
        writing_ = std::move(outbox_.front());
        outbox_.pop_front();
        next = writing_.get();
      } else if (finish_pending_) {
        finish_pending_ = false;
        finish_now = true;
      }
    }
    if (bytes != 0) shared_.metrics.sent(pages, bytes);
    cv_.notify_all();
    if (next != nullptr) StartWrite(next);
    if (finish_now) end_call(finish_status_);
  }

  // The call was cancelled (client gone, deadline, server shutdown).
  void OnCancel() override {
    cancelled_.store(true);
    cv_.notify_all();
  }

  // The call is over for gRPC; delete once the job thread is done too.
  void OnDone() override {
    bool del = false;
    {
      std::lock_guard lock(mu_);
      done_ = true;
      del = no_thread_ || thread_done_;
    }
    if (del) destroy();
  }

  // --- BuildCall -----------------------------------------------------------------------

  // Waits for the next request and starts reading the one after it.
  std::optional<Request> next() override {
    bool start_read = false;
    {
      std::unique_lock lock(mu_);
      while (!has_inbox_ && !read_eof_ && cancel_reason() == CancelReason::kNone) cv_.wait_for(lock, kPoll);
      if (!has_inbox_) return std::nullopt;
      current_.Swap(&inbox_);
      inbox_.Clear();
      has_inbox_ = false;
      if (!read_eof_ && !reading_) {
        reading_ = true;
        start_read = true;
      }
    }
    if (start_read) StartRead(&read_buf_);
    switch (current_.kind_case()) {
      case pb::BuildRequest::kSpec:
        return Request{from_proto(current_.spec())};
      case pb::BuildRequest::kVectors: {
        const pb::VectorBatch& v = current_.vectors();
        return Request{VectorBatchView{view<std::uint64_t>(v.heap_tids()), view<float>(v.data()),
                                       view<std::uint32_t>(v.label_offsets()), view<std::int32_t>(v.labels())}};
      }
      case pb::BuildRequest::kFinish:
        return Request{FinishRequest{current_.finish().rows()}};
      case pb::BuildRequest::KIND_NOT_SET:
        break;
    }
    throw StatusError(StatusCode::kInvalidArgument, "a BuildRequest without spec, vectors or finish");
  }

  // Queues a progress message, replacing an unsent one.
  void progress(const ProgressMessage& m) override {
    auto r = std::make_unique<pb::BuildResponse>();
    pb::Progress* p = r->mutable_progress();
    p->set_phase(m.phase);
    p->set_done(m.done);
    p->set_total(m.total);
    enqueue(std::move(r), true);
  }

  // Converts and queues a page batch once the outbox has room.
  void pages(PageBatchMessage&& batch) override {
    auto r = std::make_unique<pb::BuildResponse>();
    pb::PageBatch* p = r->mutable_pages();
    p->set_first_block(batch.first_block);
    p->set_format_version(batch.format_version);
    p->set_page_size(batch.page_size);
    p->mutable_pages()->Reserve(static_cast<int>(batch.count()));
    p->mutable_crc32c()->Reserve(static_cast<int>(batch.count()));
    for (std::size_t i = 0; i < batch.count(); ++i) {
      const auto page = batch.page(i);
      p->add_pages(reinterpret_cast<const char*>(page.data()), page.size());
      p->add_crc32c(batch.crc32c[i]);
    }
    {
      std::unique_lock lock(mu_);
      while (!write_failed_ && cancel_reason() == CancelReason::kNone && outbox_bytes_ > 0 &&
             outbox_bytes_ + batch.bytes.size() > max_queued_bytes_)
        cv_.wait_for(lock, kPoll);
      if (write_failed_ || cancel_reason() != CancelReason::kNone) throw vs::Cancelled();
    }
    enqueue(std::move(r), false);
  }

  // Queues the summary.
  void summary(const SummaryMessage& m) override {
    auto r = std::make_unique<pb::BuildResponse>();
    pb::Summary* s = r->mutable_summary();
    s->set_total_pages(m.total_pages);
    s->set_nodes(m.nodes);
    s->set_backend(static_cast<pb::Backend>(m.backend));
    s->set_builder_id(m.builder_id);
    s->set_receive_seconds(m.receive_seconds);
    s->set_build_seconds(m.build_seconds);
    s->set_write_seconds(m.write_seconds);
    enqueue(std::move(r), false);
  }

  // Waits until every queued message has been written.
  void flush() override {
    std::unique_lock lock(mu_);
    while (!write_failed_ && cancel_reason() == CancelReason::kNone && (writing_ || !outbox_.empty()))
      cv_.wait_for(lock, kPoll);
  }

  // Shutdown, deadline, or client cancellation, in that order of precedence.
  CancelReason cancel_reason() const override {
    if (shared_.shutdown_cancel.load()) return CancelReason::kShutdown;
    const auto now = Clock::now();
    if (now >= deadline_) return CancelReason::kDeadline;
    if (!cancelled_.load() && !ctx_->IsCancelled()) return CancelReason::kNone;
    // A client whose deadline passes cancels the stream itself, which arrives here up to a
    // network delay before our copy of the deadline (taken when the call arrived) passes.
    return now + kDeadlineSlack >= deadline_ ? CancelReason::kDeadline : CancelReason::kClient;
  }

 private:
  // Appends a response and starts writing when nothing is in flight.
  void enqueue(std::unique_ptr<pb::BuildResponse> r, bool is_progress) {
    const pb::BuildResponse* start = nullptr;
    const std::size_t bytes = r->ByteSizeLong();  // outside the lock: O(pages) for a page batch
    {
      std::lock_guard lock(mu_);
      if (write_failed_ || finishing_) return;
      if (is_progress && !outbox_.empty() && outbox_.back()->has_progress()) {
        outbox_bytes_ -= outbox_.back()->ByteSizeLong();
        outbox_.back() = std::move(r);
      } else {
        outbox_.push_back(std::move(r));
      }
      outbox_bytes_ += bytes;
      if (!writing_) {
        writing_ = std::move(outbox_.front());
        outbox_.pop_front();
        start = writing_.get();
      }
    }
    if (start != nullptr) StartWrite(start);
  }

  // Ends the call with status once queued writes are out (dropped when it failed).
  void finish(const grpc::Status& status) {
    bool now = false;
    {
      std::lock_guard lock(mu_);
      finishing_ = true;
      finish_status_ = status;
      if (!status.ok()) {
        outbox_.clear();
        outbox_bytes_ = writing_ ? writing_->ByteSizeLong() : 0;
      }
      if (writing_) {
        finish_pending_ = true;
      } else {
        now = true;
      }
    }
    if (now) end_call(status);
  }

  // Logs the build, counts its outcome, then ends the call with status; once per call, when no
  // write is in flight any more.
  void end_call(const grpc::Status& status) noexcept {
    {
      std::lock_guard lock(mu_);
      if (ended_) return;
      ended_ = true;
      report_.pages = static_cast<std::uint32_t>(pages_sent_);
      report_.bytes_received = bytes_received_;
      report_.bytes_sent = bytes_sent_;
    }
    try {
      shared_.log(format_build_log(report_));
    } catch (...) {
      // out of memory formatting the line: the build is still counted and finished
    }
    shared_.metrics.build_ended(report_.outcome);
    Finish(status);
  }

  // The job thread: the build, its log line, the status; then hand the reactor back.
  void run() noexcept {
    grpc::Status status(grpc::StatusCode::INTERNAL, "internal error");
    try {
      report_ = run_build(*this, shared_.scheduler, shared_.backend, shared_.options.session);
      report_.peer = peer_;
      status = to_grpc(report_.status);
    } catch (...) {
      // only allocation failures can get here; the INTERNAL status above goes out
      report_.status.code = StatusCode::kInternal;
      report_.outcome = BuildOutcome::kFailed;
    }
    try {
      finish(status);
    } catch (...) {
      end_call(grpc::Status::CANCELLED);
    }
    bool del = false;
    {
      std::lock_guard lock(mu_);
      thread_done_ = true;
      del = done_;
    }
    if (del) destroy();
  }

  // Deletes the reactor, then gives its place in Shared::active back: that is the last touch
  // of the service, under its lock, so a waiter in wait_idle() (who may destroy the service
  // next) cannot see active == 0 before this thread is done with it.
  void destroy() noexcept {
    BuilderService::Shared& shared = shared_;
    delete this;
    shared.call_ended();
  }

  grpc::CallbackServerContext* ctx_;
  BuilderService::Shared& shared_;
  std::string peer_;
  Clock::time_point deadline_;
  std::uint64_t max_queued_bytes_ = 0;
  BuildReport report_;  // written by the job thread before finish(), read by end_call()

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> cancelled_{false};
  // reads
  pb::BuildRequest read_buf_;  // target of the read in flight
  pb::BuildRequest inbox_;     // the read-ahead message
  pb::BuildRequest current_;   // the message the job thread is processing
  bool reading_ = false;
  bool has_inbox_ = false;
  bool read_eof_ = false;
  // writes
  std::deque<std::unique_ptr<pb::BuildResponse>> outbox_;
  std::unique_ptr<pb::BuildResponse> writing_;
  std::uint64_t outbox_bytes_ = 0;  // bytes queued, including the write in flight
  bool write_failed_ = false;
  bool finishing_ = false;
  bool finish_pending_ = false;
  bool ended_ = false;  // end_call() ran
  grpc::Status finish_status_;
  // this call's traffic, for its log line
  std::uint64_t bytes_received_ = 0;
  std::uint64_t bytes_sent_ = 0;
  std::uint64_t pages_sent_ = 0;
  // lifetime
  bool no_thread_ = false;
  bool thread_done_ = false;
  bool done_ = false;
};

// A call refused before its reactor could be made: finishes at once with a status.
class RefusedReactor final : public grpc::ServerBidiReactor<pb::BuildRequest, pb::BuildResponse> {
 public:
  // Finishes the call with status.
  explicit RefusedReactor(const grpc::Status& status) { Finish(status); }
  // Deletes itself when gRPC is done with the call.
  void OnDone() override { delete this; }
};

}  // namespace

void BuilderService::Shared::call_ended() noexcept {
  std::lock_guard lock(mu);
  --active;
  idle.notify_all();
}

void BuilderService::Shared::log(const std::string& line) const noexcept {
  try {
    if (options.log) {
      options.log(line);
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
      std::fflush(stderr);
    }
  } catch (...) {
    // a failing log sink must not take a build down
  }
}

BuilderService::BuilderService(Scheduler& scheduler, BuildBackend& backend, ServiceOptions options)
    : shared_(scheduler, backend, std::move(options)) {}

grpc::ServerBidiReactor<pb::BuildRequest, pb::BuildResponse>* BuilderService::Build(
    grpc::CallbackServerContext* context) {
  // Nothing may escape into gRPC: a reactor that cannot be made still answers with a status.
  // The call counts as active from here until its reactor is deleted (after OnDone, which
  // comes only after this returns).
  Status status;
  {
    std::lock_guard lock(shared_.mu);
    ++shared_.active;
  }
  try {
    return new BuildReactor(context, shared_);
  } catch (...) {
    shared_.call_ended();
    status = status_from_exception(std::current_exception(), CancelReason::kNone);
  }
  return new RefusedReactor(to_grpc(status));
}

grpc::ServerUnaryReactor* BuilderService::GetStatus(grpc::CallbackServerContext* context,
                                                    const pb::StatusRequest* /*request*/,
                                                    pb::StatusResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status;
  try {
    if (authorized(*context, shared_.options.token)) {
      fill_status(shared_, *response);
    } else {
      shared_.metrics.unauthenticated();
      status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, kBadToken);
    }
  } catch (...) {
    status = to_grpc(status_from_exception(std::current_exception(), CancelReason::kNone));
  }
  reactor->Finish(status);
  return reactor;
}

void BuilderService::cancel_all() noexcept {
  shared_.shutdown_cancel.store(true);
}

bool BuilderService::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(shared_.mu);
  return shared_.idle.wait_for(lock, timeout, [&] { return shared_.active == 0; });
}

std::size_t BuilderService::active() const {
  std::lock_guard lock(shared_.mu);
  return shared_.active;
}

}  // namespace vs::builder
