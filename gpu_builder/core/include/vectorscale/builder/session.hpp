/**
 * @file session.hpp
 * @brief One build from spec to Summary: protocol order, admission, receiving, building, pages.
 *
 * run_build() is the whole server side of the Build RPC without gRPC types. The transport
 * (the gRPC reactor, or a fake in unit tests) implements BuildCall; run_build() runs on a
 * thread of its own, may block in BuildCall's methods, and never throws:
 *
 *   1. read the BuildSpec (the first message) and validate it          -> INVALID_ARGUMENT
 *   2. ask the Scheduler for a slot and the memory of expected_rows    -> RESOURCE_EXHAUSTED;
 *      while waiting, report progress phase 10 with done 0
 *   3. receive VectorBatch messages (phase 10, done = rows), checking sizes, finite values,
 *      TIDs and labels, growing the reservation when more rows come than announced
 *   4. Finish: its row count must match; no heap TID may repeat
 *   5. the backend trains (phase 11) and builds (phases 1, 2, 3), then writes pages, which go
 *      out in PageBatch messages of at most page_batch_bytes with a CRC-32C each (phase 12)
 *   6. Summary
 *
 * Cancellation (client gone, deadline, shutdown) is polled through BuildCall::cancel_reason
 * between batches and inside the engine; every exception becomes the returned status through
 * status_from_exception().
 */
#pragma once
#include "vectorscale/builder/admission.hpp"
#include "vectorscale/builder/backend.hpp"
#include "vectorscale/builder/faults.hpp"
#include "vectorscale/builder/metrics.hpp"
#include "vectorscale/builder/spec.hpp"
#include "vectorscale/builder/status.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace vs::builder {

/** A VectorBatch message, borrowed from the transport until its next BuildCall::next(). */
struct VectorBatchView {
  std::span<const std::uint64_t> heap_tids;      ///< block << 16 | offset per row
  std::span<const float> data;                   ///< heap_tids.size() * indexed_dims floats
  std::span<const std::uint32_t> label_offsets;  ///< has_labels: rows + 1 offsets into labels
  std::span<const std::int32_t> labels;          ///< has_labels: int16 values
};

/** The Finish message. */
struct FinishRequest {
  std::uint64_t rows = 0;  ///< rows the client sent in all batches
};

/** One client message. */
using Request = std::variant<BuildSpec, VectorBatchView, FinishRequest>;

/** A Progress message. */
struct ProgressMessage {
  std::uint32_t phase = 0;  ///< ProtocolPhase or vamana::BuildPhase
  std::uint64_t done = 0;   ///< units done
  std::uint64_t total = 0;  ///< units in the phase; 0 = unknown
};

/** A PageBatch message: consecutive pages from first_block, with their CRC-32C. */
struct PageBatchMessage {
  std::uint32_t first_block = 0;      ///< block of the first page
  std::uint32_t format_version = 0;   ///< format::kFormatVersion
  std::uint32_t page_size = 0;        ///< bytes per page
  std::vector<std::byte> bytes;       ///< count() * page_size bytes
  std::vector<std::uint32_t> crc32c;  ///< one per page

  /** Number of pages. */
  [[nodiscard]] std::size_t count() const noexcept { return crc32c.size(); }
  /** Page i of the batch. */
  [[nodiscard]] std::span<const std::byte> page(std::size_t i) const noexcept {
    return std::span<const std::byte>(bytes).subspan(i * page_size, page_size);
  }
};

/** The Summary message. */
struct SummaryMessage {
  std::uint32_t total_pages = 0;                               ///< blocks sent
  std::uint64_t nodes = 0;                                     ///< node records
  format::BuildBackend backend = format::BuildBackend::kNone;  ///< backend used
  std::string builder_id;                                      ///< recorded in the meta page
  double receive_seconds = 0;                                  ///< spec to Finish (incl. queueing)
  double build_seconds = 0;                                    ///< training + graph
  double write_seconds = 0;                                    ///< pages
};

