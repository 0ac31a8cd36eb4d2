/*-------------------------------------------------------------------------
 *
 * vector.h
 *	  The bundled pgvector-compatible "vector" type of vectorscale.
 *
 * The on-disk and in-memory layout is the interface: it is the layout that
 * pgvector uses, so that indexes and tools written against pgvector read our
 * values unchanged and data moves between the two with pg_dump.
 *
 *-------------------------------------------------------------------------
 */
#ifndef VS_VECTOR_H
#define VS_VECTOR_H

#include "fmgr.h"

/* Largest number of dimensions a vector may have (pgvector's limit) */
#define VECTOR_MAX_DIM 16000

/*
 * A vector value.  "unused" is always zero; it keeps the elements 4-byte
 * aligned and is reserved, as in pgvector.
 */
typedef struct Vector
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int16		dim;			/* number of dimensions */
	int16		unused;			/* reserved, always zero */
	float4		x[FLEXIBLE_ARRAY_MEMBER];
} Vector;

#define VECTOR_SIZE(_dim)		(offsetof(Vector, x) + sizeof(float4) * (_dim))
#define DatumGetVector(d)		((Vector *) PG_DETOAST_DATUM(d))
#define PG_GETARG_VECTOR_P(n)	DatumGetVector(PG_GETARG_DATUM(n))
#define PG_RETURN_VECTOR_P(v)	PG_RETURN_POINTER(v)

/*
 * Helpers shared by the source files.  The Vs prefix keeps them apart from
 * same-named symbols of other modules: the server loads modules with
 * RTLD_GLOBAL, so a common name could bind to another module's function.
 */
extern Vector *VsVectorAllocate(int dim);
extern void VsVectorCheckDim(int dim);
extern void VsVectorCheckExpectedDim(int32 typmod, int dim);
extern void VsVectorCheckElement(float4 value);
extern void VsVectorCheckSameDim(const Vector *a, const Vector *b);

#endif							/* VS_VECTOR_H */
