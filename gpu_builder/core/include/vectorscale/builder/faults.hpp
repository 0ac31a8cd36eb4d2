/**
 * @file faults.hpp
 * @brief Failure points of the builder for crash and fallback tests (`--fault NAME[=ARG]`).
 *
 * The plan type and its parser always exist, but the session only acts on a plan when the
 * build was configured with -DVS_FAILURE_POINTS=ON, and gpu_builder only accepts `--fault`
 * then (kFailurePointsCompiled). Faults:
 *  - corrupt-page: flip the state byte of the first node record of the first node page,
 *    with the CRC recomputed, so only page validation can catch it;
 *  - bad-crc: the same flip, with the CRC of the unmodified page (a stale checksum);
 *  - wrong-tid: give that record a heap TID the client never sent, CRC recomputed;
 *  - wrong-labels: give that record one label (32767) its row does not have, CRC
 *    recomputed (labelled builds with a free label slot; the pages stay valid);
 *  - truncate: stop the page stream halfway and finish OK without a Summary;
 *  - slow=SECONDS: sleep before building, in small steps that honour cancellation;
 *  - die-after-pages=N: std::_Exit(3) once N page batches are sent (a crash);
 *  - fail=CODE: finish with gRPC status code CODE right after the spec.
 */
#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

namespace vs::builder {

/** True when this build compiled failure points (-DVS_FAILURE_POINTS=ON). */
#ifdef VS_FAILURE_POINTS
inline constexpr bool kFailurePointsCompiled = true;
#else
inline constexpr bool kFailurePointsCompiled = false;
#endif

/** The failure points a server applies to every build. */
struct FaultPlan {
  bool corrupt_page = false;                     ///< corrupt-page
  bool bad_crc = false;                          ///< bad-crc
  bool wrong_tid = false;                        ///< wrong-tid
  bool wrong_labels = false;                     ///< wrong-labels
  bool truncate = false;                         ///< truncate
  double slow_seconds = 0;                       ///< slow=SECONDS
  std::optional<std::uint32_t> die_after_pages;  ///< die-after-pages=N
  std::optional<int> fail_status;                ///< fail=CODE (1..16)

  /** True when any failure point is set. */
  [[nodiscard]] bool any() const noexcept {
    return corrupt_page || bad_crc || wrong_tid || wrong_labels || truncate || slow_seconds > 0 || die_after_pages || fail_status;
  }
};

/** Adds one `NAME[=ARG]` to plan; throws vs::Error{kInvalidArgument} naming the problem. */
void add_fault(FaultPlan& plan, std::string_view spec);

}  // namespace vs::builder
