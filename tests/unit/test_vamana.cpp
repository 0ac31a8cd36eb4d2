// Vamana: RobustPrune on hand-made cases, graph invariants, recall against brute force,
// determinism, filtered search, cancellation and progress.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <tuple>

#include "synthetic.hpp"
#include "vectorscale/core/error.hpp"
#include "vectorscale/distance/distance.hpp"
#include "vectorscale/vamana/build.hpp"
#include "vectorscale/vamana/index.hpp"
#include "vectorscale/vamana/prune.hpp"

namespace {

using vs::distance::Metric;
using namespace vs::vamana;

// ---- RobustPrune -------------------------------------------------------------------------

// Prunes candidates given by an explicit symmetric distance matrix; row/col 0 is p.
std::vector<std::uint32_t> prune_matrix(const std::vector<std::vector<float>>& m, std::uint32_t R, float alpha,
                                        bool ratio = true,
                                        std::function<bool(std::size_t, std::size_t)> may = nullptr) {
  std::vector<float> to_p;
  for (std::size_t i = 1; i < m.size(); ++i) to_p.push_back(m[0][i]);
  std::vector<std::uint32_t> out;
  std::vector<float> factor;
  robust_prune(
      to_p, R, alpha, ratio, [&](std::size_t i, std::size_t j) { return m[i + 1][j + 1]; },
      [&](std::size_t i, std::size_t j) { return may ? may(i, j) : true; }, out, factor);
  return out;
}

TEST(RobustPrune, AlphaScheduleSteps) {
  EXPECT_EQ(alpha_schedule(1.0f), (std::vector<float>{1.0f}));
  EXPECT_EQ(alpha_schedule(1.2f).size(), 2u);
  EXPECT_EQ(alpha_schedule(1.5f).size(), 3u);  // 1.0, 1.2, 1.4
  EXPECT_FLOAT_EQ(alpha_schedule(1.5f).back(), 1.4f);
  EXPECT_EQ(alpha_schedule(2.0f).size(), 6u);
}

TEST(RobustPrune, KeepsDiverseAndDropsOccluded) {
  // p = origin; a = (1,0), b = (2,0) behind a, c = (-1,0), d = (0,1). Squared L2.
  //            p  a  b  c  d
  const std::vector<std::vector<float>> m = {{0, 1, 4, 1, 1},
                                             {1, 0, 1, 4, 2},
                                             {4, 1, 0, 9, 5},
                                             {1, 4, 9, 0, 2},
                                             {1, 2, 5, 2, 0}};
  // Ties in d(p,.) are ordered as given: a, c, d are kept; b is occluded by a (4/1 > 1.2).
  EXPECT_EQ(prune_matrix(m, 10, 1.2f), (std::vector<std::uint32_t>{0, 2, 3}));
  EXPECT_EQ(prune_matrix(m, 2, 1.2f), (std::vector<std::uint32_t>{0, 2}));
}

TEST(RobustPrune, LargerAlphaAdmitsLongerEdges) {
  // d(p,x) / d(s,x) = 1.1: occluded at alpha 1.0, admitted by the 1.2 step.
  const std::vector<std::vector<float>> m = {{0, 1, 1.1f}, {1, 0, 1.0f}, {1.1f, 1.0f, 0}};
  EXPECT_EQ(prune_matrix(m, 10, 1.0f), (std::vector<std::uint32_t>{0}));
  EXPECT_EQ(prune_matrix(m, 10, 1.2f), (std::vector<std::uint32_t>{0, 1}));
  // Ratio 1.5 stays occluded at 1.2 and is admitted at 1.6 (schedule 1.0 .. 1.6).
  const std::vector<std::vector<float>> m2 = {{0, 1, 1.5f}, {1, 0, 1.0f}, {1.5f, 1.0f, 0}};
  EXPECT_EQ(prune_matrix(m2, 10, 1.2f), (std::vector<std::uint32_t>{0}));
  EXPECT_EQ(prune_matrix(m2, 10, 1.6f), (std::vector<std::uint32_t>{0, 1}));
}

TEST(RobustPrune, LabelAwareOcclusion) {
  // s (index 0) would occlude c (index 1), but may_occlude says s lacks a label c shares with p.
  const std::vector<std::vector<float>> m = {{0, 1, 4}, {1, 0, 1}, {4, 1, 0}};
  EXPECT_EQ(prune_matrix(m, 10, 1.2f), (std::vector<std::uint32_t>{0}));
  EXPECT_EQ(prune_matrix(m, 10, 1.2f, true, [](std::size_t, std::size_t) { return false; }),
            (std::vector<std::uint32_t>{0, 1}));
  // covers_intersection: s must hold every label of (c ∩ p).
  const std::vector<Label> p = {1, 2, 5}, c = {2, 5, 9}, s1 = {2, 5}, s2 = {2}, s3 = {};
  EXPECT_TRUE(covers_intersection(s1, c, p));
  EXPECT_FALSE(covers_intersection(s2, c, p));
  EXPECT_FALSE(covers_intersection(s3, c, p));
  const std::vector<Label> none = {3};
  EXPECT_TRUE(covers_intersection(s3, none, p));  // empty intersection: anyone may occlude
  EXPECT_TRUE(labels_overlap(p, c));
  EXPECT_FALSE(labels_overlap(p, none));
}

TEST(RobustPrune, InnerProductUsesPlainComparison) {
  // Negative distances: s occludes x when d(s,x) < d(p,x), whatever alpha is.
  const std::vector<std::vector<float>> m = {{0, -5, -3}, {-5, 0, -4}, {-3, -4, 0}};
  EXPECT_EQ(prune_matrix(m, 10, 1.2f, false), (std::vector<std::uint32_t>{0}));
  const std::vector<std::vector<float>> m2 = {{0, -5, -3}, {-5, 0, -1}, {-3, -1, 0}};
  EXPECT_EQ(prune_matrix(m2, 10, 1.2f, false), (std::vector<std::uint32_t>{0, 1}));
}

// ---- graph builds -------------------------------------------------------------------------

void expect_invariants(const Graph& g, std::uint32_t R) {
  ASSERT_LT(g.medoid, g.num_nodes);
  std::vector<char> seen(g.num_nodes, 0);
  std::vector<std::uint32_t> stack{g.medoid};
  seen[g.medoid] = 1;
  for (std::uint32_t i = 0; i < g.num_nodes; ++i) {
    const auto nb = g.neighbors_of(i);
    ASSERT_LE(nb.size(), R) << "node " << i;
    std::set<std::uint32_t> uniq(nb.begin(), nb.end());
    ASSERT_EQ(uniq.size(), nb.size()) << "duplicate edge at node " << i;
    ASSERT_EQ(uniq.count(i), 0u) << "self-loop at node " << i;
    for (const auto x : nb) ASSERT_LT(x, g.num_nodes);
  }
  while (!stack.empty()) {
    const auto u = stack.back();
    stack.pop_back();
    for (const auto v : g.neighbors_of(u))
      if (!seen[v]) {
        seen[v] = 1;
        stack.push_back(v);
      }
  }
  for (std::uint32_t i = 0; i < g.num_nodes; ++i) ASSERT_TRUE(seen[i]) << "node " << i << " unreachable";
}

// The connectivity pass on a graph of one large component (its breadth-first levels are big
// enough to be spread over threads), small islands and isolated nodes: every node reachable
// afterwards, lists within R, and the same graph whatever the number of threads.
TEST(Vamana, LinkUnreachableJoinsEveryNodeWhateverTheThreads) {
  const std::uint32_t big = 40000, islands = 30, island = 7, isolated = 25, R = 8;
  const std::uint32_t n = big + islands * island + isolated;
  const std::size_t dims = 6;
  const auto vectors = vs::test::clustered(n, dims, 5, 23);
  // The same graph for each run (the pass changes it).
  auto make_graph = [&] {
    Graph g;
    g.num_nodes = n;
    g.stride = R;
    g.neighbors = vs::Array<std::uint32_t>(std::size_t{n} * R);
    g.degrees = vs::Array<std::uint32_t>(n);
    g.medoid = 0;
    std::mt19937_64 rng(8);
    auto link = [&](std::uint32_t from, std::uint32_t to) {
      auto* slots = g.neighbors.data() + std::size_t{from} * R;
      if (from == to || g.degrees[from] >= R - 2 ||
          std::find(slots, slots + g.degrees[from], to) != slots + g.degrees[from])
        return;
      slots[g.degrees[from]++] = to;
    };
    for (std::uint32_t i = 0; i < big; ++i)
      for (int k = 0; k < 6; ++k) link(i, static_cast<std::uint32_t>(rng() % big));
    for (std::uint32_t c = 0; c < islands; ++c)
      for (std::uint32_t i = 0; i < island; ++i) link(big + c * island + i, big + c * island + (i + 1) % island);
    return g;
  };
  BuildParams p;
  p.num_neighbors = R;
  p.search_list_size = 20;
  std::vector<std::pair<std::vector<std::uint32_t>, std::uint32_t>> results;
  for (const std::uint32_t threads : {1u, 4u}) {
    Graph h = make_graph();
    p.threads = threads;
    const std::uint32_t repaired = link_unreachable(h, vectors.data(), dims, p);
    EXPECT_GE(repaired, islands + isolated);  // one per island at least, and each isolated node
    expect_invariants(h, R);
    std::vector<std::uint32_t> lists;
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto nb = h.neighbors_of(i);
      lists.push_back(static_cast<std::uint32_t>(nb.size()));
      lists.insert(lists.end(), nb.begin(), nb.end());
    }
    results.emplace_back(std::move(lists), repaired);
  }
  EXPECT_EQ(results[0], results[1]);
}

