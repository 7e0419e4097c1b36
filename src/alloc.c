/* SPDX-License-Identifier: MIT */
/* alloc.c: the hot paths: allocate, free, usable size, realloc, calloc, aligned.
 *
 * Allocation of a size up to HM_DIRECT_MAX is a table lookup and a list pop:
 *     page = theap->direct[(size + 15) / 16]; block = page->free; page->free = block->next;
 * Everything else (an empty page, a new page, medium and huge sizes) is out of line.
 *
 * Free validates from out-of-line metadata before it writes anything: the segment map says
 * whether the 4 MiB unit is ours, the page table says which page, and one multiplication
 * says whether the offset is a multiple of the block size (Lemire's divisibility test:
 * with c = 2^64 / d rounded up, n % d == 0 exactly when n * c mod 2^64 < c, for n, d < 2^32).
 * Then the owner pushes onto the page's free list, any other thread onto the atomic
 * thread_free. An owner's free branches off the fast path only for a page that is out of its
 * queue as full (or huge); pages that become empty are retired later, by the generic path and
 * the periodic maintenance (page.c), so alloc/free churn on one page stays on the fast paths. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- allocation -------------------------------------------------------------------------- */
static hm_noinline void *theap_alloc_slow(hm_theap_t *th, size_t size, size_t align, int level) {
    void *p;
    if (size <= HM_MEDIUM_MAX && align <= HM_ALIGN) {
        p = _hm_page_alloc_generic(th, size, level);
    } else if (size <= HM_MEDIUM_MAX && align <= HM_OS_PAGE) {
        /* a class whose block size is a multiple of the alignment: every block of it is
         * aligned, since page starts are 4 KiB aligned (powers of two are classes) */
        size_t need = size < align ? align : size;
        size_t bin = _hm_bin_of(need);
        while (_hm_bin_size(bin) % align != 0)
            bin++;
        p = _hm_page_alloc_generic(th, _hm_bin_size(bin), level);
    } else if (size > HM_MAX_ALLOC) {
        p = NULL;
    } else {
        hm_segment_t *seg = _hm_huge_alloc(th, size, align < HM_ALIGN ? HM_ALIGN : align, level);
        p = seg != NULL ? seg->pages[0].start : NULL;
    }
    if (p == NULL) {
        th->failures[level]++;
        errno = ENOMEM;
    }
    return p;
}

/* The whole allocation when the fast path cannot serve it: sub-heap lookup included. */
void *_hm_alloc_slow(hm_heap *heap, size_t size, int level) {
    /* a checked heap feeds no plain fast path: every allocation lands here */
    if (hm_unlikely(heap->checked)) return _hm_checked_alloc(heap, size, level);
    level &= ~HM_LEVEL_NO_ABORT;
    hm_theap_t *th = _hm_theap_get(heap);
    if (hm_unlikely(th == NULL)) {
        errno = ENOMEM;
        return NULL;
    }
    if ((unsigned)level > eProcessCritical) level = eProcessCritical;
    th->requests[level]++;
    void *p;
    hm_page_t *pg = size <= HM_DIRECT_MAX ? th->direct[(size + 15) >> 4] : NULL;
    if (pg != NULL && pg->free != NULL) {
        hm_block_t *b = pg->free;
        hm_tool_access(b, 2 * sizeof(hm_block_t));
        pg->free = b->next;
        _hm_mark_set(b, NULL); /* live: unmarked */
        pg->used++;
        p = b;
    } else {
        p = theap_alloc_slow(th, size, HM_ALIGN, level);
    }
    if (p != NULL) hm_tool_alloc(p, size);
    return p;
}

void *hm_alloc_level(hm_heap *heap, size_t size, EMemoryCriticalLevel level) {
    return _hm_alloc_fast(heap, size, (int)level);
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
    if (p != NULL) memset(p, 0, total);
    return p;
}

