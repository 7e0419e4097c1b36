/* SPDX-License-Identifier: MIT */
/* mem/segment.h: segments, the segment map, huge blocks, the arena's segment cache and its ring
 * of held huge blocks (segment.c). Below: budget (through the types of mem/types.h). */
#ifndef HM_MEM_SEGMENT_H
#define HM_MEM_SEGMENT_H

#include "mem/types.h"

#define HM_MAP_WORDS (((size_t)1 << (HM_ADDR_BITS - HM_SEGMENT_SHIFT)) / 64)
#define HM_MAP_UNITS ((size_t)1 << (HM_ADDR_BITS - HM_SEGMENT_SHIFT))
/* The segment map: a byte per 4 MiB unit (HM_MAP_UNITS bytes), non-zero where a segment header
 * is, in a read-only mapping reserved when the first segment is made (not in .bss: address space
 * that neither VSZ nor strict overcommit should pay for in a process that never allocates; a
 * read-only private mapping is not charged, and its untouched pages read as zeros). A byte, not
 * a bit: the test of every free is then one compare with memory (docs/DESIGN-NOTES.md, "The
 * segment map"). `_hm_segmap_units` is 0 until the map is reserved, so every pointer reads as
 * foreign; both variables are written once, the base first, and never change after. Two
 * variables, not a struct: each is then one RIP-relative operand. */
extern __attribute__((visibility("hidden"))) const uint8_t *_hm_segmap_base;
extern __attribute__((visibility("hidden"))) size_t _hm_segmap_units;
/* Is there a segment header at 4 MiB unit `unit` (an address >> HM_SEGMENT_SHIFT)? Any unit,
 * even a wild address's. The bound is compared in memory and the base loaded after it, each in
 * a volatile asm: the compiler keeps them in that order (the base is read only once the bound
 * says it is set; x86-64 loads are not reordered with each other), and the compare needs no
 * load of its own. */
hm_inline bool _hm_segmap_has_unit(uintptr_t unit) {
    bool outside;
    __asm__ volatile("cmpq %[n], %[u]"
                     : "=@ccae"(outside)
                     : [n] "m"(_hm_segmap_units), [u] "r"(unit));
    if (hm_unlikely(outside)) return false;
    const uint8_t *base;
    __asm__ volatile("movq %[b], %[r]" : [r] "=r"(base) : [b] "m"(_hm_segmap_base));
    return base[unit] != 0;
}
/* The same for the unit of address `p`. */
hm_inline bool _hm_segmap_has(uintptr_t p) {
    return _hm_segmap_has_unit(p >> HM_SEGMENT_SHIFT);
}
/* The segment of any interior pointer of a standard segment (or of a huge one's first unit). */
hm_inline hm_segment_t *_hm_segment_of(const void *p) {
    return (hm_segment_t *)((uintptr_t)p & ~(uintptr_t)HM_SEGMENT_MASK);
}
/* Inside a huge mapping, but not at a unit where a block may start. */
bool _hm_unit_covered(uintptr_t unit);
/* The segment whose huge block starts at the 4 MiB unit `unit` (alignment >= 4 MiB), or NULL. */
hm_segment_t *_hm_aligned_huge_at(uintptr_t unit);
/* Bytes of a standard segment's header (hm_segment_t and its page table), page-rounded. */
size_t _hm_segment_header_size(size_t page_count);

/* Count `bytes` for th's heap if its arena's budget lets `level` (0..2) have them: true, or
 * false with th->refused set and nothing counted. */
bool _hm_theap_commit(hm_theap_t *th, size_t bytes, int level);

/* A standard segment of `kind` for `th` from the arena's cache or the OS, linked first into
 * th's list; NULL when the budget refuses (th->refused set) or the OS does. */
hm_segment_t *_hm_segment_alloc(hm_theap_t *th, hm_segment_kind_t kind, int level);
/* Give an empty standard segment back to its arena (cache or OS). Owner only. */
void _hm_segment_free(hm_segment_t *seg);
/* Unmap a segment for good (heap release, cache eviction): map bits off, accounting undone. */
void _hm_segment_unmap(hm_segment_t *seg);
/* Decommit a range of a segment and give its bytes back to the budget. */
void _hm_segment_decommit(hm_segment_t *seg, uint8_t *p, size_t size);

/* A huge segment's note: HM_SEGMENT_NOTE bytes of its header page, past hm_segment_t and its
 * one page, for the block's page kind: what a held block's kind must still read once the
 * block's own pages are inaccessible or decommitted (page.h, `protect_held`). */
#define HM_SEGMENT_NOTE 64
#define HM_SEGMENT_NOTE_OFFSET                                                                     \
    ((sizeof(hm_segment_t) + sizeof(hm_page_t) + 63) & ~(size_t)63) /* past its one page */
_Static_assert(HM_SEGMENT_NOTE_OFFSET + HM_SEGMENT_NOTE <= HM_OS_PAGE,
               "the note fits in a huge segment's header page");

