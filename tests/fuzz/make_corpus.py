#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_corpus.py: write the seed corpus of fuzz_hosting (tests/fuzz/corpus/).

Each seed is a small program in the harness's input format (see fuzz_hosting.c, run_op):
a manager configuration, then operations, each an opcode byte and its arguments. Run it
from anywhere: python3 tests/fuzz/make_corpus.py [outdir]."""
import os
import struct
import sys

(CREATE, ALLOC, DEBUG_ALLOC, FREE, FOREIGN, INTERIOR, DOUBLE, CORRUPT, REFS, BUDGET,
 VRESERVE, VCOMMIT, VFREE, VPROTECT, VQUERY, VRESET, VRESERVE_AT, LOAD, BAD, WALK,
 CALLBACK, VAS, VEDGE) = (0, 1, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
                          21, 22, 23, 24)
M1 = 0x80  # the opcode bit that selects manager 1


def config(limit_mib=64, checked=False, purge0=False, reserves=None, faults=None, cache=0):
    b1 = (1 if checked else 0) | (2 if purge0 else 0) | (4 if reserves else 0) | \
         (8 if faults else 0) | (cache << 4)
    out = bytes([(limit_mib - 4) % 253, b1])
    if reserves:
        out += bytes(reserves)
    if faults:
        out += bytes(faults)
    return out


def size(n):
    """The size byte(s) for n: exact small sizes, multiples of 16, or 16-bit classes."""
    if n < 32:
        return bytes([n])
    if n % 16 == 0 and n // 16 < 256:
        return bytes([0x20, n // 16])
    if n <= 8192:
        return bytes([0x40]) + struct.pack('<H', n)
    if n <= 65535:
        return bytes([0x60]) + struct.pack('<H', n)
    if n % 64 == 0 and n // 64 < 65536:
        return bytes([0xA0]) + struct.pack('<H', n // 64)
    mib = n >> 20
    return bytes([0xC0, (mib - 1) % 48])


def edge(i):
    return bytes([0xE0 | i])


def alloc(inst=0, n=24, level=2, debug=False, fsel=5, mgr=0):
    return bytes([(DEBUG_ALLOC if debug else ALLOC) | mgr, inst]) + \
        (n if isinstance(n, bytes) else size(n)) + bytes([level, fsel])


def op(code, *args, mgr=0):
    return bytes([code | mgr] + list(args))


seeds = {}
# every operation once on a roomy manager
seeds['basic'] = config(64) + op(CREATE, 1) + alloc(0, 24) + alloc(0, 100) + \
    alloc(0, 5000, 0) + alloc(0, 200, 1, True) + op(FREE, 0, 1) + op(LOAD) + op(WALK, 0) + \
    op(REFS, 0, 0) + op(REFS, 0, 3) + op(REFS, 0, 3)
seeds['sizes'] = config(128) + op(CREATE, 1) + b''.join(alloc(0, edge(i)) for i in range(16)) + \
    op(WALK, 0) + b''.join(op(FREE, 0, i) for i in range(8))
seeds['huge'] = config(256, purge0=True) + op(CREATE, 3) + alloc(0, 1 << 20) + \
    alloc(0, 5 << 20, 2, True) + alloc(0, 70000) + op(INTERIOR, 0, 0, 3) + op(FREE, 0, 0) + \
    op(DOUBLE, 0, 0) + op(WALK, 0)
seeds['foreign'] = config(32) + op(CREATE, 1) + op(CREATE, 0) + alloc(0, 64) + alloc(1, 64) + \
    b''.join(op(FOREIGN, 0, k, 1) + struct.pack('<Q', 0x123456789 * (k + 1)) for k in range(10)) + \
    op(VRESERVE, 4, 0, 1, 2, 2) + op(FOREIGN, 1, 5, 0) + struct.pack('<Q', 3)
seeds['interior'] = config(32) + op(CREATE, 1) + alloc(0, 300) + alloc(0, 100000) + \
    b''.join(op(INTERIOR, 0, k % 2, w) for k in range(2) for w in range(6))
seeds['double_free_debug'] = config(32) + op(CREATE, 1) + alloc(0, 40, 2, True) + \
    alloc(0, 40, 2, True) + op(FREE, 0, 0) + op(DOUBLE, 0, 0) + op(DOUBLE, 0, 0) + \
    op(FREE, 0, 0) + op(DOUBLE, 0, 2)
seeds['checked'] = config(32, checked=True) + op(CREATE, 1) + alloc(0, 1) + alloc(0, 16) + \
    alloc(0, 70000) + op(FREE, 0, 0) + op(DOUBLE, 0, 0) + op(CORRUPT, 0, 0, 1) + \
    op(CORRUPT, 0, 0, 2) + op(DOUBLE, 0, 1) + op(DOUBLE, 0, 3) + op(WALK, 0) + op(REFS, 0, 4)
seeds['canaries'] = config(32) + op(CREATE, 0) + alloc(0, 24, 0, True) + alloc(0, 8000, 1, True) + \
    alloc(0, 33, 2, True, 0) + op(CORRUPT, 0, 0, 1) + op(CORRUPT, 0, 0, 4) + op(DOUBLE, 0, 1) + \
    op(FOREIGN, 0, 7, 0) + struct.pack('<Q', 0)
seeds['small_budget'] = config(4, purge0=True) + op(CREATE, 1) + \
    b''.join(alloc(0, 60000, k % 3) for k in range(12)) + alloc(0, 3 << 20) + op(LOAD) + \
    b''.join(op(FREE, 0, 0) for k in range(6)) + alloc(0, 1 << 20, 2)
seeds['reserves'] = config(16, reserves=[8, 4]) + op(CREATE, 1) + \
    b''.join(alloc(0, 65000, k % 3) for k in range(20)) + op(LOAD) + op(VRESERVE, 0, 1, 1, 2, 0) + \
    op(VRESERVE, 0, 1, 1, 2, 2) + op(LOAD)
seeds['faults'] = config(64, faults=[3, 2, 5]) + op(CREATE, 1) + \
    b''.join(alloc(0, 100, k % 3, k % 2 == 1) for k in range(12)) + op(VRESERVE, 8, 0, 1, 2, 1) + \
    op(VRESERVE, 8, 0, 1, 2, 1) + op(BAD, 0, 3)
seeds['budget_change'] = config(64) + op(CREATE, 1) + alloc(0, 1000, 2, True) + alloc(0, 50) + \
    op(CALLBACK, 1) + op(BUDGET, 1) + config(8, checked=True) + op(CREATE, 1) + alloc(0, 64) + \
    op(BUDGET, 4) + config(200, cache=2) + op(CREATE, 2) + alloc(0, 64)
seeds['two_managers'] = config(32) + op(CREATE, 1) + alloc(0, 48) + bytes([M1]) + \
    config(16, checked=True) + op(CREATE, 1, mgr=M1) + alloc(0, 48, mgr=M1) + \
    op(FOREIGN, 0, 3, 4) + struct.pack('<Q', 0) + op(FOREIGN, 0, 4, 0, mgr=M1) + \
    struct.pack('<Q', 0) + op(LOAD, mgr=M1)
seeds['virtual'] = config(64) + op(VRESERVE, 40, 0, 0, 1, 0) + \
    op(VCOMMIT, 0, 2, 3, 2, 0, 0, 0) + op(VQUERY, 0, 0, 0) + op(VQUERY, 0, 2, 5) + \
    op(VQUERY, 0, 5, 0) + op(VPROTECT, 0, 2, 1, 1) + op(VQUERY, 0, 2, 0) + \
    op(VPROTECT, 0, 1, 2, 2) + op(VRESET, 0, 3, 1) + op(VFREE, 0, 4, 3, 0) + \
    op(VQUERY, 0, 3, 0) + op(VCOMMIT, 0, 3, 1, 2, 2, 0, 0) + op(VFREE, 0, 3, 0, 0) + \
    op(VFREE, 0, 2, 1, 0) + op(VFREE, 0, 0, 0, 0) + op(VQUERY, 0xE1, 0, 0) + \
    op(VQUERY, 0xE0, 0, 0x10)
seeds['virtual_commit'] = config(8) + op(VRESERVE, 0, 1, 1, 5, 2) + \
    op(VRESERVE, 0xFF, 0, 2, 2, 0) + op(VRESERVE, 0x10, 0, 0x13, 4, 1) + \
    op(VCOMMIT, 2, 0, 63, 0x80, 0, 0x34, 0x12) + op(VCOMMIT, 2, 250, 20, 2, 2, 0, 0) + \
    op(VRESERVE_AT, 1, 3) + op(VQUERY, 1, 0, 0) + op(LOAD) + op(VFREE, 1, 0, 0, 0)
seeds['bad_args'] = config(32) + op(CREATE, 1) + op(CREATE, 0xC4) + \
    b''.join(op(BAD, 0, w) for w in range(6)) + op(BAD, 0, 9) + op(BAD, 0, 0x83) + \
    op(VAS, 0) + op(VAS, 1) + op(VAS, 2) + op(CALLBACK, 1) + op(CALLBACK, 0)
seeds['release_live'] = config(32) + op(CREATE, 3) + op(CREATE, 0) + \
    b''.join(alloc(k % 2, 16 * (k + 1), k % 3, k % 3 == 0) for k in range(30)) + \
    op(REFS, 0, 1) + op(REFS, 0, 0) + op(REFS, 0, 3) + op(REFS, 0, 3) + op(REFS, 0, 3) + \
    op(BUDGET, 2) + config(32) + op(CREATE, 1)
seeds['executable'] = config(32) + op(CREATE, 2) + op(CREATE, 3) + alloc(0, 128) + \
    alloc(1, 9000, 1, True) + op(FREE, 1, 0) + op(VRESERVE_AT, 0, 0) + op(WALK, 1)
# double frees of plain blocks in default mode, every order: p p, p q p, p q q p, the first of
# many, on serialized and thread-safe instances, small, medium and huge blocks
seeds['double_free_default'] = config(64) + op(CREATE, 0) + op(CREATE, 1) + \
    b''.join(alloc(i, n) for i in range(2) for n in (16, 32, 1024, 8000, 60000, 100000)) + \
    op(FREE, 0, 0) + op(DOUBLE, 0, 0) + op(FREE, 0, 0) + op(DOUBLE, 0, 0) + op(DOUBLE, 0, 2) + \
    op(DOUBLE, 0, 2) + op(DOUBLE, 0, 0) + \
    b''.join(op(FREE, 1, 0) for k in range(6)) + b''.join(op(DOUBLE, 1, 2 * k) for k in range(7)) + \
    op(WALK, 0) + op(REFS, 0, 3) + op(REFS, 0, 3)
# Virtual* below 64 KiB, beyond 2^47 and with sizes that wrap (a region to aim at first)
seeds['virtual_edges'] = config(64) + op(VRESERVE, 8, 0, 1, 2, 0) + \
    b''.join(op(VEDGE, w, 0, lv, a & 0xFF, a >> 8)
             for (w, lv, a) in ((0, 1, 0x0FFF), (0, 0x13, 0), (8, 2, 0xFFFE), (16, 0, 0x1000),
                                (24, 1, 5), (0x40, 2, 7), (1, 0, 0), (1, 1, 1), (1, 2, 2),
                                (1, 0, 3), (1, 1, 4), (1, 2, 5), (2, 0x31, 1), (2, 0xF0, 3),
                                (3, 0x07, 0), (3, 0x1F, 2), (4, 0, 0), (4, 3, 1), (4, 15, 2),
                                (4, 1, 3), (4, 2, 4), (5, 0, 0), (5, 0, 0xFFFF), (0x85, 0, 0),
                                (0x85, 0, 0x1234))) + \
    op(VQUERY, 0, 0, 0) + op(VFREE, 0, 0, 0, 0)
# VirtualFree of released regions, every order (p p, p q p, p q q p), MEM_RELEASE and
# MEM_DECOMMIT; with no instance, then with one that has no freed block to free again
seeds['double_free_virtual'] = config(64) + op(VRESERVE, 8, 0, 1, 2, 0) + \
    op(VRESERVE, 4, 0, 0, 2, 0) + op(VFREE, 0, 0, 0, 0) + op(DOUBLE, 0, 0) + op(DOUBLE, 0, 1) + \
    op(VFREE, 1, 1, 0, 0) + op(DOUBLE, 0, 0) + op(DOUBLE, 0, 2) + op(DOUBLE, 0, 3) + \
    op(DOUBLE, 0, 0) + op(VRESERVE, 8, 0, 1, 2, 0) + op(DOUBLE, 0, 2) + op(CREATE, 1) + \
    alloc(0, 64) + op(DOUBLE, 0, 0) + op(DOUBLE, 0, 3) + op(FREE, 0, 0) + op(DOUBLE, 0, 0)
# a huge block freed by one instance and handed to another from the manager's segment cache:
# the first's freed block is now the second's live one (a harness bug once: its Free through
# the second instance was taken for a foreign free that should fail)
seeds['stale_huge_reused'] = config(64, cache=2) + op(CREATE, 1) + op(CREATE, 1) + \
    alloc(0, edge(15)) + op(FREE, 0, 0) + alloc(1, edge(15)) + op(FOREIGN, 1, 9, 0) + \
    struct.pack('<Q', 0) + op(FREE, 1, 0)

# Regression seeds: minimised inputs of library bugs the fuzzer found (kept verbatim).
regressions = {
    # a small block served from a cached huge segment: hm_heap_stats peak_committed (0) below
    # committed (4 MiB + 8 KiB); src/segment.c adds cached bytes to heap->committed without
    # raising peak_committed
    'heap-peak-from-cache': bytes.fromhex('b4f000050100ef02484d5f434845 4b45ef'.replace(' ', '')),
}

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), 'corpus')
os.makedirs(out, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out, 'seed-' + name), 'wb') as f:
        f.write(data)
for name, data in regressions.items():
    with open(os.path.join(out, 'regress-' + name), 'wb') as f:
        f.write(data)
print('wrote %d seeds to %s' % (len(seeds) + len(regressions), out))