/** The transport side of one Build call, as run_build() sees it. */
class BuildCall {
 public:
  virtual ~BuildCall() = default;
  /**
   * Blocks for the next client message; nullopt when the client closed its side or the call
   * ended. Spans in the result stay valid until the next call.
   */
  [[nodiscard]] virtual std::optional<Request> next() = 0;
  /** Queues a progress message; never blocks (an unsent progress message may be replaced). */
  virtual void progress(const ProgressMessage& message) = 0;
  /** Queues a page batch; blocks while too much is queued; throws vs::Cancelled if the call is gone. */
  virtual void pages(PageBatchMessage&& batch) = 0;
  /** Queues the summary. */
  virtual void summary(const SummaryMessage& message) = 0;
  /** Blocks until everything queued has been handed to the network (or the call is gone). */
  virtual void flush() = 0;
  /** Whether, and why, the call was cancelled; polled often, must be cheap and thread-safe. */
  [[nodiscard]] virtual CancelReason cancel_reason() const = 0;
};

/** Server-wide settings every build uses. */
struct SessionOptions {
  std::uint32_t server_threads = 1;                  ///< --threads: default and ceiling per build
  std::uint64_t page_batch_bytes = 1u << 20;         ///< --page-batch-bytes (at least one page per batch)
  std::string builder_id;                            ///< meta page provenance (make_builder_id)
  FaultPlan faults;                                  ///< --fault (only with VS_FAILURE_POINTS)
  std::chrono::milliseconds progress_interval{100};  ///< at most one progress message per interval and phase
  std::chrono::milliseconds queue_tick{1000};        ///< repeat phase 10 / done 0 this often while waiting
  std::function<void(std::string_view)> engine_log;  ///< engine log lines (optional)
};

/**
 * What the log line of one build says. The phase times tile the build after its spec: each
 * phase lasts until the next one begins (a phase never reached lasts 0), so together with
 * reading the spec they add up to `seconds`.
 */
struct BuildReport {
  Status status;                                    ///< the outcome sent to the client
  BuildOutcome outcome = BuildOutcome::kSucceeded;  ///< status classified for the counters
  std::string client;                               ///< BuildSpec.client
  std::string peer;                                 ///< the transport's peer address
  std::uint64_t rows = 0;                           ///< rows received
  std::uint32_t dims = 0;                           ///< indexed dims
  std::string storage;                              ///< storage layout name
  std::string backend;                              ///< backend name
  std::uint32_t pages = 0;           ///< pages handed to the transport (the gRPC service counts those written)
  std::uint64_t bytes_received = 0;  ///< request bytes read (set by the transport)
  std::uint64_t bytes_sent = 0;      ///< response bytes written (set by the transport)
  double seconds = 0;                ///< wall time from the call's start
  double queue_seconds = 0;          ///< waiting for admission (a slot and the memory)
  double receive_seconds = 0;        ///< admitted until every row was received and checked
  double train_seconds = 0;          ///< the backend until its first graph phase: quantizer training, medoid
  double graph_seconds = 0;          ///< graph phases: insert, prune, connect
  double write_seconds = 0;          ///< from the first page until the end (pages and Summary handed over)
};

/** Runs one build over `call`; never throws. */
[[nodiscard]] BuildReport run_build(BuildCall& call, Scheduler& scheduler, BuildBackend& backend,
                                    const SessionOptions& options) noexcept;

/**
 * The one log line of a build: `build client="..." peer=... rows=N dims=D storage=S
 * backend=B pages=P bytes_received=N bytes_sent=N seconds=T queue_s=T receive_s=T train_s=T
 * graph_s=T write_s=T result=ok` (or `result=CODE: message`, always last).
 */
[[nodiscard]] std::string format_build_log(const BuildReport& report);

}  // namespace vs::builder
