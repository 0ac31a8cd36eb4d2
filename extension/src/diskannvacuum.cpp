/*
 * diskannvacuum.cpp
 *		VACUUM (DESIGN.md 4, 8): ambulkdelete marks, repairs and frees; amvacuumcleanup counts.
 *
 * ambulkdelete runs three phases.
 *   1. Mark: every live node whose heap tuple is dead becomes "deleted" (page by page, one
 *      Generic WAL record per changed page together with the meta page's deleted count,
 *      so a crash never leaves the two apart). Scans still
 *      traverse deleted nodes but never return them, so the graph stays connected meanwhile.
 *   2. Repair, under the update lock in exclusive mode (no insert runs; scans do): every live
 *      node that points at a deleted node gets a new list by RobustPrune over its live
 *      neighbors and the deleted neighbors' live neighbors; a deleted entry point is replaced
 *      by one of its live neighbors (or any live node); no live node points at a deleted one
 *      afterwards.
 *   3. Free: the deleted nodes become free slots linked into the meta page's free list, which
 *      inserts use before the index grows; the meta page's deleted count drops accordingly.
 * Each record of phases 2-3 is one Generic WAL record (node page; meta page + node page for
 * frees), so a crash at any point leaves a valid index: a later VACUUM finishes the work
 * (deleted nodes found in phase 1 are repaired and freed whether this run marked them or not).
 */
#include <algorithm>
#include <cstring>
#include <span>
#include <unordered_set>
#include <vector>

#include "vectorscale/format/reader.hpp"
#include "vectorscale/format/records.hpp"
#include "vectorscale/format/writer.hpp"
#include "vectorscale/sbq/sbq.hpp"

#include "diskann.hpp"

extern "C" {
#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "storage/lmgr.h"
}

#include "bridge/guard.hpp"
#include "diskanngraph.hpp"
#include "diskannutils.hpp"

