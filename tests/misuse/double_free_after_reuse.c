/* SPDX-License-Identifier: MIT */
/* double_free_after_reuse.c: a 32-byte block freed, its slot handed out again by the next
 * malloc of that size, then the old pointer freed: the second free frees the new owner's
 * block, which no allocator can tell from that owner's own free. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(32);
    free(opaque(p));
    char *q = xmalloc(32);
    free(opaque(p));
    (void)q; /* q's memory is no longer q's: it is not freed again */
    return MISUSE_MISSED;
}
