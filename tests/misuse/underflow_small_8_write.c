/* SPDX-License-Identifier: MIT */
/* underflow_small_8_write.c: the 8 bytes before a 24-byte block written, then the block
 * freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(24);
    write_bytes(p - 8, 0x41, 8);
    free(opaque(p));
    return MISUSE_MISSED;
}
