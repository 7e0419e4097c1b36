/* SPDX-License-Identifier: MIT */
/* double_free_small.c: a 32-byte block freed twice in a row (p, p). */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(32);
    free(opaque(p));
    free(opaque(p));
    return MISUSE_MISSED;
}
