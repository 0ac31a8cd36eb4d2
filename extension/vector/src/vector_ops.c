/*-------------------------------------------------------------------------
 *
 * vector_ops.c
 *	  Distances, element-wise arithmetic, comparison and aggregates of the
 *	  "vector" type.
 *
 * Sums are accumulated in double: the result types of the distance
 * functions are double precision, and a float accumulator loses digits on
 * long vectors.  Inputs never hold NaN or infinity (vector.c rejects them),
 * but a product or sum of finite floats can still overflow; distances then
 * return infinity like float8 arithmetic would, while the arithmetic
 * operators, whose result must be a valid vector, raise an error.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/float.h"

#include "vector.h"

/* Squared Euclidean distance */
static double
VectorL2Squared(const Vector *a, const Vector *b)
{
	double		sum = 0.0;
	int			i;

	for (i = 0; i < a->dim; i++)
	{
		double		diff = (double) a->x[i] - (double) b->x[i];

		sum += diff * diff;
	}
	return sum;
}

/* Dot product */
static double
VectorDot(const Vector *a, const Vector *b)
{
	double		sum = 0.0;
	int			i;

	for (i = 0; i < a->dim; i++)
		sum += (double) a->x[i] * (double) b->x[i];
	return sum;
}

/* Euclidean distance, the <-> operator */
PG_FUNCTION_INFO_V1(l2_distance);
Datum
l2_distance(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);

	VsVectorCheckSameDim(a, b);
	PG_RETURN_FLOAT8(sqrt(VectorL2Squared(a, b)));
}

/* Squared Euclidean distance, cheaper when only the order matters */
PG_FUNCTION_INFO_V1(vector_l2_squared_distance);
Datum
vector_l2_squared_distance(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);

	VsVectorCheckSameDim(a, b);
	PG_RETURN_FLOAT8(VectorL2Squared(a, b));
}

/* Inner (dot) product */
PG_FUNCTION_INFO_V1(inner_product);
Datum
inner_product(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);

	VsVectorCheckSameDim(a, b);
	PG_RETURN_FLOAT8(VectorDot(a, b));
}

/* Negated inner product, the <#> operator: smaller means more similar */
PG_FUNCTION_INFO_V1(vector_negative_inner_product);
Datum
vector_negative_inner_product(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);

	VsVectorCheckSameDim(a, b);
	PG_RETURN_FLOAT8(-VectorDot(a, b));
}

/*
 * Cosine similarity clamped to [-1, 1], or NaN when either vector is zero
 * (the angle is undefined).  Rounding can push |similarity| slightly above
 * one for parallel vectors; the clamp keeps 1 - similarity in [0, 2].
 */
static double
VectorCosineSimilarity(const Vector *a, const Vector *b)
{
	double		dot = 0.0;
	double		norm_a = 0.0;
	double		norm_b = 0.0;
	double		similarity;
	int			i;

	for (i = 0; i < a->dim; i++)
	{
		double		x = a->x[i];
		double		y = b->x[i];

		dot += x * y;
		norm_a += x * x;
		norm_b += y * y;
	}

	if (norm_a == 0.0 || norm_b == 0.0)
		return get_float8_nan();

	/*
	 * One square root of the product is exact whenever the product is a
	 * perfect square (parallel vectors with integral norms), and cannot
	 * overflow: each norm is below 16000 * FLT_MAX^2.
	 */
	similarity = dot / sqrt(norm_a * norm_b);
	if (similarity > 1.0)
		similarity = 1.0;
	else if (similarity < -1.0)
		similarity = -1.0;
	return similarity;
}

/* Cosine distance, the <=> operator: 1 - cosine similarity, in [0, 2] */
PG_FUNCTION_INFO_V1(cosine_distance);
Datum
cosine_distance(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);

	VsVectorCheckSameDim(a, b);
	PG_RETURN_FLOAT8(1.0 - VectorCosineSimilarity(a, b));
}

/*
 * Angle between two unit vectors divided by pi, in [0, 1].  As in pgvector
 * the inputs are taken to be normalized: the dot product is used as the
 * cosine, clamped to [-1, 1] so that acos() is defined.
 */
PG_FUNCTION_INFO_V1(vector_spherical_distance);
Datum
vector_spherical_distance(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	double		dot;

	VsVectorCheckSameDim(a, b);
	dot = VectorDot(a, b);
	if (dot > 1.0)
		dot = 1.0;
	else if (dot < -1.0)
		dot = -1.0;
	PG_RETURN_FLOAT8(acos(dot) / M_PI);
}

