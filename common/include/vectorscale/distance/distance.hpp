/**
 * @file distance.hpp
 * @brief Float32 distances and SBQ Hamming distance with run-time SIMD dispatch.
 *
 * Each kernel exists as scalar code (any x86-64 or other CPU), AVX2+FMA and AVX-512 code.
 * The best level the CPU supports is chosen once at start-up (cpuid); a CPU without AVX2
 * runs the scalar code. Kernels are noexcept and never allocate.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>

namespace vs::distance {

/** Distance function of an index; the numeric values are stored on disk (format v1). */
enum class Metric : std::uint8_t {
  kL2 = 1,            ///< squared Euclidean distance (vector_l2_ops, `<->`)
  kCosine = 2,        ///< 1 - cos(a, b); vectors are normalised first (vector_cosine_ops, `<=>`)
  kInnerProduct = 3,  ///< -(a . b) (vector_ip_ops, `<#>`)
};

/** Name of a metric ("l2", "cosine", "ip"). */
[[nodiscard]] const char* metric_name(Metric m) noexcept;

/** Instruction-set level of a kernel table. */
enum class SimdLevel : std::uint8_t { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

/** Name of a level ("scalar", "avx2", "avx512"). */
[[nodiscard]] const char* simd_level_name(SimdLevel level) noexcept;

/** The best level this CPU supports. */
[[nodiscard]] SimdLevel detected_simd_level() noexcept;

/** The level in use now. */
[[nodiscard]] SimdLevel active_simd_level() noexcept;

/**
 * Selects a level no higher than the detected one (tests, benchmarks, VS_SIMD env var) and
 * returns the level actually chosen. Not thread-safe: call before starting threads.
 */
SimdLevel set_simd_level(SimdLevel level) noexcept;

/** A table of kernels for one SIMD level. */
struct Kernels {
  float (*l2_squared)(const float* a, const float* b, std::size_t n) noexcept;
  float (*dot)(const float* a, const float* b, std::size_t n) noexcept;
  /** 1 - a.b/(|a||b|) on unnormalised inputs; 1 when either vector is zero. */
  float (*cosine)(const float* a, const float* b, std::size_t n) noexcept;
  /** Number of differing bits of two code-word arrays. */
  std::uint32_t (*hamming)(const std::uint64_t* a, const std::uint64_t* b, std::size_t words) noexcept;
  SimdLevel level;
};

/** Kernels of a given level; nullptr if this CPU cannot run them. */
[[nodiscard]] const Kernels* kernels_for(SimdLevel level) noexcept;

namespace detail {
extern Kernels g_active;  // constant-initialised to scalar, upgraded at start-up
}

/** Squared L2 distance. */
[[nodiscard]] inline float l2_squared(const float* a, const float* b, std::size_t n) noexcept {
  return detail::g_active.l2_squared(a, b, n);
}
/** Dot product. */
[[nodiscard]] inline float dot(const float* a, const float* b, std::size_t n) noexcept {
  return detail::g_active.dot(a, b, n);
}
/** Cosine distance on unnormalised vectors (pgvector's `<=>`). */
[[nodiscard]] inline float cosine_distance(const float* a, const float* b, std::size_t n) noexcept {
  return detail::g_active.cosine(a, b, n);
}
/** Hamming distance between SBQ codes. */
[[nodiscard]] inline std::uint32_t hamming(const std::uint64_t* a, const std::uint64_t* b,
                                           std::size_t words) noexcept {
  return detail::g_active.hamming(a, b, words);
}

/** Euclidean norm. */
[[nodiscard]] float norm(const float* a, std::size_t n) noexcept;

/** Scales v to unit length in place; returns false (and leaves v) if its norm is 0. */
bool normalize(float* v, std::size_t n) noexcept;

/**
 * Distance used inside the index for metric m. For kCosine both inputs must already be
 * normalised (the index normalises at insert and query time), so it is 1 - a.b.
 * Smaller is closer for every metric.
 */
[[nodiscard]] inline float index_distance(Metric m, const float* a, const float* b,
                                          std::size_t n) noexcept {
  switch (m) {
    case Metric::kL2: return l2_squared(a, b, n);
    case Metric::kCosine: return 1.0f - dot(a, b, n);
    case Metric::kInnerProduct: return -dot(a, b, n);
  }
  return 0.0f;
}

/** The SQL-visible distance (pgvector semantics: `<->` is the square root of l2_squared). */
[[nodiscard]] float sql_distance(Metric m, const float* a, const float* b, std::size_t n) noexcept;

}  // namespace vs::distance
