// libFuzzer target: arbitrary bytes into the index format v1 validators and readers. They
// must never crash, read out of bounds or trip UBSan, whatever the page holds.
//
// Input layout: byte 0 picks the mode, byte 1 a block, bytes 2-3 a little-endian offset, the
// rest is data. Modes 0-2 patch the data over a valid seed index (built in
// LLVMFuzzerInitialize) so mutations start deep inside well-formed pages; mode 3 validates
// the data itself as raw pages.
#include "vectorscale/core/error.hpp"
#include "vectorscale/format/reader.hpp"
#include "vectorscale/format/validate.hpp"
#include "vectorscale/format/writer.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace vf = vs::format;

namespace {

constexpr std::uint32_t kPage = 1024;

/** The seed index: a small labeled SBQ graph with overflow labels. */
struct Seed {
  std::vector<std::vector<std::byte>> pages;
  vf::MetaInfo meta;
};

// Builds the seed index deterministically.
Seed build_seed() {
  const std::size_t n = 40;
  const std::uint32_t dims = 70;
  vf::GraphInput in;
  in.meta.storage = vf::StorageLayout::kMemoryOptimized;
  in.meta.column_dims = in.meta.indexed_dims = dims;
  in.meta.bits_per_dim = 2;
  in.meta.num_neighbors = 4;
  in.meta.search_list_size = 10;
  in.meta.has_labels = true;
  in.meta.label_capacity = 3;
  std::vector<vf::Tid> heap;
  std::vector<std::byte> payloads(n * 8 * vs::sbq::code_words(dims, 2));
  std::vector<std::uint32_t> nbrs, deg;
  std::vector<std::uint32_t> loff{0};
  std::vector<std::int16_t> lval;
  std::vector<vf::LabelNode> starts;
  for (std::size_t i = 0; i < n; ++i) {
    heap.push_back(vf::Tid{static_cast<std::uint32_t>(i / 10), static_cast<std::uint16_t>(i % 10 + 1)});
    for (std::uint32_t k = 1; k <= 4; ++k) nbrs.push_back(static_cast<std::uint32_t>((i + k * 7) % n));
    deg.push_back(static_cast<std::uint32_t>(i % 5));
    for (int k = 0; k < 3; ++k) lval.push_back(static_cast<std::int16_t>(i * 3 + k));
    loff.push_back(static_cast<std::uint32_t>(lval.size()));
  }
  for (std::size_t i = 0; i < payloads.size(); ++i) payloads[i] = static_cast<std::byte>(i * 31);
  for (std::size_t l = 0; l < lval.size(); ++l)
    starts.push_back(vf::LabelNode{lval[l], static_cast<std::uint32_t>(l / 3)});
  std::vector<float> q(2 * dims, 0.5f);
  in.num_nodes = n;
  in.heap_tids = heap;
  in.payloads = payloads;
  in.neighbors = nbrs;
  in.stride = 4;
  in.degrees = deg;
  in.label_offsets = loff;
  in.label_values = lval;
  in.quantizer_stream = q;
  in.label_starts = starts;
  in.entry_node = 3;
  Seed s;
  s.meta = vf::write_index(
      in, kPage, [&](std::uint32_t, std::span<const std::byte> p) { s.pages.emplace_back(p.begin(), p.end()); });
  return s;
}

const Seed& seed() {
  static const Seed s = build_seed();
  return s;
}

// Copies data over page at offset, clipped to the page.
void patch(std::vector<std::byte>& page, std::size_t offset, const std::uint8_t* data, std::size_t size) {
  offset %= page.size();
  const std::size_t n = std::min(size, page.size() - offset);
  std::memcpy(page.data() + offset, data, n);
}

// Runs the readers; they may throw vs::Error{kCorrupt} but nothing else.
void exercise_readers(const std::vector<std::vector<std::byte>>& pages) {
  const vf::PageSource src = [&](std::uint32_t b) {
    return b < pages.size() ? std::span<const std::byte>(pages[b]) : std::span<const std::byte>();
  };
  try {
    const vf::MetaInfo m = vf::decode_meta(pages[0]);
    (void)vf::read_quantizer_stream(m, kPage, src);
    (void)vf::read_label_starts(m, kPage, src);
    const vf::NodeLayout l = vf::NodeLayout::from_meta(m, kPage);
    for (std::size_t b = m.first_node_block; b < pages.size(); ++b) {
      const std::uint16_t count = vf::node_page_count(pages[b], l);
      for (std::uint16_t k = 1; k <= count; ++k) {
        const vf::NodeView v = vf::node_at(pages[b], k, l);
        (void)v.labels();
        (void)v.neighbors();
      }
    }
  } catch (const vs::Error&) {
  }
}

// Validates all pages with IndexValidator, in block order or reversed.
void validate_index(const std::vector<std::vector<std::byte>>& pages, bool reversed) {
  const auto total = static_cast<std::uint32_t>(pages.size());
  vf::IndexValidator v(kPage, total, true, [](vf::Tid t) { return t.block < 4; });
  for (std::uint32_t i = 0; i < total; ++i) {
    const std::uint32_t b = reversed ? total - 1 - i : i;
    (void)v.add_page(b, pages[b]);
  }
  (void)v.finish();
}

// Writes a few valid-page seeds into an empty corpus directory.
void write_corpus(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec) || !std::filesystem::is_empty(dir, ec)) return;
  const Seed& s = seed();
  for (std::uint8_t mode = 0; mode < 3; ++mode) {
    std::ofstream(dir + "/seed_patch_" + std::to_string(mode), std::ios::binary)
        .write(reinterpret_cast<const char*>(&mode), 1);
  }
  for (std::size_t b = 0; b < s.pages.size() && b < 4; ++b) {
    std::ofstream f(dir + "/seed_raw_block_" + std::to_string(b), std::ios::binary);
    const char hdr[4] = {3, static_cast<char>(b), 0, 0};
    f.write(hdr, 4);
    f.write(reinterpret_cast<const char*>(s.pages[b].data()), static_cast<std::streamsize>(s.pages[b].size()));
  }
}

}  // namespace

