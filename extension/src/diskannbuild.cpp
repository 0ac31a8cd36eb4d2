/*
 * diskannbuild.cpp
 *		CREATE INDEX for diskann: the local build.
 *
 * Phases (each shown in pg_stat_progress_create_index with tuples done/total):
 *
 * 1. Loading tuples. One heap scan (table_index_build_scan) copies the indexed prefix of
 *    every non-NULL vector into one growing array, with its heap TID. The scan callback is
 *    PG-zone code: it detoasts in a per-tuple memory context and enters C++ only to append.
 * 2. Training the quantizer (memory_optimized): SBQ means (and deviations for > 1 bit).
 * 3. Building the graph: the engine's multi-threaded Vamana build over the array. Worker
 *    threads never call PostgreSQL; the backend thread polls QueryCancelPending and
 *    ProcDiePending between units of work (the engine's cancel token), so a cancel stops the
 *    build within a fraction of a second, and it reports progress.
 * 4. Writing pages: the engine lays the graph out as format v1 page images (the same code
 *    gpu_builder uses); each goes into a new buffer without WAL, and the whole relation is
 *    then WAL-logged once with log_newpage_range, so a build writes WAL of about the index
 *    size.
 *
 * Memory: the vectors, the graph (at 1.3 R slack), the SBQ codes and per-thread scratch
 * must fit maintenance_work_mem; the estimate is checked before the graph is built and while
 * tuples are loaded, and the build stops with an error naming the need otherwise.
 *
 * The heap's reltuples is the scan's count of live tuples (rows with NULL vectors included),
 * not the number of indexed vectors.
 */
#include <algorithm>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "vectorscale/core/memory.hpp"
#include "vectorscale/distance/distance.hpp"
#include "vectorscale/format/writer.hpp"
#include "vectorscale/sbq/sbq.hpp"
#include "vectorscale/format/records.hpp"
#include "vectorscale/vamana/build.hpp"
#include "vectorscale/vamana/index.hpp"
#include "vectorscale/vamana/labels.hpp"
#include "vectorscale/vamana/pages.hpp"

#include "diskann.hpp"

extern "C" {
#include "access/tableam.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "pgstat.h"
#include "utils/backend_progress.h"
}

#include "bridge/guard.hpp"
#include "diskannbuild.hpp"
#include "diskanngraph.hpp"
#include "diskannutils.hpp"

