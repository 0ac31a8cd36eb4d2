/*-------------------------------------------------------------------------
 *
 * vector.c
 *	  The "vector" type: text and binary I/O, type modifier, casts and the
 *	  functions that look at or reshape one vector.
 *
 * Every vector that leaves this module has between 1 and VECTOR_MAX_DIM
 * finite elements; the input functions, casts and arithmetic all enforce
 * that, so the distance functions never see NaN or infinity in their input.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"

#include "vector.h"

PG_MODULE_MAGIC;

/* Allocate a zeroed vector of the given dimensions */
Vector *
VsVectorAllocate(int dim)
{
	Size		size = VECTOR_SIZE(dim);
	Vector	   *result = (Vector *) palloc0(size);

	SET_VARSIZE(result, size);
	result->dim = dim;
	return result;
}

/* Reject a dimension count outside 1..VECTOR_MAX_DIM */
void
VsVectorCheckDim(int dim)
{
	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector must have at least 1 dimension")));
	if (dim > VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vector cannot have more than %d dimensions",
						VECTOR_MAX_DIM)));
}

/* Reject a vector whose dimensions differ from the column's vector(n) */
void
VsVectorCheckExpectedDim(int32 typmod, int dim)
{
	if (typmod != -1 && typmod != dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", typmod, dim)));
}

/* Reject NaN and infinite elements */
void
VsVectorCheckElement(float4 value)
{
	if (isnan(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("NaN not allowed in vector")));
	if (isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("infinite value not allowed in vector")));
}

/* Reject a pair of operands of different dimensions */
void
VsVectorCheckSameDim(const Vector *a, const Vector *b)
{
	if (a->dim != b->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different vector dimensions %d and %d",
						a->dim, b->dim)));
}

/* Whitespace allowed around brackets, elements and commas */
static inline bool
VectorIsSpace(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
		c == '\v' || c == '\f';
}

/* Skip whitespace */
static inline const char *
VectorSkipSpace(const char *p)
{
	while (VectorIsSpace(*p))
		p++;
	return p;
}

/* Report malformed text input, with an optional detail line */
static void
VectorSyntaxError(const char *input, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type vector: \"%s\"", input),
			 detail ? errdetail_internal("%s", detail) : 0));
}

/*
 * Parse the text form "[x1,x2,...]".  Whitespace may surround every token;
 * elements are anything strtof() accepts, but must be finite.
 */
PG_FUNCTION_INFO_V1(vector_in);
Datum
vector_in(PG_FUNCTION_ARGS)
{
	char	   *input = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	const char *p = VectorSkipSpace(input);
	float4	   *elems;
	int			dim = 0;
	Vector	   *result;

	if (*p != '[')
		VectorSyntaxError(input, "A vector must start with \"[\".");
	p = VectorSkipSpace(p + 1);
	if (*p == ']')
		VsVectorCheckDim(0);

	/* One slot per possible dimension; the limit is checked before use */
	elems = (float4 *) palloc(sizeof(float4) * VECTOR_MAX_DIM);
	for (;;)
	{
		char	   *end;
		float4		value;

		if (dim == VECTOR_MAX_DIM)
			VsVectorCheckDim(dim + 1);

		p = VectorSkipSpace(p);
		if (*p == '\0')
			VectorSyntaxError(input, "The input ends before \"]\".");

		errno = 0;
		value = strtof(p, &end);
		if (end == p)
			VectorSyntaxError(input, NULL);
		if (errno == ERANGE && isinf(value))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("\"%s\" is out of range for type vector",
							pnstrdup(p, end - p))));
		VsVectorCheckElement(value);
		elems[dim++] = value;

		p = VectorSkipSpace(end);
		if (*p == ',')
		{
			p++;
			continue;
		}
		if (*p == ']')
		{
			p++;
			break;
		}
		VectorSyntaxError(input, NULL);
	}

	p = VectorSkipSpace(p);
	if (*p != '\0')
		VectorSyntaxError(input, "Only whitespace may follow \"]\".");

	VsVectorCheckExpectedDim(typmod, dim);

	result = VsVectorAllocate(dim);
	memcpy(result->x, elems, sizeof(float4) * dim);
	pfree(elems);
	PG_RETURN_VECTOR_P(result);
}

/*
 * Print "[x1,x2,...]" with the shortest decimal text that reads back as the
 * same float4, as float4out does with the default extra_float_digits.
 */
