/* SPDX-License-Identifier: MIT */
/* tests/api/test_manager.c: the memory manager: the budget and its level ceilings,
 * failure through the COM door, the process-critical wait, pressure notifications, the load,
 * address-space callbacks, fault injection, statistics and the HM_* environment.
 *
 * Most tests drive a native manager (hm_manager_new + hm_heap_new) so that they can compare
 * what they did with hm_manager_stats; the COM-level ones go through
 * hm_create_host_memory_manager and the vtables. Blocks of 1 MiB are huge blocks (a segment of
 * their own, committed as the block plus one header page); with segment_cache = 0 and
 * purge_delay_ms = 0 their commit goes back to the budget the moment they are freed. The
 * VirtualAlloc family is tested in test_vmem.c. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <hostmalloc/hosting.h>
#include <hostmalloc/hostmalloc.h>

#include "test_util.h"
#include "tu_com.h"

#define MIB TU_MIB
#define KIB TU_KIB

/* ---- helpers ------------------------------------------------------------------------------ */
static double dabs(double x) {
    return x < 0 ? -x : x;
}

/* A stack of blocks. */
typedef struct blocks {
    void *p[4096];
    size_t size[4096];
    size_t n;
    size_t bytes;
} blocks;

static void blocks_push(blocks *b, void *p, size_t size) {
    if (b->n >= TU_ARRAY_SIZE(b->p)) fail_msg("too many blocks");
    b->p[b->n] = p;
    b->size[b->n] = size;
    b->n++;
    b->bytes += size;
}

static void *blocks_pop(blocks *b) {
    if (b->n == 0) return NULL;
    b->n--;
    b->bytes -= b->size[b->n];
    return b->p[b->n];
}

/* Allocate blocks of `size` at `level` until the first failure; returns how many succeeded. */
static size_t fill_native(hm_heap *heap, blocks *b, size_t size, EMemoryCriticalLevel level) {
    size_t got = 0;
    for (;;) {
        void *p = hm_alloc_level(heap, size, level);
        if (p == NULL) return got;
        memset(p, 0x5A, 64);
        blocks_push(b, p, size);
        got++;
        if (got > 100000) fail_msg("fill never failed: the budget is not enforced");
    }
}

static void free_all_native(blocks *b) {
    void *p;
    while ((p = blocks_pop(b)) != NULL)
        hm_free(p);
}

/* The statistics' `requests` and `failures` by level (of a heap or of the manager: `who`) are
 * exactly `want_req` and `want_fail`. */
static void expect_level_counts(const char *who, const size_t *requests, const size_t *failures,
                                const size_t *want_req, const size_t *want_fail) {
    for (int l = 0; l < 3; l++)
        if (requests[l] != want_req[l] || failures[l] != want_fail[l])
            fail_msg("%s level %d: %zu requests, %zu failures; expected %zu and %zu", who, l,
                     requests[l], failures[l], want_req[l], want_fail[l]);
}

/* Allocates 1 MiB blocks at `level` on the COM instance into ptrs[*n], ptrs[*n + 1], ... until
 * one is refused; more than `cap` in all fails the test (`what` says why there should be a
 * refusal). */
static void com_fill(IHostMalloc *m, EMemoryCriticalLevel level, void **ptrs, size_t *n, size_t cap,
                     const char *what) {
    for (;;) {
        void *p = NULL;
        if (IHostMalloc_Alloc(m, MIB, level, &p) != S_OK) return;
        if (*n == cap) fail_msg("no failure %s", what);
        ptrs[(*n)++] = p;
    }
}

/* Frees ptrs[*n - 1] down to ptrs[0] on the COM instance; each Free must succeed. */
static void com_free_all(IHostMalloc *m, void **ptrs, size_t *n) {
    while (*n > 0)
        assert_hr(IHostMalloc_Free(m, ptrs[--*n]), S_OK);
}

/* ==== 1. the budget: 8 threads race to the limit ============================================= */
#define RACE_THREADS 8
#define RACE_LIMIT   ((size_t)64 * MIB)

typedef struct race_arg {
    hm_heap *heap;     /* native door, or */
    IHostMalloc *inst; /* COM door */
    atomic_int *go;
    void **ptrs;
    size_t n;
    size_t bytes;
    int bad; /* a block that was not writable or not aligned */
} race_arg;

static void *race_thread(void *a_) {
    race_arg *a = a_;
    while (!atomic_load(a->go)) {
    }
    bool big = true;
    for (size_t i = 0; a->n < 4096; i++) {
        size_t size = big && (i & 1) ? MIB : 64 * KIB;
        void *p = NULL;
        if (a->heap != NULL) {
            p = hm_alloc_level(a->heap, size, eTaskCritical);
        } else {
            HRESULT hr = IHostMalloc_Alloc(a->inst, size, eTaskCritical, &p);
            if ((hr == S_OK) != (p != NULL)) a->bad = 2;
        }
        if (p == NULL) {
            if (size == 64 * KIB) break; /* even the small size no longer fits */
            big = false;
            continue;
        }
        if (!tu_is_aligned(p, 16)) a->bad = 1;
        memset(p, (int)(i & 0xFF), size); /* touch every page: the RSS must follow */
        a->ptrs[a->n++] = p;
        a->bytes += size;
    }
    return NULL;
}

static size_t run_race(hm_heap *heap, IHostMalloc *inst, race_arg *args, size_t *rss_delta) {
    pthread_t th[RACE_THREADS];
    atomic_int go = 0;
    size_t rss0 = tu_rss_bytes();
    for (int i = 0; i < RACE_THREADS; i++) {
        args[i] = (race_arg){heap, inst, &go, calloc(4096, sizeof(void *)), 0, 0, 0};
        assert_non_null(args[i].ptrs);
        assert_int_equal(pthread_create(&th[i], NULL, race_thread, &args[i]), 0);
    }
    atomic_store(&go, 1);
    size_t total = 0;
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(th[i], NULL);
        total += args[i].bytes;
        if (args[i].bad) fail_msg("thread %d got a bad block or result (%d)", i, args[i].bad);
    }
    if (rss_delta != NULL) {
        size_t rss1 = tu_rss_bytes();
        *rss_delta = rss1 > rss0 ? rss1 - rss0 : 0;
    }
    return total;
}

static void test_race_to_limit(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    hm_config cfg = tu_test_config(RACE_LIMIT);
    cfg.segment_cache = (size_t)32 << 20; /* the default cache: it counts against the limit too */
    cfg.purge_delay_ms = 10;
    hm_manager *mgr = tu_manager(&cfg);
    hm_heap *heap = tu_heap(mgr, HM_HEAP_THREADSAFE);
    race_arg args[RACE_THREADS];
    size_t total = run_race(heap, NULL, args, NULL);
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    if (s.committed > RACE_LIMIT || s.peak_committed > RACE_LIMIT)
        fail_msg("committed %zu, peak %zu: above the limit %zu", s.committed, s.peak_committed,
                 RACE_LIMIT);
    if (total > RACE_LIMIT) fail_msg("threads hold %zu bytes, limit %zu", total, RACE_LIMIT);
    /* the race must have reached the limit, not given up early */
    if (total < RACE_LIMIT / 2 || s.committed < RACE_LIMIT - 8 * MIB)
        fail_msg("threads got only %zu bytes (committed %zu) of a %zu limit", total, s.committed,
                 RACE_LIMIT);
    if (s.committed < total)
        fail_msg("committed %zu below the %zu bytes handed out", s.committed, total);
    if (s.failures[eTaskCritical] < RACE_THREADS)
        fail_msg("%zu task-critical failures counted; each of 8 threads failed at least once",
                 s.failures[eTaskCritical]);
    /* everything goes back: the accounting returns to zero */
    for (int i = 0; i < RACE_THREADS; i++) {
        for (size_t k = 0; k < args[i].n; k++)
            hm_free(args[i].ptrs[k]);
        free(args[i].ptrs);
    }
    hm_heap_release(heap);
    hm_manager_trim(mgr);
    hm_manager_stats(mgr, &s);
    if (s.committed != 0) fail_msg("%zu bytes still counted after everything went", s.committed);
    assert_true(s.peak_committed <= RACE_LIMIT);
    hm_manager_release(mgr);
}