namespace {

/* Vectors and heap TIDs collected by the heap scan. */
struct Collected
{
	vs::Array<float> vectors;
	std::size_t n = 0;
	std::vector<vs::format::Tid> tids;
	vs::vamana::LabelSets labels;	/* labeled indexes: one set per row */
};

/* Everything the heap scan callback needs; only PODs and pointers. */
struct LoadState
{
	Relation	index;
	const DiskannBuildOptions *opts;
	Collected  *collected;
	std::optional<DiskannPageGraph> *graph;	/* engaged once the build is bounded */
	MemoryContext tmpctx;
	double		indexed;
	double		estimate;		/* the heap's reltuples before the scan */
	double		budget_bytes;
	double		per_vector_bytes;
};

/* Appends one vector (C++ zone; grows the array by doubling). */
void
append_vector(Collected *c, const float *x, std::size_t dims, vs::format::Tid tid)
{
	if ((c->n + 1) * dims > c->vectors.size())
	{
		const std::size_t rows = std::max<std::size_t>(1024, c->n * 2);
		vs::Array<float> grown(rows * dims);

		if (c->n != 0)
			std::memcpy(grown.data(), c->vectors.data(), c->n * dims * sizeof(float));
		c->vectors = std::move(grown);
	}
	std::memcpy(c->vectors.data() + c->n * dims, x, dims * sizeof(float));
	c->tids.push_back(tid);
	++c->n;
}

/* The options recorded in the meta page, for the page writer. */
vs::format::MetaInfo
meta_options(const DiskannBuildOptions *opts)
{
	vs::format::MetaInfo m;

	m.metric = (vs::distance::Metric) opts->metric;
	m.storage = (vs::format::StorageLayout) opts->storage;
	m.column_dims = (std::uint32_t) opts->column_dims;
	m.indexed_dims = (std::uint32_t) opts->indexed_dims;
	m.bits_per_dim = (std::uint16_t) opts->bits_per_dim;
	m.num_neighbors = (std::uint32_t) opts->num_neighbors;
	m.search_list_size = (std::uint32_t) opts->search_list_size;
	m.max_alpha = opts->max_alpha;
	m.built_by = vs::format::BuiltBy::kLocal;
	m.build_backend = vs::format::BuildBackend::kCpu;
	m.builder_id = "vectorscale " DISKANN_MODULE_VERSION;
	return m;
}


/*
 * Switches a build that no longer fits maintenance_work_mem to the bounded-memory path:
 * trains SBQ on the rows collected so far (they fit: we switch as soon as the in-memory
 * build would not), writes the meta and quantizer pages, inserts those rows into pages
 * (the row nearest their centroid first: it becomes the entry point) and frees them. Every
 * later row is inserted as the heap scan delivers it.
 */
void
switch_to_bounded(LoadState *st)
{
	Collected  &c = *st->collected;
	const DiskannBuildOptions *opts = st->opts;
	const std::size_t dims = (std::size_t) opts->indexed_dims;
	const bool	cosine = opts->metric == (int) vs::distance::Metric::kCosine;

	vs::pg::call([&] {
		ereport(NOTICE,
				(errmsg("diskann index \"%s\" does not fit in maintenance_work_mem; building it with bounded memory",
						RelationGetRelationName(st->index)),
				 st->estimate > (double) c.n
				 ? errdetail("An in-memory build needs about %.0f bytes per row; %zu rows already need more than maintenance_work_mem (%d MB), and the table has about %.0f.",
							 st->per_vector_bytes, c.n, maintenance_work_mem / 1024, st->estimate)
				 : errdetail("An in-memory build needs about %.0f bytes per row; %zu rows already need more than maintenance_work_mem (%d MB), and the table has more (its size is not known: ANALYZE it).",
							 st->per_vector_bytes, c.n, maintenance_work_mem / 1024),
				 errhint("The bounded build inserts rows one by one into the index pages and is slower; "
						 "raise maintenance_work_mem for the in-memory build.")));
	});
	if (cosine)
		for (std::size_t i = 0; i < c.n; ++i)
			(void) vs::distance::normalize(c.vectors.data() + i * dims, dims);

	vs::sbq::Quantizer quantizer;
	std::vector<float> stream;

	if (opts->storage == DISKANN_STORAGE_MEMORY_OPTIMIZED)
	{
		quantizer = vs::sbq::Quantizer::train(c.vectors.data(), c.n, dims, (std::uint32_t) opts->bits_per_dim);
		stream = quantizer.stream();
	}
	vs::format::GraphInput in;

	in.meta = meta_options(opts);
	if (opts->labeled)
	{
		std::size_t most = 1;

		for (std::size_t i = 0; i < c.labels.size(); ++i)
			most = std::max(most, c.labels.of(i).size());
		in.meta.has_labels = true;
		in.meta.label_capacity = (std::uint16_t) std::max<std::size_t>(DISKANN_DEFAULT_LABEL_CAPACITY, most);
	}
	in.quantizer_stream = stream;
	const vs::format::MetaInfo meta = vs::format::write_index(
		in, BLCKSZ, [&](std::uint32_t block, std::span<const std::byte> image) {
			DiskannWriteNewPage(st->index, MAIN_FORKNUM, block, image);
		});

	st->graph->emplace(st->index, meta, quantizer);

	/* The row nearest the centroid goes first and becomes the entry point. */
	std::size_t first = 0;

	if (c.n != 0)
	{
		std::vector<float> centroid(dims, 0.0f);
		float		best = 0;

		for (std::size_t i = 0; i < c.n; ++i)
			for (std::size_t d = 0; d < dims; ++d)
				centroid[d] += c.vectors[i * dims + d] / (float) c.n;
		for (std::size_t i = 0; i < c.n; ++i)
		{
			const float dist = vs::distance::l2_squared(centroid.data(), c.vectors.data() + i * dims, dims);

			if (i == 0 || dist < best)
			{
				best = dist;
				first = i;
			}
		}
	}
	for (std::size_t k = 0; k < c.n; ++k)
	{
		const std::size_t i = k == 0 ? first : (k <= first ? k - 1 : k);

		if ((k & 63) == 0 && (QueryCancelPending || ProcDiePending))
			throw vs::Cancelled();
		(*st->graph)->insert({c.vectors.data() + i * dims, dims}, c.tids[i],
							 opts->labeled ? c.labels.of(i) : std::span<const std::int16_t>());
	}
	c.vectors = vs::Array<float>();
	c.labels = vs::vamana::LabelSets();
	c.tids = std::vector<vs::format::Tid>();
	c.n = 0;
}

/* Inserts one streamed row into the pages of a bounded build (C++ zone). */
void
insert_bounded(LoadState *st, const float *x, vs::format::Tid tid, std::span<const std::int16_t> labels)
{
	const std::size_t dims = (std::size_t) st->opts->indexed_dims;
	std::vector<float> row(x, x + dims);

	if (st->opts->metric == (int) vs::distance::Metric::kCosine)
		(void) vs::distance::normalize(row.data(), dims);
	(*st->graph)->insert(row, tid, labels);
}

}							/* namespace */

