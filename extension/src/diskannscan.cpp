/*
 * diskannscan.cpp
 *		Index scans: streaming greedy search over the graph pages, with rescoring.
 *
 * A scan needs an ORDER BY on the opclass's distance operator. The first amgettuple
 * decodes the query (the indexed prefix, normalised for cosine; SBQ-encoded for
 * memory_optimized) and seeds a StreamingSearch (common/vamana/streaming.hpp) at the
 * entry point. Each batch then pulls the next candidates from the search:
 *   - memory_optimized with diskann.query_rescore > 0, or plain with num_dimensions below
 *     the column's: a batch is query_rescore candidates, ranked by the exact distance of
 *     the full heap vector, fetched with the scan's snapshot (invisible rows are skipped);
 *   - otherwise a batch is one candidate, in traversal order.
 * Rows come out sorted inside each batch; between batches the order is the graph's
 * (relaxed ordering, as pgvectorscale documents). Deleted nodes are traversed but never
 * returned. The search never drops a discovered node, so even query_search_list_size = 2
 * streams every live node reachable from the entry point, which the build makes all. When
 * VACUUM frees nodes under a running scan, the scan notices (it expands a freed or reused
 * slot) and starts over on the repaired graph, skipping the rows it already returned. When
 * the graph search is exhausted, a sweep over the node pages returns every live row the
 * search did not reach (a node can lose its last in-edge to re-pruning), so a scan that is
 * read to the end returns every live row exactly once.
 *
 * The search state is a C++ object owned by the scan; a reset callback on the scan's
 * memory context deletes it if the query ends in an error before amendscan.
 */
#include <algorithm>
#include <limits>
#include <bit>
#include <cstring>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "vectorscale/distance/distance.hpp"
#include "vectorscale/format/reader.hpp"
#include "vectorscale/format/records.hpp"
#include "vectorscale/sbq/sbq.hpp"
#include "vectorscale/vamana/labels.hpp"
#include "vectorscale/vamana/streaming.hpp"

#include "diskann.hpp"

extern "C" {
#include "access/tableam.h"
#include "catalog/index.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "pgstat.h"
#include "utils/snapmgr.h"
}

#include "bridge/guard.hpp"
#include "diskannutils.hpp"

namespace {

using vs::format::Tid;

/* Hash of a row identity (node key << 64 | heap TID key). */
struct RowIdHash
{
	std::size_t operator()(unsigned __int128 v) const noexcept
	{
		return std::hash<std::uint64_t>{}((std::uint64_t) v ^ ((std::uint64_t) (v >> 64) * 0x9E3779B97F4A7C15ull));
	}
};

/* What the search knows of a node it has seen. */
struct NodeInfo
{
	Tid			heap;
	bool		live = false;
	bool		match = true;	/* filtered scans: the node's labels overlap the query's */
};

/* The C++ half of a scan. */
struct ScanCore
{
	vs::format::MetaInfo meta;
	vs::format::NodeLayout layout;
	vs::sbq::Quantizer quantizer;
	vs::distance::Metric metric = vs::distance::Metric::kCosine;
	bool		sbq = false;

	bool		started = false;
	bool		null_query = false;
	bool		rescoring = false;
	std::size_t batch_size = 1;
	std::vector<float> query;	/* indexed prefix (normalised for cosine) */
	std::vector<float> query_full;	/* the whole query, for rescoring */
	std::vector<std::uint64_t> query_code;

	vs::vamana::StreamingSearch<std::uint64_t> search;
	std::unordered_map<std::uint64_t, NodeInfo> seen;
	std::vector<std::uint64_t> neighbors;
	std::vector<float> heap_vector;

	std::vector<std::pair<float, Tid>> batch;
	std::size_t batch_pos = 0;

	/*
	 * VACUUM may repair and free nodes while a scan is under way; the scan then holds stale
	 * neighbor lists. Expanding a slot that was freed (or freed and reused) since the scan
	 * saw it sets `restart`: the search starts over from the (re-read) entry point over the
	 * repaired graph, and `returned` keeps it from returning a row twice.
	 */
	bool		restart = false;
	int			restarts = 0;

