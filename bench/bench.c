/* SPDX-License-Identifier: MIT */
/* bench/bench.c: allocator micro-benchmarks for hostmalloc and its peers.
 *
 *   bench <door> <workload> [threads] [scale]
 *
 * door:     com     IHostMemoryManager::CreateMalloc(MALLOC_THREADSAFE), IHostMalloc Alloc/Free
 *           native  hm_heap_new(NULL, HM_HEAP_THREADSAFE), hm_alloc/hm_free
 *           malloc  malloc/free: whatever allocator is linked or LD_PRELOADed
 *           null    no allocator: a static buffer (measures the harness itself; pairs only)
 * workload (default counts at scale 1; the multi-threaded ones default to 2 threads):
 *   pairs      50M immediate alloc/free pairs, 16..128 bytes (cycling), 1 thread
 *              (BENCH_PAIRS_SIZE=n: one size; BENCH_PAIRS_BATCH=k: k allocations, then k frees)
 *   window     120M replacements in a ring of 4096 live blocks of 8..512 bytes, oldest first
 *   prodcons   20M blocks of 16..256 bytes: a producer allocates, a lock-free SPSC ring
 *              carries them to a consumer that frees them (threads/2 such pairs, default 1)
 *   mixed      60M replacements per thread of random slots of a per-thread array of 2000
 *              blocks: 16..1024 bytes, 1/100 up to 64 KiB, 1/5000 up to 4 MiB; the first
 *              128 bytes of each block are written
 *   frag       1M small blocks (8..1024 bytes, fully written), 90% freed at random, then
 *              medium blocks (1..32 KiB) worth half the bytes freed; reports rss_full_kb
 *              (before the frees), rss_after_kb (after them) and rss_final_kb (after the
 *              medium blocks); time_s excludes the RSS probes
 *   larsonish  40M allocations per thread in rounds of 4096: in each round a thread frees
 *              and replaces the blocks (16..512 bytes) another thread allocated the round
 *              before; a barrier separates the rounds
 *   mstress    40 rounds of 4 new threads: each frees the quarter of a set another thread of
 *              the round before left, allocates a set of 20000 blocks (8..1024 bytes, 1/100 up
 *              to 32 KiB), replaces 20000 of them at random, keeps a quarter, frees the rest
 *              and exits (thread churn with a large working set)
 *   larson     300 rounds of 4 new threads: each makes 10000 random replacements (8..1000
 *              bytes) in an array of 1000 blocks that the exited thread of the round before
 *              filled (frees of blocks whose thread has exited)
 *   rptest     1000 phases, 4 threads: each allocates a batch of 2000 blocks whose size range
 *              moves with the phase (16..256, 256..4096, 4..64 KiB, then mixed up to 128 KiB),
 *              frees half, and after a barrier frees the other half of its neighbour's batch
 *   large      1000 replacements of 20 blocks of 5..25 MiB, each page of a new block written
 *   medium     20M replacements in a ring of 16 live blocks of 16..64 KiB, oldest first (first
 *              and last byte written): few blocks to a page, so pages fill and empty often
 *   buffers    5 rounds of 20000 live blocks of 64..256 KiB (first and last byte written), all
 *              freed in a random order: many buffers held at once
 *   idle       400000 blocks of 256 bytes (100 MiB) written and freed, then a second of light
 *              activity (8 replacements every millisecond in a ring of 64 blocks of 16..4096
 *              bytes, or up to BENCH_IDLE_MAX); reports rss_start_kb, rss_full_kb, rss_after_kb
 *              (after the frees) and rss_final_kb (after the quiet second); time_s excludes
 *              that second
 * threads:  thread count of the multi-threaded workloads (0 or absent: the default)
 * scale:    multiplies the iteration counts (a float, default 1), or `n=<count>` to give the
 *           exact iteration count (used by callgrind.sh)
 *
 * Each run prints one line on stdout:
 *   RESULT door=<d> workload=<w> threads=<t> time_s=<x> peak_rss_kb=<y> [rss_after_kb=<z> ...]
 * time_s covers the workload only (CLOCK_MONOTONIC); peak_rss_kb is getrusage ru_maxrss;
 * user_s, sys_s and minflt are the process's user and system time and minor page faults
 * (getrusage) from the door's opening to the workload's end.
 * Every block written is read back and checked; a mismatch exits with status 3.
 * BENCH_PIN=1 in the environment pins thread i to the i-th allowed CPU (default: unpinned).
 *
 * Build with -DBENCH_NO_HOSTMALLOC to compile out the com and native doors (malloc door only,
 * no link dependency on hostmalloc). Each workload is instantiated once per door with the
 * door a compile-time constant, so the only door overhead in the loops is the call itself. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_NO_HOSTMALLOC
#include <hostmalloc/hosting.h>
#include <hostmalloc/hostmalloc.h>
#endif

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE      __attribute__((noinline))
#define UNLIKELY(x)   __builtin_expect(!!(x), 0)
#define CACHE_LINE    64

/* ---- Doors -------------------------------------------------------------------------------- */
enum door { DOOR_COM, DOOR_NATIVE, DOOR_MALLOC, DOOR_NULL };
static const char *const door_names[] = {"com", "native", "malloc", "null"};

typedef struct door_ctx {
#ifndef BENCH_NO_HOSTMALLOC
    IHostMemoryManager *mgr;
    IHostMalloc *com;
    hm_heap *heap;
#else
    void *unused;
#endif
} door_ctx;

static door_ctx g_ctx;

static void die(const char *what) {
    fprintf(stderr, "bench: %s\n", what);
    exit(2);
}

static void check_failed(const char *workload, const char *what) {
    fprintf(stderr, "bench: %s: CHECK FAILED: %s\n", workload, what);
    exit(3);
}

