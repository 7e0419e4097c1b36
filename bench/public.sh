#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/public.sh: the public allocator benchmark programs of mimalloc-bench, built outside this
# project, run with each allocator preloaded, side by side: median time (wall time, or the
# program's own measure for those that run for a fixed time: metric_of), system time and peak
# RSS of each, and their ratios to a baseline allocator measured in the same run.
#
#   bench/public.sh <mimalloc-bench checkout> <its build dir> [<libhostmalloc-override.so>]
#
# The checkout is github.com/daanx/mimalloc-bench (its `bench` folder built with its own CMake
# files into <build dir>); nothing of it is part of hostmalloc. The programs and their arguments
# are those of the suite's own script for 2 threads. Every repetition runs each program with
# every allocator, the allocators' order rotating from one repetition to the next.
#
# Environment:
#   PUB_REPS=3                 repetitions
#   PUB_PROGRAMS="..."         names from the table below (default: all of the suite's; the
#                              everyday ones, perl-hash, python-dict and gcc-O2, only by name)
#   PUB_ALLOCATORS="hostmalloc glibc mimalloc jemalloc tcmalloc"
#   PUB_BASELINE=mimalloc
#   PUB_THREADS=2
#   PUB_ENV="HM_CHECKED=1"     extra environment for the hostmalloc runs
#   PUB_TIMEOUT=300            seconds before a run is killed (counted as failed)
#   PUB_APART="malloc-large"   programs left out of the second geometric mean printed (the
#                              targets' one: malloc-large has a target of its own, and its
#                              ratio, far below 1 for most allocators, would hide the others)
#   PUB_HOGS=0                 busy processes (one spinning loop each) kept running through the
#                              whole run: with PUB_HOGS=2 and 2 threads on a 2-core machine,
#                              twice as many busy threads as cores (an oversubscribed machine)
# Needs /usr/bin/time (Debian package `time`, which `scripts/deps.sh bench` installs).
set -u

die() {
    echo "public.sh: $*" >&2
    exit 1
}

SRC=${1:-}
OUT=${2:-}
[ -n "$SRC" ] && [ -n "$OUT" ] || die "usage: public.sh <mimalloc-bench checkout> <build dir> [<override .so>]"
HERE=$(cd "$(dirname "$0")" && pwd)
HM_SO=${3:-$HERE/../build/libhostmalloc-override.so}
[ -d "$SRC/bench" ] || die "no bench folder in $SRC"
[ -d "$OUT" ] || die "no build dir $OUT"
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package: time)"
[ -f "$HM_SO" ] || die "no override library at $HM_SO"
HM_SO=$(cd "$(dirname "$HM_SO")" && pwd)/$(basename "$HM_SO")
REPS=${PUB_REPS:-3}
T=${PUB_THREADS:-2}
ALLOCATORS=${PUB_ALLOCATORS:-hostmalloc glibc mimalloc jemalloc tcmalloc}
BASELINE=${PUB_BASELINE:-mimalloc}
TIMEOUT=${PUB_TIMEOUT:-300}
arch=$(uname -m)
LIBDIR=/usr/lib/$arch-linux-gnu

