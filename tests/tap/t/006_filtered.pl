# Label-filtered search (Filtered DiskANN) on mnist-10k: labels = {digit, 100 + id % 100}, an
# index on (embedding, labels) with the label column first in the table, built on half the
# rows and given the other half by streaming inserts. For filters matching
# ~10% (a digit) and ~1% (one of the hundred groups) of the rows, recall@10 against the exact
# filtered answer at default settings, every returned row satisfies the filter, and a filtered
# scan read to the end returns every matching row once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VsTestData qw(data_prefix load_data);

my $data = data_prefix('mnist-10k');
plan skip_all => 'no mnist-10k.base.fvecs (../shared/data is not present)' unless $data;

my @digits = do { open my $f, '<', "$data.labels.txt" or die; map { chomp; $_ } <$f> };

my $node = PostgreSQL::Test::Cluster->new('filtered');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '512MB'\nshared_buffers = '256MB'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION vectorscale CASCADE');
my ($dims) = load_data($node, $data, queries => 50, labels => sub { "{$digits[$_[0]]," . (100 + $_[0] % 100) . '}' });
$node->safe_psql('postgres', qq{
	CREATE TABLE t (labels smallint[], id int, e vector($dims));
	INSERT INTO t SELECT lab.labels, src.id, src.e FROM src JOIN lab USING (id) WHERE id % 2 = 0;
	CREATE INDEX t_idx ON t USING diskann (e vector_l2_ops, labels);
});
# The other half goes in through streaming inserts (filtered insert passes, new label starts).
$node->safe_psql('postgres', q{
	INSERT INTO t SELECT lab.labels, src.id, src.e FROM src JOIN lab USING (id) WHERE id % 2 = 1;
	ANALYZE t;
});
is($node->safe_psql('postgres', "SELECT has_labels FROM diskann_index_info('t_idx')"), 't', 'a labeled index');
$node->safe_psql('postgres', "SELECT diskann_validate_index('t_idx')");

for my $case ([ '10%', 'ARRAY[(qid % 10)]::smallint[]' ], [ '1%', 'ARRAY[100 + (qid * 7) % 100]::smallint[]' ])
{
	my ($what, $filter) = @$case;
	$node->safe_psql('postgres', qq{
		SET enable_indexscan = off;
		CREATE TABLE exact AS SELECT qid, s.id FROM queries,
		  LATERAL (SELECT id FROM t WHERE labels && $filter ORDER BY e <-> q LIMIT 10) s;
	});
	my $recall_at = sub {
		my ($settings) = @_;
		return $node->safe_psql('postgres', qq{
			SET enable_seqscan = off; $settings;
			SELECT round(count(*) / (SELECT count(*)::numeric FROM exact), 4) FROM queries,
			  LATERAL (SELECT id FROM t WHERE labels && $filter ORDER BY e <-> q LIMIT 10) s
			 WHERE s.id IN (SELECT id FROM exact WHERE exact.qid = queries.qid)});
	};
	my $default = $recall_at->('RESET diskann.query_search_list_size');
	my %tuned;
	for my $l (100, 200, 400)
	{
		$tuned{$l} = $recall_at->("SET diskann.query_search_list_size = $l; SET diskann.query_rescore = $l");
	}
	note "filter matching $what of the rows: recall\@10 = $default at default settings; "
	  . join(', ', map { "$tuned{$_} with L = rescore = $_" } sort { $a <=> $b } keys %tuned);
	cmp_ok($default, '>=', 0.95, "$what filter: recall\@10 >= 0.95 at default settings");
	cmp_ok($tuned{100}, '>=', $default - 0.01, "$what filter: a larger search and rescore window does not lose recall");
	is($node->safe_psql('postgres', qq{
		SET enable_seqscan = off;
		SELECT count(*) FROM queries, LATERAL (SELECT labels FROM t WHERE labels && $filter ORDER BY e <-> q LIMIT 10) s
		 WHERE NOT (s.labels && $filter)}), '0', "$what filter: every returned row matches");
	(my $one = $filter) =~ s/qid/3/g;
	is($node->safe_psql('postgres', qq{
		SET enable_seqscan = off; SET diskann.query_search_list_size = 2;
		SELECT count(*) = count(DISTINCT id) AND count(*) = (SELECT count(*) FROM t WHERE labels && $one)
		  FROM (SELECT id FROM t WHERE labels && $one ORDER BY e <-> (SELECT q FROM queries WHERE qid = 3)) s}),
		't', "$what filter: a scan read to the end returns every matching row once");
	$node->safe_psql('postgres', 'DROP TABLE exact');
}
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no backend crashed');
$node->stop;
done_testing();
