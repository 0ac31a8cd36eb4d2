// The service over real gRPC: an in-process server on 127.0.0.1:0 and a client stub. One
// small build checked with IndexValidator, the bearer token, the health service (NOT_SERVING
// while draining), client cancellation, a graceful stop with a build in flight, and the
// counters of GetStatus after builds that succeed, fail, are cancelled or are rejected.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "grpc_test_support.hpp"
#include "server.hpp"
#include "vectorscale/builder/auth.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <regex>
#include <thread>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <vectorscale/builder/v1/builder.grpc.pb.h>

namespace {

namespace vb = vs::builder;
namespace vt = vs::builder::test;
namespace pb = vectorscale::builder::v1;
using ::testing::HasSubstr;
using vt::batch_request;
using vt::build;
using vt::ClientResult;
using vt::spec_request;

// A server on a free loopback port whose log lines are kept.
class GrpcServer : public ::testing::Test {
 protected:
  // Starts the server with `token` (empty = none) and options changed by `edit`.
  void start(const std::string& token = "", const std::function<void(vb::ServerOptions&)>& edit = {}) {
    vb::ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.backend = "cpu";  // the expectations are the CPU backend's, also where a GPU exists
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

// grpc.health.v1.Health/Check with an empty HealthCheckRequest (the whole server): the
// response bytes, SERVING is field 1 = 1 ("\x08\x01"), NOT_SERVING "\x08\x02"; "" on failure.
std::string health_check(const std::shared_ptr<grpc::Channel>& channel) {
  grpc::GenericStub generic(channel);
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
  if (!cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; })) {
    ctx.TryCancel();
    cv.wait(lock, [&] { return done; });  // the call's deadline bounds this
    return {};
  }
  std::vector<grpc::Slice> slices;
  if (!status.ok() || !response.Dump(&slices).ok()) return {};
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

TEST_F(GrpcServer, HealthServiceServes) {
  start();
  EXPECT_EQ(health_check(channel_), std::string("\x08\x01", 2));
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

// A grpc.health.v1.Health/Watch stream for the whole server (service ""), keeping the statuses
// it receives (1 SERVING, 2 NOT_SERVING); generic, as the test has no health stubs.
class HealthWatch final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  // Starts the watch on `channel`.
  explicit HealthWatch(const std::shared_ptr<grpc::Channel>& channel) : stub_(channel) {
    ctx_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    grpc::Slice empty("");
    request_ = grpc::ByteBuffer(&empty, 1);  // HealthCheckRequest{service: ""}
    stub_.PrepareBidiStreamingCall(&ctx_, "/grpc.health.v1.Health/Watch", grpc::StubOptions(), this);
    StartWriteLast(&request_, grpc::WriteOptions());
    StartRead(&response_);
    StartCall();
  }
  // Cancels the watch and waits (bounded) until gRPC is done with it.
  ~HealthWatch() override {
    ctx_.TryCancel();
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return done_; });
  }

  // Waits until the last status received is `status`; false after `timeout`.
  bool wait_for(int status, std::chrono::seconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return !statuses_.empty() && statuses_.back() == status; });
  }

  void OnWriteDone(bool) override {}
  // Keeps the status of a HealthCheckResponse (field 1, varint) and reads the next one.
  void OnReadDone(bool ok) override {
    if (!ok) return;
    std::vector<grpc::Slice> slices;
    std::string bytes;
    if (response_.Dump(&slices).ok())
      for (const auto& sl : slices) bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    {
      std::lock_guard lock(mu_);
      statuses_.push_back(bytes.size() == 2 && bytes[0] == '\x08' ? bytes[1] : -1);
    }
    cv_.notify_all();
    StartRead(&response_);
  }
  void OnDone(const grpc::Status&) override {
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }

 private:
  grpc::GenericStub stub_;
  grpc::ClientContext ctx_;
  grpc::ByteBuffer request_, response_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> statuses_;
  bool done_ = false;
};

