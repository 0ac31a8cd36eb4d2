// Validation of index format v1 pages (README.md §9). Every check reads through bounds-checked
// offsets, never throws on malformed input and reports the first problem precisely. The
// per-page checks are shared by validate_page and IndexValidator; decode_meta uses the meta
// page checks too, so nothing decodes a meta page that validation would reject.
#include "vectorscale/format/validate.hpp"

#include "vectorscale/core/error.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace vs::format {

namespace {

using vs::detail::format;

// Formats a TID for messages.
std::string tid_str(Tid t) {
  return format("(%u,%u)", t.block, static_cast<unsigned>(t.offset));
}

// First non-zero byte in [from, to) of p, or to.
std::size_t first_nonzero(const std::byte* p, std::size_t from, std::size_t to) {
  for (std::size_t i = from; i < to; ++i)
    if (p[i] != std::byte{0}) return i;
  return to;
}

// Why a TID cannot name a node slot (empty when it can).
std::string node_tid_problem(Tid t, const MetaInfo& m, std::uint32_t total_blocks) {
  if (!t.valid()) return "is not a valid TID";
  if (t.block < m.first_node_block) return format("is below first_node_block %u", m.first_node_block);
  if (total_blocks != 0 && t.block >= total_blocks) return format("is beyond the last block %u", total_blocks - 1);
  if (t.offset > m.nodes_per_page) return format("has offset above nodes_per_page %u", m.nodes_per_page);
  return {};
}

// Header and opaque checks shared by every page type (reason without the block prefix).
std::string check_header(std::span<const std::byte> page, std::uint32_t block, const Expectations& e,
                         PageHeaderMirror& h, PageOpaque& o) {
  if (!is_valid_page_size(e.page_size))
    return format("expected page size %u is not a power of two in 1024..32768", e.page_size);
  if (page.size() != e.page_size) return format("page is %zu bytes, expected %u", page.size(), e.page_size);
  if (e.total_blocks != 0 && block >= e.total_blocks)
    return format("block number is beyond the %u blocks of the index", e.total_blocks);
  h = read_page_header(page);
  o = read_page_opaque(page);
  const std::uint32_t special = special_offset(e.page_size);
  const auto want_version = static_cast<std::uint16_t>(e.page_size | kLayoutVersion);
  if (h.pd_pagesize_version != want_version)
    return format("pd_pagesize_version is 0x%04x, expected 0x%04x (page size %u, layout version %u)",
                  static_cast<unsigned>(h.pd_pagesize_version), static_cast<unsigned>(want_version), e.page_size,
                  static_cast<unsigned>(kLayoutVersion));
  if (h.pd_special != special)
    return format("pd_special is %u, expected %u (a %u-byte special space)", static_cast<unsigned>(h.pd_special),
                  special, kSpecialSize);
  if (h.pd_lower < kPageHeaderSize)
    return format("pd_lower %u is inside the %u-byte page header", static_cast<unsigned>(h.pd_lower), kPageHeaderSize);
  if (h.pd_upper > h.pd_special)
    return format("pd_upper %u is above pd_special %u", static_cast<unsigned>(h.pd_upper),
                  static_cast<unsigned>(h.pd_special));
  if (h.pd_lower > h.pd_upper)
    return format("pd_lower %u is above pd_upper %u", static_cast<unsigned>(h.pd_lower),
                  static_cast<unsigned>(h.pd_upper));
  if ((h.pd_flags & ~0x7u) != 0)
    return format("pd_flags 0x%04x has bits PostgreSQL does not define", static_cast<unsigned>(h.pd_flags));
  if (e.require_zero_lsn_checksum) {
    if (h.pd_lsn.xlogid != 0 || h.pd_lsn.xrecoff != 0)
      return format("pd_lsn is %X/%X, expected 0 in a page image", h.pd_lsn.xlogid, h.pd_lsn.xrecoff);
    if (h.pd_checksum != 0)
      return format("pd_checksum is 0x%04x, expected 0 in a page image", static_cast<unsigned>(h.pd_checksum));
    if (h.pd_flags != 0)
      return format("pd_flags is 0x%04x, expected 0 in a page image", static_cast<unsigned>(h.pd_flags));
    if (h.pd_prune_xid != 0) return format("pd_prune_xid is %u, expected 0 in a page image", h.pd_prune_xid);
  }
  if (o.page_id != kPageId)
    return format("page_id magic is 0x%04x, expected 0x%04x", static_cast<unsigned>(o.page_id),
                  static_cast<unsigned>(kPageId));
  if (o.page_type < 1 || o.page_type > 4) return format("unknown page_type %u", static_cast<unsigned>(o.page_type));
  if (block == 0 && o.page_type != static_cast<std::uint16_t>(PageType::kMeta))
    return format("page_type %u (%s), but block 0 must be the meta page", static_cast<unsigned>(o.page_type),
                  page_type_name(o.page_type));
  if (block != 0 && o.page_type == static_cast<std::uint16_t>(PageType::kMeta))
    return "page_type 1 (meta) is only allowed at block 0";
  if (o.flags != 0) return format("opaque flags 0x%04x, expected 0", static_cast<unsigned>(o.flags));
  if (o.reserved0 != 0 || o.reserved1 != 0) return "opaque reserved fields are not zero";
  if (o.next_blkno != kInvalidBlock) {
    if (o.page_type == static_cast<std::uint16_t>(PageType::kMeta))
      return format("meta page has next_blkno %u, expected none", o.next_blkno);
    if (o.next_blkno == 0 || o.next_blkno == block || (e.total_blocks != 0 && o.next_blkno >= e.total_blocks))
      return format("next_blkno %u is not another block of the index", o.next_blkno);
  }
  return {};
}

// Decodes the meta struct fields (no checks beyond what reading needs).
void decode_meta_fields(const std::byte* p, MetaInfo& m) {
  m.metric = static_cast<distance::Metric>(load_u16(p, offsetof(MetaDisk, metric)));
  m.storage = static_cast<StorageLayout>(load_u16(p, offsetof(MetaDisk, storage)));
  m.column_dims = load_u32(p, offsetof(MetaDisk, column_dims));
  m.indexed_dims = load_u32(p, offsetof(MetaDisk, indexed_dims));
  m.bits_per_dim = load_u16(p, offsetof(MetaDisk, bits_per_dim));
  m.has_labels = (load_u16(p, offsetof(MetaDisk, flags)) & kMetaFlagHasLabels) != 0;
  m.num_neighbors = load_u32(p, offsetof(MetaDisk, num_neighbors));
  m.search_list_size = load_u32(p, offsetof(MetaDisk, search_list_size));
  m.max_alpha = load_f32(p, offsetof(MetaDisk, max_alpha));
  m.label_capacity = load_u16(p, offsetof(MetaDisk, label_capacity));
  m.entry_point = load_tid8(p + offsetof(MetaDisk, entry_block));
  m.node_count = load_u64(p, offsetof(MetaDisk, node_count));
  m.deleted_count = load_u64(p, offsetof(MetaDisk, deleted_count));
  m.free_list_head = load_tid8(p + offsetof(MetaDisk, free_block));
  m.quantizer_first_block = load_u32(p, offsetof(MetaDisk, quantizer_first_block));
  m.quantizer_pages = load_u32(p, offsetof(MetaDisk, quantizer_pages));
  m.first_node_block = load_u32(p, offsetof(MetaDisk, first_node_block));
  m.node_record_size = load_u32(p, offsetof(MetaDisk, node_record_size));
  m.nodes_per_page = load_u32(p, offsetof(MetaDisk, nodes_per_page));
  m.label_count = load_u32(p, offsetof(MetaDisk, label_count));
  m.label_overflow_first_block = load_u32(p, offsetof(MetaDisk, label_overflow_first_block));
  m.label_inline_count = load_u32(p, offsetof(MetaDisk, label_inline_count));
  m.built_by = static_cast<BuiltBy>(load_u16(p, offsetof(MetaDisk, built_by)));
  m.build_backend = static_cast<BuildBackend>(load_u16(p, offsetof(MetaDisk, build_backend)));
  const char* id = reinterpret_cast<const char*>(p + offsetof(MetaDisk, builder_id));
  std::size_t len = 0;
  while (len < kBuilderIdSize && id[len] != '\0') ++len;
  m.builder_id.assign(id, len);
}

// Meta page checks after the common header checks; fills m.
std::string check_meta_body(std::span<const std::byte> page, const PageHeaderMirror& h, const Expectations& e,
                            MetaInfo& m) {
  const std::byte* p = page.data() + kPageHeaderSize;
  const std::uint32_t magic = load_u32(p, offsetof(MetaDisk, magic));
  if (magic != kMetaMagic) return format("meta magic is 0x%08x, expected 0x%08x", magic, kMetaMagic);
  const std::uint32_t version = load_u32(p, offsetof(MetaDisk, format_version));
  if (version != kFormatVersion)
    return format("unsupported format_version %u (this build reads version %u)", version, kFormatVersion);
  const std::uint16_t flags = load_u16(p, offsetof(MetaDisk, flags));
  if ((flags & ~kMetaFlagHasLabels) != 0)
    return format("meta flags 0x%04x has undefined bits", static_cast<unsigned>(flags));
  if (load_u16(p, offsetof(MetaDisk, reserved0)) != 0 || load_u32(p, offsetof(MetaDisk, reserved1)) != 0 ||
      first_nonzero(p, offsetof(MetaDisk, reserved2), kMetaFixedSize) != kMetaFixedSize)
    return "meta reserved fields are not zero";
  if (load_u16(p, offsetof(MetaDisk, entry_pad)) != 0) return "entry point TID pad is not zero";
  if (load_u16(p, offsetof(MetaDisk, free_pad)) != 0) return "free_list_head TID pad is not zero";
  decode_meta_fields(p, m);
  const std::size_t id_at = offsetof(MetaDisk, builder_id);
  if (m.builder_id.size() >= kBuilderIdSize) return "builder_id is not NUL-terminated";
  if (first_nonzero(p, id_at + m.builder_id.size(), id_at + kBuilderIdSize) != id_at + kBuilderIdSize)
    return "builder_id is not NUL-padded";
  const std::uint32_t cap = inline_label_capacity(e.page_size);
  if (m.label_inline_count > cap)
    return format("label_inline_count %u exceeds the inline capacity %u", m.label_inline_count, cap);
  const std::uint32_t lower = kPageHeaderSize + kMetaFixedSize + kLabelStartSize * m.label_inline_count;
  if (h.pd_lower != lower)
    return format("pd_lower %u, expected %u for a meta page with %u inline labels", static_cast<unsigned>(h.pd_lower),
                  lower, m.label_inline_count);
  if (h.pd_upper != h.pd_special)
    return format("pd_upper %u, expected pd_special %u on the meta page", static_cast<unsigned>(h.pd_upper),
                  static_cast<unsigned>(h.pd_special));
  m.labels.clear();
  for (std::uint32_t i = 0; i < m.label_inline_count; ++i) {
    const std::byte* le = p + kMetaFixedSize + kLabelStartSize * i;
    m.labels.push_back(LabelStart{load_i16(le, 0), Tid{load_u32(le, 4), load_u16(le, 2)}});
  }
  const std::size_t z = first_nonzero(page.data(), h.pd_lower, h.pd_upper);
  if (z != h.pd_upper) return format("non-zero byte in free space at offset %zu", z);
  std::string why = check_meta_info(m, e.page_size, e.total_blocks);
  if (!why.empty()) return why;
  return {};
}

// Quantizer page checks.
std::string check_quantizer_page(std::span<const std::byte> page, const PageHeaderMirror& h, const MetaInfo& m) {
  if (m.storage != StorageLayout::kMemoryOptimized) return "quantizer page in an index with plain storage";
  if (h.pd_lower < kPageHeaderSize + 8)
    return format("pd_lower %u leaves no room for the quantizer page header", static_cast<unsigned>(h.pd_lower));
  const std::byte* c = page.data() + kPageHeaderSize;
  const std::uint32_t first = load_u32(c, 0);
  const std::uint32_t count = load_u32(c, 4);
  const std::uint64_t stream = sbq::stream_length(m.indexed_dims, m.bits_per_dim);
  if (count == 0) return "quantizer page holds no values";
  const std::uint64_t lower = kPageHeaderSize + 8 + 4ull * count;
  if (h.pd_lower != lower)
    return format("pd_lower %u, expected %llu for %u quantizer values", static_cast<unsigned>(h.pd_lower),
                  static_cast<unsigned long long>(lower), count);
  if (h.pd_upper != h.pd_special)
    return format("pd_upper %u, expected pd_special %u on a quantizer page", static_cast<unsigned>(h.pd_upper),
                  static_cast<unsigned>(h.pd_special));
  if (static_cast<std::uint64_t>(first) + count > stream)
    return format("quantizer values %u..%llu lie beyond the stream of %llu", first,
                  static_cast<unsigned long long>(first) + count - 1, static_cast<unsigned long long>(stream));
  for (std::uint32_t i = 0; i < count; ++i) {
    const float v = load_f32(c, 8 + 4ull * i);
    const std::uint64_t el = static_cast<std::uint64_t>(first) + i;
    if (!std::isfinite(v)) return format("quantizer value %llu is not finite", static_cast<unsigned long long>(el));
    if (el >= m.indexed_dims && v < 0.0f)
      return format("quantizer stddev %llu is negative (%g)", static_cast<unsigned long long>(el - m.indexed_dims),
                    static_cast<double>(v));
  }
  const std::size_t z = first_nonzero(page.data(), h.pd_lower, h.pd_upper);
  if (z != h.pd_upper) return format("non-zero byte in free space at offset %zu", z);
  return {};
}

// Label overflow page checks. A page with no entries is one VACUUM emptied and took out of
// the chain (the chain check below makes sure no chained page is empty).
std::string check_overflow_page(std::span<const std::byte> page, const PageHeaderMirror& h, const MetaInfo& m,
                                std::uint32_t total_blocks) {
  if (h.pd_lower < kPageHeaderSize + 8)
    return format("pd_lower %u leaves no room for the label overflow header", static_cast<unsigned>(h.pd_lower));
  const std::byte* c = page.data() + kPageHeaderSize;
  const std::uint32_t count = load_u32(c, 0);
  if (load_u32(c, 4) != 0) return "label overflow header reserved word is not zero";
  if (count != 0 && m.label_count <= m.label_inline_count)
    return "label overflow page in an index whose label starts all fit the meta page";
  const std::uint64_t lower = kPageHeaderSize + 8 + static_cast<std::uint64_t>(kLabelStartSize) * count;
  if (h.pd_lower != lower)
    return format("pd_lower %u, expected %llu for %u label entries", static_cast<unsigned>(h.pd_lower),
                  static_cast<unsigned long long>(lower), count);
  if (h.pd_upper != h.pd_special)
    return format("pd_upper %u, expected pd_special %u on a label overflow page", static_cast<unsigned>(h.pd_upper),
                  static_cast<unsigned>(h.pd_special));
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::byte* le = c + 8 + kLabelStartSize * i;
    const std::int16_t label = load_i16(le, 0);
    const Tid t{load_u32(le, 4), load_u16(le, 2)};
    const std::string why = node_tid_problem(t, m, total_blocks);
    if (!why.empty())
      return format("label entry %u (label %d) node %s %s", i, static_cast<int>(label), tid_str(t).c_str(),
                    why.c_str());
  }
  const std::size_t z = first_nonzero(page.data(), h.pd_lower, h.pd_upper);
  if (z != h.pd_upper) return format("non-zero byte in free space at offset %zu", z);
  return {};
}

