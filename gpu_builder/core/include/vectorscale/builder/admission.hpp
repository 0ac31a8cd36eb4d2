/**
 * @file admission.hpp
 * @brief Admission of builds: at most K running, a bounded FIFO of waiting builds, a memory cap.
 *
 * Every build asks for admission with the memory its spec needs before any vector is
 * received. It runs at once when a slot and the memory are free and nobody waits ahead of
 * it; otherwise it waits in FIFO order (at most max_queued builds wait). A build that could
 * never fit (it needs more than max_memory alone) or that finds the queue full is refused
 * with RESOURCE_EXHAUSTED. A running build may grow its reservation (more rows than the
 * client announced); growth that no longer fits beside the other running builds is refused.
 * Memory held counts only running builds; waiting builds hold nothing.
 */
#pragma once
#include "vectorscale/builder/status.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>

namespace vs::builder {

/** The limits of a Scheduler (gpu_builder's --max-concurrent-builds etc.). */
struct AdmissionLimits {
  std::uint32_t max_running = 1;          ///< builds running at once (K)
  std::uint32_t max_queued = 16;          ///< builds waiting for a slot (Q)
  std::uint64_t max_memory = 1ull << 30;  ///< bytes all running builds may hold together
};

/** A snapshot of a Scheduler's state. */
struct AdmissionStats {
  std::uint32_t running = 0;     ///< builds running
  std::uint32_t queued = 0;      ///< builds waiting
  std::uint64_t held_bytes = 0;  ///< memory reserved by running builds
};

class Scheduler;

/** One build's place in a Scheduler: waiting or running; move-only, released on destruction. */
class Admission {
 public:
  Admission() = default;
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;
  /** Takes over another admission. */
  Admission(Admission&& other) noexcept;
  /** Releases this admission and takes over another. */
  Admission& operator=(Admission&& other) noexcept;
  /** Leaves the queue or gives the slot and the memory back. */
  ~Admission();

  /** True once the build may run (holds a slot and its memory). */
  [[nodiscard]] bool running() const;
  /** Bytes reserved (while running) or asked for (while waiting). */
  [[nodiscard]] std::uint64_t bytes() const;

  /**
   * Waits until the build may run. Polls `cancelled` and calls `tick` every `interval` while
   * waiting; throws vs::Cancelled when cancelled, StatusError{kUnavailable} when the
   * scheduler shuts down first. Returns at once when already running.
   */
  void wait(const std::function<bool()>& cancelled, const std::function<void()>& tick,
            std::chrono::milliseconds interval = std::chrono::milliseconds(100));

  /**
   * Sets the reservation of a running build to `bytes` (only ever grows it). Throws
   * StatusError{kResourceExhausted} when the other running builds leave too little memory.
   */
  void grow(std::uint64_t bytes);

  /** Gives the slot and memory back now (the destructor does the same). */
  void release() noexcept;

 private:
  friend class Scheduler;
  Admission(Scheduler* scheduler, std::uint64_t id) : scheduler_(scheduler), id_(id) {}
  Scheduler* scheduler_ = nullptr;
  std::uint64_t id_ = 0;
};

/** Admits builds under AdmissionLimits; thread-safe. Must outlive its Admissions. */
class Scheduler {
 public:
  /** A scheduler with these limits. */
  explicit Scheduler(AdmissionLimits limits);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /**
   * Asks for a slot and `bytes` of memory. Returns a running admission when both are free and
   * nobody waits, else a waiting one (call Admission::wait). Throws StatusError with
   * kResourceExhausted when `bytes` exceeds max_memory or the queue is full, kUnavailable
   * after begin_shutdown().
   */
  [[nodiscard]] Admission enqueue(std::uint64_t bytes);

  /** Refuses new builds and fails the waiting ones (UNAVAILABLE); running builds go on. */
  void begin_shutdown();

  /** The current counts. */
  [[nodiscard]] AdmissionStats stats() const;
  /** The limits. */
  [[nodiscard]] const AdmissionLimits& limits() const noexcept { return limits_; }

 private:
  friend class Admission;
  enum class State : std::uint8_t { kWaiting, kRunning };
  struct Entry {
    std::uint64_t bytes = 0;
    State state = State::kWaiting;
  };
  void promote_locked();
  void release(std::uint64_t id) noexcept;

  const AdmissionLimits limits_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::uint64_t, Entry> entries_;
  std::deque<std::uint64_t> queue_;  // waiting ids, FIFO
  std::uint32_t running_ = 0;
  std::uint64_t held_ = 0;
  std::uint64_t next_id_ = 1;
  bool shutdown_ = false;
};

}  // namespace vs::builder
