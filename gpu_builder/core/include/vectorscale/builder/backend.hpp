/**
 * @file backend.hpp
 * @brief The interface every build backend (CPU, CUDA) implements.
 *
 * A backend turns the received rows into page images: it builds the graph (and trains the
 * quantizer) however it likes, then lays the result out with the shared page writer of
 * common/, so every backend's pages pass the same validation. The session owns admission,
 * the protocol, page batching and checksums; the backend only builds and writes.
 */
#pragma once
#include "vectorscale/core/control.hpp"
#include "vectorscale/core/memory.hpp"
#include "vectorscale/format/writer.hpp"
#include "vectorscale/vamana/index.hpp"
#include "vectorscale/vamana/labels.hpp"
#include "vectorscale/vamana/pages.hpp"

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace vs::builder {

/** Progress phases of the protocol beyond vamana::BuildPhase (1 insert, 2 prune, 3 connect). */
enum ProtocolPhase : std::uint32_t {
  kPhaseReceive = 10,  ///< receiving rows (done = rows so far); also while waiting in the queue
  kPhaseTrain = 11,    ///< training the quantizer
  kPhaseWrite = 12,    ///< writing pages (done = pages sent)
};

/** Everything a backend needs for one build; the vectors are moved in. */
struct BuildInput {
  vamana::IndexParams params;               ///< engine parameters (ResolvedSpec::params)
  Array<float> vectors;                     ///< at least rows * dims floats, row-major, arrival order
  std::size_t rows = 0;                     ///< number of rows
  std::size_t dims = 0;                     ///< indexed dims
  std::vector<format::Tid> heap_tids;       ///< rows heap TIDs, arrival order
  std::optional<vamana::LabelSets> labels;  ///< per-row label sets when the index is labelled
  vamana::PageOptions page_options;         ///< page size, column dims, provenance
};

/** What a backend reports about a finished build. */
struct BackendStats {
  double build_seconds = 0;                 ///< training + graph
  double write_seconds = 0;                 ///< laying out and sending pages
  std::uint64_t nodes = 0;                  ///< nodes written
  std::uint64_t distance_computations = 0;  ///< from vamana::BuildStats
  std::uint32_t repaired_unreachable = 0;   ///< from vamana::BuildStats
  /** The backend that built: a CUDA backend hands some builds to the CPU; kNone means kind(). */
  format::BuildBackend backend = format::BuildBackend::kNone;
};

/** Memory of the device a backend builds on (both 0 when it has none). */
struct DeviceMemory {
  std::uint64_t used_bytes = 0;   ///< in use by every process on the device
  std::uint64_t total_bytes = 0;  ///< the device's memory
};

/** A way to build indexes (CPU through common/, CUDA). */
class BuildBackend {
 public:
  virtual ~BuildBackend() = default;
  /**
   * The memory of the backend's device, for the status report; cheap and thread-safe. The
   * default is a backend without a device (the CPU backend). A GPU backend asks its own
   * device (cudaMemGetInfo in the context it builds in), never creating a context just for this.
   */
  [[nodiscard]] virtual DeviceMemory device_memory() const noexcept { return {}; }
  /** The backend recorded in the meta page and the Summary. */
  [[nodiscard]] virtual format::BuildBackend kind() const noexcept = 0;
  /** Short name for logs ("cpu", "cuda"). */
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  /**
   * Builds the index of `input` and writes its pages to `sink` in block order. Reports
   * phases kPhaseTrain and vamana::BuildPhase through control.progress and polls
   * control.cancel (both only on the calling thread); throws vs::Cancelled when cancelled,
   * vs::Error or std::bad_alloc on failure.
   */
  [[nodiscard]] virtual BackendStats build(BuildInput&& input, const Control& control,
                                           const format::PageSink& sink) = 0;
};

}  // namespace vs::builder