// Checks one node record (offset is its 1-based line pointer number).
std::string check_record(const NodeView& v, Tid self, const MetaInfo& m, const NodeLayout& l,
                         std::uint32_t total_blocks, const std::byte* rec) {
  const unsigned k = self.offset;
  const std::uint16_t state = v.raw_state();
  if (state < 1 || state > 3) return format("record %u has invalid state %u", k, static_cast<unsigned>(state));
  const bool is_free = state == static_cast<std::uint16_t>(NodeState::kFree);
  const char* state_name = state == 1 ? "live" : state == 2 ? "deleted" : "free";
  if (v.num_labels() > l.label_capacity)
    return format("record %u has %u labels, more than label_capacity %u", k, static_cast<unsigned>(v.num_labels()),
                  static_cast<unsigned>(l.label_capacity));
  if (v.num_neighbors() > l.num_neighbors)
    return format("record %u has %u neighbors, more than num_neighbors (R) %u", k,
                  static_cast<unsigned>(v.num_neighbors()), l.num_neighbors);
  if (is_free && (v.num_labels() != 0 || v.num_neighbors() != 0))
    return format("record %u is free but has %u labels and %u neighbors", k, static_cast<unsigned>(v.num_labels()),
                  static_cast<unsigned>(v.num_neighbors()));
  for (std::size_t i = 1; i < v.num_labels(); ++i)
    if (v.label(i) <= v.label(i - 1))
      return format("record %u labels are not strictly ascending at slot %zu (%d after %d)", k, i,
                    static_cast<int>(v.label(i)), static_cast<int>(v.label(i - 1)));
  for (std::size_t i = v.num_labels(); i < l.label_capacity; ++i)
    if (v.label(i) != 0)
      return format("record %u unused label slot %zu holds %d, expected 0", k, i, static_cast<int>(v.label(i)));
  const std::size_t labels_end = kNodeHeaderSize + 2ull * l.label_capacity;
  const std::size_t z = first_nonzero(rec, labels_end, l.payload_offset);
  if (z != l.payload_offset) return format("record %u has non-zero padding at record byte %zu", k, z);
  const Tid heap = v.heap_tid();
  if (is_free) {
    if (!heap.is_invalid()) return format("record %u is free but has heap TID %s", k, tid_str(heap).c_str());
  } else if (!heap.valid()) {
    return format("record %u (%s) has invalid heap TID %s", k, state_name, tid_str(heap).c_str());
  }
  if (!is_free && l.storage == StorageLayout::kPlain) {
    for (std::uint32_t d = 0; d < l.indexed_dims; ++d)
      if (!std::isfinite(load_f32(rec, l.payload_offset + 4ull * d)))
        return format("record %u payload dimension %u is not finite", k, d);
  }
  const std::size_t used = is_free ? 1 : v.num_neighbors();
  for (std::size_t i = 0; i < l.num_neighbors; ++i) {
    const Tid t = v.neighbor(i);
    if (i >= used) {
      if (!t.is_invalid())
        return format("record %u unused neighbor slot %zu holds %s, expected invalid", k, i, tid_str(t).c_str());
      continue;
    }
    if (is_free && t.is_invalid()) continue;  // end of the free list
    const char* what = is_free ? "next free slot" : "neighbor";
    const std::string why = node_tid_problem(t, m, total_blocks);
    if (!why.empty())
      return format("record %u %s %zu %s is out of range: %s", k, what, i, tid_str(t).c_str(), why.c_str());
    if (t == self) return format("record %u %s %zu points at itself", k, what, i);
  }
  if (!is_free && used > 1) {
    std::vector<std::uint64_t> keys(used);
    for (std::size_t i = 0; i < used; ++i) keys[i] = v.neighbor(i).key();
    std::sort(keys.begin(), keys.end());
    for (std::size_t i = 1; i < used; ++i)
      if (keys[i] == keys[i - 1])
        return format("record %u lists neighbor (%u,%u) twice", k, static_cast<unsigned>(keys[i] >> 16),
                      static_cast<unsigned>(keys[i] & 0xFFFF));
  }
  return {};
}

