// Distance kernels: scalar, AVX2+FMA and AVX-512, selected at run time.
//
// The SIMD variants are compiled with function-level target attributes so that the library
// itself is built for baseline x86-64 and runs on any CPU; a kernel table for a level is only
// handed out after cpuid confirmed the CPU supports it.
#include "vectorscale/distance/distance.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#define VS_X86 1
// GCC 12's AVX-512 intrinsics use _mm256_undefined_*() and then warn about it once inlined
// (GCC PR105593); the warning is about the compiler's header, not this code.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#else
#define VS_X86 0
#endif

namespace vs::distance {
namespace {

// ---- scalar ---------------------------------------------------------------------------
// Four independent accumulators let the compiler vectorise with baseline SSE2 and keep the
// summation order fixed (the SIMD kernels use the same lane structure only approximately, so
// tests compare with a relative tolerance).

float l2_scalar(const float* a, const float* b, std::size_t n) noexcept {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
    const float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
    s0 += d0 * d0; s1 += d1 * d1; s2 += d2 * d2; s3 += d3 * d3;
  }
  for (; i < n; ++i) {
    const float d = a[i] - b[i];
    s0 += d * d;
  }
  return (s0 + s1) + (s2 + s3);
}

float dot_scalar(const float* a, const float* b, std::size_t n) noexcept {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i]; s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2]; s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

float cosine_from(double ab, double aa, double bb) noexcept {
  if (aa <= 0.0 || bb <= 0.0) return 1.0f;
  double sim = ab / std::sqrt(aa * bb);
  if (sim > 1.0) sim = 1.0;
  if (sim < -1.0) sim = -1.0;
  return static_cast<float>(1.0 - sim);
}

float cosine_scalar(const float* a, const float* b, std::size_t n) noexcept {
  float ab[4] = {0, 0, 0, 0}, aa[4] = {0, 0, 0, 0}, bb[4] = {0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (std::size_t l = 0; l < 4; ++l) {
      ab[l] += a[i + l] * b[i + l];
      aa[l] += a[i + l] * a[i + l];
      bb[l] += b[i + l] * b[i + l];
    }
  }
  for (; i < n; ++i) {
    ab[0] += a[i] * b[i];
    aa[0] += a[i] * a[i];
    bb[0] += b[i] * b[i];
  }
  return cosine_from((ab[0] + ab[1]) + (ab[2] + ab[3]), (aa[0] + aa[1]) + (aa[2] + aa[3]),
                     (bb[0] + bb[1]) + (bb[2] + bb[3]));
}

std::uint32_t hamming_scalar(const std::uint64_t* a, const std::uint64_t* b, std::size_t w) noexcept {
  std::uint32_t s = 0;
  for (std::size_t i = 0; i < w; ++i) s += static_cast<std::uint32_t>(__builtin_popcountll(a[i] ^ b[i]));
  return s;
}

#if VS_X86
// ---- AVX2 + FMA ---------------------------------------------------------------------

__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) noexcept {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 sh = _mm_movehdup_ps(lo);
  lo = _mm_add_ps(lo, sh);
  sh = _mm_movehl_ps(sh, lo);
  lo = _mm_add_ss(lo, sh);
  return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) float l2_avx2(const float* a, const float* b, std::size_t n) noexcept {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    s0 = _mm256_fmadd_ps(d, d, s0);
  }
  float s = hsum256(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) {
    const float d = a[i] - b[i];
    s += d * d;
  }
  return s;
}

__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b, std::size_t n) noexcept {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum256(_mm256_add_ps(s0, s1));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

__attribute__((target("avx2,fma"))) float cosine_avx2(const float* a, const float* b, std::size_t n) noexcept {
  __m256 ab = _mm256_setzero_ps(), aa = _mm256_setzero_ps(), bb = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 va = _mm256_loadu_ps(a + i), vb = _mm256_loadu_ps(b + i);
    ab = _mm256_fmadd_ps(va, vb, ab);
    aa = _mm256_fmadd_ps(va, va, aa);
    bb = _mm256_fmadd_ps(vb, vb, bb);
  }
  float sab = hsum256(ab), saa = hsum256(aa), sbb = hsum256(bb);
  for (; i < n; ++i) {
    sab += a[i] * b[i];
    saa += a[i] * a[i];
    sbb += b[i] * b[i];
  }
  return cosine_from(sab, saa, sbb);
}

