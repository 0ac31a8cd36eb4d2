// Page-image writer of index format v1 (README.md §8): lays out a finished graph as meta,
// quantizer, label overflow and node pages. Pure function of its input: the same graph gives
// the same bytes on every machine (all padding zeroed, fixed placement of records).
#include "vectorscale/format/writer.hpp"

#include "vectorscale/core/error.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace vs::format {

namespace {

// Ceiling division for page counts.
std::uint64_t ceil_div(std::uint64_t a, std::uint64_t b) {
  return (a + b - 1) / b;
}

// True when node's CSR labels contain label.
bool node_has_label(const GraphInput& in, std::uint32_t node, std::int16_t label) {
  if (in.label_offsets.empty()) return false;
  const auto first = in.label_values.begin() + in.label_offsets[node];
  const auto last = in.label_values.begin() + in.label_offsets[node + 1];
  return std::binary_search(first, last, label);
}

// Checks the label inputs (CSR shape, capacity, starts) of a graph.
void check_labels(const GraphInput& in) {
  const MetaInfo& m = in.meta;
  if (!m.has_labels) {
    VS_EXPECTS(in.label_offsets.empty() && in.label_values.empty() && in.label_starts.empty(),
               "labels given for an index without has_labels");
    return;
  }
  if (!in.label_offsets.empty()) {
    VS_EXPECTS(in.label_offsets.size() == in.num_nodes + 1,
               "label_offsets has %zu entries, expected num_nodes + 1 = %zu", in.label_offsets.size(),
               in.num_nodes + 1);
    VS_EXPECTS(in.label_offsets[0] == 0, "label_offsets[0] is %u, expected 0", in.label_offsets[0]);
    for (std::size_t i = 0; i < in.num_nodes; ++i) {
      VS_EXPECTS(in.label_offsets[i + 1] >= in.label_offsets[i], "label_offsets decrease at node %zu", i);
      const std::uint32_t n = in.label_offsets[i + 1] - in.label_offsets[i];
      VS_EXPECTS(n <= m.label_capacity, "node %zu has %u labels, more than label_capacity %u", i, n,
                 static_cast<unsigned>(m.label_capacity));
    }
    VS_EXPECTS(in.label_offsets[in.num_nodes] == in.label_values.size(),
               "label_offsets end at %u but there are %zu label values", in.label_offsets[in.num_nodes],
               in.label_values.size());
  } else {
    VS_EXPECTS(in.label_values.empty(), "label values given without label_offsets");
  }
  for (std::size_t i = 0; i < in.label_starts.size(); ++i) {
    const LabelNode& s = in.label_starts[i];
    VS_EXPECTS(i == 0 || in.label_starts[i - 1].label < s.label,
               "label starts are not sorted by unique label at position %zu (label %d)", i, static_cast<int>(s.label));
    VS_EXPECTS(s.node < in.num_nodes, "label %d starts at node %u of %zu", static_cast<int>(s.label), s.node,
               in.num_nodes);
    VS_EXPECTS(node_has_label(in, s.node, s.label), "label %d starts at node %u, which lacks it",
               static_cast<int>(s.label), s.node);
  }
}

// Writes the entries of one label start into 8 bytes (label first).
void store_label_start(std::byte* e, std::int16_t label, Tid node) {
  store_i16(e, 0, label);
  store_u16(e, 2, node.offset);
  store_u32(e, 4, node.block);
}

// Sets pd_lower of a page being written.
void set_pd_lower(std::span<std::byte> page, std::size_t lower) {
  PageHeaderMirror h = read_page_header(page);
  h.pd_lower = static_cast<std::uint16_t>(lower);
  write_page_header(page, h);
}

}  // namespace

