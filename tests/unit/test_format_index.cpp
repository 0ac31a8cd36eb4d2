// Unit tests of the index format v1 page writer, reader and validators: round trips for
// plain and SBQ indexes with and without (overflow) labels, determinism, and a corruption
// suite in which every case must be rejected with a reason naming what is wrong.
#include <gtest/gtest.h>

#include "vectorscale/core/error.hpp"
#include "vectorscale/format/reader.hpp"
#include "vectorscale/format/validate.hpp"
#include "vectorscale/format/writer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace vf = vs::format;

namespace {

/** Shape of a synthetic graph. */
struct Spec {
  vf::StorageLayout storage = vf::StorageLayout::kPlain;
  std::uint32_t dims = 8;
  std::uint16_t bits = 0;
  std::uint32_t r = 6;
  std::uint16_t label_capacity = 0;  // 0: no labels
  int distinct_labels = 0;
  std::size_t n = 50;
  std::uint32_t page_size = 1024;
  std::uint64_t seed = 1;
};

/** A seeded synthetic graph and the GraphInput over it. */
struct Synth {
  Spec spec;
  vf::NodeLayout layout;
  std::vector<vf::Tid> heap;
  std::vector<std::byte> payloads;
  std::vector<std::uint32_t> nbrs;
  std::size_t stride = 0;
  std::vector<std::uint32_t> deg;
  std::vector<std::uint32_t> label_offsets;
  std::vector<std::int16_t> label_values;
  std::vector<float> quantizer;
  std::vector<vf::LabelNode> starts;
  std::uint32_t entry = vf::kNoNode;

  // The writer input borrowing this graph's arrays.
  [[nodiscard]] vf::GraphInput input() const {
    vf::GraphInput in;
    in.meta.metric = vs::distance::Metric::kCosine;
    in.meta.storage = spec.storage;
    in.meta.column_dims = spec.dims + 3;
    in.meta.indexed_dims = spec.dims;
    in.meta.bits_per_dim = spec.bits;
    in.meta.has_labels = spec.label_capacity > 0;
    in.meta.label_capacity = spec.label_capacity;
    in.meta.num_neighbors = spec.r;
    in.meta.search_list_size = 40;
    in.meta.max_alpha = 1.2f;
    in.meta.built_by = vf::BuiltBy::kBuilder;
    in.meta.build_backend = vf::BuildBackend::kCpu;
    in.meta.builder_id = "test-builder";
    in.num_nodes = spec.n;
    in.heap_tids = heap;
    in.payloads = payloads;
    in.neighbors = nbrs;
    in.stride = stride;
    in.degrees = deg;
    in.label_offsets = label_offsets;
    in.label_values = label_values;
    in.quantizer_stream = quantizer;
    in.label_starts = starts;
    in.entry_node = entry;
    return in;
  }
};

// Builds a seeded random graph: distinct neighbors, no self loops, sorted labels.
Synth make_graph(const Spec& spec) {
  Synth g;
  g.spec = spec;
  g.layout = vf::NodeLayout::make(spec.storage, spec.dims, spec.bits, spec.r, spec.label_capacity, spec.page_size);
  std::mt19937_64 rng(spec.seed);
  const std::size_t n = spec.n;
  for (std::size_t i = 0; i < n; ++i)
    g.heap.push_back(vf::Tid{static_cast<std::uint32_t>(i / 37 + 2), static_cast<std::uint16_t>(i % 37 + 1)});
  g.payloads.resize(n * g.layout.payload_size);
  if (spec.storage == vf::StorageLayout::kPlain) {
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (std::size_t i = 0; i < n * spec.dims; ++i) vf::store_f32(g.payloads.data(), 4 * i, nd(rng));
  } else {
    for (std::size_t i = 0; i < n * g.layout.code_words; ++i) vf::store_u64(g.payloads.data(), 8 * i, rng());
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (std::uint32_t d = 0; d < spec.dims; ++d) g.quantizer.push_back(nd(rng));
    if (spec.bits > 1)
      for (std::uint32_t d = 0; d < spec.dims; ++d) g.quantizer.push_back(std::fabs(nd(rng)) + 0.01f);
  }
  g.stride = spec.r + 2;  // wider rows than R, as the in-memory graph's slack
  g.nbrs.assign(n * g.stride, 0xFFFFFFFFu);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t max_deg = std::min<std::size_t>(spec.r, n - 1);
    std::size_t d = max_deg == 0 ? 0 : 1 + rng() % max_deg;
    if (i % 11 == 5) d = max_deg;  // some full rows
    std::set<std::uint32_t> chosen;
    while (chosen.size() < d) {
      const auto c = static_cast<std::uint32_t>(rng() % n);
      if (c != i) chosen.insert(c);
    }
    std::vector<std::uint32_t> row(chosen.begin(), chosen.end());
    std::shuffle(row.begin(), row.end(), rng);
    std::copy(row.begin(), row.end(), g.nbrs.begin() + static_cast<std::ptrdiff_t>(i * g.stride));
    g.deg.push_back(static_cast<std::uint32_t>(d));
  }
  if (spec.label_capacity > 0) {
    g.label_offsets.push_back(0);
    for (std::size_t i = 0; i < n; ++i) {
      std::set<std::int16_t> ls;
      const std::size_t k = rng() % (spec.label_capacity + 1u);
      while (ls.size() < k) ls.insert(static_cast<std::int16_t>(static_cast<int>(rng() % spec.distinct_labels) - 10));
      g.label_values.insert(g.label_values.end(), ls.begin(), ls.end());
      g.label_offsets.push_back(static_cast<std::uint32_t>(g.label_values.size()));
    }
    for (int lab = -10; lab < spec.distinct_labels - 10; ++lab)
      for (std::size_t i = 0; i < n; ++i) {
        const auto b = g.label_values.begin() + g.label_offsets[i];
        const auto e = g.label_values.begin() + g.label_offsets[i + 1];
        if (std::binary_search(b, e, static_cast<std::int16_t>(lab))) {
          g.starts.push_back(vf::LabelNode{static_cast<std::int16_t>(lab), static_cast<std::uint32_t>(i)});
          break;
        }
      }
  }
  g.entry = n > 0 ? static_cast<std::uint32_t>(n / 3) : vf::kNoNode;
  return g;
}

