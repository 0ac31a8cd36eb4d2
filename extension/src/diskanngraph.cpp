/*
 * diskanngraph.cpp
 *		The page-based DiskANN insert.
 *
 * insert(p): greedy search from the entry point with the build's L over the stored payloads
 * (SBQ codes compared by Hamming distance, or plain floats by the index metric); RobustPrune
 * of the expanded nodes to at most R neighbors; p is appended as a new node record; then each
 * chosen neighbor n gets the reverse edge n -> p, re-pruned from n's point of view when n's
 * list is full. Payloads and neighbor lists read during one insert are cached for that insert
 * only, so memory stays O(L * R) whatever the index size.
 *
 * Pages are modified in shared buffers under their exclusive lock and marked dirty without
 * WAL: this runs only inside CREATE INDEX, which WAL-logs the whole relation at the end.
 */
#include <algorithm>
#include <bit>
#include <cstring>
#include <optional>
#include <utility>

#include "vectorscale/distance/distance.hpp"
#include "vectorscale/format/reader.hpp"
#include "vectorscale/format/writer.hpp"
#include "vectorscale/vamana/labels.hpp"
#include "vectorscale/vamana/prune.hpp"
#include "vectorscale/vamana/search.hpp"

#include "diskann.hpp"

extern "C" {
#include "access/generic_xlog.h"
#include "storage/lmgr.h"
}

#include "bridge/guard.hpp"
#include "diskanngraph.hpp"
#include "diskannutils.hpp"

using vs::format::Tid;

DiskannPageGraph::DiskannPageGraph(Relation index, const vs::format::MetaInfo &meta, vs::sbq::Quantizer quantizer,
								   Mode mode)
	: index_(index), mode_(mode), meta_(meta), layout_(vs::format::NodeLayout::from_meta(meta, BLCKSZ)),
	  quantizer_(std::move(quantizer)), code_(layout_.code_words),
	  plain_a_(layout_.indexed_dims), plain_b_(layout_.indexed_dims)
{
	cache_.reserve(4096);
	visited_.reserve(8192);
	if (mode_ == Mode::kBuild)	/* appends go to the end; kLive finds it under its locks */
		last_block_ = vs::pg::call([&] { return RelationGetNumberOfBlocks(index); }) - 1;
}

/* Distance between two stored payloads. */
float
DiskannPageGraph::distance(std::span<const std::byte> a, std::span<const std::byte> b)
{
	static_assert(std::endian::native == std::endian::little, "payloads are little-endian words");
	if (layout_.storage == vs::format::StorageLayout::kMemoryOptimized)	/* 8-aligned buffers */
		return (float) vs::distance::hamming(reinterpret_cast<const std::uint64_t *>(a.data()),
											 reinterpret_cast<const std::uint64_t *>(b.data()), layout_.code_words);
	std::memcpy(plain_a_.data(), a.data(), layout_.payload_size);
	std::memcpy(plain_b_.data(), b.data(), layout_.payload_size);
	return vs::distance::index_distance(meta_.metric, plain_a_.data(), plain_b_.data(), layout_.indexed_dims);
}

/*
 * Copies a record's payload and valid neighbors (reserved: no allocation). Out of line so that
 * it is not inlined into the sigsetjmp frame of vs::pg::call.
 */
__attribute__((noinline)) void
DiskannPageGraph::copy_node(const std::byte *rec, const vs::format::NodeLayout &layout, Cached &c) noexcept
{
	std::memcpy(c.payload.data(), rec + layout.payload_offset, layout.payload_size);
	const std::size_t nlabels = std::min<std::size_t>(vs::format::load_u16(rec, 2), layout.label_capacity);

	for (std::size_t i = 0; i < nlabels; ++i)
		c.labels.push_back(vs::format::load_i16(rec, vs::format::kNodeHeaderSize + 2 * i));
	/* a free slot's neighbors[0] links the free list, not the graph */
	if (vs::format::load_u16(rec, 0) == (std::uint16_t) vs::format::NodeState::kFree)
		return;
	const std::size_t count = std::min<std::size_t>(vs::format::load_u16(rec, 4), layout.num_neighbors);

	for (std::size_t i = 0; i < count; ++i)
	{
		const Tid	n = vs::format::load_tid6(rec + layout.neighbors_offset + vs::format::kTid6Size * i);

		if (n.valid())
			c.neighbors.push_back(n);
	}
}

