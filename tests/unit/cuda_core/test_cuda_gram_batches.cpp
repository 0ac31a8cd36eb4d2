// CPU checks of the prune groups' Gram GEMM sub-batches (vectorscale/cuda/gram_batches.hpp):
// from a histogram of candidate counts, every item is in exactly one sub-batch, each sub-batch's
// gram_dim covers its members, its rows and Gram matrices fit the planned buffers, and the
// padding is bounded by the cost model; and a prune's result does not depend on the gram_dim
// or the position its item gets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <tuple>
#include <vector>

#include "vectorscale/core/error.hpp"
#include "vectorscale/cuda/core/prune_node.hpp"
#include "vectorscale/cuda/core/team.hpp"
#include "vectorscale/cuda/gram.hpp"
#include "vectorscale/cuda/gram_batches.hpp"
#include "vectorscale/cuda/plan.hpp"
#include "vectorscale/distance/distance.hpp"
#include "vectorscale/sbq/sbq.hpp"

namespace {

using namespace vs;
using cuda::GramBatch;
using cuda::GramCapacity;

// The Gram buffers of the 1M x 768 plan on an H100 (R 50, L 100: 8192 items of 304 rows).
GramCapacity h100_capacity() {
  const auto s = cuda::derive_settings({});
  const auto plan = cuda::plan_device_memory(76ull << 30, 1000000, 768, sbq::code_words(768, 1), s);
  return cuda::gram_capacity(plan, 768);
}

GramCapacity capacity(std::uint64_t items, std::uint32_t max_gram_dim, std::size_t dims) {
  GramCapacity c;
  c.row_floats = items * max_gram_dim * dims;
  c.gram_floats = items * max_gram_dim * max_gram_dim;
  c.max_gram_dim = max_gram_dim;
  c.dims = dims;
  return c;
}

std::vector<std::uint32_t> histogram_of(const std::vector<std::uint32_t>& counts, std::uint32_t max_count) {
  std::vector<std::uint32_t> h(std::size_t{max_count} + 1, 0);
  for (const auto c : counts) ++h.at(c);
  return h;
}

// What the device does with a group: stable sort of the item indices by count (CUB's radix
// sort of (count, index)), histogram, sub-batches; then every check of a layout.
std::vector<GramBatch> check_group(const std::vector<std::uint32_t>& counts, std::uint32_t max_count,
                                   const GramCapacity& cap) {
  std::vector<std::uint32_t> order(counts.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return counts[a] < counts[b]; });
  const auto hist = histogram_of(counts, max_count);
  const std::vector<GramBatch> batches = cuda::plan_gram_batches(hist, cap);
  std::vector<int> seen(counts.size(), 0);
  std::uint32_t next = 0;
  for (const GramBatch& b : batches) {
    EXPECT_EQ(b.begin, next) << "sub-batches must follow each other";
    EXPECT_LT(b.begin, b.end) << "empty sub-batch";
    next = b.end;
    const std::uint64_t items = b.end - b.begin;
    EXPECT_LE(b.gram_dim, cap.max_gram_dim);
    EXPECT_TRUE(b.gram_dim % cuda::kGramAlign == 0 || b.gram_dim == cap.max_gram_dim) << b.gram_dim;
    EXPECT_EQ(b.gram_dim, cuda::gram_dim_for(b.most, cap.max_gram_dim));
    EXPECT_LE(items * b.gram_dim * cap.dims, cap.row_floats) << "rows overflow the planned buffer";
    EXPECT_LE(items * b.gram_dim * b.gram_dim, cap.gram_floats) << "Gram matrices overflow the planned buffer";
    EXPECT_LE(items, cuda::kMaxGemmBatch);
    std::uint32_t most = 0;
    for (std::uint32_t j = b.begin; j < b.end; ++j) {
      const std::uint32_t item = order[j];
      ++seen[item];
      EXPECT_GE(b.gram_dim, counts[item] + 1) << "item " << item << " does not fit its Gram matrix";
      most = std::max(most, counts[item]);
    }
    EXPECT_EQ(b.most, most);
  }
  EXPECT_EQ(next, counts.size()) << "sub-batches must cover the group";
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << "item " << i << " pruned " << seen[i];
  return batches;
}