// Node page checks: line pointers, placement, padding, every record.
std::string check_node_page(std::span<const std::byte> page, std::uint32_t block, const PageHeaderMirror& h,
                            const MetaInfo& m, const NodeLayout& l, std::uint32_t total_blocks) {
  if (block < m.first_node_block) return format("node page below first_node_block %u", m.first_node_block);
  if ((h.pd_lower - kPageHeaderSize) % kItemIdSize != 0)
    return format("pd_lower %u does not end on a line pointer boundary", static_cast<unsigned>(h.pd_lower));
  const std::uint32_t count = (h.pd_lower - kPageHeaderSize) / kItemIdSize;
  if (count > l.nodes_per_page) return format("%u line pointers, more than nodes_per_page %u", count, l.nodes_per_page);
  std::vector<std::pair<std::uint32_t, std::uint32_t>> by_off;  // (offset, line pointer)
  by_off.reserve(count);
  for (std::uint32_t i = 1; i <= count; ++i) {
    const ItemId id = read_item_id(page, static_cast<std::uint16_t>(i));
    if (id.flags != kLpNormal)
      return format("line pointer %u has lp_flags %u, expected 1 (LP_NORMAL)", i, static_cast<unsigned>(id.flags));
    if (id.len != l.record_size)
      return format("line pointer %u has length %u, expected node_record_size %u", i, static_cast<unsigned>(id.len),
                    l.record_size);
    if (id.off % kMaxAlign != 0)
      return format("line pointer %u offset %u is not %u-byte aligned", i, static_cast<unsigned>(id.off), kMaxAlign);
    if (id.off < h.pd_upper)
      return format("line pointer %u (offset %u) starts below pd_upper %u", i, static_cast<unsigned>(id.off),
                    static_cast<unsigned>(h.pd_upper));
    if (static_cast<std::uint32_t>(id.off) + id.len > h.pd_special)
      return format("line pointer %u (offset %u, length %u) extends past pd_special %u", i,
                    static_cast<unsigned>(id.off), static_cast<unsigned>(id.len), static_cast<unsigned>(h.pd_special));
    by_off.emplace_back(id.off, i);
  }
  std::sort(by_off.begin(), by_off.end());
  for (std::size_t j = 1; j < by_off.size(); ++j) {
    if (by_off[j - 1].first + l.record_size > by_off[j].first) {
      const std::uint32_t a = std::max(by_off[j - 1].second, by_off[j].second);
      const std::uint32_t b = std::min(by_off[j - 1].second, by_off[j].second);
      const std::uint32_t a_off = a == by_off[j].second ? by_off[j].first : by_off[j - 1].first;
      return format("line pointer %u (offset %u, length %u) overlaps line pointer %u", a, a_off, l.record_size, b);
    }
  }
  for (std::uint32_t i = 1; i <= count; ++i) {
    const ItemId id = read_item_id(page, static_cast<std::uint16_t>(i));
    if (id.off != l.record_offset(i - 1))
      return format("line pointer %u at offset %u, expected %u by the placement rule", i, static_cast<unsigned>(id.off),
                    l.record_offset(i - 1));
  }
  const std::uint32_t upper = h.pd_special - count * l.aligned_record_size;
  if (h.pd_upper != upper)
    return format("pd_upper %u, expected %u for %u records", static_cast<unsigned>(h.pd_upper), upper, count);
  std::size_t z = first_nonzero(page.data(), h.pd_lower, h.pd_upper);
  if (z != h.pd_upper) return format("non-zero byte in free space at offset %zu", z);
  for (std::uint32_t i = 1; i <= count; ++i) {
    const std::uint32_t off = l.record_offset(i - 1);
    z = first_nonzero(page.data(), off + l.record_size, off + l.aligned_record_size);
    if (z != off + l.aligned_record_size) return format("non-zero padding after record %u at offset %zu", i, z);
    const NodeView v(page.subspan(off, l.record_size), l);
    std::string why = check_record(v, Tid{block, static_cast<std::uint16_t>(i)}, m, l, total_blocks, page.data() + off);
    if (!why.empty()) return why;
  }
  return {};
}

