/**
 * @file error.hpp
 * @brief Exceptions and precondition macros of the engine.
 *
 * common/ reports every failure by throwing vs::Error. The extension maps ErrorCode onto a
 * SQLSTATE at its C++/PostgreSQL boundary, gpu_builder maps it onto a grpc::StatusCode.
 * Nothing in common/ calls abort() or assert(): a backend abort restarts every session.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>

namespace vs {

/** What kind of failure an Error is; stable mapping to SQLSTATE / gRPC status. */
enum class ErrorCode : std::uint8_t {
  kInvalidArgument = 1,  ///< bad parameter or input (22023 / INVALID_ARGUMENT)
  kOutOfMemory = 2,      ///< allocation failed or budget exceeded (53200 / RESOURCE_EXHAUSTED)
  kCancelled = 3,        ///< cancellation token fired (57014 / CANCELLED)
  kCorrupt = 4,          ///< malformed page or record (XX002 / DATA_LOSS)
  kUnsupported = 5,      ///< valid but not supported combination (0A000 / UNIMPLEMENTED)
  kInternal = 6,         ///< broken invariant (XX000 / INTERNAL)
};

/** Name of an ErrorCode, for logs. */
[[nodiscard]] const char* error_code_name(ErrorCode code) noexcept;

/** The one exception type of the engine. */
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  [[nodiscard]] ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

/** Thrown when a build or search is cancelled through its CancelToken. */
class Cancelled final : public Error {
 public:
  Cancelled() : Error(ErrorCode::kCancelled, "operation cancelled") {}
};

namespace detail {
/** printf-style formatting into a std::string. */
[[nodiscard]] std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
[[noreturn]] void throw_error(ErrorCode code, const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace vs

/** Precondition: throws vs::Error{kInvalidArgument} with a printf-formatted message. */
#define VS_EXPECTS(cond, ...)                                                             \
  do {                                                                                    \
    if (!(cond)) [[unlikely]]                                                             \
      ::vs::detail::throw_error(::vs::ErrorCode::kInvalidArgument, nullptr, 0,            \
                                ::vs::detail::format(__VA_ARGS__));                       \
  } while (0)

/** Throws vs::Error with the given code and a printf-formatted message. */
#define VS_FAIL(code, ...) \
  ::vs::detail::throw_error((code), nullptr, 0, ::vs::detail::format(__VA_ARGS__))

/** Internal invariant: throws vs::Error{kInternal} naming file and line; never aborts. */
#define VS_ASSERT(cond)                                                                   \
  do {                                                                                    \
    if (!(cond)) [[unlikely]]                                                             \
      ::vs::detail::throw_error(::vs::ErrorCode::kInternal, __FILE__, __LINE__,           \
                                "internal invariant failed: " #cond);                     \
  } while (0)
