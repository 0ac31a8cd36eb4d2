// The GPU graph build's algorithm on the CPU (see reference.hpp); the device pipeline
// (device_build.cpp) runs the same steps with kernels.
#include "vectorscale/cuda/reference.hpp"

#include <algorithm>
#include <vector>

#include "vectorscale/core/error.hpp"
#include "vectorscale/cuda/core/prune_node.hpp"
#include "vectorscale/cuda/core/reverse.hpp"
#include "vectorscale/cuda/core/search.hpp"
#include "vectorscale/cuda/core/team.hpp"
#include "vectorscale/distance/distance.hpp"

namespace vs::cuda {

namespace {

// Buffers of one serial "team".
class Worker {
 public:
  Worker(const float* vectors, std::size_t dims, const GraphSettings& s)
      : vectors_(vectors),
        dims_(dims),
        s_(s),
        search_mem_(core::search_shared_bytes(s.L, s.stride) / 4 + 1),
        prune_mem_(core::prune_shared_bytes(s.max_candidates) / 4 + 1),
        table_(core::visited_table_slots(s.max_iters, s.stride), core::kEmptySlot) {}

  // Greedy search for row p from `start` on the graph (the global visited table alone, left
  // empty by each search); fills the expansion log.
  core::SearchResult search(std::uint32_t p, std::uint32_t start, const core::SearchArgs& args,
                            std::vector<std::uint32_t>& log_id, std::vector<float>& log_key) {
    log_id.resize(s_.max_iters);
    log_key.resize(s_.max_iters);
    const auto shared = core::carve_search_shared(search_mem_.data(), s_.L, s_.stride);
    return core::greedy_search_one(team_, args, shared, row(p), start, table_.data(),
                                   static_cast<std::uint32_t>(table_.size() - 1), log_id.data(), log_key.data());
  }

  // RobustPrune of p over `count` candidates; writes the kept ids (and distances) to out.
  std::uint32_t prune(std::uint32_t p, const std::uint32_t* cand, std::uint32_t count, std::uint32_t* out,
                      float* out_distance) {
    VS_ASSERT(count <= s_.max_candidates);
    // Candidates must be distinct (by construction of every caller).
    sorted_.assign(cand, cand + count);
    std::sort(sorted_.begin(), sorted_.end());
    VS_ASSERT(std::adjacent_find(sorted_.begin(), sorted_.end()) == sorted_.end());
    rows_.resize(count + 1);
    rows_[0] = row(p);
    for (std::uint32_t c = 0; c < count; ++c) rows_[c + 1] = row(cand[c]);
    norms_.resize(count + 1);
    for (std::uint32_t r = 0; r <= count; ++r) norms_[r] = distance::dot(rows_[r], rows_[r], dims_);
    auto gram = [&](std::uint32_t a, std::uint32_t b) {
      return a == b ? norms_[a] : distance::dot(rows_[a], rows_[b], dims_);
    };
    const auto shared = core::carve_prune_shared(prune_mem_.data(), s_.max_candidates);
    return core::prune_node(team_, p, cand, count, gram, s_.prune, shared, out, out_distance);
  }

 private:
  const float* row(std::uint32_t i) const noexcept { return vectors_ + static_cast<std::size_t>(i) * dims_; }

