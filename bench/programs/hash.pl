# SPDX-License-Identifier: MIT
# bench/programs/hash.pl: an everyday Perl shape for bench/public.sh (perl-hash): a hash of a
# million keys, each holding a small array with a string of 0..39 bytes, then its keys sorted.
use strict;
use warnings;
my %h;
for my $i (1 .. 1000000) {
    $h{"k$i"} = [ $i, "v" x ($i % 40) ];
}
my @k = sort keys %h;
print scalar(@k), "\n";
