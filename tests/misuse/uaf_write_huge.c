/* SPDX-License-Identifier: MIT */
/* uaf_write_huge.c: the first byte of a freed 8 MiB block written, then a block of that size
 * allocated (and freed). */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(8u << 20);
    free(opaque(p));
    write_byte(p, 0x41);
    free(xmalloc(8u << 20));
    return MISUSE_MISSED;
}
