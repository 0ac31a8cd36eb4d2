// Checks shared by the tests of graph builds (the CUDA backend's, on the CPU and on a device).
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

#include "synthetic.hpp"
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

}  // namespace vs::test
