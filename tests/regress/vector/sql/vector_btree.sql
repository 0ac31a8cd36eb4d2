--
-- vector: ordering by distance, the btree operator class
--

CREATE TABLE items (id int PRIMARY KEY, embedding vector(3));
INSERT INTO items VALUES (1, '[1,1,1]'), (2, '[2,2,2]'), (3, '[1,1,2]'),
	(4, '[0,0,0]'), (5, '[-1,0,1]'), (6, NULL);

-- nearest neighbours without an index
SELECT id, embedding, embedding <-> '[1,1,1]' AS distance
FROM items ORDER BY embedding <-> '[1,1,1]', id;
SELECT id, embedding <#> '[1,1,1]' AS negative_inner_product
FROM items ORDER BY embedding <#> '[1,1,1]', id;
-- NaN (zero vector) sorts after every number, NULL last
SELECT id FROM items ORDER BY embedding <=> '[1,1,1]', id;
SELECT id FROM items ORDER BY embedding <+> '[1,1,1]', id LIMIT 3;

-- btree order, DISTINCT, GROUP BY
SELECT id, embedding FROM items ORDER BY embedding, id;
SELECT DISTINCT v FROM (VALUES ('[1,2]'::vector), ('[1,2]'), ('[2,1]'), ('[1]'),
	('[1,2,0]')) AS t(v) ORDER BY v;
SELECT v, count(*) FROM (VALUES ('[1,2]'::vector), ('[1,2]'), ('[2,1]')) AS t(v)
GROUP BY v ORDER BY v DESC;

-- btree index on a vector column
CREATE INDEX items_embedding_idx ON items (embedding);
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT id FROM items WHERE embedding = '[1,1,2]';
SELECT id FROM items WHERE embedding = '[1,1,2]';
SELECT id FROM items WHERE embedding > '[1,1,1]' ORDER BY embedding;
SELECT id FROM items WHERE embedding < '[1,1,1]' ORDER BY embedding DESC;
RESET enable_seqscan;
RESET enable_bitmapscan;
INSERT INTO items VALUES (7, '[1,1,2]');
CREATE UNIQUE INDEX items_embedding_key ON items (embedding);
DELETE FROM items WHERE id = 7;
CREATE UNIQUE INDEX items_embedding_key ON items (embedding);
INSERT INTO items VALUES (8, '[2,2,2]');
DROP TABLE items;