static void test_race_to_limit_rss(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    hm_config cfg = tu_test_config(RACE_LIMIT);
    IHostMemoryManager *mm = new_manager_cfg(&cfg);
    IHostMalloc *inst = new_malloc(mm, MALLOC_THREADSAFE);
    race_arg args[RACE_THREADS];
    size_t rss_delta = 0;
    size_t total = run_race(NULL, inst, args, &rss_delta);
    if (total > RACE_LIMIT) fail_msg("threads hold %zu bytes, limit %zu", total, RACE_LIMIT);
    if (total < RACE_LIMIT / 2) fail_msg("threads got only %zu bytes", total);
    /* What hostmalloc controls: the memory its heap committed never passed the limit. */
    hm_heap_stats_t hs;
    hm_heap_stats(hm_heap_of(args[0].ptrs[0]), &hs);
    if (hs.peak_committed > RACE_LIMIT)
        fail_msg("the heap's peak commit %zu is above the limit %zu", hs.peak_committed,
                 RACE_LIMIT);
    /* And, loosely, the process's RSS agrees (thread stacks, libc and the test's own arrays
     * count too: 32 MiB of slack). Labelled rss: run only where hostmalloc owns the RSS. */
    if (rss_delta > RACE_LIMIT + 32 * MIB)
        fail_msg("RSS grew by %zu bytes with a limit of %zu (+32 MiB slack)", rss_delta,
                 RACE_LIMIT);
    DWORD load = 0;
    SIZE_T avail = 1;
    assert_hr(IHostMemoryManager_GetMemoryLoad(mm, &load, &avail), S_OK);
    if (load > 100 || load < 85) fail_msg("load %u%% after the race", (unsigned)load);
    for (int i = 0; i < RACE_THREADS; i++) {
        for (size_t k = 0; k < args[i].n; k++)
            assert_hr(IHostMalloc_Free(inst, args[i].ptrs[k]), S_OK);
        free(args[i].ptrs);
    }
    IHostMalloc_Release(inst);
    IHostMemoryManager_Release(mm);
}

/* ==== 2. levels are ceilings ================================================================== */
static void check_near(size_t committed, size_t ceiling, size_t block, const char *what) {
    size_t slack = 4 * MIB + block;
    if (committed > ceiling || committed + slack < ceiling)
        fail_msg("%s: committed %zu at the failure, ceiling %zu (slack %zu)", what, committed,
                 ceiling, slack);
}

static void test_level_ceilings(void **state) {
    (void)state;
    const size_t limit = 64 * MIB, res = 8 * MIB, block = MIB;
    hm_config cfg = tu_reserve_config(limit, res, res);
    hm_manager *mgr = tu_manager(&cfg);
    assert_int_equal(hm_manager_limit(mgr), limit);
    hm_heap *heap = tu_heap(mgr, 0);
    static blocks b;
    memset(&b, 0, sizeof b);

    size_t n_task = fill_native(heap, &b, block, eTaskCritical);
    check_near(tu_committed(mgr), limit - 2 * res, block, "task-critical");
    assert_true(n_task > 0);
    /* task fails again; AppDomain still succeeds */
    assert_null(hm_alloc_level(heap, block, eTaskCritical));
    void *p = hm_alloc_level(heap, block, eAppDomainCritical);
    if (p == NULL) fail_msg("AppDomain-critical refused at %zu committed", tu_committed(mgr));
    blocks_push(&b, p, block);
    size_t n_app = 1 + fill_native(heap, &b, block, eAppDomainCritical);
    check_near(tu_committed(mgr), limit - res, block, "AppDomain-critical");
    p = hm_alloc_level(heap, block, eProcessCritical);
    if (p == NULL) fail_msg("process-critical refused at %zu committed", tu_committed(mgr));
    blocks_push(&b, p, block);
    size_t n_proc = 1 + fill_native(heap, &b, block, eProcessCritical);
    check_near(tu_committed(mgr), limit, block, "process-critical");
    assert_null(hm_alloc_level(heap, block, eAppDomainCritical));
    /* about 8 blocks fit in each reserve */
    if (n_app < 6 || n_app > 9 || n_proc < 6 || n_proc > 9)
        fail_msg("%zu AppDomain and %zu process blocks fit in 8 MiB reserves", n_app, n_proc);

    /* the statistics count exactly what we did */
    hm_heap_stats_t hs;
    hm_heap_stats(heap, &hs);
    size_t want_req[3] = {n_task + 2, n_app + 2, n_proc + 1};
    size_t want_fail[3] = {2, 2, 1};
    expect_level_counts("heap", hs.requests, hs.failures, want_req, want_fail);
    hm_manager_stats_t ms;
    hm_manager_stats(mgr, &ms);
    expect_level_counts("manager", ms.requests, ms.failures, want_req, want_fail);
    for (int l = 0; l < 3; l++)
        assert_int_equal(ms.faults_injected[l], 0);
    assert_int_equal(hs.huge_blocks, b.n);
    assert_true(hs.committed >= b.n * block);
    assert_int_equal(ms.committed, hs.committed);

    /* freeing brings the task-critical room back */
    for (int i = 0; i < 20; i++)
        hm_free(blocks_pop(&b));
    p = hm_alloc_level(heap, block, eTaskCritical);
    if (p == NULL) fail_msg("task-critical still refused after 20 MiB were freed");
    hm_free(p);
    free_all_native(&b);
    assert_int_equal(tu_committed(mgr), 0);
    tu_release(heap, mgr);
}

/* ==== 3. failure through the COM door ======================================================== */
static void test_com_alloc_failure(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(16 * MIB);
    cfg.segment_cache = (size_t)32 << 20;
    cfg.purge_delay_ms = 10;
    IHostMemoryManager *mm = new_manager_cfg(&cfg);
    IHostMalloc *m = new_malloc(mm, MALLOC_THREADSAFE);
    void *ptrs[64];
    size_t n = 0;
    HRESULT hr;
    for (;;) {
        void *p = GARBAGE;
        hr = IHostMalloc_Alloc(m, MIB, eTaskCritical, &p);
        if (hr != S_OK) {
            assert_hr(hr, E_OUTOFMEMORY);
            if (p != NULL) fail_msg("failed Alloc left *ppMem = %p", p);
            break;
        }
        assert_non_null(p);
        memset(p, 1, MIB);
        if (n == TU_ARRAY_SIZE(ptrs)) fail_msg("no failure with a 16 MiB limit");
        ptrs[n++] = p;
    }
    assert_true(n >= 12);
    /* the same request fails again, DebugAlloc too, and nothing is lost */
    void *p = GARBAGE;
    assert_hr(IHostMalloc_Alloc(m, MIB, eTaskCritical, &p), E_OUTOFMEMORY);
    assert_null(p);
    p = GARBAGE;
    assert_hr(IHostMalloc_DebugAlloc(m, MIB, eTaskCritical, (char *)"f.c", 1, &p), E_OUTOFMEMORY);
    assert_null(p);
    /* free some: the same request now succeeds (a cached segment is reused or purged) */
    assert_hr(IHostMalloc_Free(m, ptrs[--n]), S_OK);
    assert_hr(IHostMalloc_Free(m, ptrs[--n]), S_OK);
    p = NULL;
    assert_hr(IHostMalloc_Alloc(m, MIB, eTaskCritical, &p), S_OK);
    assert_non_null(p);
    memset(p, 2, MIB);
    ptrs[n++] = p;
    p = NULL;
    assert_hr(IHostMalloc_DebugAlloc(m, MIB, eTaskCritical, NULL, 0, &p), S_OK);
    assert_non_null(p);
    ptrs[n++] = p;
    /* small blocks still work after the failure too, once there is room */
    assert_hr(IHostMalloc_Free(m, ptrs[--n]), S_OK);
    for (int i = 0; i < 100; i++) {
        p = NULL;
        assert_hr(IHostMalloc_Alloc(m, 100, eTaskCritical, &p), S_OK);
        assert_hr(IHostMalloc_Free(m, p), S_OK);
    }
    com_free_all(m, ptrs, &n);
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mm);
}

/* ==== 4. the process-critical wait =========================================================== */
typedef struct freer_arg {
    void *p;
    unsigned delay_ms;
    double freed_at;
} freer_arg;

static void *freer_thread(void *a_) {
    freer_arg *a = a_;
    tu_sleep_ms(a->delay_ms);
    a->freed_at = tu_now_ms();
    hm_free(a->p);
    return NULL;
}

static void setup_full(hm_manager **mgr, hm_heap **heap, blocks *b, unsigned wait_ms) {
    hm_config cfg = tu_test_config(16 * MIB);
    cfg.process_wait_ms = wait_ms;
    *mgr = hm_manager_new(&cfg);
    assert_non_null(*mgr);
    *heap = hm_heap_new(*mgr, HM_HEAP_THREADSAFE);
    assert_non_null(*heap);
    memset(b, 0, sizeof *b);
    fill_native(*heap, b, MIB, eTaskCritical); /* task ceiling == limit: no reserves */
    assert_true(b->n >= 12);
}

