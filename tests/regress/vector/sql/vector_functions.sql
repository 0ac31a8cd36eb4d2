--
-- vector: functions, operators, casts and aggregates
--

-- Runs a statement and reports 'ok' or the SQLSTATE and primary message of
-- its error.
CREATE FUNCTION pg_temp.try(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE query;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- every function on vectors is IMMUTABLE STRICT PARALLEL SAFE
SELECT p.oid::regprocedure AS not_immutable_strict_parallel_safe
FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
WHERE d.classid = 'pg_proc'::regclass
  AND d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'vector')
  AND p.prokind = 'f'
  AND (p.prorettype = 'vector'::regtype OR 'vector'::regtype = ANY (p.proargtypes))
  AND (p.provolatile <> 'i' OR NOT p.proisstrict OR p.proparallel <> 's');
SELECT count(*) > 30 AS has_vector_functions
FROM pg_depend d JOIN pg_proc p ON p.oid = d.objid
WHERE d.classid = 'pg_proc'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'vector')
  AND (p.prorettype = 'vector'::regtype OR 'vector'::regtype = ANY (p.proargtypes));

-- one vector
SELECT vector_dims('[1,2,3]'::vector), vector_dims('[0]'::vector);
SELECT vector_norm('[3,4]'::vector), vector_norm('[1,1,1,1]'::vector), vector_norm('[0,0]'::vector), vector_norm('[-2]'::vector);
SELECT l2_normalize('[3,4]'::vector), l2_normalize('[0,-5,0]'::vector), l2_normalize('[0,0]'::vector);
SELECT vector_norm(l2_normalize('[1,1,1,1]'::vector));
SELECT subvector('[1,2,3,4,5]'::vector, 2, 3), subvector('[1,2,3,4,5]'::vector, 1, 5),
       subvector('[1,2,3,4,5]'::vector, 5, 1);
-- clipped to the vector, as substring() clips
SELECT subvector('[1,2,3,4,5]'::vector, 0, 2), subvector('[1,2,3,4,5]'::vector, 4, 10),
       subvector('[1,2,3,4,5]'::vector, -1, 4), subvector('[1,2,3,4,5]'::vector, 3, 2147483647);
SELECT q AS query, pg_temp.try(q) AS result
FROM (VALUES ($$SELECT subvector('[1,2,3,4,5]'::vector, 6, 1)$$),
             ($$SELECT subvector('[1,2,3,4,5]'::vector, 2, 0)$$),
             ($$SELECT subvector('[1,2,3,4,5]'::vector, 2, -1)$$),
             ($$SELECT subvector('[1,2,3,4,5]'::vector, -1, 2)$$),
             ($$SELECT subvector('[1,2,3,4,5]'::vector, -2147483648, 2147483647)$$),
             ($$SELECT subvector('[1,2,3,4,5]'::vector, 2147483647, 2147483647)$$)) AS t(q);

-- distances
SELECT l2_distance('[0,0]'::vector, '[3,4]'::vector), '[0,0]'::vector <-> '[3,4]',
       '[1,2,3]'::vector <-> '[1,2,3]', '[-1,-1]'::vector <-> '[2,3]';
SELECT vector_l2_squared_distance('[0,0]', '[3,4]');
SELECT inner_product('[1,2,3]'::vector, '[4,5,6]'::vector), '[1,2,3]'::vector <#> '[4,5,6]',
       vector_negative_inner_product('[1,-2]', '[3,4]');
SELECT cosine_distance('[1,0]'::vector, '[0,1]'::vector), '[1,2]'::vector <=> '[2,4]',
       '[1,1]'::vector <=> '[-1,-1]', '[3,4]'::vector <=> '[-6,-8]',
       '[3,4]'::vector <=> '[6,8]';
-- the angle with a zero vector is undefined
SELECT cosine_distance('[0,0]'::vector, '[1,2]'::vector), '[0,0]'::vector <=> '[0,0]';
-- for unit vectors: the angle over pi
SELECT vector_spherical_distance('[1,0]', '[0,1]'),
       vector_spherical_distance('[1,0]', '[-1,0]'),
       vector_spherical_distance('[0.6,0.8]', '[0.6,0.8]');
SELECT l1_distance('[1,2,3]'::vector, '[4,0,3]'::vector), '[1,2,3]'::vector <+> '[4,0,3]';
-- large elements: no overflow, the sums are double precision
SELECT '[3e38,3e38]'::vector <-> '[-3e38,-3e38]' > 8e38 AS l2,
       inner_product('[3e38,3e38]'::vector, '[3e38,3e38]'::vector) > 1.7e77 AS ip,
       vector_norm('[3e38,3e38]'::vector) > 4.2e38 AS norm;
-- NULL in, NULL out
SELECT '[1,2]'::vector <-> NULL IS NULL AS l2, NULL <=> '[1,2]'::vector IS NULL AS cos;

-- element-wise arithmetic
SELECT '[1,2,3]'::vector + '[4,5,6]', '[1,2,3]'::vector - '[4,5,6]',
       '[1,2,3]'::vector * '[4,5,6]', '[1.5,-2]'::vector * '[2,0.5]';
