/**
 * @file crc32c.hpp
 * @brief CRC-32C (Castagnoli) of a byte span: the per-page checksum of the builder protocol.
 *
 * Written here because Debian 12 packages no C/C++ CRC-32C library (abseil 20220623 has no
 * public one). Uses the SSE4.2 crc32 instruction when the CPU has it, a table otherwise; both
 * give the standard result (crc32c("123456789") == 0xE3069283).
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace vs {

/** CRC-32C of bytes, continuing from crc (0 to start). */
[[nodiscard]] std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t crc = 0) noexcept;

}  // namespace vs
