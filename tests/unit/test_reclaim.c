/* SPDX-License-Identifier: MIT */
/* test_reclaim.c: the heap layer's reclaim loop (mem/heap.c, with_reclaim), on an arena with a
 * small limit (8 MiB: two standard segments). Below the heap layer a refusal of the budget is
 * only an answer (NULL, th->refused); the loop then reclaims and retries: this thread's empty
 * pages, the sub-heaps of exited threads, the cache; then it says memory is short (the state
 * Low, the shortage counted); then a process-critical request waits a bounded time for memory
 * to come back. _hm_arena_commit (bytes of no heap) goes through the same loop.
 *
 * Each test sets up the one situation where only the step it tests can help, and asserts the
 * outcome (a block or NULL) and the budget's counts (committed, refusals, shortages). Where a
 * thread has to give memory back while another waits, it does so after it saw the shortage
 * counted, so the order is fixed without any sleep; the only time bound asserted is a generous
 * one on a request that must not wait. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "unit_env.h"

#define LIMIT       (8 * MIB)
#define SMALL_PAGE  ((size_t)1 << HM_SMALL_PAGE_SHIFT)
#define MEDIUM_PAGE ((size_t)1 << HM_MEDIUM_PAGE_SHIFT)
#define MAXBLOCKS   2048

static const size_t BIN_A_SIZE = HM_SMALL_MAX;  /* 8 KiB blocks on 64 KiB pages */
static const size_t BIN_B_SIZE = HM_MEDIUM_MAX; /* 64 KiB blocks on 128 KiB pages */

static size_t failures(unit_env_t *env, int level) {
    return atomic_load(&env->arena.budget.failures[level]);
}

static uint32_t shortages(unit_env_t *env) {
    return atomic_load(&env->arena.budget.shortages);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Allocate blocks of `bin` at task-critical until the loop gives up: never a byte counted over
 * the limit. Returns the number of blocks (in `p`). */
static size_t fill(unit_env_t *env, size_t bin, void **p) {
    size_t n = 0;
    for (;;) {
        assert_true(n < MAXBLOCKS);
        p[n] = _hm_theap_alloc_block(env->th, bin, eTaskCritical);
        assert_true(unit_committed(env) <= LIMIT);
        if (p[n] == NULL) break;
        n++;
    }
    return n;
}

/* Blocks the small segments of `th` hold when every page is carved and handed out. */
static size_t blocks_in_segments(const hm_theap_t *th) {
    size_t n = 0;
    for (const hm_segment_t *s = th->segs[HM_SEG_SMALL]; s != NULL; s = s->next)
        for (size_t i = 0; i < s->page_count; i++)
            n += s->pages[i].reserved;
    return n;
}

/* ---- refusal ------------------------------------------------------------------------------------
 */
static void test_fill_until_refused(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 60000, 0);
    static void *p[MAXBLOCKS];
    uint32_t epoch = atomic_load(&env.arena.collect_epoch);
    uint32_t changed = _hm_event_seq(&env.arena.budget.changed);
    size_t n = fill(&env, _hm_bin_of(BIN_A_SIZE), p);
    /* two segments of 64 pages of 64 KiB: the limit, to the byte, every block handed out */
    assert_int_equal(unit_committed(&env), LIMIT);
    assert_int_equal(unit_segments(th, HM_SEG_SMALL), 2);
    assert_int_equal(n, blocks_in_segments(th));
    /* the refusal: counted, memory said to be short, every thread asked to collect */
    assert_int_equal(failures(&env, eTaskCritical), 1);
    assert_int_equal(shortages(&env), 1);
    assert_int_equal(_hm_budget_pressure(&env.arena.budget), eMemoryAvailableLow);
    assert_int_not_equal(_hm_event_seq(&env.arena.budget.changed), changed);
    assert_int_not_equal(atomic_load(&env.arena.collect_epoch), epoch);
    assert_true(_hm_budget_valid(&env.arena.budget));
    assert_true(_hm_theap_valid(th));

    /* every level is refused now (no reserves, no wait): nothing changes but the counts */
    assert_null(_hm_theap_alloc_block(th, _hm_bin_of(BIN_A_SIZE), eTaskCritical));
    assert_null(_hm_theap_alloc_block(th, _hm_bin_of(BIN_B_SIZE), eAppDomainCritical));
    assert_null(_hm_theap_alloc_block(th, _hm_bin_of(16), eProcessCritical));
    assert_null(_hm_theap_alloc_huge(th, 5 * MIB, HM_ALIGN, eProcessCritical));
    assert_int_equal(failures(&env, eTaskCritical), 2);
    assert_int_equal(failures(&env, eAppDomainCritical), 1);
    assert_int_equal(failures(&env, eProcessCritical), 2);
    assert_int_equal(shortages(&env), 5);
    assert_int_equal(unit_committed(&env), LIMIT);
    assert_true(_hm_budget_valid(&env.arena.budget));
    assert_true(_hm_theap_valid(th));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(unit_free(p[i]), HM_OK);
    unit_close(&env);
}

