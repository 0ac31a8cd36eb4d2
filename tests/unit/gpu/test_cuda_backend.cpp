// gpu_builder's CUDA backend on a device (ctest label `gpu`; skipped with the runtime's reason
// where none exists): its pages pass the same validation as the CPU backend's, labelled builds
// and builds too large for the device go to the CPU backend and say so, device memory is
// reported, and cancellation works.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gpu_test_sizes.hpp"
#include "synthetic.hpp"
#include "vectorscale/builder/cuda_backend.hpp"
#include "vectorscale/core/error.hpp"
#include "vectorscale/format/reader.hpp"
#include "vectorscale/format/validate.hpp"

namespace {

using namespace vs;
namespace vb = vs::builder;

// The backend, or skip with the reason.
std::unique_ptr<vb::CudaBackend> open_backend(std::string& reason, const vb::CudaBackendOptions& options = {}) {
  try {
    return vb::CudaBackend::create(options);
  } catch (const vs::Error& e) {
    reason = e.what();
    return nullptr;
  }
}

#define REQUIRE_BACKEND_WITH(b, options)            \
  std::string b##_why;                              \
  auto b = open_backend(b##_why, options);          \
  if (!b) {                                         \
    GTEST_SKIP() << "no CUDA backend: " << b##_why; \
  }
#define REQUIRE_BACKEND(b) REQUIRE_BACKEND_WITH(b, vb::CudaBackendOptions{})

vb::BuildInput make_input(std::size_t n, std::size_t dims, distance::Metric metric, bool labelled) {
  vb::BuildInput in;
  in.params.build.metric = metric;
  in.params.build.num_neighbors = 24;
  in.params.build.search_list_size = 48;
  in.rows = n;
  in.dims = dims;
  const auto data = test::clustered(n, dims, 12, 5);
  in.vectors = Array<float>(n * dims);
  std::copy(data.begin(), data.end(), in.vectors.data());
  for (std::size_t i = 0; i < n; ++i)
    in.heap_tids.push_back(format::Tid{static_cast<std::uint32_t>(1 + i / 50), static_cast<std::uint16_t>(i % 50 + 1)});
  if (labelled) {
    vamana::LabelSets labels;
    for (std::size_t i = 0; i < n; ++i) labels.push_back(std::vector<vamana::Label>{static_cast<vamana::Label>(i % 4)});
    in.labels = std::move(labels);
    in.page_options.labeled = true;
  }
  in.page_options.provenance.built_by = format::BuiltBy::kBuilder;
  in.page_options.provenance.backend = format::BuildBackend::kCuda;
  return in;
}

// Builds and validates every page as the extension does; returns the decoded meta page.
format::MetaInfo build_and_validate(vb::CudaBackend& b, vb::BuildInput in, vb::BackendStats* stats = nullptr,
                                    const Control& control = {}) {
  std::vector<std::vector<std::byte>> pages;
  std::set<std::uint64_t> sent;
  for (const auto& t : in.heap_tids) sent.insert(t.key());
  const std::size_t n = in.rows;
  const auto s = b.build(std::move(in), control, [&](std::uint32_t block, std::span<const std::byte> page) {
    EXPECT_EQ(block, pages.size());
    pages.emplace_back(page.begin(), page.end());
  });
  if (stats != nullptr) *stats = s;
  EXPECT_EQ(s.nodes, n);
  std::set<std::uint64_t> seen;
  format::IndexValidator v(8192, static_cast<std::uint32_t>(pages.size()), true,
                           [&](format::Tid t) { return sent.count(t.key()) == 1 && seen.insert(t.key()).second; });
  for (std::uint32_t i = 0; i < pages.size(); ++i) {
    const auto r = v.add_page(i, pages[i]);
    EXPECT_TRUE(r.ok) << "block " << i << ": " << r.reason;
  }
  const auto fin = v.finish();
  EXPECT_TRUE(fin.ok) << fin.reason;
  EXPECT_EQ(seen.size(), n);
  return format::decode_meta(pages.at(0));
}

TEST(CudaBackend, PagesValidateForEveryMetricAndStorage) {
  REQUIRE_BACKEND(b);
  for (const auto metric : {distance::Metric::kL2, distance::Metric::kCosine, distance::Metric::kInnerProduct}) {
    for (const auto storage : {vamana::Storage::kMemoryOptimized, vamana::Storage::kPlain}) {
      if (metric == distance::Metric::kInnerProduct && storage == vamana::Storage::kPlain) continue;
      const std::size_t n = test::gpu_rows(3000, 1000);
      auto in = make_input(n, 64, metric, false);
      in.params.storage = storage;
      vb::BackendStats stats;
      const auto meta = build_and_validate(*b, std::move(in), &stats);
      EXPECT_EQ(meta.build_backend, format::BuildBackend::kCuda);
      EXPECT_EQ(stats.backend, format::BuildBackend::kCuda);
      EXPECT_EQ(meta.node_count, n);
      EXPECT_EQ(meta.metric, metric);
    }
  }
}

// Rows that are not whole 16-byte chunks in either precision, one dimension, and the most
// dimensions an index takes (16,000), whose staged float query (64,000 bytes) needs more than
// the 48 KiB of shared memory a kernel gets without opting in; in both precisions.
TEST(CudaBackend, PagesValidateForOddDimensions) {
  for (const bool bf16 : {true, false}) {
    vb::CudaBackendOptions options;
    options.graph.bf16_vectors = bf16;
    REQUIRE_BACKEND_WITH(b, options);
    for (const std::size_t dims : {1, 3, 9, 100, 16000}) {
      SCOPED_TRACE(::testing::Message() << dims << " dimensions, " << (bf16 ? "bf16" : "fp32"));
      const std::size_t n = dims > 1000 ? 150 : 600;
      vb::BackendStats stats;
      const auto meta = build_and_validate(*b, make_input(n, dims, distance::Metric::kL2, false), &stats);
      EXPECT_EQ(meta.build_backend, format::BuildBackend::kCuda);
      EXPECT_EQ(meta.node_count, n);
      EXPECT_EQ(meta.indexed_dims, dims);
    }
  }
}

// Builds through a backend that must hand the build to its CPU backend: the pages validate,
// and the meta page and the stats both name the CPU. Returns the meta page and the first log
// line (which says why).
std::pair<format::MetaInfo, std::string> build_on_the_cpu_backend(vb::CudaBackend& b, vb::BuildInput in) {
  std::vector<std::string> log;
  Control control;
  control.log = [&](LogLevel, std::string_view line) { log.emplace_back(line); };
  vb::BackendStats stats;
  const auto meta = build_and_validate(b, std::move(in), &stats, control);
  EXPECT_EQ(meta.build_backend, format::BuildBackend::kCpu);
  EXPECT_EQ(stats.backend, format::BuildBackend::kCpu);
  EXPECT_FALSE(log.empty());
  return {meta, log.empty() ? std::string() : log[0]};
}

TEST(CudaBackend, LabelledBuildsRunOnTheCpuBackend) {
  REQUIRE_BACKEND(b);
  const auto [meta, why] = build_on_the_cpu_backend(*b, make_input(1500, 32, distance::Metric::kCosine, true));
  EXPECT_TRUE(meta.has_labels);
  EXPECT_NE(why.find("labelled"), std::string::npos) << why;
}

TEST(CudaBackend, BuildsTooLargeForTheDeviceRunOnTheCpuBackend) {
  vb::CudaBackendOptions options;
  options.limits.budget = 1 << 20;  // 1 MiB of device memory: not even the graph of 1,500 rows fits
  REQUIRE_BACKEND_WITH(b, options);
  const auto [meta, why] = build_on_the_cpu_backend(*b, make_input(1500, 32, distance::Metric::kL2, false));
  EXPECT_EQ(meta.node_count, 1500u);
  EXPECT_NE(why.find("building on the CPU"), std::string::npos) << why;
  EXPECT_NE(why.find("does not fit"), std::string::npos) << why;
}

TEST(CudaBackend, ReportsDeviceMemoryAndCancels) {
  REQUIRE_BACKEND(b);
  const auto m = b->device_memory();
  EXPECT_GT(m.total_bytes, 0u);
  EXPECT_LE(m.used_bytes, m.total_bytes);
  EXPECT_FALSE(b->description().empty());
  Control control;
  int polls = 0;
  control.cancel = [&] { return ++polls > 3; };
  EXPECT_THROW((void)b->build(make_input(20000, 32, distance::Metric::kL2, false), control,
                              [](std::uint32_t, std::span<const std::byte>) {}),
               vs::Cancelled);
  (void)build_and_validate(*b,
                           make_input(test::gpu_rows(1000, 500), 32, distance::Metric::kL2, false));  // still usable
}

}  // namespace
