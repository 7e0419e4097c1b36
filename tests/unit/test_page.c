/* SPDX-License-Identifier: MIT */
/* test_page.c: size classes and pages (mem/page.h), driven directly on a sub-heap of a heap of
 * an arena: blocks carved from a page's free list, the owner's frees and other threads' frees
 * and their collection, the free mark, a page that fills up (out of its queue) and comes back,
 * empty pages retired by a collection. After each step the page and sub-heap invariants
 * (_hm_page_valid, _hm_theap_valid) must hold, and the budget must count exactly the pages in
 * use. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "unit_env.h"

#define LIMIT      (64 * MIB)
#define SMALL_PAGE ((size_t)1 << HM_SMALL_PAGE_SHIFT)

/* ---- size classes ---------------------------------------------------------------------------- */
static void test_bins_round_trip(void **state) {
    (void)state;
    assert_int_equal(_hm_bin_of(0), 1);
    assert_int_equal(_hm_bin_of(1), 1);
    assert_int_equal(_hm_bin_size(1), 16);
    assert_int_equal(_hm_bin_of(HM_DIRECT_MAX), 32);
    assert_int_equal(_hm_bin_size(32), HM_DIRECT_MAX);
    assert_int_equal(_hm_bin_of(HM_DIRECT_MAX + 1), 33);
    assert_int_equal(_hm_bin_size(33), 1280);
    assert_int_equal(_hm_bin_of(HM_SMALL_MAX), 44);
    assert_int_equal(_hm_bin_of(HM_MEDIUM_MAX), 56);
    assert_int_equal(_hm_bin_size(56), HM_MEDIUM_MAX);
    assert_int_equal(_hm_bin_size(57), HM_DEBUG_SLOT_MAX);
    assert_int_equal(_hm_bin_of(HM_LARGE_MAX), HM_BIN_COUNT - 1);
    assert_int_equal(_hm_bin_size(HM_BIN_COUNT - 1), HM_LARGE_MAX);
    size_t prev = 0;
    for (size_t bin = 1; bin < HM_BIN_COUNT; bin++) {
        size_t bs = _hm_bin_size(bin);
        if (bs <= prev)
            fail_msg("bin %zu: %zu bytes, not above bin %zu's %zu", bin, bs, bin - 1, prev);
        if (bs % HM_ALIGN != 0) fail_msg("bin %zu: %zu bytes, not a multiple of 16", bin, bs);
        if (_hm_bin_of(bs) != bin)
            fail_msg("bin %zu: _hm_bin_of(%zu) = %zu", bin, bs, _hm_bin_of(bs));
        if (_hm_bin_of(prev + 1) != bin)
            fail_msg("bin %zu: _hm_bin_of(%zu) = %zu", bin, prev + 1, _hm_bin_of(prev + 1));
        prev = bs;
    }
    /* every size up to the large limit: the smallest class that holds it, less than 1/8
     * larger than the request once the classes are no longer exact (above 256 bytes), less
     * than 1/4 above the direct sizes (4 classes a doubling), and every power of two a class */
    size_t last_bin = 1;
    for (size_t size = 1; size <= HM_LARGE_MAX; size++) {
        size_t bin = _hm_bin_of(size);
        size_t bs = _hm_bin_size(bin);
        if (bin < last_bin) fail_msg("_hm_bin_of is not monotone at %zu", size);
        last_bin = bin;
        if (bs < size) fail_msg("size %zu: bin %zu of %zu bytes", size, bin, bs);
        if (bin > 1 && _hm_bin_size(bin - 1) >= size)
            fail_msg("size %zu: bin %zu, but bin %zu holds it", size, bin, bin - 1);
        if (size > 256 && size <= HM_DIRECT_MAX && (bs - size) * 8 >= size)
            fail_msg("size %zu: bin of %zu bytes wastes 12.5 %% or more", size, bs);
        if (size > HM_DIRECT_MAX && (bs - size) * 4 >= size)
            fail_msg("size %zu: bin of %zu bytes wastes 25 %% or more", size, bs);
        if (size >= 16 && (size & (size - 1)) == 0 && bs != size)
            fail_msg("size %zu (a power of two): bin of %zu bytes", size, bs);
        if (size <= 256 && bs - size >= 16) fail_msg("size %zu: exact class of %zu", size, bs);
    }
    assert_true(_hm_bin_of(HM_MEDIUM_MAX + 1) > 56);
}

/* ---- the block check of every free (types.h, _hm_block_check) ------------------------------
 * One product and one compare must say exactly "a block start of the carved area" for every
 * offset a free can give it: anywhere in a 4 MiB segment around the page, for every size class,
 * a page carved not at all, by one block and in full, and for a huge block's page. */
static bool block_ref(int64_t off, size_t area, size_t bs) {
    return off >= 0 && (size_t)off < area && (size_t)off % bs == 0;
}

static void check_offsets(hm_page_t *pg, size_t bs, int64_t from, int64_t to, int64_t step) {
    size_t area = _hm_page_area(pg);
    for (int64_t off = from; off < to; off += step)
        if (_hm_block_check(pg, (size_t)off) != block_ref(off, area, bs))
            fail_msg("block size %zu, area %zu: offset %lld judged %d", bs, area, (long long)off,
                     (int)_hm_block_check(pg, (size_t)off));
}

