-- Build: reltuples, UNLOGGED tables, REINDEX (CONCURRENTLY), empty tables, expression
-- indexes, TOASTed vectors, and the build result checked page by page.
SELECT setseed(0.7);
CREATE TABLE b (id int, e vector(8));
INSERT INTO b SELECT i, CASE WHEN i % 10 = 0 THEN NULL ELSE
  (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE i > 0)::vector(8) END
  FROM generate_series(1, 1000) i;
CREATE INDEX b_idx ON b USING diskann (e);
-- the heap's reltuples counts every live row, not just the 900 indexed vectors
SELECT reltuples FROM pg_class WHERE relname = 'b';
SELECT nodes FROM diskann_index_info('b_idx');
SELECT diskann_validate_index('b_idx');
REINDEX INDEX b_idx;
SELECT nodes FROM diskann_index_info('b_idx');
REINDEX INDEX CONCURRENTLY b_idx;
SELECT nodes, pages > 1 AS has_pages FROM diskann_index_info('b_idx');
SELECT diskann_validate_index('b_idx');
SET enable_seqscan = off;
SET diskann.query_search_list_size = 2;
SELECT count(*) FROM (SELECT id FROM b ORDER BY e <=> '[1,1,1,1,1,1,1,1]') s;
RESET diskann.query_search_list_size;
RESET enable_seqscan;
-- empty table, then an UNLOGGED one (init fork from ambuildempty)
CREATE TABLE empty_t (e vector(4));
CREATE INDEX empty_idx ON empty_t USING diskann (e);
SELECT nodes, pages, entry_point FROM diskann_index_info('empty_idx');
SELECT diskann_validate_index('empty_idx');
SET enable_seqscan = off;
SELECT count(*) FROM (SELECT * FROM empty_t ORDER BY e <=> '[1,2,3,4]') s;
RESET enable_seqscan;
CREATE UNLOGGED TABLE u (id int, e vector(8));
INSERT INTO u SELECT id, e FROM b;
CREATE INDEX u_idx ON u USING diskann (e vector_l2_ops);
SELECT relpersistence FROM pg_class WHERE relname = 'u_idx';
SELECT nodes FROM diskann_index_info('u_idx');
SELECT diskann_validate_index('u_idx');
-- an expression index rescoring from the expression's value
CREATE TABLE ex (id int, a real[]);
INSERT INTO ex SELECT id, e::real[] FROM b WHERE e IS NOT NULL;
CREATE INDEX ex_idx ON ex USING diskann ((a::vector(8)) vector_l2_ops);
SET enable_seqscan = off;
SELECT id FROM ex ORDER BY a::vector(8) <-> (SELECT e FROM b WHERE id = 7) LIMIT 1;
RESET enable_seqscan;
-- TOASTed (compressed and external) vectors
CREATE TABLE big (id int, e vector(1500));
ALTER TABLE big ALTER COLUMN e SET STORAGE EXTERNAL;
INSERT INTO big SELECT i, ARRAY(SELECT random() + i FROM generate_series(1, 1500))::vector(1500)
  FROM generate_series(1, 50) i;
CREATE INDEX big_idx ON big USING diskann (e vector_l2_ops);
SELECT nodes, indexed_dimensions, num_bits_per_dimension FROM diskann_index_info('big_idx');
SET enable_seqscan = off;
SELECT id FROM big ORDER BY e <-> (SELECT e FROM big WHERE id = 17) LIMIT 1;
RESET enable_seqscan;
-- a vector of the wrong dimension in an unconstrained expression fails the build cleanly
CREATE TABLE mixed (e vector);
INSERT INTO mixed VALUES ('[1,2,3]'), ('[1,2]');
SELECT try($$CREATE INDEX ON mixed USING diskann ((e::vector(3)))$$);
-- inserts after the build go into the index, and a row finds itself
INSERT INTO b VALUES (2000, '[1,1,1,1,1,1,1,1]'), (2001, NULL);
SELECT count(*) FROM b;
SELECT nodes FROM diskann_index_info('b_idx');
SELECT diskann_validate_index('b_idx');
SET enable_seqscan = off;
SELECT id FROM b ORDER BY e <=> '[1,1,1,1,1,1,1,1]' LIMIT 1;
SELECT try($$INSERT INTO b VALUES (2002, '[1,2]')$$);
RESET enable_seqscan;
DROP TABLE b, empty_t, u, ex, big, mixed;
