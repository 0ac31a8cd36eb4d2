-- VACUUM marks the nodes of dead rows deleted, repairs the graph around them, and frees
-- their slots for inserts; scans never return dead rows and still reach every live one.
SELECT setseed(0.3);
CREATE TABLE v (id int, e vector(4));
INSERT INTO v SELECT i, (SELECT array_agg(random()) FROM generate_series(1, 4) WHERE i > 0)::vector(4)
  FROM generate_series(1, 500) i;
CREATE INDEX v_idx ON v USING diskann (e vector_l2_ops) WITH (storage_layout = plain);
DELETE FROM v WHERE id % 5 = 0;
VACUUM (INDEX_CLEANUP ON) v;
-- the 100 slots are free now: not deleted, still counted as slots
SELECT nodes, deleted_nodes FROM diskann_index_info('v_idx');
SELECT diskann_validate_index('v_idx');
SET enable_seqscan = off;
SET diskann.query_search_list_size = 2;
SELECT count(*), count(DISTINCT id), (SELECT count(*) FROM v) AS live_rows
  FROM (SELECT id FROM v ORDER BY e <-> '[0.5,0.5,0.5,0.5]') s;
RESET diskann.query_search_list_size;
-- inserts reuse the free slots before the index grows
SELECT pages AS pages_before FROM diskann_index_info('v_idx') \gset
INSERT INTO v SELECT 1000 + i, (SELECT array_agg(random()) FROM generate_series(1, 4) WHERE i > 0)::vector(4)
  FROM generate_series(1, 100) i;
SELECT nodes, deleted_nodes, pages = :pages_before AS same_pages FROM diskann_index_info('v_idx');
SELECT diskann_validate_index('v_idx');
SELECT count(*) FROM v WHERE id > 1000
   AND id = (SELECT id FROM v v2 ORDER BY v2.e <-> v.e LIMIT 1);
-- almost everything deleted (the entry point with it): the rest is still found
DELETE FROM v WHERE id NOT IN (7, 1042, 499);
VACUUM (INDEX_CLEANUP ON) v;
SELECT diskann_validate_index('v_idx');
SELECT entry_point IS NOT NULL AS has_entry, deleted_nodes FROM diskann_index_info('v_idx');
SET diskann.query_search_list_size = 2;
SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM v ORDER BY e <-> '[0,0,0,0]') s;
-- everything deleted: an empty index that takes inserts again
DELETE FROM v;
VACUUM (INDEX_CLEANUP ON) v;
SELECT entry_point IS NULL AS no_entry, deleted_nodes FROM diskann_index_info('v_idx');
SELECT diskann_validate_index('v_idx');
INSERT INTO v VALUES (1, '[1,2,3,4]'), (2, '[4,3,2,1]');
SELECT array_agg(id ORDER BY id) FROM (SELECT id FROM v ORDER BY e <-> '[0,0,0,0]') s;
SELECT diskann_validate_index('v_idx');
RESET ALL;
DROP TABLE v;
-- Exact duplicates crowd each other out of neighbor lists (most with a small R), so some rows
-- lose every in-edge; a scan read to the end still returns every row once (the page sweep).
CREATE FUNCTION hvec(i int) RETURNS vector LANGUAGE sql IMMUTABLE AS
  $$ SELECT (SELECT array_agg(((i * 7919 + j * 104729) % 1000003) / 1000003.0)
               FROM generate_series(1, 8) j)::vector(8) $$;
CREATE TABLE dup (id int, e vector(8));
INSERT INTO dup SELECT i, hvec(i) FROM generate_series(1, 1000) i;
CREATE INDEX dup_idx ON dup USING diskann (e vector_l2_ops) WITH (storage_layout = plain, num_neighbors = 10);
INSERT INTO dup SELECT i + 1000 * c, hvec(i) FROM generate_series(1, 1000) i, generate_series(1, 2) c;
SET enable_seqscan = off;
SET diskann.query_search_list_size = 2;
SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM dup ORDER BY e <-> hvec(1)) s;
SELECT diskann_validate_index('dup_idx');
RESET ALL;
DROP TABLE dup;
DROP FUNCTION hvec(int);
