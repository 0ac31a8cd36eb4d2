# CREATE INDEX through gpu_builder's CUDA backend, end to end, with its kernels run on the CUDA
# emulator (gpu_builder_emu, so it runs where no GPU is): the extension streams the rows, the
# CUDA backend trains SBQ, encodes and builds the graph with the device pipeline, the extension
# validates every page and writes the index. For every metric and both storages: no fallback
# (builder_fallback off), diskann_index_info says builder/cuda, diskann_validate_index passes,
# and recall@10 is within 0.03 of the local build's (and at least 0.9 with plain storage).
# Labelled builds go to the CPU backend.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use VsBuilder qw(start_builder builder_log stop_all_builders builder_test_node);

my $emu = $ENV{VS_GPU_BUILDER_EMU} // '';
plan skip_all => 'gpu_builder_emu was not built (it needs gRPC, the CUDA toolkit\'s headers and '
  . 'libboost-context-dev; VS_GPU_BUILDER_EMU unset)'
  unless $emu && -x $emu;
$ENV{VS_GPU_BUILDER} = $emu;    # start_builder runs it

my $node = builder_test_node(1500, 5);
$node->safe_psql('postgres', q{
	CREATE TABLE tl AS SELECT id, e, ARRAY[(id % 4)::smallint] AS labels FROM t;
	CREATE TABLE q AS SELECT id AS qid, e AS q FROM t WHERE id % 50 = 7;
});

my $b = start_builder('--backend', 'cuda');
like(builder_log($b), qr/backend cuda \(.*CUDA emulator/, 'the builder runs its CUDA backend on the emulator');

# recall@10 of the index on t over the queries, against an exact scan with the same operator.
sub recall
{
	my ($op) = @_;
	return $node->safe_psql('postgres', qq{
		SET enable_indexscan = off;
		CREATE TEMP TABLE exact AS SELECT qid, s.id FROM q, LATERAL (SELECT id FROM t ORDER BY e $op q.q LIMIT 10) s;
		SET enable_indexscan = on; SET enable_seqscan = off;
		SELECT round(count(*) / (10.0 * (SELECT count(*) FROM q)), 3) FROM q,
		  LATERAL (SELECT id FROM t ORDER BY e $op q.q LIMIT 10) s
		 WHERE s.id IN (SELECT id FROM exact WHERE exact.qid = q.qid);
		DROP TABLE exact;});
}

sub built_by
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT built_by || '/' || build_backend FROM diskann_index_info('$name')");
}

my @cases = (
	[ 'vector_cosine_ops', '<=>', "storage_layout = 'memory_optimized'" ],
	[ 'vector_cosine_ops', '<=>', "storage_layout = 'plain', num_neighbors = 32, search_list_size = 64" ],
	[ 'vector_l2_ops', '<->', "storage_layout = 'plain', num_neighbors = 32, search_list_size = 64" ],
	[ 'vector_ip_ops', '<#>', "storage_layout = 'memory_optimized', num_neighbors = 32, search_list_size = 64" ],
);
for my $c (@cases)
{
	my ($ops, $op, $with) = @$c;
	my $what = "$ops ($with)";
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET diskann.builder_endpoint = '127.0.0.1:$b->[1]'; SET diskann.builder_fallback = off; "
		  . "CREATE INDEX remote ON t USING diskann (e $ops) WITH ($with)");
	is($rc, 0, "$what: built through the builder");
	is($err, '', "$what: no NOTICE, no fallback");
	is(built_by('remote'), 'builder/cuda', "$what: diskann_index_info says builder/cuda");
	is($node->psql('postgres', "SELECT diskann_validate_index('remote')"), 0, "$what: the index validates");
	my $remote = recall($op);
	$node->safe_psql('postgres', "DROP INDEX remote; CREATE INDEX local ON t USING diskann (e $ops) WITH ($with)");
	is(built_by('local'), 'local/cpu', "$what: the local build");
	my $local = recall($op);
	$node->safe_psql('postgres', 'DROP INDEX local');
	cmp_ok($remote, '>=', $local - 0.03, "$what: recall\@10 $remote through the CUDA backend, $local locally");
	# SBQ at 32 dimensions ranks poorly whoever builds (the comparison above is what counts).
	cmp_ok($remote, '>=', 0.9, "$what: recall\@10 $remote") if $with =~ /plain/;
}

# Labelled indexes: the CUDA backend hands them to its CPU backend, and says so.
my ($rc, $out, $err) = $node->psql('postgres',
	"SET diskann.builder_endpoint = '127.0.0.1:$b->[1]'; SET diskann.builder_fallback = off; "
	  . 'CREATE INDEX labelled ON tl USING diskann (e, labels)');
is($rc, 0, 'labelled index built through the builder');
is(built_by('labelled'), 'builder/cpu', 'labelled builds run on the CPU backend');
is($node->psql('postgres', "SELECT diskann_validate_index('labelled')"), 0, 'the labelled index validates');

stop_all_builders();
my $log = builder_log($b);
is(() = $log =~ /backend=cuda/g, 4, 'the builder logged four CUDA builds') or diag($log);
unlike(slurp_file($node->logfile), qr/server process .* was terminated/, 'no backend crashed');
$node->stop;
done_testing();