/* Payload and neighbors of a node, read once per insert. */
const DiskannPageGraph::Cached &
DiskannPageGraph::load(Tid tid)
{
	auto		it = cache_.find(tid.key());

	if (it != cache_.end())
		return it->second;
	Cached		c;

	c.payload.resize(layout_.payload_size);
	c.neighbors.reserve(layout_.num_neighbors);	/* no allocation under the buffer lock */
	c.labels.reserve(layout_.label_capacity);
	DiskannVisitNode(index_, tid, layout_, [&](const std::byte *rec) noexcept { copy_node(rec, layout_, c); });
	return cache_.emplace(tid.key(), std::move(c)).first->second;
}

/* RobustPrune of candidates (TIDs) around self (label-aware when self has labels); at most R. */
void
DiskannPageGraph::prune(std::span<const std::byte> self, std::span<const std::int16_t> self_labels,
						std::vector<Tid> &candidates, std::vector<Tid> &out)
{
	std::vector<std::pair<float, Tid>> sorted;
	std::vector<float> to_p;
	std::vector<std::uint32_t> kept;
	std::vector<float> factor;

	for (const Tid c : candidates)
		sorted.emplace_back(distance(self, load(c).payload), c);
	std::sort(sorted.begin(), sorted.end(), [](const auto &a, const auto &b) {
		return a.first < b.first || (a.first == b.first && a.second.key() < b.second.key());
	});
	sorted.erase(std::unique(sorted.begin(), sorted.end(),
							 [](const auto &a, const auto &b) { return a.second == b.second; }),
				 sorted.end());
	for (const auto &s : sorted)
		to_p.push_back(s.first);
	vs::vamana::robust_prune(
		to_p, meta_.num_neighbors, meta_.max_alpha, meta_.metric != vs::distance::Metric::kInnerProduct,
		[&](std::size_t i, std::size_t j) {
			return distance(load(sorted[i].second).payload, load(sorted[j].second).payload);
		},
		[&](std::size_t i, std::size_t j) {
			/* Filtered DiskANN: s occludes c only if s carries every label c shares with self. */
			return self_labels.empty() ||
				vs::vamana::covers_intersection(load(sorted[i].second).labels, load(sorted[j].second).labels,
												self_labels);
		},
		kept, factor);
	out.clear();
	for (const std::uint32_t k : kept)
		out.push_back(sorted[k].second);
}

/* Appends a record to the last node page, or to a new one; returns its TID. */
Tid
DiskannPageGraph::append(std::span<const std::byte> record, std::span<const std::int16_t> labels)
{
	std::uint16_t offset = 0;
	BlockNumber block = last_block_;

	for (int attempt = 0; attempt < 2 && offset == 0; ++attempt)
	{
		Buffer		buf = InvalidBuffer;
		Page		page = nullptr;
		bool		fresh = attempt == 1 || block < meta_.first_node_block;

		vs::pg::call([&] {
			buf = fresh ? ReadBufferExtended(index_, MAIN_FORKNUM, P_NEW, RBM_NORMAL, nullptr)
				: ReadBuffer(index_, block);
			LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
			page = BufferGetPage(buf);
			block = BufferGetBlockNumber(buf);
		});
		const std::span<std::byte> bytes(reinterpret_cast<std::byte *>(page), BLCKSZ);

		if (fresh)
			vs::format::init_node_page(bytes);
		offset = vs::format::append_node_slot(bytes, layout_);
		if (offset != 0)
			std::memcpy(bytes.data() + layout_.record_offset(offset - 1u), record.data(), layout_.record_size);
		vs::pg::call([&] {
			if (fresh || offset != 0)
				MarkBufferDirty(buf);
			UnlockReleaseBuffer(buf);
		});
	}
	if (offset == 0)
		VS_FAIL(vs::ErrorCode::kInternal, "a new node page has no room for one record");
	last_block_ = block;
	meta_.node_count += 1;
	const Tid	self{block, offset};

	/*
	 * kBuild: a label seen for the first time starts at this node (meta_.labels holds them all;
	 * the build's end writes those beyond the meta page's room to overflow pages).
	 */
	for (const std::int16_t label : labels)
	{
		const auto	it = std::lower_bound(meta_.labels.begin(), meta_.labels.end(), label,
										  [](const vs::format::LabelStart &a, std::int16_t l) { return a.label < l; });

		if (it != meta_.labels.end() && it->label == label)
			continue;
		meta_.labels.insert(it, vs::format::LabelStart{label, self});
		meta_.label_inline_count += 1;
		meta_.label_count += 1;
	}
	return self;
}

