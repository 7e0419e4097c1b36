/* SPDX-License-Identifier: MIT */
/* underflow_small_1_read.c: the byte before a 24-byte block read, then the block freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(24);
    volatile int v = read_byte(p - 1);
    (void)v;
    free(opaque(p));
    return MISUSE_MISSED;
}
