/* SPDX-License-Identifier: MIT */
/* malloc_size_max.c: malloc(SIZE_MAX) must give NULL and ENOMEM. */
#include <errno.h>

#include "misuse.h"

int main(void) {
    errno = 0;
    void *p = malloc(opaque_size(SIZE_MAX));
    return refused(p, errno, ENOMEM);
}
