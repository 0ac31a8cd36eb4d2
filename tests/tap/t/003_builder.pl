# CREATE INDEX through gpu_builder (CPU backend, loopback): remote build equals local build,
# provenance, fallback with a NOTICE (or an error) for every way the builder can fail, tokens,
# two builds at once, 4096 dimensions, cancel during a remote build. Every scenario ends in a
# valid index or a clean error, and no backend crashes.
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use VsBuilder qw(builder_path builder_has_faults start_builder stop_builder stop_all_builders builder_test_node);

plan skip_all => 'gpu_builder was not built (needs gRPC; VS_GPU_BUILDER unset)' unless builder_path();
my $has_faults = builder_has_faults();

my $dir = PostgreSQL::Test::Utils::tempdir;

my $node = builder_test_node(3000, 2);
$node->safe_psql('postgres', q{
	CREATE EXTENSION pageinspect;
	INSERT INTO t VALUES (0, NULL);
	CREATE TABLE tl AS SELECT id, e, CASE WHEN id % 11 = 0 THEN NULL
	                                      ELSE ARRAY[(id % 5)::smallint, (10 + id % 3)::smallint] END AS labels FROM t;
	CREATE TABLE q AS SELECT id AS qid, e AS q FROM t WHERE id % 150 = 11;
	SET enable_indexscan = off;
	CREATE TABLE exact AS SELECT qid, s.id FROM q, LATERAL (SELECT id FROM t ORDER BY e <=> q.q LIMIT 10) s;
});
my $recall_sql = q{SET enable_seqscan = off;
	SELECT round(count(*) / (10.0 * (SELECT count(*) FROM q)), 3) FROM q,
	  LATERAL (SELECT id FROM t ORDER BY e <=> q.q LIMIT 10) s
	 WHERE s.id IN (SELECT id FROM exact WHERE exact.qid = q.qid)};

# Runs CREATE INDEX name through the builder at port with extra settings; returns (rc, stderr).
sub build_via
{
	my ($port, $name, $settings, $table, $columns) = @_;
	$table //= 't';
	$columns //= '(e)';
	my ($rc, $out, $err) = $node->psql('postgres',
		"SET diskann.builder_endpoint = '127.0.0.1:$port'; $settings; CREATE INDEX $name ON $table USING diskann $columns");
	return ($rc, $err);
}

# Changes server settings and reloads (the module must be loaded to know its settings).
sub set_system
{
	$node->safe_psql('postgres', "LOAD 'vectorscale'; $_") for @_;
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	usleep(300_000);
}

sub built_by
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT built_by || '/' || build_backend FROM diskann_index_info('$name')");
}

# 1. Remote equals local: one thread and the same seed give the same pages (the meta page
#    differs only in who built it).
my $b1 = start_builder('--threads', '1');
my ($rc, $err) = build_via($b1->[1], 't_remote', 'SET diskann.build_threads = 1');
is($rc, 0, 'remote build succeeds');
is($err, '', 'no NOTICE: no fallback happened');
is(built_by('t_remote'), 'builder/cpu', 'diskann_index_info says the builder built it');
like($node->safe_psql('postgres', "SELECT builder_id FROM diskann_index_info('t_remote')"), qr/^gpu_builder/,
	'the builder id is recorded');
$node->safe_psql('postgres', "SELECT diskann_validate_index('t_remote')");
$node->safe_psql('postgres', 'SET diskann.build_threads = 1; CREATE INDEX t_local ON t USING diskann (e)');
is(built_by('t_local'), 'local/cpu', 'the local build says local');
is($node->safe_psql('postgres', q{
	SELECT (SELECT pages FROM diskann_index_info('t_local')) = (SELECT pages FROM diskann_index_info('t_remote'))
	   AND (SELECT count(*) FROM generate_series(1, (SELECT pages - 1 FROM diskann_index_info('t_local'))) b
	         WHERE substring(get_raw_page('t_local', b::int) FROM 11) <> substring(get_raw_page('t_remote', b::int) FROM 11)) = 0
	   AND substring(get_raw_page('t_local', 0) FROM 25 FOR 104) = substring(get_raw_page('t_remote', 0) FROM 25 FOR 104)}),
	't', 'every node and quantizer page is byte-identical, and the meta options too');