namespace {

using vs::format::NodeState;
using vs::format::Tid;

/*
 * Moves label's start to node, or, with node invalid, removes the label's start (no live node
 * carries it). One Generic WAL record under the meta page's exclusive lock (inserts add label
 * starts under it too): the meta page and at most three overflow pages, the one holding the
 * label, the chain's last page, whose last entry fills the hole a removal leaves, and the page
 * before it, when the last page empties and leaves the chain (it stays behind, empty).
 */
void
edit_label_start(Relation index, std::int16_t label, Tid node)
{
	Buffer		meta_buf = InvalidBuffer;
	GenericXLogState *xlog = nullptr;
	Page		meta_page = nullptr;
	std::vector<Buffer> held;

	vs::pg::call([&] {
		meta_buf = ReadBuffer(index, 0);
		LockBuffer(meta_buf, BUFFER_LOCK_EXCLUSIVE);
		xlog = GenericXLogStart(index);
		meta_page = GenericXLogRegisterBuffer(xlog, meta_buf, 0);
	});
	vs::format::MetaInfo meta = vs::format::decode_meta({reinterpret_cast<const std::byte *>(meta_page), BLCKSZ});
	std::vector<DiskannLabelPage> chain = DiskannReadLabelChain(index, meta);
	std::vector<std::byte> image(BLCKSZ);
	auto		same = [&](const vs::format::LabelStart &e) { return e.label == label; };
	auto		in_meta = std::find_if(meta.labels.begin(), meta.labels.end(), same);
	DiskannLabelPage *holder = nullptr;
	std::vector<vs::format::LabelStart>::iterator in_page;

	for (DiskannLabelPage &p : chain)
		if (holder == nullptr && (in_page = std::find_if(p.entries.begin(), p.entries.end(), same)) != p.entries.end())
			holder = &p;
	BlockNumber unlinked = InvalidBlockNumber;

	if (in_meta == meta.labels.end() && holder == nullptr)
		;						/* the label has no start (any more): nothing to do */
	else if (node.valid())
	{
		(holder != nullptr ? in_page->node : in_meta->node) = node;
		if (holder != nullptr)
			holder->dirty = true;
	}
	else
	{
		meta.label_count -= 1;
		if (chain.empty())
		{
			meta.labels.erase(in_meta);
			meta.label_inline_count -= 1;
		}
		else
		{
			/* The chain's last entry fills the hole. */
			DiskannLabelPage &last = chain.back();
			const vs::format::LabelStart moved = last.entries.back();

			last.entries.pop_back();
			last.dirty = true;
			if (holder == nullptr)
			{
				meta.labels.erase(in_meta);
				meta.labels.insert(std::lower_bound(meta.labels.begin(), meta.labels.end(), moved,
													[](const auto &a, const auto &b) { return a.label < b.label; }),
								   moved);
			}
			else if (moved.label != label)
			{
				*std::find_if(holder->entries.begin(), holder->entries.end(), same) = moved;
				holder->dirty = true;
			}
			if (last.entries.empty())
			{
				unlinked = last.block;
				if (chain.size() == 1)
					meta.label_overflow_first_block = vs::format::kInvalidBlock;
				else
					chain[chain.size() - 2].dirty = true;	/* its next link goes */
			}
		}
	}
	for (std::size_t i = 0; i < chain.size(); ++i)
	{
		if (!chain[i].dirty)
			continue;
		const BlockNumber next = i + 1 < chain.size() && chain[i + 1].block != unlinked ? chain[i + 1].block
			: vs::format::kInvalidBlock;
		Page		page = nullptr;

		vs::pg::call([&] {
			held.push_back(ReadBuffer(index, chain[i].block));
			LockBuffer(held.back(), BUFFER_LOCK_EXCLUSIVE);
			page = GenericXLogRegisterBuffer(xlog, held.back(), 0);
		});
		/* An emptied page leaves the chain with no entries. */
		vs::format::write_overflow_page(image, chain[i].entries,
										chain[i].block == unlinked ? vs::format::kInvalidBlock : next);
		DiskannCopyImageInto(page, image);
	}
	DiskannEncodeMetaInto(meta_page, meta);
	vs::pg::call([&] {
		GenericXLogFinish(xlog);
		for (const Buffer b : held)
			UnlockReleaseBuffer(b);
		UnlockReleaseBuffer(meta_buf);
	});
}

/* What a walk over the node pages found. */
struct WalkResult
{
	double		live = 0;
	std::uint64_t newly_deleted = 0;
	std::vector<Tid> deleted;	/* every node in state deleted after the walk */
	std::vector<Tid> live_nodes;	/* filled when asked */
};

/*
 * Marks nodes of one page deleted together with the meta page's deleted count, as one Generic
 * WAL record (lock order: meta page, then node page), so that a crash never leaves the count
 * and the records apart. `offsets` were found dead under a share lock; they are re-checked.
 */
std::uint64_t
mark_deleted(Relation index, const vs::format::NodeLayout &layout, BlockNumber blk,
			 std::span<const std::pair<std::uint16_t, Tid>> offsets, std::vector<Tid> &deleted)
{
	DiskannMetaNodeEdit edit = DiskannBeginMetaNodeEdit(index, blk);
	std::uint64_t marked = 0;
	const std::span<std::byte> bytes(reinterpret_cast<std::byte *>(edit.page), BLCKSZ);

	for (const auto &[off, heap] : offsets)
	{
		vs::format::NodeWriter node = vs::format::node_writer_at(bytes, off, layout);

		if (node.view().state() == NodeState::kLive && node.view().heap_tid() == heap)
		{
			node.set_state(NodeState::kDeleted);
			deleted.push_back(Tid{blk, off});
			++marked;
		}
	}
	if (marked != 0)
	{
		vs::format::MetaInfo meta =
			vs::format::decode_meta({reinterpret_cast<const std::byte *>(edit.meta_page), BLCKSZ});

		meta.deleted_count += marked;
		DiskannEncodeMetaInto(edit.meta_page, meta);
	}
	DiskannEndMetaNodeEdit(edit, marked != 0);
	return marked;
}

/*
 * Walks the node pages: with a callback, marks the live nodes of dead heap tuples deleted
 * (phase 1). Counts live nodes and collects deleted (and, if asked, live) ones.
 */
WalkResult
walk_nodes(Relation index, BufferAccessStrategy strategy, IndexBulkDeleteCallback callback, void *cb_state,
		   bool want_live)
{
	const vs::format::MetaInfo meta = DiskannReadMeta(index);
	const vs::format::NodeLayout layout = vs::format::NodeLayout::from_meta(meta, BLCKSZ);
	const BlockNumber nblocks = vs::pg::call([&] { return RelationGetNumberOfBlocks(index); });
	WalkResult	r;
	std::vector<std::pair<std::uint16_t, Tid>> dead;

	for (BlockNumber blk = meta.first_node_block; blk < nblocks; ++blk)
	{
		Buffer		buf = InvalidBuffer;
		Page		page = nullptr;

		dead.clear();
		vs::pg::call([&] {
			vacuum_delay_point();
			buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
		});
		const std::span<const std::byte> bytes(reinterpret_cast<const std::byte *>(page), BLCKSZ);

		if (vs::format::is_node_page(bytes))
		{
			const std::uint16_t count = vs::format::node_page_count(bytes, layout);

			for (std::uint16_t off = 1; off <= count; ++off)
			{
				const vs::format::NodeView node = vs::format::node_at(bytes, off, layout);
				const NodeState state = node.state();

				if (state == NodeState::kDeleted)
				{
					r.deleted.push_back(Tid{blk, off});
					continue;
				}
				if (state != NodeState::kLive)
					continue;
				if (callback != nullptr)
				{
					ItemPointerData heap_tid;

					DiskannTidToItemPointer(node.heap_tid(), &heap_tid);
					if (vs::pg::call([&] { return callback(&heap_tid, cb_state); }))
					{
						dead.emplace_back(off, node.heap_tid());
						continue;
					}
				}
				r.live += 1;
				if (want_live)
					r.live_nodes.push_back(Tid{blk, off});
			}
		}
		vs::pg::call([&] { UnlockReleaseBuffer(buf); });
		if (!dead.empty())
		{
			r.newly_deleted += mark_deleted(index, layout, blk, dead, r.deleted);
			if (VS_FAILURE_POINT("vacuum_mid_mark"))
				vs::pg::call([] { elog(PANIC, "failure point vacuum_mid_mark"); });
		}
	}
	return r;
}

/* Phase 3: turns the deleted nodes of one page into free slots linked into the free list. */
void
free_slots(Relation index, const vs::format::NodeLayout &layout, BlockNumber blk, std::span<const Tid> slots)
{
	DiskannMetaNodeEdit edit = DiskannBeginMetaNodeEdit(index, blk);
	vs::format::MetaInfo meta =
		vs::format::decode_meta({reinterpret_cast<const std::byte *>(edit.meta_page), BLCKSZ});
	const std::span<std::byte> bytes(reinterpret_cast<std::byte *>(edit.page), BLCKSZ);
	std::uint64_t freed = 0;

	for (const Tid t : slots)
	{
		vs::format::NodeWriter node = vs::format::node_writer_at(bytes, t.offset, layout);

		if (node.view().state() != NodeState::kDeleted)
			continue;
		node.make_free(meta.free_list_head);
		meta.free_list_head = t;
		++freed;
	}
	meta.deleted_count -= std::min<std::uint64_t>(meta.deleted_count, freed);
	DiskannEncodeMetaInto(edit.meta_page, meta);
	if (VS_FAILURE_POINT("vacuum_before_free_wal"))
		vs::pg::call([] { elog(PANIC, "failure point vacuum_before_free_wal"); });
	DiskannEndMetaNodeEdit(edit, true);
}

/* Phases 2 and 3, under the exclusive update lock (taken by the caller). */
void
repair_and_free(Relation index, const std::vector<Tid> &deleted)
{
	const vs::format::MetaInfo meta = DiskannReadMeta(index);
	const vs::format::NodeLayout layout = vs::format::NodeLayout::from_meta(meta, BLCKSZ);
	std::unordered_set<std::uint64_t> dead;

	for (const Tid t : deleted)
		dead.insert(t.key());

	vs::sbq::Quantizer none;	/* repairs compare stored payloads only */
	DiskannPageGraph graph(index, meta, none, DiskannPageGraph::Mode::kLive);
	const WalkResult live = walk_nodes(index, nullptr, nullptr, nullptr, true);
	std::size_t repaired = 0;

	for (const Tid u : live.live_nodes)
	{
		if ((repaired & 63) == 0 && (QueryCancelPending || ProcDiePending))
			throw vs::Cancelled();
		if (graph.repair(u, dead))
			++repaired;
		if (repaired == 1 && VS_FAILURE_POINT("vacuum_mid_repair"))
			vs::pg::call([] { elog(PANIC, "failure point vacuum_mid_repair"); });
	}

	/* A deleted entry point: its first live neighbor, or any live node, takes over. */
	if (meta.entry_point.valid() && dead.count(meta.entry_point.key()))
	{
		Tid			next = Tid::invalid();

		for (const Tid n : graph.neighbors_of(meta.entry_point))
			if (!dead.count(n.key()))
			{
				next = n;
				break;
			}
		if (!next.valid() && !live.live_nodes.empty())
			next = live.live_nodes.front();
		DiskannUpdateMeta(index, [&](vs::format::MetaInfo &m) { m.entry_point = next; });
	}

	/*
	 * Labeled index: a label whose start node died starts at a live node carrying it (the
	 * first found among the dead start's neighbors, else among all live nodes), or loses its
	 * start when no live node carries it any more.
	 */
	if (meta.has_labels)
	{
		const std::vector<vs::format::LabelStart> starts = DiskannReadLabelStarts(index, DiskannReadMeta(index));

		for (auto it = starts.begin(); it != starts.end(); ++it)
		{
			if (!dead.count(it->node.key()))
				continue;
			Tid			next = Tid::invalid();
			auto		carries = [&](Tid t) {
				const std::vector<std::int16_t> l = graph.labels_of(t);

				return std::binary_search(l.begin(), l.end(), it->label);
			};

			for (const Tid n : graph.neighbors_of(it->node))
				if (!dead.count(n.key()) && carries(n))
				{
					next = n;
					break;
				}
			for (std::size_t i = 0; !next.valid() && i < live.live_nodes.size(); ++i)
				if (carries(live.live_nodes[i]))
					next = live.live_nodes[i];
			edit_label_start(index, it->label, next);
		}
	}

	/*
	 * Repairs only look two hops away: after mass deletions a live node can end up with no
	 * path from the entry point. Link every such node back (a few rounds: linking one node can
	 * take the last edge of a host, which had no other way in... rarely).
	 */
	const vs::format::MetaInfo now = DiskannReadMeta(index);
	std::size_t linked = 0;

	if (now.entry_point.valid())
	{
		DiskannPageGraph linker(index, now, none, DiskannPageGraph::Mode::kLive);

		for (int round = 0; round < 8; ++round)
		{
			std::unordered_set<std::uint64_t> reached{now.entry_point.key()};
			std::vector<Tid> stack{now.entry_point};

			while (!stack.empty())
			{
				const Tid	t = stack.back();

				stack.pop_back();
				for (const Tid n : linker.neighbors_of(t))
					if (!dead.count(n.key()) && reached.insert(n.key()).second)
						stack.push_back(n);
			}
			bool		all = true;

			for (const Tid u : live.live_nodes)
				if (!reached.count(u.key()))
				{
					all = false;
					linker.link_unreachable(u);
					++linked;
				}
			if (all)
				break;
		}
	}

	/* Free the slots, one WAL record per page. */
	std::vector<Tid> sorted = deleted;

	std::sort(sorted.begin(), sorted.end(), [](Tid a, Tid b) { return a.key() < b.key(); });
	for (std::size_t i = 0; i < sorted.size();)
	{
		std::size_t j = i;

		while (j < sorted.size() && sorted[j].block == sorted[i].block)
			++j;
		free_slots(index, layout, sorted[i].block, std::span<const Tid>(sorted).subspan(i, j - i));
		i = j;
	}
	vs::pg::call([&] {
		elog(DEBUG1, "diskann vacuum of \"%s\": %zu nodes repaired, %zu relinked, %zu slots freed",
			 RelationGetRelationName(index), repaired, linked, sorted.size());
	});
}

}							/* namespace */

