#!/bin/sh
# SPDX-License-Identifier: MIT
# compare.sh HM_LUA LUA54 SCRIPT: run SCRIPT with both interpreters; their standard output
# and exit status must be the same.
set -u
hm=$1 ref=$2 script=$3
[ -n "$ref" ] || { echo "lua5.4 not found: install lua5.4"; exit 1; }
out=$(mktemp -d) || exit 1
trap 'rm -rf "$out"' EXIT
"$hm" "$script" >"$out/hm" 2>"$out/hm.err"; hs=$?
"$ref" "$script" >"$out/ref" 2>"$out/ref.err"; rs=$?
if [ $hs -ne $rs ] || ! cmp -s "$out/hm" "$out/ref"; then
  echo "hm-lua (status $hs) and lua5.4 (status $rs) differ on $script:"
  diff "$out/ref" "$out/hm" | head -40
  cat "$out/hm.err"
  exit 1
fi
[ -s "$out/hm" ] || { echo "no output from $script"; exit 1; }
echo "same output ($(wc -l <"$out/hm") lines), status $hs"
