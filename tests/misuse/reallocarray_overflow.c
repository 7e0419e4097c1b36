/* SPDX-License-Identifier: MIT */
/* reallocarray_overflow.c: reallocarray whose count times size overflows must give NULL and
 * ENOMEM and leave the block as it was. */
#define _GNU_SOURCE
#include <errno.h>

#include "misuse.h"

int main(void) {
    char *p = xmalloc(32);
    write_bytes(p, 0x5a, 32);
    errno = 0;
    void *q = reallocarray(opaque(p), opaque_size(SIZE_MAX / 4 + 1), opaque_size(8));
    int r = refused(q, errno, ENOMEM);
    if (r == MISUSE_REFUSED && read_bytes(p, 32) != 0x5a * 32) return MISUSE_WRONG_ERROR;
    free(r == MISUSE_MISSED ? q : p);
    return r;
}