// The layout with one run per gram_dim class (split evenly where the buffers are too small):
// the least padding possible, with the most launches.
std::vector<GramBatch> one_run_per_class(const std::vector<std::uint32_t>& hist, const GramCapacity& cap) {
  std::vector<GramBatch> out;
  std::uint64_t pos = 0;
  for (std::size_t c = 0; c < hist.size();) {
    const std::uint32_t g = cuda::gram_dim_for(static_cast<std::uint32_t>(c), cap.max_gram_dim);
    std::uint64_t items = 0;
    std::uint32_t most = 0;
    for (; c < hist.size() && cuda::gram_dim_for(static_cast<std::uint32_t>(c), cap.max_gram_dim) == g; ++c)
      if (hist[c] != 0) items += hist[c], most = static_cast<std::uint32_t>(c);
    if (items == 0) continue;
    const std::uint64_t fit = cuda::gram_batch_items(cap, g), pieces = (items + fit - 1) / fit;
    for (std::uint64_t t = 0; t < pieces; ++t)
      out.push_back({static_cast<std::uint32_t>(pos + items * t / pieces),
                     static_cast<std::uint32_t>(pos + items * (t + 1) / pieces), most, g});
    pos += items;
  }
  return out;
}

double padded_work(const std::vector<GramBatch>& batches, std::size_t dims) {
  return cuda::gram_batches_cost(batches, dims, 0.0);
}

// A group at L 100, R 50 (max_candidates 300) whose counts are mostly near 105 (an insertion
// prune sees about L expansions) with a few lists at the cap (hubs among the reverse-edge
// overflow prunes): the case where padding every item to the longest list costs most.
std::vector<std::uint32_t> realistic_counts(std::size_t n, std::uint32_t max_count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::lognormal_distribution<double> body(std::log(105.0), 0.3);
  std::vector<std::uint32_t> out(n);
  for (auto& c : out) {
    const double v = rng() % 200 == 0 ? static_cast<double>(max_count) : body(rng);
    c = static_cast<std::uint32_t>(std::clamp(v, 30.0, static_cast<double>(max_count)));
  }
  return out;
}

TEST(CudaGramBatches, GramDimCoversTheListAndIsAligned) {
  EXPECT_EQ(cuda::gram_dim_for(0, 304), 4u);
  EXPECT_EQ(cuda::gram_dim_for(3, 304), 4u);
  EXPECT_EQ(cuda::gram_dim_for(4, 304), 8u);
  EXPECT_EQ(cuda::gram_dim_for(110, 304), 112u);
  EXPECT_EQ(cuda::gram_dim_for(300, 304), 304u);
  EXPECT_EQ(cuda::gram_dim_for(300, 301), 301u);  // never past the plan's
  for (std::uint32_t c = 0; c < 1000; ++c) {
    const std::uint32_t g = cuda::gram_dim_for(c, 4096);
    EXPECT_GE(g, c + 1);
    EXPECT_LT(g, c + 1 + cuda::kGramAlign);
    EXPECT_EQ(g % cuda::kGramAlign, 0u);
  }
}

TEST(CudaGramBatches, CapacityIsThePlansBuffers) {
  const auto s = cuda::derive_settings({});
  const auto plan = cuda::plan_device_memory(76ull << 30, 1000000, 768, sbq::code_words(768, 1), s);
  const GramCapacity cap = cuda::gram_capacity(plan, 768);
  // device_build.cpp's Work: rows(prune_batch * gram_dim * dims), gram(prune_batch * gram_dim^2).
  EXPECT_EQ(cap.row_floats, std::uint64_t{plan.prune_batch} * plan.gram_dim * 768);
  EXPECT_EQ(cap.gram_floats, std::uint64_t{plan.prune_batch} * plan.gram_dim * plan.gram_dim);
  EXPECT_EQ(cap.max_gram_dim, plan.gram_dim);
  EXPECT_EQ(cuda::gram_batch_items(cap, plan.gram_dim), plan.prune_batch);
  // Shorter lists: more items in the same bytes (rows bind: 304 / 112 times as many).
  EXPECT_EQ(cuda::gram_batch_items(cap, 112), std::uint64_t{plan.prune_batch} * 304 / 112);
  // A sub-batch's bytes never exceed what the plan counted for its prune batch.
  for (std::uint32_t g = cuda::kGramAlign; g <= plan.gram_dim; g += cuda::kGramAlign) {
    const std::uint64_t items = cuda::gram_batch_items(cap, g);
    EXPECT_LE(items * g * 768 * 4 + items * g * g * 4, std::uint64_t{plan.prune_batch} * plan.per_prune_bytes) << g;
  }
}

