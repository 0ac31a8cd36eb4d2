// The builder's counters: build outcomes and traffic since the server started.
#include "vectorscale/builder/metrics.hpp"

namespace vs::builder {

namespace {
constexpr auto kRelaxed = std::memory_order_relaxed;
}  // namespace

BuildOutcome classify_outcome(const Status& status, bool admitted) noexcept {
  switch (status.code) {
    case StatusCode::kOk:
      return BuildOutcome::kSucceeded;
    case StatusCode::kCancelled:
    case StatusCode::kDeadlineExceeded:
      return BuildOutcome::kCancelled;
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable:
      return admitted ? BuildOutcome::kFailed : BuildOutcome::kRejected;
    default:
      return BuildOutcome::kFailed;
  }
}

BuilderMetrics::BuilderMetrics() noexcept : start_(std::chrono::steady_clock::now()) {}

void BuilderMetrics::build_started() noexcept {
  started_.fetch_add(1);
}

void BuilderMetrics::build_ended(BuildOutcome outcome) noexcept {
  ended_[static_cast<std::size_t>(outcome)].fetch_add(1);
}

void BuilderMetrics::unauthenticated() noexcept {
  unauthenticated_.fetch_add(1, kRelaxed);
}

void BuilderMetrics::received(std::uint64_t rows, std::uint64_t bytes) noexcept {
  if (rows != 0) vectors_received_.fetch_add(rows, kRelaxed);
  bytes_received_.fetch_add(bytes, kRelaxed);
}

void BuilderMetrics::sent(std::uint64_t pages, std::uint64_t bytes) noexcept {
  if (pages != 0) pages_sent_.fetch_add(pages, kRelaxed);
  bytes_sent_.fetch_add(bytes, kRelaxed);
}

MetricsSnapshot BuilderMetrics::snapshot() const noexcept {
  MetricsSnapshot s;
  // Ends first, then starts (sequentially consistent): a build's start is counted before its
  // end, so started read later is never below the ends read here.
  s.builds_succeeded = ended_[static_cast<std::size_t>(BuildOutcome::kSucceeded)].load();
  s.builds_failed = ended_[static_cast<std::size_t>(BuildOutcome::kFailed)].load();
  s.builds_cancelled = ended_[static_cast<std::size_t>(BuildOutcome::kCancelled)].load();
  s.builds_rejected = ended_[static_cast<std::size_t>(BuildOutcome::kRejected)].load();
  s.builds_started = started_.load();
  const std::uint64_t ended = s.builds_succeeded + s.builds_failed + s.builds_cancelled + s.builds_rejected;
  s.builds_active = s.builds_started >= ended ? s.builds_started - ended : 0;
  s.unauthenticated_calls = unauthenticated_.load(kRelaxed);
  s.vectors_received = vectors_received_.load(kRelaxed);
  s.bytes_received = bytes_received_.load(kRelaxed);
  s.pages_sent = pages_sent_.load(kRelaxed);
  s.bytes_sent = bytes_sent_.load(kRelaxed);
  s.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return s;
}

}  // namespace vs::builder
