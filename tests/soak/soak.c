/* SPDX-License-Identifier: MIT */
/* tests/soak/soak.c: the soak test of hostmalloc (docs/RELIABILITY.md, "Soak").
 *
 * Usage: soak [seconds [seed]]   (seconds: else $SOAK_SECONDS, else 30)
 *
 * Runs rounds of about a second until the time is up. Each round:
 *   - creates 1 or 2 managers (a COM IHostMemoryManager and/or a native hm_manager) with a limit
 *     and reserves, and registers a notification callback (ICLRMemoryNotificationCallback, or
 *     hm_manager_set_notify) that counts Low, Neutral and High;
 *   - creates 1-3 instances per manager: thread-safe ones, sometimes MALLOC_EXECUTABLE (a `ret`
 *     is run from one of its blocks), sometimes one that is not thread-safe and used by one
 *     thread only;
 *   - starts 4-6 short-lived threads per round. In each of its cycles (as many as fit in about a
 *     second) every thread allocates
 *     mixed sizes at mixed criticality levels (COM Alloc/DebugAlloc, hm_alloc_level,
 *     hm_alloc_debug) until a task-critical request fails (the budget is hit), hands blocks to
 *     the others through a shared array (cross-thread frees), frees ~90 % of what it holds,
 *     then allocates again and expects every request to succeed within a few seconds (the
 *     budget is recovered). Some threads then exit with live blocks, which other threads check
 *     and free after their owner is gone; a wave of tiny threads churns on top;
 *   - releases the instances with live blocks still in them, and the managers, in random order.
 * Checked all the time: every block's pattern (it is checked before every free), alignment,
 * every HRESULT/result, committed <= limit (hm_manager_stats, or GetMemoryLoad for COM), RSS
 * within the committed bytes plus a bounded overhead; at a budget hit: almost nothing left
 * available, and a request too big for what is left fails at every level; after each round:
 * the callback was released and is never called again, no thread of the library is left, RSS
 * is back within RSS_SLACK of the baseline, and RSS, mappings, descriptors and the default
 * heap's thread count do not grow from round to round (compared with the median of the first
 * three rounds). Over the run at least one Low must have been reported.
 *
 * Prints one line per round, a memory curve (RSS at the end of rounds) and finally
 * "N passed, N failed" (rounds, then the run-level checks). Exits 1 on any failure. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <hostmalloc/hosting.h>
#include <hostmalloc/hostmalloc.h>

#include "tu_pattern.h"

#define KIB ((size_t)1024)
#define MIB ((size_t)1024 * 1024)

#define MAX_MGRS        2
#define MAX_INSTS       3 /* per manager */
#define MAX_WORKERS     6 /* per round, over all managers */
#define MAX_CHURN       8
#define MAX_CYCLES      40  /* budget hits and recoveries per round ... */
#define ROUND_SECONDS   1.0 /* ... until the round has run this long */
#define XFER_SLOTS      64
#define LIST_CAP        32768 /* blocks one thread holds */
#define RESERVE_APPDOM  (8 * MIB)
#define RESERVE_PROCESS (8 * MIB)
#define HIT_AVAIL_MAX   (10 * MIB) /* available to task-critical requests at a budget hit */
#define TOO_BIG         (32 * MIB) /* more than what can be left at a budget hit */
#define RECOVER_WAIT_MS 1000       /* a request after the frees must succeed within this */
#define RSS_SLACK       (16 * MIB) /* end of round vs baseline */
#define RSS_DRIFT       (8 * MIB)  /* end of round vs the first rounds */
#define MAPS_DRIFT      16
#define LIVE_SLACK      (32 * MIB) /* RSS beyond baseline + committed during a round */
#define ROUND_TIMEOUT_S 120
#define STACK_SIZE      (256 * KIB)

/* ---- failures ------------------------------------------------------------------------------- */
static atomic_int g_round_failures;
static atomic_int g_messages;
static int g_round;
static double g_round_start;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...) {
    atomic_fetch_add(&g_round_failures, 1);
    if (atomic_fetch_add(&g_messages, 1) >= 40) return; /* enough to diagnose */
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fprintf(stderr, "FAIL (round %d): %s\n", g_round, buf);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "soak: a round took too long (deadlock?)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    signal(SIGABRT, SIG_DFL);
    abort();
}

