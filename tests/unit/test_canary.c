/* SPDX-License-Identifier: MIT */
/* test_canary.c: the secret of checked and debug blocks' canaries (debug/debug.h). The first
 * byte of a back canary is the byte right past a block's requested bytes, where a string's
 * stray '\0' lands (the commonest off-by-one in C): it must never be 0 already, or such a
 * write changes nothing and goes uncaught. Blocks are 16-byte aligned, so this holds for every
 * secret the layer can make and every block address; a secret whose low 4 bits were 0 missed
 * the write for one block in 16 (one process in 16 had such a secret). */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdlib.h>

#include "debug/checked.h"
#include "debug/debug.h"
#include "unit_env.h"

#define SEEDS 200000

static void test_first_byte_never_zero(void **state) {
    (void)state;
    const uint64_t saved = _hm_debug_secret;
    for (uint64_t seed = 0; seed < SEEDS; seed++) {
        /* the seeds debug_init mixes: addresses, clock and pid in the high bits */
        _hm_debug_secret = _hm_debug_secret_of(seed * 0x10001ULL << 12);
        const uintptr_t base = 0x7f0000000000ULL + (uintptr_t)(seed % 4096) * 4096;
        for (uintptr_t a = base; a < base + 256; a += 16) {
            const void *p = (const void *)a;
            if ((_hm_chk_canary(p) & 0xFF) == 0 || (_hm_debug_canary(p) & 0xFF) == 0)
                fail_msg("seed %llu, block %p: a canary's first byte is 0",
                         (unsigned long long)seed, p);
        }
    }
    _hm_debug_secret = saved;
}

static void test_secret_low_byte_spread(void **state) {
    (void)state;
    /* every odd low byte is reached (the forced bit takes nothing else away), and the secret the
     * layer starts with is one of these (an init that made its own would be caught here) */
    bool seen[256] = {false};
    for (uint64_t seed = 0; seed < 65536; seed++)
        seen[_hm_debug_secret_of(seed << 12) & 0xFF] = true;
    for (int b = 0; b < 256; b++)
        if (seen[b] != (b & 1)) fail_msg("low byte %#x: %s", b, seen[b] ? "made" : "never made");
    _hm_debug_init();
    if ((_hm_debug_secret & 1) == 0)
        fail_msg("the secret after _hm_debug_init is even: %#llx",
                 (unsigned long long)_hm_debug_secret);
}

TU_TEST_MAIN(test_first_byte_never_zero, test_secret_low_byte_spread)
