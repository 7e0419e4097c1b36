/* SPDX-License-Identifier: MIT */
/* test_host_sim.c: a host of hostmalloc that also plays the runtime (the demo host before the
 * demo embedded real runtimes; its checks are kept here, as a test: exit status 0 when every
 * check passed).
 *
 * The host part creates an IHostMemoryManager with hm_create_host_memory_manager(). The runtime
 * part then behaves as the CLR does (spec/hosting-api.md §5):
 *
 *   - it asks for exactly one allocator, CreateMalloc(MALLOC_THREADSAFE), and shares it between
 *     all its threads;
 *   - each "managed thread" keeps a working set of runtime-sized objects (type handles, strings,
 *     arrays, now and then a 1 MiB buffer), replacing random ones as it runs, and passes the
 *     criticality level the runtime would: process-critical during start-up, then mostly
 *     task-critical with some AppDomain- and process-critical requests;
 *   - half of the frees are deferred to a finalizer thread, which receives the blocks through a
 *     queue: those blocks are freed by a thread other than the one that allocated them;
 *   - a few allocations go through DebugAlloc with the caller's file and line;
 *   - every block is filled with a pattern unique to it, and checked before it is freed.
 *
 * It then makes a MALLOC_EXECUTABLE instance, emits a tiny function into it and calls it, as a
 * JIT does. The statistics of the native door come from the same workload run briefly on a
 * heap made with hm_heap_new(), whose hm_heap_stats_print() report is shown.
 *
 * Last, "budget": a second IHostMemoryManager with a limit small enough to run out of (128 MiB,
 * 16 MiB kept for AppDomain-critical and 16 MiB for process-critical requests) and an
 * ICLRMemoryNotificationCallback written in C. Four managed threads grow their working sets
 * through one MALLOC_THREADSAFE instance until requests are refused: task-critical ones first
 * (the first refused one is retried as AppDomain- and process-critical, which succeed). The
 * Low notification makes the runtime collect garbage (the threads free their young objects)
 * and the notifications go back to High; GetMemoryLoad is shown at start, peak and end. It
 * ends with VirtualAlloc (reserve, commit part, VirtualQuery of a committed and a reserved
 * page, release) and the figures the COM door gives.
 *
 * Usage: test_host_sim [seconds]   (length of the COM workload, default 1.5)
 * Exit status: 0 when every check passed, 1 otherwise. */
#define _GNU_SOURCE

#include <hostmalloc/hostmalloc.h>

#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_util.h"

/* ---- Workload parameters --------------------------------------------------------------------- */
#define N_THREADS      4       /* managed threads (the finalizer thread comes on top) */
#define WORKING_SET    1024    /* live objects kept by each managed thread */
#define STARTUP_ALLOCS 256     /* a thread's first allocations are process-critical (start-up) */
#define DEBUG_EVERY    8192    /* one allocation in this many goes through DebugAlloc */
#define BUFFER_EVERY   4096    /* about one allocation in this many is a 1 MiB buffer */
#define QUEUE_CAP      4096    /* blocks the finalizer queue holds */
#define BATCH          64      /* blocks a managed thread hands to the finalizer at once */
#define COM_SECONDS    1.5     /* default length of the COM workload */
#define NATIVE_SECONDS 0.25    /* length of the native-door workload */
#define JIT_VALUE      0x2A2Au /* the constant the emitted function returns */

#define KiB ((size_t)1024)
#define MiB (KiB * 1024)

/* ---- Bookkeeping ----------------------------------------------------------------------------- */
enum { K_TYPE_HANDLE, K_STRING, K_ARRAY, K_BUFFER, K_COUNT }; /* object kinds */

/* One live object: where it is, how big, and the seed of the pattern it holds. */
typedef struct block {
    void *p;
    size_t size;
    uint64_t seed;
} block;

/* What one thread did; summed over all threads for the report. */
typedef struct counters {
    uint64_t allocs[3]; /* successful allocations per EMemoryCriticalLevel */
    uint64_t bytes[3];  /* bytes asked for by those allocations */
    uint64_t kinds[K_COUNT];
    uint64_t debug_allocs;
    uint64_t local_frees;  /* freed by the thread that allocated the block */
    uint64_t remote_frees; /* freed by the finalizer thread */
    uint64_t verified;     /* blocks whose contents were checked intact */
    uint64_t alloc_failures, free_failures, corrupt, misaligned;
} counters;

static void counters_add(counters *sum, const counters *c) {
    for (int i = 0; i < 3; i++) {
        sum->allocs[i] += c->allocs[i];
        sum->bytes[i] += c->bytes[i];
    }
    for (int k = 0; k < K_COUNT; k++)
        sum->kinds[k] += c->kinds[k];
    sum->debug_allocs += c->debug_allocs;
    sum->local_frees += c->local_frees;
    sum->remote_frees += c->remote_frees;
    sum->verified += c->verified;
    sum->alloc_failures += c->alloc_failures;
    sum->free_failures += c->free_failures;
    sum->corrupt += c->corrupt;
    sum->misaligned += c->misaligned;
}

static uint64_t counters_failures(const counters *c) {
    return c->alloc_failures + c->free_failures + c->corrupt + c->misaligned;
}

static uint64_t total_allocs(const counters *c) {
    return c->allocs[0] + c->allocs[1] + c->allocs[2];
}

static uint64_t total_bytes(const counters *c) {
    return c->bytes[0] + c->bytes[1] + c->bytes[2];
}

/* ---- The two doors the workload can go through ----------------------------------------------- */
typedef struct door {
    IHostMalloc *com; /* the COM door, or NULL for the native one */
    hm_heap *heap;    /* the native door (used when com is NULL) */
} door;

/* Allocate through the door; `file` non-NULL asks for DebugAlloc (COM door only). The runtime
 * tests success as hr == S_OK, so anything else, or S_OK with no block, is a failure. */
static void *door_alloc(const door *d, size_t size, EMemoryCriticalLevel level, const char *file,
                        int line, counters *c) {
    void *p = NULL;
    if (d->com != NULL) {
        HRESULT hr = file != NULL
                         ? IHostMalloc_DebugAlloc(d->com, size, level, (char *)file, line, &p)
                         : IHostMalloc_Alloc(d->com, size, level, &p);
        if (hr != S_OK) p = NULL;
    } else {
        p = hm_alloc_level(d->heap, size, level);
    }
    if (p == NULL) c->alloc_failures++;
    return p;
}

/* Free through the door: Free must answer exactly S_OK, hm_heap_free HM_OK. */
static bool door_free(const door *d, void *p) {
    if (d->com != NULL) return IHostMalloc_Free(d->com, p) == S_OK;
    return hm_heap_free(d->heap, p) == HM_OK;
}

/* ---- Block contents: a pattern unique to each allocation ------------------------------------- */
static inline uint64_t pattern_word(uint64_t seed, size_t i) {
    return (seed + i) * UINT64_C(0x9E3779B97F4A7C15);
}

/* Blocks are 16-byte aligned, so they can be filled a word at a time. */
static void fill_block(const block *b) {
    uint64_t *w = b->p;
    size_t n = b->size / 8;
    for (size_t i = 0; i < n; i++)
        w[i] = pattern_word(b->seed, i);
    unsigned char *tail = (unsigned char *)b->p + n * 8;
    uint64_t last = pattern_word(b->seed, n);
    for (size_t j = 0; j < b->size % 8; j++)
        tail[j] = (unsigned char)(last >> (8 * j));
}

