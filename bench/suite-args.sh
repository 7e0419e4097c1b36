# SPDX-License-Identifier: MIT
# bench/suite-args.sh: sourced by the scripts that run a public suite of misuse programs with an
# allocator preloaded (security-suite.sh, hardened-suite.sh): their common arguments and a clean
# environment.
#
#   suite_args <script name> <dir of programs> [<allocator .so>] [VAR=value ...]
#
# sets `dir`, `so` (an absolute path, or empty: the C library's malloc serves) and the array
# `run_env`, what a program runs with: `env "${run_env[@]}" <program>` (the VAR=value arguments,
# then the preload). The caller's HM_* variables and the C library's malloc options are unset
# and core dumps are off. A bad argument: a message and exit status 2.
suite_args() {
    local name=$1
    shift
    dir=${1:-}
    [ -n "$dir" ] || {
        echo "usage: $name <dir of programs> [<allocator .so>] [VAR=value ...]" >&2
        exit 2
    }
    shift
    so=""
    if [ $# -gt 0 ] && [ "${1#*=}" = "$1" ]; then
        so=$1
        shift
    fi
    [ -d "$dir" ] || { echo "$name: no directory $dir" >&2; exit 2; }
    [ -z "$so" ] || [ -f "$so" ] || { echo "$name: no library $so" >&2; exit 2; }
    [ -z "$so" ] || so=$(cd "$(dirname "$so")" && pwd)/$(basename "$so")
    run_env=("$@")
    [ -z "$so" ] || run_env+=("LD_PRELOAD=$so")
    local v
    for v in $(env | sed -n 's/^\(HM_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
    unset LD_PRELOAD MALLOC_CHECK_ MALLOC_PERTURB_ GLIBC_TUNABLES
    ulimit -c 0
}