/*
 * Appends label starts to the overflow chain (as DiskannReadLabelChain read it) inside xlog,
 * which holds the meta and the node page: onto the chain's last page while it has room, then
 * onto one new page linked after it.
 * Locks and registers at most two more buffers (the last page, the new one), returned in held
 * to be released after GenericXLogFinish. Updates meta's label count and first overflow block.
 * The chain changes only under the meta page's exclusive lock, which the caller holds.
 */
static void
append_overflow_starts(Relation index, GenericXLogState *xlog, vs::format::MetaInfo &meta,
					   std::vector<DiskannLabelPage> chain, std::span<const vs::format::LabelStart> add,
					   std::vector<Buffer> &held)
{
	const std::uint32_t per_page = vs::format::overflow_labels_per_page(BLCKSZ);
	std::vector<std::byte> image(BLCKSZ);
	const BlockNumber last = chain.empty() ? InvalidBlockNumber : chain.back().block;
	std::vector<vs::format::LabelStart> entries = chain.empty() ? std::vector<vs::format::LabelStart>()
		: std::move(chain.back().entries);	/* of the last page */
	const std::size_t onto_last = last == InvalidBlockNumber ? 0 : std::min<std::size_t>(per_page - entries.size(), add.size());
	const std::span<const vs::format::LabelStart> rest = add.subspan(onto_last);

	VS_EXPECTS(rest.size() <= per_page, "%zu new labels in one row", add.size());
	entries.insert(entries.end(), add.begin(), add.begin() + (std::ptrdiff_t) onto_last);

	/* Writes an overflow page into a registered page. */
	auto		write = [&](Page page, std::span<const vs::format::LabelStart> starts, BlockNumber next) {
		vs::format::write_overflow_page(image, starts, next);
		DiskannCopyImageInto(page, image);
	};
	BlockNumber fresh = InvalidBlockNumber;

	if (!rest.empty())
	{
		Page		page = nullptr;

		vs::pg::call([&] {
			LockRelationForExtension(index, ExclusiveLock);
			held.push_back(ReadBufferExtended(index, MAIN_FORKNUM, P_NEW, RBM_NORMAL, nullptr));
			LockBuffer(held.back(), BUFFER_LOCK_EXCLUSIVE);
			UnlockRelationForExtension(index, ExclusiveLock);
			fresh = BufferGetBlockNumber(held.back());
			page = GenericXLogRegisterBuffer(xlog, held.back(), GENERIC_XLOG_FULL_IMAGE);
		});
		write(page, rest, vs::format::kInvalidBlock);
		if (last == InvalidBlockNumber)
			meta.label_overflow_first_block = fresh;
	}
	if (last != InvalidBlockNumber && (onto_last != 0 || fresh != InvalidBlockNumber))
	{
		Page		page = nullptr;

		vs::pg::call([&] {
			held.push_back(ReadBuffer(index, last));
			LockBuffer(held.back(), BUFFER_LOCK_EXCLUSIVE);
			page = GenericXLogRegisterBuffer(xlog, held.back(), 0);
		});
		write(page, entries, fresh != InvalidBlockNumber ? fresh : vs::format::kInvalidBlock);
	}
	meta.label_count += (std::uint32_t) add.size();
}

