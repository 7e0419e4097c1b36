/* SPDX-License-Identifier: MIT */
/* debug/checked.h: checked mode: the layout of a checked block and its fast paths, inline so
 * that the doors compile them into themselves (the COM door's checked instances, the malloc
 * door under HM_CHECKED=1); the full paths are in checked.c.
 *
 * A checked block of `size` bytes takes a slot of at least size + 24 bytes on a checked page:
 *
 *     slot:  [ header (16 bytes) | user bytes (size) | 8-byte canary | slack ]
 *                                ^ the block pointer (the engine's block start)
 *
 * The header holds the allocation's number and thread, the requested size and a state tag
 * that ends right before the user bytes. The tag and the back canary are derived from a
 * per-process secret and the block address: tag == live(c) while the block is handed out,
 * freed(c) once it was freed, quarantined(c) after a bad free. A free checks the tag (double
 * free, underrun) and the back canary (overrun), then writes the free-list link, its check
 * word and the 0xDF fill into user bytes [0, 32) (slots are at least 48 bytes); the next
 * allocation of the slot checks them all (write after free).
 * Everything unusual leaves the fast paths for the full path, which reports. */
#ifndef HM_DEBUG_CHECKED_H
#define HM_DEBUG_CHECKED_H

#include <emmintrin.h> /* SSE2: the fill (x86-64 baseline) */

#include "mem/mem.h"

#define HM_CHECKED_HEADER 16
#define HM_CHECKED_EXTRA  (HM_CHECKED_HEADER + 8) /* header + back canary */
#define HM_CHECKED_FILL   32 /* user bytes a freed block fills and Alloc checks: [0, 32) */
#define HM_CHECKED_MIN    48 /* smallest checked slot: every slot has all of them */
#define HM_CHECKED_PAT    0xDFDFDFDFDFDFDFDFULL
#define HM_CHECKED_MAX    (HM_DEBUG_SLOT_MAX - HM_CHECKED_EXTRA) /* larger: huge debug blocks */
typedef struct hm_chk_hdr_s {
    uint32_t seq;  /* allocation number in its sub-heap */
    uint32_t tid;  /* allocating thread (kernel id) */
    uint32_t size; /* requested bytes */
    uint32_t tag;  /* state, right before the user bytes */
} hm_chk_hdr_t;
/* set before the first debug or checked block (debug.c); hidden: one load, not two (the address
 * from the GOT, then the value) */
extern __attribute__((visibility("hidden"))) uint64_t _hm_debug_secret;

hm_inline hm_chk_hdr_t *_hm_chk_hdr(const void *p) {
    return (hm_chk_hdr_t *)((uintptr_t)p - HM_CHECKED_HEADER);
}
hm_inline uint64_t _hm_chk_canary(const void *p) {
    /* one instruction: the tag (the low half) then varies with address bits 4..31 */
    return _hm_debug_secret ^ (uint64_t)(uintptr_t)p;
}
/* The tags keep bit 0 set: none is ever 0, the state of memory never written */
#define HM_CHK_BASE(c) ((uint32_t)(c) | 1u)
/* a live block's tag covers its size too: an underrun that changes the size is an underrun,
 * not an overrun found at the wrong place (a live tag could equal the freed or quarantined one
 * only for sizes of 2^30 and more, which checked pages never hold) */