/* ---- step 1: what is empty ----------------------------------------------------------------------
 */
/* The budget is full of this thread's pages, emptied by another thread's frees that nobody
 * collected yet: a request of another class is refused at first, and the loop's collection of
 * this thread's pages makes room for it. */
static void test_own_empty_pages(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 60000, 0);
    static void *p[MAXBLOCKS];
    size_t bin = _hm_bin_of(BIN_A_SIZE);
    size_t n = fill(&env, bin, p);
    assert_int_equal(failures(&env, eTaskCritical), 1);
    /* One request more after the refusal: it takes up the arena's collect epoch (which the
     * refusal moved) with nothing empty to collect yet, so that the request below finds
     * nothing to do before its first try. It is not the 64th of the sub-heap's slow calls
     * either (its periodic maintenance would retire empty pages first). */
    do {
        assert_int_equal(unit_free(p[0]), HM_OK);
        p[0] = _hm_theap_alloc_block(th, bin, eTaskCritical);
        assert_non_null(p[0]);
    } while (((th->slow_calls + 1) & 63) == 0);
    assert_int_equal(th->collect_epoch, atomic_load(&env.arena.collect_epoch));
    assert_int_equal(unit_committed(&env), LIMIT);

    unit_free_remote(p, n); /* every page empty, but only on the lists of other threads' frees */
    assert_int_equal(unit_committed(&env), LIMIT);

    void *q = _hm_theap_alloc_block(th, _hm_bin_of(BIN_B_SIZE), eTaskCritical);
    assert_non_null(q);
    /* the loop's first step did it: no new refusal, no new shortage */
    assert_int_equal(failures(&env, eTaskCritical), 1);
    assert_int_equal(shortages(&env), 1);
    /* this thread's pages were all retired and given back; the segments went with them */
    assert_int_equal(unit_segments(th, HM_SEG_SMALL), 0);
    assert_int_equal(unit_committed(&env), MEDIUM_PAGE);
    assert_true(_hm_theap_valid(th));
    assert_true(_hm_budget_valid(&env.arena.budget));
    assert_int_equal(unit_free(q), HM_OK);
    unit_close(&env);
}

/* A thread allocates most of the budget, frees almost all of it and exits: its sub-heap is
 * abandoned with its empty pages still committed. Another thread's requests beyond what is left
 * get them back through the loop. */
typedef struct {
    hm_heap *heap;
    size_t n;
    void *keep[2]; /* one live block in each of its segments */
    size_t committed_after;
} leaver_t;

static void *leaver_main(void *arg) {
    leaver_t *lv = arg;
    hm_theap_t *th = _hm_theap_get(lv->heap);
    if (th == NULL) abort();
    static void *p[MAXBLOCKS];
    size_t bin = _hm_bin_of(BIN_A_SIZE);
    hm_segment_t *first = NULL;
    for (lv->n = 0; lv->n < 768; lv->n++) { /* 6 MiB of 8 KiB blocks: two segments */
        p[lv->n] = _hm_theap_alloc_block(th, bin, eTaskCritical);
        if (p[lv->n] == NULL) abort();
    }
    first = _hm_segment_of(p[0]);
    for (size_t i = 0; i < lv->n; i++) {
        hm_segment_t *s = _hm_segment_of(p[i]);
        if (s == first && lv->keep[0] == NULL) {
            lv->keep[0] = p[i];
        } else if (s != first && lv->keep[1] == NULL) {
            lv->keep[1] = p[i];
        } else if (unit_free(p[i]) != HM_OK) {
            abort();
        }
    }
    return NULL; /* the thread's exit abandons its sub-heap */
}

