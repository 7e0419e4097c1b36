/* SPDX-License-Identifier: MIT */
/* double_free_other_thread.c: a 32-byte block freed by the thread that allocated it, then again
 * by another thread (joined before the program exits: no timing). */
#include <pthread.h>

#include "misuse.h"

static void *second_free(void *p) {
    free(opaque(p));
    return NULL;
}

int main(void) {
    char *p = xmalloc(32);
    free(opaque(p));
    pthread_t t;
    if (pthread_create(&t, NULL, second_free, opaque(p)) != 0) return MISUSE_BROKEN;
    pthread_join(t, NULL);
    return MISUSE_MISSED;
}
