// Helpers of the gpu_builder unit tests: specs, synthetic rows, a scripted BuildCall, and
// the extension's local build for byte comparisons.
#pragma once
#include "vectorscale/builder/session.hpp"
#include "vectorscale/core/crc32c.hpp"
#include "vectorscale/format/validate.hpp"
#include "vectorscale/vamana/pages.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <variant>
#include <vector>

#include "synthetic.hpp"

namespace vs::builder::test {

/** A small valid spec: cosine, SBQ, R 16, L 32, one thread. */
inline BuildSpec small_spec(std::uint32_t dims = 32, std::uint64_t rows = 2000) {
  BuildSpec s;
  s.protocol_version = kProtocolVersion;
  s.format_version = format::kFormatVersion;
  s.page_size = 8192;
  s.metric = static_cast<std::uint32_t>(distance::Metric::kCosine);
  s.column_dims = dims;
  s.indexed_dims = dims;
  s.storage = static_cast<std::uint32_t>(format::StorageLayout::kMemoryOptimized);
  s.bits_per_dim = 2;
  s.num_neighbors = 16;
  s.search_list_size = 32;
  s.max_alpha = 1.2f;
  s.expected_rows = rows;
  s.threads = 1;
  s.client = "unit test";
  return s;
}

/** Rows of a build in arrival order: vectors, heap TIDs, optional labels (CSR). */
struct Dataset {
  std::size_t n = 0;
  std::size_t dims = 0;
  std::vector<float> vectors;
  std::vector<format::Tid> tids;
  std::vector<std::uint32_t> label_offsets;  // empty when unlabelled
  std::vector<std::int32_t> labels;
};

/** n clustered rows of dims floats; heap TIDs 40 per block, starting at block 3. */
inline Dataset make_dataset(std::size_t n, std::size_t dims, std::uint64_t seed = 7, bool labelled = false) {
  Dataset d;
  d.n = n;
  d.dims = dims;
  d.vectors = vs::test::clustered(n, dims, 10, seed);
  for (std::size_t i = 0; i < n; ++i)
    d.tids.push_back(format::Tid{static_cast<std::uint32_t>(3 + i / 40), static_cast<std::uint16_t>(i % 40 + 1)});
  if (labelled) {
    d.label_offsets.push_back(0);
    for (std::size_t i = 0; i < n; ++i) {
      d.labels.push_back(static_cast<std::int32_t>(i % 5));
      if (i % 3 == 0) d.labels.push_back(100 + static_cast<std::int32_t>(i % 2));
      d.label_offsets.push_back(static_cast<std::uint32_t>(d.labels.size()));
    }
  }
  return d;
}

/** A VectorBatch with storage of its own. */
struct OwnedBatch {
  std::vector<std::uint64_t> heap_tids;
  std::vector<float> data;
  std::vector<std::uint32_t> label_offsets;
  std::vector<std::int32_t> labels;
};

/** One scripted client message. */
using ScriptItem = std::variant<BuildSpec, OwnedBatch, FinishRequest>;

/** Rows [from, to) of d as one batch. */
inline OwnedBatch batch_of(const Dataset& d, std::size_t from, std::size_t to) {
  OwnedBatch b;
  for (std::size_t i = from; i < to; ++i) b.heap_tids.push_back(d.tids[i].key());
  b.data.assign(d.vectors.begin() + static_cast<std::ptrdiff_t>(from * d.dims),
                d.vectors.begin() + static_cast<std::ptrdiff_t>(to * d.dims));
  if (!d.label_offsets.empty()) {
    const std::uint32_t base = d.label_offsets[from];
    for (std::size_t i = from; i <= to; ++i) b.label_offsets.push_back(d.label_offsets[i] - base);
    b.labels.assign(d.labels.begin() + base, d.labels.begin() + d.label_offsets[to]);
  }
  return b;
}

/** spec, the rows in batches of `per_batch`, Finish. */
inline std::vector<ScriptItem> full_script(const BuildSpec& spec, const Dataset& d, std::size_t per_batch = 500) {
  std::vector<ScriptItem> s{spec};
  for (std::size_t i = 0; i < d.n; i += per_batch) s.emplace_back(batch_of(d, i, std::min(d.n, i + per_batch)));
  s.emplace_back(FinishRequest{d.n});
  return s;
}

/** A BuildCall that plays a script and records what the session sends; thread-safe. */
class FakeCall final : public BuildCall {
 public:
  explicit FakeCall(std::vector<ScriptItem> script) : script_(std::move(script)) {}

