# CREATE INDEX through a fleet of gpu_builders (CPU backend, loopback) named by one gRPC target:
# builds spread round robin over the builders; a builder killed before it sends pages is replaced
# by another one (one retry, no fallback); when the retry fails too, or every builder is down, or
# the builder answers with an error or dies after sending pages, the build falls back locally with
# a NOTICE (and only a builder that went away before sending pages is retried).
use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use VsBuilder qw(builder_path builder_has_faults start_builder builder_log kill_builder stop_all_builders
  builder_test_node);

plan skip_all => 'gpu_builder was not built (needs gRPC; VS_GPU_BUILDER unset)' unless builder_path();
my $has_faults = builder_has_faults();

my $node = builder_test_node(3000, 2);

# The gRPC target of these builders: ipv4:127.0.0.1:P1,127.0.0.1:P2,...
sub fleet
{
	return 'ipv4:' . join(',', map { "127.0.0.1:$_->[1]" } @_);
}

sub built_by
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT built_by || '/' || build_backend FROM diskann_index_info('$name')");
}

# Number of successful builds of index $name (a regex) in the builder's log, waiting up to 30 s
# for at least $want of them.
sub builds_logged
{
	my ($b, $name, $want) = @_;
	my $deadline = time + 30;
	my $n;
	while (1)
	{
		$n = () = builder_log($b) =~ /build client="postgres pid \d+ index $name" .*result=ok/g;
		last if $n >= $want || time > $deadline;
		usleep(50_000);
	}
	return $n;
}

# Starts CREATE INDEX name in a background session with settings; returns (session, pid).
sub start_build
{
	my ($name, $settings) = @_;
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_until(qr/started/, "$settings\n\\echo started\nCREATE INDEX $name ON t USING diskann (e);\n\\echo done\n");
	return ($bg, $pid);
}

# Waits until the build in backend pid has streamed every row and the builder has them all:
# then the builder works (or, with the slow fault, sleeps) and has sent no page yet.
sub wait_rows_sent
{
	my ($pid) = @_;
	$node->poll_query_until('postgres',
		"SELECT tuples_done >= 3000 FROM pg_stat_progress_create_index WHERE pid = $pid")
	  or die 'the build did not stream its rows';
}

# 1. Builds spread over the fleet: one backend's channel turns round robin over both builders.
my ($b1, $b2) = (start_builder(), start_builder());
my $target = fleet($b1, $b2);
my ($rc, $out, $err) = $node->psql('postgres',
	"SET diskann.builder_endpoint = '$target'; " . join(' ', map { "CREATE INDEX t_rr$_ ON t USING diskann (e);" } 1 .. 4));
is($rc, 0, 'fleet: four builds succeed');
is($err, '', 'fleet: no fallback NOTICE');
is(join(' ', map { built_by("t_rr$_") } 1 .. 4), join(' ', ('builder/cpu') x 4), 'fleet: every index built by a builder');
my ($n1, $n2) = (builds_logged($b1, 't_rr\d', 1), builds_logged($b2, 't_rr\d', 1));
note "builds per builder: $n1 and $n2";
cmp_ok($n1, '>=', 1, 'fleet: the first builder did some of the builds');
cmp_ok($n2, '>=', 1, 'fleet: the second builder did some of the builds');
is($n1 + $n2, 4, 'fleet: each build was done once');
like(slurp_file($node->logfile),
	qr/LOG:  diskann index "t_rr1" built through builder "\Q$target\E" by "gpu_builder[^"]*" at ipv4:127\.0\.0\.1:(\Q$b1->[1]\E|\Q$b2->[1]\E), backend cpu: 3000 rows, \d+ pages, [\d.]+ s \(scan and send [\d.]+ s, builder until the last page [\d.]+ s, check [\d.]+ s, write [\d.]+ s, WAL [\d.]+ s\)/,
	'fleet: a LOG line names the builder, its address, rows, pages, time and where the time went');
$node->safe_psql('postgres', join(' ', map { "SELECT diskann_validate_index('t_rr$_'); DROP INDEX t_rr$_;" } 1 .. 4));