static void test_block_check(void **state) {
    (void)state;
    const int64_t seg = (int64_t)HM_SEGMENT_SIZE;
    for (size_t bin = 1; bin < HM_BIN_COUNT; bin++) {
        size_t bs = _hm_bin_size(bin);
        size_t page = bs <= HM_SMALL_MAX ? SMALL_PAGE : (size_t)1 << HM_MEDIUM_PAGE_SHIFT;
        size_t full = page / bs;
        size_t caps[3] = {0, 1, full};
        hm_page_t pg;
        memset(&pg, 0, sizeof pg);
        pg.block_size = (uint32_t)bs;
        pg.div_magic = _hm_div_magic(bs);
        for (int c = 0; c < 3; c++) {
            _hm_page_set_area(&pg, caps[c] * bs);
            int64_t area = (int64_t)(caps[c] * bs);
            /* every offset in and around the page */
            check_offsets(&pg, bs, -2 * (int64_t)bs - 64, area + 2 * (int64_t)bs + 64, 1);
            /* both sides of every multiple of the size within a segment, before and after */
            for (int64_t m = -seg; m <= seg; m += (int64_t)bs)
                check_offsets(&pg, bs, m - 1, m + 2, 1);
        }
    }
    /* a huge block's page: offset 0 only */
    hm_page_t pg;
    memset(&pg, 0, sizeof pg);
    pg.div_magic = 1;
    _hm_page_set_area(&pg, 1);
    assert_true(_hm_block_check(&pg, 0));
    const size_t far[] = {1,          16,         4096, HM_SEGMENT_SIZE - 1, HM_SEGMENT_SIZE,
                          (size_t)-1, (size_t)-16};
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++)
        assert_false(_hm_block_check(&pg, far[i]));
}

/* ---- blocks ---------------------------------------------------------------------------------- */
static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

/* Blocks of one class: distinct, in the page, aligned, counted; the budget counts the page. */
static void test_blocks_from_page(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    size_t bin = _hm_bin_of(48);
    assert_int_equal(_hm_bin_size(bin), 48);
    enum { N = 200 };
    void *p[N];
    hm_page_t *pg = NULL;
    for (int i = 0; i < N; i++) {
        p[i] = i % 2 ? _hm_theap_alloc_block(th, bin, eTaskCritical)
                     : _hm_page_alloc(th, bin, eTaskCritical);
        assert_non_null(p[i]);
        assert_true(tu_is_aligned(p[i], HM_ALIGN));
        hm_segment_t *seg;
        hm_page_t *q = unit_page_of(p[i], &seg);
        if (pg == NULL) pg = q;
        assert_ptr_equal(q, pg); /* 200 blocks of 48 bytes: all on the first page */
        assert_true(_hm_segmap_has((uintptr_t)seg));
        assert_ptr_equal(seg->theap, th);
        assert_ptr_equal(seg->heap, env.heap);
        assert_int_equal(pg->block_size, 48);
        size_t off = (size_t)((uint8_t *)p[i] - pg->start);
        assert_true(off < _hm_page_area(pg));
        assert_int_equal(off % 48, 0);
        assert_null(_hm_mark_get(p[i])); /* live: unmarked */
        assert_false(_hm_page_block_is_free(pg, p[i]));
        assert_int_equal(_hm_page_live(pg), i + 1);
        memset(p[i], i, 48);
    }
    for (int i = 0; i < N; i++)
        for (size_t k = 0; k < 48; k++)
            assert_int_equal(((uint8_t *)p[i])[k], (uint8_t)i); /* no two overlap */
    qsort(p, N, sizeof p[0], cmp_ptr);
    for (int i = 1; i < N; i++)
        assert_true((uintptr_t)p[i] >= (uintptr_t)p[i - 1] + 48);
    assert_true(_hm_page_valid(pg));
    assert_true(_hm_theap_valid(th));
    assert_true(_hm_segment_valid(_hm_segment_of(pg)));
    /* one small segment, its first page (with the header) the only one counted */
    assert_int_equal(unit_committed(&env), SMALL_PAGE);
    assert_int_equal(atomic_load(&env.heap->committed), SMALL_PAGE);
    assert_int_equal(unit_queue_len(th, bin), 1);
    assert_ptr_equal(th->queues[bin].first, pg);
    assert_true(_hm_page_is_head(pg));
    for (int i = 0; i < N; i++)
        assert_int_equal(unit_free(p[i]), HM_OK);
    assert_int_equal(_hm_page_live(pg), 0);
    assert_true(_hm_page_valid(pg));
    unit_close(&env);
}

/* The owner's free: onto the page's list with the free mark, handed out again first; a second
 * free is reported (and changes nothing); a mark the program wrote is no free. */
static void test_free_owner_and_mark(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    size_t bin = _hm_bin_of(100);
    void *p[10];
    for (int i = 0; i < 10; i++)
        assert_non_null(p[i] = _hm_theap_alloc_block(th, bin, eTaskCritical));
    hm_segment_t *seg;
    hm_page_t *pg = unit_page_of(p[5], &seg);
    assert_int_equal(_hm_page_live(pg), 10);

    assert_int_equal(_hm_page_free(seg, pg, p[5]), HM_OK);
    assert_int_equal(_hm_page_live(pg), 9);
    assert_ptr_equal(_hm_mark_get(p[5]), pg);
    assert_ptr_equal(pg->free, p[5]);
    assert_true(_hm_page_block_is_free(pg, p[5]));
    for (int i = 0; i < 10; i++)
        if (i != 5) assert_false(_hm_page_block_is_free(pg, p[i]));
    assert_true(_hm_page_valid(pg));
    assert_true(_hm_theap_valid(th));

    /* a second free: reported to the arena's sink, nothing changed */
    assert_int_equal(_hm_page_free(seg, pg, p[5]), HM_ERR_NOT_BLOCK);
    assert_int_equal(env.errors.calls, 1);
    assert_int_equal(env.errors.kind, HM_ERROR_DOUBLE_FREE);
    assert_ptr_equal(env.errors.ptr, p[5]);
    assert_true(tu_one_line(env.errors.message));
    assert_int_equal(_hm_page_live(pg), 9);
    assert_ptr_equal(pg->free, p[5]);
    assert_true(_hm_page_valid(pg));

    /* last freed, first handed out again: unmarked */
    void *again = _hm_page_alloc(th, bin, eTaskCritical);
    assert_ptr_equal(again, p[5]);
    assert_null(_hm_mark_get(again));
    assert_int_equal(_hm_page_live(pg), 10);

    /* the program writes the page's address where the mark goes: still a normal free */
    _hm_mark_set(p[3], pg);
    assert_int_equal(_hm_page_free(seg, pg, p[3]), HM_OK);
    assert_int_equal(env.errors.calls, 1);
    assert_int_equal(_hm_page_live(pg), 9);
    assert_true(_hm_page_block_is_free(pg, p[3]));
    assert_true(_hm_page_valid(pg));

    for (int i = 0; i < 10; i++)
        if (i != 3) assert_int_equal(unit_free(p[i]), HM_OK);
    assert_int_equal(_hm_page_live(pg), 0);
    unit_close(&env);
}

