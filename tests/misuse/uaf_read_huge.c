/* SPDX-License-Identifier: MIT */
/* uaf_read_huge.c: the first byte of a freed 8 MiB block read. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(8u << 20);
    free(opaque(p));
    volatile int v = read_byte(p);
    (void)v;
    return MISUSE_MISSED;
}