static void test_process_wait_succeeds(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    hm_manager *mgr;
    hm_heap *heap;
    static blocks b;
    /* a wait far longer than the free takes, so a loaded machine cannot make the request time
     * out: success before the wait's end is what shows that the free woke the waiter */
    setup_full(&mgr, &heap, &b, 10000);
    freer_arg fa = {blocks_pop(&b), 100, 0};
    pthread_t t;
    double t0 = tu_now_ms();
    assert_int_equal(pthread_create(&t, NULL, freer_thread, &fa), 0);
    void *p = hm_alloc_level(heap, MIB, eProcessCritical);
    double t1 = tu_now_ms();
    pthread_join(t, NULL);
    if (p == NULL)
        fail_msg("process-critical request failed after %.0f ms although 1 MiB was freed at "
                 "%.0f ms",
                 t1 - t0, fa.freed_at - t0);
    if (t1 - t0 < 80) fail_msg("succeeded after %.0f ms, before the free", t1 - t0);
    if (t1 - t0 > 9000)
        fail_msg("took %.0f ms of a 10 s wait: the free did not wake the waiter", t1 - t0);
    if (t1 + 1 < fa.freed_at) fail_msg("succeeded before the memory was freed");
    hm_free(p);
    free_all_native(&b);
    tu_release(heap, mgr);
}

static void test_process_wait_times_out(void **state) {
    (void)state;
    hm_manager *mgr;
    hm_heap *heap;
    static blocks b;
    setup_full(&mgr, &heap, &b, 500);
    hm_manager_stats_t s0, s1;
    hm_manager_stats(mgr, &s0);
    double t0 = tu_now_ms();
    void *p = hm_alloc_level(heap, MIB, eProcessCritical);
    double el = tu_now_ms() - t0;
    assert_null(p);
    if (el < 400 || el > 3000) fail_msg("the failing process-critical request took %.0f ms", el);
    /* task- and AppDomain-critical requests do not wait */
    t0 = tu_now_ms();
    assert_null(hm_alloc_level(heap, MIB, eTaskCritical));
    assert_null(hm_alloc_level(heap, MIB, eAppDomainCritical));
    el = tu_now_ms() - t0;
    /* one wait would be 500 ms: anything below that is not a wait, however loaded the machine */
    if (el >= 450) fail_msg("task/AppDomain failures took %.0f ms: they must not wait", el);
    hm_manager_stats(mgr, &s1);
    assert_int_equal(s1.failures[eProcessCritical], s0.failures[eProcessCritical] + 1);
    assert_int_equal(s1.failures[eTaskCritical], s0.failures[eTaskCritical] + 1);
    free_all_native(&b);
    tu_release(heap, mgr);
}

/* ==== 5. notifications ======================================================================== */
#define MAX_NOTES 64

/* A recorder for notifications, native (fn) or COM (callback object). */
typedef struct recorder {
    ICLRMemoryNotificationCallback iface; /* first */
    atomic_int addrefs, releases;
    pthread_mutex_t lock;
    int n;
    int level[MAX_NOTES];
    double at[MAX_NOTES];
    pthread_t thread[MAX_NOTES];
    atomic_int in_call;
    unsigned sleep_ms; /* each call sleeps this long */
    IHostMalloc *reenter_malloc;
    IHostMemoryManager *reenter_mgr;
    atomic_int reentered; /* calls that used the instance and returned */
    atomic_int reenter_bad;
} recorder;

static void rec_note(recorder *r, int level) {
    atomic_store(&r->in_call, 1);
    pthread_mutex_lock(&r->lock);
    if (r->n < MAX_NOTES) {
        r->level[r->n] = level;
        r->at[r->n] = tu_now_ms();
        r->thread[r->n] = pthread_self();
        r->n++;
    }
    pthread_mutex_unlock(&r->lock);
    if (r->reenter_malloc != NULL) {
        void *p = NULL;
        HRESULT hr = IHostMalloc_Alloc(r->reenter_malloc, 4096, eTaskCritical, &p);
        if (hr == S_OK && IHostMalloc_Free(r->reenter_malloc, p) != S_OK) r->reenter_bad = 1;
        hr = IHostMalloc_Alloc(r->reenter_malloc, 64, eProcessCritical, &p);
        if (hr == S_OK && IHostMalloc_Free(r->reenter_malloc, p) != S_OK) r->reenter_bad = 1;
        DWORD load;
        SIZE_T avail;
        if (IHostMemoryManager_GetMemoryLoad(r->reenter_mgr, &load, &avail) != S_OK)
            r->reenter_bad = 1;
        atomic_fetch_add(&r->reentered, 1);
    }
    if (r->sleep_ms) tu_sleep_ms(r->sleep_ms);
    atomic_store(&r->in_call, 0);
}

static int rec_count(recorder *r) {
    pthread_mutex_lock(&r->lock);
    int n = r->n;
    pthread_mutex_unlock(&r->lock);
    return n;
}

static int rec_level(recorder *r, int i) {
    pthread_mutex_lock(&r->lock);
    int l = i < r->n ? r->level[i] : 0;
    pthread_mutex_unlock(&r->lock);
    return l;
}

/* Wait up to `ms` for at least `n` notifications. */
static bool rec_wait(recorder *r, int n, unsigned ms) {
    double end = tu_now_ms() + ms;
    while (rec_count(r) < n) {
        if (tu_now_ms() > end) return false;
        tu_sleep_ms(1);
    }
    return true;
}

static HRESULT STDMETHODCALLTYPE rec_qi(ICLRMemoryNotificationCallback *This, REFIID riid,
                                        void **ppv) {
    if (ppv == NULL) return E_POINTER;
    if (memcmp(riid, &IID_IUnknown, sizeof(IID)) != 0 &&
        memcmp(riid, &IID_ICLRMemoryNotificationCallback, sizeof(IID)) != 0) {
        *ppv = NULL;
        return E_NOINTERFACE;
    }
    atomic_fetch_add(&((recorder *)This)->addrefs, 1);
    *ppv = This;
    return S_OK;
}

static ULONG STDMETHODCALLTYPE rec_addref(ICLRMemoryNotificationCallback *This) {
    recorder *r = (recorder *)This;
    int a = atomic_fetch_add(&r->addrefs, 1) + 1;
    return (ULONG)(1 + a - atomic_load(&r->releases));
}

static ULONG STDMETHODCALLTYPE rec_release(ICLRMemoryNotificationCallback *This) {
    recorder *r = (recorder *)This;
    int rel = atomic_fetch_add(&r->releases, 1) + 1;
    return (ULONG)(1 + atomic_load(&r->addrefs) - rel);
}

static HRESULT STDMETHODCALLTYPE rec_on_notification(ICLRMemoryNotificationCallback *This,
                                                     EMemoryAvailable level) {
    rec_note((recorder *)This, (int)level);
    return S_OK;
}

static const ICLRMemoryNotificationCallbackVtbl rec_vtbl = {rec_qi, rec_addref, rec_release,
                                                            rec_on_notification};

static void rec_fn(void *arg, EMemoryAvailable level) {
    rec_note(arg, (int)level);
}

static recorder *rec_new(void) {
    recorder *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->iface.lpVtbl = &rec_vtbl;
    pthread_mutex_init(&r->lock, NULL);
    return r;
}