// Full check of any page, without the block prefix.
std::string check_any_page(std::span<const std::byte> page, std::uint32_t block, const Expectations& e,
                           MetaInfo* meta_out) {
  PageHeaderMirror h{};
  PageOpaque o{};
  std::string why = check_header(page, block, e, h, o);
  if (!why.empty()) return why;
  if (block == 0) {
    MetaInfo m;
    why = check_meta_body(page, h, e, m);
    if (why.empty() && meta_out != nullptr) *meta_out = std::move(m);
    return why;
  }
  if (!e.meta) return "no decoded meta page to check against";
  const MetaInfo& m = *e.meta;
  NodeLayout l;
  try {
    l = NodeLayout::from_meta(m, e.page_size);
  } catch (const Error& err) {
    return format("meta options give no node layout: %s", err.what());
  }
  switch (static_cast<PageType>(o.page_type)) {
    case PageType::kQuantizer:
      return check_quantizer_page(page, h, m);
    case PageType::kLabelOverflow:
      return check_overflow_page(page, h, m, e.total_blocks);
    case PageType::kNode:
      return check_node_page(page, block, h, m, l, e.total_blocks);
    case PageType::kMeta:
      break;
  }
  return "page_type 1 (meta) is only allowed at block 0";
}

// Wraps a reason with its block number.
PageCheck result(std::uint32_t block, const std::string& why) {
  if (why.empty()) return PageCheck::pass();
  return PageCheck::fail(format("block %u: %s", block, why.c_str()));
}

}  // namespace