__attribute__((target("popcnt"))) std::uint32_t hamming_popcnt(const std::uint64_t* a, const std::uint64_t* b,
                                                                std::size_t w) noexcept {
  std::uint64_t s0 = 0, s1 = 0;
  std::size_t i = 0;
  for (; i + 2 <= w; i += 2) {
    s0 += static_cast<std::uint64_t>(_mm_popcnt_u64(a[i] ^ b[i]));
    s1 += static_cast<std::uint64_t>(_mm_popcnt_u64(a[i + 1] ^ b[i + 1]));
  }
  if (i < w) s0 += static_cast<std::uint64_t>(_mm_popcnt_u64(a[i] ^ b[i]));
  return static_cast<std::uint32_t>(s0 + s1);
}

// ---- AVX-512 ----------------------------------------------------------------------------

#define VS_AVX512 "avx512f,avx512dq,avx512bw,avx512vl,fma,avx2"

// Horizontal sums through the 256-bit halves.
__attribute__((target(VS_AVX512))) inline float hsum512(__m512 v) noexcept {
  return hsum256(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}
__attribute__((target(VS_AVX512))) inline std::uint64_t hsum512_epi64(__m512i v) noexcept {
  const __m256i h = _mm256_add_epi64(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  const __m128i q = _mm_add_epi64(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  return static_cast<std::uint64_t>(_mm_cvtsi128_si64(q)) + static_cast<std::uint64_t>(_mm_extract_epi64(q, 1));
}

__attribute__((target(VS_AVX512))) float l2_avx512(const float* a, const float* b, std::size_t n) noexcept {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
    const __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
    const __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
    s2 = _mm512_fmadd_ps(d2, d2, s2);
    s3 = _mm512_fmadd_ps(d3, d3, s3);
  }
  s0 = _mm512_add_ps(s0, s2);
  s1 = _mm512_add_ps(s1, s3);
  for (; i + 16 <= n; i += 16) {
    const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
    s0 = _mm512_fmadd_ps(d, d, s0);
  }
  if (i < n) {  // masked tail: no scalar loop, no out-of-bounds read
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
    s1 = _mm512_fmadd_ps(d, d, s1);
  }
  return hsum512(_mm512_add_ps(s0, s1));
}

__attribute__((target(VS_AVX512))) float dot_avx512(const float* a, const float* b, std::size_t n) noexcept {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
  }
  s0 = _mm512_add_ps(s0, s2);
  s1 = _mm512_add_ps(s1, s3);
  for (; i + 32 <= n; i += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
  }
  for (; i + 16 <= n; i += 16) s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return hsum512(_mm512_add_ps(s0, s1));
}

__attribute__((target(VS_AVX512))) float cosine_avx512(const float* a, const float* b, std::size_t n) noexcept {
  __m512 ab = _mm512_setzero_ps(), aa = _mm512_setzero_ps(), bb = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 va = _mm512_loadu_ps(a + i), vb = _mm512_loadu_ps(b + i);
    ab = _mm512_fmadd_ps(va, vb, ab);
    aa = _mm512_fmadd_ps(va, va, aa);
    bb = _mm512_fmadd_ps(vb, vb, bb);
  }
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    const __m512 va = _mm512_maskz_loadu_ps(m, a + i), vb = _mm512_maskz_loadu_ps(m, b + i);
    ab = _mm512_fmadd_ps(va, vb, ab);
    aa = _mm512_fmadd_ps(va, va, aa);
    bb = _mm512_fmadd_ps(vb, vb, bb);
  }
  return cosine_from(hsum512(ab), hsum512(aa), hsum512(bb));
}

__attribute__((target(VS_AVX512 ",avx512vpopcntdq"))) std::uint32_t hamming_avx512(
    const std::uint64_t* a, const std::uint64_t* b, std::size_t w) noexcept {
  __m512i s = _mm512_setzero_si512();
  std::size_t i = 0;
  for (; i + 8 <= w; i += 8) {
    const __m512i x = _mm512_xor_si512(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
    s = _mm512_add_epi64(s, _mm512_popcnt_epi64(x));
  }
  if (i < w) {
    const __mmask8 m = static_cast<__mmask8>((1u << (w - i)) - 1u);
    const __m512i x = _mm512_xor_si512(_mm512_maskz_loadu_epi64(m, a + i), _mm512_maskz_loadu_epi64(m, b + i));
    s = _mm512_add_epi64(s, _mm512_popcnt_epi64(x));
  }
  return static_cast<std::uint32_t>(hsum512_epi64(s));
}

bool cpu_has_avx2_fma() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
         __builtin_cpu_supports("popcnt");
}
bool cpu_has_avx512() noexcept {
  __builtin_cpu_init();
  return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
}
bool cpu_has_vpopcntdq() noexcept {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512vpopcntdq");
}
#endif  // VS_X86

