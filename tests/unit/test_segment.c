/* SPDX-License-Identifier: MIT */
/* test_segment.c: segments (mem/segment.h), driven directly on a sub-heap of a heap of an
 * arena: the segment map (which 4 MiB units are ours), standard segments made and given back,
 * the arena's cache of empty segments (the same segment taken back, a forced purge giving
 * exactly the cached bytes back to the budget), huge blocks at every alignment, the ring of held
 * huge blocks and the report of a second free, and the segment invariants (_hm_segment_valid).
 * What is asserted is what the engine controls: addresses, its maps, its budget's count. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "unit_env.h"

#define LIMIT       (256 * MIB)
#define SMALL_PAGE  ((size_t)1 << HM_SMALL_PAGE_SHIFT)
#define MEDIUM_PAGE ((size_t)1 << HM_MEDIUM_PAGE_SHIFT)

static int static_var;

/* ---- the segment map ------------------------------------------------------------------------- */
static void test_segmap(void **state) {
    (void)state;
    unit_env_t env;
    unit_open(&env, LIMIT, 0, 0);
    void *p = _hm_theap_alloc_block(env.th, _hm_bin_of(64), eTaskCritical);
    assert_non_null(p);
    uintptr_t seg = (uintptr_t)_hm_segment_of(p);
    assert_int_equal(seg & HM_SEGMENT_MASK, 0);
    /* the segment's start and every interior address */
    assert_true(_hm_segmap_has(seg));
    assert_true(_hm_segmap_has((uintptr_t)p));
    assert_true(_hm_segmap_has(seg + HM_SEGMENT_SIZE / 2 + 3));
    assert_true(_hm_segmap_has(seg + HM_SEGMENT_SIZE - 1));
    /* what is not ours */
    int stack_var = 0;
    void *libc = malloc(64);
    assert_non_null(libc);
    assert_false(_hm_segmap_has((uintptr_t)&stack_var));
    assert_false(_hm_segmap_has((uintptr_t)&static_var));
    assert_false(_hm_segmap_has((uintptr_t)libc));
    assert_false(_hm_segmap_has((uintptr_t)tu_unmapped_address()));
    assert_false(_hm_segmap_has(0));
    assert_false(_hm_segmap_has(1));
    assert_false(_hm_segmap_has((uintptr_t)1 << HM_ADDR_BITS));       /* past the map */
    assert_false(_hm_segmap_has(((uintptr_t)1 << HM_ADDR_BITS) - 1)); /* its last unit */
    assert_false(_hm_segmap_has(UINTPTR_MAX));
    assert_false(_hm_segmap_has((uintptr_t)0xdead00000000ull));
    free(libc);
    (void)stack_var;
    /* a segment given back to the OS (no cache) is no longer ours */
    assert_int_equal(unit_free(p), HM_OK);
    _hm_theap_collect(env.th, true, true);
    assert_null(env.th->segs[HM_SEG_SMALL]);
    assert_false(_hm_segmap_has(seg));
    assert_false(_hm_segmap_has(seg + HM_SEGMENT_SIZE / 2));
    unit_close(&env);
}

/* ---- standard segments -------------------------------------------------------------------------
 */
static void test_segment_alloc_free(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    hm_segment_t *s = _hm_segment_alloc(th, HM_SEG_SMALL, eTaskCritical);
    assert_non_null(s);
    assert_int_equal((uintptr_t)s & HM_SEGMENT_MASK, 0);
    assert_ptr_equal(th->segs[HM_SEG_SMALL], s);
    assert_ptr_equal(s->theap, th);
    assert_ptr_equal(s->heap, env.heap);
    assert_ptr_equal(s->arena, &env.arena);
    assert_int_equal(atomic_load(&s->tid), th->tid);
    assert_int_equal(s->kind, HM_SEG_SMALL);
    assert_int_equal(s->page_count, HM_SMALL_PAGES);
    assert_int_equal(s->page_shift, HM_SMALL_PAGE_SHIFT);
    assert_int_equal(s->used_pages, 0);
    assert_int_equal(s->size, HM_SEGMENT_SIZE);
    assert_true(s->pages[0].committed); /* the header's page */
    assert_int_equal(s->committed, SMALL_PAGE);
    assert_int_equal(unit_committed(&env), SMALL_PAGE);
    assert_int_equal(atomic_load(&env.heap->committed), SMALL_PAGE);
    assert_true(_hm_segmap_has((uintptr_t)s));
    assert_true(_hm_segment_valid(s));
    /* every page starts where the geometry says, the first one past the header */
    assert_ptr_equal(s->pages[0].start, (uint8_t *)s + _hm_segment_header_size(HM_SMALL_PAGES));
    for (size_t i = 1; i < s->page_count; i++)
        assert_ptr_equal(s->pages[i].start, (uint8_t *)s + (i << HM_SMALL_PAGE_SHIFT));

    hm_segment_t *m = _hm_segment_alloc(th, HM_SEG_MEDIUM, eTaskCritical);
    assert_non_null(m);
    assert_ptr_not_equal(m, s);
    assert_ptr_equal(th->segs[HM_SEG_MEDIUM], m);
    assert_int_equal(m->page_count, HM_MEDIUM_PAGES);
    assert_int_equal(m->page_shift, HM_MEDIUM_PAGE_SHIFT);
    assert_int_equal(m->committed, MEDIUM_PAGE);
    assert_int_equal(unit_committed(&env), SMALL_PAGE + MEDIUM_PAGE);
    assert_true(_hm_segment_valid(m));
    assert_true(_hm_theap_valid(th));

    /* no cache: given back to the OS, map bit and count with it */
    _hm_segment_free(s);
    assert_null(th->segs[HM_SEG_SMALL]);
    assert_false(_hm_segmap_has((uintptr_t)s));
    assert_int_equal(unit_committed(&env), MEDIUM_PAGE);
    assert_int_equal(atomic_load(&env.arena.cache_count), 0);
    _hm_segment_free(m);
    assert_int_equal(unit_committed(&env), 0);
    assert_int_equal(atomic_load(&env.heap->committed), 0);
    unit_close(&env);
}