/* The head page (the first of its queue, the one allocation goes on from) carries
 * HM_USED_HEAD in its count, which moves with the queue: the free fast path reports an emptied
 * page by its count alone, and the head page, emptied, is never reported (it stays for reuse). */
static void test_head_page_count(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    size_t bin = _hm_bin_of(4096);
    enum { N = 64 };
    void *p[N];
    hm_segment_t *seg;
    hm_page_t *first = NULL, *second = NULL;
    int n = 0;
    /* until a second page serves the class: the first is full (out of the queue) */
    while (second == NULL) {
        assert_true(n < N);
        assert_non_null(p[n] = _hm_theap_alloc_block(th, bin, eTaskCritical));
        hm_page_t *pg = unit_page_of(p[n], &seg);
        if (first == NULL) first = pg;
        if (pg != first) second = pg;
        n++;
    }
    assert_true(_hm_page_in_full(first));
    assert_false(_hm_page_is_head(first));
    assert_true(_hm_page_is_head(second));
    assert_int_equal(_hm_page_live(second), 1);
    assert_true(_hm_theap_valid(th));
    /* a free of the full page puts it back at the end of the queue: not the head */
    assert_int_equal(unit_free(p[0]), HM_OK);
    assert_false(_hm_page_in_full(first));
    assert_false(_hm_page_is_head(first));
    assert_ptr_equal(th->queues[bin].first, second);
    assert_true(_hm_theap_valid(th));
    /* the first page's last free is reported as emptying it, the fast path alone telling */
    for (int i = 1; i < n - 1; i++) {
        hm_page_t *pg = unit_page_of(p[i], &seg);
        assert_ptr_equal(pg, first);
        int what = _hm_page_free_try(seg, pg, p[i]);
        assert_int_equal(what, i == n - 2 ? HM_FREE_EMPTIED : HM_FREED);
        if (what != HM_FREED) assert_int_equal(_hm_page_free_rest(seg, pg, p[i], what), HM_OK);
    }
    assert_int_equal(_hm_page_live(first), 0);
    assert_true(unit_in_queue(th, first)); /* nothing short: it stays */
    /* the head page's last free: freed, not reported, the page still the head */
    hm_page_t *pg = unit_page_of(p[n - 1], &seg);
    assert_int_equal(_hm_page_free_try(seg, pg, p[n - 1]), HM_FREED);
    assert_int_equal(_hm_page_live(second), 0);
    assert_true(_hm_page_is_head(second));
    assert_int_equal(second->used, HM_USED_HEAD);
    assert_true(_hm_theap_valid(th));
    /* a collection retires the head (the class keeps its last page): the next page becomes
     * the head, the retired page's count holds nothing */
    _hm_theap_collect(th, false, false);
    assert_int_equal(unit_queue_len(th, bin), 1);
    hm_page_t *kept = th->queues[bin].first;
    assert_true(_hm_page_is_head(kept));
    hm_page_t *gone = kept == first ? second : first;
    assert_int_equal(gone->block_size, 0);
    assert_int_equal(gone->used, 0);
    assert_true(_hm_theap_valid(th));
    /* the kept page serves on, and its count holds the blocks and the head bit */
    void *again = _hm_theap_alloc_block(th, bin, eTaskCritical);
    assert_ptr_equal(unit_page_of(again, &seg), kept);
    assert_int_equal(kept->used, HM_USED_HEAD | 1);
    assert_int_equal(unit_free(again), HM_OK);
    unit_close(&env);
}

/* ---- other threads' frees ---------------------------------------------------------------------
 */
