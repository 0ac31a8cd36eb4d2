/*
 * diskannutils.cpp
 *		Options resolved against the column, the metric of an opclass, build threads, and the
 *		compile-time check that common/format mirrors PostgreSQL's page structures.
 */
#include <cstring>
#include <functional>
#include <span>
#include <vector>

#include "vectorscale/format/page.hpp"
#include "vectorscale/format/reader.hpp"
#include "vectorscale/format/records.hpp"
#include "vectorscale/sbq/sbq.hpp"
#include "vectorscale/vamana/params.hpp"

#include "diskann.hpp"

extern "C" {
#include "access/generic_xlog.h"
#include "access/itup.h"
#include "postmaster/bgworker_internals.h"
#include "storage/bufpage.h"
#include "storage/itemptr.h"
#include "catalog/pg_type_d.h"
#include "utils/lsyscache.h"
}

#include "bridge/guard.hpp"
#include "diskannutils.hpp"

/* common/format mirrors PostgreSQL's page layout; prove it against the real headers. */
static_assert(vs::format::kPageHeaderSize == SizeOfPageHeaderData);
static_assert(vs::format::kItemIdSize == sizeof(ItemIdData));
static_assert(sizeof(vs::format::ItemPointerMirror) == sizeof(ItemPointerData));
static_assert(vs::format::kMaxAlign == MAXIMUM_ALIGNOF);
static_assert(vs::format::kLayoutVersion == PG_PAGE_LAYOUT_VERSION);
static_assert(vs::format::kMinPageSize <= BLCKSZ && BLCKSZ <= vs::format::kMaxPageSize);
static_assert(offsetof(vs::format::PageHeaderMirror, pd_lower) == offsetof(PageHeaderData, pd_lower));
static_assert(offsetof(vs::format::PageHeaderMirror, pd_upper) == offsetof(PageHeaderData, pd_upper));
static_assert(offsetof(vs::format::PageHeaderMirror, pd_special) == offsetof(PageHeaderData, pd_special));
static_assert(offsetof(vs::format::PageHeaderMirror, pd_pagesize_version) ==
			  offsetof(PageHeaderData, pd_pagesize_version));
static_assert(offsetof(vs::format::PageHeaderMirror, pd_prune_xid) == offsetof(PageHeaderData, pd_prune_xid));
static_assert(offsetof(vs::format::PageHeaderMirror, pd_checksum) == offsetof(PageHeaderData, pd_checksum));
static_assert(offsetof(vs::format::ItemPointerMirror, ip_posid) == offsetof(ItemPointerData, ip_posid));
static_assert(vs::format::kInvalidBlock == InvalidBlockNumber);
static_assert((int) vs::distance::Metric::kL2 == 1 && (int) vs::distance::Metric::kCosine == 2 &&
			  (int) vs::distance::Metric::kInnerProduct == 3, "the opclass support functions return these");
static_assert((int) vs::format::StorageLayout::kMemoryOptimized == DISKANN_STORAGE_MEMORY_OPTIMIZED &&
			  (int) vs::format::StorageLayout::kPlain == DISKANN_STORAGE_PLAIN);
static_assert(DISKANN_VECTOR_MAX_DIM == vs::format::kMaxDims);

/* Returns the metric of the index's opclass (its support function 1). */
int
DiskannGetMetric(Relation index)
{
	FmgrInfo   *proc = index_getprocinfo(index, 1, DISKANN_METRIC_PROC);
	int			metric = DatumGetInt16(FunctionCall0Coll(proc, InvalidOid));

	if (metric < (int) vs::distance::Metric::kL2 || metric > (int) vs::distance::Metric::kInnerProduct)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("operator class of index \"%s\" returns unknown distance type %d",
						RelationGetRelationName(index), metric)));
	return metric;
}

/* Returns the dimensions of the indexed column's type (its typmod). */
int
DiskannColumnDims(Relation index)
{
	int			typmod = TupleDescAttr(index->rd_att, 0)->atttypmod;

	if (typmod < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column does not have dimensions"),
				 errhint("Declare the column as vector(n), or index an expression cast to vector(n).")));
	if (typmod > DISKANN_VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("column cannot have more than %d dimensions for diskann index", DISKANN_VECTOR_MAX_DIM)));
	return typmod;
}

