// Settings, insertion batches, and the device-memory plan of the GPU graph build.
#include "vectorscale/cuda/plan.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "vectorscale/core/error.hpp"
#include "vectorscale/cuda/core/search.hpp"
#include "vectorscale/distance/distance.hpp"
#include "vectorscale/vamana/build.hpp"
#include "vectorscale/vamana/prune.hpp"

namespace vs::cuda {

static_assert(static_cast<int>(core::Metric::kL2) == static_cast<int>(distance::Metric::kL2));
static_assert(static_cast<int>(core::Metric::kCosine) == static_cast<int>(distance::Metric::kCosine));
static_assert(static_cast<int>(core::Metric::kInnerProduct) == static_cast<int>(distance::Metric::kInnerProduct));
static_assert(core::kNoNode == vamana::kNoNode);

GraphSettings derive_settings(const vamana::BuildParams& params, const GraphOptions& options) {
  vamana::check(params);
  VS_EXPECTS(options.batch_fraction > 0 && options.batch_fraction <= 1, "batch_fraction must be in (0, 1]");
  VS_EXPECTS(options.batch_growth > 0 && options.batch_growth <= 1, "batch_growth must be in (0, 1]");
  VS_EXPECTS(options.refine_passes <= 4, "refine_passes must be at most 4");
  VS_EXPECTS(options.max_iters_factor >= 1 && options.max_iters_factor <= 64, "max_iters_factor must be in [1, 64]");
  VS_EXPECTS(options.local_visited_slots == 0 ||
                 (options.local_visited_slots >= core::kLocalProbes && options.local_visited_slots <= (1u << 20) &&
                  (options.local_visited_slots & (options.local_visited_slots - 1)) == 0),
             "local_visited_slots must be 0 or a power of two in [%u, 2^20]", core::kLocalProbes);
  GraphSettings s;
  s.metric = static_cast<core::Metric>(params.metric);
  s.R = params.num_neighbors;
  s.L = params.search_list_size;
  // The same capacity as common/'s build (Builder::cap_).
  s.stride = static_cast<std::uint32_t>(std::ceil(params.slack * static_cast<float>(params.num_neighbors)));
  // The core's 32-bit sizes (visited_table_slots, next_pow2 of the candidate count, shared-memory
  // bytes) stay exact only while one search can see at most 2^29 nodes; beyond that the
  // conversion below would overflow and next_pow2 would never return.
  const double iters = std::ceil(options.max_iters_factor * params.search_list_size);
  VS_EXPECTS(iters * s.stride <= kMaxSearchReach,
             "search_list_size %u with num_neighbors %u is too large for the GPU build", params.search_list_size,
             params.num_neighbors);
  s.max_iters = static_cast<std::uint32_t>(iters);
  s.max_candidates = std::max(s.max_iters, s.stride + s.R);
  s.batch_fraction = options.batch_fraction;
  s.batch_growth = options.batch_growth;
  s.refine_passes = options.refine_passes;
  s.refine_max_rows = options.refine_max_rows;
  s.local_slots = std::min(options.local_visited_slots, core::visited_table_slots(s.max_iters, s.stride));
  s.prune.metric = s.metric;
  s.prune.R = s.R;
  s.prune.ratio_rule = params.metric != distance::Metric::kInnerProduct;
  s.prune.schedule = core::make_alpha_schedule(params.max_alpha, s.prune.ratio_rule);
  // The fixed-size schedule must be common/'s.
  const std::vector<float> want =
      s.prune.ratio_rule ? vamana::alpha_schedule(params.max_alpha) : std::vector<float>{1.0f};
  VS_ASSERT(want.size() == s.prune.schedule.count);
  for (std::size_t i = 0; i < want.size(); ++i) VS_ASSERT(want[i] == s.prune.schedule.alpha[i]);
  return s;
}

std::vector<std::pair<std::size_t, std::size_t>> insertion_batches(std::size_t n, std::size_t max_batch,
                                                                   double growth) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  max_batch = std::max<std::size_t>(1, max_batch);
  std::size_t begin = 0, size = 1;
  while (begin < n) {
    const std::size_t end = std::min(n, begin + size);
    out.emplace_back(begin, end);
    begin = end;
    const auto grown = static_cast<std::size_t>(growth * static_cast<double>(begin));
    size = std::min(max_batch, std::max<std::size_t>(1, grown));
  }
  return out;
}

std::string MemoryPlan::describe() const {
  return detail::format(
      "%s vectors%s, budget %.1f MiB, peak %.1f MiB, search batch %zu, prune batch %zu, gram %u, table %u slots, "
      "upload chunk %zu rows",
      resident ? "resident" : "mapped host", bf16_graph ? " (a bfloat16 copy on the device for the graph)" : "",
      static_cast<double>(budget) / (1 << 20), static_cast<double>(peak) / (1 << 20), search_batch, prune_batch,
      gram_dim, table_slots, upload_rows);
}

