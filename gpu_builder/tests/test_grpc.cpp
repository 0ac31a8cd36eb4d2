// The service over real gRPC: an in-process server on 127.0.0.1:0 and a client stub. One
// small build checked with IndexValidator, the bearer token, the health service, client
// cancellation and a graceful stop with a build in flight.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "builder_test_support.hpp"
#include "server.hpp"

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <vectorscale/builder/v1/builder.grpc.pb.h>

namespace {

namespace vb = vs::builder;
namespace vt = vs::builder::test;
namespace pb = vectorscale::builder::v1;
using ::testing::HasSubstr;

// A server on a free loopback port whose log lines are kept.
class GrpcServer : public ::testing::Test {
 protected:
  // Starts the server with `token` (empty = none) and options changed by `edit`.
  void start(const std::string& token = "", const std::function<void(vb::ServerOptions&)>& edit = {}) {
    vb::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.threads = 2;
    o.max_memory = 1ull << 30;
    o.log = [this](const std::string& line) {
      std::lock_guard lock(mu_);
      log_.push_back(line);
    };
    if (!token.empty()) {
      o.token_file = ::testing::TempDir() + "/vs_grpc_token";
      std::ofstream(o.token_file) << token << "\n";
    }
    if (edit) edit(o);
    server_ = vb::Server::create(o);
    server_->start();
    ASSERT_GT(server_->port(), 0);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = pb::Builder::NewStub(channel_);
  }

