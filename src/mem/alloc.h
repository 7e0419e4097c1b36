/* SPDX-License-Identifier: MIT */
/* mem/alloc.h: the hot paths (alloc.c): allocate, free, look a pointer up. The fast paths are
 * defined here, inline, so that every door (native, COM, override) compiles the same code into
 * itself and pays no extra call (docs/DESIGN-NOTES.md, "The COM door"). Below: heap. */
#ifndef HM_MEM_ALLOC_H
#define HM_MEM_ALLOC_H

#include "mem/heap.h"

/* The level bit that says "the COM door: report misuse, do not abort" (debug layer). */
#define HM_LEVEL_NO_ABORT 0x100

/* Resolve p to its segment and page if p is the start of a live block; else an error. */
hm_result _hm_block_lookup(const void *p, hm_segment_t **segp, hm_page_t **pagep);
/* Everything the plain fast path leaves: sub-heap lookup, empty pages, large sizes. `level`
 * may carry HM_LEVEL_NO_ABORT (taken off here). NULL with errno ENOMEM. */
void *_hm_alloc_slow(hm_heap *heap, size_t size, int level);
/* `size` bytes aligned to `alignment` (a power of two above HM_ALIGN): NULL with errno. */
void *_hm_alloc_aligned(hm_heap *heap, size_t size, size_t alignment, int level);
/* A free the fast path left: NULL, aligned huge blocks, freed huge blocks (a double free is
 * reported), bad pointers (an error, nothing reported). Never aborts. */
hm_result _hm_heap_free_slow(hm_heap *heap, void *p);
/* The same for a free of any heap's block (hm_free): aborts with a message on misuse. */
void _hm_free_slow(void *p);
/* The usable bytes of block `p` of `seg`/`pg` (for kinds with a header: the requested size). */
size_t _hm_block_usable(const hm_segment_t *seg, const hm_page_t *pg, const void *p);
/* A resize of `p` (a block of `seg`/`pg`): abort with a report if p is free already. */
void _hm_realloc_check_freed(void *p, hm_segment_t *seg, hm_page_t *pg);
/* p is the block of a huge segment freed already (held, or waiting in the cache): report the
 * double free and return true. */
bool _hm_huge_freed_at(const void *p);
/* Was p freed? `r`, `seg` and `pg` are what _hm_block_lookup gave for p: a block of a page
 * (plain: as its owner can tell from the free mark and the free lists, as in free; a kind with
 * a header: its header says so), or a pointer refused as no block that is the block of a huge
 * segment freed already (held, or in the cache). When it was and `call` is not NULL, report
 * "<call> of a freed block" to the arena's error sink (kind HM_ERROR_BAD_POINTER). */
bool _hm_block_freed(const void *p, hm_result r, const hm_segment_t *seg, const hm_page_t *pg,
                     const char *call);

/* Resolve p to its segment and page if p is the start of a live block of a segment with a
 * header in p's unit; HM_ERR_NOT_OWNED also when the unit has no header (see
 * lookup_unmapped, which callers use for that case). */
hm_inline hm_result _hm_block_lookup_fast(const void *p, hm_segment_t **segp, hm_page_t **pagep) {
    if (hm_unlikely(!_hm_segmap_has((uintptr_t)p))) return HM_ERR_NOT_OWNED;
    hm_segment_t *seg = (hm_segment_t *)((uintptr_t)p & ~(uintptr_t)HM_SEGMENT_MASK);
    hm_page_t *pg = _hm_page_of(seg, p);
    __asm__("" : "+r"(pg)); /* compute the page address once (gcc 12 otherwise does it twice) */
    size_t off = (size_t)((const uint8_t *)p - pg->start);
    /* off >= area, with the relaxed load of `area` inside the compare: compilers keep an
     * atomic load a separate instruction, and this one is on every free (the free mark's
     * test, _hm_free_block, was paid for with it; an aligned 8-byte load is atomic on x86-64) */
    bool outside;
    __asm__("cmpq %[area], %[off]"
            : "=@ccae"(outside)
            : [area] "m"(*(const size_t *)&pg->area), [off] "r"(off));
    if (hm_unlikely(outside || off * pg->div_magic >= pg->div_magic)) return HM_ERR_NOT_BLOCK;
    *segp = seg;
    *pagep = pg;
    return HM_OK;
}

/* Allocate `size` bytes at `level` (0..2; 3 is counted nowhere) from `heap`; what the direct
 * table cannot serve goes to `slow` (a door passes its own: a checked heap's allocations go to
 * checked mode, which lives above this layer). */
hm_inline void *_hm_alloc_fast(hm_heap *heap, size_t size, int level,
                               void *(*slow)(hm_heap *, size_t, int)) {
    uint64_t id;
    hm_tls_entry_t *e = _hm_tls_slot(heap, &id);
    if (hm_likely(e->id == id && size <= HM_DIRECT_MAX)) {
        hm_theap_t *th = e->th;
        hm_page_t *pg = th->direct[(size + 15) >> 4];
        hm_block_t *b = pg->free;
        if (hm_likely(b != NULL)) {
            hm_tool_access(b, 2 * sizeof(hm_block_t));
            pg->free = b->next;
            _hm_mark_set(b, NULL); /* live: unmarked */
            pg->used++;
            th->requests[level & 3]++;
            hm_tool_alloc(b, size);
            return b;
        }
    }
    return slow(heap, size, level);
}

/* Free `p` if it is the start of a live block of `heap` (never aborts): `page_free` frees a
 * block of the heap's standard pages (_hm_page_free, or checked mode's inline free, which falls
 * back on it); everything else goes to the slow path. */
hm_inline hm_result _hm_heap_free_with(hm_heap *heap, void *p,
                                       hm_result (*page_free)(hm_segment_t *, hm_page_t *,
                                                              void *)) {
    hm_segment_t *seg;
    hm_page_t *pg;
    if (hm_unlikely(_hm_block_lookup_fast(p, &seg, &pg) != HM_OK))
        return _hm_heap_free_slow(heap, p);
    if (hm_unlikely(seg->heap != heap)) return HM_ERR_OTHER_HEAP;
    return page_free(seg, pg, p);
}

hm_inline hm_result _hm_heap_free_fast(hm_heap *heap, void *p) {
    return _hm_heap_free_with(heap, p, _hm_page_free);
}

#endif /* HM_MEM_ALLOC_H */