DiskannVector *
DiskannBuildRowVector(Datum value, const DiskannBuildOptions *opts)
{
	DiskannVector *v = DatumGetDiskannVector(value);

	if (v->dim != opts->column_dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", opts->column_dims, v->dim)));
	return v;
}

namespace {

/* Heap scan callback (PG zone): one live tuple. */
void
load_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull, bool tupleIsAlive,
			  void *arg)
{
	LoadState  *st = (LoadState *) arg;
	MemoryContext old;
	DiskannVector *v;

	(void) index;
	(void) tupleIsAlive;
	if (isnull[0])
		return;

	old = MemoryContextSwitchTo(st->tmpctx);
	v = DiskannBuildRowVector(values[0], st->opts);
	int			nlabels = 0;
	int16	   *labels = st->opts->labeled && !isnull[1] ? DiskannLabelValues(values[1], &nlabels) : nullptr;

	vs::pg::invoke([&] {
		if (st->opts->labeled && !st->graph->has_value())
			st->collected->labels.push_back({labels, (std::size_t) nlabels});
		if (VS_FAILURE_POINT("build_callback_throw"))
			throw std::runtime_error("failure point build_callback_throw");
		if (VS_FAILURE_POINT("build_callback_bad_alloc"))
			throw std::bad_alloc();
		if (st->graph->has_value())
			insert_bounded(st, v->x, DiskannTidFromItemPointer(tid), {labels, (std::size_t) nlabels});
		else
		{
			append_vector(st->collected, v->x, (std::size_t) st->opts->indexed_dims,
						  DiskannTidFromItemPointer(tid));
			if ((double) st->collected->n * st->per_vector_bytes > st->budget_bytes)
				switch_to_bounded(st);
		}
	});
	st->indexed += 1;
	if (((long) st->indexed & (st->graph->has_value() ? 63 : 1023)) == 0)
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) st->indexed);

	MemoryContextSwitchTo(old);
	MemoryContextReset(st->tmpctx);
}

}							/* namespace */

/* Sets the progress phase and tuple counters (C++ zone). */
void
DiskannReportPhase(int phase, double done, double total)
{
	vs::pg::call([&] {
		const int	index[] = {PROGRESS_CREATEIDX_SUBPHASE, PROGRESS_CREATEIDX_TUPLES_TOTAL,
							   PROGRESS_CREATEIDX_TUPLES_DONE};
		const int64 val[] = {phase, (int64) total, (int64) done};

		pgstat_progress_update_multi_param(3, index, val);
	});
}

