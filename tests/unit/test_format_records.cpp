// Unit tests of index format v1 building blocks: page mirrors, TIDs, layout math, the meta
// page and node records (common/src/format/README.md).
#include <gtest/gtest.h>

#include "vectorscale/core/error.hpp"
#include "vectorscale/format/page.hpp"
#include "vectorscale/format/reader.hpp"
#include "vectorscale/format/records.hpp"
#include "vectorscale/format/validate.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace vf = vs::format;

namespace {

// A byte buffer of one page.
std::vector<std::byte> blank(std::uint32_t size) {
  return std::vector<std::byte>(size);
}

// Byte at position i as an unsigned value.
unsigned byte_at(const std::vector<std::byte>& p, std::size_t i) {
  return static_cast<unsigned>(p[i]);
}

// A meta page with every field set to a distinct, valid value.
vf::MetaInfo full_meta(std::uint32_t page_size) {
  vf::MetaInfo m;
  m.metric = vs::distance::Metric::kInnerProduct;
  m.storage = vf::StorageLayout::kMemoryOptimized;
  m.column_dims = 1536;
  m.indexed_dims = 1024;
  m.bits_per_dim = 2;
  m.has_labels = true;
  m.num_neighbors = 50;
  m.search_list_size = 100;
  m.max_alpha = 1.2f;
  m.label_capacity = 4;
  const vf::NodeLayout l = vf::NodeLayout::from_meta(m, page_size);
  m.node_record_size = l.record_size;
  m.nodes_per_page = l.nodes_per_page;
  m.quantizer_first_block = 1;
  m.quantizer_pages = 1;
  m.first_node_block = 4;
  m.entry_point = vf::Tid{7, 1};
  m.node_count = 1234567890123ull;
  m.deleted_count = 77;
  m.free_list_head = vf::Tid{9, 1};
  m.label_count = 5;
  m.label_inline_count = 3;
  m.label_overflow_first_block = 3;
  m.built_by = vf::BuiltBy::kBuilder;
  m.build_backend = vf::BuildBackend::kCuda;
  m.builder_id = "gpu-builder-7:50051";
  m.labels = {{-5, vf::Tid{4, 1}}, {0, vf::Tid{5, 1}}, {300, vf::Tid{6, 1}}};
  return m;
}

}  // namespace

TEST(FormatPage, MirrorSizesMatchPostgres) {
  EXPECT_EQ(sizeof(vf::PageHeaderMirror), 24u);
  EXPECT_EQ(sizeof(vf::ItemIdMirror), 4u);
  EXPECT_EQ(sizeof(vf::ItemPointerMirror), 6u);
  EXPECT_EQ(sizeof(vf::PageOpaque), 16u);
  EXPECT_EQ(sizeof(vf::MetaDisk), 192u);
  EXPECT_EQ(sizeof(vf::NodeHeaderDisk), 12u);
}

TEST(FormatPage, ItemIdBitFieldsRoundTrip) {
  const vf::ItemId id{8176, vf::kLpNormal, 412};
  const std::uint32_t raw = vf::encode_item_id(id);
  EXPECT_EQ(raw & 0x7FFFu, 8176u);
  EXPECT_EQ((raw >> 15) & 0x3u, 1u);
  EXPECT_EQ(raw >> 17, 412u);
  const vf::ItemId back = vf::decode_item_id(raw);
  EXPECT_EQ(back.off, 8176);
  EXPECT_EQ(back.flags, vf::kLpNormal);
  EXPECT_EQ(back.len, 412);
  const vf::ItemId max = vf::decode_item_id(vf::encode_item_id({0x7FFF, 3, 0x7FFF}));
  EXPECT_EQ(max.off, 0x7FFF);
  EXPECT_EQ(max.flags, 3);
  EXPECT_EQ(max.len, 0x7FFF);
}