struct BuildCase {
  Metric metric;
  std::uint32_t R, L;
  float alpha;
  std::uint32_t threads;
};

class VamanaBuild : public ::testing::TestWithParam<BuildCase> {};

TEST_P(VamanaBuild, InvariantsAndRecall) {
  const auto c = GetParam();
  const std::size_t n = 4000, dims = 24, nq = 100;
  auto [base, queries] = vs::test::clustered_split(n, nq, dims, 40, 42);
  IndexParams ip;
  ip.build.metric = c.metric;
  ip.build.num_neighbors = c.R;
  ip.build.search_list_size = c.L;
  ip.build.max_alpha = c.alpha;
  ip.build.threads = c.threads;
  ip.storage = Storage::kPlain;
  BuildStats stats;
  const Index index = Index::build(base.data(), n, dims, ip, nullptr, {}, &stats);
  expect_invariants(index.graph(), c.R);

  // Ground truth over the index's own stored vectors (normalised for cosine).
  std::vector<float> stored(n * dims), qs(queries);
  for (std::uint32_t i = 0; i < n; ++i) std::copy_n(index.vector(i), dims, &stored[i * dims]);
  if (c.metric == Metric::kCosine)
    for (std::size_t i = 0; i < nq; ++i) (void)vs::distance::normalize(&qs[i * dims], dims);
  const auto truth = vs::test::brute_force_knn(stored, qs, dims, 10, c.metric);
  SearchScratch s;
  std::vector<std::vector<std::uint32_t>> found(nq);
  SearchParams sp;
  sp.search_list_size = 64;
  for (std::size_t i = 0; i < nq; ++i) index.search(&queries[i * dims], sp, found[i], s);
  const double recall = vs::test::recall_at_k(found, truth, 10);
  // A greedy search over a well-pruned graph finds nearly all; a broken prune, search or
  // reverse-edge step costs far more than the 3 points of slack here.
  EXPECT_GE(recall, 0.97) << "recall@10 at L=64";
  // Far fewer distance computations than brute force: the graph is navigable, not a scan.
  EXPECT_LT(static_cast<double>(s.distance_computations) / nq, 0.5 * n);
}

