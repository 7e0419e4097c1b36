#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/security-suite.sh: runs a public suite of misuse programs, built outside this project,
# with an allocator preloaded, and counts what it let through.
#
#   bench/security-suite.sh <dir of the suite's programs> [<allocator .so>] [VAR=value ...]
#
# The suite is mimalloc-bench's `bench/security` folder (github.com/daanx/mimalloc-bench),
# built with its own CMake files; nothing of it is part of hostmalloc. Each program makes one
# mistake and prints NOT_CAUGHT when it got through; a program that is stopped (a signal, an
# abort) or that ends without that line counts as caught, the suite's own rule. Without an
# allocator the C library's malloc runs. The VAR=value arguments go into each program's
# environment (e.g. HM_CHECKED=1). Each program gets 10 s.
#
# Output: one line per program that got through, then "caught N of M".
set -u
# shellcheck source=bench/suite-args.sh
. "$(dirname "$0")/suite-args.sh"
suite_args security-suite.sh "$@"

caught=0
total=0
for prog in "$dir"/*; do
    [ -f "$prog" ] && [ -x "$prog" ] || continue
    total=$((total + 1))
    out=$(env "${run_env[@]}" timeout 10 "$prog" 2>/dev/null | tr -d '\000')
    if printf '%s\n' "$out" | grep -q NOT_CAUGHT; then
        echo "  not caught: $(basename "$prog")"
    else
        caught=$((caught + 1))
    fi
done
echo "caught $caught of $total"
