// `gpu_builder --status` end to end: the built binary serves on 127.0.0.1:0, a client builds
// through it, then `gpu_builder --status` (another process) prints its counters; the server's
// log line of the build is read from its stderr after SIGTERM. Also the token, TLS, an
// unreachable builder and bad command lines. Every wait is bounded.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "grpc_test_support.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

#ifndef VS_GPU_BUILDER_BINARY
#error "VS_GPU_BUILDER_BINARY must name the gpu_builder executable"
#endif

namespace {

namespace vt = vs::builder::test;
namespace pb = vectorscale::builder::v1;
using Clock = std::chrono::steady_clock;
using ::testing::HasSubstr;

// gpu_builder as a child process with its stdout and stderr on pipes.
class Child {
 public:
  // Starts gpu_builder with `args`; check started() afterwards.
  explicit Child(const std::vector<std::string>& args) {
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0) return;
    if (pipe2(err, O_CLOEXEC) != 0) {
      close(out[0]);
      close(out[1]);
      return;
    }
    std::vector<std::string> all{VS_GPU_BUILDER_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err[1], 2);
    if (posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    close(err[1]);
    out_fd_ = out[0];
    err_fd_ = err[0];
    fcntl(out_fd_, F_SETFL, O_NONBLOCK);
    fcntl(err_fd_, F_SETFL, O_NONBLOCK);
  }
  // Kills a child that is still running and closes the pipes.
  ~Child() {
    if (pid_ > 0 && exit_code_ == kRunning) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
    if (err_fd_ >= 0) close(err_fd_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  [[nodiscard]] bool started() const { return pid_ > 0; }

  // The first stdout line, waiting at most `timeout`; "" when none came.
  std::string first_line(std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      drain(50);
      if (const auto nl = out_.find('\n'); nl != std::string::npos) return out_.substr(0, nl);
      if (exited()) break;
    }
    return {};
  }

  // Sends SIGTERM.
  void terminate() const {
    if (pid_ > 0) kill(pid_, SIGTERM);
  }

  // Waits at most `timeout` for the exit, reading the pipes; the exit code, or -1 when it
  // did not exit in time (then it is killed) or died from a signal.
  int wait(std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    while (!exited() && Clock::now() < until) drain(20);
    if (exit_code_ == kRunning) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      exit_code_ = -1;
    }
    drain(0);
    return exit_code_;
  }

  [[nodiscard]] const std::string& out() const { return out_; }
  [[nodiscard]] const std::string& err() const { return err_; }

 private:
  static constexpr int kRunning = -2;

  // True once the child has exited (reaps it).
  bool exited() {
    if (exit_code_ != kRunning) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return true;
  }

  // Appends what the pipes have, waiting at most `ms` for something to arrive.
  void drain(int ms) {
    pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
    if (poll(fds, 2, ms) <= 0) return;
    char buf[4096];
    for (auto [fd, into] : {std::pair{out_fd_, &out_}, std::pair{err_fd_, &err_}}) {
      for (;;) {
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        into->append(buf, static_cast<std::size_t>(n));
      }
    }
  }

  pid_t pid_ = -1;
  int out_fd_ = -1, err_fd_ = -1;
  int exit_code_ = kRunning;
  std::string out_, err_;
};

// What one `gpu_builder ...` run printed, and its exit code.
struct RunResult {
  int code = -1;
  std::string out, err;
};

// Runs gpu_builder with `args` to its end (at most 30 s).
RunResult run_builder(const std::vector<std::string>& args) {
  Child c(args);
  if (!c.started()) return {};
  const int code = c.wait(std::chrono::seconds(30));
  return {code, c.out(), c.err()};
}

// A gpu_builder server on a free loopback port.
struct ServerProcess {
  std::unique_ptr<Child> child;
  std::string address;  // 127.0.0.1:PORT
};

// Starts `gpu_builder --listen 127.0.0.1:0 args...` and waits for its "listening on" line.
ServerProcess start_server(std::vector<std::string> args) {
  args.insert(args.begin(), {"--listen", "127.0.0.1:0", "--backend", "cpu"});
  ServerProcess s;
  s.child = std::make_unique<Child>(args);
  const std::string line = s.child->first_line(std::chrono::seconds(30));
  const std::string prefix = "listening on ";
  if (line.rfind(prefix, 0) == 0) s.address = line.substr(prefix.size());
  return s;
}

// The `key: value` lines of --status output, in order; a line of another form fails the test.
std::vector<std::pair<std::string, std::string>> parse_status(const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::regex line("([a-z_]+): (.+)");
  std::size_t from = 0;
  while (from < text.size()) {
    const std::size_t nl = text.find('\n', from);
    const std::string l = text.substr(from, nl == std::string::npos ? std::string::npos : nl - from);
    from = nl == std::string::npos ? text.size() : nl + 1;
    std::smatch m;
    EXPECT_TRUE(std::regex_match(l, m, line)) << "not a key: value line: \"" << l << "\"";
    if (!m.empty()) out.emplace_back(m[1], m[2]);
  }
  return out;
}

// A file in the test's temporary directory holding `content`.
std::string temp_file(const std::string& name, const std::string& content) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << content;
  return path;
}