// Block 0 checks.
PageCheck validate_meta_page(std::span<const std::byte> page, const Expectations& expect, MetaInfo* out) {
  return result(0, check_any_page(page, 0, expect, out));
}

// Any block.
PageCheck validate_page(std::span<const std::byte> page, std::uint32_t block, const Expectations& expect) {
  return result(block, check_any_page(page, block, expect, nullptr));
}

// Decodes block 0 after the same checks validate_meta_page does.
MetaInfo decode_meta(std::span<const std::byte> page) {
  Expectations e;
  e.page_size = static_cast<std::uint32_t>(page.size());
  MetaInfo m;
  const PageCheck c = validate_meta_page(page, e, &m);
  if (!c.ok) VS_FAIL(ErrorCode::kCorrupt, "invalid meta page: %s", c.reason.c_str());
  return m;
}

// ---- IndexValidator ------------------------------------------------------------------------

/** What IndexValidator keeps between pages. */
struct IndexValidator::State {
  std::uint32_t page_size = 0;
  std::uint32_t total_blocks = 0;
  HeapTidCheck heap_check;
  Expectations expect;
  PageCheck failure;  // the first failure
  bool meta_seen = false;
  MetaInfo meta;
  NodeLayout layout;
  std::vector<std::uint8_t> seen;           // per block
  std::vector<std::uint16_t> page_type;     // per block, 0 until checked
  std::vector<std::uint32_t> next;          // per block
  std::vector<std::uint16_t> record_count;  // per block (node pages)
  std::vector<std::uint16_t> max_ref;       // per block: largest offset a neighbor names
  std::vector<Tid> max_ref_from;            // per block: the record naming it
  std::vector<std::uint8_t> slot;           // per node slot: state (bits 0-1), referenced (bit 2)
  std::vector<std::pair<std::uint64_t, std::uint64_t>> live_heap;                        // (heap key, node key)
  std::unordered_map<std::uint64_t, Tid> free_next;                                      // node key -> next
  std::unordered_map<std::uint32_t, std::pair<std::uint32_t, std::uint32_t>> quantizer;  // first,count
  std::unordered_map<std::uint32_t, std::vector<LabelStart>> overflow;
  std::uint64_t overflow_entries = 0;
  std::unordered_set<std::uint64_t> label_targets;                           // node keys
  std::unordered_map<std::uint64_t, std::vector<std::int16_t>> node_labels;  // node key -> labels
  std::uint64_t records = 0, live = 0, deleted = 0, free = 0;
  std::vector<std::pair<std::uint32_t, std::vector<std::byte>>> pending;  // before block 0

