// Admission of builds: running slots, the FIFO of waiting builds and the memory cap.
#include "vectorscale/builder/admission.hpp"

#include <algorithm>
#include <utility>

#include "vectorscale/core/error.hpp"

namespace vs::builder {

namespace {

// "1.5 GiB"-style rendering of a byte count for messages.
std::string human_bytes(std::uint64_t bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  return u == 0 ? vs::detail::format("%llu bytes", static_cast<unsigned long long>(bytes))
                : vs::detail::format("%.1f %s", v, units[u]);
}

}  // namespace

Scheduler::Scheduler(AdmissionLimits limits) : limits_(limits) {}

Admission Scheduler::enqueue(std::uint64_t bytes) {
  std::lock_guard lock(mu_);
  if (shutdown_) throw StatusError(StatusCode::kUnavailable, "the builder is shutting down");
  if (bytes > limits_.max_memory)
    throw StatusError(StatusCode::kResourceExhausted,
                      vs::detail::format("the build needs %s of memory, more than the builder's limit of %s "
                                         "(--max-memory)",
                                         human_bytes(bytes).c_str(), human_bytes(limits_.max_memory).c_str()));
  const std::uint64_t id = next_id_++;
  if (queue_.empty() && running_ < limits_.max_running && held_ + bytes <= limits_.max_memory) {
    entries_.emplace(id, Entry{bytes, State::kRunning});
    ++running_;
    held_ += bytes;
    return Admission(this, id);
  }
  if (queue_.size() >= limits_.max_queued)
    throw StatusError(StatusCode::kResourceExhausted,
                      vs::detail::format("%u builds are running and %zu are waiting already (--max-queued-builds %u)",
                                         running_, queue_.size(), limits_.max_queued));
  entries_.emplace(id, Entry{bytes, State::kWaiting});
  queue_.push_back(id);
  return Admission(this, id);
}

void Scheduler::promote_locked() {
  bool changed = false;
  while (!queue_.empty() && running_ < limits_.max_running) {
    Entry& head = entries_.at(queue_.front());
    if (held_ + head.bytes > limits_.max_memory) break;  // FIFO: nobody overtakes the head
    head.state = State::kRunning;
    ++running_;
    held_ += head.bytes;
    queue_.pop_front();
    changed = true;
  }
  if (changed) cv_.notify_all();
}

void Scheduler::release(std::uint64_t id) noexcept {
  std::lock_guard lock(mu_);
  const auto it = entries_.find(id);
  if (it == entries_.end()) return;
  if (it->second.state == State::kRunning) {
    --running_;
    held_ -= it->second.bytes;
  } else {
    queue_.erase(std::remove(queue_.begin(), queue_.end(), id), queue_.end());
  }
  entries_.erase(it);
  try {
    promote_locked();
  } catch (...) {
    // entries_.at cannot fail for queued ids; nothing else throws
  }
  cv_.notify_all();
}

void Scheduler::begin_shutdown() {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
}

AdmissionStats Scheduler::stats() const {
  std::lock_guard lock(mu_);
  return {running_, static_cast<std::uint32_t>(queue_.size()), held_};
}

Admission::Admission(Admission&& other) noexcept
    : scheduler_(std::exchange(other.scheduler_, nullptr)), id_(std::exchange(other.id_, 0)) {}

Admission& Admission::operator=(Admission&& other) noexcept {
  if (this != &other) {
    release();
    scheduler_ = std::exchange(other.scheduler_, nullptr);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}

Admission::~Admission() {
  release();
}

void Admission::release() noexcept {
  if (scheduler_ != nullptr) scheduler_->release(id_);
  scheduler_ = nullptr;
  id_ = 0;
}

bool Admission::running() const {
  if (scheduler_ == nullptr) return false;
  std::lock_guard lock(scheduler_->mu_);
  const auto it = scheduler_->entries_.find(id_);
  return it != scheduler_->entries_.end() && it->second.state == Scheduler::State::kRunning;
}

std::uint64_t Admission::bytes() const {
  if (scheduler_ == nullptr) return 0;
  std::lock_guard lock(scheduler_->mu_);
  const auto it = scheduler_->entries_.find(id_);
  return it == scheduler_->entries_.end() ? 0 : it->second.bytes;
}

void Admission::wait(const std::function<bool()>& cancelled, const std::function<void()>& tick,
                     std::chrono::milliseconds interval) {
  VS_ASSERT(scheduler_ != nullptr);
  Scheduler& s = *scheduler_;
  for (;;) {
    {
      std::unique_lock lock(s.mu_);
      const auto is_running = [&] { return s.entries_.at(id_).state == Scheduler::State::kRunning; };
      s.cv_.wait_for(lock, interval, [&] { return is_running() || s.shutdown_; });
      if (is_running()) return;
      if (s.shutdown_) throw StatusError(StatusCode::kUnavailable, "the builder is shutting down");
    }
    if (cancelled && cancelled()) throw vs::Cancelled();
    if (tick) tick();
  }
}

void Admission::grow(std::uint64_t bytes) {
  VS_ASSERT(scheduler_ != nullptr);
  Scheduler& s = *scheduler_;
  std::lock_guard lock(s.mu_);
  Scheduler::Entry& e = s.entries_.at(id_);
  VS_ASSERT(e.state == Scheduler::State::kRunning);
  if (bytes <= e.bytes) return;
  const std::uint64_t others = s.held_ - e.bytes;
  if (others + bytes > s.limits_.max_memory)
    throw StatusError(StatusCode::kResourceExhausted,
                      vs::detail::format("the build grew to need %s of memory; with %s held by other builds that "
                                         "exceeds the builder's limit of %s (--max-memory); send a larger "
                                         "expected_rows to be refused up front",
                                         human_bytes(bytes).c_str(), human_bytes(others).c_str(),
                                         human_bytes(s.limits_.max_memory).c_str()));
  s.held_ += bytes - e.bytes;
  e.bytes = bytes;
}

}  // namespace vs::builder
