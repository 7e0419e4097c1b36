/* SPDX-License-Identifier: MIT */
/* double_free_remote_first.c: a 32-byte block freed by another thread (joined: no timing), then
 * again by the thread that allocated it. */
#include <pthread.h>

#include "misuse.h"

static void *first_free(void *p) {
    free(p);
    return NULL;
}

int main(void) {
    char *p = xmalloc(32);
    pthread_t t;
    if (pthread_create(&t, NULL, first_free, p) != 0) return MISUSE_BROKEN;
    pthread_join(t, NULL);
    free(opaque(p));
    return MISUSE_MISSED;
}