/** A written index held in memory. */
struct Image {
  std::vector<std::vector<std::byte>> pages;
  vf::MetaInfo meta;
  std::uint32_t page_size = 0;
};

// Writes a graph to page images, checking blocks arrive in order.
Image write(const Synth& g) {
  Image img;
  img.page_size = g.spec.page_size;
  const vf::GraphInput in = g.input();
  const std::uint32_t expected = vf::count_index_pages(in, g.spec.page_size);
  img.meta = vf::write_index(in, g.spec.page_size, [&](std::uint32_t block, std::span<const std::byte> p) {
    EXPECT_EQ(block, img.pages.size());
    img.pages.emplace_back(p.begin(), p.end());
  });
  EXPECT_EQ(img.pages.size(), expected);
  return img;
}

// A page source over an image.
vf::PageSource source_of(const Image& img) {
  return [&img](std::uint32_t b) { return std::span<const std::byte>(img.pages.at(b)); };
}

// Runs IndexValidator over all pages in the given block order.
vf::PageCheck validate_all(const Image& img, const std::vector<std::uint32_t>& order, bool require_zero = true,
                           vf::HeapTidCheck hook = {}) {
  vf::IndexValidator v(img.page_size, static_cast<std::uint32_t>(img.pages.size()), require_zero, std::move(hook));
  for (const std::uint32_t b : order) (void)v.add_page(b, img.pages[b]);
  return v.finish();
}

// Block order 0..n-1.
std::vector<std::uint32_t> in_order(const Image& img) {
  std::vector<std::uint32_t> o(img.pages.size());
  for (std::uint32_t i = 0; i < o.size(); ++i) o[i] = i;
  return o;
}

// Reads every part back and compares it with the graph.
void expect_round_trip(const Synth& g, const Image& img) {
  const vf::MetaInfo m = vf::decode_meta(img.pages[0]);
  EXPECT_EQ(m.node_count, g.spec.n);
  EXPECT_EQ(m.builder_id, "test-builder");
  EXPECT_EQ(m.built_by, vf::BuiltBy::kBuilder);
  EXPECT_EQ(m.metric, vs::distance::Metric::kCosine);
  EXPECT_EQ(m.labels, img.meta.labels);
  const vf::NodeLayout l = vf::NodeLayout::from_meta(m, img.page_size);
  EXPECT_EQ(m.node_record_size, l.record_size);
  EXPECT_EQ(vf::read_quantizer_stream(m, img.page_size, source_of(img)), g.quantizer);
  const std::vector<vf::LabelStart> starts = vf::read_label_starts(m, img.page_size, source_of(img));
  ASSERT_EQ(starts.size(), g.starts.size());
  const auto tid_of = [&](std::uint64_t i) {
    return vf::Tid{static_cast<std::uint32_t>(m.first_node_block + i / l.nodes_per_page),
                   static_cast<std::uint16_t>(i % l.nodes_per_page + 1)};
  };
  for (std::size_t i = 0; i < starts.size(); ++i) {
    EXPECT_EQ(starts[i].label, g.starts[i].label);
    EXPECT_EQ(starts[i].node, tid_of(g.starts[i].node));
  }
  if (g.spec.n > 0) {
    EXPECT_EQ(m.entry_point, tid_of(g.entry));
  }
  for (std::size_t i = 0; i < g.spec.n; ++i) {
    const vf::Tid t = tid_of(i);
    const vf::NodeView v = vf::node_at(img.pages.at(t.block), t.offset, l);
    ASSERT_EQ(v.state(), vf::NodeState::kLive);
    EXPECT_EQ(v.heap_tid(), g.heap[i]);
    const auto p = v.payload();
    EXPECT_EQ(std::memcmp(p.data(), g.payloads.data() + i * l.payload_size, l.payload_size), 0);
    ASSERT_EQ(v.num_neighbors(), g.deg[i]);
    for (std::size_t j = 0; j < g.deg[i]; ++j) EXPECT_EQ(v.neighbor(j), tid_of(g.nbrs[i * g.stride + j]));
    if (!g.label_offsets.empty()) {
      const std::vector<std::int16_t> want(g.label_values.begin() + g.label_offsets[i],
                                           g.label_values.begin() + g.label_offsets[i + 1]);
      EXPECT_EQ(v.labels(), want);
    }
  }
}

/** A named round-trip configuration. */
struct RoundTripCase {
  const char* name;
  Spec spec;
};

// Prints the case name in test names.
std::string case_name(const testing::TestParamInfo<RoundTripCase>& info) {
  return info.param.name;
}

class FormatRoundTrip : public testing::TestWithParam<RoundTripCase> {};

}  // namespace

