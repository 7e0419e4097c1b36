/* SPDX-License-Identifier: MIT */
/* test_runtimes_api.c: the native API that the runtime adapters (runtimes/) and every host of
 * several runtimes need: the heap of an IHostMalloc instance and its manager, a resize with a
 * criticality level (reserves, fault injection, a shrink that never fails), a non-aborting
 * ownership test, one shared manager per process, listeners for pressure notifications, and
 * a change to Low that is never held back by the notify interval. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include <hostmalloc/hostmalloc.h>

#include "test_util.h"

#define MIB TU_MIB

/* ---- the heap of an instance ---------------------------------------------------------------- */
static void test_malloc_heap(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(64 * MIB);
    IHostMemoryManager *mm;
    assert_hr(hm_create_host_memory_manager(&cfg, &mm), S_OK);
    IHostMalloc *a, *b;
    assert_hr(IHostMemoryManager_CreateMalloc(mm, MALLOC_THREADSAFE, &a), S_OK);
    assert_hr(IHostMemoryManager_CreateMalloc(mm, 0, &b), S_OK);
    hm_heap *ha = hm_malloc_heap(a), *hb = hm_malloc_heap(b);
    assert_non_null(ha);
    assert_non_null(hb);
    assert_ptr_not_equal(ha, hb);
    /* both count against the one manager of `mm` */
    assert_non_null(hm_heap_manager(ha));
    assert_ptr_equal(hm_heap_manager(ha), hm_heap_manager(hb));
    assert_int_equal(hm_manager_limit(hm_heap_manager(ha)), 64 * MIB);
    /* a block of the instance is a block of its heap */
    void *p;
    assert_hr(IHostMalloc_Alloc(a, 100, eTaskCritical, &p), S_OK);
    assert_int_equal(hm_heap_block(ha, p, NULL), HM_OK);
    assert_int_equal(hm_heap_block(hb, p, NULL), HM_ERR_OTHER_HEAP);
    assert_ptr_equal(hm_heap_of(p), ha);
    assert_hr(IHostMalloc_Free(a, p), S_OK);
    /* not an instance of ours: NULL, and the object is not used */
    assert_null(hm_malloc_heap(tu_foreign_malloc()));
    assert_null(hm_malloc_heap(NULL));
    assert_null(hm_heap_manager(NULL));
    hm_heap *own = hm_heap_new(hm_heap_manager(ha), 0);
    assert_ptr_equal(hm_heap_manager(own), hm_heap_manager(ha));
    hm_heap_release(own);
    IHostMalloc_Release(a);
    IHostMalloc_Release(b);
    IHostMemoryManager_Release(mm);
}

/* Instances of a manager with fault injection or checked mode have other entry points: they
 * are recognised too. */
static void test_malloc_heap_faulty_and_checked(void **state) {
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        hm_config cfg = tu_test_config(64 * MIB);
        if (mode == 0)
            cfg.fault_every[eTaskCritical] = 1000;
        else
            cfg.checked = true;
        IHostMemoryManager *mm;
        assert_hr(hm_create_host_memory_manager(&cfg, &mm), S_OK);
        IHostMalloc *m;
        assert_hr(IHostMemoryManager_CreateMalloc(mm, MALLOC_THREADSAFE, &m), S_OK);
        hm_heap *h = hm_malloc_heap(m);
        assert_non_null(h);
        void *p;
        assert_hr(IHostMalloc_Alloc(m, 40, eProcessCritical, &p), S_OK);
        size_t usable = 0;
        assert_int_equal(hm_heap_block(h, p, &usable), HM_OK);
        assert_true(usable >= 40);
        if (mode == 1) assert_int_equal(usable, 40); /* checked: exactly what was asked */
        assert_hr(IHostMalloc_Free(m, p), S_OK);
        IHostMalloc_Release(m);
        IHostMemoryManager_Release(mm);
    }
}

