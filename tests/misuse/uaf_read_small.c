/* SPDX-License-Identifier: MIT */
/* uaf_read_small.c: bytes [16, 128) of a freed 128-byte block read, after the program wrote its
 * data there: wiped when none of the data is left (misuse.h, uaf_read). */
#include "misuse.h"

int main(void) {
    return uaf_read(128);
}
