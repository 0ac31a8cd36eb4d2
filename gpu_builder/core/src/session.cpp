// One build from spec to Summary (the server side of the Build RPC, without gRPC types).
//
// Phases and invariants:
//  - Nothing is received before the spec is valid and the build holds its admission; until
//    then the transport's flow control holds the client back (a waiting build buffers at
//    most the one batch the transport has read ahead).
//  - Rows are kept in arrival order in one Array<float> that Index::build takes over without
//    a copy, exactly as the extension's local build does; its capacity starts at
//    expected_rows and grows by a quarter when more rows arrive, each growth admitted first.
//  - Pages leave in block order as they are written; the page writer never holds more than
//    one batch here, and BuildCall::pages() blocks while the network is behind, so memory
//    stays bounded by the build itself.
//  - Every exception ends in status_from_exception(), with the call's cancel reason.
//  - The log line's phase times come from stage changes the session already sees (admission,
//    Finish, the backend's first graph phase report, its first page): one integer comparison
//    per progress report or page, and a clock read only when the stage changes.
#include "vectorscale/builder/session.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

#include "vectorscale/core/crc32c.hpp"
#include "vectorscale/core/error.hpp"
#include "vectorscale/format/page.hpp"
#include "vectorscale/format/records.hpp"

namespace vs::builder {

namespace {

using Clock = std::chrono::steady_clock;

// Seconds between two time points.
double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Throws vs::Cancelled when the call was cancelled.
void check_cancel(const BuildCall& call) {
  if (call.cancel_reason() != CancelReason::kNone) throw vs::Cancelled();
}

// The stages of a build in the order they begin; each lasts until the next one begins.
enum Stage : std::size_t { kStageSpec, kStageQueue, kStageReceive, kStageTrain, kStageGraph, kStageWrite, kStages };

// When each stage of a build began.
class StageClock {
 public:
  // A clock whose spec stage begins now.
  StageClock() noexcept {
    start_[kStageSpec] = Clock::now();
    entered_[kStageSpec] = true;
  }

  // Enters stage s unless the build is already there or further.
  void enter(Stage s) noexcept {
    if (s <= current_) return;
    current_ = s;
    entered_[s] = true;
    start_[s] = Clock::now();
  }

  // True once stage s was entered.
  [[nodiscard]] bool entered(Stage s) const noexcept { return entered_[s]; }

  // Seconds from the start until stage s began (s must have been entered).
  [[nodiscard]] double until(Stage s) const noexcept { return seconds_between(start_[kStageSpec], start_[s]); }

  // Seconds spent in stage s when the build ended at `end`; 0 when never entered.
  [[nodiscard]] double spent(Stage s, Clock::time_point end) const noexcept {
    if (!entered(s)) return 0;
    for (std::size_t next = s + 1; next < kStages; ++next)
      if (entered_[next]) return seconds_between(start_[s], start_[next]);
    return seconds_between(start_[s], end);
  }

  // Fills the report's phase times and total for a build ending now.
  void fill(BuildReport& report) const noexcept {
    const auto end = Clock::now();
    report.seconds = seconds_between(start_[kStageSpec], end);
    report.queue_seconds = spent(kStageQueue, end);
    report.receive_seconds = spent(kStageReceive, end);
    report.train_seconds = spent(kStageTrain, end);
    report.graph_seconds = spent(kStageGraph, end);
    report.write_seconds = spent(kStageWrite, end);
  }

 private:
  Clock::time_point start_[kStages] = {};
  bool entered_[kStages] = {};
  Stage current_ = kStageSpec;
};

// Sends progress at most once per interval within a phase (a new phase always goes out).
class ProgressThrottle {
 public:
  // A throttle over call with the given interval.
  ProgressThrottle(BuildCall& call, std::chrono::milliseconds interval) : call_(call), interval_(interval) {}

  // Reports (phase, done, total), unless one of the same phase went out less than interval ago.
  void report(std::uint32_t phase, std::uint64_t done, std::uint64_t total, bool force = false) {
    const auto now = Clock::now();
    if (!force && phase == last_phase_ && now - last_ < interval_) return;
    last_phase_ = phase;
    last_ = now;
    call_.progress(ProgressMessage{phase, done, total});
  }

