/* SPDX-License-Identifier: MIT */
/* invalid_free_static.c: free of a static array. */
#include "misuse.h"

static char table[64];

int main(void) {
    free(opaque(table));
    return MISUSE_MISSED;
}
