/*
 * diskannvalidate.cpp
 *		The opclass validator (amvalidate) and the SQL functions diskann_index_info(regclass)
 *		and diskann_validate_index(regclass).
 */
#include <string>
#include <vector>

#include "vectorscale/format/records.hpp"
#include "vectorscale/format/validate.hpp"

#include "diskann.hpp"

extern "C" {
#include "access/amvalidate.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xlog.h"
#include "catalog/pg_amop.h"
#include "catalog/pg_amproc.h"
#include "catalog/pg_opclass.h"
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
}

#include "bridge/guard.hpp"
#include "diskannutils.hpp"

/*
 * amvalidate. A vector opclass: support function 1 takes no arguments and returns smallint
 * (the metric code); its operator is an ORDER BY operator returning float8. The label opclass
 * (smallint[]): no support function; its operator is the search operator && returning bool.
 */
bool
diskannvalidate(Oid opclassoid)
{
	bool		result = true;
	HeapTuple	classtup;
	Form_pg_opclass classform;
	Oid			opfamilyoid;
	CatCList   *proclist,
			   *oprlist;
	char	   *opclassname;
	bool		has_metric = false;

	classtup = SearchSysCache1(CLAOID, ObjectIdGetDatum(opclassoid));
	if (!HeapTupleIsValid(classtup))
		elog(ERROR, "cache lookup failed for operator class %u", opclassoid);
	classform = (Form_pg_opclass) GETSTRUCT(classtup);
	opfamilyoid = classform->opcfamily;
	opclassname = NameStr(classform->opcname);
	if (classform->opcintype == INT2ARRAYOID)
	{
		bool		label_ok = true;

		proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(opfamilyoid));
		oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(opfamilyoid));
		label_ok = proclist->n_members == 0 && oprlist->n_members == 1;
		for (int i = 0; i < oprlist->n_members && label_ok; i++)
		{
			Form_pg_amop oprform = (Form_pg_amop) GETSTRUCT(&oprlist->members[i]->tuple);

			label_ok = oprform->amoppurpose == AMOP_SEARCH && oprform->amopstrategy == 1 &&
				check_amop_signature(oprform->amopopr, BOOLOID, INT2ARRAYOID, INT2ARRAYOID);
		}
		if (!label_ok)
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("diskann label operator class \"%s\" must have exactly the search operator 1 && (smallint[], smallint[]) and no support function",
							opclassname)));
		ReleaseCatCacheList(oprlist);
		ReleaseCatCacheList(proclist);
		ReleaseSysCache(classtup);
		return label_ok;
	}

	proclist = SearchSysCacheList1(AMPROCNUM, ObjectIdGetDatum(opfamilyoid));
	for (int i = 0; i < proclist->n_members; i++)
	{
		Form_pg_amproc procform = (Form_pg_amproc) GETSTRUCT(&proclist->members[i]->tuple);

		if (procform->amprocnum != DISKANN_METRIC_PROC ||
			!check_amproc_signature(procform->amproc, INT2OID, false, 0, 0))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("diskann operator class \"%s\" has invalid support function %d",
							opclassname, procform->amprocnum)));
			result = false;
		}
		else if (procform->amproclefttype == classform->opcintype)
			has_metric = true;
	}
	oprlist = SearchSysCacheList1(AMOPSTRATEGY, ObjectIdGetDatum(opfamilyoid));
	for (int i = 0; i < oprlist->n_members; i++)
	{
		Form_pg_amop oprform = (Form_pg_amop) GETSTRUCT(&oprlist->members[i]->tuple);

		if (oprform->amoppurpose != AMOP_ORDER || oprform->amopstrategy != 1 ||
			!check_amop_signature(oprform->amopopr, FLOAT8OID, oprform->amoplefttype,
								  oprform->amoprighttype))
		{
			ereport(INFO,
					(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
					 errmsg("diskann operator class \"%s\" has invalid operator %s",
							opclassname, format_operator(oprform->amopopr))));
			result = false;
		}
	}
	if (!has_metric)
	{
		ereport(INFO,
				(errcode(ERRCODE_INVALID_OBJECT_DEFINITION),
				 errmsg("diskann operator class \"%s\" is missing support function %d",
						opclassname, DISKANN_METRIC_PROC)));
		result = false;
	}
	ReleaseCatCacheList(oprlist);
	ReleaseCatCacheList(proclist);
	ReleaseSysCache(classtup);
	return result;
}

/* Opens relid as a diskann index with lockmode, or raises an error. */
static Relation
open_diskann_index(Oid relid, LOCKMODE lockmode)
{
	Relation	rel = relation_open(relid, lockmode);

	if (rel->rd_rel->relkind != RELKIND_INDEX || rel->rd_indam == nullptr ||
		rel->rd_indam->amgettuple != diskanngettuple)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a diskann index", RelationGetRelationName(rel))));
	if (RELATION_IS_OTHER_TEMP(rel))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot access temporary indexes of other sessions")));
	return rel;
}

