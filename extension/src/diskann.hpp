/*
 * diskann.hpp
 *		The diskann access method: PostgreSQL-side contract (limits, options, GUCs, the
 *		on-disk vector layout we read) and the prototypes of the AM callbacks.
 *
 * Engine headers (vectorscale/...) must be included before this file: they refuse to
 * compile once postgres.h has been seen (common/ stays free of PostgreSQL).
 */
#pragma once

extern "C" {
#include "postgres.h"

#include "access/amapi.h"
#include "access/genam.h"
#include "access/reloptions.h"
#include "access/relscan.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/pathnodes.h"
#include "storage/bufmgr.h"
#include "utils/elog.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

/* Version of this module, shown by diskann_index_info and in build logs. */
#define DISKANN_MODULE_VERSION "0.1.0"

/* Support function 1 of every vector opclass: returns the metric code (smallint). */
#define DISKANN_METRIC_PROC 1
/* Strategy of the label operator && in vector_smallint_label_ops. */
#define DISKANN_LABEL_OVERLAP_STRATEGY 1
/* Label slots per node record of a labeled index (more if a row at build time has more). */
#define DISKANN_DEFAULT_LABEL_CAPACITY 8
#define DISKANN_NUM_PROCS 1

/*
 * Block number of the heavyweight page lock that separates VACUUM's repair phase (exclusive)
 * from inserts (share); see extension/README.locking.
 */
#define DISKANN_UPDATE_LOCK 0

/* storage_layout reloption values (enum reloption). */
typedef enum DiskannStorageOption
{
	DISKANN_STORAGE_MEMORY_OPTIMIZED = 1,
	DISKANN_STORAGE_PLAIN = 2
} DiskannStorageOption;

/* Sentinels meaning "derive the default", as pgvectorscale accepts them. */
#define DISKANN_NUM_NEIGHBORS_DEFAULT (-1)
#define DISKANN_NUM_DIMENSIONS_ALL 0
#define DISKANN_BITS_DEFAULT 0

/* Parsed reloptions (rd_options). Only read at build time; the meta page freezes them. */
typedef struct DiskannOptions
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int			storage_layout; /* DiskannStorageOption */
	int			num_neighbors;	/* R, or DISKANN_NUM_NEIGHBORS_DEFAULT */
	int			search_list_size;	/* build L */
	double		max_alpha;
	int			num_dimensions; /* 0 = all */
	int			num_bits_per_dimension; /* 0 = default rule */
} DiskannOptions;

/* pgvector's vector: {varlena header, int16 dim, int16 unused, float4[dim]} (DESIGN.md 9). */
typedef struct DiskannVector
{
	int32		vl_len_;
	int16		dim;
	int16		unused;
	float		x[FLEXIBLE_ARRAY_MEMBER];
} DiskannVector;

#define DISKANN_VECTOR_MAX_DIM 16000
#define DatumGetDiskannVector(d) ((DiskannVector *) PG_DETOAST_DATUM(d))

/* Build phases of pg_stat_progress_create_index (after PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE). */
#define DISKANN_PHASE_LOAD 2
#define DISKANN_PHASE_TRAIN 3
#define DISKANN_PHASE_GRAPH 4
#define DISKANN_PHASE_PRUNE 5
#define DISKANN_PHASE_CONNECT 6
#define DISKANN_PHASE_WRITE 7

/* GUCs */
extern int	diskann_query_search_list_size;
extern int	diskann_query_rescore;
extern int	diskann_build_threads;
extern int	diskann_parallel_flush_interval;
extern int	diskann_parallel_flush_rate;
extern int	diskann_parallel_initial_start_nodes_count;
extern int	diskann_min_vectors_for_parallel_build;
extern int	diskann_force_parallel_workers;
extern char *diskann_builder_endpoint;
extern bool diskann_builder_fallback;
extern int	diskann_builder_timeout;
extern int	diskann_builder_connect_timeout;
extern char *diskann_builder_tls_ca;
extern char *diskann_builder_token_file;
#ifdef VS_FAILURE_POINTS
extern char *diskann_failure_point;
#endif

/* Index options with defaults resolved against the column (diskannutils.cpp). */
typedef struct DiskannBuildOptions
{
	int			metric;			/* vs::distance::Metric */
	int			storage;		/* vs::format::StorageLayout */
	int			column_dims;
	int			indexed_dims;
	int			bits_per_dim;	/* 0 for plain */
	int			num_neighbors;
	int			search_list_size;
	float		max_alpha;
	bool		labeled;		/* a second column of labels (smallint[]) */
} DiskannBuildOptions;

/* diskann.cpp */
extern "C" PGDLLEXPORT Datum diskann_amhandler(PG_FUNCTION_ARGS);
extern "C" PGDLLEXPORT void _PG_init(void);
bytea	   *diskannoptions(Datum reloptions, bool validate);

/* diskannutils.cpp */
int			DiskannGetMetric(Relation index);
int			DiskannColumnDims(Relation index);
void		DiskannResolveOptions(Relation index, DiskannBuildOptions *out);
int			DiskannBuildThreads(double n);

/* diskannlabels.cpp */
int16	   *DiskannLabelValues(Datum value, int *n);

/* diskannbuild.cpp */
IndexBuildResult *diskannbuild(Relation heap, Relation index, IndexInfo *indexInfo);
void		diskannbuildempty(Relation index);

/* diskanninsert.cpp */
bool		diskanninsert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
						  Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
						  IndexInfo *indexInfo);

/* diskannscan.cpp */
IndexScanDesc diskannbeginscan(Relation index, int nkeys, int norderbys);
void		diskannrescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys);
bool		diskanngettuple(IndexScanDesc scan, ScanDirection dir);
void		diskannendscan(IndexScanDesc scan);

/* diskannvacuum.cpp */
IndexBulkDeleteResult *diskannbulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
										 IndexBulkDeleteCallback callback, void *callback_state);
IndexBulkDeleteResult *diskannvacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats);

/* diskannvalidate.cpp */
bool		diskannvalidate(Oid opclassoid);
