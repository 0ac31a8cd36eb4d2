/**
 * @file records.hpp
 * @brief Meta page and node record encoding of index format v1.
 *
 * The meta page (block 0) freezes the build options and locates everything else; node
 * records are fixed-size, so neighbor lists, labels and state are updated in place. Byte
 * layouts are documented in common/src/format/README.md; the mirror structs below name the
 * offsets, and encoding goes through those offsets with explicit little-endian stores.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include "vectorscale/sbq/sbq.hpp"
#include "vectorscale/vamana/params.hpp"

#include "vectorscale/distance/distance.hpp"
#include "vectorscale/format/page.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

namespace vs::format {

/** Magic number at the start of the meta struct. */
inline constexpr std::uint32_t kMetaMagic = 0xD15CA77Eu;
/** The format version this code writes (and the newest it reads). */
inline constexpr std::uint32_t kFormatVersion = 1;
/** Size of the fixed part of the meta struct, before the inline label starts. */
inline constexpr std::uint32_t kMetaFixedSize = 192;
/** Size of one label start entry (i16 label, u16 offset, u32 block). */
inline constexpr std::uint32_t kLabelStartSize = 8;
/** Size of the NUL-padded builder id field. */
inline constexpr std::uint32_t kBuilderIdSize = 64;
/** Largest accepted num_neighbors (R): the build's limit, vamana::kMaxNumNeighbors. */
inline constexpr std::uint32_t kMaxNumNeighbors = vamana::kMaxNumNeighbors;
/** Largest accepted SBQ bits per dimension: sbq::kMaxBitsPerDim. */
inline constexpr std::uint32_t kMaxBitsPerDim = sbq::kMaxBitsPerDim;
/** Largest accepted column dimension count (pgvector's VECTOR_MAX_DIM). */
inline constexpr std::uint32_t kMaxDims = 16000;
/** Meta flag bit: the index carries labels. */
inline constexpr std::uint16_t kMetaFlagHasLabels = 0x1;
/** Size of the fixed node record header (state, num_labels, num_neighbors, heap TID). */
inline constexpr std::uint32_t kNodeHeaderSize = 12;

/** How vectors are stored in node records; values are stored on disk. */
enum class StorageLayout : std::uint16_t {
  kMemoryOptimized = 1,  ///< SBQ code words (storage_layout = memory_optimized)
  kPlain = 2,            ///< float32[indexed_dims] (storage_layout = plain)
};

/** State of a node record; values are stored on disk. */
enum class NodeState : std::uint16_t {
  kLive = 1,     ///< a searchable node
  kDeleted = 2,  ///< heap tuple gone; still traversed until vacuum repairs its referrers
  kFree = 3,     ///< on the free list; neighbors[0] links the next free slot
};

/** Who built the index; stored on disk. */
enum class BuiltBy : std::uint16_t { kLocal = 1, kBuilder = 2 };

/** Which backend built the index; stored on disk. */
enum class BuildBackend : std::uint16_t { kNone = 0, kCpu = 1, kCuda = 2 };

/** Its name in logs and diskann_index_info: "none", "cpu", "cuda" ("unknown" for other values). */
[[nodiscard]] constexpr const char* build_backend_name(BuildBackend b) noexcept {
  switch (b) {
    case BuildBackend::kNone:
      return "none";
    case BuildBackend::kCpu:
      return "cpu";
    case BuildBackend::kCuda:
      return "cuda";
  }
  return "unknown";
}

/** Start node of one label (Filtered DiskANN). On disk: i16 label, u16 offset, u32 block. */
struct LabelStart {
  std::int16_t label = 0;  ///< the label
  Tid node;                ///< the node search starts from for this label
  /** Field-wise equality. */
  friend bool operator==(const LabelStart&, const LabelStart&) = default;
};

