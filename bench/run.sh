#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/run.sh: run every workload of the bench program for hostmalloc (com and native doors)
# and its peers (glibc, mimalloc, jemalloc, tcmalloc through LD_PRELOAD), then print one table
# per workload: medians of the time, system time, minor page faults and peak RSS, ratios to the
# baseline (malloc-mimalloc) and a geometric mean per door.
#
#   bench/run.sh <path-to-bench-binary>
#   bench/run.sh --report <results-file>     # print the tables of an earlier run again
#
# The bench binary finds libhostmalloc through its RPATH/RUNPATH (CMake sets it in the build
# tree). Allocators alternate inside each repetition (rep 1: every allocator, rep 2: ...), and
# the order rotates from one repetition to the next, so slow drifts of a noisy machine spread
# over all of them.
#
# Environment:
#   BENCH_REPS=5            repetitions
#   BENCH_SCALE=1           multiplies every workload's iteration count
#   BENCH_THREADS=0         threads of the multi-threaded workloads (0: their default, 2)
#   BENCH_WORKLOADS="pairs window prodcons mixed frag larsonish mstress larson rptest large idle medium buffers"
#   BENCH_ALLOCATORS="com native malloc-hostmalloc malloc-glibc malloc-mimalloc malloc-jemalloc malloc-tcmalloc"
#                           (also: com-limit = COM with HM_LIMIT set; com-checked = HM_CHECKED=1)
#   BENCH_BASELINE=malloc-mimalloc
#   BENCH_TIMEOUT=300       seconds before one run is killed (counts as a failure)
#   BENCH_PIN=1             pin thread i of the threaded workloads to CPU i (default: unpinned)
#   BENCH_OUT=<file>        where the raw RESULT lines go (default: a new temporary file)
#   MIMALLOC_SO, JEMALLOC_SO, TCMALLOC_SO   paths of the peers' shared objects
#   HOSTMALLOC_SO           the override (default: libhostmalloc-override.so of the build tree)
#   BENCH_LIBDIRS           directories searched for the peers (default: the usual lib dirs)
set -u

die() {
    echo "run.sh: $*" >&2
    exit 1
}