/* ---- the ownership test ------------------------------------------------------------------- */
static void test_heap_block(void **state) {
    (void)state;
    hm_heap *h = tu_heap(NULL, 0), *other = hm_heap_new(NULL, 0);
    assert_non_null(other);
    size_t sizes[] = {1, 24, 1000, 70000, 5 * MIB};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        char *p = hm_alloc(h, sizes[i]);
        assert_non_null(p);
        size_t usable = 0;
        assert_int_equal(hm_heap_block(h, p, &usable), HM_OK);
        assert_int_equal(usable, hm_usable_size(p));
        assert_true(usable >= sizes[i]);
        assert_int_equal(hm_heap_block(other, p, &usable), HM_ERR_OTHER_HEAP);
        if (sizes[i] >= 24) assert_int_equal(hm_heap_block(h, p + 16, NULL), HM_ERR_NOT_BLOCK);
        hm_free(p);
    }
    int on_stack;
    void *foreign = malloc(64); /* the C library's heap */
    assert_non_null(foreign);
    assert_int_equal(hm_heap_block(h, foreign, NULL), HM_ERR_NOT_OWNED);
    assert_int_equal(hm_heap_block(h, &on_stack, NULL), HM_ERR_NOT_OWNED);
    assert_int_equal(hm_heap_block(h, tu_unmapped_address(), NULL), HM_ERR_NOT_OWNED);
    assert_int_equal(hm_heap_block(h, NULL, NULL), HM_ERR_NOT_OWNED);
    free(foreign);
    hm_heap_release(h);
    hm_heap_release(other);
}

/* ---- resize with a level ------------------------------------------------------------------ */
static void fill(char *p, size_t n, char c) {
    memset(p, c, n);
}
static void check_fill(const char *p, size_t n, char c) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != c) fail_msg("byte %zu is 0x%02x, expected 0x%02x", i, p[i] & 0xff, c & 0xff);
}

static void test_realloc_level_reserves(void **state) {
    (void)state;
    /* ceilings: task 32 MiB, AppDomain 48 MiB, process 64 MiB */
    hm_config cfg = tu_test_config(64 * MIB);
    cfg.reserve_appdomain = 16 * MIB;
    cfg.reserve_process = 16 * MIB;
    hm_manager *mgr = tu_manager(&cfg);
    hm_heap *h = hm_heap_new(mgr, 0);
    char *p = hm_realloc_level(h, NULL, 1000, eTaskCritical);
    assert_non_null(p);
    fill(p, 1000, 'a');
    /* 40 MiB is above the task ceiling: refused, p untouched */
    errno = 0;
    assert_null(hm_realloc_level(h, p, 40 * MIB, eTaskCritical));
    assert_int_equal(errno, ENOMEM);
    check_fill(p, 1000, 'a');
    assert_int_equal(hm_heap_block(h, p, NULL), HM_OK);
    /* AppDomain-critical may take it */
    char *q = hm_realloc_level(h, p, 40 * MIB, eAppDomainCritical);
    assert_non_null(q);
    check_fill(q, 1000, 'a');
    /* another block to 20 MiB (60 MiB in all): only process-critical */
    char *p2 = hm_realloc_level(h, NULL, 100, eAppDomainCritical);
    assert_non_null(p2);
    fill(p2, 100, 'c');
    assert_null(hm_realloc_level(h, p2, 20 * MIB, eAppDomainCritical));
    check_fill(p2, 100, 'c');
    char *r = hm_realloc_level(h, p2, 20 * MIB, eProcessCritical);
    assert_non_null(r);
    check_fill(r, 100, 'c');
    hm_heap_stats_t hs;
    hm_heap_stats(h, &hs);
    assert_int_equal(hs.failures[eTaskCritical], 1);
    assert_int_equal(hs.failures[eAppDomainCritical], 1);
    assert_int_equal(hs.failures[eProcessCritical], 0);
    assert_true(hs.requests[eTaskCritical] >= 2);
    /* size 0 frees */
    assert_null(hm_realloc_level(h, r, 0, eTaskCritical));
    assert_null(hm_realloc_level(h, q, 0, eProcessCritical));
    hm_heap_stats(h, &hs);
    assert_int_equal(hs.live_blocks, 0);
    tu_release(h, mgr);
}

