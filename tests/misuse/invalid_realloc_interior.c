/* SPDX-License-Identifier: MIT */
/* invalid_realloc_interior.c: realloc of a pointer 32 bytes into a live 128-byte block. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(128);
    free(realloc(opaque(p + 32), 256));
    return MISUSE_MISSED;
}
