/* SPDX-License-Identifier: MIT */
/* prim_linux.c: everything hostmalloc asks of the OS, in one place (Linux x86-64).
 *
 * The rest of the engine calls only the _hm_prim_* functions and the metadata allocator
 * below; nothing here calls malloc. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "test_hooks.h"

extern char **environ;

/* ---- OS fault injection (test builds only: prim/test_hooks.h) ------------------------------
 * When on, the chosen calls fail every Nth time and/or with a seeded probability, as the real
 * ones can (ENOMEM: address space or map count exhausted). The engine must answer each with a
 * documented error and lose nothing. Without HM_TEST_HOOKS, os_fault() is constant false. */
#ifdef HM_TEST_HOOKS
static struct {
    _Atomic(unsigned) ops; /* HM_OS_* bits to fail; 0: off */
    unsigned every;
    double probability;
    _Atomic(uint64_t) rng;
    _Atomic(uint64_t) calls, injected;
} osf;

void hm_test_os_faults(unsigned ops, unsigned every, double probability, uint64_t seed) {
    osf.every = every;
    osf.probability = probability;
    atomic_store(&osf.rng, seed != 0 ? seed : 1);
    atomic_store(&osf.calls, 0);
    atomic_store(&osf.ops, ops);
}

uint64_t hm_test_os_faults_injected(void) {
    return atomic_load(&osf.injected);
}

static bool os_fault(unsigned op) {
    if (hm_likely((atomic_load_explicit(&osf.ops, memory_order_relaxed) & op) == 0)) return false;
    bool fail = false;
    uint64_t n = atomic_fetch_add(&osf.calls, 1) + 1;
    if (osf.every != 0 && n % osf.every == 0) fail = true;
    if (!fail && osf.probability > 0) {
        uint64_t x = atomic_load(&osf.rng), y;
        do {
            y = x ^ (x << 13);
            y ^= y >> 7;
            y ^= y << 17;
        } while (!atomic_compare_exchange_weak(&osf.rng, &x, y));
        fail = (double)(y >> 11) * (1.0 / 9007199254740992.0) < osf.probability;
    }
    if (fail) {
        atomic_fetch_add(&osf.injected, 1);
        errno = ENOMEM;
    }
    return fail;
}
#else
static inline bool os_fault(unsigned op) {
    (void)op;
    return false;
}
#endif

static void *sys_mmap(void *addr, size_t size, int prot, int flags) {
    if (os_fault(HM_OS_MMAP)) return MAP_FAILED;
    return mmap(addr, size, prot, flags, -1, 0);
}

static int sys_munmap(void *p, size_t size) {
    if (os_fault(HM_OS_MUNMAP)) return -1;
    return munmap(p, size);
}

/* ---- mappings --------------------------------------------------------------------------------
 * A munmap that fails (the kernel may refuse to split a mapping when the map count is at its
 * limit) is not given up: the range is decommitted and remembered, and every later mapping call
 * tries the remembered ones again, so no address space is lost once the OS agrees. */
#define DEFERRED_MAX 1024
static struct {
    pthread_mutex_t lock;
    _Atomic(size_t) count;
    struct {
        void *p;
        size_t size;
    } r[DEFERRED_MAX];
} deferred = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void unmap_or_defer(void *p, size_t size) {
    if (sys_munmap(p, size) == 0) return;
    madvise(p, size, MADV_DONTNEED); /* at least the memory goes back */
    pthread_mutex_lock(&deferred.lock);
    size_t n = atomic_load_explicit(&deferred.count, memory_order_relaxed);
    if (n < DEFERRED_MAX) {
        deferred.r[n].p = p;
        deferred.r[n].size = size;
        atomic_store_explicit(&deferred.count, n + 1, memory_order_relaxed);
    } else {
        munmap(p, size); /* the list is full: one plain attempt more */
    }
    pthread_mutex_unlock(&deferred.lock);
}

static void retry_deferred(void) {
    if (hm_likely(atomic_load_explicit(&deferred.count, memory_order_relaxed) == 0)) return;
    pthread_mutex_lock(&deferred.lock);
    size_t n = atomic_load_explicit(&deferred.count, memory_order_relaxed), j = 0;
    for (size_t i = 0; i < n; i++) {
        if (sys_munmap(deferred.r[i].p, deferred.r[i].size) != 0) deferred.r[j++] = deferred.r[i];
    }
    atomic_store_explicit(&deferred.count, j, memory_order_relaxed);
    pthread_mutex_unlock(&deferred.lock);
}

#ifdef HM_TEST_HOOKS
size_t hm_test_os_deferred_unmaps(void) {
    retry_deferred();
    return atomic_load(&deferred.count);
}
#endif