namespace {

/* The engine's build parameters from resolved options. */
vs::vamana::IndexParams
index_params(const DiskannBuildOptions *opts, int threads)
{
	vs::vamana::IndexParams p;

	p.build.metric = (vs::distance::Metric) opts->metric;
	p.build.num_neighbors = (std::uint32_t) opts->num_neighbors;
	p.build.search_list_size = (std::uint32_t) opts->search_list_size;
	p.build.max_alpha = opts->max_alpha;
	p.build.threads = (std::uint32_t) threads;
	p.storage = (vs::format::StorageLayout) opts->storage;
	p.bits_per_dim = (std::uint32_t) opts->bits_per_dim;
	return p;
}

}							/* namespace */

/* Appends one page image as the next block of the index's fork, without WAL (C++ zone). */
void
DiskannWriteNewPage(Relation index, ForkNumber fork, std::uint32_t block, std::span<const std::byte> image)
{
	vs::pg::call([&] {
		Buffer		buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, nullptr);

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		if (BufferGetBlockNumber(buf) != block)
			elog(ERROR, "diskann build expected to write block %u, got %u", block, BufferGetBlockNumber(buf));
		memcpy(BufferGetPage(buf), image.data(), BLCKSZ);
		MarkBufferDirty(buf);
		UnlockReleaseBuffer(buf);
	});
}

