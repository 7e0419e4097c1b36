#!/bin/sh
# SPDX-License-Identifier: MIT
# regrtest.sh HM_PYTHON3 REF_PYTHON3 DIR MODULE...: Python's own regression tests (Debian's
# libpython3.11-testsuite) for MODULEs, run by hm-python3 and by Debian's python3.11 side by
# side; every test case must have the same outcome under both (compare_junit.py).
set -u
hm=$1 ref=$2 dir=$3
shift 3
[ -x "$ref" ] || { echo "$ref not found: install python3.11"; exit 1; }
"$ref" -c "import test.libregrtest" 2>/dev/null || {
  echo "Python's test suite not found: install libpython3.11-testsuite"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/hm" "$tmp/ref"
# an asynchronous list of a non-interactive shell ignores SIGINT, and the test runner would
# inherit that (test_threading's interrupt_main tests need it): give it back its default
(cd "$tmp/hm" && env --default-signal=INT "$hm" -m test -w --junit-xml "$tmp/hm.xml" "$@" >"$tmp/hm.log" 2>&1) &
pid=$!
(cd "$tmp/ref" && "$ref" -m test -w --junit-xml "$tmp/ref.xml" "$@" >"$tmp/ref.log" 2>&1)
rs=$?
wait $pid
hs=$?
tail -6 "$tmp/hm.log"
grep -E "^(FAIL|ERROR): |re-run" "$tmp/hm.log" "$tmp/ref.log" | head -20
if [ $hs -ne $rs ]; then
  echo "exit status: hm-python3 $hs, python3.11 $rs"; tail -40 "$tmp/hm.log"; exit 1
fi
"$ref" "$dir/compare_junit.py" "$tmp/ref.xml" "$tmp/hm.xml" || { tail -40 "$tmp/hm.log"; exit 1; }