constexpr Kernels kScalar{&l2_scalar, &dot_scalar, &cosine_scalar, &hamming_scalar, SimdLevel::kScalar};
#if VS_X86
constexpr Kernels kAvx2{&l2_avx2, &dot_avx2, &cosine_avx2, &hamming_popcnt, SimdLevel::kAvx2};
constexpr Kernels kAvx512{&l2_avx512, &dot_avx512, &cosine_avx512, &hamming_avx512, SimdLevel::kAvx512};
// AVX-512F without VPOPCNTDQ (Skylake-X, Cascade Lake): float kernels at 512 bits, popcnt Hamming.
constexpr Kernels kAvx512NoPopcnt{&l2_avx512, &dot_avx512, &cosine_avx512, &hamming_popcnt,
                                  SimdLevel::kAvx512};
#endif

SimdLevel detect() noexcept {
#if VS_X86
  if (cpu_has_avx512()) return SimdLevel::kAvx512;
  if (cpu_has_avx2_fma()) return SimdLevel::kAvx2;
#endif
  return SimdLevel::kScalar;
}

// Upgrades the constant-initialised scalar table once, before main(); VS_SIMD=scalar|avx2|avx512
// caps the level (for benchmarks and for testing the fallback on a modern CPU).
struct Init {
  Init() noexcept {
    SimdLevel level = detect();
    if (const char* env = std::getenv("VS_SIMD")) {
      if (std::strcmp(env, "scalar") == 0) level = SimdLevel::kScalar;
      else if (std::strcmp(env, "avx2") == 0 && level > SimdLevel::kAvx2) level = SimdLevel::kAvx2;
    }
    set_simd_level(level);
  }
};
const Init g_init;

}  // namespace

namespace detail {
constinit Kernels g_active = kScalar;
}

const char* metric_name(Metric m) noexcept {
  switch (m) {
    case Metric::kL2: return "l2";
    case Metric::kCosine: return "cosine";
    case Metric::kInnerProduct: return "ip";
  }
  return "unknown";
}

const char* simd_level_name(SimdLevel level) noexcept {
  switch (level) {
    case SimdLevel::kScalar: return "scalar";
    case SimdLevel::kAvx2: return "avx2";
    case SimdLevel::kAvx512: return "avx512";
  }
  return "unknown";
}

SimdLevel detected_simd_level() noexcept {
  static const SimdLevel level = detect();
  return level;
}

SimdLevel active_simd_level() noexcept { return detail::g_active.level; }

const Kernels* kernels_for(SimdLevel level) noexcept {
  if (level > detected_simd_level()) return nullptr;
  switch (level) {
    case SimdLevel::kScalar: return &kScalar;
#if VS_X86
    case SimdLevel::kAvx2: return &kAvx2;
    case SimdLevel::kAvx512: return cpu_has_vpopcntdq() ? &kAvx512 : &kAvx512NoPopcnt;
#else
    default: return nullptr;
#endif
  }
  return nullptr;
}

SimdLevel set_simd_level(SimdLevel level) noexcept {
  if (level > detected_simd_level()) level = detected_simd_level();
  detail::g_active = *kernels_for(level);
  return level;
}

float norm(const float* a, std::size_t n) noexcept { return std::sqrt(dot(a, a, n)); }

bool normalize(float* v, std::size_t n) noexcept {
  const float len = norm(v, n);
  if (!(len > 0.0f) || !std::isfinite(len)) return false;
  const float inv = 1.0f / len;
  for (std::size_t i = 0; i < n; ++i) v[i] *= inv;
  return true;
}

float sql_distance(Metric m, const float* a, const float* b, std::size_t n) noexcept {
  switch (m) {
    case Metric::kL2: return std::sqrt(l2_squared(a, b, n));
    case Metric::kCosine: return cosine_distance(a, b, n);
    case Metric::kInnerProduct: return -dot(a, b, n);
  }
  return 0.0f;
}

}  // namespace vs::distance
