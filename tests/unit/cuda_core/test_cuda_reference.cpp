// The GPU build's algorithm (batched insertion: search, prune, reverse edges; final prune;
// connectivity), run on the CPU by vs::cuda::reference_build_graph: graph invariants, and the
// recall of an index over its graph against common/'s Vamana build of the same data and seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <set>
#include <vector>

#include "graph_checks.hpp"
#include "synthetic.hpp"
#include "vectorscale/core/error.hpp"
#include "vectorscale/cuda/reference.hpp"
#include "vectorscale/distance/distance.hpp"
#include "vectorscale/vamana/index.hpp"

namespace {

using namespace vs;

struct Case {
  distance::Metric metric;
  vamana::Storage storage;
  std::size_t n, dims;
  std::uint32_t R, L;
};

// How ctest names the cases (gtest would print the struct's bytes, padding included).
void PrintTo(const Case& c, std::ostream* os) {
  *os << distance::metric_name(c.metric) << (c.storage == vamana::Storage::kPlain ? " plain " : " sbq ") << c.n << "x"
      << c.dims << " R" << c.R << " L" << c.L;
}

class CudaReference : public ::testing::TestWithParam<Case> {};

TEST_P(CudaReference, GraphIsSoundAndRecallMatchesTheCpuBuild) {
  const Case c = GetParam();
  const std::size_t nq = 400;
  auto [base, queries] = test::clustered_split(c.n, nq, c.dims, 24, 42);
  auto [ip, cpu, stored, truth] =
      test::cpu_baseline(base, queries, c.n, c.dims, c.metric, c.R, c.L, c.storage);

  cuda::GraphBuildStats stats;
  vamana::Graph g = cuda::reference_build_graph(stored.data(), c.n, c.dims, ip.build, {}, 0, {}, &stats);
  test::expect_graph_invariants(g, c.R);
  EXPECT_EQ(stats.capped_searches, 0u);
  EXPECT_GT(stats.batches, 5u);
  Array<std::uint64_t> codes(c.n * (c.storage == vamana::Storage::kMemoryOptimized ? cpu.quantizer().words() : 0));
  if (!codes.empty()) std::copy_n(cpu.code(0), codes.size(), codes.data());
  const auto gpu_style =
      vamana::Index::from_parts(std::move(stored), c.n, c.dims, ip, cpu.quantizer(), std::move(codes), std::move(g));

  const bool sbq = c.storage == vamana::Storage::kMemoryOptimized;
  for (const std::uint32_t L :
       sbq ? std::vector<std::uint32_t>{50, 100, 200} : std::vector<std::uint32_t>{10, 20, 50}) {
    const double r_cpu = test::index_recall(cpu, queries, c.dims, truth, L);
    const double r_gpu = test::index_recall(gpu_style, queries, c.dims, truth, L);
    std::printf("metric %s L %u: recall@10 cpu %.4f, gpu-style %.4f (%zu batches, %llu reverse prunes)\n",
                distance::metric_name(c.metric), L, r_cpu, r_gpu, stats.batches,
                static_cast<unsigned long long>(stats.reverse_prunes));
    EXPECT_GE(r_gpu, r_cpu - 0.005) << "L " << L;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Metrics, CudaReference,
    ::testing::Values(Case{distance::Metric::kL2, vamana::Storage::kPlain, 4000, 32, 16, 40},
                      Case{distance::Metric::kCosine, vamana::Storage::kMemoryOptimized, 4000, 48, 24, 64},
                      Case{distance::Metric::kInnerProduct, vamana::Storage::kMemoryOptimized, 3000, 32, 16, 40},
                      Case{distance::Metric::kL2, vamana::Storage::kMemoryOptimized, 3000, 64, 50, 100}),
    [](const ::testing::TestParamInfo<Case>& i) {
      return std::string(distance::metric_name(i.param.metric)) + "_" +
             (i.param.storage == vamana::Storage::kPlain ? "plain" : "sbq") + "_" + std::to_string(i.param.n) + "x" +
             std::to_string(i.param.dims) + "_R" + std::to_string(i.param.R);
    });

// With batches of one row and no refinement the GPU build's algorithm is common/'s sequential
// Vamana build: on points with small integer coordinates (exact distances on both sides) the
// graphs are identical, list for list and in order.
TEST(CudaReferenceBuild, BatchesOfOneGiveCommonsGraph) {
  for (const auto metric : {distance::Metric::kL2, distance::Metric::kInnerProduct}) {
    const std::size_t n = 1500, dims = 8;
    std::mt19937_64 rng(17);
    std::uniform_int_distribution<int> u(-6, 6);
    std::vector<float> data(n * dims);
    for (auto& x : data) x = static_cast<float>(u(rng));
    vamana::BuildParams p;
    p.metric = metric;
    p.num_neighbors = 12;
    p.search_list_size = 30;
    p.threads = 1;
    cuda::GraphOptions o;
    o.refine_passes = 0;
    o.max_iters_factor = 64;  // never capped, as common/'s search
    const auto want = vamana::build_graph(data.data(), n, dims, p);
    const auto got = cuda::reference_build_graph(data.data(), n, dims, p, o, 1);
    ASSERT_EQ(got.medoid, want.medoid);
    for (std::uint32_t i = 0; i < n; ++i) {
      const auto a = got.neighbors_of(i), b = want.neighbors_of(i);
      ASSERT_TRUE(std::equal(a.begin(), a.end(), b.begin(), b.end())) << "node " << i;
    }
  }
}

TEST(CudaReferenceBuild, TinyInputsAndBatchesOfOne) {
  vamana::BuildParams p;
  p.metric = distance::Metric::kL2;
  p.num_neighbors = 10;
  p.search_list_size = 16;
  for (std::size_t n : {1u, 2u, 3u, 11u, 200u}) {
    const auto data = test::clustered(n, 8, 3, n);
    for (std::size_t batch : {0u, 1u, 5u}) {
      const auto g = cuda::reference_build_graph(data.data(), n, 8, p, {}, batch);
      test::expect_graph_invariants(g, 10);
    }
  }
  // Duplicated points (distance 0 everywhere): lists stay sound. (Reachability is not checked:
  // common/'s connectivity pass gives up after 8 rounds on such data, for the CPU build too.)
  std::vector<float> same(300 * 4, 0.5f);
  const auto g = cuda::reference_build_graph(same.data(), 300, 4, p);
  for (std::uint32_t i = 0; i < g.num_nodes; ++i) {
    const auto nb = g.neighbors_of(i);
    EXPECT_LE(nb.size(), 10u);
    EXPECT_EQ(std::set<std::uint32_t>(nb.begin(), nb.end()).size(), nb.size());
    EXPECT_EQ(std::count(nb.begin(), nb.end(), i), 0);
  }
}

// L2, R 12, L 24: small builds of the tests below.
vamana::BuildParams small_l2_params() {
  vamana::BuildParams p;
  p.num_neighbors = 12;
  p.search_list_size = 24;
  p.metric = distance::Metric::kL2;
  return p;
}

TEST(CudaReferenceBuild, DeterministicAndCancellable) {
  const vamana::BuildParams p = small_l2_params();
  const auto data = test::clustered(1500, 16, 8, 5);
  const auto a = cuda::reference_build_graph(data.data(), 1500, 16, p);
  const auto b = cuda::reference_build_graph(data.data(), 1500, 16, p);
  ASSERT_EQ(a.medoid, b.medoid);
  EXPECT_TRUE(std::equal(a.degrees.begin(), a.degrees.end(), b.degrees.begin(), b.degrees.end()));
  EXPECT_TRUE(std::equal(a.neighbors.begin(), a.neighbors.end(), b.neighbors.begin(), b.neighbors.end()));
  Control control;
  int polls = 0;
  control.cancel = [&] { return ++polls > 3; };
  EXPECT_THROW((void)cuda::reference_build_graph(data.data(), 1500, 16, p, {}, 0, control), vs::Cancelled);
}

// Builds of more than refine_max_rows rows make no refinement pass: half the searches.
TEST(CudaReferenceBuild, LargeBuildsSkipRefinement) {
  const vamana::BuildParams p = small_l2_params();
  const auto data = test::clustered(1500, 16, 8, 5);
  for (const std::size_t most : {std::size_t{0}, std::size_t{1500}, std::size_t{1499}}) {
    cuda::GraphOptions o;
    o.refine_max_rows = most;
    cuda::GraphBuildStats st;
    const auto g = cuda::reference_build_graph(data.data(), 1500, 16, p, o, 0, {}, &st);
    test::expect_graph_invariants(g, 12);
    const std::uint32_t passes = most == 1499 ? 0 : 1;
    EXPECT_EQ(st.refine_passes, passes) << "refine_max_rows " << most;
    const std::size_t insertion_batches = cuda::insertion_batches(1500, 90).size();  // 6% of 1500
    EXPECT_EQ(st.batches, insertion_batches + passes * ((1500 + 89) / 90)) << "refine_max_rows " << most;
  }
}

}  // namespace
