// The CPU backend: Index::build + write_index_pages, the calls of the extension's local build.
#include "vectorscale/builder/cpu_backend.hpp"

#include <chrono>
#include <utility>

namespace vs::builder {

BackendStats CpuBackend::build(BuildInput&& in, const Control& control, const format::PageSink& sink) {
  using Clock = std::chrono::steady_clock;
  BackendStats out;
  const auto t0 = Clock::now();
  // Index::build trains SBQ before the graph; it reports no progress of its own for that.
  if (in.params.storage == format::StorageLayout::kMemoryOptimized && control.progress)
    control.progress(kPhaseTrain, 0, in.rows);
  vamana::BuildStats stats;
  const vamana::LabelSets* labels = in.labels.has_value() ? &*in.labels : nullptr;
  const vamana::Index index =
      vamana::Index::build(std::move(in.vectors), in.rows, in.dims, in.params, labels, control, &stats);
  const auto t1 = Clock::now();
  (void)vamana::write_index_pages(index, in.params.build, in.heap_tids, in.page_options, sink);
  const auto t2 = Clock::now();
  out.build_seconds = std::chrono::duration<double>(t1 - t0).count();
  out.write_seconds = std::chrono::duration<double>(t2 - t1).count();
  out.nodes = index.size();
  out.distance_computations = stats.distance_computations;
  out.repaired_unreachable = stats.repaired_unreachable;
  return out;
}

}  // namespace vs::builder
