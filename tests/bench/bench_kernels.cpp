// Distance-kernel micro-benchmarks: every SIMD level this CPU supports, called through
// kernels_for(level) directly so that all levels run side by side in one process.
//
// Names: BM_<kernel>/<level>/<dims>, e.g. BM_l2/avx512/768; Hamming: BM_hamming/<level>/<words>
// (768 dims x 1 bit = 12 words, x 2 bits = 24 words). Bytes/s counts both operands.
#include <benchmark/benchmark.h>

#include "synthetic.hpp"
#include "vectorscale/distance/distance.hpp"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace {

namespace vd = vs::distance;

constexpr std::size_t kDims[] = {96, 128, 768, 784, 1536};
constexpr std::size_t kHammingWords[] = {12, 24};
constexpr vd::SimdLevel kLevels[] = {vd::SimdLevel::kScalar, vd::SimdLevel::kAvx2, vd::SimdLevel::kAvx512};

using FloatKernel = float (*)(const float*, const float*, std::size_t) noexcept;
using HammingKernel = std::uint32_t (*)(const std::uint64_t*, const std::uint64_t*, std::size_t) noexcept;

// A few vector pairs are cycled so the loop does not reuse one pair, but together they stay in
// a 32 KiB L1 data cache: the numbers compare the kernels' arithmetic, not the cache hierarchy
// (16 KiB of operands: 5 pairs at 768 dims, 1 pair at 1536).
constexpr std::size_t kOperandBytes = 16 * 1024;

std::size_t pairs_for(std::size_t bytes_per_pair) {
  return bytes_per_pair >= kOperandBytes ? 1 : kOperandBytes / bytes_per_pair;
}

void bench_float(benchmark::State& state, FloatKernel fn, std::size_t dims) {
  const std::size_t pairs = pairs_for(2 * dims * sizeof(float));
  const std::vector<float> a = vs::test::uniform(pairs * dims, 1, -1.0f, 1.0f);
  const std::vector<float> b = vs::test::uniform(pairs * dims, 2, -1.0f, 1.0f);
  std::size_t p = 0;
  for (auto _ : state) {
    const float d = fn(a.data() + p * dims, b.data() + p * dims, dims);
    benchmark::DoNotOptimize(d);
    p = p + 1 == pairs ? 0 : p + 1;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * dims * sizeof(float)));
}

void bench_hamming(benchmark::State& state, HammingKernel fn, std::size_t words) {
  const std::size_t pairs = pairs_for(2 * words * sizeof(std::uint64_t));
  std::mt19937_64 rng(3);
  std::vector<std::uint64_t> a(pairs * words), b(pairs * words);
  for (auto& w : a) w = rng();
  for (auto& w : b) w = rng();
  std::size_t p = 0;
  for (auto _ : state) {
    const std::uint32_t d = fn(a.data() + p * words, b.data() + p * words, words);
    benchmark::DoNotOptimize(d);
    p = p + 1 == pairs ? 0 : p + 1;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * words * sizeof(std::uint64_t)));
}

void register_all() {
  for (const vd::SimdLevel level : kLevels) {
    const vd::Kernels* k = vd::kernels_for(level);
    if (k == nullptr) continue;  // this CPU cannot run the level
    const std::string lv = vd::simd_level_name(level);
    const struct {
      const char* name;
      FloatKernel fn;
    } floats[] = {{"l2", k->l2_squared}, {"dot", k->dot}, {"cosine", k->cosine}};
    for (const auto& f : floats)
      for (const std::size_t dims : kDims)
        benchmark::RegisterBenchmark(("BM_" + std::string(f.name) + "/" + lv + "/" + std::to_string(dims)).c_str(),
                                     bench_float, f.fn, dims);
    for (const std::size_t words : kHammingWords)
      benchmark::RegisterBenchmark(("BM_hamming/" + lv + "/" + std::to_string(words)).c_str(), bench_hamming,
                                   k->hamming, words);
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("detected_simd_level", vd::simd_level_name(vd::detected_simd_level()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
