/**
 * @file metrics.hpp
 * @brief The builder's counters since it started (`GetStatus`, `gpu_builder --status`).
 *
 * Two kinds of counters, both thread-safe and cheap enough for every message:
 *  - build outcomes, counted once per Build call that passed authentication: started when the
 *    call begins, then exactly one of succeeded / failed / cancelled / rejected when it ends;
 *    the service records the end before the status goes out, so a client that has its status
 *    finds its build counted;
 *  - traffic, counted as messages are read and written, so it grows while builds run.
 * Gauges (running and queued builds, memory held) come from the Scheduler, not from here.
 */
#pragma once
#include "vectorscale/builder/status.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>

namespace vs::builder {

/** How a build ended, for the counters. */
enum class BuildOutcome : std::uint8_t {
  kSucceeded = 0,  ///< OK
  kFailed = 1,     ///< any other error: bad spec or batch, INTERNAL, memory grown past the limit, shutdown
  kCancelled = 2,  ///< CANCELLED or DEADLINE_EXCEEDED: the client went away or its deadline passed
  kRejected = 3,   ///< refused at admission: RESOURCE_EXHAUSTED (memory, queue full) or UNAVAILABLE (shutting down)
};

/**
 * The outcome of a build that ended with `status`; `admitted` tells whether it got past
 * admission (held a slot), which separates a rejection from a failure with the same code.
 */
[[nodiscard]] BuildOutcome classify_outcome(const Status& status, bool admitted) noexcept;

/** A copy of the counters at one moment. */
struct MetricsSnapshot {
  double uptime_seconds = 0;                ///< since the BuilderMetrics was made (server start)
  std::uint64_t builds_started = 0;         ///< Build calls that passed authentication
  std::uint64_t builds_succeeded = 0;       ///< BuildOutcome::kSucceeded
  std::uint64_t builds_failed = 0;          ///< BuildOutcome::kFailed
  std::uint64_t builds_cancelled = 0;       ///< BuildOutcome::kCancelled
  std::uint64_t builds_rejected = 0;        ///< BuildOutcome::kRejected
  std::uint64_t builds_active = 0;          ///< started and not ended yet
  std::uint64_t unauthenticated_calls = 0;  ///< calls refused for a missing or wrong bearer token
  std::uint64_t vectors_received = 0;       ///< rows in the vector batches read
  std::uint64_t bytes_received = 0;         ///< serialized request bytes read
  std::uint64_t pages_sent = 0;             ///< pages in the page batches written
  std::uint64_t bytes_sent = 0;             ///< serialized response bytes written
};

/** The counters of one server; every method is thread-safe and never throws. */
class BuilderMetrics {
 public:
  /** Counters at zero; uptime counts from now. */
  BuilderMetrics() noexcept;
  BuilderMetrics(const BuilderMetrics&) = delete;
  BuilderMetrics& operator=(const BuilderMetrics&) = delete;

  /** A Build call passed authentication. */
  void build_started() noexcept;
  /** A started build ended with `outcome` (once per build_started). */
  void build_ended(BuildOutcome outcome) noexcept;
  /** A call was refused for its bearer token. */
  void unauthenticated() noexcept;
  /** A request was read: `rows` vectors (0 for other messages) in `bytes` serialized bytes. */
  void received(std::uint64_t rows, std::uint64_t bytes) noexcept;
  /** A response was written: `pages` page images (0 for other messages) in `bytes` serialized bytes. */
  void sent(std::uint64_t pages, std::uint64_t bytes) noexcept;

  /** The counters now (builds_active never counts a build as ended before it started). */
  [[nodiscard]] MetricsSnapshot snapshot() const noexcept;

 private:
  const std::chrono::steady_clock::time_point start_;
  std::atomic<std::uint64_t> started_{0};
  std::atomic<std::uint64_t> ended_[4] = {};  // by BuildOutcome
  std::atomic<std::uint64_t> unauthenticated_{0};
  std::atomic<std::uint64_t> vectors_received_{0};
  std::atomic<std::uint64_t> bytes_received_{0};
  std::atomic<std::uint64_t> pages_sent_{0};
  std::atomic<std::uint64_t> bytes_sent_{0};
};

}  // namespace vs::builder