/* Manhattan (taxicab) distance, the <+> operator */
PG_FUNCTION_INFO_V1(l1_distance);
Datum
l1_distance(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	double		sum = 0.0;
	int			i;

	VsVectorCheckSameDim(a, b);
	for (i = 0; i < a->dim; i++)
		sum += fabs((double) a->x[i] - (double) b->x[i]);
	PG_RETURN_FLOAT8(sum);
}

/* Element-wise operations of the arithmetic operators */
typedef enum VectorArithOp
{
	VECTOR_ADD,
	VECTOR_SUB,
	VECTOR_MUL
} VectorArithOp;

/*
 * Apply op element-wise.  A result that leaves the float4 range is an
 * error, as for float4 arithmetic: a vector may not hold infinity, and a
 * product that rounds to zero from non-zero factors has lost everything.
 */
static Vector *
VectorArith(const Vector *a, const Vector *b, VectorArithOp op)
{
	Vector	   *result;
	int			i;

	VsVectorCheckSameDim(a, b);
	result = VsVectorAllocate(a->dim);
	for (i = 0; i < a->dim; i++)
	{
		float4		x = a->x[i];
		float4		y = b->x[i];
		float4		r;

		switch (op)
		{
			case VECTOR_ADD:
				r = x + y;
				break;
			case VECTOR_SUB:
				r = x - y;
				break;
			case VECTOR_MUL:
				r = x * y;
				if (r == 0.0f && x != 0.0f && y != 0.0f)
					float_underflow_error();
				break;
			default:
				elog(ERROR, "unrecognized vector operation %d", (int) op);
				pg_unreachable();
		}
		if (isinf(r))
			float_overflow_error();
		result->x[i] = r;
	}
	return result;
}

/* v1 + v2 */
PG_FUNCTION_INFO_V1(vector_add);
Datum
vector_add(PG_FUNCTION_ARGS)
{
	PG_RETURN_VECTOR_P(VectorArith(PG_GETARG_VECTOR_P(0),
								   PG_GETARG_VECTOR_P(1), VECTOR_ADD));
}

/* v1 - v2 */
PG_FUNCTION_INFO_V1(vector_sub);
Datum
vector_sub(PG_FUNCTION_ARGS)
{
	PG_RETURN_VECTOR_P(VectorArith(PG_GETARG_VECTOR_P(0),
								   PG_GETARG_VECTOR_P(1), VECTOR_SUB));
}

/* v1 * v2, element-wise */
PG_FUNCTION_INFO_V1(vector_mul);
Datum
vector_mul(PG_FUNCTION_ARGS)
{
	PG_RETURN_VECTOR_P(VectorArith(PG_GETARG_VECTOR_P(0),
								   PG_GETARG_VECTOR_P(1), VECTOR_MUL));
}

/*
 * Total order for btree: element by element over the common prefix, then
 * the shorter vector first.  Elements are never NaN, so float comparison
 * is a total order here.
 */
static int
VectorCompare(const Vector *a, const Vector *b)
{
	int			common = Min(a->dim, b->dim);
	int			i;

	for (i = 0; i < common; i++)
	{
		if (a->x[i] < b->x[i])
			return -1;
		if (a->x[i] > b->x[i])
			return 1;
	}
	if (a->dim != b->dim)
		return a->dim < b->dim ? -1 : 1;
	return 0;
}

/* Compare the two arguments of the current call */
static int
VectorCompareArgs(FunctionCallInfo fcinfo)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	int			cmp = VectorCompare(a, b);

	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	return cmp;
}

/* btree support function 1 */
PG_FUNCTION_INFO_V1(vector_cmp);
Datum
vector_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(VectorCompareArgs(fcinfo));
}

PG_FUNCTION_INFO_V1(vector_lt);
Datum
vector_lt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(VectorCompareArgs(fcinfo) < 0);
}

PG_FUNCTION_INFO_V1(vector_le);
Datum
vector_le(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(VectorCompareArgs(fcinfo) <= 0);
}

PG_FUNCTION_INFO_V1(vector_eq);
Datum
vector_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(VectorCompareArgs(fcinfo) == 0);
}