static void rec_free(recorder *r) {
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* References the manager holds on the callback now. */
static int rec_held(recorder *r) {
    return atomic_load(&r->addrefs) - atomic_load(&r->releases);
}

static void test_notify_callback_refcount(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(16 * MIB);
    IHostMemoryManager *mm = new_manager_cfg(&cfg);
    recorder *a = rec_new(), *b = rec_new();
    assert_hr(IHostMemoryManager_RegisterMemoryNotificationCallback(mm, &a->iface), S_OK);
    assert_int_equal(rec_held(a), 1);
    /* replaced: the old one is released, the new one AddRef'd */
    assert_hr(IHostMemoryManager_RegisterMemoryNotificationCallback(mm, &b->iface), S_OK);
    assert_int_equal(rec_held(a), 0);
    assert_int_equal(rec_held(b), 1);
    /* NULL unregisters */
    assert_hr(IHostMemoryManager_RegisterMemoryNotificationCallback(mm, NULL), S_OK);
    assert_int_equal(rec_held(b), 0);
    /* registering the same one twice holds one reference */
    assert_hr(IHostMemoryManager_RegisterMemoryNotificationCallback(mm, &a->iface), S_OK);
    assert_hr(IHostMemoryManager_RegisterMemoryNotificationCallback(mm, &a->iface), S_OK);
    assert_int_equal(rec_held(a), 1);
    /* the manager goes when its last instance goes: the callback is released then */
    IHostMalloc *m = new_malloc(mm, 0);
    IHostMemoryManager_Release(mm);
    assert_int_equal(rec_held(a), 1);
    IHostMalloc_Release(m);
    assert_int_equal(rec_held(a), 0);
    assert_int_equal(rec_held(b), 0);
    /* nothing was said: the budget never got near any threshold */
    assert_int_equal(rec_count(a), 0);
    assert_int_equal(rec_count(b), 0);
    rec_free(a);
    rec_free(b);
}

/* Allocate (or free) 1 MiB blocks until committed reaches `pct` percent of the limit
 * (at or above when growing, below when shrinking). */
static void drive_to(hm_manager *mgr, hm_heap *heap, blocks *b, unsigned pct, bool up) {
    size_t limit = hm_manager_limit(mgr);
    size_t target = limit / 100 * pct;
    if (up) {
        while (tu_committed(mgr) < target) {
            void *p = hm_alloc_level(heap, MIB, eTaskCritical);
            if (p == NULL) fail_msg("allocation failed at %zu committed", tu_committed(mgr));
            blocks_push(b, p, MIB);
        }
    } else {
        while (tu_committed(mgr) >= target) {
            void *p = blocks_pop(b);
            if (p == NULL) fail_msg("nothing left to free at %zu committed", tu_committed(mgr));
            hm_free(p);
        }
    }
}

static void expect_notes(recorder *r, int n, const int *levels, const char *when) {
    if (n > 0 && !rec_wait(r, n, 2000))
        fail_msg("%s: %d notifications after 2 s, expected %d", when, rec_count(r), n);
    tu_sleep_ms(40); /* four notify intervals: anything extra would have come by now */
    if (rec_count(r) != n) {
        char buf[256] = "";
        for (int i = 0; i < rec_count(r); i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), " %d", rec_level(r, i));
        fail_msg("%s: %d notifications (levels:%s), expected %d", when, rec_count(r), buf, n);
    }
    for (int i = 0; i < n; i++)
        if (rec_level(r, i) != levels[i])
            fail_msg("%s: notification %d is %d, expected %d", when, i, rec_level(r, i), levels[i]);
}

/* The fixture of the tests of hm_manager_set_notify: a native manager with one heap, a recorder
 * registered as its notification function, and the blocks a test drives the budget with. */
typedef struct notify_fixture {
    hm_manager *mgr;
    hm_heap *heap;
    recorder *r;
    blocks *b;
} notify_fixture;

/* `call_ms`: how long each notification call sleeps */
static notify_fixture notify_open(const hm_config *cfg, unsigned call_ms) {
    notify_fixture f;
    f.mgr = tu_manager(cfg);
    f.heap = tu_heap(f.mgr, 0);
    f.r = rec_new();
    f.r->sleep_ms = call_ms;
    assert_true(hm_manager_set_notify(f.mgr, rec_fn, f.r));
    f.b = calloc(1, sizeof *f.b);
    assert_non_null(f.b);
    return f;
}

/* Unregisters (again, where the test did), frees the blocks left and releases it all. */
static void notify_close(notify_fixture *f) {
    assert_true(hm_manager_set_notify(f->mgr, NULL, NULL));
    free_all_native(f->b);
    free(f->b);
    tu_release(f->heap, f->mgr);
    rec_free(f->r);
}

static void test_notify_thresholds_hysteresis(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(100 * MIB);
    notify_fixture f = notify_open(&cfg, 0);
    hm_manager *mgr = f.mgr;
    hm_heap *heap = f.heap;
    recorder *r = f.r;
    blocks *b = f.b;
    const int L = eMemoryAvailableLow, N = eMemoryAvailableNeutral, H = eMemoryAvailableHigh;

    /* High -> 85% (Neutral zone): one Neutral */
    drive_to(mgr, heap, b, 85, true);
    expect_notes(r, 1, (int[]){N}, "at 85%");
    /* crossing 90%: Low, on another thread */
    drive_to(mgr, heap, b, 91, true);
    expect_notes(r, 2, (int[]){N, L}, "at 91%");
    pthread_mutex_lock(&r->lock);
    bool same = pthread_equal(r->thread[1], pthread_self());
    pthread_mutex_unlock(&r->lock);
    if (same) fail_msg("the notification ran on the allocating thread");
    /* 91 -> 89 -> 91 -> 89 ...: Low stays, nothing more is said */
    for (int i = 0; i < 3; i++) {
        drive_to(mgr, heap, b, 89, false);
        tu_sleep_ms(25);
        drive_to(mgr, heap, b, 91, true);
        tu_sleep_ms(25);
    }
    drive_to(mgr, heap, b, 82, false);
    expect_notes(r, 2, (int[]){N, L}, "after 91/89 flapping and 82%");
    /* below neutral_pct: Neutral */
    drive_to(mgr, heap, b, 79, false);
    expect_notes(r, 3, (int[]){N, L, N}, "at 79%");
    /* below high_pct: High; back up to 55% (< high_pct + 10): still High */
    drive_to(mgr, heap, b, 49, false);
    expect_notes(r, 4, (int[]){N, L, N, H}, "at 49%");
    drive_to(mgr, heap, b, 55, true);
    drive_to(mgr, heap, b, 49, false);
    drive_to(mgr, heap, b, 55, true);
    expect_notes(r, 4, (int[]){N, L, N, H}, "after 49/55 flapping");
    drive_to(mgr, heap, b, 61, true);
    expect_notes(r, 5, (int[]){N, L, N, H, N}, "at 61%");
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    if (s.notifications[L] != 1 || s.notifications[N] != 3 || s.notifications[H] != 1)
        fail_msg("stats count %zu Low, %zu Neutral, %zu High notifications; expected 1, 3, 1",
                 s.notifications[L], s.notifications[N], s.notifications[H]);
    notify_close(&f);
}

static void test_notify_rate_limited(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(32 * MIB);
    cfg.notify_interval_ms = 300;
    notify_fixture f = notify_open(&cfg, 0);
    recorder *r = f.r;
    /* one commit takes the budget from High to Low, one free from Low to High */
    void *big = hm_alloc_level(f.heap, 30 * MIB, eTaskCritical);
    assert_non_null(big);
    assert_true(rec_wait(r, 1, 2000));
    assert_int_equal(rec_level(r, 0), eMemoryAvailableLow);
    hm_free(big);
    assert_true(rec_wait(r, 2, 2000));
    tu_sleep_ms(50);
    assert_int_equal(rec_count(r), 2);
    assert_int_equal(rec_level(r, 1), eMemoryAvailableHigh);
    pthread_mutex_lock(&r->lock);
    double gap = r->at[1] - r->at[0];
    pthread_mutex_unlock(&r->lock);
    if (gap < 280) fail_msg("two notifications %.0f ms apart with a 300 ms interval", gap);
    if (gap > 1000) fail_msg("the second notification came %.0f ms late", gap);
    notify_close(&f);
}

static void test_notify_low_on_failure(void **state) {
    (void)state;
    /* task-critical ceiling 16 MiB of 64: a failure while committed is far below low_pct */
    hm_config cfg = tu_test_config(64 * MIB);
    cfg.reserve_appdomain = 48 * MIB;
    notify_fixture f = notify_open(&cfg, 0);
    recorder *r = f.r;
    fill_native(f.heap, f.b, MIB, eTaskCritical);
    assert_true(tu_committed(f.mgr) < 20 * MIB);
    if (!rec_wait(r, 1, 2000)) fail_msg("no notification after a request failed");
    assert_int_equal(rec_level(r, 0), eMemoryAvailableLow);
    /* memory comes back: the host must hear that the low state is over */
    free_all_native(f.b);
    if (!rec_wait(r, 2, 1000))
        fail_msg("after a failure reported Low, all memory was freed (committed %zu of %zu) but "
                 "no Neutral/High notification followed within 1 s",
                 tu_committed(f.mgr), hm_manager_limit(f.mgr));
    assert_int_not_equal(rec_level(r, 1), eMemoryAvailableLow);
    notify_close(&f);
}