  // The log lines so far.
  std::vector<std::string> log() {
    std::lock_guard lock(mu_);
    return log_;
  }
  // Waits until a log line contains `what`.
  bool wait_log(const std::string& what, std::chrono::seconds timeout = std::chrono::seconds(10)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      for (const auto& l : log())
        if (l.find(what) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::mutex mu_;
  std::vector<std::string> log_;
  std::unique_ptr<vb::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::Builder::Stub> stub_;
};

// The protocol's BuildSpec of a core spec.
pb::BuildRequest spec_request(const vb::BuildSpec& s) {
  pb::BuildRequest r;
  auto* m = r.mutable_spec();
  m->set_protocol_version(s.protocol_version);
  m->set_format_version(s.format_version);
  m->set_page_size(s.page_size);
  m->set_metric(static_cast<pb::Metric>(s.metric));
  m->set_column_dims(s.column_dims);
  m->set_indexed_dims(s.indexed_dims);
  m->set_storage(static_cast<pb::StorageLayout>(s.storage));
  m->set_bits_per_dim(s.bits_per_dim);
  m->set_num_neighbors(s.num_neighbors);
  m->set_search_list_size(s.search_list_size);
  m->set_max_alpha(s.max_alpha);
  m->set_expected_rows(s.expected_rows);
  m->set_threads(s.threads);
  m->set_client(s.client);
  return r;
}

// Rows [from, to) as a VectorBatch request.
pb::BuildRequest batch_request(const vt::Dataset& d, std::size_t from, std::size_t to) {
  pb::BuildRequest r;
  auto* v = r.mutable_vectors();
  for (std::size_t i = from; i < to; ++i) v->add_heap_tids(d.tids[i].key());
  v->mutable_data()->Add(d.vectors.begin() + static_cast<std::ptrdiff_t>(from * d.dims),
                         d.vectors.begin() + static_cast<std::ptrdiff_t>(to * d.dims));
  return r;
}

// What a client collected from one Build call.
struct ClientResult {
  grpc::Status status;
  std::vector<std::vector<std::byte>> pages;
  std::vector<pb::Progress> progress;
  std::optional<pb::Summary> summary;
  bool crc_ok = true;
  bool in_order = true;
};

// Runs a whole build as the extension's client would.
// With `after_first`, reads the first response right after the spec and then calls it.
ClientResult build(pb::Builder::Stub& stub, const vb::BuildSpec& spec, const vt::Dataset& d,
                   const std::string& token = "", const std::function<void()>& after_first = {}) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  auto stream = stub.Build(&ctx);
  bool ok = stream->Write(spec_request(spec));
  ClientResult out;
  pb::BuildResponse resp;
  if (after_first) {
    if (ok && stream->Read(&resp) && resp.has_progress()) out.progress.push_back(resp.progress());
    after_first();
  }
  for (std::size_t i = 0; ok && i < d.n; i += 400) ok = stream->Write(batch_request(d, i, std::min(d.n, i + 400)));
  pb::BuildRequest fin;
  fin.mutable_finish()->set_rows(d.n);
  if (ok) ok = stream->Write(fin);
  stream->WritesDone();
  while (stream->Read(&resp)) {
    if (resp.has_progress()) out.progress.push_back(resp.progress());
    if (resp.has_summary()) out.summary = resp.summary();
    if (resp.has_pages()) {
      const auto& b = resp.pages();
      out.in_order = out.in_order && b.first_block() == out.pages.size() && b.page_size() == spec.page_size &&
                     b.format_version() == vs::format::kFormatVersion && b.pages_size() == b.crc32c_size();
      for (int i = 0; i < b.pages_size(); ++i) {
        const auto* p = reinterpret_cast<const std::byte*>(b.pages(i).data());
        out.pages.emplace_back(p, p + b.pages(i).size());
        out.crc_ok = out.crc_ok && vs::crc32c(out.pages.back()) == b.crc32c(i);
      }
    }
  }
  out.status = stream->Finish();
  return out;
}

TEST_F(GrpcServer, BuildOverTheWire) {
  start();
  const auto d = vt::make_dataset(2000, 32);
  const auto r = build(*stub_, vt::small_spec(), d);
  ASSERT_TRUE(r.status.ok()) << r.status.error_code() << " " << r.status.error_message();
  EXPECT_TRUE(r.crc_ok);
  EXPECT_TRUE(r.in_order);
  ASSERT_TRUE(r.summary.has_value());
  EXPECT_EQ(r.summary->total_pages(), r.pages.size());
  EXPECT_EQ(r.summary->nodes(), 2000u);
  EXPECT_EQ(r.summary->backend(), pb::BACKEND_CPU);
  EXPECT_THAT(r.summary->builder_id(), HasSubstr("gpu_builder 0.1.0"));
  ASSERT_FALSE(r.progress.empty());
  EXPECT_EQ(r.progress.front().phase(), vb::kPhaseReceive);
  const auto check = vt::validate_index(r.pages, 8192, d.tids);
  EXPECT_TRUE(check.ok) << check.reason;
  // Byte-identical to the extension's local build apart from the meta page.
  const auto local = vt::local_build(vt::small_spec(), d);
  ASSERT_EQ(local.size(), r.pages.size());
  for (std::size_t b = 1; b < local.size(); ++b) EXPECT_EQ(local[b], r.pages[b]) << "block " << b;
  ASSERT_TRUE(wait_log("result=ok"));
  EXPECT_THAT(log().back(), HasSubstr("client=\"unit test\" peer=ipv4:127.0.0.1:"));
  EXPECT_THAT(log().back(), HasSubstr("rows=2000 dims=32 storage=memory_optimized backend=cpu"));
}

TEST_F(GrpcServer, InvalidSpecIsInvalidArgument) {
  start();
  auto spec = vt::small_spec();
  spec.page_size = 1000;
  const auto r = build(*stub_, spec, vt::make_dataset(10, 32));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(r.status.error_message(), HasSubstr("page_size 1000"));
}

TEST_F(GrpcServer, BearerToken) {
  start("s3cret");
  const auto d = vt::make_dataset(300, 32);
  EXPECT_EQ(build(*stub_, vt::small_spec(32, 300), d, "wrong").status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(build(*stub_, vt::small_spec(32, 300), d).status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  const auto ok = build(*stub_, vt::small_spec(32, 300), d, "s3cret");
  EXPECT_TRUE(ok.status.ok()) << ok.status.error_message();
  EXPECT_TRUE(wait_log("result=UNAUTHENTICATED"));
}

TEST_F(GrpcServer, HealthServiceServes) {
  start();
  // grpc.health.v1.Health/Check with an empty HealthCheckRequest; SERVING is field 1 = 1.
  grpc::GenericStub generic(channel_);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::ByteBuffer request, response;
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
  generic.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                    [&](grpc::Status s) {
                      std::lock_guard lock(mu);
                      status = std::move(s);
                      done = true;
                      cv.notify_all();
                    });
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; }));
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));
}