/** Mirror of the fixed part of the meta struct (at page offset +24); offsets are frozen. */
struct MetaDisk {
  std::uint32_t magic;                       // +0   kMetaMagic
  std::uint32_t format_version;              // +4   kFormatVersion
  std::uint16_t metric;                      // +8   distance::Metric
  std::uint16_t storage;                     // +10  StorageLayout
  std::uint32_t column_dims;                 // +12
  std::uint32_t indexed_dims;                // +16  1..column_dims
  std::uint16_t bits_per_dim;                // +20  SBQ 1..8, plain 0
  std::uint16_t flags;                       // +22  kMetaFlagHasLabels
  std::uint32_t num_neighbors;               // +24  R
  std::uint32_t search_list_size;            // +28  L
  float max_alpha;                           // +32
  std::uint16_t label_capacity;              // +36
  std::uint16_t reserved0;                   // +38  0
  std::uint32_t entry_block;                 // +40  TID8 entry point
  std::uint16_t entry_offset;                // +44
  std::uint16_t entry_pad;                   // +46  0
  std::uint64_t node_count;                  // +48
  std::uint64_t deleted_count;               // +56
  std::uint32_t free_block;                  // +64  TID8 free list head
  std::uint16_t free_offset;                 // +68
  std::uint16_t free_pad;                    // +70  0
  std::uint32_t quantizer_first_block;       // +72
  std::uint32_t quantizer_pages;             // +76
  std::uint32_t first_node_block;            // +80
  std::uint32_t node_record_size;            // +84
  std::uint32_t nodes_per_page;              // +88
  std::uint32_t label_count;                 // +92
  std::uint32_t label_overflow_first_block;  // +96
  std::uint32_t label_inline_count;          // +100
  std::uint16_t built_by;                    // +104 BuiltBy
  std::uint16_t build_backend;               // +106 BuildBackend
  std::uint32_t reserved1;                   // +108 0
  char builder_id[kBuilderIdSize];           // +112 NUL-padded
  std::uint8_t reserved2[16];                // +176 0
};
static_assert(std::is_trivially_copyable_v<MetaDisk>);
static_assert(sizeof(MetaDisk) == kMetaFixedSize);
static_assert(offsetof(MetaDisk, metric) == 8);
static_assert(offsetof(MetaDisk, max_alpha) == 32);
static_assert(offsetof(MetaDisk, entry_block) == 40);
static_assert(offsetof(MetaDisk, node_count) == 48);
static_assert(offsetof(MetaDisk, free_block) == 64);
static_assert(offsetof(MetaDisk, quantizer_first_block) == 72);
static_assert(offsetof(MetaDisk, label_inline_count) == 100);
static_assert(offsetof(MetaDisk, built_by) == 104);
static_assert(offsetof(MetaDisk, builder_id) == 112);
static_assert(offsetof(MetaDisk, reserved2) == 176);

/** Mirror of the fixed node record header; labels follow at +12. */
struct NodeHeaderDisk {
  std::uint16_t state;          // +0  NodeState
  std::uint16_t num_labels;     // +2  <= label_capacity
  std::uint16_t num_neighbors;  // +4  <= R
  ItemPointerMirror heap_tid;   // +6  heap TID (6 bytes)
};
static_assert(std::is_trivially_copyable_v<NodeHeaderDisk>);
static_assert(sizeof(NodeHeaderDisk) == kNodeHeaderSize);
static_assert(offsetof(NodeHeaderDisk, num_neighbors) == 4);
static_assert(offsetof(NodeHeaderDisk, heap_tid) == 6);

/**
 * Every field of the meta page, decoded. Options (metric .. label_capacity) and provenance
 * are set by whoever builds; the layout fields are filled by the page writer.
 */
struct MetaInfo {
  distance::Metric metric = distance::Metric::kL2;           ///< distance of the index
  StorageLayout storage = StorageLayout::kMemoryOptimized;   ///< SBQ or plain
  std::uint32_t column_dims = 0;                             ///< dims of the column type
  std::uint32_t indexed_dims = 0;                            ///< leading dims indexed
  std::uint16_t bits_per_dim = 0;                            ///< SBQ bits (plain: 0)
  bool has_labels = false;                                   ///< labeled (filtered) index
  std::uint32_t num_neighbors = 0;                           ///< R
  std::uint32_t search_list_size = 0;                        ///< build L
  float max_alpha = 1.2f;                                    ///< largest RobustPrune alpha
  std::uint16_t label_capacity = 0;                          ///< max labels per node
  Tid entry_point;                                           ///< medoid; invalid if empty
  std::uint64_t node_count = 0;                              ///< live + deleted + free slots
  std::uint64_t deleted_count = 0;                           ///< records in state deleted
  Tid free_list_head;                                        ///< first free slot or invalid
  std::uint32_t quantizer_first_block = kInvalidBlock;       ///< SBQ stream start
  std::uint32_t quantizer_pages = 0;                         ///< pages in the SBQ chain
  std::uint32_t first_node_block = 0;                        ///< first node page
  std::uint32_t node_record_size = 0;                        ///< bytes per node record
  std::uint32_t nodes_per_page = 0;                          ///< records per full page
  std::uint32_t label_count = 0;                             ///< label starts in total
  std::uint32_t label_overflow_first_block = kInvalidBlock;  ///< overflow chain start
  std::uint32_t label_inline_count = 0;                      ///< label starts on the meta page
  BuiltBy built_by = BuiltBy::kLocal;                        ///< provenance
  BuildBackend build_backend = BuildBackend::kNone;          ///< provenance
  std::string builder_id;                                    ///< at most 63 bytes, no NUL
  /** The inline label starts (exactly label_inline_count, sorted by label). */
  std::vector<LabelStart> labels;
};

