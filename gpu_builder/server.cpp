// gpu_builder's server: backend choice, credentials, the gRPC server and its graceful stop.
#include "server.hpp"

#include "vectorscale/builder/admission.hpp"
#include "vectorscale/builder/auth.hpp"
#include "vectorscale/builder/cpu_backend.hpp"
#ifdef VS_HAVE_CUDA_BACKEND
#include "vectorscale/builder/cuda_backend.hpp"
#endif
#include "vectorscale/builder/session.hpp"
#include "vectorscale/builder/spec.hpp"
#include "vectorscale/core/error.hpp"

// After the core headers: it brings in generated gRPC code, which common/ headers refuse to follow.
#include "service/builder_service.hpp"

#include <unistd.h>

#include <thread>
#include <utility>

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#ifndef VS_BUILDER_VERSION
#define VS_BUILDER_VERSION "0.0.0"
#endif

namespace vs::builder {

namespace {

// This host's name, or "" when unknown.
std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return {};
  return buf;
}

// The backend named by --backend; `detail` says why it was chosen and on which device.
std::unique_ptr<BuildBackend> make_backend(const ServerOptions& o, std::string& detail) {
  const std::string& name = o.backend;
  VS_EXPECTS(name == "auto" || name == "cpu" || name == "cuda", "unknown backend \"%s\" (auto, cpu or cuda)",
             name.c_str());
  VS_EXPECTS(o.cuda_device >= -1, "--cuda-device must not be negative");
  VS_EXPECTS(o.cuda_device < 0 || name != "cpu", "--cuda-device needs --backend cuda or auto");
  if (name == "cpu") {
    detail = "as asked";
    return std::make_unique<CpuBackend>();
  }
#ifdef VS_HAVE_CUDA_BACKEND
  CudaBackendOptions co;
  co.device = o.cuda_device;
  if (name == "cuda") {
    auto cuda = CudaBackend::create(co);  // kUnsupported with the runtime's reason when no device is usable
    detail = cuda->description();
    return cuda;
  }
  try {
    auto cuda = CudaBackend::create(co);
    detail = "auto: " + cuda->description();
    return cuda;
  } catch (const vs::Error& e) {
    detail = std::string("auto: ") + e.what();
    return std::make_unique<CpuBackend>();
  }
#else
  if (name == "cuda")
    VS_FAIL(ErrorCode::kUnsupported,
            "this gpu_builder was built without CUDA (VS_WITH_CUDA=OFF); use --backend cpu (or auto)");
  detail = "auto: this gpu_builder was built without CUDA";
  return std::make_unique<CpuBackend>();
#endif
}

}  // namespace

ServerOptions default_server_options() {
  ServerOptions o;
  o.threads = std::max(1u, std::thread::hardware_concurrency());
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page > 0) o.max_memory = static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page) / 2;
  return o;
}

struct Server::Impl {
  ServerOptions options;
  std::unique_ptr<BuildBackend> backend;
  std::string backend_detail;
  std::unique_ptr<Scheduler> scheduler;
  std::unique_ptr<BuilderService> service;
  std::shared_ptr<grpc::ServerCredentials> credentials;
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  bool stopped = false;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() {
  try {
    if (impl_ && impl_->server && !impl_->stopped) stop(std::chrono::milliseconds(0));
  } catch (...) {
    // destructors do not throw
  }
}

std::unique_ptr<Server> Server::create(const ServerOptions& o) {
  VS_EXPECTS(!o.listen.empty() && o.listen.find(':') != std::string::npos, "--listen needs host:port, not \"%s\"",
             o.listen.c_str());
  VS_EXPECTS(o.threads >= 1 && o.threads <= kMaxThreads, "--threads must be between 1 and %u", kMaxThreads);
  VS_EXPECTS(o.max_concurrent_builds >= 1, "--max-concurrent-builds must be at least 1");
  VS_EXPECTS(o.max_memory >= 1, "--max-memory must be positive");
  VS_EXPECTS(o.page_batch_bytes >= kMinPageBatchBytes && o.page_batch_bytes <= kMaxPageBatchBytes,
             "--page-batch-bytes must be between %llu and %llu", static_cast<unsigned long long>(kMinPageBatchBytes),
             static_cast<unsigned long long>(kMaxPageBatchBytes));
  VS_EXPECTS(o.shutdown_grace_seconds >= 0, "--shutdown-grace-seconds must not be negative");
  VS_EXPECTS(o.tls_cert_file.empty() == o.tls_key_file.empty(), "--tls-cert and --tls-key go together");

  auto impl = std::make_unique<Impl>();
  impl->options = o;
  impl->backend = make_backend(o, impl->backend_detail);
  impl->scheduler =
      std::make_unique<Scheduler>(AdmissionLimits{o.max_concurrent_builds, o.max_queued_builds, o.max_memory});

  ServiceOptions so;
  so.session.server_threads = o.threads;
  so.session.page_batch_bytes = o.page_batch_bytes;
  so.session.builder_id = make_builder_id(VS_BUILDER_VERSION, host_name());
  so.session.faults = o.faults;
  if (!o.token_file.empty()) so.token = read_token_file(o.token_file);
  so.version = VS_BUILDER_VERSION;
  so.log = o.log;
  impl->service = std::make_unique<BuilderService>(*impl->scheduler, *impl->backend, std::move(so));

  if (!o.tls_cert_file.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back(
        {read_pem_file(o.tls_key_file, "--tls-key"), read_pem_file(o.tls_cert_file, "--tls-cert")});
    impl->credentials = grpc::SslServerCredentials(ssl);
  } else {
    impl->credentials = grpc::InsecureServerCredentials();
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

void Server::start() {
  Impl& m = *impl_;
  VS_EXPECTS(!m.server, "the server is already started");
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  // gRPC sets SO_REUSEPORT by default, which would let a second builder "bind" a port that
  // one already serves and split the calls between them; a port in use must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(m.options.listen, m.credentials, &m.port);
  builder.RegisterService(m.service.get());
  m.server = builder.BuildAndStart();
  VS_EXPECTS(m.server != nullptr && m.port > 0, "cannot listen on %s", m.options.listen.c_str());
  if (auto* health = m.server->GetHealthCheckService()) health->SetServingStatus(true);
}

int Server::port() const {
  return impl_->port;
}

std::string Server::address() const {
  const std::string& l = impl_->options.listen;
  return l.substr(0, l.rfind(':')) + ":" + std::to_string(impl_->port);
}

std::string Server::backend_name() const {
  return std::string(impl_->backend->name());
}

std::string Server::backend_detail() const {
  return impl_->backend_detail;
}

void Server::stop(std::chrono::milliseconds grace) {
  Impl& m = *impl_;
  if (!m.server || m.stopped) return;
  m.stopped = true;
  // Draining: the server still answers, but new builds are refused and waiting ones fail
  // (UNAVAILABLE), and the health service says NOT_SERVING, so that probes and balancers move
  // away. Running builds get the grace period, then are cancelled.
  m.scheduler->begin_shutdown();
  if (auto* health = m.server->GetHealthCheckService()) health->SetServingStatus(false);
  if (!m.service->wait_idle(grace)) {
    m.service->cancel_all();
    (void)m.service->wait_idle(std::chrono::seconds(20));
  }
  // No build is left, only calls that need a moment (GetStatus, a build refused meanwhile) or
  // never end by themselves (health Watch streams): Shutdown cancels what is left after that.
  m.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  m.server->Wait();
  (void)m.service->wait_idle(std::chrono::seconds(5));
}

}  // namespace vs::builder
