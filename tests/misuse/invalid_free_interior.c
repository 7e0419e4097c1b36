/* SPDX-License-Identifier: MIT */
/* invalid_free_interior.c: free of a pointer 16 bytes into a live 128-byte block. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(128);
    free(opaque(p + 16));
    return MISUSE_MISSED;
}