#define HM_CHK_LIVE(c, size) (((uint32_t)(c) ^ ((uint32_t)(size) << 1)) | 1u)
#define HM_CHK_FREED(c)      (HM_CHK_BASE(c) ^ 0xFFFFFFFEu)
#define HM_CHK_QUAR(c)       (HM_CHK_BASE(c) ^ 0x51554152u)
/* freed, and the whole slot past the header filled (a sampled free: below) */
#define HM_CHK_FREED_FULL(c) (HM_CHK_BASE(c) ^ 0xC6554C4Cu)
hm_inline bool _hm_chk_is_freed(uint32_t tag, uint64_t c) {
    return tag == HM_CHK_FREED(c) || tag == HM_CHK_FREED_FULL(c);
}
/* Sampled whole fills: one free of a page's owner in _hm_chk_sample_every(slot) (the first one
 * of a fresh page included) fills the whole slot past the header, [32, slot - 16) of the user
 * bytes too, and tags the block FREED_FULL; the allocation that hands it out again checks it
 * all, out of line. The other frees fill [16, 32) as above. A write after free past byte 32 is
 * caught for one freed block in 128 (slots of up to 2 KiB), or in slot / 16 (larger ones): the
 * whole fill and its check then cost at most 16 bytes of each a free, on average. The rate is
 * what keeps checked mode within 1.5x of the default door's time (docs/DEBUG.md): a whole fill
 * writes, and its check reads, lines of a freed block the program may not have touched. */
#define HM_CHECKED_SAMPLE 128
hm_inline uint16_t _hm_chk_sample_every(size_t slot) {
    return (uint16_t)(slot / 16 < HM_CHECKED_SAMPLE ? HM_CHECKED_SAMPLE : slot / 16);
}
/* A freed checked block's user bytes: [0, 8) the free-list link, [8, 16) its check word (the
 * link xor the block's canary), [16, 32) the 0xDF fill. Every write of a link on a checked page
 * writes the check word too (_hm_chk_set_link), so a link is validated exactly, with no page
 * field: a write after free in the first 16 bytes breaks the pair, one in [16, 32) the fill.
 * The fill is one 16-byte store, checked with one 16-byte load of the same bytes (a load
 * spanning two stores could not be forwarded from them: a block freed and taken back at once,
 * as in `pairs`, would wait for the stores to retire). */
hm_inline void _hm_chk_set_link(hm_block_t *blk, hm_block_t *next) {
    uint8_t *b = (uint8_t *)blk;
    __builtin_memcpy(b, &next, sizeof next);
    uint64_t w = (uint64_t)(uintptr_t)next ^ _hm_chk_canary(b);
    __builtin_memcpy(b + 8, &w, 8);
}
/* Is the link of freed block `b` the one its check word says? */
hm_inline bool _hm_chk_link_intact(const hm_block_t *blk, const hm_block_t *next) {
    const uint8_t *b = (const uint8_t *)blk;
    uint64_t w;
    __builtin_memcpy(&w, b + 8, 8);
    return w == ((uint64_t)(uintptr_t)next ^ _hm_chk_canary(b));
}
hm_inline bool _hm_chk_fill_ok(const uint8_t *u) {
    __m128i v = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(u + 16)),
                               _mm_set1_epi8((char)(HM_CHECKED_PAT & 0xFF)));
    return _mm_movemask_epi8(v) == 0xFFFF;
}
hm_inline void _hm_chk_fill(uint8_t *u) {
    _mm_storeu_si128((__m128i *)(u + 16), _mm_set1_epi8((char)(HM_CHECKED_PAT & 0xFF)));
}
/* A checked block handed out: the link and its check word (user bytes [0, 16)) read zero. The
 * pair would show a heap address and, xored together with the block's address, the secret of
 * every tag and canary to a program that reads memory it never wrote. Before the back canary
 * is written (for blocks of less than 16 bytes it lies in these bytes). */
hm_inline void _hm_chk_clear_words(uint8_t *b) {
    _mm_storeu_si128((__m128i *)b, _mm_setzero_si128());
}
/* Make `b` a freed checked block (a slot carved, or a block that passed its free checks)
 * whose link is `next`. */
hm_inline void _hm_chk_make_freed(uint8_t *b, const hm_block_t *next) {
    _hm_chk_hdr(b)->tag = HM_CHK_FREED(_hm_chk_canary(b));
    _hm_chk_set_link((hm_block_t *)b, (hm_block_t *)next);
    _hm_chk_fill(b);
}