static void test_abandoned_sub_heaps(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th =
        unit_open(&env, LIMIT, 60000, 0); /* this thread's sub-heap is made: none to adopt later */
    leaver_t lv = {env.heap, 0, {NULL, NULL}, 0};
    tu_run_thread(leaver_main, &lv);
    assert_non_null(lv.keep[0]);
    assert_non_null(lv.keep[1]);
    /* the leaver's sub-heap: abandoned, its empty pages retired but still committed */
    hm_theap_t *gone = NULL;
    for (hm_theap_t *x = env.heap->theaps; x != NULL; x = x->next)
        if (x != th) gone = x;
    assert_non_null(gone);
    assert_true(gone->abandoned);
    assert_true(gone->free_committed_pages > 0);
    size_t held = unit_committed(&env);
    assert_true(held > LIMIT / 2);
    assert_int_equal(_hm_segment_of(lv.keep[0])->used_pages, 1);

    /* 4 MiB more than what is left: only the leaver's empty pages make it fit */
    assert_true(held + 4 * MIB > LIMIT);
    static void *q[64];
    for (size_t i = 0; i < 64; i++) {
        q[i] = _hm_theap_alloc_block(th, _hm_bin_of(BIN_B_SIZE), eTaskCritical);
        if (q[i] == NULL)
            fail_msg("request %zu of 64 KiB refused at %zu bytes", i, unit_committed(&env));
        assert_true(unit_committed(&env) <= LIMIT);
    }
    assert_int_equal(failures(&env, eTaskCritical), 0);
    assert_int_equal(shortages(&env), 0); /* the first step was enough every time */
    assert_int_equal(gone->free_committed_pages, 0);
    assert_true(_hm_theap_valid(th));
    /* the leaver's live blocks are still there, and still freed (remotely: nobody owns them) */
    assert_int_equal(unit_free(lv.keep[0]), HM_OK);
    assert_int_equal(unit_free(lv.keep[1]), HM_OK);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(unit_free(q[i]), HM_OK);
    unit_close(&env);
}

/* An empty segment kept in the cache (committed) holds the budget a request needs: the loop
 * purges the cache. Once for a huge block, once for bytes of no heap (_hm_arena_commit). The
 * segment: 1 MiB of its pages committed, then emptied and retired (not purged). */
static void cache_one_segment(unit_env_t *env) {
    /* blocks of 8 KiB up to 1 MiB of pages, each page handed out whole */
    static void *p[256];
    size_t bin = _hm_bin_of(BIN_A_SIZE), n = 0;
    hm_page_t *pg;
    do {
        assert_true(n < 256);
        assert_non_null(p[n] = _hm_theap_alloc_block(env->th, bin, eTaskCritical));
        pg = unit_page_of(p[n++], NULL);
    } while (unit_committed(env) < MIB || _hm_page_live(pg) < pg->reserved);
    assert_int_equal(unit_committed(env), MIB);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(unit_free(p[i]), HM_OK);
    _hm_theap_collect(env->th, true, false); /* retired, still committed: into the cache */
    assert_int_equal(atomic_load(&env->arena.cache_count), 1);
    assert_int_equal(env->arena.cache_committed, MIB);
    assert_int_equal(unit_committed(env), MIB);
}

static void test_cache_purged(void **state) {
    (void)state;
    unit_env_t env;
    /* the cache keeps at most an eighth of the limit, and a segment maps 4 MiB: 32 MiB */
    const size_t limit = 32 * MIB;
    hm_theap_t *th = unit_open(&env, limit, 60000, 64 * MIB);
    cache_one_segment(&env);
    /* 31 MiB and a header page: more than what is left */
    hm_segment_t *seg = _hm_theap_alloc_huge(th, limit - MIB, HM_ALIGN, eTaskCritical);
    assert_non_null(seg);
    assert_int_equal(atomic_load(&env.arena.cache_count), 0);
    assert_int_equal(unit_committed(&env), _hm_segment_header_size(1) + limit - MIB);
    assert_int_equal(failures(&env, eTaskCritical), 0);
    assert_int_equal(shortages(&env), 0);
    _hm_huge_free(seg); /* 32 MiB of mapping: more than the cache keeps, unmapped */
    assert_int_equal(unit_committed(&env), 0);

    cache_one_segment(&env);
    assert_true(_hm_arena_commit(&env.arena, limit - MIB + 1, eTaskCritical));
    assert_int_equal(atomic_load(&env.arena.cache_count), 0);
    assert_int_equal(unit_committed(&env), limit - MIB + 1);
    assert_int_equal(failures(&env, eTaskCritical), 0);
    assert_int_equal(shortages(&env), 0);
    _hm_budget_give(&env.arena.budget, limit - MIB + 1);
    unit_close(&env);
}

