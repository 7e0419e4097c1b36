/* SPDX-License-Identifier: MIT */
/* uaf_read_huge.c: bytes [16, 128) of a freed 8 MiB block read, after the program wrote its data
 * there: wiped when none of the data is left (misuse.h, uaf_read). */
#include "misuse.h"

int main(void) {
    return uaf_read(8u << 20);
}