 private:
  BuildCall& call_;
  std::chrono::milliseconds interval_;
  std::uint32_t last_phase_ = 0;
  Clock::time_point last_{};
};

// Collects page images into PageBatch messages and applies the page failure points.
class PageStreamer {
 public:
  // A streamer for pages of page_size bytes, at most batch_bytes per batch (at least one page).
  PageStreamer(BuildCall& call, ProgressThrottle& progress, std::uint32_t page_size, std::uint64_t batch_bytes,
               const FaultPlan& faults, format::Tid never_sent, std::uint16_t label_capacity)
      : call_(call),
        progress_(progress),
        page_size_(page_size),
        pages_per_batch_(static_cast<std::size_t>(std::max<std::uint64_t>(1, batch_bytes / page_size))),
        faults_(faults),
        never_sent_(never_sent),
        label_capacity_(label_capacity) {}

  // Takes the next page (blocks arrive in order 0, 1, ...).
  void add(std::uint32_t block, std::span<const std::byte> page) {
    VS_ASSERT(block == next_block_);
    VS_ASSERT(page.size() == page_size_);
    check_cancel(call_);
    ++next_block_;
    if (block == 0) {
      // The meta page comes first and tells how many blocks follow.
      const format::MetaInfo meta = format::decode_meta(page);
      first_node_block_ = meta.first_node_block;
      node_count_ = meta.node_count;
      const std::uint64_t per_page = std::max<std::uint32_t>(1, meta.nodes_per_page);
      total_blocks_ = meta.first_node_block + (meta.node_count + per_page - 1) / per_page;
    }
    if (truncated_) return;
#ifdef VS_FAILURE_POINTS
    if (faults_.truncate && total_blocks_ > 1 && block >= std::max<std::uint64_t>(1, total_blocks_ / 2)) {
      flush();
      truncated_ = true;
      return;
    }
#endif
    if (batch_.count() >= pages_per_batch_) flush();
    if (batch_.count() == 0) {
      batch_.first_block = block;
      batch_.format_version = format::kFormatVersion;
      batch_.page_size = page_size_;
      // One allocation per batch: as many pages as it will hold, or as are left.
      const std::size_t pages = static_cast<std::size_t>(
          std::min<std::uint64_t>(pages_per_batch_, total_blocks_ > block ? total_blocks_ - block : 1));
      batch_.bytes.reserve(pages * page_size_);
      batch_.crc32c.reserve(pages);
    }
    const std::size_t at = batch_.bytes.size();
    batch_.bytes.insert(batch_.bytes.end(), page.begin(), page.end());
    std::uint32_t crc = vs::crc32c(page);
#ifdef VS_FAILURE_POINTS
    if (block == first_node_block_ && node_count_ > 0) crc = apply_faults(std::span(batch_.bytes).subspan(at), crc);
#else
    (void)at;
#endif
    batch_.crc32c.push_back(crc);
    progress_.report(kPhaseWrite, block + 1, total_blocks_);
  }

  // Sends the last batch.
  void finish() {
    flush();
  }

  // Pages handed to the transport.
  [[nodiscard]] std::uint32_t pages_sent() const noexcept {
    return pages_sent_;
  }
  // True when the truncate failure point cut the stream.
  [[nodiscard]] bool truncated() const noexcept {
    return truncated_;
  }

