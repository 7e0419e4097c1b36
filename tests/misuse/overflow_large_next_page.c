/* SPDX-License-Identifier: MIT */
/* overflow_large_next_page.c: a byte written into the page after the one that holds the last
 * byte of a 100,000-byte block, then the block freed. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(100000);
    write_byte(page_after(p, 100000), 0x41);
    free(opaque(p));
    return MISUSE_MISSED;
}
