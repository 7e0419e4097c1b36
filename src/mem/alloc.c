/* SPDX-License-Identifier: MIT */
/* mem/alloc.c: the hot paths' slow halves: allocate, free, look up, usable size. The public
 * functions built on them are the doors' (doors/native.c).
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
 * the periodic maintenance (heap.c), so alloc/free churn on one page stays on the fast paths. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mem/alloc.h"

/* ---- allocation -------------------------------------------------------------------------- */
static hm_noinline void *theap_alloc_slow(hm_theap_t *th, size_t size, size_t align, int level) {
    void *p;
    /* larger blocks are huge; a checked heap's aligned blocks (plain ones, in pages) above
     * 64 KiB too, so that they keep the guard page and protections of its huge blocks */
    size_t page_max = th->heap->checked ? HM_MEDIUM_MAX : th->heap->arena->page_max;
    if (size <= page_max && align <= HM_ALIGN) {
        p = _hm_theap_alloc_block(th, _hm_bin_of(size), level);
    } else if (size <= page_max && align <= HM_OS_PAGE) {
        /* a class whose block size is a multiple of the alignment: every block of it is
         * aligned, since page starts are 4 KiB aligned (powers of two are classes) */
        size_t need = size < align ? align : size;
        size_t bin = _hm_bin_of(need);
        while (_hm_bin_size(bin) % align != 0)
            bin++;
        p = _hm_theap_alloc_block(th, bin, level);
    } else if (size > HM_MAX_ALLOC) {
        p = NULL;
    } else {
        hm_segment_t *seg =
            _hm_theap_alloc_huge(th, size, align < HM_ALIGN ? HM_ALIGN : align, level);
        p = seg != NULL ? seg->pages[0].start : NULL;
    }
    if (p == NULL) {
        th->failures[level]++;
        errno = ENOMEM;
    }
    return p;
}

/* Everything _hm_alloc_slow's medium path leaves (below): sub-heap lookup included. */
static hm_noinline void *alloc_slow_rest(hm_heap *heap, size_t size, int level) {
    hm_theap_t *th = _hm_theap_get(heap);
    if (hm_unlikely(th == NULL)) {
        errno = ENOMEM;
        return NULL;
    }
    level = _hm_level_index(level);
    if (size <= HM_DIRECT_MAX) {
        /* the heartbeat (alloc.h): a count at 0 that the fast path left is moved over before
         * the pop below counts on (this request, not counted there, is counted here) */
        if (hm_unlikely(th->req_left[level] == 0)) _hm_theap_beat(th, level);
        /* the sub-heap was not in the thread's cache: its direct page may have a block */
        void *p = _hm_theap_pop(th, size, level);
        if (p != NULL) return p;
        /* or the pop brought the count to 0 in turn: the same, and the request served below */
        if (hm_unlikely(th->req_left[level] == 0)) _hm_theap_beat(th, level);
    }
    th->requests[level]++;
    void *p = theap_alloc_slow(th, size, HM_ALIGN, level);
    if (p != NULL) hm_tool_alloc(p, size);
    return p;
}

/* The whole allocation when the fast path cannot serve it. Medium and large sizes (no direct page)
 * first try their queue's first page, inline and without a stack frame (the rest is a tail call):
 * every allocation of these sizes comes here. */
void *_hm_alloc_slow(hm_heap *heap, size_t size, int level) {
    level &= ~HM_LEVEL_NO_ABORT;
    if (size - (HM_DIRECT_MAX + 1) < HM_LARGE_MAX - HM_DIRECT_MAX) {
        uint64_t id;
        hm_tls_fs_entry_t *e = _hm_tls_entry(heap, &id);
        if (hm_likely(e->id == id)) {
            hm_theap_t *th = e->th;
            void *p = _hm_theap_pop_bin(th, _hm_bin_of(size));
            if (hm_likely(p != NULL)) {
                th->requests[_hm_level_index(level)]++;
                hm_tool_alloc(p, size);
                return p;
            }
        }
    }
    return alloc_slow_rest(heap, size, level);
}

