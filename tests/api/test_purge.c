/* SPDX-License-Identifier: MIT */
/* test_purge.c: the purge policy (linked to the static library, so the engine's own counts of
 * decommit calls can be read).
 *
 * What is asserted is what hostmalloc controls: its committed bytes (the budget's count) and the
 * number of decommit calls it made (hm_manager.purge_calls), never RSS or time. Where a delay
 * has to pass, the test sleeps well past it and then drives the allocation slow path, whose
 * maintenance does the purge: a slower machine only sleeps longer, it cannot make it fail. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/manager.h"
#include "test_util.h"

#define KIB  ((size_t)1 << 10)
#define MIB  ((size_t)1 << 20)
#define NBLK 8192 /* blocks of 1 KiB: 8 MiB, 128 small pages */

/* The default configuration with a purge delay of `delay_ms`, no reserves, and a `limit` (0:
 * the default's). */
static hm_config purge_config(unsigned delay_ms, size_t limit) {
    hm_config c;
    hm_config_init(&c);
    c.purge_delay_ms = delay_ms;
    if (limit != 0) c.limit = limit;
    c.reserve_appdomain = 0;
    c.reserve_process = 0;
    return c;
}

static hm_manager *new_mgr(unsigned delay_ms) {
    hm_config c = purge_config(delay_ms, 0);
    return tu_manager(&c);
}

static size_t purges(hm_manager *mgr) {
    return atomic_load(&mgr->arena.purge_calls);
}

/* A thread that allocates NBLK blocks of 1 KiB, writes them, frees them all and exits. */
static void *churn(void *arg) {
    hm_heap *heap = arg;
    void **b = malloc(NBLK * sizeof *b);
    if (b == NULL) return (void *)1;
    for (int i = 0; i < NBLK; i++) {
        b[i] = hm_alloc(heap, 1024);
        if (b[i] == NULL) return (void *)1;
        memset(b[i], 0x5A, 1024);
    }
    for (int i = 0; i < NBLK; i++)
        hm_free(b[i]);
    free(b);
    return NULL;
}

static void run_churn(hm_heap *heap) {
    pthread_t t;
    void *ret = (void *)1;
    assert_int_equal(pthread_create(&t, NULL, churn, heap), 0);
    assert_int_equal(pthread_join(t, &ret), 0);
    assert_null(ret);
}

/* A thread that exits hands its empty pages on committed, and the next thread reuses them: no
 * decommit call and no new commit for the same working set. */
static void test_exit_keeps_pages_warm(void **state) {
    (void)state;
    hm_manager *mgr = new_mgr(600000); /* the delay never passes during the test */
    hm_heap *heap = tu_heap(mgr, HM_HEAP_THREADSAFE);
    size_t p0 = purges(mgr);
    run_churn(heap);
    size_t after_first = tu_committed(mgr);
    if (after_first < 4 * MIB)
        fail_msg(
            "the exited thread's 8 MiB of pages were given back at its exit: %zu KiB committed",
            after_first / KIB);
    assert_int_equal(purges(mgr), p0);
    for (int round = 0; round < 4; round++)
        run_churn(heap);
    /* the same working set again and again: served from what the first thread left */
    assert_int_equal(purges(mgr), p0);
    if (tu_committed(mgr) > after_first + MIB)
        fail_msg("threads re-created over the same working set committed %zu KiB more",
                 (tu_committed(mgr) - after_first) / KIB);
    /* and an explicit trim gives all of it back at once (the emptied segments are unmapped) */
    hm_manager_trim(mgr);
    if (tu_committed(mgr) > 512 * KIB)
        fail_msg("after hm_manager_trim, %zu KiB stay committed", tu_committed(mgr) / KIB);
    tu_release(heap, mgr);
}

/* With a delay of 0, an exiting thread's empty pages are decommitted as it exits. */
static void test_exit_no_delay_gives_back(void **state) {
    (void)state;
    hm_manager *mgr = new_mgr(0);
    hm_heap *heap = tu_heap(mgr, HM_HEAP_THREADSAFE);
    size_t p0 = purges(mgr);
    run_churn(heap);
    assert_true(purges(mgr) > p0);
    if (tu_committed(mgr) > MIB)
        fail_msg("delay 0: %zu KiB stay committed after the thread's exit",
                 tu_committed(mgr) / KIB);
    tu_release(heap, mgr);
}

