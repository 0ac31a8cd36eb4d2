// Page header, line pointer and opaque encoding of index format v1 (README.md §1-§2).
#include "vectorscale/format/page.hpp"

#include "vectorscale/core/error.hpp"

#include <algorithm>

namespace vs::format {

// Names a page type for messages.
const char* page_type_name(std::uint16_t type) noexcept {
  switch (type) {
    case static_cast<std::uint16_t>(PageType::kMeta):
      return "meta";
    case static_cast<std::uint16_t>(PageType::kQuantizer):
      return "quantizer";
    case static_cast<std::uint16_t>(PageType::kLabelOverflow):
      return "label overflow";
    case static_cast<std::uint16_t>(PageType::kNode):
      return "node";
    default:
      return "unknown";
  }
}

// Decodes the 24-byte header field by field.
PageHeaderMirror read_page_header(std::span<const std::byte> page) {
  VS_EXPECTS(page.size() >= kPageHeaderSize, "page of %zu bytes has no room for a header", page.size());
  const std::byte* p = page.data();
  PageHeaderMirror h{};
  h.pd_lsn.xlogid = load_u32(p, offsetof(PageHeaderMirror, pd_lsn));
  h.pd_lsn.xrecoff = load_u32(p, offsetof(PageHeaderMirror, pd_lsn) + 4);
  h.pd_checksum = load_u16(p, offsetof(PageHeaderMirror, pd_checksum));
  h.pd_flags = load_u16(p, offsetof(PageHeaderMirror, pd_flags));
  h.pd_lower = load_u16(p, offsetof(PageHeaderMirror, pd_lower));
  h.pd_upper = load_u16(p, offsetof(PageHeaderMirror, pd_upper));
  h.pd_special = load_u16(p, offsetof(PageHeaderMirror, pd_special));
  h.pd_pagesize_version = load_u16(p, offsetof(PageHeaderMirror, pd_pagesize_version));
  h.pd_prune_xid = load_u32(p, offsetof(PageHeaderMirror, pd_prune_xid));
  return h;
}

// Encodes the 24-byte header field by field.
void write_page_header(std::span<std::byte> page, const PageHeaderMirror& h) {
  VS_EXPECTS(page.size() >= kPageHeaderSize, "page of %zu bytes has no room for a header", page.size());
  std::byte* p = page.data();
  store_u32(p, offsetof(PageHeaderMirror, pd_lsn), h.pd_lsn.xlogid);
  store_u32(p, offsetof(PageHeaderMirror, pd_lsn) + 4, h.pd_lsn.xrecoff);
  store_u16(p, offsetof(PageHeaderMirror, pd_checksum), h.pd_checksum);
  store_u16(p, offsetof(PageHeaderMirror, pd_flags), h.pd_flags);
  store_u16(p, offsetof(PageHeaderMirror, pd_lower), h.pd_lower);
  store_u16(p, offsetof(PageHeaderMirror, pd_upper), h.pd_upper);
  store_u16(p, offsetof(PageHeaderMirror, pd_special), h.pd_special);
  store_u16(p, offsetof(PageHeaderMirror, pd_pagesize_version), h.pd_pagesize_version);
  store_u32(p, offsetof(PageHeaderMirror, pd_prune_xid), h.pd_prune_xid);
}

// Decodes the 16-byte special space at the end of the page.
PageOpaque read_page_opaque(std::span<const std::byte> page) {
  VS_EXPECTS(page.size() >= kPageHeaderSize + kSpecialSize, "page of %zu bytes has no room for a special space",
             page.size());
  const std::byte* p = page.data() + page.size() - kSpecialSize;
  PageOpaque o{};
  o.next_blkno = load_u32(p, offsetof(PageOpaque, next_blkno));
  o.page_type = load_u16(p, offsetof(PageOpaque, page_type));
  o.flags = load_u16(p, offsetof(PageOpaque, flags));
  o.reserved0 = load_u32(p, offsetof(PageOpaque, reserved0));
  o.reserved1 = load_u16(p, offsetof(PageOpaque, reserved1));
  o.page_id = load_u16(p, offsetof(PageOpaque, page_id));
  return o;
}

// Encodes the 16-byte special space at the end of the page.
void write_page_opaque(std::span<std::byte> page, const PageOpaque& o) {
  VS_EXPECTS(page.size() >= kPageHeaderSize + kSpecialSize, "page of %zu bytes has no room for a special space",
             page.size());
  std::byte* p = page.data() + page.size() - kSpecialSize;
  store_u32(p, offsetof(PageOpaque, next_blkno), o.next_blkno);
  store_u16(p, offsetof(PageOpaque, page_type), o.page_type);
  store_u16(p, offsetof(PageOpaque, flags), o.flags);
  store_u32(p, offsetof(PageOpaque, reserved0), o.reserved0);
  store_u16(p, offsetof(PageOpaque, reserved1), o.reserved1);
  store_u16(p, offsetof(PageOpaque, page_id), o.page_id);
}

// Reads line pointer i (1-based) from the array at +24.
ItemId read_item_id(std::span<const std::byte> page, std::uint16_t i) {
  const std::size_t at = kPageHeaderSize + kItemIdSize * (static_cast<std::size_t>(i) - 1);
  VS_EXPECTS(i >= 1 && at + kItemIdSize <= page.size(), "line pointer %u is outside the page",
             static_cast<unsigned>(i));
  return decode_item_id(load_u32(page.data(), at));
}

// Writes line pointer i (1-based) into the array at +24.
void write_item_id(std::span<std::byte> page, std::uint16_t i, ItemId id) {
  const std::size_t at = kPageHeaderSize + kItemIdSize * (static_cast<std::size_t>(i) - 1);
  VS_EXPECTS(i >= 1 && at + kItemIdSize <= page.size(), "line pointer %u is outside the page",
             static_cast<unsigned>(i));
  store_u32(page.data(), at, encode_item_id(id));
}

// Counts line pointers from pd_lower.
std::uint16_t item_id_count(std::span<const std::byte> page) {
  const PageHeaderMirror h = read_page_header(page);
  if (h.pd_lower < kPageHeaderSize) return 0;
  return static_cast<std::uint16_t>((h.pd_lower - kPageHeaderSize) / kItemIdSize);
}

// Zeroes the page and writes an empty header plus opaque.
void init_page(std::span<std::byte> page, PageType type, std::uint32_t next_blkno) {
  VS_EXPECTS(is_valid_page_size(page.size()), "page size %zu is not a power of two in 1024..32768", page.size());
  std::fill(page.begin(), page.end(), std::byte{0});
  const auto size = static_cast<std::uint32_t>(page.size());
  PageHeaderMirror h{};
  h.pd_lower = static_cast<std::uint16_t>(kPageHeaderSize);
  h.pd_upper = static_cast<std::uint16_t>(special_offset(size));
  h.pd_special = static_cast<std::uint16_t>(special_offset(size));
  // PageSetPageSizeAndVersion: size | layout version (0x8004 for 32 KiB still fits 16 bits).
  h.pd_pagesize_version = static_cast<std::uint16_t>(size | kLayoutVersion);
  write_page_header(page, h);
  PageOpaque o{};
  o.next_blkno = next_blkno;
  o.page_type = static_cast<std::uint16_t>(type);
  o.page_id = kPageId;
  write_page_opaque(page, o);
}

}  // namespace vs::format
