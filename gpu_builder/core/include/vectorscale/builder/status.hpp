/**
 * @file status.hpp
 * @brief Build outcomes as status codes, and the one place where exceptions become statuses.
 *
 * The core of gpu_builder has no gRPC types. StatusCode mirrors grpc::StatusCode value for
 * value (the service static_asserts this), so the thin gRPC layer converts with a cast.
 * status_from_exception() is the only function that turns an exception into a status
 * (STYLE.md rule 17, cuVS `translate_exceptions`).
 */
#pragma once
#include "vectorscale/core/error.hpp"

#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>

namespace vs::builder {

/** Status codes with the numeric values of grpc::StatusCode. */
enum class StatusCode : int {
  kOk = 0,                  ///< success
  kCancelled = 1,           ///< the client went away or cancelled
  kUnknown = 2,             ///< unused by the builder
  kInvalidArgument = 3,     ///< bad spec or batch
  kDeadlineExceeded = 4,    ///< the call's deadline passed
  kNotFound = 5,            ///< unused by the builder
  kAlreadyExists = 6,       ///< unused by the builder
  kPermissionDenied = 7,    ///< unused by the builder
  kResourceExhausted = 8,   ///< memory not admitted, queue full
  kFailedPrecondition = 9,  ///< unused by the builder
  kAborted = 10,            ///< unused by the builder
  kOutOfRange = 11,         ///< unused by the builder
  kUnimplemented = 12,      ///< a valid but unsupported request
  kInternal = 13,           ///< a bug or an unexpected failure
  kUnavailable = 14,        ///< the builder is shutting down
  kDataLoss = 15,           ///< unused by the builder
  kUnauthenticated = 16,    ///< missing or wrong bearer token
};

/** Upper-case name of a status code as gRPC spells it ("INVALID_ARGUMENT"). */
[[nodiscard]] const char* status_code_name(StatusCode code) noexcept;

/** An outcome: a code and, unless ok, a message for the client. */
struct Status {
  StatusCode code = StatusCode::kOk;  ///< the code
  std::string message;                ///< why it failed (empty when ok)

  /** True for kOk. */
  [[nodiscard]] bool ok() const noexcept { return code == StatusCode::kOk; }
};

/** An error of the service itself (admission, protocol order) that carries its status code. */
class StatusError : public std::runtime_error {
 public:
  /** An error with the given code and message. */
  StatusError(StatusCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  /** The status code the client gets. */
  [[nodiscard]] StatusCode code() const noexcept { return code_; }

 private:
  StatusCode code_;
};

/** Why a build stops early, as seen by the transport when the engine reports vs::Cancelled. */
enum class CancelReason : std::uint8_t {
  kNone = 0,      ///< not cancelled
  kClient = 1,    ///< the client cancelled or went away
  kDeadline = 2,  ///< the call's deadline passed
  kShutdown = 3,  ///< the server is shutting down and its grace period ran out
};

/**
 * Maps an exception onto a status: StatusError keeps its code; vs::Error kInvalidArgument ->
 * INVALID_ARGUMENT, kOutOfMemory and std::bad_alloc -> RESOURCE_EXHAUSTED, kUnsupported ->
 * UNIMPLEMENTED, vs::Cancelled (or kCancelled) -> CANCELLED, DEADLINE_EXCEEDED or UNAVAILABLE
 * by `reason`; everything else -> INTERNAL with the message. A null pointer gives OK.
 */
[[nodiscard]] Status status_from_exception(std::exception_ptr error, CancelReason reason) noexcept;

}  // namespace vs::builder
