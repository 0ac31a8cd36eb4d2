-- vectorscale 0.1.0: the diskann access method (DESIGN.md 1.1, pgvectorscale's SQL surface).
\echo Use "CREATE EXTENSION vectorscale CASCADE" to load this file. \quit

CREATE FUNCTION diskann_amhandler(internal) RETURNS index_am_handler
	AS 'MODULE_PATHNAME' LANGUAGE C;

CREATE ACCESS METHOD diskann TYPE INDEX HANDLER diskann_amhandler;
COMMENT ON ACCESS METHOD diskann IS 'StreamingDiskANN index access method';

-- Support function 1 of each opclass: the distance the index is built for.
CREATE FUNCTION diskann_metric_l2() RETURNS smallint
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION diskann_metric_cosine() RETURNS smallint
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION diskann_metric_ip() RETURNS smallint
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE OPERATOR CLASS vector_cosine_ops DEFAULT FOR TYPE vector USING diskann AS
	OPERATOR 1 <=> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 diskann_metric_cosine();

CREATE OPERATOR CLASS vector_l2_ops FOR TYPE vector USING diskann AS
	OPERATOR 1 <-> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 diskann_metric_l2();

CREATE OPERATOR CLASS vector_ip_ops FOR TYPE vector USING diskann AS
	OPERATOR 1 <#> (vector, vector) FOR ORDER BY float_ops,
	FUNCTION 1 diskann_metric_ip();

-- Introspection.
CREATE FUNCTION diskann_index_info(index regclass,
	OUT format_version integer, OUT storage_layout text, OUT distance text,
	OUT column_dimensions integer, OUT indexed_dimensions integer,
	OUT num_bits_per_dimension integer, OUT num_neighbors integer,
	OUT search_list_size integer, OUT max_alpha real, OUT has_labels boolean,
	OUT nodes bigint, OUT deleted_nodes bigint, OUT pages bigint, OUT entry_point tid,
	OUT built_by text, OUT build_backend text, OUT builder_id text)
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION diskann_index_info(regclass) IS 'what the meta page of a diskann index says';

CREATE FUNCTION diskann_validate_index(index regclass) RETURNS void
	AS 'MODULE_PATHNAME' LANGUAGE C STRICT PARALLEL SAFE;
COMMENT ON FUNCTION diskann_validate_index(regclass) IS
	'checks every page and node of a diskann index; raises an error naming the first violation';

-- Labels (Filtered DiskANN): overlap of smallint[] label sets. NULL elements are ignored, an
-- empty array overlaps nothing; estimated like the built-in anyarray &&.
CREATE FUNCTION diskann_label_overlap(smallint[], smallint[]) RETURNS boolean
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION diskann_label_overlap_sel(internal, oid, internal, integer) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION diskann_label_overlap_joinsel(internal, oid, internal, smallint, internal) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE OPERATOR && (
	LEFTARG = smallint[], RIGHTARG = smallint[], FUNCTION = diskann_label_overlap,
	COMMUTATOR = &&, RESTRICT = diskann_label_overlap_sel, JOIN = diskann_label_overlap_joinsel);

-- The label column of a two-column index (embedding, labels): filtered search with &&.
CREATE OPERATOR CLASS vector_smallint_label_ops DEFAULT FOR TYPE smallint[] USING diskann AS
	OPERATOR 1 && (smallint[], smallint[]);
