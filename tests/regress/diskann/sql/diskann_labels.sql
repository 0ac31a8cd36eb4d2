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
-- Labeled indexes: (embedding, labels), the label column anywhere in the table
CREATE TABLE li (labels smallint[], id int, e vector(4));
INSERT INTO li SELECT CASE WHEN i % 50 = 0 THEN NULL ELSE ARRAY[i % 5, -32768 + i % 3]::smallint[] END,
                      i, ARRAY[i % 7, i % 11, i % 13, 1]::vector(4)
  FROM generate_series(1, 600) i;
CREATE INDEX li_idx ON li USING diskann (e vector_l2_ops, labels);
SELECT has_labels, nodes FROM diskann_index_info('li_idx');
SELECT diskann_validate_index('li_idx');
SET enable_seqscan = off;
-- every row a filtered scan returns matches, and a scan read to the end returns them all
SELECT count(*), count(*) FILTER (WHERE labels && ARRAY[2]::smallint[]) AS matching,
       (SELECT count(*) FROM li WHERE labels && ARRAY[2]::smallint[]) AS expected
  FROM (SELECT labels FROM li WHERE labels && ARRAY[2]::smallint[] ORDER BY e <-> '[1,1,1,1]') s;
SELECT count(*) AS edge_label_rows FROM (SELECT id FROM li WHERE labels && ARRAY[-32768]::smallint[] ORDER BY e <-> '[1,1,1,1]') s;
SELECT count(*) AS empty_filter FROM (SELECT id FROM li WHERE labels && ARRAY[]::smallint[] ORDER BY e <-> '[1,1,1,1]') s;
SELECT count(*) AS null_filter FROM (SELECT id FROM li WHERE labels && NULL::smallint[] ORDER BY e <-> '[1,1,1,1]') s;
SELECT count(*) AS unknown_label FROM (SELECT id FROM li WHERE labels && ARRAY[99]::smallint[] ORDER BY e <-> '[1,1,1,1]') s;
-- other WHERE clauses stay filters on top
SELECT count(*) AS also_id FROM (SELECT id FROM li WHERE labels && ARRAY[1]::smallint[] AND id < 100 ORDER BY e <-> '[1,1,1,1]') s;
-- labels from a join
SELECT count(*) AS joined FROM (SELECT l.id FROM li l, (VALUES (ARRAY[3,4]::smallint[])) v(f)
  WHERE l.labels && v.f ORDER BY l.e <-> '[1,1,1,1]' LIMIT 5) s;
-- an unfiltered query on a labeled index sees every row with a vector
SELECT count(*) AS unfiltered FROM (SELECT id FROM li ORDER BY e <-> '[1,1,1,1]') s;
RESET enable_seqscan;
-- what is refused, with a reason
SELECT try($$CREATE INDEX ON li USING diskann (e vector_l2_ops, labels) WITH (storage_layout = plain)$$);
SELECT try($$CREATE INDEX ON li USING diskann (labels, e vector_l2_ops)$$);
SELECT try($$CREATE INDEX ON li USING diskann (e vector_l2_ops, labels, labels)$$);
-- inserts carry labels; a new label gets a start node; more labels than the record holds fail
INSERT INTO li VALUES (ARRAY[1, 77]::smallint[], 1000, '[1,2,3,4]'), (NULL, 1001, '[4,3,2,1]');
SELECT diskann_validate_index('li_idx');
SET enable_seqscan = off;
SELECT array_agg(id) AS new_label FROM (SELECT id FROM li WHERE labels && ARRAY[77]::smallint[] ORDER BY e <-> '[1,1,1,1]') s;
RESET enable_seqscan;
SELECT try($$INSERT INTO li VALUES (ARRAY[1,2,3,4,5,6,7,8,9]::smallint[], 1002, '[1,2,3,4]')$$);
-- VACUUM repairs and frees on labeled indexes too: dead label starts move to a live node
-- carrying the label, a label nobody carries any more loses its start
DELETE FROM li WHERE labels && ARRAY[4, 77]::smallint[] OR id % 3 = 0;
VACUUM (INDEX_CLEANUP ON) li;
SELECT diskann_validate_index('li_idx');
SELECT deleted_nodes FROM diskann_index_info('li_idx');
SET enable_seqscan = off;
SELECT count(*) AS label_2_rows, (SELECT count(*) FROM li WHERE labels && ARRAY[2]::smallint[]) AS expected
  FROM (SELECT id FROM li WHERE labels && ARRAY[2]::smallint[] ORDER BY e <-> '[1,1,1,1]') s;