TEST_F(GrpcServer, HealthIsNotServingWhileDraining) {
  start();
  const auto d = vt::make_dataset(300, 32);
  // A build in flight keeps the server draining.
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto stream = stub_->Build(&ctx);
  ASSERT_TRUE(stream->Write(spec_request(vt::small_spec(32, 300))));
  ASSERT_TRUE(stream->Write(batch_request(d, 0, 150)));
  pb::BuildResponse resp;
  ASSERT_TRUE(stream->Read(&resp));  // admitted and receiving
  HealthWatch watch(channel_);
  ASSERT_TRUE(watch.wait_for(1)) << "no SERVING before the stop";
  const auto t0 = std::chrono::steady_clock::now();
  std::thread stopper([&] { server_->stop(std::chrono::seconds(20)); });
  EXPECT_TRUE(watch.wait_for(2)) << "no NOT_SERVING while draining";
  // While draining the server answers: health checks say NOT_SERVING, new builds are refused
  // (rejected), the status shows the running build.
  EXPECT_EQ(health_check(channel_), std::string("\x08\x02", 2));
  EXPECT_EQ(build(*stub_, vt::small_spec(32, 10), vt::make_dataset(10, 32)).status.error_code(),
            grpc::StatusCode::UNAVAILABLE);
  pb::StatusResponse s;
  ASSERT_TRUE(vt::get_status(*stub_, s).ok());
  EXPECT_EQ(s.builds_rejected(), 1u);
  EXPECT_EQ(s.builds_active(), 1u);
  EXPECT_EQ(s.builds_running(), 1u);
  // The running build still finishes within the grace period.
  pb::BuildRequest fin;
  fin.mutable_finish()->set_rows(300);
  EXPECT_TRUE(stream->Write(batch_request(d, 150, 300)));
  EXPECT_TRUE(stream->Write(fin));
  stream->WritesDone();
  while (stream->Read(&resp)) {
  }
  const auto status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  // The open Watch stream does not hold the stop up.
  stopper.join();
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
  EXPECT_TRUE(wait_log("result=ok"));
}

// Every started build is either still active or counted under exactly one outcome.
void expect_builds_add_up(const pb::StatusResponse& s) {
  EXPECT_EQ(s.builds_started(),
            s.builds_succeeded() + s.builds_failed() + s.builds_cancelled() + s.builds_rejected() + s.builds_active());
}