/* ---- the cache ----------------------------------------------------------------------------------
 */
/* A freed empty segment waits in the cache, still counted (by the arena, not the heap), and is
 * the next segment handed out. */
static void test_cache_takes_back(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 60000, 64 * MIB);
    hm_segment_t *s = _hm_segment_alloc(th, HM_SEG_SMALL, eTaskCritical);
    assert_non_null(s);
    _hm_segment_free(s);
    assert_null(th->segs[HM_SEG_SMALL]);
    assert_int_equal(atomic_load(&env.arena.cache_count), 1);
    assert_ptr_equal(env.arena.cache[0].seg, s);
    assert_int_equal(env.arena.cache_bytes, HM_SEGMENT_SIZE);
    assert_int_equal(env.arena.cache_committed, SMALL_PAGE);
    assert_int_equal(unit_committed(&env), SMALL_PAGE);     /* the arena keeps it */
    assert_int_equal(atomic_load(&env.heap->committed), 0); /* the heap does not */
    assert_true(_hm_segmap_has((uintptr_t)s)); /* still ours: stale pointers stay refused */
    assert_null(s->theap);

    hm_segment_t *again = _hm_segment_alloc(th, HM_SEG_SMALL, eTaskCritical);
    assert_ptr_equal(again, s);
    assert_int_equal(atomic_load(&env.arena.cache_count), 0);
    assert_int_equal(env.arena.cache_committed, 0);
    assert_int_equal(unit_committed(&env), SMALL_PAGE); /* nothing new was counted */
    assert_int_equal(atomic_load(&env.heap->committed), SMALL_PAGE);
    assert_ptr_equal(again->theap, th);
    assert_true(_hm_segment_valid(again));
    assert_true(_hm_theap_valid(th));
    _hm_segment_free(again);
    unit_close(&env);
}

/* A standard segment is taken from the cache by kind: the newest of the kind asked for, though
 * one of another kind is newer (its page geometry would have to be decommitted); one of
 * another kind only when none of the kind is there. */
static void test_cache_takes_same_kind(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 60000, 64 * MIB);
    hm_segment_t *s = _hm_segment_alloc(th, HM_SEG_SMALL, eTaskCritical);
    hm_segment_t *m = _hm_segment_alloc(th, HM_SEG_MEDIUM, eTaskCritical);
    assert_non_null(s);
    assert_non_null(m);
    _hm_segment_free(s);
    _hm_segment_free(m); /* the newest */
    assert_int_equal(atomic_load(&env.arena.cache_count), 2);
    size_t cached = env.arena.cache_committed;
    hm_segment_t *again = _hm_segment_alloc(th, HM_SEG_SMALL, eTaskCritical);
    assert_ptr_equal(again, s);
    assert_int_equal(again->kind, HM_SEG_SMALL);
    assert_int_equal(env.arena.cache_committed, cached - SMALL_PAGE); /* m still committed */
    hm_segment_t *other = _hm_segment_alloc(th, HM_SEG_SMALL, eTaskCritical);
    assert_ptr_equal(other, m); /* no small one left: the medium one, made small */
    assert_int_equal(other->kind, HM_SEG_SMALL);
    assert_true(_hm_segment_valid(other));
    assert_int_equal(atomic_load(&env.arena.cache_count), 0);
    _hm_segment_free(again);
    _hm_segment_free(other);
    unit_close(&env);
}

/* The cache holds at most HM_CACHE_MAX_ENTRIES entries: a put past that unmaps the oldest, and
 * the others keep their order, the oldest first. */
