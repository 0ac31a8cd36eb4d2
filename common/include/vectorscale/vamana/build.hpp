/**
 * @file build.hpp
 * @brief The in-memory Vamana graph and its multi-threaded build (Filtered DiskANN when labelled).
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "vectorscale/core/control.hpp"
#include "vectorscale/core/memory.hpp"
#include "vectorscale/vamana/labels.hpp"
#include "vectorscale/vamana/params.hpp"

namespace vs::vamana {

/** Marks "no node". */
inline constexpr std::uint32_t kNoNode = 0xFFFFFFFFu;

/** A finished graph: dense node ids 0..n-1, out-degree <= R, lists ordered as RobustPrune kept them. */
struct Graph {
  std::uint32_t num_nodes = 0;
  std::uint32_t stride = 0;            ///< slots per node in `neighbors` (>= R)
  Array<std::uint32_t> neighbors;      ///< num_nodes * stride
  Array<std::uint32_t> degrees;        ///< num_nodes
  std::uint32_t medoid = kNoNode;      ///< entry point
  std::vector<std::pair<Label, std::uint32_t>> label_starts;  ///< (label, start node), by label

  /** Start node of label l, or kNoNode when no node carries it. */
  [[nodiscard]] std::uint32_t label_start(Label l) const noexcept;

  /** Out-neighbours of node i. */
  [[nodiscard]] std::span<const std::uint32_t> neighbors_of(std::uint32_t i) const noexcept {
    return {neighbors.data() + static_cast<std::size_t>(i) * stride, degrees[i]};
  }
};

/** Phases of build_graph as reported to Control::progress (units: nodes). */
enum BuildPhase : std::uint32_t {
  kPhaseInsert = 1,  ///< inserting nodes (search, prune, reverse edges)
  kPhasePrune = 2,   ///< final prune of lists longer than R
  kPhaseConnect = 3, ///< linking nodes unreachable from the medoid (long only for degenerate data)
};

/** Statistics of a build, for logs and benchmarks. */
struct BuildStats {
  std::uint64_t distance_computations = 0;
  std::uint32_t repaired_unreachable = 0;  ///< nodes linked in by the connectivity pass
  double seconds = 0;
};

/**
 * Builds the Vamana graph of n row-major vectors (for kCosine they must be unit length).
 *
 * Nodes are inserted in a seeded random order, each by greedy search from the medoid (and,
 * for labelled nodes, a filtered search from the start nodes of its labels), RobustPrune of
 * the expanded nodes, and reverse edges that re-prune a list once it exceeds slack*R. A final
 * pass prunes every list to R and links in any node not reachable from the medoid. With
 * threads == 1 the result depends only on the inputs and the seed.
 *
 * The control callbacks run on the calling thread only; a cancel stops every worker and
 * throws vs::Cancelled. Large arrays come from `alloc` on the calling thread.
 */
[[nodiscard]] Graph build_graph(const float* vectors, std::size_t n, std::size_t dims,
                                const BuildParams& params, const LabelSets* labels = nullptr,
                                const Control& control = {}, Allocator& alloc = default_allocator(),
                                BuildStats* stats = nullptr);

/**
 * The connectivity pass of build_graph, for graphs built elsewhere (gpu_builder's CUDA backend):
 * every node not reachable from g.medoid gets an in-edge from the nearest reachable node that a
 * greedy search for it (L = params.search_list_size) finds, preferring a node with fewer than R
 * neighbours; a full list gives up its last (longest-alpha) edge. Lists must hold at most R
 * entries and g.stride must be at least R. Finds the reachable nodes on params.threads threads.
 * Reports kPhaseConnect and polls cancellation through `control`. Returns the number of nodes
 * linked; adds the distances it computed to *distance_computations when given.
 */
std::uint32_t link_unreachable(Graph& g, const float* vectors, std::size_t dims, const BuildParams& params,
                               const Control& control = {}, std::uint64_t* distance_computations = nullptr);

/** The order build_graph inserts n nodes in for `seed` (iota, shuffled by mt19937_64(seed)). */
[[nodiscard]] std::vector<std::uint32_t> insertion_order(std::size_t n, std::uint64_t seed);

/** The node nearest to the centroid of the given nodes (all nodes when `members` is empty). */
[[nodiscard]] std::uint32_t medoid(const float* vectors, std::size_t n, std::size_t dims,
                                   std::span<const std::uint32_t> members = {});

/** What a build of the given shape needs, by part (bytes). */
struct MemoryEstimate {
  std::uint64_t vectors = 0;     ///< float32 copies of the vectors
  std::uint64_t graph = 0;       ///< adjacency at slack capacity + degrees + locks
  std::uint64_t codes = 0;       ///< SBQ codes (0 for plain storage)
  std::uint64_t labels = 0;      ///< label sets
  std::uint64_t scratch = 0;     ///< per-thread visited sets and lists
  [[nodiscard]] std::uint64_t total() const noexcept { return vectors + graph + codes + labels + scratch; }
};

/**
 * Memory an in-memory build of n vectors needs. `bits_per_dim` 0 means plain storage;
 * `avg_labels` is the mean number of labels per node.
 */
[[nodiscard]] MemoryEstimate estimate_build_memory(std::uint64_t n, std::uint32_t dims,
                                                   const BuildParams& params, std::uint32_t bits_per_dim,
                                                   double avg_labels = 0.0);

}  // namespace vs::vamana
