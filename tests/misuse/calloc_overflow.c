/* SPDX-License-Identifier: MIT */
/* calloc_overflow.c: calloc whose count times size overflows must give NULL and ENOMEM. */
#include <errno.h>

#include "misuse.h"

int main(void) {
    errno = 0;
    void *p = calloc(opaque_size(SIZE_MAX / 2 + 2), opaque_size(2));
    return refused(p, errno, ENOMEM);
}
