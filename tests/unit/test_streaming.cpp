// Streaming greedy search: completeness (every reachable node exactly once, even with L = 2),
// agreement with greedy_search for the first result, and recall of the first k results.
#include <gtest/gtest.h>

#include <set>

#include "synthetic.hpp"
#include "vectorscale/vamana/index.hpp"
#include "vectorscale/vamana/streaming.hpp"

namespace {

using vs::distance::Metric;
using namespace vs::vamana;

struct Fixture {
  std::size_t n = 2000, dims = 24;
  std::vector<float> base, queries;
  Index index;
  Fixture() {
    auto split = vs::test::clustered_split(n, 20, dims, 12, 77, 1.0f);
    base = std::move(split.first);
    queries = std::move(split.second);
    IndexParams ip;
    ip.build.metric = Metric::kL2;
    ip.build.num_neighbors = 16;
    ip.build.search_list_size = 40;
    ip.storage = Storage::kPlain;
    index = Index::build(base.data(), n, dims, ip);
  }
  // Streams from the medoid with window L; returns ids in the order they come out.
  std::vector<std::uint32_t> stream(const float* q, std::size_t L, std::size_t limit) const {
    StreamingSearch<std::uint32_t> s(L);
    EpochVisited visited(n);
    auto dist = [&](std::uint32_t id) { return vs::distance::l2_squared(q, index.vector(id), dims); };
    const std::uint32_t m = index.graph().medoid;
    visited.test_and_set(m);
    s.add_start(m, dist(m));
    std::vector<std::uint32_t> out;
    while (out.size() < limit) {
      auto c = s.next(
          [&](std::uint32_t id, auto&& visit) {
            for (const std::uint32_t x : index.graph().neighbors_of(id)) visit(x);
          },
          dist, visited);
      if (!c) break;
      out.push_back(c->id);
    }
    return out;
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

TEST(StreamingSearch, TinyWindowStillReturnsEveryNodeOnce) {
  const Fixture& f = fixture();
  for (const std::size_t L : {1u, 2u, 100u}) {
    const auto out = f.stream(f.queries.data(), L, f.n + 10);
    ASSERT_EQ(out.size(), f.n) << "L=" << L;
    EXPECT_EQ(std::set<std::uint32_t>(out.begin(), out.end()).size(), f.n) << "L=" << L;
  }
}

TEST(StreamingSearch, FirstResultsMatchRecallOfGreedySearch) {
  const Fixture& f = fixture();
  const std::size_t k = 10, nq = f.queries.size() / f.dims;
  const auto truth = vs::test::brute_force_knn(f.base, f.queries, f.dims, k, Metric::kL2);
  std::vector<std::vector<std::uint32_t>> streamed(nq), greedy(nq);
  SearchScratch scratch;
  SearchParams sp;
  sp.k = k;
  sp.search_list_size = 50;
  for (std::size_t i = 0; i < nq; ++i) {
    streamed[i] = f.stream(&f.queries[i * f.dims], 50, k);
    f.index.search(&f.queries[i * f.dims], sp, greedy[i], scratch);
    EXPECT_EQ(streamed[i].front(), greedy[i].front()) << "query " << i;
  }
  const double r_stream = vs::test::recall_at_k(streamed, truth, k);
  const double r_greedy = vs::test::recall_at_k(greedy, truth, k);
  EXPECT_GE(r_stream, 0.95);
  EXPECT_GE(r_stream, r_greedy - 1e-9);
}

TEST(StreamingSearch, OrderIsNearlySortedByDistance) {
  // Not strictly sorted (it is a graph search), but far rows never come before near ones:
  // the first 10% returned are all among the nearest 25%.
  const Fixture& f = fixture();
  const float* q = f.queries.data();
  const auto out = f.stream(q, 20, f.n);
  std::vector<std::pair<float, std::uint32_t>> d;
  for (std::uint32_t i = 0; i < f.n; ++i) d.emplace_back(vs::distance::l2_squared(q, f.index.vector(i), f.dims), i);
  std::sort(d.begin(), d.end());
  std::set<std::uint32_t> near;
  for (std::size_t i = 0; i < f.n / 4; ++i) near.insert(d[i].second);
  for (std::size_t i = 0; i < f.n / 10; ++i) EXPECT_TRUE(near.count(out[i])) << "position " << i;
}

TEST(SearchList, EvictionAndPopFront) {
  SearchList<std::uint32_t> l(2);
  Candidate<std::uint32_t> ev{};
  bool did = false;
  EXPECT_TRUE(l.insert({3.0f, 3, false}, &ev, &did));
  EXPECT_FALSE(did);
  EXPECT_TRUE(l.insert({1.0f, 1, false}, &ev, &did));
  EXPECT_TRUE(l.insert({2.0f, 2, false}, &ev, &did));
  EXPECT_TRUE(did);
  EXPECT_EQ(ev.id, 3u);
  EXPECT_FALSE(l.insert({5.0f, 5, false}, &ev, &did));
  EXPECT_EQ(l.pop_front().id, 1u);
  EXPECT_EQ(l.size(), 1u);
  EXPECT_EQ(l.next_unexpanded(), 0u);
}

}  // namespace
