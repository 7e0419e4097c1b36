#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tests/misuse/run.sh: runs every program of the misuse suite in one mode and compares what
# happened with expectations.txt (docs/DEBUG.md, "Misuse suite").
#
# usage: run.sh <libhostmalloc-override.so> <dir of the programs> <mode>
#   mode default:        the override preloaded, HM_CHECKED=0
#   mode checked:        the override preloaded, HM_CHECKED=1
#   mode glibc:          no preload (the override is not used): the C library's malloc
#   mode peer:<lib.so>:  <lib.so> preloaded in place of the override: another allocator
# glibc and peer:<lib.so> are for comparison only: scored leniently (the allocator's own
# messages are not hostmalloc's: any abort, fatal signal or exit status that is not one of the
# programs' own counts as caught, and so does a request refused with another error than the
# documented one), never compared with expectations.txt, never failing.
#
# An outcome is one of:
#   abort    SIGABRT with exactly one line on stderr, which starts "hostmalloc: " (and holds the
#            text written after "abort:" in the expectation)
#   fault    SIGSEGV or SIGBUS
#   error    the call failed with the documented error (the program exits 2)
#   wiped    a read of freed memory found none of the program's data there (it exits 6): the
#            freed block was overwritten, so the read could not leak what it held
#   missed   the program went on after its mistake and exited 0
# and anything else (another exit status or signal, a report without an abort, a "hostmalloc: "
# line with an outcome other than abort) is reported as it is and matches no expectation.
# Each program gets 20 s; they take milliseconds.
#
# Output: one line per program, then "misuse <mode>: caught N of M (expected N)". Exit status 1
# when any outcome differs from its expectation: a regression (caught before, not now) or an
# improvement (caught now: raise the expectation), both named.
set -u
usage="usage: run.sh <override .so> <dir of programs> <default|checked|glibc|peer:<lib.so>>"
so=${1:?$usage}
dir=${2:?$usage}
mode=${3:?$usage}
here=$(cd "$(dirname "$0")" && pwd)
expectations=$here/expectations.txt

# lenient: a comparison run (glibc, a peer); preload: the library the programs run with
lenient=
case $mode in
default) checked=0 preload=$so ;;
checked) checked=1 preload=$so ;;
glibc) lenient=1 preload= ;;
peer:?*) lenient=1 preload=${mode#peer:} ;;
*) echo "run.sh: mode must be default, checked, glibc or peer:<lib.so>, not '$mode'"; exit 2 ;;
esac
if [ -n "$preload" ] && [ ! -f "$preload" ]; then
    echo "run.sh: no library at $preload"; exit 2
fi
[ -d "$dir" ] || { echo "run.sh: no directory $dir"; exit 2; }
[ -f "$expectations" ] || { echo "run.sh: no $expectations"; exit 2; }

# Only what this script sets reaches the programs: no HM_* option, preload or glibc malloc
# tunable of the caller's environment, and no core files left behind.
for v in $(env | sed -n 's/^\(HM_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
# A limit of 1 GiB or more, whatever the machine's memory: blocks of 64 to 256 KiB (the _large
# programs' 100,000 bytes) then live in large pages in default mode, as expectations.txt says
# (under a smaller limit they are huge blocks)
export HM_LIMIT=4G
unset LD_PRELOAD MALLOC_CHECK_ MALLOC_PERTURB_ GLIBC_TUNABLES
ulimit -c 0
[ -z "$preload" ] || preload=$(cd "$(dirname "$preload")" && pwd)/$(basename "$preload")

err=$(mktemp "${TMPDIR:-/tmp}/misuse.XXXXXX") || exit 2
trap 'rm -f "$err"' EXIT
trap 'exit 2' INT TERM

# outcome <program>: runs it, sets $outcome and $line (the first line of its stderr)
outcome_of() {
    if [ ! -x "$dir/$1" ]; then
        outcome="not-built"; line=""; return
    fi
    # the braces' redirection keeps bash's own "Aborted" notice out of the output
    if [ -n "$lenient" ]; then
        # the preload reaches the program only (timeout runs with the C library's malloc)
        { timeout 20 env ${preload:+LD_PRELOAD=$preload} "$dir/$1" >/dev/null 2>"$err"; } 2>/dev/null
    else
        { HM_CHECKED=$checked LD_PRELOAD=$preload timeout 20 "$dir/$1" >/dev/null 2>"$err"; } 2>/dev/null
    fi
    status=$?
    line=$(head -n 1 "$err")
    lines=$(wc -l <"$err")
    ours=$(grep -c '^hostmalloc: ' "$err")
    case $status in
    0) outcome=missed ;;
    2) outcome=error ;;
    3) outcome=wrong-error ;;
    4) outcome=broken ;;
    5) outcome=absent ;;
    6) outcome=wiped ;;
    124) outcome=timeout ;;
    134) outcome=abort ;;
    135 | 139) outcome=fault ;;
    *) if [ "$status" -gt 128 ]; then outcome="signal-$((status - 128))"; else
        outcome="exit-$status"; fi ;;
    esac
    [ -n "$lenient" ] && return
    if [ "$outcome" = abort ]; then
        # the abort must be hostmalloc's, with its one line
        [ "$lines" -eq 1 ] && [ "$ours" -eq 1 ] || outcome="abort-without-one-hostmalloc-line"
    elif [ "$ours" -ne 0 ]; then
        outcome="$outcome-with-a-report"
    fi
}