static void test_cache_entry_limit(void **state) {
    (void)state;
    unit_env_t env;
    /* a cache of 1 GiB (8 GiB of address space) under a 16 GiB limit: only the count binds */
    hm_theap_t *th = unit_open(&env, (size_t)16 << 30, 60000, (size_t)1 << 30);
    enum { N = HM_CACHE_MAX_ENTRIES + 1 };
    static hm_segment_t *segs[N];
    for (int i = 0; i < N; i++) {
        segs[i] = _hm_segment_alloc(th, HM_SEG_SMALL, eTaskCritical);
        assert_non_null(segs[i]);
    }
    for (int i = 0; i < N; i++)
        _hm_segment_free(segs[i]);
    assert_int_equal(atomic_load(&env.arena.cache_count), HM_CACHE_MAX_ENTRIES);
    assert_false(_hm_segmap_has((uintptr_t)segs[0])); /* the oldest went back to the OS */
    for (int i = 0; i < HM_CACHE_MAX_ENTRIES; i++)
        assert_ptr_equal(env.arena.cache[i].seg, segs[i + 1]);
    assert_int_equal(env.arena.cache_bytes, (size_t)HM_CACHE_MAX_ENTRIES * HM_SEGMENT_SIZE);
    assert_int_equal(env.arena.cache_committed, (size_t)HM_CACHE_MAX_ENTRIES * SMALL_PAGE);
    assert_int_equal(unit_committed(&env), (size_t)HM_CACHE_MAX_ENTRIES * SMALL_PAGE);
    unit_close(&env);
}

/* `blocks` blocks of `bin` allocated and freed again, their pages retired but left committed,
 * their (small) segments given to the cache. Returns the segment of the first block. */
static hm_segment_t *segments_used_then_cached(unit_env_t *env, size_t bin, size_t blocks) {
    hm_theap_t *th = env->th;
    void **p = calloc(blocks, sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < blocks; i++)
        assert_non_null(p[i] = _hm_theap_alloc_block(th, bin, eTaskCritical));
    hm_segment_t *seg = _hm_segment_of(p[0]);
    for (size_t i = 0; i < blocks; i++)
        assert_int_equal(unit_free(p[i]), HM_OK);
    free(p);
    size_t counted = 0;
    for (hm_segment_t *s = th->segs[HM_SEG_SMALL]; s != NULL; s = s->next)
        counted += s->committed;
    _hm_theap_collect(th, true, false); /* retired, not purged: into the cache committed */
    assert_null(th->segs[HM_SEG_SMALL]);
    assert_int_equal(env->arena.cache_committed, counted);
    return seg;
}

/* A forced purge empties the cache and gives exactly its committed bytes back. */
static void test_cache_purge_exact(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 60000, 64 * MIB);
    /* something that stays: a live block in a segment of its own kind */
    void *live = _hm_theap_alloc_block(th, _hm_bin_of(HM_MEDIUM_MAX), eTaskCritical);
    assert_non_null(live);
    size_t live_bytes = unit_committed(&env);
    assert_int_equal(live_bytes, MEDIUM_PAGE);
    /* two small segments: 600 blocks of 8 KiB span both (a segment holds 511) */
    hm_segment_t *s1 = segments_used_then_cached(&env, _hm_bin_of(HM_SMALL_MAX), 600);
    assert_int_equal(atomic_load(&env.arena.cache_count), 2);
    assert_ptr_not_equal(s1, NULL);
    size_t cached = env.arena.cache_committed;
    assert_true(cached > 2 * SMALL_PAGE); /* more than the two header pages */
    assert_int_equal(unit_committed(&env), live_bytes + cached);

    _hm_cache_purge(&env.arena, true);
    assert_int_equal(atomic_load(&env.arena.cache_count), 0);
    assert_null(env.arena.cache); /* a forced purge unmaps the cache's array too */
    assert_int_equal(env.arena.cache_bytes, 0);
    assert_int_equal(env.arena.cache_committed, 0);
    assert_int_equal(unit_committed(&env), live_bytes); /* exactly the cached bytes went */
    assert_false(_hm_segmap_has((uintptr_t)s1));
    assert_true(_hm_theap_valid(th));
    assert_int_equal(unit_free(live), HM_OK);
    unit_close(&env);
}

/* A cached segment whose memory was decommitted (delay passed, or memory short) is taken back
 * for a page of its own kind or of the other: either way its first page, once in use, is
 * counted once, as on a fresh segment. */