SELECT count(*) AS gone_labels FROM (SELECT id FROM li WHERE labels && ARRAY[4, 77]::smallint[] ORDER BY e <-> '[1,1,1,1]') s;
INSERT INTO li VALUES (ARRAY[77]::smallint[], 2000, '[2,2,2,2]');
SELECT array_agg(id) AS label_77_again FROM (SELECT id FROM li WHERE labels && ARRAY[77]::smallint[] ORDER BY e <-> '[1,1,1,1]') s;
SELECT diskann_validate_index('li_idx');
RESET enable_seqscan;
DROP TABLE li;
-- a labeled index that does not fit maintenance_work_mem: the bounded build keeps the labels
CREATE TABLE lb (id int, labels smallint[], e vector(64));
INSERT INTO lb SELECT i, ARRAY[i % 4]::smallint[], ARRAY(SELECT ((i * 7919 + d * 104729) % 1000003) / 1000003.0 FROM generate_series(1, 64) d)::vector(64)
  FROM generate_series(1, 4000) i;
SET maintenance_work_mem = '1MB';
SET client_min_messages = warning;
CREATE INDEX lb_idx ON lb USING diskann (e vector_l2_ops, labels);
RESET client_min_messages;
RESET maintenance_work_mem;
SELECT has_labels, nodes FROM diskann_index_info('lb_idx');
SELECT diskann_validate_index('lb_idx');
SET enable_seqscan = off;
SELECT count(*) AS label_3, count(*) FILTER (WHERE id % 4 = 3) AS matching
  FROM (SELECT id FROM lb WHERE labels && ARRAY[3]::smallint[] ORDER BY e <-> (SELECT e FROM lb WHERE id = 7)) s;
SELECT (SELECT id FROM lb WHERE labels && ARRAY[3]::smallint[] ORDER BY e <-> (SELECT e FROM lb WHERE id = 7) LIMIT 1) AS self_found;
RESET enable_seqscan;
DROP TABLE lb;
-- more distinct labels (1,100) than the meta page holds (995 at 8 kB): the label starts
-- overflow to chained pages in the in-memory build and in the bounded build, and inserts that
-- bring new labels append to the chain (filling its last page, then adding one)
CREATE TABLE lo (id int, labels smallint[], e vector(64));
INSERT INTO lo SELECT i, ARRAY[i % 1100]::smallint[], ARRAY(SELECT ((i * 7919 + d * 104729) % 1000003) / 1000003.0 FROM generate_series(1, 64) d)::vector(64)
  FROM generate_series(1, 4000) i;
CREATE INDEX lo_idx ON lo USING diskann (e vector_l2_ops, labels);
SELECT diskann_validate_index('lo_idx');
SET maintenance_work_mem = '1MB';
SET client_min_messages = warning;
REINDEX INDEX lo_idx;
RESET client_min_messages;
RESET maintenance_work_mem;
SELECT diskann_validate_index('lo_idx');
INSERT INTO lo SELECT i, ARRAY[i - 8000]::smallint[], ARRAY(SELECT ((i * 7919 + d * 104729) % 1000003) / 1000003.0 FROM generate_series(1, 64) d)::vector(64)
  FROM generate_series(10001, 11000) i;
INSERT INTO lo SELECT 5000, '{5, 4000, 4001}', e FROM lo WHERE id = 1;
SELECT diskann_validate_index('lo_idx');
SELECT nodes FROM diskann_index_info('lo_idx');
SET enable_seqscan = off;
SELECT l, (SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM lo WHERE labels && ARRAY[l]
             ORDER BY e <-> (SELECT e FROM lo WHERE id = 1)) s) AS ids
  FROM unnest('{0,5,994,1099,2001,2999,3000,4001,4002}'::smallint[]) l;
RESET enable_seqscan;
-- VACUUM moves and removes label starts on the meta page and in the chain: every row of label
-- 0 (inline) and of labels 2001..3000 (overflow: the chain's pages empty and leave it) goes,
-- and one row of label 1099
DELETE FROM lo WHERE labels && '{0}' OR id BETWEEN 10001 AND 11000 OR id = 1099;
VACUUM lo;
SELECT diskann_validate_index('lo_idx');
SELECT nodes, deleted_nodes FROM diskann_index_info('lo_idx');
-- new labels go to the chain again
INSERT INTO lo SELECT i, ARRAY[i - 14000, 5]::smallint[], ARRAY(SELECT ((i * 7919 + d * 104729) % 1000003) / 1000003.0 FROM generate_series(1, 64) d)::vector(64)
  FROM generate_series(20001, 20050) i;
SELECT diskann_validate_index('lo_idx');
SET enable_seqscan = off;
SELECT l, (SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM lo WHERE labels && ARRAY[l]
             ORDER BY e <-> (SELECT e FROM lo WHERE id = 2)) s) AS ids
  FROM unnest('{0,994,1099,2001,3000,4001,6001,6050}'::smallint[]) l;
SELECT count(*) AS label_5 FROM (SELECT id FROM lo WHERE labels && '{5}' ORDER BY e <-> (SELECT e FROM lo WHERE id = 2)) s;
RESET enable_seqscan;
DROP TABLE lo;