TEST_F(GrpcServer, StatusCountsBuilds) {
  start();
  pb::StatusResponse s;
  ASSERT_TRUE(vt::get_status(*stub_, s).ok());
  EXPECT_THAT(s.builder_id(), HasSubstr("gpu_builder 0.1.0"));
  EXPECT_EQ(s.version(), "0.1.0");
  EXPECT_EQ(s.backend(), pb::BACKEND_CPU);
  EXPECT_GT(s.uptime_seconds(), 0.0);
  EXPECT_EQ(s.threads(), 2u);
  EXPECT_EQ(s.max_concurrent_builds(), 1u);
  EXPECT_EQ(s.max_queued_builds(), 16u);
  EXPECT_EQ(s.memory_limit_bytes(), 1ull << 30);
  EXPECT_EQ(s.builds_started(), 0u);
  EXPECT_EQ(s.bytes_received(), 0u);
  EXPECT_EQ(s.gpu_memory_total_bytes(), 0u);  // the CPU backend has no device
  EXPECT_EQ(s.gpu_memory_used_bytes(), 0u);

  // A build that succeeds: counted before its status reached the client, with the traffic
  // the client saw.
  const auto d = vt::make_dataset(2000, 32);
  const auto ok = build(*stub_, vt::small_spec(), d);
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  ASSERT_TRUE(vt::get_status(*stub_, s).ok());
  EXPECT_EQ(s.builds_started(), 1u);
  EXPECT_EQ(s.builds_succeeded(), 1u);
  EXPECT_EQ(s.builds_failed() + s.builds_cancelled() + s.builds_rejected(), 0u);
  EXPECT_EQ(s.builds_active(), 0u);
  EXPECT_EQ(s.builds_running(), 0u);
  EXPECT_EQ(s.builds_queued(), 0u);
  EXPECT_EQ(s.memory_admitted_bytes(), 0u);
  EXPECT_EQ(s.vectors_received(), 2000u);
  EXPECT_EQ(s.bytes_received(), ok.request_bytes);
  EXPECT_EQ(s.pages_sent(), ok.pages.size());
  EXPECT_EQ(s.bytes_sent(), ok.response_bytes);

  // Its log line says the same, with phase times that add up to at most the total.
  ASSERT_TRUE(wait_log("result=ok"));
  const std::string line = log().back();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(line, m,
                                std::regex(" pages=(\\d+) bytes_received=(\\d+) bytes_sent=(\\d+) seconds=([0-9.]+) "
                                           "queue_s=([0-9.]+) receive_s=([0-9.]+) train_s=([0-9.]+) "
                                           "graph_s=([0-9.]+) write_s=([0-9.]+) result=ok$")))
      << line;
  EXPECT_EQ(std::stoull(m[1]), ok.pages.size());
  EXPECT_EQ(std::stoull(m[2]), ok.request_bytes);
  EXPECT_EQ(std::stoull(m[3]), ok.response_bytes);
  double phases = 0;
  for (int i = 5; i <= 9; ++i) phases += std::stod(m[i]);
  EXPECT_LE(phases, std::stod(m[4]) + 0.003);  // five values rounded to milliseconds
  EXPECT_GT(std::stod(m[8]), 0.0) << "graph_s";

  // A bad spec fails; a build needing more than --max-memory is rejected at admission.
  auto bad = vt::small_spec();
  bad.page_size = 1000;
  EXPECT_EQ(build(*stub_, bad, vt::make_dataset(10, 32)).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  const auto huge = vt::small_spec(32, 1000000000);
  EXPECT_EQ(build(*stub_, huge, vt::make_dataset(10, 32)).status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  ASSERT_TRUE(vt::get_status(*stub_, s).ok());
  EXPECT_EQ(s.builds_started(), 3u);
  EXPECT_EQ(s.builds_succeeded(), 1u);
  EXPECT_EQ(s.builds_failed(), 1u);
  EXPECT_EQ(s.builds_rejected(), 1u);
  EXPECT_EQ(s.builds_cancelled(), 0u);
  EXPECT_EQ(s.builds_active(), 0u);

  // A client that cancels while the server receives; the server counts it once it notices.
  {
    grpc::ClientContext ctx;
    auto stream = stub_->Build(&ctx);
    ASSERT_TRUE(stream->Write(spec_request(vt::small_spec(32, 200))));
    ASSERT_TRUE(stream->Write(batch_request(d, 0, 100)));
    pb::BuildResponse resp;
    ASSERT_TRUE(stream->Read(&resp));  // admitted
    ctx.TryCancel();
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  ASSERT_TRUE(wait_log("result=CANCELLED"));
  ASSERT_TRUE(vt::get_status(*stub_, s).ok());
  EXPECT_EQ(s.builds_started(), 4u);
  EXPECT_EQ(s.builds_cancelled(), 1u);
  EXPECT_EQ(s.builds_active(), 0u);
  EXPECT_EQ(s.builds_running(), 0u);
  EXPECT_EQ(s.memory_admitted_bytes(), 0u);
  expect_builds_add_up(s);
}

TEST_F(GrpcServer, StatusNeedsTheToken) {
  start("s3cret");
  pb::StatusResponse s;
  EXPECT_EQ(vt::get_status(*stub_, s).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(vt::get_status(*stub_, s, "wrong").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(build(*stub_, vt::small_spec(32, 10), vt::make_dataset(10, 32)).status.error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  const auto status = vt::get_status(*stub_, s, "s3cret");
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(s.unauthenticated_calls(), 3u);
  EXPECT_EQ(s.builds_started(), 0u);  // a refused Build call is no build
  EXPECT_EQ(s.version(), "0.1.0");
}

TEST(GrpcTls, BuildOverTls) {
  const std::string dir = ::testing::TempDir();
  const std::string key = dir + "/vs_tls_key.pem", cert = dir + "/vs_tls_cert.pem";
  if (!vt::make_test_certificate(key, cert, "DNS:localhost")) GTEST_SKIP() << "no openssl to make a test certificate";
  vb::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.backend = "cpu";
  o.threads = 1;
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  o.log = [](const std::string&) {};
  auto server = vb::Server::create(o);
  server->start();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = vb::read_pem_file(cert, "--tls-ca");
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
