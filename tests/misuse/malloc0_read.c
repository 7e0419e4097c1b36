/* SPDX-License-Identifier: MIT */
/* malloc0_read.c: the first byte of a malloc(0) block read, then the block freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(0);
    volatile int v = read_byte(p);
    (void)v;
    free(opaque(p));
    return MISUSE_MISSED;
}
