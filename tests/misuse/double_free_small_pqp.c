/* SPDX-License-Identifier: MIT */
/* double_free_small_pqp.c: p, q, p with two 32-byte blocks: the second free of p does not
 * follow the first. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(32), *q = xmalloc(32);
    free(opaque(p));
    free(opaque(q));
    free(opaque(p));
    return MISUSE_MISSED;
}
