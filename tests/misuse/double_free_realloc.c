/* SPDX-License-Identifier: MIT */
/* double_free_realloc.c: realloc of a freed 32-byte block (a resize of a freed block is a
 * second free). */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(32);
    free(opaque(p));
    free(realloc(opaque(p), 64));
    return MISUSE_MISSED;
}