/* Largest number of plain float dimensions whose node record fits a page with R neighbors. */
static int
plain_dims_limit(int num_neighbors)
{
	return vs::pg::invoke([&]() -> int {
		/* record = 12 + dims*4 + 6R (no labels), placed at align8; 40 = header 24 + special 16 */
		std::uint32_t lo = 0, hi = vs::format::kMaxDims;
		while (lo < hi)
		{
			const std::uint32_t mid = (lo + hi + 1) / 2;
			try
			{
				(void) vs::format::NodeLayout::make(vs::format::StorageLayout::kPlain, mid, 0,
													(std::uint32_t) num_neighbors, 0, BLCKSZ);
				lo = mid;
			}
			catch (const vs::Error &)
			{
				hi = mid - 1;
			}
		}
		return (int) lo;
	});
}

/*
 * Resolves the index options against the column and rejects bad combinations, before any
 * work is done (DESIGN.md 1.1).
 */
void
DiskannResolveOptions(Relation index, DiskannBuildOptions *out)
{
	DiskannOptions *opts = (DiskannOptions *) index->rd_options;
	int			storage = opts ? opts->storage_layout : DISKANN_STORAGE_MEMORY_OPTIMIZED;
	int			r = opts ? opts->num_neighbors : DISKANN_NUM_NEIGHBORS_DEFAULT;
	int			num_dimensions = opts ? opts->num_dimensions : DISKANN_NUM_DIMENSIONS_ALL;
	int			bits = opts ? opts->num_bits_per_dimension : DISKANN_BITS_DEFAULT;

	/* (vector) or (vector, smallint[] labels), the vector first. */
	if (IndexRelationGetNumberOfKeyAttributes(index) > 2)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("diskann indexes have at most two columns: a vector and smallint[] labels")));
	if (index->rd_opcintype[0] == INT2ARRAYOID)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the first column of a diskann index must be the vector"),
				 errhint("Write the index as (embedding, labels); the table's column order does not matter.")));
	out->labeled = IndexRelationGetNumberOfKeyAttributes(index) == 2;
	if (out->labeled && index->rd_opcintype[1] != INT2ARRAYOID)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("the second column of a diskann index must be smallint[] labels")));
	if (out->labeled && storage == DISKANN_STORAGE_PLAIN)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("labels are not supported with storage_layout plain"),
				 errhint("Use storage_layout memory_optimized for a filtered (labeled) index.")));
	out->metric = DiskannGetMetric(index);
	out->storage = storage;
	out->column_dims = DiskannColumnDims(index);
	out->num_neighbors = r == DISKANN_NUM_NEIGHBORS_DEFAULT ? (int) vs::vamana::kDefaultNumNeighbors : r;
	out->search_list_size = opts ? opts->search_list_size : (int) vs::vamana::kDefaultSearchListSize;
	out->max_alpha = opts ? (float) opts->max_alpha : vs::vamana::kDefaultMaxAlpha;

	if (num_dimensions > out->column_dims)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("num_dimensions (%d) is larger than the dimensions of the column (%d)",
						num_dimensions, out->column_dims)));
	out->indexed_dims = num_dimensions == DISKANN_NUM_DIMENSIONS_ALL ? out->column_dims : num_dimensions;

	if (storage == DISKANN_STORAGE_PLAIN)
	{
		if (out->metric == (int) vs::distance::Metric::kInnerProduct)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("inner product distance is not supported with storage_layout plain"),
					 errhint("Use storage_layout memory_optimized.")));
		if (bits > 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("num_bits_per_dimension > 1 requires storage_layout memory_optimized"),
					 errdetail("num_bits_per_dimension is %d.", bits)));
		if (out->indexed_dims > plain_dims_limit(out->num_neighbors))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("vectors of %d dimensions are too large for storage_layout plain",
							out->indexed_dims),
					 errdetail("With num_neighbors = %d, a %d-byte page holds node records of at most %d dimensions.",
							   out->num_neighbors, BLCKSZ, plain_dims_limit(out->num_neighbors)),
					 errhint("Use storage_layout memory_optimized, fewer num_neighbors, or num_dimensions.")));
		out->bits_per_dim = 0;
	}
	else
	{
		if (out->indexed_dims > (int) vs::format::kMaxDims)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("memory_optimized diskann indexes support at most %u dimensions",
							vs::format::kMaxDims)));
		out->bits_per_dim = bits == DISKANN_BITS_DEFAULT
			? (int) vs::sbq::default_bits_per_dim((std::size_t) out->indexed_dims)
			: bits;
	}
}