 private:
  // Hands the pending batch to the transport.
  void flush() {
    if (batch_.count() == 0) return;
    const auto n = static_cast<std::uint32_t>(batch_.count());
    call_.pages(std::move(batch_));
    batch_ = PageBatchMessage{};
    pages_sent_ += n;
    ++batches_sent_;
#ifdef VS_FAILURE_POINTS
    if (faults_.die_after_pages && batches_sent_ >= *faults_.die_after_pages) {
      call_.flush();
      std::_Exit(3);  // failure point: a crash of the builder mid-stream
    }
#endif
  }

#ifdef VS_FAILURE_POINTS
  // Corrupts the first node record of the first node page as the plan says; returns the CRC to send.
  std::uint32_t apply_faults(std::span<std::byte> page, std::uint32_t crc) const {
    if (!(faults_.corrupt_page || faults_.bad_crc || faults_.wrong_tid || faults_.wrong_labels)) return crc;
    const format::ItemId first = format::read_item_id(page, 1);
    std::byte* record = page.data() + first.off;
    // The state field (u16 at +0, 1 = live): flipping its low byte makes state 254, which
    // no validator accepts; the CRC is either recomputed or left stale.
    if (faults_.corrupt_page || faults_.bad_crc) record[0] ^= std::byte{0xFF};
    if (faults_.wrong_tid) format::store_tid6(record + 6, never_sent_);
    // One label more than the row has (32767, above all others: still strictly ascending,
    // and every label start keeps its label). num_labels is the u16 at +2, labels from +12.
    if (faults_.wrong_labels) {
      const std::uint16_t num = format::load_u16(record, 2);
      if (num < label_capacity_ && (num == 0 || format::load_u16(record, 12 + 2u * (num - 1u)) != 0x7FFF)) {
        format::store_i16(record, 12 + 2u * num, 0x7FFF);
        format::store_u16(record, 2, static_cast<std::uint16_t>(num + 1));
      }
    }
    const std::uint32_t fresh = vs::crc32c(page);
    return faults_.bad_crc ? crc : fresh;
  }
#endif

  BuildCall& call_;
  ProgressThrottle& progress_;
  std::uint32_t page_size_;
  std::size_t pages_per_batch_;
  const FaultPlan& faults_;
  [[maybe_unused]] format::Tid never_sent_;
  [[maybe_unused]] std::uint16_t label_capacity_;
  PageBatchMessage batch_;
  std::uint32_t next_block_ = 0;
  std::uint64_t total_blocks_ = 0;
  std::uint32_t first_node_block_ = format::kInvalidBlock;
  std::uint64_t node_count_ = 0;
  std::uint32_t pages_sent_ = 0;
  std::uint32_t batches_sent_ = 0;
  bool truncated_ = false;
};

// The rows of a build as they arrive: vectors, heap TIDs, labels.
class Rows {
 public:
  // Storage for rows of `dims` floats under `admission`, first sized for `expected` rows.
  Rows(const ResolvedSpec& spec, Admission& admission)
      : spec_(spec), admission_(admission), dims_(spec.spec.indexed_dims) {
    if (spec.spec.has_labels) labels_.emplace();
    reserve(spec.spec.expected_rows);
  }

  // Checks and appends one batch; throws kInvalidArgument or RESOURCE_EXHAUSTED.
  void append(const VectorBatchView& b) {
    const std::size_t n = b.heap_tids.size();
    VS_EXPECTS(b.data.size() == n * dims_, "vector batch has %zu floats for %zu rows of %zu dimensions (expected %zu)",
               b.data.size(), n, dims_, n * dims_);
    VS_EXPECTS(rows_ + n <= kMaxRows, "more than %llu rows sent", static_cast<unsigned long long>(kMaxRows));
    for (std::size_t i = 0; i < b.data.size(); ++i)
      VS_EXPECTS(std::isfinite(b.data[i]), "row %llu: dimension %zu is not a finite number",
                 static_cast<unsigned long long>(rows_ + i / dims_), i % dims_);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t key = b.heap_tids[i];
      const format::Tid tid = format::Tid::from_key(key);
      VS_EXPECTS((key >> 48) == 0 && tid.valid(),
                 "row %llu: heap TID 0x%llx is not a valid (block << 16 | offset) item pointer",
                 static_cast<unsigned long long>(rows_ + i), static_cast<unsigned long long>(key));
    }
    std::uint64_t new_labels = 0;
    if (labels_.has_value()) {
      VS_EXPECTS(b.label_offsets.size() == n + 1 || (n == 0 && b.label_offsets.empty()),
                 "vector batch of %zu rows has %zu label offsets (expected %zu)", n, b.label_offsets.size(), n + 1);
      if (n != 0) {
        VS_EXPECTS(b.label_offsets[0] == 0, "label_offsets must start at 0");
        for (std::size_t i = 0; i < n; ++i)
          VS_EXPECTS(b.label_offsets[i] <= b.label_offsets[i + 1], "label_offsets decrease at row %zu of the batch", i);
        VS_EXPECTS(b.label_offsets[n] == b.labels.size(), "label_offsets end at %u but the batch has %zu labels",
                   b.label_offsets[n], b.labels.size());
      }
      for (const std::int32_t l : b.labels) VS_EXPECTS(l >= -32768 && l <= 32767, "label %d is not a smallint", l);
      new_labels = b.labels.size();
    } else {
      VS_EXPECTS(b.label_offsets.empty() && b.labels.empty(), "labels sent, but the spec has has_labels false");
    }