/* The null door: never inlined, so it costs a call like the real doors. */
static unsigned char null_buf[4u << 20] __attribute__((aligned(64)));
static NOINLINE void *null_alloc(size_t n) {
    (void)n;
    __asm__ volatile("" ::: "memory");
    return null_buf;
}
static NOINLINE void null_free(void *p) {
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* Make `p` escape so the compiler can neither drop an allocation nor cache its contents. */
static ALWAYS_INLINE void escape(void *p) {
    __asm__ volatile("" : : "r"(p) : "memory");
}

static ALWAYS_INLINE void *d_alloc(const enum door d, const door_ctx *c, size_t n) {
    void *p = NULL;
    switch (d) {
#ifndef BENCH_NO_HOSTMALLOC
    case DOOR_COM:
        if (UNLIKELY(FAILED(IHostMalloc_Alloc(c->com, n, eProcessCritical, &p)))) p = NULL;
        break;
    case DOOR_NATIVE:
        p = hm_alloc(c->heap, n);
        break;
#endif
    case DOOR_MALLOC:
        p = malloc(n);
        break;
    case DOOR_NULL:
        p = null_alloc(n);
        break;
    default:
        break;
    }
    (void)c;
    if (UNLIKELY(p == NULL)) die("allocation failed");
    escape(p);
    return p;
}

static ALWAYS_INLINE void d_free(const enum door d, const door_ctx *c, void *p) {
    switch (d) {
#ifndef BENCH_NO_HOSTMALLOC
    case DOOR_COM:
        (void)IHostMalloc_Free(c->com, p);
        break;
    case DOOR_NATIVE:
        hm_free(p);
        break;
#endif
    case DOOR_MALLOC:
        free(p);
        break;
    case DOOR_NULL:
        null_free(p);
        break;
    default:
        break;
    }
    (void)c;
}

static void door_open(enum door d) {
    switch (d) {
#ifndef BENCH_NO_HOSTMALLOC
    case DOOR_COM: {
        HRESULT hr = hm_create_host_memory_manager(NULL, &g_ctx.mgr);
        if (FAILED(hr) || g_ctx.mgr == NULL) die("hm_create_host_memory_manager failed");
        hr = IHostMemoryManager_CreateMalloc(g_ctx.mgr, MALLOC_THREADSAFE, &g_ctx.com);
        if (FAILED(hr) || g_ctx.com == NULL) die("CreateMalloc(MALLOC_THREADSAFE) failed");
        break;
    }
    case DOOR_NATIVE:
        g_ctx.heap = hm_heap_new(NULL, HM_HEAP_THREADSAFE);
        if (g_ctx.heap == NULL) die("hm_heap_new failed");
        break;
#endif
    default:
        break;
    }
}

static void door_close(enum door d) {
    switch (d) {
#ifndef BENCH_NO_HOSTMALLOC
    case DOOR_COM:
        IHostMalloc_Release(g_ctx.com);
        IHostMemoryManager_Release(g_ctx.mgr);
        break;
    case DOOR_NATIVE:
        hm_heap_release(g_ctx.heap);
        break;
#endif
    default:
        break;
    }
}

/* ---- Utilities ---------------------------------------------------------------------------- */
typedef struct rng {
    uint64_t s;
} rng;

static ALWAYS_INLINE uint64_t rng_next(rng *r) { /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [lo, hi] (hi - lo < 2^32) without a division. */
static ALWAYS_INLINE size_t rng_range(rng *r, size_t lo, size_t hi) {
    uint64_t x = rng_next(r) & 0xFFFFFFFFu;
    return lo + (size_t)((x * (uint64_t)(hi - lo + 1)) >> 32);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long peak_rss_kb(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return ru.ru_maxrss; /* kilobytes on Linux */
}

static double tv_s(const struct timeval *tv) {
    return (double)tv->tv_sec + (double)tv->tv_usec * 1e-6;
}

static long current_rss_kb(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, resident = -1;
    if (f == NULL) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* The tag written into a block: the low byte of its sequence number, never 0. */
static ALWAYS_INLINE uint8_t tag_of(uint64_t seq) {
    return (uint8_t)(seq % 255u + 1u);
}

static ALWAYS_INLINE void stamp(uint8_t *p, size_t n, uint8_t tag) {
    p[0] = tag;
    p[n - 1] = tag;
}

static ALWAYS_INLINE bool stamp_ok(const uint8_t *p, size_t n, uint8_t tag) {
    return p[0] == tag && p[n - 1] == tag;
}

/* Thread spawning: the workloads below give each thread a function and an index. */
typedef struct thread_arg {
    void *(*fn)(struct thread_arg *);
    void *shared;
    int index;
    int nthreads;
    uint64_t result;
} thread_arg;

static void *thread_trampoline(void *a) {
    thread_arg *t = a;
    return t->fn(t);
}

/* BENCH_PIN=1: pin thread i to the i-th CPU (modulo their count) the process may run on, so
 * that two threads always run on two different cores (where there are two). */
static void pin_thread(pthread_t tid, int i) {
    const char *pin = getenv("BENCH_PIN");
    cpu_set_t allowed, one;
    if (pin == NULL || strcmp(pin, "1") != 0) return;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
    int ncpu = CPU_COUNT(&allowed);
    if (ncpu < 2) return;
    for (int cpu = 0, seen = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &allowed) && seen++ == i % ncpu) {
            CPU_ZERO(&one);
            CPU_SET(cpu, &one);
            (void)pthread_setaffinity_np(tid, sizeof one, &one);
            return;
        }
}

/* Run `fn` on `n` new threads sharing `shared`, wait for all, and return the sum of their
 * results (each thread's count of corrupted blocks). */
static uint64_t run_threads(int n, void *(*fn)(thread_arg *), void *shared) {
    pthread_t *tids = calloc((size_t)n, sizeof *tids);
    thread_arg *args = calloc((size_t)n, sizeof *args);
    if (tids == NULL || args == NULL) die("out of memory");
    for (int i = 0; i < n; i++) {
        args[i].fn = fn;
        args[i].shared = shared;
        args[i].index = i;
        args[i].nthreads = n;
        args[i].result = 0;
        if (pthread_create(&tids[i], NULL, thread_trampoline, &args[i]) != 0)
            die("pthread_create failed");
        pin_thread(tids[i], i);
    }
    uint64_t bad = 0;
    for (int i = 0; i < n; i++) {
        pthread_join(tids[i], NULL);
        bad += args[i].result;
    }
    free(tids);
    return bad;
}

/* Spin politely: the machine may have fewer cores than runnable threads. */
static ALWAYS_INLINE void backoff(unsigned *spins) {
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
    } else {
        *spins = 0;
        sched_yield();
    }
}

/* The harness keeps its own bookkeeping arrays out of the measured allocator. */
static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n, size);
    if (p == NULL) die("out of memory (harness)");
    return p;
}

/* ---- Parameters --------------------------------------------------------------------------- */
typedef struct params {
    double scale;    /* multiplies the default counts */
    long long exact; /* > 0: the exact main count (n=...) */
    int threads;     /* 0: the workload's default */
} params;

static uint64_t count_of(const params *p, double base) {
    if (p->exact > 0) return (uint64_t)p->exact;
    double n = base * p->scale;
    return n < 1 ? 1 : (uint64_t)llround(n);
}

typedef struct result {
    double time_s;
    long rss_after_kb; /* -1: not reported */
    long rss_full_kb;
    long rss_final_kb;
    long rss_start_kb;
} result;

/* ---- pairs: immediate alloc/free pairs of 16..128 bytes (or of BENCH_PAIRS_SIZE) --------------
 * BENCH_PAIRS_BATCH=k (at most PAIRS_BATCH_MAX): the pairs in rounds of k, allocated one after
 * another and then freed, the first half oldest first and the rest newest first (the shape of
 * bench-malloc-simple as mimalloc-bench runs it); each block is still one pair. Unset or 1: every
 * block freed at once, so a design that frees onto a second list (mimalloc's) reaches its slow path
 * on every allocation, which a batch does not. */
#define PAIRS_BATCH_MAX 4096
/* (its own function: the one-block loop below keeps the code, and so the harness's instruction
 * count, it had before batches existed; the batch's own checks stay here for the same reason:
 * made in w_pairs, they moved the null door's one-block loop from 19.0 to 21.0 instructions a
 * pair, `BENCH_PAIRS_SIZE=64 bench/callgrind.sh`) */
