// Inputs shared by the CUDA core's CPU tests: points whose distances are exact in float, and
// random graphs in the device's adjacency layout.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

namespace vs::test {

// n points with small integer coordinates: every dot product and L2 distance is exact in float,
// whatever the order of summation, so host and device formulas agree bit for bit and
// comparisons with common/ are exact.
inline std::vector<float> integer_points(std::size_t n, std::size_t dims, std::uint64_t seed, int range = 7) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> u(-range, range);
  std::vector<float> out(n * dims);
  for (auto& x : out) x = static_cast<float>(u(rng));
  return out;
}

/** A graph of n nodes as the device keeps it: n x stride neighbour slots and the degrees. */
struct AdjacencyGraph {
  std::vector<std::uint32_t> neighbors, degrees;
};

/**
 * Random out-lists of distinct neighbours in random order; every degree is `stride`, or
 * uniform in [0, stride] when random_degrees.
 */
inline AdjacencyGraph random_graph(std::uint32_t n, std::uint32_t stride, bool random_degrees, std::mt19937_64& rng) {
  AdjacencyGraph g{std::vector<std::uint32_t>(std::size_t{n} * stride), std::vector<std::uint32_t>(n, stride)};
  for (std::uint32_t i = 0; i < n; ++i) {
    if (random_degrees) g.degrees[i] = static_cast<std::uint32_t>(rng() % (stride + 1));
    std::set<std::uint32_t> s;
    while (s.size() < g.degrees[i]) s.insert(static_cast<std::uint32_t>(rng() % n));
    std::uint32_t* list = &g.neighbors[std::size_t{i} * stride];
    std::copy(s.begin(), s.end(), list);
    std::shuffle(list, list + g.degrees[i], rng);
  }
  return g;
}

}  // namespace vs::test
