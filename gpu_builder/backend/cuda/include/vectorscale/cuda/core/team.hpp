/**
 * @file team.hpp
 * @brief The "team" a core algorithm runs on: a CUDA thread block or warp, or one host thread.
 *
 * Core algorithms are written once against this small interface:
 *   rank(), size(), leader()        this thread's place in the team
 *   sync()                          barrier; makes earlier shared-memory writes visible
 *   for_each(n, f)                  f(i) for i in [0, n) spread over the team, then sync()
 *   for_each_reduce(n, len, part, done)
 *                                   for each item j: total = sum over k in [0, len) of the
 *                                   terms that part(j, k) returns, then done(j, total); a
 *                                   group of lanes shares an item, then sync()
 *   atomic_add / atomic_min / atomic_cas on 32-bit words of team-shared or global memory
 * Iterations of one for_each must be independent (each writes its own slots, shared counters
 * go through the atomics); that is what makes the serial run on the host an exact model of
 * every interleaving on the device. SerialTeam here is the host model; the device teams are in
 * src/detail/teams.cuh.
 */
#pragma once

#include <cstdint>

#include "vectorscale/cuda/core/hd.hpp"

namespace vs::cuda::core {

/** A team of one host thread: runs every iteration itself, in order. */
struct SerialTeam {
  [[nodiscard]] std::uint32_t rank() const noexcept { return 0; }
  [[nodiscard]] std::uint32_t size() const noexcept { return 1; }
  [[nodiscard]] bool leader() const noexcept { return true; }
  void sync() const noexcept {}
  template <class F>
  void for_each(std::uint32_t n, F&& f) const {
    for (std::uint32_t i = 0; i < n; ++i) f(i);
  }
  template <class Part, class Done>
  void for_each_reduce(std::uint32_t n, std::uint32_t len, Part&& part, Done&& done) const {
    for (std::uint32_t j = 0; j < n; ++j) {
      float total = 0.0f;
      for (std::uint32_t k = 0; k < len; ++k) total += part(j, k);
      done(j, total);
    }
  }
  std::uint32_t atomic_add(std::uint32_t* p, std::uint32_t v) const noexcept {
    const std::uint32_t old = *p;
    *p = old + v;
    return old;
  }
  std::uint32_t atomic_min(std::uint32_t* p, std::uint32_t v) const noexcept {
    const std::uint32_t old = *p;
    if (v < old) *p = v;
    return old;
  }
  std::uint32_t atomic_cas(std::uint32_t* p, std::uint32_t expected, std::uint32_t desired) const noexcept {
    const std::uint32_t old = *p;
    if (old == expected) *p = desired;
    return old;
  }
};

}  // namespace vs::cuda::core
