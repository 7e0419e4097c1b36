/* SPDX-License-Identifier: MIT */
/* overflow_huge_1_write.c: one byte written past an 8 MiB block, then the block freed. */
#include "misuse.h"

int main(void) {
    size_t n = 8u << 20;
    char *p = xmalloc(n);
    write_byte(p + n, 0x41);
    free(opaque(p));
    return MISUSE_MISSED;
}
