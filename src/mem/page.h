/* SPDX-License-Identifier: MIT */
/* mem/page.h: size classes, pages, their free lists and queues, page kinds (page.c). Below:
 * segment. */
#ifndef HM_MEM_PAGE_H
#define HM_MEM_PAGE_H

#include "mem/segment.h"

/* ---- size classes ---------------------------------------------------------------------------- */
/* The size class of `size`: 16-byte steps up to 256 bytes (bins 1..16), 8 classes a doubling up
 * to HM_DIRECT_MAX (bins 17..32: at most 1/8 over the request), 4 a doubling above it (bins
 * 33..: under 1/4 over). Fewer classes above 1 KiB hold fewer pages partly used: rptest with one
 * thread (sizes of 8 to 16,000 bytes) took 15 % fewer page faults with 4 than with 8
 * (docs/DESIGN-NOTES.md, "Size classes"). Inline: medium sizes look their class up on every
 * allocation (alloc.c). */
hm_inline size_t _hm_bin_of(size_t size) {
    size_t w = (size + 15) >> 4;
    if (w <= 1) return 1;
    if (w <= 16) return w;
    w--;
    unsigned b = 63u - (unsigned)__builtin_clzl(w);
    if (w < HM_DIRECT_MAX / 16) return ((size_t)b << 3) + ((w >> (b - 3)) & 7) - 15;
    return ((size_t)b << 2) + ((w >> (b - 2)) & 3) + 9; /* b >= 6: bin 33 on */
}
size_t _hm_bin_size(size_t bin);

/* ---- page kinds -------------------------------------------------------------------------------
 * A page of kind HM_PAGE_DEBUG or HM_PAGE_CHECKED holds blocks whose format belongs to the layer
 * that registered the kind (the debug layer): their slots have a header in front, and their
 * frees are checked. Page code calls these only on paths that are already slow; a kind is
 * registered before its first page exists and never changes after. */
typedef struct hm_page_kind_s {
    size_t header;   /* bytes in front of each block in its slot */
    size_t min_slot; /* the least slot (cdirect of the checked kind serves smaller ones) */
    /* A freed huge block of the kind is made inaccessible while it is held (the pages from the
     * one holding its header to the end of the mapping): its free must have written what
     * double_free_held and freed read into the segment's note (segment.h). */
    bool protect_held;
    /* The kind's blocks are addresses in a sealed segment (segment.h), no memory: page code
     * neither links nor counts them, and the kind's free does all there is to do. */
    bool sealed;
    /* The owner's frees go to the page's `delayed` list, not to `free`: a freed block comes
     * back only when `free` has run dry (types.h). */
    bool delay_reuse;
    /* Carve `n` new slots of `pg` (the first block at `p`) into a free list in the kind's
     * format, linked in order, the last to `last_next`. */
    void (*carve)(hm_page_t *pg, uint8_t *p, size_t n, hm_block_t *last_next);
    /* A block of the kind is being freed (by any thread): HM_OK, the block marked freed and
     * handed back to the tools, and with `link` (the owner's free on a page) its link set to
     * pg->free (pg->delayed for a kind that delays reuse) in the kind's format; or an error that
     * was reported (the block is then left alone, never reused). */
    hm_result (*free)(hm_page_t *pg, hm_block_t *b, bool link);
    /* Write the free-list link of freed block `b`; NULL: a plain link (b->next). */
    void (*set_link)(hm_block_t *b, hm_block_t *next);
    /* Is freed block b's link `next` the one set_link wrote? NULL: links are not checked. */
    bool (*link_intact)(const hm_block_t *b, const hm_block_t *next);
    /* A link found broken at `b`: report it; the list is cut after `b`. */
    void (*bad_link)(hm_page_t *pg, hm_block_t *b);
    /* The requested size of live block `p` (never more than its slot holds). */
    size_t (*size)(const hm_page_t *pg, const void *p);
    /* A second free of the held huge block at `p` (segment.c keeps freed huge blocks of every
     * kind but the plain one): report it. */
    void (*double_free_held)(const hm_segment_t *seg, const void *p);
    /* Is block `p` of `pg` (a block start of a page of the kind, or the block of a held huge
     * segment) freed, or quarantined after a bad free? Reads its header only. When it is and
     * `call` is not NULL, report "<call> of a freed block" naming the block. */
    bool (*freed)(const hm_segment_t *seg, const hm_page_t *pg, const void *p, const char *call);
} hm_page_kind_t;
extern const hm_page_kind_t *_hm_page_kinds[HM_PAGE_KINDS];
/* Register `kind` (HM_PAGE_DEBUG, HM_PAGE_CHECKED or HM_PAGE_ZERO). */
void _hm_page_kind_set(unsigned kind, const hm_page_kind_t *k);

