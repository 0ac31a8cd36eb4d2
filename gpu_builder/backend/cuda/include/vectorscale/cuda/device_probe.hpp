/**
 * @file device_probe.hpp
 * @brief Host-compilable question "is there a usable CUDA device?" (no CUDA headers).
 */
#pragma once
#include <string>

namespace vs::cuda {

/** What the CUDA runtime says about the devices of this host. */
struct DeviceReport {
  int device_count = 0;     ///< usable devices; 0 when none or the driver is missing
  std::string reason;       ///< why there is none (runtime error string), empty otherwise
  std::string first_name;   ///< name of device 0 when present
  std::size_t first_total_memory = 0;  ///< bytes of global memory of device 0
};

/** Queries the runtime; never throws, never aborts. */
[[nodiscard]] DeviceReport probe_devices() noexcept;

/** Runs a trivial kernel on device 0 and checks its result; false with reason on failure. */
[[nodiscard]] bool run_smoke_kernel(std::string& reason) noexcept;

}  // namespace vs::cuda