my $local_recall = $node->safe_psql('postgres', "DROP INDEX t_remote; $recall_sql");
$node->safe_psql('postgres', 'DROP INDEX t_local');

# 1b. A labeled index goes through the builder with its labels: the same pages as the local
#     build, and filtered queries work.
($rc, $err) = build_via($b1->[1], 'tl_remote', 'SET diskann.build_threads = 1', 'tl', '(e, labels)');
is($rc, 0, 'labeled remote build succeeds');
is($err, '', 'labeled remote build: no fallback');
is(built_by('tl_remote'), 'builder/cpu', 'labeled remote build: built by the builder');
$node->safe_psql('postgres', 'SET diskann.build_threads = 1; CREATE INDEX tl_local ON tl USING diskann (e, labels)');
is($node->safe_psql('postgres', q{
	SELECT (SELECT pages FROM diskann_index_info('tl_local')) = (SELECT pages FROM diskann_index_info('tl_remote'))
	   AND (SELECT has_labels FROM diskann_index_info('tl_remote'))
	   AND (SELECT count(*) FROM generate_series(1, (SELECT pages - 1 FROM diskann_index_info('tl_local'))) b
	         WHERE substring(get_raw_page('tl_local', b::int) FROM 11) <> substring(get_raw_page('tl_remote', b::int) FROM 11)) = 0
	   AND substring(get_raw_page('tl_local', 0) FROM 25 FOR 104) = substring(get_raw_page('tl_remote', 0) FROM 25 FOR 104)
	   AND substring(get_raw_page('tl_local', 0) FROM 217) = substring(get_raw_page('tl_remote', 0) FROM 217)}),
	't', 'labeled: every node page, the label starts and the meta options are byte-identical');
$node->safe_psql('postgres', 'DROP INDEX tl_local');
is($node->safe_psql('postgres', q{SET enable_seqscan = off;
	SELECT count(*) FROM (SELECT id FROM tl WHERE labels && '{11}' ORDER BY e <=> (SELECT e FROM t WHERE id = 5) LIMIT 5000) s}),
	$node->safe_psql('postgres', q{SELECT count(*) FROM tl WHERE labels && '{11}'}),
	'labeled remote index: a filtered scan returns every matching row');
$node->safe_psql('postgres', 'DROP INDEX tl_remote');

# 2. Many threads: same recall as a local build.
($rc, $err) = build_via($b1->[1], 't_remote2', 'SET diskann.build_threads = 2');
is($rc, 0, 'multi-threaded remote build succeeds');
my $remote_recall = $node->safe_psql('postgres', $recall_sql);
note "recall\@10 local $local_recall, remote (2 threads) $remote_recall";
cmp_ok($remote_recall, '>=', $local_recall - 0.03, 'remote recall matches local recall');
$node->safe_psql('postgres', 'DROP INDEX t_remote2');

# 3. Builder down: NOTICE and a local build; with fallback off, an error and no index.
my $down = $b1->[1];
stop_builder($b1);
($rc, $err) = build_via($down, 't_down', 'SELECT 1');
is($rc, 0, 'builder down: the build still succeeds');
like($err, qr/NOTICE:  diskann build through builder "127\.0\.0\.1:$down" failed: .*\n.*Building the index locally instead/,
	'builder down: NOTICE with the reason');
is(built_by('t_down'), 'local/cpu', 'builder down: built locally');
$node->safe_psql('postgres', 'DROP INDEX t_down');
($rc, $err) = build_via($down, 't_down', 'SET diskann.builder_fallback = off');
isnt($rc, 0, 'fallback off: the build fails');
like($err, qr/ERROR:  diskann build through builder .* failed/, 'fallback off: the error says why');
is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 't_down'"), '0', 'fallback off: no index');