# program name -> command line (run in $OUT)
declare -A CMD=(
    [cfrac]="./cfrac 17545186520507317056371138836327483792789528"
    [espresso]="./espresso $SRC/bench/espresso/largest.espresso"
    [barnes]="./barnes"
    [larsonN]="./larson 5 8 1000 5000 100 4141 $T"
    [larsonN-sized]="./larson-sized 5 8 1000 5000 100 4141 $T"
    [mstressN]="./mstress $T 50 25"
    [rptestN]="./rptest $T 0 1 2 500 1000 100 8 16000"
    [alloc-test1]="./alloc-test 1"
    [alloc-testN]="./alloc-test $T"
    [cache-scratch1]="./cache-scratch 1 1000 1 2000000 $T"
    [cache-scratchN]="./cache-scratch $T 1000 1 2000000 $T"
    [glibc-simple]="./glibc-simple"
    [glibc-thread]="./glibc-thread $T"
    [malloc-large]="./malloc-large"
    [mleak10]="./mleak 5"
    [xmalloc-testN]="./xmalloc-test -w $T -t 5 -s 64"
    # everyday programs, not in the default set (they need perl, python3 and gcc)
    [perl-hash]="perl $HERE/programs/hash.pl"
    [python-dict]="python3 $HERE/programs/dict.py"
    [gcc-O2]="gcc -O2 -I$HERE/../src -I$HERE/../include -c $HERE/../src/mem/page.c -o /dev/null"
)
DEFAULT_PROGRAMS="cfrac espresso barnes larsonN larsonN-sized mstressN rptestN alloc-test1 alloc-testN cache-scratch1 cache-scratchN glibc-simple glibc-thread malloc-large mleak10 xmalloc-testN"
PROGRAMS=${PUB_PROGRAMS:-$DEFAULT_PROGRAMS}

preload_of() {
    case $1 in
    hostmalloc) echo "$HM_SO" ;;
    glibc) echo "" ;;
    mimalloc) echo "$LIBDIR/libmimalloc.so.2" ;;
    jemalloc) echo "$LIBDIR/libjemalloc.so.2" ;;
    tcmalloc) echo "$LIBDIR/libtcmalloc_minimal.so.4" ;;
    *) die "unknown allocator $1" ;;
    esac
}
for a in $ALLOCATORS; do
    so=$(preload_of "$a")
    [ -z "$so" ] || [ -f "$so" ] || die "$a: $so not found"
done

raw=$(mktemp "${TMPDIR:-/tmp}/hostmalloc-public.XXXXXX") || exit 1
tm=$(mktemp "${TMPDIR:-/tmp}/hostmalloc-public-time.XXXXXX") || exit 1
so_out=$(mktemp "${TMPDIR:-/tmp}/hostmalloc-public-out.XXXXXX") || exit 1
HOGS=${PUB_HOGS:-0}
hog_pids=()
stop_hogs() {
    [ ${#hog_pids[@]} -eq 0 ] || kill "${hog_pids[@]}" 2>/dev/null
    wait 2>/dev/null
}
trap 'stop_hogs; rm -f "$raw" "$tm" "$so_out"' EXIT
for ((h = 0; h < HOGS; h++)); do
    (while :; do :; done) &
    hog_pids+=($!)
done

# Programs that run for a fixed time report their own throughput; it is turned into a time
# (lower is better) that replaces the wall time: larson's relative time, xmalloc-test's rtime,
# and 1e9 / glibc-thread's iterations and / rptest's memory operations per CPU second.
metric_of() { # <program> <its stdout>
    case $1 in
    larsonN | larsonN-sized) sed -n 's/.*relative time: *\([0-9.]*\)s.*/\1/p' "$2" | tail -n 1 ;;
    xmalloc-testN) sed -n 's/^rtime: *\([0-9.]*\),.*/\1/p' "$2" | tail -n 1 ;;
    glibc-thread) awk '/iterations/ { if ($1 > 0) printf "%.6f\n", 1e9 / $1 }' "$2" | tail -n 1 ;;
    rptestN) sed -n 's/.*[^0-9]\([0-9][0-9]*\) memory ops\/CPU second.*/\1/p' "$2" | tail -n 1 |
        awk '{ if ($1 > 0) printf "%.6f\n", 1e9 / $1 }' ;;
    esac
}

