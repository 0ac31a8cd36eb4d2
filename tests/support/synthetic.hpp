// Seeded synthetic data for tests: clustered Gaussian vectors and brute-force ground truth.
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <utility>
#include <vector>

#include "vectorscale/distance/distance.hpp"

namespace vs::test {

/** n vectors of dim dims, drawn around `clusters` random centres (row-major). */
inline std::vector<float> clustered(std::size_t n, std::size_t dims, std::size_t clusters,
                                    std::uint64_t seed, float spread = 0.35f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> centres(clusters * dims);
  for (auto& c : centres) c = g(rng);
  std::vector<float> out(n * dims);
  std::uniform_int_distribution<std::size_t> pick(0, clusters - 1);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = pick(rng);
    for (std::size_t d = 0; d < dims; ++d) out[i * dims + d] = centres[c * dims + d] + spread * g(rng);
  }
  return out;
}

/** One clustered draw of n + nq rows split into (base, queries): same centres for both. */
inline std::pair<std::vector<float>, std::vector<float>> clustered_split(std::size_t n, std::size_t nq,
                                                                         std::size_t dims, std::size_t clusters,
                                                                         std::uint64_t seed,
                                                                         float spread = 0.35f) {
  auto all = clustered(n + nq, dims, clusters, seed, spread);
  std::vector<float> queries(all.begin() + static_cast<std::ptrdiff_t>(n * dims), all.end());
  all.resize(n * dims);
  return {std::move(all), std::move(queries)};
}

/** Uniform random floats in [lo, hi). */
inline std::vector<float> uniform(std::size_t n, std::uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> out(n);
  for (auto& x : out) x = u(rng);
  return out;
}

/** Exact top-k by index_distance (ties by smaller id); cosine inputs must be normalised. */
inline std::vector<std::vector<std::uint32_t>> brute_force_knn(const std::vector<float>& base,
                                                               const std::vector<float>& queries,
                                                               std::size_t dims, std::size_t k,
                                                               distance::Metric metric) {
  const std::size_t n = base.size() / dims, q = queries.size() / dims;
  std::vector<std::vector<std::uint32_t>> out(q);
  std::vector<std::pair<float, std::uint32_t>> d(n);
  for (std::size_t i = 0; i < q; ++i) {
    for (std::size_t j = 0; j < n; ++j)
      d[j] = {distance::index_distance(metric, &queries[i * dims], &base[j * dims], dims),
              static_cast<std::uint32_t>(j)};
    const std::size_t kk = std::min(k, n);
    std::partial_sort(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(kk), d.end());
    for (std::size_t j = 0; j < kk; ++j) out[i].push_back(d[j].second);
  }
  return out;
}

/** Mean recall@k of `found` against `truth`. */
inline double recall_at_k(const std::vector<std::vector<std::uint32_t>>& found,
                          const std::vector<std::vector<std::uint32_t>>& truth, std::size_t k) {
  double hits = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const std::size_t kk = std::min(k, truth[i].size());
    for (std::size_t j = 0; j < std::min(k, found[i].size()); ++j)
      if (std::find(truth[i].begin(), truth[i].begin() + static_cast<std::ptrdiff_t>(kk), found[i][j]) !=
          truth[i].begin() + static_cast<std::ptrdiff_t>(kk))
        hits += 1;
  }
  return hits / static_cast<double>(truth.size() * k);
}

}  // namespace vs::test