static ALWAYS_INLINE void w_pairs_batch(const enum door d, const params *prm, result *res,
                                        size_t fixed, uint64_t batch) {
    const door_ctx c = g_ctx;
    const uint64_t n = count_of(prm, 50e6);
    if (batch > PAIRS_BATCH_MAX || n % batch != 0)
        die("BENCH_PAIRS_BATCH must be 1..4096 and divide the pair count");
    uint8_t **held = xcalloc(batch, sizeof *held);
    uint64_t sum = 0;
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i += batch) {
        for (uint64_t k = 0; k < batch; k++) {
            size_t sz = fixed != 0 ? fixed : 16 + (size_t)((i + k) & 7) * 16;
            uint8_t *p = d_alloc(d, &c, sz);
            p[0] = (uint8_t)(i + k);
            held[k] = p;
        }
        for (uint64_t k = 0; k < batch / 2; k++) {
            sum += held[k][0];
            d_free(d, &c, held[k]);
        }
        for (uint64_t k = batch; k-- > batch / 2;) {
            sum += held[k][0];
            d_free(d, &c, held[k]);
        }
    }
    res->time_s = now_s() - t0;
    free(held);
    uint64_t expect = 0;
    for (uint64_t i = 0; i < n; i++)
        expect += (uint8_t)i;
    /* (the null door hands out one buffer: a batch's blocks are all the same bytes) */
    if (d != DOOR_NULL && sum != expect) check_failed("pairs", "read-back mismatch");
}

static ALWAYS_INLINE void w_pairs(const enum door d, const params *prm, result *res) {
    const door_ctx c = g_ctx;
    const uint64_t n = count_of(prm, 50e6);
    /* BENCH_PAIRS_SIZE=n: every pair of one size (a block reused at once: the steady state) */
    const char *fixed_env = getenv("BENCH_PAIRS_SIZE");
    const size_t fixed = fixed_env != NULL ? (size_t)strtoul(fixed_env, NULL, 10) : 0;
    const char *batch_env = getenv("BENCH_PAIRS_BATCH");
    const uint64_t batch = batch_env != NULL ? strtoull(batch_env, NULL, 10) : 1;
    if (batch == 0) die("BENCH_PAIRS_BATCH must be 1..4096 and divide the pair count");
    if (batch > 1) {
        w_pairs_batch(d, prm, res, fixed, batch);
        return;
    }
    uint64_t sum = 0;
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        size_t sz = fixed != 0 ? fixed : 16 + (size_t)(i & 7) * 16;
        uint8_t *p = d_alloc(d, &c, sz);
        p[0] = (uint8_t)i;
        escape(p);
        sum += p[0];
        d_free(d, &c, p);
    }
    res->time_s = now_s() - t0;
    uint64_t expect = 0;
    for (uint64_t i = 0; i < n; i++)
        expect += (uint8_t)i;
    if (sum != expect) check_failed("pairs", "read-back mismatch");
}

/* ---- window: ring of 4096 live blocks of 8..512 bytes, replace the oldest ------------------ */
#define WINDOW 4096
static ALWAYS_INLINE void w_window(const enum door d, const params *prm, result *res) {
    const door_ctx c = g_ctx;
    const uint64_t n = count_of(prm, 120e6);
    uint8_t **ring = xcalloc(WINDOW, sizeof *ring);
    uint16_t *size = xcalloc(WINDOW, sizeof *size);
    rng r = {42};
    uint64_t bad = 0;
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        unsigned k = (unsigned)(i & (WINDOW - 1));
        if (i >= WINDOW) {
            bad += !stamp_ok(ring[k], size[k], tag_of(i - WINDOW));
            d_free(d, &c, ring[k]);
        }
        size_t sz = rng_range(&r, 8, 512);
        uint8_t *p = d_alloc(d, &c, sz);
        stamp(p, sz, tag_of(i));
        ring[k] = p;
        size[k] = (uint16_t)sz;
    }
    for (uint64_t i = n > WINDOW ? n - WINDOW : 0; i < n; i++) {
        unsigned k = (unsigned)(i & (WINDOW - 1));
        bad += !stamp_ok(ring[k], size[k], tag_of(i));
        d_free(d, &c, ring[k]);
    }
    res->time_s = now_s() - t0;
    free(ring);
    free(size);
    if (bad) check_failed("window", "a block was overwritten while live");
}

/* ---- prodcons: producer allocates, SPSC ring, consumer frees ------------------------------- */
#define SPSC_CAP 1024u /* power of two */
typedef struct spsc {
    _Alignas(CACHE_LINE) _Atomic uint64_t head; /* written by the producer */
    _Alignas(CACHE_LINE) _Atomic uint64_t tail; /* written by the consumer */
    _Alignas(CACHE_LINE) struct {
        uint8_t *p;
        uint64_t seq_size; /* sequence << 16 | size */
    } slot[SPSC_CAP];
} spsc;

typedef struct prodcons_shared {
    spsc *rings; /* one per producer/consumer pair */
    uint64_t n;  /* blocks per pair */
} prodcons_shared;

static ALWAYS_INLINE void *t_prodcons(const enum door d, thread_arg *a) {
    const door_ctx c = g_ctx;
    prodcons_shared *sh = a->shared;
    spsc *q = &sh->rings[a->index / 2];
    const uint64_t n = sh->n;
    unsigned spins = 0;
    if (a->index % 2 == 0) { /* producer */
        rng r = {1234 + (uint64_t)a->index};
        uint64_t head = 0, tail_cache = 0;
        for (uint64_t i = 0; i < n; i++) {
            size_t sz = rng_range(&r, 16, 256);
            uint8_t *p = d_alloc(d, &c, sz);
            stamp(p, sz, tag_of(i));
            while (head - tail_cache >= SPSC_CAP) {
                tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
                if (head - tail_cache >= SPSC_CAP) backoff(&spins);
            }
            q->slot[head & (SPSC_CAP - 1)].p = p;
            q->slot[head & (SPSC_CAP - 1)].seq_size = i << 16 | sz;
            atomic_store_explicit(&q->head, ++head, memory_order_release);
        }
    } else { /* consumer */
        uint64_t tail = 0, head_cache = 0, bad = 0;
        while (tail < n) {
            while (tail == head_cache) {
                head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
                if (tail == head_cache) backoff(&spins);
            }
            while (tail < head_cache) {
                uint8_t *p = q->slot[tail & (SPSC_CAP - 1)].p;
                uint64_t ss = q->slot[tail & (SPSC_CAP - 1)].seq_size;
                bad += (ss >> 16) != tail || !stamp_ok(p, ss & 0xFFFF, tag_of(tail));
                d_free(d, &c, p);
                tail++;
                if ((tail & 63) == 0) atomic_store_explicit(&q->tail, tail, memory_order_release);
            }
            atomic_store_explicit(&q->tail, tail, memory_order_release);
        }
        a->result = bad;
    }
    return NULL;
}

static ALWAYS_INLINE void w_prodcons(const enum door d, const params *prm, result *res,
                                     void *(*fn)(thread_arg *)) {
    int pairs = prm->threads >= 2 ? prm->threads / 2 : 1;
    prodcons_shared sh = {NULL, count_of(prm, 20e6) / (uint64_t)pairs};
    sh.rings = aligned_alloc(CACHE_LINE, sizeof(spsc) * (size_t)pairs);
    if (sh.rings == NULL) die("out of memory (harness)");
    memset(sh.rings, 0, sizeof(spsc) * (size_t)pairs);
    (void)d;
    double t0 = now_s();
    uint64_t bad = run_threads(pairs * 2, fn, &sh);
    res->time_s = now_s() - t0;
    free(sh.rings);
    if (bad) check_failed("prodcons", "a block arrived corrupted");
}