static void test_set_notify_waits_for_running_call(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(16 * MIB);
    notify_fixture f = notify_open(&cfg, 200);
    recorder *r = f.r;
    drive_to(f.mgr, f.heap, f.b, 92, true);
    double end = tu_now_ms() + 2000;
    while (!atomic_load(&r->in_call) && tu_now_ms() < end)
        tu_sleep_ms(1);
    assert_true(atomic_load(&r->in_call));
    /* the call sleeps 200 ms: set_notify must return only after it (no bound on the time
     * taken, which a loaded machine stretches either way) */
    assert_true(hm_manager_set_notify(f.mgr, NULL, NULL));
    if (atomic_load(&r->in_call))
        fail_msg("hm_manager_set_notify(NULL) returned while the old function was running");
    /* unregistered: nothing more arrives although the state changes */
    int n = rec_count(r);
    free_all_native(f.b);
    tu_sleep_ms(50);
    assert_int_equal(rec_count(r), n);
    notify_close(&f);
}

static void test_notify_com_reentrant(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    hm_config cfg = tu_test_config(16 * MIB);
    IHostMemoryManager *mm = new_manager_cfg(&cfg);
    IHostMalloc *m = new_malloc(mm, MALLOC_THREADSAFE);
    recorder *r = rec_new();
    r->reenter_malloc = m;
    r->reenter_mgr = mm;
    assert_hr(IHostMemoryManager_RegisterMemoryNotificationCallback(mm, &r->iface), S_OK);
    void *ptrs[64];
    size_t n = 0;
    com_fill(m, eTaskCritical, ptrs, &n, TU_ARRAY_SIZE(ptrs), "with a 16 MiB limit");
    /* Low, on the notifier thread, and the callback's own Alloc/Free return */
    double end = tu_now_ms() + 3000;
    while (atomic_load(&r->reentered) < 1 && tu_now_ms() < end)
        tu_sleep_ms(1);
    if (atomic_load(&r->reentered) < 1)
        fail_msg("the callback did not come back from Alloc/Free on the instance within 3 s "
                 "(%d notifications started): deadlock?",
                 rec_count(r));
    assert_false(r->reenter_bad);
    /* Low came (a Neutral may come first, when the notifier saw 60% on the way up) */
    if (!rec_wait(r, 1, 2000)) fail_msg("no notification");
    double end2 = tu_now_ms() + 2000;
    bool low = false;
    while (!low && tu_now_ms() < end2) {
        for (int i = 0; i < rec_count(r); i++)
            low = low || rec_level(r, i) == eMemoryAvailableLow;
        if (!low) tu_sleep_ms(1);
    }
    if (!low) fail_msg("no Low notification when the budget was exhausted");
    pthread_mutex_lock(&r->lock);
    bool same = false;
    for (int i = 0; i < r->n; i++)
        same = same || pthread_equal(r->thread[i], pthread_self());
    pthread_mutex_unlock(&r->lock);
    assert_false(same);
    /* the main thread keeps working meanwhile */
    com_free_all(m, ptrs, &n);
    for (int i = 0; i < 8; i++) {
        void *p = NULL;
        assert_hr(IHostMalloc_Alloc(m, MIB, eTaskCritical, &p), S_OK);
        ptrs[n++] = p;
    }
    com_free_all(m, ptrs, &n);
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mm);
    /* the manager is gone: every reference it took is given back */
    assert_int_equal(rec_held(r), 0);
    rec_free(r);
}

/* ==== 6. GetMemoryLoad ======================================================================== */
static void test_get_memory_load(void **state) {
    (void)state;
    hm_config cfg = tu_reserve_config(64 * MIB, 8 * MIB, 8 * MIB);
    IHostMemoryManager *mm = new_manager_cfg(&cfg);
    IHostMalloc *m = new_malloc(mm, 0);
    DWORD load = 77;
    SIZE_T avail = 77;
    assert_hr(IHostMemoryManager_GetMemoryLoad(mm, &load, &avail), S_OK);
    assert_int_equal(load, 0);
    assert_int_equal(avail, 48 * MIB);
    void *big = NULL;
    assert_hr(IHostMalloc_Alloc(m, 16 * MIB, eTaskCritical, &big), S_OK);
    assert_hr(IHostMemoryManager_GetMemoryLoad(mm, &load, &avail), S_OK);
    assert_int_equal(load, 25);
    if (avail > 32 * MIB || avail < 32 * MIB - 64 * KIB)
        fail_msg("available %zu after committing 16 MiB of a 48 MiB task budget", (size_t)avail);
    /* past the task-critical ceiling: available is 0, never "negative" */
    void *ptrs[64];
    size_t n = 0;
    for (EMemoryCriticalLevel l = eTaskCritical; l <= eAppDomainCritical; l++)
        com_fill(m, l, ptrs, &n, TU_ARRAY_SIZE(ptrs), "with a 64 MiB limit");
    assert_hr(IHostMemoryManager_GetMemoryLoad(mm, &load, &avail), S_OK);
    assert_int_equal(avail, 0);
    if (load < 80 || load > 88) fail_msg("load %u%% with about 56 of 64 MiB committed", load);
    com_fill(m, eProcessCritical, ptrs, &n, TU_ARRAY_SIZE(ptrs), "with a 64 MiB limit");
    assert_hr(IHostMemoryManager_GetMemoryLoad(mm, &load, &avail), S_OK);
    assert_int_equal(avail, 0);
    if (load < 92 || load > 100) fail_msg("load %u%% with the budget full", load);
    /* NULL out-pointers */
    assert_hr(IHostMemoryManager_GetMemoryLoad(mm, NULL, &avail), E_POINTER);
    assert_hr(IHostMemoryManager_GetMemoryLoad(mm, &load, NULL), E_POINTER);
    assert_hr(IHostMemoryManager_GetMemoryLoad(mm, NULL, NULL), E_POINTER);
    com_free_all(m, ptrs, &n);
    assert_hr(IHostMalloc_Free(m, big), S_OK);
    assert_hr(IHostMemoryManager_GetMemoryLoad(mm, &load, &avail), S_OK);
    assert_int_equal(load, 0);
    assert_int_equal(avail, 48 * MIB);
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mm);
}

static void test_manager_load_native(void **state) {
    (void)state;
    hm_config cfg = tu_reserve_config(40 * MIB, 4 * MIB, 4 * MIB);
    hm_manager *mgr = tu_manager(&cfg);
    hm_heap *heap = tu_heap(mgr, 0);
    void *p = hm_alloc_level(heap, 10 * MIB, eTaskCritical);
    assert_non_null(p);
    uint32_t load = 0;
    size_t avail = 0, c = tu_committed(mgr);
    hm_manager_load(mgr, &load, &avail);
    assert_int_equal(avail, 32 * MIB - c);
    assert_int_equal(load, (uint32_t)(c * 100 / (40 * MIB)));
    hm_manager_load(mgr, NULL, &avail); /* either may be NULL */
    hm_manager_load(mgr, &load, NULL);
    hm_manager_load(mgr, NULL, NULL);
    hm_free(p);
    tu_release(heap, mgr);
}

/* ==== 8. address space ======================================================================== */
static void test_needs_virtual_address_space(void **state) {
    (void)state;
    hm_config cfg;
    hm_config_init(&cfg); /* the default cache */
    cfg.limit = 256 * MIB;
    assert_true(cfg.segment_cache > 0);
    IHostMemoryManager *mm = new_manager_cfg(&cfg);
    /* nothing cached yet */
    assert_hr(IHostMemoryManager_NeedsVirtualAddressSpace(mm, NULL, 64 * KIB), E_OUTOFMEMORY);
    IHostMalloc *m = new_malloc(mm, 0);
    void *a = NULL, *b = NULL;
    assert_hr(IHostMalloc_Alloc(m, 2 * MIB, eTaskCritical, &a), S_OK);
    assert_hr(IHostMalloc_Alloc(m, 2 * MIB, eTaskCritical, &b), S_OK);
    assert_hr(IHostMalloc_Free(m, a), S_OK);
    assert_hr(IHostMalloc_Free(m, b), S_OK);
    /* two empty huge segments are cached: released now */
    assert_hr(IHostMemoryManager_NeedsVirtualAddressSpace(mm, (void *)(uintptr_t)0x700000000000ull,
                                                          4 * MIB),
              S_OK);
    assert_hr(IHostMemoryManager_NeedsVirtualAddressSpace(mm, NULL, 4 * MIB), E_OUTOFMEMORY);
    /* the instance still works */
    assert_hr(IHostMalloc_Alloc(m, 2 * MIB, eTaskCritical, &a), S_OK);
    memset(a, 1, 2 * MIB);
    assert_hr(IHostMalloc_Free(m, a), S_OK);
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mm);
}

