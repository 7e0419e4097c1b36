/* SPDX-License-Identifier: MIT */
/* realloc_size_max.c: realloc to SIZE_MAX bytes must give NULL and ENOMEM and leave the block
 * as it was. */
#include <errno.h>

#include "misuse.h"

int main(void) {
    char *p = xmalloc(32);
    write_bytes(p, 0x5a, 32);
    errno = 0;
    void *q = realloc(opaque(p), opaque_size(SIZE_MAX));
    int r = refused(q, errno, ENOMEM);
    if (r == MISUSE_REFUSED && read_bytes(p, 32) != 0x5a * 32) return MISUSE_WRONG_ERROR;
    free(r == MISUSE_MISSED ? q : p);
    return r;
}