INSTANTIATE_TEST_SUITE_P(
    Params, VamanaBuild,
    ::testing::Values(BuildCase{Metric::kL2, 32, 64, 1.2f, 1}, BuildCase{Metric::kL2, 16, 50, 1.2f, 2},
                      BuildCase{Metric::kCosine, 32, 64, 1.2f, 3}, BuildCase{Metric::kL2, 24, 100, 1.4f, 4},
                      BuildCase{Metric::kInnerProduct, 32, 64, 1.2f, 2}),
    [](const auto& info) {
      const auto& c = info.param;
      return std::string(vs::distance::metric_name(c.metric)) + "_R" + std::to_string(c.R) + "_L" +
             std::to_string(c.L) + "_a" + std::to_string(static_cast<int>(c.alpha * 10)) + "_t" +
             std::to_string(c.threads);
    });

TEST(Vamana, SbqTraversalWithRescoringReachesHighRecall) {
  // SBQ codes resolve a dimension into 3 buckets of the global spread, so they cannot rank
  // rows inside a tight cluster; real embeddings (and this data) spread within clusters too.
  const std::size_t n = 3000, dims = 128, nq = 100;
  const auto [base, queries] = vs::test::clustered_split(n, nq, dims, 30, 5, 1.0f);
  IndexParams ip;
  ip.build.metric = Metric::kL2;
  ip.build.num_neighbors = 32;
  ip.storage = Storage::kMemoryOptimized;  // 2 bits by default below 900 dims
  const Index index = Index::build(base.data(), n, dims, ip);
  EXPECT_EQ(index.quantizer().bits(), 2u);
  const auto truth = vs::test::brute_force_knn(base, queries, dims, 10, Metric::kL2);
  SearchScratch s;
  std::vector<std::vector<std::uint32_t>> with(nq), without(nq);
  SearchParams sp;
  sp.search_list_size = 150;
  sp.rescore = 150;
  for (std::size_t i = 0; i < nq; ++i) index.search(&queries[i * dims], sp, with[i], s);
  sp.rescore = 0;
  for (std::size_t i = 0; i < nq; ++i) index.search(&queries[i * dims], sp, without[i], s);
  const double r_with = vs::test::recall_at_k(with, truth, 10);
  const double r_without = vs::test::recall_at_k(without, truth, 10);
  EXPECT_GE(r_with, 0.95);
  EXPECT_GT(r_with, r_without + 0.05) << "rescoring must matter: SBQ alone is approximate";
}

