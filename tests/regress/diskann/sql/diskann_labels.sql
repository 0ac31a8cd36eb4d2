-- The label operator &&(smallint[], smallint[]): NULL elements ignored, empty arrays overlap
-- nothing, the whole smallint range, long arrays, and a selectivity from column statistics.
SELECT oprcode, oprrest, oprjoin FROM pg_operator
 WHERE oprname = '&&' AND oprleft = 'smallint[]'::regtype AND oprright = 'smallint[]'::regtype;
SELECT ARRAY[1,2,3]::smallint[] && ARRAY[3,4]::smallint[] AS yes,
       ARRAY[1,2,3]::smallint[] && ARRAY[4,5]::smallint[] AS no,
       ARRAY[]::smallint[] && ARRAY[1]::smallint[] AS empty_left,
       ARRAY[1]::smallint[] && ARRAY[]::smallint[] AS empty_right,
       ARRAY[]::smallint[] && ARRAY[]::smallint[] AS both_empty;
-- NULL elements never match; a NULL array gives NULL
SELECT ARRAY[NULL, 1]::smallint[] && ARRAY[1]::smallint[] AS null_elem_ignored,
       ARRAY[NULL]::smallint[] && ARRAY[NULL]::smallint[] AS nulls_do_not_match,
       NULL::smallint[] && ARRAY[1]::smallint[] AS null_array;
-- the edges of the smallint range
SELECT ARRAY[-32768]::smallint[] && ARRAY[32767, -32768]::smallint[] AS min_edge,
       ARRAY[32767]::smallint[] && ARRAY[-32768, 0]::smallint[] AS max_no,
       ARRAY[32767]::smallint[] && ARRAY[32767]::smallint[] AS max_edge;
SELECT try($$SELECT ARRAY[32768]::smallint[] && ARRAY[1]::smallint[]$$);
-- long arrays (the bit-set path) agree with the built-in anyarray operator
SELECT count(*) AS disagreements FROM generate_series(1, 200) k,
  LATERAL (SELECT array_agg(((k * 7919 + i * 104729) % 65536 - 32768)::smallint) a FROM generate_series(1, 40) i) x,
  LATERAL (SELECT array_agg(((k * 31 + i * 7) % 65536 - 32768)::smallint) b FROM generate_series(1, 40) i) y
 WHERE (x.a && y.b) IS DISTINCT FROM (x.a::int[] && y.b::int[]);
-- multi-dimensional arrays are flattened, as for the built-in operator
SELECT ARRAY[[1,2],[3,4]]::smallint[] && ARRAY[4]::smallint[] AS two_dims;
-- the estimate follows the column's element statistics
CREATE TABLE lab (id int, labels smallint[]);
INSERT INTO lab SELECT i, ARRAY[i % 10, 100 + i % 100]::smallint[] FROM generate_series(1, 10000) i;
ANALYZE lab;
CREATE FUNCTION est(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE r text; BEGIN
  EXECUTE 'EXPLAIN ' || q INTO r;
  RETURN substring(r FROM 'rows=(\d+)')::int;
END $$;
SELECT est($$SELECT * FROM lab WHERE labels && ARRAY[3]::smallint[]$$) BETWEEN 700 AND 1300 AS est_10pct,
       est($$SELECT * FROM lab WHERE labels && ARRAY[142]::smallint[]$$) BETWEEN 50 AND 200 AS est_1pct,
       (SELECT count(*) FROM lab WHERE labels && ARRAY[3]::smallint[]) AS actual_10pct;
-- int[] still uses the built-in operator
SELECT ARRAY[1,2]::int[] && ARRAY[2]::int[] AS builtin_int;
DROP TABLE lab;
DROP FUNCTION est(text);
