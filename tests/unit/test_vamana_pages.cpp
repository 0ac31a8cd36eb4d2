// A built Vamana index laid out as format v1 pages: the pages validate, read back to the same
// graph, codes and labels, and are byte-identical for the same inputs.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "synthetic.hpp"
#include "vectorscale/format/reader.hpp"
#include "vectorscale/format/validate.hpp"
#include "vectorscale/vamana/pages.hpp"

namespace {

using namespace vs;
using format::Tid;

struct Case {
  vamana::Storage storage;
  bool labels;
  std::uint32_t page_size;
};

class VamanaPages : public ::testing::TestWithParam<Case> {};

std::vector<std::vector<std::byte>> write_all(const vamana::Index& index, const vamana::BuildParams& p,
                                              const std::vector<Tid>& heap, std::uint32_t page_size,
                                              format::MetaInfo* meta = nullptr) {
  std::vector<std::vector<std::byte>> pages;
  vamana::PageOptions opt;
  opt.page_size = page_size;
  opt.provenance.builder_id = "unit-test";
  const auto m = vamana::write_index_pages(index, p, heap, opt, [&](std::uint32_t block, std::span<const std::byte> page) {
    EXPECT_EQ(block, pages.size());
    pages.emplace_back(page.begin(), page.end());
  });
  if (meta != nullptr) *meta = m;
  return pages;
}

TEST_P(VamanaPages, ValidateAndReadBackTheGraph) {
  const auto c = GetParam();
  const std::size_t n = 1200, dims = 40;
  const auto data = test::clustered(n, dims, 12, 17);
  vamana::LabelSets labels;
  if (c.labels)
    for (std::size_t i = 0; i < n; ++i) {
      std::vector<vamana::Label> l = {static_cast<vamana::Label>(i % 7)};
      if (i % 5 == 0) l.push_back(static_cast<vamana::Label>(-32768 + static_cast<int>(i % 3)));
      labels.push_back(l);
    }
  vamana::IndexParams ip;
  ip.build.metric = distance::Metric::kCosine;
  ip.build.num_neighbors = 16;
  ip.build.threads = 1;
  ip.storage = c.storage;
  const auto index = vamana::Index::build(data.data(), n, dims, ip, c.labels ? &labels : nullptr);
  std::vector<Tid> heap(n);
  for (std::size_t i = 0; i < n; ++i) heap[i] = Tid{static_cast<std::uint32_t>(i / 37), static_cast<std::uint16_t>(i % 37 + 1)};

  format::MetaInfo meta;
  const auto pages = write_all(index, ip.build, heap, c.page_size, &meta);
  ASSERT_FALSE(pages.empty());

  // The validator accepts every page and the cross-page invariants; heap TIDs are the sent ones.
  std::set<std::uint64_t> sent;
  for (const auto& t : heap) sent.insert(t.key());
  std::set<std::uint64_t> seen;
  format::IndexValidator v(c.page_size, static_cast<std::uint32_t>(pages.size()), true, [&](Tid t) {
    return sent.count(t.key()) == 1 && seen.insert(t.key()).second;
  });
  for (std::uint32_t b = 0; b < pages.size(); ++b) {
    const auto r = v.add_page(b, pages[b]);
    ASSERT_TRUE(r.ok) << r.reason;
  }
  const auto fin = v.finish();
  ASSERT_TRUE(fin.ok) << fin.reason;
  EXPECT_EQ(seen.size(), n);

  // Meta page contents.
  const auto m = format::decode_meta(pages[0]);
  EXPECT_EQ(m.node_count, n);
  EXPECT_EQ(m.num_neighbors, 16u);
  EXPECT_EQ(m.storage, c.storage);
  EXPECT_EQ(m.metric, distance::Metric::kCosine);
  EXPECT_EQ(m.builder_id, "unit-test");
  EXPECT_EQ(m.has_labels, c.labels);

  // Every node's record: heap TID, neighbours (as TIDs of the graph's neighbours), payload.
  const auto layout = format::NodeLayout::from_meta(m, c.page_size);
  std::map<std::uint64_t, std::uint32_t> node_of_tid;
  auto tid_of = [&](std::uint32_t i) {
    return Tid{m.first_node_block + i / m.nodes_per_page, static_cast<std::uint16_t>(i % m.nodes_per_page + 1)};
  };
  for (std::uint32_t i = 0; i < n; ++i) node_of_tid[tid_of(i).key()] = i;
  EXPECT_EQ(m.entry_point.key(), tid_of(index.graph().medoid).key());
  for (std::uint32_t i = 0; i < n; ++i) {
    const Tid t = tid_of(i);
    const auto node = format::node_at(pages[t.block], t.offset, layout);
    ASSERT_EQ(node.heap_tid().key(), heap[i].key());
    const auto want = index.graph().neighbors_of(i);
    ASSERT_EQ(node.num_neighbors(), want.size());
    for (std::size_t j = 0; j < want.size(); ++j) ASSERT_EQ(node_of_tid.at(node.neighbor(j).key()), want[j]);
    if (c.storage == vamana::Storage::kMemoryOptimized) {
      std::vector<std::uint64_t> code(index.quantizer().words());
      node.read_codes(code);
      ASSERT_TRUE(std::equal(code.begin(), code.end(), index.code(i)));
    } else {
      std::vector<float> vec(dims);
      node.read_plain(vec);
      ASSERT_TRUE(std::equal(vec.begin(), vec.end(), index.vector(i)));
    }
    if (c.labels) {
      const auto got = node.labels();
      const auto exp = labels.of(i);
      ASSERT_TRUE(std::equal(got.begin(), got.end(), exp.begin(), exp.end()));
    }
  }
  if (c.storage == vamana::Storage::kMemoryOptimized) {
    auto source = [&](std::uint32_t b) { return std::span<const std::byte>(pages[b]); };
    EXPECT_EQ(format::read_quantizer_stream(m, c.page_size, source), index.quantizer().stream());
  }
}

TEST_P(VamanaPages, SameInputsGiveByteIdenticalPages) {
  const auto c = GetParam();
  const std::size_t n = 600, dims = 24;
  const auto data = test::clustered(n, dims, 6, 3);
  vamana::IndexParams ip;
  ip.build.metric = distance::Metric::kL2;
  ip.build.num_neighbors = 12;
  ip.build.threads = 1;
  ip.build.seed = 99;
  ip.storage = c.storage;
  std::vector<Tid> heap(n);
  for (std::size_t i = 0; i < n; ++i) heap[i] = Tid{static_cast<std::uint32_t>(i), 1};
  const auto a = vamana::Index::build(data.data(), n, dims, ip);
  const auto b = vamana::Index::build(data.data(), n, dims, ip);
  EXPECT_EQ(write_all(a, ip.build, heap, c.page_size), write_all(b, ip.build, heap, c.page_size));
}

INSTANTIATE_TEST_SUITE_P(Layouts, VamanaPages,
                         ::testing::Values(Case{vamana::Storage::kMemoryOptimized, false, 8192},
                                           Case{vamana::Storage::kPlain, false, 8192},
                                           Case{vamana::Storage::kMemoryOptimized, true, 8192},
                                           Case{vamana::Storage::kPlain, true, 4096}),
                         [](const auto& info) {
                           return std::string(info.param.storage == vamana::Storage::kPlain ? "plain" : "sbq") +
                                  (info.param.labels ? "_labels" : "") + "_" + std::to_string(info.param.page_size);
                         });

}  // namespace