/* ---- mixed: per-thread arrays of mixed-size blocks, random replacement --------------------- */
#define MIXED_SLOTS 2000
typedef struct mixed_shared {
    uint64_t n; /* replacements per thread */
} mixed_shared;

static ALWAYS_INLINE size_t mixed_size(rng *r) {
    uint64_t x = rng_next(r);
    uint32_t pick = (uint32_t)(x >> 32) % 5000u;
    if (pick == 0) return rng_range(r, 64 * 1024 + 1, 4u << 20); /* 1/5000: up to 4 MiB */
    if (pick < 50) return rng_range(r, 1025, 64 * 1024);         /* 1/100: up to 64 KiB */
    return rng_range(r, 16, 1024);
}

static ALWAYS_INLINE void *t_mixed(const enum door d, thread_arg *a) {
    const door_ctx c = g_ctx;
    mixed_shared *sh = a->shared;
    uint8_t **blk = xcalloc(MIXED_SLOTS, sizeof *blk);
    uint32_t *size = xcalloc(MIXED_SLOTS, sizeof *size);
    uint64_t *seq = xcalloc(MIXED_SLOTS, sizeof *seq);
    rng r = {777 + 1000003ull * (uint64_t)a->index};
    uint64_t bad = 0;
    for (uint64_t i = 0; i < sh->n; i++) {
        unsigned k = (unsigned)rng_range(&r, 0, MIXED_SLOTS - 1);
        if (blk[k] != NULL) {
            uint8_t *p = blk[k];
            uint8_t t = tag_of(seq[k]);
            bad += p[0] != t || p[1] != (uint8_t)(t + 1) || p[size[k] - 1] != t;
            d_free(d, &c, p);
        }
        size_t sz = mixed_size(&r);
        uint8_t *p = d_alloc(d, &c, sz);
        uint8_t t = tag_of(i);
        /* touch the first bytes (two cache lines at most) and the last one */
        memset(p, (uint8_t)(t + 1), sz < 128 ? sz : 128);
        p[0] = t;
        p[sz - 1] = t;
        blk[k] = p;
        size[k] = (uint32_t)sz;
        seq[k] = i;
    }
    for (unsigned k = 0; k < MIXED_SLOTS; k++)
        if (blk[k] != NULL) {
            bad += !stamp_ok(blk[k], size[k], tag_of(seq[k]));
            d_free(d, &c, blk[k]);
        }
    free(blk);
    free(size);
    free(seq);
    a->result = bad;
    return NULL;
}

static ALWAYS_INLINE void w_mixed(const enum door d, const params *prm, result *res,
                                  void *(*fn)(thread_arg *)) {
    int nt = prm->threads > 0 ? prm->threads : 2;
    mixed_shared sh = {count_of(prm, 60e6)};
    (void)d;
    double t0 = now_s();
    uint64_t bad = run_threads(nt, fn, &sh);
    res->time_s = now_s() - t0;
    if (bad) check_failed("mixed", "a block was overwritten while live");
}

/* ---- frag: many small blocks, free 90% at random, then medium blocks ----------------------- */
static ALWAYS_INLINE void w_frag(const enum door d, const params *prm, result *res) {
    const door_ctx c = g_ctx;
    const uint64_t n = count_of(prm, 1e6);
    uint8_t **blk = xcalloc(n, sizeof *blk);
    uint16_t *size = xcalloc(n, sizeof *size);
    rng r = {99};
    uint64_t bad = 0, freed_bytes = 0;
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) { /* small blocks of various sizes, fully written */
        size_t sz = rng_next(&r) % 8 == 0 ? rng_range(&r, 257, 1024) : rng_range(&r, 8, 256);
        uint8_t *p = d_alloc(d, &c, sz);
        memset(p, tag_of(i), sz);
        blk[i] = p;
        size[i] = (uint16_t)sz;
    }
    double t1 = now_s();
    long rss_full = current_rss_kb();
    double t2 = now_s();
    for (uint64_t i = 0; i < n; i++) /* free 90%, scattered over the whole heap */
        if (rng_next(&r) % 10 != 0) {
            bad += !stamp_ok(blk[i], size[i], tag_of(i));
            freed_bytes += size[i];
            d_free(d, &c, blk[i]);
            blk[i] = NULL;
        }
    double t3 = now_s();
    long rss_after = current_rss_kb();
    double t4 = now_s();
    /* medium blocks (1..32 KiB, fully written) adding up to half the bytes freed */
    uint64_t med_cap = freed_bytes / 1024 + 16, med_n = 0, med_bytes = 0;
    uint8_t **med = xcalloc(med_cap, sizeof *med);
    uint32_t *med_size = xcalloc(med_cap, sizeof *med_size);
    while (med_bytes < freed_bytes / 2 && med_n < med_cap) {
        size_t sz = rng_range(&r, 1024, 32 * 1024);
        uint8_t *p = d_alloc(d, &c, sz);
        memset(p, tag_of(med_n), sz);
        med[med_n] = p;
        med_size[med_n] = (uint32_t)sz;
        med_bytes += sz;
        med_n++;
    }
    double t5 = now_s();
    long rss_final = current_rss_kb();
    double t6 = now_s();
    for (uint64_t i = 0; i < med_n; i++) {
        bad += !stamp_ok(med[i], med_size[i], tag_of(i));
        d_free(d, &c, med[i]);
    }
    for (uint64_t i = 0; i < n; i++)
        if (blk[i] != NULL) {
            bad += !stamp_ok(blk[i], size[i], tag_of(i));
            d_free(d, &c, blk[i]);
        }
    double t7 = now_s();
    res->time_s = (t1 - t0) + (t3 - t2) + (t5 - t4) + (t7 - t6);
    res->rss_full_kb = rss_full;
    res->rss_after_kb = rss_after;
    res->rss_final_kb = rss_final;
    free(blk);
    free(size);
    free(med);
    free(med_size);
    if (bad) check_failed("frag", "a block was overwritten while live");
}

/* ---- larsonish: each round a thread replaces the blocks another thread allocated ----------- */
#define LARSON_SLOTS 4096
typedef struct larson_shared {
    uint8_t **blk;   /* nthreads * LARSON_SLOTS blocks */
    uint16_t *size;  /* their sizes */
    uint32_t *seq;   /* their sequence numbers */
    uint64_t rounds; /* rounds per thread */
    pthread_barrier_t barrier;
} larson_shared;