  std::optional<Request> next() override {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return consumed_ < hold_at_ || cancel_ != CancelReason::kNone; });
    if (consumed_ >= script_.size() || cancel_ != CancelReason::kNone) return std::nullopt;
    const ScriptItem& item = script_[consumed_++];
    cv_.notify_all();
    if (const auto* s = std::get_if<BuildSpec>(&item)) return Request{*s};
    if (const auto* f = std::get_if<FinishRequest>(&item)) return Request{*f};
    const auto& b = std::get<OwnedBatch>(item);
    return Request{VectorBatchView{b.heap_tids, b.data, b.label_offsets, b.labels}};
  }
  void progress(const ProgressMessage& m) override {
    std::function<void(const ProgressMessage&)> hook;
    {
      std::lock_guard lock(mu_);
      progress_.push_back(m);
      hook = on_progress_;
    }
    cv_.notify_all();
    if (hook) hook(m);
  }
  void pages(PageBatchMessage&& batch) override {
    std::lock_guard lock(mu_);
    if (cancel_ != CancelReason::kNone) throw vs::Cancelled();
    batches_.push_back(std::move(batch));
  }
  void summary(const SummaryMessage& m) override {
    std::lock_guard lock(mu_);
    summary_ = m;
  }
  void flush() override {}
  CancelReason cancel_reason() const override {
    std::lock_guard lock(mu_);
    return cancel_;
  }

  /** Cancels the call with a reason. */
  void cancel(CancelReason r) {
    {
      std::lock_guard lock(mu_);
      cancel_ = r;
    }
    cv_.notify_all();
  }
  /** next() blocks before handing out item `index` until release() (or cancel). */
  void hold_at(std::size_t index) {
    std::lock_guard lock(mu_);
    hold_at_ = index;
  }
  /** Lets next() hand out every item. */
  void release() {
    {
      std::lock_guard lock(mu_);
      hold_at_ = static_cast<std::size_t>(-1);
    }
    cv_.notify_all();
  }
  /** Calls hook on every progress message (on the session's thread). */
  void on_progress(std::function<void(const ProgressMessage&)> hook) {
    std::lock_guard lock(mu_);
    on_progress_ = std::move(hook);
  }
  /** Waits until `pred(progress so far)` holds or timeout; returns whether it held. */
  bool wait_progress(const std::function<bool(const std::vector<ProgressMessage>&)>& pred,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(progress_); });
  }

  [[nodiscard]] std::size_t consumed() const {
    std::lock_guard lock(mu_);
    return consumed_;
  }
  [[nodiscard]] std::vector<ProgressMessage> progress_messages() const {
    std::lock_guard lock(mu_);
    return progress_;
  }
  [[nodiscard]] const std::vector<PageBatchMessage>& batches() const { return batches_; }
  [[nodiscard]] const std::optional<SummaryMessage>& summary_message() const { return summary_; }

  /** Every page of every batch, in order (checks that blocks are contiguous from 0). */
  [[nodiscard]] std::vector<std::vector<std::byte>> all_pages() const {
    std::vector<std::vector<std::byte>> out;
    for (const auto& b : batches_) {
      EXPECT_EQ(b.first_block, out.size());
      for (std::size_t i = 0; i < b.count(); ++i) out.emplace_back(b.page(i).begin(), b.page(i).end());
    }
    return out;
  }

 private:
  std::vector<ScriptItem> script_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::size_t consumed_ = 0;
  std::size_t hold_at_ = static_cast<std::size_t>(-1);
  CancelReason cancel_ = CancelReason::kNone;
  std::vector<ProgressMessage> progress_;
  std::function<void(const ProgressMessage&)> on_progress_;
  std::vector<PageBatchMessage> batches_;
  std::optional<SummaryMessage> summary_;
};

/** Validates a whole index as the extension does: every page, heap TIDs sent and unique. */
inline format::PageCheck validate_index(const std::vector<std::vector<std::byte>>& pages, std::uint32_t page_size,
                                        const std::vector<format::Tid>& sent) {
  std::set<std::uint64_t> sent_keys, seen;
  for (const auto& t : sent) sent_keys.insert(t.key());
  format::IndexValidator v(page_size, static_cast<std::uint32_t>(pages.size()), true,
                           [&](format::Tid t) { return sent_keys.count(t.key()) == 1 && seen.insert(t.key()).second; });
  for (std::uint32_t b = 0; b < pages.size(); ++b) {
    auto r = v.add_page(b, pages[b]);
    if (!r.ok) return r;
  }
  return v.finish();
}

/**
 * The extension's local build (diskannbuild.cpp build_local): Index::build over the vectors
 * in arrival order, then write_index_pages with provenance local.
 */
inline std::vector<std::vector<std::byte>> local_build(const BuildSpec& s, const Dataset& d) {
  vamana::IndexParams p;
  p.build.metric = static_cast<distance::Metric>(s.metric);
  p.build.num_neighbors = s.num_neighbors;
  p.build.search_list_size = s.search_list_size;
  p.build.max_alpha = s.max_alpha;
  p.build.threads = 1;
  if (s.seed != 0) p.build.seed = s.seed;
  p.storage = static_cast<format::StorageLayout>(s.storage);
  p.bits_per_dim = s.bits_per_dim;
  Array<float> vectors(d.n * d.dims);
  if (d.n != 0) std::memcpy(vectors.data(), d.vectors.data(), d.n * d.dims * sizeof(float));
  const vamana::Index index = vamana::Index::build(std::move(vectors), d.n, d.dims, p);
  vamana::PageOptions po;
  po.page_size = s.page_size;
  po.column_dims = s.column_dims;
  po.provenance.built_by = format::BuiltBy::kLocal;
  po.provenance.backend = format::BuildBackend::kCpu;
  po.provenance.builder_id = "vectorscale 0.1.0";
  std::vector<std::vector<std::byte>> pages;
  (void)vamana::write_index_pages(index, p.build, d.tids, po, [&](std::uint32_t, std::span<const std::byte> page) {
    pages.emplace_back(page.begin(), page.end());
  });
  return pages;
}

}  // namespace vs::builder::test