static void test_free_remote_then_collect(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    size_t bin = _hm_bin_of(256);
    void *p[20];
    for (int i = 0; i < 20; i++)
        assert_non_null(p[i] = _hm_theap_alloc_block(th, bin, eTaskCritical));
    hm_segment_t *seg;
    hm_page_t *pg = unit_page_of(p[0], &seg);
    void *far[5] = {p[2], p[4], p[6], p[8], p[10]};
    unit_free_remote(far, 5);
    /* pushed on thread_free: still counted as used until the owner collects */
    assert_int_equal(_hm_page_live(pg), 20);
    assert_int_not_equal(atomic_load(&pg->thread_free) & ~HM_TF_MASK, 0);
    for (int i = 0; i < 5; i++) {
        assert_true(_hm_page_block_is_free(pg, far[i]));
        assert_ptr_equal(_hm_mark_get(far[i]), pg);
    }
    assert_false(_hm_page_block_is_free(pg, p[3]));
    assert_true(_hm_page_valid(pg));
    /* the same push, called by the owner directly */
    assert_int_equal(_hm_page_free_remote(pg, seg, p[12]), HM_OK);
    assert_int_equal(_hm_page_live(pg), 20);
    assert_true(_hm_page_block_is_free(pg, p[12]));

    _hm_page_collect(pg);
    assert_int_equal(_hm_page_live(pg), 14);
    assert_int_equal(atomic_load(&pg->thread_free) & ~HM_TF_MASK, 0);
    for (int i = 0; i < 5; i++)
        assert_true(_hm_page_block_is_free(pg, far[i]));
    assert_true(_hm_page_block_is_free(pg, p[12]));
    assert_true(_hm_page_valid(pg));
    assert_true(_hm_theap_valid(th));
    _hm_page_collect(pg); /* nothing more: nothing changes */
    assert_int_equal(_hm_page_live(pg), 14);

    /* the collected blocks are handed out again, all six of them, each once */
    void *q[6];
    for (int i = 0; i < 6; i++) {
        q[i] = _hm_page_alloc(th, bin, eTaskCritical);
        assert_ptr_equal(unit_page_of(q[i], NULL), pg);
        for (int k = 0; k < i; k++)
            assert_ptr_not_equal(q[i], q[k]);
        bool was_freed = q[i] == p[12];
        for (int k = 0; k < 5; k++)
            was_freed = was_freed || q[i] == far[k];
        assert_true(was_freed);
    }
    assert_int_equal(_hm_page_live(pg), 20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(unit_free(p[i]), HM_OK);
    assert_int_equal(_hm_page_live(pg), 0);
    unit_close(&env);
}

/* Other threads' pushes count themselves in thread_free's top bits; an owner whose page has no
 * free block takes the list as it stands, by that count, with no walk. A count that cannot be
 * right (more than the page has live) is not trusted: the list is walked and counted. A list
 * longer than the page's live blocks (a cycle) is reported and left out, and the walk ends. */
static void test_collect_by_count(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    size_t bin = _hm_bin_of(256);
    void *p[16];
    p[0] = _hm_theap_alloc_block(th, bin, eTaskCritical);
    assert_non_null(p[0]);
    hm_segment_t *seg;
    hm_page_t *pg = unit_page_of(p[0], &seg);
    int n = 1;
    while (pg->free != NULL) {
        assert_true(n < 16);
        p[n] = _hm_theap_alloc_block(th, bin, eTaskCritical);
        assert_ptr_equal(unit_page_of(p[n], NULL), pg);
        n++;
    }
    uint32_t live = _hm_page_live(pg);
    assert_int_equal(live, n);

    void *far[5] = {p[1], p[3], p[5], p[7], p[9]};
    unit_free_remote(far, 5);
    uintptr_t tf = atomic_load(&pg->thread_free);
    assert_int_equal(tf >> HM_TF_COUNT_SHIFT, 5);
    assert_ptr_equal((void *)(tf & HM_TF_LIST), far[4]); /* the last pushed is first */
    /* the word says 4 where 5 were pushed: only a collect that trusts the count (no walk)
     * takes 4 off the page's count; a walk would take 5 */
    atomic_store(&pg->thread_free, (tf & (HM_TF_LIST | HM_TF_MASK)) | (4 * HM_TF_ONE));
    _hm_page_collect(pg);
    assert_int_equal(atomic_load(&pg->thread_free), HM_TF_NORMAL);
    assert_int_equal(_hm_page_live(pg), live - 4);
    pg->used--; /* the fifth block, which the forged word left out */
    /* the list as it was pushed: newest first */
    hm_block_t *b = pg->free;
    for (int i = 4; i >= 0; i--) {
        assert_ptr_equal(b, far[i]);
        b = b->next;
    }
    assert_null(b);
    assert_true(_hm_page_valid(pg));
    for (int i = 0; i < 5; i++)
        assert_ptr_equal(_hm_page_alloc(th, bin, eTaskCritical), far[4 - i]);
    assert_null(pg->free);
    assert_int_equal(_hm_page_live(pg), live);

    /* three pushes, and a count in the word that no page can have live: walked instead */
    unit_free_remote(&p[10], 3);
    tf = atomic_load(&pg->thread_free);
    assert_int_equal(tf >> HM_TF_COUNT_SHIFT, 3);
    atomic_store(&pg->thread_free, (tf & (HM_TF_LIST | HM_TF_MASK)) | (0xFFFFu * HM_TF_ONE));
    _hm_page_collect(pg);
    assert_int_equal(_hm_page_live(pg), live - 3);
    assert_true(_hm_page_valid(pg));

    /* a block on the list twice (two threads freed it at once: a cycle), found by the walk of
     * a page that has free blocks: one report, the count unchanged, nothing of the list handed
     * out, and the walk ends */
    hm_block_t *x = p[0];
    x->next = x;
    _hm_mark_set(x, pg);
    atomic_store(&pg->thread_free, (uintptr_t)x | HM_TF_ONE);
    int reports = env.errors.calls;
    uint32_t before = _hm_page_live(pg);
    _hm_page_collect(pg);
    assert_int_equal(env.errors.calls, reports + 1);
    assert_ptr_equal(env.errors.ptr, x);
    assert_int_equal(_hm_page_live(pg), before);
    assert_int_equal(atomic_load(&pg->thread_free), HM_TF_NORMAL);
    assert_false(_hm_page_block_is_free(pg, x));
    x->next = NULL;
    _hm_mark_set(x, NULL); /* live again, as the program holds it */
    /* a -> b -> c -> b: the report names b, where the cycle closes, not the block the walk
     * stopped at */
    hm_block_t *a = p[2], *bb = p[4], *c = p[6];
    a->next = bb;
    bb->next = c;
    c->next = bb;
    atomic_store(&pg->thread_free, (uintptr_t)a | (3 * HM_TF_ONE));
    _hm_page_collect(pg);
    assert_int_equal(env.errors.calls, reports + 2);
    assert_ptr_equal(env.errors.ptr, bb);
    assert_int_equal(_hm_page_live(pg), before);
    a->next = bb->next = c->next = NULL; /* the three are live to the program */

    for (int i = 0; i < n; i++)
        if (i < 10 || i > 12) assert_int_equal(unit_free(p[i]), HM_OK);
    assert_int_equal(_hm_page_live(pg), 0);
    unit_close(&env);
}

/* ---- a page filled up and given back ------------------------------------------------------------
 */
/* Allocate from `bin` until the page of the first block has handed out all it holds. */
static hm_page_t *fill_first_page(hm_theap_t *th, size_t bin, void **blocks, size_t *n) {
    blocks[0] = _hm_theap_alloc_block(th, bin, eTaskCritical);
    assert_non_null(blocks[0]);
    hm_page_t *pg = unit_page_of(blocks[0], NULL);
    *n = 1;
    while (_hm_page_live(pg) < pg->reserved) {
        blocks[*n] = _hm_theap_alloc_block(th, bin, eTaskCritical);
        assert_ptr_equal(unit_page_of(blocks[*n], NULL), pg);
        (*n)++;
    }
    assert_null(pg->free);
    assert_int_equal(pg->capacity, pg->reserved);
    return pg;
}

/* Full: out of its queue, its frees on the slow path; the owner's free puts it back. */
static void test_full_page_owner_free(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    size_t bin = _hm_bin_of(HM_SMALL_MAX); /* 8 KiB: a handful a page */
    void *a[16];
    size_t na;
    hm_page_t *pa = fill_first_page(th, bin, a, &na);
    assert_int_equal(na, pa->reserved);
    assert_false(pa->in_full); /* still in its queue: nobody looked yet */
    void *b = _hm_theap_alloc_block(th, bin, eTaskCritical);
    hm_page_t *pb = unit_page_of(b, NULL);
    assert_ptr_not_equal(pb, pa);
    /* the next request found pa without a free block: out of its queue as full */
    assert_true(pa->in_full);
    assert_true(pa->used & HM_USED_SLOW);
    assert_int_equal(_hm_page_live(pa), na);
    assert_false(unit_in_queue(th, pa));
    assert_ptr_equal(th->queues[bin].first, pb);
    assert_int_equal(unit_queue_len(th, bin), 1);
    assert_int_equal(atomic_load(&pa->thread_free) & HM_TF_MASK, HM_TF_FULL);
    assert_true(_hm_page_valid(pa));
    assert_true(_hm_theap_valid(th));
    assert_int_equal(unit_committed(&env), 2 * SMALL_PAGE);

    /* the owner frees one: the page is back, at the end of its queue, on the fast path */
    assert_int_equal(unit_free(a[0]), HM_OK);
    assert_false(pa->in_full);
    assert_false(pa->used & HM_USED_SLOW);
    assert_int_equal(_hm_page_live(pa), na - 1);
    assert_true(unit_in_queue(th, pa));
    assert_ptr_equal(th->queues[bin].first, pb);
    assert_ptr_equal(th->queues[bin].last, pa);
    assert_int_equal(atomic_load(&pa->thread_free) & HM_TF_MASK, HM_TF_NORMAL);
    assert_true(_hm_page_valid(pa));
    assert_true(_hm_theap_valid(th));

    for (size_t i = 1; i < na; i++)
        assert_int_equal(unit_free(a[i]), HM_OK);
    assert_int_equal(unit_free(b), HM_OK);
    unit_close(&env);
}

/* Full, then another thread frees into it: the page goes on the pending stack, and the owner's
 * next request puts it back into its queue. */
static void test_full_page_remote_free(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    size_t bin = _hm_bin_of(HM_SMALL_MAX);
    void *a[16];
    size_t na;
    hm_page_t *pa = fill_first_page(th, bin, a, &na);
    void *b = _hm_theap_alloc_block(th, bin, eTaskCritical);
    hm_page_t *pb = unit_page_of(b, NULL);
    assert_true(pa->in_full);

    unit_free_remote(&a[1], 2);
    assert_ptr_equal(atomic_load(&th->pending), pa);
    assert_int_equal(atomic_load(&pa->thread_free) & HM_TF_MASK, HM_TF_NOTIFIED);
    assert_true(pa->in_full); /* until the owner looks */
    assert_true(_hm_theap_valid(th));

    void *c = _hm_theap_alloc_block(th, bin, eTaskCritical);
    assert_ptr_equal(unit_page_of(c, NULL), pb); /* allocation goes on in the current page */
    assert_null(atomic_load(&th->pending));
    assert_false(pa->in_full);
    assert_true(unit_in_queue(th, pa));
    assert_int_equal(atomic_load(&pa->thread_free) & HM_TF_MASK, HM_TF_NORMAL);
    /* FULL -> NOTIFIED -> NORMAL kept the count of the two pushes */
    assert_int_equal(atomic_load(&pa->thread_free) >> HM_TF_COUNT_SHIFT, 2);
    assert_int_equal(_hm_page_live(pa), na); /* the two frees wait on thread_free */
    assert_true(_hm_page_valid(pa));
    assert_true(_hm_theap_valid(th));
    _hm_page_collect(pa);
    assert_int_equal(_hm_page_live(pa), na - 2);

    assert_int_equal(unit_free(a[0]), HM_OK);
    for (size_t i = 3; i < na; i++)
        assert_int_equal(unit_free(a[i]), HM_OK);
    assert_int_equal(unit_free(b), HM_OK);
    assert_int_equal(unit_free(c), HM_OK);
    unit_close(&env);
}

/* ---- empty pages retired -----------------------------------------------------------------------
 */
static void test_collect_retires_empty(void **state) {
    (void)state;
    unit_env_t env;
    /* a long purge delay: a retired page stays committed until a collection purges it */
    hm_theap_t *th = unit_open(&env, LIMIT, 60000, 0);
    size_t bin = _hm_bin_of(HM_SMALL_MAX), bin2 = _hm_bin_of(64);
    enum { N = 30 };
    void *p[N];
    for (int i = 0; i < N; i++)
        assert_non_null(p[i] = _hm_theap_alloc_block(th, bin, eTaskCritical));
    void *small = _hm_theap_alloc_block(th, bin2, eTaskCritical);
    assert_non_null(small);
    size_t pages = unit_queue_len(th, bin); /* those not full; the full ones are out */
    hm_segment_t *seg = _hm_segment_of(p[0]);
    size_t used_pages = seg->used_pages;
    assert_true(used_pages >= 5); /* 30 blocks of 8 KiB: at least 4 pages, and bin2's */
    assert_int_equal(unit_committed(&env), used_pages * SMALL_PAGE);
    (void)pages;

    for (int i = 0; i < N; i++)
        assert_int_equal(unit_free(p[i]), HM_OK);
    assert_int_equal(unit_free(small), HM_OK);
    assert_true(_hm_theap_valid(th));
    /* nothing is short: emptied pages stay where they are, committed */
    assert_int_equal(seg->used_pages, used_pages);
    assert_int_equal(unit_committed(&env), used_pages * SMALL_PAGE);

    /* a collection keeps the last page of each class, retires the others, still committed */
    _hm_theap_collect(th, false, false);
    assert_true(_hm_theap_valid(th));
    assert_int_equal(unit_queue_len(th, bin), 1);
    assert_int_equal(unit_queue_len(th, bin2), 1);
    assert_int_equal(seg->used_pages, 2);
    assert_int_equal(th->free_committed_pages, used_pages - 2 - (seg->pages[0].block_size == 0));
    assert_int_equal(unit_committed(&env), used_pages * SMALL_PAGE);
    for (size_t i = 0; i < seg->page_count; i++) {
        hm_page_t *pg = &seg->pages[i];
        if (pg->block_size == 0) assert_false(unit_in_queue(th, pg));
        assert_true(_hm_page_valid(pg));
    }

    /* all of them, and purged: the segment is empty and goes (no cache): nothing counted */
    _hm_theap_collect(th, true, true);
    assert_true(_hm_theap_valid(th));
    assert_int_equal(unit_queue_len(th, bin), 0);
    assert_int_equal(unit_queue_len(th, bin2), 0);
    assert_null(th->segs[HM_SEG_SMALL]);
    assert_int_equal(th->free_committed_pages, 0);
    assert_int_equal(unit_committed(&env), 0);
    assert_int_equal(atomic_load(&env.heap->committed), 0);
    assert_false(_hm_segmap_has((uintptr_t)seg));
    /* and the sub-heap works on */
    void *again = _hm_theap_alloc_block(th, bin, eTaskCritical);
    assert_non_null(again);
    assert_int_equal(unit_free(again), HM_OK);
    unit_close(&env);
}

/* A new page is a committed one where the sub-heap has any, in a segment behind the first too
 * (an adopted sub-heap's retired pages are spread over its segments): no memory committed while
 * a retired page stays warm. Each segment counts its retired committed pages. */
static void test_fresh_page_prefers_committed(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 60000, 0); /* nothing purged during the test */
    size_t bin = _hm_bin_of(4096), bin2 = _hm_bin_of(2048);
    enum { N = 2048 };
    void **p = calloc(N, sizeof *p);
    assert_non_null(p);
    /* blocks of 4 KiB until a second small segment serves them */
    hm_segment_t *first = NULL, *seg;
    int n = 0;
    for (;;) {
        assert_true(n < N);
        assert_non_null(p[n] = _hm_theap_alloc_block(th, bin, eTaskCritical));
        unit_page_of(p[n++], &seg);
        if (first == NULL) first = seg;
        if (seg != first) break;
    }
    hm_segment_t *newer = seg, *older = first;
    assert_ptr_equal(th->segs[HM_SEG_SMALL], newer);
    assert_ptr_equal(newer->next, older);
    /* a page of the older segment emptied and retired: still committed, counted there */
    hm_page_t *victim = &older->pages[3];
    assert_int_equal(victim->block_size, 4096);
    for (int i = 0; i < n; i++) {
        hm_segment_t *s;
        if (unit_page_of(p[i], &s) == victim) {
            assert_int_equal(unit_free(p[i]), HM_OK);
            p[i] = NULL;
        }
    }
    _hm_theap_collect(th, false, false);
    assert_int_equal(victim->block_size, 0);
    assert_true(victim->committed);
    assert_int_equal(older->free_committed, 1);
    assert_int_equal(newer->free_committed, 0);
    assert_true(_hm_theap_valid(th));
    /* the older segment moved to the front with its free page: put it back behind */
    if (th->segs[HM_SEG_SMALL] == older) _hm_seglist_to_back(th, older);
    assert_ptr_equal(th->segs[HM_SEG_SMALL], newer);
    assert_true(newer->used_pages < newer->page_count); /* it has uncommitted pages to give */
    /* another class's first page: the retired one, and nothing more committed */
    size_t committed = unit_committed(&env);
    void *q = _hm_theap_alloc_block(th, bin2, eTaskCritical);
    assert_non_null(q);
    assert_ptr_equal(unit_page_of(q, &seg), victim);
    assert_int_equal(unit_committed(&env), committed);
    assert_int_equal(older->free_committed, 0);
    assert_true(_hm_theap_valid(th));
    assert_int_equal(unit_free(q), HM_OK);
    for (int i = 0; i < n; i++)
        if (p[i] != NULL) assert_int_equal(unit_free(p[i]), HM_OK);
    free(p);
    unit_close(&env);
}

