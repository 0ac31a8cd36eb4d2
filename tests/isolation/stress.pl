# Bounded concurrency stress of the diskann access method (ctest diskann_stress, label
# "isolation"; run by tests/tap/run_tap.sh). For each storage layout (plain, then
# memory_optimized) a table with a diskann index takes, for a few seconds and a bounded number
# of rows, two inserting clients (some of their transactions roll back), two querying
# clients (ORDER BY ... LIMIT 10 through the index, and a row's own vector), one deleting
# client and VACUUM in a loop, all at once. Afterwards:
#   - no client saw an error, and in particular not one deadlock (40P01); serialization
#     failures (40001) would be tolerated as retries but none is expected at READ COMMITTED;
#   - no client hung (each is bounded; a lost wakeup or an undetected LWLock deadlock fails);
#   - diskann_validate_index passes, and after a last VACUUM the meta page counts no deleted
#     node;
#   - every live row is found by a query for its own vector through the index (vectors are
#     distinct), and a full scan through the index returns every live row once;
#   - the server log has no PANIC, no "terminated by signal", no assertion failure.
# It also measures the insert rate (rows/s) of 1 client and of 4 clients, each inserting the
# same fixed number of rows into the same table shape, and prints both and their ratio; no
# threshold is asserted (the machine may have 2 cores).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(time usleep);

my $CHAOS_SECONDS = 7;           # per storage layout
my $MAX_ROWS_PER_INSERTER = 6000;    # the row bound, whatever the speed
my $RATE_ROWS_PER_CLIENT = 1200;
my $CLIENT_GRACE = 60;    # seconds a client may run past its deadline before it counts as hung