/* ---- checked.c ----------------------------------------------------------------------------- */
/* The full paths: every size, every check, every report. */
void *_hm_checked_alloc(hm_heap *heap, size_t size, int level);
void *_hm_checked_alloc_slow(hm_heap *heap, size_t size, int level);
/* The slow path of a door whose heap may be checked: checked mode's, else the plain one. */
void *_hm_alloc_slow_any(hm_heap *heap, size_t size, int level);
/* Register the checked page kinds (from _hm_debug_init): checked blocks, and blocks of 0
 * bytes (addresses in the heap's sealed segment, inaccessible). */
void _hm_checked_register(void);
/* Visit the live blocks of 0 bytes of checked heap `heap` (fn may be NULL; it returns false to
 * stop); returns how many were visited. */
size_t _hm_checked_zero_walk(hm_heap *heap, bool (*fn)(void *p, void *arg), void *arg);
/* The sampled free of block `p` of `pg` (the owner's, its checks passed and its link, check
 * word and fill written): fill the rest of its slot, tag it FREED_FULL, count the next sample.
 * Checked heaps' heartbeat comes with it (the plain one is in mem/alloc.h, on requests the
 * checked fast path does not count down): one call in 32 runs the sub-heap's maintenance pass,
 * after which `pg` may be retired. */
void _hm_checked_sampled_free(hm_segment_t *seg, hm_page_t *pg, uint8_t *p);
/* Validate the link of a block popped from a checked page (pg->free now holds it), its
 * header and fill, and write its header and back canary. False (reported; the list cut
 * there) when the block may not be handed out: its tag says it is live or quarantined, or is
 * no state at all (it was reached through a damaged link). */
bool _hm_checked_on_alloc(hm_theap_t *th, hm_page_t *pg, void *p, size_t size, bool no_abort);
/* The link of freed checked block `b` of `pg` points outside the page: report the write after
 * free and cut the list after `b` (the blocks past it are lost, never handed out wild). */
void _hm_checked_bad_link(hm_page_t *pg, hm_block_t *b);

/* Allocate from a checked heap on the fast path: a block from the sub-heap's checked page of
 * the size, whose previous life passed its checks; NULL when that is not at hand (the caller
 * then takes _hm_checked_alloc_slow, which does everything and reports; a block a sampled free
 * filled whole is checked there first, out of line, so that this path keeps its registers). */
hm_inline void *_hm_checked_alloc_try(hm_heap *heap, size_t size, int level) {
#if !HM_TOOLS
    /* the TLS lookup of _hm_theap_get spelled out, as in _hm_alloc_fast: one test covers the
     * cache hit and the size (a helper returning NULL on a miss costs more: docs/DESIGN-NOTES.md,
     * "Checked mode has pages, a header and fast paths of its own") */
    uint64_t id;
    hm_tls_fs_entry_t *e = _hm_tls_entry(heap, &id);
    /* size 0 wraps around and fails the test: the slow path gives it a block that faults */
    if (hm_likely(e->id == id && size - 1 < HM_DIRECT_MAX - HM_CHECKED_EXTRA)) {
        hm_theap_t *th = e->th;
        hm_page_t *pg = th->cdirect[(size + HM_CHECKED_EXTRA + 15) >> 4];
        uint8_t *b = (uint8_t *)pg->free;
        if (hm_likely(b != NULL)) {
            /* the header read and written at offsets from b (a pointer of its own would take
             * a register) */
            uint64_t c = _hm_chk_canary(b);
            /* the link as its check word says it, compared with the link itself: no register
             * holds both words. Every check comes before the pop and none after it, so that
             * the caller's arguments for its slow path need no register past the pop (this
             * path then keeps all it needs in the scratch registers: no stack frame). */
            uint64_t w, link;
            __builtin_memcpy(&w, b + 8, 8);
            hm_block_t *next = (hm_block_t *)(uintptr_t)(w ^ c);
            __builtin_memcpy(&link, b, 8);
            /* freed (slots are carved freed), link and fill intact */
            uint32_t tag;
            __builtin_memcpy(&tag, b - sizeof tag, sizeof tag);
            if (hm_likely(tag == HM_CHK_FREED(c) && link == (uint64_t)(uintptr_t)next &&
                          _hm_chk_fill_ok(b))) {
                pg->free = next;
                __builtin_prefetch(next, 1); /* as the plain pop (mem/page.h, _hm_page_take) */
                pg->used++;
                th->requests[level & 3]++;
                /* number and thread; the number restarts at 1 after 2^32 (the thread kept) */
                uint64_t who = th->checked_who + 1;
                if (hm_unlikely((uint32_t)who == 0)) who -= 0xFFFFFFFFu;
                /* the header in two stores: seq | tid, size | tag */
                th->checked_who = who;
                uint64_t what = (uint64_t)HM_CHK_LIVE(c, size) << 32 | (uint32_t)size;
                __builtin_memcpy(b - 16, &who, 8); /* little-endian: seq, then tid */
                __builtin_memcpy(b - 8, &what, 8);
                _hm_chk_clear_words(b); /* before the canary: it may overlap them */
                __builtin_memcpy(b + size, &c, sizeof c);
                return b;
            }
        }
    }
#else
    (void)heap, (void)size, (void)level; /* tool builds: every check out of line */
#endif
    return NULL;
}