static void test_trim_native(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(256 * MIB);
    cfg.segment_cache = 32 * MIB;
    cfg.purge_delay_ms = 1000;
    hm_manager *mgr = tu_manager(&cfg);
    hm_heap *heap = tu_heap(mgr, 0);
    void *a = hm_alloc(heap, 2 * MIB), *b = hm_alloc(heap, 3 * MIB);
    assert_non_null(a);
    assert_non_null(b);
    hm_free(a);
    hm_free(b);
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    assert_true(s.cached >= 8 * MIB);
    assert_true(s.committed >= 5 * MIB); /* cached segments stay committed within the delay */
    size_t released = hm_manager_trim(mgr);
    assert_int_equal(released, s.cached);
    hm_manager_stats(mgr, &s);
    assert_int_equal(s.cached, 0);
    assert_int_equal(s.committed, 0);
    assert_int_equal(hm_manager_trim(mgr), 0);
    tu_release(heap, mgr);
}

static void test_runtime_mapped_native(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(16 * MIB);
    hm_manager *mgr = tu_manager(&cfg);
    hm_manager_stats_t s;
    void *p = (void *)(uintptr_t)0x7f0000000000ull, *q = (void *)(uintptr_t)0x7f0010000000ull;
    hm_manager_note_acquired(mgr, p, MIB);
    hm_manager_stats(mgr, &s);
    assert_int_equal(s.runtime_mapped, MIB);
    hm_manager_note_acquired(mgr, q, 2 * MIB);
    hm_manager_stats(mgr, &s);
    assert_int_equal(s.runtime_mapped, 3 * MIB);
    hm_manager_note_released(mgr, (char *)q + 4096); /* not a start: ignored */
    hm_manager_stats(mgr, &s);
    assert_int_equal(s.runtime_mapped, 3 * MIB);
    hm_manager_note_released(mgr, p);
    hm_manager_stats(mgr, &s);
    assert_int_equal(s.runtime_mapped, 2 * MIB);
    hm_manager_note_released(mgr, p); /* twice: nothing more */
    hm_manager_stats(mgr, &s);
    assert_int_equal(s.runtime_mapped, 2 * MIB);
    hm_manager_note_released(mgr, q);
    hm_manager_stats(mgr, &s);
    assert_int_equal(s.runtime_mapped, 0);
    /* accounting only: the budget does not move */
    assert_int_equal(s.committed, 0);
    hm_manager_release(mgr);
}

/* In a child: a COM manager with print_stats reports what the COM calls did when it goes. */
static void com_stats_child(void *arg) {
    int what = *(int *)arg;
    hm_config cfg = tu_test_config(16 * MIB);
    cfg.print_stats = true;
    if (what == 1) cfg.fault_every[eTaskCritical] = 4;
    IHostMemoryManager *mm = NULL;
    if (hm_create_host_memory_manager(&cfg, &mm) != S_OK) _exit(10);
    if (what == 0) {
        void *p = (void *)(uintptr_t)0x7f0000000000ull, *q = (void *)(uintptr_t)0x7f0010000000ull;
        if (IHostMemoryManager_AcquiredVirtualAddressSpace(mm, p, MIB) != S_OK) _exit(11);
        if (IHostMemoryManager_AcquiredVirtualAddressSpace(mm, q, 2 * MIB) != S_OK) _exit(12);
        if (IHostMemoryManager_ReleasedVirtualAddressSpace(mm, p) != S_OK) _exit(13);
        if (IHostMemoryManager_ReleasedVirtualAddressSpace(mm, (void *)16) != S_OK) _exit(14);
    } else {
        IHostMalloc *m = NULL;
        if (IHostMemoryManager_CreateMalloc(mm, 0, &m) != S_OK) _exit(15);
        for (int i = 0; i < 20; i++) {
            void *p = NULL;
            if (IHostMalloc_Alloc(m, 32, eTaskCritical, &p) == S_OK) IHostMalloc_Free(m, p);
        }
        IHostMalloc_Release(m);
    }
    IHostMemoryManager_Release(mm);
}

static void test_address_space_callbacks(void **state) {
    (void)state;
    int what = 0;
    tu_child_result res;
    tu_expect_exit0(com_stats_child, &what, &res, "child");
    if (strstr(res.err, "hostmalloc manager") == NULL)
        fail_msg("no manager statistics printed: %s", res.err);
    if (strstr(res.err, "runtime-mapped 2.0 MiB") == NULL)
        fail_msg("expected runtime-mapped 2097152 (1 MiB + 2 MiB acquired, 1 MiB released): %s",
                 res.err);
}

/* ==== 9. fault injection ====================================================================== */
static void test_fault_every(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(64 * MIB);
    cfg.fault_every[eTaskCritical] = 3;
    IHostMemoryManager *mm = new_manager_cfg(&cfg);
    IHostMalloc *m = new_malloc(mm, MALLOC_THREADSAFE);
    for (int i = 1; i <= 30; i++) {
        void *p = GARBAGE;
        HRESULT hr = IHostMalloc_Alloc(m, 48, eTaskCritical, &p);
        if (i % 3 == 0) {
            if (hr != E_OUTOFMEMORY || p != NULL)
                fail_msg("task request %d: 0x%08x, %p; expected E_OUTOFMEMORY, NULL", i, HR(hr), p);
        } else {
            if (hr != S_OK || p == NULL)
                fail_msg("task request %d: 0x%08x, %p; expected S_OK", i, HR(hr), p);
            assert_hr(IHostMalloc_Free(m, p), S_OK);
        }
    }
    for (int i = 1; i <= 30; i++) {
        for (EMemoryCriticalLevel l = eAppDomainCritical; l <= eProcessCritical; l++) {
            void *p = NULL;
            HRESULT hr = IHostMalloc_Alloc(m, 48, l, &p);
            if (hr != S_OK) fail_msg("level %d request %d failed: 0x%08x", (int)l, i, HR(hr));
            assert_hr(IHostMalloc_Free(m, p), S_OK);
        }
    }
    /* DebugAlloc and VirtualAlloc share the task-critical count: 31, 32 ok, 33 fails */
    void *p = NULL, *q = NULL, *v = GARBAGE;
    assert_hr(IHostMalloc_DebugAlloc(m, 48, eTaskCritical, (char *)"x.c", 7, &p), S_OK);
    assert_hr(IHostMemoryManager_VirtualAlloc(mm, NULL, 4096, MEM_COMMIT | MEM_RESERVE,
                                              PAGE_READWRITE, eTaskCritical, &q),
              S_OK);
    assert_hr(IHostMalloc_DebugAlloc(m, 48, eTaskCritical, NULL, 0, &v), E_OUTOFMEMORY);
    assert_null(v);
    v = GARBAGE;
    assert_hr(IHostMalloc_Alloc(m, 48, eTaskCritical, &v), S_OK); /* 34 */
    assert_hr(IHostMalloc_Free(m, v), S_OK);
    v = NULL;
    assert_hr(IHostMalloc_Alloc(m, 48, eTaskCritical, &v), S_OK); /* 35 */
    assert_hr(IHostMalloc_Free(m, v), S_OK);
    v = GARBAGE;
    assert_hr(IHostMemoryManager_VirtualAlloc(mm, NULL, 4096, MEM_COMMIT | MEM_RESERVE,
                                              PAGE_READWRITE, eTaskCritical, &v),
              E_OUTOFMEMORY); /* 36 */
    assert_null(v);
    /* nothing was reserved by the failed VirtualAlloc: q is still the only region */
    assert_hr(IHostMalloc_Free(m, p), S_OK);
    assert_hr(IHostMemoryManager_VirtualFree(mm, q, 0, MEM_RELEASE), S_OK);
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mm);
}

/* The pattern of 1000 task-critical Allocs on a fresh manager: '1' for a failure. */
static void fault_pattern(uint64_t seed, double prob, char *out, size_t n) {
    hm_config cfg = tu_test_config(64 * MIB);
    cfg.fault_probability[eTaskCritical] = prob;
    cfg.fault_seed = seed;
    IHostMemoryManager *mm = new_manager_cfg(&cfg);
    IHostMalloc *m = new_malloc(mm, 0);
    for (size_t i = 0; i < n; i++) {
        void *p = GARBAGE;
        HRESULT hr = IHostMalloc_Alloc(m, 64, eTaskCritical, &p);
        if (hr == S_OK) {
            out[i] = '0';
            assert_non_null(p);
            assert_hr(IHostMalloc_Free(m, p), S_OK);
        } else {
            assert_hr(hr, E_OUTOFMEMORY);
            assert_null(p);
            out[i] = '1';
        }
    }
    out[n] = '\0';
    /* other levels are not affected */
    for (int i = 0; i < 100; i++) {
        void *p = NULL;
        assert_hr(IHostMalloc_Alloc(m, 64, eAppDomainCritical, &p), S_OK);
        assert_hr(IHostMalloc_Free(m, p), S_OK);
    }
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mm);
}

