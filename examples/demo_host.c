/* demo_host.c: a host of hostmalloc that also plays the runtime.
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
 * JIT does. The COM door gives no way to reach the hm_heap behind an IHostMalloc, so the
 * statistics come from the native door: the same workload runs briefly on a heap made with
 * hm_heap_new(), whose hm_heap_stats_print() report is shown.
 *
 * Usage: demo_host [seconds]   (length of the COM workload, default 1.5)
 * Exit status: 0 when every check passed, 1 otherwise. */
#define _POSIX_C_SOURCE 200809L

#include <hostmalloc/hostmalloc.h>

#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

static uint64_t next_rand(worker *w) {
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * UINT64_C(0x2545F4914F6CDD1D);
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

/* Allocate one object of a runtime-like kind, size and criticality into `b`. */
static void allocate_object(worker *w, block *b) {
    uint64_t r = next_rand(w);
    int kind;
    size_t size;
    if (r % BUFFER_EVERY == 0) { /* an I/O or marshalling buffer */
        kind = K_BUFFER;
        size = MiB;
    } else if ((r >> 12) % 100 < 35) { /* type handle / method table: 24-64 bytes */
        kind = K_TYPE_HANDLE;
        size = 24 + 8 * ((r >> 20) % 6);
    } else if ((r >> 12) % 100 < 75) { /* string: 32-512 bytes */
        kind = K_STRING;
        size = 32 + (r >> 20) % 481;
    } else { /* array: 16 B to 64 KiB, small ones most frequent (log-uniform) */
        kind = K_ARRAY;
        unsigned e = 4 + (unsigned)((r >> 20) % 12); /* 2^4 .. 2^15 */
        size = ((size_t)1 << e) + (size_t)((r >> 24) % ((uint64_t)1 << e));
    }

    /* Process-critical during the thread's start-up, then mostly task-critical. */
    EMemoryCriticalLevel level;
    unsigned pct = (unsigned)((r >> 40) % 100);
    if (w->nalloc < STARTUP_ALLOCS || pct >= 98)
        level = eProcessCritical;
    else if (pct >= 90)
        level = eAppDomainCritical;
    else
        level = eTaskCritical;

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
    hr = IHostMalloc_Alloc(exec, sizeof code, eTaskCritical, &mem);
    if (hr != S_OK || mem == NULL) {
        printf("  Alloc from the executable instance failed: 0x%08" PRIx32 "\n", (uint32_t)hr);
        failed = 1;
    } else {
        memcpy(mem, code, sizeof code);
        __builtin___clear_cache((char *)mem, (char *)mem + sizeof code);
        unsigned (*fn)(void);
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

    printf("\nresult: %s (failed checks: %" PRIu64 ")\n", failures == 0 ? "PASS" : "FAIL",
           failures);
    return failures == 0 ? 0 : 1;
}
