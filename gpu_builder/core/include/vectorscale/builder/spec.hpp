/**
 * @file spec.hpp
 * @brief What a client asks the builder to build, and its validation.
 *
 * BuildSpec mirrors the protocol's BuildSpec message field by field with plain types, so the
 * core stays free of Protobuf. resolve_spec() checks it (the same ranges and combinations as
 * the extension's reloptions, DESIGN.md §1.1) and derives the engine parameters exactly as
 * the extension's local build does, which is what makes a builder build byte-identical to a
 * local one for one thread and the same seed.
 */
#pragma once
#include "vectorscale/vamana/index.hpp"
#include "vectorscale/vamana/pages.hpp"

#include <cstdint>
#include <string>

namespace vs::builder {

/** The protocol revision this builder speaks (ProtocolVersion PROTOCOL_VERSION_1). */
inline constexpr std::uint32_t kProtocolVersion = 1;
/** Most rows one build accepts (graph node ids are 32-bit, kNoNode excluded). */
inline constexpr std::uint64_t kMaxRows = 0xFFFFFFFEull;
/** Largest accepted max_alpha. */
inline constexpr float kMaxAlpha = 5.0f;
/** Most build threads a spec may ask for (vamana::check's limit). */
inline constexpr std::uint32_t kMaxThreads = 1024;

/** A build request, field for field as the protocol's BuildSpec (enums as their numbers). */
struct BuildSpec {
  std::uint32_t protocol_version = 0;  ///< must be kProtocolVersion
  std::uint32_t format_version = 0;    ///< must be format::kFormatVersion
  std::uint32_t page_size = 0;         ///< the client's BLCKSZ
  std::uint32_t metric = 0;            ///< distance::Metric value (L2 1, cosine 2, IP 3)
  std::uint32_t column_dims = 0;       ///< dims of the column type
  std::uint32_t indexed_dims = 0;      ///< dims sent per vector
  std::uint32_t storage = 0;           ///< format::StorageLayout value (SBQ 1, plain 2)
  std::uint32_t bits_per_dim = 0;      ///< SBQ bits 1..8 (0 = default rule); plain 0
  std::uint32_t num_neighbors = 0;     ///< R
  std::uint32_t search_list_size = 0;  ///< build L
  float max_alpha = 0.0f;              ///< alpha
  bool has_labels = false;             ///< batches carry label sets
  std::uint64_t expected_rows = 0;     ///< the client's estimate; 0 = unknown
  std::uint32_t threads = 0;           ///< build threads wanted; 0 = the server decides
  std::uint64_t seed = 0;              ///< insertion order seed; 0 = the engine default
  std::string client;                  ///< who asks, for the log
  std::uint32_t label_capacity = 0;    ///< has_labels: label slots per record at least; 0 = the most of any row
};

/** A validated spec with everything the build derives from it. */
struct ResolvedSpec {
  BuildSpec spec;                    ///< the spec as received
  vamana::IndexParams params;        ///< engine parameters, as the extension's local build sets them
  std::uint32_t bits_per_dim = 0;    ///< effective SBQ bits; 0 for plain
  std::uint16_t label_capacity = 0;  ///< label slots per node record at least (0 unlabelled, else >= 1)
};

/**
 * Validates a spec and derives the engine parameters; throws vs::Error{kInvalidArgument}
 * with a message naming the field and its accepted range. Threads: spec.threads when > 0
 * (at most server_threads), else server_threads.
 */
[[nodiscard]] ResolvedSpec resolve_spec(const BuildSpec& spec, std::uint32_t server_threads);

/**
 * Bytes a build of `rows` rows of this spec holds at its peak: the engine's estimate plus
 * the heap TIDs (and the copy used to find duplicates) and the label sets.
 */
[[nodiscard]] std::uint64_t memory_need(const ResolvedSpec& spec, std::uint64_t rows, std::uint64_t label_values = 0);

/** "memory_optimized" or "plain". */
[[nodiscard]] const char* storage_name(format::StorageLayout storage) noexcept;

/**
 * The builder id recorded in the meta page: "gpu_builder <version> <host>", cut to at most
 * format::kBuilderIdSize - 1 bytes.
 */
[[nodiscard]] std::string make_builder_id(const std::string& version, const std::string& host);

}  // namespace vs::builder
