/* SPDX-License-Identifier: MIT */
/* invalid_free_stack.c: free of a stack address. */
#include "misuse.h"

int main(void) {
    char buf[64];
    write_byte(buf, 1);
    free(opaque(buf));
    return MISUSE_MISSED;
}