static void test_realloc_level_faults(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(256 * MIB);
    cfg.fault_every[eTaskCritical] = 2; /* every second task-critical request fails */
    cfg.fault_every[eAppDomainCritical] = 0;
    cfg.fault_every[eProcessCritical] = 3;
    hm_manager *mgr = hm_manager_new(&cfg);
    hm_heap *h = hm_heap_new(mgr, 0);
    /* growth of a block in steps that each need a new block */
    for (int level = 0; level < 3; level++) {
        char *p = hm_realloc_level(h, NULL, 16, (EMemoryCriticalLevel)level);
        int failed = 0, tries = 12;
        if (p == NULL) failed++;
        for (int i = 0; i < tries - 1; i++) {
            if (p == NULL) {
                p = hm_realloc_level(h, NULL, 16, (EMemoryCriticalLevel)level);
                if (p == NULL) failed++;
                continue;
            }
            size_t now = hm_usable_size(p);
            fill(p, now, 'x');
            char *q = hm_realloc_level(h, p, now * 2 + 1, (EMemoryCriticalLevel)level);
            if (q == NULL) {
                failed++;
                check_fill(p, now, 'x'); /* untouched */
            } else {
                check_fill(q, now, 'x');
                p = q;
            }
        }
        int want = level == eTaskCritical ? tries / 2 : level == eProcessCritical ? tries / 3 : 0;
        if (failed != want)
            fail_msg("level %d: %d of %d requests failed, expected %d", level, failed, tries, want);
        /* a shrink never asks fault injection */
        for (int i = 0; i < 6; i++) {
            size_t now = hm_usable_size(p);
            char *q = hm_realloc_level(h, p, now / 4 + 1, (EMemoryCriticalLevel)level);
            assert_non_null(q);
            p = q;
        }
        hm_free(p);
    }
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    assert_int_equal(s.faults_injected[eTaskCritical], 6);
    assert_int_equal(s.faults_injected[eAppDomainCritical], 0);
    assert_int_equal(s.faults_injected[eProcessCritical], 4);
    tu_release(h, mgr);
}

/* Fill the budget until even the smallest new page cannot be had. */
static void exhaust(hm_heap *h, void ***keep, size_t *n) {
    static const size_t sizes[] = {MIB, 64 * 1024, 4096, 256, 16};
    size_t cap = 1 << 16;
    *keep = malloc(cap * sizeof(void *));
    *n = 0;
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        void *p;
        while (*n < cap && (p = hm_alloc(h, sizes[i])) != NULL)
            (*keep)[(*n)++] = p;
    }
}

static void test_realloc_level_shrink_never_fails(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(16 * MIB);
    hm_manager *mgr = hm_manager_new(&cfg);
    hm_heap *h = hm_heap_new(mgr, 0);
    char *big = hm_alloc(h, MIB);
    assert_non_null(big);
    fill(big, 3000, 'b');
    void **keep;
    size_t n;
    exhaust(h, &keep, &n);
    /* a block of 3000 bytes needs a page of a class no block was taken from: none can be had */
    assert_null(hm_alloc_level(h, 3000, eProcessCritical));
    char *s = hm_realloc_level(h, big, 3000, eTaskCritical);
    assert_ptr_equal(s, big); /* kept where it was */
    check_fill(s, 3000, 'b');
    /* growth is refused as usual, the block untouched */
    assert_null(hm_realloc_level(h, s, 4 * MIB, eProcessCritical));
    check_fill(s, 3000, 'b');
    for (size_t i = 0; i < n; i++)
        hm_free(keep[i]);
    free(keep);
    hm_free(s);
    tu_release(h, mgr);
}

