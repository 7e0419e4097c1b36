/* SPDX-License-Identifier: MIT */
/* double_free_large.c: a 100,000-byte block (a large page's in default mode, huge in
 * checked mode) freed twice. */
#include "misuse.h"

int main(void) {
    char *p = xmalloc(100000);
    free(opaque(p));
    free(opaque(p));
    return MISUSE_MISSED;
}
