// --backend auto|cpu|cuda and --cuda-device: which backend the server takes, and why.
#include <gtest/gtest.h>

#include "server.hpp"
#include "vectorscale/core/error.hpp"

namespace {

namespace vb = vs::builder;

vb::ServerOptions with_backend(const std::string& backend, int device = -1) {
  vb::ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.backend = backend;
  o.cuda_device = device;
  o.log = [](const std::string&) {};
  return o;
}

vs::ErrorCode error_of(const vb::ServerOptions& o) {
  try {
    (void)vb::Server::create(o);
  } catch (const vs::Error& e) {
    return e.code();
  }
  return vs::ErrorCode::kInternal;  // no error: the callers never expect this
}

TEST(BackendChoice, CpuIsCpu) {
  const auto s = vb::Server::create(with_backend("cpu"));
  EXPECT_EQ(s->backend_name(), "cpu");
  EXPECT_EQ(s->backend_detail(), "as asked");
}

// auto: the CUDA backend where a device is usable, else the CPU backend, saying why.
TEST(BackendChoice, AutoSaysWhichAndWhy) {
  const auto s = vb::Server::create(with_backend("auto"));
  EXPECT_EQ(s->backend_detail().rfind("auto: ", 0), 0u) << s->backend_detail();
  if (s->backend_name() == "cpu") {
    EXPECT_GT(s->backend_detail().size(), 6u);  // the reason: no device, or a build without CUDA
  } else {
    EXPECT_EQ(s->backend_name(), "cuda");
  }
}

// cuda: refused with the reason where no device is usable (or CUDA is not compiled in).
TEST(BackendChoice, CudaWithoutADeviceIsRefused) {
  const auto automatic = vb::Server::create(with_backend("auto"));
  if (automatic->backend_name() == "cuda") GTEST_SKIP() << "a CUDA device is present: " << automatic->backend_detail();
  EXPECT_EQ(error_of(with_backend("cuda")), vs::ErrorCode::kUnsupported);
}

TEST(BackendChoice, BadChoicesAreInvalid) {
  EXPECT_EQ(error_of(with_backend("tpu")), vs::ErrorCode::kInvalidArgument);
  EXPECT_EQ(error_of(with_backend("cpu", 0)), vs::ErrorCode::kInvalidArgument);
}

}  // namespace
