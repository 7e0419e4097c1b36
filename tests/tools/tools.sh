#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tools.sh <faulty-binary>: memcheck must name each fault of `faulty faults` and find nothing
# wrong with `faulty clean`. Prints "N passed, N failed".
set -u
BIN=$1
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }
out=$(valgrind --leak-check=full --show-leak-kinds=definite --track-origins=no "$BIN" faults 2>&1)
grep -q "Invalid read of size 1" <<<"$out" && grep -A3 "Invalid read of size 1" <<<"$out" | grep -q overrun_read &&
    ok "an overrun read is reported in overrun_read" || bad "overrun read not reported"
grep -q "Invalid write of size 1" <<<"$out" && grep -A3 "Invalid write of size 1" <<<"$out" | grep -q write_after_free &&
    ok "a write after free is reported in write_after_free" || bad "write after free not reported"
grep -q "1,000 bytes in 1 blocks are definitely lost" <<<"$out" && grep -A6 "definitely lost in loss record" <<<"$out" | grep -q "leak " &&
    ok "the leaked block is reported with its allocation in leak()" || bad "leak not reported"
[ $fail -eq 0 ] || echo "$out" | tail -40
out=$(valgrind --leak-check=full --show-leak-kinds=definite,possible --error-exitcode=9 "$BIN" clean 2>&1)
rc=$?
if [ $rc -eq 0 ] && grep -q "ERROR SUMMARY: 0 errors" <<<"$out" && ! grep -q "definitely lost: [1-9]" <<<"$out"; then
    ok "a correct program is clean under memcheck"
else
    bad "a correct program is not clean (exit $rc)"
    echo "$out" | tail -40
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
