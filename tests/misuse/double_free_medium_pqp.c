/* SPDX-License-Identifier: MIT */
/* double_free_medium_pqp.c: p, q, p with two 16 KiB blocks. */
#include "misuse.h"

int main(void) {
    return double_free_pqp(16384);
}
