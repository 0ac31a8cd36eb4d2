/**
 * @file server.hpp
 * @brief gpu_builder's server: options, backend choice, listening, graceful stop.
 *
 * No gRPC types here (the implementation hides them), so main.cpp and tests include this
 * header without pulling in generated code.
 */
#pragma once
#include "vectorscale/builder/faults.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace vs::builder {

/** Everything `gpu_builder` takes on its command line. */
struct ServerOptions {
  std::string listen = "127.0.0.1:50051";       ///< --listen host:port (port 0 = any free port)
  std::string backend = "auto";                 ///< --backend auto|cpu|cuda
  int cuda_device = -1;                         ///< --cuda-device (auto, cuda); -1: most free memory
  std::uint32_t threads = 1;                    ///< --threads: build threads (default per build, and ceiling)
  std::uint32_t max_concurrent_builds = 1;      ///< --max-concurrent-builds
  std::uint32_t max_queued_builds = 16;         ///< --max-queued-builds
  std::uint64_t max_memory = 1ull << 30;        ///< --max-memory in bytes
  std::string tls_cert_file;                    ///< --tls-cert (PEM); with tls_key_file enables TLS
  std::string tls_key_file;                     ///< --tls-key (PEM)
  std::string token_file;                       ///< --token-file: require `authorization: Bearer <token>`
  std::uint64_t page_batch_bytes = 1u << 20;    ///< --page-batch-bytes
  double shutdown_grace_seconds = 10;           ///< --shutdown-grace-seconds
  FaultPlan faults;                             ///< --fault (only with VS_FAILURE_POINTS)
  std::function<void(const std::string&)> log;  ///< log lines; empty = stderr
};

/** Smallest and largest accepted --page-batch-bytes (a PageBatch must stay under 4 MiB). */
inline constexpr std::uint64_t kMinPageBatchBytes = 1024;
/** Largest accepted --page-batch-bytes. */
inline constexpr std::uint64_t kMaxPageBatchBytes = (4u << 20) - (64u << 10);

/** The defaults of a server on this host: threads = hardware threads, max_memory = half of RAM. */
[[nodiscard]] ServerOptions default_server_options();

/** A gpu_builder server; move-only through unique_ptr. */
class Server {
 public:
  /**
   * Validates options, reads the token and TLS files and selects the backend: `auto` is the
   * CUDA backend when a CUDA device is present and the backend opens on it, else the CPU
   * backend. Throws vs::Error (kInvalidArgument for bad options, kUnsupported for
   * `--backend cuda` without a usable device or in a build without CUDA).
   */
  [[nodiscard]] static std::unique_ptr<Server> create(const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /** Binds and starts serving; throws vs::Error when the address cannot be bound. */
  void start();
  /** The bound port (after start()). */
  [[nodiscard]] int port() const;
  /** host:port actually bound, e.g. "127.0.0.1:43121" (after start()). */
  [[nodiscard]] std::string address() const;
  /** Name of the selected backend ("cpu", "cuda"). */
  [[nodiscard]] std::string backend_name() const;
  /** Why that backend, and on which device: for the startup log line. */
  [[nodiscard]] std::string backend_detail() const;

  /**
   * Graceful stop: refuses new builds and fails waiting ones, lets running builds finish
   * for up to `grace`, then cancels them (UNAVAILABLE) and shuts the server down. While
   * builds drain the server keeps answering and the health service reports NOT_SERVING.
   */
  void stop(std::chrono::milliseconds grace);

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vs::builder
