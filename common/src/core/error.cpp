#include "vectorscale/core/error.hpp"

#include <cstdarg>
#include <cstdio>

namespace vs {

const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidArgument: return "invalid argument";
    case ErrorCode::kOutOfMemory: return "out of memory";
    case ErrorCode::kCancelled: return "cancelled";
    case ErrorCode::kCorrupt: return "corrupt data";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kInternal: return "internal error";
  }
  return "unknown error";
}

namespace detail {

std::string format(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  va_list ap2;
  va_copy(ap2, ap);
  const int n = std::vsnprintf(nullptr, 0, fmt, ap);
  va_end(ap);
  std::string out;
  if (n > 0) {
    out.resize(static_cast<std::size_t>(n));
    std::vsnprintf(out.data(), out.size() + 1, fmt, ap2);
  }
  va_end(ap2);
  return out;
}

void throw_error(ErrorCode code, const char* file, int line, const std::string& msg) {
  if (code == ErrorCode::kCancelled) throw Cancelled();
  if (file != nullptr) throw Error(code, format("%s (%s:%d)", msg.c_str(), file, line));
  throw Error(code, msg);
}

}  // namespace detail
}  // namespace vs
