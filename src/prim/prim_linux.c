/* prim_linux.c: everything hostmalloc asks of the OS, in one place (Linux x86-64).
 *
 * The rest of the engine calls only the _hm_prim_* functions and the metadata allocator
 * below; nothing here calls malloc. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

/* ---- mappings ------------------------------------------------------------------------------- */
static void *map_raw(size_t size, bool exec) {
    int prot = PROT_READ | PROT_WRITE | (exec ? PROT_EXEC : 0);
    void *p = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void *_hm_prim_map_aligned(size_t size, size_t align, bool exec) {
    int saved = errno;
    if (size == 0 || size > ((size_t)1 << 46) || align > ((size_t)1 << 40)) return NULL;
    void *p = map_raw(size, exec);
    if (p == NULL) {
        errno = saved;
        return NULL;
    }
    if (((uintptr_t)p & (align - 1)) == 0) return p;
    /* Not aligned: map size + align and trim both ends. */
    munmap(p, size);
    size_t over = size + align;
    if (over < size) return NULL;
    uint8_t *q = map_raw(over, exec);
    if (q == NULL) {
        errno = saved;
        return NULL;
    }
    uint8_t *a = (uint8_t *)(((uintptr_t)q + align - 1) & ~(uintptr_t)(align - 1));
    size_t head = (size_t)(a - q);
    size_t tail = over - head - size;
    if (head) munmap(q, head);
    if (tail) munmap(a + size, tail);
    errno = saved;
    return a;
}

void _hm_prim_unmap(void *p, size_t size) {
    int saved = errno;
    if (p != NULL && size != 0) munmap(p, size);
    errno = saved;
}

void _hm_prim_decommit(void *p, size_t size) {
    int saved = errno;
    if (size != 0) madvise(p, size, MADV_DONTNEED);
    errno = saved;
}

uint32_t _hm_prim_clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

const char *_hm_prim_getenv(const char *name) {
    /* getenv() itself does not allocate, but walking environ keeps us independent of libc
     * state during early start-up. */
    size_t n = strlen(name);
    if (environ == NULL) return NULL;
    for (char **e = environ; *e != NULL; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') return *e + n + 1;
    }
    return NULL;
}

void _hm_prim_write_stderr(const char *msg, size_t len) {
    int saved = errno;
    while (len > 0) {
        ssize_t w = write(2, msg, len);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) continue;
            break;
        }
        msg += w;
        len -= (size_t)w;
    }
    errno = saved;
}

/* ---- metadata: type-stable memory for heaps, sub-heaps and thread records ------------------
 * Objects are carved from 1 MiB chunks and kept on per-size free lists; the memory is never
 * unmapped, so a stale pointer to a released object still reads valid (if outdated) bytes.
 * That is what lets thread-exit code and TLS caches check a generation number instead of
 * holding a reference. Sizes are rounded to 64 bytes; there are few distinct sizes. */
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
            uint8_t *chunk = _hm_prim_map_aligned(META_CHUNK, HM_OS_PAGE, false);
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
