// Gram GEMM sub-batches of a prune group from the histogram of its candidate counts
// (gram_batches.hpp).
#include "vectorscale/cuda/gram_batches.hpp"

#include <algorithm>
#include <limits>

#include "vectorscale/core/error.hpp"
#include "vectorscale/cuda/plan.hpp"

namespace vs::cuda {

GramCapacity gram_capacity(const MemoryPlan& plan, std::size_t dims) {
  GramCapacity c;
  c.row_floats = std::uint64_t{plan.prune_batch} * plan.gram_dim * dims;
  c.gram_floats = std::uint64_t{plan.prune_batch} * plan.gram_dim * plan.gram_dim;
  c.max_gram_dim = plan.gram_dim;
  c.dims = dims;
  return c;
}

std::uint32_t gram_dim_for(std::uint32_t most, std::uint32_t max_gram_dim) noexcept {
  const std::uint64_t aligned = (std::uint64_t{most} + 1 + kGramAlign - 1) / kGramAlign * kGramAlign;
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(aligned, max_gram_dim));
}

std::uint64_t gram_batch_items(const GramCapacity& cap, std::uint32_t gram_dim) noexcept {
  if (gram_dim == 0 || cap.dims == 0) return 0;
  const std::uint64_t g = gram_dim;
  const std::uint64_t by_rows = cap.row_floats / (g * cap.dims), by_gram = cap.gram_floats / (g * g);
  return std::min<std::uint64_t>({by_rows, by_gram, kMaxGemmBatch});
}

namespace {

double item_cost(std::uint32_t gram_dim, std::size_t dims) noexcept {
  const double g = gram_dim;
  return g * static_cast<double>(dims) * (g + kGramRowCost);
}

// The items of one gram_dim class: counts whose gram_dim_for is `gram_dim`, in sorted positions
// [first, first + items).
struct GramClass {
  std::uint32_t gram_dim;
  std::uint64_t first, items;
};

}  // namespace

std::vector<GramBatch> plan_gram_batches(std::span<const std::uint32_t> histogram, const GramCapacity& cap,
                                         double launch_cost) {
  VS_EXPECTS(cap.max_gram_dim >= 1 && cap.dims >= 1, "empty Gram capacity");
  VS_EXPECTS(gram_batch_items(cap, cap.max_gram_dim) >= 1, "the Gram buffers do not hold one item of %u rows",
             cap.max_gram_dim);
  std::vector<GramClass> classes;
  std::vector<std::uint64_t> below(histogram.size() + 1, 0);  // below[c]: items with fewer than c candidates
  for (std::size_t c = 0; c < histogram.size(); ++c) {
    below[c + 1] = below[c] + histogram[c];
    if (histogram[c] == 0) continue;
    VS_EXPECTS(c + 1 <= cap.max_gram_dim, "%zu candidates need more than %u Gram rows", c, cap.max_gram_dim);
    const std::uint32_t g = gram_dim_for(static_cast<std::uint32_t>(c), cap.max_gram_dim);
    if (classes.empty() || classes.back().gram_dim != g) classes.push_back({g, below[c], 0});
    classes.back().items += histogram[c];
  }
  const std::uint64_t total = below.back();
  VS_EXPECTS(total <= std::numeric_limits<std::uint32_t>::max(), "too many prunes in one group: %llu",
             static_cast<unsigned long long>(total));
  std::vector<GramBatch> out;
  if (total == 0) return out;

  // cost of one run of classes [i, j]: every item at class j's gram_dim, split where the buffers
  // cannot hold the run at once.
  auto run = [&](std::size_t i, std::size_t j, std::uint64_t& items, std::uint64_t& pieces) {
    items = classes[j].first + classes[j].items - classes[i].first;
    const std::uint64_t fit = gram_batch_items(cap, classes[j].gram_dim);
    pieces = (items + fit - 1) / fit;
    return static_cast<double>(items) * item_cost(classes[j].gram_dim, cap.dims) +
           static_cast<double>(pieces) * launch_cost;
  };
  // best[j]: cheapest cut of classes [0, j); from[j]: where its last run starts.
  const std::size_t k = classes.size();
  std::vector<double> best(k + 1, std::numeric_limits<double>::infinity());
  std::vector<std::size_t> from(k + 1, 0);
  best[0] = 0;
  for (std::size_t j = 0; j < k; ++j)
    for (std::size_t i = 0; i <= j; ++i) {
      std::uint64_t items = 0, pieces = 0;
      const double c = best[i] + run(i, j, items, pieces);
      if (c < best[j + 1]) best[j + 1] = c, from[j + 1] = i;
    }
  std::vector<std::pair<std::size_t, std::size_t>> runs;  // [i, j] classes
  for (std::size_t j = k; j > 0; j = from[j]) runs.emplace_back(from[j], j - 1);
  std::reverse(runs.begin(), runs.end());

  // The count of the item at sorted position x: the c with below[c] <= x < below[c + 1].
  auto count_at = [&](std::uint64_t x) {
    return static_cast<std::uint32_t>(std::upper_bound(below.begin(), below.end(), x) - below.begin() - 1);
  };
  for (const auto& [i, j] : runs) {
    std::uint64_t items = 0, pieces = 0;
    (void)run(i, j, items, pieces);
    const std::uint64_t begin = classes[i].first;
    for (std::uint64_t t = 0; t < pieces; ++t) {
      GramBatch b;
      b.begin = static_cast<std::uint32_t>(begin + items * t / pieces);
      b.end = static_cast<std::uint32_t>(begin + items * (t + 1) / pieces);
      b.most = count_at(b.end - 1);
      b.gram_dim = gram_dim_for(b.most, cap.max_gram_dim);
      out.push_back(b);
    }
  }
  return out;
}

double gram_batches_cost(std::span<const GramBatch> batches, std::size_t dims, double launch_cost) noexcept {
  double c = 0;
  for (const GramBatch& b : batches)
    c += static_cast<double>(b.end - b.begin) * item_cost(b.gram_dim, dims) + launch_cost;
  return c;
}

void GramWork::add_group(std::span<const std::uint32_t> histogram, std::span<const GramBatch> batches, std::size_t dims,
                         std::uint32_t max_gram_dim, double element_bytes) noexcept {
  std::uint64_t n = 0;
  std::uint32_t most = 0;
  for (std::size_t c = 0; c < histogram.size(); ++c)
    if (histogram[c] != 0) n += histogram[c], most = static_cast<std::uint32_t>(c);
  if (n == 0) return;
  const double d = static_cast<double>(dims);
  items += n;
  ++groups;
  sub_batches += batches.size();
  for (const GramBatch& b : batches) {
    const double m = b.end - b.begin, g = b.gram_dim;
    flops += 2 * m * g * g * d;
    row_bytes += m * g * d * element_bytes;
  }
  const double g = gram_dim_for(most, max_gram_dim), m = static_cast<double>(n);
  flops_unbucketed += 2 * m * g * g * d;
  row_bytes_unbucketed += m * g * d * element_bytes;
}

std::string GramWork::describe() const {
  return detail::format(
      "prune GEMMs: %llu items in %llu groups, %llu sub-batches, %.1f GFLOP (unbucketed %.1f, %.2fx), gathered rows "
      "%.2f GiB (unbucketed %.2f)",
      static_cast<unsigned long long>(items), static_cast<unsigned long long>(groups),
      static_cast<unsigned long long>(sub_batches), flops * 1e-9, flops_unbucketed * 1e-9,
      flops > 0 ? flops_unbucketed / flops : 1.0, row_bytes / (1ull << 30), row_bytes_unbucketed / (1ull << 30));
}

}  // namespace vs::cuda