namespace {

/*
 * Writes the final meta page of a bounded build (label starts beyond its room go to overflow
 * pages after the node pages) and WAL-logs the relation.
 */
void
finish_bounded(Relation index, vs::format::MetaInfo meta)
{
	const std::uint32_t room = vs::format::inline_label_capacity(BLCKSZ);
	const std::uint32_t per_page = vs::format::overflow_labels_per_page(BLCKSZ);
	std::vector<std::byte> image(BLCKSZ);

	if (meta.labels.size() > room)
	{
		const std::vector<vs::format::LabelStart> rest(meta.labels.begin() + room, meta.labels.end());
		BlockNumber block = vs::pg::call([&] { return RelationGetNumberOfBlocks(index); });

		meta.labels.resize(room);
		meta.label_inline_count = room;
		meta.label_overflow_first_block = block;
		for (std::size_t i = 0; i < rest.size(); i += per_page, ++block)
		{
			const std::size_t n = std::min<std::size_t>(per_page, rest.size() - i);

			vs::format::write_overflow_page(image, {rest.data() + i, n},
											i + n < rest.size() ? block + 1 : vs::format::kInvalidBlock);
			DiskannWriteNewPage(index, MAIN_FORKNUM, block, image);
		}
	}
	vs::format::encode_meta(meta, image);
	vs::pg::call([&] {
		Buffer		buf = ReadBuffer(index, 0);

		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		memcpy(BufferGetPage(buf), image.data(), BLCKSZ);
		MarkBufferDirty(buf);
		UnlockReleaseBuffer(buf);
		if (RelationNeedsWAL(index))
			log_newpage_range(index, MAIN_FORKNUM, 0, RelationGetNumberOfBlocks(index), true);
	});
}

/* The local build, in the C++ zone. */
void
build_local(Relation heap, Relation index, IndexInfo *indexInfo, const DiskannBuildOptions *opts,
			IndexBuildResult *result)
{
	const double estimate = std::max<double>(heap->rd_rel->reltuples, 0.0);
	vs::vamana::IndexParams params = index_params(opts, DiskannBuildThreads(estimate));
	const std::uint32_t bits = opts->storage == DISKANN_STORAGE_PLAIN ? 0 : (std::uint32_t) opts->bits_per_dim;
	const double budget = (double) maintenance_work_mem * 1024.0;
	if (diskann_builder_endpoint != nullptr && diskann_builder_endpoint[0] != '\0' &&
		DiskannBuildRemote(heap, index, indexInfo, opts, params.build.seed, result))
		return;

	Collected	collected;
	std::optional<DiskannPageGraph> page_graph;
	LoadState	st;
	double		reltuples;

	/* Per-vector need of the in-memory build (vectors + graph + codes); scratch is per thread. */
	{
		const auto one = vs::vamana::estimate_build_memory(1 << 20, (std::uint32_t) opts->indexed_dims,
															params.build, bits);

		st.per_vector_bytes = (double) (one.total() - one.scratch) / (double) (1 << 20);
	}
	st.index = index;
	st.opts = opts;
	st.collected = &collected;
	st.graph = &page_graph;
	st.estimate = estimate;
	st.indexed = 0;
	st.budget_bytes = budget;
	st.tmpctx = vs::pg::call([&] {
		return AllocSetContextCreate(CurrentMemoryContext, "diskann build tuple", ALLOCSET_DEFAULT_SIZES);
	});

	DiskannReportPhase(DISKANN_PHASE_LOAD, 0, estimate);
	reltuples = vs::pg::call([&] {
		return table_index_build_scan(heap, index, indexInfo, true, true, load_callback, &st, nullptr);
	});
	vs::pg::call([&] { MemoryContextDelete(st.tmpctx); });

	const std::size_t n = collected.n;
	const std::size_t dims = (std::size_t) opts->indexed_dims;

	params.build.threads = (std::uint32_t) DiskannBuildThreads((double) n);
	if (!page_graph.has_value() &&
		(double) vs::vamana::estimate_build_memory(n, (std::uint32_t) dims, params.build, bits).total() > budget)
		switch_to_bounded(&st);	/* the per-thread scratch tipped it over */
	if (page_graph.has_value())
	{
		finish_bounded(index, page_graph->meta());
		result->heap_tuples = reltuples;
		result->index_tuples = st.indexed;
		return;
	}
	if (VS_FAILURE_POINT("build_pg_error"))
		vs::pg::call([] {
			ereport(ERROR,
					(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
					 errmsg("failure point build_pg_error")));
		});

	vs::Control control;

	control.cancel = [] { return QueryCancelPending || ProcDiePending; };
	control.progress = [&](std::uint32_t phase, std::uint64_t done, std::uint64_t total) {
		const int	p = phase == vs::vamana::kPhasePrune ? DISKANN_PHASE_PRUNE
			: phase == vs::vamana::kPhaseConnect ? DISKANN_PHASE_CONNECT
			: DISKANN_PHASE_GRAPH;

		DiskannReportPhase(p, (double) done, (double) total);
	};
	control.log = [&](vs::LogLevel level, std::string_view line) {
		vs::pg::call([&] {
			elog(level == vs::LogLevel::kWarning ? LOG : DEBUG1, "diskann build of \"%s\": %.*s",
				 RelationGetRelationName(index), (int) line.size(), line.data());
		});
	};

	DiskannReportPhase(bits != 0 ? DISKANN_PHASE_TRAIN : DISKANN_PHASE_GRAPH, 0, (double) n);
	vs::vamana::BuildStats stats;
	const vs::vamana::Index graph = vs::vamana::Index::build(std::move(collected.vectors), n, dims, params,
															  opts->labeled ? &collected.labels : nullptr, control,
															  &stats);

	DiskannReportPhase(DISKANN_PHASE_WRITE, 0, (double) n);
	vs::vamana::PageOptions page_options;

	page_options.page_size = BLCKSZ;
	page_options.column_dims = (std::uint32_t) opts->column_dims;
	page_options.labeled = opts->labeled;
	page_options.label_capacity = opts->labeled ? DISKANN_DEFAULT_LABEL_CAPACITY : 0;
	page_options.provenance.built_by = vs::format::BuiltBy::kLocal;
	page_options.provenance.backend = vs::format::BuildBackend::kCpu;
	page_options.provenance.builder_id = "vectorscale " DISKANN_MODULE_VERSION;

	(void) vs::vamana::write_index_pages(
		graph, params.build, collected.tids, page_options,
		[&](std::uint32_t block, std::span<const std::byte> image) {
			DiskannWriteNewPage(index, MAIN_FORKNUM, block, image);
		});
	DiskannReportPhase(DISKANN_PHASE_WRITE, (double) n, (double) n);

	vs::pg::call([&] {
		if (RelationNeedsWAL(index))
			log_newpage_range(index, MAIN_FORKNUM, 0, RelationGetNumberOfBlocks(index), true);
		elog(DEBUG1, "diskann build of \"%s\": %zu vectors, %u threads, %.2f s graph, %u unreachable linked",
			 RelationGetRelationName(index), n, params.build.threads, stats.seconds, stats.repaired_unreachable);
	});
	result->heap_tuples = reltuples;
	result->index_tuples = (double) n;
}

/* Writes the empty index (meta page only) into fork; used by ambuildempty. */
void
build_empty(Relation index, const DiskannBuildOptions *opts, ForkNumber fork)
{
	vs::vamana::IndexParams params = index_params(opts, 1);
	const vs::vamana::Index empty = vs::vamana::Index::build(vs::Array<float>(), 0,
															  (std::size_t) opts->indexed_dims, params);
	vs::vamana::PageOptions page_options;

	page_options.page_size = BLCKSZ;
	page_options.column_dims = (std::uint32_t) opts->column_dims;
	page_options.labeled = opts->labeled;
	page_options.label_capacity = opts->labeled ? DISKANN_DEFAULT_LABEL_CAPACITY : 0;
	page_options.provenance.builder_id = "vectorscale " DISKANN_MODULE_VERSION;
	(void) vs::vamana::write_index_pages(
		empty, params.build, {}, page_options, [&](std::uint32_t block, std::span<const std::byte> image) {
			vs::pg::call([&] {
				Buffer		buf = ReadBufferExtended(index, fork, P_NEW, RBM_NORMAL, nullptr);

				LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
				if (BufferGetBlockNumber(buf) != block)
					elog(ERROR, "diskann expected to write block %u, got %u", block, BufferGetBlockNumber(buf));
				START_CRIT_SECTION();
				memcpy(BufferGetPage(buf), image.data(), BLCKSZ);
				MarkBufferDirty(buf);
				log_newpage_buffer(buf, true);
				END_CRIT_SECTION();
				UnlockReleaseBuffer(buf);
			});
		});
}

}							/* namespace */