/* Medium classes come from medium segments (128 KiB pages); both kinds in one sub-heap. */
static void test_medium_pages(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    size_t bin = _hm_bin_of(HM_MEDIUM_MAX);
    void *p[6];
    for (int i = 0; i < 6; i++) {
        p[i] = _hm_theap_alloc_block(th, bin, eTaskCritical);
        assert_non_null(p[i]);
        hm_segment_t *seg;
        hm_page_t *pg = unit_page_of(p[i], &seg);
        assert_int_equal(seg->kind, HM_SEG_MEDIUM);
        assert_int_equal(seg->page_shift, HM_MEDIUM_PAGE_SHIFT);
        assert_int_equal(pg->block_size, HM_MEDIUM_MAX);
        assert_true(tu_is_aligned(p[i], HM_ALIGN));
        memset(p[i], 0xa5, HM_MEDIUM_MAX);
        assert_true(_hm_page_valid(pg));
        assert_true(_hm_segment_valid(seg));
    }
    assert_int_equal(unit_segments(th, HM_SEG_MEDIUM), 1);
    assert_int_equal(unit_segments(th, HM_SEG_SMALL), 0);
    assert_true(_hm_theap_valid(th));
    for (int i = 0; i < 6; i++)
        assert_int_equal(unit_free(p[i]), HM_OK);
    _hm_theap_collect(th, true, true);
    assert_int_equal(unit_committed(&env), 0);
    unit_close(&env);
}