TEST_P(FormatRoundTrip, WritesReadsAndValidates) {
  const Synth g = make_graph(GetParam().spec);
  const Image img = write(g);
  expect_round_trip(g, img);
  // Every page validates on its own, and the whole index in block order and reversed.
  vf::Expectations e;
  e.page_size = img.page_size;
  e.total_blocks = static_cast<std::uint32_t>(img.pages.size());
  e.require_zero_lsn_checksum = true;
  vf::MetaInfo m;
  const vf::PageCheck mc = vf::validate_meta_page(img.pages[0], e, &m);
  ASSERT_TRUE(mc.ok) << mc.reason;
  e.meta = m;
  for (std::uint32_t b = 1; b < img.pages.size(); ++b) {
    const vf::PageCheck c = vf::validate_page(img.pages[b], b, e);
    EXPECT_TRUE(c.ok) << c.reason;
  }
  std::set<std::uint64_t> sent;
  for (const vf::Tid& t : g.heap) sent.insert(t.key());
  const auto hook = [&](vf::Tid t) { return sent.count(t.key()) != 0; };
  const vf::PageCheck c1 = validate_all(img, in_order(img), true, hook);
  EXPECT_TRUE(c1.ok) << c1.reason;
  std::vector<std::uint32_t> rev = in_order(img);
  std::reverse(rev.begin(), rev.end());
  const vf::PageCheck c2 = validate_all(img, rev, true, hook);
  EXPECT_TRUE(c2.ok) << c2.reason;
}

TEST_P(FormatRoundTrip, IsDeterministic) {
  const Synth g = make_graph(GetParam().spec);
  const Image a = write(g);
  const Synth g2 = make_graph(GetParam().spec);
  const Image b = write(g2);
  ASSERT_EQ(a.pages.size(), b.pages.size());
  for (std::size_t i = 0; i < a.pages.size(); ++i) EXPECT_EQ(a.pages[i], b.pages[i]) << "block " << i;
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, FormatRoundTrip,
    testing::Values(
        RoundTripCase{"plain_8k", Spec{vf::StorageLayout::kPlain, 96, 0, 24, 0, 0, 300, 8192, 11}},
        RoundTripCase{"plain_1k", Spec{vf::StorageLayout::kPlain, 8, 0, 6, 0, 0, 100, 1024, 12}},
        RoundTripCase{"sbq1_8k", Spec{vf::StorageLayout::kMemoryOptimized, 768, 1, 32, 0, 0, 200, 8192, 13}},
        RoundTripCase{"sbq2_1k_multi_quantizer_pages",
                      Spec{vf::StorageLayout::kMemoryOptimized, 300, 2, 6, 0, 0, 60, 1024, 14}},
        RoundTripCase{"sbq4_8k_labels", Spec{vf::StorageLayout::kMemoryOptimized, 64, 4, 16, 4, 20, 150, 8192, 15}},
        RoundTripCase{"plain_1k_overflow_labels", Spec{vf::StorageLayout::kPlain, 8, 0, 6, 3, 300, 400, 1024, 16}},
        RoundTripCase{"sbq1_1k_overflow_labels",
                      Spec{vf::StorageLayout::kMemoryOptimized, 16, 1, 5, 4, 500, 600, 1024, 17}},
        RoundTripCase{"plain_32k", Spec{vf::StorageLayout::kPlain, 2000, 0, 64, 2, 5, 30, 32768, 18}},
        RoundTripCase{"empty_sbq", Spec{vf::StorageLayout::kMemoryOptimized, 32, 2, 8, 0, 0, 0, 8192, 19}},
        RoundTripCase{"single_node", Spec{vf::StorageLayout::kPlain, 4, 0, 3, 0, 0, 1, 1024, 20}}),
    case_name);

TEST(FormatWriter, LayoutOfBlocks) {
  const Synth g = make_graph(Spec{vf::StorageLayout::kMemoryOptimized, 16, 1, 5, 4, 500, 600, 1024, 17});
  const vf::IndexPlan plan = vf::plan_index(g.input(), 1024);
  EXPECT_EQ(plan.quantizer_first_block, 1u);
  EXPECT_EQ(plan.quantizer_pages, 1u);
  EXPECT_EQ(plan.label_inline_count, vf::inline_label_capacity(1024));
  EXPECT_GT(g.starts.size(), plan.label_inline_count);
  EXPECT_EQ(plan.label_overflow_first_block, 2u);
  EXPECT_EQ(plan.first_node_block, 2u + plan.label_overflow_pages);
  EXPECT_EQ(plan.total_blocks, plan.first_node_block + plan.node_pages);
  EXPECT_EQ(vf::node_tid(plan, plan.layout.nodes_per_page + 2), (vf::Tid{plan.first_node_block + 1, 3}));
  const Image img = write(g);
  // Chains: next_blkno links pages of one kind, the last says none.
  const vf::PageOpaque last_node = vf::read_page_opaque(img.pages.back());
  EXPECT_EQ(last_node.next_blkno, vf::kInvalidBlock);
  EXPECT_EQ(vf::read_page_opaque(img.pages[plan.first_node_block]).next_blkno, plan.first_node_block + 1);
  // The last node page may be partial and follows the placement rule.
  const std::size_t last_count = g.spec.n - (plan.node_pages - 1) * plan.layout.nodes_per_page;
  EXPECT_EQ(vf::node_page_count(img.pages.back(), plan.layout), last_count);
  EXPECT_EQ(vf::read_page_header(img.pages.back()).pd_upper,
            plan.layout.record_offset(static_cast<std::uint32_t>(last_count - 1)));
}

