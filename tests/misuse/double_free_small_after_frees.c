/* SPDX-License-Identifier: MIT */
/* double_free_small_after_frees.c: a 32-byte block freed, then 2,000 other blocks of its size
 * freed (none allocated between), then the block freed again. */
#include "misuse.h"

enum { OTHERS = 2000 };

int main(void) {
    static char *others[OTHERS];
    char *p = xmalloc(32);
    for (int i = 0; i < OTHERS; i++)
        others[i] = xmalloc(32);
    free(opaque(p));
    for (int i = 0; i < OTHERS; i++)
        free(others[i]);
    free(opaque(p));
    return MISUSE_MISSED;
}