/* Blocks above HM_MEDIUM_MAX up to HM_LARGE_MAX, by the allocation path every door takes: in
 * large pages (1 MiB, four to a segment) in an arena whose limit is 1 GiB or more, aligned ones
 * too but a checked heap's; huge blocks in an arena with a smaller limit. */
static void test_large_pages(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, (size_t)4 << 30, 0, 0);
    assert_int_equal(env.arena.page_max, HM_LARGE_MAX);
    static const size_t sizes[] = {HM_MEDIUM_MAX + 1, 100000, HM_LARGE_MAX};
    void *p[3][8];
    for (size_t s = 0; s < 3; s++) {
        for (int i = 0; i < 8; i++) {
            p[s][i] = _hm_alloc_slow(env.heap, sizes[s], eTaskCritical);
            assert_non_null(p[s][i]);
            hm_segment_t *seg;
            hm_page_t *pg = unit_page_of(p[s][i], &seg);
            assert_int_equal(seg->kind, HM_SEG_LARGE);
            assert_int_equal(seg->page_shift, HM_LARGE_PAGE_SHIFT);
            assert_false(pg->is_huge);
            assert_int_equal(pg->block_size, _hm_bin_size(_hm_bin_of(sizes[s])));
            assert_true(tu_is_aligned(p[s][i], HM_ALIGN));
            memset(p[s][i], 0xa5, sizes[s]);
            assert_true(_hm_page_valid(pg));
            assert_true(_hm_segment_valid(seg));
        }
    }
    /* 80 KiB blocks: 12 in page 0 (the header's), 112 KiB ones: 9 in page 1, 256 KiB ones: 4
     * in each of pages 2 and 3: one segment */
    assert_int_equal(unit_segments(th, HM_SEG_LARGE), 1);
    assert_int_equal(unit_segments(th, HM_SEG_MEDIUM), 0);
    void *a = _hm_alloc_aligned(env.heap, 100000, HM_OS_PAGE, eTaskCritical);
    assert_non_null(a);
    assert_true(tu_is_aligned(a, HM_OS_PAGE));
    assert_int_equal(_hm_segment_of(a)->kind, HM_SEG_LARGE);
    assert_true(_hm_theap_valid(th));
    for (size_t s = 0; s < 3; s++)
        for (int i = 0; i < 8; i++)
            assert_int_equal(unit_free(p[s][i]), HM_OK);
    assert_int_equal(unit_free(a), HM_OK);
    _hm_theap_collect(th, true, true);
    assert_int_equal(unit_committed(&env), 0);
    unit_close(&env);

    /* a checked heap's aligned blocks (plain blocks in pages) above 64 KiB stay huge, so that
     * they keep the guard page of its huge blocks */
    hm_config cc = unit_config(&env, (size_t)4 << 30, 0, 0);
    cc.checked = true;
    unit_open_cfg(&env, &cc);
    assert_true(env.heap->checked);
    void *ca = _hm_alloc_aligned(env.heap, 100000, HM_OS_PAGE, eTaskCritical);
    assert_non_null(ca);
    assert_true(tu_is_aligned(ca, HM_OS_PAGE));
    assert_true(unit_page_of(ca, NULL)->is_huge);
    void *cs = _hm_alloc_aligned(env.heap, 60000, HM_OS_PAGE, eTaskCritical); /* a page's */
    assert_non_null(cs);
    assert_false(unit_page_of(cs, NULL)->is_huge);
    assert_int_equal(unit_free(ca), HM_OK);
    assert_int_equal(unit_free(cs), HM_OK);
    unit_close(&env);

    /* a budget below 1 GiB counts pages whole: blocks above 64 KiB stay huge there */
    th = unit_open(&env, LIMIT, 0, 0);
    assert_int_equal(env.arena.page_max, HM_MEDIUM_MAX);
    void *h = _hm_alloc_slow(env.heap, 100000, eTaskCritical);
    assert_non_null(h);
    hm_segment_t *seg;
    assert_true(unit_page_of(h, &seg)->is_huge);
    assert_int_equal(seg->kind, HM_SEG_HUGE);
    assert_int_equal(unit_segments(th, HM_SEG_LARGE), 0);
    assert_int_equal(unit_free(h), HM_OK);
    unit_close(&env);
}