TEST(StatusCommand, ReportsTheBuildsOfARunningBuilder) {
  auto server = start_server({"--threads", "1", "--max-memory", "256M", "--max-queued-builds", "3"});
  ASSERT_FALSE(server.address.empty()) << server.child->err();
  auto stub = pb::Builder::NewStub(grpc::CreateChannel(server.address, grpc::InsecureChannelCredentials()));
  const auto d = vt::make_dataset(300, 32);
  const auto ok = vt::build(*stub, vt::small_spec(32, 300), d);
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  // A bad spec and no rows (whether the server reads the Finish before failing is a race).
  auto bad = vt::small_spec(32, 0);
  bad.num_neighbors = 5;
  ASSERT_EQ(vt::build(*stub, bad, vt::make_dataset(0, 32)).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  const RunResult r = run_builder({"--status", server.address});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const auto lines = parse_status(r.out);
  // Every field, in the proto's order (the format scripts grep for).
  std::vector<std::string> keys;
  std::map<std::string, std::string> v;
  for (const auto& [k, val] : lines) {
    keys.push_back(k);
    v[k] = val;
  }
  EXPECT_THAT(keys, ::testing::ElementsAre(
                        "builder_id", "version", "backend", "uptime_seconds", "threads", "max_concurrent_builds",
                        "max_queued_builds", "builds_started", "builds_succeeded", "builds_failed", "builds_cancelled",
                        "builds_rejected", "builds_active", "unauthenticated_calls", "builds_running", "builds_queued",
                        "vectors_received", "bytes_received", "pages_sent", "bytes_sent", "memory_admitted_bytes",
                        "memory_limit_bytes", "gpu_memory_used_bytes", "gpu_memory_total_bytes"));
  EXPECT_THAT(v["builder_id"], HasSubstr("gpu_builder 0.1.0"));
  EXPECT_EQ(v["version"], "0.1.0");
  EXPECT_EQ(v["backend"], "cpu");
  EXPECT_TRUE(std::regex_match(v["uptime_seconds"], std::regex("[0-9]+\\.[0-9]{3}"))) << v["uptime_seconds"];
  const std::map<std::string, std::string> expected = {
      {"threads", "1"},
      {"max_concurrent_builds", "1"},
      {"max_queued_builds", "3"},
      {"builds_started", "2"},
      {"builds_succeeded", "1"},
      {"builds_failed", "1"},
      {"builds_cancelled", "0"},
      {"builds_rejected", "0"},
      {"builds_active", "0"},
      {"unauthenticated_calls", "0"},
      {"builds_running", "0"},
      {"builds_queued", "0"},
      {"vectors_received", "300"},
      {"pages_sent", std::to_string(ok.pages.size())},
      {"memory_admitted_bytes", "0"},
      {"memory_limit_bytes", std::to_string(256ull << 20)},
      {"gpu_memory_used_bytes", "n/a"},
      {"gpu_memory_total_bytes", "n/a"},
  };
  for (const auto& [key, value] : expected) EXPECT_EQ(v[key], value) << key;
  // The failed build got nothing but its status: the bytes sent are the good build's.
  EXPECT_EQ(v["bytes_sent"], std::to_string(ok.response_bytes));
  EXPECT_GT(std::stoull(v["bytes_received"]), ok.request_bytes);  // plus the bad spec

  // SIGTERM: a clean exit; the log line of each build on stderr, with its phase times.
  // The test's channel stays connected: the stop does not wait for it beyond a moment.
  const auto t0 = Clock::now();
  server.child->terminate();
  ASSERT_EQ(server.child->wait(std::chrono::seconds(30)), 0) << server.child->err();
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 10.0);
  const std::string& log = server.child->err();
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      log, m,
      std::regex("build client=\"unit test\" peer=ipv4:127\\.0\\.0\\.1:[0-9]+ rows=300 dims=32 "
                 "storage=memory_optimized backend=cpu pages=([0-9]+) bytes_received=([0-9]+) bytes_sent=([0-9]+) "
                 "seconds=[0-9.]+ queue_s=[0-9.]+ receive_s=[0-9.]+ train_s=[0-9.]+ graph_s=[0-9.]+ "
                 "write_s=[0-9.]+ result=ok\n")))
      << log;
  EXPECT_EQ(m[1], std::to_string(ok.pages.size()));
  EXPECT_EQ(m[2], std::to_string(ok.request_bytes));
  EXPECT_EQ(m[3], std::to_string(ok.response_bytes));
  EXPECT_THAT(log, HasSubstr("rows=0 dims=0 storage=- backend=cpu pages=0 bytes_received="));
  EXPECT_THAT(log, HasSubstr("result=INVALID_ARGUMENT: num_neighbors 5"));
}

