#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/runtimes.sh: each runtime on its hostmalloc adapter against the same runtime on its own
# allocator, one run each, same workload; CPU time (user + system) and the ratio adapter /
# default. The adapters run twice: with the default purge delay and with HM_PURGE_DELAY=1000,
# to show what giving memory back early costs.
#
#   bench/runtimes.sh <build-dir>
#
# Lua: binary_trees.lua (depth 16) by lua5.4 and by hm-lua. SQLite: Debian's sqlite3 shell
# building an in-memory database and querying it 8 times (runtimes/sqlite/tests/*.sql), without and with
# the preloadable shim. CPython: bench/runtimes/work.py by /usr/bin/python3.11 and by hm-python3,
# in its default mode (pymalloc, arenas from the host) and with every request on the host
# (HM_PYTHON_ALLOCATOR=host). A runtime whose adapter was not built is skipped.
set -u
build=${1:?usage: bench/runtimes.sh <build-dir>}
src=$(cd "$(dirname "$0")/.." && pwd)
TIMEFORMAT='%U %S'

# cpu <command...>: the CPU seconds (user + system) of one run; "fail" when it failed
cpu() {
    local t
    t=$( { time "$@" >/dev/null 2>&1; } 2>&1 ) || { echo fail; return; }
    echo "$t" | awk '{ printf "%.2f", $1 + $2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b != "fail") printf "%.2fx", b / a; else print "-" }'; }

printf '%-8s %-34s %9s %9s %7s %9s %7s\n' runtime workload default adapter ratio purge1000 ratio
row() { # name workload default-cmd... -- adapter-env... -- adapter-cmd...
    local name=$1 what=$2; shift 2
    local def=() env=() ad=()
    while [ "$1" != -- ]; do def+=("$1"); shift; done; shift
    while [ "$1" != -- ]; do env+=("$1"); shift; done; shift
    ad=("$@")
    local d a p
    d=$(cpu "${def[@]}")
    a=$(cpu env "${env[@]}" "${ad[@]}")
    p=$(cpu env "${env[@]}" HM_PURGE_DELAY=1000 "${ad[@]}")
    printf '%-8s %-34s %8ss %8ss %7s %8ss %7s\n' "$name" "$what" "$d" "$a" "$(ratio "$d" "$a")" \
        "$p" "$(ratio "$d" "$p")"
}

lua_script=$src/runtimes/lua/tests/scripts/binary_trees.lua
if [ -x "$build/runtimes/lua/hm-lua" ] && command -v lua5.4 >/dev/null; then
    row lua "binary_trees.lua 16" lua5.4 "$lua_script" 16 -- HM_VERBOSE=0 -- \
        "$build/runtimes/lua/hm-lua" "$lua_script" 16
else
    echo "lua: adapter or lua5.4 missing, skipped"
fi

shim=$build/runtimes/sqlite/libhostmalloc-sqlite-preload.so
if [ -f "$shim" ] && command -v sqlite3 >/dev/null; then
    sql=$(mktemp)
    cat "$src/runtimes/sqlite/tests/make_db.sql" >"$sql"
    for _ in 1 2 3 4 5 6 7 8; do cat "$src/runtimes/sqlite/tests/queries.sql" >>"$sql"; done
    run_sqlite() { sqlite3 :memory: <"$sql"; }
    export -f run_sqlite
    export sql
    row sqlite "shop database in memory, 8 x queries" bash -c run_sqlite -- LD_PRELOAD="$shim" -- \
        bash -c run_sqlite
    rm -f "$sql"
else
    echo "sqlite: adapter or sqlite3 missing, skipped"
fi

if [ -x "$build/runtimes/python/hm-python3" ] && [ -x /usr/bin/python3.11 ]; then
    row python "work.py (json, dicts, cycles)" /usr/bin/python3.11 "$src/bench/runtimes/work.py" \
        -- HM_VERBOSE=0 -- "$build/runtimes/python/hm-python3" "$src/bench/runtimes/work.py"
    row python "work.py, every request on the host" /usr/bin/python3.11 \
        "$src/bench/runtimes/work.py" -- HM_VERBOSE=0 HM_PYTHON_ALLOCATOR=host -- \
        "$build/runtimes/python/hm-python3" "$src/bench/runtimes/work.py"
else
    echo "python: adapter or /usr/bin/python3.11 missing, skipped"
fi
