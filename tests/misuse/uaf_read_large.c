/* SPDX-License-Identifier: MIT */
/* uaf_read_large.c: the first byte of a freed 100,000-byte block read. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(100000);
    free(opaque(p));
    volatile int v = read_byte(p);
    (void)v;
    return MISUSE_MISSED;
}