/* ---- one manager for the process ----------------------------------------------------------- */
static void test_shared_manager(void **state) {
    (void)state;
    assert_hr(hm_shared_host_memory_manager(NULL, NULL), E_POINTER);
    hm_config cfg = tu_test_config(48 * MIB);
    IHostMemoryManager *a, *b, *c;
    assert_hr(hm_shared_host_memory_manager(&cfg, &a), S_OK);
    hm_config other = tu_test_config(8 * MIB);
    assert_hr(hm_shared_host_memory_manager(&other, &b), S_FALSE); /* config ignored */
    assert_ptr_equal(a, b);
    IHostMalloc *ma, *mb;
    assert_hr(IHostMemoryManager_CreateMalloc(a, 0, &ma), S_OK);
    assert_hr(IHostMemoryManager_CreateMalloc(b, 0, &mb), S_OK);
    hm_manager *mgr = hm_heap_manager(hm_malloc_heap(ma));
    assert_ptr_equal(mgr, hm_heap_manager(hm_malloc_heap(mb)));
    assert_int_equal(hm_manager_limit(mgr), 48 * MIB);
    /* one budget: what one tenant holds, the other cannot have */
    void *p;
    assert_hr(IHostMalloc_Alloc(ma, 40 * MIB, eTaskCritical, &p), S_OK);
    void *q;
    assert_hr(IHostMalloc_Alloc(mb, 40 * MIB, eTaskCritical, &q), E_OUTOFMEMORY);
    assert_hr(IHostMalloc_Free(ma, p), S_OK);
    assert_hr(IHostMalloc_Alloc(mb, 40 * MIB, eTaskCritical, &q), S_OK);
    assert_hr(IHostMalloc_Free(mb, q), S_OK);
    IHostMalloc_Release(ma);
    IHostMalloc_Release(mb);
    /* every caller's reference gone: the manager stays for the next runtime */
    IHostMemoryManager_Release(a);
    IHostMemoryManager_Release(b);
    assert_hr(hm_shared_host_memory_manager(NULL, &c), S_FALSE);
    assert_ptr_equal(c, a);
    DWORD load;
    SIZE_T avail;
    assert_hr(IHostMemoryManager_GetMemoryLoad(c, &load, &avail), S_OK);
    IHostMemoryManager_Release(c);
}

/* ---- listeners and Low ----------------------------------------------------------------------- */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int levels[64];
    int n;
} rec;

static void rec_init(rec *r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
}

