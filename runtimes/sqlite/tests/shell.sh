#!/bin/sh
# SPDX-License-Identifier: MIT
# shell.sh SQLITE3 PRELOAD DIR: Debian's sqlite3 shell on a real database, with SQLite's memory
# on hostmalloc through the preloadable shim: the same output as without it; then, under a
# small budget, SQLite's own "out of memory" for one statement and the next one running.
set -u
sqlite3=$1 preload=$2 dir=$3
[ -n "$sqlite3" ] || { echo "sqlite3 not found: install sqlite3"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
db=$tmp/shop.db
"$sqlite3" "$db" <"$dir/make_db.sql" || { echo "could not make the database"; exit 1; }

"$sqlite3" "$db" <"$dir/queries.sql" >"$tmp/ref" 2>&1; rs=$?
LD_PRELOAD=$preload HM_LIMIT=256M "$sqlite3" "$db" <"$dir/queries.sql" >"$tmp/hm" 2>&1; hs=$?
if [ $rs -ne 0 ] || [ $hs -ne 0 ] || ! cmp -s "$tmp/ref" "$tmp/hm"; then
  echo "sqlite3 with the shim (status $hs) and without (status $rs) differ:"
  diff "$tmp/ref" "$tmp/hm" | head -40
  exit 1
fi
[ "$(wc -l <"$tmp/hm")" -gt 50 ] || { echo "too little output:"; cat "$tmp/hm"; exit 1; }
echo "queries: same output ($(wc -l <"$tmp/hm") lines)"

# the whole budget.sql passes without a budget (so the errors below are the budget's)
"$sqlite3" "$db" <"$dir/budget.sql" >"$tmp/nolimit" 2>&1 || { cat "$tmp/nolimit"; exit 1; }
LD_PRELOAD=$preload HM_LIMIT=12M HM_PURGE_DELAY=0 "$sqlite3" "$db" <"$dir/budget.sql" \
  >"$tmp/out" 2>&1
cat "$tmp/out"
n=$(grep -c "out of memory" "$tmp/out")
[ "$n" -eq 2 ] || { echo "expected 2 out-of-memory errors, got $n"; exit 1; }
grep -q "^after|60000$" "$tmp/out" && grep -q "^again|2000$" "$tmp/out" ||
  { echo "the shell did not go on after the error"; exit 1; }
if grep -q "not installed" "$tmp/out"; then exit 1; fi
echo "budget: out of memory twice, the shell went on"