static bool check_block(const block *b) {
    const uint64_t *w = b->p;
    size_t n = b->size / 8;
    bool ok = true;
    for (size_t i = 0; i < n; i++)
        ok &= w[i] == pattern_word(b->seed, i);
    const unsigned char *tail = (const unsigned char *)b->p + n * 8;
    uint64_t last = pattern_word(b->seed, n);
    for (size_t j = 0; j < b->size % 8; j++)
        ok &= tail[j] == (unsigned char)(last >> (8 * j));
    return ok;
}

/* Check a block's contents, then free it. `remote`: the caller is the finalizer thread. */
static void release_block(const door *d, block *b, counters *c, bool remote) {
    if (check_block(b))
        c->verified++;
    else
        c->corrupt++;
    if (!door_free(d, b->p))
        c->free_failures++;
    else if (remote)
        c->remote_frees++;
    else
        c->local_frees++;
    b->p = NULL;
}

/* ---- The finalizer thread and its queue ------------------------------------------------------ */
typedef struct finalizer {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    block items[QUEUE_CAP]; /* ring buffer */
    size_t head, count;
    bool closing; /* no more blocks will come: drain and exit */
    const door *door;
    counters c; /* the finalizer's own counters */
} finalizer;

/* Hand `n` blocks to the finalizer (blocks while the queue is full). */
static void finalizer_push(finalizer *f, const block *items, size_t n) {
    pthread_mutex_lock(&f->lock);
    for (size_t i = 0; i < n; i++) {
        while (f->count == QUEUE_CAP) {
            pthread_cond_signal(&f->not_empty);
            pthread_cond_wait(&f->not_full, &f->lock);
        }
        f->items[(f->head + f->count) % QUEUE_CAP] = items[i];
        f->count++;
    }
    pthread_cond_signal(&f->not_empty);
    pthread_mutex_unlock(&f->lock);
}

/* Take blocks off the queue in batches; check and free them outside the lock. */
static void *finalizer_main(void *arg) {
    finalizer *f = arg;
    block local[256];
    for (;;) {
        pthread_mutex_lock(&f->lock);
        while (f->count == 0 && !f->closing)
            pthread_cond_wait(&f->not_empty, &f->lock);
        if (f->count == 0) { /* closing and drained */
            pthread_mutex_unlock(&f->lock);
            return NULL;
        }
        size_t n = f->count < 256 ? f->count : 256;
        for (size_t i = 0; i < n; i++)
            local[i] = f->items[(f->head + i) % QUEUE_CAP];
        f->head = (f->head + n) % QUEUE_CAP;
        f->count -= n;
        pthread_cond_broadcast(&f->not_full);
        pthread_mutex_unlock(&f->lock);
        for (size_t i = 0; i < n; i++)
            release_block(f->door, &local[i], &f->c, true);
    }
}

/* ---- Managed threads ------------------------------------------------------------------------- */
typedef struct worker {
    pthread_t thread;
    unsigned id;
    const door *door;
    finalizer *fin;
    const atomic_bool *stop;
    bool keep_live;        /* leave the working set allocated at the end (for statistics) */
    uint64_t rng;          /* xorshift64* state */
    uint64_t nalloc;       /* allocations attempted so far */
    unsigned nfree;        /* frees so far: odd ones are deferred to the finalizer */
    size_t nbatch;         /* blocks waiting in `batch` */
    block batch[BATCH];    /* blocks on their way to the finalizer */
    block ws[WORKING_SET]; /* the working set */
    counters c;
} worker;

static uint64_t xorshift(uint64_t *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * UINT64_C(0x2545F4914F6CDD1D);
}

static uint64_t next_rand(worker *w) {
    return xorshift(&w->rng);
}

/* Retire an object: every other one is freed here, the rest by the finalizer thread. */
static void retire(worker *w, block *b) {
    if (w->nfree++ % 2 == 0) {
        release_block(w->door, b, &w->c, false);
        return;
    }
    w->batch[w->nbatch++] = *b;
    b->p = NULL;
    if (w->nbatch == BATCH) {
        finalizer_push(w->fin, w->batch, w->nbatch);
        w->nbatch = 0;
    }
}

/* One request of the runtime-like mix: an object kind, its size and the criticality level the
 * runtime would pass. Drawn from the random word `r`; `nalloc` is the number of allocations
 * the thread made before (its first STARTUP_ALLOCS are start-up, hence process-critical). */
typedef struct request {
    int kind;
    size_t size;
    EMemoryCriticalLevel level;
} request;

static request pick_request(uint64_t r, uint64_t nalloc) {
    request q;
    if (r % BUFFER_EVERY == 0) { /* an I/O or marshalling buffer */
        q.kind = K_BUFFER;
        q.size = MiB;
    } else if ((r >> 12) % 100 < 35) { /* type handle / method table: 24-64 bytes */
        q.kind = K_TYPE_HANDLE;
        q.size = 24 + 8 * ((r >> 20) % 6);
    } else if ((r >> 12) % 100 < 75) { /* string: 32-512 bytes */
        q.kind = K_STRING;
        q.size = 32 + (r >> 20) % 481;
    } else { /* array: 16 B to 64 KiB, small ones most frequent (log-uniform) */
        q.kind = K_ARRAY;
        unsigned e = 4 + (unsigned)((r >> 20) % 12); /* 2^4 .. 2^15 */
        q.size = ((size_t)1 << e) + (size_t)((r >> 24) % ((uint64_t)1 << e));
    }

    /* Process-critical during the thread's start-up, then mostly task-critical. */
    unsigned pct = (unsigned)((r >> 40) % 100);
    if (nalloc < STARTUP_ALLOCS || pct >= 98)
        q.level = eProcessCritical;
    else if (pct >= 90)
        q.level = eAppDomainCritical;
    else
        q.level = eTaskCritical;
    return q;
}

/* Allocate one object of a runtime-like kind, size and criticality into `b`. */
static void allocate_object(worker *w, block *b) {
    uint64_t r = next_rand(w);
    request q = pick_request(r, w->nalloc);
    int kind = q.kind;
    size_t size = q.size;
    EMemoryCriticalLevel level = q.level;

    bool debug = w->door->com != NULL && w->nalloc % DEBUG_EVERY == DEBUG_EVERY / 2;
    w->nalloc++;
    void *p = debug ? door_alloc(w->door, size, level, __FILE__, __LINE__, &w->c)
                    : door_alloc(w->door, size, level, NULL, 0, &w->c);
    if (p == NULL) return;
    if ((uintptr_t)p % 16 != 0) w->c.misaligned++;
    w->c.allocs[level]++;
    w->c.bytes[level] += size;
    w->c.kinds[kind]++;
    w->c.debug_allocs += debug;
    b->p = p;
    b->size = size;
    b->seed = next_rand(w);
    fill_block(b);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
        block *b = &w->ws[next_rand(w) % WORKING_SET];
        if (b->p != NULL) retire(w, b);
        allocate_object(w, b);
    }
    if (!w->keep_live) /* the thread ends: its objects die too */
        for (size_t i = 0; i < WORKING_SET; i++)
            if (w->ws[i].p != NULL) retire(w, &w->ws[i]);
    if (w->nbatch > 0) finalizer_push(w->fin, w->batch, w->nbatch);
    w->nbatch = 0;
    return NULL;
}