/* ---- step 3: a process-critical request waits
 * ---------------------------------------------------- */
/* A thread that gives memory back once it saw a request find memory short. */
typedef struct {
    unit_env_t *env;
    uint32_t shortages_before;
    void (*give)(void *arg);
    void *arg;
    bool saw_shortage;
} rescuer_t;

static void *rescuer_main(void *arg) {
    rescuer_t *r = arg;
    /* at most 60 s: far beyond any wait of a test, but a hang can never be one */
    for (int i = 0; i < 60000; i++) {
        if (shortages(r->env) != r->shortages_before) {
            r->saw_shortage = true;
            break;
        }
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    r->give(r->arg);
    return NULL;
}

static void give_huge(void *arg) {
    _hm_huge_free(arg); /* from any thread: the huge block's free takes the same path */
}

/* The fixture (no purge delay, no cache) with process-critical requests that wait up to
 * `wait_ms` for memory. */
static void open_waiting(unit_env_t *env, unsigned wait_ms) {
    hm_config c = unit_config(env, LIMIT, 0, 0);
    c.process_wait_ms = wait_ms;
    unit_open_cfg(env, &c);
}

/* A huge block leaves less than a medium page of the budget. */
static hm_segment_t *almost_full(unit_env_t *env) {
    size_t size = LIMIT - _hm_segment_header_size(1) - SMALL_PAGE;
    hm_segment_t *big = _hm_theap_alloc_huge(env->th, size, HM_ALIGN, eProcessCritical);
    assert_non_null(big);
    assert_int_equal(unit_committed(env), LIMIT - SMALL_PAGE);
    return big;
}

static void test_process_critical_waits(void **state) {
    (void)state;
    unit_env_t env;
    open_waiting(&env, 30000); /* a bound nobody reaches: the rescuer gives at once */
    hm_segment_t *big = almost_full(&env);
    rescuer_t r = {&env, shortages(&env), give_huge, big, false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, rescuer_main, &r), 0);
    /* refused, nothing to reclaim, short: the request waits until the rescuer gives */
    void *q = _hm_theap_alloc_block(env.th, _hm_bin_of(BIN_B_SIZE), eProcessCritical);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(r.saw_shortage);
    assert_non_null(q);
    assert_int_equal(shortages(&env), 1);
    assert_int_equal(failures(&env, eProcessCritical), 0);
    assert_int_equal(unit_committed(&env), MEDIUM_PAGE);
    assert_true(_hm_theap_valid(env.th));
    assert_int_equal(unit_free(q), HM_OK);
    unit_close(&env);
}

/* Only process-critical requests wait: the others fail at once, however long the wait is. */
static void test_others_do_not_wait(void **state) {
    (void)state;
    unit_env_t env;
    open_waiting(&env, 10000); /* each of the four would take that long if it waited */
    hm_segment_t *big = almost_full(&env);
    double t0 = now_ms();
    assert_null(_hm_theap_alloc_block(env.th, _hm_bin_of(BIN_B_SIZE), eTaskCritical));
    assert_null(_hm_theap_alloc_block(env.th, _hm_bin_of(BIN_B_SIZE), eAppDomainCritical));
    assert_null(_hm_theap_alloc_huge(env.th, MIB, HM_ALIGN, eTaskCritical));
    assert_false(_hm_arena_commit(&env.arena, MIB, eAppDomainCritical));
    double waited = now_ms() - t0;
    if (waited > 5000) fail_msg("requests that must not wait took %.0f ms", waited);
    assert_int_equal(failures(&env, eTaskCritical), 2);
    assert_int_equal(failures(&env, eAppDomainCritical), 2);
    assert_int_equal(failures(&env, eProcessCritical), 0);
    assert_int_equal(shortages(&env), 4);
    assert_int_equal(unit_committed(&env), LIMIT - SMALL_PAGE);
    _hm_huge_free(big);
    unit_close(&env);
}