TEST(CudaGramBatches, RandomGroupsAreCoveredOnceAndFit) {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 200; ++round) {
    const std::uint32_t max_count = 1 + static_cast<std::uint32_t>(rng() % 400);
    const std::uint32_t max_gram_dim = cuda::gram_dim_for(max_count, 1u << 20);
    const std::size_t dims = 1 + rng() % 1000;
    const std::uint64_t prune_batch = 1 + rng() % 64;
    const GramCapacity cap = capacity(prune_batch, max_gram_dim, dims);
    std::vector<std::uint32_t> counts(1 + rng() % 3000);
    const std::uint32_t lo = static_cast<std::uint32_t>(rng() % (max_count + 1));
    for (auto& c : counts) c = lo + static_cast<std::uint32_t>(rng() % (max_count - lo + 1));
    const auto batches = check_group(counts, max_count, cap);
    // Bounded padding: no more than the one-run-per-class layout plus the launches it saves.
    const auto hist = histogram_of(counts, max_count);
    const auto fine = one_run_per_class(hist, cap);
    EXPECT_LE(batches.size(), fine.size());
    EXPECT_LE(cuda::gram_batches_cost(batches, dims), cuda::gram_batches_cost(fine, dims) * (1 + 1e-12));
    EXPECT_LE(padded_work(batches, dims),
              padded_work(fine, dims) * (1 + 1e-12) +
                  cuda::kGramLaunchCost * static_cast<double>(fine.size() - batches.size()));
    // Never more work than the unbucketed layout (one gram_dim for the whole group).
    const double unbucketed = static_cast<double>(counts.size()) *
                              (static_cast<double>(max_gram_dim) * dims * (max_gram_dim + cuda::kGramRowCost));
    EXPECT_LE(padded_work(batches, dims), unbucketed * (1 + 1e-12));
  }
}

// The review's case: 1M x 768 at L 100, R 50 (gram_dim 304), counts mostly near 110.
TEST(CudaGramBatches, RealisticCountsDoAFractionOfTheUnbucketedWork) {
  const GramCapacity cap = h100_capacity();
  ASSERT_EQ(cap.max_gram_dim, 304u);
  for (const std::size_t group : {8192u, 60000u}) {
    const auto counts = realistic_counts(group, 300, group);
    const auto batches = check_group(counts, 300, cap);
    cuda::GramWork work;
    work.add_group(histogram_of(counts, 300), batches, 768, cap.max_gram_dim);
    EXPECT_EQ(work.items, group);
    EXPECT_EQ(work.groups, 1u);
    EXPECT_EQ(work.sub_batches, batches.size());
    EXPECT_DOUBLE_EQ(work.flops_unbucketed, 2.0 * group * 304.0 * 304.0 * 768.0);
    // Padding of at most one class per item would already cut the GEMM to (112 / 304)^2 of it.
    EXPECT_LT(work.flops * 4, work.flops_unbucketed) << work.describe();
    EXPECT_LT(work.row_bytes * 2, work.row_bytes_unbucketed) << work.describe();
    EXPECT_LE(batches.size(), 80u) << "launches stay few";
    // The padding itself is small: the work is within 10% of exact (1 + count rows per item).
    double exact = 0;
    for (const auto c : counts) exact += 2.0 * (c + 1.0) * (c + 1.0) * 768.0;
    EXPECT_LT(work.flops, 1.1 * exact) << work.describe();
  }
}

