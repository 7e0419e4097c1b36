/* SPDX-License-Identifier: MIT */
/* mem/heap.h: arenas, heaps, per-thread sub-heaps and the one reclaim loop (heap.c). Below:
 * page. */
#ifndef HM_MEM_HEAP_H
#define HM_MEM_HEAP_H

#include "mem/page.h"

/* ---- arenas -------------------------------------------------------------------------------- */
/* An arena for `cfg` (copied) whose budget has `limit`. */
void _hm_arena_init(hm_arena_t *a, const hm_config *cfg, size_t limit);
/* Give everything the arena still holds back to the OS (its heaps are gone). */
void _hm_arena_destroy(hm_arena_t *a);
/* Collect the sub-heaps of exited threads in every heap of the arena: their empty pages are
 * retired and decommitted, their empty segments go to the cache. */
void _hm_arena_collect_abandoned(hm_arena_t *a);
/* Count `bytes` that belong to no heap (VirtualAlloc) at `level`, reclaiming and waiting as an
 * allocation would. False: refused, nothing counted. */
bool _hm_arena_commit(hm_arena_t *a, size_t bytes, int level);
/* fork: 0 before (take the locks of `a` and of `heap`, which may be NULL), 1 after (release). */
void _hm_arena_fork(hm_arena_t *a, hm_heap *heap, int phase);

/* ---- heaps --------------------------------------------------------------------------------- */
/* A heap of `a` (flags HM_HEAP_*); NULL on bad flags or out of metadata. */
hm_heap *_hm_heap_create(hm_arena_t *a, unsigned flags);
/* Unmap every segment of the heap (its live blocks go with it) and retire it. */
void _hm_heap_destroy(hm_heap *heap);

/* ---- sub-heaps ----------------------------------------------------------------------------- */
typedef struct hm_tls_entry_s {
    uint64_t id;
    hm_theap_t *th;
} hm_tls_entry_t;
extern __thread hm_tls_entry_t _hm_tls_cache[HM_TLS_WAYS];
/* The calling thread's cache entry for `heap`, its id in *id: the entry is the heap's sub-heap
 * when its id is *id (ids are never reused, so a stale entry never matches). */
hm_inline hm_tls_entry_t *_hm_tls_slot(const hm_heap *heap, uint64_t *id) {
    *id = atomic_load_explicit(&((hm_heap *)heap)->id, memory_order_relaxed);
    return &_hm_tls_cache[*id & (HM_TLS_WAYS - 1)];
}
/* The same entry for the fast paths, addressed from the thread pointer with the offset the heap
 * keeps (the cache is in static TLS, initial-exec: the offset is the same in every thread), so
 * that finding it takes no address arithmetic. A heap made while another thread reads its
 * offset can only send that reader to an entry whose id cannot match. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HM_TLS_FS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define HM_TLS_FS 0
#endif
#endif
#ifndef HM_TLS_FS
#define HM_TLS_FS 1
#endif
#if HM_TLS_FS
typedef const hm_tls_entry_t __seg_fs hm_tls_fs_entry_t;
/* (as an fs-relative address) */
#define HM_TLS_AT(off) ((hm_tls_fs_entry_t *)(off))
#else
/* Sanitizers instrument fs-relative loads as if they were plain addresses: there the entry is
 * reached through an ordinary pointer. */
typedef const hm_tls_entry_t hm_tls_fs_entry_t;
#define HM_TLS_AT(off) ((hm_tls_fs_entry_t *)(_hm_thread_id() + (off)))
#endif
hm_inline hm_tls_fs_entry_t *_hm_tls_entry(const hm_heap *heap, uint64_t *id) {
    *id = atomic_load_explicit(&((hm_heap *)heap)->id, memory_order_relaxed);
    return HM_TLS_AT(heap->tls_off);
}
/* The offset from the thread pointer of the calling thread's cache entry for heap id `id`. */
hm_inline uintptr_t _hm_tls_offset(uint64_t id) {
    return (uintptr_t)&_hm_tls_cache[id & (HM_TLS_WAYS - 1)] - _hm_thread_id();
}
/* The calling thread's sub-heap of `heap`, created or adopted on first use; NULL on OOM. */
hm_theap_t *_hm_theap_get_slow(hm_heap *heap);
/* The thread's sub-heap of the one pinned heap (the malloc door's process heap): a single TLS
 * load finds it. &_hm_theap_none until the thread's first _hm_theap_get_slow of that heap, and
 * again once the thread exits: a sub-heap whose direct table has no free block anywhere, so that
 * the fast path (_hm_theap_pop) needs no test for it. */