    if (rows_ + n > capacity_ || new_labels != 0) {
      const std::uint64_t want =
          rows_ + n > capacity_ ? std::max<std::uint64_t>({rows_ + n, capacity_ + capacity_ / 4, 1024}) : capacity_;
      reserve(std::min<std::uint64_t>(want, kMaxRows), label_values_ + new_labels);
    }
    std::memcpy(vectors_.data() + rows_ * dims_, b.data.data(), b.data.size() * sizeof(float));
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t key = b.heap_tids[i];
      tids_.push_back(format::Tid::from_key(key));
      max_block_ = std::max(max_block_, tids_.back().block);
    }
    if (labels_.has_value() && n != 0) {
      std::vector<vamana::Label> row;
      for (std::size_t i = 0; i < n; ++i) {
        row.clear();
        for (std::uint32_t j = b.label_offsets[i]; j < b.label_offsets[i + 1]; ++j)
          row.push_back(static_cast<vamana::Label>(b.labels[j]));
        labels_->push_back(row);
      }
      label_values_ += new_labels;
    }
    rows_ += n;
  }

  // Throws kInvalidArgument naming the first heap TID that was sent twice.
  void check_unique_tids() const {
    std::vector<std::uint64_t> keys(tids_.size());
    for (std::size_t i = 0; i < tids_.size(); ++i) keys[i] = tids_[i].key();
    std::sort(keys.begin(), keys.end());
    const auto dup = std::adjacent_find(keys.begin(), keys.end());
    VS_EXPECTS(dup == keys.end(), "heap TID (%u,%u) was sent more than once", static_cast<unsigned>(*dup >> 16),
               static_cast<unsigned>(*dup & 0xFFFFu));
  }

  // A TID no row carries (for the wrong-tid failure point).
  [[nodiscard]] format::Tid never_sent() const noexcept {
    if (tids_.empty()) return format::Tid{0, 1};
    if (max_block_ < format::kInvalidBlock - 1) return format::Tid{max_block_ + 1, 1};
    return format::Tid{0, 0xFFFF};
  }

  [[nodiscard]] std::uint64_t rows() const noexcept { return rows_; }
  // Hands the rows' vectors over; room reserved past them (more rows announced than sent) is
  // zeroed first, as it was allocated uninitialised.
  Array<float>&& take_vectors() noexcept {
    const std::size_t used = static_cast<std::size_t>(rows_) * dims_;
    if (vectors_.size() > used)
      std::memset(static_cast<void*>(vectors_.data() + used), 0, (vectors_.size() - used) * sizeof(float));
    return std::move(vectors_);
  }
  std::vector<format::Tid>& tids() noexcept { return tids_; }
  std::optional<vamana::LabelSets>& labels() noexcept { return labels_; }

 private:
  // Admits and allocates room for `rows` rows and `label_values` labels.
  void reserve(std::uint64_t rows, std::uint64_t label_values = 0) {
    admission_.grow(memory_need(spec_, rows, label_values));
    if (rows <= capacity_) return;
    // Uninitialised: rows are appended before they are read, and take_vectors() zeroes the rest.
    Array<float> bigger(static_cast<std::size_t>(rows) * dims_, kUninitialized);
    if (rows_ != 0) std::memcpy(bigger.data(), vectors_.data(), rows_ * dims_ * sizeof(float));
    vectors_ = std::move(bigger);
    tids_.reserve(static_cast<std::size_t>(rows));
    capacity_ = rows;
  }

