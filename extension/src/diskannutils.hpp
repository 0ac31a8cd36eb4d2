/*
 * diskannutils.hpp
 *		C++-zone helpers shared by the AM files (include after diskann.hpp and bridge/guard.hpp).
 */
#pragma once

#include <cstddef>
#include <functional>

extern "C" {
#include "access/generic_xlog.h"
}

#include "vectorscale/format/page.hpp"
#include "vectorscale/format/records.hpp"
#include "vectorscale/sbq/sbq.hpp"

vs::format::Tid DiskannTidFromItemPointer(ItemPointer ip);
void		DiskannTidToItemPointer(vs::format::Tid tid, ItemPointer out);
void		DiskannReadPage(Relation index, BlockNumber block, std::byte *out);
vs::format::MetaInfo DiskannReadMeta(Relation index);

/*
 * The SBQ quantizer of a memory_optimized index (C++ zone). Its statistics never change after
 * the build, so the stream is read once per relcache entry and kept in rd_amcache (a REINDEX
 * makes a new relcache entry).
 */
vs::sbq::Quantizer DiskannReadQuantizer(Relation index, const vs::format::MetaInfo &meta);

/*
 * Every label start of a labeled index, sorted by label (C++ zone). Without overflow pages,
 * meta's inline ones. Else the meta page as it is now and its overflow chain, read under the
 * meta page's share lock (writers change the chain under its exclusive lock).
 */
std::vector<vs::format::LabelStart> DiskannReadLabelStarts(Relation index, const vs::format::MetaInfo &meta);
/* One page of the label overflow chain. */
struct DiskannLabelPage
{
	BlockNumber block;
	std::vector<vs::format::LabelStart> entries;
	bool		dirty = false;		/* for the caller's edits */
};

/*
 * The overflow chain of meta's label starts, in chain order (C++ zone). The caller holds the
 * meta page's exclusive lock, under which the chain changes; throws kCorrupt on a cycle.
 */
std::vector<DiskannLabelPage> DiskannReadLabelChain(Relation index, const vs::format::MetaInfo &meta);
[[noreturn]] void DiskannNodeProblem(Relation index, vs::format::Tid tid, const char *problem);

/*
 * Calls fn(record) with node record tid in place, under the buffer's share lock (C++ zone);
 * fn must be noexcept and must not call PostgreSQL. The record is 8-byte aligned. Throws
 * vs::Error{kCorrupt} when the TID does not name a node record; a block past the end fails
 * in ReadBuffer (a PgError).
 */
template <class Fn>
void
DiskannVisitNode(Relation index, vs::format::Tid tid, const vs::format::NodeLayout &layout, Fn &&fn)
{
	static_assert(noexcept(fn(static_cast<const std::byte *>(nullptr))), "fn runs under a buffer lock");
	const char *problem = vs::pg::call([&]() -> const char * {
		Buffer		buf;
		Page		page;
		ItemId		iid;
		const char *why = nullptr;

		if (tid.block == 0 || tid.block == InvalidBlockNumber)
			return "block out of range";
		buf = ReadBuffer(index, tid.block);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (PageIsNew(page) || tid.offset < FirstOffsetNumber || tid.offset > PageGetMaxOffsetNumber(page))
			why = "offset out of range";
		else
		{
			iid = PageGetItemId(page, tid.offset);
			if (!ItemIdIsNormal(iid) || ItemIdGetLength(iid) != layout.record_size ||
				ItemIdGetOffset(iid) + layout.record_size > ((PageHeader) page)->pd_special ||
				ItemIdGetOffset(iid) % 8 != 0)
				why = "line pointer is not a node record";
			else
				fn(reinterpret_cast<const std::byte *>(PageGetItem(page, iid)));
		}
		UnlockReleaseBuffer(buf);
		return why;
	});

	if (problem != nullptr)
		DiskannNodeProblem(index, tid, problem);
}
/* Rewrites the meta page with change(meta) applied, WAL-logged (C++ zone). */
void		DiskannUpdateMeta(Relation index, const std::function<void(vs::format::MetaInfo &)> &change);

/*
 * Encodes meta into the (registered, exclusively locked) meta page, keeping the page's
 * pd_lsn and pd_checksum: PostgreSQL owns them (GenericXLogFinish sets the LSN).
 */
void		DiskannEncodeMetaInto(Page page, const vs::format::MetaInfo &meta);

/* Copies a page image over a (registered) page, keeping its LSN and checksum. */
void		DiskannCopyImageInto(Page page, std::span<const std::byte> image);

/* A change to the meta page and one node page as one Generic WAL record (C++ zone). */
struct DiskannMetaNodeEdit
{
	Buffer		meta_buf = InvalidBuffer;
	Buffer		buf = InvalidBuffer;
	GenericXLogState *xlog = nullptr;
	Page		meta_page = nullptr;	/* registered copies: edit these */
	Page		page = nullptr;
};

/* Locks the meta page, then node page blk, exclusively, and registers both (lock order). */
DiskannMetaNodeEdit DiskannBeginMetaNodeEdit(Relation index, BlockNumber blk);

/* WAL-logs the edit (commit) or drops it, and releases both pages. */
void		DiskannEndMetaNodeEdit(DiskannMetaNodeEdit &edit, bool commit);
