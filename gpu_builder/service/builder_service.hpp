/**
 * @file builder_service.hpp
 * @brief The thin gRPC layer: the Build RPC as a callback service with one reactor per call,
 *        and GetStatus.
 *
 * Each call gets a BuildReactor that adapts gRPC's callbacks to the blocking BuildCall
 * interface of the core and runs vs::builder::run_build() on a thread of its own (a build
 * is long CPU work and must never run on gRPC's callback threads). Reactor callbacks only
 * move messages between gRPC and the job thread under a mutex; nothing they call can throw
 * past them.
 *
 * Include order matters: core headers (which include common/, whose headers refuse to
 * compile after gRPC or Protobuf headers) come first.
 */
#pragma once
#include "vectorscale/builder/admission.hpp"
#include "vectorscale/builder/backend.hpp"
#include "vectorscale/builder/metrics.hpp"
#include "vectorscale/builder/session.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

#include <vectorscale/builder/v1/builder.grpc.pb.h>

namespace vs::builder {

/** What the service needs besides the scheduler and the backend. */
struct ServiceOptions {
  SessionOptions session;                       ///< passed to every run_build()
  std::string token;                            ///< bearer token; empty = no token required
  std::string version;                          ///< gpu_builder's version, for GetStatus
  std::function<void(const std::string&)> log;  ///< receives the one line per build
};

/** vectorscale.builder.v1.Builder over the core; thread-safe. */
class BuilderService final : public vectorscale::builder::v1::Builder::CallbackService {
 public:
  /** A service building with `backend` under `scheduler`; both must outlive it. */
  BuilderService(Scheduler& scheduler, BuildBackend& backend, ServiceOptions options);

  /** Starts one Build call (gRPC calls this). */
  grpc::ServerBidiReactor<vectorscale::builder::v1::BuildRequest, vectorscale::builder::v1::BuildResponse>* Build(
      grpc::CallbackServerContext* context) override;

  /** Answers one GetStatus call on gRPC's thread (reads counters; never blocks for long). */
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const vectorscale::builder::v1::StatusRequest* request,
                                      vectorscale::builder::v1::StatusResponse* response) override;

  /** Cancels every running build (they finish with UNAVAILABLE). */
  void cancel_all() noexcept;
  /**
   * Waits until no Build call is left (each one's status sent and its job thread done) or
   * `timeout` passes; true when none is left.
   */
  [[nodiscard]] bool wait_idle(std::chrono::milliseconds timeout);
  /** Build calls alive now. */
  [[nodiscard]] std::size_t active() const;

  /** State shared with the reactors. */
  struct Shared {
    /** State over a scheduler, a backend and options. */
    Shared(Scheduler& s, BuildBackend& b, ServiceOptions o) : scheduler(s), backend(b), options(std::move(o)) {}

    Scheduler& scheduler;                      ///< admission
    BuildBackend& backend;                     ///< builds
    ServiceOptions options;                    ///< settings
    BuilderMetrics metrics;                    ///< counters since the service was made
    std::atomic<bool> shutdown_cancel{false};  ///< cancel_all() was called
    mutable std::mutex mu;                     ///< guards active
    std::condition_variable idle;              ///< signalled when active drops
    std::size_t active = 0;                    ///< Build calls whose reactor is not deleted yet

    /** Logs one line (never throws). */
    void log(const std::string& line) const noexcept;
    /** A Build call's reactor is gone: active drops, waiters are woken. */
    void call_ended() noexcept;
  };

 private:
  Shared shared_;
};

}  // namespace vs::builder
