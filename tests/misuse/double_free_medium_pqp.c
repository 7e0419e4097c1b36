/* SPDX-License-Identifier: MIT */
/* double_free_medium_pqp.c: p, q, p with two 16 KiB blocks. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(16384), *q = xmalloc(16384);
    free(opaque(p));
    free(opaque(q));
    free(opaque(p));
    return MISUSE_MISSED;
}