  // Records the first failure.
  void fail(PageCheck c) {
    if (failure.ok) failure = std::move(c);
  }
  // Index of a node slot (TID already range-checked).
  [[nodiscard]] std::size_t slot_of(Tid t) const {
    return static_cast<std::size_t>(t.block) * layout.nodes_per_page + (t.offset - 1u);
  }
  // True once every overflow label start has been seen.
  [[nodiscard]] bool labels_complete() const { return overflow_entries + meta.label_inline_count >= meta.label_count; }
  // Sets up per-slot arrays once block 0 is known.
  void on_meta(MetaInfo m) {
    meta = std::move(m);
    meta_seen = true;
    layout = NodeLayout::from_meta(meta, page_size);
    expect.meta = meta;
    slot.assign(static_cast<std::size_t>(total_blocks) * layout.nodes_per_page, 0);
    for (const LabelStart& s : meta.labels) label_targets.insert(s.node.key());
  }
  // Records what finish() needs from a page that passed its checks.
  void absorb(std::uint32_t block, std::span<const std::byte> page);
};

// Starts an empty validation.
IndexValidator::IndexValidator(std::uint32_t page_size, std::uint32_t total_blocks, bool require_zero_lsn_checksum,
                               HeapTidCheck heap_check)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.page_size = page_size;
  s.total_blocks = total_blocks;
  s.heap_check = std::move(heap_check);
  s.expect.page_size = page_size;
  s.expect.total_blocks = total_blocks;
  s.expect.require_zero_lsn_checksum = require_zero_lsn_checksum;
  if (!is_valid_page_size(page_size))
    s.fail(PageCheck::fail(format("page size %u is not a power of two in 1024..32768", page_size)));
  else if (total_blocks == 0)
    s.fail(PageCheck::fail("an index has at least one block (the meta page)"));
  else {
    s.seen.assign(total_blocks, 0);
    s.page_type.assign(total_blocks, 0);
    s.next.assign(total_blocks, kInvalidBlock);
    s.record_count.assign(total_blocks, 0);
    s.max_ref.assign(total_blocks, 0);
    s.max_ref_from.assign(total_blocks, Tid::invalid());
  }
}

// Defined here, where State is complete.
IndexValidator::~IndexValidator() = default;
// Moves the collected state.
IndexValidator::IndexValidator(IndexValidator&&) noexcept = default;
// Moves the collected state.
IndexValidator& IndexValidator::operator=(IndexValidator&&) noexcept = default;

// Collects per-page facts for the cross-page checks.
void IndexValidator::State::absorb(std::uint32_t block, std::span<const std::byte> page) {
  const PageOpaque o = read_page_opaque(page);
  page_type[block] = o.page_type;
  next[block] = o.next_blkno;
  const std::byte* c = page.data() + kPageHeaderSize;
  if (o.page_type == static_cast<std::uint16_t>(PageType::kQuantizer)) {
    quantizer[block] = {load_u32(c, 0), load_u32(c, 4)};
    return;
  }
  if (o.page_type == static_cast<std::uint16_t>(PageType::kLabelOverflow)) {
    std::vector<LabelStart>& v = overflow[block];
    const std::uint32_t n = load_u32(c, 0);
    for (std::uint32_t i = 0; i < n; ++i) {
      const std::byte* le = c + 8 + kLabelStartSize * i;
      v.push_back(LabelStart{load_i16(le, 0), Tid{load_u32(le, 4), load_u16(le, 2)}});
      label_targets.insert(v.back().node.key());
    }
    overflow_entries += n;
    return;
  }
  if (o.page_type != static_cast<std::uint16_t>(PageType::kNode)) return;
  const std::uint16_t count = item_id_count(page);
  record_count[block] = count;
  for (std::uint16_t k = 1; k <= count; ++k) {
    const Tid self{block, k};
    const NodeView v(page.subspan(layout.record_offset(k - 1u), layout.record_size), layout);
    const std::uint16_t st = v.raw_state();
    ++records;
    slot[slot_of(self)] = static_cast<std::uint8_t>((slot[slot_of(self)] & 0x4) | st);
    if (st == static_cast<std::uint16_t>(NodeState::kFree)) {
      ++free;
      free_next[self.key()] = v.next_free();
      continue;
    }
    if (st == static_cast<std::uint16_t>(NodeState::kDeleted)) ++deleted;
    if (st == static_cast<std::uint16_t>(NodeState::kLive)) {
      ++live;
      live_heap.emplace_back(v.heap_tid().key(), self.key());
      if (heap_check && !heap_check(v.heap_tid()))
        fail(PageCheck::fail(format("block %u: record %u heap TID %s is not one the caller sent", block,
                                    static_cast<unsigned>(k), tid_str(v.heap_tid()).c_str())));
      if (v.num_labels() > 0 && (!labels_complete() || label_targets.count(self.key()) != 0))
        node_labels[self.key()] = v.labels();
    }
    for (std::uint16_t i = 0; i < v.num_neighbors(); ++i) {
      const Tid t = v.neighbor(i);
      slot[slot_of(t)] |= 0x4;
      if (t.offset > max_ref[t.block]) {
        max_ref[t.block] = t.offset;
        max_ref_from[t.block] = self;
      }
    }
  }
}