TEST(FormatPage, TidByteLayouts) {
  std::byte b[8]{};
  vf::store_tid6(b, vf::Tid{0x00012345u, 7});
  // bi_hi = 0x0001, bi_lo = 0x2345, ip_posid = 7, little-endian halves.
  const unsigned want6[6] = {0x01, 0x00, 0x45, 0x23, 0x07, 0x00};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(static_cast<unsigned>(b[i]), want6[i]) << i;
  EXPECT_EQ(vf::load_tid6(b), (vf::Tid{0x00012345u, 7}));
  std::memset(b, 0xAA, sizeof b);
  vf::store_tid8(b, vf::Tid{0x01020304u, 0x0506});
  const unsigned want8[8] = {0x04, 0x03, 0x02, 0x01, 0x06, 0x05, 0x00, 0x00};
  for (int i = 0; i < 8; ++i) EXPECT_EQ(static_cast<unsigned>(b[i]), want8[i]) << i;
  EXPECT_EQ(vf::load_tid8(b), (vf::Tid{0x01020304u, 0x0506}));
  EXPECT_FALSE(vf::Tid::invalid().valid());
  EXPECT_TRUE(vf::Tid::invalid().is_invalid());
  EXPECT_FALSE((vf::Tid{3, 0}).valid());
  EXPECT_FALSE((vf::Tid{3, 0}).is_invalid());
}

TEST(FormatPage, InitPageBytes) {
  for (std::uint32_t size : {1024u, 8192u, 32768u}) {
    auto p = blank(size);
    vf::init_page(p, vf::PageType::kNode, 42);
    const vf::PageHeaderMirror h = vf::read_page_header(p);
    EXPECT_EQ(h.pd_lower, 24);
    EXPECT_EQ(h.pd_upper, size - 16);
    EXPECT_EQ(h.pd_special, size - 16);
    EXPECT_EQ(h.pd_pagesize_version, size | 4);
    EXPECT_EQ(byte_at(p, 18), (size | 4) & 0xFF);
    EXPECT_EQ(byte_at(p, size - 2), 0x5Cu);  // page_id 0xD15C, little-endian
    EXPECT_EQ(byte_at(p, size - 1), 0xD1u);
    EXPECT_EQ(byte_at(p, size - 12), 4u);   // page_type
    EXPECT_EQ(byte_at(p, size - 16), 42u);  // next_blkno
  }
  auto bad = blank(3000);
  EXPECT_THROW(vf::init_page(bad, vf::PageType::kNode), vs::Error);
  EXPECT_TRUE(vf::is_valid_page_size(1024));
  EXPECT_FALSE(vf::is_valid_page_size(512));
  EXPECT_FALSE(vf::is_valid_page_size(65536));
  EXPECT_FALSE(vf::is_valid_page_size(6000));
}

TEST(FormatLayout, SbqRecordMath) {
  const auto l = vf::NodeLayout::make(vf::StorageLayout::kMemoryOptimized, 768, 1, 50, 0, 8192);
  EXPECT_EQ(l.payload_offset, 16u);
  EXPECT_EQ(l.code_words, 12u);
  EXPECT_EQ(l.payload_size, 96u);
  EXPECT_EQ(l.neighbors_offset, 112u);
  EXPECT_EQ(l.record_size, 412u);
  EXPECT_EQ(l.aligned_record_size, 416u);
  EXPECT_EQ(l.nodes_per_page, (8192u - 40u) / (4u + 416u));
  EXPECT_EQ(l.record_offset(0), 8176u - 416u);
  EXPECT_EQ(l.record_offset(1), 8176u - 832u);
  const auto l2 = vf::NodeLayout::make(vf::StorageLayout::kMemoryOptimized, 1536, 2, 64, 0, 8192);
  EXPECT_EQ(l2.code_words, 48u);
  EXPECT_EQ(l2.record_size, 16u + 384u + 384u);
}

TEST(FormatLayout, PlainRecordMathWithLabels) {
  const auto l = vf::NodeLayout::make(vf::StorageLayout::kPlain, 100, 0, 32, 5, 8192);
  EXPECT_EQ(l.payload_offset, 24u);  // align8(12 + 2*5 = 22)
  EXPECT_EQ(l.payload_size, 400u);
  EXPECT_EQ(l.neighbors_offset, 424u);
  EXPECT_EQ(l.record_size, 424u + 192u);
  EXPECT_EQ(l.aligned_record_size, 616u);
  EXPECT_EQ(l.nodes_per_page, 8152u / 620u);
  EXPECT_EQ(vf::node_record_size(vf::StorageLayout::kPlain, 100, 0, 32, 5), 616u);
  EXPECT_EQ(vf::nodes_per_page(616, 8192), 13u);
}