SELECT '[1,2]'::vector || '[3]';
SELECT q AS query, pg_temp.try(q) AS result
FROM (VALUES ($$SELECT '[3e38]'::vector + '[3e38]'$$),
             ($$SELECT '[-3e38]'::vector - '[3e38]'$$),
             ($$SELECT '[3e38]'::vector * '[10]'$$),
             ($$SELECT '[1e-30]'::vector * '[1e-30]'$$),
             ($$SELECT subvector(array_fill(1, ARRAY[16000])::vector, 1, 16000) || '[1]'$$)) AS t(q);

-- different dimensions
SELECT q AS query, pg_temp.try(q) AS result
FROM (VALUES ($$SELECT l2_distance('[1,2]'::vector, '[1,2,3]'::vector)$$),
             ($$SELECT '[1,2]'::vector <-> '[1,2,3]'$$),
             ($$SELECT vector_l2_squared_distance('[1,2]', '[1,2,3]')$$),
             ($$SELECT inner_product('[1,2]'::vector, '[1,2,3]'::vector)$$),
             ($$SELECT '[1,2]'::vector <#> '[1,2,3]'$$),
             ($$SELECT cosine_distance('[1,2]'::vector, '[1,2,3]'::vector)$$),
             ($$SELECT '[1,2]'::vector <=> '[1,2,3]'$$),
             ($$SELECT vector_spherical_distance('[1,2]', '[1,2,3]')$$),
             ($$SELECT l1_distance('[1,2]'::vector, '[1,2,3]'::vector)$$),
             ($$SELECT '[1,2]'::vector <+> '[1,2,3]'$$),
             ($$SELECT '[1,2]'::vector + '[1,2,3]'$$),
             ($$SELECT '[1,2]'::vector - '[1,2,3]'$$),
             ($$SELECT '[1,2,3]'::vector * '[1,2]'$$)) AS t(q);

-- comparison: element by element, then the shorter vector first
SELECT '[1,2,3]'::vector < '[1,2,4]' AS lt, '[1,2]'::vector < '[1,2,3]' AS shorter,
       '[2]'::vector > '[1,5]' AS gt, '[1,2]'::vector <= '[1,2]' AS le,
       '[1,2]'::vector >= '[1,3]' AS ge, '[1,2]'::vector = '[1,2]' AS eq,
       '[1,2]'::vector = '[1,2,0]' AS eq_dims, '[1,2]'::vector <> '[2,1]' AS ne,
       '[-0]'::vector = '[0]' AS zeros;
SELECT vector_cmp('[1,2]', '[1,3]'), vector_cmp('[1,2]', '[1,2]'),
       vector_cmp('[1,3]', '[1,2]'), vector_cmp('[1,2]', '[1]');

-- casts from and to arrays
SELECT ARRAY[1,2,3]::vector, ARRAY[1.5,-2.5]::vector,
       ARRAY[1.5,-2.5]::real[]::vector, ARRAY[0.25,1e-7]::double precision[]::vector;
SELECT '{1,2,3}'::real[]::vector(3), '{1,2,3}'::int[]::vector(3);
SELECT '[1,2,3]'::vector::real[], '[1.5,-0.25]'::vector::real[];
SELECT ('[1,2,3]'::vector::real[])::vector;
CREATE TABLE vec_cast (v vector(3));
INSERT INTO vec_cast VALUES (ARRAY[1,2,3]), (ARRAY[1.5,2,3]::float8[]), ('{4,5,6}'::real[]);
SELECT * FROM vec_cast;
DROP TABLE vec_cast;
SELECT q AS query, pg_temp.try(q) AS result
FROM (VALUES ($$SELECT '{1,2,3}'::real[]::vector(2)$$),
             ($$SELECT ARRAY[[1,2],[3,4]]::vector$$),
             ($$SELECT ARRAY[1,NULL]::vector$$),
             ($$SELECT '{}'::int[]::vector$$),
             ($$SELECT ARRAY['NaN']::float8[]::vector$$),
             ($$SELECT ARRAY['-Infinity']::real[]::vector$$),
             ($$SELECT ARRAY['NaN']::numeric[]::vector$$),
             ($$SELECT ARRAY[1e39]::float8[]::vector$$),
             ($$SELECT array_fill(1, ARRAY[16001])::vector$$)) AS t(q);

-- aggregates
CREATE TABLE vec_agg (g int, v vector);
INSERT INTO vec_agg VALUES (1, '[1,2]'), (1, '[3,6]'), (1, NULL), (2, '[-1,0,1]');
SELECT g, avg(v), sum(v), count(v) FROM vec_agg GROUP BY g ORDER BY g;
SELECT avg(v), sum(v) FROM vec_agg WHERE false;
SELECT pg_temp.try($$SELECT avg(v) FROM vec_agg$$);
SELECT pg_temp.try($$SELECT sum(v) FROM vec_agg$$);
DROP TABLE vec_agg;

-- parallel aggregation combines the partial states of the workers
CREATE TABLE vec_par AS
SELECT i, ARRAY[i, -i, i % 7]::vector AS v FROM generate_series(1, 2000) i;
ANALYZE vec_par;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM vec_par;
SELECT avg(v), sum(v) FROM vec_par;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT avg(v), sum(v) FROM vec_par;
DROP TABLE vec_par;
