// Node layout math, meta page encoding and node record views of index format v1
// (README.md §4 and §7). decode_meta lives in validate.cpp next to the meta page checks.
#include "vectorscale/format/records.hpp"

#include "vectorscale/core/error.hpp"

#include <algorithm>
#include <cmath>

namespace vs::format {

namespace {

// Formats a TID for messages.
std::string tid_str(Tid t) {
  return vs::detail::format("(%u,%u)", t.block, static_cast<unsigned>(t.offset));
}

// Checks that a TID is a plausible node slot: valid, on a node block, offset in range.
std::string check_node_tid(const char* what, Tid t, const MetaInfo& m, std::uint32_t total_blocks) {
  if (!t.valid()) return vs::detail::format("%s %s is not a valid TID", what, tid_str(t).c_str());
  if (t.block < m.first_node_block)
    return vs::detail::format("%s %s is below first_node_block %u", what, tid_str(t).c_str(), m.first_node_block);
  if (total_blocks != 0 && t.block >= total_blocks)
    return vs::detail::format("%s %s is beyond the last block %u", what, tid_str(t).c_str(), total_blocks - 1);
  if (t.offset > m.nodes_per_page)
    return vs::detail::format("%s %s has offset above nodes_per_page %u", what, tid_str(t).c_str(), m.nodes_per_page);
  return {};
}

}  // namespace

// Computes the record size after checking every parameter.
std::uint32_t node_record_size(StorageLayout storage, std::uint32_t indexed_dims, std::uint16_t bits_per_dim,
                               std::uint32_t num_neighbors, std::uint16_t label_capacity) {
  VS_EXPECTS(storage == StorageLayout::kMemoryOptimized || storage == StorageLayout::kPlain,
             "unknown storage layout %u", static_cast<unsigned>(storage));
  VS_EXPECTS(indexed_dims >= 1 && indexed_dims <= kMaxDims, "indexed dimensions %u out of range 1..%u", indexed_dims,
             kMaxDims);
  if (storage == StorageLayout::kPlain) {
    VS_EXPECTS(bits_per_dim == 0, "plain storage has bits_per_dim %u, expected 0", static_cast<unsigned>(bits_per_dim));
  } else {
    VS_EXPECTS(bits_per_dim >= 1 && bits_per_dim <= kMaxBitsPerDim, "bits_per_dim %u out of range 1..%u",
               static_cast<unsigned>(bits_per_dim), static_cast<unsigned>(kMaxBitsPerDim));
  }
  VS_EXPECTS(num_neighbors >= 1 && num_neighbors <= kMaxNumNeighbors, "num_neighbors %u out of range 1..%u",
             num_neighbors, kMaxNumNeighbors);
  const std::uint64_t payload_offset = align8(kNodeHeaderSize + 2ull * label_capacity);
  const std::uint64_t payload =
      storage == StorageLayout::kPlain ? 4ull * indexed_dims : 8ull * sbq::code_words(indexed_dims, bits_per_dim);
  return static_cast<std::uint32_t>(payload_offset + payload + kTid6Size * num_neighbors);
}

// Records per page; rejects records that do not fit even once.
std::uint32_t nodes_per_page(std::uint32_t record_size, std::uint32_t page_size) {
  VS_EXPECTS(is_valid_page_size(page_size), "page size %u is not a power of two in 1024..32768", page_size);
  const std::uint64_t usable = page_size - kPageHeaderSize - kSpecialSize;
  const std::uint64_t n = usable / (kItemIdSize + align8(record_size));
  VS_EXPECTS(n > 0, "node record of %u bytes does not fit a %u-byte page", record_size, page_size);
  return static_cast<std::uint32_t>(n);
}

// Builds and validates a layout.
NodeLayout NodeLayout::make(StorageLayout storage, std::uint32_t indexed_dims, std::uint16_t bits_per_dim,
                            std::uint32_t num_neighbors, std::uint16_t label_capacity, std::uint32_t page_size) {
  NodeLayout l;
  l.storage = storage;
  l.indexed_dims = indexed_dims;
  l.bits_per_dim = bits_per_dim;
  l.num_neighbors = num_neighbors;
  l.label_capacity = label_capacity;
  l.page_size = page_size;
  l.record_size = node_record_size(storage, indexed_dims, bits_per_dim, num_neighbors, label_capacity);
  l.payload_offset = static_cast<std::uint32_t>(align8(kNodeHeaderSize + 2ull * label_capacity));
  if (storage == StorageLayout::kPlain) {
    l.code_words = 0;
    l.payload_size = 4 * indexed_dims;
  } else {
    l.code_words = static_cast<std::uint32_t>(sbq::code_words(indexed_dims, bits_per_dim));
    l.payload_size = 8 * l.code_words;
  }
  l.neighbors_offset = l.payload_offset + l.payload_size;
  l.aligned_record_size = static_cast<std::uint32_t>(align8(l.record_size));
  l.nodes_per_page = format::nodes_per_page(l.record_size, page_size);
  return l;
}

// Layout from the options frozen in a meta page.
NodeLayout NodeLayout::from_meta(const MetaInfo& m, std::uint32_t page_size) {
  return make(m.storage, m.indexed_dims, m.bits_per_dim, m.num_neighbors, m.label_capacity, page_size);
}

// Range and consistency checks of every meta field.
std::string check_meta_info(const MetaInfo& m, std::uint32_t page_size, std::uint32_t total_blocks) {
  using vs::detail::format;
  if (!is_valid_page_size(page_size)) return format("page size %u is not a power of two in 1024..32768", page_size);
  const auto metric = static_cast<unsigned>(m.metric);
  if (metric < 1 || metric > 3) return format("unknown metric %u", metric);
  const auto storage = static_cast<unsigned>(m.storage);
  if (storage < 1 || storage > 2) return format("unknown storage layout %u", storage);
  if (m.column_dims < 1 || m.column_dims > kMaxDims)
    return format("column_dims %u out of range 1..%u", m.column_dims, kMaxDims);
  if (m.indexed_dims < 1 || m.indexed_dims > m.column_dims)
    return format("indexed_dims %u out of range 1..column_dims %u", m.indexed_dims, m.column_dims);
  if (m.storage == StorageLayout::kPlain && m.bits_per_dim != 0)
    return format("bits_per_dim %u with plain storage, expected 0", static_cast<unsigned>(m.bits_per_dim));
  if (m.storage == StorageLayout::kMemoryOptimized && (m.bits_per_dim < 1 || m.bits_per_dim > kMaxBitsPerDim))
    return format("bits_per_dim %u out of range 1..%u", static_cast<unsigned>(m.bits_per_dim),
                  static_cast<unsigned>(kMaxBitsPerDim));
  if (m.num_neighbors < 1 || m.num_neighbors > kMaxNumNeighbors)
    return format("num_neighbors %u out of range 1..%u", m.num_neighbors, kMaxNumNeighbors);
  if (m.search_list_size < 1) return format("search_list_size is 0");
  if (!std::isfinite(m.max_alpha) || m.max_alpha < 1.0f)
    return format("max_alpha %g is not a finite value >= 1", static_cast<double>(m.max_alpha));
  if (!m.has_labels && m.label_capacity != 0)
    return format("label_capacity %u without has_labels", static_cast<unsigned>(m.label_capacity));
  if (m.has_labels && m.label_capacity == 0) return format("has_labels with label_capacity 0");

  NodeLayout layout;
  try {
    layout = NodeLayout::from_meta(m, page_size);
  } catch (const Error& e) {
    return e.what();
  }
  if (m.node_record_size != layout.record_size)
    return format("node_record_size %u, expected %u for these options", m.node_record_size, layout.record_size);
  if (m.nodes_per_page != layout.nodes_per_page)
    return format("nodes_per_page %u, expected %u", m.nodes_per_page, layout.nodes_per_page);
  if (m.first_node_block < 1 || m.first_node_block == kInvalidBlock)
    return format("first_node_block %u is not a block after the meta page", m.first_node_block);
  if (total_blocks != 0 && m.first_node_block > total_blocks)
    return format("first_node_block %u is beyond the %u blocks of the index", m.first_node_block, total_blocks);

  if (m.storage == StorageLayout::kMemoryOptimized) {
    const std::uint64_t stream = sbq::stream_length(m.indexed_dims, m.bits_per_dim);
    if (m.quantizer_first_block == 0 || m.quantizer_first_block == kInvalidBlock)
      return format("quantizer_first_block %u is not a valid block", m.quantizer_first_block);
    if (total_blocks != 0 && m.quantizer_first_block >= total_blocks)
      return format("quantizer_first_block %u is beyond the last block %u", m.quantizer_first_block, total_blocks - 1);
    if (m.quantizer_pages < 1 || m.quantizer_pages > stream)
      return format("quantizer_pages %u out of range 1..%llu", m.quantizer_pages,
                    static_cast<unsigned long long>(stream));
  } else if (m.quantizer_first_block != kInvalidBlock || m.quantizer_pages != 0) {
    return format("plain storage with quantizer_first_block %u and quantizer_pages %u", m.quantizer_first_block,
                  m.quantizer_pages);
  }

  const std::uint32_t inline_cap = inline_label_capacity(page_size);
  if (!m.has_labels && (m.label_count != 0 || m.label_inline_count != 0))
    return format("label_count %u without has_labels", m.label_count);
  if (m.label_inline_count > inline_cap)
    return format("label_inline_count %u exceeds the inline capacity %u", m.label_inline_count, inline_cap);
  if (m.label_inline_count > m.label_count)
    return format("label_inline_count %u exceeds label_count %u", m.label_inline_count, m.label_count);
  if (m.label_count > 65536u) return format("label_count %u exceeds 65536", m.label_count);
  if (m.labels.size() != m.label_inline_count)
    return format("%zu inline label starts, expected label_inline_count %u", m.labels.size(), m.label_inline_count);
  if (m.label_count > m.label_inline_count) {
    if (m.label_overflow_first_block == 0 || m.label_overflow_first_block == kInvalidBlock ||
        (total_blocks != 0 && m.label_overflow_first_block >= total_blocks))
      return format("label_overflow_first_block %u is not a valid block for %u overflow labels",
                    m.label_overflow_first_block, m.label_count - m.label_inline_count);
  } else if (m.label_overflow_first_block != kInvalidBlock) {
    return format("label_overflow_first_block %u with no overflow labels", m.label_overflow_first_block);
  }
  for (std::size_t i = 0; i < m.labels.size(); ++i) {
    if (i > 0 && m.labels[i].label <= m.labels[i - 1].label)
      return format("inline label start %zu (label %d) is not above label %d", i, static_cast<int>(m.labels[i].label),
                    static_cast<int>(m.labels[i - 1].label));
    std::string r = check_node_tid("inline label start node", m.labels[i].node, m, total_blocks);
    if (!r.empty()) return format("label %d: %s", static_cast<int>(m.labels[i].label), r.c_str());
  }

  if (m.deleted_count > m.node_count)
    return format("deleted_count %llu exceeds node_count %llu", static_cast<unsigned long long>(m.deleted_count),
                  static_cast<unsigned long long>(m.node_count));
  if (m.node_count == 0 && !m.entry_point.is_invalid())
    return format("empty index with entry point %s", tid_str(m.entry_point).c_str());
  if (!m.entry_point.is_invalid()) {
    std::string r = check_node_tid("entry point", m.entry_point, m, total_blocks);
    if (!r.empty()) return r;
  }
  if (!m.free_list_head.is_invalid()) {
    std::string r = check_node_tid("free_list_head", m.free_list_head, m, total_blocks);
    if (!r.empty()) return r;
  }

  const auto by = static_cast<unsigned>(m.built_by);
  if (by < 1 || by > 2) return format("unknown built_by %u", by);
  const auto backend = static_cast<unsigned>(m.build_backend);
  if (backend > 2) return format("unknown build_backend %u", backend);
  if (m.builder_id.size() >= kBuilderIdSize)
    return format("builder_id of %zu bytes exceeds %u", m.builder_id.size(), kBuilderIdSize - 1);
  if (m.builder_id.find('\0') != std::string::npos) return format("builder_id contains a NUL");
  return {};
}

// Writes the whole meta page image.
void encode_meta(const MetaInfo& m, std::span<std::byte> page) {
  VS_EXPECTS(is_valid_page_size(page.size()), "page size %zu is not a power of two in 1024..32768", page.size());
  const auto page_size = static_cast<std::uint32_t>(page.size());
  const std::string why = check_meta_info(m, page_size);
  VS_EXPECTS(why.empty(), "invalid meta page: %s", why.c_str());

  init_page(page, PageType::kMeta, kInvalidBlock);
  std::byte* p = page.data() + kPageHeaderSize;
  store_u32(p, offsetof(MetaDisk, magic), kMetaMagic);
  store_u32(p, offsetof(MetaDisk, format_version), kFormatVersion);
  store_u16(p, offsetof(MetaDisk, metric), static_cast<std::uint16_t>(m.metric));
  store_u16(p, offsetof(MetaDisk, storage), static_cast<std::uint16_t>(m.storage));
  store_u32(p, offsetof(MetaDisk, column_dims), m.column_dims);
  store_u32(p, offsetof(MetaDisk, indexed_dims), m.indexed_dims);
  store_u16(p, offsetof(MetaDisk, bits_per_dim), m.bits_per_dim);
  store_u16(p, offsetof(MetaDisk, flags), m.has_labels ? kMetaFlagHasLabels : 0);
  store_u32(p, offsetof(MetaDisk, num_neighbors), m.num_neighbors);
  store_u32(p, offsetof(MetaDisk, search_list_size), m.search_list_size);
  store_f32(p, offsetof(MetaDisk, max_alpha), m.max_alpha);
  store_u16(p, offsetof(MetaDisk, label_capacity), m.label_capacity);
  store_tid8(p + offsetof(MetaDisk, entry_block), m.entry_point);
  store_u64(p, offsetof(MetaDisk, node_count), m.node_count);
  store_u64(p, offsetof(MetaDisk, deleted_count), m.deleted_count);
  store_tid8(p + offsetof(MetaDisk, free_block), m.free_list_head);
  store_u32(p, offsetof(MetaDisk, quantizer_first_block), m.quantizer_first_block);
  store_u32(p, offsetof(MetaDisk, quantizer_pages), m.quantizer_pages);
  store_u32(p, offsetof(MetaDisk, first_node_block), m.first_node_block);
  store_u32(p, offsetof(MetaDisk, node_record_size), m.node_record_size);
  store_u32(p, offsetof(MetaDisk, nodes_per_page), m.nodes_per_page);
  store_u32(p, offsetof(MetaDisk, label_count), m.label_count);
  store_u32(p, offsetof(MetaDisk, label_overflow_first_block), m.label_overflow_first_block);
  store_u32(p, offsetof(MetaDisk, label_inline_count), m.label_inline_count);
  store_u16(p, offsetof(MetaDisk, built_by), static_cast<std::uint16_t>(m.built_by));
  store_u16(p, offsetof(MetaDisk, build_backend), static_cast<std::uint16_t>(m.build_backend));
  std::memcpy(p + offsetof(MetaDisk, builder_id), m.builder_id.data(), m.builder_id.size());
  for (std::size_t i = 0; i < m.labels.size(); ++i) {
    std::byte* e = p + kMetaFixedSize + kLabelStartSize * i;
    store_i16(e, 0, m.labels[i].label);
    store_u16(e, 2, m.labels[i].node.offset);
    store_u32(e, 4, m.labels[i].node.block);
  }
  PageHeaderMirror h = read_page_header(page);
  h.pd_lower = static_cast<std::uint16_t>(kPageHeaderSize + kMetaFixedSize + kLabelStartSize * m.labels.size());
  write_page_header(page, h);
}

// ---- NodeView ----------------------------------------------------------------------------

// Binds the view after checking the span covers a record.
NodeView::NodeView(std::span<const std::byte> record, const NodeLayout& layout) : p_(record.data()), layout_(&layout) {
  VS_EXPECTS(record.size() >= layout.record_size && layout.record_size >= kNodeHeaderSize,
             "node record view of %zu bytes, expected %u", record.size(), layout.record_size);
}

// Copies the labels in use.
std::vector<std::int16_t> NodeView::labels() const {
  const std::size_t n = std::min<std::size_t>(num_labels(), layout_->label_capacity);
  std::vector<std::int16_t> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = label(i);
  return out;
}

// Linear search over the (few) labels in use.
bool NodeView::has_label(std::int16_t l) const noexcept {
  const std::size_t n = std::min<std::size_t>(num_labels(), layout_->label_capacity);
  for (std::size_t i = 0; i < n; ++i)
    if (label(i) == l) return true;
  return false;
}

// Decodes the plain payload.
void NodeView::read_plain(std::span<float> out) const {
  VS_EXPECTS(layout_->storage == StorageLayout::kPlain && out.size() == layout_->indexed_dims,
             "read_plain of %zu floats from a record of %u plain dimensions", out.size(),
             layout_->storage == StorageLayout::kPlain ? layout_->indexed_dims : 0u);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = load_f32(p_, layout_->payload_offset + 4 * i);
}

// Decodes the SBQ code words.
void NodeView::read_codes(std::span<std::uint64_t> out) const {
  VS_EXPECTS(out.size() == layout_->code_words && layout_->code_words > 0,
             "read_codes of %zu words from a record of %u code words", out.size(), layout_->code_words);
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = load_u64(p_, layout_->payload_offset + 8 * i);
}

// Copies the valid neighbors.
std::vector<Tid> NodeView::neighbors() const {
  const std::size_t n = std::min<std::size_t>(num_neighbors(), layout_->num_neighbors);
  std::vector<Tid> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = neighbor(i);
  return out;
}

// ---- NodeWriter --------------------------------------------------------------------------

// Binds the writer after checking the span covers a record.
NodeWriter::NodeWriter(std::span<std::byte> record, const NodeLayout& layout) : p_(record.data()), layout_(&layout) {
  VS_EXPECTS(record.size() >= layout.record_size && layout.record_size >= kNodeHeaderSize,
             "node record writer of %zu bytes, expected %u", record.size(), layout.record_size);
}

// Zeroes everything, then invalidates every neighbor slot.
void NodeWriter::clear() noexcept {
  std::memset(p_, 0, layout_->record_size);
  set_heap_tid(Tid::invalid());
  for (std::size_t i = 0; i < layout_->num_neighbors; ++i)
    store_tid6(p_ + layout_->neighbors_offset + kTid6Size * i, Tid::invalid());
}

// Stores sorted labels and zeroes the unused slots.
void NodeWriter::set_labels(std::span<const std::int16_t> labels) {
  VS_EXPECTS(labels.size() <= layout_->label_capacity, "%zu labels exceed label_capacity %u", labels.size(),
             static_cast<unsigned>(layout_->label_capacity));
  for (std::size_t i = 1; i < labels.size(); ++i)
    VS_EXPECTS(labels[i - 1] < labels[i], "labels are not strictly ascending at position %zu", i);
  for (std::size_t i = 0; i < layout_->label_capacity; ++i)
    store_i16(p_, kNodeHeaderSize + 2 * i, i < labels.size() ? labels[i] : std::int16_t{0});
  store_u16(p_, 2, static_cast<std::uint16_t>(labels.size()));
}

// Copies the payload verbatim.
void NodeWriter::set_payload(std::span<const std::byte> bytes) {
  VS_EXPECTS(bytes.size() == layout_->payload_size, "payload of %zu bytes, expected %u", bytes.size(),
             layout_->payload_size);
  std::memcpy(p_ + layout_->payload_offset, bytes.data(), bytes.size());
}

// Encodes floats little-endian.
void NodeWriter::set_plain(std::span<const float> values) {
  VS_EXPECTS(layout_->storage == StorageLayout::kPlain && values.size() == layout_->indexed_dims,
             "plain payload of %zu floats, expected %u plain dimensions", values.size(),
             layout_->storage == StorageLayout::kPlain ? layout_->indexed_dims : 0u);
  for (std::size_t i = 0; i < values.size(); ++i) store_f32(p_, layout_->payload_offset + 4 * i, values[i]);
}

// Encodes code words little-endian.
void NodeWriter::set_codes(std::span<const std::uint64_t> words) {
  VS_EXPECTS(words.size() == layout_->code_words && layout_->code_words > 0, "%zu code words, expected %u",
             words.size(), layout_->code_words);
  for (std::size_t i = 0; i < words.size(); ++i) store_u64(p_, layout_->payload_offset + 8 * i, words[i]);
}

// Writes the list and invalidates the remaining slots.
void NodeWriter::set_neighbors(std::span<const Tid> neighbors) {
  VS_EXPECTS(neighbors.size() <= layout_->num_neighbors, "%zu neighbors exceed R = %u", neighbors.size(),
             layout_->num_neighbors);
  for (std::size_t i = 0; i < layout_->num_neighbors; ++i)
    store_tid6(p_ + layout_->neighbors_offset + kTid6Size * i, i < neighbors.size() ? neighbors[i] : Tid::invalid());
  store_u16(p_, 4, static_cast<std::uint16_t>(neighbors.size()));
}

// Overwrites one slot.
void NodeWriter::set_neighbor_slot(std::size_t i, Tid tid) {
  VS_EXPECTS(i < layout_->num_neighbors, "neighbor slot %zu out of range 0..%u", i, layout_->num_neighbors - 1);
  store_tid6(p_ + layout_->neighbors_offset + kTid6Size * i, tid);
}

// Turns the record into a free-list link.
void NodeWriter::make_free(Tid next) noexcept {
  clear();
  set_state(NodeState::kFree);
  store_tid6(p_ + layout_->neighbors_offset, next);
}

}  // namespace vs::format
