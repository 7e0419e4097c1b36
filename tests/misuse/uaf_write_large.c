/* SPDX-License-Identifier: MIT */
/* uaf_write_large.c: the first byte of a freed 100,000-byte block written, then a block of that
 * size allocated (and freed). */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(100000);
    free(opaque(p));
    write_byte(p, 0x41);
    free(xmalloc(100000));
    return MISUSE_MISSED;
}
