/* SPDX-License-Identifier: MIT */
/* tests/stress/test_stress.c: a self-verifying multi-threaded stress test of a thread-safe
 * IHostMalloc.
 *
 * Usage: test_stress [threads [scale [rounds [seed]]]]   (defaults: 4 4000 50 1)
 *
 * Each round starts `threads` new threads on one MALLOC_THREADSAFE instance. Every thread does
 * 3 * `scale` operations, keeping at most `scale` blocks of its own: allocate (Alloc or, now and
 * then, DebugAlloc, at a random criticality level) a block of a mixed size (mostly 8-1024 bytes,
 * some up to 64 KiB, rarely 1-4 MiB) and fill it with a pattern derived from its address and
 * size; free one of its blocks; hand one to a shared transfer array (an atomic exchange of a
 * slot: whatever was in the slot is then checked and freed by this thread); or take one from
 * the array and free it. Every block is checked before it is freed. At the end of a round the
 * main thread checks and frees every block left (in the threads' lists and in the array).
 *
 * Any call that does not return exactly S_OK, any block not 16-byte aligned, and any pattern
 * mismatch (overlapping blocks, a block reused while live, a corrupted copy...) fails the test. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <hostmalloc/hosting.h>
#include <hostmalloc/hostmalloc.h>

#include "test_util.h"

/* ---- parameters ---------------------------------------------------------------------------------
 */
static struct {
    int threads;
    long scale;
    int rounds;
    uint64_t seed;
} g_cfg = {4, 4000, 50, 1};

#define XFER_SLOTS 1024
#define PARTIAL_ABOVE                                                                              \
    ((size_t)65536) /* bigger blocks: only the first/last 64 bytes are patterned */
#define EDGE 64

/* ---- shared state -------------------------------------------------------------------------------
 */
static IHostMalloc *g_malloc;
static _Atomic(uintptr_t) g_xfer[XFER_SLOTS];
static atomic_long g_failures;
static atomic_flag g_msg_taken = ATOMIC_FLAG_INIT;
static char g_msg[512];

static atomic_long g_allocs, g_frees, g_handoffs, g_taken, g_big;

static void report(const char *fmt, ...) {
    atomic_fetch_add(&g_failures, 1);
    if (atomic_flag_test_and_set(&g_msg_taken)) return; /* keep the first message only */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof(g_msg), fmt, ap);
    va_end(ap);
}

/* ---- pattern ------------------------------------------------------------------------------------
 * Word 0 of a block holds size ^ key(address); byte i >= 8 is byte (i % 8) of key ^ (i / 8) *
 * golden. A block can thus be checked knowing only its address. */

static inline uint64_t word_at(uint64_t key, size_t w) {
    return key ^ ((uint64_t)w * 0x9E3779B97F4A7C15ull);
}

static inline unsigned char byte_at(uint64_t key, size_t i) {
    return (unsigned char)(word_at(key, i >> 3) >> ((i & 7) * 8));
}

static void fill_range(unsigned char *p, uint64_t key, size_t from, size_t to) {
    size_t i = from;
    for (; i < to && (i & 7); i++)
        p[i] = byte_at(key, i);
    for (; i + 8 <= to; i += 8) {
        uint64_t w = word_at(key, i >> 3);
        memcpy(p + i, &w, 8);
    }
    for (; i < to; i++)
        p[i] = byte_at(key, i);
}

/* Offset of the first wrong byte in [from, to), or `to`. */
static size_t check_range(const unsigned char *p, uint64_t key, size_t from, size_t to) {
    size_t i = from;
    for (; i < to && (i & 7); i++)
        if (p[i] != byte_at(key, i)) return i;
    for (; i + 8 <= to; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w != word_at(key, i >> 3)) {
            while (p[i] == byte_at(key, i))
                i++;
            return i;
        }
    }
    for (; i < to; i++)
        if (p[i] != byte_at(key, i)) return i;
    return to;
}

static void fill_block(void *block, size_t size) {
    unsigned char *p = block;
    uint64_t key = tu_key_of(p);
    uint64_t head = (uint64_t)size ^ key;
    memcpy(p, &head, 8);
    if (size <= PARTIAL_ABOVE) {
        fill_range(p, key, 8, size);
    } else {
        fill_range(p, key, 8, EDGE);
        fill_range(p, key, size - EDGE, size);
    }
}

