/* SPDX-License-Identifier: MIT */
/* overflow_large_1_write.c: one byte written past a 100,000-byte block, then the block freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(100000);
    flip_byte(p + 100000);
    free(opaque(p));
    return MISUSE_MISSED;
}