TEST(Vamana, DeterministicWithOneThreadAndSeed) {
  const std::size_t n = 1500, dims = 16;
  const auto base = vs::test::clustered(n, dims, 10, 9);
  BuildParams p;
  p.metric = Metric::kL2;
  p.num_neighbors = 16;
  p.threads = 1;
  const Graph a = build_graph(base.data(), n, dims, p);
  const Graph b = build_graph(base.data(), n, dims, p);
  ASSERT_EQ(a.medoid, b.medoid);
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto x = a.neighbors_of(i), y = b.neighbors_of(i);
    ASSERT_TRUE(std::equal(x.begin(), x.end(), y.begin(), y.end())) << "node " << i;
  }
  p.seed = 12345;
  const Graph c = build_graph(base.data(), n, dims, p);
  std::size_t differing = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    const auto x = a.neighbors_of(i), y = c.neighbors_of(i);
    differing += !std::equal(x.begin(), x.end(), y.begin(), y.end());
  }
  EXPECT_GT(differing, n / 10) << "the seed must change the insertion order";
}

// Normalisation and SBQ codes run on the build's threads, row by row: the stored vectors and
// codes are the one-thread build's, bit for bit, whatever the number of threads.
TEST(Vamana, VectorsAndCodesDoNotDependOnThreads) {
  const std::size_t n = 2 * vs::sbq::Quantizer::kTrainBlockRows + 809, dims = 40;  // SBQ trains on 2 groups
  const auto base = vs::test::clustered(n, dims, 10, 13);
  IndexParams ip;
  ip.build.metric = Metric::kCosine;
  ip.build.num_neighbors = 12;
  ip.build.search_list_size = 24;
  ip.storage = Storage::kMemoryOptimized;
  ip.bits_per_dim = 2;
  ip.build.threads = 1;
  const Index one = Index::build(base.data(), n, dims, ip);
  ip.build.threads = 3;
  const Index three = Index::build(base.data(), n, dims, ip);
  ASSERT_EQ(one.quantizer().words(), three.quantizer().words());
  EXPECT_EQ(one.quantizer().stream(), three.quantizer().stream());
  EXPECT_EQ(std::memcmp(one.vector(0), three.vector(0), n * dims * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(one.code(0), three.code(0), n * one.quantizer().words() * sizeof(std::uint64_t)), 0);
  EXPECT_NEAR(vs::distance::dot(one.vector(n - 1), one.vector(n - 1), dims), 1.0f, 1e-5f);  // normalised
}

TEST(Vamana, MedoidIsNearestToCentroid) {
  const std::vector<float> v = {0, 0, 10, 10, 4, 6, 9, 0};  // centroid (5.75, 4)
  EXPECT_EQ(medoid(v.data(), 4, 2), 2u);
  const std::vector<std::uint32_t> members = {0, 1, 3};  // centroid (6.33, 3.33)
  EXPECT_EQ(medoid(v.data(), 4, 2, members), 3u);
}

TEST(Vamana, TinyInputs) {
  BuildParams p;
  p.metric = Metric::kL2;
  p.num_neighbors = 10;
  const Graph empty = build_graph(nullptr, 0, 4, p);
  EXPECT_EQ(empty.num_nodes, 0u);
  EXPECT_EQ(empty.medoid, kNoNode);
  const std::vector<float> one = {1, 2, 3, 4};
  const Graph g1 = build_graph(one.data(), 1, 4, p);
  EXPECT_EQ(g1.medoid, 0u);
  EXPECT_EQ(g1.degrees[0], 0u);
  const std::vector<float> dup(40, 1.0f);  // ten identical vectors
  const Graph g10 = build_graph(dup.data(), 10, 4, p);
  expect_invariants(g10, 10);
}

TEST(Vamana, RejectsBadParameters) {
  BuildParams p;
  p.num_neighbors = 9;
  EXPECT_THROW(check(p), vs::Error);
  p = {};
  p.max_alpha = 0.9f;
  EXPECT_THROW(check(p), vs::Error);
  p = {};
  p.threads = 0;
  EXPECT_THROW(check(p), vs::Error);
  p = {};
  p.search_list_size = 0;
  EXPECT_THROW(check(p), vs::Error);
  EXPECT_NO_THROW(check(BuildParams{}));
}

TEST(Vamana, FilteredSearchReturnsOnlyMatchingRowsWithHighRecall) {
  const std::size_t n = 4000, dims = 16, nq = 60;
  const auto [base, queries] = vs::test::clustered_split(n, nq, dims, 20, 31);
  LabelSets labels;
  std::mt19937 rng(3);
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<Label> l = {static_cast<Label>(rng() % 10)};  // 10 labels, ~10% each
    if (rng() % 4 == 0) l.push_back(static_cast<Label>(100 + rng() % 3));
    labels.push_back(l);
  }
  IndexParams ip;
  ip.build.metric = Metric::kL2;
  ip.build.num_neighbors = 24;
  ip.build.threads = 2;
  ip.storage = Storage::kPlain;
  const Index index = Index::build(base.data(), n, dims, ip, &labels);
  expect_invariants(index.graph(), 24);
  EXPECT_EQ(index.graph().label_starts.size(), 13u);

  double hits = 0, total = 0;
  SearchScratch s;
  for (std::size_t qi = 0; qi < nq; ++qi) {
    const Label want = static_cast<Label>(qi % 10);
    const std::vector<Label> filter = {want};
    SearchParams sp;
    sp.labels = filter;
    sp.search_list_size = 100;
    std::vector<std::uint32_t> out;
    index.search(&queries[qi * dims], sp, out, s);
    // Exact filtered top-10.
    std::vector<std::pair<float, std::uint32_t>> all;
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto li = labels.of(i);
      if (std::find(li.begin(), li.end(), want) == li.end()) continue;
      all.emplace_back(vs::distance::l2_squared(&queries[qi * dims], &base[i * dims], dims), i);
    }
    std::sort(all.begin(), all.end());
    ASSERT_EQ(out.size(), 10u);
    for (const auto id : out) {
      const auto li = labels.of(id);
      ASSERT_NE(std::find(li.begin(), li.end(), want), li.end()) << "row without the label returned";
      for (std::size_t j = 0; j < 10; ++j) hits += all[j].second == id;
    }
    total += 10;
  }
  EXPECT_GE(hits / total, 0.95) << "filtered recall@10";
  // A label no row carries gives nothing.
  const std::vector<Label> missing = {77};
  SearchParams sp;
  sp.labels = missing;
  std::vector<std::uint32_t> out;
  index.search(queries.data(), sp, out, s);
  EXPECT_TRUE(out.empty());
}