/* Check a block known only by its address; returns its size (0 on a mismatch, reported). */
static size_t check_block(const void *block, const char *when) {
    const unsigned char *p = block;
    uint64_t key = tu_key_of(p), head;
    memcpy(&head, p, 8);
    size_t size = (size_t)(head ^ key);
    if (size < 8 || size > ((size_t)4 << 20)) {
        report("%s: block %p: its header is corrupted (decodes to size %zu)", when, block, size);
        return 0;
    }
    size_t bad;
    if (size <= PARTIAL_ABOVE) {
        bad = check_range(p, key, 8, size);
        if (bad == size) return size;
    } else {
        bad = check_range(p, key, 8, EDGE);
        if (bad == EDGE) {
            bad = check_range(p, key, size - EDGE, size);
            if (bad == size) return size;
        }
    }
    report("%s: block %p of %zu bytes: byte %zu is 0x%02x, expected 0x%02x", when, block, size, bad,
           p[bad], byte_at(key, bad));
    return 0;
}

static void free_block(void *p, const char *when) {
    check_block(p, when);
    HRESULT hr = IHostMalloc_Free(g_malloc, p);
    if (hr != S_OK) report("%s: Free(%p) returned 0x%08x", when, p, (unsigned)hr);
    atomic_fetch_add_explicit(&g_frees, 1, memory_order_relaxed);
}

/* ---- threads
 * ------------------------------------------------------------------------------------- */
typedef struct thread_ctx {
    int id;
    uint64_t rng;
    void **blocks; /* this thread's own live blocks */
    long n;
} thread_ctx;

