-- VACUUM marks the nodes of dead rows deleted; scans never return them.
SELECT setseed(0.3);
CREATE TABLE v (id int, e vector(4));
INSERT INTO v SELECT i, (SELECT array_agg(random()) FROM generate_series(1, 4) WHERE i > 0)::vector(4)
  FROM generate_series(1, 500) i;
CREATE INDEX v_idx ON v USING diskann (e vector_l2_ops) WITH (storage_layout = plain);
DELETE FROM v WHERE id % 5 = 0;
VACUUM (INDEX_CLEANUP ON) v;
SELECT nodes, deleted_nodes FROM diskann_index_info('v_idx');
SELECT diskann_validate_index('v_idx');
SET enable_seqscan = off;
SET diskann.query_search_list_size = 2;
SELECT count(*), count(*) FILTER (WHERE id % 5 = 0) AS deleted_returned
  FROM (SELECT id FROM v ORDER BY e <-> '[0.5,0.5,0.5,0.5]') s;
RESET ALL;
-- a second VACUUM finds nothing new
VACUUM (INDEX_CLEANUP ON) v;
SELECT nodes, deleted_nodes FROM diskann_index_info('v_idx');
DROP TABLE v;