static void reuse_decommitted(hm_segment_kind_t first, hm_segment_kind_t then) {
    unit_env_t env;
    /* no purge delay: a segment put in the cache is decommitted at once */
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 64 * MIB);
    size_t bin_of_kind[2] = {_hm_bin_of(64), _hm_bin_of(HM_MEDIUM_MAX)};
    size_t page_of_kind[2] = {SMALL_PAGE, MEDIUM_PAGE};
    void *p = _hm_theap_alloc_block(th, bin_of_kind[first], eTaskCritical);
    assert_non_null(p);
    hm_segment_t *seg = _hm_segment_of(p);
    assert_int_equal(unit_committed(&env), page_of_kind[first]);
    assert_int_equal(unit_free(p), HM_OK);
    _hm_theap_collect(th, true, true);
    assert_ptr_equal(env.arena.cache[atomic_load(&env.arena.cache_count) - 1].seg, seg);
    /* only the header is left committed */
    size_t h = _hm_segment_header_size(seg->page_count);
    assert_int_equal(seg->committed, h);
    assert_int_equal(unit_committed(&env), h);

    void *q = _hm_theap_alloc_block(th, bin_of_kind[then], eTaskCritical);
    assert_non_null(q);
    assert_ptr_equal(_hm_segment_of(q), seg);
    assert_int_equal(seg->kind, then);
    assert_true(_hm_segment_valid(seg));
    assert_true(_hm_theap_valid(th));
    assert_int_equal(seg->committed, page_of_kind[then]);
    assert_int_equal(unit_committed(&env), page_of_kind[then]);
    assert_int_equal(atomic_load(&env.heap->committed), page_of_kind[then]);
    memset(q, 0x5a, _hm_bin_size(bin_of_kind[then]));
    assert_int_equal(unit_free(q), HM_OK);
    unit_close(&env);
}

static void test_cache_reuse_decommitted_same_kind(void **state) {
    (void)state;
    reuse_decommitted(HM_SEG_SMALL, HM_SEG_SMALL);
    reuse_decommitted(HM_SEG_MEDIUM, HM_SEG_MEDIUM);
}

static void test_cache_reuse_decommitted_other_kind(void **state) {
    (void)state;
    reuse_decommitted(HM_SEG_SMALL, HM_SEG_MEDIUM);
    reuse_decommitted(HM_SEG_MEDIUM, HM_SEG_SMALL);
}

/* ---- huge blocks --------------------------------------------------------------------------------
 */
static bool in_huge_list(const hm_heap *heap, const hm_segment_t *seg) {
    for (const hm_segment_t *s = heap->huge; s != NULL; s = s->next)
        if (s == seg) return true;
    return false;
}

static void test_huge_alignments(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    const size_t h1 = _hm_segment_header_size(1);
    const size_t size = 5 * MIB + 123;
    const size_t usable = (size + HM_OS_PAGE - 1) & ~(size_t)(HM_OS_PAGE - 1);
    const size_t aligns[] = {16, 4096, 64 * KIB, 1 * MIB, 4 * MIB, 8 * MIB, 16 * MIB};
    for (size_t i = 0; i < TU_ARRAY_SIZE(aligns); i++) {
        size_t align = aligns[i];
        hm_segment_t *seg = _hm_huge_alloc(th, size, align, eTaskCritical);
        assert_non_null(seg);
        uint8_t *p = seg->pages[0].start;
        if (!tu_is_aligned(p, align)) fail_msg("huge block %p not aligned to %zu", p, align);
        assert_int_equal(seg->kind, HM_SEG_HUGE);
        assert_int_equal(seg->huge_size, usable);
        assert_true(seg->pages[0].is_huge);
        assert_int_equal(seg->aligned_huge, align >= HM_SEGMENT_SIZE);
        assert_true(p + usable <= seg->base + seg->size);
        assert_int_equal(seg->committed, h1 + usable);
        assert_int_equal(unit_committed(&env), h1 + usable);
        assert_int_equal(atomic_load(&env.heap->committed), h1 + usable);
        assert_true(in_huge_list(env.heap, seg));
        assert_int_equal(env.heap->huge_count, 1);
        /* found from its block */
        hm_segment_t *fs;
        hm_page_t *fp;
        assert_int_equal(_hm_block_lookup(p, &fs, &fp), HM_OK);
        assert_ptr_equal(fs, seg);
        assert_ptr_equal(fp, &seg->pages[0]);
        assert_int_equal(_hm_block_lookup(p + 4096, &fs, &fp), HM_ERR_NOT_BLOCK);
        if (seg->aligned_huge) {
            /* the header sits one unit below the block: the aligned map marks the block's */
            assert_false(_hm_segmap_has((uintptr_t)p));
            assert_ptr_equal(_hm_aligned_huge_at((uintptr_t)p), seg);
        } else {
            assert_true(_hm_segmap_has((uintptr_t)seg));
            assert_ptr_equal(_hm_segment_of(p), seg);
        }
        /* the units of the block beyond its first are ours, but no block starts there */
        assert_true(
            _hm_unit_covered(((uintptr_t)p & ~(uintptr_t)HM_SEGMENT_MASK) + HM_SEGMENT_SIZE));
        memset(p, (int)i, usable);
        assert_false(_hm_segment_valid(seg)); /* not a standard segment */

        _hm_huge_free(seg); /* no cache: unmapped */
        assert_int_equal(unit_committed(&env), 0);
        assert_int_equal(env.heap->huge_count, 0);
        assert_null(env.heap->huge);
        assert_int_equal(_hm_block_lookup(p, &fs, &fp), HM_ERR_NOT_OWNED);
        assert_false(
            _hm_unit_covered(((uintptr_t)p & ~(uintptr_t)HM_SEGMENT_MASK) + HM_SEGMENT_SIZE));
    }
    unit_close(&env);
}

