/* SPDX-License-Identifier: MIT */
/* usable_size_invalid.c: malloc_usable_size of a stack address. */
#include <malloc.h>

#include "misuse.h"

int main(void) {
    char buf[64];
    write_byte(buf, 1);
    volatile size_t n = malloc_usable_size(opaque(buf));
    (void)n;
    return MISUSE_MISSED;
}
