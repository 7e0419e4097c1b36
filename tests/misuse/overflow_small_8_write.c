/* SPDX-License-Identifier: MIT */
/* overflow_small_8_write.c: 8 bytes written past a 24-byte block, then the block freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(24);
    write_bytes(p + 24, 0x41, 8);
    free(opaque(p));
    return MISUSE_MISSED;
}
