/* SPDX-License-Identifier: MIT */
/* uaf_read_small.c: bytes [16, 128) of a freed 128-byte block read, after the program wrote its
 * data there: wiped when none of the data is left (misuse.h, uaf_read). A block of the size is
 * allocated and freed first, so that the free of the block read is not the first of its page:
 * an allocator that overwrites only some freed blocks (hostmalloc's checked mode fills the whole
 * slot of a page's first free, and of one in 128 after it) must not pass for one that
 * overwrites every one. */
#include "misuse.h"

int main(void) {
    free(xmalloc(128));
    return uaf_read(128);
}
