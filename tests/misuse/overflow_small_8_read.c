/* SPDX-License-Identifier: MIT */
/* overflow_small_8_read.c: 8 bytes read past a 24-byte block, then the block freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(24);
    volatile int v = read_bytes(p + 24, 8);
    (void)v;
    free(opaque(p));
    return MISUSE_MISSED;
}
