/* SPDX-License-Identifier: MIT */
/* os/linux.c: everything hostmalloc asks of the kernel, in one place (Linux x86-64): the
 * functions of os/os.h but the metadata allocator (meta.c). Nothing here calls malloc. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "os/os.h"

/* a chosen call fails on purpose (test builds: os/faults.c) */
static inline bool os_fault(unsigned op) {
    return hm_unlikely(_hm_os_fault != NULL) && _hm_os_fault(op);
}

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

size_t _hm_os_deferred_unmaps(void) {
    retry_deferred();
    return atomic_load(&deferred.count);
}

static void *map_raw(size_t size, bool exec) {
    int prot = PROT_READ | PROT_WRITE | (exec ? PROT_EXEC : 0);
    void *p = sys_mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    return p == MAP_FAILED ? NULL : p;
}

void *_hm_os_map_aligned(size_t size, size_t align, bool exec) {
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

void _hm_os_unmap(void *p, size_t size) {
    int saved = errno;
    if (p != NULL && size != 0) unmap_or_defer(p, size);
    retry_deferred();
    errno = saved;
}

void _hm_os_decommit(void *p, size_t size) {
    int saved = errno;
    /* a failed madvise leaves the pages resident; they stay ours and are reused */
    if (size != 0 && !os_fault(HM_OS_MADVISE)) madvise(p, size, MADV_DONTNEED);
    errno = saved;
}

void *_hm_os_map_at(void *addr, size_t size, int prot) {
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

int _hm_os_make_writable(void *p, size_t size) {
    int saved = errno;
    int r = mprotect(p, size, PROT_READ | PROT_WRITE);
    errno = saved;
    return r;
}

int _hm_os_protect(void *p, size_t size, int prot) {
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

size_t _hm_os_memory_limit(void) {
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
static bool parse_maps_line(const char *line, hm_os_mapping_t *m) {
    const char *c = line;
    if (!parse_hex(&c, &m->start) || *c++ != '-' || !parse_hex(&c, &m->end) || *c++ != ' ')
        return false;
    m->read = c[0] == 'r';
    m->write = c[1] == 'w';
    m->exec = c[2] == 'x';
    /* skip perms, offset and dev; then the inode: 0 means anonymous ([stack], [heap] too) */
    int field = 0;
    for (; *c && field < 3; c++)
        if (*c == ' ') field++;
    uint64_t inode = 0;
    for (; *c >= '0' && *c <= '9'; c++)
        inode = inode * 10 + (uint64_t)(*c - '0');
    m->file = inode != 0;
    return true;
}

#define USER_END ((uintptr_t)1 << 47) /* the end of the user address space (4-level tables) */

bool _hm_os_query(uintptr_t addr, hm_os_mapping_t *m) {
    int saved = errno;
    memset(m, 0, sizeof *m);
    m->start = addr & ~(uintptr_t)(HM_OS_PAGE - 1);
    m->end = USER_END; /* up to the next mapping, below */
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        errno = saved;
        return false;
    }
    char buf[4096];
    size_t have = 0;
    bool done = false;
    while (!done) {
        ssize_t n = read(fd, buf + have, sizeof buf - 1 - have);
        if (n <= 0) break;
        have += (size_t)n;
        buf[have] = '\0';
        char *line = buf, *nl;
        while ((nl = memchr(line, '\n', (size_t)(buf + have - line))) != NULL) {
            *nl = '\0';
            hm_os_mapping_t e;
            if (parse_maps_line(line, &e)) {
                if (addr >= e.start && addr < e.end) {
                    *m = e;
                    m->mapped = done = true;
                    break;
                }
                /* the maps are sorted: the gap ends here (or at the end of the user address
                 * space: the vsyscall page lies beyond it, and the answer must not run past it) */
                if (e.start > addr) {
                    m->end = e.start < USER_END ? e.start : USER_END;
                    done = true;
                    break;
                }
                m->start = e.end; /* the gap starts after the last mapping below addr */
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
    return m->mapped;
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

bool _hm_os_append_file(const char *path, const char *msg, size_t len) {
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
        _hm_write_stderr(line, n);
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
