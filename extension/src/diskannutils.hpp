/*
 * diskannutils.hpp
 *		C++-zone helpers shared by the AM files (include after diskann.hpp and bridge/guard.hpp).
 */
#pragma once

#include <cstddef>
#include <functional>

#include "vectorscale/format/page.hpp"
#include "vectorscale/format/records.hpp"

vs::format::Tid DiskannTidFromItemPointer(ItemPointer ip);
void		DiskannTidToItemPointer(vs::format::Tid tid, ItemPointer out);
void		DiskannReadPage(Relation index, BlockNumber block, std::byte *out);
vs::format::MetaInfo DiskannReadMeta(Relation index);
void		DiskannReadNode(Relation index, vs::format::Tid tid, const vs::format::NodeLayout &layout,
							std::byte *out);
/* Rewrites the meta page with change(meta) applied, WAL-logged (C++ zone). */
void		DiskannUpdateMeta(Relation index, const std::function<void(vs::format::MetaInfo &)> &change);
