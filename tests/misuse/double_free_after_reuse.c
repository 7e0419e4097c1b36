/* SPDX-License-Identifier: MIT */
/* double_free_after_reuse.c: a 32-byte block freed, a block of that size allocated, then the
 * old pointer freed again. An allocator that hands the last freed block out at once gave the
 * slot to the new allocation: the second free frees the new owner's block, which no allocator
 * can tell from that owner's own free. One that delays reuse (hostmalloc's checked mode) still
 * holds the slot freed, and the second free is the double free it is. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(32);
    free(opaque(p));
    char *q = xmalloc(32);
    free(opaque(p));
    (void)q; /* q's memory is no longer q's: it is not freed again */
    return MISUSE_MISSED;
}