/* A freed huge block waits in the cache: a second free of it is reported, and the next block of
 * a fitting size takes its segment back. */
static void test_huge_cache_and_second_free(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 60000, 64 * MIB);
    hm_segment_t *seg = _hm_huge_alloc(th, 5 * MIB, HM_ALIGN, eTaskCritical);
    assert_non_null(seg);
    void *p = seg->pages[0].start;
    size_t committed = unit_committed(&env);
    _hm_huge_free(seg);
    assert_int_equal(atomic_load(&env.arena.cache_count), 1);
    assert_int_equal(unit_committed(&env), committed); /* kept for reuse */
    hm_segment_t *fs;
    hm_page_t *fp;
    assert_int_equal(_hm_block_lookup(p, &fs, &fp), HM_ERR_NOT_BLOCK);
    assert_int_equal(env.errors.calls, 0);
    assert_true(_hm_huge_freed_at(p));
    assert_int_equal(env.errors.calls, 1);
    assert_int_equal(env.errors.kind, HM_ERROR_DOUBLE_FREE);
    assert_ptr_equal(env.errors.ptr, p);
    assert_false(_hm_huge_freed_at((uint8_t *)p + 16)); /* not where a block started */
    assert_int_equal(env.errors.calls, 1);

    hm_segment_t *again = _hm_huge_alloc(th, 5 * MIB - 4096, HM_ALIGN, eTaskCritical);
    assert_ptr_equal(again, seg);
    assert_ptr_equal(again->pages[0].start, p);
    assert_int_equal(atomic_load(&env.arena.cache_count), 0);
    assert_false(_hm_huge_freed_at(p)); /* live again */
    assert_int_equal(env.errors.calls, 1);
    _hm_huge_free(again);
    _hm_cache_purge(&env.arena, true);
    assert_int_equal(unit_committed(&env), 0);
    assert_false(_hm_huge_freed_at(p)); /* unmapped: not ours at all */
    unit_close(&env);
}

/* A huge block is made in the smallest cached mapping that fits it, not in the newest: the
 * larger one stays for a larger block (a program replacing blocks of many sizes otherwise maps
 * and faults in new memory for the large ones while the small ones sit in mappings too big). */
static void test_huge_cache_best_fit(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 60000, 64 * MIB);
    hm_segment_t *small = _hm_huge_alloc(th, 7 * MIB, HM_ALIGN, eTaskCritical);
    hm_segment_t *large = _hm_huge_alloc(th, 11 * MIB, HM_ALIGN, eTaskCritical);
    assert_non_null(small);
    assert_non_null(large);
    assert_int_equal(small->size, 8 * MIB);
    assert_int_equal(large->size, 12 * MIB);
    _hm_huge_free(small);
    _hm_huge_free(large);
    assert_int_equal(atomic_load(&env.arena.cache_count), 2);
    assert_ptr_equal(env.arena.cache[1].seg, large); /* the newest: both fit a block of 7 MiB */
    hm_segment_t *again = _hm_huge_alloc(th, 7 * MIB, HM_ALIGN, eTaskCritical);
    assert_ptr_equal(again, small);
    hm_segment_t *big = _hm_huge_alloc(th, 11 * MIB, HM_ALIGN, eTaskCritical);
    assert_ptr_equal(big, large);
    assert_int_equal(atomic_load(&env.arena.cache_count), 0);
    _hm_huge_free(again);
    _hm_huge_free(big);
    _hm_cache_purge(&env.arena, true);
    assert_int_equal(unit_committed(&env), 0);
    unit_close(&env);
}

/* While huge blocks are being made from the cache, its expired entries stay committed (a
 * program that keeps replacing blocks of many sizes would otherwise fault in again the memory of
 * the sizes it asks for least often); once none has been made from it for the purge delay, the
 * next walk decommits them. The first check holds when no gap between the takes (the machine's
 * load decides) came near the delay. */