TEST(FormatLayout, WidePlainVectorDoesNotFit) {
  try {
    (void)vf::NodeLayout::make(vf::StorageLayout::kPlain, 2100, 0, 50, 0, 8192);
    FAIL() << "no throw";
  } catch (const vs::Error& e) {
    EXPECT_EQ(e.code(), vs::ErrorCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "node record of 8716 bytes does not fit a 8192-byte page");
  }
  // 1900 plain dims fit exactly once per page.
  EXPECT_EQ(vf::NodeLayout::make(vf::StorageLayout::kPlain, 1900, 0, 50, 0, 8192).nodes_per_page, 1u);
  EXPECT_THROW((void)vf::nodes_per_page(8200, 8192), vs::Error);
}

TEST(FormatLayout, RejectsBadParameters) {
  using vf::StorageLayout;
  EXPECT_THROW((void)vf::NodeLayout::make(StorageLayout::kMemoryOptimized, 64, 0, 8, 0, 8192), vs::Error);
  EXPECT_THROW((void)vf::NodeLayout::make(StorageLayout::kMemoryOptimized, 64, 9, 8, 0, 8192), vs::Error);
  EXPECT_THROW((void)vf::NodeLayout::make(StorageLayout::kPlain, 64, 1, 8, 0, 8192), vs::Error);
  EXPECT_THROW((void)vf::NodeLayout::make(StorageLayout::kPlain, 0, 0, 8, 0, 8192), vs::Error);
  EXPECT_THROW((void)vf::NodeLayout::make(StorageLayout::kPlain, 64, 0, 0, 0, 8192), vs::Error);
  EXPECT_THROW((void)vf::NodeLayout::make(StorageLayout::kPlain, 64, 0, 2049, 0, 8192), vs::Error);
  EXPECT_THROW((void)vf::NodeLayout::make(StorageLayout::kPlain, 64, 0, 8, 0, 4000), vs::Error);
  EXPECT_THROW((void)vf::NodeLayout::make(static_cast<StorageLayout>(7), 64, 0, 8, 0, 8192), vs::Error);
}

TEST(FormatMeta, RoundTripsEveryField) {
  for (std::uint32_t size : {1024u, 8192u}) {
    const vf::MetaInfo m = full_meta(size);
    auto page = blank(size);
    vf::encode_meta(m, page);
    const vf::MetaInfo d = vf::decode_meta(page);
    EXPECT_EQ(d.metric, m.metric);
    EXPECT_EQ(d.storage, m.storage);
    EXPECT_EQ(d.column_dims, m.column_dims);
    EXPECT_EQ(d.indexed_dims, m.indexed_dims);
    EXPECT_EQ(d.bits_per_dim, m.bits_per_dim);
    EXPECT_EQ(d.has_labels, m.has_labels);
    EXPECT_EQ(d.num_neighbors, m.num_neighbors);
    EXPECT_EQ(d.search_list_size, m.search_list_size);
    EXPECT_EQ(d.max_alpha, m.max_alpha);
    EXPECT_EQ(d.label_capacity, m.label_capacity);
    EXPECT_EQ(d.entry_point, m.entry_point);
    EXPECT_EQ(d.node_count, m.node_count);
    EXPECT_EQ(d.deleted_count, m.deleted_count);
    EXPECT_EQ(d.free_list_head, m.free_list_head);
    EXPECT_EQ(d.quantizer_first_block, m.quantizer_first_block);
    EXPECT_EQ(d.quantizer_pages, m.quantizer_pages);
    EXPECT_EQ(d.first_node_block, m.first_node_block);
    EXPECT_EQ(d.node_record_size, m.node_record_size);
    EXPECT_EQ(d.nodes_per_page, m.nodes_per_page);
    EXPECT_EQ(d.label_count, m.label_count);
    EXPECT_EQ(d.label_overflow_first_block, m.label_overflow_first_block);
    EXPECT_EQ(d.label_inline_count, m.label_inline_count);
    EXPECT_EQ(d.built_by, m.built_by);
    EXPECT_EQ(d.build_backend, m.build_backend);
    EXPECT_EQ(d.builder_id, m.builder_id);
    EXPECT_EQ(d.labels, m.labels);
    // Spot-check frozen byte offsets.
    EXPECT_EQ(vf::load_u32(page.data(), 24), vf::kMetaMagic);
    EXPECT_EQ(vf::load_u32(page.data(), 28), 1u);
    EXPECT_EQ(vf::load_u16(page.data(), 24 + 8), 3u);
    EXPECT_EQ(vf::load_u64(page.data(), 24 + 48), m.node_count);
    EXPECT_EQ(vf::load_i16(page.data(), 24 + 192), -5);
    EXPECT_EQ(vf::load_u16(page.data(), 24 + 192 + 2), 1u);
    EXPECT_EQ(vf::load_u32(page.data(), 24 + 192 + 4), 4u);
    EXPECT_EQ(vf::read_page_header(page).pd_lower, 24u + 192u + 24u);
    EXPECT_EQ(std::memcmp(page.data() + 24 + 112, "gpu-builder-7:50051", 19), 0);
    vf::Expectations e;
    e.page_size = size;
    e.total_blocks = 10;
    e.require_zero_lsn_checksum = true;
    const vf::PageCheck c = vf::validate_meta_page(page, e);
    EXPECT_TRUE(c.ok) << c.reason;
  }
}