// Validates the input and places every part.
IndexPlan plan_index(const GraphInput& in, std::uint32_t page_size) {
  VS_EXPECTS(is_valid_page_size(page_size), "page size %u is not a power of two in 1024..32768", page_size);
  const MetaInfo& m = in.meta;
  IndexPlan plan;
  plan.layout = NodeLayout::from_meta(m, page_size);
  const NodeLayout& l = plan.layout;
  const std::size_t n = in.num_nodes;

  VS_EXPECTS(in.heap_tids.size() == n, "%zu heap TIDs for %zu nodes", in.heap_tids.size(), n);
  VS_EXPECTS(in.payloads.size() == n * l.payload_size, "%zu payload bytes, expected %zu nodes x %u bytes",
             in.payloads.size(), n, l.payload_size);
  VS_EXPECTS(in.degrees.size() == n, "%zu degrees for %zu nodes", in.degrees.size(), n);
  VS_EXPECTS(in.neighbors.size() == n * in.stride, "%zu neighbor entries, expected %zu x stride %zu",
             in.neighbors.size(), n, in.stride);
  for (std::size_t i = 0; i < n; ++i)
    VS_EXPECTS(in.degrees[i] <= m.num_neighbors && in.degrees[i] <= in.stride,
               "node %zu has degree %u, above R = %u or stride %zu", i, in.degrees[i], m.num_neighbors, in.stride);
  if (n > 0) {
    VS_EXPECTS(in.entry_node < n, "entry node %u is not one of the %zu nodes", in.entry_node, n);
  } else {
    VS_EXPECTS(in.entry_node == kNoNode, "entry node %u given for an empty graph", in.entry_node);
  }

  std::uint64_t stream = 0;
  if (m.storage == StorageLayout::kMemoryOptimized) stream = sbq::stream_length(m.indexed_dims, m.bits_per_dim);
  VS_EXPECTS(in.quantizer_stream.size() == stream, "quantizer stream of %zu values, expected %llu",
             in.quantizer_stream.size(), static_cast<unsigned long long>(stream));
  for (std::size_t i = 0; i < in.quantizer_stream.size(); ++i) {
    const float v = in.quantizer_stream[i];
    VS_EXPECTS(std::isfinite(v), "quantizer value %zu is not finite", i);
    VS_EXPECTS(i < m.indexed_dims || v >= 0.0f, "quantizer stddev %zu is negative", i - m.indexed_dims);
  }
  check_labels(in);

  std::uint64_t next = 1;
  if (stream > 0) {
    plan.quantizer_first_block = static_cast<std::uint32_t>(next);
    plan.quantizer_pages = static_cast<std::uint32_t>(ceil_div(stream, quantizer_floats_per_page(page_size)));
    next += plan.quantizer_pages;
  }
  const std::uint64_t starts = in.label_starts.size();
  plan.label_inline_count =
      static_cast<std::uint32_t>(std::min<std::uint64_t>(starts, inline_label_capacity(page_size)));
  if (starts > plan.label_inline_count) {
    plan.label_overflow_first_block = static_cast<std::uint32_t>(next);
    plan.label_overflow_pages =
        static_cast<std::uint32_t>(ceil_div(starts - plan.label_inline_count, overflow_labels_per_page(page_size)));
    next += plan.label_overflow_pages;
  }
  plan.first_node_block = static_cast<std::uint32_t>(next);
  const std::uint64_t node_pages = ceil_div(n, l.nodes_per_page);
  VS_EXPECTS(next + node_pages < kInvalidBlock, "%zu nodes need more than 2^32 - 1 blocks", n);
  plan.node_pages = static_cast<std::uint32_t>(node_pages);
  plan.total_blocks = static_cast<std::uint32_t>(next + node_pages);
  return plan;
}

// Block count only.
std::uint32_t count_index_pages(const GraphInput& in, std::uint32_t page_size) {
  return plan_index(in, page_size).total_blocks;
}

// Node i sits at (first_node_block + i / npp, i % npp + 1).
Tid node_tid(const IndexPlan& plan, std::uint64_t node) {
  const std::uint64_t npp = plan.layout.nodes_per_page;
  return Tid{static_cast<std::uint32_t>(plan.first_node_block + node / npp),
             static_cast<std::uint16_t>(node % npp + 1)};
}