# 4. Faults injected into the builder (test builds only): each falls back with its reason.
SKIP:
{
	skip 'gpu_builder was built without fault injection (VS_FAILURE_POINTS=OFF)', 27 unless $has_faults;
	my %faults = (
		'corrupt-page' => qr/invalid index returned/,
		'bad-crc' => qr/fails its CRC-32C check/,
		'wrong-tid' => qr/invalid index returned/,
		'truncate' => qr/without a summary|ended/,
		'die-after-pages=1' => qr/failed: /,
		'fail=13' => qr/INTERNAL/);
	for my $fault (sort keys %faults)
	{
		my $b = start_builder('--fault', $fault);
		my ($frc, $ferr) = build_via($b->[1], 't_fault', 'SELECT 1');
		is($frc, 0, "$fault: the build succeeds");
		like($ferr, $faults{$fault}, "$fault: the NOTICE names the problem");
		is(built_by('t_fault'), 'local/cpu', "$fault: built locally");
		$node->safe_psql('postgres', "SELECT diskann_validate_index('t_fault'); DROP INDEX t_fault");
		stop_builder($b);
	}

	# A builder that gives a node a label its row does not have.
	my $wl = start_builder('--fault', 'wrong-labels');
	my ($wrc, $werr) = build_via($wl->[1], 'tl_fault', 'SELECT 1', 'tl', '(e, labels)');
	is($wrc, 0, 'wrong-labels: the build succeeds');
	like($werr, qr/invalid index returned: block \d+ record \d+ does not carry the labels of its row/,
		'wrong-labels: the NOTICE names the node');
	is(built_by('tl_fault'), 'local/cpu', 'wrong-labels: built locally');
	$node->safe_psql('postgres', "SELECT diskann_validate_index('tl_fault'); DROP INDEX tl_fault");
	stop_builder($wl);

	# Slower than the deadline.
	my $slow = start_builder('--fault', 'slow=20');
	my $t0 = time;
	my ($srv, $serr) = build_via($slow->[1], 't_slow', 'SET diskann.builder_timeout = 2');
	my $elapsed = time - $t0;
	is($srv, 0, 'deadline: the build succeeds locally');
	like($serr, qr/DEADLINE_EXCEEDED/, 'deadline: the NOTICE says the deadline passed');
	cmp_ok($elapsed, '<', 10, 'deadline: the client did not wait for the slow builder');
	$node->safe_psql('postgres', 'DROP INDEX t_slow');

	# Cancel during a remote build stops within a second.
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_until(qr/started/,
		"SET diskann.builder_endpoint = '127.0.0.1:$slow->[1]';\n\\echo started\nCREATE INDEX t_cancel ON t USING diskann (e);\n\\echo done\n");
	$node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_progress_create_index WHERE pid = $pid AND tuples_done > 0 OR pid = $pid AND phase <> 'initializing'");
	usleep(300_000);
	$t0 = time;
	$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
	$node->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid AND state = 'active'");
	my $cancel = time - $t0;
	note sprintf('cancel of a remote build took %.3f s', $cancel);
	cmp_ok($cancel, '<', 1.0, 'cancel: a remote build stops within a second');
	$bg->query_until(qr/done/, '');
	$bg->quit;
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_class WHERE relname = 't_cancel'"), '0', 'cancel: no index');
	stop_builder($slow);
	my $log = ${ $slow->[2] };
	like($log, qr/CANCELLED|cancel/i, 'cancel: the builder logged the cancelled build');
}

# 5. Tokens: a wrong token is refused (fallback), the right one works.
open my $tf, '>', "$dir/token" or die;
print $tf "s3cret-token\n";
close $tf;
open my $wf, '>', "$dir/wrong" or die;
print $wf "nope\n";
close $wf;
chmod 0644, "$dir/token", "$dir/wrong";
my $b2 = start_builder('--token-file', "$dir/token", '--max-concurrent-builds', '1');
set_system("ALTER SYSTEM SET diskann.builder_token_file = '$dir/wrong'");
($rc, $err) = build_via($b2->[1], 't_tok', 'SELECT 1');
like($err, qr/UNAUTHENTICATED/, 'wrong token: refused, with the reason');
is(built_by('t_tok'), 'local/cpu', 'wrong token: built locally');
$node->safe_psql('postgres', 'DROP INDEX t_tok');
set_system("ALTER SYSTEM SET diskann.builder_token_file = '$dir/token'");
($rc, $err) = build_via($b2->[1], 't_tok', 'SELECT 1');
is($err, '', 'right token: no fallback');
is(built_by('t_tok'), 'builder/cpu', 'right token: built by the builder');
$node->safe_psql('postgres', 'DROP INDEX t_tok');