/** Label start entries that fit on the meta page of a page_size page. */
[[nodiscard]] constexpr std::uint32_t inline_label_capacity(std::uint32_t page_size) noexcept {
  return (page_size - kPageHeaderSize - kSpecialSize - kMetaFixedSize) / kLabelStartSize;
}

/** Floats per quantizer page (after its u32 first_element, u32 count header). */
[[nodiscard]] constexpr std::uint32_t quantizer_floats_per_page(std::uint32_t page_size) noexcept {
  return (page_size - kPageHeaderSize - kSpecialSize - 8) / 4;
}

/** Label start entries per label overflow page (after its u32 count, u32 zero header). */
[[nodiscard]] constexpr std::uint32_t overflow_labels_per_page(std::uint32_t page_size) noexcept {
  return (page_size - kPageHeaderSize - kSpecialSize - 8) / kLabelStartSize;
}

/**
 * Size in bytes of a node record: align8(12 + 2*label_capacity) + payload + 6*R.
 * Throws kInvalidArgument for out-of-range parameters.
 */
[[nodiscard]] std::uint32_t node_record_size(StorageLayout storage, std::uint32_t indexed_dims,
                                             std::uint16_t bits_per_dim, std::uint32_t num_neighbors,
                                             std::uint16_t label_capacity);

/**
 * Node records per page: floor((page_size - 40) / (4 + align8(record_size))). Throws
 * vs::Error{kInvalidArgument} "node record of N bytes does not fit a P-byte page" when 0,
 * which is how too-wide plain vectors are rejected.
 */
[[nodiscard]] std::uint32_t nodes_per_page(std::uint32_t record_size, std::uint32_t page_size);

/** Offsets and sizes inside a node record, derived from the index options. */
struct NodeLayout {
  StorageLayout storage = StorageLayout::kMemoryOptimized;  ///< SBQ or plain
  std::uint32_t indexed_dims = 0;                           ///< dims in the payload
  std::uint16_t bits_per_dim = 0;                           ///< SBQ bits (plain 0)
  std::uint32_t num_neighbors = 0;                          ///< R: neighbor slots
  std::uint16_t label_capacity = 0;                         ///< label slots
  std::uint32_t page_size = kDefaultPageSize;               ///< BLCKSZ
  std::uint32_t payload_offset = 0;                         ///< align8(12 + 2*label_capacity)
  std::uint32_t payload_size = 0;                           ///< 4*dims (plain) or 8*code words (SBQ)
  std::uint32_t code_words = 0;                             ///< SBQ code words (plain 0)
  std::uint32_t neighbors_offset = 0;                       ///< payload_offset + payload_size
  std::uint32_t record_size = 0;                            ///< neighbors_offset + 6*R
  std::uint32_t aligned_record_size = 0;                    ///< align8(record_size): the placement stride
  std::uint32_t nodes_per_page = 0;                         ///< records per full node page

  /** Validates the parameters and computes the layout; throws kInvalidArgument. */
  [[nodiscard]] static NodeLayout make(StorageLayout storage, std::uint32_t indexed_dims, std::uint16_t bits_per_dim,
                                       std::uint32_t num_neighbors, std::uint16_t label_capacity,
                                       std::uint32_t page_size);
  /** The layout of the index described by meta options; throws kInvalidArgument. */
  [[nodiscard]] static NodeLayout from_meta(const MetaInfo& meta, std::uint32_t page_size);

  /** Byte offset in the page of the k-th (0-based) record: pd_special - (k+1)*aligned. */
  [[nodiscard]] std::uint32_t record_offset(std::uint32_t k) const noexcept {
    return special_offset(page_size) - (k + 1) * aligned_record_size;
  }
};

/**
 * Checks meta options and layout fields for internal consistency (ranges, flags, the layout
 * matching the options, label counts, provenance). total_blocks > 0 also range-checks the
 * block numbers. Returns an empty string when consistent, else the reason.
 */
[[nodiscard]] std::string check_meta_info(const MetaInfo& meta, std::uint32_t page_size,
                                          std::uint32_t total_blocks = 0);

/**
 * Writes a complete meta page image (header, meta struct, inline labels, opaque) into page
 * (page.size() is the page size). Throws kInvalidArgument when check_meta_info fails or
 * labels.size() != label_inline_count.
 */
void encode_meta(const MetaInfo& meta, std::span<std::byte> page);

/** Decodes a meta page; throws vs::Error{kCorrupt} with the reason if it is malformed. */
[[nodiscard]] MetaInfo decode_meta(std::span<const std::byte> page);