/* ---- Running a workload ---------------------------------------------------------------------- */
static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_seconds(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Run the workload on `d` for `seconds` with N_THREADS managed threads and a finalizer thread.
 * Sums every thread's counters into `sum` and the wall time into `elapsed`. Returns the
 * workers (free with free()); with `keep_live` their working sets are still allocated. NULL
 * when a thread cannot be started. */
static worker *run_workload(const door *d, double seconds, bool keep_live, uint64_t salt,
                            counters *sum, double *elapsed) {
    worker *ws = calloc(N_THREADS, sizeof *ws);
    finalizer *fin = calloc(1, sizeof *fin);
    if (ws == NULL || fin == NULL) {
        free(ws);
        free(fin);
        return NULL;
    }
    atomic_bool stop = false;
    pthread_mutex_init(&fin->lock, NULL);
    pthread_cond_init(&fin->not_empty, NULL);
    pthread_cond_init(&fin->not_full, NULL);
    fin->door = d;

    double t0 = now_seconds();
    bool fin_started = pthread_create(&fin->thread, NULL, finalizer_main, fin) == 0;
    bool started = fin_started;
    int nstarted = 0;
    for (int i = 0; started && i < N_THREADS; i++, nstarted++) {
        worker *w = &ws[i];
        w->id = (unsigned)i;
        w->door = d;
        w->fin = fin;
        w->stop = &stop;
        w->keep_live = keep_live;
        w->rng = (salt + (uint64_t)i + 1) * UINT64_C(0x9E3779B97F4A7C15) | 1;
        started = pthread_create(&w->thread, NULL, worker_main, w) == 0;
        if (!started) break;
    }
    if (started) sleep_seconds(seconds);
    atomic_store(&stop, true);
    for (int i = 0; i < nstarted; i++)
        pthread_join(ws[i].thread, NULL);
    if (fin_started) { /* no more blocks will come: let the finalizer drain the queue */
        pthread_mutex_lock(&fin->lock);
        fin->closing = true;
        pthread_cond_signal(&fin->not_empty);
        pthread_mutex_unlock(&fin->lock);
        pthread_join(fin->thread, NULL);
    }
    *elapsed = now_seconds() - t0;

    memset(sum, 0, sizeof *sum);
    for (int i = 0; i < N_THREADS; i++)
        counters_add(sum, &ws[i].c);
    counters_add(sum, &fin->c);
    pthread_cond_destroy(&fin->not_full);
    pthread_cond_destroy(&fin->not_empty);
    pthread_mutex_destroy(&fin->lock);
    free(fin);
    if (!started) {
        fprintf(stderr, "demo_host: cannot start the workload threads\n");
        free(ws);
        return NULL;
    }
    return ws;
}

/* ---- Report helpers -------------------------------------------------------------------------- */
static const char *fmt_bytes(char *buf, size_t len, double n) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (n >= 1024 && u < 4) {
        n /= 1024;
        u++;
    }
    snprintf(buf, len, u == 0 ? "%.0f %s" : "%.1f %s", n, units[u]);
    return buf;
}

static void print_com_report(const counters *c, double elapsed) {
    static const char *level_names[] = {"eTaskCritical", "eAppDomainCritical", "eProcessCritical"};
    char b1[32], b2[32];
    printf("  %-20s %12s %12s\n", "level", "allocs", "bytes");
    for (int i = 0; i < 3; i++)
        printf("  %-20s %12" PRIu64 " %12s\n", level_names[i], c->allocs[i],
               fmt_bytes(b1, sizeof b1, (double)c->bytes[i]));
    printf("  %-20s %12" PRIu64 " %12s\n", "total", total_allocs(c),
           fmt_bytes(b1, sizeof b1, (double)total_bytes(c)));
    printf("  objects: %" PRIu64 " type handles, %" PRIu64 " strings, %" PRIu64 " arrays, %" PRIu64
           " 1 MiB buffers\n",
           c->kinds[K_TYPE_HANDLE], c->kinds[K_STRING], c->kinds[K_ARRAY], c->kinds[K_BUFFER]);
    printf("  DebugAlloc: %" PRIu64 " of them, with file and line\n", c->debug_allocs);
    uint64_t frees = c->local_frees + c->remote_frees;
    printf("  frees: %" PRIu64 " by the allocating thread, %" PRIu64
           " cross-thread by the finalizer (%.1f%%)\n",
           c->local_frees, c->remote_frees,
           frees ? 100.0 * (double)c->remote_frees / (double)frees : 0.0);
    printf("  checks: %" PRIu64 " blocks verified intact; failures: %" PRIu64 " Alloc, %" PRIu64
           " Free, %" PRIu64 " corrupt, %" PRIu64 " misaligned\n",
           c->verified, c->alloc_failures, c->free_failures, c->corrupt, c->misaligned);
    printf("  throughput: %.2f M Alloc+Free/s, %s/s allocated\n",
           (double)(total_allocs(c) + frees) / elapsed / 1e6,
           fmt_bytes(b2, sizeof b2, (double)total_bytes(c) / elapsed));
}

/* ---- JIT: emit and run code from a MALLOC_EXECUTABLE instance -------------------------------- */
static sigjmp_buf jit_fault;
static volatile sig_atomic_t jit_signal; /* the signal the emitted code raised, if any */

static void on_jit_fault(int sig) {
    jit_signal = sig;
    siglongjmp(jit_fault, 1);
}

/* Returns the number of failed checks (0 or 1). */
static int jit_demo(IHostMemoryManager *mgr) {
    IHostMalloc *exec = NULL;
    HRESULT hr = IHostMemoryManager_CreateMalloc(mgr, MALLOC_EXECUTABLE, &exec);
    if (hr != S_OK || exec == NULL) {
        printf("  CreateMalloc(MALLOC_EXECUTABLE) failed: 0x%08" PRIx32 "\n", (uint32_t)hr);
        return 1;
    }
#if defined(__x86_64__)
    /* mov eax, imm32 ; ret */
    const unsigned char code[6] = {0xB8,
                                   (unsigned char)(JIT_VALUE & 0xFF),
                                   (unsigned char)((JIT_VALUE >> 8) & 0xFF),
                                   (unsigned char)((JIT_VALUE >> 16) & 0xFF),
                                   (unsigned char)((JIT_VALUE >> 24) & 0xFF),
                                   0xC3};
    void *mem = NULL;
    int failed = 0;
    /* at function scope: ASan's scope checks mistook the block-scoped copy for out of scope
     * once sigsetjmp had returned */
    unsigned (*fn)(void);
    hr = IHostMalloc_Alloc(exec, sizeof code, eTaskCritical, &mem);
    if (hr != S_OK || mem == NULL) {
        printf("  Alloc from the executable instance failed: 0x%08" PRIx32 "\n", (uint32_t)hr);
        failed = 1;
    } else {
        memcpy(mem, code, sizeof code);
        __builtin___clear_cache((char *)mem, (char *)mem + sizeof code);
        memcpy(&fn, &mem, sizeof fn); /* object pointer to function pointer, without a cast */

        /* If the block is not executable the call faults: report it instead of crashing. */
        struct sigaction sa, old_segv, old_bus;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_jit_fault;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &old_segv);
        sigaction(SIGBUS, &sa, &old_bus);
        volatile unsigned result = 0;
        jit_signal = 0;
        if (sigsetjmp(jit_fault, 1) == 0) result = fn();
        sigaction(SIGSEGV, &old_segv, NULL);
        sigaction(SIGBUS, &old_bus, NULL);

        if (jit_signal != 0) {
            printf("  called the emitted code at %p: signal %d (block not executable)\n", mem,
                   (int)jit_signal);
            failed = 1;
        } else {
            failed = result != JIT_VALUE;
            printf("  emitted \"mov eax, 0x%X; ret\" at %p, called it: returned 0x%X: %s\n",
                   JIT_VALUE, mem, (unsigned)result, failed ? "WRONG" : "ok");
        }
        if (IHostMalloc_Free(exec, mem) != S_OK) {
            printf("  Free of the code block did not return S_OK\n");
            failed = 1;
        }
    }