static inline uint64_t rnd(thread_ctx *c) {
    /* splitmix64 */
    uint64_t z = (c->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t pick_size(thread_ctx *c) {
    uint64_t r = rnd(c);
    unsigned bucket = (unsigned)(r % 1000);
    r >>= 10;
    if (bucket < 900) return 8 + (size_t)(r % 1017);                  /* 8 .. 1024 */
    if (bucket < 998) return 1025 + (size_t)(r % (65536 - 1025 + 1)); /* .. 64 KiB */
    return ((size_t)1 << 20) + (size_t)(r % ((size_t)3 << 20) + 1);   /* 1 .. 4 MiB */
}

static void do_alloc(thread_ctx *c) {
    static char file[] = "test_stress.c";
    size_t size = pick_size(c);
    uint64_t r = rnd(c);
    EMemoryCriticalLevel lvl = (EMemoryCriticalLevel)(r % 3);
    void *p = NULL;
    HRESULT hr = (r >> 8) % 20 == 0 ? IHostMalloc_DebugAlloc(g_malloc, size, lvl, file,
                                                             (int)(r >> 16) & 0xFFFF, &p)
                                    : IHostMalloc_Alloc(g_malloc, size, lvl, &p);
    if (hr != S_OK || p == NULL) {
        report("thread %d: Alloc(%zu, level %d) returned 0x%08x, %p", c->id, size, (int)lvl,
               (unsigned)hr, p);
        return;
    }
    if (!tu_is_aligned(p, 16))
        report("thread %d: Alloc(%zu) gave %p, not 16-byte aligned", c->id, size, p);
    fill_block(p, size);
    c->blocks[c->n++] = p;
    atomic_fetch_add_explicit(&g_allocs, 1, memory_order_relaxed);
    if (size > PARTIAL_ABOVE) atomic_fetch_add_explicit(&g_big, 1, memory_order_relaxed);
}

static void *take_own(thread_ctx *c) {
    long k = (long)(rnd(c) % (uint64_t)c->n);
    void *p = c->blocks[k];
    c->blocks[k] = c->blocks[--c->n];
    return p;
}

static void *thread_main(void *arg) {
    thread_ctx *c = arg;
    long ops = 3 * g_cfg.scale;
    for (long op = 0; op < ops && atomic_load_explicit(&g_failures, memory_order_relaxed) == 0;
         op++) {
        unsigned a = (unsigned)(rnd(c) % 100);
        if (c->n == 0 || (a < 50 && c->n < g_cfg.scale)) {
            do_alloc(c);
        } else if (a < 75) {
            free_block(take_own(c), "free by owner");
        } else if (a < 90) {
            void *p = take_own(c);
            check_block(p, "before hand-off");
            uintptr_t old = atomic_exchange(&g_xfer[rnd(c) % XFER_SLOTS], (uintptr_t)p);
            atomic_fetch_add_explicit(&g_handoffs, 1, memory_order_relaxed);
            if (old) free_block((void *)old, "free of a block displaced from the transfer array");
        } else {
            uintptr_t old = atomic_exchange(&g_xfer[rnd(c) % XFER_SLOTS], (uintptr_t)0);
            if (old) {
                atomic_fetch_add_explicit(&g_taken, 1, memory_order_relaxed);
                free_block((void *)old, "free of a block taken from the transfer array");
            }
        }
        /* Now and then re-check a live block of our own. */
        if ((op & 63) == 0 && c->n)
            check_block(c->blocks[rnd(c) % (uint64_t)c->n], "periodic check");
    }
    return NULL;
}

/* ---- the test
 * --------------------------------------------------------------------------------------- */
static void test_stress(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    IHostMemoryManager *mgr = NULL;
    assert_int_equal(hm_create_host_memory_manager(NULL, &mgr), S_OK);
    g_malloc = NULL;
    assert_int_equal(IHostMemoryManager_CreateMalloc(mgr, MALLOC_THREADSAFE, &g_malloc), S_OK);
    assert_non_null(g_malloc);

    int nt = g_cfg.threads;
    pthread_t *th = calloc((size_t)nt, sizeof(*th));
    thread_ctx *ctx = calloc((size_t)nt, sizeof(*ctx));
    assert_non_null(th);
    assert_non_null(ctx);
    for (int t = 0; t < nt; t++) {
        ctx[t].blocks = calloc((size_t)g_cfg.scale + 1, sizeof(void *));
        assert_non_null(ctx[t].blocks);
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int round = 0; round < g_cfg.rounds && atomic_load(&g_failures) == 0; round++) {
        for (int t = 0; t < nt; t++) {
            ctx[t].id = t;
            ctx[t].n = 0;
            ctx[t].rng = g_cfg.seed * 0x100000001B3ull + (uint64_t)round * 7919u + (uint64_t)t;
            if (pthread_create(&th[t], NULL, thread_main, &ctx[t]) != 0)
                fail_msg("pthread_create failed in round %d", round);
        }
        for (int t = 0; t < nt; t++)
            pthread_join(th[t], NULL);
        /* Everything left is checked and freed here (frees by a thread that did not allocate). */
        for (int t = 0; t < nt; t++) {
            for (long i = 0; i < ctx[t].n; i++)
                free_block(ctx[t].blocks[i], "end-of-round free");
            ctx[t].n = 0;
        }
        for (int s = 0; s < XFER_SLOTS; s++) {
            uintptr_t p = atomic_exchange(&g_xfer[s], (uintptr_t)0);
            if (p) free_block((void *)p, "end-of-round free from the transfer array");
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("stress: %d threads, scale %ld, %d rounds, seed %" PRIu64 ": %ld allocs (%ld big), "
           "%ld frees, %ld hand-offs, %ld taken, %.2f s\n",
           nt, g_cfg.scale, g_cfg.rounds, g_cfg.seed, atomic_load(&g_allocs), atomic_load(&g_big),
           atomic_load(&g_frees), atomic_load(&g_handoffs), atomic_load(&g_taken), secs);

    long failures = atomic_load(&g_failures);
    if (failures == 0) {
        /* The instance is still usable, then goes away with nothing live. */
        void *p = NULL;
        if (IHostMalloc_Alloc(g_malloc, 100, eTaskCritical, &p) != S_OK || !p ||
            IHostMalloc_Free(g_malloc, p) != S_OK)
            report("the instance does not work after the stress");
        failures = atomic_load(&g_failures);
    }
    for (int t = 0; t < nt; t++)
        free(ctx[t].blocks);
    free(ctx);
    free(th);
    if (failures == 0) {
        IHostMalloc_Release(g_malloc);
        IHostMemoryManager_Release(mgr);
        assert_int_equal(atomic_load(&g_allocs), atomic_load(&g_frees));
    } else {
        fail_msg("%ld failure(s); first: %s", failures, g_msg);
    }
}

static int parse_long(const char *s, long min, long max, long *out) {
    char *end;
    long v = strtol(s, &end, 0);
    if (*s == '\0' || *end != '\0' || v < min || v > max) return 0;
    *out = v;
    return 1;
}

int main(int argc, char **argv) {
    long v;
    static const char usage[] = "usage: %s [threads(1-256) [scale(>=1) [rounds(>=1) [seed]]]]\n";
    if (argc > 5) {
        fprintf(stderr, usage, argv[0]);
        return 2;
    }
    if (argc > 1) {
        if (!parse_long(argv[1], 1, 256, &v)) return fprintf(stderr, usage, argv[0]), 2;
        g_cfg.threads = (int)v;
    }
    if (argc > 2) {
        if (!parse_long(argv[2], 1, 10000000, &v)) return fprintf(stderr, usage, argv[0]), 2;
        g_cfg.scale = v;
    }
    if (argc > 3) {
        if (!parse_long(argv[3], 1, 1000000, &v)) return fprintf(stderr, usage, argv[0]), 2;
        g_cfg.rounds = (int)v;
    }
    if (argc > 4) {
        if (!parse_long(argv[4], 0, LONG_MAX, &v)) return fprintf(stderr, usage, argv[0]), 2;
        g_cfg.seed = (uint64_t)v;
    }
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_stress)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