extern "C" {
PG_FUNCTION_INFO_V1(diskann_validate_index);
PG_FUNCTION_INFO_V1(diskann_index_info);
PG_FUNCTION_INFO_V1(diskann_metric_l2);
PG_FUNCTION_INFO_V1(diskann_metric_cosine);
PG_FUNCTION_INFO_V1(diskann_metric_ip);
PGDLLEXPORT Datum diskann_validate_index(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum diskann_index_info(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum diskann_metric_l2(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum diskann_metric_cosine(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum diskann_metric_ip(PG_FUNCTION_ARGS);
}

/* Opclass support functions: the metric code of each opclass. */
Datum
diskann_metric_l2(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT16((int16) vs::distance::Metric::kL2);
}

Datum
diskann_metric_cosine(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT16((int16) vs::distance::Metric::kCosine);
}

Datum
diskann_metric_ip(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT16((int16) vs::distance::Metric::kInnerProduct);
}

/*
 * diskann_validate_index(regclass): walks every page and node and checks every invariant
 * of the format (common/format/validate.hpp); raises an error naming the first violation.
 * Takes a ShareLock on the index so no insert or vacuum runs meanwhile (AccessShareLock on a
 * standby, where a page may change under the walk while WAL is replayed).
 */
Datum
diskann_validate_index(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	/* A standby cannot take ShareLock; there only WAL replay changes the index. */
	LOCKMODE	lockmode = RecoveryInProgress() ? AccessShareLock : ShareLock;
	Relation	index = open_diskann_index(relid, lockmode);
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	char		reason[1024];
	bool		ok;

	ok = vs::pg::invoke([&] {
		vs::format::IndexValidator validator(BLCKSZ, nblocks);
		std::vector<std::byte> page(BLCKSZ);
		vs::format::PageCheck check;

		for (BlockNumber blk = 0; blk < nblocks; ++blk)
		{
			if ((blk & 63) == 0 && (QueryCancelPending || ProcDiePending))
				throw vs::Cancelled();
			DiskannReadPage(index, blk, page.data());
			check = validator.add_page(blk, page);
		}
		check = validator.finish();
		strlcpy(reason, check.reason.c_str(), sizeof(reason));
		return check.ok;
	});
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("diskann index \"%s\" is corrupt", RelationGetRelationName(index)),
				 errdetail("%s", reason)));
	relation_close(index, lockmode);
	PG_RETURN_VOID();
}

/* Everything diskann_index_info returns, as C strings and numbers. */
struct IndexInfoRow
{
	int			format_version;
	char		storage[32];
	char		metric[32];
	int			column_dims;
	int			indexed_dims;
	int			bits;
	int			num_neighbors;
	int			search_list_size;
	float		max_alpha;
	bool		has_labels;
	int64		nodes;
	int64		deleted;
	int64		pages;
	ItemPointerData entry;
	bool		has_entry;
	char		built_by[16];
	char		backend[16];
	char		builder_id[80];
};

/* diskann_index_info(regclass): what the meta page says about an index. */
Datum
diskann_index_info(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	index = open_diskann_index(relid, AccessShareLock);
	TupleDesc	tupdesc;
	IndexInfoRow row;
	Datum		values[18];
	bool		nulls[18] = {false};
	int			i = 0;

	if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	row.pages = RelationGetNumberOfBlocks(index);
	vs::pg::invoke([&] {
		const vs::format::MetaInfo m = DiskannReadMeta(index);

		row.format_version = (int) vs::format::kFormatVersion;
		strlcpy(row.storage, m.storage == vs::format::StorageLayout::kPlain ? "plain" : "memory_optimized",
				sizeof(row.storage));
		strlcpy(row.metric, vs::distance::metric_name(m.metric), sizeof(row.metric));
		row.column_dims = (int) m.column_dims;
		row.indexed_dims = (int) m.indexed_dims;
		row.bits = m.bits_per_dim;
		row.num_neighbors = (int) m.num_neighbors;
		row.search_list_size = (int) m.search_list_size;
		row.max_alpha = m.max_alpha;
		row.has_labels = m.has_labels;
		row.nodes = (int64) m.node_count;
		row.deleted = (int64) m.deleted_count;
		row.has_entry = m.entry_point.valid();
		DiskannTidToItemPointer(m.entry_point, &row.entry);
		strlcpy(row.built_by, m.built_by == vs::format::BuiltBy::kBuilder ? "builder" : "local",
				sizeof(row.built_by));
		strlcpy(row.backend, vs::format::build_backend_name(m.build_backend), sizeof(row.backend));
		strlcpy(row.builder_id, m.builder_id.c_str(), sizeof(row.builder_id));
	});

	values[i++] = Int32GetDatum(row.format_version);
	values[i++] = CStringGetTextDatum(row.storage);
	values[i++] = CStringGetTextDatum(row.metric);
	values[i++] = Int32GetDatum(row.column_dims);
	values[i++] = Int32GetDatum(row.indexed_dims);
	values[i++] = Int32GetDatum(row.bits);
	values[i++] = Int32GetDatum(row.num_neighbors);
	values[i++] = Int32GetDatum(row.search_list_size);
	values[i++] = Float4GetDatum(row.max_alpha);
	values[i++] = BoolGetDatum(row.has_labels);
	values[i++] = Int64GetDatum(row.nodes);
	values[i++] = Int64GetDatum(row.deleted);
	values[i++] = Int64GetDatum(row.pages);
	nulls[i] = !row.has_entry;
	values[i++] = PointerGetDatum(&row.entry);
	values[i++] = CStringGetTextDatum(row.built_by);
	values[i++] = CStringGetTextDatum(row.backend);
	values[i++] = CStringGetTextDatum(row.builder_id);
	relation_close(index, AccessShareLock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