extern hm_theap_t _hm_theap_none;
extern __thread hm_theap_t *_hm_tls_pinned;
/* Pin `heap` (once, before its first use; never released while pinned). */
void _hm_heap_pin(hm_heap *heap);
/* The thread's sub-heap of the pinned `heap`, put in _hm_tls_pinned; NULL on OOM. */
hm_theap_t *_hm_theap_pinned(hm_heap *heap);
hm_inline hm_theap_t *_hm_theap_get(hm_heap *heap) {
    uint64_t id;
    hm_tls_fs_entry_t *e = _hm_tls_entry(heap, &id);
    if (hm_likely(e->id == id)) return e->th;
    return _hm_theap_get_slow(heap);
}

/* ---- allocation through the reclaim loop ---------------------------------------------------- */
/* A block of queue `bin` (page.h) at `level` (0..2): the page-level path, with the sub-heap's
 * upkeep first (pending pages, the arena's collect epoch, periodic maintenance) and the reclaim
 * loop when the budget refuses. NULL (nothing changed) when nothing helped. */
void *_hm_theap_alloc_block(hm_theap_t *th, size_t bin, int level);
/* The invariants of a sub-heap: its queues (links, bins, heads; every page valid) and its
 * segment lists (links, kinds; every segment valid). Owner only. */
bool _hm_theap_valid(const hm_theap_t *th);

/* The common case of _hm_theap_alloc_block, inline and without its calls: a block of plain queue
 * `bin` from the queue's first page when that page has one at hand and none of the sub-heap's
 * upkeep is due (pending pages, a collect epoch of the arena, the maintenance pass of every 64th
 * call, which this counts as that function does). NULL: take _hm_theap_alloc_block. The
 * caller counts the request and tells the tools. */
hm_inline void *_hm_theap_pop_bin(hm_theap_t *th, size_t bin) {
    hm_assert(bin < HM_QUEUE_DEBUG); /* plain pages only: others have links to check */
    hm_assert_full(_hm_theap_valid(th));
    hm_page_t *pg = th->queues[bin].first;
    if (pg == NULL) return NULL;
    hm_block_t *b = pg->free;
    if (b == NULL || ((th->slow_calls + 1) & 63) == 0 ||
        atomic_load_explicit(&th->pending, memory_order_relaxed) != NULL ||
        atomic_load_explicit(&th->heap->arena->collect_epoch, memory_order_relaxed) !=
            th->collect_epoch)
        return NULL;
    th->slow_calls++;
    _hm_page_take(pg, b);
    return b;
}
/* The sub-heap's maintenance pass when one is due (_hm_theap_tick), and the sub-heaps of exited
 * threads aged: every 64 slow-path calls, and at the heartbeat of the fast paths (alloc.h). */
void _hm_theap_maintain(hm_theap_t *th);
/* The heartbeat of level `l`'s fast path (its count down reached 0 on a request it left to the
 * slow path, uncounted): the count moved to `requests`, the maintenance pass. */
void _hm_theap_beat(hm_theap_t *th, int l);
/* th's heap's sealed segment (segment.h: its arguments), made on first use, or NULL when the
 * budget or the OS refuses (no reclaim: the caller has another way). */
hm_segment_t *_hm_heap_sealed(hm_theap_t *th, size_t meta, size_t block, size_t count,
                              unsigned kind, int level);
/* A huge segment (segment.h) through the reclaim loop. */
hm_segment_t *_hm_theap_alloc_huge(hm_theap_t *th, size_t size, size_t align, int level);
/* The same with a guard page after the block (segment.h, _hm_huge_alloc_guarded). */
hm_segment_t *_hm_theap_alloc_huge_guarded(hm_theap_t *th, size_t size, int level);

#endif /* HM_MEM_HEAP_H */
