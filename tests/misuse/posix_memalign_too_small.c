/* SPDX-License-Identifier: MIT */
/* posix_memalign_too_small.c: posix_memalign with an alignment of 4, a power of two smaller
 * than a pointer, must return EINVAL and leave the out pointer untouched. */
#include <errno.h>

#include "misuse.h"

int main(void) {
    void *p = &p;
    int r = posix_memalign(&p, opaque_size(4), 64);
    if (r == 0) return MISUSE_MISSED;
    return r == EINVAL && p == &p ? MISUSE_REFUSED : MISUSE_WRONG_ERROR;
}