static void test_fault_probability_deterministic(void **state) {
    (void)state;
    static char a[1001], b[1001], c[1001];
    fault_pattern(42, 0.25, a, 1000);
    fault_pattern(42, 0.25, b, 1000);
    fault_pattern(43, 0.25, c, 1000);
    size_t fails = 0;
    for (size_t i = 0; i < 1000; i++)
        fails += a[i] == '1';
    if (fails < 180 || fails > 320) fail_msg("%zu of 1000 requests failed with p = 0.25", fails);
    if (strcmp(a, b) != 0) fail_msg("the same seed gave two different failure patterns");
    if (strcmp(a, c) == 0) fail_msg("seeds 42 and 43 gave the same failure pattern");
}

static void test_fault_stats_native(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(64 * MIB);
    cfg.fault_every[eAppDomainCritical] = 5;
    cfg.fault_probability[eProcessCritical] = 0.5;
    cfg.fault_seed = 7;
    hm_manager *mgr = tu_manager(&cfg);
    assert_true(hm_manager_faults_enabled(mgr));
    size_t got[3] = {0, 0, 0};
    for (int i = 0; i < 100; i++)
        for (int l = 0; l < 3; l++)
            got[l] += hm_manager_fault(mgr, (EMemoryCriticalLevel)l);
    assert_int_equal(got[0], 0);
    assert_int_equal(got[1], 20);
    assert_true(got[2] > 25 && got[2] < 75);
    assert_false(hm_manager_fault(mgr, (EMemoryCriticalLevel)3));
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    for (int l = 0; l < 3; l++) {
        if (s.faults_injected[l] != got[l] || s.failures[l] != got[l])
            fail_msg("level %d: %zu faults injected, stats say %zu injected and %zu failures", l,
                     got[l], s.faults_injected[l], s.failures[l]);
    }
    hm_manager_release(mgr);
    /* without fault configuration: never */
    hm_config plain = tu_test_config(64 * MIB);
    mgr = hm_manager_new(&plain);
    assert_false(hm_manager_faults_enabled(mgr));
    for (int i = 0; i < 50; i++)
        assert_false(hm_manager_fault(mgr, eTaskCritical));
    hm_manager_release(mgr);
}

static void test_fault_counted_com(void **state) {
    (void)state;
    int what = 1; /* 20 task Allocs with fault_every 4: 5 injected */
    tu_child_result res;
    tu_expect_exit0(com_stats_child, &what, &res, "child");
    if (strstr(res.err, "injected 5, 0, 0") == NULL)
        fail_msg("expected 5 injected task-critical faults in: %s", res.err);
    if (strstr(res.err, "failures:      task 5,") == NULL)
        fail_msg("expected 5 task-critical failures in: %s", res.err);
}

/* ==== 10. statistics ========================================================================== */
static void test_stats_counts(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(32 * MIB);
    cfg.reserve_appdomain = 4 * MIB;
    hm_manager *mgr = tu_manager(&cfg);
    hm_heap *heap = tu_heap(mgr, HM_HEAP_THREADSAFE);
    static blocks b;
    memset(&b, 0, sizeof b);
    const size_t sizes[] = {16, 200, 3000, 20000, 70000};
    for (int i = 0; i < 5; i++)
        blocks_push(&b, hm_alloc_level(heap, sizes[i], eTaskCritical), sizes[i]);
    for (int i = 0; i < 7; i++)
        blocks_push(&b, hm_alloc_level(heap, sizes[i % 5], eAppDomainCritical), 1);
    for (int i = 0; i < 9; i++)
        blocks_push(&b, hm_alloc(heap, sizes[i % 5]), 1);
    for (size_t i = 0; i < b.n; i++)
        assert_non_null(b.p[i]);
    hm_heap_stats_t hs;
    hm_heap_stats(heap, &hs);
    expect_level_counts("heap", hs.requests, hs.failures, (size_t[]){5, 7, 9}, (size_t[]){0, 0, 0});
    assert_int_equal(hs.live_blocks, 21);
    /* two task-critical failures: a request above the task ceiling, twice */
    assert_null(hm_alloc_level(heap, 30 * MIB, eTaskCritical));
    assert_null(hm_alloc_level(heap, 30 * MIB, eTaskCritical));
    void *p = hm_alloc_level(heap, 40 * MIB, eAppDomainCritical);
    assert_null(p); /* above the limit itself */
    hm_heap_stats(heap, &hs);
    const size_t want_req[3] = {7, 8, 9}, want_fail[3] = {2, 1, 0};
    expect_level_counts("heap", hs.requests, hs.failures, want_req, want_fail);
    hm_manager_stats_t ms;
    hm_manager_stats(mgr, &ms);
    expect_level_counts("manager", ms.requests, ms.failures, want_req, want_fail);
    assert_int_equal(ms.heaps, 1);
    assert_int_equal(ms.limit, 32 * MIB);
    assert_int_equal(ms.committed, hs.committed);
    assert_true(ms.committed > 0 && ms.committed <= ms.peak_committed);
    /* peak stays when memory goes */
    size_t peak = ms.peak_committed;
    p = hm_alloc(heap, 8 * MIB);
    assert_non_null(p);
    hm_manager_stats(mgr, &ms);
    assert_true(ms.peak_committed >= peak + 8 * MIB);
    peak = ms.peak_committed;
    hm_free(p);
    hm_manager_stats(mgr, &ms);
    assert_int_equal(ms.peak_committed, peak);
    assert_true(ms.committed + 8 * MIB <= peak);
    /* the requests of a released heap still count */
    free_all_native(&b);
    hm_heap_release(heap);
    hm_manager_stats(mgr, &ms);
    assert_int_equal(ms.heaps, 0);
    assert_int_equal(ms.requests[0], 7);
    assert_int_equal(ms.requests[2], 10);
    hm_manager_trim(mgr);
    hm_manager_stats(mgr, &ms);
    assert_int_equal(ms.committed, 0);
    hm_manager_release(mgr);
}

/* The counts stay exact across the fast paths' heartbeats (every HM_BEAT-th request of a level
 * leaves the fast path, which counts the requests downwards): thousands of fast-path requests
 * per level, and a released heap's counts in the manager's. */
static void test_stats_counts_many(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(64 * MIB);
    hm_manager *mgr = tu_manager(&cfg);
    hm_heap *heap = tu_heap(mgr, HM_HEAP_THREADSAFE);
    const size_t want[3] = {5000, 3333, 10007};
    for (int l = 0; l < 3; l++)
        for (size_t i = 0; i < want[l]; i++) {
            void *p = hm_alloc_level(heap, 16 + (i % 7) * 16, (EMemoryCriticalLevel)l);
            assert_non_null(p);
            hm_free(p);
        }
    hm_heap_stats_t hs;
    hm_heap_stats(heap, &hs);
    expect_level_counts("heap", hs.requests, hs.failures, want, (size_t[]){0, 0, 0});
    hm_heap_release(heap);
    hm_manager_stats_t ms;
    hm_manager_stats(mgr, &ms);
    expect_level_counts("released heap", ms.requests, ms.failures, want, (size_t[]){0, 0, 0});
    hm_manager_release(mgr);
}

static void test_stats_print(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(48 * MIB);
    hm_manager *mgr = tu_manager(&cfg);
    hm_heap *heap = hm_heap_new(mgr, 0);
    void *p = hm_alloc_level(heap, 100, eAppDomainCritical);
    assert_non_null(p);
    FILE *f = tmpfile();
    assert_non_null(f);
    hm_manager_stats_print(mgr, f);
    fflush(f);
    rewind(f);
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    if (strstr(buf, "hostmalloc manager") == NULL || strstr(buf, "50331648") == NULL ||
        strstr(buf, "appdomain 1") == NULL)
        fail_msg("unexpected manager statistics text: %s", buf);
    hm_free(p);
    tu_release(heap, mgr);
}

static void hm_stats_env_child(void *arg) {
    setenv("HM_STATS", (const char *)arg, 1);
    hm_config cfg;
    hm_config_init(&cfg);
    bool want = strcmp((const char *)arg, "1") == 0;
    if (cfg.print_stats != want) _exit(3);
    cfg.limit = 24 * MIB;
    hm_manager *mgr = hm_manager_new(&cfg);
    if (mgr == NULL) _exit(4);
    hm_heap *heap = hm_heap_new(mgr, 0);
    void *p = hm_alloc(heap, 1000);
    if (p == NULL) _exit(5);
    hm_free(p);
    tu_release(heap, mgr);
}

