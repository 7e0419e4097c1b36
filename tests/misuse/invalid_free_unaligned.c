/* SPDX-License-Identifier: MIT */
/* invalid_free_unaligned.c: free of a pointer one byte into a live 128-byte block. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(128);
    free(opaque(p + 1));
    return MISUSE_MISSED;
}