PG_FUNCTION_INFO_V1(vector_out);
Datum
vector_out(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	char	   *buf;
	char	   *p;
	int			i;

	/* Each element needs at most FLOAT_SHORTEST_DECIMAL_LEN - 1 + a comma */
	buf = (char *) palloc((Size) vec->dim * FLOAT_SHORTEST_DECIMAL_LEN + 3);
	p = buf;
	*p++ = '[';
	for (i = 0; i < vec->dim; i++)
	{
		if (i > 0)
			*p++ = ',';
		p += float_to_shortest_decimal_bufn(vec->x[i], p);
	}
	*p++ = ']';
	*p = '\0';

	PG_FREE_IF_COPY(vec, 0);
	PG_RETURN_CSTRING(buf);
}

/* Parse the modifier of vector(n) */
PG_FUNCTION_INFO_V1(vector_typmod_in);
Datum
vector_typmod_in(PG_FUNCTION_ARGS)
{
	ArrayType  *mods = PG_GETARG_ARRAYTYPE_P(0);
	int32	   *values;
	int			n;

	values = ArrayGetIntegerTypmods(mods, &n);
	if (n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid type modifier")));
	if (values[0] < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type vector must be at least 1")));
	if (values[0] > VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type vector cannot exceed %d",
						VECTOR_MAX_DIM)));

	PG_RETURN_INT32(values[0]);
}

/* Print the modifier of vector(n) as "(n)" */
PG_FUNCTION_INFO_V1(vector_typmod_out);
Datum
vector_typmod_out(PG_FUNCTION_ARGS)
{
	int32		typmod = PG_GETARG_INT32(0);

	if (typmod < 0)
		PG_RETURN_CSTRING(pstrdup(""));
	PG_RETURN_CSTRING(psprintf("(%d)", typmod));
}

/*
 * Binary input: int16 dim, int16 unused (must be 0), then dim float4, all
 * in network byte order.
 */
PG_FUNCTION_INFO_V1(vector_recv);
Datum
vector_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		typmod = PG_GETARG_INT32(2);
	int			dim;
	int			unused;
	Vector	   *result;
	int			i;

	/* Both fields read as unsigned, as pgvector does (0xffff is 65535 dimensions). */
	dim = (int) pq_getmsgint(buf, sizeof(int16));
	unused = (int) pq_getmsgint(buf, sizeof(int16));

	VsVectorCheckDim(dim);
	VsVectorCheckExpectedDim(typmod, dim);
	if (unused != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected unused to be 0, not %d", unused)));

	result = VsVectorAllocate(dim);
	for (i = 0; i < dim; i++)
	{
		result->x[i] = pq_getmsgfloat4(buf);
		VsVectorCheckElement(result->x[i]);
	}

	PG_RETURN_VECTOR_P(result);
}

/* Binary output, the mirror of vector_recv */
PG_FUNCTION_INFO_V1(vector_send);
Datum
vector_send(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	StringInfoData buf;
	int			i;

	pq_begintypsend(&buf);
	pq_sendint16(&buf, vec->dim);
	pq_sendint16(&buf, vec->unused);
	for (i = 0; i < vec->dim; i++)
		pq_sendfloat4(&buf, vec->x[i]);

	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Cast vector to vector(n): check the dimensions, keep the value */
PG_FUNCTION_INFO_V1(vector_coerce_typmod);
Datum
vector_coerce_typmod(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	int32		typmod = PG_GETARG_INT32(1);

	VsVectorCheckExpectedDim(typmod, vec->dim);
	PG_RETURN_VECTOR_P(vec);
}

/* Convert one array element to float4 */
static float4
ArrayElementToFloat4(Datum elem, Oid elemtype)
{
	switch (elemtype)
	{
		case INT4OID:
			return (float4) DatumGetInt32(elem);
		case FLOAT4OID:
			return DatumGetFloat4(elem);
		case FLOAT8OID:
			/* Too large for float4 becomes infinity, which the caller rejects */
			return (float4) DatumGetFloat8(elem);
		case NUMERICOID:
			return DatumGetFloat4(DirectFunctionCall1(numeric_float4, elem));
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cannot cast an array of type %s to vector",
							format_type_be(elemtype))));
	}
	pg_unreachable();
}