/* Threads of a local build of n vectors (DESIGN.md 5: diskann.build_threads and the parallel GUCs). */
int
DiskannBuildThreads(double n)
{
	int			threads;

	if (diskann_force_parallel_workers >= 0)
		return 1 + diskann_force_parallel_workers;
	if (n < diskann_min_vectors_for_parallel_build)
		return 1;
	threads = diskann_build_threads > 0 ? diskann_build_threads : 1 + max_parallel_maintenance_workers;
	return Max(threads, 1);
}

/* TID conversions between PostgreSQL and the engine. */
vs::format::Tid
DiskannTidFromItemPointer(ItemPointer ip)
{
	return vs::format::Tid{ItemPointerGetBlockNumberNoCheck(ip), ItemPointerGetOffsetNumberNoCheck(ip)};
}

void
DiskannTidToItemPointer(vs::format::Tid tid, ItemPointer out)
{
	ItemPointerSet(out, tid.block, tid.offset);
}

/* Copies a block's image out under a share lock (C++ zone). */
void
DiskannReadPage(Relation index, BlockNumber block, std::byte *out)
{
	vs::pg::call([&] {
		Buffer		buf = ReadBuffer(index, block);

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		memcpy(out, BufferGetPage(buf), BLCKSZ);
		UnlockReleaseBuffer(buf);
	});
}

/* Reads and decodes the meta page (C++ zone); throws vs::Error{kCorrupt} when malformed. */
vs::format::MetaInfo
DiskannReadMeta(Relation index)
{
	std::vector<std::byte> page(BLCKSZ);

	DiskannReadPage(index, 0, page.data());
	return vs::format::decode_meta(page);
}

/* Throws vs::Error{kCorrupt} for a node TID DiskannVisitNode could not read. */
void
DiskannNodeProblem(Relation index, vs::format::Tid tid, const char *problem)
{
	VS_FAIL(vs::ErrorCode::kCorrupt, "index \"%s\": node (%u,%u): %s", RelationGetRelationName(index), tid.block,
			(unsigned) tid.offset, problem);
}


/*
 * Rewrites the meta page under its exclusive lock with one Generic WAL record: decodes it,
 * lets change() edit the fields, encodes it back (C++ zone).
 */
