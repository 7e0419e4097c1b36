/* SPDX-License-Identifier: MIT */
/* invalid_free_unused_slot.c: free of the slot after the last of two fresh 200-byte blocks (a
 * size the start-up of a program does not allocate): a block no one was given. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(200), *q = xmalloc(200);
    free(opaque(q + (q - p)));
    return MISUSE_MISSED;
}
