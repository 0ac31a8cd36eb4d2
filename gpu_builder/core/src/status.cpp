// The exception -> status mapping of gpu_builder (the only one; STYLE.md rule 17).
#include "vectorscale/builder/status.hpp"

#include <new>

namespace vs::builder {

const char* status_code_name(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kCancelled:
      return "CANCELLED";
    case StatusCode::kUnknown:
      return "UNKNOWN";
    case StatusCode::kInvalidArgument:
      return "INVALID_ARGUMENT";
    case StatusCode::kDeadlineExceeded:
      return "DEADLINE_EXCEEDED";
    case StatusCode::kNotFound:
      return "NOT_FOUND";
    case StatusCode::kAlreadyExists:
      return "ALREADY_EXISTS";
    case StatusCode::kPermissionDenied:
      return "PERMISSION_DENIED";
    case StatusCode::kResourceExhausted:
      return "RESOURCE_EXHAUSTED";
    case StatusCode::kFailedPrecondition:
      return "FAILED_PRECONDITION";
    case StatusCode::kAborted:
      return "ABORTED";
    case StatusCode::kOutOfRange:
      return "OUT_OF_RANGE";
    case StatusCode::kUnimplemented:
      return "UNIMPLEMENTED";
    case StatusCode::kInternal:
      return "INTERNAL";
    case StatusCode::kUnavailable:
      return "UNAVAILABLE";
    case StatusCode::kDataLoss:
      return "DATA_LOSS";
    case StatusCode::kUnauthenticated:
      return "UNAUTHENTICATED";
  }
  return "UNKNOWN";
}

namespace {

// The status of a cancelled build, by why it was cancelled.
Status cancelled_status(CancelReason reason) {
  switch (reason) {
    case CancelReason::kDeadline:
      return {StatusCode::kDeadlineExceeded, "deadline exceeded; build cancelled"};
    case CancelReason::kShutdown:
      return {StatusCode::kUnavailable, "the builder is shutting down; build cancelled"};
    case CancelReason::kNone:
    case CancelReason::kClient:
      break;
  }
  return {StatusCode::kCancelled, "build cancelled by the client"};
}

// Builds a status from a code and a message, never throwing.
Status make_status(StatusCode code, const char* what) noexcept {
  try {
    return {code, what};
  } catch (...) {
    return {code, {}};
  }
}

}  // namespace

Status status_from_exception(std::exception_ptr error, CancelReason reason) noexcept {
  if (!error) return {};
  try {
    std::rethrow_exception(error);
  } catch (const StatusError& e) {
    return make_status(e.code(), e.what());
  } catch (const vs::Error& e) {
    switch (e.code()) {
      case ErrorCode::kInvalidArgument:
        return make_status(StatusCode::kInvalidArgument, e.what());
      case ErrorCode::kOutOfMemory:
        return make_status(StatusCode::kResourceExhausted, e.what());
      case ErrorCode::kUnsupported:
        return make_status(StatusCode::kUnimplemented, e.what());
      case ErrorCode::kCancelled:
        try {
          return cancelled_status(reason);
        } catch (...) {
          return {StatusCode::kCancelled, {}};
        }
      case ErrorCode::kCorrupt:
      case ErrorCode::kInternal:
        break;
    }
    return make_status(StatusCode::kInternal, e.what());
  } catch (const std::bad_alloc&) {
    return make_status(StatusCode::kResourceExhausted, "out of memory");
  } catch (const std::exception& e) {
    return make_status(StatusCode::kInternal, e.what());
  } catch (...) {
    return make_status(StatusCode::kInternal, "unknown exception");
  }
}

}  // namespace vs::builder