/* ---- pages ------------------------------------------------------------------------------------
 */
/* A fresh, empty page whose queue pointers point at it (the page with no free block). */
extern hm_page_t _hm_page_empty;
/* The page containing p (p inside seg). */
hm_inline hm_page_t *_hm_page_of(hm_segment_t *seg, const void *p) {
    return seg->page_of[((uintptr_t)p & HM_SEGMENT_MASK) >> HM_SMALL_PAGE_SHIFT];
}
void _hm_theap_init_queues(hm_theap_t *th);
/* Point the direct table of queue `qbin` at the queue's first page. */
void _hm_direct_update(hm_theap_t *th, size_t qbin);
/* A block from queue `bin` (a size class plus the kind's queue offset, HM_QUEUE_*): the queue's
 * pages, else a fresh page. NULL when the budget refuses (th->refused set) or the OS does. */
void *_hm_page_alloc(hm_theap_t *th, size_t bin, int level);
/* Move other threads' frees into page->free. Owner only; may run under a heap's lock or the
 * arena's lock of heaps (thread exit, hm_heap_collect, reclaim). A list with a cycle (a block
 * freed by two threads at once) is reported to the error sink from here, on every door (it is
 * found inside another call: the malloc door does not abort there), and left out. */
void _hm_page_collect(hm_page_t *page);
/* A local free found the page full (or huge, or of another kind): requeue it, retire it, or
 * free the huge block. */
hm_result _hm_page_free_slow(hm_page_t *page, hm_segment_t *seg, hm_block_t *b);
/* A local free of a plain block that carries the free mark: a double free (reported; nothing
 * changes) if the block is on one of the page's free lists, else a normal free. */
hm_result _hm_page_free_marked(hm_page_t *page, hm_segment_t *seg, hm_block_t *b);
/* Push a free by a thread that does not own the page. */
hm_result _hm_page_free_remote(hm_page_t *page, hm_segment_t *seg, hm_block_t *b);
/* The same for the malloc door's free: misuse aborts, after its report. */
void _hm_page_free_remote_or_abort(hm_page_t *page, hm_segment_t *seg, hm_block_t *b);
/* Is `b` on the free list of plain page `pg` or on its list of other threads' frees? Owner
 * only. Every link is validated before it is followed, and the walk is bounded. */
bool _hm_page_block_is_free(const hm_page_t *pg, const hm_block_t *b);
/* Report a double free of `p` (a block of `seg`, `size` usable bytes) to the error sink. */
hm_cold void _hm_report_double_free(const hm_segment_t *seg, const void *p, size_t size);
/* A local free left a page that is not the head of its queue empty: retired while memory is
 * short (Low), else kept for reuse. */
hm_result _hm_page_emptied(hm_page_t *page, hm_segment_t *seg);

/* ---- a sub-heap's pages -----------------------------------------------------------------------
 */
/* Put the full pages that received remote frees back into their queues. */
void _hm_theap_process_pending(hm_theap_t *th);
/* Collect every page of `th`; retire the empty ones (all of them when `retire_all`, else all but
 * the last of each size class); decommit retired pages whose delay has passed (all of them when
 * `purge_all`). */
void _hm_theap_collect(hm_theap_t *th, bool retire_all, bool purge_all);
/* Retire the empty pages of every queue but the last page of each. */
void _hm_theap_retire_empty(hm_theap_t *th);
/* Decommit the retired pages whose delay has passed at `now` (all of them when `force`). */
void _hm_theap_purge(hm_theap_t *th, uint32_t now, bool force);
/* The sub-heap's maintenance pass, when its clock says one is due (a quarter of the purge delay
 * after the last): empty pages retired, those whose delay passed decommitted, the arena's
 * cache aged. True when the pass ran (the heap layer adds what is its own). */
bool _hm_theap_tick(hm_theap_t *th);

/* The invariants of a page in use: its geometry, its counts, its free list (bounded walk, every
 * block a block of the page). Owner only. HM_DEBUG > 1 runs it on slow paths. */
bool _hm_page_valid(const hm_page_t *pg);

/* ---- the allocation fast paths' pop --------------------------------------------------------- */
/* Hand out `b`, the first block of plain page `pg`'s free list (the allocation fast paths:
 * alloc.h, heap.h): the list moves on, the next block is prefetched for the allocation after
 * (blocks another thread freed were last written on another core, a miss each; a prefetch never
 * faults, NULL too; with write intent it is `prefetchw` where the target has it, else
 * `prefetcht0`; docs/DESIGN-NOTES.md, "Other threads' frees, counted as they are pushed"), the
 * block is live (unmarked, no free-list link shown) and counted. */
