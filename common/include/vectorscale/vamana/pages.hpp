/**
 * @file pages.hpp
 * @brief Lays an in-memory Index out as index format v1 page images.
 *
 * The one path from a finished graph to pages, shared by the extension's local build and
 * gpu_builder's backends: the same Index and heap TIDs give the same bytes.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cstdint>
#include <span>
#include <string>

#include "vectorscale/format/writer.hpp"
#include "vectorscale/vamana/index.hpp"

namespace vs::vamana {

/** Who built the pages, recorded in the meta page. */
struct Provenance {
  format::BuiltBy built_by = format::BuiltBy::kLocal;
  format::BuildBackend backend = format::BuildBackend::kCpu;
  std::string builder_id;  ///< at most 63 bytes
};

/** Options recorded in the meta page that the Index itself does not know. */
struct PageOptions {
  std::uint32_t page_size = 8192;     ///< the server's BLCKSZ
  std::uint32_t column_dims = 0;      ///< dims of the column type; 0 = the index's dims
  std::uint16_t label_capacity = 0;   ///< labels per node record: at least this and the most any row has
  bool labeled = false;               ///< a labeled index even if no row has a label yet
  Provenance provenance;
};

/**
 * Writes the pages of `index`, whose row i is the heap tuple heap_tids[i], to sink in block
 * order and returns the meta page contents.
 */
format::MetaInfo write_index_pages(const Index& index, const BuildParams& params,
                                   std::span<const format::Tid> heap_tids, const PageOptions& options,
                                   const format::PageSink& sink);

}  // namespace vs::vamana
