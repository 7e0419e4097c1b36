/* SPDX-License-Identifier: MIT */
/* overflow_small_1_write.c: one byte written past a 24-byte block, then the block freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(24);
    flip_byte(p + 24);
    free(opaque(p));
    return MISUSE_MISSED;
}
