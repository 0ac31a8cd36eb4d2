// Internal to the CUDA emulator: the state its runtime (runtime.cpp) and its cuBLAS
// (cublas.cpp) share.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>

namespace vs::cuda::emu {

/** The process's sticky error (cudaSuccess while there is none). */
cudaError_t sticky_error() noexcept;
/** Makes `error` sticky (the first one stays) and prints `what` once to stderr. */
void fail_sticky(cudaError_t error, const std::string& what);
/** Whether [p, p + bytes) lies inside one device allocation. */
bool in_device_memory(const void* p, std::size_t bytes) noexcept;
/** Whether a stream handle is null (the default stream) or a live stream. */
bool valid_stream(cudaStream_t stream) noexcept;

/** A status code with the library's name and text for it. */
template <class Code>
struct CodeText {
  Code code;
  const char* name;
  const char* text;
};

/** The entry of `table` for `code`, or `unknown`. */
template <class Code, std::size_t N>
const CodeText<Code>& describe(const CodeText<Code> (&table)[N], const CodeText<Code>& unknown, Code code) noexcept {
  for (const CodeText<Code>& e : table)
    if (e.code == code) return e;
  return unknown;
}

}  // namespace vs::cuda::emu
