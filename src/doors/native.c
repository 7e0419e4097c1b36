/* SPDX-License-Identifier: MIT */
/* doors/native.c: the native door: the hm_* functions of hostmalloc.h that allocate, free,
 * resize and look up blocks, and that make and release heaps. They put the layers below
 * together: the fast paths of mem/alloc.h inline, checked mode's slow path for heaps that are
 * checked (debug), the manager's fault injection for hm_realloc_level, the manager's statistics
 * and the debug walk at a heap's release. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "manager/manager.h"

/* ---- heaps -------------------------------------------------------------------------------- */
hm_heap *hm_heap_new(hm_manager *mgr, unsigned flags) {
    if (mgr == NULL) mgr = hm_manager_default();
    if (mgr == NULL) return NULL;
    hm_heap *heap = _hm_heap_create(&mgr->arena, flags);
    if (heap == NULL) return NULL;
    if (heap->checked) _hm_debug_init(); /* the secret of its blocks' canaries */
    hm_manager_retain(mgr);
    return heap;
}

#if HM_TOOLS
static bool tool_forget(const hm_block_info_t *info, void *arg) {
    (void)arg;
    hm_tool_free(info->ptr);
    return true;
}
#endif

void hm_heap_release(hm_heap *heap) {
    if (heap == NULL) return;
    hm_manager *mgr = _hm_manager_of(heap);
    if (mgr->arena.cfg.print_stats) _hm_stats_report_heap(heap);
#if HM_TOOLS
    hm_heap_walk(heap, tool_forget, NULL); /* the live blocks go with the heap: tell the tool */
#endif
    _hm_heap_destroy(heap);
    hm_manager_release(mgr);
}

static pthread_once_t default_heap_once = PTHREAD_ONCE_INIT;
static hm_heap *default_heap;

static void default_heap_init(void) {
    default_heap = hm_heap_new(NULL, HM_HEAP_THREADSAFE);
}

hm_heap *hm_heap_default(void) {
    pthread_once(&default_heap_once, default_heap_init);
    return default_heap;
}

/* The manager of a heap, for hosts that start from an IHostMalloc (docs/RUNTIMES.md). */
hm_manager *hm_heap_manager(hm_heap *heap) {
    return heap != NULL ? _hm_manager_of(heap) : NULL;
}

/* ---- blocks -------------------------------------------------------------------------------- */
void *hm_alloc_level(hm_heap *heap, size_t size, EMemoryCriticalLevel level) {
    /* a level out of range is process-critical, as in hm_realloc_level (clamped here, so that
     * the fast path counts the level the slow path serves; a constant level folds it away) */
    if ((unsigned)level > (unsigned)eProcessCritical) level = eProcessCritical;
    return _hm_alloc_fast(heap, size, (int)level, _hm_alloc_slow_any);
}

void *hm_alloc(hm_heap *heap, size_t size) {
    return hm_alloc_level(heap, size, eProcessCritical);
}

void *hm_calloc(hm_heap *heap, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = hm_alloc(heap, total);
    /* a huge block in a new mapping is zero already: left untouched, its pages cost no memory
     * until the program writes them (a large table used sparsely) */
    if (p != NULL && !(total > HM_MEDIUM_MAX && _hm_block_take_zero(p, total))) memset(p, 0, total);
    return p;
}

void *hm_alloc_aligned(hm_heap *heap, size_t size, size_t alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (alignment <= HM_ALIGN) return hm_alloc(heap, size);
    return _hm_alloc_aligned(heap, size, alignment, eProcessCritical);
}

void hm_free(void *p) {
    _hm_free_any(p);
}

hm_result hm_heap_free(hm_heap *heap, void *p) {
    return (hm_result)_hm_heap_free_as(heap, p, _hm_page_free_try, HM_OK, HM_ERR_OTHER_HEAP,
                                       _hm_heap_free_slow, _hm_page_free_rest);
}

/* The usable size of live block p (of seg/pg), made accessible to the tools. */
static size_t usable_of(hm_segment_t *seg, hm_page_t *pg, const void *p) {
    size_t usable = _hm_block_usable(seg, pg, p); /* a block with a header: what was asked */
    if (pg->kind == HM_PAGE_PLAIN)
        hm_tool_access((void *)p, usable); /* whoever asks may use all of it: tell the tool */
    return usable;
}

size_t hm_usable_size(const void *p) {
    if (p == NULL) return 0;
    hm_segment_t *seg = NULL;
    hm_page_t *pg = NULL;
    hm_result r = _hm_block_lookup(p, &seg, &pg);
    /* a freed block is no block to size: reported (checked mode and DebugAlloc blocks always;
     * a plain block when its owner can tell, as for a double free) */
    if (hm_unlikely(_hm_block_freed(p, r, seg, pg, "usable size"))) abort();
    if (hm_unlikely(r != HM_OK))
        _hm_fatal(r == HM_ERR_NOT_OWNED ? "usable_size(): pointer not allocated by hostmalloc:"
                                        : "usable_size(): pointer is not the start of a block:",
                  p);
    return usable_of(seg, pg, p);
}

