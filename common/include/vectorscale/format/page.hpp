/**
 * @file page.hpp
 * @brief PostgreSQL page mirrors, the page opaque, TIDs and little-endian byte access.
 *
 * Index format v1 (common/src/format/README.md documents every byte). Pages are standard
 * PostgreSQL pages: a 24-byte header, 4-byte line pointers growing up from +24, records
 * growing down from pd_special, and a 16-byte special space ("opaque") at the end whose last
 * two bytes hold the magic page_id. The mirror structs below document the layout and are
 * static_asserted; all encoding and decoding goes through explicit byte offsets with memcpy,
 * so pages can be read from any buffer without alignment or aliasing assumptions. All
 * integers are little-endian.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>

namespace vs::format {

/** Size of PostgreSQL's PageHeaderData (SizeOfPageHeaderData on x86-64). */
inline constexpr std::uint32_t kPageHeaderSize = 24;
/** Size of one line pointer (ItemIdData). */
inline constexpr std::uint32_t kItemIdSize = 4;
/** PostgreSQL MAXALIGN on x86-64. */
inline constexpr std::uint32_t kMaxAlign = 8;
/** PG_PAGE_LAYOUT_VERSION, OR-ed into pd_pagesize_version. */
inline constexpr std::uint16_t kLayoutVersion = 4;
/** InvalidBlockNumber. */
inline constexpr std::uint32_t kInvalidBlock = 0xFFFFFFFFu;
/** Size of the special space (page opaque) of every index page. */
inline constexpr std::uint32_t kSpecialSize = 16;
/** Magic in the last two bytes of every page (PageOpaque::page_id). */
inline constexpr std::uint16_t kPageId = 0xD15C;
/** Default page size (PostgreSQL BLCKSZ). */
inline constexpr std::uint32_t kDefaultPageSize = 8192;
/** Smallest accepted page size. */
inline constexpr std::uint32_t kMinPageSize = 1024;
/** Largest accepted page size. */
inline constexpr std::uint32_t kMaxPageSize = 32768;

/** lp_flags values (PostgreSQL itemid.h). Only kLpNormal appears in this format. */
inline constexpr std::uint8_t kLpUnused = 0;
inline constexpr std::uint8_t kLpNormal = 1;
inline constexpr std::uint8_t kLpRedirect = 2;
inline constexpr std::uint8_t kLpDead = 3;

/** Page types stored in PageOpaque::page_type. */
enum class PageType : std::uint16_t {
  kMeta = 1,           ///< block 0 only
  kQuantizer = 2,      ///< SBQ mean (and stddev) stream, chained
  kLabelOverflow = 3,  ///< label start entries that do not fit the meta page, chained
  kNode = 4,           ///< fixed-size node records
};

/** Name of a page type ("meta", "quantizer", ...), or "unknown". */
[[nodiscard]] const char* page_type_name(std::uint16_t type) noexcept;

/** Mirror of PostgreSQL PageXLogRecPtr (two 32-bit halves, as stored on disk). */
struct PageXLogRecPtrMirror {
  std::uint32_t xlogid;   ///< high half of the LSN
  std::uint32_t xrecoff;  ///< low half of the LSN
};

/** Mirror of PostgreSQL PageHeaderData without the flexible pd_linp array. */
struct PageHeaderMirror {
  PageXLogRecPtrMirror pd_lsn;        ///< +0; 0 in images we write (PostgreSQL sets it)
  std::uint16_t pd_checksum;          ///< +8; 0 in images we write
  std::uint16_t pd_flags;             ///< +10; 0 in images we write
  std::uint16_t pd_lower;             ///< +12; end of the line pointer array
  std::uint16_t pd_upper;             ///< +14; start of the record area
  std::uint16_t pd_special;           ///< +16; start of the special space
  std::uint16_t pd_pagesize_version;  ///< +18; page_size | kLayoutVersion
  std::uint32_t pd_prune_xid;         ///< +20; 0 in images we write
};
static_assert(std::is_trivially_copyable_v<PageHeaderMirror>);
static_assert(sizeof(PageHeaderMirror) == kPageHeaderSize);
static_assert(offsetof(PageHeaderMirror, pd_lsn) == 0);
static_assert(offsetof(PageHeaderMirror, pd_checksum) == 8);
static_assert(offsetof(PageHeaderMirror, pd_flags) == 10);
static_assert(offsetof(PageHeaderMirror, pd_lower) == 12);
static_assert(offsetof(PageHeaderMirror, pd_upper) == 14);
static_assert(offsetof(PageHeaderMirror, pd_special) == 16);
static_assert(offsetof(PageHeaderMirror, pd_pagesize_version) == 18);
static_assert(offsetof(PageHeaderMirror, pd_prune_xid) == 20);