TEST(CudaGramBatches, EdgeCases) {
  const GramCapacity cap = capacity(8, 304, 64);
  // No items: no sub-batch.
  EXPECT_TRUE(cuda::plan_gram_batches(std::vector<std::uint32_t>(301, 0), cap).empty());
  EXPECT_TRUE(cuda::plan_gram_batches({}, cap).empty());
  // One item.
  for (const std::uint32_t c : {0u, 1u, 57u, 300u}) {
    const auto b = check_group({c}, 300, cap);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].gram_dim, cuda::gram_dim_for(c, 304));
  }
  // Lists of 0 candidates still get their 1-row Gram matrix (the prune reads G(0, 0) for L2).
  {
    const auto b = check_group(std::vector<std::uint32_t>(50, 0), 300, cap);
    for (const auto& x : b) EXPECT_EQ(x.gram_dim, cuda::kGramAlign);
    // 4 rows instead of 304: 76 times as many items per sub-batch as the prune batch.
    EXPECT_EQ(b.size(), 1u);
  }
  // All counts equal: one class, split evenly only where the buffers need it.
  {
    const auto b = check_group(std::vector<std::uint32_t>(1000, 110), 300, cap);
    const std::uint64_t fit = cuda::gram_batch_items(cap, 112);
    EXPECT_EQ(b.size(), (1000 + fit - 1) / fit);
    for (const auto& x : b) {
      EXPECT_EQ(x.gram_dim, 112u);
      EXPECT_LE(x.end - x.begin, fit);
      EXPECT_GE(x.end - x.begin, 1000 / b.size());
    }
  }
  // All at max_candidates: the plan's gram_dim and prune batch exactly.
  {
    const auto b = check_group(std::vector<std::uint32_t>(100, 300), 300, cap);
    ASSERT_EQ(b.size(), 13u);  // ceil(100 / 8)
    for (const auto& x : b) {
      EXPECT_EQ(x.gram_dim, 304u);
      EXPECT_LE(x.end - x.begin, 8u);
    }
  }
  // Counts 0 and max_candidates together, and a plan gram_dim that is not a multiple of 4.
  {
    std::vector<std::uint32_t> counts(40, 0);
    counts.insert(counts.end(), 40, 300);
    (void)check_group(counts, 300, cap);
    (void)check_group(counts, 300, capacity(3, 301, 20));
  }
  // Buffers for far more items of a short list than one GEMM call takes: calls of kMaxGemmBatch.
  {
    const GramCapacity big = capacity(8192, 304, 768);
    EXPECT_EQ(cuda::gram_batch_items(big, 4), cuda::kMaxGemmBatch);
    const auto b = check_group(std::vector<std::uint32_t>(200000, 2), 300, big);
    EXPECT_EQ(b.size(), 4u);  // ceil(200,000 / 65,535)
  }
  // Tiny dimensions: launches dominate and classes merge, still within the buffers.
  {
    std::vector<std::uint32_t> counts;
    for (std::uint32_t c = 0; c <= 300; ++c) counts.push_back(c);
    const auto few = check_group(counts, 300, capacity(3, 304, 2));
    const auto many = check_group(counts, 300, capacity(3, 304, 768));
    EXPECT_LT(few.size(), one_run_per_class(histogram_of(counts, 300), capacity(3, 304, 2)).size());
    EXPECT_GE(many.size(), few.size());
  }
}

TEST(CudaGramBatches, BadInputsAreRefused) {
  const GramCapacity cap = capacity(8, 304, 64);
  std::vector<std::uint32_t> hist(400, 0);
  hist[303] = 1;  // 303 candidates need 304 rows: fits
  EXPECT_EQ(cuda::plan_gram_batches(hist, cap).size(), 1u);
  hist[304] = 1;  // 305 rows: more than the plan's Gram matrices
  EXPECT_THROW((void)cuda::plan_gram_batches(hist, cap), vs::Error);
  GramCapacity small = cap;
  small.row_floats = 304 * 64 - 1;  // not even one full-size item
  EXPECT_THROW((void)cuda::plan_gram_batches(std::vector<std::uint32_t>{1}, small), vs::Error);
  std::vector<std::uint32_t> huge(2, 0xFFFFFFFFu);  // 2^33 - 2 items
  EXPECT_THROW((void)cuda::plan_gram_batches(huge, cap), vs::Error);
}

TEST(CudaGramBatches, WorkCountsTheLayoutAndTheUnbucketedOne) {
  const GramCapacity cap = capacity(1000, 304, 10);
  std::vector<std::uint32_t> hist(301, 0);
  hist[3] = 2;   // gram_dim 4
  hist[10] = 1;  // gram_dim 12
  const auto batches = cuda::plan_gram_batches(hist, cap);
  cuda::GramWork w;
  w.add_group(hist, batches, 10, 304);
  w.add_group(std::vector<std::uint32_t>(301, 0), {}, 10, 304);  // an empty group counts nothing
  EXPECT_EQ(w.items, 3u);
  EXPECT_EQ(w.groups, 1u);
  double flops = 0;
  for (const auto& b : batches) flops += 2.0 * (b.end - b.begin) * b.gram_dim * b.gram_dim * 10;
  EXPECT_DOUBLE_EQ(w.flops, flops);
  EXPECT_DOUBLE_EQ(w.flops_unbucketed, 2.0 * 3 * 12 * 12 * 10);
  EXPECT_DOUBLE_EQ(w.row_bytes_unbucketed, 3.0 * 12 * 10 * 4);
  EXPECT_FALSE(w.describe().empty());
}