void *hm_alloc_aligned(hm_heap *heap, size_t size, size_t alignment) {
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    if (alignment <= HM_ALIGN) return hm_alloc(heap, size);
    hm_theap_t *th = _hm_theap_get(heap);
    if (th == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    th->requests[eProcessCritical]++;
    void *p = theap_alloc_slow(th, size, alignment, eProcessCritical);
    if (p != NULL) hm_tool_alloc(p, size);
    return p;
}

/* ---- lookup and free --------------------------------------------------------------------- */
/* p is in a unit without a segment header: an aligned huge block, or not a block at all. */
static hm_noinline hm_result lookup_unmapped(const void *p, hm_segment_t **segp,
                                             hm_page_t **pagep) {
    uintptr_t unit = (uintptr_t)p & ~(uintptr_t)HM_SEGMENT_MASK;
    hm_segment_t *seg = _hm_aligned_huge_at(unit);
    if (seg == NULL) return _hm_unit_covered(unit) ? HM_ERR_NOT_BLOCK : HM_ERR_NOT_OWNED;
    hm_page_t *pg = &seg->pages[0];
    if (p != pg->start || _hm_page_area(pg) == 0) return HM_ERR_NOT_BLOCK;
    *segp = seg;
    *pagep = pg;
    return HM_OK;
}

hm_inline hm_result block_lookup(const void *p, hm_segment_t **segp, hm_page_t **pagep) {
    hm_result r = _hm_block_lookup_fast(p, segp, pagep);
    if (hm_unlikely(r == HM_ERR_NOT_OWNED)) r = lookup_unmapped(p, segp, pagep);
    return r;
}

hm_result _hm_block_lookup(const void *p, hm_segment_t **segp, hm_page_t **pagep) {
    return block_lookup(p, segp, pagep);
}

static hm_cold void free_invalid(const void *p, hm_result r) {
    _hm_fatal(r == HM_ERR_NOT_OWNED ? "free(): pointer not allocated by hostmalloc:"
                                    : "free(): pointer is not the start of a block:",
              p);
}

/* p was the start of a huge block whose segment now waits in the manager's cache: the block
 * was freed, so freeing p again is a double free. Reported (to the segment's manager). Only
 * segment headers are read: the segment map says one is there. */
static bool huge_freed_at(const void *p) {
    if (!_hm_segmap_has((uintptr_t)p)) return false;
    const hm_segment_t *seg = (const hm_segment_t *)((uintptr_t)p & ~(uintptr_t)HM_SEGMENT_MASK);
    if (seg->kind != HM_SEG_HUGE || seg->heap != NULL || seg->pages[0].start != p ||
        _hm_page_area(&seg->pages[0]) != 0)
        return false;
    _hm_report_double_free(seg, p, seg->huge_size);
    return true;
}

/* Everything but the common case: aligned huge blocks and bad pointers. */
static hm_noinline void free_slow(void *p) {
    hm_segment_t *seg;
    hm_page_t *pg;
    hm_result r = block_lookup(p, &seg, &pg);
    if (r == HM_ERR_NOT_BLOCK && (_hm_debug_double_free_huge(p) || huge_freed_at(p)))
        abort(); /* reported */
    if (r != HM_OK) free_invalid(p, r);
    if (_hm_free_block(seg, pg, p) != HM_OK) abort(); /* a debug check failed: it reported */
}

void hm_free(void *p) {
    hm_segment_t *seg;
    hm_page_t *pg;
    if (hm_unlikely(_hm_block_lookup_fast(p, &seg, &pg) != HM_OK)) {
        if (p != NULL) free_slow(p);
        return;
    }
    if (hm_unlikely(_hm_free_block(seg, pg, p) != HM_OK)) abort(); /* reported already */
}

hm_result _hm_heap_free_slow(hm_heap *heap, void *p) {
    if (p == NULL) return HM_OK;
    hm_segment_t *seg;
    hm_page_t *pg;
    hm_result r = block_lookup(p, &seg, &pg);
    if (r == HM_ERR_NOT_BLOCK && (_hm_debug_double_free_huge(p) || huge_freed_at(p)))
        return r; /* reported */
    if (r != HM_OK) return r;
    if (seg->heap != heap) return HM_ERR_OTHER_HEAP;
    return _hm_free_block(seg, pg, p);
}

hm_result hm_heap_free(hm_heap *heap, void *p) {
    return _hm_heap_free_fast(heap, p);
}

size_t hm_usable_size(const void *p) {
    if (p == NULL) return 0;
    hm_segment_t *seg;
    hm_page_t *pg;
    hm_result r = block_lookup(p, &seg, &pg);
    if (hm_unlikely(r != HM_OK))
        _hm_fatal(r == HM_ERR_NOT_OWNED ? "usable_size(): pointer not allocated by hostmalloc:"
                                        : "usable_size(): pointer is not the start of a block:",
                  p);
    if (hm_unlikely(pg->is_debug)) return _hm_debug_size(pg, p); /* exactly what was asked */
    size_t usable = pg->is_huge ? _hm_huge_usable(seg) : pg->block_size;
    hm_tool_access((void *)p, usable); /* whoever asks may use all of it: tell the tool */
    return usable;
}

hm_heap *hm_heap_of(const void *p) {
    if (p == NULL) return NULL;
    hm_segment_t *seg;
    hm_page_t *pg;
    if (block_lookup(p, &seg, &pg) != HM_OK) return NULL;
    return seg->heap;
}

/* A resize frees p: a block already free (its owner can tell, as in free) is a double free,
 * reported and aborted, never a block to hand back in place (it is still on its page's free
 * list: the next allocation would hand it out a second time). Every resize door calls it. */
static void realloc_check_freed(void *p, hm_segment_t *seg, hm_page_t *pg) {
    if (!pg->is_debug && !pg->is_huge && _hm_mark_peek(p) == pg) {
        uintptr_t tid = atomic_load_explicit(&seg->tid, memory_order_relaxed);
        if ((tid == _hm_thread_id() || tid == HM_TID_ANY) && _hm_page_block_is_free(pg, p)) {
            _hm_report_double_free(seg, p, pg->block_size);
            abort();
        }
    }
}

void *hm_realloc(hm_heap *heap, void *p, size_t size) {
    if (p == NULL) return hm_alloc(heap, size);
    hm_segment_t *seg;
    hm_page_t *pg;
    hm_result r = block_lookup(p, &seg, &pg);
    if (hm_unlikely(r != HM_OK)) {
        if (r == HM_ERR_NOT_BLOCK && (_hm_debug_double_free_huge(p) || huge_freed_at(p)))
            abort(); /* reported */
        _hm_fatal(r == HM_ERR_NOT_OWNED ? "realloc(): pointer not allocated by hostmalloc:"
                                        : "realloc(): pointer is not the start of a block:",
                  p);
    }
    realloc_check_freed(p, seg, pg);
    size_t usable = hm_usable_size(p);
    bool debug = pg->is_debug;
    /* a debug block always moves: its size and back canary are exact */
    if (!debug && size <= usable && size >= usable / 2 && seg->heap == heap) return p;
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
    hm_manager *mgr = heap->mgr;
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
    size_t usable = hm_usable_size(p); /* aborts on a bad pointer */
    hm_segment_t *seg;
    hm_page_t *pg;
    bool debug = _hm_block_lookup(p, &seg, &pg) == HM_OK && pg->is_debug;
    if (!debug) realloc_check_freed(p, seg, pg);
    /* a debug block always moves: its size and back canary are exact */
    if (!debug && size <= usable && size >= usable / 2 && seg->heap == heap) return p;
    void *n = NULL;
    /* only a request for more is one the budget or fault injection may refuse */
    bool grow = size > usable;
    if (!(grow && hm_unlikely(mgr->faults_on) && hm_manager_fault(mgr, level)))
        n = hm_alloc_level(heap, size, level);
    if (n == NULL) {
        /* a shrink never fails: the block stays as it is (a debug block keeps its recorded
         * size and canary, so its checks still hold) */
        if (!grow) return p;
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
    hm_result r = block_lookup(p, &seg, &pg);
    if (r != HM_OK) return r;
    if (seg->heap != heap) return HM_ERR_OTHER_HEAP;
    if (usable != NULL) {
        if (pg->is_debug) {
            *usable = _hm_debug_size(pg, p);
        } else {
            *usable = pg->is_huge ? _hm_huge_usable(seg) : pg->block_size;
            hm_tool_access((void *)p, *usable); /* the caller may use all of it */
        }
    }
    return HM_OK;
}

#if HM_TOOLS
/* Tell the tool a block was handed out: exactly `size` bytes, and the slot's slack (up to the
 * usable size) inaccessible, so that an overrun within the slot is reported too. */
void _hm_tool_alloc(void *p, size_t size) {
    hm_segment_t *seg;
    hm_page_t *pg;
    if (_hm_block_lookup(p, &seg, &pg) != HM_OK) return;
    size_t usable = pg->is_huge ? _hm_huge_usable(seg) : pg->block_size;
    if (pg->is_debug) usable = size; /* the canary follows: the debug checks own it */
#if defined(HM_VALGRIND) && HM_VALGRIND
    VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, 0);
#else
    ASAN_UNPOISON_MEMORY_REGION(p, size);
#endif
    if (usable > size) hm_tool_hide((uint8_t *)p + size, usable - size);
}
#endif

#if defined(HM_ASAN_POISON) && HM_ASAN_POISON
void _hm_tool_asan_free(void *p) {
    hm_segment_t *seg;
    hm_page_t *pg;
    if (_hm_block_lookup(p, &seg, &pg) != HM_OK) return;
    size_t n = pg->is_huge ? _hm_huge_usable(seg) : pg->block_size;
    if (pg->is_debug) n = _hm_debug_size(pg, p);
    ASAN_POISON_MEMORY_REGION(p, n);
}
#endif