static void test_huge_cache_busy_keeps(void **state) {
    (void)state;
    enum { DELAY = 400 };
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, DELAY, 64 * MIB);
    hm_segment_t *kept = _hm_huge_alloc(th, 7 * MIB, HM_ALIGN, eTaskCritical); /* 8 MiB */
    hm_segment_t *used = _hm_huge_alloc(th, 2 * MIB, HM_ALIGN, eTaskCritical); /* 4 MiB */
    assert_non_null(kept);
    assert_non_null(used);
    size_t committed = kept->committed;
    _hm_huge_free(kept);
    _hm_huge_free(used);
    double t0 = tu_now_ms(), last = t0, gap = 0;
    while (tu_now_ms() - t0 < 2 * DELAY) {
        hm_segment_t *s = _hm_huge_alloc(th, 2 * MIB, HM_ALIGN, eTaskCritical);
        assert_ptr_equal(s, used); /* the 8 MiB mapping is too large for it */
        double t = tu_now_ms();
        gap = t - last > gap ? t - last : gap;
        last = t;
        _hm_huge_free(s); /* into the cache, which is walked */
        tu_sleep_ms(20);
    }
    _hm_cache_purge(&env.arena, false);
    gap = tu_now_ms() - last > gap ? tu_now_ms() - last : gap;
    if (gap < DELAY - 100) assert_int_equal(kept->committed, committed);
    tu_sleep_ms(DELAY + DELAY / 4 + 50); /* no take for the delay, and the walk due */
    _hm_cache_purge(&env.arena, false);
    assert_true(kept->committed < committed);
    assert_true(used->committed < 2 * MIB);
    _hm_cache_purge(&env.arena, true);
    assert_int_equal(unit_committed(&env), 0);
    unit_close(&env);
}

/* Held huge blocks: a ring of HM_HELD_MAX; the oldest leaves for the cache; a second free of any
 * of them is reported; a forced purge empties ring and cache. */
static void test_huge_held_ring(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 60000, 64 * MIB);
    hm_segment_t *segs[HM_HELD_MAX + 1];
    void *blocks[HM_HELD_MAX + 1];
    for (size_t i = 0; i <= HM_HELD_MAX; i++) {
        segs[i] = _hm_huge_alloc(th, 100 * KIB, HM_ALIGN, eTaskCritical);
        assert_non_null(segs[i]);
        blocks[i] = segs[i]->pages[0].start;
    }
    size_t committed = unit_committed(&env);
    for (size_t i = 0; i < HM_HELD_MAX; i++) {
        _hm_huge_hold(segs[i], NULL);
        assert_true(segs[i]->held);
        assert_null(segs[i]->heap);
        assert_int_equal(_hm_held_mapped(&env.arena), (i + 1) * HM_SEGMENT_SIZE);
    }
    assert_int_equal(env.heap->huge_count, 1);
    assert_int_equal(atomic_load(&env.arena.cache_count), 0);
    assert_int_equal(unit_committed(&env), committed); /* held blocks stay committed */
    for (size_t i = 0; i < HM_HELD_MAX; i++) {
        int calls = env.errors.calls;
        assert_true(_hm_huge_freed_at(blocks[i]));
        assert_int_equal(env.errors.calls, calls + 1);
        assert_int_equal(env.errors.kind, HM_ERROR_DOUBLE_FREE);
        assert_ptr_equal(env.errors.ptr, blocks[i]);
    }
    /* one more, its block made inaccessible while held: the oldest leaves the ring for the
     * cache, where a second free is still known */
    uint8_t *from = (uint8_t *)blocks[HM_HELD_MAX];
    hm_os_mapping_t m;
    _hm_huge_hold(segs[HM_HELD_MAX], from);
    assert_ptr_equal(segs[HM_HELD_MAX]->prot_none, from);
    assert_true(_hm_os_query((uintptr_t)from, &m));
    assert_false(m.read || m.write);
    assert_true(m.end == (uintptr_t)segs[HM_HELD_MAX]->base + segs[HM_HELD_MAX]->size);
    assert_true(_hm_os_query((uintptr_t)from - 1, &m)); /* the header page stays */
    assert_true(m.read && m.write);
    assert_false(segs[0]->held);
    assert_int_equal(atomic_load(&env.arena.cache_count), 1);
    assert_ptr_equal(env.arena.cache[0].seg, segs[0]);
    assert_int_equal(_hm_held_mapped(&env.arena), HM_HELD_MAX * HM_SEGMENT_SIZE);
    int calls = env.errors.calls;
    assert_true(_hm_huge_freed_at(blocks[0]));
    assert_true(_hm_huge_freed_at(blocks[HM_HELD_MAX]));
    assert_int_equal(env.errors.calls, calls + 2);
    assert_int_equal(env.heap->huge_count, 0);

    /* the ring into the cache, where its pages stay inaccessible (test_huge_guard) */
    _hm_held_flush(&env.arena);
    assert_ptr_equal(segs[HM_HELD_MAX]->prot_none, from);
    /* memory is wanted: the ring goes into the cache, and the cache out */
    _hm_cache_purge(&env.arena, true);
    assert_int_equal(_hm_held_mapped(&env.arena), 0);
    assert_int_equal(atomic_load(&env.arena.cache_count), 0);
    assert_int_equal(unit_committed(&env), 0);
    calls = env.errors.calls;
    for (size_t i = 0; i <= HM_HELD_MAX; i++)
        assert_false(_hm_huge_freed_at(blocks[i]));
    assert_int_equal(env.errors.calls, calls);
    unit_close(&env);
}