static ALWAYS_INLINE void *t_larson(const enum door d, thread_arg *a) {
    const door_ctx c = g_ctx;
    larson_shared *sh = a->shared;
    rng r = {31337 + 7919ull * (uint64_t)a->index};
    uint64_t bad = 0;
    const int nt = a->nthreads;
    for (uint64_t round = 0; round < sh->rounds; round++) {
        /* in round r thread t owns array (t + r) % nt: it was filled by thread t - 1 */
        size_t base = (size_t)((a->index + round) % (uint64_t)nt) * LARSON_SLOTS;
        for (size_t k = base; k < base + LARSON_SLOTS; k++) {
            if (sh->blk[k] != NULL) {
                bad += !stamp_ok(sh->blk[k], sh->size[k], tag_of(sh->seq[k]));
                d_free(d, &c, sh->blk[k]);
            }
            size_t sz = rng_range(&r, 16, 512);
            uint8_t *p = d_alloc(d, &c, sz);
            uint32_t s = (uint32_t)(round * LARSON_SLOTS + k);
            stamp(p, sz, tag_of(s));
            sh->blk[k] = p;
            sh->size[k] = (uint16_t)sz;
            sh->seq[k] = s;
        }
        pthread_barrier_wait(&sh->barrier);
    }
    /* the last round's blocks: each thread frees its own array */
    size_t base = (size_t)a->index * LARSON_SLOTS;
    for (size_t k = base; k < base + LARSON_SLOTS; k++) {
        bad += !stamp_ok(sh->blk[k], sh->size[k], tag_of(sh->seq[k]));
        d_free(d, &c, sh->blk[k]);
    }
    a->result = bad;
    return NULL;
}

static ALWAYS_INLINE void w_larson(const enum door d, const params *prm, result *res,
                                   void *(*fn)(thread_arg *)) {
    int nt = prm->threads > 0 ? prm->threads : 2;
    larson_shared sh;
    sh.blk = xcalloc((size_t)nt * LARSON_SLOTS, sizeof *sh.blk);
    sh.size = xcalloc((size_t)nt * LARSON_SLOTS, sizeof *sh.size);
    sh.seq = xcalloc((size_t)nt * LARSON_SLOTS, sizeof *sh.seq);
    sh.rounds = count_of(prm, 40e6) / LARSON_SLOTS + 1;
    if (pthread_barrier_init(&sh.barrier, NULL, (unsigned)nt) != 0) die("barrier init failed");
    (void)d;
    double t0 = now_s();
    uint64_t bad = run_threads(nt, fn, &sh);
    res->time_s = now_s() - t0;
    pthread_barrier_destroy(&sh.barrier);
    free(sh.blk);
    free(sh.size);
    free(sh.seq);
    if (bad) check_failed("larsonish", "a block was overwritten while live");
}

/* ---- Shapes of the public allocator benchmarks -----------------------------------------------
 * The five workloads below stand for shapes of the mimalloc-bench programs in which the
 * allocator's policy, not its fast path, decides the cost: thread churn, frees of blocks whose
 * thread has exited, memory given back and faulted in again, multi-MiB blocks, memory kept
 * after the program went quiet. docs/BENCHMARKS.md says what each one stands for. */

/* ---- mstress: threads re-created every round, each allocating and freeing a large set -------- */
#define MSTRESS_SET 20000
typedef struct mstress_shared {
    uint8_t **keep;  /* nthreads * MSTRESS_SET/4 blocks that outlive their thread */
    uint32_t *ksize; /* their sizes */
    uint64_t n;      /* replacements per thread and round */
    uint64_t round;
} mstress_shared;

static ALWAYS_INLINE size_t mstress_size(rng *r) {
    uint32_t pick = (uint32_t)(rng_next(r) >> 32) % 100u;
    if (pick == 0) return rng_range(r, 1025, 32 * 1024); /* 1 %: up to 32 KiB */
    return rng_range(r, 8, 1024);
}

static ALWAYS_INLINE void *t_mstress(const enum door d, thread_arg *a) {
    const door_ctx c = g_ctx;
    mstress_shared *sh = a->shared;
    const int nt = a->nthreads;
    const size_t nk = MSTRESS_SET / 4;
    rng r = {4242 + 7777ull * (uint64_t)a->index + 1000003ull * sh->round};
    uint64_t bad = 0;
    /* free what another thread of the previous round (exited by now) left behind */
    size_t from = (size_t)((a->index + 1) % nt) * nk;
    uint8_t ftag = (uint8_t)((a->index + 1) % nt + 1);
    for (size_t k = from; k < from + nk; k++) {
        if (sh->keep[k] == NULL) continue;
        bad += !stamp_ok(sh->keep[k], sh->ksize[k], ftag);
        d_free(d, &c, sh->keep[k]);
        sh->keep[k] = NULL;
    }
    uint8_t tag = (uint8_t)(a->index + 1);
    uint8_t **blk = xcalloc(MSTRESS_SET, sizeof *blk);
    uint32_t *size = xcalloc(MSTRESS_SET, sizeof *size);
    for (size_t k = 0; k < MSTRESS_SET; k++) {
        size_t sz = mstress_size(&r);
        blk[k] = d_alloc(d, &c, sz);
        memset(blk[k], tag, sz < 256 ? sz : 256);
        stamp(blk[k], sz, tag);
        size[k] = (uint32_t)sz;
    }
    for (uint64_t i = 0; i < sh->n; i++) {
        size_t k = rng_range(&r, 0, MSTRESS_SET - 1);
        bad += !stamp_ok(blk[k], size[k], tag);
        d_free(d, &c, blk[k]);
        size_t sz = mstress_size(&r);
        blk[k] = d_alloc(d, &c, sz);
        stamp(blk[k], sz, tag);
        size[k] = (uint32_t)sz;
    }
    /* a quarter outlives the thread (the next round frees it); the rest is freed here */
    size_t mine = (size_t)a->index * nk;
    for (size_t k = 0; k < MSTRESS_SET; k++) {
        if (k % 4 == 0) {
            sh->keep[mine + k / 4] = blk[k];
            sh->ksize[mine + k / 4] = size[k];
        } else {
            bad += !stamp_ok(blk[k], size[k], tag);
            d_free(d, &c, blk[k]);
        }
    }
    free(blk);
    free(size);
    a->result = bad;
    return NULL;
}

static ALWAYS_INLINE void w_mstress(const enum door d, const params *prm, result *res,
                                    void *(*fn)(thread_arg *)) {
    const door_ctx c = g_ctx;
    int nt = prm->threads > 0 ? prm->threads : 4;
    const size_t nk = MSTRESS_SET / 4;
    mstress_shared sh = {NULL, NULL, 20000, 0};
    uint64_t rounds = count_of(prm, 40);
    if (prm->exact > 0) rounds = (uint64_t)prm->exact;
    sh.keep = xcalloc((size_t)nt * nk, sizeof *sh.keep);
    sh.ksize = xcalloc((size_t)nt * nk, sizeof *sh.ksize);
    uint64_t bad = 0;
    double t0 = now_s();
    for (sh.round = 0; sh.round < rounds; sh.round++) {
        bad += run_threads(nt, fn, &sh);
    }
    for (size_t k = 0; k < (size_t)nt * nk; k++) /* the last round's survivors */
        if (sh.keep[k] != NULL) {
            bad += !stamp_ok(sh.keep[k], sh.ksize[k], (uint8_t)(k / nk + 1));
            d_free(d, &c, sh.keep[k]);
        }
    res->time_s = now_s() - t0;
    free(sh.keep);
    free(sh.ksize);
    if (bad) check_failed("mstress", "a block was overwritten while live");
}

