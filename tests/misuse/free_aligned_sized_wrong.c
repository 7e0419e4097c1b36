/* SPDX-License-Identifier: MIT */
/* free_aligned_sized_wrong.c: a 64-byte block of 64-byte alignment given to free_aligned_sized
 * (C23) with 8192 bytes as its size. A malloc without it gives MISUSE_ABSENT. */
#include "misuse.h"

extern void free_aligned_sized(void *p, size_t alignment, size_t size) __attribute__((weak));

int main(void) {
    if (free_aligned_sized == NULL) return MISUSE_ABSENT;
    void *p = aligned_alloc(64, 64);
    if (p == NULL) return MISUSE_BROKEN;
    free_aligned_sized(opaque(p), 64, opaque_size(8192));
    return MISUSE_MISSED;
}