/* A guarded huge block: the page after it inaccessible, the block's pages not. Held with its
 * pages inaccessible, then in the cache (still inaccessible), then made again: exactly the new
 * block's pages are accessible again (one boundary, moved each time), for a guarded block and
 * for a plain one. */
/* An arena whose cache keeps huge mappings, and a guarded block of 100 KiB in it: its bytes
 * from `*start` to `*end`, where its guard page begins. */
static hm_segment_t *guarded_block(unit_env_t *env, uint8_t **start, uint8_t **end) {
    unit_open(env, LIMIT, 60000, 64 * MIB);
    hm_segment_t *seg = _hm_huge_alloc_guarded(env->th, 100 * KIB, eTaskCritical);
    assert_non_null(seg);
    *start = seg->pages[0].start;
    *end = *start + seg->huge_size;
    return seg;
}

static void test_huge_guard(void **state) {
    (void)state;
    unit_env_t env;
    uint8_t *start, *end;
    hm_segment_t *seg = guarded_block(&env, &start, &end);
    hm_theap_t *th = env.th;
    hm_os_mapping_t m;
    assert_int_equal(seg->huge_size, 100 * KIB);
    assert_ptr_equal(seg->prot_none, end);
    memset(start, 1, seg->huge_size);
    assert_true(_hm_os_query((uintptr_t)end, &m));
    assert_false(m.read || m.write);
    assert_true(m.end == (uintptr_t)seg->base + seg->size);
    _hm_huge_hold(seg, start);
    assert_ptr_equal(seg->prot_none, start);
    assert_true(_hm_os_query((uintptr_t)start, &m));
    assert_false(m.read || m.write);
    _hm_held_flush(&env.arena);
    assert_ptr_equal(seg->prot_none, start); /* the cache keeps it so */
    hm_segment_t *again = _hm_huge_alloc_guarded(th, 50 * KIB, eTaskCritical);
    assert_ptr_equal(again, seg);
    uint8_t *end2 = again->pages[0].start + again->huge_size;
    assert_ptr_equal(again->prot_none, end2);
    memset(again->pages[0].start, 1, again->huge_size);
    assert_true(_hm_os_query((uintptr_t)end2, &m));
    assert_false(m.read || m.write);
    _hm_huge_free(again);
    hm_segment_t *plain = _hm_huge_alloc(th, 200 * KIB, HM_ALIGN, eTaskCritical);
    assert_ptr_equal(plain, seg);
    memset(plain->pages[0].start, 1, plain->huge_size); /* all of it accessible again */
    _hm_huge_free(plain);
    _hm_cache_purge(&env.arena, true);
    assert_int_equal(unit_committed(&env), 0);
    unit_close(&env);
}

/* Hold `seg`'s block (its pages left accessible, as when protections are paced out), let it go
 * to the cache, and make a guarded block of `size` there again: the same mapping, `usable`
 * bytes, its guard page where the inaccessible stretch begins, all of it writable. */
static hm_segment_t *remade_guarded(unit_env_t *env, hm_segment_t *seg, size_t size, size_t usable,
                                    int fill) {
    _hm_huge_hold(seg, NULL);
    _hm_held_flush(&env->arena);
    hm_segment_t *again = _hm_huge_alloc_guarded(env->th, size, eTaskCritical);
    assert_ptr_equal(again, seg);
    assert_int_equal(again->huge_size, usable);
    uint8_t *end = again->pages[0].start + again->huge_size;
    assert_ptr_equal(again->prot_none, end);
    hm_os_mapping_t m;
    assert_true(_hm_os_query((uintptr_t)end, &m));
    assert_false(m.read || m.write);
    memset(again->pages[0].start, fill, again->huge_size);
    return again;
}

/* A guarded block made in a cached mapping whose guard page lies past the block's end, by no
 * more than the block's size, is given the room up to that guard: the boundary stays where it
 * is (no mprotect), and the usable size grows. Farther away, or before the block's end, the
 * boundary moves to the block's end as before. */
static void test_huge_guard_kept(void **state) {
    (void)state;
    unit_env_t env;
    uint8_t *start, *end;
    hm_segment_t *seg = guarded_block(&env, &start, &end);
    memset(start, 1, seg->huge_size);
    /* smaller by less than its size: up to the guard that was there, which stays */
    remade_guarded(&env, seg, 90 * KIB, 100 * KIB, 2);
    assert_ptr_equal(seg->prot_none, end);
    /* larger: the boundary moves out to the new end */
    remade_guarded(&env, seg, 160 * KIB, 160 * KIB, 3);
    /* much smaller (the guard more than the block's size away): the boundary moves in */
    hm_segment_t *small = remade_guarded(&env, seg, 40 * KIB, 40 * KIB, 4);
    _hm_huge_free(small);
    _hm_cache_purge(&env.arena, true);
    assert_int_equal(unit_committed(&env), 0);
    unit_close(&env);
}