/** Mirror of ItemIdData: lp_off bits 0-14, lp_flags bits 15-16, lp_len bits 17-31. */
struct ItemIdMirror {
  std::uint32_t raw;  ///< the packed bit fields (decode with decode_item_id)
};
static_assert(std::is_trivially_copyable_v<ItemIdMirror>);
static_assert(sizeof(ItemIdMirror) == kItemIdSize);

/** Mirror of ItemPointerData (6 bytes, three 16-bit halves). */
struct ItemPointerMirror {
  std::uint16_t bi_hi;     ///< block >> 16
  std::uint16_t bi_lo;     ///< block & 0xFFFF
  std::uint16_t ip_posid;  ///< 1-based line pointer number; 0 = invalid
};
static_assert(std::is_trivially_copyable_v<ItemPointerMirror>);
static_assert(sizeof(ItemPointerMirror) == 6);
static_assert(offsetof(ItemPointerMirror, bi_lo) == 2);
static_assert(offsetof(ItemPointerMirror, ip_posid) == 4);

/** The special space of every page of the index (16 bytes, at page_size - 16). */
struct PageOpaque {
  std::uint32_t next_blkno;  ///< +0; next page of the same kind, kInvalidBlock = none
  std::uint16_t page_type;   ///< +4; a PageType
  std::uint16_t flags;       ///< +6; 0 in format v1
  std::uint32_t reserved0;   ///< +8; 0
  std::uint16_t reserved1;   ///< +12; 0
  std::uint16_t page_id;     ///< +14; kPageId, the last two bytes of the page
};
static_assert(std::is_trivially_copyable_v<PageOpaque>);
static_assert(sizeof(PageOpaque) == kSpecialSize);
static_assert(offsetof(PageOpaque, next_blkno) == 0);
static_assert(offsetof(PageOpaque, page_type) == 4);
static_assert(offsetof(PageOpaque, flags) == 6);
static_assert(offsetof(PageOpaque, reserved0) == 8);
static_assert(offsetof(PageOpaque, reserved1) == 12);
static_assert(offsetof(PageOpaque, page_id) == 14);

/** An item pointer: block number and 1-based line pointer number. */
struct Tid {
  std::uint32_t block = kInvalidBlock;  ///< block number
  std::uint16_t offset = 0;             ///< 1-based line pointer number; 0 = invalid

  /** The invalid TID (kInvalidBlock, 0). */
  [[nodiscard]] static constexpr Tid invalid() noexcept { return Tid{}; }
  /** True unless the block is kInvalidBlock or the offset is 0. */
  [[nodiscard]] constexpr bool valid() const noexcept { return block != kInvalidBlock && offset != 0; }
  /** True for exactly the invalid TID (kInvalidBlock, 0). */
  [[nodiscard]] constexpr bool is_invalid() const noexcept { return block == kInvalidBlock && offset == 0; }
  /** Block and offset packed into one ordered integer (block << 16 | offset). */
  [[nodiscard]] constexpr std::uint64_t key() const noexcept {
    return (static_cast<std::uint64_t>(block) << 16) | offset;
  }
  /** The TID of a key() (the bits above 48 are ignored). */
  [[nodiscard]] static constexpr Tid from_key(std::uint64_t k) noexcept {
    return Tid{static_cast<std::uint32_t>(k >> 16), static_cast<std::uint16_t>(k & 0xFFFF)};
  }
  /** Field-wise equality. */
  friend constexpr bool operator==(const Tid&, const Tid&) = default;
};

