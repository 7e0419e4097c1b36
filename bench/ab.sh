#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/ab.sh: two builds of hostmalloc side by side (before and after a change), run
# alternately on the same workloads, with the median time of each and their ratio.
#
#   bench/ab.sh <build dir A> <build dir B>
#
# Each build directory must hold bench/bench and libhostmalloc-override.so (a release build:
# `cmake -S <source> -B <dir> -DCMAKE_BUILD_TYPE=Release && cmake --build <dir> --target bench
# hostmalloc_override`). Every repetition runs each workload and door with A, then with B, so
# that both see the same machine; the ratio is B's median over A's (below 1: B is faster).
#
# Environment:
#   AB_REPS=7                          repetitions
#   AB_WORKLOADS="pairs window larsonish"
#   AB_DOORS="com native malloc"       malloc: the override preloaded into `bench malloc`
#   AB_SCALE=1                         the bench's scale argument
#   AB_THREADS=1                       the bench's threads argument
set -u

die() {
    echo "ab.sh: $*" >&2
    exit 1
}

A=${1:-}
B=${2:-}
[ -n "$A" ] && [ -n "$B" ] || die "usage: ab.sh <build dir A> <build dir B>"
for d in "$A" "$B"; do
    [ -x "$d/bench/bench" ] || die "no bench/bench in $d"
    [ -f "$d/libhostmalloc-override.so" ] || die "no libhostmalloc-override.so in $d"
done
REPS=${AB_REPS:-7}
WORKLOADS=${AB_WORKLOADS:-pairs window larsonish}
DOORS=${AB_DOORS:-com native malloc}
SCALE=${AB_SCALE:-1}
THREADS=${AB_THREADS:-1}
case "$REPS" in '' | *[!0-9]*) die "AB_REPS must be a number" ;; esac

raw=$(mktemp "${TMPDIR:-/tmp}/hostmalloc-ab.XXXXXX") || exit 1
trap 'rm -f "$raw"' EXIT

# one <label> <build dir> <door> <workload>: appends "label door workload time" to $raw
one() {
    local label=$1 dir=$2 door=$3 w=$4 line
    if [ "$door" = malloc ]; then
        line=$(env -u LD_PRELOAD LD_PRELOAD="$dir/libhostmalloc-override.so" \
            "$dir/bench/bench" malloc "$w" "$THREADS" "$SCALE" 2>/dev/null | grep '^RESULT')
    else
        line=$(env -u LD_PRELOAD "$dir/bench/bench" "$door" "$w" "$THREADS" "$SCALE" 2>/dev/null |
            grep '^RESULT')
    fi
    local t=${line#*time_s=}
    t=${t%% *}
    [ -n "$line" ] && [ -n "$t" ] || {
        echo "ab.sh: $label $door $w failed" >&2
        return
    }
    echo "$label $door $w $t" >>"$raw"
}

echo "ab.sh: A=$A B=$B reps=$REPS threads=$THREADS scale=$SCALE load: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= REPS; r++)); do
    for w in $WORKLOADS; do
        for door in $DOORS; do
            one A "$A" "$door" "$w"
            one B "$B" "$door" "$w"
        done
    done
done
echo "ab.sh: done, load: $(cut -d' ' -f1-3 /proc/loadavg)"

awk '
function median(key,   n, i, j, t, v) {
    n = cnt[key]
    for (i = 1; i <= n; i++) v[i] = val[key, i]
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
{ key = $1 " " $2 " " $3; val[key, ++cnt[key]] = $4; if (!seen[$3 " " $2]++) order[++n] = $3 " " $2 }
END {
    printf "%-10s %-7s %5s %10s %10s %8s\n", "workload", "door", "runs", "A median", "B median", "B/A"
    for (i = 1; i <= n; i++) {
        split(order[i], f, " ")
        ka = "A " f[2] " " f[1]; kb = "B " f[2] " " f[1]
        if (!cnt[ka] || !cnt[kb]) continue
        ma = median(ka); mb = median(kb)
        printf "%-10s %-7s %5d %10.4f %10.4f %8.3f\n", f[1], f[2], cnt[ka], ma, mb, mb / ma
    }
}' "$raw"
