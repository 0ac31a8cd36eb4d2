-- The extension installs with CASCADE (pulls in vector) and exposes pgvectorscale's surface.
CREATE EXTENSION vectorscale CASCADE;
SELECT extname FROM pg_extension WHERE extname IN ('vector', 'vectorscale') ORDER BY 1;
SELECT amname, amtype FROM pg_am WHERE amname = 'diskann';
SELECT opc.opcname, opc.opcdefault, t.typname
  FROM pg_opclass opc JOIN pg_am am ON am.oid = opc.opcmethod JOIN pg_type t ON t.oid = opc.opcintype
 WHERE am.amname = 'diskann' ORDER BY 1;
-- the opclass validator accepts every opclass
SELECT opc.opcname, amvalidate(opc.oid)
  FROM pg_opclass opc JOIN pg_am am ON am.oid = opc.opcmethod
 WHERE am.amname = 'diskann' ORDER BY 1;
-- GUCs, their defaults, contexts and ranges
SELECT name, setting, context, min_val, max_val FROM pg_settings
 WHERE name LIKE 'diskann.%' AND name <> 'diskann.failure_point' ORDER BY name;
-- Runs sql and returns the SQLSTATE and message of its error (used by the other tests).
CREATE FUNCTION try(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END $$;