static void rec_fn(void *arg, EMemoryAvailable level) {
    rec *r = arg;
    pthread_mutex_lock(&r->lock);
    if (r->n < 64) r->levels[r->n++] = level;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* Wait up to `ms` for a notification of `level`; true when one came. */
static bool rec_wait_level(rec *r, int level, unsigned ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    bool found = false;
    for (;;) {
        for (int i = 0; i < r->n; i++)
            if (r->levels[i] == level) found = true;
        if (found || pthread_cond_timedwait(&r->cond, &r->lock, &ts) != 0) break;
    }
    for (int i = 0; i < r->n; i++)
        if (r->levels[i] == level) found = true;
    pthread_mutex_unlock(&r->lock);
    return found;
}

static int rec_count_level(rec *r, int level) {
    pthread_mutex_lock(&r->lock);
    int c = 0;
    for (int i = 0; i < r->n; i++)
        c += r->levels[i] == level;
    pthread_mutex_unlock(&r->lock);
    return c;
}

static void test_listeners(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(32 * MIB);
    hm_manager *mgr = hm_manager_new(&cfg);
    hm_heap *h = hm_heap_new(mgr, 0);
    static rec main_r, r1, r2;
    rec_init(&main_r);
    rec_init(&r1);
    rec_init(&r2);
    assert_true(hm_manager_set_notify(mgr, rec_fn, &main_r));
    assert_true(hm_manager_add_listener(mgr, rec_fn, &r1));
    assert_true(hm_manager_add_listener(mgr, rec_fn, &r2));
    assert_false(hm_manager_add_listener(mgr, rec_fn, &r2)); /* already there */
    assert_false(hm_manager_add_listener(mgr, NULL, &r2));
    void *big = hm_alloc_level(h, 30 * MIB, eTaskCritical);
    assert_non_null(big);
    assert_true(rec_wait_level(&main_r, eMemoryAvailableLow, 5000));
    assert_true(rec_wait_level(&r1, eMemoryAvailableLow, 5000));
    assert_true(rec_wait_level(&r2, eMemoryAvailableLow, 5000));
    /* r2 leaves; a newcomer hears the current state (Low) at once */
    assert_true(hm_manager_remove_listener(mgr, rec_fn, &r2));
    assert_false(hm_manager_remove_listener(mgr, rec_fn, &r2));
    static rec r3;
    rec_init(&r3);
    assert_true(hm_manager_add_listener(mgr, rec_fn, &r3));
    assert_true(rec_wait_level(&r3, eMemoryAvailableLow, 5000));
    hm_free(big);
    assert_true(rec_wait_level(&r1, eMemoryAvailableHigh, 5000));
    assert_true(rec_wait_level(&r3, eMemoryAvailableHigh, 5000));
    assert_true(hm_manager_remove_listener(mgr, rec_fn, &r1));
    assert_true(hm_manager_remove_listener(mgr, rec_fn, &r3));
    assert_true(hm_manager_set_notify(mgr, NULL, NULL));
    assert_int_equal(rec_count_level(&r2, eMemoryAvailableHigh), 0); /* gone before */
    /* the table holds HM_MAX_LISTENERS */
    static rec many[HM_MAX_LISTENERS + 1];
    for (int i = 0; i < HM_MAX_LISTENERS; i++) {
        rec_init(&many[i]);
        assert_true(hm_manager_add_listener(mgr, rec_fn, &many[i]));
    }
    assert_false(hm_manager_add_listener(mgr, rec_fn, &many[HM_MAX_LISTENERS]));
    for (int i = 0; i < HM_MAX_LISTENERS; i++)
        assert_true(hm_manager_remove_listener(mgr, rec_fn, &many[i]));
    tu_release(h, mgr); /* listeners left behind would be no harm either */
}

/* A listener alone (no set_notify function) starts the notifier and hears refusals too. */
static void test_listener_alone_hears_refusal(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(64 * MIB);
    cfg.reserve_appdomain = 48 * MIB; /* task-critical ceiling 16 MiB: far below low_pct */
    hm_manager *mgr = hm_manager_new(&cfg);
    hm_heap *h = hm_heap_new(mgr, 0);
    static rec r;
    rec_init(&r);
    assert_true(hm_manager_add_listener(mgr, rec_fn, &r));
    void *p = hm_alloc_level(h, 20 * MIB, eTaskCritical);
    assert_null(p);
    assert_true(rec_wait_level(&r, eMemoryAvailableLow, 5000));
    assert_true(hm_manager_remove_listener(mgr, rec_fn, &r));
    tu_release(h, mgr);
}

/* Neutral then Low in quick succession, with an interval far longer than the test's wait:
 * the Low must not wait for the interval (it used to, so Low came only at the refusal). */
static void test_low_not_held_back(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(100 * MIB);
    cfg.notify_interval_ms = 60 * 1000;
    hm_manager *mgr = hm_manager_new(&cfg);
    hm_heap *h = hm_heap_new(mgr, 0);
    static rec r;
    rec_init(&r);
    assert_true(hm_manager_set_notify(mgr, rec_fn, &r));
    void *a = hm_alloc_level(h, 85 * MIB, eTaskCritical); /* Neutral */
    assert_non_null(a);
    assert_true(rec_wait_level(&r, eMemoryAvailableNeutral, 10000));
    void *b = hm_alloc_level(h, 6 * MIB, eTaskCritical); /* Low, within the interval */
    assert_non_null(b);
    if (!rec_wait_level(&r, eMemoryAvailableLow, 20000))
        fail_msg("Low waited behind the 60 s notify interval");
    /* the other states still respect the interval: going back to High says nothing yet */
    hm_free(b);
    hm_free(a);
    tu_sleep_ms(100);
    assert_int_equal(rec_count_level(&r, eMemoryAvailableHigh), 0);
    assert_true(hm_manager_set_notify(mgr, NULL, NULL));
    tu_release(h, mgr);
}

TU_TEST_MAIN(test_malloc_heap, test_malloc_heap_faulty_and_checked, test_heap_block,
             test_realloc_level_reserves, test_realloc_level_faults,
             test_realloc_level_shrink_never_fails, test_shared_manager, test_listeners,
             test_listener_alone_hears_refusal, test_low_not_held_back)
