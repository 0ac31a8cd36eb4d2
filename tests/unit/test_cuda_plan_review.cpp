// CPU checks of the CUDA backend's host-side arithmetic (vs_cuda_core, no device): the settings'
// bounds on the list size, and the memory plan's per-row accounting and 32-bit edge indices.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "vectorscale/core/error.hpp"
#include "vectorscale/cuda/core/search.hpp"
#include "vectorscale/cuda/plan.hpp"

namespace {

using namespace vs;

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
