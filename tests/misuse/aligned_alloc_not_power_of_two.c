/* SPDX-License-Identifier: MIT */
/* aligned_alloc_not_power_of_two.c: aligned_alloc with an alignment of 24 must give NULL and
 * EINVAL. */
#include <errno.h>

#include "misuse.h"

int main(void) {
    errno = 0;
    void *p = aligned_alloc(opaque_size(24), 48);
    return refused(p, errno, EINVAL);
}