/* ---- time, randomness, /proc ------------------------------------------------------------------
 */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t rnd(rng_t *r) {
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint64_t below(rng_t *r, uint64_t n) {
    return rnd(r) % n;
}

static rng_t rng_seed(uint64_t seed) {
    rng_t r = {seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull};
    if (r.s == 0) r.s = 1;
    return r;
}

static size_t read_small_file(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    return (size_t)n;
}

static size_t rss_bytes(void) {
    char buf[128];
    unsigned long size = 0, resident = 0;
    if (read_small_file("/proc/self/statm", buf, sizeof buf) == 0) return 0;
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2) return 0;
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static long count_lines(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[4096];
    long lines = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
    close(fd);
    return lines;
}

static long count_dir(const char *path) {
    DIR *d = opendir(path);
    if (d == NULL) return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n;
}

static double mib(size_t b) {
    return (double)b / (double)MIB;
}

/* ---- the objects of a round ---------------------------------------------------------------------
 */
/* A notification sink: the COM callback object and the native function's argument. */
typedef struct sink {
    ICLRMemoryNotificationCallback iface; /* first: &sink->iface is the COM object */
    atomic_int refs;
    atomic_long counts[4]; /* by EMemoryAvailable */
    atomic_bool gone;      /* the manager is released: no call may come any more */
} sink_t;

struct mgr;

typedef struct inst {
    struct mgr *mgr;
    bool com, threadsafe, exec;
    IHostMalloc *m; /* COM */
    hm_heap *h;     /* native */
    atomic_long live_blocks;
} inst_t;

typedef struct mgr {
    bool com;
    IHostMemoryManager *mm;
    hm_manager *nm;
    size_t limit, task_ceiling;
    sink_t sink;
    inst_t insts[MAX_INSTS];
    int ninst;
    int nworkers;
    pthread_barrier_t bar;
    _Atomic(uintptr_t) xfer[XFER_SLOTS];
    atomic_llong live_bytes;
    atomic_llong peak_committed;
    atomic_long hits, retries, big_fail_ok;
    bool again; /* another cycle (written by worker 0 between barriers) */
} mgr_t;

typedef struct worker {
    int idx; /* within its manager's group */
    mgr_t *mgr;
    inst_t *own; /* a non-thread-safe instance only this thread uses, or NULL */
    rng_t rng;
    void **list;
    size_t n;
    bool orphan; /* exits with its blocks still live */
    bool churn;  /* a tiny thread of the churn wave */
    pthread_t tid;
} worker_t;

static mgr_t g_mgrs[MAX_MGRS];
static int g_nmgrs;
static worker_t g_workers[MAX_WORKERS + MAX_CHURN];

/* Blocks whose thread exited without freeing them. */
static pthread_mutex_t g_orphan_lock = PTHREAD_MUTEX_INITIALIZER;
static void **g_orphans;
static size_t g_norphans, g_orphan_cap;
static atomic_size_t g_orphan_next; /* churn threads take orphans from here */
static size_t g_orphan_limit;       /* ... up to here (those of the workers) */

static atomic_long g_leak_reports;
static atomic_int g_workers_done;

/* ---- block patterns -----------------------------------------------------------------------------
 * Word 0 holds size ^ key(p), word 1 the instance ^ key(p) * golden, word i >= 2 key ^ i * golden,
 * tail bytes a byte of the key ^ index. Blocks are at least 16 bytes. */
#define GOLD 0x9e3779b97f4a7c15ull

static void stamp(void *p, size_t size, const inst_t *in) {
    uint64_t k = tu_key_of(p), *w = (uint64_t *)p;
    size_t nw = size / 8;
    w[0] = size ^ k;
    w[1] = (uint64_t)(uintptr_t)in ^ (k * GOLD);
    for (size_t i = 2; i < nw; i++)
        w[i] = k ^ (i * GOLD);
    unsigned char *b = (unsigned char *)p;
    for (size_t j = nw * 8; j < size; j++)
        b[j] = (unsigned char)((k >> ((j & 7) * 8)) ^ j);
}

static bool inst_valid(const inst_t *in) {
    for (int m = 0; m < g_nmgrs; m++)
        for (int i = 0; i < g_mgrs[m].ninst; i++)
            if (in == &g_mgrs[m].insts[i]) return true;
    return false;
}

/* Check the pattern of the block at `p`; give its size and instance. */
static bool verify(const void *p, size_t *size_out, inst_t **inst_out) {
    const uint64_t k = tu_key_of(p), *w = (const uint64_t *)p;
    size_t size = (size_t)(w[0] ^ k);
    inst_t *in = (inst_t *)(uintptr_t)(w[1] ^ (k * GOLD));
    if (size < 16 || size > 64 * MIB || !inst_valid(in)) {
        fail("block %p: header overwritten (size word %#" PRIx64 ")", p, w[0]);
        return false;
    }
    size_t nw = size / 8;
    for (size_t i = 2; i < nw; i++)
        if (w[i] != (k ^ (i * GOLD))) {
            fail("block %p of %zu bytes: word %zu overwritten", p, size, i);
            return false;
        }
    const unsigned char *b = (const unsigned char *)p;
    for (size_t j = nw * 8; j < size; j++)
        if (b[j] != (unsigned char)((k >> ((j & 7) * 8)) ^ j)) {
            fail("block %p of %zu bytes: byte %zu overwritten", p, size, j);
            return false;
        }
    *size_out = size;
    *inst_out = in;
    return true;
}

/* ---- the two doors
 * -------------------------------------------------------------------------------- */
static const char *level_name(EMemoryCriticalLevel l) {
    return l == eTaskCritical ? "task" : l == eAppDomainCritical ? "appdomain" : "process";
}

/* Allocate, stamp and count a block; NULL when the budget says no (anything else fails). */
static void *inst_alloc(inst_t *in, size_t size, EMemoryCriticalLevel level, bool debug) {
    void *p = NULL;
    if (in->com) {
        HRESULT hr =
            debug ? IHostMalloc_DebugAlloc(in->m, size, level, (char *)__FILE__, __LINE__, &p)
                  : IHostMalloc_Alloc(in->m, size, level, &p);
        if (hr == E_OUTOFMEMORY) {
            if (p != NULL) fail("Alloc failed with E_OUTOFMEMORY but *ppMem = %p", p);
            return NULL;
        }
        if (hr != S_OK || p == NULL) {
            fail("%s(%zu, %s): hr %#x, p %p", debug ? "DebugAlloc" : "Alloc", size,
                 level_name(level), (unsigned)hr, p);
            return NULL;
        }
    } else {
        errno = 0;
        p = debug ? hm_alloc_debug(in->h, size, level, __FILE__, __LINE__)
                  : hm_alloc_level(in->h, size, level);
        if (p == NULL) {
            if (errno != ENOMEM) fail("hm_alloc_level(%zu) NULL with errno %d", size, errno);
            return NULL;
        }
    }
    if (((uintptr_t)p & 15) != 0) fail("block %p not 16-byte aligned", p);
    stamp(p, size, in);
    atomic_fetch_add(&in->live_blocks, 1);
    long long live = atomic_fetch_add(&in->mgr->live_bytes, (long long)size) + (long long)size;
    if ((size_t)live > in->mgr->limit)
        fail("%lld live bytes in a manager limited to %zu", live, in->mgr->limit);
    return p;
}

/* Check and free a block of any instance, from any thread allowed to. */
static void block_free(void *p, rng_t *r) {
    size_t size;
    inst_t *in;
    if (!verify(p, &size, &in)) return; /* leaked on purpose: its instance sweeps it */
    if (in->com) {
        HRESULT hr = IHostMalloc_Free(in->m, p);
        if (hr != S_OK) fail("Free(%p) of a live block: hr %#x", p, (unsigned)hr);
    } else if (below(r, 2) == 0) {
        hm_result res = hm_heap_free(in->h, p);
        if (res != HM_OK) fail("hm_heap_free(%p) of a live block: %d", p, (int)res);
    } else {
        hm_free(p);
    }
    atomic_fetch_sub(&in->live_blocks, 1);
    atomic_fetch_sub(&in->mgr->live_bytes, (long long)size);
}

/* An upper bound of what manager `m` has committed; checks it against the limit. */
static size_t mgr_committed(mgr_t *m) {
    if (!m->com) {
        hm_manager_stats_t s;
        hm_manager_stats(m->nm, &s);
        if (s.committed > m->limit || s.peak_committed > m->limit)
            fail("native manager: committed %zu, peak %zu above the limit %zu", s.committed,
                 s.peak_committed, m->limit);
        return s.committed;
    }
    DWORD load = 0;
    SIZE_T avail = 0;
    HRESULT hr = IHostMemoryManager_GetMemoryLoad(m->mm, &load, &avail);
    if (hr != S_OK) fail("GetMemoryLoad: hr %#x", (unsigned)hr);
    if (load > 100) fail("GetMemoryLoad: load %u%%", (unsigned)load);
    if (avail > m->task_ceiling)
        fail("GetMemoryLoad: %zu bytes available, above the task ceiling %zu", (size_t)avail,
             m->task_ceiling);
    size_t ub = ((size_t)load + 1) * m->limit / 100;
    if (avail > 0 && m->task_ceiling - avail < ub) ub = m->task_ceiling - avail;
    return ub;
}

static size_t mgr_available(mgr_t *m) {
    size_t avail = 0;
    if (m->com) {
        DWORD load;
        SIZE_T a = 0;
        if (IHostMemoryManager_GetMemoryLoad(m->mm, &load, &a) != S_OK) fail("GetMemoryLoad");
        avail = a;
    } else {
        hm_manager_load(m->nm, NULL, &avail);
    }
    return avail;
}

/* ---- notifications ----------------------------------------------------------------------------
 */
static void sink_note(sink_t *s, int level) {
    if (atomic_load(&s->gone)) fail("notification %d after the manager was released", level);
    if (level < 1 || level > 3) {
        fail("notification with level %d", level);
        return;
    }
    atomic_fetch_add(&s->counts[level], 1);
    /* the callback may allocate: do it through the process default heap */
    void *p = hm_alloc(hm_heap_default(), 200);
    if (p != NULL) memset(p, 0x5a, 200);
    hm_free(p);
}

static HRESULT STDMETHODCALLTYPE cb_qi(ICLRMemoryNotificationCallback *This, REFIID riid,
                                       void **ppv) {
    if (ppv == NULL) return E_POINTER;
    if (memcmp(riid, &IID_IUnknown, sizeof(IID)) == 0 ||
        memcmp(riid, &IID_ICLRMemoryNotificationCallback, sizeof(IID)) == 0) {
        *ppv = This;
        atomic_fetch_add(&((sink_t *)This)->refs, 1);
        return S_OK;
    }
    *ppv = NULL;
    return E_NOINTERFACE;
}

static ULONG STDMETHODCALLTYPE cb_addref(ICLRMemoryNotificationCallback *This) {
    return (ULONG)(atomic_fetch_add(&((sink_t *)This)->refs, 1) + 1);
}

static ULONG STDMETHODCALLTYPE cb_release(ICLRMemoryNotificationCallback *This) {
    int left = atomic_fetch_sub(&((sink_t *)This)->refs, 1) - 1;
    if (left < 0) fail("callback released more often than AddRef'd");
    return (ULONG)left;
}

static HRESULT STDMETHODCALLTYPE cb_notify(ICLRMemoryNotificationCallback *This,
                                           EMemoryAvailable level) {
    sink_note((sink_t *)This, (int)level);
    return S_OK;
}

static const ICLRMemoryNotificationCallbackVtbl cb_vtbl = {cb_qi, cb_addref, cb_release, cb_notify};

static void native_notify(void *arg, EMemoryAvailable level) {
    sink_note((sink_t *)arg, (int)level);
}

static void on_error(int kind, const void *ptr, const char *message, void *arg) {
    (void)ptr;
    (void)arg;
    if (kind == HM_ERROR_LEAK)
        atomic_fetch_add(&g_leak_reports, 1); /* a released instance with live DebugAllocs */
    else
        fail("misuse reported by the library: %s", message);
}

/* ---- workers -------------------------------------------------------------------------------- */
static size_t pick_size(rng_t *r, bool small_only) {
    uint64_t x = below(r, 1000);
    if (x < 700) return 16 + below(r, 1009);
    if (x < 950) return KIB + below(r, 63 * KIB);
    if (x < 995 || small_only) return 64 * KIB + below(r, 960 * KIB);
    return MIB + below(r, 5 * MIB);
}

static EMemoryCriticalLevel pick_level(rng_t *r) {
    uint64_t x = below(r, 20);
    return x < 15 ? eTaskCritical : x < 18 ? eAppDomainCritical : eProcessCritical;
}

/* A thread-safe instance of `m`, or (one time in three) the worker's own instance. */
static inst_t *pick_inst(worker_t *w) {
    if (w->own != NULL && below(&w->rng, 3) == 0) return w->own;
    mgr_t *m = w->mgr;
    for (;;) {
        inst_t *in = &m->insts[below(&w->rng, (uint64_t)m->ninst)];
        if (in->threadsafe) return in;
    }
}

static void push(worker_t *w, void *p) {
    if (w->n < LIST_CAP)
        w->list[w->n++] = p;
    else
        block_free(p, &w->rng);
}

static bool is_threadsafe_block(const void *p) {
    const uint64_t k = tu_key_of(p), *wd = (const uint64_t *)p;
    const inst_t *in = (const inst_t *)(uintptr_t)(wd[1] ^ (k * GOLD));
    return inst_valid(in) && in->threadsafe;
}

/* Put a block of a thread-safe instance into the shared array; free what was there. */
static void hand_over(worker_t *w, void *p, bool keep_taken) {
    _Atomic(uintptr_t) *slot = &w->mgr->xfer[below(&w->rng, XFER_SLOTS)];
    void *taken = (void *)atomic_exchange(slot, (uintptr_t)p);
    if (taken == NULL) return;
    if (keep_taken)
        push(w, taken);
    else
        block_free(taken, &w->rng);
}

/* Allocate until a task-critical request fails. */
static void fill(worker_t *w) {
    double deadline = now_s() + 20;
    while (w->n < LIST_CAP) {
        if (now_s() > deadline) {
            fail("worker %d: no budget hit after 20 s", w->idx);
            return;
        }
        inst_t *in = pick_inst(w);
        EMemoryCriticalLevel level = pick_level(&w->rng);
        size_t size = pick_size(&w->rng, false);
        void *p = inst_alloc(in, size, level, below(&w->rng, 20) == 0);
        if (p == NULL) {
            if (level == eTaskCritical) {
                atomic_fetch_add(&w->mgr->hits, 1);
                return;
            }
            continue;
        }
        if (in->threadsafe && below(&w->rng, 8) == 0)
            hand_over(w, p, true); /* what comes back is freed later by this thread */
        else
            push(w, p);
    }
}

/* At a budget hit, with the whole group waiting: little is left, big requests fail. */
static void check_at_limit(worker_t *w) {
    mgr_t *m = w->mgr;
    inst_t *in = &m->insts[0];
    static const EMemoryCriticalLevel levels[] = {eTaskCritical, eProcessCritical};
    for (int i = 0; i < 2; i++) {
        void *p = inst_alloc(in, TOO_BIG, levels[i], false);
        if (p != NULL) {
            fail("a %zu MiB %s-critical request succeeded at a budget hit (available %zu)",
                 TOO_BIG / MIB, level_name(levels[i]), mgr_available(m));
            block_free(p, &w->rng);
        }
    }
    size_t avail = mgr_available(m);
    if (avail >= HIT_AVAIL_MAX)
        fail("task-critical request refused with %zu bytes still available", avail);
    size_t committed = mgr_committed(m);
    long long peak = atomic_load(&m->peak_committed);
    if ((long long)committed > peak) atomic_store(&m->peak_committed, (long long)committed);
    /* the reserves: a small process-critical request usually still succeeds */
    void *p = inst_alloc(in, 256, eProcessCritical, false);
    if (p != NULL) {
        atomic_fetch_add(&m->big_fail_ok, 1);
        block_free(p, &w->rng);
    }
}

/* Free about 90 % of the blocks held, some through the shared array: the oldest tenth stays
 * (long-lived data, packed in the first pages) and 1 % of the others (scattered survivors that
 * keep their pages). */
static void shed(worker_t *w) {
    size_t kept = 0, old = w->n / 10;
    for (size_t i = 0; i < w->n; i++) {
        void *p = w->list[i];
        if (i < old || below(&w->rng, 100) == 0) {
            w->list[kept++] = p;
        } else if (below(&w->rng, 4) == 0 && is_threadsafe_block(p)) {
            hand_over(w, p, false);
        } else {
            block_free(p, &w->rng);
        }
    }
    w->n = kept;
}

static void drain_xfer(worker_t *w) {
    for (int i = 0; i < XFER_SLOTS; i++) {
        void *p = (void *)atomic_exchange(&w->mgr->xfer[i], (uintptr_t)0);
        if (p != NULL) block_free(p, &w->rng);
    }
}

/* After the frees every task-critical request must succeed again (within RECOVER_WAIT_MS). */
static void recover(worker_t *w) {
    mgr_t *m = w->mgr;
    size_t target = m->task_ceiling / 6 / (size_t)m->nworkers, got = 0;
    while (got < target && w->n < LIST_CAP) {
        inst_t *in = pick_inst(w);
        size_t size = pick_size(&w->rng, true);
        double deadline = now_s() + RECOVER_WAIT_MS / 1000.0;
        void *p;
        while ((p = inst_alloc(in, size, eTaskCritical, false)) == NULL) {
            atomic_fetch_add(&m->retries, 1);
            if (now_s() > deadline) {
                fail("budget not recovered: a %zu-byte task-critical request still fails after "
                     "%d ms (live %lld of limit %zu, available %zu)",
                     size, RECOVER_WAIT_MS, (long long)atomic_load(&m->live_bytes), m->limit,
                     mgr_available(m));
                return;
            }
            sleep_ms(2);
        }
        push(w, p);
        got += size;
    }
}

static void orphan_all(worker_t *w) {
    pthread_mutex_lock(&g_orphan_lock);
    for (size_t i = 0; i < w->n; i++) {
        if (g_norphans < g_orphan_cap)
            g_orphans[g_norphans++] = w->list[i];
        else
            block_free(w->list[i], &w->rng);
    }
    pthread_mutex_unlock(&g_orphan_lock);
    w->n = 0;
}

static void *worker_main(void *arg) {
    worker_t *w = (worker_t *)arg;
    mgr_t *m = w->mgr;
    for (int c = 0;; c++) {
        fill(w);
        pthread_barrier_wait(&m->bar); /* the whole group hit the budget */
        if (w->idx == 0) check_at_limit(w);
        pthread_barrier_wait(&m->bar);
        shed(w);
        pthread_barrier_wait(&m->bar);
        if (w->idx == 0) drain_xfer(w);
        pthread_barrier_wait(&m->bar);
        recover(w);
        if (w->idx == 0) m->again = c + 1 < MAX_CYCLES && now_s() - g_round_start < ROUND_SECONDS;
        pthread_barrier_wait(&m->bar);
        if (!m->again) break;
    }
    shed(w);
    if (w->orphan) {
        orphan_all(w); /* they outlive this thread */
    } else {
        for (size_t i = 0; i < w->n; i++)
            block_free(w->list[i], &w->rng);
        w->n = 0;
    }
    atomic_fetch_add(&g_workers_done, 1);
    return NULL;
}

/* A tiny thread: alloc/free pairs on thread-safe instances, frees orphans of exited threads,
 * leaves a few blocks live. */
static void *churn_main(void *arg) {
    worker_t *w = (worker_t *)arg;
    for (int i = 0; i < 300; i++) {
        mgr_t *m = &g_mgrs[below(&w->rng, (uint64_t)g_nmgrs)];
        w->mgr = m;
        inst_t *in = pick_inst(w);
        void *p = inst_alloc(in, 16 + below(&w->rng, 2000), pick_level(&w->rng), i % 50 == 0);
        if (p == NULL) continue;
        if (i % 60 == 0)
            push(w, p);
        else
            block_free(p, &w->rng);
    }
    /* free a share of the orphans (those of thread-safe instances) */
    for (int i = 0; i < 64; i++) {
        size_t k = atomic_fetch_add(&g_orphan_next, 1);
        if (k >= g_orphan_limit) break;
        if (g_orphans[k] != NULL && is_threadsafe_block(g_orphans[k])) {
            block_free(g_orphans[k], &w->rng);
            g_orphans[k] = NULL;
        }
    }
    orphan_all(w);
    return NULL;
}

/* ---- a round -------------------------------------------------------------------------------- */
typedef struct round_result {
    size_t peak_rss, peak_committed, end_rss, live_at_release;
    long maps, fds, threads, default_threads;
    long hits, retries, notes[4];
    double seconds, t_end;
} round_result;

static void exec_check(inst_t *in) {
#if defined(__x86_64__) || defined(__aarch64__)
    void *p = NULL;
    if (in->com) {
        if (IHostMalloc_Alloc(in->m, 64, eProcessCritical, &p) != S_OK) p = NULL;
    } else {
        p = hm_alloc(in->h, 64);
    }
    if (p == NULL) {
        fail("executable instance: 64-byte block refused");
        return;
    }
#if defined(__x86_64__)
    ((unsigned char *)p)[0] = 0xc3; /* ret */
#else
    ((uint32_t *)p)[0] = 0xd65f03c0u; /* ret */
#endif
    __builtin___clear_cache((char *)p, (char *)p + 64);
    void (*fn)(void);
    memcpy(&fn, &p, sizeof fn);
    fn(); /* faults when the block is not executable */
    if (in->com) {
        if (IHostMalloc_Free(in->m, p) != S_OK) fail("Free of the executable block");
    } else {
        hm_free(p);
    }
#else
    (void)in;
#endif
}

static void create_managers(rng_t *r) {
    memset(g_mgrs, 0, sizeof g_mgrs);
    g_nmgrs = 1 + (int)below(r, 2);
    bool first_com = below(r, 2) == 0;
    for (int i = 0; i < g_nmgrs; i++) {
        mgr_t *m = &g_mgrs[i];
        m->com = i == 0 ? first_com : !first_com;
        hm_config cfg;
        hm_config_init(&cfg);
        cfg.limit = below(r, 2) == 0 ? 96 * MIB : 64 * MIB;
        cfg.reserve_appdomain = RESERVE_APPDOM;
        cfg.reserve_process = RESERVE_PROCESS;
        cfg.process_wait_ms = 20;
        cfg.on_error = on_error;
        m->limit = cfg.limit;
        m->task_ceiling = cfg.limit - RESERVE_APPDOM - RESERVE_PROCESS;
        m->sink.iface.lpVtbl = &cb_vtbl;
        if (m->com) {
            HRESULT hr = hm_create_host_memory_manager(&cfg, &m->mm);
            if (hr != S_OK || m->mm == NULL) {
                fprintf(stderr, "soak: hm_create_host_memory_manager: %#x\n", (unsigned)hr);
                exit(1);
            }
            hr = IHostMemoryManager_RegisterMemoryNotificationCallback(m->mm, &m->sink.iface);
            if (hr != S_OK) fail("RegisterMemoryNotificationCallback: hr %#x", (unsigned)hr);
            if (atomic_load(&m->sink.refs) != 1)
                fail("callback holds %d references after Register", atomic_load(&m->sink.refs));
        } else {
            m->nm = hm_manager_new(&cfg);
            if (m->nm == NULL) {
                fprintf(stderr, "soak: hm_manager_new failed\n");
                exit(1);
            }
            if (!hm_manager_set_notify(m->nm, native_notify, &m->sink))
                fail("hm_manager_set_notify failed");
        }
        if (m->com) {
            SIZE_T avail = 0;
            DWORD load = 0;
            if (IHostMemoryManager_GetMemoryLoad(m->mm, &load, &avail) != S_OK ||
                avail != m->task_ceiling || load != 0)
                fail("new manager: load %u, available %zu", (unsigned)load, (size_t)avail);
        } else if (hm_manager_limit(m->nm) != m->limit) {
            fail("hm_manager_limit %zu, configured %zu", hm_manager_limit(m->nm), m->limit);
        }
        m->ninst = 1 + (int)below(r, MAX_INSTS);
        bool have_private = false;
        for (int k = 0; k < m->ninst; k++) {
            inst_t *in = &m->insts[k];
            in->mgr = m;
            in->com = m->com;
            in->threadsafe = k == 0 || have_private || below(r, 2) == 0;
            if (!in->threadsafe) have_private = true;
            in->exec = below(r, 4) == 0;
            unsigned flags = (in->threadsafe ? 1u : 0u) | (in->exec ? 2u : 0u);
            if (m->com) {
                HRESULT hr = IHostMemoryManager_CreateMalloc(m->mm, flags, &in->m);
                if (hr != S_OK || in->m == NULL) {
                    fprintf(stderr, "soak: CreateMalloc(%u): %#x\n", flags, (unsigned)hr);
                    exit(1);
                }
            } else {
                in->h = hm_heap_new(m->nm, flags);
                if (in->h == NULL) {
                    fprintf(stderr, "soak: hm_heap_new(%u) failed\n", flags);
                    exit(1);
                }
            }
            if (in->exec) exec_check(in);
        }
    }
}

/* Release instances (with live blocks) and managers in a random order; then nothing of them
 * may remain: no callback reference, no notifier thread. */
static void release_managers(rng_t *r, round_result *res) {
    for (int i = 0; i < g_nmgrs; i++) {
        mgr_t *m = &g_mgrs[i];
        res->live_at_release += (size_t)atomic_load(&m->live_bytes);
        for (int k = 0; k < m->ninst; k++) {
            inst_t *in = &m->insts[k];
            if (!in->com) {
                hm_heap_stats_t hs;
                hm_heap_stats(in->h, &hs);
                if (hs.live_blocks < (size_t)atomic_load(&in->live_blocks))
                    fail("heap stats: %zu live blocks, the test holds %ld", hs.live_blocks,
                         atomic_load(&in->live_blocks));
            }
        }
        bool unregister = below(r, 2) == 0;
        if (unregister) {
            if (m->com) {
                HRESULT hr = IHostMemoryManager_RegisterMemoryNotificationCallback(m->mm, NULL);
                if (hr != S_OK) fail("unregister: hr %#x", (unsigned)hr);
                if (atomic_load(&m->sink.refs) != 0)
                    fail("callback holds %d references after unregistering",
                         atomic_load(&m->sink.refs));
            } else {
                if (!hm_manager_set_notify(m->nm, NULL, NULL)) fail("set_notify(NULL)");
                hm_manager_stats_t s;
                hm_manager_stats(m->nm, &s);
                for (int l = 1; l <= 3; l++)
                    if (s.notifications[l] != (size_t)atomic_load(&m->sink.counts[l]))
                        fail("stats count %zu notifications of level %d, the callback heard %ld",
                             s.notifications[l], l, atomic_load(&m->sink.counts[l]));
            }
        }
        bool manager_first = below(r, 2) == 0;
        if (manager_first) {
            if (m->com)
                IHostMemoryManager_Release(m->mm);
            else
                hm_manager_release(m->nm);
        }
        for (int k = 0; k < m->ninst; k++) {
            inst_t *in = &m->insts[k];
            if (in->com) {
                ULONG left = IHostMalloc_Release(in->m);
                if (left != 0) fail("IHostMalloc::Release left %u references", (unsigned)left);
            } else {
                hm_heap_release(in->h);
            }
        }
        if (!manager_first) {
            if (m->com) {
                ULONG left = IHostMemoryManager_Release(m->mm);
                if (left != 0) fail("IHostMemoryManager::Release left %u", (unsigned)left);
            } else {
                hm_manager_release(m->nm);
            }
        }
        if (atomic_load(&m->sink.refs) != 0)
            fail("the manager is gone but the callback still has %d references",
                 atomic_load(&m->sink.refs));
        atomic_store(&m->sink.gone, true);
        for (int l = 1; l <= 3; l++)
            res->notes[l] += atomic_load(&m->sink.counts[l]);
        res->hits += atomic_load(&m->hits);
        res->retries += atomic_load(&m->retries);
    }
}

static pthread_attr_t g_attr;

static void start(worker_t *w, void *(*fn)(void *)) {
    int e = pthread_create(&w->tid, &g_attr, fn, w);
    if (e != 0) {
        fprintf(stderr, "soak: pthread_create: %s\n", strerror(e));
        exit(1);
    }
}

/* 4 MiB of virtual memory reserved, committed, written and released through m's door (COM or
 * native); a refusal for lack of memory is allowed, any other error fails. */
static void virtual_round_trip(mgr_t *m) {
    void *p = NULL;
    const size_t size = 4 * MIB;
    const DWORD type = MEM_RESERVE | MEM_COMMIT;
    /* each door's result as a number, with what success and "out of memory" are on it */
    long rc =
        m->com ? (long)IHostMemoryManager_VirtualAlloc(m->mm, NULL, size, type, PAGE_READWRITE,
                                                       eTaskCritical, &p)
               : (long)hm_virtual_alloc(m->nm, NULL, size, type, PAGE_READWRITE, eTaskCritical, &p);
    const long ok = m->com ? (long)S_OK : (long)HM_OK;
    const long nomem = m->com ? (long)E_OUTOFMEMORY : (long)HM_ERR_NOMEM;
    const char *door = m->com ? "VirtualAlloc" : "hm_virtual_alloc";
    if (rc == nomem) return;
    if (rc != ok) fail("%s: %ld", door, rc);
    memset(p, 0x77, size);
    rc = m->com ? (long)IHostMemoryManager_VirtualFree(m->mm, p, 0, MEM_RELEASE)
                : (long)hm_virtual_free(m->nm, p, 0, MEM_RELEASE);
    if (rc != ok) fail("%s's free: %ld", door, rc);
}

static void run_round(uint64_t seed, size_t baseline, round_result *res) {
    double t0 = g_round_start = now_s();
    rng_t r = rng_seed(seed);
    memset(res, 0, sizeof *res);
    create_managers(&r);
    g_norphans = 0;
    atomic_store(&g_orphan_next, 0);

    /* 4-6 workers, split over the managers; a non-thread-safe instance goes to one of them */
    int nworkers = 4 + (int)below(&r, 3);
    int base = nworkers / g_nmgrs;
    int wi = 0;
    for (int i = 0; i < g_nmgrs; i++) {
        mgr_t *m = &g_mgrs[i];
        m->nworkers = i == g_nmgrs - 1 ? nworkers - base * (g_nmgrs - 1) : base;
        pthread_barrier_init(&m->bar, NULL, (unsigned)m->nworkers);
        inst_t *priv = NULL;
        for (int k = 0; k < m->ninst; k++)
            if (!m->insts[k].threadsafe) priv = &m->insts[k];
        int priv_owner = (int)below(&r, (uint64_t)m->nworkers);
        for (int j = 0; j < m->nworkers; j++, wi++) {
            worker_t *w = &g_workers[wi];
            w->idx = j;
            w->mgr = m;
            w->own = j == priv_owner ? priv : NULL;
            w->rng = rng_seed(seed * 131 + (uint64_t)wi + 1);
            w->n = 0;
            w->churn = false;
            w->orphan = below(&r, 3) == 0 || wi == 0; /* at least one per round */
        }
    }
    atomic_store(&g_workers_done, 0);
    for (int i = 0; i < nworkers; i++)
        start(&g_workers[i], worker_main);

    /* watch while they work: committed within the limit, RSS within committed + slack */
    for (;;) {
        bool running = atomic_load(&g_workers_done) < nworkers;
        size_t c1 = 0, c2 = 0;
        for (int i = 0; i < g_nmgrs; i++)
            c1 += mgr_committed(&g_mgrs[i]);
        size_t rss = rss_bytes();
        for (int i = 0; i < g_nmgrs; i++)
            c2 += mgr_committed(&g_mgrs[i]);
        size_t committed = c1 > c2 ? c1 : c2;
        if (rss > res->peak_rss) res->peak_rss = rss;
        if (committed > res->peak_committed) res->peak_committed = committed;
        if (rss > baseline + committed + LIVE_SLACK)
            fail("RSS %.1f MiB above baseline %.1f + committed %.1f + %zu MiB", mib(rss),
                 mib(baseline), mib(committed), LIVE_SLACK / MIB);
        if (!running) break;
        sleep_ms(5);
    }
    for (int i = 0; i < nworkers; i++)
        pthread_join(g_workers[i].tid, NULL);
    for (int i = 0; i < g_nmgrs; i++)
        pthread_barrier_destroy(&g_mgrs[i].bar);

    /* the orphans are intact; the main thread frees some of those of non-thread-safe
     * instances (their threads are gone), churn threads free some of the others */
    for (size_t i = 0; i < g_norphans; i++) {
        size_t size;
        inst_t *in;
        if (!verify(g_orphans[i], &size, &in)) {
            g_orphans[i] = NULL; /* leaked: the release sweeps it */
            continue;
        }
        if (!in->threadsafe && below(&r, 2) == 0) {
            block_free(g_orphans[i], &r);
            g_orphans[i] = NULL;
        }
    }
    g_orphan_limit = g_norphans;
    int nchurn = 4 + (int)below(&r, MAX_CHURN - 3);
    for (int i = 0; i < nchurn; i++) {
        worker_t *w = &g_workers[MAX_WORKERS + i];
        w->idx = i;
        w->own = NULL;
        w->n = 0;
        w->churn = true;
        w->rng = rng_seed(seed * 977 + (uint64_t)i + 7);
        start(w, churn_main);
    }
    for (int i = 0; i < nchurn; i++)
        pthread_join(g_workers[MAX_WORKERS + i].tid, NULL);
    for (size_t i = 0; i < g_norphans; i++) {
        size_t size;
        inst_t *in;
        if (g_orphans[i] != NULL && !verify(g_orphans[i], &size, &in)) g_orphans[i] = NULL;
    }

    /* with the live blocks still there: RSS within committed + slack */
    size_t committed = 0;
    for (int i = 0; i < g_nmgrs; i++)
        committed += mgr_committed(&g_mgrs[i]);
    size_t rss = rss_bytes();
    if (rss > baseline + committed + LIVE_SLACK)
        fail("before release: RSS %.1f MiB above baseline %.1f + committed %.1f + %zu MiB",
             mib(rss), mib(baseline), mib(committed), LIVE_SLACK / MIB);

    /* some virtual memory, through both doors */
    for (int i = 0; i < g_nmgrs; i++)
        virtual_round_trip(&g_mgrs[i]);

    release_managers(&r, res);

    /* no thread of ours or of the library may be left (notifiers are joined at release) */
    double deadline = now_s() + 0.5;
    while ((res->threads = count_dir("/proc/self/task")) > 1 && now_s() < deadline)
        sleep_ms(1);
    if (res->threads != 1) fail("%ld threads left after the round", res->threads);
    res->end_rss = rss_bytes();
    res->maps = count_lines("/proc/self/maps");
    res->fds = count_dir("/proc/self/fd");
    hm_heap_stats_t ds;
    hm_heap_stats(hm_heap_default(), &ds);
    res->default_threads = (long)ds.threads;
    if (res->end_rss > baseline + RSS_SLACK)
        fail("RSS %.1f MiB after the round, baseline %.1f MiB + %zu MiB", mib(res->end_rss),
             mib(baseline), RSS_SLACK / MIB);
    res->seconds = now_s() - t0;
}

static int cmp_size(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

static size_t median3(size_t a, size_t b, size_t c) {
    size_t v[3] = {a, b, c};
    qsort(v, 3, sizeof v[0], cmp_size);
    return v[1];
}

int main(int argc, char **argv) {
    const char *arg = argc > 1 ? argv[1] : getenv("SOAK_SECONDS");
    double seconds = arg != NULL && *arg != '\0' ? strtod(arg, NULL) : 30;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 1;
    if (!(seconds > 0)) {
        fprintf(stderr, "usage: %s [seconds [seed]]   (or SOAK_SECONDS)\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGALRM, on_alarm);
    pthread_attr_init(&g_attr);
    pthread_attr_setstacksize(&g_attr, STACK_SIZE);

    for (int i = 0; i < MAX_WORKERS + MAX_CHURN; i++) {
        g_workers[i].list = calloc(LIST_CAP, sizeof(void *));
        if (g_workers[i].list == NULL) return 1;
        memset(g_workers[i].list, 0, LIST_CAP * sizeof(void *)); /* resident from the start */
    }
    g_orphan_cap = (size_t)(MAX_WORKERS + MAX_CHURN) * LIST_CAP;
    g_orphans = calloc(g_orphan_cap, sizeof(void *));
    if (g_orphans == NULL) return 1;
    memset(g_orphans, 0, g_orphan_cap * sizeof(void *));
    size_t curve_cap = 1024, nrounds = 0;
    round_result *rounds = malloc(curve_cap * sizeof *rounds);
    if (rounds == NULL) return 1;

    size_t baseline = rss_bytes();
    long base_maps = count_lines("/proc/self/maps");
    printf("soak: %.0f s, seed %" PRIu64 ", baseline RSS %.1f MiB, %ld mappings\n", seconds, seed,
           mib(baseline), base_maps);

    int passed = 0, failed = 0;
    long notes[4] = {0, 0, 0, 0};
    size_t ref_rss = 0;
    long ref_maps = 0, ref_fds = 0, ref_dthreads = 0;
    double t_start = now_s();
    while (now_s() - t_start < seconds || nrounds == 0) {
        g_round = (int)nrounds + 1;
        atomic_store(&g_round_failures, 0);
        if (nrounds == curve_cap) {
            curve_cap *= 2;
            round_result *grown = realloc(rounds, curve_cap * sizeof *rounds);
            if (grown == NULL) return 1;
            rounds = grown;
        }
        round_result *res = &rounds[nrounds];
        alarm(ROUND_TIMEOUT_S);
        run_round(seed * 1000003 + nrounds, baseline, res);
        alarm(0);
        res->t_end = now_s() - t_start;
        nrounds++;
        if (nrounds == 3) {
            ref_rss = median3(rounds[0].end_rss, rounds[1].end_rss, rounds[2].end_rss);
            ref_maps = (long)median3((size_t)rounds[0].maps, (size_t)rounds[1].maps,
                                     (size_t)rounds[2].maps);
            ref_fds =
                (long)median3((size_t)rounds[0].fds, (size_t)rounds[1].fds, (size_t)rounds[2].fds);
            ref_dthreads =
                (long)median3((size_t)rounds[0].default_threads, (size_t)rounds[1].default_threads,
                              (size_t)rounds[2].default_threads);
        }
        if (nrounds > 3) {
            if (res->end_rss > ref_rss + RSS_DRIFT)
                fail("RSS grew: %.1f MiB, %.1f MiB in the first rounds", mib(res->end_rss),
                     mib(ref_rss));
            if (res->maps > ref_maps + MAPS_DRIFT)
                fail("mappings grew: %ld, %ld in the first rounds", res->maps, ref_maps);
            if (res->fds > ref_fds) fail("descriptors grew: %ld, %ld", res->fds, ref_fds);
            if (res->default_threads > ref_dthreads + 8)
                fail("default heap holds %ld thread parts, %ld in the first rounds",
                     res->default_threads, ref_dthreads);
        }
        for (int l = 1; l <= 3; l++)
            notes[l] += res->notes[l];
        int nf = atomic_load(&g_round_failures);
        nf == 0 ? passed++ : failed++;
        printf("round %3zu %4.2fs mgrs %d%s | hits %2ld retries %3ld | notes L%ld N%ld H%ld | "
               "peak rss %5.1f committed %5.1f | end rss %5.1f MiB maps %ld | %s\n",
               nrounds, res->seconds, g_nmgrs,
               g_nmgrs == 2 ? "" : (g_mgrs[0].com ? " com" : " nat"), res->hits, res->retries,
               res->notes[1], res->notes[2], res->notes[3], mib(res->peak_rss),
               mib(res->peak_committed), mib(res->end_rss), res->maps, nf ? "FAILED" : "ok");
    }

    /* run-level checks */
    g_round = 0;
    atomic_store(&g_round_failures, 0);
    if (notes[eMemoryAvailableLow] == 0) fail("no Low notification over the whole run");
    atomic_load(&g_round_failures) == 0 ? passed++ : failed++;

    size_t step = nrounds > 20 ? (nrounds + 19) / 20 : 1;
    printf("memory curve (RSS MiB at the end of round; peak during it), every %zu round(s):\n",
           step);
    for (size_t i = 0; i < nrounds; i += step)
        printf("  round %4zu  t=%6.1fs  end %6.1f  peak %6.1f  maps %ld\n", i + 1, rounds[i].t_end,
               mib(rounds[i].end_rss), mib(rounds[i].peak_rss), rounds[i].maps);
    if ((nrounds - 1) % step != 0)
        printf("  round %4zu  t=%6.1fs  end %6.1f  peak %6.1f  maps %ld\n", nrounds,
               rounds[nrounds - 1].t_end, mib(rounds[nrounds - 1].end_rss),
               mib(rounds[nrounds - 1].peak_rss), rounds[nrounds - 1].maps);
    printf("%zu rounds in %.1f s; notifications Low %ld, Neutral %ld, High %ld; %ld leak "
           "reports\n",
           nrounds, now_s() - t_start, notes[1], notes[2], notes[3], atomic_load(&g_leak_reports));
    printf("%d passed, %d failed\n", passed, failed);
    for (int i = 0; i < MAX_WORKERS + MAX_CHURN; i++)
        free(g_workers[i].list);
    free(g_orphans);
    free(rounds);
    return failed == 0 ? 0 : 1;
}
