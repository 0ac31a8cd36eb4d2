--
-- vector: text and binary I/O, type modifier, input errors
--

-- Runs a statement and reports 'ok' or the SQLSTATE and primary message of
-- its error (details differ between implementations, these do not).
CREATE FUNCTION pg_temp.try(query text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE query;
	RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
	RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- text round trip
SELECT '[1,2,3]'::vector;
SELECT '[-1,2.5,-3.75]'::vector;
SELECT '[1,2,3]'::vector::text;
SELECT ' [ 1 , 2 ,3 ] '::vector;
SELECT (E'\t[\n1,\r2\f,' || chr(11) || E'3 ]\n')::vector;
SELECT '[1e3,2.5E-1,-1.5e+2]'::vector;
SELECT '[+1,.5,1.,0x10]'::vector;
SELECT '[1e-7,123456789,0.1]'::vector;
SELECT '[-0,0]'::vector;
SELECT '[3.4028235e38,-3.4028235e38,1e-45]'::vector;
-- the shortest text that reads back as the same float4
SELECT count(*), bool_and(v::text::vector = v)
FROM (SELECT ARRAY[i * 0.1, i / 7.0, -i * 1e-5, 1e10 / i]::real[]::vector AS v
      FROM generate_series(1, 1000) i) s;

-- input errors
SELECT q AS input, pg_temp.try(format('SELECT %L::vector', q)) AS result
FROM (VALUES (''), ('1,2,3'), ('['), ('[1,2'), ('[1,2,]'), ('[,1]'), ('[1 2]'),
             ('[1,2]x'), ('[1,2]]'), ('[a]'), ('[1;2]'), ('[]'), ('[ ]'),
             ('[NaN]'), ('[1,nan]'), ('[Infinity]'), ('[-inf]'),
             ('[1e39]'), ('[-1e39]')) AS t(q);

-- dimension limit
SELECT vector_dims(('[' || array_to_string(array_fill(1, ARRAY[16000]), ',') || ']')::vector);
SELECT pg_temp.try($$SELECT ('[' || array_to_string(array_fill(1, ARRAY[16001]), ',') || ']')::vector$$);

-- type modifier
CREATE TABLE vec3 (v vector(3));
SELECT format_type(atttypid, atttypmod) FROM pg_attribute
WHERE attrelid = 'vec3'::regclass AND attname = 'v';
INSERT INTO vec3 VALUES ('[1,2,3]'), (NULL);
SELECT pg_temp.try($$INSERT INTO vec3 VALUES ('[1,2]')$$);
SELECT pg_temp.try($$INSERT INTO vec3 VALUES ('[1,2,3,4]')$$);
SELECT pg_temp.try($$UPDATE vec3 SET v = '[1,2]'::vector$$);
SELECT * FROM vec3;
SELECT '[1,2,3]'::vector(3);
SELECT '[1,2,3]'::vector::vector(3);
SELECT pg_temp.try($$SELECT '[1,2]'::vector(3)$$);
SELECT pg_temp.try($$SELECT '[1,2,3]'::vector(3)::vector(2)$$);
SELECT pg_temp.try($$SELECT '[1]'::vector(0)$$);
SELECT pg_temp.try($$SELECT '[1]'::vector(16001)$$);
SELECT pg_temp.try($$SELECT '[1]'::vector(1, 2)$$);
SELECT pg_temp.try($$CREATE TABLE bad (v vector(-1))$$);
DROP TABLE vec3;

-- binary output: int16 dim, int16 unused, float4 elements, network order
SELECT vector_send('[1,2,3]');
SELECT vector_send('[-0.5]');

-- binary COPY round trip (vector_send, then vector_recv)
CREATE TABLE vec_src (id int, v vector);
INSERT INTO vec_src VALUES (1, '[1,2,3]'), (2, '[1.5,-2.25,1e-7]'),
	(3, '[3.4028235e38]'), (4, NULL);
\getenv abs_builddir PG_ABS_BUILDDIR
\set copy_file :abs_builddir '/results/vector_input.bin'
COPY vec_src TO :'copy_file' WITH (FORMAT binary);
CREATE TABLE vec_dst (id int, v vector);
COPY vec_dst FROM :'copy_file' WITH (FORMAT binary);
SELECT s.id, s.v, d.v, s.v IS NOT DISTINCT FROM d.v AS same
FROM vec_src s JOIN vec_dst d USING (id) ORDER BY id;
-- the type modifier applies to binary input too
CREATE TABLE vec_dst3 (id int, v vector(3));
SELECT pg_temp.try(format('COPY vec_dst3 FROM %L WITH (FORMAT binary)', :'copy_file'));
-- the text form, as pg_dump writes it
COPY vec_src TO STDOUT;
DROP TABLE vec_src, vec_dst, vec_dst3;

-- binary input errors: a bytea field is framed like a vector field, so a
-- binary COPY of a bytea feeds its bytes to vector_recv
CREATE TABLE vec_recv (v vector);
CREATE FUNCTION pg_temp.recv(payload bytea, file text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('COPY (SELECT %L::bytea) TO %L WITH (FORMAT binary)', payload, file);
	RETURN pg_temp.try(format('COPY vec_recv FROM %L WITH (FORMAT binary)', file));
END
$$;
SELECT payload, pg_temp.recv(payload, :'copy_file') AS result
FROM (VALUES ('\x000200003f80000040000000'::bytea),
             ('\x000200013f80000040000000'),
             ('\x00000000'),
             ('\x3e810000'),
             ('\xffff0000'),
             ('\x000100007fc00000'),
             ('\x00010000ff800000'),
             ('\x000200003f800000'),
             ('\x000100003f80000000')) AS t(payload);
SELECT * FROM vec_recv;
DROP TABLE vec_recv;

-- the largest vectors are stored out of line (TOAST) and read back intact
CREATE TABLE vec_big (id int, v vector(16000));
INSERT INTO vec_big SELECT i, array_fill(i, ARRAY[16000])::vector FROM generate_series(1, 3) i;
SELECT id, vector_dims(v), v <-> array_fill(0, ARRAY[16000])::vector AS from_zero,
       v::text = (array_fill(id, ARRAY[16000])::vector)::text AS same_text
FROM vec_big ORDER BY id;
SELECT pg_column_size(v) AS stored_bytes FROM vec_big WHERE id = 1;
DROP TABLE vec_big;