/* ---- larson: server threads that exit; their successors free the blocks they left ------------ */
#define LARSON2_SLOTS 1000
typedef struct larson2_shared {
    uint8_t **blk;  /* nthreads * LARSON2_SLOTS: each chain's live blocks */
    uint16_t *size; /* their sizes */
    uint8_t *tag;   /* their tags */
    uint64_t n;     /* replacements per thread */
    uint64_t round;
} larson2_shared;

static ALWAYS_INLINE void *t_larson2(const enum door d, thread_arg *a) {
    const door_ctx c = g_ctx;
    larson2_shared *sh = a->shared;
    rng r = {999 + 31ull * (uint64_t)a->index + 65537ull * sh->round};
    uint64_t bad = 0;
    /* the chain's array was filled by the thread before this one, which has exited */
    size_t base = (size_t)a->index * LARSON2_SLOTS;
    for (uint64_t i = 0; i < sh->n; i++) {
        size_t k = base + rng_range(&r, 0, LARSON2_SLOTS - 1);
        if (sh->blk[k] != NULL) {
            bad += !stamp_ok(sh->blk[k], sh->size[k], sh->tag[k]);
            d_free(d, &c, sh->blk[k]);
        }
        size_t sz = rng_range(&r, 8, 1000);
        uint8_t t = tag_of(i + sh->round);
        uint8_t *p = d_alloc(d, &c, sz);
        stamp(p, sz, t);
        sh->blk[k] = p;
        sh->size[k] = (uint16_t)sz;
        sh->tag[k] = t;
    }
    a->result = bad;
    return NULL;
}

static ALWAYS_INLINE void w_larson2(const enum door d, const params *prm, result *res,
                                    void *(*fn)(thread_arg *)) {
    const door_ctx c = g_ctx;
    int nt = prm->threads > 0 ? prm->threads : 4;
    size_t slots = (size_t)nt * LARSON2_SLOTS;
    larson2_shared sh = {NULL, NULL, NULL, 10000, 0};
    uint64_t rounds = count_of(prm, 300);
    if (prm->exact > 0) rounds = (uint64_t)prm->exact;
    sh.blk = xcalloc(slots, sizeof *sh.blk);
    sh.size = xcalloc(slots, sizeof *sh.size);
    sh.tag = xcalloc(slots, sizeof *sh.tag);
    uint64_t bad = 0;
    double t0 = now_s();
    for (sh.round = 0; sh.round < rounds; sh.round++) {
        bad += run_threads(nt, fn, &sh);
    }
    for (size_t k = 0; k < slots; k++)
        if (sh.blk[k] != NULL) {
            bad += !stamp_ok(sh.blk[k], sh.size[k], sh.tag[k]);
            d_free(d, &c, sh.blk[k]);
        }
    res->time_s = now_s() - t0;
    free(sh.blk);
    free(sh.size);
    free(sh.tag);
    if (bad) check_failed("larson", "a block was overwritten while live");
}

/* ---- rptest: phases of mixed sizes; each thread frees the batch its neighbour allocated ------ */
#define RPTEST_BATCH 2000
typedef struct rptest_shared {
    uint8_t **batch; /* nthreads * RPTEST_BATCH */
    uint32_t *size;
    uint64_t phases;
    pthread_barrier_t barrier;
} rptest_shared;

/* Phase p draws from a size range that moves with p: small, then medium, then mixed. */
static ALWAYS_INLINE size_t rptest_size(rng *r, uint64_t phase) {
    switch (phase % 4) {
    case 0:
        return rng_range(r, 16, 256);
    case 1:
        return rng_range(r, 256, 4096);
    case 2:
        return rng_range(r, 4096, 64 * 1024);
    default:
        return (rng_next(r) & 7) == 0 ? rng_range(r, 4096, 128 * 1024) : rng_range(r, 16, 1024);
    }
}

static ALWAYS_INLINE void *t_rptest(const enum door d, thread_arg *a) {
    const door_ctx c = g_ctx;
    rptest_shared *sh = a->shared;
    const int nt = a->nthreads;
    rng r = {555 + 1009ull * (uint64_t)a->index};
    uint64_t bad = 0;
    size_t mine = (size_t)a->index * RPTEST_BATCH;
    size_t next = (size_t)((a->index + 1) % nt) * RPTEST_BATCH;
    for (uint64_t ph = 0; ph < sh->phases; ph++) {
        uint8_t t = tag_of(ph);
        for (size_t k = mine; k < mine + RPTEST_BATCH; k++) {
            size_t sz = rptest_size(&r, ph);
            uint8_t *p = d_alloc(d, &c, sz);
            memset(p, t, sz < 64 ? sz : 64);
            stamp(p, sz, t);
            sh->batch[k] = p;
            sh->size[k] = (uint32_t)sz;
        }
        /* half of this thread's own batch goes at once, the rest with the neighbour's */
        for (size_t k = mine; k < mine + RPTEST_BATCH; k += 2) {
            bad += !stamp_ok(sh->batch[k], sh->size[k], t);
            d_free(d, &c, sh->batch[k]);
            sh->batch[k] = NULL;
        }
        pthread_barrier_wait(&sh->barrier);
        for (size_t k = next; k < next + RPTEST_BATCH; k++) /* cross-thread frees */
            if (sh->batch[k] != NULL) {
                bad += !stamp_ok(sh->batch[k], sh->size[k], t);
                d_free(d, &c, sh->batch[k]);
            }
        pthread_barrier_wait(&sh->barrier);
    }
    a->result = bad;
    return NULL;
}

static ALWAYS_INLINE void w_rptest(const enum door d, const params *prm, result *res,
                                   void *(*fn)(thread_arg *)) {
    int nt = prm->threads > 0 ? prm->threads : 4;
    rptest_shared sh;
    sh.batch = xcalloc((size_t)nt * RPTEST_BATCH, sizeof *sh.batch);
    sh.size = xcalloc((size_t)nt * RPTEST_BATCH, sizeof *sh.size);
    sh.phases = count_of(prm, 1000);
    if (pthread_barrier_init(&sh.barrier, NULL, (unsigned)nt) != 0) die("barrier init failed");
    (void)d;
    double t0 = now_s();
    uint64_t bad = run_threads(nt, fn, &sh);
    res->time_s = now_s() - t0;
    pthread_barrier_destroy(&sh.barrier);
    free(sh.batch);
    free(sh.size);
    if (bad) check_failed("rptest", "a block arrived corrupted");
}

/* ---- large: 5..25 MiB blocks replaced in a loop, every page of each written once ------------- */
#define LARGE_SLOTS 20
static ALWAYS_INLINE void w_large(const enum door d, const params *prm, result *res) {
    const door_ctx c = g_ctx;
    const uint64_t n = count_of(prm, 1000);
    uint8_t *blk[LARGE_SLOTS] = {0};
    size_t size[LARGE_SLOTS] = {0};
    uint8_t tag[LARGE_SLOTS] = {0};
    rng r = {2025};
    uint64_t bad = 0;
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        unsigned k = (unsigned)rng_range(&r, 0, LARGE_SLOTS - 1);
        if (blk[k] != NULL) {
            bad += !stamp_ok(blk[k], size[k], tag[k]);
            d_free(d, &c, blk[k]);
        }
        size_t sz = rng_range(&r, 5u << 20, 25u << 20);
        uint8_t *p = d_alloc(d, &c, sz);
        for (size_t off = 0; off < sz; off += 4096) /* the program uses the buffer */
            p[off] = (uint8_t)off;
        tag[k] = tag_of(i);
        stamp(p, sz, tag[k]);
        blk[k] = p;
        size[k] = sz;
    }
    for (unsigned k = 0; k < LARGE_SLOTS; k++)
        if (blk[k] != NULL) {
            bad += !stamp_ok(blk[k], size[k], tag[k]);
            d_free(d, &c, blk[k]);
        }
    res->time_s = now_s() - t0;
    if (bad) check_failed("large", "a block was overwritten while live");
}