TEST(FormatWriter, RejectsMalformedInput) {
  const Synth base = make_graph(Spec{vf::StorageLayout::kPlain, 8, 0, 6, 3, 30, 40, 1024, 3});
  const auto sink = [](std::uint32_t, std::span<const std::byte>) {};
  const auto expect_invalid = [&](const Synth& g, const char* what) {
    try {
      (void)vf::write_index(g.input(), 1024, sink);
      ADD_FAILURE() << "accepted: " << what;
    } catch (const vs::Error& e) {
      EXPECT_EQ(e.code(), vs::ErrorCode::kInvalidArgument) << what;
    }
  };
  Synth g = base;
  g.deg[3] = 7;  // above R = 6
  expect_invalid(g, "degree above R");
  g = base;
  g.nbrs[2 * g.stride] = 2;
  expect_invalid(g, "self loop");
  g = base;
  g.deg[4] = 2;
  g.nbrs[4 * g.stride + 1] = g.nbrs[4 * g.stride];
  expect_invalid(g, "duplicate neighbor");
  g = base;
  g.nbrs[5 * g.stride] = 40;
  expect_invalid(g, "neighbor index out of range");
  g = base;
  g.heap[6] = vf::Tid{3, 0};
  expect_invalid(g, "invalid heap TID");
  g = base;
  g.entry = 40;
  expect_invalid(g, "entry out of range");
  g = base;
  g.payloads.pop_back();
  expect_invalid(g, "short payload");
  g = base;
  std::swap(g.starts[0], g.starts[1]);
  expect_invalid(g, "unsorted label starts");
  g = base;
  for (std::size_t i = 0; i < g.spec.n; ++i)
    if (g.label_offsets[i + 1] - g.label_offsets[i] >= 2) {
      std::swap(g.label_values[g.label_offsets[i]], g.label_values[g.label_offsets[i] + 1]);
      break;
    }
  expect_invalid(g, "unsorted node labels");
  g = base;
  g.starts[0].node = (g.starts[0].node + 1) % 40;
  bool lacks = true;
  for (std::uint32_t k = g.label_offsets[g.starts[0].node]; k < g.label_offsets[g.starts[0].node + 1]; ++k)
    if (g.label_values[k] == g.starts[0].label) lacks = false;
  if (lacks) expect_invalid(g, "label start on a node without the label");
  Synth q = make_graph(Spec{vf::StorageLayout::kMemoryOptimized, 16, 2, 4, 0, 0, 10, 1024, 4});
  q.quantizer[20] = -1.0f;  // negative stddev
  expect_invalid(q, "negative stddev");
  q = make_graph(Spec{vf::StorageLayout::kMemoryOptimized, 16, 2, 4, 0, 0, 10, 1024, 4});
  q.quantizer.pop_back();
  expect_invalid(q, "short quantizer stream");
}

TEST(FormatWriter, WidePlainVectorIsRejectedUpFront) {
  Synth g = make_graph(Spec{vf::StorageLayout::kPlain, 8, 0, 6, 0, 0, 4, 1024, 3});
  vf::GraphInput in = g.input();
  in.meta.indexed_dims = in.meta.column_dims = 2100;
  in.meta.num_neighbors = 50;
  try {
    (void)vf::count_index_pages(in, 8192);
    FAIL() << "no throw";
  } catch (const vs::Error& e) {
    EXPECT_EQ(e.code(), vs::ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("does not fit a 8192-byte page"), std::string::npos) << e.what();
  }
}

// ---- corruption suite ----------------------------------------------------------------------

namespace {

/** A written index plus what a corruption needs to find its target. */
struct Victim {
  Synth g;
  Image img;
  vf::NodeLayout layout;

