-- Index options: defaults, ranges and every rejection, all before any work is done.
CREATE TABLE opt (id int, e vector(3));
INSERT INTO opt VALUES (1, '[1,2,3]'), (2, '[3,2,1]'), (3, '[1,1,1]');
CREATE INDEX opt_default ON opt USING diskann (e);
SELECT storage_layout, distance, num_neighbors, search_list_size, max_alpha,
       num_bits_per_dimension, indexed_dimensions FROM diskann_index_info('opt_default');
CREATE INDEX opt_custom ON opt USING diskann (e vector_l2_ops)
  WITH (storage_layout = plain, num_neighbors = 40, search_list_size = 18, max_alpha = 1.4, num_dimensions = 2);
SELECT storage_layout, distance, num_neighbors, search_list_size, max_alpha,
       num_bits_per_dimension, column_dimensions, indexed_dimensions FROM diskann_index_info('opt_custom');
CREATE INDEX opt_bits ON opt USING diskann (e vector_ip_ops) WITH (num_bits_per_dimension = 1, num_neighbors = -1);
SELECT storage_layout, distance, num_neighbors, num_bits_per_dimension FROM diskann_index_info('opt_bits');
-- rejections
SELECT try($$CREATE INDEX ON opt USING diskann (e) WITH (num_neighbors = 9)$$);
SELECT try($$CREATE INDEX ON opt USING diskann (e) WITH (num_neighbors = 1001)$$);
SELECT try($$CREATE INDEX ON opt USING diskann (e) WITH (search_list_size = 9)$$);
SELECT try($$CREATE INDEX ON opt USING diskann (e) WITH (max_alpha = 0.9)$$);
SELECT try($$CREATE INDEX ON opt USING diskann (e) WITH (storage_layout = 'io_optimized')$$);
SELECT try($$CREATE INDEX ON opt USING diskann (e) WITH (num_bits_per_dimension = 9)$$);
SELECT try($$CREATE INDEX ON opt USING diskann (e) WITH (num_dimensions = 4)$$);
SELECT try($$CREATE INDEX ON opt USING diskann (e) WITH (storage_layout = plain, num_bits_per_dimension = 2)$$);
SELECT try($$CREATE INDEX ON opt USING diskann (e vector_ip_ops) WITH (storage_layout = plain)$$);
SELECT try($$CREATE INDEX ON opt USING diskann (e) WITH (unknown_option = 1)$$);
SELECT try($$CREATE INDEX ON opt USING diskann (id)$$);
SELECT try($$CREATE INDEX ON opt USING diskann (e, id)$$);
CREATE TABLE nodims (e vector);
SELECT try($$CREATE INDEX ON nodims USING diskann (e)$$);
-- a plain node must fit a page: the limit is computed, not hard-coded
CREATE TABLE wide (e vector(2000));
SELECT try($$CREATE INDEX ON wide USING diskann (e) WITH (storage_layout = plain)$$);
CREATE INDEX wide_small_r ON wide USING diskann (e) WITH (storage_layout = plain, num_neighbors = 10);
CREATE INDEX wide_prefix ON wide USING diskann (e) WITH (storage_layout = plain, num_dimensions = 1000);
CREATE INDEX wide_sbq ON wide USING diskann (e);
SELECT indexed_dimensions, num_bits_per_dimension FROM diskann_index_info('wide_sbq');
-- GUC ranges
SELECT try($$SET diskann.query_search_list_size = 0$$);
SELECT try($$SET diskann.query_search_list_size = 10001$$);
SELECT try($$SET diskann.query_rescore = -1$$);
SELECT try($$SET diskann.query_rescore = 1001$$);
SET diskann.query_search_list_size = 10000;
SET diskann.query_rescore = 0;
RESET ALL;
SELECT try($$SET diskann.no_such_setting = 1$$);
-- functions reject what is not a diskann index
SELECT try($$SELECT diskann_index_info('opt')$$);
SELECT try($$SELECT diskann_validate_index('opt')$$);
CREATE INDEX opt_btree ON opt (id);
SELECT try($$SELECT diskann_validate_index('opt_btree')$$);
DROP TABLE opt, nodims, wide;
