# CREATE INDEX ... USING diskann: progress in pg_stat_progress_create_index through every
# phase, pg_cancel_backend stopping a build within a second, and the bounded-memory build.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '1GB'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION vectorscale CASCADE');
$node->safe_psql('postgres', q{
	SELECT setseed(0.1);
	CREATE TABLE t (id int, e vector(32));
	INSERT INTO t SELECT i, ARRAY(SELECT random() FROM generate_series(1, 32) WHERE i > 0)::vector(32)
	  FROM generate_series(1, 60000) i;
	ANALYZE t;
});

# Samples the progress view of pid until its CREATE INDEX ends; returns the rows seen.
sub sample_progress
{
	my ($pid, $stop_at_phase) = @_;
	my @rows;
	my $deadline = time + 300;
	while (time < $deadline)
	{
		my $row = $node->safe_psql('postgres',
			"SELECT phase, tuples_total, tuples_done FROM pg_stat_progress_create_index WHERE pid = $pid");
		last if $row eq '' && @rows;
		if ($row ne '')
		{
			push @rows, $row;
			return @rows if defined $stop_at_phase && $row =~ /^\Q$stop_at_phase\E\|/;
		}
		usleep(20_000);
	}
	return @rows;
}

# 1. A full build: every phase shows up with tuple counts.
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
$bg->query_until(qr/started/, "\\echo started\nCREATE INDEX t_idx ON t USING diskann (e);\n\\echo done\n");
my @rows = sample_progress($pid);
$bg->query_until(qr/done/, '');
my %phases;
for my $r (@rows)
{
	my ($phase, $total, $done) = split /\|/, $r;
	$phases{$phase} //= [];
	push @{ $phases{$phase} }, [ $total, $done ];
}
note "phases seen: " . join(', ', map { "$_ (" . scalar(@{ $phases{$_} }) . ")" } sort keys %phases);
ok(exists $phases{'building index: building graph'}, 'progress shows the graph phase');
my @graph = @{ $phases{'building index: building graph'} // [] };
ok(@graph >= 2, 'the graph phase is sampled more than once');
ok((grep { $_->[0] == 60000 } @graph) > 0, 'graph phase reports 60000 tuples in total');
my @done = map { $_->[1] } @graph;
ok((grep { $done[$_] < $done[ $_ - 1 ] } 1 .. $#done) == 0, 'tuples done never go back within a phase');
ok($done[-1] > $done[0], 'tuples done advance during the graph phase');
is($node->safe_psql('postgres', "SELECT nodes FROM diskann_index_info('t_idx')"), '60000', 'all rows indexed');
$node->safe_psql('postgres', "SELECT diskann_validate_index('t_idx')");
$node->safe_psql('postgres', 'DROP INDEX t_idx');

# 2. pg_cancel_backend during the graph phase ends the build within a second.
$bg->query_until(qr/started/, "\\echo started\nCREATE INDEX t_idx ON t USING diskann (e);\n\\echo done\n");
sample_progress($pid, 'building index: building graph');
my $t0 = time;
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
$node->poll_query_until('postgres',
	"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid AND state = 'active'")
  or die 'build did not stop';
my $elapsed = time - $t0;
note sprintf('cancel took %.3f s', $elapsed);
cmp_ok($elapsed, '<', 1.0, 'a cancelled build stops within a second');
$bg->query_until(qr/done/, '');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 't_idx'"), '0',
	'no index is left behind');

# 3. A build that does not fit maintenance_work_mem switches to the bounded-memory path (rows
# inserted into pages one by one), says so, and gives an index of the same quality.
$node->safe_psql('postgres', q{
	CREATE TABLE small (id int, e vector(64));
	INSERT INTO small SELECT i, ARRAY(SELECT random() + (i % 10) * 0.1 FROM generate_series(1, 64) WHERE i > 0)::vector(64)
	  FROM generate_series(1, 4000) i;
	CREATE TABLE q AS SELECT id AS qid, e AS q FROM small WHERE id % 80 = 7;
	SET enable_indexscan = off;
	CREATE TABLE exact AS SELECT qid, s.id FROM q, LATERAL (SELECT id FROM small ORDER BY e <-> q.q LIMIT 10) s;
});
my $recall_sql = q{SET enable_seqscan = off;
	SELECT count(*) / (10.0 * (SELECT count(*) FROM q)) FROM q, LATERAL (SELECT id FROM small ORDER BY e <-> q.q LIMIT 10) s
	 WHERE s.id IN (SELECT id FROM exact WHERE exact.qid = q.qid)};
my %recall;
for my $storage ('plain', 'memory_optimized')
{
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET maintenance_work_mem = '1MB'; CREATE INDEX small_idx ON small USING diskann (e vector_l2_ops) WITH (storage_layout = $storage)");
	is($rc, 0, "$storage: an over-budget build succeeds");
	like($err, qr/NOTICE:  diskann index "small_idx" does not fit in maintenance_work_mem; building it with bounded memory/,
		"$storage: the NOTICE says the build is bounded");
	$node->safe_psql('postgres', "SELECT diskann_validate_index('small_idx')");
	is($node->safe_psql('postgres', "SELECT nodes FROM diskann_index_info('small_idx')"), '4000', "$storage: every row indexed");
	my $bounded = $node->safe_psql('postgres', $recall_sql);
	$node->safe_psql('postgres', 'DROP INDEX small_idx');
	$node->safe_psql('postgres', "CREATE INDEX small_idx ON small USING diskann (e vector_l2_ops) WITH (storage_layout = $storage)");
	my $in_memory = $node->safe_psql('postgres', $recall_sql);
	$node->safe_psql('postgres', 'DROP INDEX small_idx');
	note "$storage recall\@10: bounded $bounded, in memory $in_memory";
	cmp_ok($bounded, '>=', $in_memory - 0.03, "$storage: the bounded build's recall matches the in-memory build's");
	$recall{$storage} = $bounded;
}
cmp_ok($recall{plain}, '>=', 0.95, 'plain bounded build: recall@10 >= 0.95');

# The session still works and the server never restarted.
my $one = $bg->query('SELECT 1');
is($one, '1', 'the cancelled session carries on');
$bg->quit;
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|server process .* was terminated/, 'no backend crashed');
$node->stop;
done_testing();
