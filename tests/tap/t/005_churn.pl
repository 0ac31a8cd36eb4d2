# Recall under churn (issue 5): on mnist-10k, build on half the rows, stream the other half in
# row by row, delete 30% at random, VACUUM, insert those rows again. recall@10 at default
# settings must stay within 2 points of a fresh build on the same rows, and the index may grow
# at most 10% over the fresh build's size. Also reports the single-client insert rate.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use VsTestData qw(data_prefix load_data);

my $data = data_prefix('mnist-10k');
plan skip_all => 'no mnist-10k.base.fvecs (../shared/data is not present)' unless $data;

my $node = PostgreSQL::Test::Cluster->new('churn');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '512MB'\nshared_buffers = '256MB'\nmax_wal_size = '2GB'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION vectorscale CASCADE');
my ($dims, $rows) = load_data($node, $data, queries => 100, gt => 1);
my $half = int($rows / 2);
$node->safe_psql('postgres', qq{
	CREATE TABLE t (id int, e vector($dims));
	INSERT INTO t SELECT * FROM src WHERE id < $half;
	CREATE INDEX t_idx ON t USING diskann (e vector_l2_ops);
});
my $recall_sql = q{SET enable_seqscan = off;
	SELECT round(count(*) / (10.0 * (SELECT count(*) FROM queries)), 4)
	  FROM queries qq, LATERAL (SELECT id FROM t ORDER BY e <-> qq.q LIMIT 10) s
	 WHERE s.id IN (SELECT id FROM gt WHERE gt.qid = qq.qid)};

# Stream the other half in, one row per aminsert.
my $t0 = time;
$node->safe_psql('postgres', "INSERT INTO t SELECT * FROM src WHERE id >= $half");
my $secs = time - $t0;
note sprintf('streamed %d rows in %.2f s: %.0f rows/s (one client, %d dimensions, memory_optimized)',
	$rows - $half, $secs, ($rows - $half) / $secs, $dims);

# Delete 30% at random (a fixed hash order), VACUUM, insert them again.
my $ndel = int($rows * 0.3);
$node->safe_psql('postgres', qq{
	CREATE TABLE gone AS SELECT id FROM t ORDER BY md5(id::text) LIMIT $ndel;
	DELETE FROM t WHERE id IN (SELECT id FROM gone);
});
$node->safe_psql('postgres', 'VACUUM (INDEX_CLEANUP ON) t');
$node->safe_psql('postgres', "SELECT diskann_validate_index('t_idx')");
is($node->safe_psql('postgres', "SELECT deleted_nodes FROM diskann_index_info('t_idx')"), '0', 'VACUUM freed every deleted node');
$node->safe_psql('postgres', 'INSERT INTO t SELECT * FROM src WHERE id IN (SELECT id FROM gone)');
$node->safe_psql('postgres', "SELECT diskann_validate_index('t_idx')");
is($node->safe_psql('postgres', 'SELECT count(*) FROM t'), $rows, 'every row is back');

my $churn_recall = $node->safe_psql('postgres', $recall_sql);
my $churn_size = $node->safe_psql('postgres', "SELECT pg_relation_size('t_idx')");
my $slots = $node->safe_psql('postgres', "SELECT nodes FROM diskann_index_info('t_idx')");

$node->safe_psql('postgres', 'DROP INDEX t_idx; CREATE INDEX t_fresh ON t USING diskann (e vector_l2_ops)');
my $fresh_recall = $node->safe_psql('postgres', $recall_sql);
my $fresh_size = $node->safe_psql('postgres', "SELECT pg_relation_size('t_fresh')");
note "recall\@10: after churn $churn_recall, fresh build $fresh_recall";
note sprintf('index size: after churn %d bytes (%d slots), fresh %d bytes (%.3fx)', $churn_size, $slots,
	$fresh_size, $churn_size / $fresh_size);
cmp_ok($churn_recall, '>=', $fresh_recall - 0.02, 'recall after churn within 2 points of a fresh build');
cmp_ok($churn_size, '<=', 1.10 * $fresh_size, 'the index grew at most 10% over a fresh build');
is($slots, $rows, 'freed slots were reused: one slot per row');

unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no backend crashed');
$node->stop;
done_testing();
