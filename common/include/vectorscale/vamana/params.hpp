/**
 * @file params.hpp
 * @brief Build and search parameters of the Vamana graph, with the defaults of the SQL options.
 *
 * This is the one header that holds the defaults; the extension fills these structs from
 * reloptions and GUCs, and the builder protocol mirrors them field by field.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cstdint>

#include "vectorscale/distance/distance.hpp"

namespace vs::vamana {

/** Default R (SQL `num_neighbors`). */
inline constexpr std::uint32_t kDefaultNumNeighbors = 50;
/** Smallest R accepted (pgvectorscale rejects num_neighbors < 10). */
inline constexpr std::uint32_t kMinNumNeighbors = 10;
/** Largest R accepted. */
inline constexpr std::uint32_t kMaxNumNeighbors = 1000;
/** Default L at build time (SQL `search_list_size`). */
inline constexpr std::uint32_t kDefaultSearchListSize = 100;
/** Default alpha (SQL `max_alpha`). */
inline constexpr float kDefaultMaxAlpha = 1.2f;
/** Step of the alpha schedule 1.0, 1.2, ... <= max_alpha. */
inline constexpr float kAlphaStep = 0.2f;
/** In-memory degree slack while building (DiskANN): lists may grow to slack*R before pruning. */
inline constexpr float kDefaultSlack = 1.3f;
/** Default L of queries (GUC `diskann.query_search_list_size`). */
inline constexpr std::uint32_t kDefaultQuerySearchListSize = 100;
/** Default rescore window (GUC `diskann.query_rescore`). */
inline constexpr std::uint32_t kDefaultQueryRescore = 50;

/** Parameters of a graph build. */
struct BuildParams {
  distance::Metric metric = distance::Metric::kCosine;  ///< opclass: vector_cosine_ops (default)
  std::uint32_t num_neighbors = kDefaultNumNeighbors;   ///< R: final out-degree bound (`num_neighbors`)
  std::uint32_t search_list_size = kDefaultSearchListSize;  ///< L during build (`search_list_size`)
  float max_alpha = kDefaultMaxAlpha;   ///< alpha: last step of the RobustPrune schedule (`max_alpha`)
  float slack = kDefaultSlack;          ///< lists may hold ceil(slack*R) entries while building
  std::uint32_t threads = 1;            ///< worker threads incl. the caller (`diskann.build_threads`)
  std::uint64_t seed = 0x5eedULL;       ///< insertion order; one thread + a seed = deterministic graph
};

/** Validates p (ranges as the SQL options); throws vs::Error kInvalidArgument. */
void check(const BuildParams& p);

}  // namespace vs::vamana
