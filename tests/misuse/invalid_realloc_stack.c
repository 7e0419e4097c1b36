/* SPDX-License-Identifier: MIT */
/* invalid_realloc_stack.c: realloc of a stack address. */
#include "misuse.h"

int main(void) {
    char buf[64];
    write_byte(buf, 1);
    free(realloc(opaque(buf), 128));
    return MISUSE_MISSED;
}
