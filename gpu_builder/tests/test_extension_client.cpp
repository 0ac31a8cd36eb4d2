// The extension's builder client (extension/src/client, PostgreSQL-free) against an in-process
// gpu_builder: a full build, every failure surfacing as a RemoteError (never std::terminate),
// cancellation, and a bounded connect timeout.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <optional>

#include "builder_test_support.hpp"
#include "client/builder_client.hpp"
#include "server.hpp"

namespace {

namespace vb = vs::builder;
namespace vt = vs::builder::test;
using vs::client::RemoteBuild;
using vs::client::RemoteError;
using vs::client::RemoteEvent;

std::unique_ptr<vb::Server> start_server(const std::string& token = "") {
  vb::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 2;
  o.max_memory = 1ull << 30;
  o.log = [](const std::string&) {};
  if (!token.empty()) {
    o.token_file = ::testing::TempDir() + "/vs_client_token";
    std::ofstream(o.token_file) << token << "\n";
  }
  auto s = vb::Server::create(o);
  s->start();
  return s;
}

vs::client::RemoteSpec remote_spec(const vb::BuildSpec& s) {
  vs::client::RemoteSpec r;
  r.page_size = s.page_size;
  r.metric = s.metric;
  r.column_dims = s.column_dims;
  r.indexed_dims = s.indexed_dims;
  r.storage = s.storage;
  r.bits_per_dim = s.bits_per_dim;
  r.num_neighbors = s.num_neighbors;
  r.search_list_size = s.search_list_size;
  r.max_alpha = s.max_alpha;
  r.expected_rows = s.expected_rows;
  r.threads = s.threads;
  r.client = "client unit test";
  return r;
}

vs::client::BuilderSettings settings_for(const vb::Server& server, const std::string& token_file = "") {
  vs::client::BuilderSettings st;
  st.endpoint = server.address();
  st.token_file = token_file;
  st.timeout = std::chrono::seconds(60);
  st.connect_timeout = std::chrono::seconds(5);
  return st;
}

// Sends every row and collects the pages; returns the number of pages.
std::size_t run(RemoteBuild& rb, const vt::Dataset& d) {
  for (std::size_t i = 0; i < d.n; ++i) rb.add(&d.vectors[i * d.dims], d.tids[i].key());
  rb.finish();
  std::size_t pages = 0;
  bool summary = false;
  for (;;) {
    RemoteEvent ev = rb.poll(std::chrono::milliseconds(100));
    if (ev.kind == RemoteEvent::kDone) break;
    if (ev.kind == RemoteEvent::kPages) {
      EXPECT_EQ(ev.first_block, pages);
      for (std::size_t i = 0; i < ev.pages.size(); ++i)
        EXPECT_EQ(vs::crc32c({reinterpret_cast<const std::byte*>(ev.pages[i].data()), ev.pages[i].size()}),
                  ev.crc32c[i]);
      pages += ev.pages.size();
    }
    if (ev.kind == RemoteEvent::kSummary) {
      summary = true;
      EXPECT_EQ(ev.nodes, d.n);
      EXPECT_EQ(ev.total_pages, pages);
    }
  }
  EXPECT_TRUE(summary);
  return pages;
}

TEST(ExtensionClient, FullBuild) {
  auto server = start_server();
  const auto spec = vt::small_spec();
  const auto d = vt::make_dataset(2000, spec.indexed_dims);
  RemoteBuild rb(settings_for(*server), remote_spec(spec));
  EXPECT_GT(run(rb, d), 2u);
  EXPECT_EQ(rb.rows(), d.n);
}

TEST(ExtensionClient, WrongTokenIsARemoteErrorNotACrash) {
  auto server = start_server("right");
  const auto spec = vt::small_spec();
  const auto d = vt::make_dataset(500, spec.indexed_dims);
  const std::string wrong = ::testing::TempDir() + "/vs_client_wrong";
  std::ofstream(wrong) << "wrong\n";
  // The rejection may arrive while the spec is written (constructor) or later; every time.
  for (int i = 0; i < 20; ++i) {
    try {
      RemoteBuild rb(settings_for(*server, wrong), remote_spec(spec));
      run(rb, d);
      FAIL() << "a wrong token must fail";
    } catch (const RemoteError& e) {
      EXPECT_EQ(e.code(), 16) << e.what();  // UNAUTHENTICATED
      EXPECT_NE(std::string(e.what()).find("UNAUTHENTICATED"), std::string::npos);
    }
  }
}

TEST(ExtensionClient, InvalidSpecIsARemoteError) {
  auto server = start_server();
  auto spec = vt::small_spec();
  spec.num_neighbors = 5;
  try {
    RemoteBuild rb(settings_for(*server), remote_spec(spec));
    run(rb, vt::make_dataset(10, spec.indexed_dims));
    FAIL() << "R = 5 must be refused";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.code(), 3) << e.what();  // INVALID_ARGUMENT
  }
}

TEST(ExtensionClient, ConnectTimesOutAndCanBeInterrupted) {
  vs::client::BuilderSettings st;
  st.endpoint = "127.0.0.1:1";
  st.connect_timeout = std::chrono::seconds(1);
  const auto spec = vt::small_spec();
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(RemoteBuild(st, remote_spec(spec)), RemoteError);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  st.connect_timeout = std::chrono::seconds(30);
  st.interrupted = [] { return true; };
  t0 = std::chrono::steady_clock::now();
  try {
    RemoteBuild rb(st, remote_spec(spec));
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.code(), 1);  // CANCELLED
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
}

TEST(ExtensionClient, CancelEndsTheStream) {
  auto server = start_server();
  const auto spec = vt::small_spec();
  const auto d = vt::make_dataset(2000, spec.indexed_dims);
  RemoteBuild rb(settings_for(*server), remote_spec(spec));
  for (std::size_t i = 0; i < 100; ++i) rb.add(&d.vectors[i * d.dims], d.tids[i].key());
  rb.cancel();
  EXPECT_THROW(
      {
        rb.finish();
        for (;;)
          if (rb.poll(std::chrono::milliseconds(100)).kind == RemoteEvent::kDone) break;
      },
      RemoteError);
}

}  // namespace