// Builds the seed index and fills an empty corpus directory with valid pages.
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  (void)seed();
  for (int i = 1; i < *argc; ++i) {
    const std::string a = (*argv)[i];
    if (!a.empty() && a[0] != '-') write_corpus(a);
  }
  return 0;
}

// One fuzz input.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const Seed& s = seed();
  const std::uint8_t mode = data[0] % 4;
  const std::uint8_t block_byte = size > 1 ? data[1] : 0;
  const std::size_t offset = size > 3 ? (data[2] | (static_cast<std::size_t>(data[3]) << 8)) : 0;
  const std::uint8_t* body = size > 4 ? data + 4 : data + size;
  const std::size_t body_size = size > 4 ? size - 4 : 0;
  const auto total = static_cast<std::uint32_t>(s.pages.size());

  vf::Expectations e;
  e.page_size = kPage;
  e.total_blocks = total;
  e.require_zero_lsn_checksum = (block_byte & 0x80) != 0;

  if (mode == 0) {  // patched meta page
    std::vector<std::byte> page = s.pages[0];
    patch(page, offset, body, body_size);
    vf::MetaInfo m;
    (void)vf::validate_meta_page(page, e, &m);
    try {
      (void)vf::decode_meta(page);
    } catch (const vs::Error&) {
    }
    std::vector<std::vector<std::byte>> pages = s.pages;
    pages[0] = page;
    validate_index(pages, false);
    exercise_readers(pages);
  } else if (mode == 1) {  // patched non-meta page, alone and in the index
    const std::uint32_t b = 1 + block_byte % (total - 1);
    std::vector<std::vector<std::byte>> pages = s.pages;
    patch(pages[b], offset, body, body_size);
    e.meta = s.meta;
    (void)vf::validate_page(pages[b], b, e);
    validate_index(pages, (block_byte & 0x40) != 0);
    exercise_readers(pages);
  } else if (mode == 2) {  // two patches in two blocks, pages possibly truncated
    std::vector<std::vector<std::byte>> pages = s.pages;
    const std::uint32_t b1 = block_byte % total;
    const std::size_t half = body_size / 2;
    patch(pages[b1], offset, body, half);
    const std::uint32_t b2 = (block_byte / 7) % total;
    patch(pages[b2], offset * 3, body + half, body_size - half);
    if ((block_byte & 0x80) != 0) pages[b2].resize(offset % kPage);
    validate_index(pages, (block_byte & 0x40) != 0);
  } else {  // raw bytes as pages of any length
    std::vector<std::byte> raw(body_size);
    if (body_size > 0) std::memcpy(raw.data(), body, body_size);
    e.meta = s.meta;
    (void)vf::validate_meta_page(raw, e);
    (void)vf::validate_page(raw, block_byte % total, e);
    std::vector<std::vector<std::byte>> pages;
    for (std::size_t at = 0; at < raw.size(); at += kPage)
      pages.emplace_back(raw.begin() + static_cast<std::ptrdiff_t>(at),
                         raw.begin() + static_cast<std::ptrdiff_t>(std::min(raw.size(), at + kPage)));
    if (!pages.empty()) {
      validate_index(pages, false);
      if (pages[0].size() == kPage) exercise_readers(pages);
    }
  }
  return 0;
}
