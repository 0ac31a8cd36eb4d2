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
#include <cstring>
#include <utility>

#include "vectorscale/distance/distance.hpp"
#include "vectorscale/format/reader.hpp"
#include "vectorscale/vamana/prune.hpp"
#include "vectorscale/vamana/search.hpp"

#include "diskann.hpp"

#include "bridge/guard.hpp"
#include "diskanngraph.hpp"
#include "diskannutils.hpp"

using vs::format::Tid;

DiskannPageGraph::DiskannPageGraph(Relation index, const vs::format::MetaInfo &meta, vs::sbq::Quantizer quantizer)
	: index_(index), meta_(meta), layout_(vs::format::NodeLayout::from_meta(meta, BLCKSZ)),
	  quantizer_(std::move(quantizer)), record_(layout_.record_size), code_(layout_.code_words),
	  plain_a_(layout_.indexed_dims), plain_b_(layout_.indexed_dims)
{
	last_block_ = vs::pg::call([&] { return RelationGetNumberOfBlocks(index); }) - 1;
}

/* Distance between two stored payloads. */
float
DiskannPageGraph::distance(std::span<const std::byte> a, std::span<const std::byte> b)
{
	if (layout_.storage == vs::format::StorageLayout::kMemoryOptimized)
	{
		std::uint32_t d = 0;

		for (std::size_t w = 0; w < layout_.code_words; ++w)
			d += (std::uint32_t) __builtin_popcountll(vs::format::load_le<std::uint64_t>(a.data() + 8 * w) ^
													  vs::format::load_le<std::uint64_t>(b.data() + 8 * w));
		return (float) d;
	}
	std::memcpy(plain_a_.data(), a.data(), layout_.payload_size);
	std::memcpy(plain_b_.data(), b.data(), layout_.payload_size);
	return vs::distance::index_distance(meta_.metric, plain_a_.data(), plain_b_.data(), layout_.indexed_dims);
}

/* Payload and neighbors of a node, read once per insert. */
const DiskannPageGraph::Cached &
DiskannPageGraph::load(Tid tid)
{
	auto		it = cache_.find(tid.key());

	if (it != cache_.end())
		return it->second;
	DiskannReadNode(index_, tid, layout_, record_.data());
	const vs::format::NodeView view(record_, layout_);
	Cached		c;

	c.payload.assign(view.payload().begin(), view.payload().end());
	c.neighbors = view.neighbors();
	return cache_.emplace(tid.key(), std::move(c)).first->second;
}

/* RobustPrune of candidates (TIDs) around self; out gets at most R of them. */
void
DiskannPageGraph::prune(std::span<const std::byte> self, std::vector<Tid> &candidates, std::vector<Tid> &out)
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
		[](std::size_t, std::size_t) { return true; }, kept, factor);
	out.clear();
	for (const std::uint32_t k : kept)
		out.push_back(sorted[k].second);
}

/* Appends a record to the last node page, or to a new one; returns its TID. */
Tid
DiskannPageGraph::append(std::span<const std::byte> record)
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
	return Tid{block, offset};
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
DiskannPageGraph::insert(std::span<const float> v, Tid heap)
{
	std::vector<std::byte> payload(layout_.payload_size);

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
	cache_.clear();

	std::vector<Tid> chosen;

	if (meta_.entry_point.valid())
	{
		/* Greedy search from the entry point; every expanded node is a prune candidate. */
		vs::vamana::SearchList<std::uint64_t> list(meta_.search_list_size);
		std::unordered_map<std::uint64_t, bool> visited;
		std::vector<Tid> expanded;
		struct Visited
		{
			std::unordered_map<std::uint64_t, bool> *set;
			bool		test_and_set(std::uint64_t k) { return !set->emplace(k, true).second; }
		}			vis{&visited};
		auto		tid_of = [](std::uint64_t k) { return Tid{(std::uint32_t) (k >> 16), (std::uint16_t) (k & 0xFFFF)}; };
		auto		dist = [&](std::uint64_t k) { return distance(payload, load(tid_of(k)).payload); };
		const std::uint64_t entry = meta_.entry_point.key();

		vis.test_and_set(entry);
		list.insert(entry, dist(entry));
		(void) vs::vamana::greedy_search(
			list,
			[&](std::uint64_t k, auto &&visit) {
				const std::vector<Tid> nb = load(tid_of(k)).neighbors;

				for (const Tid n : nb)
					visit(n.key());
			},
			dist, vis, [&](const vs::vamana::Candidate<std::uint64_t> &c) { expanded.push_back(tid_of(c.id)); });
		prune(payload, expanded, chosen);
		writer.set_neighbors(chosen);
	}

	const Tid	self = append(record);

	if (!meta_.entry_point.valid())
	{
		meta_.entry_point = self;
		return;
	}
	cache_.emplace(self.key(), Cached{payload, chosen});

	/* Reverse edges: n -> self, pruned from n's side when n's list is full. */
	std::vector<Tid> list;
	std::vector<Tid> pruned;

	for (const Tid n : chosen)
	{
		list = load(n).neighbors;
		if (std::find(list.begin(), list.end(), self) != list.end())
			continue;
		list.push_back(self);
		if (list.size() > meta_.num_neighbors)
		{
			const std::vector<std::byte> own = load(n).payload;

			prune(own, list, pruned);
			list = pruned;
		}
		set_neighbors(n, list);
	}
}