TEST(StatusCommand, TokenUnreachableAndUsage) {
  const std::string token = temp_file("vs_status_token", "t0ken\n");
  const std::string wrong = temp_file("vs_status_wrong", "nope\n");
  auto server = start_server({"--threads", "1", "--token-file", token});
  ASSERT_FALSE(server.address.empty()) << server.child->err();

  RunResult r = run_builder({"--status", server.address});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_THAT(r.err, HasSubstr("GetStatus on " + server.address + " failed: UNAUTHENTICATED"));
  EXPECT_EQ(run_builder({"--status", server.address, "--token-file", wrong}).code, 1);
  r = run_builder({"--status", server.address, "--token-file", token, "--timeout", "10"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\nunauthenticated_calls: 2\n"));
  EXPECT_THAT(r.out, HasSubstr("\nbuilds_started: 0\n"));

  // Nobody listens on a port just released.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
  close(fd);
  const std::string closed = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  r = run_builder({"--status", closed, "--timeout", "5"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("failed: UNAVAILABLE"));

  // Usage errors: exit 2, nothing on stdout.
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--status"},
           {"--status", "no-port"},
           {"--status", server.address, "--listen", "127.0.0.1:0"},
           {"--status", server.address, "--timeout", "0"},
           {"--status", server.address, "--token-file", ::testing::TempDir() + "/vs_status_missing"},
           {"--tls-ca", token},
       }) {
    r = run_builder(args);
    EXPECT_EQ(r.code, 2) << args.back() << ": " << r.err;
    EXPECT_EQ(r.out, "");
    EXPECT_THAT(r.err, HasSubstr("gpu_builder: "));
  }

  server.child->terminate();
  EXPECT_EQ(server.child->wait(std::chrono::seconds(30)), 0) << server.child->err();
}

TEST(StatusCommand, OverTls) {
  const std::string dir = ::testing::TempDir();
  const std::string key = dir + "/vs_status_key.pem", cert = dir + "/vs_status_cert.pem";
  // A certificate for the address itself: no name to resolve (c-ares leaks under ASan).
  if (!vt::make_test_certificate(key, cert, "IP:127.0.0.1")) GTEST_SKIP() << "no openssl to make a test certificate";
  auto server = start_server({"--threads", "1", "--tls-cert", cert, "--tls-key", key});
  ASSERT_FALSE(server.address.empty()) << server.child->err();

  RunResult r = run_builder({"--status", server.address, "--tls-ca", cert});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("\nbackend: cpu\n"));
  // Plaintext to a TLS server fails.
  r = run_builder({"--status", server.address, "--timeout", "5"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("failed: UNAVAILABLE"));

  server.child->terminate();
  EXPECT_EQ(server.child->wait(std::chrono::seconds(30)), 0) << server.child->err();
}

}  // namespace