caught_outcome() {
    case $1 in abort | fault | error | wiped) return 0 ;; esac
    # a comparison run is scored leniently: any fatal signal or exit status of the allocator
    # (not one of the programs' own), with its own message or none, and a request refused with
    # another error than the documented one
    [ -n "$lenient" ] && case $1 in signal-* | exit-* | wrong-error) return 0 ;; esac
    return 1
}

total=0
caught=0
expected_caught=0
failed=0
absent=0
while IFS='|' read -r name def chk; do
    # comments and blank lines; fields lose their surrounding blanks
    name=$(echo $name)
    case $name in '' | '#'*) continue ;; esac
    case $mode in
    default) want=$(echo $def) ;;
    checked) want=$(echo $chk) ;;
    *) want="" ;;
    esac
    outcome_of "$name"
    if [ "$outcome" = absent ]; then
        # a function this malloc does not have (comparison runs only: the override has them all)
        [ -n "$lenient" ] && { absent=$((absent + 1)); printf '  %-36s %s\n' "$name" absent; continue; }
    fi
    total=$((total + 1))
    caught_outcome "$outcome" && caught=$((caught + 1))
    if [ -n "$lenient" ]; then
        printf '  %-36s %-8s%s\n' "$name" "$outcome" "${line:+  [$line]}"
        continue
    fi
    want_kind=${want%%:*}
    want_text=
    case $want in *:*) want_text=$(echo ${want#*:}) ;; esac
    caught_outcome "$want_kind" && expected_caught=$((expected_caught + 1))
    verdict=ok
    if [ "$outcome" != "$want_kind" ]; then
        if caught_outcome "$want_kind" && ! caught_outcome "$outcome"; then
            verdict="FAIL (regression: expected $want)"
        elif caught_outcome "$outcome" && ! caught_outcome "$want_kind"; then
            verdict="FAIL (improvement: expected $want; raise the expectation)"
        else
            verdict="FAIL (changed: expected $want)"
        fi
    elif [ -n "$want_text" ] && ! printf '%s\n' "$line" | grep -qF "$want_text"; then
        verdict="FAIL (changed: the message should say \"$want_text\")"
    fi
    case $verdict in FAIL*) failed=$((failed + 1)) ;; esac
    printf '  %-36s %-8s %s%s\n' "$name" "$outcome" "$verdict" "${line:+  [$line]}"
done <"$expectations"

if [ -n "$lenient" ]; then
    note=
    [ "$absent" -ne 0 ] && note=" ($absent not counted: functions this malloc does not have)"
    name=glibc
    [ -n "$preload" ] && name="peer $(basename "$preload")"
    echo "misuse $name: caught $caught of $total$note"
    exit 0
fi
echo "misuse $mode: caught $caught of $total (expected $expected_caught)"
if [ "$failed" -ne 0 ]; then
    echo "misuse $mode: $failed program(s) differ from expectations.txt"
    exit 1
fi
exit 0
