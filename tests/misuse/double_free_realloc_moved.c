/* SPDX-License-Identifier: MIT */
/* double_free_realloc_moved.c: a 16-byte block grown by realloc to 100,000 bytes (it must move,
 * which frees the old block), then the old pointer freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(16);
    char *q = realloc(opaque(p), 100000);
    if (q == NULL) return MISUSE_BROKEN;
    free(opaque(p));
    free(opaque(q));
    return MISUSE_MISSED;
}
