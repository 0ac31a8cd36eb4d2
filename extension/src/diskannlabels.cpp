/*
 * diskannlabels.cpp
 *		The label operator of Filtered DiskANN: &&(smallint[], smallint[]) with its selectivity.
 *
 * Overlap of two label sets: true when some non-NULL element of one equals some non-NULL
 * element of the other (NULL elements are ignored, an empty array overlaps nothing, a NULL
 * array gives NULL: the operator is strict). Short arrays are compared pairwise; longer ones
 * through a 65536-bit set of the smaller array, so the cost stays linear. The selectivity
 * is that of the built-in anyarray && (element statistics of the column), which has the same
 * meaning for smallint[].
 */
#include <algorithm>

#include "diskann.hpp"

extern "C" {
#include "catalog/pg_operator_d.h"
#include "catalog/pg_type_d.h"
#include "utils/array.h"
#include "utils/fmgrprotos.h"
}

extern "C" {
PG_FUNCTION_INFO_V1(diskann_label_overlap);
PG_FUNCTION_INFO_V1(diskann_label_overlap_sel);
PG_FUNCTION_INFO_V1(diskann_label_overlap_joinsel);
PGDLLEXPORT Datum diskann_label_overlap(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum diskann_label_overlap_sel(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum diskann_label_overlap_joinsel(PG_FUNCTION_ARGS);
}

/* Non-NULL elements of an int2 array (palloc'd); *n gets their number. */
static int16 *
label_values(ArrayType *a, int *n);

/* Labels of a smallint[] datum: its non-NULL elements (palloc'd, unsorted). */
int16 *
DiskannLabelValues(Datum value, int *n)
{
	return label_values(DatumGetArrayTypeP(value), n);
}

static int16 *
label_values(ArrayType *a, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	int			count;
	int16	   *out;
	int			k = 0;

	if (ARR_ELEMTYPE(a) != INT2OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("label arrays must be smallint[]")));
	deconstruct_array(a, INT2OID, sizeof(int16), true, TYPALIGN_SHORT, &elems, &nulls, &count);
	out = (int16 *) palloc(sizeof(int16) * Max(count, 1));
	for (int i = 0; i < count; i++)
		if (!nulls[i])
			out[k++] = DatumGetInt16(elems[i]);
	*n = k;
	return out;
}

/* True when the two label sets share a value. */
static bool
labels_overlap(const int16 *a, int na, const int16 *b, int nb)
{
	uint64	   *bits;
	bool		found = false;

	if (na == 0 || nb == 0)
		return false;
	if ((int64) na * nb <= 256)
	{
		for (int i = 0; i < na; i++)
			for (int j = 0; j < nb; j++)
				if (a[i] == b[j])
					return true;
		return false;
	}
	if (na > nb)
	{
		std::swap(a, b);
		std::swap(na, nb);
	}
	bits = (uint64 *) palloc0(65536 / 8);
	for (int i = 0; i < na; i++)
	{
		const uint16 v = (uint16) a[i];

		bits[v >> 6] |= UINT64CONST(1) << (v & 63);
	}
	for (int j = 0; j < nb && !found; j++)
	{
		const uint16 v = (uint16) b[j];

		found = (bits[v >> 6] >> (v & 63)) & 1;
	}
	pfree(bits);
	return found;
}

/* smallint[] && smallint[] */
Datum
diskann_label_overlap(PG_FUNCTION_ARGS)
{
	ArrayType  *a = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *b = PG_GETARG_ARRAYTYPE_P(1);
	int			na,
				nb;
	int16	   *va = label_values(a, &na);
	int16	   *vb = label_values(b, &nb);

	PG_RETURN_BOOL(labels_overlap(va, na, vb, nb));
}

/* Restriction selectivity: the built-in anyarray && estimate (element statistics). */
Datum
diskann_label_overlap_sel(PG_FUNCTION_ARGS)
{
	return DirectFunctionCall4(arraycontsel, PG_GETARG_DATUM(0), ObjectIdGetDatum(OID_ARRAY_OVERLAP_OP),
							   PG_GETARG_DATUM(2), PG_GETARG_DATUM(3));
}

/* Join selectivity: the built-in anyarray && estimate. */
Datum
diskann_label_overlap_joinsel(PG_FUNCTION_ARGS)
{
	return DirectFunctionCall5(arraycontjoinsel, PG_GETARG_DATUM(0), ObjectIdGetDatum(OID_ARRAY_OVERLAP_OP),
							   PG_GETARG_DATUM(2), PG_GETARG_DATUM(3), PG_GETARG_DATUM(4));
}
