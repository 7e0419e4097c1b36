/* SPDX-License-Identifier: MIT */
/* posix_memalign_not_power_of_two.c: posix_memalign with an alignment of 24 must return
 * EINVAL and leave the out pointer untouched. */
#include <errno.h>

#include "misuse.h"

int main(void) {
    void *p = &p;
    int r = posix_memalign(&p, opaque_size(24), 64);
    if (r == 0) return MISUSE_MISSED;
    return r == EINVAL && p == &p ? MISUSE_REFUSED : MISUSE_WRONG_ERROR;
}
