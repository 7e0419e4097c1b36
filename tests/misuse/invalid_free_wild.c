/* SPDX-License-Identifier: MIT */
/* invalid_free_wild.c: free of an address no one mapped (aligned like a block). */
#include "misuse.h"

int main(void) {
    free(opaque((void *)(uintptr_t)0x100000000010ULL));
    return MISUSE_MISSED;
}
