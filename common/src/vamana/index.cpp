// In-memory index: build (normalise, train SBQ, encode, build the graph) and search.
#include "vectorscale/vamana/index.hpp"

#include <algorithm>
#include <cstring>
#include <utility>

#include "vectorscale/core/error.hpp"
#include "vectorscale/core/threads.hpp"
#include "vectorscale/distance/distance.hpp"

namespace vs::vamana {

Index Index::with_vectors(Array<float>&& vectors, std::size_t n, std::size_t dims, const IndexParams& params,
                          const LabelSets* labels) {
  VS_EXPECTS(dims >= 1, "vectors must have at least one dimension");
  VS_EXPECTS(vectors.size() >= n * dims, "%zu vectors of %zu dimensions need %zu floats, got %zu", n, dims,
             n * dims, vectors.size());
  Index ix;
  ix.n_ = n;
  ix.dims_ = dims;
  ix.metric_ = params.build.metric;
  ix.storage_ = params.storage;
  ix.vectors_ = std::move(vectors);
  if (labels != nullptr) ix.labels_ = *labels;
  return ix;
}

Index Index::build(const float* vectors, std::size_t n, std::size_t dims, const IndexParams& params,
                   const LabelSets* labels, const Control& control, BuildStats* stats) {
  Array<float> copy(n * dims, kUninitialized);
  if (n != 0) std::memcpy(copy.data(), vectors, n * dims * sizeof(float));
  return build(std::move(copy), n, dims, params, labels, control, stats);
}

Index Index::build(Array<float>&& vectors, std::size_t n, std::size_t dims, const IndexParams& params,
                   const LabelSets* labels, const Control& control, BuildStats* stats) {
  Index ix = with_vectors(std::move(vectors), n, dims, params, labels);
  VS_EXPECTS(params.storage == Storage::kMemoryOptimized || params.storage == Storage::kPlain,
             "unknown storage layout");
  // Row by row, so on the build's threads (each a contiguous share of the rows; the same result
  // whatever their number).
  const std::size_t workers = std::max<std::size_t>(1, std::min<std::size_t>(params.build.threads, n));
  const auto each_row = [&](const auto& body) {
    run_workers(workers, [&](std::size_t w) {
      for (std::size_t i = n * w / workers; i < n * (w + 1) / workers; ++i) body(i);
    });
  };
  if (ix.metric_ == distance::Metric::kCosine)
    each_row([&](std::size_t i) { (void)distance::normalize(ix.vectors_.data() + i * dims, dims); });

  if (params.storage == Storage::kMemoryOptimized) {
    const std::uint32_t bits = params.bits_per_dim == 0 ? sbq::default_bits_per_dim(dims) : params.bits_per_dim;
    ix.quantizer_ = sbq::Quantizer::train(ix.vectors_.data(), n, dims, bits, workers);
    ix.codes_ = Array<std::uint64_t>(n * ix.quantizer_.words(), kUninitialized);  // encode writes every word
    each_row([&](std::size_t i) {
      ix.quantizer_.encode(ix.vector(static_cast<std::uint32_t>(i)), ix.codes_.data() + i * ix.quantizer_.words());
    });
  } else {
    VS_EXPECTS(params.bits_per_dim <= 1, "num_bits_per_dimension > 1 requires storage_layout memory_optimized");
  }
  ix.graph_ = build_graph(ix.vectors_.data(), n, dims, params.build, labels, control, default_allocator(), stats);
  return ix;
}

Index Index::from_parts(Array<float>&& vectors, std::size_t n, std::size_t dims, const IndexParams& params,
                        sbq::Quantizer quantizer, Array<std::uint64_t>&& codes, Graph&& graph,
                        const LabelSets* labels) {
  Index ix = with_vectors(std::move(vectors), n, dims, params, labels);
  VS_EXPECTS(graph.num_nodes == n && graph.degrees.size() == n, "the graph has %u nodes, expected %zu",
             graph.num_nodes, n);
  VS_EXPECTS(n == 0 || graph.medoid < n, "the graph has no entry point");
  if (params.storage == Storage::kMemoryOptimized) {
    VS_EXPECTS(quantizer.dims() == dims, "the quantizer has %zu dimensions, expected %zu", quantizer.dims(), dims);
    VS_EXPECTS(codes.size() >= n * quantizer.words(), "%zu code words for %zu rows of %zu words", codes.size(), n,
               quantizer.words());
    ix.quantizer_ = std::move(quantizer);
    ix.codes_ = std::move(codes);
  } else {
    VS_EXPECTS(params.storage == Storage::kPlain, "unknown storage layout");
  }
  ix.graph_ = std::move(graph);
  return ix;
}

void Index::search(const float* query, const SearchParams& params, std::vector<std::uint32_t>& out,
                   SearchScratch& s) const {
  out.clear();
  if (n_ == 0 || params.k == 0) return;
  s.query.assign(query, query + dims_);
  if (metric_ == distance::Metric::kCosine) (void)distance::normalize(s.query.data(), dims_);
  const float* q = s.query.data();
  const bool sbq = storage_ == Storage::kMemoryOptimized;
  if (sbq) {
    s.code.resize(quantizer_.words());
    quantizer_.encode(q, s.code.data());
  }
  const std::size_t words = sbq ? quantizer_.words() : 0;
  auto dist = [&](std::uint32_t id) -> float {
    if (sbq) return static_cast<float>(distance::hamming(s.code.data(), code(id), words));
    return distance::index_distance(metric_, q, vector(id), dims_);
  };

  // Start nodes: the medoid, or the start nodes of the query's labels.
  const bool filtered = !params.labels.empty();
  s.starts.clear();
  if (filtered) {
    for (const Label l : params.labels)
      if (const std::uint32_t st = graph_.label_start(l); st != kNoNode) s.starts.push_back(st);
    if (s.starts.empty()) return;  // no row carries any of these labels
  } else {
    s.starts.push_back(graph_.medoid);
  }

  const std::size_t L = std::max<std::size_t>(params.search_list_size, params.k);
  if (s.visited.size() != n_) s.visited = EpochVisited(n_);
  s.visited.clear();
  s.list.reset(L);
  for (const std::uint32_t st : s.starts)
    if (!s.visited.test_and_set(st)) s.list.insert(st, dist(st));
  s.distance_computations += greedy_search(
      s.list,
      [&](std::uint32_t id, auto&& visit) {
        const auto nb = graph_.neighbors_of(id);
        for (const std::uint32_t x : nb) {
          if (s.visited.test(x)) continue;
          if (sbq) prefetch(code(x), words * sizeof(std::uint64_t));
          else prefetch(vector(x), std::min(kPrefetchBytes, dims_ * sizeof(float)));
        }
        for (const std::uint32_t x : nb) {
          if (filtered && !labels_overlap(labels_.of(x), params.labels)) continue;
          visit(x);
        }
      },
      dist, s.visited, [](const Candidate<std::uint32_t>&) {});

  if (sbq && params.rescore > 0) {
    // Exact distances for the best `rescore` candidates; the rest keep their SBQ order.
    const std::size_t window = std::min<std::size_t>(s.list.size(), std::max<std::size_t>(params.rescore, params.k));
    s.rescored.clear();
    for (std::size_t i = 0; i < window; ++i)
      s.rescored.emplace_back(distance::index_distance(metric_, q, vector(s.list[i].id), dims_), s.list[i].id);
    std::sort(s.rescored.begin(), s.rescored.end());
    for (std::size_t i = 0; i < s.rescored.size() && out.size() < params.k; ++i) out.push_back(s.rescored[i].second);
    for (std::size_t i = window; i < s.list.size() && out.size() < params.k; ++i) out.push_back(s.list[i].id);
    return;
  }
  for (std::size_t i = 0; i < s.list.size() && out.size() < params.k; ++i) out.push_back(s.list[i].id);
}

}  // namespace vs::vamana