// The prune kernel reads G(a, b) of its item at position j of a sub-batch with gram_dim rows,
// and carves its shared memory for the sub-batch's longest list: the kept list and distances
// must be the same whatever gram_dim (padding entries hold NaN here), position and capacity.
TEST(CudaGramBatches, PruneResultIgnoresGramDimPositionAndCapacity) {
  std::mt19937_64 rng(9);
  std::normal_distribution<float> normal;
  for (const auto metric : {distance::Metric::kL2, distance::Metric::kCosine, distance::Metric::kInnerProduct}) {
    vamana::BuildParams bp;
    bp.metric = metric;
    const auto s = cuda::derive_settings(bp);  // max_candidates 300
    for (int round = 0; round < 20; ++round) {
      const std::size_t n = 400, dims = 16;
      std::vector<float> x(n * dims);
      for (auto& v : x) v = normal(rng);
      if (metric == distance::Metric::kCosine)
        for (std::size_t i = 0; i < n; ++i) (void)distance::normalize(&x[i * dims], dims);
      const std::uint32_t count = static_cast<std::uint32_t>(rng() % (s.max_candidates + 1));
      std::vector<std::uint32_t> ids(n);
      std::iota(ids.begin(), ids.end(), 0u);
      std::shuffle(ids.begin(), ids.end(), rng);
      const std::uint32_t p = ids.back();
      const std::vector<std::uint32_t> cand(ids.begin(), ids.begin() + count);
      std::vector<std::uint32_t> rows = {p};
      rows.insert(rows.end(), cand.begin(), cand.end());
      auto run = [&](std::uint32_t gram_dim, std::uint32_t position, std::uint32_t capacity,
                     std::vector<std::uint32_t>& out, std::vector<float>& out_d) {
        std::vector<float> gram(std::size_t{position + 1} * gram_dim * gram_dim, std::nanf(""));
        for (std::uint32_t a = 0; a <= count; ++a)
          for (std::uint32_t b = 0; b <= count; ++b)
            gram[cuda::gram_entry_offset(position, gram_dim, a, b)] =
                distance::dot(&x[rows[a] * dims], &x[rows[b] * dims], dims);
        std::vector<std::uint32_t> mem(cuda::core::prune_shared_bytes(capacity) / 4 + 1);
        const auto shared = cuda::core::carve_prune_shared(mem.data(), capacity);
        out.assign(s.R, 0);
        out_d.assign(s.R, 0.0f);
        // As prune_kernel reads it: G(a, b) as G(b, a) of the item's matrix.
        auto at = [&](std::uint32_t a, std::uint32_t b) {
          return gram[cuda::gram_entry_offset(position, gram_dim, b, a)];
        };
        const std::uint32_t kept = cuda::core::prune_node(cuda::core::SerialTeam{}, p, cand.data(), count, at, s.prune,
                                                          shared, out.data(), out_d.data());
        out.resize(kept);
        out_d.resize(kept);
      };
      std::vector<std::uint32_t> want, got;
      std::vector<float> want_d, got_d;
      run(304, 0, s.max_candidates, want, want_d);  // the unbucketed layout
      const std::uint32_t tight = cuda::gram_dim_for(count, 304);
      for (const auto& [gram_dim, position, capacity] :
           {std::tuple{tight, 0u, std::max(1u, count)}, std::tuple{tight, 5u, s.max_candidates},
            std::tuple{count + 1, 2u, std::max(1u, count)}, std::tuple{304u, 3u, std::max(1u, count)}}) {
        run(gram_dim, position, capacity, got, got_d);
        EXPECT_EQ(got, want) << "count " << count << " gram_dim " << gram_dim;
        ASSERT_EQ(got_d.size(), want_d.size());
        for (std::size_t k = 0; k < got_d.size(); ++k) EXPECT_EQ(got_d[k], want_d[k]);
      }
    }
  }
}

}  // namespace
