// The GPU build (vs::cuda::build_on_device) on a CUDA device (ctest label `gpu`); every test
// skips with the runtime's reason where no device exists.
//  - SBQ statistics and codes against common/'s quantizer;
//  - on points with small integer coordinates (every distance exact in float on both sides)
//    the device graph is the CPU reference's graph, list for list, also out of core (vectors in
//    mapped host memory, tiny batches and upload chunks);
//  - on clustered data: graph invariants, and recall@10 of an index over the GPU graph within
//    0.5 points of common/'s CPU build of the same data and seed, for all three metrics.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <vector>

#include "gpu_test_sizes.hpp"
#include "graph_checks.hpp"
#include "synthetic.hpp"
#include "vectorscale/core/error.hpp"
#include "vectorscale/cuda/core/search.hpp"
#include "vectorscale/cuda/device_build.hpp"
#include "vectorscale/cuda/reference.hpp"
#include "vectorscale/distance/distance.hpp"
#include "vectorscale/vamana/index.hpp"

namespace {

using namespace vs;

// The device to test on, or skip.
#define REQUIRE_DEVICE(choice)                               \
  const cuda::DeviceChoice choice = cuda::choose_device(-1); \
  if (choice.device < 0) {                                   \
    GTEST_SKIP() << "no CUDA device: " << choice.reason;     \
  }

// Rows with small integer coordinates, as +v / -v pairs: every dot product and distance is exact
// in float whatever the order of summation, and the centroid is exactly 0, so that the device
// and the CPU agree on every comparison, the medoid included.
std::vector<float> exact_points(std::size_t n, std::size_t dims, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> u(-5, 5);
  std::vector<float> out(n * dims);
  for (std::size_t i = 0; i + 1 < n; i += 2)
    for (std::size_t d = 0; d < dims; ++d) {
      out[i * dims + d] = static_cast<float>(u(rng));
      out[(i + 1) * dims + d] = -out[i * dims + d];
    }
  return out;  // an odd n leaves the zero vector last
}

void expect_same_graph(const vamana::Graph& got, const vamana::Graph& want) {
  ASSERT_EQ(got.num_nodes, want.num_nodes);
  ASSERT_EQ(got.medoid, want.medoid);
  std::size_t differ = 0, first = 0;
  for (std::uint32_t i = 0; i < got.num_nodes; ++i) {
    const auto a = got.neighbors_of(i), b = want.neighbors_of(i);
    if (!std::equal(a.begin(), a.end(), b.begin(), b.end()) && differ++ == 0) first = i;
  }
  EXPECT_EQ(differ, 0u) << "lists differ from the CPU reference, the first at node " << first;
}

// Every prune went through exactly one Gram sub-batch: one per row per insertion or refinement
// pass, plus the reverse-edge and final prunes; and sorting by count never adds work. The
// device times of the graph phase: every kind of work that each batch runs took time, and
// together no more than the phase's wall clock.
void expect_gram_work(const cuda::DeviceBuildResult& r, std::size_t n, std::uint32_t refine_passes) {
  EXPECT_EQ(r.stats.refine_passes, refine_passes);
  EXPECT_EQ(r.gram.items, n * (1 + refine_passes) + r.stats.reverse_prunes + r.stats.final_prunes);
  EXPECT_GE(r.gram.sub_batches, r.gram.groups);
  EXPECT_LE(r.gram.flops, r.gram.flops_unbucketed);
  EXPECT_LE(r.gram.row_bytes, r.gram.row_bytes_unbucketed);
  const cuda::DeviceKernelTimes& k = r.times.device;
  for (const double t : {k.search, k.order, k.gather, k.gemm, k.prune, k.reverse}) EXPECT_GT(t, 0.0);
  if (refine_passes > 0) {
    EXPECT_GT(k.candidates, 0.0);  // every refined row's candidate list
  }
  const double sum = k.search + k.candidates + k.order + k.gather + k.gemm + k.prune + k.reverse + k.host;
  EXPECT_LE(sum, 1.05 * (r.times.insert + r.times.prune) + 1e-3);
  EXPECT_GT(r.stats.expansions, 0u);
  EXPECT_LE(r.stats.expansions, r.stats.distance_computations);  // only nodes with a distance are expanded
}

cuda::DeviceBuildOptions options_on(int device) {
  cuda::DeviceBuildOptions o;
  o.device = device;
  return o;
}

TEST(CudaBuild, SbqStatisticsAndCodesAreCommonsQuantizer) {
  REQUIRE_DEVICE(dev);
  for (const std::uint32_t bits : {1u, 2u, 4u}) {
    for (const std::size_t dims : {96u, 768u}) {
      const std::size_t n = test::gpu_rows(5000, 1000);
      const auto data = test::clustered(n, dims, 16, 7 + bits);
      vamana::IndexParams ip;
      ip.build.metric = distance::Metric::kL2;
      ip.build.num_neighbors = 16;
      ip.build.search_list_size = 32;
      ip.bits_per_dim = bits;
      const auto r = cuda::build_on_device(data.data(), n, dims, ip, {}, options_on(dev.device));
      const auto cpu = sbq::Quantizer::train(data.data(), n, dims, bits);
      ASSERT_EQ(r.quantizer.bits(), bits);
      for (std::size_t d = 0; d < dims; ++d) {
        EXPECT_NEAR(r.quantizer.mean()[d], cpu.mean()[d], 1e-5f * (1.0f + std::fabs(cpu.mean()[d])));
        if (bits > 1) {
          EXPECT_NEAR(r.quantizer.stddev()[d], cpu.stddev()[d], 1e-5f * cpu.stddev()[d]);
        }
      }
      // The device's codes are its quantizer's codes, bit for bit.
      std::vector<std::uint64_t> want(r.quantizer.words());
      for (std::size_t i = 0; i < n; ++i) {
        r.quantizer.encode(&data[i * dims], want.data());
        ASSERT_TRUE(std::equal(want.begin(), want.end(), r.codes.data() + i * want.size()))
            << "bits " << bits << " dims " << dims << " row " << i;
      }
      // The medoid is the row nearest the centroid (up to float rounding of near ties).
      const std::uint32_t m = vamana::medoid(data.data(), n, dims);
      std::vector<float> centroid(dims, 0.0f);
      for (std::size_t d = 0; d < dims; ++d) centroid[d] = r.quantizer.mean()[d];
      const float dm = distance::l2_squared(centroid.data(), &data[m * dims], dims);
      const float dg = distance::l2_squared(centroid.data(), &data[r.graph.medoid * dims], dims);
      EXPECT_NEAR(dg, dm, 1e-4f * (1.0f + dm));
    }
  }
}

// Small integers are exact in bfloat16 too, so both precisions of the graph phase
// (GraphOptions::bf16_vectors) must give the reference graph. Rows of 16 bfloat16 or 12 float
// values are whole 16-byte chunks: the kernels' wide loads (OutOfCoreTinyTiles reads rows an
// element at a time). The searches read their query from shared memory, in whole chunks too
// (OutOfCoreTinyTiles: from global memory).
TEST(CudaBuild, GraphIsTheCpuReferenceOnExactData) {
  REQUIRE_DEVICE(dev);
  for (const auto metric : {distance::Metric::kL2, distance::Metric::kInnerProduct}) {
    for (const std::uint32_t refine : {0u, 1u}) {
      SCOPED_TRACE(::testing::Message() << "metric " << distance::metric_name(metric) << " refine " << refine);
      const std::size_t n = test::gpu_rows(6001, 1501), dims = refine == 0 ? 16 : 12;
      const auto data = exact_points(n, dims, 3 + refine);
      vamana::IndexParams ip;
      ip.build.metric = metric;
      ip.build.num_neighbors = 16;
      ip.build.search_list_size = 40;
      ip.storage = vamana::Storage::kPlain;
      auto o = options_on(dev.device);
      o.graph.refine_passes = refine;
      o.graph.bf16_vectors = refine == 0;  // each metric once with either precision
      o.graph.search_full_occupancy = metric == distance::Metric::kL2;  // both search kernels
      const auto r = cuda::build_on_device(data.data(), n, dims, ip, {}, o);
      int major = 0;
      ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev.device), cudaSuccess);
      EXPECT_EQ(r.bf16_vectors, o.graph.bf16_vectors && major >= 8);
      // 4,096 shared visited slots fit any block; for 16 blocks an SM (a 228 KiB SM's 16th, less
      // 1 KiB per block) the full-occupancy kernel gets 2,048 (L 40, R 16: 9 KiB in all).
      EXPECT_EQ(r.local_visited_slots, o.graph.search_full_occupancy ? 2048u : 4096u);
      EXPECT_TRUE(r.query_in_shared);
      test::expect_graph_invariants(r.graph, 16);
      expect_gram_work(r, n, refine);
      cuda::GraphBuildStats st;
      const auto want =
          cuda::reference_build_graph(data.data(), n, dims, ip.build, o.graph, r.plan.search_batch, {}, &st);
      expect_same_graph(r.graph, want);
      // The same searches: the device's counters are the reference's.
      EXPECT_EQ(r.stats.expansions, st.expansions);
      EXPECT_EQ(r.stats.distance_computations, st.distance_computations);
      EXPECT_EQ(r.stats.capped_searches, st.capped_searches);
    }
  }
}