/* The fast path of a free of block `p` of a checked heap's page (HM_FREED, or what is left:
 * HM_FREE_*); anything unusual (another thread, a full page, a bad block, a DebugAlloc or huge
 * block) goes the generic way, whose slow path checks and reports. */
hm_inline int _hm_checked_page_free_try(hm_segment_t *seg, hm_page_t *pg, void *p) {
#if !HM_TOOLS
    uintptr_t tid = atomic_load_explicit(&seg->tid, memory_order_relaxed);
    if (hm_likely(pg->kind == HM_PAGE_CHECKED && !pg->in_full)) {
        /* the owner compared in memory, one instruction; a serialized heap's HM_TID_ANY
         * tested only when that fails (the empty asm keeps the compiler from testing it
         * first) */
        if (hm_unlikely(!_hm_is_thread(tid))) {
            __asm__("" : "+r"(tid));
            if (tid != HM_TID_ANY) return _hm_page_free_try(seg, pg, p);
        }
        hm_chk_hdr_t *h = _hm_chk_hdr(p);
        uint64_t c = _hm_chk_canary(p), back;
        uint32_t size = h->size;
        if (hm_likely(h->tag == HM_CHK_LIVE(c, size) &&
                      size <= pg->block_size - HM_CHECKED_EXTRA)) {
            __builtin_memcpy(&back, (uint8_t *)p + size, sizeof back);
            if (hm_likely(back == c)) {
                h->tag = HM_CHK_FREED(c);
                /* onto the delayed list: handed out again only when `free` has run dry */
                hm_block_t *head = pg->delayed;
                __builtin_memcpy(p, &head, sizeof head);
                uint64_t w = (uint64_t)(uintptr_t)head ^ c;
                /* a plain store (compilers would pair the two through vector registers: four
                 * instructions for two) */
                __asm__("movq %1, %0" : "=m"(*(uint64_t *)((uint8_t *)p + 8)) : "r"(w));
                _hm_chk_fill(p);
                pg->delayed = (hm_block_t *)p;
                pg->used--;
                /* one `sub` in memory and a branch on its borrow (compilers load, subtract,
                 * store and test: three instructions more on every free) */
                bool due;
                __asm__("subw $1, %[s]" : [s] "+m"(pg->sample), "=@ccc"(due));
                if (hm_unlikely(due)) _hm_checked_sampled_free(seg, pg, p);
                return HM_FREED;
            }
        }
    }
#endif
    return _hm_page_free_try(seg, pg, p);
}

#endif /* HM_DEBUG_CHECKED_H */
