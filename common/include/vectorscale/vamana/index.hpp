/**
 * @file index.hpp
 * @brief An in-memory DiskANN index: Vamana graph + plain or SBQ storage + exact rescoring.
 *
 * This is the engine's own end-to-end index (tests, benchmarks, the builder's CPU backend
 * before it lays the graph out into pages). Searches mirror what the extension's scan does
 * on pages: traverse with SBQ Hamming distances (memory_optimized) or float distances
 * (plain), then rescore the best `rescore` candidates with exact float distances.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cstdint>
#include <span>
#include <vector>

#include "vectorscale/core/control.hpp"
#include "vectorscale/core/memory.hpp"
#include "vectorscale/format/records.hpp"
#include "vectorscale/sbq/sbq.hpp"
#include "vectorscale/vamana/build.hpp"
#include "vectorscale/vamana/labels.hpp"
#include "vectorscale/vamana/params.hpp"
#include "vectorscale/vamana/search.hpp"

namespace vs::vamana {

/** SQL `storage_layout` (memory_optimized = SBQ codes in the graph, plain = float32 vectors). */
using Storage = format::StorageLayout;

/** Parameters of an in-memory index. */
struct IndexParams {
  BuildParams build;
  Storage storage = Storage::kMemoryOptimized;  ///< `storage_layout`
  std::uint32_t bits_per_dim = 0;               ///< `num_bits_per_dimension`; 0 = default rule
};

/** Parameters of one query. */
struct SearchParams {
  std::uint32_t k = 10;
  std::uint32_t search_list_size = kDefaultQuerySearchListSize;  ///< `diskann.query_search_list_size`
  std::uint32_t rescore = kDefaultQueryRescore;                 ///< `diskann.query_rescore` (SBQ only)
  std::span<const Label> labels;  ///< non-empty: only nodes with one of these labels (sorted)
};

/** Per-thread buffers of searches; reuse one per thread. */
struct SearchScratch {
  SearchList<std::uint32_t> list;
  EpochVisited visited;
  std::vector<float> query;
  std::vector<std::uint64_t> code;
  std::vector<std::uint32_t> starts;
  std::vector<std::pair<float, std::uint32_t>> rescored;
  std::uint64_t distance_computations = 0;
};

/** A built index; move-only. */
class Index {
 public:
  /** Builds over n row-major vectors; labels (optional) give each row's label set. */
  [[nodiscard]] static Index build(const float* vectors, std::size_t n, std::size_t dims, const IndexParams& params,
                                   const LabelSets* labels = nullptr, const Control& control = {},
                                   BuildStats* stats = nullptr);
  /** As above, taking ownership of the n*dims floats (no copy; the extension's build path). */
  [[nodiscard]] static Index build(Array<float>&& vectors, std::size_t n, std::size_t dims, const IndexParams& params,
                                   const LabelSets* labels = nullptr, const Control& control = {},
                                   BuildStats* stats = nullptr);

  /**
   * Assembles an index from parts built elsewhere (gpu_builder's CUDA backend), without
   * building anything: `vectors` are the n*dims stored floats (for kCosine already normalised),
   * `quantizer` and `codes` (n * quantizer.words() words) are required for memory_optimized
   * storage and ignored for plain, `graph` is the finished graph over the n rows.
   */
  [[nodiscard]] static Index from_parts(Array<float>&& vectors, std::size_t n, std::size_t dims,
                                        const IndexParams& params, sbq::Quantizer quantizer,
                                        Array<std::uint64_t>&& codes, Graph&& graph,
                                        const LabelSets* labels = nullptr);

  /** Ids of the k nearest rows found, nearest first. Thread-safe with one scratch per thread. */
  void search(const float* query, const SearchParams& params, std::vector<std::uint32_t>& out,
              SearchScratch& scratch) const;

  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] std::size_t dims() const noexcept { return dims_; }
  [[nodiscard]] distance::Metric metric() const noexcept { return metric_; }
  [[nodiscard]] Storage storage() const noexcept { return storage_; }
  [[nodiscard]] const Graph& graph() const noexcept { return graph_; }
  /** The quantizer (memory_optimized only). */
  [[nodiscard]] const sbq::Quantizer& quantizer() const noexcept { return quantizer_; }
  /** Code words of row i (memory_optimized only). */
  [[nodiscard]] const std::uint64_t* code(std::uint32_t i) const noexcept {
    return codes_.data() + static_cast<std::size_t>(i) * quantizer_.words();
  }
  /** The stored (for cosine: normalised) vector of row i. */
  [[nodiscard]] const float* vector(std::uint32_t i) const noexcept {
    return vectors_.data() + static_cast<std::size_t>(i) * dims_;
  }
  [[nodiscard]] const LabelSets& labels() const noexcept { return labels_; }

 private:
  // The checks and fields that build and from_parts share: shape, metric, storage, the stored
  // vectors (as given) and the labels.
  [[nodiscard]] static Index with_vectors(Array<float>&& vectors, std::size_t n, std::size_t dims,
                                          const IndexParams& params, const LabelSets* labels);

  std::size_t n_ = 0;
  std::size_t dims_ = 0;
  distance::Metric metric_ = distance::Metric::kCosine;
  Storage storage_ = Storage::kMemoryOptimized;
  Array<float> vectors_;
  Array<std::uint64_t> codes_;
  sbq::Quantizer quantizer_;
  Graph graph_;
  LabelSets labels_;
};

}  // namespace vs::vamana