/*
 * kLive: puts a new node record into a free slot, or at the end of the last node page, or on
 * a new page, with one Generic WAL record covering the meta page and the node page (lock
 * order: meta page, then node page; the relation extension lock is taken under the meta
 * lock). Updates the meta page's free-list head, node count and, for the first node, the
 * entry point. Returns the new node's TID.
 */
Tid
DiskannPageGraph::append_live(std::span<const std::byte> record, std::span<const std::int16_t> labels)
{
	Buffer		meta_buf = InvalidBuffer;
	Buffer		node_buf = InvalidBuffer;
	GenericXLogState *xlog = nullptr;
	Page		meta_page = nullptr;
	Page		node_page = nullptr;

	vs::pg::call([&] {
		meta_buf = ReadBuffer(index_, 0);
		LockBuffer(meta_buf, BUFFER_LOCK_EXCLUSIVE);
	});
	vs::format::MetaInfo meta = vs::format::decode_meta(
		{reinterpret_cast<const std::byte *>(BufferGetPage(meta_buf)), BLCKSZ});
	Tid			self;

	if (meta.free_list_head.valid())
	{
		/* Reuse the first free slot. */
		self = meta.free_list_head;
		vs::pg::call([&] {
			node_buf = ReadBuffer(index_, self.block);
			LockBuffer(node_buf, BUFFER_LOCK_EXCLUSIVE);
			xlog = GenericXLogStart(index_);
			meta_page = GenericXLogRegisterBuffer(xlog, meta_buf, 0);
			node_page = GenericXLogRegisterBuffer(xlog, node_buf, 0);
		});
		vs::format::NodeWriter slot = vs::format::node_writer_at(
			std::span<std::byte>(reinterpret_cast<std::byte *>(node_page), BLCKSZ), self.offset, layout_);

		if (slot.view().state() != vs::format::NodeState::kFree)
			VS_FAIL(vs::ErrorCode::kCorrupt, "free list head (%u,%u) is not a free slot", self.block,
					(unsigned) self.offset);
		meta.free_list_head = slot.view().next_free();
		std::memcpy(node_page + layout_.record_offset(self.offset - 1u), record.data(), layout_.record_size);
	}
	else
	{
		/* Append: the last page if it has room, else a new page. */
		const BlockNumber nblocks = vs::pg::call([&] {
			LockRelationForExtension(index_, ExclusiveLock);
			return RelationGetNumberOfBlocks(index_);
		});
		std::uint16_t offset = 0;

		if (nblocks > meta.first_node_block)
		{
			vs::pg::call([&] {
				node_buf = ReadBuffer(index_, nblocks - 1);
				LockBuffer(node_buf, BUFFER_LOCK_EXCLUSIVE);
				xlog = GenericXLogStart(index_);
				meta_page = GenericXLogRegisterBuffer(xlog, meta_buf, 0);
				node_page = GenericXLogRegisterBuffer(xlog, node_buf, 0);
			});
			/* The last block may be a label overflow page: then a new node page follows it. */
			const std::span<std::byte> last(reinterpret_cast<std::byte *>(node_page), BLCKSZ);

			if (vs::format::is_node_page(last))
				offset = vs::format::append_node_slot(last, layout_);
			if (offset == 0)
				vs::pg::call([&] {
					GenericXLogAbort(xlog);
					UnlockReleaseBuffer(node_buf);
				});
		}
		if (offset == 0)
		{
			vs::pg::call([&] {
				node_buf = ReadBufferExtended(index_, MAIN_FORKNUM, P_NEW, RBM_NORMAL, nullptr);
				LockBuffer(node_buf, BUFFER_LOCK_EXCLUSIVE);
				xlog = GenericXLogStart(index_);
				meta_page = GenericXLogRegisterBuffer(xlog, meta_buf, 0);
				node_page = GenericXLogRegisterBuffer(xlog, node_buf, GENERIC_XLOG_FULL_IMAGE);
			});
			const std::span<std::byte> bytes(reinterpret_cast<std::byte *>(node_page), BLCKSZ);

			vs::format::init_node_page(bytes);
			offset = vs::format::append_node_slot(bytes, layout_);
		}
		vs::pg::call([&] { UnlockRelationForExtension(index_, ExclusiveLock); });
		if (offset == 0)
			VS_FAIL(vs::ErrorCode::kInternal, "a new node page has no room for one record");
		self = Tid{vs::pg::call([&] { return BufferGetBlockNumber(node_buf); }), offset};
		std::memcpy(node_page + layout_.record_offset(offset - 1u), record.data(), layout_.record_size);
		meta.node_count += 1;
	}
	if (!meta.entry_point.valid())
		meta.entry_point = self;
	/*
	 * A label no node had yet starts at the new node: on the meta page while it has room, else
	 * appended to the overflow chain (in the same WAL record).
	 */
	std::optional<std::vector<DiskannLabelPage>> chain;	/* read once, when a label is not inline */
	std::vector<vs::format::LabelStart> fresh;	/* new starts for the chain */

	for (const std::int16_t label : labels)
	{
		const auto	it = std::lower_bound(meta.labels.begin(), meta.labels.end(), label,
										  [](const vs::format::LabelStart &a, std::int16_t l) { return a.label < l; });

		if (it != meta.labels.end() && it->label == label)
			continue;
		if (meta.label_count == meta.label_inline_count &&
			meta.label_inline_count < vs::format::inline_label_capacity(BLCKSZ))
		{
			meta.labels.insert(it, vs::format::LabelStart{label, self});
			meta.label_inline_count += 1;
			meta.label_count += 1;
			continue;
		}
		if (!chain.has_value())
			chain = DiskannReadLabelChain(index_, meta);
		const bool	known = std::any_of(chain->begin(), chain->end(), [&](const DiskannLabelPage &p) {
			return std::any_of(p.entries.begin(), p.entries.end(),
							   [&](const vs::format::LabelStart &e) { return e.label == label; });
		});

		if (!known)
			fresh.push_back(vs::format::LabelStart{label, self});
	}
	std::vector<Buffer> held;

	if (!fresh.empty())
		append_overflow_starts(index_, xlog, meta, std::move(*chain), fresh, held);
	DiskannEncodeMetaInto(meta_page, meta);
	if (VS_FAILURE_POINT("insert_before_node_wal"))
		vs::pg::call([] { elog(PANIC, "failure point insert_before_node_wal"); });
	vs::pg::call([&] {
		GenericXLogFinish(xlog);
		for (const Buffer b : held)
			UnlockReleaseBuffer(b);
		UnlockReleaseBuffer(node_buf);
		UnlockReleaseBuffer(meta_buf);
	});
	meta_ = meta;
	return self;
}

