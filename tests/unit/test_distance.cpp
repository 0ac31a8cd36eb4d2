// Distance kernels: every SIMD level this CPU supports against a double-precision reference,
// at lengths around each vector width, on unaligned buffers and buffers that end exactly at
// the end of their allocation (ASan catches a tail that reads past it), plus the dispatch.
#include <gtest/gtest.h>

#include "vectorscale/distance/distance.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

// Readable parameter values in gtest's failure messages (found by ADL).
namespace vs::distance {
void PrintTo(SimdLevel level, std::ostream* os) { *os << simd_level_name(level); }
}  // namespace vs::distance

namespace {

namespace vd = vs::distance;
using vd::Kernels;
using vd::Metric;
using vd::SimdLevel;

constexpr SimdLevel kAllLevels[] = {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512};

// Lengths around the 4-, 8-, 16- and 32-float steps of the kernels plus real dimensions
// (MNIST 784, OpenAI 1536).
constexpr std::size_t kLengths[] = {1, 7, 15, 16, 17, 31, 33, 63, 64, 65, 100, 784, 1536, 4096};

// Word counts around the 2-word popcnt step and the 8-word AVX-512 step (768 dims x 1 and 2
// bits are 12 and 24 words).
constexpr std::size_t kWordCounts[] = {1, 2, 7, 8, 9, 15, 16, 17, 64, 128};

// Float accumulation in any lane order has an error well below 1e-4 of the sum of absolute
// terms at these lengths (worst case n * eps ~ 2.4e-4 only for adversarial order; seeded random
// data sits near sqrt(n) * eps). The absolute part covers results that cancel to ~0.
constexpr double kRelTol = 1e-4;
constexpr double kAbsTol = 1e-6;
// Cosine distance lies in [0, 2] and its error is bounded relative to 1 (Cauchy-Schwarz).
constexpr double kCosineTol = 1e-4;

// ---- data -------------------------------------------------------------------------------

/** How the seeded inputs are drawn. */
enum class Profile { kUnit, kPixels, kLargeMixed, kWideExponent };

const char* profile_name(Profile p) {
  switch (p) {
    case Profile::kUnit: return "uniform[-1,1)";
    case Profile::kPixels: return "pixels[0,255]";
    case Profile::kLargeMixed: return "uniform[-255,255)";
    case Profile::kWideExponent: return "+-2^[-10,10]";
  }
  return "?";
}

constexpr Profile kProfiles[] = {Profile::kUnit, Profile::kPixels, Profile::kLargeMixed, Profile::kWideExponent};

void fill(float* out, std::size_t n, Profile p, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> unit(-1.0f, 1.0f);
  std::uniform_int_distribution<int> pixel(0, 255);
  std::uniform_int_distribution<int> expo(-10, 10);
  for (std::size_t i = 0; i < n; ++i) {
    switch (p) {
      case Profile::kUnit: out[i] = unit(rng); break;
      case Profile::kPixels: out[i] = static_cast<float>(pixel(rng)); break;
      case Profile::kLargeMixed: out[i] = 255.0f * unit(rng); break;
      case Profile::kWideExponent: out[i] = std::ldexp(unit(rng), expo(rng)); break;
    }
  }
}

/**
 * n floats whose last element is the last element of a heap allocation: `offset` extra floats
 * are allocated in front, so offset 1 also makes the start 4 bytes off the allocator's
 * 16-byte alignment (and off any 32/64-byte vector alignment).
 */
class TightBuffer {
 public:
  TightBuffer(std::size_t n, std::size_t offset) : mem_(new float[n + offset]), data_(mem_.get() + offset) {}
  float* data() noexcept { return data_; }

 private:
  std::unique_ptr<float[]> mem_;
  float* data_;
};

// ---- double-precision references ------------------------------------------------------

struct Reference {
  double value;
  double scale;  // sum of the absolute values of the terms, for the tolerance
};

Reference ref_l2(const float* a, const float* b, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    s += d * d;
  }
  return {s, s};
}

Reference ref_dot(const float* a, const float* b, std::size_t n) {
  double s = 0, abs_sum = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(a[i]) * static_cast<double>(b[i]);
    s += t;
    abs_sum += std::fabs(t);
  }
  return {s, abs_sum};
}

double ref_cosine(const float* a, const float* b, std::size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (std::size_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa == 0.0 || bb == 0.0) return 1.0;
  return 1.0 - std::clamp(ab / std::sqrt(aa * bb), -1.0, 1.0);
}

