/* SPDX-License-Identifier: MIT */
/* uaf_write_small_65.c: byte 65 of a freed 128-byte block written, then a block of that size
 * allocated (and freed): the allocation that hands the slot out again is where a check can
 * see the write. */
#include "misuse.h"

int main(void) {
    return uaf_write_then_reuse(128, 65);
}