/*
 * Stores tid's new neighbor list: kBuild writes it (no concurrency); kLive replaces it only if
 * it still equals `expected` (false: another backend changed it first, read and retry).
 */
bool
DiskannPageGraph::store_neighbors(Tid tid, std::span<const Tid> expected, std::span<const Tid> neighbors)
{
	if (mode_ == Mode::kLive)
		return replace_neighbors_live(tid, expected, neighbors);
	set_neighbors(tid, neighbors);
	return true;
}

/*
 * kLive: replaces tid's neighbor list with `neighbors` if it still equals `expected`, as one
 * Generic WAL record; false when another backend changed it first.
 */
bool
DiskannPageGraph::replace_neighbors_live(Tid tid, std::span<const Tid> expected, std::span<const Tid> neighbors)
{
	Buffer		buf = InvalidBuffer;
	GenericXLogState *xlog = nullptr;
	Page		page = nullptr;

	vs::pg::call([&] {
		buf = ReadBuffer(index_, tid.block);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		xlog = GenericXLogStart(index_);
		page = GenericXLogRegisterBuffer(xlog, buf, 0);
	});
	vs::format::NodeWriter node =
		vs::format::node_writer_at(std::span<std::byte>(reinterpret_cast<std::byte *>(page), BLCKSZ), tid.offset,
								   layout_);
	const std::vector<Tid> current = node.view().state() == vs::format::NodeState::kFree
		? std::vector<Tid>{Tid::invalid()}	/* freed meanwhile: never equal */
		: node.view().neighbors();
	const bool	same = std::equal(current.begin(), current.end(), expected.begin(), expected.end());

	if (same)
		node.set_neighbors(neighbors);
	vs::pg::call([&] {
		if (same)
			GenericXLogFinish(xlog);
		else
			GenericXLogAbort(xlog);
		UnlockReleaseBuffer(buf);
	});
	if (same)
	{
		auto		it = cache_.find(tid.key());

		if (it != cache_.end())
			it->second.neighbors.assign(neighbors.begin(), neighbors.end());
	}
	return same;
}