  const ResolvedSpec& spec_;
  Admission& admission_;
  std::size_t dims_;
  Array<float> vectors_;
  std::vector<format::Tid> tids_;
  std::optional<vamana::LabelSets> labels_;
  std::uint64_t rows_ = 0;
  std::uint64_t capacity_ = 0;
  std::uint64_t label_values_ = 0;
  std::uint32_t max_block_ = 0;
};

// Sleeps for `seconds` in small steps, throwing vs::Cancelled as soon as the call is cancelled.
[[maybe_unused]] void sleep_cancellable(const BuildCall& call, double seconds) {
  const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (Clock::now() < until) {
    check_cancel(call);
    std::this_thread::sleep_for(std::min<Clock::duration>(std::chrono::milliseconds(20), until - Clock::now()));
  }
  check_cancel(call);
}

// The body of run_build; throws on every failure.
void run_build_or_throw(BuildCall& call, Scheduler& scheduler, BuildBackend& backend, const SessionOptions& options,
                        StageClock& clock, BuildReport& report) {
  ProgressThrottle progress(call, options.progress_interval);

  // 1. The spec.
  std::optional<Request> first = call.next();
  if (!first.has_value()) {
    check_cancel(call);
    throw StatusError(StatusCode::kInvalidArgument, "the stream ended before a BuildSpec");
  }
  const BuildSpec* spec_msg = std::get_if<BuildSpec>(&*first);
  VS_EXPECTS(spec_msg != nullptr, "the first message must be a BuildSpec");
  report.client = spec_msg->client;
#ifdef VS_FAILURE_POINTS
  if (options.faults.fail_status)
    throw StatusError(static_cast<StatusCode>(*options.faults.fail_status),
                      vs::detail::format("failure point fail=%d", *options.faults.fail_status));
#endif
  const ResolvedSpec spec = resolve_spec(*spec_msg, options.server_threads);
  report.dims = spec.spec.indexed_dims;
  report.storage = storage_name(spec.params.storage);

  // 2. Admission before any vector is read.
  clock.enter(kStageQueue);
  Admission admission = scheduler.enqueue(memory_need(spec, spec.spec.expected_rows));
  if (!admission.running()) {
    progress.report(kPhaseReceive, 0, spec.spec.expected_rows, true);
    admission.wait([&] { return call.cancel_reason() != CancelReason::kNone; },
                   [&] { progress.report(kPhaseReceive, 0, spec.spec.expected_rows, true); }, options.queue_tick);
  }
  clock.enter(kStageReceive);
  progress.report(kPhaseReceive, 0, spec.spec.expected_rows, true);

  // 3. Rows until Finish.
  Rows rows(spec, admission);
  for (;;) {
    std::optional<Request> msg = call.next();
    check_cancel(call);
    if (!msg.has_value())
      throw StatusError(StatusCode::kInvalidArgument,
                        vs::detail::format("the stream ended after %llu rows without a Finish message",
                                           static_cast<unsigned long long>(rows.rows())));
    if (const auto* batch = std::get_if<VectorBatchView>(&*msg)) {
      rows.append(*batch);
      report.rows = rows.rows();
      progress.report(kPhaseReceive, rows.rows(), spec.spec.expected_rows);
      continue;
    }
    if (const auto* fin = std::get_if<FinishRequest>(&*msg)) {
      VS_EXPECTS(fin->rows == rows.rows(), "Finish.rows is %llu but %llu rows were received",
                 static_cast<unsigned long long>(fin->rows), static_cast<unsigned long long>(rows.rows()));
      break;
    }
    throw StatusError(StatusCode::kInvalidArgument, "BuildSpec sent twice");
  }
  // 4. Whole-input checks.
  rows.check_unique_tids();
  progress.report(kPhaseReceive, rows.rows(), rows.rows(), true);
  clock.enter(kStageTrain);

#ifdef VS_FAILURE_POINTS
  if (options.faults.slow_seconds > 0) sleep_cancellable(call, options.faults.slow_seconds);
#endif

  // 5. Build and stream the pages.
  const format::Tid never_sent = rows.never_sent();
  BuildInput in;
  in.params = spec.params;
  in.rows = static_cast<std::size_t>(rows.rows());
  in.dims = spec.spec.indexed_dims;
  in.vectors = rows.take_vectors();
  in.heap_tids = std::move(rows.tids());
  in.labels = std::move(rows.labels());
  in.page_options.page_size = spec.spec.page_size;
  in.page_options.column_dims = spec.spec.column_dims;
  in.page_options.labeled = spec.spec.has_labels;
  in.page_options.label_capacity = spec.label_capacity;
  in.page_options.provenance.built_by = format::BuiltBy::kBuilder;
  in.page_options.provenance.backend = backend.kind();
  in.page_options.provenance.builder_id = options.builder_id;

  Control control;
  control.cancel = [&] { return call.cancel_reason() != CancelReason::kNone; };
  control.progress = [&](std::uint32_t phase, std::uint64_t done, std::uint64_t total) {
    if (phase != kPhaseTrain) clock.enter(kStageGraph);  // a vamana::BuildPhase
    progress.report(phase, done, total);
  };
  if (options.engine_log) control.log = [&](LogLevel, std::string_view line) { options.engine_log(line); };

  PageStreamer streamer(call, progress, spec.spec.page_size, options.page_batch_bytes, options.faults, never_sent,
                        spec.label_capacity);
  const BackendStats stats =
      backend.build(std::move(in), control, [&](std::uint32_t block, std::span<const std::byte> page) {
        clock.enter(kStageWrite);
        streamer.add(block, page);
      });
  streamer.finish();
  // A CUDA backend hands some builds (labelled ones) to the CPU: log the backend that built.
  if (stats.backend != format::BuildBackend::kNone && stats.backend != backend.kind())
    report.backend = format::build_backend_name(stats.backend);
  report.pages = streamer.pages_sent();
  if (streamer.truncated()) return;  // failure point: OK without a Summary

  // 6. Summary.
  SummaryMessage summary;
  summary.total_pages = streamer.pages_sent();
  summary.nodes = stats.nodes;
  summary.backend = stats.backend != format::BuildBackend::kNone ? stats.backend : backend.kind();
  summary.builder_id = options.builder_id;
  summary.receive_seconds = clock.until(kStageTrain);
  summary.build_seconds = stats.build_seconds;
  summary.write_seconds = stats.write_seconds;
  call.summary(summary);
}

