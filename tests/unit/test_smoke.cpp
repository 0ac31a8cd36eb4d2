#include <gtest/gtest.h>

#include "vectorscale/core/error.hpp"
#include "vectorscale/core/threads.hpp"

#include <atomic>

TEST(Core, ExpectsThrowsInvalidArgumentWithMessage) {
  try {
    VS_EXPECTS(1 + 1 == 3, "value %d out of range", 7);
    FAIL() << "no throw";
  } catch (const vs::Error& e) {
    EXPECT_EQ(e.code(), vs::ErrorCode::kInvalidArgument);
    EXPECT_STREQ(e.what(), "value 7 out of range");
  }
}

TEST(Core, RunWorkersRethrowsAfterJoiningAll) {
  std::atomic<int> ran{0};
  EXPECT_THROW(vs::run_workers(4,
                               [&](std::size_t w) {
                                 ran.fetch_add(1);
                                 if (w == 2) VS_FAIL(vs::ErrorCode::kInternal, "worker %zu failed", w);
                               }),
               vs::Error);
  EXPECT_EQ(ran.load(), 4);
}
