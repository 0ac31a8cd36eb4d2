/**
 * @file validate.hpp
 * @brief Validation of index format v1 page images, one page at a time and across pages.
 *
 * The extension validates every page it did not write itself (gpu_builder output) before
 * it touches a buffer, and diskann_validate_index() walks a whole index with IndexValidator.
 * Functions never throw on malformed input and never read outside the given span; the
 * first problem found is reported with its block, line pointer or field, e.g.
 * "block 7: line pointer 3 (offset 7800, length 480) overlaps line pointer 2".
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include "vectorscale/format/records.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>

namespace vs::format {

/** Outcome of a check: ok, or the reason it failed. */
struct PageCheck {
  bool ok = true;      ///< true when nothing was wrong
  std::string reason;  ///< what was wrong (empty when ok)

  /** A passing check. */
  [[nodiscard]] static PageCheck pass() { return {}; }
  /** A failing check with a reason. */
  [[nodiscard]] static PageCheck fail(std::string why) { return {false, std::move(why)}; }
  /** True when ok. */
  explicit operator bool() const noexcept { return ok; }
};

/** What a page is checked against. */
struct Expectations {
  std::uint32_t page_size = kDefaultPageSize;  ///< BLCKSZ
  std::uint32_t total_blocks = 0;              ///< blocks in the index; 0 = unknown
  std::optional<MetaInfo> meta;                ///< decoded meta; required for non-meta pages
  bool require_zero_lsn_checksum = false;      ///< images from a builder: lsn/checksum/flags 0
};

/** Checks block 0; on success fills *out (when given) with the decoded meta. */
[[nodiscard]] PageCheck validate_meta_page(std::span<const std::byte> page, const Expectations& expect,
                                           MetaInfo* out = nullptr);

/** Checks one page; block 0 goes to validate_meta_page, others need expect.meta. */
[[nodiscard]] PageCheck validate_page(std::span<const std::byte> page, std::uint32_t block, const Expectations& expect);

/** Optional hook: true when a live node's heap TID is one the caller sent. */
using HeapTidCheck = std::function<bool(Tid heap)>;

/**
 * Validates a whole index: feed every block once, in any order, then call finish().
 * Per-page checks run on add_page (pages arriving before block 0 are kept until it does);
 * finish() checks what spans pages: neighbors and the entry point reach existing records,
 * label starts, the quantizer and label overflow chains, node/deleted counts, the free
 * list, duplicate heap TIDs of live nodes, and the heap TID hook.
 */
class IndexValidator {
 public:
  /** Starts a validation of an index of total_blocks blocks of page_size bytes. */
  IndexValidator(std::uint32_t page_size, std::uint32_t total_blocks, bool require_zero_lsn_checksum = false,
                 HeapTidCheck heap_check = {});
  ~IndexValidator();
  IndexValidator(const IndexValidator&) = delete;
  IndexValidator& operator=(const IndexValidator&) = delete;
  IndexValidator(IndexValidator&&) noexcept;
  IndexValidator& operator=(IndexValidator&&) noexcept;

  /** Checks one page and records what finish() needs; the first failure sticks. */
  PageCheck add_page(std::uint32_t block, std::span<const std::byte> page);
  /** Runs the cross-page checks; returns the first failure seen overall. */
  [[nodiscard]] PageCheck finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace vs::format
