/* SPDX-License-Identifier: MIT */
/* malloc0_write.c: the first byte of a malloc(0) block written, then the block freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(0);
    write_byte(p, 0x41);
    free(opaque(p));
    return MISUSE_MISSED;
}