/** A decoded line pointer. */
struct ItemId {
  std::uint16_t off = 0;   ///< byte offset of the record (15 bits)
  std::uint8_t flags = 0;  ///< lp_flags (2 bits)
  std::uint16_t len = 0;   ///< record length (15 bits)
};

/** Rounds n up to a multiple of kMaxAlign. */
[[nodiscard]] constexpr std::uint64_t align8(std::uint64_t n) noexcept {
  return (n + (kMaxAlign - 1)) & ~static_cast<std::uint64_t>(kMaxAlign - 1);
}

/** True for 1024..32768 powers of two. */
[[nodiscard]] constexpr bool is_valid_page_size(std::uint64_t page_size) noexcept {
  return page_size >= kMinPageSize && page_size <= kMaxPageSize && (page_size & (page_size - 1)) == 0;
}

/** pd_special of every page of a given size. */
[[nodiscard]] constexpr std::uint32_t special_offset(std::uint32_t page_size) noexcept {
  return page_size - kSpecialSize;
}

/** Packs a line pointer into its 32-bit on-disk form. */
[[nodiscard]] constexpr std::uint32_t encode_item_id(ItemId id) noexcept {
  return (static_cast<std::uint32_t>(id.off) & 0x7FFFu) | ((static_cast<std::uint32_t>(id.flags) & 0x3u) << 15) |
         ((static_cast<std::uint32_t>(id.len) & 0x7FFFu) << 17);
}

/** Unpacks a 32-bit on-disk line pointer. */
[[nodiscard]] constexpr ItemId decode_item_id(std::uint32_t raw) noexcept {
  return ItemId{static_cast<std::uint16_t>(raw & 0x7FFFu), static_cast<std::uint8_t>((raw >> 15) & 0x3u),
                static_cast<std::uint16_t>((raw >> 17) & 0x7FFFu)};
}

namespace detail {
/** Reverses the bytes of an unsigned integer (only used on big-endian hosts). */
template <class T>
[[nodiscard]] constexpr T byte_swap(T v) noexcept {
  T out = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) {
    out = static_cast<T>((out << 8) | (v & 0xFF));
    v = static_cast<T>(v >> 8);
  }
  return out;
}
/** Converts between host and little-endian byte order. */
template <class T>
[[nodiscard]] constexpr T to_from_le(T v) noexcept {
  if constexpr (std::endian::native == std::endian::big) return byte_swap(v);
  return v;
}
}  // namespace detail

/** Reads a little-endian unsigned integer of type T at p. */
template <class T>
[[nodiscard]] inline T load_le(const std::byte* p) noexcept {
  static_assert(std::is_unsigned_v<T>);
  T v;
  std::memcpy(&v, p, sizeof(T));
  return detail::to_from_le(v);
}

/** Writes an unsigned integer of type T at p in little-endian order. */
template <class T>
inline void store_le(std::byte* p, T v) noexcept {
  static_assert(std::is_unsigned_v<T>);
  v = detail::to_from_le(v);
  std::memcpy(p, &v, sizeof(T));
}

