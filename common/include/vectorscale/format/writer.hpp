/**
 * @file writer.hpp
 * @brief Lays out a finished graph as the page images of index format v1.
 *
 * The same input gives the same bytes on every machine, whether the extension's CPU build
 * or gpu_builder produced the graph. Layout (README.md §8): block 0 meta; then quantizer
 * pages (SBQ); then label overflow pages (when the label starts do not fit the meta page);
 * then node pages, nodes in input order, nodes_per_page per page. Graph node i therefore
 * has TID (first_node_block + i / nodes_per_page, i % nodes_per_page + 1); every node index
 * in the input (neighbors, entry, label starts) is translated into such a TID.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include "vectorscale/format/records.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <span>

namespace vs::format {

/** "No node" for GraphInput::entry_node. */
inline constexpr std::uint32_t kNoNode = std::numeric_limits<std::uint32_t>::max();

/** A label and the graph node its search starts from. */
struct LabelNode {
  std::int16_t label = 0;  ///< the label
  std::uint32_t node = 0;  ///< index of the start node in the graph
};

/** Everything the writer needs; spans are borrowed for the duration of the call. */
struct GraphInput {
  /**
   * Options (metric, storage, dims, bits, R, L, max_alpha, has_labels, label_capacity) and
   * provenance (built_by, build_backend, builder_id). Layout fields, counts, entry point,
   * free list and inline labels are ignored and filled by the writer.
   */
  MetaInfo meta;
  std::size_t num_nodes = 0;       ///< graph size
  std::span<const Tid> heap_tids;  ///< num_nodes valid heap TIDs
  /** num_nodes * payload_size bytes: little-endian float32[indexed_dims] or u64 code words. */
  std::span<const std::byte> payloads;
  std::span<const std::uint32_t> neighbors;  ///< num_nodes * stride node indices
  std::size_t stride = 0;                    ///< row length of neighbors (>= max degree)
  std::span<const std::uint32_t> degrees;    ///< num_nodes degrees, each <= R and <= stride
  /** CSR labels: num_nodes + 1 offsets into label_values (empty when the index has none). */
  std::span<const std::uint32_t> label_offsets;
  std::span<const std::int16_t> label_values;  ///< per node strictly ascending
  std::span<const float> quantizer_stream;     ///< SBQ mean[dims] (+ stddev[dims] if bits > 1)
  std::span<const LabelNode> label_starts;     ///< sorted by label, labels unique
  std::uint32_t entry_node = kNoNode;          ///< medoid; kNoNode iff num_nodes == 0
};

/** Block numbers and counts of the layout the writer will produce. */
struct IndexPlan {
  NodeLayout layout;                                         ///< node record layout
  std::uint32_t quantizer_first_block = kInvalidBlock;       ///< first quantizer page
  std::uint32_t quantizer_pages = 0;                         ///< quantizer pages
  std::uint32_t label_overflow_first_block = kInvalidBlock;  ///< first overflow page
  std::uint32_t label_overflow_pages = 0;                    ///< overflow pages
  std::uint32_t label_inline_count = 0;                      ///< starts on the meta page
  std::uint32_t first_node_block = 0;                        ///< first node page
  std::uint32_t node_pages = 0;                              ///< node pages
  std::uint32_t total_blocks = 0;                            ///< 1 + all of the above
};

/** Receives page images in block order; the span is only valid during the call. */
using PageSink = std::function<void(std::uint32_t block, std::span<const std::byte> page)>;

/** Validates the input and computes the layout; throws kInvalidArgument. */
[[nodiscard]] IndexPlan plan_index(const GraphInput& input, std::uint32_t page_size);

/** Number of blocks write_index will produce (plan_index(...).total_blocks). */
[[nodiscard]] std::uint32_t count_index_pages(const GraphInput& input, std::uint32_t page_size);

/** TID of graph node i under a plan. */
[[nodiscard]] Tid node_tid(const IndexPlan& plan, std::uint64_t node);

/**
 * Writes every page image of the index to sink, in block order 0 .. total_blocks-1, and
 * returns the meta page contents. Throws kInvalidArgument on malformed input (before any
 * page reaches the sink, except for per-node checks found while writing node pages).
 */
MetaInfo write_index(const GraphInput& input, std::uint32_t page_size, const PageSink& sink);

/**
 * Writes a label overflow page (page.size() bytes) holding entries, at most
 * overflow_labels_per_page of them, in the given order, chained to next_blkno. A page with no
 * entries is one that left the chain (VACUUM emptied it).
 */
void write_overflow_page(std::span<std::byte> page, std::span<const LabelStart> entries, std::uint32_t next_blkno);

}  // namespace vs::format
