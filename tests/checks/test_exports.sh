#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/checks/test_exports.sh: the dynamic symbols libhostmalloc.so defines.
#
# usage: test_exports.sh <libhostmalloc.so> <include/hostmalloc dir> [nm]
#
# Passes when every defined dynamic symbol starts with hm_ or IID_ (besides the linker's own
# _init, _fini, _edata, _end, __bss_start), and every function marked HM_API in hostmalloc.h
# and every IID declared in hosting.h is exported.
set -eu

lib=${1:?usage: test_exports.sh <libhostmalloc.so> <include dir> [nm]}
incdir=${2:?usage: test_exports.sh <libhostmalloc.so> <include dir> [nm]}
nm=${3:-nm}
[ -n "$nm" ] || nm="nm"

if [ ! -f "$lib" ]; then
    echo "FAIL: no library at $lib"
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hm-exports.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

# "<address> <type> <name>[@version]": keep the name without its version.
"$nm" -D --defined-only "$lib" | awk 'NF >= 3 { print $3 } NF == 2 { print $2 }' |
    sed 's/@.*//' | sort -u >"$tmp/defined"

if [ ! -s "$tmp/defined" ]; then
    echo "FAIL: $nm -D --defined-only $lib lists no symbol"
    exit 1
fi

status=0

# 0. No test hook in a library that is installed.
if grep -E '^hm_test_' "$tmp/defined" >"$tmp/hooks"; then
    echo "FAIL: test hooks exported by $lib (they belong to test builds only):"
    sed 's/^/    /' "$tmp/hooks"
    status=1
fi

# 1. Nothing outside the public namespaces.
grep -v -E '^(hm_|IID_)' "$tmp/defined" |
    grep -v -x -E '_init|_fini|_edata|_end|__bss_start' >"$tmp/extra" || true
if [ -s "$tmp/extra" ]; then
    echo "FAIL: symbols exported outside hm_* / IID_*:"
    sed 's/^/    /' "$tmp/extra"
    status=1
fi

# 2. Everything public is there.
sed -n 's/^HM_API[^(]*[ *]\([A-Za-z_][A-Za-z0-9_]*\)(.*/\1/p' "$incdir/hostmalloc.h" >"$tmp/public"
sed -n 's/^extern const IID \(IID_[A-Za-z0-9_]*\);.*/\1/p' "$incdir/hosting.h" >>"$tmp/public"
if [ "$(wc -l <"$tmp/public")" -lt 10 ]; then
    echo "FAIL: could not read the public declarations from $incdir"
    exit 1
fi
sort -u "$tmp/public" -o "$tmp/public"
comm -23 "$tmp/public" "$tmp/defined" >"$tmp/missing"
if [ -s "$tmp/missing" ]; then
    echo "FAIL: public symbols not exported by $lib:"
    sed 's/^/    /' "$tmp/missing"
    status=1
fi

# 3. The IIDs are data, the functions are code.
"$nm" -D --defined-only "$lib" | awk '$3 ~ /^IID_/ && $2 !~ /^[RrDdBbVv]$/ { print }' >"$tmp/badiid"
if [ -s "$tmp/badiid" ]; then
    echo "FAIL: IID symbols that are not data:"
    sed 's/^/    /' "$tmp/badiid"
    status=1
fi

if [ "$status" -eq 0 ]; then
    echo "OK: $(wc -l <"$tmp/defined") defined dynamic symbols, all hm_*/IID_*, all" \
        "$(wc -l <"$tmp/public") public ones present"
fi
exit "$status"
