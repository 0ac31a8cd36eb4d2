// Reading the parts of an index format v1 image (README.md §5-§7): the quantizer chain, the
// label starts and node records. Checks what it relies on and throws kCorrupt otherwise.
#include "vectorscale/format/reader.hpp"

#include "vectorscale/core/error.hpp"

#include <cmath>

namespace vs::format {

namespace {

// Fetches a block and checks size, magic and page type.
std::span<const std::byte> fetch(const PageSource& source, std::uint32_t block, std::uint32_t page_size,
                                 PageType type) {
  const std::span<const std::byte> page = source(block);
  if (page.size() != page_size)
    VS_FAIL(ErrorCode::kCorrupt, "block %u: page is %zu bytes, expected %u", block, page.size(), page_size);
  const PageOpaque o = read_page_opaque(page);
  if (o.page_id != kPageId || o.page_type != static_cast<std::uint16_t>(type))
    VS_FAIL(ErrorCode::kCorrupt, "block %u: expected a %s page, found page_type %u page_id 0x%04x", block,
            page_type_name(static_cast<std::uint16_t>(type)), static_cast<unsigned>(o.page_type),
            static_cast<unsigned>(o.page_id));
  return page;
}

// Returns pd_lower after checking it lies inside the page before the special space.
std::uint32_t checked_lower(std::span<const std::byte> page, std::uint32_t block) {
  const PageHeaderMirror h = read_page_header(page);
  if (h.pd_lower < kPageHeaderSize + 8 || h.pd_lower > special_offset(static_cast<std::uint32_t>(page.size())))
    VS_FAIL(ErrorCode::kCorrupt, "block %u: pd_lower %u out of range", block, static_cast<unsigned>(h.pd_lower));
  return h.pd_lower;
}

}  // namespace

// Follows the quantizer chain for quantizer_pages pages.
std::vector<float> read_quantizer_stream(const MetaInfo& meta, std::uint32_t page_size, const PageSource& source) {
  std::vector<float> out;
  if (meta.storage != StorageLayout::kMemoryOptimized) return out;
  const std::uint64_t want = sbq::stream_length(meta.indexed_dims, meta.bits_per_dim);
  out.reserve(want);
  std::uint32_t block = meta.quantizer_first_block;
  for (std::uint32_t p = 0; p < meta.quantizer_pages; ++p) {
    if (block == kInvalidBlock)
      VS_FAIL(ErrorCode::kCorrupt, "quantizer chain ends after %u of %u pages", p, meta.quantizer_pages);
    const auto page = fetch(source, block, page_size, PageType::kQuantizer);
    const std::uint32_t lower = checked_lower(page, block);
    const std::byte* c = page.data() + kPageHeaderSize;
    const std::uint32_t first = load_u32(c, 0);
    const std::uint32_t count = load_u32(c, 4);
    if (first != out.size() || static_cast<std::uint64_t>(count) * 4 + kPageHeaderSize + 8 != lower ||
        out.size() + count > want)
      VS_FAIL(ErrorCode::kCorrupt,
              "block %u: quantizer page holds elements %u..+%u, expected to continue at %zu of %llu", block, first,
              count, out.size(), static_cast<unsigned long long>(want));
    for (std::uint32_t i = 0; i < count; ++i) out.push_back(load_f32(c, 8 + 4ull * i));
    block = read_page_opaque(page).next_blkno;
  }
  if (out.size() != want || block != kInvalidBlock)
    VS_FAIL(ErrorCode::kCorrupt, "quantizer chain holds %zu of %llu values", out.size(),
            static_cast<unsigned long long>(want));
  return out;
}

std::vector<LabelStart> overflow_page_entries(std::span<const std::byte> page, std::uint32_t block) {
  const std::uint32_t lower = checked_lower(page, block);
  const std::byte* c = page.data() + kPageHeaderSize;
  const std::uint32_t count = load_u32(c, 0);
  if (count == 0 || static_cast<std::uint64_t>(count) * kLabelStartSize + kPageHeaderSize + 8 != lower)
    VS_FAIL(ErrorCode::kCorrupt, "block %u: label overflow page with %u entries is inconsistent", block, count);
  std::vector<LabelStart> out;
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    const std::byte* e = c + 8 + kLabelStartSize * i;
    out.push_back(LabelStart{load_i16(e, 0), Tid{load_u32(e, 4), load_u16(e, 2)}});
  }
  return out;
}

// Inline starts, then the overflow chain until label_count entries are read (a page may hold
// more: an insert appended to it after the caller copied the meta page). Sorted by label.
std::vector<LabelStart> read_label_starts(const MetaInfo& meta, std::uint32_t page_size, const PageSource& source) {
  std::vector<LabelStart> out(meta.labels.begin(), meta.labels.end());
  std::uint32_t block = meta.label_overflow_first_block;
  while (out.size() < meta.label_count) {
    if (block == kInvalidBlock)
      VS_FAIL(ErrorCode::kCorrupt, "label overflow chain ends after %zu of %u label starts", out.size(),
              meta.label_count);
    const auto page = fetch(source, block, page_size, PageType::kLabelOverflow);
    const std::vector<LabelStart> entries = overflow_page_entries(page, block);
    const std::size_t take = std::min<std::size_t>(entries.size(), meta.label_count - out.size());
    out.insert(out.end(), entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(take));
    block = read_page_opaque(page).next_blkno;
  }
  std::sort(out.begin(), out.end(), [](const LabelStart& a, const LabelStart& b) { return a.label < b.label; });
  return out;
}

