/* SPDX-License-Identifier: MIT */
/* tests/support/tu_pattern.h: the key of an address, from which the stress and soak tests derive
 * the pattern of a block, so that a block can be checked knowing only where it is. Without cmocka
 * (the soak test is a plain program); test_util.h includes it. */
#ifndef HOSTMALLOC_TU_PATTERN_H
#define HOSTMALLOC_TU_PATTERN_H

#include <stdint.h>

/* A 64-bit key that depends on every bit of the address `p` (a murmur-style finalizer): the
 * pattern of a block that can be checked knowing only where it is. */
static inline uint64_t tu_key_of(const void *p) {
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

#endif /* HOSTMALLOC_TU_PATTERN_H */
