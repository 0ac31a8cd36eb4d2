-- The C++/PostgreSQL boundary (DESIGN.md 7), with failure points compiled into test builds:
-- a PostgreSQL error raised inside guarded C++ code keeps its SQLSTATE; a C++ exception
-- thrown inside a PostgreSQL callback becomes a clean ERROR; the session (and the server)
-- carries on, and the next statement works.
CREATE EXTENSION vectorscale CASCADE;
CREATE TABLE fp (id int, e vector(4));
INSERT INTO fp SELECT i, ARRAY[i, i % 7, i % 3, 1]::vector(4) FROM generate_series(1, 300) i;

-- Runs sql and reports the SQLSTATE and message of the error it raises.
CREATE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE sql;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;

SET diskann.failure_point = 'build_pg_error';
SELECT try('CREATE INDEX fp_idx ON fp USING diskann (e)');
SET diskann.failure_point = 'build_callback_throw';
SELECT try('CREATE INDEX fp_idx ON fp USING diskann (e)');
SET diskann.failure_point = 'build_callback_bad_alloc';
SELECT try('CREATE INDEX fp_idx ON fp USING diskann (e)');
-- the same errors at top level, outside any subtransaction
SET diskann.failure_point = 'build_pg_error';
\set VERBOSITY sqlstate
CREATE INDEX fp_idx ON fp USING diskann (e);
SET diskann.failure_point = 'build_callback_throw';
CREATE INDEX fp_idx ON fp USING diskann (e);
\set VERBOSITY default
RESET diskann.failure_point;
SELECT count(*) FROM pg_class WHERE relname = 'fp_idx';
CREATE INDEX fp_idx ON fp USING diskann (e vector_l2_ops) WITH (storage_layout = plain);
SELECT diskann_validate_index('fp_idx');

SET enable_seqscan = off;
SET diskann.failure_point = 'scan_pg_error';
SELECT try('SELECT id FROM fp ORDER BY e <-> ''[1,1,1,1]'' LIMIT 3');
SET diskann.failure_point = 'scan_throw';
SELECT try('SELECT id FROM fp ORDER BY e <-> ''[1,1,1,1]'' LIMIT 3');
RESET diskann.failure_point;
SELECT id FROM fp ORDER BY e <-> '[1,1,1,1]' LIMIT 3;
-- a scan that fails mid-way in a cursor releases its state with the transaction
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM fp ORDER BY e <-> '[5,5,2,1]';
FETCH 2 FROM c;
SET diskann.failure_point = 'scan_pg_error';
\set VERBOSITY sqlstate
FETCH 60 FROM c;
\set VERBOSITY default
ROLLBACK;
RESET diskann.failure_point;
SELECT id FROM fp ORDER BY e <-> '[5,5,2,1]' LIMIT 2;
DROP TABLE fp;
DROP FUNCTION try(text);