  // TID of graph node i.
  [[nodiscard]] vf::Tid tid(std::size_t i) const {
    return vf::Tid{static_cast<std::uint32_t>(img.meta.first_node_block + i / layout.nodes_per_page),
                   static_cast<std::uint16_t>(i % layout.nodes_per_page + 1)};
  }
  // Bytes of the page holding graph node i.
  std::vector<std::byte>& page_of(std::size_t i) { return img.pages.at(tid(i).block); }
  // Mutable record of graph node i.
  vf::NodeWriter writer(std::size_t i) { return vf::node_writer_at(page_of(i), tid(i).offset, layout); }
  // Pointer to the record bytes of graph node i.
  std::byte* rec(std::size_t i) { return page_of(i).data() + layout.record_offset(tid(i).offset - 1u); }
  // First node page.
  std::vector<std::byte>& node_page() { return img.pages.at(img.meta.first_node_block); }
  // Rewrites the meta page after f edits the decoded meta.
  void edit_meta(const std::function<void(vf::MetaInfo&)>& f) {
    vf::MetaInfo m = vf::decode_meta(img.pages[0]);
    f(m);
    // encode_meta refuses inconsistent options; write raw fields for those cases instead.
    vf::encode_meta(m, img.pages[0]);
  }
  // A node with >= 2 neighbors.
  [[nodiscard]] std::size_t node_with_degree(std::uint32_t d) const {
    for (std::size_t i = 0; i < g.spec.n; ++i)
      if (g.deg[i] >= d) return i;
    return 0;
  }
  // A node that is neither the entry point nor a label start.
  [[nodiscard]] std::size_t plain_node(std::size_t skip = 0) const {
    for (std::size_t i = g.spec.n; i-- > 0;) {
      if (i == g.entry) continue;
      bool start = false;
      for (const auto& s : g.starts) start = start || s.node == i;
      if (start) continue;
      if (skip-- == 0) return i;
    }
    return 0;
  }
  // Removes every reference to node t from every live record's neighbor list.
  void detach(vf::Tid t) {
    for (std::size_t i = 0; i < g.spec.n; ++i) {
      vf::NodeWriter w = writer(i);
      std::vector<vf::Tid> keep;
      for (const vf::Tid& nb : w.view().neighbors())
        if (!(nb == t)) keep.push_back(nb);
      w.set_neighbors(keep);
    }
  }
  // Turns node i into a free slot linking next.
  void make_free(std::size_t i, vf::Tid next) { writer(i).make_free(next); }
};

// The plain, labeled victim: 1 KiB pages, one overflow page, a partial last node page.
Victim plain_victim() {
  Victim v;
  v.g = make_graph(Spec{vf::StorageLayout::kPlain, 8, 0, 6, 3, 150, 200, 1024, 99});
  v.img = write(v.g);
  v.layout = vf::NodeLayout::from_meta(v.img.meta, 1024);
  return v;
}

// The SBQ victim with three quantizer pages (mean and stddev).
Victim sbq_victim() {
  Victim v;
  v.g = make_graph(Spec{vf::StorageLayout::kMemoryOptimized, 300, 2, 6, 0, 0, 40, 1024, 98});
  v.img = write(v.g);
  v.layout = vf::NodeLayout::from_meta(v.img.meta, 1024);
  return v;
}

// Sets a header field of a page.
void set_header(std::vector<std::byte>& p, const std::function<void(vf::PageHeaderMirror&)>& f) {
  vf::PageHeaderMirror h = vf::read_page_header(p);
  f(h);
  vf::write_page_header(p, h);
}

// Rewrites line pointer i of a page.
void set_lp(std::vector<std::byte>& p, std::uint16_t i, const std::function<void(vf::ItemId&)>& f) {
  vf::ItemId id = vf::read_item_id(p, i);
  f(id);
  vf::write_item_id(p, i, id);
}

/** Stands for the victim's first node block in Corruption::block. */
constexpr std::uint32_t kFirstNodeBlock = 0xFFFFFFFFu;

/** One kind of corruption. */
struct Corruption {
  const char* name;
  bool sbq;            // corrupt the SBQ victim instead of the plain one
  const char* expect;  // substring the reason must contain
  std::function<void(Victim&)> corrupt;
  bool page_level = false;                // validate_page alone must also reject block `block`
  std::uint32_t block = kFirstNodeBlock;  // the block to check when page_level
};

// Prints the corruption name in test names.
std::string corruption_name(const testing::TestParamInfo<Corruption>& info) {
  return info.param.name;
}

class FormatCorruption : public testing::TestWithParam<Corruption> {};

const std::vector<Corruption>& corruptions() {
  static const std::vector<Corruption> all = {
      {"pd_lower_inside_header", false, "pd_lower 20 is inside the 24-byte page header",
       [](Victim& v) { set_header(v.node_page(), [](auto& h) { h.pd_lower = 20; }); }, true},
      {"pd_lower_not_on_line_pointer", false, "does not end on a line pointer boundary",
       [](Victim& v) { set_header(v.node_page(), [](auto& h) { h.pd_lower += 2; }); }, true},
      {"pd_upper_above_pd_special", false, "pd_upper 1016 is above pd_special 1008",
       [](Victim& v) { set_header(v.node_page(), [](auto& h) { h.pd_upper = 1016; }); }, true},
      {"pd_lower_above_pd_upper", false, "is above pd_upper",
       [](Victim& v) {
         set_header(v.node_page(), [](auto& h) { h.pd_lower = static_cast<std::uint16_t>(h.pd_upper + 4); });
       },
       true},
      {"wrong_pd_special", false, "pd_special is 1000, expected 1008",
       [](Victim& v) { set_header(v.node_page(), [](auto& h) { h.pd_special = 1000; }); }, true},
      {"wrong_pagesize_version", false, "pd_pagesize_version is 0x2004, expected 0x0404",
       [](Victim& v) { set_header(v.node_page(), [](auto& h) { h.pd_pagesize_version = 0x2004; }); }, true},
      {"wrong_page_id_magic", false, "page_id magic is 0xbeef",
       [](Victim& v) { vf::store_u16(v.node_page().data(), 1022, 0xBEEF); }, true},
      {"unknown_page_type", false, "unknown page_type 9",
       [](Victim& v) { vf::store_u16(v.node_page().data(), 1008 + 4, 9); }, true},
      {"meta_type_on_nonzero_block", false, "page_type 1 (meta) is only allowed at block 0",
       [](Victim& v) { vf::store_u16(v.node_page().data(), 1008 + 4, 1); }, true},
      {"block0_not_meta", false, "block 0 must be the meta page",
       [](Victim& v) { vf::store_u16(v.img.pages[0].data(), 1008 + 4, 4); }},
      {"opaque_reserved_nonzero", false, "opaque reserved fields are not zero",
       [](Victim& v) { vf::store_u16(v.node_page().data(), 1008 + 12, 1); }, true},
      {"overlapping_line_pointers", false, "line pointer 2 (offset 904, length 92) overlaps line pointer 1",
       [](Victim& v) {
         set_lp(v.node_page(), 2,
                [&](vf::ItemId& id) { id.off = static_cast<std::uint16_t>(v.layout.record_offset(0) - 8); });
       },
       true},
      {"line_pointer_past_pd_special", false, "line pointer 1 (offset 1000, length 92) extends past pd_special 1008",
       [](Victim& v) { set_lp(v.node_page(), 1, [](vf::ItemId& id) { id.off = 1000; }); }, true},
      {"unaligned_lp_off", false, "line pointer 3 offset 722 is not 8-byte aligned",
       [](Victim& v) {
         set_lp(v.node_page(), 3, [](vf::ItemId& id) { id.off = static_cast<std::uint16_t>(id.off + 2); });
       },
       true},
      {"wrong_lp_len", false, "line pointer 1 has length 91, expected node_record_size 92",
       [](Victim& v) { set_lp(v.node_page(), 1, [](vf::ItemId& id) { id.len = 91; }); }, true},
      {"lp_flags_not_normal", false, "line pointer 4 has lp_flags 3, expected 1 (LP_NORMAL)",
       [](Victim& v) { set_lp(v.node_page(), 4, [](vf::ItemId& id) { id.flags = vf::kLpDead; }); }, true},
      {"line_pointer_off_placement", false, "line pointer 1 at offset 816, expected 912 by the placement rule",
       [](Victim& v) {
         // Swap records 1 and 2: both in bounds, no overlap, but not where the rule puts them.
         auto& p = v.node_page();
         const vf::ItemId a = vf::read_item_id(p, 1), b = vf::read_item_id(p, 2);
         vf::write_item_id(p, 1, b);
         vf::write_item_id(p, 2, a);
       },
       true},
      {"truncated_page", false, "page is 924 bytes, expected 1024", [](Victim& v) { v.node_page().resize(924); }, true},
      {"neighbor_block_out_of_range", false, "is out of range: is beyond the last block",
       [](Victim& v) {
         v.writer(0).set_neighbor_slot(0, vf::Tid{static_cast<std::uint32_t>(v.img.pages.size() + 5), 1});
       },
       true},
      {"neighbor_below_first_node_block", false, "is below first_node_block",
       [](Victim& v) {
         v.writer(0).set_neighbor_slot(0, vf::Tid{0, 1});
       },
       true},
      {"neighbor_missing_offset", false, "points at a missing node record",
       [](Victim& v) {
         const vf::Tid last = v.tid(v.g.spec.n - 1);
         v.writer(0).set_neighbor_slot(0, vf::Tid{last.block, static_cast<std::uint16_t>(last.offset + 1)});
       }},
      {"neighbor_on_non_node_page", false, "points at a label overflow page, not a node page",
       [](Victim& v) {
         v.edit_meta([](vf::MetaInfo& m) { m.first_node_block = 1; });  // let block 1 pass the range check
         v.writer(0).set_neighbor_slot(0, vf::Tid{1, 1});
       }},
      {"self_loop", false, "record 2 neighbor 0 points at itself",
       [](Victim& v) { v.writer(1).set_neighbor_slot(0, v.tid(1)); }, true},
      {"duplicate_neighbor", false, "twice",
       [](Victim& v) {
         const std::size_t i = v.node_with_degree(2);
         v.writer(i).set_neighbor_slot(1, v.writer(i).view().neighbor(0));
       }},
      {"num_neighbors_above_r", false, "has 7 neighbors, more than num_neighbors (R) 6",
       [](Victim& v) { vf::store_u16(v.rec(0), 4, 7); }, true},
      {"unused_neighbor_slot_valid", false, "unused neighbor slot",
       [](Victim& v) {
         const std::size_t i = v.node_with_degree(1);
         vf::NodeWriter w = v.writer(i);
         const std::size_t d = w.view().num_neighbors();
         if (d < v.layout.num_neighbors) w.set_neighbor_slot(v.layout.num_neighbors - 1, v.tid(i == 0 ? 1 : 0));
       }},
      {"unsorted_labels", false, "labels are not strictly ascending",
       [](Victim& v) {
         for (std::size_t i = 0; i < v.g.spec.n; ++i)
           if (v.writer(i).view().num_labels() >= 2) {
             std::byte* r = v.rec(i);
             const std::int16_t a = vf::load_i16(r, 12), b = vf::load_i16(r, 14);
             vf::store_i16(r, 12, b);
             vf::store_i16(r, 14, a);
             return;
           }
       }},
      {"num_labels_above_capacity", false, "has 4 labels, more than label_capacity 3",
       [](Victim& v) { vf::store_u16(v.rec(0), 2, 4); }, true},
      {"unused_label_slot_nonzero", false, "unused label slot",
       [](Victim& v) {
         for (std::size_t i = 0; i < v.g.spec.n; ++i)
           if (v.writer(i).view().num_labels() < 3) {
             vf::store_i16(v.rec(i), 12 + 2 * 2, 77);
             return;
           }
       }},
      {"record_padding_nonzero", false, "non-zero padding at record byte 18",
       [](Victim& v) { v.rec(0)[18] = std::byte{1}; }, true},
      {"record_tail_padding_nonzero", false, "non-zero padding after record 1",
       [](Victim& v) { v.rec(0)[v.layout.record_size] = std::byte{1}; }, true},
      {"free_space_nonzero", false, "non-zero byte in free space",
       [](Victim& v) { v.img.pages.back()[200] = std::byte{1}; }},
      {"duplicate_heap_tid", false, "duplicate heap TID", [](Victim& v) { v.writer(5).set_heap_tid(v.g.heap[3]); }},
      {"invalid_heap_tid_on_live", false, "(live) has invalid heap TID (7,0)",
       [](Victim& v) {
         v.writer(0).set_heap_tid(vf::Tid{7, 0});
       },
       true},
      {"bad_record_state", false, "record 1 has invalid state 7", [](Victim& v) { vf::store_u16(v.rec(0), 0, 7); },
       true},
      {"nan_in_plain_payload", false, "payload dimension 3 is not finite",
       [](Victim& v) {
         vf::store_f32(v.rec(0), v.layout.payload_offset + 12, std::numeric_limits<float>::quiet_NaN());
       },
       true},
      {"nonzero_lsn_required_zero", false, "pd_lsn is 0/2A, expected 0",
       [](Victim& v) { set_header(v.node_page(), [](auto& h) { h.pd_lsn.xrecoff = 42; }); }, true},
      {"nonzero_checksum_required_zero", false, "pd_checksum is 0x1234, expected 0",
       [](Victim& v) { set_header(v.node_page(), [](auto& h) { h.pd_checksum = 0x1234; }); }, true},
      {"nan_in_quantizer", true, "quantizer value 5 is not finite",
       [](Victim& v) { vf::store_f32(v.img.pages[1].data(), 24 + 8 + 4 * 5, std::numeric_limits<float>::infinity()); },
       true, 1},
      {"negative_stddev", true, "quantizer stddev",
       [](Victim& v) { vf::store_f32(v.img.pages[3].data(), 24 + 8 + 4 * 10, -1.0f); }, true, 3},
      {"quantizer_chain_gap", true, "quantizer chain gap or overlap",
       [](Victim& v) {
         // Page 1 now chains to page 3, skipping page 2's elements.
         vf::PageOpaque o = vf::read_page_opaque(v.img.pages[1]);
         o.next_blkno = 3;
         vf::write_page_opaque(v.img.pages[1], o);
         vf::PageOpaque o2 = vf::read_page_opaque(v.img.pages[2]);
         o2.next_blkno = vf::kInvalidBlock;
         vf::write_page_opaque(v.img.pages[2], o2);
       }},
      {"quantizer_page_in_plain_index", false, "quantizer page in an index with plain storage",
       [](Victim& v) { vf::store_u16(v.node_page().data(), 1008 + 4, 2); }, true},
      {"bad_meta_magic", false, "meta magic is 0x12345678",
       [](Victim& v) { vf::store_u32(v.img.pages[0].data(), 24, 0x12345678u); }, true, 0},
      {"bad_meta_version", false, "unsupported format_version 2",
       [](Victim& v) { vf::store_u32(v.img.pages[0].data(), 28, 2); }, true, 0},
      {"bad_meta_metric", false, "unknown metric 9", [](Victim& v) { vf::store_u16(v.img.pages[0].data(), 24 + 8, 9); },
       true, 0},
      {"meta_record_size_mismatch", false, "node_record_size 100, expected 92",
       [](Victim& v) { vf::store_u32(v.img.pages[0].data(), 24 + 84, 100); }, true, 0},
      {"meta_builder_id_not_terminated", false, "builder_id is not NUL-terminated",
       [](Victim& v) { std::memset(v.img.pages[0].data() + 24 + 112, 'x', 64); }, true, 0},
      {"entry_point_not_live", false, "entry point",
       [](Victim& v) {
         vf::store_u16(v.rec(v.g.entry), 0, static_cast<std::uint16_t>(vf::NodeState::kDeleted));
         v.edit_meta([](vf::MetaInfo& m) { m.deleted_count = 1; });
       }},
      {"node_count_mismatch", false, "meta node_count is 201 but the index holds 200 node records",
       [](Victim& v) { v.edit_meta([](vf::MetaInfo& m) { m.node_count = 201; }); }},
      {"deleted_count_mismatch", false, "meta deleted_count is 0 but 1 node records are deleted",
       [](Victim& v) { vf::store_u16(v.rec(v.plain_node()), 0, static_cast<std::uint16_t>(vf::NodeState::kDeleted)); }},
      {"free_list_cycle", false, "free list has a cycle",
       [](Victim& v) {
         const std::size_t a = v.plain_node(0), b = v.plain_node(1);
         v.detach(v.tid(a));
         v.detach(v.tid(b));
         v.make_free(a, v.tid(b));
         v.make_free(b, v.tid(a));
         v.edit_meta([&](vf::MetaInfo& m) { m.free_list_head = v.tid(a); });
       }},
      {"free_slot_off_the_list", false, "free list reaches 0 of 1 free node records",
       [](Victim& v) {
         const std::size_t a = v.plain_node(0);
         v.detach(v.tid(a));
         v.make_free(a, vf::Tid::invalid());
       }},
      {"free_slot_still_a_neighbor", false, "is free but still some node's neighbor",
       [](Victim& v) {
         const std::size_t a = v.node_with_degree(1);
         const vf::Tid target = v.writer(a).view().neighbor(0);
         // Free the first neighbor of node a (if it is no entry/label start, else pick another).
         std::size_t idx = 0;
         for (std::size_t i = 0; i < v.g.spec.n; ++i)
           if (v.tid(i) == target) idx = i;
         vf::NodeWriter(std::span<std::byte>(v.rec(idx), v.layout.record_size), v.layout).make_free(vf::Tid::invalid());
         v.edit_meta([&](vf::MetaInfo& m) { m.free_list_head = target; });
       }},
      {"free_list_head_not_free", false, "free list reaches",
       [](Victim& v) { v.edit_meta([&](vf::MetaInfo& m) { m.free_list_head = v.tid(v.plain_node()); }); }},
      {"free_slot_with_heap_tid", false, "is free but has heap TID",
       [](Victim& v) {
         vf::NodeWriter w = v.writer(0);
         w.make_free(vf::Tid::invalid());
         w.set_heap_tid(vf::Tid{1, 1});
       },
       true},
      {"label_start_lacks_label", false, "which does not carry that label",
       [](Victim& v) {
         // Point the first overflow entry at a live node without that label.
         std::byte* e = v.img.pages[1].data() + 24 + 8;
         const std::int16_t label = vf::load_i16(e, 0);
         for (std::size_t i = 0; i < v.g.spec.n; ++i)
           if (!v.writer(i).view().has_label(label)) {
             vf::store_u16(e, 2, v.tid(i).offset);
             vf::store_u32(e, 4, v.tid(i).block);
             return;
           }
       }},
      {"label_starts_not_unique", false, "has two label starts",
       [](Victim& v) {
         // The first overflow label repeats the last inline label.
         std::byte* e = v.img.pages[1].data() + 24 + 8;
         vf::store_i16(e, 0, v.img.meta.labels.back().label);
       }},
      {"label_overflow_chain_short", false, "label overflow chain ends",
       [](Victim& v) { v.edit_meta([](vf::MetaInfo& m) { m.label_count += 1; }); }},
      {"node_page_chains_to_other_kind", false, "node page next_blkno 1 is a label overflow page",
       [](Victim& v) {
         vf::PageOpaque o = vf::read_page_opaque(v.node_page());
         o.next_blkno = 1;
         vf::write_page_opaque(v.node_page(), o);
       }},
  };
  return all;
}

}  // namespace