TEST(FormatMeta, EncodeRejectsInconsistentOptions) {
  auto page = blank(8192);
  vf::MetaInfo m = full_meta(8192);
  m.indexed_dims = m.column_dims + 1;
  EXPECT_THROW(vf::encode_meta(m, page), vs::Error);
  m = full_meta(8192);
  m.builder_id = std::string(64, 'x');
  EXPECT_THROW(vf::encode_meta(m, page), vs::Error);
  m = full_meta(8192);
  m.labels.pop_back();  // label_inline_count no longer matches
  EXPECT_THROW(vf::encode_meta(m, page), vs::Error);
  m = full_meta(8192);
  m.max_alpha = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(vf::encode_meta(m, page), vs::Error);
  m = full_meta(8192);
  m.node_record_size += 8;
  EXPECT_THROW(vf::encode_meta(m, page), vs::Error);
}

TEST(FormatMeta, DecodeRejectsCorruptPageAsCorrupt) {
  auto page = blank(8192);
  vf::encode_meta(full_meta(8192), page);
  vf::store_u32(page.data(), 24, 0xDEADBEEFu);
  try {
    (void)vf::decode_meta(page);
    FAIL() << "no throw";
  } catch (const vs::Error& e) {
    EXPECT_EQ(e.code(), vs::ErrorCode::kCorrupt);
    EXPECT_NE(std::string(e.what()).find("meta magic"), std::string::npos) << e.what();
  }
}

TEST(FormatNode, PlainRecordRoundTrip) {
  const auto l = vf::NodeLayout::make(vf::StorageLayout::kPlain, 5, 0, 4, 3, 1024);
  std::vector<std::byte> rec(l.aligned_record_size, std::byte{0xEE});
  vf::NodeWriter w(rec, l);
  w.clear();
  w.set_state(vf::NodeState::kLive);
  w.set_heap_tid(vf::Tid{70000, 12});
  const std::int16_t labels[] = {-3, 8};
  w.set_labels(labels);
  const float v[] = {1.5f, -2.0f, 0.0f, 3.25f, -0.5f};
  w.set_plain(v);
  const vf::Tid nb[] = {{3, 1}, {4, 2}};
  w.set_neighbors(nb);
  const vf::NodeView r = w.view();
  EXPECT_EQ(r.state(), vf::NodeState::kLive);
  EXPECT_EQ(r.heap_tid(), (vf::Tid{70000, 12}));
  EXPECT_EQ(r.labels(), (std::vector<std::int16_t>{-3, 8}));
  EXPECT_TRUE(r.has_label(8));
  EXPECT_FALSE(r.has_label(0));
  EXPECT_EQ(r.label(2), 0);
  std::vector<float> out(5);
  r.read_plain(out);
  EXPECT_EQ(out, std::vector<float>(v, v + 5));
  EXPECT_EQ(r.num_neighbors(), 2);
  EXPECT_EQ(r.neighbors(), (std::vector<vf::Tid>{{3, 1}, {4, 2}}));
  EXPECT_TRUE(r.neighbor(2).is_invalid());
  EXPECT_TRUE(r.neighbor(3).is_invalid());
  // In-place neighbor update as the extension does it.
  const vf::Tid nb2[] = {{9, 4}};
  w.set_neighbors(nb2);
  EXPECT_EQ(r.neighbors(), (std::vector<vf::Tid>{{9, 4}}));
  EXPECT_TRUE(r.neighbor(1).is_invalid());
  // Bytes past record_size are untouched.
  for (std::size_t i = l.record_size; i < rec.size(); ++i) EXPECT_EQ(rec[i], std::byte{0xEE});
  w.make_free(vf::Tid{5, 1});
  EXPECT_EQ(r.state(), vf::NodeState::kFree);
  EXPECT_EQ(r.next_free(), (vf::Tid{5, 1}));
  EXPECT_TRUE(r.heap_tid().is_invalid());
  EXPECT_EQ(r.num_labels(), 0);
  EXPECT_EQ(r.num_neighbors(), 0);
}