std::uint32_t ref_hamming(const std::uint64_t* a, const std::uint64_t* b, std::size_t words) {
  std::uint32_t s = 0;
  for (std::size_t w = 0; w < words; ++w)
    for (unsigned bit = 0; bit < 64; ++bit) s += static_cast<std::uint32_t>(((a[w] >> bit) ^ (b[w] >> bit)) & 1u);
  return s;
}

double tol(const Reference& r) { return kRelTol * r.scale + kAbsTol; }

// ---- fixtures ---------------------------------------------------------------------------

/** Restores the active SIMD level after each test, whatever the test selected. */
class DistanceLevelGuard {
 public:
  DistanceLevelGuard() : saved_(vd::active_simd_level()) {}
  ~DistanceLevelGuard() { vd::set_simd_level(saved_); }
  DistanceLevelGuard(const DistanceLevelGuard&) = delete;
  DistanceLevelGuard& operator=(const DistanceLevelGuard&) = delete;

 private:
  SimdLevel saved_;
};

/** Kernels of the level under test, or a skip when the CPU cannot run them. */
#define VS_KERNELS_OR_SKIP(var, level)                                                          \
  const Kernels* var = vd::kernels_for(level);                                                  \
  if ((var) == nullptr) {                                                                       \
    GTEST_SKIP() << "CPU does not support SIMD level " << vd::simd_level_name(level)           \
                 << " (detected: " << vd::simd_level_name(vd::detected_simd_level()) << ")";   \
  }

std::string level_param_name(SimdLevel level) { return vd::simd_level_name(level); }

using FloatParam = std::tuple<SimdLevel, std::size_t>;

class DistanceFloatKernels : public ::testing::TestWithParam<FloatParam> {
 protected:
  DistanceLevelGuard guard_;

  /**
   * Runs check(a, b) on seeded inputs of every profile, placed first in plain allocations of
   * exactly n floats and then one float off alignment, each ending at its allocation's end.
   */
  template <typename Check>
  void for_each_input(std::size_t n, Check&& check) {
    for (const Profile p : kProfiles) {
      for (const std::size_t offset : {std::size_t{0}, std::size_t{1}}) {
        SCOPED_TRACE(::testing::Message() << "profile " << profile_name(p) << ", offset " << offset);
        TightBuffer a(n, offset), b(n, offset);
        const auto seed = static_cast<std::uint64_t>(n) * 1000 + static_cast<std::uint64_t>(p) * 10 + offset;
        fill(a.data(), n, p, seed);
        fill(b.data(), n, p, seed + 0x9e3779b97f4a7c15ULL);
        check(a.data(), b.data());
      }
    }
  }
};

TEST_P(DistanceFloatKernels, L2SquaredMatchesReferenceAndScalar) {
  const auto [level, n] = GetParam();
  VS_KERNELS_OR_SKIP(k, level);
  const Kernels* scalar = vd::kernels_for(SimdLevel::kScalar);
  ASSERT_NE(scalar, nullptr);
  for_each_input(n, [&](const float* a, const float* b) {
    const Reference r = ref_l2(a, b, n);
    const double got = k->l2_squared(a, b, n);
    EXPECT_NEAR(got, r.value, tol(r));
    EXPECT_NEAR(got, scalar->l2_squared(a, b, n), 2 * tol(r));
    EXPECT_EQ(k->l2_squared(a, a, n), 0.0f);
  });
}

TEST_P(DistanceFloatKernels, DotMatchesReferenceAndScalar) {
  const auto [level, n] = GetParam();
  VS_KERNELS_OR_SKIP(k, level);
  const Kernels* scalar = vd::kernels_for(SimdLevel::kScalar);
  ASSERT_NE(scalar, nullptr);
  for_each_input(n, [&](const float* a, const float* b) {
    const Reference r = ref_dot(a, b, n);
    const double got = k->dot(a, b, n);
    EXPECT_NEAR(got, r.value, tol(r));
    EXPECT_NEAR(got, scalar->dot(a, b, n), 2 * tol(r));
    const Reference rs = ref_dot(a, a, n);
    EXPECT_NEAR(k->dot(a, a, n), rs.value, tol(rs));
  });
}

TEST_P(DistanceFloatKernels, CosineMatchesReferenceAndScalar) {
  const auto [level, n] = GetParam();
  VS_KERNELS_OR_SKIP(k, level);
  const Kernels* scalar = vd::kernels_for(SimdLevel::kScalar);
  ASSERT_NE(scalar, nullptr);
  for_each_input(n, [&](const float* a, const float* b) {
    const float got = k->cosine(a, b, n);
    EXPECT_NEAR(got, ref_cosine(a, b, n), kCosineTol);
    EXPECT_NEAR(got, scalar->cosine(a, b, n), 2 * kCosineTol);
    EXPECT_GE(got, 0.0f);
    EXPECT_LE(got, 2.0f);
  });
}

