#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Install what a build step needs, with apt-get, only when something is missing.
#   scripts/deps.sh build   a C compiler, cmake and make (required); the runtimes the demo host
#                           embeds (Lua, SQLite, CPython); g++ and ninja (optional: the C++
#                           example host, faster builds)
#   scripts/deps.sh test    + g++, ninja, cmocka, pkg-config, valgrind, clang (sanitizers,
#                           fuzzing), clang-format, groff, the runtimes the adapters of
#                           runtimes/ host and their test suites
#   scripts/deps.sh bench   + the peer allocators (mimalloc, jemalloc, tcmalloc; Scudo, of
#                           compiler-rt, for the misuse suite's comparison runs), valgrind, the
#                           runtimes of bench/runtimes.sh, time (bench/public.sh)
# A tool already on PATH counts for its package (cc for gcc, c++ for g++, ninja for
# ninja-build), so a machine that has them some other way needs nothing from apt-get. Without
# root, a missing required package is an error; a missing optional one only a note.
set -euo pipefail
required=(gcc make cmake)
optional=()
case "${1:-build}" in
build) required+=(pkg-config liblua5.4-dev libsqlite3-dev python3.11-dev) # the demo host
  optional=(g++ ninja-build) ;;
test) required+=(g++ ninja-build pkg-config libcmocka-dev valgrind clang clang-format
      binutils groff-base
      python3 sqlite3 git xz-utils # the real programs run under the malloc override
      util-linux # setpriv, findmnt: the setuid test of the override
      liblua5.4-dev lua5.4 lua-lpeg lua-cjson lua-dkjson libsqlite3-dev python3.11-dev
      libpython3.11-testsuite) ;; # runtimes/
bench) required+=(g++ ninja-build pkg-config valgrind strace libmimalloc-dev libjemalloc-dev
      libgoogle-perftools-dev libclang-rt-dev liblua5.4-dev lua5.4 libsqlite3-dev sqlite3
      python3.11-dev time) ;;
*) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac
have() {
  case "$1" in
  gcc) command -v cc || command -v gcc ;;
  g++) command -v c++ || command -v g++ ;;
  ninja-build) command -v ninja ;;
  make | cmake) command -v "$1" ;;
  *) dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep "install ok installed" ;;
  esac >/dev/null 2>&1
}
missing=()
missing_optional=()
for p in "${required[@]}"; do have "$p" || missing+=("$p"); done
for p in "${optional[@]}"; do have "$p" || missing_optional+=("$p"); done
[ ${#missing[@]} -eq 0 ] && [ ${#missing_optional[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  if [ ${#missing[@]} -ne 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "optional packages not installed: ${missing_optional[*]} (the build goes on without" \
    "them; sudo apt-get install ${missing_optional[*]} adds them)" >&2
  exit 0
fi
missing+=(${missing_optional[@]+"${missing_optional[@]}"})
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