// The out-of-core paths on small data: vectors left in mapped host memory, batches of 7 rows,
// prune groups of 3 nodes (Gram buffers for 3 items of max_candidates, more of shorter lists);
// training from mapped host memory with the graph phase's bfloat16 copy on the device (on
// devices with BF16 GEMMs); and resident vectors uploaded in many small chunks; a refinement
// pass, so that every kernel runs. Same graph as the reference with the same batches. Rows of
// 22 values are not whole 16-byte chunks: the kernels read them an element at a time, and the
// searches read their query from global memory. Team-shared visited tables of 16 slots: every
// search spills into its global table, which it must leave empty for the next.
TEST(CudaBuild, OutOfCoreTinyTilesGiveTheReferenceGraph) {
  REQUIRE_DEVICE(dev);
  const std::size_t n = test::gpu_rows(3001, 1201), dims = 22;
  const auto data = exact_points(n, dims, 11);
  vamana::IndexParams ip;
  ip.build.metric = distance::Metric::kL2;
  ip.build.num_neighbors = 12;
  ip.build.search_list_size = 24;
  ip.bits_per_dim = 2;
  int major = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev.device), cudaSuccess);
  enum class Vectors { kMapped, kMappedTraining, kResident };
  for (const Vectors where : {Vectors::kMapped, Vectors::kMappedTraining, Vectors::kResident}) {
    SCOPED_TRACE(::testing::Message() << "vectors " << static_cast<int>(where));
    auto o = options_on(dev.device);
    o.limits.force_mapped = where == Vectors::kMapped;
    o.limits.force_mapped_training = where == Vectors::kMappedTraining;
    o.limits.search_batch = 7;
    o.limits.prune_batch = 3;
    o.limits.upload_rows = 256;
    o.graph.refine_passes = 1;
    o.graph.local_visited_slots = cuda::core::kLocalProbes;
    o.graph.search_query_in_shared = false;
    const auto r = cuda::build_on_device(data.data(), n, dims, ip, {}, o);
    EXPECT_EQ(r.plan.resident, where == Vectors::kResident);
    EXPECT_FALSE(r.query_in_shared);
    // Mapped host vectors stay float; the others get their bfloat16 copy where the device can use it.
    EXPECT_EQ(r.bf16_vectors, where != Vectors::kMapped && major >= 8);
    EXPECT_EQ(r.plan.bf16_graph, r.bf16_vectors);
    EXPECT_EQ(r.plan.search_batch, 7u);
    EXPECT_EQ(r.plan.prune_batch, 3u);
    EXPECT_EQ(r.plan.upload_rows, 256u);
    // 2n searches (a refinement pass); all but the first few on the young graph see more than 16 nodes.
    EXPECT_GT(r.stats.spilled_searches, static_cast<std::uint64_t>(n) * 19 / 10);
    EXPECT_LE(r.stats.spilled_searches, static_cast<std::uint64_t>(n) * 2);
    test::expect_graph_invariants(r.graph, 12);
    expect_gram_work(r, n, o.graph.refine_passes);
    expect_same_graph(r.graph, cuda::reference_build_graph(data.data(), n, dims, ip.build, o.graph, 7));
    const auto cpu = sbq::Quantizer::train(data.data(), n, dims, 2);
    for (std::size_t d = 0; d < dims; ++d) EXPECT_NEAR(r.quantizer.stddev()[d], cpu.stddev()[d], 1e-5f);
  }
}

