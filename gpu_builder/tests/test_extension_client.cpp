// The extension's builder client (extension/src/client, PostgreSQL-free) against an in-process
// gpu_builder: a full build, every failure surfacing as a RemoteError (never std::terminate),
// cancellation, a bounded connect timeout, and fleet targets (round robin, dead addresses and
// builders whose health service says NOT_SERVING skipped).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "builder_test_support.hpp"
#include "client/builder_client.hpp"
#include "server.hpp"

// After the core headers, which refuse to follow gRPC's.
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

namespace {

namespace vb = vs::builder;
namespace vt = vs::builder::test;
using vs::client::RemoteBuild;
using vs::client::RemoteError;
using vs::client::RemoteEvent;

// The builder's per-build log lines, collected from its threads.
struct BuildLog {
  std::mutex mu;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& line) {
      std::lock_guard lock(mu);
      lines.push_back(line);
    };
  }
  // The first line containing `what`, waiting up to 10 s for it (a build logs as it ends).
  std::string find(const std::string& what) {
    for (int i = 0; i < 1000; ++i) {
      {
        std::lock_guard lock(mu);
        for (const auto& l : lines)
          if (l.find(what) != std::string::npos) return l;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return "";
  }
};

std::unique_ptr<vb::Server> start_server(const std::string& token = "", const std::string& listen = "127.0.0.1:0",
                                         BuildLog* log = nullptr) {
  vb::ServerOptions o;
  o.listen = listen;
  o.backend = "cpu";  // the expectations are the CPU backend's, also where a GPU exists
  o.threads = 2;
  o.max_memory = 1ull << 30;
  o.log = log != nullptr ? log->sink() : [](const std::string&) {};
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

vs::client::BuilderSettings settings_for(const std::string& target, const std::string& token_file = "") {
  vs::client::BuilderSettings st;
  st.endpoint = target;
  st.token_file = token_file;
  st.timeout = std::chrono::seconds(60);
  st.connect_timeout = std::chrono::seconds(5);
  return st;
}

// Sends every row and collects the pages; returns the number of pages (and the builder's address).
std::size_t run(RemoteBuild& rb, const vt::Dataset& d, std::string* peer = nullptr) {
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
      EXPECT_EQ(ev.backend, "cpu");  // as diskann_index_info names it
      if (peer != nullptr) *peer = ev.peer;
    }
  }
  EXPECT_TRUE(summary);
  return pages;
}

TEST(ExtensionClient, FullBuild) {
  auto server = start_server();
  const auto spec = vt::small_spec();
  const auto d = vt::make_dataset(2000, spec.indexed_dims);
  RemoteBuild rb(settings_for(server->address()), remote_spec(spec));
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
      RemoteBuild rb(settings_for(server->address(), wrong), remote_spec(spec));
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
    RemoteBuild rb(settings_for(server->address()), remote_spec(spec));
    run(rb, vt::make_dataset(10, spec.indexed_dims));
    FAIL() << "R = 5 must be refused";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.code(), 3) << e.what();  // INVALID_ARGUMENT
  }
}

TEST(ExtensionClient, CaFileThatIsNotPemIsRefusedUpFront) {
  const std::string path = ::testing::TempDir() + "/vs_client_not_pem";
  { std::ofstream(path) << "not a certificate\n"; }
  vs::client::BuilderSettings st;
  st.endpoint = "127.0.0.1:1";
  st.tls_ca_file = path;
  try {
    RemoteBuild rb(st, remote_spec(vt::small_spec()));
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_NE(std::string(e.what()).find("holds no PEM certificate"), std::string::npos) << e.what();
  }
}

TEST(ExtensionClient, ConnectTimesOutAndCanBeInterrupted) {
  vs::client::BuilderSettings st;
  st.endpoint = "127.0.0.1:1";
  st.connect_timeout = std::chrono::seconds(1);
  const auto spec = vt::small_spec();
  auto t0 = std::chrono::steady_clock::now();
  try {
    RemoteBuild rb(st, remote_spec(spec));
    FAIL();
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.code(), 4) << e.what();  // DEADLINE_EXCEEDED: every address was tried, no retry
    EXPECT_FALSE(e.builder_went_away());
  }
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
  RemoteBuild rb(settings_for(server->address()), remote_spec(spec));
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

