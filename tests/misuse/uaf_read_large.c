/* SPDX-License-Identifier: MIT */
/* uaf_read_large.c: bytes [16, 128) of a freed 100,000-byte block read, after the program wrote its
 * data there: wiped when none of the data is left (misuse.h, uaf_read). */
#include "misuse.h"

int main(void) {
    return uaf_read(100000);
}
