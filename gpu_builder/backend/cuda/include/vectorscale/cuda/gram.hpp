/**
 * @file gram.hpp
 * @brief Layout of the prune's Gram matrices: where gather_rows puts each item's rows, the
 *        batched cuBLAS GEMM that multiplies them, and where the prune kernel reads an entry.
 *
 * Item i of a prune group has gram_dim rows of dims floats, row-major (row 0: the node, row
 * 1 + c: candidate c, zero rows after the last candidate). Read column-major with leading
 * dimension dims, that block is the dims x gram_dim matrix X_i whose columns are the rows, and
 * the GEMM computes G_i = X_i^T X_i (gram_dim x gram_dim, column-major, leading dimension
 * gram_dim): G_i(a, b) = row a . row b. C++17, host and device (the kernels index with it, a CPU
 * test checks it against a column-major GEMM).
 */
#pragma once

#include <cstddef>
#include <cstdint>

#include "vectorscale/cuda/core/hd.hpp"

namespace vs::cuda {

/** Offset (in floats) of row r of item `item`'s gathered rows. */
VS_HD inline std::uint64_t gram_row_offset(std::uint32_t item, std::uint32_t gram_dim, std::uint32_t r,
                                           std::size_t dims) noexcept {
  return (static_cast<std::uint64_t>(item) * gram_dim + r) * dims;
}

/** Offset (in floats) of G_item(a, b) in the Gram matrices (column-major, gram_dim^2 per item). */
VS_HD inline std::uint64_t gram_entry_offset(std::uint32_t item, std::uint32_t gram_dim, std::uint32_t a,
                                             std::uint32_t b) noexcept {
  return static_cast<std::uint64_t>(item) * gram_dim * gram_dim + a + static_cast<std::uint64_t>(b) * gram_dim;
}

/**
 * Arguments of cublasSgemmStridedBatched(transa = T, transb = N, m, n, k, 1, X, lda, stride_a,
 * X, ldb, stride_b, 0, G, ldc, stride_c, batch) for the layout above.
 */
struct GramGemm {
  int m, n, k;                                ///< op(A) is m x k, op(B) is k x n
  int lda, ldb, ldc;                          ///< leading dimensions (column-major)
  long long stride_a, stride_b, stride_c;     ///< floats between consecutive items
  int batch;                                  ///< items
};

/** The GEMM of `count` items of gram_dim rows of dims floats. */
inline GramGemm gram_gemm(std::uint32_t gram_dim, std::size_t dims, std::uint32_t count) noexcept {
  GramGemm g{};
  g.m = g.n = static_cast<int>(gram_dim);
  g.k = static_cast<int>(dims);
  g.lda = g.ldb = static_cast<int>(dims);
  g.ldc = static_cast<int>(gram_dim);
  g.stride_a = g.stride_b = static_cast<long long>(gram_row_offset(1, gram_dim, 0, dims));
  g.stride_c = static_cast<long long>(gram_entry_offset(1, gram_dim, 0, 0));
  g.batch = static_cast<int>(count);
  return g;
}

}  // namespace vs::cuda