/* Nobody gives: a process-critical request fails after its wait, counted. */
static void test_process_critical_wait_ends(void **state) {
    (void)state;
    unit_env_t env;
    open_waiting(&env, 30);
    hm_segment_t *big = almost_full(&env);
    assert_null(_hm_theap_alloc_block(env.th, _hm_bin_of(BIN_B_SIZE), eProcessCritical));
    assert_false(_hm_arena_commit(&env.arena, MIB, eProcessCritical));
    assert_int_equal(failures(&env, eProcessCritical), 2);
    assert_int_equal(shortages(&env), 2);
    assert_int_equal(unit_committed(&env), LIMIT - SMALL_PAGE);
    assert_true(_hm_theap_valid(env.th));
    _hm_huge_free(big);
    unit_close(&env);
}

/* ---- _hm_arena_commit
 * ----------------------------------------------------------------------------- */
static void test_arena_commit_levels(void **state) {
    (void)state;
    unit_env_t env;
    hm_config c = unit_config(&env, LIMIT, 0, 0);
    c.reserve_appdomain = MIB;
    c.reserve_process = MIB;
    unit_open_cfg(&env, &c);
    hm_arena_t *a = &env.arena;
    assert_true(_hm_arena_commit(a, 6 * MIB, eTaskCritical));
    assert_int_equal(unit_committed(&env), 6 * MIB);
    assert_false(_hm_arena_commit(a, 1, eTaskCritical)); /* the two reserves are not its own */
    assert_int_equal(failures(&env, eTaskCritical), 1);
    assert_int_equal(shortages(&env), 1);
    assert_int_equal(_hm_budget_pressure(&a->budget), eMemoryAvailableLow);
    assert_true(_hm_arena_commit(a, MIB, eAppDomainCritical));
    assert_false(_hm_arena_commit(a, 1, eAppDomainCritical));
    assert_true(_hm_arena_commit(a, MIB, eProcessCritical));
    assert_int_equal(unit_committed(&env), LIMIT);
    assert_false(_hm_arena_commit(a, 1, eProcessCritical)); /* no wait configured */
    assert_false(_hm_arena_commit(a, 1, 7));                /* a level past the last: process */
    assert_int_equal(failures(&env, eTaskCritical), 1);
    assert_int_equal(failures(&env, eAppDomainCritical), 1);
    assert_int_equal(failures(&env, eProcessCritical), 2);
    assert_int_equal(shortages(&env), 4);
    assert_int_equal(unit_committed(&env), LIMIT);
    assert_true(_hm_budget_valid(&a->budget));
    _hm_budget_give(&a->budget, LIMIT);
    unit_close(&env);
}

static void give_budget(void *arg) {
    unit_env_t *env = arg;
    _hm_budget_give(&env->arena.budget, MIB);
}

static void test_arena_commit_waits(void **state) {
    (void)state;
    unit_env_t env;
    open_waiting(&env, 30000);
    assert_true(_hm_arena_commit(&env.arena, LIMIT, eProcessCritical));
    rescuer_t r = {&env, shortages(&env), give_budget, &env, false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, rescuer_main, &r), 0);
    bool ok = _hm_arena_commit(&env.arena, MIB / 2, eProcessCritical);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(r.saw_shortage);
    assert_true(ok);
    assert_int_equal(unit_committed(&env), LIMIT - MIB / 2);
    assert_int_equal(failures(&env, eProcessCritical), 0);
    assert_int_equal(shortages(&env), 1);
    _hm_budget_give(&env.arena.budget, LIMIT - MIB / 2);
    unit_close(&env);
}

TU_TEST_MAIN(test_fill_until_refused, test_own_empty_pages, test_abandoned_sub_heaps,
             test_cache_purged, test_process_critical_waits, test_others_do_not_wait,
             test_process_critical_wait_ends, test_arena_commit_levels, test_arena_commit_waits)