// Per-page checks; pages before block 0 wait for it.
PageCheck IndexValidator::add_page(std::uint32_t block, std::span<const std::byte> page) {
  State& s = *state_;
  if (!s.failure.ok && s.seen.empty()) return s.failure;
  if (block >= s.total_blocks) {
    PageCheck c = PageCheck::fail(format("block %u is beyond the %u blocks of the index", block, s.total_blocks));
    s.fail(c);
    return c;
  }
  if (s.seen[block] != 0) {
    PageCheck c = PageCheck::fail(format("block %u was fed twice", block));
    s.fail(c);
    return c;
  }
  s.seen[block] = 1;
  if (block == 0) {
    MetaInfo m;
    PageCheck c = validate_meta_page(page, s.expect, &m);
    if (!c.ok) {
      s.fail(c);
      return c;
    }
    s.page_type[0] = static_cast<std::uint16_t>(PageType::kMeta);
    s.on_meta(std::move(m));
    auto pending = std::move(s.pending);
    s.pending.clear();
    for (auto& [b, bytes] : pending) {
      PageCheck pc = validate_page(bytes, b, s.expect);
      if (pc.ok)
        s.absorb(b, bytes);
      else
        s.fail(std::move(pc));
    }
    return c;
  }
  if (!s.meta_seen) {
    if (!s.failure.ok) return PageCheck::pass();  // the meta page failed; nothing to check against
    s.pending.emplace_back(block, std::vector<std::byte>(page.begin(), page.end()));
    return PageCheck::pass();
  }
  PageCheck c = validate_page(page, block, s.expect);
  if (c.ok)
    s.absorb(block, page);
  else
    s.fail(c);
  return c;
}