my $node = PostgreSQL::Test::Cluster->new('stress');
$node->init;
$node->append_conf('postgresql.conf', qq{
autovacuum = off
max_connections = 40
deadlock_timeout = '200ms'
log_lock_waits = on
log_min_messages = warning
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION vectorscale CASCADE;
-- a distinct 16-dimensional vector for each id
CREATE FUNCTION stress_vec(k bigint) RETURNS vector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS
  $$ SELECT (SELECT array_agg((hashint8(k * 64 + j) & 65535) / 65535.0)
               FROM generate_series(1, 16) j)::vector(16) $$;
CREATE TABLE stress_err (client text, what text, state text, message text);
CREATE TABLE stress_stat (client text, what text, n bigint);

-- Inserts rows of 5 until the deadline or max_rows; every 7th transaction rolls back.
CREATE PROCEDURE stress_insert(tab regclass, client text, deadline timestamptz, max_rows int)
LANGUAGE plpgsql AS $$
DECLARE n int := 0; it int := 0; aborted int := 0;
BEGIN
  WHILE n < max_rows AND clock_timestamp() < deadline LOOP
    it := it + 1;
    BEGIN
      EXECUTE format('INSERT INTO %s (id, e) SELECT k, stress_vec(k) FROM '
                     '(SELECT nextval(%L) AS k FROM generate_series(1, 5)) s', tab, tab::text || '_id_seq');
    EXCEPTION WHEN OTHERS THEN
      INSERT INTO stress_err VALUES (client, 'insert', SQLSTATE, SQLERRM);
    END;
    IF it % 7 = 0 THEN ROLLBACK; aborted := aborted + 5; ELSE COMMIT; END IF;
    n := n + 5;
  END LOOP;
  INSERT INTO stress_stat VALUES (client, 'inserted', n - aborted), (client, 'rolled back', aborted);
  COMMIT;
END $$;

-- Inserts exactly n rows, committing every 10 (the rate measurement).
CREATE PROCEDURE stress_insert_n(tab regclass, n int)
LANGUAGE plpgsql AS $$
DECLARE done int := 0;
BEGIN
  WHILE done < n LOOP
    EXECUTE format('INSERT INTO %s (id, e) SELECT k, stress_vec(k) FROM '
                   '(SELECT nextval(%L) AS k FROM generate_series(1, 10)) s', tab, tab::text || '_id_seq');
    COMMIT;
    done := done + 10;
  END LOOP;
END $$;

-- Queries until the deadline: 10 nearest of a random vector through the index (each result
-- has 10 distinct rows), and a random live row by its own vector (a miss is only counted:
-- the graph changes under the scan).
CREATE PROCEDURE stress_query(tab regclass, client text, deadline timestamptz)
LANGUAGE plpgsql AS $$
DECLARE n int := 0; ids bigint[]; maxid bigint; self_miss int := 0; hit bigint; probe bigint;
        short int := 0; dup int := 0; got bigint;
BEGIN
  PERFORM set_config('enable_seqscan', 'off', false);
  WHILE clock_timestamp() < deadline LOOP
    BEGIN
      EXECUTE format('SELECT array_agg(id) FROM (SELECT id FROM %s ORDER BY e <-> stress_vec($1) LIMIT 10) s', tab)
        INTO ids USING (random() * 1e9)::bigint;
      IF coalesce(cardinality(ids), 0) < 10 THEN short := short + 1; END IF;
      IF cardinality(ids) <> (SELECT count(DISTINCT x) FROM unnest(ids) x) THEN dup := dup + 1; END IF;
      EXECUTE format('SELECT last_value FROM %s', tab::text || '_id_seq') INTO maxid;
      probe := 1 + (random() * (maxid - 1))::bigint;
      EXECUTE format('SELECT (SELECT id FROM %1$s t2 ORDER BY t2.e <-> t.e LIMIT 1) FROM %1$s t WHERE t.id = $1', tab)
        INTO hit USING probe;
      GET DIAGNOSTICS got = ROW_COUNT;
      IF got > 0 AND hit IS DISTINCT FROM probe THEN self_miss := self_miss + 1; END IF;
    EXCEPTION WHEN OTHERS THEN
      INSERT INTO stress_err VALUES (client, 'query', SQLSTATE, SQLERRM);
    END;
    COMMIT;
    n := n + 1;
  END LOOP;
  INSERT INTO stress_stat VALUES (client, 'queries', n), (client, 'self misses', self_miss),
                                 (client, 'short results', short), (client, 'duplicate results', dup);
  COMMIT;
END $$;

-- Deletes up to 3 random ids per transaction until the deadline.
CREATE PROCEDURE stress_delete(tab regclass, client text, deadline timestamptz)
LANGUAGE plpgsql AS $$
DECLARE n bigint := 0; c bigint; maxid bigint;
BEGIN
  WHILE clock_timestamp() < deadline LOOP
    BEGIN
      EXECUTE format('SELECT last_value FROM %s', tab::text || '_id_seq') INTO maxid;
      EXECUTE format('DELETE FROM %s WHERE id IN (SELECT 1 + (random() * ($1 - 1))::bigint '
                     'FROM generate_series(1, 3))', tab) USING maxid;
      GET DIAGNOSTICS c = ROW_COUNT;
      n := n + c;
    EXCEPTION WHEN OTHERS THEN
      INSERT INTO stress_err VALUES (client, 'delete', SQLSTATE, SQLERRM);
    END;
    COMMIT;
    PERFORM pg_sleep(0.004);
  END LOOP;
  INSERT INTO stress_stat VALUES (client, 'deleted', n);
  COMMIT;
END $$;
});

# Creates table $tab (id from a sequence, 16 dimensions) with $preload rows and a diskann index.
sub make_table
{
	my ($tab, $storage, $preload) = @_;
	$node->safe_psql('postgres', qq{
		CREATE SEQUENCE ${tab}_id_seq;
		CREATE TABLE $tab (id bigint, e vector(16)) WITH (autovacuum_enabled = off);
		INSERT INTO $tab SELECT k, stress_vec(k) FROM (SELECT nextval('${tab}_id_seq') AS k
		  FROM generate_series(1, $preload)) s;
		CREATE INDEX ${tab}_idx ON $tab USING diskann (e vector_l2_ops) WITH (storage_layout = $storage);
	});
}