static void test_hm_stats_env(void **state) {
    (void)state;
    tu_child_result res;
    tu_expect_exit0(hm_stats_env_child, (void *)"1", &res, "HM_STATS=1 child");
    if (strstr(res.err, "hostmalloc manager") == NULL || strstr(res.err, "25165824") == NULL)
        fail_msg("HM_STATS=1: no manager statistics on stderr at release: '%s'", res.err);
    if (strstr(res.err, "hostmalloc heap") == NULL)
        fail_msg("HM_STATS=1: no heap statistics on stderr at heap release: '%s'", res.err);
    tu_expect_exit0(hm_stats_env_child, (void *)"0", &res, "HM_STATS=0 child");
    if (strstr(res.err, "hostmalloc manager") != NULL)
        fail_msg("HM_STATS=0 printed statistics: %s", res.err);
}

/* ==== 11. the environment ===================================================================== */
static const char *const k_env_names[] = {"HM_LIMIT",           "HM_RESERVE_APPDOMAIN",
                                          "HM_RESERVE_PROCESS", "HM_PROCESS_WAIT",
                                          "HM_LOW_PCT",         "HM_NEUTRAL_PCT",
                                          "HM_HIGH_PCT",        "HM_NOTIFY_INTERVAL",
                                          "HM_FAULT_EVERY",     "HM_FAULT_PROB",
                                          "HM_FAULT_SEED",      "HM_PURGE_DELAY",
                                          "HM_SEGMENT_CACHE",   "HM_STATS"};

static void env_child(void *arg) {
    int which = *(int *)arg;
    for (size_t i = 0; i < TU_ARRAY_SIZE(k_env_names); i++)
        unsetenv(k_env_names[i]);
    hm_config d;
    hm_config_init(&d);
    hm_config c;
    if (which == 0) {
        static const char *const valid[] = {"HM_LIMIT=512M",
                                            "HM_RESERVE_APPDOMAIN=16MiB",
                                            "HM_RESERVE_PROCESS=8192k",
                                            "HM_PROCESS_WAIT=250",
                                            "HM_LOW_PCT=85",
                                            "HM_NEUTRAL_PCT=70",
                                            "HM_HIGH_PCT=40",
                                            "HM_NOTIFY_INTERVAL=50",
                                            "HM_FAULT_EVERY=1,2,3",
                                            "HM_FAULT_PROB=0.5,0,0.25",
                                            "HM_FAULT_SEED=77",
                                            "HM_PURGE_DELAY=0",
                                            "HM_SEGMENT_CACHE=1G",
                                            "HM_STATS=1",
                                            NULL};
        tu_setenv_all(valid);
        hm_config_init(&c);
        if (c.limit != (size_t)512 << 20) _exit(20);
        if (c.reserve_appdomain != 16 * MIB) _exit(21);
        if (c.reserve_process != 8 * MIB) _exit(22);
        if (c.process_wait_ms != 250) _exit(23);
        if (c.low_pct != 85 || c.neutral_pct != 70 || c.high_pct != 40) _exit(24);
        if (c.notify_interval_ms != 50) _exit(25);
        if (c.fault_every[0] != 1 || c.fault_every[1] != 2 || c.fault_every[2] != 3) _exit(26);
        if (dabs(c.fault_probability[0] - 0.5) > 1e-9 || c.fault_probability[1] != 0 ||
            dabs(c.fault_probability[2] - 0.25) > 1e-9)
            _exit(27);
        if (c.fault_seed != 77) _exit(28);
        if (c.purge_delay_ms != 0) _exit(29);
        if (c.segment_cache != (size_t)1 << 30) _exit(30);
        if (!c.print_stats) _exit(31);
        /* single values apply to every level */
        setenv("HM_FAULT_EVERY", "9", 1);
        setenv("HM_FAULT_PROB", "0.125", 1);
        hm_config_init(&c);
        for (int l = 0; l < 3; l++)
            if (c.fault_every[l] != 9 || dabs(c.fault_probability[l] - 0.125) > 1e-9) _exit(32);
        /* a manager follows the environment when given no config */
        setenv("HM_LIMIT", "3G", 1);
        hm_manager *mgr = hm_manager_new(NULL);
        if (mgr == NULL || hm_manager_limit(mgr) != (size_t)3 << 30) _exit(33);
        hm_manager_release(mgr);
    } else if (which == 1) {
        static const char *const malformed[] = {
            "HM_LIMIT=12Q",        "HM_RESERVE_PROCESS=",
            "HM_PROCESS_WAIT=abc", "HM_FAULT_EVERY=1,2",
            "HM_FAULT_PROB=1.5",   "HM_FAULT_SEED=99999999999999999999999",
            "HM_SEGMENT_CACHE=-5", NULL};
        tu_setenv_all(malformed);
        hm_config_init(&c);
        if (c.limit != d.limit) _exit(40);
        if (c.reserve_process != d.reserve_process) _exit(41);
        if (c.process_wait_ms != d.process_wait_ms) _exit(42);
        for (int l = 0; l < 3; l++)
            if (c.fault_every[l] != 0 || c.fault_probability[l] != 0) _exit(43);
        if (c.fault_seed != d.fault_seed) _exit(44);
        if (c.segment_cache != d.segment_cache) _exit(45);
    } else {
        /* out of range, by wrapping around 2^64 (2^64 + 1) or just above 32 bits */
        static const char *const wrapping[] = {"HM_FAULT_EVERY=18446744073709551617",
                                               "HM_NOTIFY_INTERVAL=18446744073709551617",
                                               "HM_LIMIT=18446744073709551617", NULL};
        tu_setenv_all(wrapping);
        hm_config_init(&c);
        for (int l = 0; l < 3; l++)
            if (c.fault_every[l] != 0) _exit(50);
        if (c.notify_interval_ms != d.notify_interval_ms) _exit(51);
        if (c.limit != d.limit) _exit(52);
        setenv("HM_FAULT_EVERY", "4294967296", 1);
        unsetenv("HM_NOTIFY_INTERVAL");
        unsetenv("HM_LIMIT");
        hm_config_init(&c);
        for (int l = 0; l < 3; l++)
            if (c.fault_every[l] != 0) _exit(53);
    }
}

/* env_child(which) in a child that must exit 0 (its exit code names the field it found wrong) */
static void run_env_child(int which, tu_child_result *res) {
    assert_int_equal(tu_run_child(env_child, &which, res), 0);
    if (WIFEXITED(res->status) && WEXITSTATUS(res->status) == 50)
        fail_msg("HM_FAULT_EVERY=18446744073709551617 (2^64 + 1) was accepted as fault_every = 1 "
                 "(the digits wrap around) instead of being ignored as malformed");
    tu_assert_child_exited0(res, "child (exit codes name the field: see env_child)");
}

static void test_env_config(void **state) {
    (void)state;
    tu_child_result res;
    run_env_child(0, &res);
    if (strstr(res.err, "malformed") != NULL) fail_msg("valid values reported: %s", res.err);
}

static void test_env_malformed(void **state) {
    (void)state;
    tu_child_result res;
    run_env_child(1, &res);
    static const char *const want[] = {"HM_LIMIT=12Q",       "HM_PROCESS_WAIT=abc",
                                       "HM_FAULT_EVERY=1,2", "HM_FAULT_PROB=1.5",
                                       "HM_FAULT_SEED=9999", "HM_SEGMENT_CACHE=-5"};
    for (size_t i = 0; i < TU_ARRAY_SIZE(want); i++)
        if (strstr(res.err, want[i]) == NULL)
            fail_msg("no message about %s on stderr: '%s'", want[i], res.err);
}

static void test_env_out_of_range(void **state) {
    (void)state;
    tu_child_result res;
    run_env_child(2, &res);
    if (strstr(res.err, "HM_FAULT_EVERY=4294967296") == NULL)
        fail_msg("no message about HM_FAULT_EVERY=4294967296: '%s'", res.err);
}

TU_TEST_MAIN(test_race_to_limit, test_race_to_limit_rss, test_level_ceilings,
             test_com_alloc_failure, test_process_wait_succeeds, test_process_wait_times_out,
             test_notify_callback_refcount, test_notify_thresholds_hysteresis,
             test_notify_rate_limited, test_notify_low_on_failure,
             test_set_notify_waits_for_running_call, test_notify_com_reentrant,
             test_get_memory_load, test_manager_load_native, test_needs_virtual_address_space,
             test_trim_native, test_runtime_mapped_native, test_address_space_callbacks,
             test_fault_every, test_fault_probability_deterministic, test_fault_stats_native,
             test_fault_counted_com, test_stats_counts, test_stats_counts_many, test_stats_print,
             test_hm_stats_env, test_env_config, test_env_malformed, test_env_out_of_range)
