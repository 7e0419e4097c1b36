/* SPDX-License-Identifier: MIT */
/* underflow_small_1_write.c: the byte before a 24-byte block written, then the block freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(24);
    flip_byte(p - 1);
    free(opaque(p));
    return MISUSE_MISSED;
}