void *_hm_alloc_aligned(hm_heap *heap, size_t size, size_t alignment, int level) {
    hm_theap_t *th = _hm_theap_get(heap);
    if (th == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    th->requests[level]++;
    void *p = theap_alloc_slow(th, size, alignment, level);
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

bool _hm_block_grow(hm_heap *heap, hm_segment_t *seg, hm_page_t *pg, size_t size, int level) {
    if (HM_TOOLS || !pg->is_huge) return false;
    hm_theap_t *th = _hm_theap_get(heap);
    return th != NULL && _hm_huge_grow(th, seg, size, level);
}

bool _hm_block_take_zero(void *p, size_t n) {
    hm_segment_t *seg;
    hm_page_t *pg;
    if (block_lookup(p, &seg, &pg) != HM_OK || !pg->is_huge || pg->kind != HM_PAGE_PLAIN ||
        !seg->zero)
        return false;
    /* the program writes it from now on (the flag is the allocating thread's until then) */
    seg->zero = false;
    (void)n;
    hm_tool_access(p, n); /* zeros, as calloc's memset would have left them */
    return true;
}

static hm_cold void free_invalid(const void *p, hm_result r) {
    _hm_fatal(r == HM_ERR_NOT_OWNED ? "free(): pointer not allocated by hostmalloc:"
                                    : "free(): pointer is not the start of a block:",
              p);
}

/* p was the start of a huge block whose segment is held back or waits in the arena's cache: the
 * block was freed, so freeing p again is a double free. Reported (to the segment's arena; a
 * held block of a kind with a header by its kind, which names it). Only segment headers are
 * read: the segment map says one is there. */
static const hm_segment_t *huge_freed_seg(const void *p) {
    if (!_hm_segmap_has((uintptr_t)p)) return NULL;
    const hm_segment_t *seg = _hm_segment_of(p);
    const hm_page_t *pg = &seg->pages[0];
    if (seg->kind != HM_SEG_HUGE || seg->heap != NULL || pg->start != p || _hm_page_area(pg) != 0)
        return NULL;
    return seg;
}

bool _hm_huge_freed_at(const void *p) {
    const hm_segment_t *seg = huge_freed_seg(p);
    if (seg == NULL) return false;
    const hm_page_t *pg = &seg->pages[0];
    if (seg->held && pg->kind != HM_PAGE_PLAIN)
        _hm_page_kinds[pg->kind]->double_free_held(seg, p);
    else
        _hm_report_double_free(seg, p, seg->huge_size);
    return true;
}

void _hm_free_slow(void *p) {
    hm_segment_t *seg;
    hm_page_t *pg;
    hm_result r = block_lookup(p, &seg, &pg);
    if (r == HM_ERR_NOT_BLOCK && _hm_huge_freed_at(p)) abort(); /* reported */
    if (r != HM_OK) free_invalid(p, r);
    if (_hm_page_free(seg, pg, p) != HM_OK) abort(); /* a check of its kind failed: reported */
}

void _hm_free_rest_or_abort(hm_segment_t *seg, hm_page_t *pg, void *p, int what) {
    /* another thread's block, the common case here, without the dispatch */
    if (what == HM_FREE_REMOTE) {
        _hm_page_free_remote_or_abort(pg, seg, p); /* a tail call */
        return;
    }
    if (_hm_page_free_rest(seg, pg, p, what) != HM_OK) abort(); /* reported already */
}

int32_t _hm_heap_free_slow(hm_heap *heap, void *p) {
    if (p == NULL) return HM_OK;
    hm_segment_t *seg;
    hm_page_t *pg;
    hm_result r = block_lookup(p, &seg, &pg);
    if (r == HM_ERR_NOT_BLOCK && _hm_huge_freed_at(p)) return r; /* reported */
    if (r != HM_OK) return r;
    if (seg->heap != heap) return HM_ERR_OTHER_HEAP;
    return _hm_page_free(seg, pg, p);
}

size_t _hm_block_usable(const hm_segment_t *seg, const hm_page_t *pg, const void *p) {
    if (hm_unlikely(pg->kind != HM_PAGE_PLAIN)) return _hm_page_kinds[pg->kind]->size(pg, p);
    return pg->is_huge ? seg->huge_size : pg->block_size;
}

/* A plain block of a page, free already as its owner can tell (as in free: the mark, then the
 * page's free lists; another thread cannot read them, and a huge block found is live). */
static bool plain_freed(const hm_segment_t *seg, const hm_page_t *pg, const void *p) {
    if (pg->is_huge || _hm_mark_peek(p) != pg) return false;
    uintptr_t tid = atomic_load_explicit(&seg->tid, memory_order_relaxed);
    return (tid == _hm_thread_id() || tid == HM_TID_ANY) && _hm_page_block_is_free(pg, p);
}

static hm_cold void report_freed_use(const hm_segment_t *seg, const void *p, size_t size,
                                     const char *call) {
    char msg[256];
    _hm_snprintf(msg, sizeof msg, "hostmalloc: %s of a freed block: block %p of %zu bytes\n", call,
                 p, size);
    _hm_report(&seg->arena->cfg, HM_ERROR_BAD_POINTER, p, msg);
}

bool _hm_block_freed(const void *p, hm_result r, const hm_segment_t *seg, const hm_page_t *pg,
                     const char *call) {
    if (r == HM_ERR_NOT_BLOCK) {
        seg = huge_freed_seg(p); /* held, or in the cache */
        if (seg == NULL) return false;
        pg = &seg->pages[0];
        if (seg->held && pg->kind != HM_PAGE_PLAIN)
            return _hm_page_kinds[pg->kind]->freed(seg, pg, p, call);
        if (call != NULL) report_freed_use(seg, p, seg->huge_size, call);
        return true;
    }
    if (r != HM_OK) return false;
    if (pg->kind != HM_PAGE_PLAIN) return _hm_page_kinds[pg->kind]->freed(seg, pg, p, call);
    if (!plain_freed(seg, pg, p)) return false;
    if (call != NULL) report_freed_use(seg, p, pg->block_size, call);
    return true;
}

/* A resize frees p: a block already free (its owner can tell, as in free; a block with a header
 * says so itself) is a double free, reported and aborted, never a block to hand back in place
 * (it is still on its page's free list: the next allocation would hand it out a second time)
 * nor one to copy from. Every resize door calls it. */
void _hm_realloc_check_freed(void *p, hm_segment_t *seg, hm_page_t *pg) {
    if (pg->kind != HM_PAGE_PLAIN) {
        /* the kind's free reports the double free, naming the block, and changes nothing */
        if (_hm_page_kinds[pg->kind]->freed(seg, pg, p, NULL)) {
            (void)_hm_page_kinds[pg->kind]->free(pg, p, false);
            abort();
        }
    } else if (plain_freed(seg, pg, p)) {
        _hm_report_double_free(seg, p, pg->block_size);
        abort();
    }
}

#if HM_TOOLS
/* Tell the tool a block was handed out: exactly `size` bytes, and the slot's slack (up to the
 * usable size) inaccessible, so that an overrun within the slot is reported too. */
void _hm_tool_alloc(void *p, size_t size) {
    hm_segment_t *seg;
    hm_page_t *pg;
    if (_hm_block_lookup(p, &seg, &pg) != HM_OK) return;
    size_t usable = pg->is_huge ? seg->huge_size : pg->block_size;
    if (pg->kind != HM_PAGE_PLAIN) usable = size; /* the canary follows: the kind owns it */
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
    size_t n = _hm_block_usable(seg, pg, p);
    ASAN_POISON_MEMORY_REGION(p, n);
}
#endif
