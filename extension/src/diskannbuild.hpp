/*
 * diskannbuild.hpp
 *		Build helpers shared by the local build and the builder client (C++ zone; include after
 *		diskann.hpp).
 */
#pragma once

#include <cstdint>
#include <span>

/* Sets the progress phase and tuple counters of pg_stat_progress_create_index. */
void		DiskannReportPhase(int phase, double done, double total);

/* Appends one page image as block `block` of the index's fork, without WAL. */
void		DiskannWriteNewPage(Relation index, ForkNumber fork, std::uint32_t block, std::span<const std::byte> image);

/*
 * Builds the index through gpu_builder; true when done, false after a NOTICE when the caller
 * must build locally (diskannbuilder_client.cpp).
 */
bool		DiskannBuildRemote(Relation heap, Relation index, IndexInfo *indexInfo,
							   const DiskannBuildOptions *opts, std::uint64_t seed, IndexBuildResult *result);

/* The row's vector, detoasted, checked against the column's dimensions (PG zone). */
DiskannVector *DiskannBuildRowVector(Datum value, const DiskannBuildOptions *opts);
