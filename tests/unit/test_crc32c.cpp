// CRC-32C: standard check value, incremental use, and agreement of the two code paths.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "synthetic.hpp"
#include "vectorscale/core/crc32c.hpp"

namespace {

std::span<const std::byte> bytes_of(const char* s) { return {reinterpret_cast<const std::byte*>(s), std::strlen(s)}; }

TEST(Crc32c, StandardCheckValue) {
  EXPECT_EQ(vs::crc32c(bytes_of("123456789")), 0xE3069283u);
  EXPECT_EQ(vs::crc32c(bytes_of("")), 0u);
}

TEST(Crc32c, IncrementalEqualsWhole) {
  const auto data = vs::test::uniform(3000, 4);
  const std::span<const std::byte> all(reinterpret_cast<const std::byte*>(data.data()), data.size() * 4);
  for (const std::size_t cut : {0u, 1u, 7u, 8u, 4099u, 12000u}) {
    const std::uint32_t a = vs::crc32c(all.first(cut));
    EXPECT_EQ(vs::crc32c(all.subspan(cut), a), vs::crc32c(all)) << "cut " << cut;
  }
}

TEST(Crc32c, DetectsOneFlippedBit) {
  std::vector<std::byte> page(8192, std::byte{0x5A});
  const std::uint32_t before = vs::crc32c(page);
  page[4000] ^= std::byte{0x10};
  EXPECT_NE(vs::crc32c(page), before);
}

}  // namespace