// Cross-page checks.
PageCheck IndexValidator::finish() {
  State& s = *state_;
  if (!s.failure.ok) return s.failure;
  const auto fail = [&](std::string why) {
    s.fail(PageCheck::fail(std::move(why)));
    return s.failure;
  };
  if (!s.meta_seen) return fail("block 0 (the meta page) was never fed to the validator");
  for (std::uint32_t b = 0; b < s.total_blocks; ++b)
    if (s.seen[b] == 0) return fail(format("block %u was never fed to the validator", b));
  const MetaInfo& m = s.meta;
  const auto type_of = [&](std::uint32_t b) { return b < s.total_blocks ? s.page_type[b] : std::uint16_t{0}; };

  // The quantizer chain covers mean (+ stddev) exactly, in order, and owns every quantizer page.
  std::uint32_t chained_quantizer = 0;
  if (m.storage == StorageLayout::kMemoryOptimized) {
    const std::uint64_t stream = sbq::stream_length(m.indexed_dims, m.bits_per_dim);
    std::uint64_t covered = 0;
    std::uint32_t b = m.quantizer_first_block;
    for (std::uint32_t p = 0; p < m.quantizer_pages; ++p) {
      if (b == kInvalidBlock)
        return fail(format("quantizer chain ends after %u of quantizer_pages %u", p, m.quantizer_pages));
      if (type_of(b) != static_cast<std::uint16_t>(PageType::kQuantizer))
        return fail(format("quantizer chain page %u is block %u, a %s page", p, b, page_type_name(type_of(b))));
      const auto [first, count] = s.quantizer[b];
      if (first != covered)
        return fail(
            format("block %u: quantizer chain gap or overlap: page starts at element %u, "
                   "expected %llu",
                   b, first, static_cast<unsigned long long>(covered)));
      covered += count;
      ++chained_quantizer;
      b = s.next[b];
    }
    if (b != kInvalidBlock)
      return fail(format("quantizer chain continues to block %u after quantizer_pages %u", b, m.quantizer_pages));
    if (covered != stream)
      return fail(format("quantizer chain holds %llu values, expected %llu", static_cast<unsigned long long>(covered),
                         static_cast<unsigned long long>(stream)));
  }
  if (chained_quantizer != s.quantizer.size())
    return fail(format("%zu quantizer pages, but the quantizer chain holds %u", s.quantizer.size(), chained_quantizer));

  // The overflow chain holds the label starts the meta page lacks, in any order.
  std::vector<LabelStart> starts = m.labels;
  std::size_t chained_overflow = 0;
  {
    std::uint32_t b = m.label_overflow_first_block;
    const std::uint64_t want = m.label_count;
    while (starts.size() < want) {
      if (b == kInvalidBlock)
        return fail(
            format("label overflow chain ends with %zu of label_count %u label starts", starts.size(), m.label_count));
      if (type_of(b) != static_cast<std::uint16_t>(PageType::kLabelOverflow))
        return fail(format("label overflow chain reaches block %u, a %s page", b, page_type_name(type_of(b))));
      if (chained_overflow >= s.overflow.size()) return fail(format("label overflow chain has a cycle at block %u", b));
      const std::vector<LabelStart>& v = s.overflow[b];
      if (v.empty()) return fail(format("label overflow chain reaches block %u, which holds no entries", b));
      starts.insert(starts.end(), v.begin(), v.end());
      ++chained_overflow;
      b = s.next[b];
    }
    if (starts.size() != want)
      return fail(
          format("label overflow chain holds %zu label starts, expected label_count %u", starts.size(), m.label_count));
    if (b != kInvalidBlock)
      return fail(format("label overflow chain continues to block %u after label_count %u entries", b, m.label_count));
    const auto holding = static_cast<std::size_t>(
        std::count_if(s.overflow.begin(), s.overflow.end(), [](const auto& e) { return !e.second.empty(); }));
    if (chained_overflow != holding)
      return fail(format("%zu label overflow pages hold entries, but the chain holds %zu", holding, chained_overflow));
    std::vector<std::int16_t> labels;
    labels.reserve(starts.size());
    for (const LabelStart& ls : starts) labels.push_back(ls.label);
    std::sort(labels.begin(), labels.end());
    if (const auto dup = std::adjacent_find(labels.begin(), labels.end()); dup != labels.end())
      return fail(format("label %d has two label starts (labels must be unique across the meta page and overflow "
                         "pages)",
                         static_cast<int>(*dup)));
  }

  // Node pages chain only to node pages.
  for (std::uint32_t b = 1; b < s.total_blocks; ++b)
    if (s.page_type[b] == static_cast<std::uint16_t>(PageType::kNode) && s.next[b] != kInvalidBlock &&
        type_of(s.next[b]) != static_cast<std::uint16_t>(PageType::kNode))
      return fail(
          format("block %u: node page next_blkno %u is a %s page", b, s.next[b], page_type_name(type_of(s.next[b]))));

  // Every neighbor names an existing record.
  for (std::uint32_t b = 0; b < s.total_blocks; ++b) {
    if (s.max_ref[b] == 0) continue;
    const Tid from = s.max_ref_from[b];
    if (s.page_type[b] != static_cast<std::uint16_t>(PageType::kNode))
      return fail(format("block %u: record %u neighbor (%u,%u) points at a %s page, not a node page", from.block,
                         static_cast<unsigned>(from.offset), b, static_cast<unsigned>(s.max_ref[b]),
                         page_type_name(s.page_type[b])));
    if (s.max_ref[b] > s.record_count[b])
      return fail(
          format("block %u: record %u neighbor (%u,%u) points at a missing node record "
                 "(block %u has %u line pointers)",
                 from.block, static_cast<unsigned>(from.offset), b, static_cast<unsigned>(s.max_ref[b]), b,
                 static_cast<unsigned>(s.record_count[b])));
  }
  const auto state_at = [&](Tid t) -> unsigned {
    if (!t.valid() || t.block >= s.total_blocks || t.offset > s.layout.nodes_per_page) return 0;
    return s.slot[s.slot_of(t)] & 0x3u;
  };
  for (std::size_t i = 0; i < s.slot.size(); ++i)
    if ((s.slot[i] & 0x4) != 0 && (s.slot[i] & 0x3) == static_cast<unsigned>(NodeState::kFree))
      return fail(format("node record (%zu,%zu) is free but still some node's neighbor", i / s.layout.nodes_per_page,
                         i % s.layout.nodes_per_page + 1));

  // Counts in the meta page.
  if (m.node_count != s.records)
    return fail(format("meta node_count is %llu but the index holds %llu node records",
                       static_cast<unsigned long long>(m.node_count), static_cast<unsigned long long>(s.records)));
  if (m.deleted_count != s.deleted)
    return fail(format("meta deleted_count is %llu but %llu node records are deleted",
                       static_cast<unsigned long long>(m.deleted_count), static_cast<unsigned long long>(s.deleted)));

  // Entry point: a live node whenever one exists.
  static const char* const kStateNames[] = {"missing", "live", "deleted", "free"};
  if (s.live > 0) {
    const unsigned st = state_at(m.entry_point);
    if (st != static_cast<unsigned>(NodeState::kLive))
      return fail(format("entry point %s is not a live node record (it is %s)", tid_str(m.entry_point).c_str(),
                         kStateNames[st]));
  } else if (!m.entry_point.is_invalid()) {
    return fail(format("entry point %s set, but the index has no live node", tid_str(m.entry_point).c_str()));
  }

  // Label starts: live nodes carrying their label.
  for (const LabelStart& ls : starts) {
    const unsigned st = state_at(ls.node);
    if (st != static_cast<unsigned>(NodeState::kLive))
      return fail(format("label %d starts at %s, which is not a live node record (it is %s)",
                         static_cast<int>(ls.label), tid_str(ls.node).c_str(), kStateNames[st]));
    const auto it = s.node_labels.find(ls.node.key());
    if (it == s.node_labels.end() || !std::binary_search(it->second.begin(), it->second.end(), ls.label))
      return fail(format("label %d starts at %s, which does not carry that label", static_cast<int>(ls.label),
                         tid_str(ls.node).c_str()));
  }

  // The free list: free slots only, acyclic, reaching every free slot.
  {
    std::unordered_set<std::uint64_t> visited;
    Tid t = m.free_list_head;
    while (!t.is_invalid()) {
      if (state_at(t) != static_cast<unsigned>(NodeState::kFree))
        return fail(format("free list reaches %s, which is not a free node record (it is %s)", tid_str(t).c_str(),
                           kStateNames[state_at(t)]));
      if (!visited.insert(t.key()).second) return fail(format("free list has a cycle at %s", tid_str(t).c_str()));
      t = s.free_next[t.key()];
    }
    if (visited.size() != s.free)
      return fail(format("free list reaches %zu of %llu free node records", visited.size(),
                         static_cast<unsigned long long>(s.free)));
  }

  // No heap TID on two live nodes.
  std::sort(s.live_heap.begin(), s.live_heap.end());
  for (std::size_t i = 1; i < s.live_heap.size(); ++i)
    if (s.live_heap[i].first == s.live_heap[i - 1].first) {
      const auto key_tid = Tid::from_key;
      return fail(
          format("duplicate heap TID %s on live node records %s and %s", tid_str(key_tid(s.live_heap[i].first)).c_str(),
                 tid_str(key_tid(s.live_heap[i - 1].second)).c_str(), tid_str(key_tid(s.live_heap[i].second)).c_str()));
    }
  return PageCheck::pass();
}

}  // namespace vs::format
