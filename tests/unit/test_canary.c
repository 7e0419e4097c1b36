/* SPDX-License-Identifier: MIT */
/* test_canary.c: the secret of checked and debug blocks' canaries (debug/debug.h). The first
 * byte of a back canary is the byte right past a block's requested bytes, where a string's
 * stray '\0' lands (the commonest off-by-one in C): it must never be 0 already, or such a
 * write changes nothing and goes uncaught. Blocks are 16-byte aligned, so this holds for every
 * secret the layer can make and every block address; a secret whose low 4 bits were 0 missed
 * the write for one block in 16 (one process in 16 had such a secret). */
#define _GNU_SOURCE
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

static void test_secrets_differ(void **state) {
    (void)state;
    /* the forced bit must not make secrets collide: 4096 seeds, 4096 secrets */
    enum { N = 4096 };
    static uint64_t got[N];
    for (uint64_t i = 0; i < N; i++)
        got[i] = _hm_debug_secret_of(i << 20);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < N; j++)
            if (got[i] == got[j]) fail_msg("seeds %d and %d give one secret", i, j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_byte_never_zero),
        cmocka_unit_test(test_secrets_differ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
