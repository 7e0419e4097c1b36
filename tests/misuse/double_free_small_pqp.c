/* SPDX-License-Identifier: MIT */
/* double_free_small_pqp.c: p, q, p with two 32-byte blocks: the second free of p does not
 * follow the first. */
#include "misuse.h"

int main(void) {
    return double_free_pqp(32);
}
