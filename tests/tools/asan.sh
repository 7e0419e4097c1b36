#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# asan.sh <faulty-binary>: with hostmalloc's AddressSanitizer poisoning, ASan must stop each
# fault of faulty.c in its function, and stay silent on `faulty clean`. "N passed, N failed".
set -u
BIN=$1
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); echo "$out" | head -20; }
out=$(ASAN_OPTIONS=detect_leaks=0 "$BIN" overrun 2>&1)
grep -q "READ of size 1" <<<"$out" && grep -q "overrun_read" <<<"$out" &&
    ok "a read past the block is stopped in overrun_read" || bad "overrun read not reported"
out=$(ASAN_OPTIONS=detect_leaks=0 "$BIN" uaf 2>&1)
grep -q "WRITE of size 1" <<<"$out" && grep -q "write_after_free" <<<"$out" &&
    ok "a write after free is stopped in write_after_free" || bad "write after free not reported"
out=$(ASAN_OPTIONS=detect_leaks=0 "$BIN" clean 2>&1)
rc=$?
[ $rc -eq 0 ] && ! grep -q "ERROR: AddressSanitizer" <<<"$out" &&
    ok "a correct program is clean under ASan" || bad "a correct program is not clean (exit $rc)"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