hm_heap *hm_heap_of(const void *p) {
    if (p == NULL) return NULL;
    hm_segment_t *seg;
    hm_page_t *pg;
    if (_hm_block_lookup(p, &seg, &pg) != HM_OK) return NULL;
    return seg->heap;
}

/* The block a resize frees: aborts with a report when p is no live block (a freed one is a
 * double free). */
static void realloc_lookup(void *p, hm_segment_t **seg, hm_page_t **pg) {
    hm_result r = _hm_block_lookup(p, seg, pg);
    if (hm_unlikely(r != HM_OK)) {
        if (r == HM_ERR_NOT_BLOCK && _hm_huge_freed_at(p)) abort(); /* reported */
        _hm_fatal(r == HM_ERR_NOT_OWNED ? "realloc(): pointer not allocated by hostmalloc:"
                                        : "realloc(): pointer is not the start of a block:",
                  p);
    }
    _hm_realloc_check_freed(p, *seg, *pg);
}

/* Where a resize of block `p` leaves it (realloc_place). */
typedef enum { REALLOC_STAYS, REALLOC_MOVES, REALLOC_REFUSED } realloc_place_t;

/* A resize of block `p` to `size` at `level` (aborts on a bad or freed one); its usable size
 * (before) in *usable. A block with a header always moves: its size and back canary are exact.
 * A plain huge block that must grow does so in place when its mapping has the room (a growing
 * array's realloc then neither copies nor maps anew). With `faults` (a manager injecting
 * faults), a growth first draws a fault: REALLOC_REFUSED when it hits. */
static realloc_place_t realloc_place(hm_heap *heap, void *p, size_t size, int level,
                                     hm_manager *faults, size_t *usable) {
    hm_segment_t *seg;
    hm_page_t *pg;
    realloc_lookup(p, &seg, &pg);
    *usable = usable_of(seg, pg, p);
    if (size > *usable && faults != NULL && hm_manager_fault(faults, (EMemoryCriticalLevel)level))
        return REALLOC_REFUSED;
    if (pg->kind != HM_PAGE_PLAIN || seg->heap != heap) return REALLOC_MOVES;
    if (size <= *usable) return size >= *usable / 2 ? REALLOC_STAYS : REALLOC_MOVES;
    return _hm_block_grow(heap, seg, pg, size, level) ? REALLOC_STAYS : REALLOC_MOVES;
}

void *hm_realloc(hm_heap *heap, void *p, size_t size) {
    if (p == NULL) return hm_alloc(heap, size);
    size_t usable;
    if (realloc_place(heap, p, size, eProcessCritical, NULL, &usable) == REALLOC_STAYS) return p;
    void *n = hm_alloc(heap, size);
    if (n == NULL) return NULL;
    size_t copy = size < usable ? size : usable;
    hm_tool_access(p, copy); /* the slack past the requested bytes is the engine's to read */
    memcpy(n, p, copy);
    hm_free(p);
    return n;
}

/* ---- for runtime hooks (docs/RUNTIMES.md) --------------------------------------------------- */
void *hm_realloc_level(hm_heap *heap, void *p, size_t size, EMemoryCriticalLevel level) {
    if ((unsigned)level > (unsigned)eProcessCritical) level = eProcessCritical;
    hm_manager *mgr = _hm_manager_of(heap);
    if (p == NULL) {
        if (hm_unlikely(mgr->faults_on) && hm_manager_fault(mgr, level)) {
            errno = ENOMEM;
            return NULL;
        }
        return hm_alloc_level(heap, size, level);
    }
    if (size == 0) {
        hm_free(p);
        return NULL;
    }
    size_t usable;
    /* only a request for more is one the budget or fault injection may refuse */
    realloc_place_t r =
        realloc_place(heap, p, size, (int)level, hm_unlikely(mgr->faults_on) ? mgr : NULL, &usable);
    if (r == REALLOC_STAYS) return p;
    void *n = r == REALLOC_MOVES ? hm_alloc_level(heap, size, level) : NULL;
    if (n == NULL) {
        /* a shrink never fails: the block stays as it is (a debug block keeps its recorded
         * size and canary, so its checks still hold) */
        if (size <= usable) return p;
        errno = ENOMEM;
        return NULL;
    }
    size_t copy = size < usable ? size : usable;
    hm_tool_access(p, copy); /* the slack past the requested bytes is the engine's to read */
    memcpy(n, p, copy);
    hm_free(p);
    return n;
}

hm_result hm_heap_block(hm_heap *heap, const void *p, size_t *usable) {
    if (p == NULL) return HM_ERR_NOT_OWNED;
    hm_segment_t *seg;
    hm_page_t *pg;
    hm_result r = _hm_block_lookup(p, &seg, &pg);
    if (r != HM_OK) return r;
    if (seg->heap != heap) return HM_ERR_OTHER_HEAP;
    /* a block with a header says whether it was freed (the header is the engine's, in front of
     * p); a plain block's word at p is not read */
    if (pg->kind != HM_PAGE_PLAIN && _hm_page_kinds[pg->kind]->freed(seg, pg, p, NULL))
        return HM_ERR_NOT_BLOCK;
    if (usable != NULL) *usable = usable_of(seg, pg, p);
    return HM_OK;
}
