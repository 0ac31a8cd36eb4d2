// Index -> format::GraphInput -> page images.
#include "vectorscale/vamana/pages.hpp"

#include <algorithm>
#include <vector>

#include "vectorscale/core/error.hpp"

namespace vs::vamana {

format::MetaInfo write_index_pages(const Index& index, const BuildParams& params,
                                   std::span<const format::Tid> heap_tids, const PageOptions& options,
                                   const format::PageSink& sink) {
  VS_EXPECTS(heap_tids.size() == index.size(), "%zu heap TIDs for %zu rows", heap_tids.size(), index.size());
  const Graph& g = index.graph();
  const bool sbq = index.storage() == Storage::kMemoryOptimized;
  const LabelSets& labels = index.labels();
  const bool has_labels = options.labeled || !labels.empty();

  format::GraphInput in;
  in.meta.metric = index.metric();
  in.meta.storage = index.storage();
  in.meta.indexed_dims = static_cast<std::uint32_t>(index.dims());
  in.meta.column_dims = options.column_dims != 0 ? options.column_dims : in.meta.indexed_dims;
  in.meta.bits_per_dim = sbq ? static_cast<std::uint16_t>(index.quantizer().bits()) : 0;
  in.meta.num_neighbors = params.num_neighbors;
  in.meta.search_list_size = params.search_list_size;
  in.meta.max_alpha = params.max_alpha;
  in.meta.has_labels = has_labels;
  if (has_labels) {
    std::uint32_t most = 1;
    for (std::size_t i = 0; i < labels.size(); ++i) most = std::max<std::uint32_t>(most, labels.of(i).size());
    VS_EXPECTS(most <= 0xFFFF, "a row has %u labels", most);
    in.meta.label_capacity = static_cast<std::uint16_t>(std::max<std::uint32_t>(options.label_capacity, most));
    if (labels.size() == index.size()) {  // else: no row has labels yet
      in.label_offsets = labels.offsets;
      in.label_values = labels.values;
    }
  }
  in.meta.built_by = options.provenance.built_by;
  in.meta.build_backend = options.provenance.backend;
  in.meta.builder_id = options.provenance.builder_id;

  in.num_nodes = index.size();
  in.heap_tids = heap_tids;
  const std::size_t n = index.size();
  if (sbq) {
    in.payloads = std::as_bytes(std::span<const std::uint64_t>(index.code(0), n * index.quantizer().words()));
  } else {
    in.payloads = std::as_bytes(std::span<const float>(index.vector(0), n * index.dims()));
  }
  const std::vector<float> stream = sbq ? index.quantizer().stream() : std::vector<float>{};
  in.quantizer_stream = stream;
  in.neighbors = std::span<const std::uint32_t>(g.neighbors.data(), g.neighbors.size());
  in.stride = g.stride;
  in.degrees = std::span<const std::uint32_t>(g.degrees.data(), g.degrees.size());
  std::vector<format::LabelNode> starts;
  for (const auto& [label, node] : g.label_starts) starts.push_back({label, node});
  in.label_starts = starts;
  in.entry_node = n == 0 ? format::kNoNode : g.medoid;
  return format::write_index(in, options.page_size, sink);
}

}  // namespace vs::vamana
