-- Scans: recall against exact results for every opclass and storage, streaming of every
-- row, rescoring, Matryoshka prefixes, NULLs, and the planner's use of the index.
SELECT setseed(0.42);
CREATE TABLE items (id int PRIMARY KEY, e vector(64));
INSERT INTO items
  SELECT i, ARRAY(SELECT round((sin((i % 8 + 1) * d) + 3 * (random() - 0.5))::numeric, 4) FROM generate_series(1, 64) d)::vector(64)
    FROM generate_series(1, 3000) i;
INSERT INTO items VALUES (3001, NULL), (3002, NULL);
CREATE TABLE queries (qid int, q vector(64));
INSERT INTO queries
  SELECT j, ARRAY(SELECT round((sin((j % 8 + 1) * d) + 3 * (random() - 0.5))::numeric, 4) FROM generate_series(1, 64) d)::vector(64)
    FROM generate_series(1, 20) j;

-- Exact answers (no index exists yet).
CREATE TABLE exact AS
  SELECT qid, op, id FROM queries,
    LATERAL (VALUES ('<->'), ('<=>'), ('<#>')) ops(op),
    LATERAL (SELECT id FROM items WHERE e IS NOT NULL ORDER BY
               CASE op WHEN '<->' THEN e <-> q WHEN '<=>' THEN e <=> q ELSE e <#> q END LIMIT 10) s;

-- recall@10 of the index for one operator over all queries
CREATE FUNCTION recall(op text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE hits int := 0; r record;
BEGIN
  FOR r IN SELECT qid, q FROM queries LOOP
    EXECUTE format('SELECT count(*) FROM (SELECT id FROM items ORDER BY e %s $1 LIMIT 10) s
                     WHERE id IN (SELECT id FROM exact WHERE qid = $2 AND op = $3)', op)
      INTO STRICT r.qid USING r.q, r.qid, op;
    hits := hits + r.qid;
  END LOOP;
  RETURN hits / 200.0;
END $$;

-- rows streamed through the index, and distinct ids among them
CREATE FUNCTION streamed(op text, OUT total bigint, OUT distinct_ids bigint) LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('SELECT count(*), count(DISTINCT id) FROM (SELECT id FROM items ORDER BY e %s %L) s',
                 op, array_fill(0.5, ARRAY[64])::vector(64)::text) INTO total, distinct_ids;
END $$;

SET enable_seqscan = off;
SET enable_bitmapscan = off;

-- memory_optimized (SBQ, 2 bits at 64 dims), cosine
CREATE INDEX items_cos ON items USING diskann (e vector_cosine_ops);
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY e <=> array_fill(1, ARRAY[64])::vector LIMIT 10;
-- SBQ ranks tight clusters coarsely (2 bits per dimension); a wider rescore window recovers
SELECT recall('<=>') >= 0.7 AS cosine_sbq_default_recall_ok;
SET diskann.query_search_list_size = 200;
SET diskann.query_rescore = 200;
SELECT recall('<=>') >= 0.95 AS cosine_sbq_rescore200_recall_ok;
RESET diskann.query_search_list_size;
RESET diskann.query_rescore;
SET diskann.query_rescore = 0;
SELECT recall('<=>') AS recall_without_rescoring \gset
RESET diskann.query_rescore;
SELECT recall('<=>') > :recall_without_rescoring AS rescoring_helps;
SET diskann.query_search_list_size = 2;
SELECT * FROM streamed('<=>');
SET diskann.query_rescore = 0;
SELECT * FROM streamed('<=>');
RESET diskann.query_rescore;
RESET diskann.query_search_list_size;
SELECT nodes, deleted_nodes, built_by, build_backend FROM diskann_index_info('items_cos');
SELECT diskann_validate_index('items_cos');
DROP INDEX items_cos;

-- plain, L2: distances in the graph are exact
CREATE INDEX items_l2 ON items USING diskann (e vector_l2_ops) WITH (storage_layout = plain);
SELECT recall('<->') >= 0.95 AS l2_plain_recall_ok;
SET diskann.query_search_list_size = 2;
SELECT * FROM streamed('<->');
RESET diskann.query_search_list_size;
SELECT diskann_validate_index('items_l2');
DROP INDEX items_l2;

-- inner product (memory_optimized only), 1 bit per dimension
CREATE INDEX items_ip ON items USING diskann (e vector_ip_ops) WITH (num_bits_per_dimension = 1);
SELECT recall('<#>') >= 0.45 AS ip_sbq_default_recall_ok;
SET diskann.query_search_list_size = 300;
SET diskann.query_rescore = 300;
SELECT recall('<#>') >= 0.9 AS ip_sbq_rescore300_recall_ok;
RESET diskann.query_search_list_size;
RESET diskann.query_rescore;
SELECT diskann_validate_index('items_ip');
DROP INDEX items_ip;

-- Matryoshka: the graph sees 16 of 64 dimensions, rescoring uses all 64 from the heap
CREATE INDEX items_prefix ON items USING diskann (e vector_l2_ops) WITH (storage_layout = plain, num_dimensions = 16);
SELECT indexed_dimensions, column_dimensions FROM diskann_index_info('items_prefix');
SET diskann.query_rescore = 200;
SELECT recall('<->') >= 0.9 AS prefix_recall_with_rescore_ok;
SELECT (SELECT array_agg(id) FROM (SELECT id FROM items ORDER BY e <-> (SELECT q FROM queries WHERE qid = 1) LIMIT 5) s)
     = (SELECT array_agg(id) FROM (SELECT id FROM exact WHERE qid = 1 AND op = '<->' LIMIT 5) s) AS top5_exact_order;
RESET diskann.query_rescore;
DROP INDEX items_prefix;

-- NULL query: rows come back in some order, nothing crashes; a wrong dimension is an error
CREATE INDEX items_cos ON items USING diskann (e);
SELECT count(*) FROM (SELECT id FROM items ORDER BY e <=> NULL LIMIT 7) s;
SELECT try($$SELECT id FROM items ORDER BY e <=> '[1,2,3]' LIMIT 1$$);
-- an ORDER BY ... LIMIT uses the index without planner settings; other queries never do
RESET enable_seqscan;
RESET enable_bitmapscan;
ANALYZE items;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY e <=> array_fill(1, ARRAY[64])::vector LIMIT 10;
EXPLAIN (COSTS OFF) SELECT count(*) FROM items WHERE e IS NOT NULL;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY id LIMIT 10;
EXPLAIN (COSTS OFF) SELECT id FROM items ORDER BY e <-> array_fill(1, ARRAY[64])::vector LIMIT 10;
-- parameterised queries rescan the index per outer row
SET enable_seqscan = off;
SELECT count(*) FROM queries, LATERAL (SELECT id FROM items ORDER BY e <=> q LIMIT 3) s;
DROP TABLE items, queries, exact;
DROP FUNCTION recall(text), streamed(text);
