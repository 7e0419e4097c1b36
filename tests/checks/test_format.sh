#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/checks/test_format.sh: every C and C++ source of the project is as clang-format (the
# repository's .clang-format) writes it. `make format` rewrites them.
#
# usage: test_format.sh <source dir> [clang-format]
set -eu
src=${1:?usage: test_format.sh <source dir> [clang-format]}
cf=${2:-clang-format}
cd "$src"
# the files git tracks in a checkout (a build directory inside the tree holds generated
# sources); every file below the folder elsewhere
if git -C . rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files=$(git ls-files '*.c' '*.h' '*.cpp')
else
    files=$(find . \( -path ./.git -o -path './build*' \) -prune -o -type f \
        \( -name '*.c' -o -name '*.h' -o -name '*.cpp' \) -print | sort)
fi
bad=$(for f in $files; do [ -f "$f" ] || continue
    "$cf" --dry-run -Werror "$f" >/dev/null 2>&1 || echo "$f"; done)
if [ -n "$bad" ]; then
    echo "FAIL: not formatted (run make format):"
    echo "$bad" | sed 's/^/    /'
    exit 1
fi
echo "every C and C++ source is formatted"
