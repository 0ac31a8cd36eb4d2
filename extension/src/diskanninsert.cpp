/*
 * diskanninsert.cpp
 *		aminsert: streaming inserts (DESIGN.md 4, 8).
 *
 * One row: greedy search from the entry point over the stored payloads, RobustPrune of the
 * expanded nodes, the new node written into a free slot or at the end of the index (one
 * Generic WAL record with the meta page), then the reverse edges, each re-pruned from the
 * neighbor's side when its list is full and written only if the list did not change
 * meanwhile (one Generic WAL record per neighbor). The insert holds the update lock in share
 * mode, so inserts run concurrently with each other and with scans, and only VACUUM's repair
 * phase (exclusive mode) waits for them. extension/README.locking has the rules.
 */
#include <span>
#include <vector>

#include "vectorscale/distance/distance.hpp"
#include "vectorscale/format/records.hpp"
#include "vectorscale/sbq/sbq.hpp"

#include "diskann.hpp"

extern "C" {
#include "storage/lmgr.h"
}

#include "bridge/guard.hpp"
#include "diskanngraph.hpp"
#include "diskannutils.hpp"

namespace {

/* Inserts one vector (C++ zone). */
void
insert_one(Relation index, const DiskannVector *v, std::span<const std::int16_t> labels, ItemPointer heap_tid)
{
	const vs::format::MetaInfo meta = DiskannReadMeta(index);

	if (v->dim != (int) meta.column_dims)
		vs::pg::call([&] {
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("expected %u dimensions, not %d", meta.column_dims, v->dim)));
		});
	vs::sbq::Quantizer quantizer;

	if (meta.storage == vs::format::StorageLayout::kMemoryOptimized)
		quantizer = DiskannReadQuantizer(index, meta);
	std::vector<float> prefix(v->x, v->x + meta.indexed_dims);

	if (meta.metric == vs::distance::Metric::kCosine)
		(void) vs::distance::normalize(prefix.data(), prefix.size());
	DiskannPageGraph graph(index, meta, std::move(quantizer), DiskannPageGraph::Mode::kLive);

	graph.insert(prefix, DiskannTidFromItemPointer(heap_tid), labels);
}

}							/* namespace */

/* aminsert */
bool
diskanninsert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid, Relation heap,
			  IndexUniqueCheck checkUnique, bool indexUnchanged, IndexInfo *indexInfo)
{
	MemoryContext tmp;
	MemoryContext old;
	DiskannVector *v;
	int16	   *labels;
	int			nlabels;

	(void) heap;
	(void) checkUnique;
	(void) indexUnchanged;
	(void) indexInfo;
	if (isnull[0])
		return false;			/* NULL vectors are not indexed */

	tmp = AllocSetContextCreate(CurrentMemoryContext, "diskann insert", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(tmp);
	v = DatumGetDiskannVector(values[0]);
	/* Labeled index: the second column's labels (NULL: none). */
	nlabels = 0;
	labels = IndexRelationGetNumberOfKeyAttributes(index) == 2 && !isnull[1]
		? DiskannLabelValues(values[1], &nlabels) : nullptr;
	LockPage(index, DISKANN_UPDATE_LOCK, ShareLock);
	vs::pg::invoke([&] { insert_one(index, v, {labels, (std::size_t) nlabels}, heap_tid); });
	UnlockPage(index, DISKANN_UPDATE_LOCK, ShareLock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(tmp);
	return false;
}
