/**
 * @file sbq.hpp
 * @brief Statistical Binary Quantization (SBQ): per-dimension statistics, codes, distances.
 *
 * 1 bit per dimension: bit = (v[d] > mean[d]). b > 1 bits: the z-score (v[d]-mean[d])/sd[d]
 * falls into one of b+1 equal buckets over [-2, 2] (clamped at the ends); bucket k is written
 * as a thermometer code, the lowest k of the dimension's b bits set. Bit j of dimension d is
 * bit (d*b + j) of the code, counted from bit 0 of word 0. Codes are compared by Hamming
 * distance (XOR + popcount), which for thermometer codes is the bucket distance summed over
 * dimensions.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace vs::sbq {

/** Most bits per dimension the format stores. */
inline constexpr std::uint32_t kMaxBitsPerDim = 8;
/** Most indexed dimensions SBQ accepts (DESIGN.md §1.1). */
inline constexpr std::uint32_t kMaxDims = 16000;

/** pgvectorscale's default for num_bits_per_dimension: 2 below 900 indexed dims, else 1. */
[[nodiscard]] constexpr std::uint32_t default_bits_per_dim(std::size_t indexed_dims) noexcept {
  return indexed_dims < 900 ? 2u : 1u;
}

/** Number of 64-bit code words of one vector. */
[[nodiscard]] constexpr std::size_t code_words(std::size_t dims, std::uint32_t bits) noexcept {
  return (dims * bits + 63) / 64;
}

/** Floats in a quantizer stream: mean[dims], plus stddev[dims] when bits > 1. */
[[nodiscard]] constexpr std::size_t stream_length(std::size_t dims, std::uint32_t bits) noexcept {
  return bits > 1 ? 2 * dims : dims;
}

/** Accumulates per-dimension mean and variance (Welford, in double) over training vectors. */
class Trainer {
 public:
  /** Starts training for `dims` dimensions and `bits` bits per dimension (1..8). */
  Trainer(std::size_t dims, std::uint32_t bits);
  /** Adds one vector of `dims` floats; non-finite values are rejected with vs::Error. */
  void add(const float* v);
  /**
   * Adds the vectors another trainer (same dims and bits) accumulated (Chan et al.'s pairwise
   * combination). Merging into an empty trainer copies the other exactly.
   */
  void merge(const Trainer& other);
  /** Vectors added so far. */
  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  /** Mean (and standard deviation when bits > 1) as a quantizer stream. */
  [[nodiscard]] std::vector<float> finish() const;

 private:
  std::size_t dims_;
  std::uint32_t bits_;
  std::uint64_t count_ = 0;
  std::vector<double> mean_;
  std::vector<double> m2_;
};

/** A trained quantizer: encodes float vectors into SBQ codes. Cheap to copy. */
class Quantizer {
 public:
  Quantizer() = default;
  /**
   * From a quantizer stream: mean[dims] followed by stddev[dims] when bits > 1 (the layout of
   * the index's quantizer pages).
   */
  Quantizer(std::size_t dims, std::uint32_t bits, std::span<const float> stream);

  /**
   * Trains on n row-major vectors (all of them; the caller samples if it wants to), on
   * `threads` threads: the rows are cut into contiguous groups (as many as n allows with at
   * least kTrainBlockRows rows each, at most kTrainGroups), accumulated apart and merged in
   * order. So the result does not depend on the number of threads, and below 2 *
   * kTrainBlockRows rows it is one Trainer's, row by row.
   */
  [[nodiscard]] static Quantizer train(const float* vectors, std::size_t n, std::size_t dims, std::uint32_t bits,
                                       std::size_t threads = 1);

  /** Fewest rows of a group of train(). */
  static constexpr std::size_t kTrainBlockRows = 4096;
  /** Most groups of train(): bounds its memory (two doubles a dimension a group). */
  static constexpr std::size_t kTrainGroups = 256;

  [[nodiscard]] std::size_t dims() const noexcept { return dims_; }
  [[nodiscard]] std::uint32_t bits() const noexcept { return bits_; }
  [[nodiscard]] std::size_t words() const noexcept { return code_words(dims_, bits_); }
  [[nodiscard]] std::span<const float> mean() const noexcept { return mean_; }
  [[nodiscard]] std::span<const float> stddev() const noexcept { return stddev_; }
  /** The stream stored in quantizer pages. */
  [[nodiscard]] std::vector<float> stream() const;

  /** Writes words() code words for v (dims() floats) into out. */
  void encode(const float* v, std::uint64_t* out) const noexcept;

 private:
  std::size_t dims_ = 0;
  std::uint32_t bits_ = 1;
  std::vector<float> mean_;
  std::vector<float> stddev_;
  std::vector<float> inv_stddev_;
};

}  // namespace vs::sbq