TEST(FormatNode, SbqRecordRoundTripAndPreconditions) {
  const auto l = vf::NodeLayout::make(vf::StorageLayout::kMemoryOptimized, 130, 1, 3, 0, 1024);
  EXPECT_EQ(l.code_words, 3u);
  std::vector<std::byte> rec(l.record_size);
  vf::NodeWriter w(rec, l);
  w.clear();
  const std::uint64_t codes[] = {0x0123456789ABCDEFull, 0xFFFFFFFFFFFFFFFFull, 0x3ull};
  w.set_codes(codes);
  EXPECT_EQ(vf::load_u64(rec.data(), l.payload_offset), 0x0123456789ABCDEFull);
  std::vector<std::uint64_t> back(3);
  w.view().read_codes(back);
  EXPECT_EQ(back, std::vector<std::uint64_t>(codes, codes + 3));
  const std::int16_t labels[] = {1};
  EXPECT_THROW(w.set_labels(labels), vs::Error);  // capacity 0
  const vf::Tid nb[] = {{1, 1}, {1, 2}, {1, 3}, {1, 4}};
  EXPECT_THROW(w.set_neighbors(nb), vs::Error);  // R = 3
  const float v[] = {1.0f};
  EXPECT_THROW(w.set_plain(v), vs::Error);
  std::vector<std::byte> short_rec(l.record_size - 1);
  EXPECT_THROW(vf::NodeView(short_rec, l), vs::Error);
  const auto lp = vf::NodeLayout::make(vf::StorageLayout::kPlain, 4, 0, 3, 2, 1024);
  std::vector<std::byte> rec2(lp.record_size);
  vf::NodeWriter w2(rec2, lp);
  const std::int16_t unsorted[] = {5, 2};
  EXPECT_THROW(w2.set_labels(unsorted), vs::Error);
}

TEST(FormatNode, AppendSlotsFollowPlacementRule) {
  vf::MetaInfo m;
  m.storage = vf::StorageLayout::kPlain;
  m.column_dims = m.indexed_dims = 16;
  m.num_neighbors = 4;
  m.search_list_size = 10;
  const auto l = vf::NodeLayout::from_meta(m, 1024);
  m.node_record_size = l.record_size;
  m.nodes_per_page = l.nodes_per_page;
  m.first_node_block = 1;
  auto page = blank(1024);
  vf::init_node_page(page);
  std::uint16_t slot = 0;
  for (std::uint32_t k = 0; k < l.nodes_per_page; ++k) {
    slot = vf::append_node_slot(page, l);
    ASSERT_EQ(slot, k + 1);
    vf::NodeWriter w = vf::node_writer_at(page, slot, l);
    w.set_state(vf::NodeState::kLive);
    w.set_heap_tid(vf::Tid{1, slot});
    std::vector<float> v(16, static_cast<float>(k));
    w.set_plain(v);
    EXPECT_EQ(vf::read_item_id(page, slot).off, l.record_offset(k));
  }
  EXPECT_EQ(vf::append_node_slot(page, l), 0);
  EXPECT_EQ(vf::node_page_count(page, l), l.nodes_per_page);
  EXPECT_EQ(vf::node_at(page, 2, l).heap_tid(), (vf::Tid{1, 2}));
  EXPECT_THROW((void)vf::node_at(page, static_cast<std::uint16_t>(l.nodes_per_page + 1), l), vs::Error);
  m.node_count = l.nodes_per_page;
  m.entry_point = vf::Tid{1, 1};
  vf::Expectations e;
  e.page_size = 1024;
  e.total_blocks = 2;
  e.meta = m;
  const vf::PageCheck c = vf::validate_page(page, 1, e);
  EXPECT_TRUE(c.ok) << c.reason;
}