TEST(Vamana, CancelStopsAllWorkersAndProgressIsReported) {
  const std::size_t n = 20000, dims = 32;
  const auto base = vs::test::clustered(n, dims, 20, 8);
  BuildParams p;
  p.metric = Metric::kL2;
  p.num_neighbors = 16;
  p.threads = 3;
  std::atomic<int> polls{0};
  vs::Control control;
  control.cancel = [&] { return ++polls > 2; };
  EXPECT_THROW((void)build_graph(base.data(), n, dims, p, nullptr, control), vs::Cancelled);

  // Per phase: done only grows, never exceeds total, and the phase ends at done == total.
  std::map<std::uint32_t, std::uint64_t> last;
  std::uint32_t phase_seen = 0;
  bool ordered = true;
  vs::Control watch;
  watch.progress = [&](std::uint32_t phase, std::uint64_t done, std::uint64_t total) {
    ordered = ordered && phase >= phase_seen && total == 3000 && done <= total && done >= last[phase];
    phase_seen = phase;
    last[phase] = done;
  };
  (void)build_graph(base.data(), 3000, dims, p, nullptr, watch);
  EXPECT_TRUE(ordered);
  EXPECT_EQ(last[kPhaseInsert], 3000u);
  EXPECT_EQ(last[kPhasePrune], 3000u);
}

TEST(Vamana, MemoryEstimateCountsEveryPart) {
  BuildParams p;
  p.num_neighbors = 50;
  p.threads = 2;
  const auto m = estimate_build_memory(1000000, 768, p, 1, 0.0);
  EXPECT_EQ(m.vectors, 1000000ull * 768 * 4);
  EXPECT_EQ(m.codes, 1000000ull * 12 * 8);
  EXPECT_GE(m.graph, 1000000ull * 65 * 4);
  EXPECT_EQ(m.total(), m.vectors + m.graph + m.codes + m.labels + m.scratch);
  const auto plain = estimate_build_memory(1000000, 768, p, 0);
  EXPECT_EQ(plain.codes, 0u);
  const auto half = estimate_build_memory(500000, 768, p, 1);
  EXPECT_LT(half.total(), m.total());
}

}  // namespace