# 5b. TLS: the builder serves a certificate for 127.0.0.1 signed by a test CA; with
#     diskann.builder_tls_ca the build goes through, without it (plaintext) it falls back.
open my $ext, '>', "$dir/san.ext" or die;
print $ext "subjectAltName=IP:127.0.0.1\n";
close $ext;
system("openssl req -x509 -newkey rsa:2048 -nodes -keyout $dir/ca.key -out $dir/ca.pem -days 2 -subj '/CN=vectorscale test CA' 2>/dev/null") == 0
  or die 'openssl: CA';
system("openssl req -newkey rsa:2048 -nodes -keyout $dir/server.key -out $dir/server.csr -subj '/CN=127.0.0.1' 2>/dev/null") == 0
  or die 'openssl: CSR';
system("openssl x509 -req -in $dir/server.csr -CA $dir/ca.pem -CAkey $dir/ca.key -CAcreateserial -out $dir/server.pem -days 2 -extfile $dir/san.ext 2>/dev/null") == 0
  or die 'openssl: certificate';
chmod 0644, "$dir/ca.pem", "$dir/server.pem", "$dir/server.key";
my $tls = start_builder('--tls-cert', "$dir/server.pem", '--tls-key', "$dir/server.key");
set_system('ALTER SYSTEM RESET diskann.builder_token_file', "ALTER SYSTEM SET diskann.builder_tls_ca = '$dir/ca.pem'");
($rc, $err) = build_via($tls->[1], 't_tls', 'SELECT 1');
is($err, '', 'TLS: no fallback with the CA configured');
is(built_by('t_tls'), 'builder/cpu', 'TLS: built by the builder');
$node->safe_psql('postgres', 'DROP INDEX t_tls');
set_system('ALTER SYSTEM RESET diskann.builder_tls_ca');
($rc, $err) = build_via($tls->[1], 't_tls', 'SELECT 1');
like($err, qr/NOTICE:  diskann build through builder/, 'TLS: a plaintext client is refused and falls back');
is(built_by('t_tls'), 'local/cpu', 'TLS: built locally');
$node->safe_psql('postgres', 'DROP INDEX t_tls');
stop_builder($tls);
set_system("ALTER SYSTEM SET diskann.builder_token_file = '$dir/token'");

# 6. Two builds at once (the builder runs one and queues the other).
$node->safe_psql('postgres', 'CREATE TABLE t2 AS SELECT * FROM t');
my @bgs;
for my $tab ('t', 't2')
{
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	$bg->query_until(qr/started/,
		"SET diskann.builder_endpoint = '127.0.0.1:$b2->[1]';\n\\echo started\nCREATE INDEX ${tab}_both ON $tab USING diskann (e);\n\\echo done\n");
	push @bgs, $bg;
}
$_->query_until(qr/done/, '') for @bgs;
$_->quit for @bgs;
is(built_by('t_both') . ' ' . built_by('t2_both'), 'builder/cpu builder/cpu', 'two concurrent builds both went through the builder');
$node->safe_psql('postgres', "SELECT diskann_validate_index('t_both'); SELECT diskann_validate_index('t2_both')");

# 7. 4096 dimensions (generated), memory_optimized with 1 bit.
$node->safe_psql('postgres', q{
	CREATE TABLE wide (id int, e vector(4096));
	INSERT INTO wide SELECT i, ARRAY(SELECT random() FROM generate_series(1, 4096) WHERE i > 0)::vector(4096)
	  FROM generate_series(1, 300) i;
});
($rc, $err) = build_via($b2->[1], 'wide_idx', 'SELECT 1', 'wide');
is($err, '', '4096 dims: no fallback');
is($node->safe_psql('postgres', "SELECT built_by, indexed_dimensions, num_bits_per_dimension, nodes FROM diskann_index_info('wide_idx')"),
	'builder|4096|1|300', '4096 dims: built by the builder with 1 bit per dimension');
$node->safe_psql('postgres', "SELECT diskann_validate_index('wide_idx')");
is($node->safe_psql('postgres', "SET enable_seqscan = off; SELECT id FROM wide ORDER BY e <=> (SELECT e FROM wide WHERE id = 42) LIMIT 1"),
	'42', '4096 dims: a row finds itself');

stop_all_builders();
unlike(slurp_file($node->logfile), qr/terminated by signal|was terminated by/, 'no backend crashed');
$node->stop;
done_testing();
