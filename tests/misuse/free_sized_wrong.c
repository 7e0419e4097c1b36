/* SPDX-License-Identifier: MIT */
/* free_sized_wrong.c: a 64-byte block given to free_sized (C23) with 8192 bytes as its size.
 * A malloc without free_sized (glibc before 2.42) gives MISUSE_ABSENT. */
#include "misuse.h"

/* not declared by older C libraries; weak, so that the program runs without it */
extern void free_sized(void *p, size_t size) __attribute__((weak));

int main(void) {
    if (free_sized == NULL) return MISUSE_ABSENT;
    char *p = xmalloc(64);
    free_sized(p, opaque_size(8192));
    return MISUSE_MISSED;
}