TEST_P(FormatCorruption, IsRejectedWithReason) {
  const Corruption& c = GetParam();
  Victim v = c.sbq ? sbq_victim() : plain_victim();
  {
    const vf::PageCheck clean = validate_all(v.img, in_order(v.img));
    ASSERT_TRUE(clean.ok) << clean.reason;
  }
  c.corrupt(v);
  const vf::PageCheck whole = validate_all(v.img, in_order(v.img));
  EXPECT_FALSE(whole.ok);
  RecordProperty("reason", whole.reason);
  EXPECT_NE(whole.reason.find(c.expect), std::string::npos)
      << "reason: " << whole.reason << "\nexpected to contain: " << c.expect;
  if (c.page_level) {
    const std::uint32_t block = c.block == kFirstNodeBlock ? v.img.meta.first_node_block : c.block;
    vf::Expectations e;
    e.page_size = v.img.page_size;
    e.total_blocks = static_cast<std::uint32_t>(v.img.pages.size());
    e.require_zero_lsn_checksum = true;
    e.meta = v.img.meta;
    const vf::PageCheck one = vf::validate_page(v.img.pages[block], block, e);
    EXPECT_FALSE(one.ok) << "block " << block;
    EXPECT_NE(one.reason.find(c.expect), std::string::npos)
        << "reason: " << one.reason << "\nexpected to contain: " << c.expect;
    EXPECT_EQ(one.reason.rfind("block " + std::to_string(block) + ": ", 0), 0u) << one.reason;
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, FormatCorruption, testing::ValuesIn(corruptions()), corruption_name);

TEST(FormatCorruptionExtra, LsnAllowedWhenNotRequired) {
  Victim v = plain_victim();
  set_header(v.node_page(), [](auto& h) {
    h.pd_lsn.xrecoff = 42;
    h.pd_checksum = 7;
  });
  EXPECT_TRUE(validate_all(v.img, in_order(v.img), false).ok);
  EXPECT_FALSE(validate_all(v.img, in_order(v.img), true).ok);
}

TEST(FormatCorruptionExtra, HeapHookRejectsUnknownTid) {
  Victim v = plain_victim();
  const vf::PageCheck c =
      validate_all(v.img, in_order(v.img), true, [](vf::Tid t) { return !(t.block == 2 && t.offset == 5); });
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.reason.find("heap TID (2,5) is not one the caller sent"), std::string::npos) << c.reason;
}

