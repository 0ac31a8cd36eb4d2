// `gpu_builder --status`: one GetStatus call, printed as `key: value` lines.
#include "status_client.hpp"

#include "vectorscale/builder/auth.hpp"
#include "vectorscale/builder/status.hpp"

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>

// After the core headers: gRPC headers, which common/ headers refuse to follow.
#include <grpcpp/grpcpp.h>
#include <vectorscale/builder/v1/builder.grpc.pb.h>

namespace vs::builder {

namespace {

namespace pb = vectorscale::builder::v1;

// "cpu", "cuda" or "unspecified".
const char* backend_name(pb::Backend b) noexcept {
  switch (b) {
    case pb::BACKEND_CPU:
      return "cpu";
    case pb::BACKEND_CUDA:
      return "cuda";
    default:
      return "unspecified";
  }
}

// s with control characters replaced, so that a value stays on its line.
std::string one_line(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = '?';
  return s;
}

// Prints the response, one `key: value` line per field in the proto's order.
void print_response(const pb::StatusResponse& r, std::FILE* out) {
  const auto text = [&](const char* key, const std::string& value) {
    std::fprintf(out, "%s: %s\n", key, one_line(value).c_str());
  };
  const auto number = [&](const char* key, std::uint64_t value) {
    std::fprintf(out, "%s: %llu\n", key, static_cast<unsigned long long>(value));
  };
  // Device memory of a backend without a device is "n/a", not a misleading 0.
  const auto device_bytes = [&](const char* key, std::uint64_t value) {
    if (r.gpu_memory_total_bytes() == 0) {
      text(key, "n/a");
    } else {
      number(key, value);
    }
  };
  text("builder_id", r.builder_id());
  text("version", r.version());
  text("backend", backend_name(r.backend()));
  std::fprintf(out, "uptime_seconds: %.3f\n", r.uptime_seconds());
  number("threads", r.threads());
  number("max_concurrent_builds", r.max_concurrent_builds());
  number("max_queued_builds", r.max_queued_builds());
  number("builds_started", r.builds_started());
  number("builds_succeeded", r.builds_succeeded());
  number("builds_failed", r.builds_failed());
  number("builds_cancelled", r.builds_cancelled());
  number("builds_rejected", r.builds_rejected());
  number("builds_active", r.builds_active());
  number("unauthenticated_calls", r.unauthenticated_calls());
  number("builds_running", r.builds_running());
  number("builds_queued", r.builds_queued());
  number("vectors_received", r.vectors_received());
  number("bytes_received", r.bytes_received());
  number("pages_sent", r.pages_sent());
  number("bytes_sent", r.bytes_sent());
  number("memory_admitted_bytes", r.memory_admitted_bytes());
  number("memory_limit_bytes", r.memory_limit_bytes());
  device_bytes("gpu_memory_used_bytes", r.gpu_memory_used_bytes());
  device_bytes("gpu_memory_total_bytes", r.gpu_memory_total_bytes());
}

}  // namespace

int print_status(const StatusClientOptions& options, std::FILE* out, std::FILE* err) noexcept {
  try {
    std::shared_ptr<grpc::ChannelCredentials> credentials;
    grpc::ClientContext ctx;
    try {
      if (options.tls_ca_file.empty()) {
        credentials = grpc::InsecureChannelCredentials();
      } else {
        grpc::SslCredentialsOptions ssl;
        ssl.pem_root_certs = read_pem_file(options.tls_ca_file, "--tls-ca");
        credentials = grpc::SslCredentials(ssl);
      }
      if (!options.token_file.empty())
        ctx.AddMetadata("authorization", "Bearer " + read_token_file(options.token_file));
    } catch (const std::exception& e) {
      std::fprintf(err, "gpu_builder: %s\n", e.what());
      return kExitUsage;
    }
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::milliseconds>(
                                                            std::chrono::duration<double>(options.timeout_seconds)));
    auto stub = pb::Builder::NewStub(grpc::CreateChannel(options.target, credentials));
    pb::StatusResponse response;
    const grpc::Status status = stub->GetStatus(&ctx, pb::StatusRequest(), &response);
    if (!status.ok()) {
      std::fprintf(err, "gpu_builder: GetStatus on %s failed: %s: %s\n", options.target.c_str(),
                   status_code_name(static_cast<StatusCode>(status.error_code())), status.error_message().c_str());
      return kStatusExitFailed;
    }
    print_response(response, out);
    std::fflush(out);
    return std::ferror(out) ? kStatusExitFailed : kStatusExitOk;
  } catch (const std::exception& e) {
    std::fprintf(err, "gpu_builder: %s\n", e.what());
    return kStatusExitFailed;
  }
}

}  // namespace vs::builder