// Rows of 256 floats: 1,023 to a 1 MiB batch, so these uploads are several batches, which the
// client's writer thread sends while more rows are added.
constexpr std::uint32_t kWideDims = 256;

TEST(ExtensionClient, ManyBatchesArriveInOrder) {
  BuildLog log;
  auto server = start_server("", "127.0.0.1:0", &log);
  const auto spec = vt::small_spec(kWideDims, 6000);
  const auto d = vt::make_dataset(6000, kWideDims);
  RemoteBuild rb(settings_for(server->address()), remote_spec(spec));
  EXPECT_GT(run(rb, d), 2u);  // the summary's node count is checked there
  const std::string line = log.find("result=");
  EXPECT_NE(line.find("rows=6000 "), std::string::npos) << line;
  EXPECT_NE(line.find("result=ok"), std::string::npos) << line;
}

// The builder refuses a batch (a NaN in its third batch) while the client is still sending:
// the builder's status comes back, from add() or finish(), as a RemoteError not worth a retry.
TEST(ExtensionClient, BatchRefusedMidUploadIsTheBuildersError) {
  auto server = start_server();
  const auto spec = vt::small_spec(kWideDims, 12000);
  auto d = vt::make_dataset(12000, kWideDims);
  d.vectors[2500 * kWideDims + 7] = std::numeric_limits<float>::quiet_NaN();
  RemoteBuild rb(settings_for(server->address()), remote_spec(spec));
  try {
    run(rb, d);
    ADD_FAILURE() << "the build must fail";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.code(), 3) << e.what();  // INVALID_ARGUMENT
    EXPECT_NE(std::string(e.what()).find("row 2500: dimension 7 is not a finite number"), std::string::npos)
        << e.what();
    EXPECT_FALSE(e.builder_went_away());
  }
}

