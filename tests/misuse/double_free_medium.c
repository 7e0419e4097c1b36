/* SPDX-License-Identifier: MIT */
/* double_free_medium.c: a 16 KiB block freed twice in a row. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(16384);
    free(opaque(p));
    free(opaque(p));
    return MISUSE_MISSED;
}
