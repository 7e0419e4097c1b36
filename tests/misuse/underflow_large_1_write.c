/* SPDX-License-Identifier: MIT */
/* underflow_large_1_write.c: the byte before a 100,000-byte block written, then the block
 * freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(100000);
    flip_byte(p - 1);
    free(opaque(p));
    return MISUSE_MISSED;
}
