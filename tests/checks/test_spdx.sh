#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/checks/test_spdx.sh: every source file of the project names its licence with an SPDX line
# within its first three lines (a distribution's licence check reads them), and the licence it
# names is the one in LICENSE.
#
# usage: test_spdx.sh <source dir>
set -eu
src=${1:?usage: test_spdx.sh <source dir>}
cd "$src"
grep -q '^MIT License' LICENSE || { echo "FAIL: LICENSE is not the MIT licence"; exit 1; }
# The project's files: in a git checkout, the tracked ones (an install prefix or a build
# directory of any name inside the tree is not the project's); else every file outside build*.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    files() { git ls-files | sed 's|^|./|'; }
else
    files() { find . \( -path ./.git -o -path './build*' \) -prune -o -type f -print; }
fi
missing=$(files | grep -v '^\./tests/fuzz/corpus/' |
    grep -E '\.(c|h|cpp|sh|py|cmake|in|3)$|/CMakeLists\.txt$|/Makefile$|^\./\.ci/run$' |
    while read -r f; do
        head -n 3 "$f" | grep -q 'SPDX-License-Identifier: MIT' || echo "$f"
    done)
if [ -n "$missing" ]; then
    echo "FAIL: no 'SPDX-License-Identifier: MIT' line in the first three lines of:"
    echo "$missing" | sed 's/^/    /'
    exit 1
fi
echo "every source file names its licence (MIT)"