TEST(FormatCorruptionExtra, MissingAndRepeatedBlocks) {
  Victim v = plain_victim();
  std::vector<std::uint32_t> order = in_order(v.img);
  order.pop_back();
  vf::PageCheck c = validate_all(v.img, order);
  EXPECT_NE(c.reason.find("was never fed"), std::string::npos) << c.reason;
  order = in_order(v.img);
  order.push_back(3);
  c = validate_all(v.img, order);
  EXPECT_NE(c.reason.find("block 3 was fed twice"), std::string::npos) << c.reason;
  vf::IndexValidator iv(1024, 2);
  EXPECT_FALSE(iv.add_page(5, v.img.pages[0]).ok);
}

TEST(FormatCorruptionExtra, NonMetaPageNeedsMeta) {
  Victim v = plain_victim();
  vf::Expectations e;
  e.page_size = 1024;
  const vf::PageCheck c = vf::validate_page(v.node_page(), v.img.meta.first_node_block, e);
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.reason.find("no decoded meta page"), std::string::npos) << c.reason;
}

// Inserts append label starts to the overflow chain in any order: still valid, read sorted;
// and a reader whose meta page is older than the chain (fewer label starts) reads just those.
TEST(FormatLabelOverflow, UnorderedEntriesAreValidAndReadSorted) {
  Victim v = plain_victim();
  std::byte* e = v.img.pages[1].data() + 24 + 8;
  std::byte first[8];
  std::memcpy(first, e, 8);  // swap the first two entries
  std::memmove(e, e + 8, 8);
  std::memcpy(e + 8, first, 8);
  const vf::PageCheck c = validate_all(v.img, in_order(v.img));
  EXPECT_TRUE(c.ok) << c.reason;
  const auto starts = vf::read_label_starts(v.img.meta, 1024, source_of(v.img));
  ASSERT_EQ(starts.size(), v.img.meta.label_count);
  for (std::size_t i = 1; i < starts.size(); ++i) EXPECT_LT(starts[i - 1].label, starts[i].label);
  vf::MetaInfo older = v.img.meta;
  older.label_count -= 1;
  EXPECT_EQ(vf::read_label_starts(older, 1024, source_of(v.img)).size(), older.label_count);
}

