# SPDX-License-Identifier: MIT
# bench/programs/hash.pl [keys]: an everyday Perl shape for bench/public.sh (perl-hash): a hash
# of a million keys (or `keys`), each holding a small array with a string of 0..39 bytes, then
# its keys sorted.
use strict;
use warnings;
my $n = $ARGV[0] // 1000000;
my %h;
for my $i (1 .. $n) {
    $h{"k$i"} = [ $i, "v" x ($i % 40) ];
}
my @k = sort keys %h;
print scalar(@k), "\n";
