/* SPDX-License-Identifier: MIT */
/* invalid_free_large_interior.c: free of a pointer 8 KiB into a live 100,000-byte block (a
 * page-aligned address when the block is). */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(100000);
    free(opaque(p + 8192));
    return MISUSE_MISSED;
}