TEST_F(GrpcServer, ClientCancellationAndDeadline) {
  start();
  const auto d = vt::make_dataset(200, 32);
  {
    grpc::ClientContext ctx;
    auto stream = stub_->Build(&ctx);
    ASSERT_TRUE(stream->Write(spec_request(vt::small_spec(32, 200))));
    ASSERT_TRUE(stream->Write(batch_request(d, 0, 100)));
    ctx.TryCancel();
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  EXPECT_TRUE(wait_log("result=CANCELLED"));
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
    auto stream = stub_->Build(&ctx);
    ASSERT_TRUE(stream->Write(spec_request(vt::small_spec(32, 200))));
    ASSERT_TRUE(stream->Write(batch_request(d, 0, 100)));
    // No Finish: the deadline passes while the server waits for more rows.
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  EXPECT_TRUE(wait_log("result=DEADLINE_EXCEEDED"));
}

TEST_F(GrpcServer, GracefulStopCancelsStragglers) {
  start();
  const auto d = vt::make_dataset(200, 32);
  grpc::ClientContext ctx;
  auto stream = stub_->Build(&ctx);
  ASSERT_TRUE(stream->Write(spec_request(vt::small_spec(32, 200))));
  ASSERT_TRUE(stream->Write(batch_request(d, 0, 100)));
  pb::BuildResponse resp;
  ASSERT_TRUE(stream->Read(&resp));  // the build is admitted and receiving
  const auto t0 = std::chrono::steady_clock::now();
  server_->stop(std::chrono::milliseconds(200));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, 5.0);
  while (stream->Read(&resp)) {
  }
  const auto status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  EXPECT_TRUE(wait_log("result=UNAVAILABLE"));
}

TEST_F(GrpcServer, ConcurrentBuildsQueueAndTheQueueIsBounded) {
  start("", [](vb::ServerOptions& o) {
    o.max_concurrent_builds = 1;
    o.max_queued_builds = 2;
  });
  const auto d = vt::make_dataset(1000, 32, 3);
  // A build that holds the only slot: spec and one batch, no Finish yet.
  grpc::ClientContext hold_ctx;
  auto hold = stub_->Build(&hold_ctx);
  ASSERT_TRUE(hold->Write(spec_request(vt::small_spec(32, 1000))));
  ASSERT_TRUE(hold->Write(batch_request(d, 0, 500)));
  pb::BuildResponse resp;
  ASSERT_TRUE(hold->Read(&resp));
  // Two more wait in the queue (they finish once the first one does) ...
  std::atomic<int> queued{0};
  std::vector<std::thread> waiting;
  std::vector<ClientResult> results(2);
  for (int i = 0; i < 2; ++i)
    waiting.emplace_back([&, i] { results[i] = build(*stub_, vt::small_spec(32, 1000), d, "", [&] { ++queued; }); });
  while (queued.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // ... and a fourth finds the queue full.
  const auto refused = build(*stub_, vt::small_spec(32, 1000), d);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.status.error_message();
  EXPECT_THAT(refused.status.error_message(), HasSubstr("--max-queued-builds 2"));
  // Let the first build finish; the waiting ones run in turn.
  ASSERT_TRUE(hold->Write(batch_request(d, 500, 1000)));
  pb::BuildRequest fin;
  fin.mutable_finish()->set_rows(1000);
  ASSERT_TRUE(hold->Write(fin));
  hold->WritesDone();
  while (hold->Read(&resp)) {
  }
  EXPECT_TRUE(hold->Finish().ok());
  for (auto& t : waiting) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_TRUE(vt::validate_index(r.pages, 8192, d.tids).ok);
    // They saw phase 10 with done 0 while waiting.
    ASSERT_FALSE(r.progress.empty());
    EXPECT_EQ(r.progress.front().phase(), vb::kPhaseReceive);
    EXPECT_EQ(r.progress.front().done(), 0u);
  }
}

TEST_F(GrpcServer, PortInUseIsAnError) {
  start();
  vb::ServerOptions o;
  o.listen = server_->address();
  auto second = vb::Server::create(o);
  EXPECT_THROW(second->start(), vs::Error);
}

TEST(GrpcTls, BuildOverTls) {
  const std::string dir = ::testing::TempDir();
  const std::string key = dir + "/vs_tls_key.pem", cert = dir + "/vs_tls_cert.pem";
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost "
      "-addext subjectAltName=DNS:localhost -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "no openssl to make a test certificate";
  vb::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 1;
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  o.log = [](const std::string&) {};
  auto server = vb::Server::create(o);
  server->start();
  std::ifstream in(cert);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto channel = grpc::CreateCustomChannel(server->address(), grpc::SslCredentials(ssl), args);
  auto stub = pb::Builder::NewStub(channel);
  const auto d = vt::make_dataset(300, 32);
  const auto r = build(*stub, vt::small_spec(32, 300), d);
  ASSERT_TRUE(r.status.ok()) << r.status.error_message();
  EXPECT_TRUE(vt::validate_index(r.pages, 8192, d.tids).ok);
  // A plaintext client cannot talk to it.
  auto plain = pb::Builder::NewStub(grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
  EXPECT_FALSE(build(*plain, vt::small_spec(32, 300), d).status.ok());
}

}  // namespace