/* A sub-heap's lists of standard segments (th->segs), with their last segments kept so that
 * a segment that fills goes to the back at once: a walk to the back each time cost 5 % of
 * `bench malloc buffers` with hundreds of segments of large pages live (docs/DESIGN-NOTES.md,
 * "Large pages"). */
hm_inline void _hm_seglist_push(hm_theap_t *th, hm_segment_t *seg) {
    unsigned k = seg->kind;
    hm_assert(k < HM_SEG_STANDARD);
    HM_LIST_PUSH(th->segs[k], seg, next, prev);
    if (seg->next == NULL) th->segs_last[k] = seg;
}

hm_inline void _hm_seglist_remove(hm_theap_t *th, hm_segment_t *seg) {
    unsigned k = seg->kind;
    hm_assert(k < HM_SEG_STANDARD);
    if (th->segs_last[k] == seg) th->segs_last[k] = seg->prev;
    HM_LIST_REMOVE(th->segs[k], seg, next, prev);
}

hm_inline void _hm_seglist_to_back(hm_theap_t *th, hm_segment_t *seg) {
    unsigned k = seg->kind;
    hm_segment_t *last = th->segs_last[k];
    hm_assert(k < HM_SEG_STANDARD && last != NULL);
    if (last == seg) return;
    _hm_seglist_remove(th, seg);
    last->next = seg;
    seg->prev = last;
    seg->next = NULL;
    th->segs_last[k] = seg;
}

hm_inline void *_hm_segment_note(const hm_segment_t *seg) {
    return (uint8_t *)seg + HM_SEGMENT_NOTE_OFFSET;
}
/* A huge segment holding one block of `size` bytes aligned to `align`, listed in th's heap;
 * NULL when the budget refuses (th->refused set) or the OS does. Its block ends at a guard page
 * while the arena's protections are within their rate, unless the heap is executable. */
hm_segment_t *_hm_huge_alloc(hm_theap_t *th, size_t size, size_t align, int level);
/* The same (aligned to HM_ALIGN), with an inaccessible guard page right after the block's
 * usable bytes (page-rounded), so that an overrun faults at once (page kinds that ask for it:
 * debug/debug.c). A refusal of the OS to protect leaves the block without it. */
hm_segment_t *_hm_huge_alloc_guarded(hm_theap_t *th, size_t size, int level);
/* Grow the plain huge block of `seg` in place to at least `size` bytes, into the rest of its
 * mapping (whole 4 MiB units, the guard page kept after the new end): true when done. False,
 * nothing changed, when it does not fit there, the budget refuses `level` the bytes, or the
 * block is aligned to 4 MiB or more (a realloc then moves it). */
bool _hm_huge_grow(hm_theap_t *th, hm_segment_t *seg, size_t size, int level);
/* The huge block of `seg` was freed: into the cache. */
void _hm_huge_free(hm_segment_t *seg);
/* The same, but held back in the ring first, so that a second free is known (page kinds that
 * ask for it; the kind keeps what a second free reads in the segment's note: the pages past
 * the header page may be decommitted while it waits). With `protect_from` (a page boundary
 * inside the mapping, past the header page), the pages from there to the end of the mapping
 * are made inaccessible while the block is held, so that a read or a write of the freed block
 * faults. */
void _hm_huge_hold(hm_segment_t *seg, uint8_t *protect_from);

/* A sealed segment: one unit whose one page's blocks are addresses in memory no one may touch
 * (blocks of 0 bytes that fault when used). Its header page(s) hold hm_segment_t, its page and
 * `meta` bytes for the page kind at the note's offset (zeroed), readable and writable; then
 * `count` blocks of `block` bytes (a power of two, 16 at least), all inaccessible, and the
 * rest of the unit likewise. Its page is of kind `kind`, which keeps the blocks' state (page.h,
 * `sealed`); a free from any thread goes to it. It is in the segment map and in no list: its
 * heap keeps it (heap.c) and unmaps it. NULL when the budget refuses (th->refused set) or the
 * OS does. */
hm_segment_t *_hm_segment_sealed_new(hm_theap_t *th, size_t meta, size_t block, size_t count,
                                     unsigned kind, int level);

/* Trim the cache: decommit expired entries, evict what is over the limits; `force`: the held
 * ring into the cache, then everything out. */
void _hm_cache_purge(hm_arena_t *a, bool force);
/* Bytes of address space the held ring keeps. */
size_t _hm_held_mapped(hm_arena_t *a);
/* Move every held segment to the cache (memory is wanted). */
void _hm_held_flush(hm_arena_t *a);
/* Unmap every held segment (the arena goes). */
void _hm_held_clear(hm_arena_t *a);

/* The invariants of a standard segment owned by a sub-heap: geometry, page states and the count
 * of pages in use. HM_DEBUG > 1 runs it on slow paths. */
bool _hm_segment_valid(const hm_segment_t *seg);

#endif /* HM_MEM_SEGMENT_H */
