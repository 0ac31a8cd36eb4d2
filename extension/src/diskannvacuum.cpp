/*
 * diskannvacuum.cpp
 *		VACUUM: ambulkdelete marks the nodes of dead heap tuples deleted; amvacuumcleanup
 *		reports statistics.
 *
 * A deleted node keeps its neighbor list and is still traversed by scans (so the graph
 * stays connected), but it is never returned. Each node page is changed under its own
 * exclusive buffer lock with one Generic WAL record (aborted when nothing on the page died);
 * the meta page's deleted count is updated last, under the meta page's lock. Repairing the
 * neighbors of deleted nodes and recycling their slots is the streaming-insert milestone.
 */
#include <cstring>
#include <span>
#include <vector>

#include "vectorscale/format/reader.hpp"
#include "vectorscale/format/records.hpp"

#include "diskann.hpp"

extern "C" {
#include "access/generic_xlog.h"
#include "commands/vacuum.h"
}

#include "bridge/guard.hpp"
#include "diskannutils.hpp"

namespace {

/* Node pages hold this page type in their special space. */
bool
is_node_page(std::span<const std::byte> page)
{
	const auto o = vs::format::read_page_opaque(page);

	return o.page_id == vs::format::kPageId && o.page_type == (std::uint16_t) vs::format::PageType::kNode;
}

/* Counts (and, with a callback, deletes) nodes page by page; returns live and newly deleted counts. */
void
walk_nodes(Relation index, BufferAccessStrategy strategy, IndexBulkDeleteCallback callback, void *cb_state,
		   double *live, double *deleted_now)
{
	const vs::format::MetaInfo meta = DiskannReadMeta(index);
	const vs::format::NodeLayout layout = vs::format::NodeLayout::from_meta(meta, BLCKSZ);
	const BlockNumber nblocks = vs::pg::call([&] { return RelationGetNumberOfBlocks(index); });
	std::uint64_t newly_deleted = 0;

	*live = 0;
	for (BlockNumber blk = meta.first_node_block; blk < nblocks; ++blk)
	{
		Buffer		buf = InvalidBuffer;
		GenericXLogState *xlog = nullptr;
		Page		page = nullptr;
		bool		changed = false;

		vs::pg::call([&] {
			vacuum_delay_point();
			buf = ReadBufferExtended(index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);
			LockBuffer(buf, callback != nullptr ? BUFFER_LOCK_EXCLUSIVE : BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			if (callback != nullptr)
			{
				xlog = GenericXLogStart(index);
				page = GenericXLogRegisterBuffer(xlog, buf, 0);
			}
		});
		const std::span<std::byte> bytes(reinterpret_cast<std::byte *>(page), BLCKSZ);

		if (is_node_page(bytes))
		{
			const std::uint16_t count = vs::format::node_page_count(bytes, layout);

			for (std::uint16_t off = 1; off <= count; ++off)
			{
				vs::format::NodeWriter node = vs::format::node_writer_at(bytes, off, layout);

				if (node.view().state() != vs::format::NodeState::kLive)
					continue;
				if (callback != nullptr)
				{
					ItemPointerData heap_tid;

					DiskannTidToItemPointer(node.view().heap_tid(), &heap_tid);
					if (vs::pg::call([&] { return callback(&heap_tid, cb_state); }))
					{
						node.set_state(vs::format::NodeState::kDeleted);
						changed = true;
						++newly_deleted;
						continue;
					}
				}
				*live += 1;
			}
		}
		vs::pg::call([&] {
			if (xlog != nullptr)
			{
				if (changed)
					GenericXLogFinish(xlog);
				else
					GenericXLogAbort(xlog);
			}
			UnlockReleaseBuffer(buf);
		});
	}

	if (newly_deleted != 0)
		DiskannUpdateMeta(index, [&](vs::format::MetaInfo &m) { m.deleted_count += newly_deleted; });
	*deleted_now = (double) newly_deleted;
}

}							/* namespace */

/* ambulkdelete */
IndexBulkDeleteResult *
diskannbulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats, IndexBulkDeleteCallback callback,
				  void *callback_state)
{
	double		live = 0,
				deleted = 0;

	if (stats == nullptr)
		stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));
	vs::pg::invoke([&] { walk_nodes(info->index, info->strategy, callback, callback_state, &live, &deleted); });
	stats->tuples_removed += deleted;
	stats->num_index_tuples = live;
	return stats;
}

/* amvacuumcleanup */
IndexBulkDeleteResult *
diskannvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	double		live = 0,
				deleted = 0;

	if (info->analyze_only)
		return stats;
	if (stats == nullptr)
	{
		stats = (IndexBulkDeleteResult *) palloc0(sizeof(IndexBulkDeleteResult));
		vs::pg::invoke([&] { walk_nodes(info->index, info->strategy, nullptr, nullptr, &live, &deleted); });
		stats->num_index_tuples = live;
	}
	stats->num_pages = RelationGetNumberOfBlocks(info->index);
	return stats;
}