PG_FUNCTION_INFO_V1(vector_ne);
Datum
vector_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(VectorCompareArgs(fcinfo) != 0);
}

PG_FUNCTION_INFO_V1(vector_ge);
Datum
vector_ge(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(VectorCompareArgs(fcinfo) >= 0);
}

PG_FUNCTION_INFO_V1(vector_gt);
Datum
vector_gt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(VectorCompareArgs(fcinfo) > 0);
}

/*
 * avg(vector) keeps its state in a double precision[] of 1 + dim slots:
 * the row count, then the running sum of each dimension.  The initial
 * state is '{0}' (no rows, dimensions not known yet).
 */

/* Check an avg state array and return its slots */
static float8 *
VectorAvgState(ArrayType *state, int *nslots)
{
	if (ARR_NDIM(state) != 1 || ARR_DIMS(state)[0] < 1 ||
		ARR_HASNULL(state) || ARR_ELEMTYPE(state) != FLOAT8OID)
		elog(ERROR, "vector aggregate state must be a 1-D double precision array without nulls");
	*nslots = ARR_DIMS(state)[0];
	return (float8 *) ARR_DATA_PTR(state);
}

/* Build an avg state array from its slots */
static ArrayType *
VectorAvgStateBuild(const float8 *slots, int nslots)
{
	Datum	   *elems = (Datum *) palloc(sizeof(Datum) * nslots);
	int			i;

	for (i = 0; i < nslots; i++)
		elems[i] = Float8GetDatum(slots[i]);
	return construct_array(elems, nslots, FLOAT8OID, sizeof(float8),
						   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* avg transition: add one vector to the state */
PG_FUNCTION_INFO_V1(vector_accum);
Datum
vector_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *state = PG_GETARG_ARRAYTYPE_P(0);
	Vector	   *vec = PG_GETARG_VECTOR_P(1);
	int			nslots;
	float8	   *slots = VectorAvgState(state, &nslots);
	float8	   *next;
	int			i;

	/* pgvector reports a mismatch in an aggregate as a typmod mismatch */
	if (slots[0] > 0)
		VsVectorCheckExpectedDim(nslots - 1, vec->dim);

	/* A new array: the input state may not be written in place */
	next = (float8 *) palloc0(sizeof(float8) * (vec->dim + 1));
	if (slots[0] > 0)
		memcpy(next, slots, sizeof(float8) * nslots);
	next[0] += 1.0;
	for (i = 0; i < vec->dim; i++)
		next[i + 1] += (double) vec->x[i];

	PG_RETURN_ARRAYTYPE_P(VectorAvgStateBuild(next, vec->dim + 1));
}

/* avg combine: merge two partial states of parallel workers */
PG_FUNCTION_INFO_V1(vector_combine);
Datum
vector_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *state_a = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *state_b = PG_GETARG_ARRAYTYPE_P(1);
	int			na;
	int			nb;
	float8	   *a = VectorAvgState(state_a, &na);
	float8	   *b = VectorAvgState(state_b, &nb);
	float8	   *next;
	int			i;

	if (b[0] == 0)
		PG_RETURN_ARRAYTYPE_P(VectorAvgStateBuild(a, na));
	if (a[0] == 0)
		PG_RETURN_ARRAYTYPE_P(VectorAvgStateBuild(b, nb));
	if (na != nb)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different vector dimensions %d and %d",
						na - 1, nb - 1)));

	next = (float8 *) palloc(sizeof(float8) * na);
	for (i = 0; i < na; i++)
		next[i] = a[i] + b[i];
	PG_RETURN_ARRAYTYPE_P(VectorAvgStateBuild(next, na));
}

/* avg final: the mean vector, or NULL without rows */
PG_FUNCTION_INFO_V1(vector_avg);
Datum
vector_avg(PG_FUNCTION_ARGS)
{
	ArrayType  *state = PG_GETARG_ARRAYTYPE_P(0);
	int			nslots;
	float8	   *slots = VectorAvgState(state, &nslots);
	Vector	   *result;
	int			i;

	if (slots[0] == 0)
		PG_RETURN_NULL();

	result = VsVectorAllocate(nslots - 1);
	for (i = 0; i < result->dim; i++)
	{
		result->x[i] = (float4) (slots[i + 1] / slots[0]);
		if (isinf(result->x[i]))
			float_overflow_error();
	}
	PG_RETURN_VECTOR_P(result);
}
