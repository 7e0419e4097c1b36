#!/usr/bin/env bash
# Install what a build step needs, with apt-get, only when something is missing.
#   scripts/deps.sh build   compiler, cmake, ninja, and the runtimes the demo host embeds
#   scripts/deps.sh test    + cmocka, pkg-config, valgrind, clang (sanitizers, fuzzing), the
#                           runtimes the adapters of runtimes/ host (Lua, SQLite, CPython)
#   scripts/deps.sh bench   + the peer allocators (mimalloc, jemalloc, tcmalloc), valgrind, the
#                           runtimes of bench/runtimes.sh
set -euo pipefail
want=(gcc g++ make cmake ninja-build)
case "${1:-build}" in
build) want+=(pkg-config liblua5.4-dev libsqlite3-dev python3.11-dev) ;; # the demo host
test) want+=(pkg-config libcmocka-dev valgrind clang binutils
      python3 sqlite3 git xz-utils # the real programs run under the malloc override
      liblua5.4-dev lua5.4 lua-lpeg lua-cjson lua-dkjson libsqlite3-dev python3.11-dev libpython3.11-testsuite) ;; # runtimes/
bench) want+=(pkg-config valgrind libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev
       liblua5.4-dev lua5.4 libsqlite3-dev sqlite3 python3.11-dev) ;; # bench/runtimes.sh
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