/* ambulkdelete */
IndexBulkDeleteResult *
diskannbulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats, IndexBulkDeleteCallback callback,
				  void *callback_state)
{
	Relation	index = info->index;
	double		live = 0;
	double		newly = 0;

	if (stats == nullptr)
		stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));
	vs::pg::invoke([&] {
		const WalkResult r = walk_nodes(index, info->strategy, callback, callback_state, false);

		live = r.live;
		newly = (double) r.newly_deleted;
		if (r.deleted.empty())
			return;
		/* An error in between releases the lock with the transaction. */
		vs::pg::call([&] { LockPage(index, DISKANN_UPDATE_LOCK, ExclusiveLock); });
		repair_and_free(index, r.deleted);
		vs::pg::call([&] { UnlockPage(index, DISKANN_UPDATE_LOCK, ExclusiveLock); });
	});
	stats->tuples_removed += newly;
	stats->num_index_tuples = live;
	return stats;
}

/* amvacuumcleanup */
IndexBulkDeleteResult *
diskannvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	if (info->analyze_only)
		return stats;
	if (stats == nullptr)
	{
		double		live = 0;

		stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));
		vs::pg::invoke([&] { live = walk_nodes(info->index, info->strategy, nullptr, nullptr, false).live; });
		stats->num_index_tuples = live;
	}
	stats->num_pages = RelationGetNumberOfBlocks(info->index);
	return stats;
}
