// Checks shared by the tests of graph builds (the CUDA backend's, on the CPU and on a device).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include "synthetic.hpp"
#include "vectorscale/distance/distance.hpp"
#include "vectorscale/vamana/build.hpp"
#include "vectorscale/vamana/index.hpp"

namespace vs::test {

/** Degree <= R, no self loops, no duplicates, ids in range, every node reachable from the medoid. */
inline void expect_graph_invariants(const vamana::Graph& g, std::uint32_t R) {
  ASSERT_LT(g.medoid, g.num_nodes);
  for (std::uint32_t i = 0; i < g.num_nodes; ++i) {
    const auto nb = g.neighbors_of(i);
    ASSERT_LE(nb.size(), R) << "node " << i;
    std::set<std::uint32_t> seen;
    for (const std::uint32_t x : nb) {
      ASSERT_LT(x, g.num_nodes);
      ASSERT_NE(x, i) << "self loop at " << i;
      ASSERT_TRUE(seen.insert(x).second) << "duplicate edge " << i << " -> " << x;
    }
  }
  std::vector<std::uint8_t> reached(g.num_nodes, 0);
  std::vector<std::uint32_t> stack = {g.medoid};
  reached[g.medoid] = 1;
  while (!stack.empty()) {
    const std::uint32_t u = stack.back();
    stack.pop_back();
    for (const std::uint32_t v : g.neighbors_of(u))
      if (!reached[v]) reached[v] = 1, stack.push_back(v);
  }
  for (std::uint32_t i = 0; i < g.num_nodes; ++i) ASSERT_TRUE(reached[i]) << "node " << i << " unreachable";
}

/** Mean recall@10 of `index` over the queries (dims floats each) at query list size L. */
inline double index_recall(const vamana::Index& index, const std::vector<float>& queries, std::size_t dims,
                           const std::vector<std::vector<std::uint32_t>>& truth, std::uint32_t L) {
  vamana::SearchParams sp;
  sp.k = 10;
  sp.search_list_size = L;
  vamana::SearchScratch scratch;
  std::vector<std::vector<std::uint32_t>> found(truth.size());
  for (std::size_t q = 0; q < truth.size(); ++q) index.search(&queries[q * dims], sp, found[q], scratch);
  return recall_at_k(found, truth, 10);
}

/** common/'s CPU build that a CUDA build is measured against, and the inputs they share. */
struct CpuBaseline {
  vamana::IndexParams params;  ///< R, L, metric, storage; one thread (a deterministic graph)
  vamana::Index index;
  /** The index's stored (for cosine: normalised) vectors: what the CUDA builds take, as the backend does. */
  Array<float> stored;
  /** The 10 nearest stored rows of each query (normalised like the index does). */
  std::vector<std::vector<std::uint32_t>> truth;
};

inline CpuBaseline cpu_baseline(const std::vector<float>& base, const std::vector<float>& queries, std::size_t n,
                                std::size_t dims, distance::Metric metric, std::uint32_t R, std::uint32_t L,
                                vamana::Storage storage) {
  vamana::IndexParams ip;
  ip.build.metric = metric;
  ip.build.num_neighbors = R;
  ip.build.search_list_size = L;
  ip.build.threads = 1;
  ip.storage = storage;
  CpuBaseline b{ip, vamana::Index::build(base.data(), n, dims, ip), Array<float>(n * dims), {}};
  std::copy_n(b.index.vector(0), n * dims, b.stored.data());
  std::vector<float> qn = queries;
  if (metric == distance::Metric::kCosine)
    for (std::size_t q = 0; q < qn.size() / dims; ++q) (void)distance::normalize(&qn[q * dims], dims);
  b.truth = brute_force_knn(std::vector<float>(b.stored.data(), b.stored.data() + n * dims), qn, dims, 10, metric);
  return b;
}

}  // namespace vs::test