	/* Filtered search (Filtered DiskANN): the query's labels, sorted and unique. */
	bool		filtered = false;
	bool		no_match = false;	/* an empty or NULL label filter: no row qualifies */
	std::vector<std::int16_t> query_labels;
	std::vector<vs::format::LabelStart> label_starts;	/* of the index, by label */
	std::vector<std::int16_t> node_labels;	/* scratch (label_capacity) */

	/*
	 * The sweep: once the graph search is exhausted, the node pages are read in order and
	 * every live node not returned yet comes out (graph order no longer applies: relaxed
	 * ordering). Inserts and VACUUM can leave a live node without in-edges (a re-prune drops
	 * its last one; exact duplicates crowd each other out), so without the sweep a full scan
	 * could miss rows; with it, a scan returns every live row, reachable or not.
	 */
	bool		sweeping = false;
	BlockNumber sweep_block = 0;
	BlockNumber sweep_end = 0;
	std::vector<std::pair<std::uint64_t, NodeInfo>> sweep_rows;	/* of the current page */
	std::vector<float> sweep_dist;
	std::size_t sweep_pos = 0;
	std::vector<std::byte> sweep_page;
	std::unordered_set<unsigned __int128, RowIdHash> returned;	/* (node key, heap TID) */
};

constexpr int kMaxScanRestarts = 64;

/* Identity of a returned row: node slot and heap TID (a reused slot is another row). */
unsigned __int128
row_id(std::uint64_t key, Tid heap)
{
	return ((unsigned __int128) key << 64) | heap.key();
}

/* PG-side state of a scan (palloc'd, trivially destructible). */
typedef struct DiskannScanOpaqueData
{
	ScanCore  *state;
	MemoryContextCallback cleanup;
	MemoryContext tmpctx;		/* per-batch allocations (detoasting) */
	IndexFetchTableData *fetch; /* heap access for rescoring */
	TupleTableSlot *slot;
	AttrNumber	heap_attno;		/* indexed column, or 0 for an expression */
	IndexInfo  *index_info;		/* expression indexes only */
	EState	   *estate;
} DiskannScanOpaqueData;

typedef DiskannScanOpaqueData *DiskannScanOpaque;

/* Memory context reset callback: frees the C++ state if amendscan never ran. */
void
cleanup_state(void *arg) noexcept
{
	DiskannScanOpaque so = (DiskannScanOpaque) arg;

	delete so->state;
	so->state = nullptr;
}


/*
 * Distance of the query to node key (SBQ Hamming, or exact on the indexed prefix), computed
 * on the record in place under the buffer lock; records the node's heap TID and state in seen.
 * Payloads are 8-byte aligned little-endian words/floats (the format), read as such on this
 * little-endian host.
 */
float
node_distance(IndexScanDesc scan, ScanCore &s, std::uint64_t key)
{
	static_assert(std::endian::native == std::endian::little, "index pages are little-endian");
	float		d = 0;
	Tid			heap;
	std::uint16_t state = 0;
	const std::size_t words = s.query_code.size();
	const std::size_t dims = s.query.size();

	std::size_t nlabels = 0;

	DiskannVisitNode(scan->indexRelation, Tid::from_key(key), s.layout, [&](const std::byte *rec) noexcept {
		const std::byte *payload = rec + s.layout.payload_offset;

		state = vs::format::load_u16(rec, 0);
		heap = vs::format::load_tid6(rec + 6);
		if (s.filtered)
		{
			nlabels = std::min<std::size_t>(vs::format::load_u16(rec, 2), s.layout.label_capacity);
			for (std::size_t i = 0; i < nlabels; ++i)
				s.node_labels[i] = vs::format::load_i16(rec, vs::format::kNodeHeaderSize + 2 * i);
		}
		if (s.sbq)
			d = (float) vs::distance::hamming(s.query_code.data(), reinterpret_cast<const std::uint64_t *>(payload),
											  words);
		else
			d = vs::distance::index_distance(s.metric, s.query.data(), reinterpret_cast<const float *>(payload), dims);
	});
	NodeInfo   &info = s.seen[key];

	info.heap = heap;
	info.live = state == (std::uint16_t) vs::format::NodeState::kLive;
	if (s.filtered)
	{
		/* Non-matching nodes are neither returned nor expanded; they sink to the back. */
		info.match = vs::vamana::labels_overlap({s.node_labels.data(), nlabels}, s.query_labels);
		if (!info.match)
			d = std::numeric_limits<float>::infinity();
	}
	return d;
}

/* Copies the valid neighbors of node key into s.neighbors (as search keys). */
void
read_neighbors(IndexScanDesc scan, ScanCore &s, std::uint64_t key)
{
	const auto	known = s.seen.find(key);
	const Tid	seen_heap = known != s.seen.end() ? known->second.heap : Tid::invalid();
	bool		stale = false;

	s.neighbors.clear();
	if (known != s.seen.end() && !known->second.match)
		return;					/* filtered search does not go through other labels */
	s.neighbors.reserve(s.layout.num_neighbors);
	DiskannVisitNode(scan->indexRelation, Tid::from_key(key), s.layout, [&](const std::byte *rec) noexcept {
		/*
		 * A slot freed by VACUUM since we scored it (its neighbors[0] links the free list, not
		 * the graph), or freed and reused by another row: our view of the graph is stale.
		 */
		const bool	free_slot = vs::format::load_u16(rec, 0) == (std::uint16_t) vs::format::NodeState::kFree;

		stale = free_slot || (seen_heap.valid() && !(vs::format::load_tid6(rec + 6) == seen_heap));
		const std::size_t count = stale ? 0 : std::min<std::size_t>(vs::format::load_u16(rec, 4), s.layout.num_neighbors);

		for (std::size_t i = 0; i < count; ++i)
		{
			const Tid	n = vs::format::load_tid6(rec + s.layout.neighbors_offset + vs::format::kTid6Size * i);

			if (n.valid())
				s.neighbors.push_back(n.key());		/* reserved: cannot allocate */
		}
	});
	if (stale && s.restarts < kMaxScanRestarts)
		s.restart = true;
}

/* Reads the meta page (entry point, label starts) again: inserts and VACUUM move them. */
void
refresh_meta(IndexScanDesc scan, ScanCore &s)
{
	s.meta = DiskannReadMeta(scan->indexRelation);
	if (s.meta.has_labels)
		s.label_starts = DiskannReadLabelStarts(scan->indexRelation, s.meta);
}

/* Loads the meta page and quantizer; sizes the scratch buffers. */
void
open_index(IndexScanDesc scan, ScanCore &s)
{
	Relation	index = scan->indexRelation;

	refresh_meta(scan, s);
	s.layout = vs::format::NodeLayout::from_meta(s.meta, BLCKSZ);
	s.metric = s.meta.metric;
	s.sbq = s.meta.storage == vs::format::StorageLayout::kMemoryOptimized;
	if (s.sbq)
	{
		s.quantizer = DiskannReadQuantizer(index, s.meta);
		s.query_code.resize(s.quantizer.words());
	}
	s.heap_vector.resize(s.meta.column_dims);
	s.node_labels.resize(s.layout.label_capacity);
}

/* The label filter of the scan keys (PG zone parts guarded): && on the label column. */
void
read_label_filter(IndexScanDesc scan, ScanCore &s)
{
	s.filtered = false;
	s.no_match = false;
	s.query_labels.clear();
	for (int i = 0; i < scan->numberOfKeys; ++i)
	{
		ScanKey		k = &scan->keyData[i];

		if (k->sk_attno != 2 || k->sk_strategy != DISKANN_LABEL_OVERLAP_STRATEGY)
			continue;
		if (s.filtered)
			continue;			/* the first filter drives the search; the executor rechecks all */
		s.filtered = true;
		if (k->sk_flags & SK_ISNULL)
		{
			s.no_match = true;
			continue;
		}
		int			n = 0;
		std::int16_t *values = vs::pg::call([&] { return DiskannLabelValues(k->sk_argument, &n); });

		s.query_labels.assign(values, values + n);
		std::sort(s.query_labels.begin(), s.query_labels.end());
		s.query_labels.erase(std::unique(s.query_labels.begin(), s.query_labels.end()), s.query_labels.end());
		s.no_match = s.query_labels.empty();
	}
}

/*
 * Seeds the search: the start node of each query label (Filtered DiskANN), or the entry
 * point. The caller has read the current meta page and label starts.
 */
void
seed_search(IndexScanDesc scan, ScanCore &s)
{
	auto		add = [&](Tid t) {
		if (s.seen.find(t.key()) == s.seen.end())
			s.search.add_start(t.key(), node_distance(scan, s, t.key()));
	};

	if (!s.filtered)
	{
		if (s.meta.entry_point.valid())
			add(s.meta.entry_point);
		return;
	}
	for (const std::int16_t label : s.query_labels)
	{
		const auto	it = std::lower_bound(s.label_starts.begin(), s.label_starts.end(), label,
										  [](const vs::format::LabelStart &a, std::int16_t l) { return a.label < l; });

		if (it != s.label_starts.end() && it->label == label)
			add(it->node);
	}
}

/* Starts the search for the query in scan->orderByData[0]. */
void
start_search(IndexScanDesc scan, ScanCore &s)
{
	const std::size_t dims = s.meta.indexed_dims;
	const std::size_t column_dims = s.meta.column_dims;
	ScanKey		key = &scan->orderByData[0];

	s.query.assign(dims, 0.0f);
	s.query_full.assign(column_dims, 0.0f);
	s.null_query = (key->sk_flags & SK_ISNULL) != 0;
	if (!s.null_query)
	{
		int			query_dims = vs::pg::call([&] {
			DiskannVector *v = DatumGetDiskannVector(key->sk_argument);
			int			d = v->dim;

			if (d == (int) column_dims)
				memcpy(s.query_full.data(), v->x, column_dims * sizeof(float));
			return d;
		});

		if (query_dims != (int) column_dims)
			vs::pg::call([&] {
				ereport(ERROR,
						(errcode(ERRCODE_DATA_EXCEPTION),
						 errmsg("different vector dimensions %d and %d", (int) column_dims, query_dims)));
			});
		std::copy_n(s.query_full.begin(), dims, s.query.begin());
		if (s.metric == vs::distance::Metric::kCosine)
		{
			(void) vs::distance::normalize(s.query.data(), dims);
			(void) vs::distance::normalize(s.query_full.data(), column_dims);
		}
	}
	if (s.sbq)
		s.quantizer.encode(s.query.data(), s.query_code.data());

	const bool approximate = s.sbq || dims < column_dims;

	s.rescoring = !s.null_query && approximate && diskann_query_rescore > 0;
	s.batch_size = s.rescoring ? (std::size_t) diskann_query_rescore : 1;
	s.search.reset((std::size_t) diskann_query_search_list_size);
	s.seen.clear();
	s.returned.clear();
	s.restart = false;
	s.restarts = 0;
	s.sweeping = false;
	s.batch.clear();
	s.batch_pos = 0;
	read_label_filter(scan, s);
	seed_search(scan, s);
	s.started = true;
}

/* Exact distance of the heap row at tid to the query; nullopt when no visible row. */
std::optional<float>
heap_distance(IndexScanDesc scan, DiskannScanOpaque so, ScanCore &s, Tid tid)
{
	const std::size_t column_dims = s.meta.column_dims;
	int			got = vs::pg::call([&]() -> int {
		ItemPointerData ip;
		bool		call_again = false;
		bool		all_dead = false;
		Datum		value;
		bool		isnull;
		int			result = -1;
		MemoryContext old = MemoryContextSwitchTo(so->tmpctx);

		DiskannTidToItemPointer(tid, &ip);
		if (table_index_fetch_tuple(so->fetch, &ip, scan->xs_snapshot, so->slot, &call_again, &all_dead))
		{
			if (so->heap_attno != 0)
				value = slot_getattr(so->slot, so->heap_attno, &isnull);
			else
			{
				Datum		values[INDEX_MAX_KEYS];
				bool		nulls[INDEX_MAX_KEYS];
				ExprContext *econtext = GetPerTupleExprContext(so->estate);

				econtext->ecxt_scantuple = so->slot;
				FormIndexDatum(so->index_info, so->slot, so->estate, values, nulls);
				value = values[0];
				isnull = nulls[0];
			}
			if (!isnull)
			{
				DiskannVector *v = DatumGetDiskannVector(value);

				result = v->dim;
				if (v->dim == (int) column_dims)
					memcpy(s.heap_vector.data(), v->x, column_dims * sizeof(float));
			}
			ExecClearTuple(so->slot);
			if (so->estate != nullptr)
				ResetPerTupleExprContext(so->estate);
		}
		MemoryContextSwitchTo(old);
		return result;
	});

	if (got != (int) column_dims)
		return std::nullopt;	/* invisible, NULL now, or another dimension: not a match */
	if (s.metric == vs::distance::Metric::kCosine)
		(void) vs::distance::normalize(s.heap_vector.data(), column_dims);
	return vs::distance::index_distance(s.metric, s.query_full.data(), s.heap_vector.data(), column_dims);
}

/*
 * The next live node of the sweep, with its distance to the query; false when every page is
 * done. Reads one node page at a time (a copy, taken under a share lock).
 */
bool
sweep_next(IndexScanDesc scan, ScanCore &s, std::uint64_t &key, NodeInfo &info, float &dist)
{
	Relation	index = scan->indexRelation;

	if (!s.sweeping)
	{
		s.sweeping = true;
		s.sweep_block = s.meta.first_node_block;
		s.sweep_end = vs::pg::call([&] { return RelationGetNumberOfBlocks(index); });
		s.sweep_rows.clear();
		s.sweep_pos = 0;
		s.sweep_page.resize(BLCKSZ);
	}
	while (s.sweep_pos == s.sweep_rows.size())
	{
		if (s.sweep_block >= s.sweep_end)
			return false;
		const BlockNumber blk = s.sweep_block++;

		s.sweep_rows.clear();
		s.sweep_dist.clear();
		s.sweep_pos = 0;
		DiskannReadPage(index, blk, s.sweep_page.data());
		const std::span<const std::byte> page(s.sweep_page);
		if (!vs::format::is_node_page(page))
			continue;
		const std::uint16_t count = vs::format::node_page_count(page, s.layout);

		for (std::uint16_t off = 1; off <= count; ++off)
		{
			const vs::format::NodeView node = vs::format::node_at(page, off, s.layout);
			NodeInfo	ni;

			ni.heap = node.heap_tid();
			ni.live = node.state() == vs::format::NodeState::kLive;
			if (!ni.live)
				continue;
			if (s.filtered)
			{
				const std::vector<std::int16_t> labels = node.labels();

				if (!vs::vamana::labels_overlap(labels, s.query_labels))
					continue;
			}
			const std::byte *payload = node.payload().data();
			const float d = s.sbq
				? (float) vs::distance::hamming(s.query_code.data(), reinterpret_cast<const std::uint64_t *>(payload),
												s.query_code.size())
				: vs::distance::index_distance(s.metric, s.query.data(), reinterpret_cast<const float *>(payload),
											   s.query.size());

			s.sweep_rows.emplace_back(Tid{blk, off}.key(), ni);
			s.sweep_dist.push_back(d);
		}
	}
	key = s.sweep_rows[s.sweep_pos].first;
	info = s.sweep_rows[s.sweep_pos].second;
	dist = s.sweep_dist[s.sweep_pos];
	++s.sweep_pos;
	return true;
}

/* Fills the next batch; returns false when the search and the sweep are exhausted. */
bool
next_batch(IndexScanDesc scan, DiskannScanOpaque so, ScanCore &s)
{
	auto expand = [&](std::uint64_t key, auto &&visit) {
		read_neighbors(scan, s, key);
		for (const std::uint64_t n : s.neighbors)
			visit(n);
	};
	auto distance = [&](std::uint64_t key) { return node_distance(scan, s, key); };
	struct Visited
	{
		ScanCore  *s;
		bool		test_and_set(std::uint64_t key)
		{
			return !s->seen.try_emplace(key).second;
		}
	}			visited{&s};

	s.batch.clear();
	s.batch_pos = 0;
	if (s.no_match)
		return false;
	vs::pg::call([&] { MemoryContextReset(so->tmpctx); });
	while (s.batch.size() < s.batch_size)
	{
		if (VS_FAILURE_POINT("scan_pg_error"))
			vs::pg::call([] {
				ereport(ERROR,
						(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
						 errmsg("failure point scan_pg_error")));
			});
		if (VS_FAILURE_POINT("scan_throw"))
			throw std::runtime_error("failure point scan_throw");
		const auto c = s.search.next(expand, distance, visited);

		if (s.restart)
		{
			/* Start over on the repaired graph; rows already returned are skipped. */
			s.restart = false;
			++s.restarts;
			s.seen.clear();
			s.search.reset((std::size_t) diskann_query_search_list_size);
			refresh_meta(scan, s);
			seed_search(scan, s);
			continue;
		}
		std::uint64_t key;
		NodeInfo	info;
		float		dist;

		if (c)
		{
			key = c->id;
			info = s.seen.at(c->id);
			dist = c->distance;
		}
		else if (!sweep_next(scan, s, key, info, dist))
			break;
		if (!info.live || !info.match || !s.returned.insert(row_id(key, info.heap)).second)
			continue;
		if (s.rescoring)
		{
			const auto d = heap_distance(scan, so, s, info.heap);

			if (d)
				s.batch.emplace_back(*d, info.heap);
		}
		else
			s.batch.emplace_back(dist, info.heap);
		if (QueryCancelPending || ProcDiePending)
			throw vs::Cancelled();
	}
	if (s.rescoring)
		std::stable_sort(s.batch.begin(), s.batch.end(),
						 [](const auto &a, const auto &b) { return a.first < b.first; });
	return !s.batch.empty();
}

/* The next heap TID of the scan, or false at the end. */
bool
scan_next(IndexScanDesc scan, DiskannScanOpaque so, ItemPointer out)
{
	ScanCore  &s = *so->state;

	if (!s.started)
	{
		if (s.layout.record_size == 0)
			open_index(scan, s);
		else
			refresh_meta(scan, s);	/* the layout stays; starts move */
		start_search(scan, s);
	}
	if (s.batch_pos == s.batch.size() && !next_batch(scan, so, s))
		return false;
	DiskannTidToItemPointer(s.batch[s.batch_pos++].second, out);
	return true;
}

}							/* namespace */