MemoryPlan plan_device_memory(std::uint64_t budget, std::size_t n, std::size_t dims, std::size_t code_words,
                              const GraphSettings& s, const PlanLimits& limits, bool bf16_graph) {
  VS_EXPECTS(n >= 1 && dims >= 1, "nothing to plan for");
  MemoryPlan p;
  p.budget = limits.budget != 0 ? limits.budget : budget;
  const std::uint64_t N = n, D = dims;
  p.gram_dim = (s.max_candidates + 1 + 3) / 4 * 4;
  p.table_slots = core::visited_table_slots(s.max_iters, s.stride);

  // Upload chunks: about 64 MiB of pinned staging each, a multiple of kStatsRows rows.
  std::size_t rows = limits.upload_rows != 0 ? limits.upload_rows : (std::size_t{64} << 20) / (dims * sizeof(float));
  rows = std::max(kStatsRows, rows / kStatsRows * kStatsRows);
  p.upload_rows = std::min(rows, (n + kStatsRows - 1) / kStatsRows * kStatsRows);

  const std::uint64_t groups = (N + kStatsRows - 1) / kStatsRows;
  p.train_bytes = groups * D * sizeof(double) + 4 * D * sizeof(double) + N * code_words * sizeof(std::uint64_t) +
                  N * sizeof(std::uint64_t);     // partial sums, statistics, codes, medoid keys
  p.graph_bytes = N * s.stride * 4 + 3 * N * 4;  // adjacency, degrees, order, lists over R
  const std::uint64_t M = p.gram_dim;
  // A prune group's order by candidate count (gram_batches.hpp), sized for the larger of a
  // search batch (the insertion prunes take a whole batch) and a prune batch, so counted in
  // both: sorted counts, item ids and the order (4 each), and CUB's copy of keys and values
  // plus its histograms (12).
  constexpr std::uint64_t kOrderBytes = 24;
  // Search: visited table, expansion log (ids + distances), counts; prune output distances;
  // reverse edges: keys and values double-buffered, run starts, lengths and targets, the
  // overflow list, and room for CUB's temporary storage (about one more key buffer).
  // (keys 8 + 8, values 4 + 4; targets, run targets, lengths, starts 4 each; overflow 4; CUB 16).
  p.per_query_bytes = std::uint64_t{p.table_slots} * 4 + std::uint64_t{s.max_iters} * 8 + 8 + std::uint64_t{s.R} * 4 +
                      std::uint64_t{s.R} * (8 + 8 + 4 + 4) + std::uint64_t{s.R} * 4 * 4 + std::uint64_t{s.R} * 4 +
                      std::uint64_t{s.R} * 16 + kOrderBytes;
  // Prune: gathered rows, the Gram matrix, candidates and counts, and the order by count.
  p.per_prune_bytes = M * D * 4 + M * M * 4 + std::uint64_t{s.max_candidates} * 4 + 16 + kOrderBytes;
  constexpr std::uint64_t kMargin = 64ull << 20;  // cuBLAS workspace, CUB, the context's own needs

  const std::size_t want_batch = std::max<std::size_t>(
      1, std::min<std::size_t>(n, static_cast<std::size_t>(s.batch_fraction * static_cast<double>(n))));
  // The reverse-edge step indexes a batch's edges (rows * R) with 32-bit run starts and counts.
  const std::size_t edge_cap = std::max<std::size_t>(1, kMaxBatchEdges / s.R);
  const std::size_t search_cap =
      std::min(edge_cap, limits.search_batch != 0 ? std::min(limits.search_batch, want_batch) : want_batch);
  const std::size_t prune_cap = limits.prune_batch != 0 ? limits.prune_batch : std::size_t{8192};

  // The placements of the vectors, in order of preference: (float resident, bfloat16 graph).
  const std::pair<bool, bool> placements[] = {{true, bf16_graph}, {false, true}, {false, false}};
  for (const auto& [resident, bf16] : placements) {
    if (bf16 && !bf16_graph) continue;
    if (resident && (limits.force_mapped || limits.force_mapped_training)) continue;
    if (bf16 && limits.force_mapped) continue;
    p.resident = resident;
    p.bf16_graph = bf16;
    p.train_vector_bytes = resident ? N * D * 4 : 0;
    p.vector_bytes = bf16 ? N * D * 2 : p.train_vector_bytes;
    // The bfloat16 copy is made while the float vectors are still on the device (if they are).
    const std::uint64_t copy_bytes = bf16 ? p.train_vector_bytes + p.vector_bytes : 0;
    if (kMargin + p.train_vector_bytes + p.train_bytes > p.budget || kMargin + copy_bytes > p.budget ||
        kMargin + p.vector_bytes + p.graph_bytes > p.budget)
      continue;
    const std::uint64_t avail = p.budget - kMargin - p.vector_bytes - p.graph_bytes;
    // Pruning gets up to a third of what is left, searching the rest.
    std::size_t prune = static_cast<std::size_t>(std::min<std::uint64_t>(prune_cap, avail / 3 / p.per_prune_bytes));
    if (prune == 0) continue;
    const std::uint64_t left = avail - prune * p.per_prune_bytes;
    std::size_t search = static_cast<std::size_t>(std::min<std::uint64_t>(search_cap, left / p.per_query_bytes));
    if (search == 0) continue;
    p.search_batch = search;
    p.prune_batch = prune;
    p.peak =
        kMargin + std::max({p.train_vector_bytes + p.train_bytes, copy_bytes,
                            p.vector_bytes + p.graph_bytes + search * p.per_query_bytes + prune * p.per_prune_bytes});
    return p;
  }
  VS_FAIL(ErrorCode::kOutOfMemory,
          "the GPU build of %zu rows of %zu dimensions does not fit in %.1f MiB of device memory, even with the "
          "vectors in host memory",
          n, dims, static_cast<double>(p.budget) / (1 << 20));
}

}  // namespace vs::cuda
