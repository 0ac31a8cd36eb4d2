// CPU checks of the CUDA backend's host-side arithmetic (vs_cuda_core, no device): the Gram
// GEMM's layout against a column-major GEMM, the settings' bounds on the list size, and the
// memory plan's per-row accounting and 32-bit edge indices.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "vectorscale/core/error.hpp"
#include "vectorscale/cuda/core/search.hpp"
#include "vectorscale/cuda/gram.hpp"
#include "vectorscale/cuda/plan.hpp"

namespace {

using namespace vs;

// cublasSgemmStridedBatched with alpha 1, beta 0, as the cuBLAS documentation defines it
// (column-major; op(X) = X^T for transa/transb true).
void sgemm_strided_batched(bool transa, bool transb, const cuda::GramGemm& g, const float* A, const float* B,
                           float* C) {
  for (int i = 0; i < g.batch; ++i) {
    const float* a = A + i * g.stride_a;
    const float* b = B + i * g.stride_b;
    float* c = C + i * g.stride_c;
    for (int x = 0; x < g.m; ++x)
      for (int y = 0; y < g.n; ++y) {
        float s = 0.0f;
        for (int k = 0; k < g.k; ++k) {
          const float av = transa ? a[k + x * g.lda] : a[x + k * g.lda];
          const float bv = transb ? b[y + k * g.ldb] : b[k + y * g.ldb];
          s += av * bv;
        }
        c[x + y * g.ldc] = s;
      }
  }
}

TEST(CudaGram, LayoutIsAColumnMajorGemmOfTheGatheredRows) {
  for (const std::size_t dims : {1u, 5u, 33u}) {
    const std::uint32_t gram_dim = 8, count = 3;
    const cuda::GramGemm g = cuda::gram_gemm(gram_dim, dims, count);
    // The shapes cuBLAS accepts: op(A) = A^T with A k x m (lda >= k), B k x n (ldb >= k), C m x n.
    EXPECT_EQ(g.m, static_cast<int>(gram_dim));
    EXPECT_EQ(g.n, static_cast<int>(gram_dim));
    EXPECT_EQ(g.k, static_cast<int>(dims));
    EXPECT_GE(g.lda, g.k);
    EXPECT_GE(g.ldb, g.k);
    EXPECT_GE(g.ldc, g.m);
    EXPECT_EQ(g.batch, static_cast<int>(count));
    // Small integers: every dot product is exact.
    std::mt19937 rng(static_cast<unsigned>(dims));
    std::uniform_int_distribution<int> u(-4, 4);
    std::vector<float> rows(count * gram_dim * dims, 0.0f);
    std::vector<std::vector<float>> want_rows(count * gram_dim, std::vector<float>(dims));
    for (std::uint32_t i = 0; i < count; ++i)
      for (std::uint32_t r = 0; r < gram_dim; ++r)
        for (std::size_t d = 0; d < dims; ++d) {
          const auto v = static_cast<float>(u(rng));
          rows[cuda::gram_row_offset(i, gram_dim, r, dims) + d] = v;
          want_rows[i * gram_dim + r][d] = v;
        }
    std::vector<float> gram(count * gram_dim * gram_dim, -1.0f);
    sgemm_strided_batched(true, false, g, rows.data(), rows.data(), gram.data());
    for (std::uint32_t i = 0; i < count; ++i)
      for (std::uint32_t a = 0; a < gram_dim; ++a)
        for (std::uint32_t b = 0; b < gram_dim; ++b) {
          float dot = 0.0f;
          for (std::size_t d = 0; d < dims; ++d) dot += want_rows[i * gram_dim + a][d] * want_rows[i * gram_dim + b][d];
          ASSERT_EQ(gram[cuda::gram_entry_offset(i, gram_dim, a, b)], dot)
              << "dims " << dims << " item " << i << " (" << a << ", " << b << ")";
        }
  }
  // 64-bit offsets: 8192 items of 304 x 768 floats pass 2^31.
  EXPECT_EQ(cuda::gram_row_offset(8191, 304, 303, 768), (8191ull * 304 + 303) * 768);
  EXPECT_EQ(cuda::gram_entry_offset(8191, 304, 303, 303), 8191ull * 304 * 304 + 303 + 303ull * 304);
}

// A list size far beyond any device must be refused, not wrapped into 32 bits (max_iters from
// a double, visited_table_slots, next_pow2 of the candidate count, which would never return).
TEST(CudaPlanReview, HugeListSizesAreRefusedNotWrapped) {
  vamana::BuildParams p;
  p.search_list_size = 0xFFFFFFFFu;
  try {
    (void)cuda::derive_settings(p);
    FAIL() << "expected an error";
  } catch (const vs::Error& e) {
    EXPECT_EQ(e.code(), vs::ErrorCode::kInvalidArgument) << e.what();
  }
  p.search_list_size = 1u << 24;
  cuda::GraphOptions o;
  o.max_iters_factor = 64;
  EXPECT_THROW((void)cuda::derive_settings(p, o), vs::Error);

  // The extension's largest settings (L 1000, R 1000) stay exact.
  p.search_list_size = 1000;
  p.num_neighbors = 1000;
  const auto s = cuda::derive_settings(p);
  EXPECT_EQ(s.max_iters, 3000u);
  EXPECT_EQ(s.stride, 1300u);
  const std::uint32_t slots = cuda::core::visited_table_slots(s.max_iters, s.stride);
  EXPECT_EQ(slots & (slots - 1), 0u);
  EXPECT_GE(slots, 2ull * (1ull + std::uint64_t{s.max_iters} * s.stride));
}

// Every per-row buffer of the graph phase is in the plan's per-query bytes (device_build.cpp's
// Work): visited table, expansion log and count, kept distances, and the reverse-edge buffers
// (keys and values twice, sorted targets, run targets, lengths and starts, the overflow list),
// with room left for CUB's temporary storage: SortPairs without DoubleBuffer keeps its own
// copy of the keys and values (12 bytes per edge) plus histograms and look-back (< 4 per edge).
TEST(CudaPlanReview, PerQueryBytesCoverTheGraphPhaseBuffers) {
  vamana::BuildParams bp;
  const auto s = cuda::derive_settings(bp);
  const auto p = cuda::plan_device_memory(76ull << 30, 1000000, 768, 24, s);
  const std::uint64_t R = s.R;
  const std::uint64_t buffers = std::uint64_t{p.table_slots} * 4 + std::uint64_t{s.max_iters} * 8 + 4 + R * 4 +
                                R * (2 * 8 + 2 * 4) + R * 4 * 4 + R * 4;
  EXPECT_GE(p.per_query_bytes, buffers + R * 16) << "no room for CUB's radix-sort buffers";
}

// A batch's edges (rows * R) are indexed with 32-bit run starts and counts: the plan keeps
// them below 2^31 even when memory would allow more.
TEST(CudaPlanReview, BatchEdgesStayBelowTwoToThe31) {
  vamana::BuildParams bp;
  bp.num_neighbors = 100;
  bp.search_list_size = 1;
  cuda::GraphOptions o;
  o.batch_fraction = 1.0;
  const auto s = cuda::derive_settings(bp, o);
  const auto p = cuda::plan_device_memory(1ull << 50, 100000000, 1, 0, s);
  EXPECT_GE(p.search_batch, 1u);
  EXPECT_LE(std::uint64_t{p.search_batch} * s.R, cuda::kMaxBatchEdges);
  // Ordinary shapes are unaffected.
  const auto h100 = cuda::plan_device_memory(76ull << 30, 1000000, 768, 24, cuda::derive_settings({}));
  EXPECT_EQ(h100.search_batch, 60000u);
}

}  // namespace
