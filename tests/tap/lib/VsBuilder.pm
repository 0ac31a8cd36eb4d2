# gpu_builder processes on loopback for the TAP tests (VS_GPU_BUILDER names the executable).
package VsBuilder;
use strict;
use warnings;
use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Cluster;
use Time::HiRes qw(time usleep);
our @EXPORT_OK = qw(builder_path builder_has_faults start_builder builder_log stop_builder kill_builder
  stop_all_builders builder_test_node);

my @started;

# The gpu_builder executable, or undef when it was not built.
sub builder_path
{
	my $b = $ENV{VS_GPU_BUILDER} // '';
	return $b && -x $b ? $b : undef;
}

# Whether gpu_builder was built with failure points (--fault; VS_FAILURE_POINTS=ON).
sub builder_has_faults
{
	my $b = builder_path() // return 0;
	return `$b --help 2>&1` =~ /--fault/ ? 1 : 0;
}

# Starts gpu_builder on a free loopback port with extra arguments; returns [handle, port, \stderr].
sub start_builder
{
	my @args = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start([ builder_path(), '--listen', '127.0.0.1:0', '--backend', 'cpu', '--max-memory', 2 << 30, @args ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(600));
	my $deadline = time + 30;
	while ($out !~ /listening on 127\.0\.0\.1:(\d+)/ && time < $deadline)
	{
		$h->pump_nb;
		usleep(20_000);
	}
	$out =~ /listening on 127\.0\.0\.1:(\d+)/ or die "gpu_builder did not start: $err";
	my $b = [ $h, $1, \$err ];
	push @started, $b;
	return $b;
}

# The builder's stderr so far: its log, one "build client=..." line per build.
sub builder_log
{
	my ($b) = @_;
	eval { $b->[0]->pump_nb } if $b->[0]->pumpable;
	return ${ $b->[2] };
}

# Stops a builder gracefully (SIGTERM; SIGCONT first, in case a test stopped it) and waits.
sub stop_builder
{
	my ($b) = @_;
	return unless $b->[0]->pumpable;
	$b->[0]->signal('CONT');
	$b->[0]->signal('TERM');
	eval { $b->[0]->finish; };
}

# Kills a builder at once (SIGKILL), as a crash or the OOM killer would.
sub kill_builder
{
	my ($b) = @_;
	return unless $b->[0]->pumpable;
	$b->[0]->signal('KILL');
	eval { $b->[0]->finish; };
}

# A started cluster for the build-offload tests, with vectorscale and t (id int, e vector(32)):
# $rows rows in 7 overlapping clusters (seeded), builds allowed 512 MB, and builders given
# $connect_timeout seconds to answer.
sub builder_test_node
{
	my ($rows, $connect_timeout) = @_;
	my $node = PostgreSQL::Test::Cluster->new('main');
	$node->init;
	$node->append_conf('postgresql.conf',
		"maintenance_work_mem = '512MB'\ndiskann.builder_connect_timeout = $connect_timeout");
	$node->start;
	$node->safe_psql('postgres', qq{
		CREATE EXTENSION vectorscale CASCADE;
		SELECT setseed(0.5);
		CREATE TABLE t (id int, e vector(32));
		INSERT INTO t SELECT i, ARRAY(SELECT random() + (i % 7) * 0.2 FROM generate_series(1, 32) WHERE i > 0)::vector(32)
		  FROM generate_series(1, $rows) i;
	});
	return $node;
}

# Stops every builder started so far.
sub stop_all_builders
{
	stop_builder($_) for @started;
}

1;