/* Under pressure (Low), what an exiting thread held empty is given back at once, whatever the
 * delay. */
static void test_exit_under_pressure_gives_back(void **state) {
    (void)state;
    hm_config c = purge_config(600000, 64 * MIB);
    c.process_wait_ms = 0;
    c.low_pct = 40; /* Low from 25.6 MiB committed */
    c.neutral_pct = 30;
    c.high_pct = 10;
    hm_manager *mgr = tu_manager(&c);
    hm_heap *heap = tu_heap(mgr, HM_HEAP_THREADSAFE);
    void *big = hm_alloc(heap, 28 * MIB); /* held: the manager stays Low */
    assert_non_null(big);
    size_t before = tu_committed(mgr);
    size_t p0 = purges(mgr);
    run_churn(heap);
    assert_true(purges(mgr) > p0);
    if (tu_committed(mgr) > before + MIB)
        fail_msg("under pressure an exited thread left %zu KiB committed",
                 (tu_committed(mgr) - before) / KIB);
    hm_free(big);
    tu_release(heap, mgr);
}

/* Neighbouring empty pages are decommitted in one call, not one a page. */
static void test_purge_is_batched(void **state) {
    (void)state;
    hm_manager *mgr = new_mgr(600000);
    hm_heap *heap = hm_heap_new(mgr, 0); /* serialized: one sub-heap, collected here */
    assert_non_null(heap);
    void *keep = hm_alloc(heap, 1024); /* keeps the first segment out of the cache */
    assert_non_null(keep);
    void **b = malloc(2048 * sizeof *b);
    assert_non_null(b);
    for (int i = 0; i < 2048; i++) { /* 2 MiB: 32 neighbouring 64 KiB pages */
        b[i] = hm_alloc(heap, 1024);
        assert_non_null(b[i]);
        memset(b[i], 1, 1024);
    }
    for (int i = 0; i < 2048; i++)
        hm_free(b[i]);
    free(b);
    size_t p0 = purges(mgr), c0 = tu_committed(mgr);
    hm_heap_collect(heap, true);
    size_t calls = purges(mgr) - p0;
    if (calls == 0 || calls > 3)
        fail_msg("32 neighbouring empty pages took %zu decommit calls", calls);
    if (c0 - tu_committed(mgr) < MIB)
        fail_msg("the collect gave back only %zu KiB", (c0 - tu_committed(mgr)) / KIB);
    hm_free(keep);
    tu_release(heap, mgr);
}

/* A live thread's maintenance gives back what an exited thread left, once the delay has passed,
 * without any explicit collect. */
static void test_idle_memory_ages_out(void **state) {
    (void)state;
    hm_manager *mgr = new_mgr(20);
    hm_heap *heap = tu_heap(mgr, HM_HEAP_THREADSAFE);
    void *warm = hm_alloc(heap, 2048);
    assert_non_null(warm);
    hm_free(warm);
    size_t start = tu_committed(mgr);
    run_churn(heap);
    size_t held = tu_committed(mgr);
    assert_true(held > start + 4 * MIB);
    size_t p0 = purges(mgr);
    /* light activity: blocks over 1 KiB take the slow path, whose maintenance runs every 64
     * calls and at most every delay/4 ms; keep it up well past the delay */
    for (int round = 0; round < 40; round++) {
        tu_sleep_ms(10);
        for (int i = 0; i < 256; i++) {
            void *p = hm_alloc(heap, 2048);
            assert_non_null(p);
            hm_free(p);
        }
    }
    assert_true(purges(mgr) > p0);
    if (tu_committed(mgr) > start + MIB)
        fail_msg("%zu KiB of an exited thread's memory stayed committed past the delay",
                 (tu_committed(mgr) - start) / KIB);
    tu_release(heap, mgr);
}