/* ---- idle: 100 MiB of 256-byte blocks freed, then a second of light activity ----------------- */
#define IDLE_RING 64
static ALWAYS_INLINE void w_idle(const enum door d, const params *prm, result *res) {
    const door_ctx c = g_ctx;
    const uint64_t n = count_of(prm, 400000);
    uint8_t **blk = xcalloc(n, sizeof *blk);
    uint8_t *ring[IDLE_RING] = {0};
    size_t rsize[IDLE_RING] = {0};
    rng r = {77};
    uint64_t bad = 0;
    res->rss_start_kb = current_rss_kb();
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        blk[i] = d_alloc(d, &c, 256);
        memset(blk[i], tag_of(i), 256);
    }
    double t1 = now_s();
    res->rss_full_kb = current_rss_kb();
    double t2 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        bad += !stamp_ok(blk[i], 256, tag_of(i));
        d_free(d, &c, blk[i]);
    }
    double t3 = now_s();
    res->rss_after_kb = current_rss_kb();
    /* light activity for a second: every millisecond a few blocks of an event loop's sizes
     * are replaced in a small ring (about 8000 allocations in all). BENCH_IDLE_MAX=n: sizes up
     * to n bytes (default 4096; 32: blocks of 16 and 32 bytes, which the fast paths serve) */
    const char *max_env = getenv("BENCH_IDLE_MAX");
    size_t idle_max = max_env != NULL && atol(max_env) >= 16 ? (size_t)atol(max_env) : 4096;
    double end = now_s() + 1.0;
    uint64_t i = 0;
    while (now_s() < end) {
        for (int j = 0; j < 8; j++, i++) {
            unsigned k = (unsigned)(i % IDLE_RING);
            if (ring[k] != NULL) {
                bad += !stamp_ok(ring[k], rsize[k], tag_of(i - IDLE_RING));
                d_free(d, &c, ring[k]);
            }
            size_t sz = rng_range(&r, 16, idle_max);
            ring[k] = d_alloc(d, &c, sz);
            stamp(ring[k], sz, tag_of(i));
            rsize[k] = sz;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    res->rss_final_kb = current_rss_kb();
    for (unsigned k = 0; k < IDLE_RING; k++)
        if (ring[k] != NULL) d_free(d, &c, ring[k]);
    res->time_s = (t1 - t0) + (t3 - t2);
    free(blk);
    if (bad) check_failed("idle", "a block was overwritten while live");
}

/* ---- medium: a ring of 16 live blocks of 16..64 KiB, each replaced in turn ------------------ */
#define MEDIUM_RING 16
static ALWAYS_INLINE void w_medium(const enum door d, const params *prm, result *res) {
    const door_ctx c = g_ctx;
    const uint64_t n = count_of(prm, 20e6);
    uint8_t *ring[MEDIUM_RING] = {0};
    uint32_t size[MEDIUM_RING] = {0};
    rng r = {4242};
    uint64_t bad = 0;
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        unsigned k = (unsigned)(i % MEDIUM_RING);
        if (ring[k] != NULL) {
            bad += !stamp_ok(ring[k], size[k], tag_of(i - MEDIUM_RING));
            d_free(d, &c, ring[k]);
        }
        size_t sz = rng_range(&r, 16 * 1024, 64 * 1024);
        uint8_t *p = d_alloc(d, &c, sz);
        stamp(p, sz, tag_of(i));
        ring[k] = p;
        size[k] = (uint32_t)sz;
    }
    for (unsigned k = 0; k < MEDIUM_RING; k++)
        if (ring[k] != NULL) d_free(d, &c, ring[k]);
    res->time_s = now_s() - t0;
    if (bad) check_failed("medium", "a block was overwritten while live");
}

/* ---- buffers: many live blocks of 64..256 KiB, freed and made again in rounds ---------------
 * A server or a database holding thousands of I/O buffers at once: 20,000 blocks of 64..256
 * KiB live (their first and last bytes written), all freed in a random order, in 5 rounds. */
#define BUFFERS_LIVE 20000
static ALWAYS_INLINE void w_buffers(const enum door d, const params *prm, result *res) {
    const door_ctx c = g_ctx;
    const uint64_t rounds = count_of(prm, 5);
    uint8_t **blk = xcalloc(BUFFERS_LIVE, sizeof *blk);
    uint32_t *size = xcalloc(BUFFERS_LIVE, sizeof *size);
    uint32_t *order = xcalloc(BUFFERS_LIVE, sizeof *order);
    rng r = {909};
    uint64_t bad = 0;
    double t0 = now_s();
    for (uint64_t k = 0; k < rounds; k++) {
        for (uint32_t i = 0; i < BUFFERS_LIVE; i++) {
            size[i] = (uint32_t)rng_range(&r, 64 * 1024, 256 * 1024);
            blk[i] = d_alloc(d, &c, size[i]);
            stamp(blk[i], size[i], tag_of(k + i));
            order[i] = i;
        }
        for (uint32_t i = BUFFERS_LIVE - 1; i > 0; i--) { /* a random order of the frees */
            uint32_t j = (uint32_t)rng_range(&r, 0, i);
            uint32_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (uint32_t i = 0; i < BUFFERS_LIVE; i++) {
            uint32_t b = order[i];
            bad += !stamp_ok(blk[b], size[b], tag_of(k + b));
            d_free(d, &c, blk[b]);
        }
    }
    res->time_s = now_s() - t0;
    free(blk);
    free(size);
    free(order);
    if (bad) check_failed("buffers", "a block was overwritten while live");
}

/* ---- One instance of every workload per door ---------------------------------------------- */
enum workload {
    W_PAIRS,
    W_WINDOW,
    W_PRODCONS,
    W_MIXED,
    W_FRAG,
    W_LARSON,
    W_MSTRESS,
    W_LARSON2,
    W_RPTEST,
    W_LARGE,
    W_IDLE,
    W_MEDIUM,
    W_BUFFERS,
    W_COUNT
};
static const char *const workload_names[] = {"pairs",     "window",  "prodcons", "mixed",  "frag",
                                             "larsonish", "mstress", "larson",   "rptest", "large",
                                             "idle",      "medium",  "buffers"};
static const int workload_default_threads[] = {1, 1, 2, 2, 1, 2, 4, 4, 4, 1, 1, 1, 1};

typedef void (*workload_fn)(const params *, result *);

#define INSTANTIATE(D, name)                                                                       \
    static void *t_prodcons_##name(thread_arg *a) {                                                \
        return t_prodcons(D, a);                                                                   \
    }                                                                                              \
    static void *t_mixed_##name(thread_arg *a) {                                                   \
        return t_mixed(D, a);                                                                      \
    }                                                                                              \
    static void *t_larson_##name(thread_arg *a) {                                                  \
        return t_larson(D, a);                                                                     \
    }                                                                                              \
    static void *t_mstress_##name(thread_arg *a) {                                                 \
        return t_mstress(D, a);                                                                    \
    }                                                                                              \
    static void *t_larson2_##name(thread_arg *a) {                                                 \
        return t_larson2(D, a);                                                                    \
    }                                                                                              \
    static void *t_rptest_##name(thread_arg *a) {                                                  \
        return t_rptest(D, a);                                                                     \
    }                                                                                              \
    static void mstress_##name(const params *p, result *r) {                                       \
        w_mstress(D, p, r, t_mstress_##name);                                                      \
    }                                                                                              \
    static void larson2_##name(const params *p, result *r) {                                       \
        w_larson2(D, p, r, t_larson2_##name);                                                      \
    }                                                                                              \
    static void rptest_##name(const params *p, result *r) {                                        \
        w_rptest(D, p, r, t_rptest_##name);                                                        \
    }                                                                                              \
    static void large_##name(const params *p, result *r) {                                         \
        w_large(D, p, r);                                                                          \
    }                                                                                              \
    static void idle_##name(const params *p, result *r) {                                          \
        w_idle(D, p, r);                                                                           \
    }                                                                                              \
    static void medium_##name(const params *p, result *r) {                                        \
        w_medium(D, p, r);                                                                         \
    }                                                                                              \
    static void buffers_##name(const params *p, result *r) {                                       \
        w_buffers(D, p, r);                                                                        \
    }                                                                                              \
    static void pairs_##name(const params *p, result *r) {                                         \
        w_pairs(D, p, r);                                                                          \
    }                                                                                              \
    static void window_##name(const params *p, result *r) {                                        \
        w_window(D, p, r);                                                                         \
    }                                                                                              \
    static void prodcons_##name(const params *p, result *r) {                                      \
        w_prodcons(D, p, r, t_prodcons_##name);                                                    \
    }                                                                                              \
    static void mixed_##name(const params *p, result *r) {                                         \
        w_mixed(D, p, r, t_mixed_##name);                                                          \
    }                                                                                              \
    static void frag_##name(const params *p, result *r) {                                          \
        w_frag(D, p, r);                                                                           \
    }                                                                                              \
    static void larson_##name(const params *p, result *r) {                                        \
        w_larson(D, p, r, t_larson_##name);                                                        \
    }                                                                                              \
    static const workload_fn workloads_##name[W_COUNT] = {                                         \
        pairs_##name,  window_##name,  prodcons_##name, mixed_##name,  frag_##name,                \
        larson_##name, mstress_##name, larson2_##name,  rptest_##name, large_##name,               \
        idle_##name,   medium_##name,  buffers_##name};