static void *map_raw(size_t size, bool exec) {
    int prot = PROT_READ | PROT_WRITE | (exec ? PROT_EXEC : 0);
    void *p = sys_mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    return p == MAP_FAILED ? NULL : p;
}

void *_hm_prim_map_aligned(size_t size, size_t align, bool exec) {
    int saved = errno;
    retry_deferred();
    if (size == 0 || size > ((size_t)1 << 46) || align > ((size_t)1 << 40)) return NULL;
    void *p = map_raw(size, exec);
    if (p == NULL) {
        errno = saved;
        return NULL;
    }
    if (((uintptr_t)p & (align - 1)) == 0) return p;
    /* Not aligned: map size + align and trim both ends. */
    unmap_or_defer(p, size);
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
    if (head) unmap_or_defer(q, head);
    if (tail) unmap_or_defer(a + size, tail);
    errno = saved;
    return a;
}

void _hm_prim_unmap(void *p, size_t size) {
    int saved = errno;
    if (p != NULL && size != 0) unmap_or_defer(p, size);
    retry_deferred();
    errno = saved;
}

void _hm_prim_decommit(void *p, size_t size) {
    int saved = errno;
    /* a failed madvise leaves the pages resident; they stay ours and are reused */
    if (size != 0 && !os_fault(HM_OS_MADVISE)) madvise(p, size, MADV_DONTNEED);
    errno = saved;
}

void *_hm_prim_map_at(void *addr, size_t size, int prot) {
    int saved = errno;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    if (addr != NULL) flags |= MAP_FIXED_NOREPLACE;
    retry_deferred();
    void *p = sys_mmap(addr, size, prot, flags);
    errno = saved;
    if (p == MAP_FAILED) return NULL;
    if (addr != NULL && p != addr) { /* a kernel without MAP_FIXED_NOREPLACE */
        unmap_or_defer(p, size);
        return NULL;
    }
    return p;
}

int _hm_prim_make_writable(void *p, size_t size) {
    int saved = errno;
    int r = mprotect(p, size, PROT_READ | PROT_WRITE);
    errno = saved;
    return r;
}

int _hm_prim_protect(void *p, size_t size, int prot) {
    int saved = errno;
    int r = os_fault(HM_OS_MPROTECT) ? -1 : mprotect(p, size, prot);
    errno = saved;
    return r;
}

/* Read a small file into buf (NUL-terminated); false if it cannot be read. */
static bool read_small_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n <= 0) return false;
    buf[n] = '\0';
    return true;
}

static bool parse_u64(const char *s, uint64_t *out) {
    uint64_t v = 0;
    const char *c = s;
    for (; *c >= '0' && *c <= '9'; c++) {
        if (v > (UINT64_MAX - (uint64_t)(*c - '0')) / 10) return false;
        v = v * 10 + (uint64_t)(*c - '0');
    }
    if (c == s) return false;
    *out = v;
    return true;
}

size_t _hm_prim_memory_limit(void) {
    int saved = errno;
    long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    uint64_t phys =
        (pages > 0 && psize > 0) ? (uint64_t)pages * (uint64_t)psize : ((uint64_t)1 << 32);
    uint64_t limit = phys, v;
    char buf[64];
    /* cgroup v2, then v1; "max" or a huge number means no limit */
    if (read_small_file("/sys/fs/cgroup/memory.max", buf, sizeof buf) && parse_u64(buf, &v) &&
        v < limit)
        limit = v;
    else if (read_small_file("/sys/fs/cgroup/memory/memory.limit_in_bytes", buf, sizeof buf) &&
             parse_u64(buf, &v) && v < limit)
        limit = v;
    errno = saved;
    return (size_t)limit;
}

static bool parse_hex(const char **s, uintptr_t *out) {
    uintptr_t v = 0;
    const char *c = *s;
    for (;; c++) {
        unsigned d;
        if (*c >= '0' && *c <= '9')
            d = (unsigned)(*c - '0');
        else if (*c >= 'a' && *c <= 'f')
            d = (unsigned)(*c - 'a' + 10);
        else
            break;
        v = (v << 4) | d;
    }
    if (c == *s) return false;
    *s = c;
    *out = v;
    return true;
}

/* One line of /proc/self/maps: "start-end perms offset dev inode path". */
static bool parse_maps_line(const char *line, uintptr_t *start, uintptr_t *end, DWORD *protect,
                            bool *file) {
    const char *c = line;
    if (!parse_hex(&c, start) || *c++ != '-' || !parse_hex(&c, end) || *c++ != ' ') return false;
    bool r = c[0] == 'r', w = c[1] == 'w', x = c[2] == 'x';
    *protect = x ? (w   ? PAGE_EXECUTE_READWRITE
                    : r ? PAGE_EXECUTE_READ
                        : PAGE_EXECUTE)
                 : (w   ? PAGE_READWRITE
                    : r ? PAGE_READONLY
                        : PAGE_NOACCESS);
    /* skip perms, offset and dev; then the inode: 0 means anonymous ([stack], [heap] too) */
    int field = 0;
    for (; *c && field < 3; c++)
        if (*c == ' ') field++;
    uint64_t inode = 0;
    for (; *c >= '0' && *c <= '9'; c++)
        inode = inode * 10 + (uint64_t)(*c - '0');
    *file = inode != 0;
    return true;
}

