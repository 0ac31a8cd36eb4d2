/*
 * diskanninsert.cpp
 *		aminsert. Streaming inserts (greedy search, RobustPrune, reverse edges, Generic WAL,
 *		page-level locking) are the next step of the roadmap; until they land, an insert into
 *		an indexed table fails cleanly instead of leaving the index stale.
 */
#include "diskann.hpp"

/* aminsert */
bool
diskanninsert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid, Relation heap,
			  IndexUniqueCheck checkUnique, bool indexUnchanged, IndexInfo *indexInfo)
{
	(void) values;
	(void) heap_tid;
	(void) heap;
	(void) checkUnique;
	(void) indexUnchanged;
	(void) indexInfo;
	if (isnull[0])
		return false;			/* NULL vectors are not indexed */
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("inserting into diskann index \"%s\" is not supported yet",
					RelationGetRelationName(index)),
			 errhint("Drop the index, load the rows, and create the index again (REINDEX after bulk loads).")));
	return false;
}