#ifndef BENCH_NO_HOSTMALLOC
INSTANTIATE(DOOR_COM, com)
INSTANTIATE(DOOR_NATIVE, native)
#endif
INSTANTIATE(DOOR_MALLOC, malloc)

/* The null door hands out one static buffer: only the single-block pairs workload makes sense. */
static void pairs_null(const params *p, result *r) {
    w_pairs(DOOR_NULL, p, r);
}

/* ---- main --------------------------------------------------------------------------------- */
static void usage(void) {
    fprintf(stderr,
            "usage: bench <door> <workload> [threads] [scale | n=<count>]\n"
            "  door:     com native malloc null%s\n"
            "  workload: pairs window prodcons mixed frag larsonish mstress larson rptest large "
            "idle medium buffers\n",
#ifdef BENCH_NO_HOSTMALLOC
            " (com and native compiled out: BENCH_NO_HOSTMALLOC)"
#else
            ""
#endif
    );
    exit(1);
}

/* Which shared object provides the malloc this process calls (to confirm an LD_PRELOAD). */
static const char *malloc_provider(void) {
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL) return "unknown";
    const char *slash = strrchr(info.dli_fname, '/');
    return slash != NULL ? slash + 1 : info.dli_fname;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 5) usage();
    int door = -1, wl = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(argv[1], door_names[i]) == 0) door = i;
    for (int i = 0; i < W_COUNT; i++)
        if (strcmp(argv[2], workload_names[i]) == 0) wl = i;
    if (door < 0 || wl < 0) usage();
#ifdef BENCH_NO_HOSTMALLOC
    if (door == DOOR_COM || door == DOOR_NATIVE) usage();
#endif
    if (door == DOOR_NULL && wl != W_PAIRS) die("the null door runs the pairs workload only");

    params prm = {1.0, 0, 0};
    if (argc >= 4) {
        char *end;
        errno = 0;
        long t = strtol(argv[3], &end, 10);
        if (errno || *end || t < 0 || t > 1024) usage();
        prm.threads = (int)t;
    }
    if (argc >= 5) {
        char *end;
        errno = 0;
        if (strncmp(argv[4], "n=", 2) == 0) {
            prm.exact = strtoll(argv[4] + 2, &end, 10);
            if (errno || *end || prm.exact <= 0) usage();
        } else {
            prm.scale = strtod(argv[4], &end);
            if (errno || *end || !(prm.scale > 0)) usage();
        }
    }
    int threads = prm.threads > 0 ? prm.threads : workload_default_threads[wl];
    if (wl == W_PRODCONS) threads = threads >= 2 ? threads / 2 * 2 : 2;
    if (wl == W_PAIRS || wl == W_WINDOW || wl == W_FRAG || wl == W_LARGE || wl == W_IDLE ||
        wl == W_MEDIUM || wl == W_BUFFERS)
        threads = 1;

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    door_open((enum door)door);
    result res = {0, -1, -1, -1, -1};
    switch (door) {
#ifndef BENCH_NO_HOSTMALLOC
    case DOOR_COM:
        workloads_com[wl](&prm, &res);
        break;
    case DOOR_NATIVE:
        workloads_native[wl](&prm, &res);
        break;
#endif
    case DOOR_MALLOC:
        workloads_malloc[wl](&prm, &res);
        break;
    default:
        pairs_null(&prm, &res);
        break;
    }
    long peak = peak_rss_kb();
    getrusage(RUSAGE_SELF, &ru1);
    door_close((enum door)door);

    printf("RESULT door=%s workload=%s threads=%d time_s=%.6f peak_rss_kb=%ld", door_names[door],
           workload_names[wl], threads, res.time_s, peak);
    if (res.rss_after_kb >= 0) printf(" rss_after_kb=%ld", res.rss_after_kb);
    if (res.rss_full_kb >= 0) printf(" rss_full_kb=%ld", res.rss_full_kb);
    if (res.rss_final_kb >= 0) printf(" rss_final_kb=%ld", res.rss_final_kb);
    if (res.rss_start_kb >= 0) printf(" rss_start_kb=%ld", res.rss_start_kb);
    printf(" user_s=%.3f sys_s=%.3f minflt=%ld", tv_s(&ru1.ru_utime) - tv_s(&ru0.ru_utime),
           tv_s(&ru1.ru_stime) - tv_s(&ru0.ru_stime), ru1.ru_minflt - ru0.ru_minflt);
    if (door == DOOR_MALLOC) printf(" malloc_lib=%s", malloc_provider());
    printf("\n");
    return 0;
}