TEST(CudaBuild, TooLittleDeviceMemoryIsAClearOutOfMemoryError) {
  REQUIRE_DEVICE(dev);
  const auto data = test::clustered(2000, 32, 4, 1);
  vamana::IndexParams ip;
  auto o = options_on(dev.device);
  o.limits.budget = 1 << 20;  // 1 MiB: not even the graph fits
  try {
    (void)cuda::build_on_device(data.data(), 2000, 32, ip, {}, o);
    FAIL() << "expected an error";
  } catch (const vs::Error& e) {
    EXPECT_EQ(e.code(), vs::ErrorCode::kOutOfMemory) << e.what();
  }
}

TEST(CudaBuild, CancelStopsTheBuild) {
  REQUIRE_DEVICE(dev);
  const auto data = test::clustered(20000, 32, 8, 2);
  vamana::IndexParams ip;
  Control control;
  int polls = 0;
  control.cancel = [&] { return ++polls > 5; };
  EXPECT_THROW((void)cuda::build_on_device(data.data(), 20000, 32, ip, control, options_on(dev.device)), vs::Cancelled);
  // The device is still usable afterwards.
  const std::size_t n = test::gpu_rows(2000, 1000);
  const auto r = cuda::build_on_device(data.data(), n, 32, ip, {}, options_on(dev.device));
  test::expect_graph_invariants(r.graph, ip.build.num_neighbors);
}