// Appends s to out with quotes, backslashes and control characters escaped.
void append_escaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      out += vs::detail::format("\\x%02x", static_cast<unsigned>(static_cast<unsigned char>(c)));
    } else {
      out += c;
    }
  }
}

}  // namespace

BuildReport run_build(BuildCall& call, Scheduler& scheduler, BuildBackend& backend,
                      const SessionOptions& options) noexcept {
  StageClock clock;
  BuildReport report;
  try {
    report.backend = std::string(backend.name());
    run_build_or_throw(call, scheduler, backend, options, clock, report);
  } catch (...) {
    report.status = status_from_exception(std::current_exception(), call.cancel_reason());
  }
  clock.fill(report);
  report.outcome = classify_outcome(report.status, clock.entered(kStageReceive));
  return report;
}

std::string format_build_log(const BuildReport& r) {
  std::string line = "build client=\"";
  append_escaped(line, r.client);
  line += "\" peer=";
  append_escaped(line, r.peer.empty() ? std::string_view("-") : std::string_view(r.peer));
  line += vs::detail::format(
      " rows=%llu dims=%u storage=%s backend=%s pages=%u bytes_received=%llu bytes_sent=%llu seconds=%.3f "
      "queue_s=%.3f receive_s=%.3f train_s=%.3f graph_s=%.3f write_s=%.3f result=",
      static_cast<unsigned long long>(r.rows), r.dims, r.storage.empty() ? "-" : r.storage.c_str(),
      r.backend.empty() ? "-" : r.backend.c_str(), r.pages, static_cast<unsigned long long>(r.bytes_received),
      static_cast<unsigned long long>(r.bytes_sent), r.seconds, r.queue_seconds, r.receive_seconds, r.train_seconds,
      r.graph_seconds, r.write_seconds);
  if (r.status.ok()) {
    line += "ok";
  } else {
    line += status_code_name(r.status.code);
    line += ": ";
    append_escaped(line, r.status.message);
  }
  return line;
}

}  // namespace vs::builder
