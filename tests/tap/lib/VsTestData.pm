# Loading ../shared/data (TexMex .fvecs/.ivecs) into COPY files for the TAP tests.
package VsTestData;
use strict;
use warnings;
use Exporter 'import';
our @EXPORT_OK = qw(read_vecs write_copy write_gt data_prefix);

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

1;
