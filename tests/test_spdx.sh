#!/bin/sh
# SPDX-License-Identifier: MIT
# tests/test_spdx.sh: every source file of the project names its licence with an SPDX line
# within its first three lines (a distribution's licence check reads them), and the licence it
# names is the one in LICENSE.
#
# usage: test_spdx.sh <source dir>
set -eu
src=${1:?usage: test_spdx.sh <source dir>}
cd "$src"
grep -q '^MIT License' LICENSE || { echo "FAIL: LICENSE is not the MIT licence"; exit 1; }
missing=$(find . \( -path ./.git -o -path './build*' -o -path ./tests/fuzz/corpus \) -prune -o \
    -type f \( -name '*.c' -o -name '*.h' -o -name '*.cpp' -o -name '*.sh' -o -name '*.py' \
    -o -name '*.cmake' -o -name '*.in' -o -name CMakeLists.txt -o -name Makefile \
    -o -name '*.3' -o -path ./.ci/run \) -print |
    while read -r f; do
        head -n 3 "$f" | grep -q 'SPDX-License-Identifier: MIT' || echo "$f"
    done)
if [ -n "$missing" ]; then
    echo "FAIL: no 'SPDX-License-Identifier: MIT' line in the first three lines of:"
    echo "$missing" | sed 's/^/    /'
    exit 1
fi
echo "every source file names its licence (MIT)"