/** Reads a little-endian u16 at byte offset off. */
[[nodiscard]] inline std::uint16_t load_u16(const std::byte* base, std::size_t off) noexcept {
  return load_le<std::uint16_t>(base + off);
}
/** Reads a little-endian u32 at byte offset off. */
[[nodiscard]] inline std::uint32_t load_u32(const std::byte* base, std::size_t off) noexcept {
  return load_le<std::uint32_t>(base + off);
}
/** Reads a little-endian u64 at byte offset off. */
[[nodiscard]] inline std::uint64_t load_u64(const std::byte* base, std::size_t off) noexcept {
  return load_le<std::uint64_t>(base + off);
}
/** Reads a little-endian i16 at byte offset off. */
[[nodiscard]] inline std::int16_t load_i16(const std::byte* base, std::size_t off) noexcept {
  return static_cast<std::int16_t>(load_u16(base, off));
}
/** Reads a little-endian IEEE-754 binary32 at byte offset off. */
[[nodiscard]] inline float load_f32(const std::byte* base, std::size_t off) noexcept {
  return std::bit_cast<float>(load_u32(base, off));
}
/** Writes a little-endian u16 at byte offset off. */
inline void store_u16(std::byte* base, std::size_t off, std::uint16_t v) noexcept {
  store_le<std::uint16_t>(base + off, v);
}
/** Writes a little-endian u32 at byte offset off. */
inline void store_u32(std::byte* base, std::size_t off, std::uint32_t v) noexcept {
  store_le<std::uint32_t>(base + off, v);
}
/** Writes a little-endian u64 at byte offset off. */
inline void store_u64(std::byte* base, std::size_t off, std::uint64_t v) noexcept {
  store_le<std::uint64_t>(base + off, v);
}
/** Writes a little-endian i16 at byte offset off. */
inline void store_i16(std::byte* base, std::size_t off, std::int16_t v) noexcept {
  store_u16(base, off, static_cast<std::uint16_t>(v));
}
/** Writes a little-endian IEEE-754 binary32 at byte offset off. */
inline void store_f32(std::byte* base, std::size_t off, float v) noexcept {
  store_u32(base, off, std::bit_cast<std::uint32_t>(v));
}

/** Size of a TID inside a node record (ItemPointerData layout). */
inline constexpr std::uint32_t kTid6Size = 6;
/** Size of a TID in the meta page and label entries (u32 block, u16 offset, u16 zero). */
inline constexpr std::uint32_t kTid8Size = 8;

/** Reads a 6-byte ItemPointerData TID (bi_hi, bi_lo, ip_posid). */
[[nodiscard]] inline Tid load_tid6(const std::byte* p) noexcept {
  const std::uint32_t hi = load_u16(p, 0);
  const std::uint32_t lo = load_u16(p, 2);
  return Tid{(hi << 16) | lo, load_u16(p, 4)};
}
/** Writes a 6-byte ItemPointerData TID. */
inline void store_tid6(std::byte* p, Tid t) noexcept {
  store_u16(p, 0, static_cast<std::uint16_t>(t.block >> 16));
  store_u16(p, 2, static_cast<std::uint16_t>(t.block & 0xFFFFu));
  store_u16(p, 4, t.offset);
}
/** Reads an 8-byte TID (u32 block, u16 offset; the pad is not checked here). */
[[nodiscard]] inline Tid load_tid8(const std::byte* p) noexcept {
  return Tid{load_u32(p, 0), load_u16(p, 4)};
}
/** Writes an 8-byte TID with a zero pad. */
inline void store_tid8(std::byte* p, Tid t) noexcept {
  store_u32(p, 0, t.block);
  store_u16(p, 4, t.offset);
  store_u16(p, 6, 0);
}

/** Decodes the 24-byte page header of a page (the span must hold at least 24 bytes). */
[[nodiscard]] PageHeaderMirror read_page_header(std::span<const std::byte> page);
/** Encodes a page header into the first 24 bytes of a page. */
void write_page_header(std::span<std::byte> page, const PageHeaderMirror& header);
/** Decodes the special space of a page of page.size() bytes. */
[[nodiscard]] PageOpaque read_page_opaque(std::span<const std::byte> page);
/** Encodes the special space into the last 16 bytes of a page. */
void write_page_opaque(std::span<std::byte> page, const PageOpaque& opaque);

/** Line pointer number i (1-based) of a page; the caller checks i against pd_lower. */
[[nodiscard]] ItemId read_item_id(std::span<const std::byte> page, std::uint16_t i);
/** Writes line pointer number i (1-based). */
void write_item_id(std::span<std::byte> page, std::uint16_t i, ItemId id);

/** Number of line pointers (pd_lower - 24) / 4, or 0 when pd_lower is below the header. */
[[nodiscard]] std::uint16_t item_id_count(std::span<const std::byte> page);

/**
 * Zeroes a page and initialises an empty page of the given type: pd_lower = 24,
 * pd_upper = pd_special = size - 16, pd_pagesize_version = size | 4, and the opaque.
 * Throws kInvalidArgument for a bad page size.
 */
void init_page(std::span<std::byte> page, PageType type, std::uint32_t next_blkno = kInvalidBlock);

}  // namespace vs::format
