/**
 * @file cpu_backend.hpp
 * @brief The CPU backend: the engine of common/, called exactly as the extension's local build.
 *
 * With one thread and the same seed its node and quantizer pages are byte-identical to the
 * extension's local build of the same rows; only the meta page's provenance differs.
 */
#pragma once
#include "vectorscale/builder/backend.hpp"

namespace vs::builder {

/** Builds with vamana::Index::build and vamana::write_index_pages. */
class CpuBackend final : public BuildBackend {
 public:
  /** format::BuildBackend::kCpu. */
  [[nodiscard]] format::BuildBackend kind() const noexcept override { return format::BuildBackend::kCpu; }
  /** "cpu". */
  [[nodiscard]] std::string_view name() const noexcept override { return "cpu"; }
  /** Trains, builds the graph and writes the pages on the calling thread plus worker threads. */
  [[nodiscard]] BackendStats build(BuildInput&& input, const Control& control, const format::PageSink& sink) override;
};

}  // namespace vs::builder
