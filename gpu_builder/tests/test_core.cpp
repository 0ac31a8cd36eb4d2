// The pure parts of gpu_builder's core: exception -> status mapping, spec validation,
// admission (slots, queue bound, memory), the bearer token and PEM files, fault parsing,
// outcomes and counters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <new>
#include <thread>

#include "builder_test_support.hpp"
#include "vectorscale/builder/admission.hpp"
#include "vectorscale/builder/auth.hpp"
#include "vectorscale/builder/faults.hpp"
#include "vectorscale/builder/metrics.hpp"
#include "vectorscale/builder/spec.hpp"
#include "vectorscale/builder/status.hpp"

namespace {

namespace vb = vs::builder;
using ::testing::HasSubstr;

// The status of throwing `e`.
template <class E>
vb::Status status_of(E e, vb::CancelReason reason = vb::CancelReason::kNone) {
  return vb::status_from_exception(std::make_exception_ptr(e), reason);
}

// --- exception -> status ----------------------------------------------------------------

TEST(StatusMapping, EngineErrorCodes) {
  EXPECT_EQ(status_of(vs::Error(vs::ErrorCode::kInvalidArgument, "bad R")).code, vb::StatusCode::kInvalidArgument);
  EXPECT_EQ(status_of(vs::Error(vs::ErrorCode::kInvalidArgument, "bad R")).message, "bad R");
  EXPECT_EQ(status_of(vs::Error(vs::ErrorCode::kOutOfMemory, "budget")).code, vb::StatusCode::kResourceExhausted);
  EXPECT_EQ(status_of(vs::Error(vs::ErrorCode::kUnsupported, "no")).code, vb::StatusCode::kUnimplemented);
  EXPECT_EQ(status_of(vs::Error(vs::ErrorCode::kInternal, "oops")).code, vb::StatusCode::kInternal);
  EXPECT_EQ(status_of(vs::Error(vs::ErrorCode::kInternal, "oops")).message, "oops");
  EXPECT_EQ(status_of(vs::Error(vs::ErrorCode::kCorrupt, "torn")).code, vb::StatusCode::kInternal);
}

TEST(StatusMapping, CancelledByReason) {
  EXPECT_EQ(status_of(vs::Cancelled(), vb::CancelReason::kClient).code, vb::StatusCode::kCancelled);
  EXPECT_EQ(status_of(vs::Cancelled(), vb::CancelReason::kNone).code, vb::StatusCode::kCancelled);
  EXPECT_EQ(status_of(vs::Cancelled(), vb::CancelReason::kDeadline).code, vb::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(status_of(vs::Cancelled(), vb::CancelReason::kShutdown).code, vb::StatusCode::kUnavailable);
  EXPECT_EQ(status_of(vs::Error(vs::ErrorCode::kCancelled, "x"), vb::CancelReason::kDeadline).code,
            vb::StatusCode::kDeadlineExceeded);
}

TEST(StatusMapping, StandardAndForeignExceptions) {
  EXPECT_EQ(status_of(std::bad_alloc()).code, vb::StatusCode::kResourceExhausted);
  const auto rt = status_of(std::runtime_error("disk on fire"));
  EXPECT_EQ(rt.code, vb::StatusCode::kInternal);
  EXPECT_EQ(rt.message, "disk on fire");
  EXPECT_EQ(status_of(42).code, vb::StatusCode::kInternal);
  EXPECT_EQ(status_of(vb::StatusError(vb::StatusCode::kUnauthenticated, "who")).code, vb::StatusCode::kUnauthenticated);
  EXPECT_TRUE(vb::status_from_exception(nullptr, vb::CancelReason::kNone).ok());
  EXPECT_STREQ(vb::status_code_name(vb::StatusCode::kResourceExhausted), "RESOURCE_EXHAUSTED");
}

// --- spec validation ---------------------------------------------------------------------

// The message resolve_spec throws for s, or "" when it accepts s.
std::string spec_error(const vb::BuildSpec& s) {
  try {
    (void)vb::resolve_spec(s, 4);
  } catch (const vs::Error& e) {
    EXPECT_EQ(e.code(), vs::ErrorCode::kInvalidArgument) << e.what();
    return e.what();
  }
  return {};
}

TEST(SpecValidation, AcceptsTheDefaultsAndDerivesParams) {
  auto s = vb::test::small_spec();
  s.threads = 0;
  s.seed = 0;
  const auto r = vb::resolve_spec(s, 4);
  EXPECT_EQ(r.params.build.threads, 4u);                           // the server's --threads
  EXPECT_EQ(r.params.build.seed, vs::vamana::BuildParams{}.seed);  // 0 = the engine default
  EXPECT_EQ(r.params.build.slack, vs::vamana::kDefaultSlack);
  EXPECT_EQ(r.params.build.num_neighbors, 16u);
  EXPECT_EQ(r.bits_per_dim, 2u);
  s.threads = 64;
  s.seed = 99;
  const auto r2 = vb::resolve_spec(s, 4);
  EXPECT_EQ(r2.params.build.threads, 4u);  // capped at the server's --threads
  EXPECT_EQ(r2.params.build.seed, 99u);
  s.bits_per_dim = 0;  // SBQ default rule: 2 below 900 dims
  EXPECT_EQ(vb::resolve_spec(s, 1).bits_per_dim, 2u);
}

TEST(SpecValidation, ClearMessages) {
  auto base = vb::test::small_spec();
  auto with = [&](auto&& edit) {
    auto s = base;
    edit(s);
    return spec_error(s);
  };
  EXPECT_THAT(with([](auto& s) { s.protocol_version = 2; }), HasSubstr("unsupported protocol_version 2"));
  EXPECT_THAT(with([](auto& s) { s.format_version = 7; }), HasSubstr("unsupported format_version 7"));
  EXPECT_THAT(with([](auto& s) { s.page_size = 8000; }), HasSubstr("page_size 8000 is not a power of two"));
  EXPECT_THAT(with([](auto& s) { s.page_size = 65536; }), HasSubstr("page_size 65536"));
  EXPECT_THAT(with([](auto& s) { s.metric = 0; }), HasSubstr("metric 0 is not"));
  EXPECT_THAT(with([](auto& s) {
                s.column_dims = 16001;
                s.indexed_dims = 16001;
              }),
              HasSubstr("column_dims 16001 is not between 1 and 16000"));
  EXPECT_THAT(with([](auto& s) { s.indexed_dims = 0; }), HasSubstr("indexed_dims 0"));
  EXPECT_THAT(with([](auto& s) { s.indexed_dims = 33; }),
              HasSubstr("indexed_dims 33 is not between 1 and column_dims 32"));
  EXPECT_THAT(with([](auto& s) { s.storage = 3; }), HasSubstr("storage 3"));
  EXPECT_THAT(with([](auto& s) { s.num_neighbors = 9; }), HasSubstr("num_neighbors 9 is not between 10 and 1000"));
  EXPECT_THAT(with([](auto& s) { s.num_neighbors = 1001; }), HasSubstr("num_neighbors 1001"));
  EXPECT_THAT(with([](auto& s) { s.search_list_size = 0; }), HasSubstr("search_list_size must be at least 1"));
  EXPECT_THAT(with([](auto& s) { s.max_alpha = 0.5f; }), HasSubstr("max_alpha 0.5 is not between 1 and 5"));
  EXPECT_THAT(with([](auto& s) { s.max_alpha = 5.5f; }), HasSubstr("max_alpha"));
  EXPECT_THAT(with([](auto& s) { s.bits_per_dim = 9; }), HasSubstr("bits_per_dim 9 is not between 1 and 8"));
  EXPECT_THAT(with([](auto& s) {
                s.storage = 2;
                s.metric = 3;
                s.bits_per_dim = 0;
              }),
              HasSubstr("inner product distance is not supported with storage_layout plain"));
  EXPECT_THAT(with([](auto& s) { s.storage = 2; }),
              HasSubstr("num_bits_per_dimension > 1 requires storage_layout memory_optimized"));
  EXPECT_THAT(with([](auto& s) {
                s.storage = 2;
                s.bits_per_dim = 0;
                s.has_labels = true;
              }),
              HasSubstr("labels require storage_layout memory_optimized"));
  EXPECT_THAT(with([](auto& s) { s.label_capacity = 8; }), HasSubstr("label_capacity 8 without has_labels"));
  EXPECT_THAT(with([](auto& s) {
                s.has_labels = true;
                s.label_capacity = 70000;
              }),
              HasSubstr("label_capacity 70000 does not fit"));
  EXPECT_THAT(with([](auto& s) {
                s.has_labels = true;
                s.label_capacity = 4096;
              }),
              HasSubstr("does not fit"));
  // A plain record of 4000 floats cannot fit an 8 KiB page.
  EXPECT_THAT(with([](auto& s) {
                s.storage = 2;
                s.bits_per_dim = 0;
                s.column_dims = s.indexed_dims = 4000;
              }),
              HasSubstr("does not fit"));
  EXPECT_EQ(with([](auto& s) {
              s.storage = 2;
              s.bits_per_dim = 0;
            }),
            "");
}

TEST(SpecValidation, BuilderIdFitsTheMetaPage) {
  EXPECT_EQ(vb::make_builder_id("0.1.0", "host"), "gpu_builder 0.1.0 host");
  const auto long_id = vb::make_builder_id("0.1.0", std::string(200, 'h'));
  EXPECT_EQ(long_id.size(), vs::format::kBuilderIdSize - 1);
}

TEST(SpecValidation, MemoryNeedGrowsWithRows) {
  const auto r = vb::resolve_spec(vb::test::small_spec(), 1);
  EXPECT_LT(vb::memory_need(r, 1000), vb::memory_need(r, 2000));
  EXPECT_GE(vb::memory_need(r, 2000),
            vs::vamana::estimate_build_memory(2000, 32, r.params.build, r.bits_per_dim).total());
}

// --- admission -----------------------------------------------------------------------------

TEST(Admission, RunsAtOnceWhenFree) {
  vb::Scheduler s({2, 4, 1000});
  auto a = s.enqueue(400);
  auto b = s.enqueue(400);
  EXPECT_TRUE(a.running());
  EXPECT_TRUE(b.running());
  EXPECT_EQ(s.stats().running, 2u);
  EXPECT_EQ(s.stats().held_bytes, 800u);
  a.release();
  EXPECT_EQ(s.stats().running, 1u);
  EXPECT_EQ(s.stats().held_bytes, 400u);
}

TEST(Admission, RefusesWhatCanNeverFit) {
  vb::Scheduler s({1, 4, 1000});
  try {
    (void)s.enqueue(1001);
    FAIL() << "admitted";
  } catch (const vb::StatusError& e) {
    EXPECT_EQ(e.code(), vb::StatusCode::kResourceExhausted);
    EXPECT_THAT(e.what(), HasSubstr("--max-memory"));
  }
  EXPECT_EQ(s.stats().running, 0u);
}

TEST(Admission, QueueIsBoundedAndFifo) {
  vb::Scheduler s({1, 2, 1000});
  auto a = s.enqueue(10);
  auto b = s.enqueue(10);
  auto c = s.enqueue(10);
  EXPECT_TRUE(a.running());
  EXPECT_FALSE(b.running());
  EXPECT_FALSE(c.running());
  EXPECT_EQ(s.stats().queued, 2u);
  try {
    (void)s.enqueue(10);
    FAIL() << "a third waiting build was admitted";
  } catch (const vb::StatusError& e) {
    EXPECT_EQ(e.code(), vb::StatusCode::kResourceExhausted);
    EXPECT_THAT(e.what(), HasSubstr("--max-queued-builds 2"));
  }
  a.release();  // b is next, then c
  EXPECT_TRUE(b.running());
  EXPECT_FALSE(c.running());
  b.release();
  EXPECT_TRUE(c.running());
}

TEST(Admission, WaitsForMemoryHeldByRunningBuilds) {
  vb::Scheduler s({2, 4, 1000});
  auto a = s.enqueue(700);
  auto b = s.enqueue(700);  // a slot is free, the memory is not
  EXPECT_TRUE(a.running());
  EXPECT_FALSE(b.running());
  std::atomic<bool> ran{false};
  std::thread t([&] {
    b.wait({}, {}, std::chrono::milliseconds(5));
    ran = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  EXPECT_FALSE(ran.load());
  a.release();
  t.join();
  EXPECT_TRUE(ran.load());
  EXPECT_EQ(s.stats().held_bytes, 700u);
}

TEST(Admission, GrowthBeyondTheLimitIsRefused) {
  vb::Scheduler s({2, 4, 1000});
  auto a = s.enqueue(300);
  auto b = s.enqueue(300);
  b.grow(600);  // 300 + 600 fits
  EXPECT_EQ(s.stats().held_bytes, 900u);
  try {
    b.grow(800);
    FAIL() << "grew past the limit";
  } catch (const vb::StatusError& e) {
    EXPECT_EQ(e.code(), vb::StatusCode::kResourceExhausted);
  }
  EXPECT_EQ(b.bytes(), 600u);
  b.grow(100);  // never shrinks
  EXPECT_EQ(b.bytes(), 600u);
}

TEST(Admission, CancelAndShutdownWhileWaiting) {
  vb::Scheduler s({1, 4, 1000});
  auto a = s.enqueue(10);
  auto b = s.enqueue(10);
  int ticks = 0;
  EXPECT_THROW(b.wait([&] { return ticks >= 2; }, [&] { ++ticks; }, std::chrono::milliseconds(1)), vs::Cancelled);
  b.release();
  EXPECT_EQ(s.stats().queued, 0u);
  auto c = s.enqueue(10);
  std::thread t([&] { s.begin_shutdown(); });
  try {
    c.wait({}, {}, std::chrono::milliseconds(1));
    FAIL() << "a waiting build ran during shutdown";
  } catch (const vb::StatusError& e) {
    EXPECT_EQ(e.code(), vb::StatusCode::kUnavailable);
  }
  t.join();
  EXPECT_TRUE(a.running());  // running builds go on
  EXPECT_THROW((void)s.enqueue(1), vb::StatusError);
}

// --- bearer token ----------------------------------------------------------------------------

TEST(BearerToken, ExactMatchOnly) {
  EXPECT_TRUE(vb::bearer_token_matches("Bearer s3cret", "s3cret"));
  EXPECT_FALSE(vb::bearer_token_matches("Bearer s3creT", "s3cret"));
  EXPECT_FALSE(vb::bearer_token_matches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(vb::bearer_token_matches("Bearer s3crets", "s3cret"));
  EXPECT_FALSE(vb::bearer_token_matches("bearer s3cret", "s3cret"));
  EXPECT_FALSE(vb::bearer_token_matches("s3cret", "s3cret"));
  EXPECT_FALSE(vb::bearer_token_matches("", "s3cret"));
  EXPECT_FALSE(vb::bearer_token_matches("Bearer ", ""));
}

TEST(BearerToken, FileIsStrippedOfTrailingWhitespace) {
  const std::string path = ::testing::TempDir() + "/vs_builder_token";
  { std::ofstream(path) << "tok en\n \t\r\n"; }
  EXPECT_EQ(vb::read_token_file(path), "tok en");
  { std::ofstream(path) << " \n"; }
  EXPECT_THROW((void)vb::read_token_file(path), vs::Error);
  EXPECT_THROW((void)vb::read_token_file(path + ".missing"), vs::Error);
}

TEST(PemFile, ReadWholeOrRefusedNamingTheFlag) {
  const std::string path = ::testing::TempDir() + "/vs_builder_pem";
  { std::ofstream(path) << "-----BEGIN X-----\nabc\n"; }
  EXPECT_EQ(vb::read_pem_file(path, "--tls-ca"), "-----BEGIN X-----\nabc\n");
  { std::ofstream(path) << ""; }
  EXPECT_THROW((void)vb::read_pem_file(path, "--tls-ca"), vs::Error);
  { std::ofstream(path) << "not a certificate\n"; }
  try {
    (void)vb::read_pem_file(path, "--tls-ca");
    ADD_FAILURE() << "no error";
  } catch (const vs::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("is not PEM"));
  }
  try {
    (void)vb::read_pem_file(path + ".missing", "--tls-ca");
    ADD_FAILURE() << "no error";
  } catch (const vs::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot read --tls-ca file"));
  }
}

// --- fault parsing ----------------------------------------------------------------------------

TEST(Faults, Parse) {
  vb::FaultPlan p;
  EXPECT_FALSE(p.any());
  vb::add_fault(p, "corrupt-page");
  vb::add_fault(p, "slow=1.5");
  vb::add_fault(p, "die-after-pages=3");
  vb::add_fault(p, "fail=14");
  EXPECT_TRUE(p.corrupt_page);
  EXPECT_DOUBLE_EQ(p.slow_seconds, 1.5);
  EXPECT_EQ(*p.die_after_pages, 3u);
  EXPECT_EQ(*p.fail_status, 14);
  EXPECT_TRUE(p.any());
  EXPECT_THROW(vb::add_fault(p, "fail=0"), vs::Error);
  EXPECT_THROW(vb::add_fault(p, "fail=17"), vs::Error);
  EXPECT_THROW(vb::add_fault(p, "slow=abc"), vs::Error);
  EXPECT_THROW(vb::add_fault(p, "truncate=1"), vs::Error);
  EXPECT_THROW(vb::add_fault(p, "explode"), vs::Error);
}

// --- outcomes and counters --------------------------------------------------------------------

TEST(Metrics, OutcomeOfEveryStatus) {
  using O = vb::BuildOutcome;
  using C = vb::StatusCode;
  const auto of = [](C c, bool admitted) { return vb::classify_outcome({c, "x"}, admitted); };
  EXPECT_EQ(of(C::kOk, true), O::kSucceeded);
  EXPECT_EQ(of(C::kCancelled, false), O::kCancelled);
  EXPECT_EQ(of(C::kCancelled, true), O::kCancelled);
  EXPECT_EQ(of(C::kDeadlineExceeded, true), O::kCancelled);
  // Refused at admission (memory, queue, shutdown) versus the same codes once running.
  EXPECT_EQ(of(C::kResourceExhausted, false), O::kRejected);
  EXPECT_EQ(of(C::kUnavailable, false), O::kRejected);
  EXPECT_EQ(of(C::kResourceExhausted, true), O::kFailed);
  EXPECT_EQ(of(C::kUnavailable, true), O::kFailed);
  EXPECT_EQ(of(C::kInvalidArgument, false), O::kFailed);
  EXPECT_EQ(of(C::kInternal, true), O::kFailed);
  EXPECT_EQ(of(C::kUnimplemented, false), O::kFailed);
}

TEST(Metrics, CountsFromManyThreads) {
  vb::BuilderMetrics m;
  auto s = m.snapshot();
  EXPECT_EQ(s.builds_started, 0u);
  EXPECT_EQ(s.bytes_sent, 0u);
  EXPECT_GE(s.uptime_seconds, 0.0);
  constexpr int kThreads = 4, kBuilds = 1000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&m, t] {
      for (int i = 0; i < kBuilds; ++i) {
        m.build_started();
        m.received(10, 100);
        m.received(0, 7);  // a message without vectors
        m.sent(3, 1000);
        m.build_ended(static_cast<vb::BuildOutcome>((t + i) % 4));
        // Never more ended than started, whatever the interleaving.
        const auto snap = m.snapshot();
        if (snap.builds_succeeded + snap.builds_failed + snap.builds_cancelled + snap.builds_rejected >
            snap.builds_started)
          ADD_FAILURE() << "ended builds exceed started ones";
      }
    });
  for (auto& t : threads) t.join();
  m.build_started();  // one still running
  m.unauthenticated();
  s = m.snapshot();
  constexpr std::uint64_t kAll = kThreads * kBuilds;
  EXPECT_EQ(s.builds_started, kAll + 1);
  EXPECT_EQ(s.builds_succeeded, kAll / 4);
  EXPECT_EQ(s.builds_failed, kAll / 4);
  EXPECT_EQ(s.builds_cancelled, kAll / 4);
  EXPECT_EQ(s.builds_rejected, kAll / 4);
  EXPECT_EQ(s.builds_active, 1u);
  EXPECT_EQ(s.unauthenticated_calls, 1u);
  EXPECT_EQ(s.vectors_received, kAll * 10);
  EXPECT_EQ(s.bytes_received, kAll * 107);
  EXPECT_EQ(s.pages_sent, kAll * 3);
  EXPECT_EQ(s.bytes_sent, kAll * 1000);
}

}  // namespace
