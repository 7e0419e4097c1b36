#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/callgrind.sh: instructions per steady-state Alloc+Free pair, measured with callgrind.
#
#   bench/callgrind.sh <path-to-bench-binary>
#
# For each door/allocator it runs `bench <door> pairs 1 n=N` under valgrind --tool=callgrind for
# two iteration counts N1 < N2 and reports (I(N2) - I(N1)) / (N2 - N1): start-up, warm-up and
# tear-down cost the same in both runs and cancel. The `null` door (a static buffer behind two
# non-inlined calls) measures the harness loop itself; "net" subtracts it, leaving the
# allocator's own instructions (its call and return excepted).
#
# Environment:
#   CALLGRIND_N1=1000000 CALLGRIND_N2=2000000   the two iteration counts
#   BENCH_PAIRS_SIZE=64     every pair of one size (the steady state: a block reused at once);
#                           unset, sizes cycle through 16..128 and each free empties a page
#   BENCH_PAIRS_BATCH=64    the pairs in rounds of 64 allocations, then 64 frees (a design that
#                           frees onto a second list, mimalloc's, then shows its fast paths;
#                           one block at a time it takes its slow path on every allocation).
#                           Must divide CALLGRIND_N1 and CALLGRIND_N2.
#   CALLGRIND_ALLOCATORS="com native malloc-mimalloc malloc-glibc"  (also: malloc-jemalloc,
#                                                 malloc-tcmalloc)
#   MIMALLOC_SO, JEMALLOC_SO, TCMALLOC_SO, BENCH_LIBDIRS   as for run.sh
set -u

die() {
    echo "callgrind.sh: $*" >&2
    exit 1
}

BIN=${1:-}
[ -n "$BIN" ] || die "usage: callgrind.sh <path-to-bench-binary>"
[ -x "$BIN" ] || die "not an executable: $BIN"
case $BIN in */*) ;; *) BIN=./$BIN ;; esac
command -v valgrind >/dev/null 2>&1 || die "valgrind is not installed"

N1=${CALLGRIND_N1:-1000000}
N2=${CALLGRIND_N2:-2000000}
ALLOCATORS=${CALLGRIND_ALLOCATORS:-com native malloc-hostmalloc malloc-mimalloc malloc-glibc}
case "$N1$N2" in *[!0-9]*) die "CALLGRIND_N1 and CALLGRIND_N2 must be integers" ;; esac
[ "$N2" -gt "$N1" ] || die "CALLGRIND_N2 must be larger than CALLGRIND_N1"

arch=$(uname -m)
LIBDIRS=${BENCH_LIBDIRS:-/usr/lib/$arch-linux-gnu /lib/$arch-linux-gnu /usr/lib64 /usr/lib /usr/local/lib64 /usr/local/lib}
find_so() {
    local name dir
    for name in "$@"; do
        for dir in $LIBDIRS; do
            if [ -e "$dir/$name" ]; then
                echo "$dir/$name"
                return 0
            fi
        done
    done
    return 1
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/hostmalloc-callgrind.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# instructions <door> <preload-or-empty> <n>: total Ir of one run, or nothing on failure
instructions() {
    local door=$1 so=$2 n=$3 out="$TMP/cg.out" rc
    rm -f "$out"
    if [ -n "$so" ]; then
        LD_PRELOAD=$so valgrind --tool=callgrind --callgrind-out-file="$out" \
            "$BIN" "$door" pairs 1 "n=$n" >"$TMP/stdout" 2>"$TMP/stderr"
    else
        env -u LD_PRELOAD valgrind --tool=callgrind --callgrind-out-file="$out" \
            "$BIN" "$door" pairs 1 "n=$n" >"$TMP/stdout" 2>"$TMP/stderr"
    fi
    rc=$?
    if [ $rc -ne 0 ] || [ ! -s "$out" ]; then
        echo "callgrind.sh: $door (${so:-no preload}) n=$n failed (rc=$rc):" >&2
        grep -v "^==[0-9]*==" "$TMP/stderr" | tail -n 5 | sed 's/^/    | /' >&2
        return 1
    fi
    if [ -n "$so" ] && ! grep -q "malloc_lib=$(basename "$so")" "$TMP/stdout"; then
        echo "callgrind.sh: note: $door: the preload of $so did not take effect:" \
            "$(grep -o 'malloc_lib=[^ ]*' "$TMP/stdout")" >&2
    fi
    # "summary: <Ir>" (or "totals:" in older versions) holds the program's total instructions
    awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

printf '%-16s %14s %14s %12s %12s\n' "door" "Ir(n=$N1)" "Ir(n=$N2)" "Ir/pair" "net Ir/pair"
harness=""
for a in null $ALLOCATORS; do
    so=""
    case $a in
    null | com | native) door=$a ;;
    malloc-glibc) door=malloc ;;
    malloc-hostmalloc) door=malloc so=${HOSTMALLOC_SO:-$(dirname "$(realpath "$BIN")")/../libhostmalloc-override.so} ;;
    malloc-mimalloc) door=malloc so=${MIMALLOC_SO:-$(find_so libmimalloc.so.2 libmimalloc.so)} ;;
    malloc-jemalloc) door=malloc so=${JEMALLOC_SO:-$(find_so libjemalloc.so.2 libjemalloc.so)} ;;
    malloc-tcmalloc) door=malloc so=${TCMALLOC_SO:-$(find_so libtcmalloc_minimal.so.4 libtcmalloc_minimal.so)} ;;
    *) die "unknown allocator '$a'" ;;
    esac
    if [ "$door" = malloc ] && [ "$a" != malloc-glibc ] && [ ! -e "$so" ]; then
        echo "note: skipping $a: its shared object was not found" >&2
        continue
    fi
    if ! i1=$(instructions "$door" "$so" "$N1") || [ -z "$i1" ]; then
        printf '%-16s %14s\n' "$a" "FAILED"
        continue
    fi
    if ! i2=$(instructions "$door" "$so" "$N2") || [ -z "$i2" ]; then
        printf '%-16s %14s\n' "$a" "FAILED"
        continue
    fi
    line=$(awk -v a="$a" -v i1="$i1" -v i2="$i2" -v n1="$N1" -v n2="$N2" -v h="$harness" 'BEGIN {
        ipp = (i2 - i1) / (n2 - n1)
        net = (h == "") ? "-" : sprintf("%.1f", ipp - h)
        printf "%-16s %14.0f %14.0f %12.1f %12s|%.4f\n", a, i1, i2, ipp, net, ipp }')
    printf '%s\n' "${line%|*}"
    [ "$a" = null ] && harness=${line##*|}
done
echo "(Ir/pair: instructions per alloc+free pair, 16..128 bytes, incl. the harness loop;" \
    "net: minus the null door's harness)"
