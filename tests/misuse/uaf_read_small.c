/* SPDX-License-Identifier: MIT */
/* uaf_read_small.c: the first 32 bytes of a freed 128-byte block read. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(128);
    free(opaque(p));
    volatile int v = read_bytes(p, 32);
    (void)v;
    return MISUSE_MISSED;
}