// Emits every page in block order.
MetaInfo write_index(const GraphInput& in, std::uint32_t page_size, const PageSink& sink) {
  VS_EXPECTS(static_cast<bool>(sink), "write_index needs a page sink");
  const IndexPlan plan = plan_index(in, page_size);
  const NodeLayout& l = plan.layout;

  MetaInfo m = in.meta;
  m.entry_point = in.num_nodes > 0 ? node_tid(plan, in.entry_node) : Tid::invalid();
  m.node_count = in.num_nodes;
  m.deleted_count = 0;
  m.free_list_head = Tid::invalid();
  m.quantizer_first_block = plan.quantizer_first_block;
  m.quantizer_pages = plan.quantizer_pages;
  m.first_node_block = plan.first_node_block;
  m.node_record_size = l.record_size;
  m.nodes_per_page = l.nodes_per_page;
  m.label_count = static_cast<std::uint32_t>(in.label_starts.size());
  m.label_overflow_first_block = plan.label_overflow_first_block;
  m.label_inline_count = plan.label_inline_count;
  m.labels.clear();
  for (std::uint32_t i = 0; i < plan.label_inline_count; ++i)
    m.labels.push_back(LabelStart{in.label_starts[i].label, node_tid(plan, in.label_starts[i].node)});
  const std::string why = check_meta_info(m, page_size, plan.total_blocks);
  VS_EXPECTS(why.empty(), "invalid index options: %s", why.c_str());

  std::vector<std::byte> buf(page_size);
  const std::span<std::byte> page(buf);
  encode_meta(m, page);
  sink(0, page);

  // Quantizer pages: u32 first_element, u32 count, count floats; chained.
  const std::uint32_t fpp = quantizer_floats_per_page(page_size);
  for (std::uint32_t p = 0; p < plan.quantizer_pages; ++p) {
    const std::uint32_t block = plan.quantizer_first_block + p;
    init_page(page, PageType::kQuantizer, p + 1 < plan.quantizer_pages ? block + 1 : kInvalidBlock);
    const std::size_t first = static_cast<std::size_t>(p) * fpp;
    const std::size_t count = std::min<std::size_t>(fpp, in.quantizer_stream.size() - first);
    std::byte* c = page.data() + kPageHeaderSize;
    store_u32(c, 0, static_cast<std::uint32_t>(first));
    store_u32(c, 4, static_cast<std::uint32_t>(count));
    for (std::size_t i = 0; i < count; ++i) store_f32(c, 8 + 4 * i, in.quantizer_stream[first + i]);
    set_pd_lower(page, kPageHeaderSize + 8 + 4 * count);
    sink(block, page);
  }

  // Label overflow pages, chained (sorted here; later inserts append in any order).
  const std::uint32_t lpp = overflow_labels_per_page(page_size);
  std::vector<LabelStart> entries;
  for (std::uint32_t p = 0; p < plan.label_overflow_pages; ++p) {
    const std::uint32_t block = plan.label_overflow_first_block + p;
    const std::size_t first = plan.label_inline_count + static_cast<std::size_t>(p) * lpp;
    const std::size_t count = std::min<std::size_t>(lpp, in.label_starts.size() - first);
    entries.clear();
    for (std::size_t i = 0; i < count; ++i)
      entries.push_back(LabelStart{in.label_starts[first + i].label, node_tid(plan, in.label_starts[first + i].node)});
    write_overflow_page(page, entries, p + 1 < plan.label_overflow_pages ? block + 1 : kInvalidBlock);
    sink(block, page);
  }

  // Node pages: record k at pd_special - (k+1)*aligned, nodes in input order.
  std::vector<Tid> tids;
  std::vector<std::uint32_t> sorted;
  tids.reserve(l.num_neighbors);
  for (std::uint32_t p = 0; p < plan.node_pages; ++p) {
    const std::uint32_t block = plan.first_node_block + p;
    init_page(page, PageType::kNode, p + 1 < plan.node_pages ? block + 1 : kInvalidBlock);
    const std::size_t first = static_cast<std::size_t>(p) * l.nodes_per_page;
    const std::size_t count = std::min<std::size_t>(l.nodes_per_page, in.num_nodes - first);
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t i = first + k;
      const std::uint32_t off = l.record_offset(static_cast<std::uint32_t>(k));
      write_item_id(page, static_cast<std::uint16_t>(k + 1),
                    ItemId{static_cast<std::uint16_t>(off), kLpNormal, static_cast<std::uint16_t>(l.record_size)});
      NodeWriter w(page.subspan(off, l.record_size), l);
      w.clear();
      w.set_state(NodeState::kLive);
      VS_EXPECTS(in.heap_tids[i].valid(), "node %zu has an invalid heap TID (%u,%u)", i, in.heap_tids[i].block,
                 static_cast<unsigned>(in.heap_tids[i].offset));
      w.set_heap_tid(in.heap_tids[i]);
      if (!in.label_offsets.empty())
        w.set_labels(in.label_values.subspan(in.label_offsets[i], in.label_offsets[i + 1] - in.label_offsets[i]));
      w.set_payload(in.payloads.subspan(i * l.payload_size, l.payload_size));
      const auto row = in.neighbors.subspan(i * in.stride, in.degrees[i]);
      sorted.assign(row.begin(), row.end());
      std::sort(sorted.begin(), sorted.end());
      for (std::size_t j = 0; j < sorted.size(); ++j) {
        VS_EXPECTS(sorted[j] < in.num_nodes, "node %zu has neighbor %u of %zu nodes", i, sorted[j], in.num_nodes);
        VS_EXPECTS(sorted[j] != i, "node %zu lists itself as a neighbor", i);
        VS_EXPECTS(j == 0 || sorted[j] != sorted[j - 1], "node %zu lists neighbor %u twice", i, sorted[j]);
      }
      tids.clear();
      for (const std::uint32_t nb : row) tids.push_back(node_tid(plan, nb));
      w.set_neighbors(tids);
    }
    set_pd_lower(page, kPageHeaderSize + kItemIdSize * count);
    PageHeaderMirror h = read_page_header(page);
    h.pd_upper = static_cast<std::uint16_t>(l.record_offset(static_cast<std::uint32_t>(count - 1)));
    write_page_header(page, h);
    sink(block, page);
  }
  return m;
}

// Label overflow page: u32 count, u32 zero, then count label start entries.
void write_overflow_page(std::span<std::byte> page, std::span<const LabelStart> entries, std::uint32_t next_blkno) {
  VS_EXPECTS(entries.size() <= overflow_labels_per_page(static_cast<std::uint32_t>(page.size())),
             "%zu label starts for one overflow page", entries.size());
  init_page(page, PageType::kLabelOverflow, next_blkno);
  std::byte* c = page.data() + kPageHeaderSize;
  store_u32(c, 0, static_cast<std::uint32_t>(entries.size()));
  for (std::size_t i = 0; i < entries.size(); ++i)
    store_label_start(c + 8 + kLabelStartSize * i, entries[i].label, entries[i].node);
  set_pd_lower(page, kPageHeaderSize + 8 + kLabelStartSize * entries.size());
}

}  // namespace vs::format
