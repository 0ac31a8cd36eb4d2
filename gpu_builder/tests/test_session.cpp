// Builds through the core without gRPC: pages validate, the builder is byte-identical to the
// extension's local build, protocol and admission errors, queueing, cancellation, failure points.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <thread>

#include "builder_test_support.hpp"
#include "vectorscale/builder/cpu_backend.hpp"
#include "vectorscale/builder/session.hpp"
#include "vectorscale/format/reader.hpp"
#include "vectorscale/format/records.hpp"

namespace {

namespace vb = vs::builder;
namespace vt = vs::builder::test;
using ::testing::HasSubstr;

// Session options of the tests: 2 server threads, a fixed builder id.
vb::SessionOptions test_options() {
  vb::SessionOptions o;
  o.server_threads = 2;
  o.builder_id = "gpu_builder test host";
  o.progress_interval = std::chrono::milliseconds(0);
  o.queue_tick = std::chrono::milliseconds(10);
  return o;
}

// A roomy scheduler: one build, 4 waiting, 1 GiB.
vb::AdmissionLimits roomy() {
  return {1, 4, 1ull << 30};
}

// Runs one build of `script` and returns the report; the call is kept for inspection.
vb::BuildReport run(vt::FakeCall& call, vb::AdmissionLimits limits = roomy(),
                    const vb::SessionOptions& options = test_options()) {
  vb::Scheduler scheduler(limits);
  vb::CpuBackend backend;
  return vb::run_build(call, scheduler, backend, options);
}

TEST(Session, CpuBuildProducesValidPages) {
  const auto d = vt::make_dataset(2000, 32);
  auto spec = vt::small_spec();
  spec.threads = 2;
  vt::FakeCall call(vt::full_script(spec, d));
  auto options = test_options();
  options.page_batch_bytes = 3 * 8192;
  const auto report = run(call, roomy(), options);
  ASSERT_TRUE(report.status.ok()) << report.status.message;
  EXPECT_EQ(report.rows, 2000u);
  EXPECT_EQ(report.dims, 32u);
  EXPECT_EQ(report.storage, "memory_optimized");
  EXPECT_EQ(report.backend, "cpu");
  EXPECT_EQ(report.outcome, vb::BuildOutcome::kSucceeded);
  // Phase times: each phase was reached, and they tile the build after its spec.
  EXPECT_GT(report.receive_seconds, 0.0);
  EXPECT_GT(report.train_seconds, 0.0);
  EXPECT_GT(report.graph_seconds, 0.0);
  EXPECT_GT(report.write_seconds, 0.0);
  const double phase_sum = report.queue_seconds + report.receive_seconds + report.train_seconds + report.graph_seconds +
                           report.write_seconds;
  EXPECT_LE(phase_sum, report.seconds + 1e-9);
  EXPECT_GT(phase_sum, 0.9 * report.seconds);

  // Batches: at most 3 pages, format version, page size and a correct CRC on every page.
  for (const auto& b : call.batches()) {
    EXPECT_GE(b.count(), 1u);
    EXPECT_LE(b.count(), 3u);
    EXPECT_EQ(b.format_version, vs::format::kFormatVersion);
    EXPECT_EQ(b.page_size, 8192u);
    for (std::size_t i = 0; i < b.count(); ++i) EXPECT_EQ(b.crc32c[i], vs::crc32c(b.page(i)));
  }
  const auto pages = call.all_pages();
  const auto check = vt::validate_index(pages, 8192, d.tids);
  ASSERT_TRUE(check.ok) << check.reason;

  // Meta page provenance and the Summary.
  const auto meta = vs::format::decode_meta(pages[0]);
  EXPECT_EQ(meta.built_by, vs::format::BuiltBy::kBuilder);
  EXPECT_EQ(meta.build_backend, vs::format::BuildBackend::kCpu);
  EXPECT_EQ(meta.builder_id, "gpu_builder test host");
  EXPECT_EQ(meta.node_count, 2000u);
  ASSERT_TRUE(call.summary_message().has_value());
  const auto& sum = *call.summary_message();
  EXPECT_EQ(sum.total_pages, pages.size());
  EXPECT_EQ(sum.nodes, 2000u);
  EXPECT_EQ(sum.backend, vs::format::BuildBackend::kCpu);
  EXPECT_EQ(sum.builder_id, "gpu_builder test host");
  EXPECT_EQ(report.pages, pages.size());

  // Progress: receiving, training, inserting, writing, in that order of first appearance.
  std::vector<std::uint32_t> phases;
  for (const auto& p : call.progress_messages())
    if (phases.empty() || phases.back() != p.phase) phases.push_back(p.phase);
  ASSERT_GE(phases.size(), 4u);
  EXPECT_EQ(phases.front(), vb::kPhaseReceive);
  EXPECT_EQ(phases[1], vb::kPhaseTrain);
  EXPECT_EQ(phases[2], vs::vamana::kPhaseInsert);
  EXPECT_EQ(phases.back(), vb::kPhaseWrite);
  const auto last = call.progress_messages().back();
  EXPECT_EQ(last.done, pages.size());
  EXPECT_EQ(last.total, pages.size());
}

TEST(Session, ProgressIsThrottled) {
  const auto d = vt::make_dataset(2000, 32);
  vt::FakeCall call(vt::full_script(vt::small_spec(), d, 50));  // 40 batches
  auto options = test_options();
  options.progress_interval = std::chrono::seconds(10);
  ASSERT_TRUE(run(call, roomy(), options).status.ok());
  // One report per phase change (plus the forced ones at the start and end of receiving).
  EXPECT_LE(call.progress_messages().size(), 10u);
}

// Pages of the same spec and rows built by the builder and by the extension's local path.
TEST(Session, DeterministicAndIdenticalToTheLocalBuild) {
  const auto d = vt::make_dataset(2000, 32, 11);
  for (const std::uint32_t storage : {1u, 2u}) {
    auto spec = vt::small_spec();
    spec.storage = storage;
    spec.metric = storage == 1 ? 3 : 1;  // IP with SBQ, L2 plain
    spec.bits_per_dim = storage == 1 ? 2 : 0;
    // Fewer rows announced than sent grows the row storage; more leaves room never written
    // (allocated uninitialised, zeroed before the build reads it).
    spec.expected_rows = storage == 1 ? 1700 : 5000;
    std::vector<std::vector<std::byte>> runs[2];
    for (auto& r : runs) {
      vt::FakeCall call(vt::full_script(spec, d, 333));
      const auto report = run(call);
      ASSERT_TRUE(report.status.ok()) << report.status.message;
      r = call.all_pages();
    }
    ASSERT_EQ(runs[0], runs[1]) << "two builder runs differ (storage " << storage << ")";

    const auto local = vt::local_build(spec, d);
    const auto& remote = runs[0];
    ASSERT_EQ(local.size(), remote.size());
    for (std::size_t b = 1; b < local.size(); ++b) ASSERT_EQ(local[b], remote[b]) << "block " << b;
    // The meta page differs only in its provenance: built_by, build_backend, builder_id.
    auto lm = vs::format::decode_meta(local[0]);
    auto rm = vs::format::decode_meta(remote[0]);
    EXPECT_EQ(lm.built_by, vs::format::BuiltBy::kLocal);
    EXPECT_EQ(rm.built_by, vs::format::BuiltBy::kBuilder);
    auto l0 = local[0], r0 = remote[0];
    const std::size_t from = vs::format::kPageHeaderSize + offsetof(vs::format::MetaDisk, built_by);
    const std::size_t to = vs::format::kPageHeaderSize + offsetof(vs::format::MetaDisk, reserved2);
    std::fill(l0.begin() + static_cast<std::ptrdiff_t>(from), l0.begin() + static_cast<std::ptrdiff_t>(to),
              std::byte{0});
    std::fill(r0.begin() + static_cast<std::ptrdiff_t>(from), r0.begin() + static_cast<std::ptrdiff_t>(to),
              std::byte{0});
    EXPECT_EQ(l0, r0) << "meta pages differ outside the provenance fields";
  }
}

TEST(Session, LabelledBuildValidates) {
  const auto d = vt::make_dataset(1500, 24, 5, true);
  auto spec = vt::small_spec(24, 1500);
  spec.has_labels = true;
  vt::FakeCall call(vt::full_script(spec, d, 400));
  const auto report = run(call);
  ASSERT_TRUE(report.status.ok()) << report.status.message;
  const auto pages = call.all_pages();
  const auto check = vt::validate_index(pages, 8192, d.tids);
  ASSERT_TRUE(check.ok) << check.reason;
  const auto meta = vs::format::decode_meta(pages[0]);
  EXPECT_TRUE(meta.has_labels);
  EXPECT_EQ(meta.label_count, 7u);  // labels 0..4, 100, 101
  EXPECT_EQ(meta.label_capacity, 2u);  // label_capacity 0: the most any row has

  // The extension asks for its record capacity (8): the records get 8 label slots.
  spec.label_capacity = 8;
  vt::FakeCall call8(vt::full_script(spec, d, 400));
  ASSERT_TRUE(run(call8).status.ok());
  const auto pages8 = call8.all_pages();
  ASSERT_TRUE(vt::validate_index(pages8, 8192, d.tids).ok);
  EXPECT_EQ(vs::format::decode_meta(pages8[0]).label_capacity, 8u);
}

TEST(Session, EmptyIndex) {
  auto spec = vt::small_spec(32, 0);
  vt::FakeCall call({spec, vb::FinishRequest{0}});
  const auto report = run(call);
  ASSERT_TRUE(report.status.ok()) << report.status.message;
  const auto pages = call.all_pages();
  ASSERT_GE(pages.size(), 1u);  // the meta page (and the quantizer page of SBQ)
  EXPECT_EQ(vs::format::decode_meta(pages[0]).node_count, 0u);
  const auto check = vt::validate_index(pages, 8192, {});
  EXPECT_TRUE(check.ok) << check.reason;
  const auto local = vt::local_build(spec, vt::make_dataset(0, 32));
  ASSERT_EQ(local.size(), pages.size());
  for (std::size_t b = 1; b < local.size(); ++b) EXPECT_EQ(local[b], pages[b]) << "block " << b;
  EXPECT_EQ(call.progress_messages().back().total, pages.size());
}

// The status of a build of `script`.
vb::Status status_of(std::vector<vt::ScriptItem> script) {
  vt::FakeCall call(std::move(script));
  return run(call).status;
}

TEST(Session, ProtocolErrors) {
  const auto d = vt::make_dataset(100, 32);
  const auto spec = vt::small_spec(32, 100);
  auto expect_invalid = [](const vb::Status& s, const char* what) {
    EXPECT_EQ(s.code, vb::StatusCode::kInvalidArgument) << s.message;
    EXPECT_THAT(s.message, HasSubstr(what));
  };
  expect_invalid(status_of({vt::batch_of(d, 0, 10)}), "the first message must be a BuildSpec");
  expect_invalid(status_of({}), "ended before a BuildSpec");
  expect_invalid(status_of({spec, vt::batch_of(d, 0, 100), vb::FinishRequest{99}}),
                 "Finish.rows is 99 but 100 rows were received");
  expect_invalid(status_of({spec, vt::batch_of(d, 0, 100)}), "without a Finish message");
  expect_invalid(status_of({spec, spec}), "BuildSpec sent twice");

  auto b = vt::batch_of(d, 0, 10);
  b.data.pop_back();
  expect_invalid(status_of({spec, b, vb::FinishRequest{10}}), "319 floats for 10 rows");
  b = vt::batch_of(d, 0, 10);
  b.data[37] = std::nanf("");
  expect_invalid(status_of({spec, b, vb::FinishRequest{10}}), "row 1: dimension 5 is not a finite number");
  b = vt::batch_of(d, 0, 10);
  b.heap_tids[3] = 7ull << 16;  // offset 0
  expect_invalid(status_of({spec, b, vb::FinishRequest{10}}), "row 3: heap TID");
  b = vt::batch_of(d, 0, 10);
  b.heap_tids[4] = b.heap_tids[2];
  expect_invalid(status_of({spec, b, vb::FinishRequest{10}}), "was sent more than once");
  b = vt::batch_of(d, 0, 10);
  b.labels = {1};
  expect_invalid(status_of({spec, b, vb::FinishRequest{10}}), "has_labels false");

  auto labelled = spec;
  labelled.has_labels = true;
  b = vt::batch_of(d, 0, 10);  // no label offsets
  expect_invalid(status_of({labelled, b, vb::FinishRequest{10}}), "label offsets");

  auto bad = spec;
  bad.num_neighbors = 5;
  expect_invalid(status_of({bad, vt::batch_of(d, 0, 10), vb::FinishRequest{10}}), "num_neighbors 5");
}

TEST(Session, MemoryRefusedBeforeAnyVectorIsRead) {
  const auto d = vt::make_dataset(2000, 32);
  vt::FakeCall call(vt::full_script(vt::small_spec(), d));
  const auto report = run(call, {1, 4, 64 * 1024});
  EXPECT_EQ(report.status.code, vb::StatusCode::kResourceExhausted) << report.status.message;
  EXPECT_THAT(report.status.message, HasSubstr("--max-memory"));
  EXPECT_EQ(call.consumed(), 1u);  // the spec only
  EXPECT_EQ(report.outcome, vb::BuildOutcome::kRejected);
  EXPECT_EQ(report.receive_seconds + report.train_seconds + report.graph_seconds + report.write_seconds, 0.0);
}

TEST(Session, BadSpecFailsBeforeAnyPhase) {
  auto spec = vt::small_spec(32, 100);
  spec.num_neighbors = 5;
  const auto d = vt::make_dataset(100, 32);
  vt::FakeCall call(vt::full_script(spec, d));
  const auto report = run(call);
  EXPECT_EQ(report.status.code, vb::StatusCode::kInvalidArgument);
  EXPECT_EQ(report.outcome, vb::BuildOutcome::kFailed);
  EXPECT_EQ(report.queue_seconds + report.receive_seconds + report.train_seconds + report.graph_seconds +
                report.write_seconds,
            0.0);
  EXPECT_GE(report.seconds, 0.0);
}

TEST(Session, MoreRowsThanAdmittedIsRefused) {
  const auto d = vt::make_dataset(2000, 32);
  auto spec = vt::small_spec(32, 100);
  const auto r = vb::resolve_spec(spec, 2);
  // Room for about 200 rows: the 100 announced fit, 2000 do not.
  const std::uint64_t limit = vb::memory_need(r, 200);
  vt::FakeCall call(vt::full_script(spec, d, 100));
  const auto report = run(call, {1, 4, limit});
  EXPECT_EQ(report.status.code, vb::StatusCode::kResourceExhausted) << report.status.message;
  EXPECT_THAT(report.status.message, HasSubstr("grew"));
  // Refused after admission: a failure, not a rejection, though the code is the same.
  EXPECT_EQ(report.outcome, vb::BuildOutcome::kFailed);
  EXPECT_GT(report.receive_seconds, 0.0);
}

TEST(Session, WaitsInTheQueueAndRefusesWhenItIsFull) {
  const auto d = vt::make_dataset(500, 32);
  const auto spec = vt::small_spec(32, 500);
  vb::Scheduler scheduler({1, 1, 1ull << 30});
  vb::CpuBackend backend;
  const auto options = test_options();

  vt::FakeCall first(vt::full_script(spec, d));
  first.hold_at(2);  // holds the slot while receiving
  auto f1 = std::async(std::launch::async, [&] { return vb::run_build(first, scheduler, backend, options); });
  ASSERT_TRUE(first.wait_progress([](const auto& p) { return !p.empty(); }));
  while (first.consumed() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  vt::FakeCall second(vt::full_script(spec, d));
  auto f2 = std::async(std::launch::async, [&] { return vb::run_build(second, scheduler, backend, options); });
  // Waiting: phase 10 with done 0, repeated, and no vector read.
  ASSERT_TRUE(second.wait_progress([](const auto& p) { return p.size() >= 2; }));
  for (const auto& p : second.progress_messages()) {
    EXPECT_EQ(p.phase, vb::kPhaseReceive);
    EXPECT_EQ(p.done, 0u);
  }
  EXPECT_EQ(second.consumed(), 1u);
  EXPECT_EQ(scheduler.stats().queued, 1u);

  vt::FakeCall third(vt::full_script(spec, d));
  const auto r3 = vb::run_build(third, scheduler, backend, options);
  EXPECT_EQ(r3.status.code, vb::StatusCode::kResourceExhausted) << r3.status.message;
  EXPECT_EQ(r3.outcome, vb::BuildOutcome::kRejected);

  first.release();
  EXPECT_TRUE(f1.get().status.ok());
  const auto r2 = f2.get();
  EXPECT_TRUE(r2.status.ok()) << r2.status.message;
  EXPECT_GT(r2.queue_seconds, 0.0);  // it waited for the first build
  EXPECT_TRUE(vt::validate_index(second.all_pages(), 8192, d.tids).ok);
}

TEST(Session, CancelledWhileWaiting) {
  const auto d = vt::make_dataset(100, 32);
  const auto spec = vt::small_spec(32, 100);
  vb::Scheduler scheduler({1, 4, 1ull << 30});
  vb::CpuBackend backend;
  auto holder = scheduler.enqueue(1);  // occupies the only slot
  vt::FakeCall call(vt::full_script(spec, d));
  call.on_progress([&](const vb::ProgressMessage&) { call.cancel(vb::CancelReason::kClient); });
  const auto r = vb::run_build(call, scheduler, backend, test_options());
  EXPECT_EQ(r.status.code, vb::StatusCode::kCancelled) << r.status.message;
  EXPECT_EQ(scheduler.stats().queued, 0u);
  EXPECT_EQ(r.outcome, vb::BuildOutcome::kCancelled);
  EXPECT_GT(r.queue_seconds, 0.0);
  EXPECT_EQ(r.receive_seconds, 0.0);
}

TEST(Session, ShutdownWhileWaitingIsARejection) {
  vb::Scheduler scheduler({1, 4, 1ull << 30});
  vb::CpuBackend backend;
  auto holder = scheduler.enqueue(1);  // occupies the only slot
  vt::FakeCall call(vt::full_script(vt::small_spec(32, 100), vt::make_dataset(100, 32)));
  call.on_progress([&](const vb::ProgressMessage&) { scheduler.begin_shutdown(); });
  const auto r = vb::run_build(call, scheduler, backend, test_options());
  EXPECT_EQ(r.status.code, vb::StatusCode::kUnavailable) << r.status.message;
  EXPECT_EQ(r.outcome, vb::BuildOutcome::kRejected);
}

TEST(Session, CancelledMidBuild) {
  const auto d = vt::make_dataset(4000, 32);
  for (const auto reason : {vb::CancelReason::kClient, vb::CancelReason::kDeadline}) {
    vt::FakeCall call(vt::full_script(vt::small_spec(32, 4000), d));
    bool fired = false;
    call.on_progress([&](const vb::ProgressMessage& p) {
      if (!fired && p.phase == vs::vamana::kPhaseInsert && p.done > 0) {
        fired = true;
        call.cancel(reason);
      }
    });
    const auto t0 = std::chrono::steady_clock::now();
    const auto r = run(call);
    EXPECT_TRUE(fired);
    EXPECT_EQ(r.status.code,
              reason == vb::CancelReason::kClient ? vb::StatusCode::kCancelled : vb::StatusCode::kDeadlineExceeded)
        << r.status.message;
    EXPECT_TRUE(call.batches().empty());
    EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
    EXPECT_EQ(r.outcome, vb::BuildOutcome::kCancelled);
    EXPECT_GT(r.graph_seconds, 0.0);  // cancelled while inserting
    EXPECT_EQ(r.write_seconds, 0.0);
  }
}

TEST(Session, LogLine) {
  vb::BuildReport r;
  r.client = "pg pid 1 \"x\"";
  r.peer = "ipv4:127.0.0.1:5000";
  r.rows = 10;
  r.dims = 3;
  r.storage = "plain";
  r.backend = "cpu";
  r.pages = 4;
  r.bytes_received = 321;
  r.bytes_sent = 33000;
  r.seconds = 1.25;
  r.queue_seconds = 0.002;
  r.receive_seconds = 0.125;
  r.train_seconds = 0.25;
  r.graph_seconds = 0.5;
  r.write_seconds = 0.375;
  EXPECT_EQ(vb::format_build_log(r),
            "build client=\"pg pid 1 \\\"x\\\"\" peer=ipv4:127.0.0.1:5000 rows=10 dims=3 storage=plain backend=cpu "
            "pages=4 bytes_received=321 bytes_sent=33000 seconds=1.250 queue_s=0.002 receive_s=0.125 train_s=0.250 "
            "graph_s=0.500 write_s=0.375 result=ok");
  r.status = {vb::StatusCode::kInvalidArgument, "bad\nthing"};
  EXPECT_THAT(vb::format_build_log(r), HasSubstr("result=INVALID_ARGUMENT: bad\\x0athing"));
}

// --- failure points (only with -DVS_FAILURE_POINTS=ON) -------------------------------------

// Runs a 2000-row build with one fault.
vt::FakeCall* faulted_build(const char* fault, vb::BuildReport& report, std::unique_ptr<vt::FakeCall>& holder,
                            const vt::Dataset& d, bool labelled = false) {
  auto options = test_options();
  vb::add_fault(options.faults, fault);
  auto spec = vt::small_spec();
  spec.has_labels = labelled;
  spec.label_capacity = labelled ? 8 : 0;
  holder = std::make_unique<vt::FakeCall>(vt::full_script(spec, d));
  report = run(*holder, roomy(), options);
  return holder.get();
}

TEST(SessionFaults, PagesAndStatuses) {
  if (!vb::kFailurePointsCompiled) GTEST_SKIP() << "built without -DVS_FAILURE_POINTS=ON";
  const auto d = vt::make_dataset(2000, 32);
  vb::BuildReport r;
  std::unique_ptr<vt::FakeCall> holder;

  // corrupt-page: CRCs match, validation fails.
  auto* call = faulted_build("corrupt-page", r, holder, d);
  ASSERT_TRUE(r.status.ok());
  for (const auto& b : call->batches())
    for (std::size_t i = 0; i < b.count(); ++i) EXPECT_EQ(b.crc32c[i], vs::crc32c(b.page(i)));
  EXPECT_FALSE(vt::validate_index(call->all_pages(), 8192, d.tids).ok);

  // bad-crc: one stale CRC.
  call = faulted_build("bad-crc", r, holder, d);
  ASSERT_TRUE(r.status.ok());
  int mismatches = 0;
  for (const auto& b : call->batches())
    for (std::size_t i = 0; i < b.count(); ++i) mismatches += b.crc32c[i] != vs::crc32c(b.page(i)) ? 1 : 0;
  EXPECT_EQ(mismatches, 1);

  // wrong-tid: pages are sound, but one heap TID was never sent.
  call = faulted_build("wrong-tid", r, holder, d);
  ASSERT_TRUE(r.status.ok());
  const auto pages = call->all_pages();
  EXPECT_FALSE(vt::validate_index(pages, 8192, d.tids).ok);
  auto with_stranger = d.tids;  // the TID the builder made up: one block past the last sent
  with_stranger.push_back(vs::format::Tid{d.tids.back().block + 1, 1});
  const auto check = vt::validate_index(pages, 8192, with_stranger);
  EXPECT_TRUE(check.ok) << check.reason;

  // wrong-labels: pages are sound, but the first node carries a label (32767) no row has.
  const auto ld = vt::make_dataset(2000, 32, 7, true);
  call = faulted_build("wrong-labels", r, holder, ld, true);
  ASSERT_TRUE(r.status.ok());
  const auto labelled = call->all_pages();
  ASSERT_TRUE(vt::validate_index(labelled, 8192, ld.tids).ok);
  const auto meta = vs::format::decode_meta(labelled[0]);
  const auto layout = vs::format::NodeLayout::from_meta(meta, 8192);
  bool found = false;
  for (const auto& page : labelled)
    if (vs::format::is_node_page(page))
      for (std::uint16_t k = 1; k <= vs::format::node_page_count(page, layout); ++k) {
        const auto labels = vs::format::node_at(page, k, layout).labels();
        found = found || std::find(labels.begin(), labels.end(), std::int16_t{32767}) != labels.end();
      }
  EXPECT_TRUE(found) << "no node carries the made-up label";

  // truncate: OK, no Summary, about half the pages.
  call = faulted_build("truncate", r, holder, d);
  ASSERT_TRUE(r.status.ok());
  EXPECT_FALSE(call->summary_message().has_value());
  const auto full = vt::local_build(vt::small_spec(), d).size();
  EXPECT_LT(call->all_pages().size(), full);
  EXPECT_GE(call->all_pages().size(), full / 2 - 1);

  // fail=8: RESOURCE_EXHAUSTED right after the spec.
  call = faulted_build("fail=8", r, holder, d);
  EXPECT_EQ(r.status.code, vb::StatusCode::kResourceExhausted);
  EXPECT_EQ(call->consumed(), 1u);
}

TEST(SessionFaultsDeathTest, DieAfterPagesExitsWithCode3) {
  if (!vb::kFailurePointsCompiled) GTEST_SKIP() << "built without -DVS_FAILURE_POINTS=ON";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto d = vt::make_dataset(2000, 32);
  auto options = test_options();
  vb::add_fault(options.faults, "die-after-pages=2");
  options.page_batch_bytes = 8192;
  EXPECT_EXIT(
      {
        vt::FakeCall call(vt::full_script(vt::small_spec(), d));
        (void)run(call, roomy(), options);
      },
      ::testing::ExitedWithCode(3), "");
}

TEST(SessionFaults, SlowHonoursCancellation) {
  if (!vb::kFailurePointsCompiled) GTEST_SKIP() << "built without -DVS_FAILURE_POINTS=ON";
  const auto d = vt::make_dataset(100, 32);
  auto options = test_options();
  vb::add_fault(options.faults, "slow=30");
  vt::FakeCall call(vt::full_script(vt::small_spec(32, 100), d));
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    call.cancel(vb::CancelReason::kDeadline);
  });
  const auto t0 = std::chrono::steady_clock::now();
  const auto r = run(call, roomy(), options);
  canceller.join();
  EXPECT_EQ(r.status.code, vb::StatusCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 5.0);
}

}  // namespace