# ---- The report: pure awk (works with mawk, gawk and busybox awk) ------------------------------
report() {
    local file=$1 baseline=$2
    awk -v baseline="$baseline" '
    function median(list,    n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 2; i <= n; i++) {          # insertion sort: a handful of values
            t = a[i] + 0
            for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
            a[j + 1] = t
        }
        if (n == 0) return ""
        if (n % 2) return a[(n + 1) / 2] + 0
        return (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function spread(list, med,    n, a, i, lo, hi) {   # half the range, percent of the median
        n = split(list, a, " ")
        if (n < 2 || med <= 0) return ""
        lo = hi = a[1] + 0
        for (i = 2; i <= n; i++) { if (a[i] + 0 < lo) lo = a[i] + 0; if (a[i] + 0 > hi) hi = a[i] + 0 }
        return sprintf("%.0f%%", 50 * (hi - lo) / med)
    }
    function add(key, field, value) {
        if (value == "") return
        vals[key, field] = (key SUBSEP field) in vals ? vals[key, field] " " value : value
    }
    /^RESULT / || /^FAIL / {
        delete f
        for (i = 2; i <= NF; i++) { eq = index($i, "="); if (eq) f[substr($i, 1, eq - 1)] = substr($i, eq + 1) }
        a = f["alloc"]; w = f["workload"]
        if (!(w in wseen)) { wseen[w] = 1; worder[++nw] = w }
        if (!(a in aseen)) { aseen[a] = 1; aorder[++na] = a }
        k = w SUBSEP a
        if ($1 == "FAIL") { fails[k]++; next }
        runs[k]++
        threads[w] = f["threads"]
        add(k, "time", f["time_s"]); add(k, "peak", f["peak_rss_kb"])
        add(k, "sys", f["sys_s"]); add(k, "flt", f["minflt"])
        if ("rss_after_kb" in f) { hasrss[w] = 1; add(k, "after", f["rss_after_kb"]); add(k, "final", f["rss_final_kb"]) }
        if ("scale" in f) scale = f["scale"]
    }
    END {
        if (nw == 0) { print "no results"; exit 1 }
        for (wi = 1; wi <= nw; wi++) {
            w = worder[wi]
            printf "\n== %s  (threads=%s, scale=%s; medians over the runs; x = ratio to %s) ==\n", w, threads[w], scale, baseline
            hdr = sprintf("%-16s %4s %10s %6s %7s %12s %7s %8s %10s", "allocator", "runs", "time_s", "+-", "x time", "peak_rss_kb", "x rss", "sys_s", "minflt")
            if (w in hasrss) hdr = hdr sprintf(" %13s %13s", "rss_after_kb", "rss_final_kb")
            print hdr
            kb = w SUBSEP baseline
            bt = (kb SUBSEP "time") in vals ? median(vals[kb, "time"]) : ""
            bp = (kb SUBSEP "peak") in vals ? median(vals[kb, "peak"]) : ""
            for (ai = 1; ai <= na; ai++) {
                a = aorder[ai]; k = w SUBSEP a
                if (!(k in runs) && !(k in fails)) continue
                if (!(k in runs)) { printf "%-16s %4s  FAILED (%d runs)\n", a, 0, fails[k]; continue }
                t = median(vals[k, "time"]); p = median(vals[k, "peak"])
                xt = (bt > 0) ? sprintf("%.2f", t / bt) : "-"
                xp = (bp > 0) ? sprintf("%.2f", p / bp) : "-"
                line = sprintf("%-16s %4d %10.4f %6s %7s %12.0f %7s", a, runs[k], t, spread(vals[k, "time"], t), xt, p, xp)
                line = line (((k SUBSEP "sys") in vals) ? sprintf(" %8.3f %10.0f", median(vals[k, "sys"]), median(vals[k, "flt"])) : sprintf(" %8s %10s", "-", "-"))
                if (w in hasrss) line = line sprintf(" %13.0f %13.0f", median(vals[k, "after"]), median(vals[k, "final"]))
                if (k in fails) line = line sprintf("  (%d failed)", fails[k])
                print line
                if (bt > 0 && t > 0) { lt[a] += log(t / bt); nt[a]++ }
                if (bp > 0 && p > 0) { lp[a] += log(p / bp); np[a]++ }
            }
        }
        printf "\n== geometric mean over workloads of the ratios to %s ==\n", baseline
        printf "%-16s %9s %9s %10s\n", "allocator", "x time", "x rss", "workloads"
        for (ai = 1; ai <= na; ai++) {
            a = aorder[ai]
            if (!(a in nt)) { printf "%-16s %9s %9s %10d\n", a, "-", "-", 0; continue }
            printf "%-16s %9.3f %9s %10d\n", a, exp(lt[a] / nt[a]), (a in np) ? sprintf("%.3f", exp(lp[a] / np[a])) : "-", nt[a]
        }
    }' "$file"
}

if [ "${1:-}" = "--report" ]; then
    [ -r "${2:-}" ] || die "usage: run.sh --report <results-file>"
    report "$2" "${BENCH_BASELINE:-malloc-mimalloc}"
    exit
fi

BIN=${1:-}
[ -n "$BIN" ] || die "usage: run.sh <path-to-bench-binary>   (or: run.sh --report <results-file>)"
[ -x "$BIN" ] || die "not an executable: $BIN"
case $BIN in */*) ;; *) BIN=./$BIN ;; esac

REPS=${BENCH_REPS:-5}
SCALE=${BENCH_SCALE:-1}
THREADS=${BENCH_THREADS:-0}
WORKLOADS=${BENCH_WORKLOADS:-pairs window prodcons mixed frag larsonish mstress larson rptest large idle medium buffers}
ALLOCATORS=${BENCH_ALLOCATORS:-com native malloc-hostmalloc malloc-glibc malloc-mimalloc malloc-jemalloc malloc-tcmalloc}
BASELINE=${BENCH_BASELINE:-malloc-mimalloc}
TIMEOUT=${BENCH_TIMEOUT:-300}
case $REPS in '' | *[!0-9]* | 0) die "BENCH_REPS must be a positive integer" ;; esac
case $THREADS in '' | *[!0-9]*) die "BENCH_THREADS must be a number (0: the default)" ;; esac
OUT=${BENCH_OUT:-$(mktemp "${TMPDIR:-/tmp}/hostmalloc-bench.XXXXXX")}
: >"$OUT" || die "cannot write $OUT"
ERR=$(mktemp "${TMPDIR:-/tmp}/hostmalloc-bench-err.XXXXXX")
trap 'rm -f "$ERR"' EXIT


# ---- Locate the peers ------------------------------------------------------------------------
arch=$(uname -m)
LIBDIRS=${BENCH_LIBDIRS:-/usr/lib/$arch-linux-gnu /lib/$arch-linux-gnu /usr/lib64 /usr/lib /usr/local/lib64 /usr/local/lib}
find_so() { # find_so <soname>...: the first one found in LIBDIRS
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

declare -A DOOR PRELOAD ENVS
selected=()
for a in $ALLOCATORS; do
    so=""
    case $a in
    com | native) DOOR[$a]=$a ;;
    # the COM door's manager reads the HM_* environment: a limit set (far above what the
    # workloads use, so it never binds: what it costs is the accounting), or checked mode
    com-limit) DOOR[$a]=com ENVS[$a]="HM_LIMIT=16G HM_RESERVE_APPDOMAIN=1G HM_RESERVE_PROCESS=1G" ;;
    com-checked) DOOR[$a]=com ENVS[$a]="HM_CHECKED=1" ;;
    malloc-glibc) DOOR[$a]=malloc ;;
    malloc-hostmalloc) # the override built beside the bench binary's library
        so=${HOSTMALLOC_SO:-$(dirname "$(realpath "$BIN")")/../libhostmalloc-override.so} ;;
    malloc-mimalloc) so=${MIMALLOC_SO:-$(find_so libmimalloc.so.2 libmimalloc.so)} ;;
    malloc-jemalloc) so=${JEMALLOC_SO:-$(find_so libjemalloc.so.2 libjemalloc.so)} ;;
    malloc-tcmalloc) so=${TCMALLOC_SO:-$(find_so libtcmalloc_minimal.so.4 libtcmalloc_minimal.so libtcmalloc.so.4)} ;;
    *) die "unknown allocator '$a' (com com-limit com-checked native malloc-hostmalloc malloc-glibc malloc-mimalloc malloc-jemalloc malloc-tcmalloc)" ;;
    esac
    case $a in
    malloc-?*malloc)
        if [ -z "$so" ] || [ ! -e "$so" ]; then
            echo "note: skipping $a: its shared object was not found (searched: $LIBDIRS)" >&2
            continue
        fi
        DOOR[$a]=malloc
        PRELOAD[$a]=$so
        ;;
    esac
    # one tiny run: is the door there (BENCH_NO_HOSTMALLOC builds have no com/native) and does
    # the preload take effect?
    probe_ok=1
    if [ -n "${PRELOAD[$a]:-}" ]; then
        probe=$(env LD_PRELOAD="${PRELOAD[$a]}" "$BIN" "${DOOR[$a]}" pairs 1 n=1000 2>"$ERR") ||
            probe_ok=0
    else
        probe=$(env -u LD_PRELOAD "$BIN" "${DOOR[$a]}" pairs 1 n=1000 2>"$ERR") || probe_ok=0
    fi
    if [ $probe_ok -eq 0 ] || [ -z "$probe" ]; then
        echo "note: skipping $a: a probe run failed: $(tail -n 3 "$ERR" | tr '\n' ' ')" >&2
        continue
    fi
    lib=$(printf '%s\n' "$probe" | sed -n 's/.* malloc_lib=\([^ ]*\).*/\1/p')
    case $a in
    malloc-glibc) [ "$lib" = libc.so.6 ] || echo "note: malloc-glibc: malloc comes from '$lib', not glibc" >&2 ;;
    malloc-*) [ "$lib" = "$(basename "${PRELOAD[$a]}")" ] ||
        echo "note: $a: malloc comes from '$lib', not from ${PRELOAD[$a]}" >&2 ;;
    esac
    selected+=("$a")
