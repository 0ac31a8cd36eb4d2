# Loading ../shared/data (TexMex .fvecs/.ivecs) into COPY files for the TAP tests.
package VsTestData;
use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Utils;
our @EXPORT_OK = qw(read_vecs write_copy write_gt data_prefix load_data);

# The prefix of a data set under VS_SHARED_DATA, or undef when its base file is absent.
sub data_prefix
{
	my ($name) = @_;
	my $p = ($ENV{VS_SHARED_DATA} // '') . "/$name";
	return -r "$p.base.fvecs" ? $p : undef;
}

# Reads a .fvecs ('f') or .ivecs ('i') file; returns array refs (at most $limit).
sub read_vecs
{
	my ($path, $type, $limit) = @_;
	open my $fh, '<:raw', $path or die "$path: $!";
	my @rows;
	while (!defined $limit || @rows < $limit)
	{
		last unless read($fh, my $hdr, 4) == 4;
		my $dim = unpack('l<', $hdr);
		read($fh, my $buf, 4 * $dim) == 4 * $dim or die "$path: short read";
		push @rows, [ unpack(($type eq 'f' ? 'f<' : 'l<') . $dim, $buf) ];
	}
	return @rows;
}

# Writes rows as a COPY text file of (id, vector); ids are 0-based row numbers.
sub write_copy
{
	my ($path, @rows) = @_;
	open my $fh, '>', $path or die "$path: $!";
	print $fh $_, "\t[", join(',', @{ $rows[$_] }), "]\n" for 0 .. $#rows;
	close $fh;
	chmod 0644, $path;
}

# Writes the true top $k of each query as a COPY text file of (qid, id).
sub write_gt
{
	my ($path, $k, @gt) = @_;
	open my $fh, '>', $path or die "$path: $!";
	for my $q (0 .. $#gt) { print $fh "$q\t$gt[$q][$_]\n" for 0 .. $k - 1; }
	close $fh;
	chmod 0644, $path;
}

# Loads data set $prefix into $node's database postgres (vectorscale already created):
# src (id, e) with every base row, queries (qid, q) with the first $opt{queries}, gt (qid, id)
# with their true top 10 when $opt{gt}, and lab (id, labels smallint[]) when $opt{labels} is a
# sub giving row $i's label array text ("{3,7}"). Returns (dims, rows).
sub load_data
{
	my ($node, $prefix, %opt) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	chmod 0755, $dir;
	my @base = read_vecs("$prefix.base.fvecs", 'f');
	my ($dims, $rows) = (scalar @{ $base[0] }, scalar @base);
	write_copy("$dir/base.tsv", @base);
	@base = ();
	write_copy("$dir/queries.tsv", read_vecs("$prefix.query.fvecs", 'f', $opt{queries}));
	my $sql = "CREATE TABLE src (id int, e vector($dims)); COPY src FROM '$dir/base.tsv';
		CREATE TABLE queries (qid int, q vector($dims)); COPY queries FROM '$dir/queries.tsv';";
	if ($opt{gt})
	{
		write_gt("$dir/gt.tsv", 10, read_vecs("$prefix.gt.ivecs", 'i', $opt{queries}));
		$sql .= "CREATE TABLE gt (qid int, id int); COPY gt FROM '$dir/gt.tsv';";
	}
	if ($opt{labels})
	{
		open my $fh, '>', "$dir/labels.tsv" or die "$dir/labels.tsv: $!";
		print $fh "$_\t", $opt{labels}->($_), "\n" for 0 .. $rows - 1;
		close $fh;
		chmod 0644, "$dir/labels.tsv";
		$sql .= "CREATE TABLE lab (id int, labels smallint[]); COPY lab FROM '$dir/labels.tsv';";
	}
	$node->safe_psql('postgres', $sql);
	return ($dims, $rows);
}

1;