// A scan that stops half way (an error in the backend) drops the build with batches still queued:
// the destructor cancels the call at once, and the builder is free for the next build.
TEST(ExtensionClient, AbandonedUploadIsCancelled) {
  BuildLog log;
  auto server = start_server("", "127.0.0.1:0", &log);
  const auto spec = vt::small_spec(kWideDims, 8000);
  const auto d = vt::make_dataset(8000, kWideDims);
  const auto started = std::chrono::steady_clock::now();
  {
    RemoteBuild rb(settings_for(server->address()), remote_spec(spec));
    for (std::size_t i = 0; i < 5000; ++i) rb.add(&d.vectors[i * d.dims], d.tids[i].key());
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  EXPECT_NE(log.find("result=CANCELLED"), "");
  const auto small = vt::make_dataset(300, kWideDims);
  RemoteBuild next(settings_for(server->address()), remote_spec(vt::small_spec(kWideDims, 300)));
  EXPECT_GT(run(next, small), 2u);
}

// Builds one small index through target; returns the builder's address (gRPC's "ipv4:..." name).
std::string build_through(const std::string& target) {
  const auto spec = vt::small_spec();
  const auto d = vt::make_dataset(300, spec.indexed_dims);
  RemoteBuild rb(settings_for(target), remote_spec(spec));
  std::string peer;
  EXPECT_GT(run(rb, d, &peer), 2u);
  return peer;
}

TEST(ExtensionClient, RoundRobinOverAFleet) {
  auto a = start_server();
  auto b = start_server();
  const std::string target = "ipv4:" + a->address() + "," + b->address();
  std::map<std::string, int> builds;
  std::string last;
  for (int i = 0; i < 6; ++i) {
    const std::string peer = build_through(target);
    // The channel is kept between builds, so once both builders are connected the calls alternate.
    if (i >= 2) {
      EXPECT_NE(peer, last) << "build " << i;
    }
    last = peer;
    ++builds[peer];
  }
  EXPECT_EQ(builds.size(), 2u);
  EXPECT_EQ(builds["ipv4:" + a->address()] + builds["ipv4:" + b->address()], 6);
}

TEST(ExtensionClient, DeadAddressOfAFleetIsSkipped) {
  auto a = start_server();
  const std::string target = "ipv4:127.0.0.1:1," + a->address();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(build_through(target), "ipv4:" + a->address());
}

TEST(ExtensionClient, BuilderStoppingMidBuildWentAway) {
  auto server = start_server();
  const auto spec = vt::small_spec();
  const auto d = vt::make_dataset(500, spec.indexed_dims);
  RemoteBuild rb(settings_for(server->address()), remote_spec(spec));
  for (std::size_t i = 0; i < 100; ++i) rb.add(&d.vectors[i * d.dims], d.tids[i].key());
  // A stop with no grace ends the build (UNAVAILABLE, or CANCELLED when the call reaches the
  // server as its shutdown begins): worth a retry on another builder.
  std::thread stop([&] { server->stop(std::chrono::milliseconds(0)); });
  try {
    for (std::size_t i = 100; i < d.n; ++i) rb.add(&d.vectors[i * d.dims], d.tids[i].key());
    rb.finish();
    for (;;)
      if (rb.poll(std::chrono::milliseconds(100)).kind == RemoteEvent::kDone) break;
    ADD_FAILURE() << "the build must fail";
  } catch (const RemoteError& e) {
    EXPECT_TRUE(e.builder_went_away()) << e.what();
  }
  stop.join();
}

// A builder restarted after an outage gets the next build at once: the channel kept between
// builds does not wait out its reconnect backoff (1 s, then 1.6 times longer each time, up to 2 min).
TEST(ExtensionClient, RestartedBuilderIsUsedAtOnce) {
  auto a = start_server();
  const std::string address = a->address();
  EXPECT_EQ(build_through(address), "ipv4:" + address);
  a->stop(std::chrono::milliseconds(0));
  a.reset();
  // Reconnects fail meanwhile; without a reset, the restarted builder would be found ~2 s late.
  std::this_thread::sleep_for(std::chrono::seconds(6));
  auto again = start_server("", address);
  const auto spec = vt::small_spec();
  auto st = settings_for(again->address());
  st.connect_timeout = std::chrono::seconds(1);
  RemoteBuild rb(st, remote_spec(spec));
  EXPECT_GT(run(rb, vt::make_dataset(300, spec.indexed_dims)), 2u);
}

// A server with only the standard health service (and no Builder service).
struct HealthOnlyServer {
  grpc::CallbackGenericService generic;  // a server needs one service to start
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  HealthOnlyServer() {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterCallbackGenericService(&generic);
    server = builder.BuildAndStart();
  }
  ~HealthOnlyServer() { server->Shutdown(std::chrono::system_clock::now()); }
  void serving(bool on) { server->GetHealthCheckService()->SetServingStatus(on); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

// Client-side health checking is on: a builder that is up but NOT_SERVING gets no build.
TEST(ExtensionClient, NotServingBuilderIsSkipped) {
  HealthOnlyServer h;
  ASSERT_NE(h.server, nullptr);
  ASSERT_NE(h.server->GetHealthCheckService(), nullptr);
  h.serving(false);
  auto a = start_server();
  // Without health checking, round robin would send every other build to h (UNIMPLEMENTED).
  const std::string target = "ipv4:" + h.address() + "," + a->address();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(build_through(target), "ipv4:" + a->address());

  // Alone, it is never ready: the connect timeout passes.
  vs::client::BuilderSettings st = settings_for(h.address());
  st.connect_timeout = std::chrono::seconds(1);
  const auto spec = vt::small_spec();
  try {
    RemoteBuild rb(st, remote_spec(spec));
    ADD_FAILURE() << "connected to a NOT_SERVING server";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.code(), 4) << e.what();
  }
  // Once SERVING it connects (and, having no Builder service, answers UNIMPLEMENTED).
  h.serving(true);
  st.connect_timeout = std::chrono::seconds(5);
  try {
    RemoteBuild rb(st, remote_spec(spec));
    run(rb, vt::make_dataset(10, spec.indexed_dims));
    ADD_FAILURE() << "a server without the Builder service cannot build";
  } catch (const RemoteError& e) {
    EXPECT_EQ(e.code(), 12) << e.what();  // UNIMPLEMENTED
  }
}

// Drops the channel the builds share before exit, as the extension does at backend exit.
class ReleaseChannel : public ::testing::Environment {
 public:
  void TearDown() override { vs::client::release_channel(); }
};
const auto* const kReleaseChannel = ::testing::AddGlobalTestEnvironment(new ReleaseChannel);

}  // namespace