bool is_node_page(std::span<const std::byte> page) {
  const PageOpaque o = read_page_opaque(page);
  return o.page_id == kPageId && o.page_type == static_cast<std::uint16_t>(PageType::kNode);
}

// Line pointer count of a node page, with the checks node_at relies on.
std::uint16_t node_page_count(std::span<const std::byte> page, const NodeLayout& layout) {
  if (page.size() != layout.page_size)
    VS_FAIL(ErrorCode::kCorrupt, "node page is %zu bytes, expected %u", page.size(), layout.page_size);
  const PageOpaque o = read_page_opaque(page);
  if (!is_node_page(page))
    VS_FAIL(ErrorCode::kCorrupt, "not a node page (page_type %u, page_id 0x%04x)", static_cast<unsigned>(o.page_type),
            static_cast<unsigned>(o.page_id));
  const PageHeaderMirror h = read_page_header(page);
  if (h.pd_lower < kPageHeaderSize || (h.pd_lower - kPageHeaderSize) % kItemIdSize != 0 ||
      (h.pd_lower - kPageHeaderSize) / kItemIdSize > layout.nodes_per_page)
    VS_FAIL(ErrorCode::kCorrupt, "node page has pd_lower %u", static_cast<unsigned>(h.pd_lower));
  return static_cast<std::uint16_t>((h.pd_lower - kPageHeaderSize) / kItemIdSize);
}

namespace {
// Byte offset of record `offset` after checking its line pointer.
std::uint32_t record_position(std::span<const std::byte> page, std::uint16_t offset, const NodeLayout& layout) {
  const std::uint16_t count = node_page_count(page, layout);
  if (offset < 1 || offset > count)
    VS_FAIL(ErrorCode::kCorrupt, "node offset %u not on a page of %u records", static_cast<unsigned>(offset),
            static_cast<unsigned>(count));
  const ItemId id = read_item_id(page, offset);
  if (id.flags != kLpNormal || id.len != layout.record_size || id.off % kMaxAlign != 0 ||
      id.off < kPageHeaderSize + kItemIdSize * count ||
      static_cast<std::uint32_t>(id.off) + id.len > special_offset(layout.page_size))
    VS_FAIL(ErrorCode::kCorrupt, "line pointer %u (offset %u, length %u, flags %u) is malformed",
            static_cast<unsigned>(offset), static_cast<unsigned>(id.off), static_cast<unsigned>(id.len),
            static_cast<unsigned>(id.flags));
  return id.off;
}
}  // namespace

// Read-only record at a line pointer.
NodeView node_at(std::span<const std::byte> page, std::uint16_t offset, const NodeLayout& layout) {
  const std::uint32_t at = record_position(page, offset, layout);
  return NodeView(page.subspan(at, layout.record_size), layout);
}

// Mutable record at a line pointer.
NodeWriter node_writer_at(std::span<std::byte> page, std::uint16_t offset, const NodeLayout& layout) {
  const std::uint32_t at = record_position(page, offset, layout);
  return NodeWriter(page.subspan(at, layout.record_size), layout);
}

// An empty node page.
void init_node_page(std::span<std::byte> page, std::uint32_t next_blkno) {
  init_page(page, PageType::kNode, next_blkno);
}

// Adds a record slot at the next placement-rule offset.
std::uint16_t append_node_slot(std::span<std::byte> page, const NodeLayout& layout) {
  const std::uint16_t count = node_page_count(page, layout);
  if (count >= layout.nodes_per_page) return 0;
  PageHeaderMirror h = read_page_header(page);
  const std::uint32_t expect_upper = count == 0 ? special_offset(layout.page_size) : layout.record_offset(count - 1u);
  if (h.pd_upper != expect_upper)
    VS_FAIL(ErrorCode::kCorrupt, "node page with %u records has pd_upper %u, expected %u", static_cast<unsigned>(count),
            static_cast<unsigned>(h.pd_upper), expect_upper);
  const std::uint32_t off = layout.record_offset(count);
  std::memset(page.data() + off, 0, layout.aligned_record_size);
  NodeWriter(page.subspan(off, layout.record_size), layout).clear();
  const auto slot = static_cast<std::uint16_t>(count + 1);
  write_item_id(page, slot,
                ItemId{static_cast<std::uint16_t>(off), kLpNormal, static_cast<std::uint16_t>(layout.record_size)});
  h.pd_lower = static_cast<std::uint16_t>(kPageHeaderSize + kItemIdSize * slot);
  h.pd_upper = static_cast<std::uint16_t>(off);
  write_page_header(page, h);
  return slot;
}

}  // namespace vs::format