#else
    int failed = 0;
    printf("  skipped: the emitted code is x86-64\n");
#endif
    IHostMalloc_Release(exec);
    return failed;
}

/* ---- Statistics through the native door ------------------------------------------------------ */
/* hm_heap_stats_print(heap, stdout), indented to fit in the report. */
static void print_indented_stats(hm_heap *heap) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (mem == NULL) {
        hm_heap_stats_print(heap, stdout);
        return;
    }
    hm_heap_stats_print(heap, mem);
    fclose(mem);
    for (char *line = text; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        int n = nl != NULL ? (int)(nl - line) : (int)strlen(line);
        printf("  | %.*s\n", n, line);
        line = nl != NULL ? nl + 1 : NULL;
    }
    free(text);
}

/* Returns the number of failed checks. */
static uint64_t native_demo(void) {
    hm_heap *heap = hm_heap_new(NULL, HM_HEAP_THREADSAFE);
    if (heap == NULL) {
        printf("  hm_heap_new failed\n");
        return 1;
    }
    door d = {.com = NULL, .heap = heap};
    counters c;
    double elapsed;
    worker *ws = run_workload(&d, NATIVE_SECONDS, true, 0xC0FFEE, &c, &elapsed);
    if (ws == NULL) {
        hm_heap_release(heap);
        return 1;
    }
    char b[32];
    size_t live = 0;
    for (int i = 0; i < N_THREADS; i++)
        for (size_t j = 0; j < WORKING_SET; j++)
            live += ws[i].ws[j].p != NULL;
    printf("  %.2f s: %" PRIu64 " allocs (%s), %" PRIu64 " cross-thread frees, %" PRIu64
           " failures; %zu blocks left live\n",
           elapsed, total_allocs(&c), fmt_bytes(b, sizeof b, (double)total_bytes(&c)),
           c.remote_frees, counters_failures(&c), live);

    /* The workers have exited: collecting their parts of the heap takes in the finalizer's
     * frees, so the statistics then count exactly the blocks still live. */
    hm_heap_collect(heap, false);
    hm_heap_stats_t st;
    hm_heap_stats(heap, &st);
    print_indented_stats(heap);
    bool exact = st.live_blocks == live;
    if (!exact) printf("  WRONG: live_blocks %zu, expected %zu\n", st.live_blocks, live);

    /* Free the working sets left by the (exited) threads, then check that nothing is live. */
    counters after = {0};
    for (int i = 0; i < N_THREADS; i++)
        for (size_t j = 0; j < WORKING_SET; j++)
            if (ws[i].ws[j].p != NULL) release_block(&d, &ws[i].ws[j], &after, true);
    free(ws);
    hm_heap_collect(heap, true);
    hm_heap_stats(heap, &st);
    bool empty = st.live_blocks == 0 && st.live_bytes == 0;
    printf("  freed them from the main thread, hm_heap_collect(force): live_blocks %zu, "
           "live_bytes %zu: %s\n",
           st.live_blocks, st.live_bytes, empty ? "ok" : "WRONG");
    hm_heap_release(heap);
    return counters_failures(&c) + counters_failures(&after) + !exact + !empty;
}

/* ---- Budget: a small limit, criticality ceilings, pressure notifications --------------------- */
/* A second manager with a budget small enough to run out of: the runtime's working set grows
 * until requests are refused, task-critical ones first; the Low notification makes the
 * runtime collect garbage, and the notifications come back to High as memory is given back. */
#define B_LIMIT        (128 * MiB)
#define B_RESERVE_AD   (16 * MiB) /* kept for AppDomain- and process-critical requests */
#define B_RESERVE_PROC (16 * MiB) /* kept for process-critical requests */
#define B_NOTIFY_MS    20         /* at most one notification per this many ms */
#define B_HIGH_PCT     60         /* High below this share of the limit */
#define B_THREADS      4
#define B_CAPACITY     32768 /* objects a thread can hold: far more than the budget allows */
#define B_BURST        128   /* allocations between two pauses of a thread */
#define B_PAUSE        0.001 /* seconds: the mutators' pace (the notifier gets a CPU too) */
#define B_SURVIVE_PCT  10    /* the GC keeps this share of a thread's objects, the oldest */
#define B_TIMEOUT      1.5   /* seconds each phase may take */
#define B_EVENTS       32
#define B_REGION       MiB         /* VirtualAlloc: bytes reserved */
#define B_COMMIT       (256 * KiB) /* bytes of it committed */

static const char *const level_names[3] = {"task", "AppDomain", "process"};
static const char *const avail_names[4] = {"?", "Low", "Neutral", "High"};
static const char *const kind_names[K_COUNT] = {"type handle", "string", "array", "buffer"};

/* One line of the timeline; notifications that repeat are folded into one line. */
typedef struct bevent {
    double t, t_last; /* ms since the manager was made; t_last: last repeat */
    int note;         /* EMemoryAvailable of a notification, 0 for other events */
    unsigned repeats;
    char text[128];
} bevent;

typedef struct budget {
    IHostMemoryManager *mgr;
    door door; /* the one MALLOC_THREADSAFE instance */
    double t0;
    atomic_bool stop;
    atomic_bool gc_requested; /* set by the callback on Low */
    atomic_uint gc_done;      /* threads that have collected */
    _Atomic uint64_t refused[3];
    _Atomic uint64_t gc_freed, gc_freed_bytes, gc_kept, gc_kept_bytes;
    atomic_bool probes_ok; /* the first refused task-critical request succeeded higher up */
    pthread_mutex_t lock;  /* guards what follows */
    bevent ev[B_EVENTS];
    size_t nev;
    double first_refusal[3]; /* ms; < 0: none */
    uint64_t notes[4];       /* notifications received, by EMemoryAvailable */
    double first_low;        /* ms of the first Low; < 0: none */
    uint64_t refused_at_low[3];
    double back; /* ms of the first Neutral or High after a Low; < 0: none */
    int back_level;
} budget;

static double ms_since(const budget *b) {
    return (now_seconds() - b->t0) * 1e3;
}

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static void
blog(budget *b, double t, int note, const char *fmt, ...) {
    pthread_mutex_lock(&b->lock);
    if (b->nev < B_EVENTS) {
        bevent *e = &b->ev[b->nev++];
        e->t = e->t_last = t;
        e->note = note;
        e->repeats = 1;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof e->text, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&b->lock);
}

