/*
 * diskann.cpp
 *		The diskann access method handler, its reloptions, GUCs and cost estimate.
 *
 * The SQL surface (names, defaults, ranges) is pgvectorscale's, so that its users switch
 * without changing SQL (DESIGN.md 1.1). Options are only read at CREATE INDEX time; the
 * meta page freezes them.
 */
#include <cfloat>
#include <cmath>

#include "vectorscale/vamana/params.hpp"

#include "diskann.hpp"

extern "C" {
#include "access/genam.h"
#include "access/relation.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "optimizer/cost.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/selfuncs.h"
#include "utils/spccache.h"
}

#include "bridge/guard.hpp"

extern "C" {
PG_MODULE_MAGIC;
}

int			diskann_query_search_list_size = vs::vamana::kDefaultQuerySearchListSize;
int			diskann_query_rescore = vs::vamana::kDefaultQueryRescore;
int			diskann_build_threads = 0;
int			diskann_parallel_flush_interval = 4096;
int			diskann_parallel_flush_rate = 4096;
int			diskann_parallel_initial_start_nodes_count = 1024;
int			diskann_min_vectors_for_parallel_build = 65536;
int			diskann_force_parallel_workers = -1;
char	   *diskann_builder_endpoint = nullptr;
bool		diskann_builder_fallback = true;
int			diskann_builder_timeout = 3600;
int			diskann_builder_connect_timeout = 10;
char	   *diskann_builder_tls_ca = nullptr;
char	   *diskann_builder_token_file = nullptr;
#ifdef VS_FAILURE_POINTS
char	   *diskann_failure_point = nullptr;
#endif

static relopt_kind diskann_relopt_kind;

static relopt_enum_elt_def diskann_storage_values[] = {
	{"memory_optimized", DISKANN_STORAGE_MEMORY_OPTIMIZED},
	{"plain", DISKANN_STORAGE_PLAIN},
	{(const char *) nullptr, 0}
};

