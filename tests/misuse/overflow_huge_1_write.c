/* SPDX-License-Identifier: MIT */
/* overflow_huge_1_write.c: one byte written past an 8 MiB block, then the block freed. */
#include "misuse.h"

int main(void) {
    size_t n = 8u << 20;
    char *p = xmalloc(n);
    flip_byte(p + n);
    free(opaque(p));
    return MISUSE_MISSED;
}