static const char *hr_name(char *buf, size_t len, HRESULT hr) {
    if (hr == S_OK) return "S_OK";
    if (hr == E_OUTOFMEMORY) return "E_OUTOFMEMORY";
    snprintf(buf, len, "0x%08" PRIx32, (uint32_t)hr);
    return buf;
}

/* ---- The notification callback: an ICLRMemoryNotificationCallback written in C ------------- */
typedef struct note_sink {
    ICLRMemoryNotificationCallback iface; /* first: the interface pointer is the object */
    atomic_uint refs; /* the demo owns the object (it is static); references are counted only */
    budget *b;
} note_sink;

static note_sink *sink_of(ICLRMemoryNotificationCallback *This) {
    return (note_sink *)This;
}

static ULONG STDMETHODCALLTYPE sink_add_ref(ICLRMemoryNotificationCallback *This) {
    return atomic_fetch_add(&sink_of(This)->refs, 1) + 1;
}

static ULONG STDMETHODCALLTYPE sink_release(ICLRMemoryNotificationCallback *This) {
    return atomic_fetch_sub(&sink_of(This)->refs, 1) - 1;
}

static HRESULT STDMETHODCALLTYPE sink_query_interface(ICLRMemoryNotificationCallback *This,
                                                      REFIID riid, void **ppv) {
    if (ppv == NULL) return E_POINTER;
    *ppv = NULL;
    if (riid == NULL) return E_POINTER;
    if (memcmp(riid, &IID_IUnknown, sizeof(IID)) != 0 &&
        memcmp(riid, &IID_ICLRMemoryNotificationCallback, sizeof(IID)) != 0)
        return E_NOINTERFACE;
    sink_add_ref(This);
    *ppv = This;
    return S_OK;
}

/* Runs on the manager's notifier thread. Records the event; on Low, asks for a GC (the
 * runtime's answer to Low), which the managed threads run. */
static HRESULT STDMETHODCALLTYPE sink_on_notification(ICLRMemoryNotificationCallback *This,
                                                      EMemoryAvailable level) {
    budget *b = sink_of(This)->b;
    double t = ms_since(b);
    int lv = level >= eMemoryAvailableLow && level <= eMemoryAvailableHigh ? (int)level : 0;
    DWORD load = 0;
    SIZE_T avail = 0;
    IHostMemoryManager_GetMemoryLoad(b->mgr, &load, &avail);
    uint64_t refused[3];
    for (int i = 0; i < 3; i++)
        refused[i] = atomic_load(&b->refused[i]);
    char bs[32];
    fmt_bytes(bs, sizeof bs, (double)avail);

    pthread_mutex_lock(&b->lock);
    b->notes[lv]++;
    bevent *last = b->nev > 0 ? &b->ev[b->nev - 1] : NULL;
    bool fold = last != NULL && last->note == lv;
    if (fold) {
        last->repeats++;
        last->t_last = t;
    }
    if (lv == eMemoryAvailableLow && b->first_low < 0) {
        b->first_low = t;
        memcpy(b->refused_at_low, refused, sizeof refused);
    }
    if (lv != eMemoryAvailableLow && b->first_low >= 0 && b->back < 0) {
        b->back = t;
        b->back_level = lv;
    }
    pthread_mutex_unlock(&b->lock);
    if (!fold)
        blog(b, t, lv, "notification %s (load %" PRIu32 "%%, %s available)", avail_names[lv],
             (uint32_t)load, bs);
    if (lv == eMemoryAvailableLow) atomic_store(&b->gc_requested, true);
    return S_OK;
}

static const ICLRMemoryNotificationCallbackVtbl sink_vtbl = {
    sink_query_interface,
    sink_add_ref,
    sink_release,
    sink_on_notification,
};

/* ---- The managed threads of the budget run --------------------------------------------------- */
typedef struct bworker {
    pthread_t thread;
    budget *b;
    uint64_t rng, nalloc;
    size_t n;  /* live objects, oldest first */
    block *ws; /* B_CAPACITY of them */
    counters c;
} bworker;

/* A request of `size` at `level` that must succeed now: checked, then freed. */
static HRESULT probe(budget *b, size_t size, EMemoryCriticalLevel level) {
    void *p = NULL;
    HRESULT hr = IHostMalloc_Alloc(b->door.com, size, level, &p);
    if (hr != S_OK || p == NULL) return hr != S_OK ? hr : E_FAIL;
    block blk = {p, size, 0x5EED};
    fill_block(&blk);
    bool ok = check_block(&blk);
    hr = IHostMalloc_Free(b->door.com, p);
    return ok ? hr : E_FAIL;
}

/* A request was refused: count it; the first of each level goes on the timeline. The first
 * refused task-critical request is retried at the two higher levels, which must succeed. */
static void refused(bworker *w, request q) {
    budget *b = w->b;
    double t = ms_since(b);
    w->c.alloc_failures++;
    if (atomic_fetch_add(&b->refused[q.level], 1) != 0) return;
    DWORD load = 0;
    SIZE_T avail = 0;
    IHostMemoryManager_GetMemoryLoad(b->mgr, &load, &avail);
    pthread_mutex_lock(&b->lock);
    b->first_refusal[q.level] = t;
    pthread_mutex_unlock(&b->lock);
    char bs[32], h1[16], h2[16];
    fmt_bytes(bs, sizeof bs, (double)q.size);
    if (q.level != eTaskCritical) {
        blog(b, t, 0, "first %s-critical refusal: %s %s, load %" PRIu32 "%%", level_names[q.level],
             bs, kind_names[q.kind], (uint32_t)load);
        return;
    }
    HRESULT ad = probe(b, q.size, eAppDomainCritical);
    HRESULT pc = probe(b, q.size, eProcessCritical);
    atomic_store(&b->probes_ok, ad == S_OK && pc == S_OK);
    blog(b, t, 0,
         "first task-critical refusal: %s %s, load %" PRIu32 "%%; as AppDomain: %s, process: %s",
         bs, kind_names[q.kind], (uint32_t)load, hr_name(h1, sizeof h1, ad),
         hr_name(h2, sizeof h2, pc));
}

/* One object of the runtime-like mix into `out`; false when the request is refused. */
static bool bw_alloc(bworker *w, block *out) {
    request q = pick_request(xorshift(&w->rng), w->nalloc++);
    void *p = NULL;
    HRESULT hr = IHostMalloc_Alloc(w->b->door.com, q.size, q.level, &p);
    if (hr != S_OK || p == NULL) {
        refused(w, q);
        return false;
    }
    if ((uintptr_t)p % 16 != 0) w->c.misaligned++;
    w->c.allocs[q.level]++;
    w->c.bytes[q.level] += q.size;
    w->c.kinds[q.kind]++;
    out->p = p;
    out->size = q.size;
    out->seed = xorshift(&w->rng);
    fill_block(out);
    return true;
}

