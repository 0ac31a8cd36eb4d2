/**
 * @file reader.hpp
 * @brief Reads the parts of an index format v1 image: quantizer stream, label starts, nodes.
 *
 * Pages come from a PageSource callback (the extension reads buffers, tests read a vector
 * of images). The reader checks what it relies on and throws vs::Error{kCorrupt} with the
 * reason; full checking is validate.hpp's job.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include "vectorscale/format/records.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace vs::format {

/** Returns the image of a block; the span must stay valid until the next call. */
using PageSource = std::function<std::span<const std::byte>(std::uint32_t block)>;

/** Follows the quantizer chain and returns the stream; throws kCorrupt. Empty for plain. */
[[nodiscard]] std::vector<float> read_quantizer_stream(const MetaInfo& meta, std::uint32_t page_size,
                                                       const PageSource& source);

/**
 * All label starts (the inline ones and the overflow chain's), sorted by label; throws
 * kCorrupt. Overflow pages hold their entries in any order (inserts append to the last one).
 */
[[nodiscard]] std::vector<LabelStart> read_label_starts(const MetaInfo& meta, std::uint32_t page_size,
                                                        const PageSource& source);

/** The label starts on a label overflow page (block names it in errors); throws kCorrupt. */
[[nodiscard]] std::vector<LabelStart> overflow_page_entries(std::span<const std::byte> page, std::uint32_t block);

/** True when the page carries our page id and the node page type. */
[[nodiscard]] bool is_node_page(std::span<const std::byte> page);

/** Number of node records (line pointers) on a node page; throws kCorrupt. */
[[nodiscard]] std::uint16_t node_page_count(std::span<const std::byte> page, const NodeLayout& layout);

/** View of record offset (1-based) of a node page; checks its line pointer; throws kCorrupt. */
[[nodiscard]] NodeView node_at(std::span<const std::byte> page, std::uint16_t offset, const NodeLayout& layout);

/** Mutable view of record offset (1-based) of a node page; throws kCorrupt. */
[[nodiscard]] NodeWriter node_writer_at(std::span<std::byte> page, std::uint16_t offset, const NodeLayout& layout);

/** Initialises an empty node page (no records). */
void init_node_page(std::span<std::byte> page, std::uint32_t next_blkno = kInvalidBlock);

/**
 * Adds one record slot to a node page at the placement-rule offset, zeroed with invalid
 * neighbor slots (state 0: the caller fills it). Returns its 1-based offset, or 0 if the
 * page is full. Throws kCorrupt if the page is not a sound node page.
 */
[[nodiscard]] std::uint16_t append_node_slot(std::span<std::byte> page, const NodeLayout& layout);

}  // namespace vs::format
