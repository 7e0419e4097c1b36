/* SPDX-License-Identifier: MIT */
/* tests/unit/unit_env.h: the fixture the engine's unit tests share: an arena (the memory half
 * of a manager: configuration, budget, heaps, cache) made directly with _hm_arena_init, one
 * thread-safe heap on it and the calling thread's sub-heap; an error sink that records what it
 * is told; small walks over a sub-heap's queues. Header-only, like tests/support. */
#ifndef HM_UNIT_ENV_H
#define HM_UNIT_ENV_H

#include "mem/mem.h"
#include "test_util.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)

/* What the arena's error sink (hm_config.on_error) was told. */
typedef struct {
    int calls;
    int kind;
    const void *ptr;
    char message[256];
} unit_errors_t;

static void unit_on_error(int kind, const void *ptr, const char *message, void *arg) {
    unit_errors_t *e = arg;
    e->calls++;
    e->kind = kind;
    e->ptr = ptr;
    snprintf(e->message, sizeof e->message, "%s", message);
}

typedef struct {
    hm_arena_t arena;
    hm_heap *heap;
    hm_theap_t *th; /* the calling thread's sub-heap of `heap` */
    unit_errors_t errors;
} unit_env_t;

/* The test configuration (tu_test_config: no reserves, no wait, thresholds 90/80/50) with a
 * purge delay and a segment cache of the caller's choosing, and errors sent to env->errors. */
static inline hm_config unit_config(unit_env_t *env, size_t limit, unsigned purge_delay_ms,
                                    size_t segment_cache) {
    hm_config c = tu_test_config(limit);
    c.purge_delay_ms = purge_delay_ms;
    c.segment_cache = segment_cache;
    c.on_error = unit_on_error;
    c.on_error_arg = &env->errors;
    return c;
}

/* An arena of `cfg` (its limit), a thread-safe heap, this thread's sub-heap (returned). */
static inline hm_theap_t *unit_open_cfg(unit_env_t *env, const hm_config *cfg) {
    memset(env, 0, sizeof *env);
    hm_config c = *cfg;
    c.on_error_arg = &env->errors; /* the copy the arena keeps points at this env */
    _hm_arena_init(&env->arena, &c, c.limit);
    env->heap = _hm_heap_create(&env->arena, HM_HEAP_THREADSAFE);
    assert_non_null(env->heap);
    env->th = _hm_theap_get(env->heap);
    assert_non_null(env->th);
    assert_true(_hm_theap_valid(env->th));
    assert_int_equal(_hm_budget_committed(&env->arena.budget), 0);
    return env->th;
}

static inline hm_theap_t *unit_open(unit_env_t *env, size_t limit, unsigned purge_delay_ms,
                                    size_t segment_cache) {
    hm_config c = unit_config(env, limit, purge_delay_ms, segment_cache);
    return unit_open_cfg(env, &c);
}

/* Release the heap and the arena. Whatever a test did, this thread's sub-heap must still hold
 * its invariants, and every committed byte must come back to the budget. */
static inline void unit_close(unit_env_t *env) {
    assert_true(_hm_theap_valid(env->th));
    _hm_heap_destroy(env->heap);
    _hm_held_clear(&env->arena);
    _hm_cache_purge(&env->arena, true);
    assert_int_equal(_hm_budget_committed(&env->arena.budget), 0);
    assert_true(_hm_budget_valid(&env->arena.budget));
    _hm_arena_destroy(&env->arena);
}

static inline size_t unit_committed(unit_env_t *env) {
    return _hm_budget_committed(&env->arena.budget);
}

/* Pages in queue `bin` of `th`. */
static inline size_t unit_queue_len(const hm_theap_t *th, size_t bin) {
    size_t n = 0;
    for (const hm_page_t *pg = th->queues[bin].first; pg != NULL; pg = pg->next)
        n++;
    return n;
}

static inline bool unit_in_queue(const hm_theap_t *th, const hm_page_t *pg) {
    for (const hm_page_t *q = th->queues[pg->bin].first; q != NULL; q = q->next)
        if (q == pg) return true;
    return false;
}

/* The segment and page of block `p`. */
static inline hm_page_t *unit_page_of(const void *p, hm_segment_t **segp) {
    hm_segment_t *seg = _hm_segment_of(p);
    if (segp != NULL) *segp = seg;
    return _hm_page_of(seg, p);
}

/* Free block `p` the way the doors do (owner or remote, by the calling thread). */
static inline hm_result unit_free(void *p) {
    hm_segment_t *seg;
    hm_page_t *pg = unit_page_of(p, &seg);
    return _hm_page_free(seg, pg, p);
}

static inline bool unit_free_ok(void *ctx, void *p) {
    (void)ctx;
    return unit_free(p) == HM_OK;
}

/* Free blocks[0..n) from another thread: not the owner, so onto the pages' lists of other
 * threads' frees. */
static inline void unit_free_remote(void *const *blocks, size_t n) {
    tu_free_in_thread(unit_free_ok, NULL, blocks, n);
}

/* Segments in th's list of `kind`. */
static inline size_t unit_segments(const hm_theap_t *th, hm_segment_kind_t kind) {
    size_t n = 0;
    for (const hm_segment_t *s = th->segs[kind]; s != NULL; s = s->next)
        n++;
    return n;
}

#endif /* HM_UNIT_ENV_H */
