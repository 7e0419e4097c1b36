#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what a build step needs, with apt-get, only when something is missing.
#   scripts/deps.sh build   compiler, cmake, ninja
#   scripts/deps.sh test    + cmocka, pkg-config, valgrind, clang (sanitizers, fuzzing)
#   scripts/deps.sh bench   + the peer allocators (mimalloc, jemalloc, tcmalloc), valgrind
set -euo pipefail
want=(gcc g++ make cmake ninja-build)
case "${1:-build}" in
build) ;;
test) want+=(pkg-config libcmocka-dev valgrind clang binutils
      python3 sqlite3 git xz-utils # the real programs run under the malloc override
      util-linux) ;; # setpriv, findmnt: the setuid test of the override
bench) want+=(pkg-config valgrind libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev) ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
