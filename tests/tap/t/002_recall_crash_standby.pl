# On real data (../shared/data/mnist-10k): recall@10 through the index for memory_optimized
# and plain storage, the planner choosing the index on its own, the build's WAL replayed by a
# physical standby (same answers there), and crash recovery (immediate stop) for logged and
# UNLOGGED indexes. Skips, saying why, when the data set is absent.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VsTestData qw(data_prefix load_data);

my $data = data_prefix('mnist-10k');
plan skip_all => 'no mnist-10k.base.fvecs (../shared/data is not present)' unless $data;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "maintenance_work_mem = '512MB'\nshared_buffers = '256MB'");
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION vectorscale CASCADE');
my ($dims, $rows) = load_data($primary, $data, queries => 100, gt => 1);
$primary->safe_psql('postgres', qq{
	ALTER TABLE src RENAME TO t;
	CREATE UNLOGGED TABLE u AS SELECT * FROM t WHERE id < 2000;
	ANALYZE t;
});
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;

# recall@10 over the queries, through whatever plan the node chooses with seqscans off
my $recall_sql = q{
	SET enable_seqscan = off;
	SELECT round(count(*) / (10.0 * (SELECT count(*) FROM queries)), 4)
	  FROM queries qq, LATERAL (SELECT id FROM t ORDER BY e <-> qq.q LIMIT 10) s
	 WHERE s.id IN (SELECT id FROM gt WHERE gt.qid = qq.qid);
};

$primary->safe_psql('postgres', 'CREATE INDEX t_sbq ON t USING diskann (e vector_l2_ops)');
my $plan = $primary->safe_psql('postgres',
	"EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY e <-> (SELECT q FROM queries WHERE qid = 0) LIMIT 10");
like($plan, qr/Index Scan using t_sbq/, 'the planner uses the index for ORDER BY ... LIMIT on its own');
my $sbq = $primary->safe_psql('postgres', $recall_sql);
note "memory_optimized recall\@10 = $sbq";
cmp_ok($sbq, '>=', 0.95, 'memory_optimized recall@10 >= 0.95 at default settings');

$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres', $recall_sql), $sbq, 'the standby answers the same after replaying the build');
$standby->safe_psql('postgres', "SELECT diskann_validate_index('t_sbq')");
is($standby->safe_psql('postgres', "SELECT nodes FROM diskann_index_info('t_sbq')"), $rows,
	'the standby has every node');

$primary->safe_psql('postgres', 'DROP INDEX t_sbq; CREATE INDEX t_plain ON t USING diskann (e vector_l2_ops) WITH (storage_layout = plain)');
my $plain = $primary->safe_psql('postgres', $recall_sql);
note "plain recall\@10 = $plain";
cmp_ok($plain, '>=', 0.97, 'plain recall@10 >= 0.97 at default settings');
$primary->safe_psql('postgres', 'CREATE INDEX u_idx ON u USING diskann (e vector_l2_ops)');

# Crash: the logged index survives intact, the UNLOGGED one comes back empty from its init fork.
$primary->stop('immediate');
$primary->start;
$primary->safe_psql('postgres', "SELECT diskann_validate_index('t_plain')");
is($primary->safe_psql('postgres', $recall_sql), $plain, 'same answers after crash recovery');
is($primary->safe_psql('postgres', "SELECT count(*) FROM u"), '0', 'the unlogged table is empty after a crash');
$primary->safe_psql('postgres', "SELECT diskann_validate_index('u_idx')");
is($primary->safe_psql('postgres', "SELECT nodes, entry_point IS NULL FROM diskann_index_info('u_idx')"), '0|t',
	'the unlogged index is reset to an empty index');
is($primary->safe_psql('postgres', "SET enable_seqscan = off; SELECT count(*) FROM (SELECT id FROM u ORDER BY e <-> (SELECT q FROM queries LIMIT 1)) s"),
	'0', 'and answers queries');

for my $node ($primary, $standby)
{
	unlike(slurp_file($node->logfile), qr/terminated by signal|was terminated by/, $node->name . ': no backend crashed');
}
$standby->stop;
$primary->stop;
done_testing();