hm_inline void _hm_page_take(hm_page_t *pg, hm_block_t *b) {
    hm_tool_access(b, 2 * sizeof(hm_block_t));
    hm_block_t *next = b->next;
    pg->free = next;
    __builtin_prefetch(next, 1);
    _hm_block_clear_words(b);
    pg->used++;
}

/* ---- the free fast path ------------------------------------------------------------------- */
/* What the free fast path left to do (_hm_page_free_try). */
enum {
    HM_FREED = 0,    /* done */
    HM_FREE_REMOTE,  /* another thread's page: push onto its thread_free */
    HM_FREE_SLOW,    /* a full, huge or non-plain page (HM_USED_SLOW) */
    HM_FREE_MARKED,  /* the block carries the free mark: a double free, or the program's bytes */
    HM_FREE_EMPTIED, /* freed, and the page is now empty behind the allocation head */
};

/* The owner's free of block `p` of `seg`/`pg` (a block start: the caller looked it up), inline
 * for the fast paths: push onto the page's free list, or say which slow path is left. */
hm_inline int _hm_page_free_try(hm_segment_t *seg, hm_page_t *pg, void *p) {
    hm_block_t *b = (hm_block_t *)p;
    uintptr_t tid = atomic_load_explicit(&seg->tid, memory_order_relaxed);
    /* the owner first: one compare on the common path (the empty asm keeps the compiler from
     * testing HM_TID_ANY, the serialized heaps' owner, before it) */
    if (hm_unlikely(!_hm_is_thread(tid))) {
        __asm__("" : "+r"(tid));
        if (tid != HM_TID_ANY) return HM_FREE_REMOTE;
    }
    /* negative: HM_USED_SLOW (a full page out of its queue, a huge page, a debug page); the
     * count compared in memory (compilers load it, then test it) */
    bool slow;
#if HM_TSAN
    slow = (int32_t)pg->used < 0;
#else
    __asm__("cmpl $0, %[n]" : "=@ccs"(slow) : [n] "m"(pg->used));
#endif
    if (hm_unlikely(slow)) return HM_FREE_SLOW;
    hm_tool_access(b, 2 * sizeof(hm_block_t));
    /* marked: free already, unless the program wrote the mark itself (the slow path knows) */
    if (hm_unlikely(_hm_mark_get(b) == pg)) return HM_FREE_MARKED;
    hm_tool_free(b);
    hm_tool_access(b, 2 * sizeof(hm_block_t));
    b->next = pg->free;
    _hm_mark_set(b, pg);
    hm_tool_hide(b, 2 * sizeof(hm_block_t));
    pg->free = b;
    /* the count down by one in memory, its zero flag the test for an emptied page: a `sub` and
     * a branch (compilers load the count into a register, subtract into another, store it and
     * compare the old value, and move the door's answer around the busy register) */
    bool emptied;
#if HM_TSAN
    emptied = --pg->used == 0;
#else
    __asm__("subl $1, %[n]" : [n] "+m"(pg->used), "=@cce"(emptied));
#endif
    /* the page is now empty and allocation has moved on from it (the head page's count holds
     * HM_USED_HEAD and never reaches 0 here): while memory is short it is retired at once, so
     * that a thread that frees and then idles holds nothing another thread's request needs;
     * otherwise it stays for reuse (_hm_page_emptied) */
    if (hm_unlikely(emptied)) {
        /* the answer made on this branch alone (compilers move the constant above the `sub`,
         * where every free pays for it) */
        int what = HM_FREE_EMPTIED;
        __asm__("" : "+r"(what));
        return what;
    }
    return HM_FREED;
}

/* The slow path `what` (HM_FREE_*) of a free of block `p`: an hm_result (int32_t, the type of
 * _hm_heap_free_as's `rest`). */
int32_t _hm_page_free_rest(hm_segment_t *seg, hm_page_t *pg, void *p, int what);

/* Free block `p` of `seg`/`pg`: the fast path, then what it left. */
hm_inline hm_result _hm_page_free(hm_segment_t *seg, hm_page_t *pg, void *p) {
    int what = _hm_page_free_try(seg, pg, p);
    if (hm_likely(what == HM_FREED)) return HM_OK;
    return (hm_result)_hm_page_free_rest(seg, pg, p, what);
}

#endif /* HM_MEM_PAGE_H */