/*
 * Cast integer[], real[], double precision[] or numeric[] to vector(n).  The
 * array must be one-dimensional without NULLs.
 */
PG_FUNCTION_INFO_V1(array_to_vector);
Datum
array_to_vector(PG_FUNCTION_ARGS)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	int32		typmod = PG_GETARG_INT32(1);
	Oid			elemtype = ARR_ELEMTYPE(array);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	Vector	   *result;
	int			i;

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("array must be 1-D")));
	if (array_contains_nulls(array))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("array must not contain nulls")));

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign,
					  &elems, &nulls, &n);

	VsVectorCheckDim(n);
	VsVectorCheckExpectedDim(typmod, n);

	result = VsVectorAllocate(n);
	for (i = 0; i < n; i++)
	{
		result->x[i] = ArrayElementToFloat4(elems[i], elemtype);
		VsVectorCheckElement(result->x[i]);
	}

	PG_RETURN_VECTOR_P(result);
}

/* Cast vector to real[] */
PG_FUNCTION_INFO_V1(vector_to_float4);
Datum
vector_to_float4(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	Datum	   *elems = (Datum *) palloc(sizeof(Datum) * vec->dim);
	int			i;

	for (i = 0; i < vec->dim; i++)
		elems[i] = Float4GetDatum(vec->x[i]);

	/* float4 is passed by value in every supported server */
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, vec->dim, FLOAT4OID,
										  sizeof(float4), true, TYPALIGN_INT));
}

/* Number of dimensions */
PG_FUNCTION_INFO_V1(vector_dims);
Datum
vector_dims(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);

	PG_RETURN_INT32(vec->dim);
}

/* Sum of squares, accumulated in double so that long vectors keep precision */
static double
VectorSquaredNorm(const Vector *vec)
{
	double		sum = 0.0;
	int			i;

	for (i = 0; i < vec->dim; i++)
		sum += (double) vec->x[i] * (double) vec->x[i];
	return sum;
}

/* Euclidean norm */
PG_FUNCTION_INFO_V1(vector_norm);
Datum
vector_norm(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);

	PG_RETURN_FLOAT8(sqrt(VectorSquaredNorm(vec)));
}

/* Scale to unit length; the zero vector stays zero */
PG_FUNCTION_INFO_V1(l2_normalize);
Datum
l2_normalize(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	double		norm = sqrt(VectorSquaredNorm(vec));
	Vector	   *result = VsVectorAllocate(vec->dim);
	int			i;

	if (norm > 0)
	{
		for (i = 0; i < vec->dim; i++)
		{
			result->x[i] = (float4) ((double) vec->x[i] / norm);
			if (isinf(result->x[i]))
				float_overflow_error();
		}
	}

	PG_RETURN_VECTOR_P(result);
}

/*
 * subvector(v, start, count): count elements from the 1-based position
 * start, clipped to the vector like substring() clips to a string.  An
 * empty result is an error, as vectors have at least one dimension.
 */
PG_FUNCTION_INFO_V1(subvector);
Datum
subvector(PG_FUNCTION_ARGS)
{
	Vector	   *vec = PG_GETARG_VECTOR_P(0);
	int64		start = PG_GETARG_INT32(1);
	int64		count = PG_GETARG_INT32(2);
	int64		end = start + count;	/* exclusive; int64 cannot overflow */
	Vector	   *result;

	if (start < 1)
		start = 1;
	if (end > (int64) vec->dim + 1)
		end = (int64) vec->dim + 1;
	if (end <= start)
		VsVectorCheckDim(0);

	result = VsVectorAllocate((int) (end - start));
	memcpy(result->x, vec->x + (start - 1), sizeof(float4) * result->dim);
	PG_RETURN_VECTOR_P(result);
}

/* Concatenation, v1 || v2 */
PG_FUNCTION_INFO_V1(vector_concat);
Datum
vector_concat(PG_FUNCTION_ARGS)
{
	Vector	   *a = PG_GETARG_VECTOR_P(0);
	Vector	   *b = PG_GETARG_VECTOR_P(1);
	Vector	   *result;

	VsVectorCheckDim(a->dim + b->dim);
	result = VsVectorAllocate(a->dim + b->dim);
	memcpy(result->x, a->x, sizeof(float4) * a->dim);
	memcpy(result->x + a->dim, b->x, sizeof(float4) * b->dim);
	PG_RETURN_VECTOR_P(result);
}
