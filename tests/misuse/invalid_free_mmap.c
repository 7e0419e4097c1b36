/* SPDX-License-Identifier: MIT */
/* invalid_free_mmap.c: free of the start of a page the program mapped itself. */
#include <sys/mman.h>

#include "misuse.h"

int main(void) {
    void *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return MISUSE_BROKEN;
    free(opaque((char *)m + MISUSE_PAGE));
    munmap(m, 65536);
    return MISUSE_MISSED;
}