/* The medium allocation path's inline pop (_hm_theap_pop_bin): a block of the queue's first
 * page, counted as _hm_theap_alloc_block counts its calls; NULL, with nothing changed, when that
 * page has no block at hand or when any upkeep is due (the 64th call's maintenance, pending
 * pages, a collect epoch), which _hm_theap_alloc_block then runs. */
static void test_pop_bin(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    size_t bin = _hm_bin_of(20000);
    assert_null(_hm_theap_pop_bin(th, bin)); /* no page yet */
    void *first = _hm_theap_alloc_block(th, bin, eTaskCritical);
    assert_non_null(first);
    hm_segment_t *seg;
    hm_page_t *pg = unit_page_of(first, &seg);
    assert_ptr_equal(th->queues[bin].first, pg);
    /* the page has a block at hand: the pop takes it, as the full path would */
    th->slow_calls = 5;
    uint32_t used = _hm_page_live(pg);
    hm_block_t *head = pg->free;
    assert_non_null(head);
    void *p = _hm_theap_pop_bin(th, bin);
    assert_ptr_equal(p, head);
    assert_int_equal(th->slow_calls, 6);
    assert_int_equal(_hm_page_live(pg), used + 1);
    assert_ptr_equal(((void **)p)[0], NULL); /* no link shown, no free mark */
    assert_ptr_equal(((void **)p)[1], NULL);
    assert_int_equal(unit_free(p), HM_OK);
    /* the 64th call is the full path's (its maintenance): nothing taken, nothing counted */
    th->slow_calls = 63;
    head = pg->free;
    assert_null(_hm_theap_pop_bin(th, bin));
    assert_int_equal(th->slow_calls, 63);
    assert_ptr_equal(pg->free, head);
    th->slow_calls = 0;
    /* a collect epoch the sub-heap has not seen: the same */
    atomic_fetch_add(&env.arena.collect_epoch, 1);
    assert_null(_hm_theap_pop_bin(th, bin));
    assert_int_equal(th->slow_calls, 0);
    assert_ptr_equal(pg->free, head);
    void *q = _hm_theap_alloc_block(th, bin, eTaskCritical); /* collects, takes the epoch */
    assert_non_null(q);
    assert_int_equal(th->collect_epoch, atomic_load(&env.arena.collect_epoch));
    assert_int_equal(unit_free(q), HM_OK);
    /* pending pages: the same */
    size_t calls = th->slow_calls;
    head = pg->free;
    atomic_store(&th->pending, pg);
    assert_null(_hm_theap_pop_bin(th, bin));
    assert_int_equal(th->slow_calls, calls);
    assert_ptr_equal(pg->free, head);
    atomic_store(&th->pending, NULL);
    /* a page without a block at hand: NULL */
    hm_block_t *keep = pg->free;
    pg->free = NULL;
    assert_null(_hm_theap_pop_bin(th, bin));
    pg->free = keep;
    p = _hm_theap_pop_bin(th, bin);
    assert_non_null(p);
    assert_int_equal(unit_free(p), HM_OK);
    assert_int_equal(unit_free(first), HM_OK);
    unit_close(&env);
}

