/**
 * @file sbq.hpp
 * @brief SBQ code words of one vector, bit for bit as sbq::Quantizer::encode (common/).
 *
 * 1 bit per dimension: v > mean. b bits: the bucket floor((z + 2) * (b + 1) / 4) of the z-score
 * z = (v - mean) * inv_stddev, clamped to [0, b], as a thermometer code. On the device the
 * arithmetic uses round-to-nearest intrinsics, so that no multiply-add is fused: the host
 * computes each step separately, and a fused one could put a value in another bucket.
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include "vectorscale/cuda/core/hd.hpp"

namespace vs::cuda::core {

/** Thermometer bucket of one value (b > 1 bits). */
VS_HD inline std::uint32_t sbq_bucket(float v, float mean, float inv_stddev, std::uint32_t bits) noexcept {
  const float scale = static_cast<float>(bits + 1) / 4.0f;
#if defined(__CUDA_ARCH__)
  const float z = __fmul_rn(__fsub_rn(v, mean), inv_stddev);
  float kf = floorf(__fmul_rn(__fadd_rn(z, 2.0f), scale));
#else
  const float z = (v - mean) * inv_stddev;
  float kf = __builtin_floorf((z + 2.0f) * scale);
#endif
  if (!(kf > 0.0f)) kf = 0.0f;  // also maps NaN to bucket 0
  if (kf > static_cast<float>(bits)) kf = static_cast<float>(bits);
  return static_cast<std::uint32_t>(kf);
}

/** Code word w of vector v (dims floats); inv_stddev is unused for 1 bit. */
VS_HD inline std::uint64_t sbq_word(const float* v, const float* mean, const float* inv_stddev, std::size_t dims,
                                    std::uint32_t bits, std::size_t w) noexcept {
  std::uint64_t word = 0;
  const std::size_t first_bit = w * 64;
  if (bits == 1) {
    for (std::size_t b = 0; b < 64 && first_bit + b < dims; ++b)
      if (v[first_bit + b] > mean[first_bit + b]) word |= std::uint64_t{1} << b;
    return word;
  }
  const std::size_t end_bit = first_bit + 64 < dims * bits ? first_bit + 64 : dims * bits;
  for (std::size_t d = first_bit / bits; d * bits < end_bit; ++d) {
    const std::uint32_t k = sbq_bucket(v[d], mean[d], inv_stddev[d], bits);
    // Bits d*bits .. d*bits + k - 1 are set; keep those inside this word.
    for (std::uint32_t j = 0; j < k; ++j) {
      const std::size_t bit = d * bits + j;
      if (bit >= first_bit && bit < end_bit) word |= std::uint64_t{1} << (bit - first_bit);
    }
  }
  return word;
}

}  // namespace vs::cuda::core
