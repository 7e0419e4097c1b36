/* SPDX-License-Identifier: MIT */
/* overflow_huge_next_page.c: a byte written into the page after the one that holds the last
 * byte of an 8 MiB block, then the block freed. */
#include "misuse.h"

int main(void) {
    size_t n = 8u << 20;
    char *p = xmalloc(n);
    write_byte(page_after(p, n), 0x41);
    free(opaque(p));
    return MISUSE_MISSED;
}
