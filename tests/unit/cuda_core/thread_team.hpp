// A host model of a CUDA thread block for the core algorithms (core/team.hpp): every rank is
// its own std::thread, sync() is a barrier, the atomics are std::atomic_ref. Where SerialTeam
// checks what the algorithms compute, ThreadTeam checks how they share memory: a missing
// barrier shows as a wrong result or a ThreadSanitizer report, and a result that differs
// between ranks (each rank keeps its own locals, as each GPU thread does) or a barrier not
// reached by every rank fails run_team.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace vs::test {

/**
 * A reusable barrier on a mutex and a condition variable (ThreadSanitizer models both exactly;
 * libstdc++ 12's std::barrier gave ThreadSanitizer reports and wrong phases here). drop()
 * leaves it, as std::barrier::arrive_and_drop.
 */
class TeamBarrier {
 public:
  explicit TeamBarrier(std::uint32_t count) : expected_(count) {}
  void arrive_and_wait() {
    std::unique_lock lock(mutex_);
    const std::uint64_t phase = phase_;
    if (++arrived_ >= expected_) {
      next_phase();
      return;
    }
    changed_.wait(lock, [&] { return phase_ != phase; });
  }
  void drop() {
    std::lock_guard lock(mutex_);
    --expected_;
    if (arrived_ > 0 && arrived_ >= expected_) next_phase();
  }

 private:
  void next_phase() {
    arrived_ = 0;
    ++phase_;
    changed_.notify_all();
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint32_t expected_, arrived_ = 0;
  std::uint64_t phase_ = 0;
};

class ThreadTeam {
 public:
  ThreadTeam(std::uint32_t rank, std::uint32_t size, TeamBarrier* barrier, std::uint64_t* syncs) noexcept
      : rank_(rank), size_(size), barrier_(barrier), syncs_(syncs) {}

  [[nodiscard]] std::uint32_t rank() const noexcept { return rank_; }
  [[nodiscard]] std::uint32_t size() const noexcept { return size_; }
  [[nodiscard]] bool leader() const noexcept { return rank_ == 0; }
  void sync() const {
    ++*syncs_;
    barrier_->arrive_and_wait();
  }
  template <class F>
  void for_each(std::uint32_t n, F&& f) const {
    for (std::uint32_t i = rank_; i < n; i += size_) f(i);
    sync();
  }
  // Each rank takes whole items (the device gives an item to a warp's lanes; the contract,
  // part() pure and done(j) writing item j's slots, is the same).
  template <class Part, class Done>
  void for_each_reduce(std::uint32_t n, std::uint32_t len, Part&& part, Done&& done) const {
    for (std::uint32_t j = rank_; j < n; j += size_) {
      float total = 0.0f;
      for (std::uint32_t k = 0; k < len; ++k) total += part(j, k);
      done(j, total);
    }
    sync();
  }
  std::uint32_t atomic_add(std::uint32_t* p, std::uint32_t v) const noexcept {
    return std::atomic_ref<std::uint32_t>(*p).fetch_add(v);
  }
  std::uint32_t atomic_min(std::uint32_t* p, std::uint32_t v) const noexcept {
    std::atomic_ref<std::uint32_t> a(*p);
    std::uint32_t old = a.load();
    while (v < old && !a.compare_exchange_weak(old, v)) {
    }
    return old;
  }
  std::uint32_t atomic_cas(std::uint32_t* p, std::uint32_t expected, std::uint32_t desired) const noexcept {
    std::atomic_ref<std::uint32_t>(*p).compare_exchange_strong(expected, desired);
    return expected;  // the old value either way
  }

 private:
  std::uint32_t rank_, size_;
  TeamBarrier* barrier_;
  std::uint64_t* syncs_;
};

/**
 * Runs body(team) on `size` threads, one per rank, and returns rank 0's result. Fails the
 * current test when the ranks return different results or passed different numbers of
 * barriers (a rank that finishes leaves the barrier, so a missing sync cannot hang the test).
 * `barriers` (may be null) receives the number of barriers each rank passed.
 */
template <class Body>
auto run_team(std::uint32_t size, Body&& body, std::uint64_t* barriers = nullptr) {
  using Result = decltype(body(std::declval<const ThreadTeam&>()));
  TeamBarrier barrier(size);
  std::vector<std::optional<Result>> results(size);
  std::vector<std::uint64_t> syncs(size, 0);
  {
    std::vector<std::jthread> threads;
    threads.reserve(size);
    for (std::uint32_t r = 0; r < size; ++r)
      threads.emplace_back([&, r] {
        const ThreadTeam team(r, size, &barrier, &syncs[r]);
        results[r].emplace(body(team));
        barrier.drop();
      });
  }
  for (std::uint32_t r = 1; r < size; ++r) {
    EXPECT_EQ(syncs[r], syncs[0]) << "rank " << r << " passed another number of barriers";
    EXPECT_TRUE(*results[r] == *results[0]) << "rank " << r << " returned another result than rank 0";
  }
  if (barriers != nullptr) *barriers = syncs[0];
  return *results[0];
}

}  // namespace vs::test