/* A sub-heap's segment lists keep their last segment: a segment that fills goes to the back
 * at once (no walk), one given a free page goes to the front, and one that leaves takes the
 * last with it when it was the last. Blocks of 64 KiB fill medium pages until a third segment
 * is made: the first filled alone (the last already), the second filled in front of it and
 * went to the back. */
static void test_segment_list_last(void **state) {
    (void)state;
    unit_env_t env;
    hm_theap_t *th = unit_open(&env, LIMIT, 0, 0);
    assert_null(th->segs_last[HM_SEG_MEDIUM]);
    size_t bin = _hm_bin_of(HM_MEDIUM_MAX);
    enum { N = 600 };
    void *p[N];
    hm_segment_t *seg[3] = {NULL, NULL, NULL};
    int n = 0, made = 0;
    while (n < N && made < 3) { /* until a third segment is made */
        p[n] = _hm_theap_alloc_block(th, bin, eTaskCritical);
        assert_non_null(p[n++]);
        hm_segment_t *head = th->segs[HM_SEG_MEDIUM];
        bool known = false; /* (a full one may be in front a moment: then a new one is made) */
        for (int k = 0; k < made; k++)
            known |= head == seg[k];
        if (!known) seg[made++] = head;
        assert_true(_hm_theap_valid(th)); /* the last one checked too */
    }
    assert_int_equal(made, 3);
    /* the third in front (pages to give), then the first, then the second, which filled last */
    assert_int_equal(seg[0]->used_pages, seg[0]->page_count);
    assert_int_equal(seg[1]->used_pages, seg[1]->page_count);
    assert_ptr_equal(th->segs[HM_SEG_MEDIUM], seg[2]);
    assert_ptr_equal(seg[2]->next, seg[0]);
    assert_ptr_equal(seg[0]->next, seg[1]);
    assert_ptr_equal(th->segs_last[HM_SEG_MEDIUM], seg[1]);
    /* a page of the first emptied and retired: the first goes to the front, the last stays */
    hm_segment_t *s;
    hm_page_t *pg = unit_page_of(p[0], &s);
    assert_ptr_equal(s, seg[0]);
    for (int i = 0; i < n; i++) {
        if (p[i] != NULL && unit_page_of(p[i], NULL) == pg) {
            assert_int_equal(unit_free(p[i]), HM_OK);
            p[i] = NULL;
        }
    }
    _hm_theap_collect(th, false, false);
    assert_int_equal(pg->block_size, 0); /* retired */
    assert_ptr_equal(th->segs[HM_SEG_MEDIUM], seg[0]);
    assert_ptr_equal(th->segs_last[HM_SEG_MEDIUM], seg[1]);
    assert_true(_hm_theap_valid(th));
    /* the list helpers: to the back, out, and back to the front */
    _hm_seglist_to_back(th, seg[0]);
    assert_ptr_equal(th->segs[HM_SEG_MEDIUM], seg[2]);
    assert_ptr_equal(th->segs_last[HM_SEG_MEDIUM], seg[0]);
    _hm_seglist_to_back(th, seg[0]); /* already last: unchanged */
    assert_ptr_equal(th->segs_last[HM_SEG_MEDIUM], seg[0]);
    assert_true(_hm_theap_valid(th));
    _hm_seglist_remove(th, seg[0]);
    assert_ptr_equal(th->segs_last[HM_SEG_MEDIUM], seg[1]);
    _hm_seglist_push(th, seg[0]);
    assert_ptr_equal(th->segs[HM_SEG_MEDIUM], seg[0]);
    assert_ptr_equal(th->segs_last[HM_SEG_MEDIUM], seg[1]);
    assert_true(_hm_theap_valid(th));
    for (int i = 0; i < n; i++)
        if (p[i] != NULL) assert_int_equal(unit_free(p[i]), HM_OK);
    _hm_theap_collect(th, true, true);
    assert_null(th->segs[HM_SEG_MEDIUM]);
    assert_null(th->segs_last[HM_SEG_MEDIUM]);
    unit_close(&env);
}

TU_TEST_MAIN(test_bins_round_trip, test_block_check, test_blocks_from_page,
             test_free_owner_and_mark, test_head_page_count, test_free_remote_then_collect,
             test_collect_by_count, test_full_page_owner_free, test_full_page_remote_free,
             test_collect_retires_empty, test_fresh_page_prefers_committed, test_medium_pages,
             test_large_pages, test_pop_bin, test_segment_list_last)