/* The GC: the young objects die, the oldest B_SURVIVE_PCT percent survive. */
static void bw_collect(bworker *w) {
    budget *b = w->b;
    size_t keep = w->n * B_SURVIVE_PCT / 100;
    uint64_t freed = 0, freed_bytes = 0, kept_bytes = 0;
    for (size_t i = w->n; i-- > keep; freed++) {
        freed_bytes += w->ws[i].size;
        release_block(&b->door, &w->ws[i], &w->c, false);
    }
    for (size_t i = 0; i < keep; i++)
        kept_bytes += w->ws[i].size;
    w->n = keep;
    atomic_fetch_add(&b->gc_freed, freed);
    atomic_fetch_add(&b->gc_freed_bytes, freed_bytes);
    atomic_fetch_add(&b->gc_kept, keep);
    atomic_fetch_add(&b->gc_kept_bytes, kept_bytes);
    atomic_fetch_add(&b->gc_done, 1);
}

/* Grow the working set until the GC comes, then keep replacing random objects. */
static void *bw_main(void *arg) {
    bworker *w = arg;
    budget *b = w->b;
    bool collected = false;
    while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
        if (!collected && atomic_load(&b->gc_requested)) {
            bw_collect(w);
            collected = true;
        }
        for (int i = 0; i < B_BURST; i++) {
            if (!collected) {
                if (w->n < B_CAPACITY && bw_alloc(w, &w->ws[w->n])) w->n++;
            } else if (w->n > 0) {
                size_t k = xorshift(&w->rng) % w->n;
                release_block(&b->door, &w->ws[k], &w->c, false);
                if (!bw_alloc(w, &w->ws[k])) w->ws[k] = w->ws[--w->n];
            }
        }
        sleep_seconds(B_PAUSE);
    }
    while (w->n > 0) /* the runtime shuts down: everything goes, checked */
        release_block(&b->door, &w->ws[--w->n], &w->c, false);
    return NULL;
}

/* ---- The budget part ------------------------------------------------------------------------- */
typedef struct load_sample {
    uint32_t load;
    size_t avail;
} load_sample;

static load_sample get_load(IHostMemoryManager *mgr) {
    DWORD load = 0;
    SIZE_T avail = 0;
    if (IHostMemoryManager_GetMemoryLoad(mgr, &load, &avail) != S_OK) load = UINT32_MAX;
    return (load_sample){load, avail};
}

static const char *fmt_load(char *buf, size_t len, load_sample s) {
    char a[32];
    snprintf(buf, len, "%" PRIu32 "%% (%s available)", s.load,
             fmt_bytes(a, sizeof a, (double)s.avail));
    return buf;
}

/* Wait until `done(b)` holds or `timeout` seconds pass, sampling the load every millisecond
 * into `peak` (the highest load seen). */
static bool wait_for(budget *b, bool (*done)(budget *), double timeout, load_sample *peak) {
    double end = now_seconds() + timeout;
    for (;;) {
        load_sample s = get_load(b->mgr);
        if (s.load != UINT32_MAX && s.load >= peak->load) *peak = s;
        if (done(b)) return true;
        if (now_seconds() > end) return false;
        sleep_seconds(0.001);
    }
}

static bool low_seen(budget *b) {
    pthread_mutex_lock(&b->lock);
    bool r = b->first_low >= 0;
    pthread_mutex_unlock(&b->lock);
    return r;
}

static bool gc_finished(budget *b) {
    return atomic_load(&b->gc_done) == B_THREADS;
}

static bool back_seen(budget *b) {
    pthread_mutex_lock(&b->lock);
    bool r = b->back >= 0;
    pthread_mutex_unlock(&b->lock);
    return r;
}

static const char *state_name(DWORD s) {
    return s == MEM_COMMIT    ? "MEM_COMMIT"
           : s == MEM_RESERVE ? "MEM_RESERVE"
           : s == MEM_FREE    ? "MEM_FREE"
                              : "?";
}

static const char *protect_name(DWORD p) {
    switch (p) {
    case 0:
        return "no access";
    case PAGE_NOACCESS:
        return "PAGE_NOACCESS";
    case PAGE_READONLY:
        return "PAGE_READONLY";
    case PAGE_READWRITE:
        return "PAGE_READWRITE";
    default:
        return "PAGE_EXECUTE*";
    }
}

/* VirtualQuery of `p` printed as one line; returns the state. */
static DWORD query_page(IHostMemoryManager *mgr, const char *label, void *p) {
    MEMORY_BASIC_INFORMATION mbi;
    SIZE_T got = 0;
    HRESULT hr = IHostMemoryManager_VirtualQuery(mgr, p, &mbi, sizeof mbi, &got);
    if (hr != S_OK || got != sizeof mbi) {
        printf("    VirtualQuery(%s): 0x%08" PRIx32 ", %zu bytes\n", label, (uint32_t)hr,
               (size_t)got);
        return 0;
    }
    char bs[32];
    printf("    VirtualQuery(%s): %s, %s, %s from %p, allocation base %p\n", label,
           state_name(mbi.State), protect_name(mbi.Protect),
           fmt_bytes(bs, sizeof bs, (double)mbi.RegionSize), mbi.BaseAddress, mbi.AllocationBase);
    return mbi.State;
}

/* Reserve a region, commit part of it, query a committed and a reserved page, release it.
 * Returns the number of failed checks. */
static int virtual_demo(IHostMemoryManager *mgr) {
    int failed = 0;
    char b1[32], b2[32], h1[16], h2[16];
    load_sample before = get_load(mgr);
    void *base = NULL, *commit = NULL;
    HRESULT hr1 = IHostMemoryManager_VirtualAlloc(mgr, NULL, B_REGION, MEM_RESERVE, PAGE_READWRITE,
                                                  eTaskCritical, &base);
    HRESULT hr2 = hr1 != S_OK
                      ? E_FAIL
                      : IHostMemoryManager_VirtualAlloc(mgr, base, B_COMMIT, MEM_COMMIT,
                                                        PAGE_READWRITE, eTaskCritical, &commit);
    if (hr2 == S_OK) memset(commit, 0xA5, B_COMMIT); /* committed pages are usable */
    load_sample during = get_load(mgr);
    printf("  VirtualAlloc: MEM_RESERVE %s: %s at %p; MEM_COMMIT its first %s: %s\n",
           fmt_bytes(b1, sizeof b1, (double)B_REGION), hr_name(h1, sizeof h1, hr1), base,
           fmt_bytes(b2, sizeof b2, (double)B_COMMIT), hr_name(h2, sizeof h2, hr2));
    if (hr1 != S_OK || hr2 != S_OK || commit != base) return 1;
    printf("    GetMemoryLoad: available %s before, %s with the commit\n",
           fmt_bytes(b1, sizeof b1, (double)before.avail),
           fmt_bytes(b2, sizeof b2, (double)during.avail));
    failed += before.avail - during.avail != B_COMMIT;
    failed += query_page(mgr, "+64 KiB", (char *)base + 64 * KiB) != MEM_COMMIT;
    failed += query_page(mgr, "+512 KiB", (char *)base + 512 * KiB) != MEM_RESERVE;
    HRESULT hr3 = IHostMemoryManager_VirtualFree(mgr, base, 0, MEM_RELEASE);
    load_sample after = get_load(mgr);
    MEMORY_BASIC_INFORMATION mbi;
    SIZE_T got = 0;
    IHostMemoryManager_VirtualQuery(mgr, base, &mbi, sizeof mbi, &got);
    printf("    VirtualFree(MEM_RELEASE): %s; available %s again; VirtualQuery(base): %s\n",
           hr_name(h1, sizeof h1, hr3), fmt_bytes(b1, sizeof b1, (double)after.avail),
           state_name(mbi.State));
    failed += hr3 != S_OK || after.avail != before.avail || mbi.State != MEM_FREE;
    if (failed) printf("    WRONG: %d VirtualAlloc checks failed\n", failed);
    return failed;
}