SKIP:
{
	skip 'gpu_builder was built without fault injection (VS_FAILURE_POINTS=OFF)', 19 unless $has_faults;

	# 2. A builder killed before it sends pages: the build is retried on the other one. The spare
	#    is stopped (SIGSTOP) while the backend connects, so that it is not ready and the first
	#    attempt can only go to the slow builder; it resumes before the kill.
	my $slow = start_builder('--fault', 'slow=60');
	my $spare = start_builder();
	$spare->[0]->signal('STOP');
	my $t0 = time;
	my ($bg, $pid) = start_build('t_kill',
		"SET diskann.builder_endpoint = '" . fleet($slow, $spare) . "';\nSET diskann.builder_connect_timeout = 30;");
	wait_rows_sent($pid);
	$spare->[0]->signal('CONT');
	kill_builder($slow);
	$bg->query_until(qr/done/, '');
	my $elapsed = time - $t0;
	unlike($bg->{stderr}, qr/NOTICE|ERROR/, 'killed builder: no fallback NOTICE');
	$bg->quit;
	note sprintf('build with a killed builder took %.1f s', $elapsed);
	cmp_ok($elapsed, '<', 45, 'killed builder: the build did not wait for the slow builder');
	is(built_by('t_kill'), 'builder/cpu', 'killed builder: built remotely all the same');
	is(builds_logged($spare, 't_kill', 1), 1, 'killed builder: the spare builder did the build');
	my $log = slurp_file($node->logfile);
	like($log,
		qr/LOG:  diskann build of index "t_kill" through builder "[^"]*" failed before any page arrived: (UNAVAILABLE|CANCELLED)[^\n]*; retrying once/,
		'killed builder: a LOG line says the build is retried');
	like($log, qr/LOG:  diskann index "t_kill" built through builder "[^"]*" by "[^"]*" at ipv4:127\.0\.0\.1:\Q$spare->[1]\E,/,
		'killed builder: the LOG line names the spare builder');
	$node->safe_psql('postgres', "SELECT diskann_validate_index('t_kill'); DROP INDEX t_kill");

	# 3. The retry fails too (the only builder was killed): NOTICE naming both attempts, local build.
	my $lone = start_builder('--fault', 'slow=60');
	($bg, $pid) = start_build('t_twice', "SET diskann.builder_endpoint = '" . fleet($lone) . "';");
	wait_rows_sent($pid);
	kill_builder($lone);
	$bg->query_until(qr/done/, '');
	like($bg->{stderr},
		qr/NOTICE:  diskann build through builder "[^"]*" failed: first attempt: (UNAVAILABLE|CANCELLED)[^\n]*; second attempt: no serving builder at [^\n]* within 2 s/,
		'retry fails too: the NOTICE names both attempts');
	$bg->quit;
	is(built_by('t_twice'), 'local/cpu', 'retry fails too: built locally');
	$node->safe_psql('postgres', "SELECT diskann_validate_index('t_twice'); DROP INDEX t_twice");

	# 4. Every builder of the target is down: NOTICE after the connect timeout, no retry.
	my $dead = fleet($slow, $lone);
	$t0 = time;
	($rc, $out, $err) = $node->psql('postgres',
		"SET diskann.builder_endpoint = '$dead'; CREATE INDEX t_dead ON t USING diskann (e)");
	$elapsed = time - $t0;
	is($rc, 0, 'fleet down: the build succeeds');
	like($err, qr/NOTICE:  diskann build through builder "\Q$dead\E" failed: no serving builder at \Q$dead\E could be reached within 2 s\n.*Building the index locally instead/,
		'fleet down: NOTICE with the reason');
	cmp_ok($elapsed, '<', 10, 'fleet down: one connect timeout, not two');
	is(built_by('t_dead'), 'local/cpu', 'fleet down: built locally');
	$node->safe_psql('postgres', 'DROP INDEX t_dead');

	# 5. Answers are not retried: an error status, or a builder that dies after sending pages.
	my %answers = ('fail=3' => qr/INVALID_ARGUMENT/, 'die-after-pages=1' => qr/failed: /);
	for my $fault (sort keys %answers)
	{
		my $b = start_builder('--fault', $fault);
		($rc, $out, $err) = $node->psql('postgres',
			"SET diskann.builder_endpoint = '" . fleet($b) . "'; CREATE INDEX t_answer ON t USING diskann (e)");
		like($err, $answers{$fault}, "$fault: NOTICE with the reason");
		unlike($err, qr/first attempt/, "$fault: one attempt only");
		is(built_by('t_answer'), 'local/cpu', "$fault: built locally");
		$node->safe_psql('postgres', 'DROP INDEX t_answer');
	}
	unlike(slurp_file($node->logfile), qr/index "t_(dead|answer)" [^\n]*retrying once/, 'no retry after an answer or a connect timeout');
}

stop_all_builders();
unlike(slurp_file($node->logfile), qr/terminated by signal|was terminated by/, 'no backend crashed');
$node->stop;
done_testing();
