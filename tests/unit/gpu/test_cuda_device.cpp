// GPU smoke test (ctest label `gpu`): skipped with the runtime's reason where no device exists.
#include <gtest/gtest.h>

#include "vectorscale/cuda/device_probe.hpp"

TEST(CudaDevice, SmokeKernelRunsWhereADeviceExists) {
  const auto report = vs::cuda::probe_devices();
  if (report.device_count == 0) GTEST_SKIP() << "no CUDA device: " << report.reason;
  std::string reason;
  EXPECT_TRUE(vs::cuda::run_smoke_kernel(reason)) << reason;
  EXPECT_FALSE(report.first_name.empty());
  EXPECT_GT(report.first_total_memory, 0u);
}
