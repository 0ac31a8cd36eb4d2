// Validation of build specs and the engine parameters derived from them.
#include "vectorscale/builder/spec.hpp"

#include <algorithm>
#include <cmath>

#include "vectorscale/core/error.hpp"
#include "vectorscale/format/records.hpp"
#include "vectorscale/sbq/sbq.hpp"

namespace vs::builder {

ResolvedSpec resolve_spec(const BuildSpec& s, std::uint32_t server_threads) {
  VS_EXPECTS(s.protocol_version == kProtocolVersion, "unsupported protocol_version %u; this builder speaks %u",
             s.protocol_version, kProtocolVersion);
  VS_EXPECTS(s.format_version == format::kFormatVersion, "unsupported format_version %u; this builder writes %u",
             s.format_version, format::kFormatVersion);
  VS_EXPECTS(format::is_valid_page_size(s.page_size), "page_size %u is not a power of two between %u and %u",
             s.page_size, format::kMinPageSize, format::kMaxPageSize);
  VS_EXPECTS(s.metric >= 1 && s.metric <= 3, "metric %u is not L2 (1), COSINE (2) or INNER_PRODUCT (3)", s.metric);
  VS_EXPECTS(s.column_dims >= 1 && s.column_dims <= format::kMaxDims, "column_dims %u is not between 1 and %u",
             s.column_dims, format::kMaxDims);
  VS_EXPECTS(s.indexed_dims >= 1 && s.indexed_dims <= s.column_dims,
             "indexed_dims %u is not between 1 and column_dims %u", s.indexed_dims, s.column_dims);
  VS_EXPECTS(s.storage == 1 || s.storage == 2, "storage %u is not MEMORY_OPTIMIZED (1) or PLAIN (2)", s.storage);
  VS_EXPECTS(s.num_neighbors >= vamana::kMinNumNeighbors && s.num_neighbors <= vamana::kMaxNumNeighbors,
             "num_neighbors %u is not between %u and %u", s.num_neighbors, vamana::kMinNumNeighbors,
             vamana::kMaxNumNeighbors);
  VS_EXPECTS(s.search_list_size >= 1, "search_list_size must be at least 1");
  VS_EXPECTS(std::isfinite(s.max_alpha) && s.max_alpha >= 1.0f && s.max_alpha <= kMaxAlpha,
             "max_alpha %g is not between 1 and %g", static_cast<double>(s.max_alpha), static_cast<double>(kMaxAlpha));
  VS_EXPECTS(s.expected_rows <= kMaxRows, "expected_rows %llu exceeds the limit of %llu rows per build",
             static_cast<unsigned long long>(s.expected_rows), static_cast<unsigned long long>(kMaxRows));
  VS_EXPECTS(s.threads <= kMaxThreads, "threads %u exceeds %u", s.threads, kMaxThreads);

  const auto metric = static_cast<distance::Metric>(s.metric);
  const auto storage = static_cast<format::StorageLayout>(s.storage);
  ResolvedSpec r;
  r.spec = s;
  if (storage == format::StorageLayout::kPlain) {
    VS_EXPECTS(metric != distance::Metric::kInnerProduct,
               "inner product distance is not supported with storage_layout plain");
    VS_EXPECTS(s.bits_per_dim <= 1, "num_bits_per_dimension > 1 requires storage_layout memory_optimized");
    VS_EXPECTS(!s.has_labels, "labels require storage_layout memory_optimized");
    r.bits_per_dim = 0;
  } else {
    VS_EXPECTS(s.bits_per_dim <= format::kMaxBitsPerDim, "bits_per_dim %u is not between 1 and %u", s.bits_per_dim,
               format::kMaxBitsPerDim);
    r.bits_per_dim = s.bits_per_dim != 0 ? s.bits_per_dim : sbq::default_bits_per_dim(s.indexed_dims);
  }
  // A node record must fit a page (plain vectors can be too wide); at least one label slot
  // when labelled. Throws kInvalidArgument "node record of N bytes does not fit a P-byte page".
  VS_EXPECTS(s.has_labels || s.label_capacity == 0, "label_capacity %u without has_labels", s.label_capacity);
  VS_EXPECTS(s.label_capacity <= s.page_size / 2, "label_capacity %u does not fit a %u-byte page", s.label_capacity,
             s.page_size);
  r.label_capacity = s.has_labels ? static_cast<std::uint16_t>(std::max<std::uint32_t>(1, s.label_capacity)) : 0;
  (void)format::NodeLayout::make(storage, s.indexed_dims, static_cast<std::uint16_t>(r.bits_per_dim), s.num_neighbors,
                                 r.label_capacity, s.page_size);

  // Exactly the fields the extension's local build sets (index_params() in diskannbuild.cpp);
  // slack keeps its default.
  vamana::IndexParams& p = r.params;
  p.build.metric = metric;
  p.build.num_neighbors = s.num_neighbors;
  p.build.search_list_size = s.search_list_size;
  p.build.max_alpha = s.max_alpha;
  const std::uint32_t server = std::max<std::uint32_t>(1, std::min(server_threads, kMaxThreads));
  p.build.threads = s.threads != 0 ? std::min(s.threads, server) : server;
  if (s.seed != 0) p.build.seed = s.seed;
  p.storage = storage;
  p.bits_per_dim = s.bits_per_dim;
  vamana::check(p.build);
  return r;
}

std::uint64_t memory_need(const ResolvedSpec& spec, std::uint64_t rows, std::uint64_t label_values) {
  const auto est = vamana::estimate_build_memory(rows, spec.spec.indexed_dims, spec.params.build, spec.bits_per_dim);
  // Heap TIDs, their sorted copy for the duplicate check, and the label sets twice (received
  // and the index's own copy): values plus one offset per row.
  const std::uint64_t tids = rows * (sizeof(format::Tid) + sizeof(std::uint64_t));
  const std::uint64_t labels =
      spec.spec.has_labels ? 2 * (label_values * sizeof(vamana::Label) + rows * sizeof(std::uint32_t)) : 0;
  return est.total() + tids + labels;
}

const char* storage_name(format::StorageLayout storage) noexcept {
  return storage == format::StorageLayout::kPlain ? "plain" : "memory_optimized";
}

std::string make_builder_id(const std::string& version, const std::string& host) {
  std::string id = "gpu_builder " + version;
  if (!host.empty()) id += " " + host;
  if (id.size() > format::kBuilderIdSize - 1) id.resize(format::kBuilderIdSize - 1);
  return id;
}

}  // namespace vs::builder