# one <program> <allocator>: appends "program allocator time user sys maxrss_kb"
one() {
    local p=$1 a=$2 so cmd env_extra=""
    so=$(preload_of "$a")
    cmd=${CMD[$p]:-}
    [ -n "$cmd" ] || die "unknown program $p"
    [ "$a" = hostmalloc ] && env_extra=${PUB_ENV:-}
    local stdin=/dev/null
    [ "$p" = barnes ] && stdin=$SRC/bench/barnes/input
    (
        cd "$OUT" || exit 1
        # shellcheck disable=SC2086
        env -u LD_PRELOAD $env_extra ${so:+LD_PRELOAD=$so} timeout "$TIMEOUT" \
            /usr/bin/time -o "$tm" -f "%e %U %S %M" $cmd <"$stdin" >"$so_out" 2>&1
    )
    local rc=$?
    if [ $rc -ne 0 ] || [ ! -s "$tm" ]; then
        echo "public.sh: $p with $a failed (status $rc)" >&2
        return
    fi
    local line metric
    line=$(tail -n 1 "$tm")
    metric=$(metric_of "$p" "$so_out")
    [ -z "$metric" ] || line="$metric ${line#* }"
    echo "$p $a $line" >>"$raw"
}

echo "public.sh: threads=$T reps=$REPS hogs=$HOGS allocators: $ALLOCATORS; load: $(cut -d' ' -f1-3 /proc/loadavg)"
set -- $ALLOCATORS
n=$#
for ((r = 0; r < REPS; r++)); do
    for p in $PROGRAMS; do
        for ((k = 0; k < n; k++)); do
            idx=$(((k + r) % n + 1))
            one "$p" "${!idx}"
        done
    done
done
echo "public.sh: done; load: $(cut -d' ' -f1-3 /proc/loadavg)"

APART=${PUB_APART-malloc-large}
awk -v base="$BASELINE" -v allocs="$ALLOCATORS" -v progs="$PROGRAMS" -v apart="$APART" '
function med(key, col,   n, i, j, t, v) {
    n = cnt[key]
    for (i = 1; i <= n; i++) v[i] = val[key, i, col]
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
{ key = $1 " " $2; c = ++cnt[key]; val[key, c, 1] = $3; val[key, c, 2] = $4; val[key, c, 3] = $5; val[key, c, 4] = $6 }
END {
    na = split(allocs, A, " "); np = split(progs, P, " "); nx = split(apart, X, " ")
    for (i = 1; i <= nx; i++) out[X[i]] = 1
    printf "%-15s %-11s %4s %8s %7s %7s %7s %10s %7s\n", "program", "allocator", "runs", "time", "x time", "sys_s", "x sys", "rss_kb", "x rss"
    for (i = 1; i <= np; i++) {
        kb = P[i] " " base
        if (!cnt[kb]) continue
        bw = med(kb, 1); bs = med(kb, 3); br = med(kb, 4)
        for (j = 1; j <= na; j++) {
            k = P[i] " " A[j]
            if (!cnt[k]) continue
            w = med(k, 1); s = med(k, 3); m = med(k, 4)
            xw = bw > 0 ? w / bw : 0; xs = bs > 0 ? s / bs : 0; xr = br > 0 ? m / br : 0
            printf "%-15s %-11s %4d %8.2f %7.2f %7.2f %7.2f %10d %7.2f\n", P[i], A[j], cnt[k], w, xw, s, (bs > 0 ? xs : -1), m, xr
            if (bw > 0 && w > 0 && br > 0 && m > 0) {
                lw[A[j]] += log(xw); lr[A[j]] += log(xr); nw[A[j]]++
                if (!(P[i] in out)) { tw[A[j]] += log(xw); tr[A[j]] += log(xr); nt[A[j]]++ }
            }
        }
    }
    printf "\ngeometric mean of the ratios to %s (time, peak RSS):\n", base
    for (j = 1; j <= na; j++) if (nw[A[j]]) printf "  %-11s %6.3f %6.3f  (%d programs)\n", A[j], exp(lw[A[j]] / nw[A[j]]), exp(lr[A[j]] / nw[A[j]]), nw[A[j]]
    if (nx) {
        printf "\nthe same without %s (the set the targets are set on):\n", apart
        for (j = 1; j <= na; j++) if (nt[A[j]]) printf "  %-11s %6.3f %6.3f  (%d programs)\n", A[j], exp(tw[A[j]] / nt[A[j]]), exp(tr[A[j]] / nt[A[j]]), nt[A[j]]
    }
}' "$raw"