/* Registers reloptions and GUCs; runs once per backend that loads the module. */
void
_PG_init(void)
{
	diskann_relopt_kind = add_reloption_kind();
	add_enum_reloption(diskann_relopt_kind, "storage_layout",
					   "Storage layout: memory_optimized (SBQ codes in the graph) or plain (float vectors)",
					   diskann_storage_values, DISKANN_STORAGE_MEMORY_OPTIMIZED,
					   "Valid values are \"memory_optimized\" and \"plain\".", AccessExclusiveLock);
	add_int_reloption(diskann_relopt_kind, "num_neighbors",
					  "Maximum number of neighbors per node (R); -1 means the default, 50",
					  DISKANN_NUM_NEIGHBORS_DEFAULT, -1, (int) vs::vamana::kMaxNumNeighbors,
					  AccessExclusiveLock);
	add_int_reloption(diskann_relopt_kind, "search_list_size",
					  "Search list size (L) used while building",
					  (int) vs::vamana::kDefaultSearchListSize, 10, 1000, AccessExclusiveLock);
	add_real_reloption(diskann_relopt_kind, "max_alpha",
					   "Largest alpha of the RobustPrune schedule",
					   vs::vamana::kDefaultMaxAlpha, 1.0, 5.0, AccessExclusiveLock);
	add_int_reloption(diskann_relopt_kind, "num_dimensions",
					  "Number of leading dimensions to index (0 = all)",
					  DISKANN_NUM_DIMENSIONS_ALL, 0, DISKANN_VECTOR_MAX_DIM, AccessExclusiveLock);
	add_int_reloption(diskann_relopt_kind, "num_bits_per_dimension",
					  "SBQ bits per dimension (0 = 2 below 900 indexed dimensions, else 1)",
					  DISKANN_BITS_DEFAULT, 0, 8, AccessExclusiveLock);

	DefineCustomIntVariable("diskann.query_search_list_size",
							"Sets the size of the search list used by diskann scans.",
							"Higher values increase recall at the cost of speed.",
							&diskann_query_search_list_size,
							(int) vs::vamana::kDefaultQuerySearchListSize, 1, 10000,
							PGC_USERSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("diskann.query_rescore",
							"Sets the number of candidates rescored with exact distances (0 disables rescoring).",
							"Scans of memory_optimized indexes rank candidates by SBQ distance, then re-rank "
							"each batch of this many candidates by the exact distance of the heap row.",
							&diskann_query_rescore,
							(int) vs::vamana::kDefaultQueryRescore, 0, 1000,
							PGC_USERSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("diskann.build_threads",
							"Sets the number of threads of a local diskann build (0 = 1 + max_parallel_maintenance_workers).",
							nullptr, &diskann_build_threads, 0, 0, 1024,
							PGC_USERSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("diskann.parallel_flush_interval",
							"Accepted for pgvectorscale compatibility; diskann builds in memory and has no flush interval.",
							nullptr, &diskann_parallel_flush_interval, 4096, 1, 100000,
							PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("diskann.parallel_flush_rate",
							"Accepted for pgvectorscale compatibility (its later name of parallel_flush_interval); no effect.",
							nullptr, &diskann_parallel_flush_rate, 4096, 1, 100000,
							PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("diskann.parallel_initial_start_nodes_count",
							"Accepted for pgvectorscale compatibility; every build thread starts from the medoid.",
							nullptr, &diskann_parallel_initial_start_nodes_count, 1024, 1, 10000,
							PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("diskann.min_vectors_for_parallel_build",
							"Sets the minimum number of vectors for a multi-threaded diskann build.",
							"Smaller builds use one thread.",
							&diskann_min_vectors_for_parallel_build, 65536, 1, INT_MAX,
							PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("diskann.force_parallel_workers",
							"Forces the number of additional build threads (-1 = automatic).",
							"When set, a build uses 1 + this many threads whatever its size.",
							&diskann_force_parallel_workers, -1, -1, 1024,
							PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("diskann.builder_endpoint",
							   "Sets the gRPC target of the gpu_builder service CREATE INDEX sends its work to (empty: build locally).",
							   "host:port, or several builders (ipv4:host:port,host:port or dns:///name:port), used round robin while healthy. "
							   "Superuser only (or a role granted SET), so that no user can point a backend at an arbitrary host.",
							   &diskann_builder_endpoint, "", PGC_SUSET, 0, nullptr, nullptr, nullptr);
	DefineCustomBoolVariable("diskann.builder_fallback",
							 "Builds locally, with a NOTICE, when a build through the builder fails.",
							 "When off, such a build fails with the builder's error instead.",
							 &diskann_builder_fallback, true, PGC_USERSET, 0, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("diskann.builder_timeout",
							"Sets the deadline of a whole build through the builder.",
							nullptr, &diskann_builder_timeout, 3600, 1, INT_MAX / 1000,
							PGC_USERSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
	DefineCustomIntVariable("diskann.builder_connect_timeout",
							"Sets how long a build waits for a serving builder before it falls back.",
							nullptr, &diskann_builder_connect_timeout, 10, 1, 3600,
							PGC_USERSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("diskann.builder_tls_ca",
							   "Sets the PEM file of the CAs that sign the builder's certificate (empty: no TLS).",
							   nullptr, &diskann_builder_tls_ca, "", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
	DefineCustomStringVariable("diskann.builder_token_file",
							   "Sets the file holding the bearer token sent to the builder (empty: none).",
							   nullptr, &diskann_builder_token_file, "", PGC_SIGHUP, 0, nullptr, nullptr, nullptr);
#ifdef VS_FAILURE_POINTS
	DefineCustomStringVariable("diskann.failure_point",
							   "Arms one failure point (test builds only).",
							   nullptr, &diskann_failure_point, "",
							   PGC_SUSET, 0, nullptr, nullptr, nullptr);
#endif
	MarkGUCPrefixReserved("diskann");
}

/* Parses and validates reloptions. */
bytea *
diskannoptions(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"storage_layout", RELOPT_TYPE_ENUM, offsetof(DiskannOptions, storage_layout)},
		{"num_neighbors", RELOPT_TYPE_INT, offsetof(DiskannOptions, num_neighbors)},
		{"search_list_size", RELOPT_TYPE_INT, offsetof(DiskannOptions, search_list_size)},
		{"max_alpha", RELOPT_TYPE_REAL, offsetof(DiskannOptions, max_alpha)},
		{"num_dimensions", RELOPT_TYPE_INT, offsetof(DiskannOptions, num_dimensions)},
		{"num_bits_per_dimension", RELOPT_TYPE_INT, offsetof(DiskannOptions, num_bits_per_dimension)},
	};
	bytea	   *result;

	result = (bytea *) build_reloptions(reloptions, validate, diskann_relopt_kind,
										sizeof(DiskannOptions), tab, lengthof(tab));
	if (validate && result != nullptr)
	{
		DiskannOptions *opts = (DiskannOptions *) result;

		/* pgvectorscale accepts -1 (default) or 10..1000. */
		if (opts->num_neighbors != DISKANN_NUM_NEIGHBORS_DEFAULT &&
			opts->num_neighbors < (int) vs::vamana::kMinNumNeighbors)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("num_neighbors must be at least %u", vs::vamana::kMinNumNeighbors),
					 errdetail("num_neighbors is %d.", opts->num_neighbors),
					 errhint("Use -1 for the default of %u.", vs::vamana::kDefaultNumNeighbors)));
	}
	return result;
}

/*
 * Estimates the cost of a scan.
 *
 * Without an ORDER BY on the distance the index is useless (it has no search operators), so
 * that path costs "infinity". With one, the total cost is that of streaming every node
 * (genericcostestimate over all tuples), and the startup cost is the part spent before the
 * first row comes out: the converged search visits about L * R / 2 nodes (L expansions of R
 * neighbors, half of them new). The graph's upper pages are shared by every search and stay
 * cached, so those startup pages are charged at seq_page_cost rather than random_page_cost.
 */
static void
diskanncostestimate(PlannerInfo *root, IndexPath *path, double loop_count,
					Cost *indexStartupCost, Cost *indexTotalCost,
					Selectivity *indexSelectivity, double *indexCorrelation,
					double *indexPages)
{
	GenericCosts costs;
	double		tuples = Max(path->indexinfo->tuples, 1.0);
	double		num_neighbors = vs::vamana::kDefaultNumNeighbors;
	double		ratio;
	double		spc_seq_page_cost,
				spc_random_page_cost;
	Relation	index;

	if (path->indexorderbys == NIL)
	{
		*indexStartupCost = get_float8_infinity();
		*indexTotalCost = get_float8_infinity();
		*indexSelectivity = 0;
		*indexCorrelation = 0;
		*indexPages = 0;
		return;
	}

	MemSet(&costs, 0, sizeof(costs));
	genericcostestimate(root, path, loop_count, &costs);

	index = index_open(path->indexinfo->indexoid, NoLock);
	if (index->rd_options != nullptr &&
		((DiskannOptions *) index->rd_options)->num_neighbors != DISKANN_NUM_NEIGHBORS_DEFAULT)
		num_neighbors = ((DiskannOptions *) index->rd_options)->num_neighbors;
	index_close(index, NoLock);

	ratio = Min(1.0, (double) diskann_query_search_list_size * num_neighbors / 2.0 / tuples);
	get_tablespace_page_costs(path->indexinfo->reltablespace, &spc_random_page_cost, &spc_seq_page_cost);

	*indexStartupCost = costs.indexTotalCost * ratio -
		costs.numIndexPages * ratio * Max(spc_random_page_cost - spc_seq_page_cost, 0.0);
	*indexTotalCost = costs.indexTotalCost;
	*indexSelectivity = costs.indexSelectivity;
	*indexCorrelation = 0;
	*indexPages = costs.numIndexPages;
}

/* Names the build phases shown in pg_stat_progress_create_index. */
static char *
diskannbuildphasename(int64 phasenum)
{
	switch (phasenum)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return (char *) "initializing";
		case DISKANN_PHASE_LOAD:
			return (char *) "loading tuples";
		case DISKANN_PHASE_TRAIN:
			return (char *) "training quantizer";
		case DISKANN_PHASE_GRAPH:
			return (char *) "building graph";
		case DISKANN_PHASE_PRUNE:
			return (char *) "pruning graph";
		case DISKANN_PHASE_CONNECT:
			return (char *) "linking unreachable nodes";
		case DISKANN_PHASE_WRITE:
			return (char *) "writing index pages";
		default:
			return nullptr;
	}
}

extern "C" {
PG_FUNCTION_INFO_V1(diskann_amhandler);
}

/* The access method handler: what diskann can do and where its callbacks are. */
Datum
diskann_amhandler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *amroutine = makeNode(IndexAmRoutine);

	amroutine->amstrategies = 0;
	amroutine->amsupport = DISKANN_NUM_PROCS;
	amroutine->amoptsprocnum = 0;
	amroutine->amcanorder = false;
	amroutine->amcanorderbyop = true;
	amroutine->amcanbackward = false;
	amroutine->amcanunique = false;
	amroutine->amcanmulticol = true;	/* (vector, smallint[] labels) */
	amroutine->amoptionalkey = true;
	amroutine->amsearcharray = false;
	amroutine->amsearchnulls = false;
	amroutine->amstorage = false;
	amroutine->amclusterable = false;
	amroutine->ampredlocks = false;
	amroutine->amcanparallel = false;
	amroutine->amcaninclude = false;
	amroutine->amusemaintenanceworkmem = false;
	amroutine->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
	amroutine->amkeytype = InvalidOid;

	amroutine->ambuild = diskannbuild;
	amroutine->ambuildempty = diskannbuildempty;
	amroutine->aminsert = diskanninsert;
	amroutine->ambulkdelete = diskannbulkdelete;
	amroutine->amvacuumcleanup = diskannvacuumcleanup;
	amroutine->amcanreturn = nullptr;
	amroutine->amcostestimate = diskanncostestimate;
	amroutine->amoptions = diskannoptions;
	amroutine->amproperty = nullptr;
	amroutine->ambuildphasename = diskannbuildphasename;
	amroutine->amvalidate = diskannvalidate;
	amroutine->amadjustmembers = nullptr;
	amroutine->ambeginscan = diskannbeginscan;
	amroutine->amrescan = diskannrescan;
	amroutine->amgettuple = diskanngettuple;
	amroutine->amgetbitmap = nullptr;
	amroutine->amendscan = diskannendscan;
	amroutine->ammarkpos = nullptr;
	amroutine->amrestrpos = nullptr;
	amroutine->amestimateparallelscan = nullptr;
	amroutine->aminitparallelscan = nullptr;
	amroutine->amparallelrescan = nullptr;

	PG_RETURN_POINTER(amroutine);
}