/* ---- invariants
 * ---------------------------------------------------------------------------------- */
static void test_segment_valid(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    void *p = _hm_theap_alloc_block(th, _hm_bin_of(1000), eTaskCritical);
    assert_non_null(p);
    hm_segment_t *seg = _hm_segment_of(p);
    assert_true(_hm_segment_valid(seg));
    assert_false(_hm_segment_valid(NULL));
    assert_false(_hm_segment_valid((const hm_segment_t *)((uint8_t *)seg + 4096)));
    /* one field broken at a time, then restored */
    seg->used_pages++;
    assert_false(_hm_segment_valid(seg));
    seg->used_pages--;
    assert_true(_hm_segment_valid(seg));
    seg->page_shift = HM_MEDIUM_PAGE_SHIFT;
    assert_false(_hm_segment_valid(seg));
    seg->page_shift = HM_SMALL_PAGE_SHIFT;
    size_t c = seg->committed;
    seg->committed = c + SMALL_PAGE; /* more counted than its pages */
    assert_false(_hm_segment_valid(seg));
    seg->committed = c;
    hm_page_t *pg = _hm_page_of(seg, p);
    uint16_t cap = pg->capacity;
    pg->capacity = (uint16_t)(pg->reserved + 1);
    assert_false(_hm_segment_valid(seg));
    assert_false(_hm_page_valid(pg));
    pg->capacity = cap;
    pg->committed = 0;
    assert_false(_hm_segment_valid(seg)); /* a page in use that is not committed */
    pg->committed = 1;
    assert_true(_hm_segment_valid(seg));
    assert_true(_hm_theap_valid(th));
    assert_int_equal(unit_free(p), HM_OK);
    unit_close(&env);
}

/* Medium pages by the arena's limit: 128 KiB below HM_MEDIUM_BIG_LIMIT (every page counts whole
 * against a budget that may be small), 256 KiB from it on; either geometry a valid segment,
 * its first page counted in full and given back in full. */
static void medium_geometry(size_t limit, uint32_t shift) {
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, limit, 0, 0);
    assert_int_equal(env.arena.medium_shift, shift);
    size_t bin = _hm_bin_of(40000);
    void *p[8];
    for (int i = 0; i < 8; i++) {
        p[i] = _hm_theap_alloc_block(th, bin, eTaskCritical);
        assert_non_null(p[i]);
        memset(p[i], 0x5a, 40000);
        if (i == 0) assert_int_equal(unit_committed(&env), (size_t)1 << shift); /* page 0 whole */
    }
    hm_segment_t *seg;
    hm_page_t *pg = unit_page_of(p[0], &seg);
    assert_int_equal(seg->kind, HM_SEG_MEDIUM);
    assert_int_equal(seg->page_shift, shift);
    assert_int_equal(seg->page_count, HM_SEGMENT_SIZE >> shift);
    assert_true(_hm_segment_valid(seg));
    /* page 0 holds the header: its blocks are what fits after it */
    size_t header = _hm_segment_header_size(seg->page_count);
    assert_int_equal(pg->reserved, (((size_t)1 << shift) - header) / pg->block_size);
    /* the eight blocks span whole pages, each counted whole */
    hm_page_t *last = unit_page_of(p[7], &seg);
    size_t pages = (size_t)(last - &seg->pages[0]) + 1;
    assert_true(pages >= 2);
    assert_int_equal(unit_committed(&env), pages << shift);
    for (int i = 0; i < 8; i++)
        assert_int_equal(unit_free(p[i]), HM_OK);
    _hm_theap_collect(th, true, true);
    unit_close(&env); /* every committed byte back */
}

static void test_medium_pages_by_limit(void **state) {
    (void)state;
    medium_geometry(HM_MEDIUM_BIG_LIMIT - 1, HM_MEDIUM_PAGE_SHIFT);
    medium_geometry(HM_MEDIUM_BIG_LIMIT, HM_MEDIUM_BIG_SHIFT);
}

TU_TEST_MAIN(test_segmap, test_segment_alloc_free, test_cache_takes_back,
             test_cache_takes_same_kind, test_cache_entry_limit, test_cache_purge_exact,
             test_cache_reuse_decommitted_same_kind, test_cache_reuse_decommitted_other_kind,
             test_huge_alignments, test_huge_cache_and_second_free, test_huge_cache_best_fit,
             test_huge_cache_busy_keeps, test_huge_held_ring, test_huge_guard, test_huge_guard_kept,
             test_segment_valid, test_medium_pages_by_limit)
