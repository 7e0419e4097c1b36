/* SPDX-License-Identifier: MIT */
/* double_free_huge.c: an 8 MiB block freed twice. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(8u << 20);
    free(opaque(p));
    free(opaque(p));
    return MISUSE_MISSED;
}
