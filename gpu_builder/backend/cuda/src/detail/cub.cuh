// The CUB device-wide algorithms the backend calls (radix sort, run-length encoding, exclusive
// scan, reduction): the toolkit's, or the CUDA emulator's host versions of the same calls.
#pragma once

#if defined(VS_CUDA_EMULATION)
#include "vectorscale/cuda/emu/cub.hpp"
#else
#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_reduce.cuh>
#include <cub/device/device_run_length_encode.cuh>
#include <cub/device/device_scan.cuh>
#endif