/* Replaces the neighbor list of tid in place. */
void
DiskannPageGraph::set_neighbors(Tid tid, std::span<const Tid> neighbors)
{
	Buffer		buf = InvalidBuffer;
	Page		page = nullptr;

	vs::pg::call([&] {
		buf = ReadBuffer(index_, tid.block);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
	});
	vs::format::NodeWriter node =
		vs::format::node_writer_at(std::span<std::byte>(reinterpret_cast<std::byte *>(page), BLCKSZ), tid.offset,
								   layout_);

	node.set_neighbors(neighbors);
	vs::pg::call([&] {
		MarkBufferDirty(buf);
		UnlockReleaseBuffer(buf);
	});
	auto		it = cache_.find(tid.key());

	if (it != cache_.end())
		it->second.neighbors.assign(neighbors.begin(), neighbors.end());
}

void
DiskannPageGraph::insert(std::span<const float> v, Tid heap, std::span<const std::int16_t> labels_in)
{
	std::vector<std::byte> payload(layout_.payload_size);
	std::vector<std::int16_t> labels(labels_in.begin(), labels_in.end());

	std::sort(labels.begin(), labels.end());
	labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
	VS_EXPECTS(labels.empty() || meta_.has_labels, "this diskann index has no label column");
	if (labels.size() > layout_.label_capacity)
		VS_FAIL(vs::ErrorCode::kInvalidArgument,
				mode_ == Mode::kBuild
				? "a row has %zu labels, more than the %u the bounded-memory build sized its records for (the most "
				"of the rows read before it switched, at least 8); raise maintenance_work_mem to build in memory"
				: "a row has %zu labels; this diskann index stores at most %u per row (the most any row had when "
				"it was built, at least 8): re-create the index once such rows are in the table",
				labels.size(), (unsigned) layout_.label_capacity);

	if (layout_.storage == vs::format::StorageLayout::kMemoryOptimized)
	{
		quantizer_.encode(v.data(), code_.data());
		for (std::size_t w = 0; w < code_.size(); ++w)
			vs::format::store_le<std::uint64_t>(payload.data() + 8 * w, code_[w]);
	}
	else
		std::memcpy(payload.data(), v.data(), layout_.payload_size);

	/* The new record, neighbors filled below. */
	std::vector<std::byte> record(layout_.record_size);
	vs::format::NodeWriter writer(record, layout_);

	writer.clear();
	writer.set_state(vs::format::NodeState::kLive);
	writer.set_heap_tid(heap);
	writer.set_payload(payload);
	writer.set_labels(labels);
	cache_.clear();

	std::vector<Tid> chosen;

	if (meta_.entry_point.valid())
	{
		/* Filtered DiskANN: the unfiltered search plus one search per label from its start. */
		std::vector<Tid> expanded;

		search_expanded(payload, meta_.entry_point, nullptr, expanded);
		if (!labels.empty())
		{
			const std::vector<vs::format::LabelStart> starts = current_label_starts();

			for (const std::int16_t &label : labels)
			{
				const auto	it = std::lower_bound(starts.begin(), starts.end(), label,
												  [](const vs::format::LabelStart &a, std::int16_t l) { return a.label < l; });

				if (it != starts.end() && it->label == label)
					search_expanded(payload, it->node, &label, expanded);
			}
		}
		prune(payload, labels, expanded, chosen);
		writer.set_neighbors(chosen);
	}

	const bool	first = !meta_.entry_point.valid();
	const Tid	self = mode_ == Mode::kLive ? append_live(record, labels) : append(record, labels);

	if (first)
	{
		if (mode_ == Mode::kBuild || meta_.entry_point == self)
		{
			meta_.entry_point = self;
			return;
		}
		/* kLive: another backend put the first node in meanwhile; link ours to the graph. */
		search_neighbors(payload, meta_.entry_point, chosen);
		std::erase(chosen, self);
		if (!replace_neighbors_live(self, {}, chosen))
			VS_FAIL(vs::ErrorCode::kInternal, "the new node (%u,%u) changed under its insert", self.block,
					(unsigned) self.offset);
	}
	if (VS_FAILURE_POINT("insert_before_reverse_edges"))
		vs::pg::call([] { elog(PANIC, "failure point insert_before_reverse_edges"); });
	cache_.emplace(self.key(), Cached{payload, chosen, labels});

	/* Reverse edges: n -> self, pruned from n's side when n's list is full. */
	bool		reachable = false;

	for (std::size_t i = 0; i < chosen.size(); ++i)
	{
		if (i == chosen.size() / 2 && VS_FAILURE_POINT("insert_mid_reverse_edges"))
			vs::pg::call([] { elog(PANIC, "failure point insert_mid_reverse_edges"); });
		reachable |= add_reverse_edge(chosen[i], self);
	}
	/* Every neighbor pruned self away: the nearest one keeps it anyway (self stays findable). */
	if (!reachable && !chosen.empty())
		(void) force_edge(chosen.front(), self);
}

