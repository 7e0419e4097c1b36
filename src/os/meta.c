/* SPDX-License-Identifier: MIT */
/* os/meta.c: type-stable metadata memory for heaps, sub-heaps and thread records.
 *
 * Objects are carved from 1 MiB chunks and kept on per-size free lists; the memory is never
 * unmapped, so a stale pointer to a released object still reads valid (if outdated) bytes.
 * That is what lets thread-exit code and TLS caches check a generation number instead of
 * holding a reference. Sizes are rounded to 64 bytes; there are few distinct sizes. */
#include <string.h>

#include "os/os.h"

#define META_CHUNK   ((size_t)1 << 20)
#define META_CLASSES 8

typedef struct meta_free_s {
    struct meta_free_s *next;
} meta_free_t;

static struct {
    pthread_mutex_t lock; /* guards everything below */
    size_t sizes[META_CLASSES];
    meta_free_t *free[META_CLASSES];
    uint8_t *chunk; /* current chunk */
    size_t used;    /* bytes of it handed out */
} meta = {.lock = PTHREAD_MUTEX_INITIALIZER};

static int meta_class(size_t size) {
    for (int i = 0; i < META_CLASSES; i++) {
        if (meta.sizes[i] == size) return i;
        if (meta.sizes[i] == 0) {
            meta.sizes[i] = size;
            return i;
        }
    }
    return -1;
}

void *_hm_meta_alloc(size_t size) {
    size = (size + 63) & ~(size_t)63;
    if (size > META_CHUNK) return NULL;
    void *p = NULL;
    pthread_mutex_lock(&meta.lock);
    int c = meta_class(size);
    if (c >= 0 && meta.free[c] != NULL) {
        meta_free_t *f = meta.free[c];
        meta.free[c] = f->next;
        p = f;
    } else {
        if (meta.chunk == NULL || meta.used + size > META_CHUNK) {
            uint8_t *chunk = _hm_os_map_aligned(META_CHUNK, HM_OS_PAGE, false);
            if (chunk != NULL) {
                meta.chunk = chunk;
                meta.used = 0;
            }
        }
        if (meta.chunk != NULL && meta.used + size <= META_CHUNK) {
            p = meta.chunk + meta.used;
            meta.used += size;
        }
    }
    pthread_mutex_unlock(&meta.lock);
    if (p != NULL) memset(p, 0, size);
    return p;
}

void _hm_meta_free(void *p, size_t size) {
    if (p == NULL) return;
    size = (size + 63) & ~(size_t)63;
    pthread_mutex_lock(&meta.lock);
    int c = meta_class(size);
    if (c >= 0) {
        meta_free_t *f = p;
        f->next = meta.free[c];
        meta.free[c] = f;
    }
    pthread_mutex_unlock(&meta.lock);
}

/* fork: hold the metadata lock across fork (prepare: lock; parent and child: unlock). */
void _hm_meta_fork(int phase) {
    if (phase == 0)
        pthread_mutex_lock(&meta.lock);
    else
        pthread_mutex_unlock(&meta.lock);
}
