// Host passes of every build that run on the build's threads: SBQ training
// (sbq::Quantizer::train, 262,144 x 768 rows, 2 bits) and the connectivity pass
// (vamana::link_unreachable, a random graph of 1M nodes x 50 neighbours, all reachable, so the
// time is the breadth-first marking). Names: BM_sbq_train/threads:T, BM_link_unreachable/threads:T.
// Part of vs_bench_kernels; run them alone with --benchmark_filter='sbq_train|link_unreachable'.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "synthetic.hpp"
#include "vectorscale/sbq/sbq.hpp"
#include "vectorscale/vamana/build.hpp"

namespace {

constexpr std::size_t kTrainRows = 262144, kTrainDims = 768;
constexpr std::uint32_t kGraphNodes = 1000000, kDegree = 50, kStride = 65;

const std::vector<float>& train_rows() {
  static const std::vector<float> rows = vs::test::uniform(kTrainRows * kTrainDims, 7);
  return rows;
}

void BM_sbq_train(benchmark::State& state) {
  const auto& rows = train_rows();
  const auto threads = static_cast<std::size_t>(state.range(0));
  for (auto _ : state)
    benchmark::DoNotOptimize(vs::sbq::Quantizer::train(rows.data(), kTrainRows, kTrainDims, 2, threads));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kTrainRows));
}
BENCHMARK(BM_sbq_train)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

// The graph of one run (the pass may add edges, so each iteration gets a fresh copy).
vs::vamana::Graph random_graph() {
  vs::vamana::Graph g;
  g.num_nodes = kGraphNodes;
  g.stride = kStride;
  g.medoid = 0;
  g.neighbors = vs::Array<std::uint32_t>(std::size_t{kGraphNodes} * kStride);
  g.degrees = vs::Array<std::uint32_t>(kGraphNodes);
  std::mt19937_64 rng(3);
  for (std::uint32_t i = 0; i < kGraphNodes; ++i) {
    g.degrees[i] = kDegree;
    for (std::uint32_t k = 0; k < kDegree; ++k)
      g.neighbors[std::size_t{i} * kStride + k] = static_cast<std::uint32_t>(rng() % kGraphNodes);
  }
  return g;
}

void BM_link_unreachable(benchmark::State& state) {
  const std::vector<float> vectors(kGraphNodes, 0.5f);  // one dimension: no search runs
  vs::vamana::BuildParams p;
  p.num_neighbors = kDegree;
  p.threads = static_cast<std::uint32_t>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    vs::vamana::Graph g = random_graph();
    state.ResumeTiming();
    if (vs::vamana::link_unreachable(g, vectors.data(), 1, p) != 0) state.SkipWithError("the graph was not connected");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kGraphNodes));
}
BENCHMARK(BM_link_unreachable)->ArgName("threads")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