TEST_P(DistanceFloatKernels, CosineEdgeCases) {
  const auto [level, n] = GetParam();
  VS_KERNELS_OR_SKIP(k, level);
  TightBuffer a(n, 1), neg(n, 1), zero(n, 1);
  fill(a.data(), n, Profile::kLargeMixed, 42 + n);
  a.data()[0] = 3.0f;  // never all zero, even at n = 1
  for (std::size_t i = 0; i < n; ++i) {
    neg.data()[i] = -a.data()[i];
    zero.data()[i] = 0.0f;
  }
  // The header documents 1 when either vector is zero.
  EXPECT_EQ(k->cosine(a.data(), zero.data(), n), 1.0f);
  EXPECT_EQ(k->cosine(zero.data(), a.data(), n), 1.0f);
  EXPECT_EQ(k->cosine(zero.data(), zero.data(), n), 1.0f);
  EXPECT_NEAR(k->cosine(a.data(), a.data(), n), 0.0f, 1e-6f);
  EXPECT_NEAR(k->cosine(a.data(), neg.data(), n), 2.0f, 1e-6f);
  // Scale invariance: cos(a, 2a) is 0 as well.
  for (std::size_t i = 0; i < n; ++i) neg.data()[i] = 2.0f * a.data()[i];
  EXPECT_NEAR(k->cosine(a.data(), neg.data(), n), 0.0f, 1e-6f);
}

INSTANTIATE_TEST_SUITE_P(Distance, DistanceFloatKernels,
                         ::testing::Combine(::testing::ValuesIn(kAllLevels), ::testing::ValuesIn(kLengths)),
                         [](const ::testing::TestParamInfo<FloatParam>& info) {
                           return level_param_name(std::get<0>(info.param)) + "_" +
                                  std::to_string(std::get<1>(info.param));
                         });

using HammingParam = std::tuple<SimdLevel, std::size_t>;

class DistanceHamming : public ::testing::TestWithParam<HammingParam> {};