/*
 * Makes host keep an edge to u whatever RobustPrune would say: appended, or replacing host's
 * last (longest-alpha) edge when its list is full. In kLive mode the list is rewritten only if
 * unchanged since read (three tries). Returns whether host points at u afterwards.
 */
bool
DiskannPageGraph::force_edge(Tid host, Tid u)
{
	for (int attempt = 0; attempt < 3; ++attempt)
	{
		const std::vector<Tid> before = neighbors_of(host);
		std::vector<Tid> list = before;

		if (std::find(list.begin(), list.end(), u) != list.end())
			return true;
		if (list.size() < meta_.num_neighbors)
			list.push_back(u);
		else
			list.back() = u;
		if (store_neighbors(host, before, list))
			return true;
	}
	return false;
}

bool
DiskannPageGraph::repair(Tid u, const std::unordered_set<std::uint64_t> &dead)
{
	cache_.clear();				/* bounded memory: one node's neighborhood at a time */
	const std::vector<Tid> before = load(u).neighbors;
	std::vector<Tid> candidates;
	bool		touched = false;

	for (const Tid n : before)
	{
		if (!dead.count(n.key()))
		{
			candidates.push_back(n);
			continue;
		}
		touched = true;
		for (const Tid m : load(n).neighbors)
			if (m != u && !dead.count(m.key()))
				candidates.push_back(m);
	}
	if (!touched)
		return false;
	std::sort(candidates.begin(), candidates.end(), [](Tid a, Tid b) { return a.key() < b.key(); });
	candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());

	std::vector<Tid> chosen;
	const std::vector<std::byte> own = load(u).payload;

	const std::vector<std::int16_t> own_labels = load(u).labels;

	prune(own, own_labels, candidates, chosen);
	if (!replace_neighbors_live(u, before, chosen))
		VS_FAIL(vs::ErrorCode::kInternal, "node (%u,%u) changed during VACUUM's repair", u.block, (unsigned) u.offset);
	return true;
}

std::vector<Tid>
DiskannPageGraph::neighbors_of(Tid u)
{
	cache_.erase(u.key());
	return load(u).neighbors;
}