TEST(FormatLabelOverflow, WriteOverflowPageRoundTrips) {
  std::vector<std::byte> page(1024);
  const std::vector<vf::LabelStart> entries = {{7, vf::Tid{5, 2}}, {-3, vf::Tid{4, 1}}};
  vf::write_overflow_page(page, entries, 9);
  const auto back = vf::overflow_page_entries(page, 3);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].label, 7);
  EXPECT_EQ(back[1].node, (vf::Tid{4, 1}));
  EXPECT_EQ(vf::read_page_opaque(page).next_blkno, 9u);
  EXPECT_THROW(vf::write_overflow_page(page, std::vector<vf::LabelStart>(200), 9), vs::Error);
}

TEST(FormatCorruptionExtra, ReaderThrowsCorruptOnBrokenChain) {
  Victim v = sbq_victim();
  vf::store_u32(v.img.pages[2].data(), 24, 7);  // first_element of quantizer page 2
  try {
    (void)vf::read_quantizer_stream(v.img.meta, 1024, source_of(v.img));
    FAIL() << "no throw";
  } catch (const vs::Error& e) {
    EXPECT_EQ(e.code(), vs::ErrorCode::kCorrupt);
  }
}

TEST(FormatCorruptionExtra, ValidatorSurvivesRandomBitFlips) {
  // Every single-bit flip anywhere must be either accepted or rejected, never crash.
  Victim v = sbq_victim();
  std::mt19937_64 rng(5);
  int rejected = 0;
  for (int trial = 0; trial < 300; ++trial) {
    Image img = v.img;
    const std::size_t b = rng() % img.pages.size();
    const std::size_t at = rng() % img.pages[b].size();
    img.pages[b][at] ^= static_cast<std::byte>(1u << (rng() % 8));
    rejected += validate_all(img, in_order(img)).ok ? 0 : 1;
  }
  EXPECT_GT(rejected, 100);
}
