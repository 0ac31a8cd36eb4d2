// Data sizes of the `gpu` tests: a device's, or smaller ones where the same tests run on the
// CUDA emulator (vs_gpu_emu_tests, built with VS_CUDA_EMULATOR_TESTS): there every thread of a
// block is a fiber on one CPU core, thousands of times slower than a device.
#pragma once

#include <cstddef>

namespace vs::test {

#if defined(VS_CUDA_EMULATOR_TESTS)
inline constexpr bool kCudaEmulator = true;
#else
inline constexpr bool kCudaEmulator = false;
#endif

/** `device` rows on a CUDA device, `emulated` on the CUDA emulator. */
constexpr std::size_t gpu_rows(std::size_t device, std::size_t emulated) {
  return kCudaEmulator ? emulated : device;
}

}  // namespace vs::test