bool _hm_prim_query_mapping(uintptr_t addr, MEMORY_BASIC_INFORMATION *info) {
    int saved = errno;
    uintptr_t page = addr & ~(uintptr_t)(HM_OS_PAGE - 1);
    memset(info, 0, sizeof *info);
    info->BaseAddress = (void *)page;
    info->State = MEM_FREE;
    info->Protect = PAGE_NOACCESS;
    info->RegionSize = ((uintptr_t)1 << 47) - page; /* up to the next mapping, below */
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errno = saved;
        return false;
    }
    char buf[4096];
    size_t have = 0;
    bool found = false, done = false;
    while (!done) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) break;
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', (size_t)(buf + have - line))) != NULL) {
            *nl = '\0';
            uintptr_t start, end;
            DWORD prot;
            bool file;
            if (parse_maps_line(line, &start, &end, &prot, &file)) {
                if (addr >= start && addr < end) {
                    info->AllocationBase = (void *)start;
                    info->AllocationProtect = prot;
                    info->RegionSize = end - page;
                    info->State = MEM_COMMIT;
                    info->Protect = prot;
                    info->Type = file ? MEM_MAPPED : MEM_PRIVATE;
                    found = done = true;
                    break;
                }
                if (start > addr) { /* the maps are sorted: the gap ends here */
                    /* (or at the end of the user address space: the vsyscall page lies
                     * beyond it, and the answer must not run past it) */
                    uintptr_t gap_end = start < ((uintptr_t)1 << 47) ? start : (uintptr_t)1 << 47;
                    info->RegionSize = gap_end - page;
                    done = true;
                    break;
                }
            }
            line = nl + 1;
        }
        /* keep an incomplete last line for the next read */
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have == sizeof buf - 1) have = 0; /* an absurdly long line: drop it */
    }
    close(fd);
    errno = saved;
    return found;
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

/* Why a statistics file could not be opened, without strerror (which may translate, and so
 * allocate). */
static const char *open_error(int e) {
    switch (e) {
    case ELOOP:
        return "it is a symbolic link";
    case ENXIO:
        return "it is a FIFO with no reader, or a device";
    case EISDIR:
        return "it is a directory";
    case EACCES:
    case EPERM:
        return "permission denied";
    case ENOENT:
        return "its directory does not exist";
    case EROFS:
        return "read-only file system";
    default:
        return "it cannot be opened";
    }
}

bool _hm_prim_write_path(const char *path, const char *msg, size_t len) {
    int saved = errno;
    /* O_NOFOLLOW: a link is not followed to a file of someone else's choosing; O_NONBLOCK: a
     * FIFO without a reader fails at once instead of hanging the program at exit; O_NOCTTY:
     * a terminal does not become the controlling one. */
    int fd = open(
        path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0600);
    const char *why = NULL;
    struct stat st;
    if (fd < 0)
        why = open_error(errno);
    else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        why = "it is not a regular file";
    else if (st.st_nlink != 1) /* a hard link, the one way left to point at someone's file */
        why = "it has more than one hard link";
    if (why != NULL) {
        char line[320];
        size_t n = _hm_snprintf(line, sizeof line, "hostmalloc: statistics not written to %s: %s\n",
                                path, why);
        _hm_prim_write_stderr(line, n);
    } else {
        while (len > 0) {
            ssize_t w = write(fd, msg, len);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) break;
            msg += w;
            len -= (size_t)w;
        }
    }
    if (fd >= 0) close(fd);
    errno = saved;
    return why == NULL && len == 0;
}

void _hm_prim_program_name(char *buf, size_t cap) {
    const char *name = program_invocation_short_name;
    if (name != NULL && *name != '\0') {
        _hm_snprintf(buf, cap, "%s", name);
        return;
    }
    /* before libc has set it (the first malloc of the process can come that early) */
    if (cap > 1 && read_small_file("/proc/self/comm", buf, cap)) {
        char *nl = strchr(buf, '\n');
        if (nl != NULL) *nl = '\0';
        return;
    }
    _hm_snprintf(buf, cap, "%s", "?");
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

/* fork: hold the metadata lock across fork (prepare: lock; parent and child: unlock). */
void _hm_meta_fork(int phase) {
    if (phase == 0)
        pthread_mutex_lock(&meta.lock);
    else
        pthread_mutex_unlock(&meta.lock);
}
