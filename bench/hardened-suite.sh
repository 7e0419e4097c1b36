#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# bench/hardened-suite.sh: runs hardened_malloc's test programs (its "simple memory
# corruption" suite), built outside this project, with an allocator preloaded, and scores each
# program against the outcome that suite expects of a hardened allocator.
#
#   bench/hardened-suite.sh <dir of the built programs> [<allocator .so>] [VAR=value ...]
#
# The programs come from the `test` folder of github.com/GrapheneOS/hardened_malloc, each built
# on its own (`cc -std=c2x -O3 -D_GNU_SOURCE -DSLAB_CANARY=true prog.c -lpthread`, C++ ones with
# `-std=c++17 -fsized-deallocation`) and linked with no allocator, so that the preloaded one
# serves them; nothing of that suite is part of hostmalloc. The table below is that suite's
# expectation per program, in two kinds:
#   stop  the program makes a mistake and must not get through: any death by a signal (an
#         abort with the allocator's message, a segmentation fault) counts as caught. The
#         suite itself also wants its own message text; this score is the lenient one.
#   ok    correct use (or a request that must fail cleanly) that must exit 0; two of them must
#         also print what the suite wants: freed memory read back as zeros, and a block whose
#         usable size holds no byte more than malloc_usable_size says.
# 43 programs are scored: the suite's five about hardened_malloc's own malloc_object_size are
# left out (no other allocator has it), and so are the three that call free_sized or
# free_aligned_sized (the C library of Debian 12 has neither, so they build only against an
# allocator that exports them); those three are run and listed apart when they were built.
# The VAR=value arguments go into each program's environment (e.g. HM_CHECKED=1); each program
# gets 10 s.
#
# Output: one line per program that missed its expectation, then "scored N of 43" (and the
# extra three).
set -u
# shellcheck source=bench/suite-args.sh
. "$(dirname "$0")/suite-args.sh"
suite_args hardened-suite.sh "$@"

stop="delete_type_size_mismatch invalid_aligned_sized_delete_small
invalid_aligned_sized_delete_large double_free_large double_free_large_delayed double_free_small
double_free_small_delayed overflow_large_1_byte overflow_large_8_byte overflow_small_1_byte
overflow_small_8_byte invalid_free_protected invalid_free_small_region
invalid_free_small_region_far invalid_free_unprotected invalid_malloc_usable_size_small
invalid_malloc_usable_size_small_quarantine read_after_free_large read_zero_size
unaligned_free_large unaligned_free_small unaligned_malloc_usable_size_small uninitialized_free
uninitialized_malloc_usable_size uninitialized_realloc write_after_free_large
write_after_free_large_reuse write_after_free_small write_after_free_small_reuse write_zero_size"
ok="aligned_sized_delete_small aligned_sized_delete_large impossibly_large_malloc
uninitialized_read_small uninitialized_read_large realloc_init large_array_growth calloc_overflow
calloc_zeroed malloc_zero_different malloc_noreuse read_after_free_small string_overflow"
extra="free_sized_small free_sized_large aligned_sized_delete_small_min_align"

# run: runs $prog, sets status (the exit status, 128 + signal for a death by a signal) and out.
run() {
    local tmp
    tmp=$(mktemp)
    # (the group's stderr too: the shell's own line about a program killed by a signal)
    { env "${run_env[@]}" timeout -s KILL 10 "$prog" >"$tmp"; } 2>/dev/null
    status=$?
    out=$(tr -d '\000' <"$tmp")
    rm -f "$tmp"
}

zeros=$(for _ in $(seq 16); do echo 0; done)
scored=0
total=0
for name in $stop $ok; do
    total=$((total + 1))
    prog=$dir/$name
    if [ ! -x "$prog" ]; then
        echo "  not built: $name"
        continue
    fi
    run
    pass=0
    case " $(echo $stop) " in
    *" $name "*) [ "$status" -gt 128 ] && [ "$status" -ne 137 ] && pass=1 ;;
    *)
        [ "$status" -eq 0 ] && pass=1
        [ "$name" = read_after_free_small ] && [ "$out" != "$zeros" ] && pass=0
        [ "$name" = string_overflow ] && [ "$out" != "overflow by 0 bytes" ] && pass=0
        ;;
    esac
    if [ $pass -eq 1 ]; then
        scored=$((scored + 1))
    else
        echo "  missed: $name (exit status $status)"
    fi
done
echo "scored $scored of $total"

built=0
good=0
for name in $extra; do
    prog=$dir/$name
    [ -x "$prog" ] || continue
    built=$((built + 1))
    run
    if [ "$status" -eq 0 ]; then good=$((good + 1)); else echo "  missed: $name (exit status $status)"; fi
done
[ $built -eq 0 ] || echo "and $good of the $built programs that call free_sized or free_aligned_sized"