/* Returns the number of failed checks. */
static uint64_t budget_demo(void) {
    static budget bs; /* large, and the callback refers to it */
    static note_sink sink = {.iface = {&sink_vtbl}};
    budget *b = &bs;
    uint64_t failures = 0;
    char t1[64], t2[64], t3[64];

    hm_config cfg = tu_quiet_config(B_LIMIT);
    cfg.reserve_appdomain = B_RESERVE_AD;
    cfg.reserve_process = B_RESERVE_PROC;
    cfg.notify_interval_ms = B_NOTIFY_MS;
    /* A host on a tight budget wants memory back at once: pages the GC empties are decommitted
     * when freed, not after a delay (which only a later allocation would act on). */
    cfg.purge_delay_ms = 0;
    /* High below 60% (not 50%): each thread's part of the heap keeps about a page per size
     * class in use, some 8 MiB for four threads, which the GC cannot give back. */
    cfg.high_pct = B_HIGH_PCT;
    printf("\nbudget: a second manager, limit %s, reserves %s AppDomain + %s process, "
           "notifications <= 1/%u ms\n",
           fmt_bytes(t1, sizeof t1, (double)cfg.limit),
           fmt_bytes(t2, sizeof t2, (double)cfg.reserve_appdomain),
           fmt_bytes(t3, sizeof t3, (double)cfg.reserve_process), cfg.notify_interval_ms);
    printf(
        "  ceilings: task %s, AppDomain %s, process %s; Low >= %u%%, Neutral < %u%%, "
        "High < %u%%\n",
        fmt_bytes(t1, sizeof t1, (double)(cfg.limit - cfg.reserve_appdomain - cfg.reserve_process)),
        fmt_bytes(t2, sizeof t2, (double)(cfg.limit - cfg.reserve_process)),
        fmt_bytes(t3, sizeof t3, (double)cfg.limit), cfg.low_pct, cfg.neutral_pct, cfg.high_pct);

    pthread_mutex_init(&b->lock, NULL);
    b->first_low = b->back = -1;
    for (int i = 0; i < 3; i++)
        b->first_refusal[i] = -1;
    atomic_init(&sink.refs, 1);
    sink.b = b;
    b->t0 = now_seconds();
    HRESULT hr = hm_create_host_memory_manager(&cfg, &b->mgr);
    if (hr != S_OK || b->mgr == NULL) {
        printf("  hm_create_host_memory_manager failed: 0x%08" PRIx32 "\n", (uint32_t)hr);
        return 1;
    }
    IHostMalloc *instance = NULL;
    hr = IHostMemoryManager_CreateMalloc(b->mgr, MALLOC_THREADSAFE, &instance);
    HRESULT hr_cb = IHostMemoryManager_RegisterMemoryNotificationCallback(b->mgr, &sink.iface);
    if (hr != S_OK || instance == NULL || hr_cb != S_OK) {
        printf("  CreateMalloc: 0x%08" PRIx32 ", RegisterMemoryNotificationCallback: 0x%08" PRIx32
               "\n",
               (uint32_t)hr, (uint32_t)hr_cb);
        if (instance != NULL) IHostMalloc_Release(instance);
        IHostMemoryManager_Release(b->mgr);
        return 1;
    }
    b->door.com = instance;
    load_sample start = get_load(b->mgr), peak = start;
    printf("  GetMemoryLoad at start: %s\n", fmt_load(t1, sizeof t1, start));

    /* The runtime: B_THREADS managed threads over the one instance. */
    printf("  %d threads, one MALLOC_THREADSAFE instance: working sets grow until Low, then a GC "
           "keeps %d%%:\n",
           B_THREADS, B_SURVIVE_PCT);
    bworker *ws = calloc(B_THREADS, sizeof *ws);
    int nstarted = 0;
    bool ok = ws != NULL;
    for (int i = 0; ok && i < B_THREADS; i++) {
        ws[i].b = b;
        ws[i].rng = ((uint64_t)i + 7) * UINT64_C(0x9E3779B97F4A7C15) | 1;
        ws[i].ws = calloc(B_CAPACITY, sizeof(block));
        ok = ws[i].ws != NULL && pthread_create(&ws[i].thread, NULL, bw_main, &ws[i]) == 0;
        if (ok) nstarted++;
    }
    bool got_low = false, gc_done = false, got_back = false;
    load_sample after_gc = {0, 0};
    uint64_t refused_at_gc[3] = {0, 0, 0};
    if (ok) {
        got_low = wait_for(b, low_seen, B_TIMEOUT, &peak);
        if (got_low) gc_done = wait_for(b, gc_finished, B_TIMEOUT, &peak);
        if (gc_done) {
            after_gc = get_load(b->mgr);
            double t = ms_since(b);
            char f[32], k[32];
            blog(b, t, 0,
                 "GC done: freed %" PRIu64 " objects (%s), kept the oldest %" PRIu64 " (%s)",
                 atomic_load(&b->gc_freed),
                 fmt_bytes(f, sizeof f, (double)atomic_load(&b->gc_freed_bytes)),
                 atomic_load(&b->gc_kept),
                 fmt_bytes(k, sizeof k, (double)atomic_load(&b->gc_kept_bytes)));
            for (int i = 0; i < 3; i++)
                refused_at_gc[i] = atomic_load(&b->refused[i]);
            blog(b, t, 0,
                 "  load %s; refused so far: task %" PRIu64 ", AppDomain %" PRIu64
                 ", process %" PRIu64,
                 fmt_load(t1, sizeof t1, after_gc), refused_at_gc[0], refused_at_gc[1],
                 refused_at_gc[2]);
            got_back = wait_for(b, back_seen, B_TIMEOUT, &peak);
        }
    }
    atomic_store(&b->stop, true);
    for (int i = 0; i < nstarted; i++)
        pthread_join(ws[i].thread, NULL);
    counters c = {0};
    for (int i = 0; ws != NULL && i < B_THREADS; i++) {
        counters_add(&c, &ws[i].c);
        free(ws[i].ws);
    }
    free(ws);
    if (!ok) {
        printf("  cannot start the threads\n");
        failures++;
    }

    /* The timeline, as recorded by the threads and the callback, in time order. */
    pthread_mutex_lock(&b->lock);
    for (size_t i = 1; i < b->nev; i++)
        for (size_t j = i; j > 0 && b->ev[j].t < b->ev[j - 1].t; j--) {
            bevent tmp = b->ev[j];
            b->ev[j] = b->ev[j - 1];
            b->ev[j - 1] = tmp;
        }
    for (size_t i = 0; i < b->nev; i++) {
        const bevent *e = &b->ev[i];
        if (e->repeats > 1)
            printf("    +%5.0f ms  %s x%u, last at +%.0f ms\n", e->t, e->text, e->repeats,
                   e->t_last);
        else
            printf("    +%5.0f ms  %s\n", e->t, e->text);
    }
    pthread_mutex_unlock(&b->lock);
    printf("  GetMemoryLoad at peak (sampled every ms): %s\n", fmt_load(t1, sizeof t1, peak));

    /* The expectations. */
    pthread_mutex_lock(&b->lock);
    const double *first = b->first_refusal;
    if (first[eTaskCritical] < 0) {
        printf("  WRONG: no task-critical request was refused\n");
        failures++;
    }
    for (int lv = eAppDomainCritical; lv <= eProcessCritical; lv++) {
        if (first[lv] >= 0 && (first[eTaskCritical] < 0 || first[lv] < first[eTaskCritical])) {
            printf("  WRONG: a %s-critical request was refused before any task-critical one\n",
                   level_names[lv]);
            failures++;
        }
    }
    if (first[eTaskCritical] >= 0 && !atomic_load(&b->probes_ok)) {
        printf("  WRONG: the refused task-critical request failed at a higher level too\n");
        failures++;
    }
    if (!got_low) {
        printf("  WRONG: no Low notification within %.1f s\n", B_TIMEOUT);
        failures++;
    } else if (b->refused_at_low[1] != 0 || b->refused_at_low[2] != 0 || refused_at_gc[1] != 0 ||
               refused_at_gc[2] != 0) {
        printf("  WRONG: AppDomain- or process-critical requests were refused before the GC\n");
        failures++;
    }
    if (got_low && !gc_done) {
        printf("  WRONG: the GC did not finish\n");
        failures++;
    }
    if (gc_done && !got_back) {
        printf("  WRONG: no Neutral or High notification within %.1f s of the GC\n", B_TIMEOUT);
        failures++;
    }
    uint64_t notes[4];
    memcpy(notes, b->notes, sizeof notes);
    pthread_mutex_unlock(&b->lock);
    if (notes[0] != 0) {
        printf("  WRONG: %" PRIu64 " notifications with an unknown EMemoryAvailable\n", notes[0]);
        failures++;
    }
    uint64_t checks = c.free_failures + c.corrupt + c.misaligned;
    failures += checks;

    /* The instance goes (its heap with it): the load falls back. */
    IHostMalloc_Release(instance);
    failures += virtual_demo(b->mgr);
    load_sample end = get_load(b->mgr);
    printf("  GetMemoryLoad at end (instance released): %s\n", fmt_load(t1, sizeof t1, end));
    if (end.load >= peak.load || end.avail <= peak.avail) {
        printf("  WRONG: the load did not fall back\n");
        failures++;
    }

    printf("  statistics (COM door: the demo's counters and GetMemoryLoad):\n");
    printf("    Alloc: task %" PRIu64 " ok, %" PRIu64 " refused; AppDomain %" PRIu64 " ok, %" PRIu64
           " refused; process %" PRIu64 " ok, %" PRIu64 " refused\n",
           c.allocs[0], atomic_load(&b->refused[0]), c.allocs[1], atomic_load(&b->refused[1]),
           c.allocs[2], atomic_load(&b->refused[2]));
    printf("    notifications: Low %" PRIu64 ", Neutral %" PRIu64 ", High %" PRIu64
           "; blocks: %" PRIu64 " verified intact, %" PRIu64 " Free failures, %" PRIu64
           " corrupt, %" PRIu64 " misaligned\n",
           notes[1], notes[2], notes[3], c.verified, c.free_failures, c.corrupt, c.misaligned);

    /* The manager lets go of the callback when it goes. */
    unsigned held = atomic_load(&sink.refs);
    IHostMemoryManager_Release(b->mgr);
    unsigned after = atomic_load(&sink.refs);
    printf("    callback references: %u while registered, %u after the manager's Release\n", held,
           after);
    if (after != 1) {
        printf("  WRONG: the manager did not release the callback\n");
        failures++;
    }
    pthread_mutex_destroy(&b->lock);
    return failures;
}

