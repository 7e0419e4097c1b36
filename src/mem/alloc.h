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
/* Grow plain huge block `p` (of `seg`/`pg`, a block of `heap`) in place to at least `size`
 * bytes at `level`: true when done (its usable size is then at least `size`), false with nothing
 * changed when it cannot (a page block, no room in its mapping, the budget, a tool's build:
 * the tools record a block's size when it is made). */
bool _hm_block_grow(hm_heap *heap, hm_segment_t *seg, hm_page_t *pg, size_t size, int level);
/* Is block `p` (just allocated, `n` bytes asked) a plain huge block in memory fresh from the
 * OS, never written, so that calloc need not zero it? Answers once: the next call for the same
 * block says false. */
bool _hm_block_take_zero(void *p, size_t n);
/* Everything the plain fast path leaves: sub-heap lookup, empty pages, large sizes. `level`
 * may carry HM_LEVEL_NO_ABORT (taken off here). NULL with errno ENOMEM. */
void *_hm_alloc_slow(hm_heap *heap, size_t size, int level);
/* `size` bytes aligned to `alignment` (a power of two above HM_ALIGN): NULL with errno. */
void *_hm_alloc_aligned(hm_heap *heap, size_t size, size_t alignment, int level);
/* A free the fast path left: NULL, aligned huge blocks, freed huge blocks (a double free is
 * reported), bad pointers (an error, nothing reported). Never aborts. */
int32_t _hm_heap_free_slow(hm_heap *heap,
                           void *p); /* an hm_result (the type of _hm_heap_free_as) */
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
    uintptr_t unit = (uintptr_t)p >> HM_SEGMENT_SHIFT;
    if (hm_unlikely(!_hm_segmap_has_unit(unit))) return HM_ERR_NOT_OWNED;
    /* the segment from the unit, shifted back in its register (the compiler, left to itself,
     * masks another copy of p) */
    __asm__("shlq %[s], %[u]" : [u] "+r"(unit) : [s] "i"(HM_SEGMENT_SHIFT));
    hm_segment_t *seg = (hm_segment_t *)unit;
    hm_page_t *pg = _hm_page_of(seg, p);
    __asm__("" : "+r"(pg)); /* compute the page address once (gcc 12 otherwise does it twice) */
    /* a block start of the carved area: one product and one compare (types.h, _hm_block_check),
     * with the relaxed load of the key inside the compare (compilers keep an atomic load a
     * separate instruction; an aligned 8-byte load is atomic on x86-64) */
    uint64_t key = (uint64_t)((const uint8_t *)p - pg->start) * pg->div_magic;
    bool outside;
    __asm__("cmpq %[lim], %[key]"
            : "=@ccae"(outside)
            : [lim] "m"(*(const uint64_t *)&pg->area_key), [key] "r"(key));
    if (hm_unlikely(outside)) return HM_ERR_NOT_BLOCK;
    *segp = seg;
    *pagep = pg;
    return HM_OK;
}

/* A block of `size` (at most HM_DIRECT_MAX) bytes from sub-heap `th`'s direct page, or NULL
 * when that page has none at hand or the heartbeat is due. `level` (0..2) is counted; 3 is
 * counted nowhere. */
hm_inline void *_hm_theap_pop(hm_theap_t *th, size_t size, int level) {
    hm_page_t *pg = th->direct[(size + 15) >> 4];
    hm_block_t *b = pg->free;
    if (hm_unlikely(b == NULL)) return NULL; /* (a checked heap's plain table: always) */
    /* the request counted down to the heartbeat: the HM_BEAT-th allocation of a level goes to
     * the slow path, which runs the sub-heap's maintenance pass (its clock says whether purge
     * delays have passed), so that a thread whose only activity is on the fast paths still
     * gives back what it freed before (docs/DESIGN-NOTES.md, "The heartbeat"). The count is the
     * request count the path keeps anyway, kept downwards: a `sub` in memory and a branch in
     * place of an `add`, no store more. The request that reaches 0 is served by the slow path,
     * which counts it. */
    bool beat; /* one `sub` in memory and a branch on zero (compilers load, subtract, store) */
#if HM_TSAN
    beat = --th->req_left[level & 3] == 0;
#else
    __asm__("subq $1, %[n]" : [n] "+m"(th->req_left[level & 3]), "=@cce"(beat));
#endif
    if (hm_unlikely(beat)) return NULL;
    _hm_page_take(pg, b);
    hm_tool_alloc(b, size);
    return b;
}

/* Allocate `size` bytes at `level` (0..2; 3 is counted nowhere) from `heap`; what the direct
 * table cannot serve goes to `slow` (a door passes its own: a checked heap's allocations go to
 * checked mode, which lives above this layer). */
hm_inline void *_hm_alloc_fast(hm_heap *heap, size_t size, int level,
                               void *(*slow)(hm_heap *, size_t, int)) {
    uint64_t id;
    hm_tls_fs_entry_t *e = _hm_tls_entry(heap, &id);
    if (hm_likely(e->id == id && size <= HM_DIRECT_MAX)) {
        void *p = _hm_theap_pop(e->th, size, level);
        if (hm_likely(p != NULL)) return p;
    }
    return slow(heap, size, level);
}

/* The slow path `what` of a free of any heap's block (hm_free): aborts with a message on misuse
 * (a check of the block's kind failed: it reported). */
void _hm_free_rest_or_abort(hm_segment_t *seg, hm_page_t *pg, void *p, int what);

/* Free `p`, a block of any heap (hm_free, the malloc door's free): aborts on misuse. Every slow
 * path is a tail call, so the fast path needs no stack frame. */
hm_inline void _hm_free_any(void *p) {
    hm_segment_t *seg;
    hm_page_t *pg;
    if (hm_unlikely(_hm_block_lookup_fast(p, &seg, &pg) != HM_OK)) {
        if (p != NULL) _hm_free_slow(p);
        return;
    }
    int what = _hm_page_free_try(seg, pg, p);
    if (hm_unlikely(what != HM_FREED)) _hm_free_rest_or_abort(seg, pg, p, what);
}

/* Free `p` if it is the start of a live block of `heap` (never aborts), with the door's own
 * answers: `try_free` is the page's fast path (_hm_page_free_try, or checked mode's, which falls
 * back on it); `ok` when it freed the block, `other` for another heap's block, and otherwise
 * whatever the door's `slow` (the lookup failed: NULL, huge and bad pointers) or `rest` (what
 * try_free left, HM_FREE_*) answer. With constant arguments every slow exit is a tail call and
 * the fast path needs no stack frame. */
hm_inline int32_t _hm_heap_free_as(hm_heap *heap, void *p,
                                   int (*try_free)(hm_segment_t *, hm_page_t *, void *), int32_t ok,
                                   int32_t other, int32_t (*slow)(hm_heap *, void *),
                                   int32_t (*rest)(hm_segment_t *, hm_page_t *, void *, int)) {
    hm_segment_t *seg;
    hm_page_t *pg;
    if (hm_unlikely(_hm_block_lookup_fast(p, &seg, &pg) != HM_OK)) return slow(heap, p);
    if (hm_unlikely(seg->heap != heap)) return other;
    int what = try_free(seg, pg, p);
    if (hm_likely(what == HM_FREED)) return ok;
    return rest(seg, pg, p, what);
}

#endif /* HM_MEM_ALLOC_H */
