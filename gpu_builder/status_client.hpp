/**
 * @file status_client.hpp
 * @brief `gpu_builder --status HOST:PORT`: asks a running builder for its counters and prints them.
 *
 * No gRPC types here (the implementation hides them), so main.cpp includes it as it does
 * server.hpp.
 */
#pragma once
#include <cstdio>
#include <string>

namespace vs::builder {

/** The client side options of `gpu_builder --status`. */
struct StatusClientOptions {
  std::string target;          ///< --status HOST:PORT
  std::string tls_ca_file;     ///< --tls-ca: PEM roots to verify the server with; empty = plaintext
  std::string token_file;      ///< --token-file: sends `authorization: Bearer <token>`
  double timeout_seconds = 5;  ///< --timeout: deadline of the call
};

/** Exit status of `gpu_builder --status`: the status was printed. */
inline constexpr int kStatusExitOk = 0;
/** Exit status of `gpu_builder --status`: the call failed (unreachable, UNAUTHENTICATED, ...). */
inline constexpr int kStatusExitFailed = 1;
/** Exit status of `gpu_builder` for a bad command line or an unreadable --tls-ca/--token-file. */
inline constexpr int kExitUsage = 2;

/**
 * Calls GetStatus on options.target within options.timeout_seconds and prints one
 * `key: value` line per field of StatusResponse to `out`, in the proto's field order. On
 * failure prints `gpu_builder: ...` with the gRPC status to `err`. Returns one of the exit
 * statuses above; never throws.
 */
[[nodiscard]] int print_status(const StatusClientOptions& options, std::FILE* out, std::FILE* err) noexcept;

}  // namespace vs::builder
