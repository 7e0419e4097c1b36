/* SPDX-License-Identifier: MIT */
/* usable_size_freed.c: malloc_usable_size of a freed 32-byte block. */
#include <malloc.h>

#include "misuse.h"

int main(void) {
    char *p = xmalloc(32);
    free(opaque(p));
    volatile size_t n = malloc_usable_size(opaque(p));
    (void)n;
    return MISUSE_MISSED;
}