void
DiskannPageGraph::link_unreachable(Tid u)
{
	cache_.clear();
	const std::vector<std::byte> own = load(u).payload;
	const std::vector<Tid> before = load(u).neighbors;
	std::vector<Tid> chosen;

	search_neighbors(own, meta_.entry_point, chosen);
	std::erase(chosen, u);
	if (chosen.empty())
		chosen.push_back(meta_.entry_point);
	if (before.empty() && !replace_neighbors_live(u, before, chosen))
		VS_FAIL(vs::ErrorCode::kInternal, "node (%u,%u) changed during VACUUM", u.block, (unsigned) u.offset);

	/* The nearest reachable node keeps an edge to u (nothing else writes under VACUUM's lock). */
	if (!force_edge(chosen.front(), u))
		VS_FAIL(vs::ErrorCode::kInternal, "node (%u,%u) changed during VACUUM", chosen.front().block,
				(unsigned) chosen.front().offset);
}

/*
 * The label starts of the index: meta_ is the meta page as this insert read it (kLive: just
 * before; kBuild: maintained here until the build writes it).
 */
std::vector<vs::format::LabelStart>
DiskannPageGraph::current_label_starts()
{
	if (!meta_.has_labels)
		return {};
	if (mode_ == Mode::kBuild)
		return meta_.labels;
	return DiskannReadLabelStarts(index_, meta_);
}

/* Greedy search from entry for payload; RobustPrune of the expanded nodes into out. */
void
DiskannPageGraph::search_neighbors(std::span<const std::byte> payload, Tid entry_tid, std::vector<Tid> &out)
{
	std::vector<Tid> expanded;

	search_expanded(payload, entry_tid, nullptr, expanded);
	prune(payload, {}, expanded, out);
}

/* Greedy search from entry (only through nodes carrying *label, if given); appends expanded nodes. */
void
DiskannPageGraph::search_expanded(std::span<const std::byte> payload, Tid entry_tid, const std::int16_t *label,
								  std::vector<Tid> &expanded)
{
	vs::vamana::SearchList<std::uint64_t> list(meta_.search_list_size);
	struct Visited
	{
		std::unordered_set<std::uint64_t> *set;
		bool		test_and_set(std::uint64_t k) { return !set->insert(k).second; }
	}			vis{&visited_};

	visited_.clear();
	const auto	tid_of = Tid::from_key;
	auto		dist = [&](std::uint64_t k) { return distance(payload, load(tid_of(k)).payload); };
	const std::uint64_t entry = entry_tid.key();

	vis.test_and_set(entry);
	list.insert(entry, dist(entry));
	(void) vs::vamana::greedy_search(
		list,
		[&](std::uint64_t k, auto &&visit) {
			/* load() inserts into a node-based map: this reference stays valid. */
			const std::vector<Tid> &nb = load(tid_of(k)).neighbors;

			for (const Tid n : nb)
			{
				if (label != nullptr)
				{
					const std::vector<std::int16_t> &l = load(n).labels;

					if (!std::binary_search(l.begin(), l.end(), *label))
						continue;
				}
				visit(n.key());
			}
		},
		dist, vis, [&](const vs::vamana::Candidate<std::uint64_t> &c) { expanded.push_back(tid_of(c.id)); });
}

/*
 * Adds the edge n -> self. A full list is re-pruned from n's side; in kLive mode the new list
 * is computed without any lock and written only if n's list is still the one it was computed
 * from (another insert may have changed it meanwhile: then try again, up to three times, and
 * otherwise leave the edge out; the graph stays valid, self keeps its own out-edges).
 * Returns whether n's list holds self afterwards.
 */
bool
DiskannPageGraph::add_reverse_edge(Tid n, Tid self)
{
	std::vector<Tid> pruned;

	for (int attempt = 0; attempt < 3; ++attempt)
	{
		if (attempt > 0)
			cache_.erase(n.key());	/* re-read the current list */
		const std::vector<Tid> before = load(n).neighbors;

		if (std::find(before.begin(), before.end(), self) != before.end())
			return true;
		std::vector<Tid> list = before;

		list.push_back(self);
		if (list.size() > meta_.num_neighbors)
		{
			const std::vector<std::byte> own = load(n).payload;
			const std::vector<std::int16_t> own_labels = load(n).labels;

			prune(own, own_labels, list, pruned);
			list = pruned;
		}
		const bool	kept = std::find(list.begin(), list.end(), self) != list.end();

		if (store_neighbors(n, before, list))
			return kept;
	}
	return false;
}
