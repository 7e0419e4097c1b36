/* SPDX-License-Identifier: MIT */
/* overflow_small_1_read.c: one byte read past a 24-byte block, then the block freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(24);
    volatile int v = read_byte(p + 24);
    (void)v;
    free(opaque(p));
    return MISUSE_MISSED;
}