/* ambeginscan */
IndexScanDesc
diskannbeginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	DiskannScanOpaque so = (DiskannScanOpaque) palloc0(sizeof(DiskannScanOpaqueData));

	so->tmpctx = AllocSetContextCreate(CurrentMemoryContext, "diskann scan", ALLOCSET_DEFAULT_SIZES);
	so->cleanup.func = cleanup_state;
	so->cleanup.arg = so;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &so->cleanup);
	so->state = vs::pg::invoke([] { return new ScanCore(); });
	scan->opaque = so;
	return scan;
}

/* amrescan: a new query (or the same one again). */
void
diskannrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys)
{
	DiskannScanOpaque so = (DiskannScanOpaque) scan->opaque;

	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
	(void) nkeys;
	(void) norderbys;
	so->state->started = false;
}

/* amgettuple: the next row, nearest first (relaxed between rescoring batches). */
bool
diskanngettuple(IndexScanDesc scan, ScanDirection dir)
{
	DiskannScanOpaque so = (DiskannScanOpaque) scan->opaque;
	bool		found;

	if (dir != ForwardScanDirection)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("diskann index scans only support forward scans")));
	if (scan->numberOfOrderBys == 0 || scan->orderByData == nullptr)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot scan diskann index without an ORDER BY on its distance operator")));

	/* Heap access for rescoring is opened lazily, in PG context. */
	if (so->fetch == nullptr)
	{
		Relation	index = scan->indexRelation;

		so->fetch = table_index_fetch_begin(scan->heapRelation);
		so->slot = table_slot_create(scan->heapRelation, nullptr);
		so->heap_attno = index->rd_index->indkey.values[0];
		if (so->heap_attno == 0)
		{
			so->index_info = BuildIndexInfo(index);
			so->estate = CreateExecutorState();
		}
	}

	if (!so->state->started)
		pgstat_count_index_scan(scan->indexRelation);
	found = vs::pg::invoke([&] { return scan_next(scan, so, &scan->xs_heaptid); });
	if (!found)
		return false;
	scan->xs_recheck = so->state->filtered;	/* the executor rechecks every && qual */
	scan->xs_recheckorderby = false;
	return true;
}

/* amendscan */
void
diskannendscan(IndexScanDesc scan)
{
	DiskannScanOpaque so = (DiskannScanOpaque) scan->opaque;

	if (so->fetch != nullptr)
		table_index_fetch_end(so->fetch);
	if (so->slot != nullptr)
		ExecDropSingleTupleTableSlot(so->slot);
	if (so->estate != nullptr)
		FreeExecutorState(so->estate);
	cleanup_state(so);
	MemoryContextDelete(so->tmpctx);
	/* so stays allocated: the reset callback registered in it must remain valid. */
	scan->opaque = nullptr;
}