/* A thread that freed a lot and then only allocates and frees blocks the fast paths serve gives
 * the memory back all the same: the heartbeat (every HM_BEAT-th allocation of a level takes the
 * slow path) reaches the maintenance pass. The activity's one page is made before the delay can
 * pass, so every maintenance pass after it is the heartbeat's. */
static void test_fast_path_activity_gives_back(void **state) {
    (void)state;
    enum { N = 32768 }; /* blocks of 256 bytes: 8 MiB */
    hm_manager *mgr = new_mgr(20);
    hm_heap *heap = tu_heap(mgr, HM_HEAP_THREADSAFE);
    void *warm = hm_alloc(heap, 64); /* the activity's page, made now */
    assert_non_null(warm);
    size_t start = tu_committed(mgr);
    void **b = malloc(N * sizeof *b);
    assert_non_null(b);
    for (int i = 0; i < N; i++) {
        b[i] = hm_alloc(heap, 256);
        assert_non_null(b[i]);
        memset(b[i], 0x5A, 256);
    }
    for (int i = 0; i < N; i++)
        hm_free(b[i]);
    free(b);
    assert_true(tu_committed(mgr) > start + 4 * MIB);
    size_t p0 = purges(mgr);
    /* light activity on the fast paths only, for up to 20 s (a slow machine waits longer) */
    bool back = false;
    for (int round = 0; round < 2000 && !back; round++) {
        tu_sleep_ms(10);
        for (int i = 0; i < 2 * 4096; i++) {
            void *p = hm_alloc(heap, 64);
            assert_non_null(p);
            hm_free(p);
        }
        back = tu_committed(mgr) <= start + MIB;
    }
    if (!back)
        fail_msg("%zu KiB stayed committed through 20 s of fast-path activity",
                 (tu_committed(mgr) - start) / KIB);
    assert_true(purges(mgr) > p0);
    hm_free(warm);
    tu_release(heap, mgr);
}

/* Huge blocks freed and allocated again are reused from the cache: no decommit, no new commit. */
static void test_huge_blocks_reused_warm(void **state) {
    (void)state;
    hm_manager *mgr = new_mgr(600000);
    hm_heap *heap = tu_heap(mgr, 0);
    void *p = hm_alloc(heap, 20 * MIB);
    assert_non_null(p);
    memset(p, 1, 20 * MIB);
    hm_free(p);
    size_t c0 = tu_committed(mgr), p0 = purges(mgr);
    for (int i = 0; i < 20; i++) {
        size_t sz = (size_t)(15 + i % 6) * MIB; /* 15..20 MiB: fit the cached 20 MiB block */
        p = hm_alloc(heap, sz);
        assert_non_null(p);
        memset(p, 2, sz);
        hm_free(p);
    }
    assert_int_equal(purges(mgr), p0);
    assert_int_equal(tu_committed(mgr), c0);
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    assert_true(s.cached >= 20 * MIB);
    tu_release(heap, mgr);
}

/* The cache of a manager with a budget holds at most an eighth of its limit. */
static void test_cache_bounded_by_limit(void **state) {
    (void)state;
    hm_config c = purge_config(600000, 128 * MIB); /* cache at most 16 MiB, below 256 MiB */
    hm_manager *mgr = tu_manager(&c);
    hm_heap *heap = tu_heap(mgr, 0);
    void *p[6];
    for (int i = 0; i < 6; i++) {
        p[i] = hm_alloc(heap, 6 * MIB); /* 8 MiB mappings */
        assert_non_null(p[i]);
    }
    for (int i = 0; i < 6; i++)
        hm_free(p[i]);
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    if (s.cached > 16 * MIB)
        fail_msg("the cache holds %zu KiB, over 1/8 of the limit", s.cached / KIB);
    assert_true(s.cached >= 8 * MIB);
    tu_release(heap, mgr);
}

TU_TEST_MAIN(test_exit_keeps_pages_warm, test_exit_no_delay_gives_back,
             test_exit_under_pressure_gives_back, test_purge_is_batched, test_idle_memory_ages_out,
             test_fast_path_activity_gives_back, test_huge_blocks_reused_warm,
             test_cache_bounded_by_limit)