TEST_P(DistanceHamming, MatchesBitByBitReferenceExactly) {
  const auto [level, words] = GetParam();
  VS_KERNELS_OR_SKIP(k, level);
  std::mt19937_64 rng(0xC0DE0000ULL + words);
  for (const std::size_t offset : {std::size_t{0}, std::size_t{1}}) {
    SCOPED_TRACE(::testing::Message() << "offset " << offset);
    // Exactly `words` code words end each allocation; offset 1 makes the start 8-byte aligned
    // only.
    std::unique_ptr<std::uint64_t[]> ma(new std::uint64_t[words + offset]), mb(new std::uint64_t[words + offset]);
    std::uint64_t* a = ma.get() + offset;
    std::uint64_t* b = mb.get() + offset;
    for (int round = 0; round < 8; ++round) {
      for (std::size_t w = 0; w < words; ++w) {
        a[w] = rng();
        b[w] = rng();
        if (round == 1) b[w] = a[w];      // identical: 0
        if (round == 2) b[w] = ~a[w];     // complement: all bits differ
        if (round == 3) b[w] = a[w] ^ (std::uint64_t{1} << (w % 64));  // one bit per word
        if (round == 4) b[w] &= a[w] & rng();                          // sparse differences
      }
      if (round == 5) a[words - 1] ^= std::uint64_t{1} << 63;  // only the last word's top bit
      EXPECT_EQ(k->hamming(a, b, words), ref_hamming(a, b, words)) << "round " << round;
    }
    for (std::size_t w = 0; w < words; ++w) {
      a[w] = 0;
      b[w] = ~std::uint64_t{0};
    }
    EXPECT_EQ(k->hamming(a, b, words), 64u * words);
    EXPECT_EQ(k->hamming(b, b, words), 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Distance, DistanceHamming,
                         ::testing::Combine(::testing::ValuesIn(kAllLevels), ::testing::ValuesIn(kWordCounts)),
                         [](const ::testing::TestParamInfo<HammingParam>& info) {
                           return level_param_name(std::get<0>(info.param)) + "_" +
                                  std::to_string(std::get<1>(info.param));
                         });

// ---- dispatched entry points, per level --------------------------------------------------

class DistanceDispatched : public ::testing::TestWithParam<SimdLevel> {
 protected:
  DistanceLevelGuard guard_;
};

TEST_P(DistanceDispatched, IndexDistanceMatchesMetricDefinition) {
  const SimdLevel level = GetParam();
  VS_KERNELS_OR_SKIP(k, level);
  ASSERT_EQ(vd::set_simd_level(level), level);
  for (const std::size_t n : {std::size_t{7}, std::size_t{33}, std::size_t{784}}) {
    SCOPED_TRACE(::testing::Message() << "n " << n);
    TightBuffer a(n, 1), b(n, 1);
    fill(a.data(), n, Profile::kLargeMixed, 7 * n);
    fill(b.data(), n, Profile::kLargeMixed, 7 * n + 1);
    const Reference l2 = ref_l2(a.data(), b.data(), n);
    const Reference ip = ref_dot(a.data(), b.data(), n);
    EXPECT_NEAR(vd::index_distance(Metric::kL2, a.data(), b.data(), n), l2.value, tol(l2));
    EXPECT_NEAR(vd::index_distance(Metric::kInnerProduct, a.data(), b.data(), n), -ip.value, tol(ip));
    EXPECT_EQ(vd::index_distance(Metric::kL2, a.data(), b.data(), n), k->l2_squared(a.data(), b.data(), n));
    EXPECT_EQ(vd::index_distance(Metric::kInnerProduct, a.data(), b.data(), n), -k->dot(a.data(), b.data(), n));

    // Cosine in the index: inputs normalised first, then 1 - a.b, which equals the cosine
    // distance of the raw vectors.
    const double raw_cosine = ref_cosine(a.data(), b.data(), n);
    ASSERT_TRUE(vd::normalize(a.data(), n));
    ASSERT_TRUE(vd::normalize(b.data(), n));
    EXPECT_NEAR(vd::index_distance(Metric::kCosine, a.data(), b.data(), n), raw_cosine, kCosineTol);
    EXPECT_EQ(vd::index_distance(Metric::kCosine, a.data(), b.data(), n), 1.0f - k->dot(a.data(), b.data(), n));
    EXPECT_NEAR(vd::index_distance(Metric::kCosine, a.data(), a.data(), n), 0.0f, 1e-5f);
  }
}

TEST_P(DistanceDispatched, SqlDistanceIsPgvectorSemantics) {
  const SimdLevel level = GetParam();
  VS_KERNELS_OR_SKIP(k, level);
  ASSERT_EQ(vd::set_simd_level(level), level);
  constexpr std::size_t n = 100;
  TightBuffer a(n, 1), b(n, 1);
  fill(a.data(), n, Profile::kPixels, 11);
  fill(b.data(), n, Profile::kPixels, 12);
  const Reference l2 = ref_l2(a.data(), b.data(), n);
  const float sql_l2 = vd::sql_distance(Metric::kL2, a.data(), b.data(), n);
  EXPECT_EQ(sql_l2, std::sqrt(k->l2_squared(a.data(), b.data(), n)));
  EXPECT_NEAR(sql_l2, std::sqrt(l2.value), 1e-4 * std::sqrt(l2.value));
  EXPECT_EQ(vd::sql_distance(Metric::kCosine, a.data(), b.data(), n), k->cosine(a.data(), b.data(), n));
  EXPECT_EQ(vd::sql_distance(Metric::kInnerProduct, a.data(), b.data(), n), -k->dot(a.data(), b.data(), n));
  // 3-4-5 triangle: exact.
  const float p[2] = {0.0f, 0.0f}, q[2] = {3.0f, 4.0f};
  EXPECT_EQ(vd::sql_distance(Metric::kL2, p, q, 2), 5.0f);
}

TEST_P(DistanceDispatched, NormalizeScalesToUnitLengthAndRejectsZero) {
  const SimdLevel level = GetParam();
  VS_KERNELS_OR_SKIP(k, level);
  ASSERT_EQ(vd::set_simd_level(level), level);
  for (const std::size_t n : {std::size_t{1}, std::size_t{17}, std::size_t{1536}}) {
    SCOPED_TRACE(::testing::Message() << "n " << n);
    TightBuffer v(n, 1);
    fill(v.data(), n, Profile::kPixels, 99 + n);
    v.data()[0] = 200.0f;
    const std::vector<float> before(v.data(), v.data() + n);
    ASSERT_TRUE(vd::normalize(v.data(), n));
    EXPECT_NEAR(vd::norm(v.data(), n), 1.0f, 1e-5f);
    const double len = std::sqrt(ref_dot(before.data(), before.data(), n).value);
    for (std::size_t i = 0; i < n; ++i) EXPECT_NEAR(v.data()[i], before[i] / len, 1e-6) << "i " << i;

    std::fill(v.data(), v.data() + n, 0.0f);
    EXPECT_FALSE(vd::normalize(v.data(), n));
    for (std::size_t i = 0; i < n; ++i) EXPECT_EQ(v.data()[i], 0.0f) << "i " << i;
    EXPECT_EQ(vd::norm(v.data(), n), 0.0f);
  }
}

TEST_P(DistanceDispatched, SetSimdLevelSelectsThatTable) {
  const SimdLevel level = GetParam();
  VS_KERNELS_OR_SKIP(k, level);
  EXPECT_EQ(k->level, level);
  EXPECT_EQ(vd::set_simd_level(level), level);
  EXPECT_EQ(vd::active_simd_level(), level);
  EXPECT_EQ(vd::detail::g_active.l2_squared, k->l2_squared);
  EXPECT_EQ(vd::detail::g_active.dot, k->dot);
  EXPECT_EQ(vd::detail::g_active.cosine, k->cosine);
  EXPECT_EQ(vd::detail::g_active.hamming, k->hamming);
}

INSTANTIATE_TEST_SUITE_P(Distance, DistanceDispatched, ::testing::ValuesIn(kAllLevels),
                         [](const ::testing::TestParamInfo<SimdLevel>& info) { return level_param_name(info.param); });

// ---- dispatch ---------------------------------------------------------------------------

TEST(DistanceDispatch, SetSimdLevelClampsToDetected) {
  DistanceLevelGuard guard;
  const SimdLevel detected = vd::detected_simd_level();
  for (const SimdLevel want : kAllLevels) {
    const SimdLevel expect = std::min(want, detected);
    EXPECT_EQ(vd::set_simd_level(want), expect) << vd::simd_level_name(want);
    EXPECT_EQ(vd::active_simd_level(), expect) << vd::simd_level_name(want);
    EXPECT_EQ(vd::kernels_for(want) != nullptr, want <= detected) << vd::simd_level_name(want);
  }
  // A value above every level (the enum's underlying type allows it) clamps to the detected one.
  const auto beyond = static_cast<SimdLevel>(3);
  EXPECT_EQ(vd::kernels_for(beyond), nullptr);
  EXPECT_EQ(vd::set_simd_level(beyond), detected);
  EXPECT_EQ(vd::active_simd_level(), detected);
}

TEST(DistanceDispatch, DefaultIsBestDetectedLevelUnlessCapped) {
  // Every test that changes the level restores it, so the start-up choice is still active.
  const SimdLevel detected = vd::detected_simd_level();
  SimdLevel expect = detected;
  const char* env = std::getenv("VS_SIMD");
  if (env != nullptr && std::strcmp(env, "scalar") == 0) expect = SimdLevel::kScalar;
  if (env != nullptr && std::strcmp(env, "avx2") == 0) expect = std::min(SimdLevel::kAvx2, detected);
  std::cout << "[          ] detected " << vd::simd_level_name(detected) << ", active "
            << vd::simd_level_name(vd::active_simd_level()) << ", VS_SIMD=" << (env != nullptr ? env : "(unset)")
            << "\n";
  EXPECT_EQ(vd::active_simd_level(), expect);
  ASSERT_NE(vd::kernels_for(detected), nullptr);
  EXPECT_EQ(vd::kernels_for(detected)->level, detected);
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma")) {
    EXPECT_EQ(detected, SimdLevel::kAvx512);
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    EXPECT_EQ(detected, SimdLevel::kAvx2);
  }
#endif
}

TEST(DistanceDispatch, NamesAreStable) {
  EXPECT_STREQ(vd::simd_level_name(SimdLevel::kScalar), "scalar");
  EXPECT_STREQ(vd::simd_level_name(SimdLevel::kAvx2), "avx2");
  EXPECT_STREQ(vd::simd_level_name(SimdLevel::kAvx512), "avx512");
  EXPECT_STREQ(vd::metric_name(Metric::kL2), "l2");
  EXPECT_STREQ(vd::metric_name(Metric::kCosine), "cosine");
  EXPECT_STREQ(vd::metric_name(Metric::kInnerProduct), "ip");
  // On-disk values (format v1).
  EXPECT_EQ(static_cast<int>(Metric::kL2), 1);
  EXPECT_EQ(static_cast<int>(Metric::kCosine), 2);
  EXPECT_EQ(static_cast<int>(Metric::kInnerProduct), 3);
}

}  // namespace