done
[ ${#selected[@]} -gt 0 ] || die "no allocator to run"
case " ${selected[*]} " in
*" $BASELINE "*) ;;
*)
    echo "note: baseline $BASELINE is not available; ratios are to ${selected[0]}" >&2
    BASELINE=${selected[0]}
    ;;
esac

echo "bench: $BIN  reps=$REPS scale=$SCALE threads=$THREADS  allocators: ${selected[*]}" >&2
echo "bench: raw results in $OUT" >&2
for a in "${selected[@]}"; do
    [ -n "${PRELOAD[$a]:-}" ] && echo "bench: $a = LD_PRELOAD=${PRELOAD[$a]}" >&2
done

# ---- Run ---------------------------------------------------------------------------------------
n=${#selected[@]}
load0=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
start=$SECONDS
for ((rep = 1; rep <= REPS; rep++)); do
    for w in $WORKLOADS; do
        printf 'rep %d/%d %-10s' "$rep" "$REPS" "$w" >&2
        for ((i = 0; i < n; i++)); do
            a=${selected[$(((i + rep - 1) % n))]}
            # shellcheck disable=SC2086 # ENVS holds VAR=value words
            if [ -n "${PRELOAD[$a]:-}" ]; then
                line=$(timeout "$TIMEOUT" env LD_PRELOAD="${PRELOAD[$a]}" ${ENVS[$a]:-} \
                    "$BIN" "${DOOR[$a]}" "$w" "$THREADS" "$SCALE" 2>"$ERR")
            else
                line=$(timeout "$TIMEOUT" env -u LD_PRELOAD ${ENVS[$a]:-} \
                    "$BIN" "${DOOR[$a]}" "$w" "$THREADS" "$SCALE" 2>"$ERR")
            fi
            rc=$?
            line=$(printf '%s\n' "$line" | grep '^RESULT ' | head -n 1)
            if [ $rc -eq 0 ] && [ -n "$line" ]; then
                echo "$line alloc=$a rep=$rep scale=$SCALE" >>"$OUT"
                printf ' %s' "$a" >&2
            else
                echo "FAIL alloc=$a workload=$w rep=$rep rc=$rc" >>"$OUT"
                printf ' %s:FAILED(rc=%d)' "$a" "$rc" >&2
                [ $rc -eq 124 ] && echo " [timeout ${TIMEOUT}s]" >&2
                sed 's/^/    | /' "$ERR" | tail -n 5 >&2
            fi
        done
        printf '\n' >&2
    done
done
echo "bench: $((SECONDS - start)) s" >&2

echo "# $(date '+%Y-%m-%d %H:%M:%S')  $(uname -srm)  cpus=$(nproc 2>/dev/null || echo '?')" \
    " load(start)=$load0 load(end)=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
echo "# $BIN  reps=$REPS scale=$SCALE threads=$THREADS  raw: $OUT"
report "$OUT" "$BASELINE"