/* ---- main ------------------------------------------------------------------------------------ */
int main(int argc, char **argv) {
    double seconds = argc > 1 ? atof(argv[1]) : COM_SECONDS;
    if (!(seconds >= 0.05 && seconds <= 600)) seconds = COM_SECONDS;
    uint64_t failures = 0;

    printf("hostmalloc %d.%d.%d demo host: %d managed threads + 1 finalizer thread\n",
           HOSTMALLOC_VERSION_MAJOR, HOSTMALLOC_VERSION_MINOR, HOSTMALLOC_VERSION_PATCH, N_THREADS);

    /* Host: make the memory manager (configured from defaults and the HM_* environment). */
    hm_config cfg;
    hm_config_init(&cfg);
    IHostMemoryManager *mgr = NULL;
    HRESULT hr = hm_create_host_memory_manager(&cfg, &mgr);
    if (hr != S_OK || mgr == NULL) {
        printf("hm_create_host_memory_manager failed: 0x%08" PRIx32 "\n", (uint32_t)hr);
        return 1;
    }

    /* Runtime: exactly one thread-safe allocator for the whole process; anything but S_OK
     * would abort hosting. */
    IHostMalloc *malloc_ = NULL;
    hr = IHostMemoryManager_CreateMalloc(mgr, MALLOC_THREADSAFE, &malloc_);
    if (hr != S_OK || malloc_ == NULL) {
        printf("CreateMalloc(MALLOC_THREADSAFE) failed: 0x%08" PRIx32 "\n", (uint32_t)hr);
        IHostMemoryManager_Release(mgr);
        return 1;
    }
    /* The runtime forwards Free(NULL) to the host and expects S_OK. */
    hr = IHostMalloc_Free(malloc_, NULL);
    if (hr != S_OK) {
        printf("Free(NULL) returned 0x%08" PRIx32 ", expected S_OK\n", (uint32_t)hr);
        failures++;
    }

    printf("\nCOM door: one IHostMalloc (MALLOC_THREADSAFE) shared by all threads, %.2f s\n",
           seconds);
    door com = {.com = malloc_, .heap = NULL};
    counters c;
    double elapsed;
    worker *ws = run_workload(&com, seconds, false, 1, &c, &elapsed);
    if (ws == NULL) {
        failures++;
    } else {
        free(ws);
        print_com_report(&c, elapsed);
        failures += counters_failures(&c);
        uint64_t frees = c.local_frees + c.remote_frees + c.free_failures;
        if (frees != total_allocs(&c)) { /* every block allocated must have been freed */
            printf("  %" PRIu64 " allocations but %" PRIu64 " frees\n", total_allocs(&c), frees);
            failures++;
        }
    }

    printf("\nJIT: CreateMalloc(MALLOC_EXECUTABLE)\n");
    failures += jit_demo(mgr);

    printf("\nstatistics: native door, hm_heap_new(NULL, HM_HEAP_THREADSAFE), same workload\n");
    failures += native_demo();

    /* The runtime never lets go of its allocator; the host tears down at exit. */
    IHostMalloc_Release(malloc_);
    IHostMemoryManager_Release(mgr);

    failures += budget_demo();

    printf("\nresult: %s (failed checks: %" PRIu64 ")\n", failures == 0 ? "PASS" : "FAIL",
           failures);
    return failures == 0 ? 0 : 1;
}