#ifndef VS_HAVE_BUILDER_CLIENT
/* This module was built without gRPC: a remote build is never possible. */
bool
DiskannBuildRemote(Relation heap, Relation index, IndexInfo *indexInfo, const DiskannBuildOptions *opts,
				   std::uint64_t seed, IndexBuildResult *result)
{
	(void) heap, (void) index, (void) indexInfo, (void) opts, (void) seed, (void) result;
	vs::pg::call([] {
		ereport(diskann_builder_fallback ? NOTICE : ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("diskann.builder_endpoint is set, but vectorscale was built without the builder client"),
				 diskann_builder_fallback ? errdetail("Building the index locally instead.")
				 : errhint("Reset diskann.builder_endpoint, or set diskann.builder_fallback = on.")));
	});
	return false;
}
#endif

/* ambuild: builds a new diskann index. */
IndexBuildResult *
diskannbuild(Relation heap, Relation index, IndexInfo *indexInfo)
{
	DiskannBuildOptions opts;
	IndexBuildResult *result;

	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));
	DiskannResolveOptions(index, &opts);	/* bad options fail before any work */
	result = (IndexBuildResult *) palloc0(sizeof(IndexBuildResult));
	vs::pg::invoke([&] { build_local(heap, index, indexInfo, &opts, result); });
	return result;
}

/* ambuildempty: the init fork of an UNLOGGED index (an empty index, WAL-logged). */
void
diskannbuildempty(Relation index)
{
	DiskannBuildOptions opts;

	DiskannResolveOptions(index, &opts);
	vs::pg::invoke([&] { build_empty(index, &opts, INIT_FORKNUM); });
}