void
DiskannUpdateMeta(Relation index, const std::function<void(vs::format::MetaInfo &)> &change)
{
	Buffer		buf = InvalidBuffer;
	GenericXLogState *state = nullptr;
	Page		page = nullptr;

	vs::pg::call([&] {
		buf = ReadBuffer(index, 0);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		state = GenericXLogStart(index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
	});
	vs::format::MetaInfo meta =
		vs::format::decode_meta(std::span<const std::byte>(reinterpret_cast<const std::byte *>(page), BLCKSZ));

	change(meta);
	DiskannEncodeMetaInto(page, meta);
	vs::pg::call([&] {
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	});
}

void
DiskannEncodeMetaInto(Page page, const vs::format::MetaInfo &meta)
{
	std::vector<std::byte> image(BLCKSZ);

	vs::format::encode_meta(meta, image);
	DiskannCopyImageInto(page, image);
}

void
DiskannCopyImageInto(Page page, std::span<const std::byte> image)
{
	const size_t keep = offsetof(PageHeaderData, pd_flags);

	Assert(image.size() == BLCKSZ);
	memcpy((char *) page + keep, image.data() + keep, BLCKSZ - keep);
}

/* The quantizer stream as cached in rd_amcache: its length, then the floats. */
typedef struct DiskannQuantizerCache
{
	uint32		count;
	float		stream[FLEXIBLE_ARRAY_MEMBER];
} DiskannQuantizerCache;

vs::sbq::Quantizer
DiskannReadQuantizer(Relation index, const vs::format::MetaInfo &meta)
{
	const DiskannQuantizerCache *cache = (const DiskannQuantizerCache *) index->rd_amcache;

	if (cache == nullptr)
	{
		std::vector<std::byte> page(BLCKSZ);
		const std::vector<float> stream = vs::format::read_quantizer_stream(
			meta, BLCKSZ, [&](std::uint32_t block) -> std::span<const std::byte> {
				DiskannReadPage(index, block, page.data());
				return page;
			});

		cache = vs::pg::call([&] {
			DiskannQuantizerCache *c = (DiskannQuantizerCache *)
				MemoryContextAlloc(index->rd_indexcxt, offsetof(DiskannQuantizerCache, stream) + sizeof(float) * stream.size());

			c->count = (uint32) stream.size();
			memcpy(c->stream, stream.data(), sizeof(float) * stream.size());
			index->rd_amcache = c;
			return c;
		});
	}
	return vs::sbq::Quantizer(meta.indexed_dims, meta.bits_per_dim, {cache->stream, cache->count});
}

std::vector<vs::format::LabelStart>
DiskannReadLabelStarts(Relation index, const vs::format::MetaInfo &meta)
{
	std::vector<std::byte> page(BLCKSZ);
	auto		read = [&](const vs::format::MetaInfo &m) {
		return vs::format::read_label_starts(m, BLCKSZ, [&](std::uint32_t block) -> std::span<const std::byte> {
			DiskannReadPage(index, block, page.data());
			return page;
		});
	};

	if (meta.label_count == meta.label_inline_count)
		return read(meta);
	Buffer		buf = InvalidBuffer;

	vs::pg::call([&] {
		buf = ReadBuffer(index, 0);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
	});
	try
	{
		std::vector<vs::format::LabelStart> starts = read(vs::format::decode_meta(
			{reinterpret_cast<const std::byte *>(BufferGetPage(buf)), BLCKSZ}));

		vs::pg::call([&] { UnlockReleaseBuffer(buf); });
		return starts;
	}
	catch (const vs::Error &)
	{
		/* A PgError leaves the buffer to the transaction's abort, which releases it. */
		vs::pg::call([&] { UnlockReleaseBuffer(buf); });
		throw;
	}
}

std::vector<DiskannLabelPage>
DiskannReadLabelChain(Relation index, const vs::format::MetaInfo &meta)
{
	std::vector<DiskannLabelPage> chain;
	std::vector<std::byte> image(BLCKSZ);

	for (std::uint32_t b = meta.label_overflow_first_block; b != vs::format::kInvalidBlock;)
	{
		if (chain.size() > meta.label_count)
			VS_FAIL(vs::ErrorCode::kCorrupt, "the label overflow chain of \"%s\" has a cycle at block %u",
					RelationGetRelationName(index), b);
		DiskannReadPage(index, b, image.data());
		chain.push_back(DiskannLabelPage{b, vs::format::overflow_page_entries(image, b)});
		b = vs::format::read_page_opaque(image).next_blkno;
	}
	return chain;
}

DiskannMetaNodeEdit
DiskannBeginMetaNodeEdit(Relation index, BlockNumber blk)
{
	DiskannMetaNodeEdit e;

	vs::pg::call([&] {
		e.meta_buf = ReadBuffer(index, 0);
		LockBuffer(e.meta_buf, BUFFER_LOCK_EXCLUSIVE);
		e.buf = ReadBuffer(index, blk);
		LockBuffer(e.buf, BUFFER_LOCK_EXCLUSIVE);
		e.xlog = GenericXLogStart(index);
		e.meta_page = GenericXLogRegisterBuffer(e.xlog, e.meta_buf, 0);
		e.page = GenericXLogRegisterBuffer(e.xlog, e.buf, 0);
	});
	return e;
}

void
DiskannEndMetaNodeEdit(DiskannMetaNodeEdit &e, bool commit)
{
	vs::pg::call([&] {
		if (commit)
			GenericXLogFinish(e.xlog);
		else
			GenericXLogAbort(e.xlog);
		UnlockReleaseBuffer(e.buf);
		UnlockReleaseBuffer(e.meta_buf);
	});
}