  const float* vectors_;
  std::size_t dims_;
  const GraphSettings& s_;
  core::SerialTeam team_;
  std::vector<std::uint32_t> search_mem_;  // 4-byte aligned team-shared memory
  std::vector<std::uint32_t> prune_mem_;
  std::vector<std::uint32_t> table_;
  std::vector<std::uint32_t> sorted_;
  std::vector<const float*> rows_;
  std::vector<float> norms_;
};

}  // namespace

vamana::Graph reference_build_graph(const float* vectors, std::size_t n, std::size_t dims,
                                    const vamana::BuildParams& params, const GraphOptions& options,
                                    std::size_t max_batch, const Control& control, GraphBuildStats* stats) {
  const GraphSettings s = derive_settings(params, options);
  VS_EXPECTS(n < 0x80000000u, "too many vectors for the GPU build: %zu", n);
  GraphBuildStats st;
  vamana::Graph g;
  g.num_nodes = static_cast<std::uint32_t>(n);
  g.stride = s.stride;
  g.neighbors = Array<std::uint32_t>(n * s.stride);
  g.degrees = Array<std::uint32_t>(n);
  if (n == 0) return g;
  g.medoid = vamana::medoid(vectors, n, dims);
  auto slots = [&](std::uint32_t i) { return g.neighbors.data() + static_cast<std::size_t>(i) * s.stride; };

  // The vectors the graph build reads: bfloat16 values (held as floats: to_float(to_bf16(x)))
  // when the device would read bfloat16.
  std::vector<float> rounded;
  if (options.bf16_vectors) {
    rounded.resize(n * dims);
    for (std::size_t i = 0; i < rounded.size(); ++i) rounded[i] = core::to_float(core::to_bf16(vectors[i]));
  }
  const float* graph_vectors = options.bf16_vectors ? rounded.data() : vectors;
  core::SearchArgs args;
  args.vectors = graph_vectors;
  args.dims = static_cast<std::uint32_t>(dims);
  args.metric = s.metric;
  args.neighbors = g.neighbors.data();
  args.degrees = g.degrees.data();
  args.stride = s.stride;
  args.list_size = s.L;
  args.max_iters = s.max_iters;

  Worker w(graph_vectors, dims, s);
  const std::vector<std::uint32_t> order = vamana::insertion_order(n, params.seed);
  if (max_batch == 0) max_batch = static_cast<std::size_t>(s.batch_fraction * static_cast<double>(n));
  max_batch = std::max<std::size_t>(1, max_batch);
  std::vector<std::vector<std::uint32_t>> log_id, kept;
  std::vector<std::vector<float>> log_key, kept_d;
  std::vector<std::uint32_t> expanded;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> edges;
  std::vector<std::uint32_t> incoming, cand(s.max_candidates);

  // One batch: search every row on the graph as it was before the batch, prune, reverse edges.
  // A refining batch prunes the expanded nodes together with the row's current list.
  auto run_batch = [&](std::size_t begin, std::size_t end, bool refine) {
    const std::size_t count = end - begin;
    log_id.resize(count);
    log_key.resize(count);
    kept.assign(count, std::vector<std::uint32_t>(s.R));
    kept_d.assign(count, std::vector<float>(s.R));
    expanded.assign(count, 0);
    // 1. Search.
    for (std::size_t b = 0; b < count; ++b) {
      const auto r = w.search(order[begin + b], g.medoid, args, log_id[b], log_key[b]);
      expanded[b] = r.expanded;
      st.distance_computations += r.computed;
      st.expansions += r.expanded;
      if (r.expanded == s.max_iters) ++st.capped_searches;
    }
    // 2. Prune each row's candidates into its list.
    for (std::size_t b = 0; b < count; ++b) {
      const std::uint32_t p = order[begin + b];
      std::uint32_t size = expanded[b];
      const std::uint32_t* candidates = log_id[b].data();
      if (refine) {
        size = core::write_union(slots(p), g.degrees[p], log_id[b].data(), expanded[b], s.max_candidates, cand.data());
        candidates = cand.data();
      }
      const std::uint32_t k = w.prune(p, candidates, size, kept[b].data(), kept_d[b].data());
      std::copy_n(kept[b].data(), k, slots(p));
      g.degrees[p] = k;
      kept[b].resize(k);
    }
    // 3. Reverse edges, grouped by target and nearest first.
    edges.clear();
    for (std::size_t b = 0; b < count; ++b)
      for (std::size_t k = 0; k < kept[b].size(); ++k)
        edges.emplace_back(core::edge_key(kept[b][k], kept_d[b][k]), order[begin + b]);
    std::stable_sort(edges.begin(), edges.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    for (std::size_t i = 0; i < edges.size();) {
      const std::uint32_t q = core::edge_key_target(edges[i].first);
      std::size_t j = i;
      incoming.clear();
      while (j < edges.size() && core::edge_key_target(edges[j].first) == q) incoming.push_back(edges[j++].second);
      i = j;
      const auto in_count = static_cast<std::uint32_t>(incoming.size());
      const std::uint32_t size = core::union_size(slots(q), g.degrees[q], incoming.data(), in_count, s.max_candidates);
      if (size <= s.stride) {
        g.degrees[q] = core::write_union(slots(q), g.degrees[q], incoming.data(), in_count, s.max_candidates, slots(q));
      } else {
        (void)core::write_union(slots(q), g.degrees[q], incoming.data(), in_count, s.max_candidates, cand.data());
        g.degrees[q] = w.prune(q, cand.data(), size, slots(q), nullptr);
        ++st.reverse_prunes;
      }
    }
    ++st.batches;
  };

  st.refine_passes = s.refine_passes_for(n);
  const std::size_t total = n * (1 + st.refine_passes);
  std::size_t done = 0;
  auto poll = [&] {
    if (control.cancel && control.cancel()) throw Cancelled();
    if (control.progress) control.progress(vamana::kPhaseInsert, done, total);
  };
  for (const auto& [begin, end] : insertion_batches(n, max_batch, s.batch_growth)) {
    poll();
    run_batch(begin, end, false);
    done += end - begin;
  }
  for (std::uint32_t pass = 0; pass < st.refine_passes; ++pass)
    for (std::size_t begin = 0; begin < n; begin += max_batch) {
      poll();
      const std::size_t end = std::min(n, begin + max_batch);
      run_batch(begin, end, true);
      done += end - begin;
    }
  poll();
  // 4. Every list to at most R.
  if (control.progress) control.progress(vamana::kPhasePrune, 0, n);
  for (std::uint32_t i = 0; i < n; ++i) {
    if (g.degrees[i] <= s.R) continue;
    std::copy_n(slots(i), g.degrees[i], cand.data());
    g.degrees[i] = w.prune(i, cand.data(), g.degrees[i], slots(i), nullptr);
    ++st.final_prunes;
  }
  if (control.progress) control.progress(vamana::kPhasePrune, n, n);
  // 5. Reachability from the medoid: common/'s pass.
  st.repaired_unreachable = vamana::link_unreachable(g, vectors, dims, params, control, &st.distance_computations);
  if (stats != nullptr) *stats = st;
  return g;
}

}  // namespace vs::cuda