struct RecallCase {
  distance::Metric metric;
  std::size_t n, dims;
  std::uint32_t R, L;
};

// How ctest names the cases (gtest would print the struct's bytes, padding included).
void PrintTo(const RecallCase& c, std::ostream* os) {
  *os << distance::metric_name(c.metric) << " " << c.n << "x" << c.dims << " R" << c.R << " L" << c.L;
}

class CudaRecall : public ::testing::TestWithParam<RecallCase> {};

TEST_P(CudaRecall, WithinHalfAPointOfTheCpuBuild) {
  REQUIRE_DEVICE(dev);
  const RecallCase c = GetParam();
  const std::size_t nq = 1000;
  auto [base, queries] = test::clustered_split(c.n, nq, c.dims, 64, 99);
  // Plain storage: graph quality alone; SBQ adds the same error to both.
  auto [ip, cpu, stored, truth] =
      test::cpu_baseline(base, queries, c.n, c.dims, c.metric, c.R, c.L, vamana::Storage::kPlain);

  auto r = cuda::build_on_device(stored.data(), c.n, c.dims, ip, {}, options_on(dev.device));
  test::expect_graph_invariants(r.graph, c.R);
  std::printf("%s %zu x %zu: train %.3f s, insert %.3f s, prune %.3f s, connect %.3f s; %s; %s\n",
              distance::metric_name(c.metric), c.n, c.dims, r.times.train, r.times.insert, r.times.prune,
              r.times.connect, r.plan.describe().c_str(), r.gram.describe().c_str());
  const cuda::DeviceKernelTimes& k = r.times.device;
  const double searches = static_cast<double>(c.n) * (1 + r.stats.refine_passes);
  std::printf(
      "  device: search %.3f s, candidates %.3f s, order %.3f s, gather %.3f s, gemm %.3f s, prune %.3f s, "
      "reverse %.3f s, waiting for the host %.3f s; %.0f distances and %.1f expansions a search, %llu "
      "searches past the shared visited table\n",
      k.search, k.candidates, k.order, k.gather, k.gemm, k.prune, k.reverse, k.host,
      static_cast<double>(r.stats.distance_computations) / searches, static_cast<double>(r.stats.expansions) / searches,
      static_cast<unsigned long long>(r.stats.spilled_searches));
  expect_gram_work(r, c.n, cuda::GraphOptions{}.refine_passes);  // these sizes refine (refine_max_rows)
  const auto gpu = vamana::Index::from_parts(std::move(stored), c.n, c.dims, ip, {}, {}, std::move(r.graph));

  for (const std::uint32_t L : {10u, 20u, 50u, 100u}) {
    const double r_cpu = test::index_recall(cpu, queries, c.dims, truth, L),
                 r_gpu = test::index_recall(gpu, queries, c.dims, truth, L);
    std::printf("  L %3u: recall@10 cpu %.4f gpu %.4f\n", L, r_cpu, r_gpu);
    EXPECT_GE(r_gpu, r_cpu - 0.005) << "L " << L;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Metrics, CudaRecall,
    ::testing::Values(RecallCase{distance::Metric::kL2, test::gpu_rows(20000, 4000), 96, 32, 64},
                      RecallCase{distance::Metric::kCosine, test::gpu_rows(20000, 4000), 96, 32, 64},
                      RecallCase{distance::Metric::kInnerProduct, test::gpu_rows(20000, 4000), 96, 32, 64},
                      RecallCase{distance::Metric::kCosine, test::gpu_rows(5000, 1500), 768, 50, 100},
                      RecallCase{distance::Metric::kL2, test::gpu_rows(5000, 1500), 768, 50, 100}),
    [](const ::testing::TestParamInfo<RecallCase>& i) {
      return std::string(distance::metric_name(i.param.metric)) + "_" + std::to_string(i.param.n) + "x" +
             std::to_string(i.param.dims);
    });

}  // namespace