# Starts psql running $sql as one client; returns a handle for finish_client.
sub start_client
{
	my ($name, $sql) = @_;
	my %c = (name => $name, out => '', err => '');
	$c{h} = IPC::Run::start(
		[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-c', $sql ],
		'<', \undef, '>', \$c{out}, '2>', \$c{err},
		IPC::Run::timeout($CHAOS_SECONDS + $CLIENT_GRACE + 30));
	return \%c;
}

# Waits for a client; true when it exited 0 with nothing on stderr.
sub finish_client
{
	my ($c) = @_;
	my $ok = eval { $c->{h}->finish; 1 };
	if (!$ok)
	{
		diag "client $c->{name} did not finish in time (hung?): $@";
		eval { $c->{h}->kill_kill };
		return 0;
	}
	my $rc = $c->{h}->result;
	diag "client $c->{name}: exit $rc, stderr: $c->{err}" if $rc != 0 || $c->{err} ne '';
	return $rc == 0 && $c->{err} eq '';
}

# 1. Insert rate: 1 client, then 4 clients, each inserting the same number of rows into a
# fresh table of the same shape (3000 rows and a plain index to start with).
my %rate;
for my $clients (1, 4)
{
	my $tab = "rate$clients";
	make_table($tab, 'plain', 3000);
	my $t0 = time;
	my @c = map { start_client("rate$clients.$_", "CALL stress_insert_n('$tab', $RATE_ROWS_PER_CLIENT)") } 1 .. $clients;
	my $all_ok = 1;
	for (@c) { $all_ok = 0 unless finish_client($_); }
	my $elapsed = time - $t0;
	ok($all_ok, "$clients inserting client(s) finished without error");
	is($node->safe_psql('postgres', "SELECT count(*) FROM $tab"), 3000 + $clients * $RATE_ROWS_PER_CLIENT,
		"$clients client(s): every row inserted");
	$node->safe_psql('postgres', "SELECT diskann_validate_index('${tab}_idx')");
	$rate{$clients} = $clients * $RATE_ROWS_PER_CLIENT / $elapsed;
	note sprintf('insert rate, %d client(s) x %d rows: %.0f rows/s (%.2f s)',
		$clients, $RATE_ROWS_PER_CLIENT, $rate{$clients}, $elapsed);
	$node->safe_psql('postgres', "DROP TABLE $tab; DROP SEQUENCE ${tab}_id_seq");
}
note sprintf('insert rate ratio, 4 clients / 1 client: %.2f (%d cores online)', $rate{4} / $rate{1},
	scalar(grep { /^processor/ } split /\n/, slurp_file('/proc/cpuinfo')));

# 2. The stress rounds.
for my $storage ('plain', 'memory_optimized')
{
	my $tab = "t_$storage";
	make_table($tab, $storage, 2000);
	$node->safe_psql('postgres', 'TRUNCATE stress_err, stress_stat');
	my $deadline_sql = "clock_timestamp() + interval '$CHAOS_SECONDS seconds'";
	my @clients = (
		(map { start_client("insert$_", "CALL stress_insert('$tab', 'insert$_', $deadline_sql, $MAX_ROWS_PER_INSERTER)") } 1 .. 2),
		(map { start_client("query$_", "CALL stress_query('$tab', 'query$_', $deadline_sql)") } 1 .. 2),
		start_client('delete', "CALL stress_delete('$tab', 'delete', $deadline_sql)"));

	# VACUUM in a loop, from here, until the clients' deadline (each run is bounded too).
	my $end = time + $CHAOS_SECONDS;
	my ($vacuums, @vacuum_errors) = (0);
	while (time < $end)
	{
		my ($rc, $out, $err) = $node->psql('postgres', "VACUUM (INDEX_CLEANUP ON) $tab",
			timeout => $CHAOS_SECONDS + $CLIENT_GRACE);
		$vacuums++;
		push @vacuum_errors, "rc $rc: $err" if $rc != 0 || $err ne '';
		usleep(100_000);
	}
	my $all_ok = 1;
	for (@clients) { $all_ok = 0 unless finish_client($_); }
	ok($all_ok, "$storage: every client finished in time, exit 0, nothing on stderr");
	is(scalar(@vacuum_errors), 0, "$storage: $vacuums VACUUMs without error")
	  or diag join("\n", @vacuum_errors);
	cmp_ok($vacuums, '>=', 3, "$storage: VACUUM ran several times");

	my $stats = $node->safe_psql('postgres',
		"SELECT string_agg(client || ' ' || what || ' ' || n, ', ' ORDER BY client, what) FROM stress_stat");
	note "$storage: $stats";
	my %stat = map { my ($c, $w, $n) = /^(\S+) (.+) (\d+)$/; ("$c $w" => $n) } split /, /, $stats;
	cmp_ok(($stat{'insert1 inserted'} // 0) + ($stat{'insert2 inserted'} // 0), '>', 0, "$storage: rows were inserted");
	cmp_ok($stat{'delete deleted'} // 0, '>', 0, "$storage: rows were deleted");
	cmp_ok(($stat{'query1 queries'} // 0) + ($stat{'query2 queries'} // 0), '>', 0, "$storage: queries ran");
	is(($stat{'query1 duplicate results'} // 0) + ($stat{'query2 duplicate results'} // 0), 0,
		"$storage: no query returned a row twice");
	is(($stat{'query1 short results'} // 0) + ($stat{'query2 short results'} // 0), 0,
		"$storage: every LIMIT 10 query returned 10 rows");
	note "$storage: self-lookups that missed while the graph changed: "
	  . (($stat{'query1 self misses'} // 0) + ($stat{'query2 self misses'} // 0));

	my $errors = $node->safe_psql('postgres',
		"SELECT string_agg(client || ' ' || what || ' ' || state || ' ' || message, E'\n') FROM stress_err");
	is($node->safe_psql('postgres', "SELECT count(*) FROM stress_err WHERE state = '40P01'"), '0',
		"$storage: no deadlock");
	is($node->safe_psql('postgres', "SELECT count(*) FROM stress_err WHERE state <> '40001'"), '0',
		"$storage: no error other than serialization retries")
	  or diag $errors;

	# The index at rest: a last VACUUM removes what the round deleted.
	$node->safe_psql('postgres', "VACUUM (INDEX_CLEANUP ON) $tab");
	my ($rc, $out, $err) = $node->psql('postgres', "SELECT diskann_validate_index('${tab}_idx')");
	is($rc, 0, "$storage: diskann_validate_index passes") or diag $err;
	is($node->safe_psql('postgres', "SELECT deleted_nodes FROM diskann_index_info('${tab}_idx')"), '0',
		"$storage: no deleted node left after the last VACUUM");
	my ($rows, $distinct) = split /\|/,
	  $node->safe_psql('postgres', "SELECT count(*), count(DISTINCT e::text) FROM $tab");
	is($distinct, $rows, "$storage: the $rows live vectors are distinct");
	is( $node->safe_psql('postgres', qq{
			SET enable_seqscan = off;
			SELECT count(*) FROM $tab t WHERE id = (SELECT id FROM $tab t2 ORDER BY t2.e <-> t.e LIMIT 1)}),
		$rows, "$storage: every live row is found through the index by its own vector");
	is( $node->safe_psql('postgres', qq{
			SET enable_seqscan = off; SET diskann.query_search_list_size = 2;
			SELECT count(*) || ' ' || count(DISTINCT id) FROM (SELECT id FROM $tab ORDER BY e <-> stress_vec(1)) s}),
		"$rows $rows", "$storage: a full scan through the index returns every live row once");
	is($node->safe_psql('postgres', qq{
			SET enable_seqscan = off;
			EXPLAIN (COSTS OFF) SELECT id FROM $tab t2 ORDER BY t2.e <-> stress_vec(1) LIMIT 1}) =~ /Index Scan using ${tab}_idx/ ? 1 : 0,
		1, "$storage: those queries go through the index");
}

my $log = slurp_file($node->logfile);
unlike($log, qr/PANIC|terminated by signal|TRAP:|server process .* was terminated/,
	'the server log has no PANIC, crash or assertion failure');
# log_lock_waits: how often inserts waited for VACUUM's repair phase (ShareLock on page 0 of
# an index, the update lock) and VACUUM for inserts (ExclusiveLock on it); just noted.
note 'lock waits over 200 ms logged: '
  . scalar(() = $log =~ /still waiting for ShareLock on page 0 of relation/g) . ' inserts on the update lock, '
  . scalar(() = $log =~ /still waiting for ExclusiveLock on page 0 of relation/g) . ' VACUUMs on the update lock';
my @deadlocks = ($log =~ /deadlock detected/g);
is(scalar(@deadlocks), 0, 'the server log reports no deadlock');
$node->stop;
done_testing();
