/* SPDX-License-Identifier: MIT */
/* malloc_ptrdiff_max.c: malloc(PTRDIFF_MAX + 1), a block whose end no pointer difference could
 * reach, must give NULL and ENOMEM. */
#include <errno.h>

#include "misuse.h"

int main(void) {
    errno = 0;
    void *p = malloc(opaque_size((size_t)PTRDIFF_MAX + 1));
    return refused(p, errno, ENOMEM);
}