/**
 * Read-only view of one node record. The span must cover at least layout.record_size bytes
 * (checked); the bytes and the layout stay owned by the caller and must outlive the view.
 */
class NodeView {
 public:
  /** Views record bytes laid out by layout; throws kInvalidArgument if too short. */
  NodeView(std::span<const std::byte> record, const NodeLayout& layout);

  /** Raw state field (may be out of range in a corrupt record). */
  [[nodiscard]] std::uint16_t raw_state() const noexcept { return load_u16(p_, 0); }
  /** State; only meaningful when raw_state() is 1..3. */
  [[nodiscard]] NodeState state() const noexcept { return static_cast<NodeState>(raw_state()); }
  /** Number of labels in use. */
  [[nodiscard]] std::uint16_t num_labels() const noexcept { return load_u16(p_, 2); }
  /** Number of valid neighbors. */
  [[nodiscard]] std::uint16_t num_neighbors() const noexcept { return load_u16(p_, 4); }
  /** Heap TID of the row. */
  [[nodiscard]] Tid heap_tid() const noexcept { return load_tid6(p_ + 6); }
  /** Label slot i (i < label_capacity). */
  [[nodiscard]] std::int16_t label(std::size_t i) const noexcept { return load_i16(p_, kNodeHeaderSize + 2 * i); }
  /** The labels in use (first min(num_labels, label_capacity) slots). */
  [[nodiscard]] std::vector<std::int16_t> labels() const;
  /** True if one of the labels in use equals label. */
  [[nodiscard]] bool has_label(std::int16_t label) const noexcept;
  /** The payload bytes (plain floats or SBQ code words, little-endian). */
  [[nodiscard]] std::span<const std::byte> payload() const noexcept {
    return {p_ + layout_->payload_offset, layout_->payload_size};
  }
  /** Decodes the plain payload into out (out.size() == indexed_dims). */
  void read_plain(std::span<float> out) const;
  /** Decodes SBQ code words into out (out.size() == code_words). */
  void read_codes(std::span<std::uint64_t> out) const;
  /** Neighbor slot i (i < R); slots past num_neighbors are invalid in a sound record. */
  [[nodiscard]] Tid neighbor(std::size_t i) const noexcept {
    return load_tid6(p_ + layout_->neighbors_offset + kTid6Size * i);
  }
  /** The valid neighbors (first min(num_neighbors, R) slots). */
  [[nodiscard]] std::vector<Tid> neighbors() const;
  /** For a free slot: the next free slot (neighbors[0]). */
  [[nodiscard]] Tid next_free() const noexcept { return neighbor(0); }
  /** The layout this view uses. */
  [[nodiscard]] const NodeLayout& layout() const noexcept { return *layout_; }

 private:
  const std::byte* p_;
  const NodeLayout* layout_;
};

/**
 * Mutable view of one node record for building and in-place updates (neighbor lists, state,
 * labels). The bytes and the layout must outlive the writer.
 */
class NodeWriter {
 public:
  /** Edits record bytes laid out by layout; throws kInvalidArgument if too short. */
  NodeWriter(std::span<std::byte> record, const NodeLayout& layout);

  /** Read-only view of the same record. */
  [[nodiscard]] NodeView view() const { return NodeView({p_, layout_->record_size}, *layout_); }
  /** Zeroes the record and marks every neighbor slot invalid (state 0: not yet valid). */
  void clear() noexcept;
  /** Sets the state field. */
  void set_state(NodeState state) noexcept { store_u16(p_, 0, static_cast<std::uint16_t>(state)); }
  /** Sets the heap TID. */
  void set_heap_tid(Tid tid) noexcept { store_tid6(p_ + 6, tid); }
  /** Sets the labels (strictly ascending, at most label_capacity); zeroes unused slots. */
  void set_labels(std::span<const std::int16_t> labels);
  /** Copies payload bytes (exactly payload_size). */
  void set_payload(std::span<const std::byte> bytes);
  /** Encodes a plain payload (exactly indexed_dims floats). */
  void set_plain(std::span<const float> values);
  /** Encodes SBQ code words (exactly code_words). */
  void set_codes(std::span<const std::uint64_t> words);
  /** Replaces the neighbor list (at most R valid TIDs); the remaining slots become invalid. */
  void set_neighbors(std::span<const Tid> neighbors);
  /** Overwrites neighbor slot i (i < R) without touching num_neighbors. */
  void set_neighbor_slot(std::size_t i, Tid tid);
  /** Turns the record into a free slot linking next (clears labels, payload, neighbors). */
  void make_free(Tid next) noexcept;

 private:
  std::byte* p_;
  const NodeLayout* layout_;
};

}  // namespace vs::format
