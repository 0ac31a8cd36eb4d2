# Label-filtered search on docs768 (50,000 paragraph embeddings of 768 dimensions, cosine; one
# source-group label per row, 30 groups of skewed sizes). For the label whose share of the rows
# is nearest 10% and the one nearest 1%, recall@10 of the labeled index (embedding, labels)
# against the exact filtered answer (a sequential scan) at default settings must be >= 0.95,
# and every returned row must carry the label.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use VsTestData qw(data_prefix load_data);

my $data = data_prefix('docs768');
plan skip_all => 'no docs768.base.fvecs (../shared/data is not present)' unless $data;

my @labels = do { open my $f, '<', "$data.labels.txt" or die; map { chomp; $_ } <$f> };

# The label nearest a share of the rows.
my %count;
$count{$_}++ for map { split /,/ } @labels;
sub nearest
{
	my ($share) = @_;
	my $n = scalar @labels;
	my ($best) = sort { abs(log($count{$a} / $n / $share)) <=> abs(log($count{$b} / $n / $share)) || $a <=> $b }
	  keys %count;
	return $best;
}

my $node = PostgreSQL::Test::Cluster->new('docs768');
$node->init;
$node->append_conf('postgresql.conf', "maintenance_work_mem = '1GB'\nshared_buffers = '512MB'\nmax_wal_size = '4GB'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION vectorscale CASCADE');
my ($dims, $rows) = load_data($node, $data, queries => 100, labels => sub { "{$labels[$_[0]]}" });
die 'docs768: labels and rows differ in number' unless @labels == $rows;
$node->safe_psql('postgres', qq{
	CREATE TABLE t AS SELECT src.id, src.e, lab.labels FROM src JOIN lab USING (id);
	DROP TABLE src, lab;
	CREATE INDEX t_idx ON t USING diskann (e vector_cosine_ops, labels);
	ANALYZE t;
});
$node->safe_psql('postgres', "SELECT diskann_validate_index('t_idx')");

for my $share (0.10, 0.01)
{
	my $label = nearest($share);
	my $what = sprintf('label %d (%d rows, %.1f%% of the rows)', $label, $count{$label}, 100 * $count{$label} / $rows);
	$node->safe_psql('postgres', qq{
		SET enable_indexscan = off;
		CREATE TABLE exact AS SELECT qid, s.id FROM queries,
		  LATERAL (SELECT id FROM t WHERE labels && '{$label}' ORDER BY e <=> q LIMIT 10) s;
	});
	my $recall = $node->safe_psql('postgres', qq{
		SET enable_seqscan = off;
		SELECT round(count(*) / (SELECT count(*)::numeric FROM exact), 4) FROM queries,
		  LATERAL (SELECT id FROM t WHERE labels && '{$label}' ORDER BY e <=> q LIMIT 10) s
		 WHERE s.id IN (SELECT id FROM exact WHERE exact.qid = queries.qid)});
	note "docs768, $what: recall\@10 = $recall at default settings";
	cmp_ok($recall, '>=', 0.95, "$what: recall\@10 >= 0.95 at default settings");
	is($node->safe_psql('postgres', qq{
		SET enable_seqscan = off;
		SELECT count(*) FROM queries, LATERAL (SELECT labels FROM t WHERE labels && '{$label}' ORDER BY e <=> q LIMIT 10) s
		 WHERE NOT (s.labels && '{$label}')}), '0', "$what: every returned row carries the label");
	$node->safe_psql('postgres', 'DROP TABLE exact');
}
unlike(slurp_file($node->logfile), qr/terminated by signal|PANIC/, 'no backend crashed');
$node->stop;
done_testing();
