/**
 * @file hd.hpp
 * @brief Host-device basics of the CUDA backend's core: the VS_HD qualifier, metric codes,
 *        candidate order and sort keys.
 *
 * The headers in core/ hold the per-item logic of the GPU build (distances, sorting networks,
 * RobustPrune, greedy search, SBQ codes, reverse-edge unions) as plain C++17 that compiles
 * with nvcc (as __host__ __device__ code inside kernels) and with the host compiler (run
 * serially by the CPU reference pipeline and the unit tests). One source, so the unit tests
 * that compare it with common/ on the CPU test the code the kernels run. They include no
 * common/ header: common/ is C++20 and host-only, .cu files are C++17.
 */
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define VS_HD __host__ __device__
#else
#define VS_HD
#endif

// Unroll the next loop in device code (host compilers unroll short constant loops themselves).
#if defined(__CUDA_ARCH__)
#define VS_UNROLL _Pragma("unroll")
#else
#define VS_UNROLL
#endif

namespace vs::cuda::core {

/** Distance of an index; the values of vs::distance::Metric (checked in device_build.cpp). */
enum class Metric : std::uint8_t {
  kL2 = 1,            ///< squared Euclidean distance
  kCosine = 2,        ///< 1 - a.b on unit vectors
  kInnerProduct = 3,  ///< -(a.b)
};

/** Marks "no node" (vamana::kNoNode). */
inline constexpr std::uint32_t kNoNode = 0xFFFFFFFFu;

/** +infinity as a float, usable in device code. */
VS_HD inline float infinity() noexcept {
#if defined(__CUDA_ARCH__)
  return __int_as_float(0x7f800000);
#else
  return __builtin_huge_valf();
#endif
}

/** Largest finite float (FLT_MAX). */
inline constexpr float kFloatMax = 3.402823466e+38f;

/** Candidate order of common/: by distance, ties by the smaller id. */
VS_HD inline bool candidate_less(float da, std::uint32_t ia, float db, std::uint32_t ib) noexcept {
  return da < db || (da == db && ia < ib);
}

/** The bits of a float as an unsigned integer. */
VS_HD inline std::uint32_t float_bits(float f) noexcept {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

/** The float whose bits are u. */
VS_HD inline float float_from_bits(std::uint32_t u) noexcept {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

/**
 * A bfloat16 value (the upper 16 bits of a float; the bit layout of CUDA's __nv_bfloat16, so
 * cuBLAS reads arrays of it as CUDA_R_16BF). The device keeps the vectors it traverses in
 * this form: half the bytes of float per distance, and products of two of them are exact in
 * float, so dot products summed in float lose only the inputs' rounding.
 */
struct Bf16 {
  std::uint16_t bits;
};

/** Round to nearest even, as __float2bfloat16_rn; NaN stays NaN (quiet). */
VS_HD inline Bf16 to_bf16(float f) noexcept {
  const std::uint32_t u = float_bits(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return Bf16{static_cast<std::uint16_t>((u >> 16) | 0x0040u)};
  return Bf16{static_cast<std::uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16)};
}

/** A vector element as float (exact for both element types). */
VS_HD inline float to_float(float x) noexcept { return x; }
VS_HD inline float to_float(Bf16 x) noexcept { return float_from_bits(static_cast<std::uint32_t>(x.bits) << 16); }

/** Maps a float to an unsigned integer of the same order (-0 counts as +0; NaN last). */
VS_HD inline std::uint32_t float_order_bits(float f) noexcept {
  if (f == 0.0f) f = 0.0f;  // one zero, so that equal distances give equal keys
  const std::uint32_t u = float_bits(f);
  return (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
}

/** Sort key of a reverse edge: by target node, then by distance. */
VS_HD inline std::uint64_t edge_key(std::uint32_t target, float distance) noexcept {
  return (static_cast<std::uint64_t>(target) << 32) | float_order_bits(distance);
}

/** Target node of an edge_key. */
VS_HD inline std::uint32_t edge_key_target(std::uint64_t key) noexcept {
  return static_cast<std::uint32_t>(key >> 32);
}

/** Smallest power of two >= x (x >= 1, x <= 2^31). */
VS_HD inline std::uint32_t next_pow2(std::uint32_t x) noexcept {
  std::uint32_t p = 1;
  while (p < x) p <<= 1;
  return p;
}

/** Term of a distance sum for one dimension: (a-b)^2 for L2, a*b otherwise. */
VS_HD inline float distance_term(Metric m, float a, float b) noexcept {
  if (m == Metric::kL2) {
    const float d = a - b;
    return d * d;
  }
  return a * b;
}

/** Distance from the sum of distance_term over all dimensions (vamana index_distance). */
VS_HD inline float finish_distance(Metric m, float sum) noexcept {
  switch (m) {
    case Metric::kL2:
      return sum;
    case Metric::kCosine:
      return 1.0f - sum;
    case Metric::kInnerProduct:
      return -sum;
  }
  return sum;
}

/** 16 bytes of a vector row: the unit of the kernels' wide (128-bit) loads. */
struct alignas(16) Chunk {
  std::uint32_t w[4];
};

/** Elements of V in one Chunk. */
template <class V>
inline constexpr std::uint32_t kChunkElements = static_cast<std::uint32_t>(sizeof(Chunk) / sizeof(V));

/**
 * Whether rows of `dims` elements starting at `vectors` can be read in whole Chunks: dims a
 * multiple of kChunkElements<V> and the first row 16-byte aligned (then every row is).
 */
template <class V>
VS_HD inline bool wide_rows(const V* vectors, std::uint32_t dims) noexcept {
  return dims % kChunkElements<V> == 0 && reinterpret_cast<std::uintptr_t>(vectors) % sizeof(Chunk) == 0;
}

/**
 * Stops at a Chunk address that is not 16-byte aligned, as the device's 128-bit access faults:
 * so that the emulated kernels and the host tests find such a bug too.
 */
VS_HD inline void expect_chunk_aligned(const void* p) noexcept {
#if !defined(__CUDA_ARCH__)
  if ((reinterpret_cast<std::uintptr_t>(p) & (sizeof(Chunk) - 1)) != 0) __builtin_trap();
#else
  (void)p;
#endif
}

/** The Chunk at p (16-byte aligned): one 128-bit load on the device. */
VS_HD inline Chunk load_chunk(const void* p) noexcept {
#if defined(__CUDA_ARCH__)
  const uint4 v = *static_cast<const uint4*>(p);
  return Chunk{{v.x, v.y, v.z, v.w}};
#else
  expect_chunk_aligned(p);
  Chunk c;
  std::memcpy(&c, p, sizeof c);
  return c;
#endif
}

/** Writes c at p (16-byte aligned): one 128-bit store on the device. */
VS_HD inline void store_chunk(void* p, const Chunk& c) noexcept {
#if defined(__CUDA_ARCH__)
  *static_cast<uint4*>(p) = uint4{c.w[0], c.w[1], c.w[2], c.w[3]};
#else
  expect_chunk_aligned(p);
  std::memcpy(p, &c, sizeof c);
#endif
}

/** Element i of a Chunk of V as float (the pointer only picks the element type). */
VS_HD inline float chunk_element(const Chunk& c, std::uint32_t i, const float* /*type*/) noexcept {
  return float_from_bits(c.w[i]);
}
VS_HD inline float chunk_element(const Chunk& c, std::uint32_t i, const Bf16* /*type*/) noexcept {
  const std::uint32_t w = c.w[i >> 1];  // little-endian: element 2k is the low half of word k
  return float_from_bits((i & 1u) != 0 ? (w & 0xFFFF0000u) : (w << 16));
}

/**
 * Sum of distance_term over the kChunkElements<V> elements at a and b (each 16-byte aligned),
 * in element order: one wide load of each, the metric's branch outside the loop.
 */
template <class V>
VS_HD inline float chunk_distance_terms(Metric m, const V* a, const V* b) noexcept {
  const Chunk ca = load_chunk(a), cb = load_chunk(b);
  float s = 0.0f;
  if (m == Metric::kL2) {
    VS_UNROLL
    for (std::uint32_t i = 0; i < kChunkElements<V>; ++i)
      s += distance_term(Metric::kL2, chunk_element(ca, i, a), chunk_element(cb, i, b));
  } else {
    VS_UNROLL
    for (std::uint32_t i = 0; i < kChunkElements<V>; ++i)
      s += distance_term(Metric::kInnerProduct, chunk_element(ca, i, a), chunk_element(cb, i, b));
  }
  return s;
}

/**
 * Distance from a dot product and the squared norms (Gram-matrix entries): |a|^2 + |b|^2 - 2ab
 * clamped at 0 for L2, 1 - ab for cosine (unit vectors), -ab for inner product.
 */
VS_HD inline float distance_from_gram(Metric m, float aa, float bb, float ab) noexcept {
  switch (m) {
    case Metric::kL2: {
      const float d = aa + bb - 2.0f * ab;
      return d > 0.0f ? d : 0.0f;
    }
    case Metric::kCosine:
      return 1.0f - ab;
    case Metric::kInnerProduct:
      return -ab;
  }
  return 0.0f;
}

}  // namespace vs::cuda::core
