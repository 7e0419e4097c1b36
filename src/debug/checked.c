/* SPDX-License-Identifier: MIT */
/* debug/checked.c: checked mode's full paths (its fast paths are inline in checked.h), its
 * reports, and the checked page kind (mem/page.h). The layout of a checked block: checked.h.
 *
 * Everything unusual leaves the fast paths for these functions, which check everything and
 * report through the arena's error sink; they never allocate. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "debug/debug.h"

/* A checked block of page `pg`: its header's fields are named when its size is plausible (an
 * underrun usually breaks only the tag, the last field). */
static hm_cold void report_checked_as(const hm_arena_t *a, int kind, const char *what,
                                      const hm_page_t *pg, const void *p, const hm_chk_hdr_t *h) {
    char msg[512];
    if (h->size <= pg->block_size - HM_CHECKED_EXTRA)
        _hm_snprintf(msg, sizeof msg,
                     "hostmalloc: %s: block %p of %zu bytes (allocation #%zu, thread %d)\n", what,
                     p, (size_t)h->size, (size_t)h->seq, (int)h->tid);
    else
        _hm_snprintf(msg, sizeof msg, "hostmalloc: %s: block %p (its header was overwritten)\n",
                     what, p);
    _hm_report(&a->cfg, kind, p, msg);
}

static hm_cold void report_checked(const hm_arena_t *a, int kind, const hm_page_t *pg,
                                   const void *p, const hm_chk_hdr_t *h) {
    report_checked_as(a, kind, _hm_debug_kind_name(kind), pg, p, h);
}

/* ---- checked blocks ------------------------------------------------------------------------ */
void *_hm_checked_alloc(hm_heap *heap, size_t size, int level) {
    void *p = _hm_checked_alloc_try(heap, size, level);
    return hm_likely(p != NULL) ? p : _hm_checked_alloc_slow(heap, size, level);
}

void _hm_checked_bad_link(hm_page_t *pg, hm_block_t *b) {
    hm_segment_t *seg = _hm_segment_of(pg);
    hm_chk_hdr_t *h = _hm_chk_hdr(b);
    hm_tool_access(h, sizeof *h);
    report_checked(seg->arena, HM_ERROR_WRITE_AFTER_FREE, pg, b, h);
    hm_tool_access(b, 2 * sizeof *b);
    _hm_chk_set_link(b, NULL);
}

/* User bytes [32, n) of a freed block: the fill, 16 bytes at a time (n: the slot past the
 * header, a multiple of 16; blocks are 16-byte aligned). The check ors the differences and
 * tests once. */
static void fill_rest(uint8_t *u, size_t n) {
    __m128i pat = _mm_set1_epi8((char)(HM_CHECKED_PAT & 0xFF));
    for (size_t i = HM_CHECKED_FILL; i < n; i += 16)
        _mm_store_si128((__m128i *)(u + i), pat);
}

static bool rest_intact(const uint8_t *u, size_t n) {
    __m128i pat = _mm_set1_epi8((char)(HM_CHECKED_PAT & 0xFF)), diff = _mm_setzero_si128();
    for (size_t i = HM_CHECKED_FILL; i < n; i += 16)
        diff = _mm_or_si128(diff, _mm_xor_si128(_mm_load_si128((const __m128i *)(u + i)), pat));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(diff, _mm_setzero_si128())) == 0xFFFF;
}

static void fill_whole(hm_page_t *pg, uint8_t *p) {
    size_t n = pg->block_size - HM_CHECKED_HEADER;
    hm_tool_access(p + HM_CHECKED_FILL, n - HM_CHECKED_FILL);
    fill_rest(p, n);
    hm_tool_hide(p + HM_CHECKED_FILL, n - HM_CHECKED_FILL);
    _hm_chk_hdr(p)->tag = HM_CHK_FREED_FULL(_hm_chk_canary(p));
    pg->sample = (uint16_t)(_hm_chk_sample_every(pg->block_size) - 1);
}

void _hm_checked_sampled_free(hm_segment_t *seg, hm_page_t *pg, uint8_t *p) {
    fill_whole(pg, p);
    /* one sampled free in 32 (one free in 4096 of a page of up to 2 KiB slots, about the plain
     * heartbeat's HM_BEAT), counted with the sub-heap's slow-path calls that pace purging */
    hm_theap_t *th = seg->theap;
    if ((++th->slow_calls & 31) == 0) _hm_theap_maintain(th);
}

/* The fast path's allocation when the block at the head of the size's checked page is one a
 * sampled free filled whole: every check of the fast path and the rest of the fill; NULL when
 * that is not the case or a check fails (the slow path then does everything and reports). */
static void *alloc_full(hm_heap *heap, size_t size, int level) {
#if !HM_TOOLS
    uint64_t id;
    hm_tls_fs_entry_t *e = _hm_tls_entry(heap, &id);
    if (e->id != id || size - 1 >= HM_DIRECT_MAX - HM_CHECKED_EXTRA) return NULL;
    hm_theap_t *th = e->th;
    hm_page_t *pg = th->cdirect[(size + HM_CHECKED_EXTRA + 15) >> 4];
    uint8_t *b = (uint8_t *)pg->free;
    if (b == NULL) return NULL;
    uint64_t c = _hm_chk_canary(b);
    if (_hm_chk_hdr(b)->tag != HM_CHK_FREED_FULL(c)) return NULL;
    hm_block_t *next = ((hm_block_t *)b)->next;
    uint64_t who = th->checked_who + 1;
    if (!_hm_chk_link_intact((hm_block_t *)b, next) || !_hm_chk_fill_ok(b) ||
        !rest_intact(b, pg->block_size - HM_CHECKED_HEADER) || (uint32_t)who == 0)
        return NULL;
    pg->free = next;
    pg->used++;
    th->requests[level & 3]++;
    th->checked_who = who;
    hm_chk_hdr_t *h = _hm_chk_hdr(b);
    h->seq = (uint32_t)who;
    h->tid = (uint32_t)(who >> 32);
    h->size = (uint32_t)size;
    h->tag = HM_CHK_LIVE(c, size);
    _hm_chk_clear_words(b);
    memcpy(b + size, &c, sizeof c);
    return b;
#else
    (void)heap, (void)size, (void)level; /* tool builds: every check in the slow path */
    return NULL;
#endif
}

bool _hm_checked_on_alloc(hm_theap_t *th, hm_page_t *pg, void *p, size_t size, bool no_abort) {
    hm_chk_hdr_t *h = _hm_chk_hdr(p);
    uint64_t c = _hm_chk_canary(p);
    hm_tool_access(h, sizeof *h);
    uint32_t tag = h->tag;
    /* the slot's previous block: its link (now pg->free) against its check word, its state
     * and its fill */
    hm_tool_access(p, HM_CHECKED_FILL);
    bool usable = _hm_chk_is_freed(tag, c); /* a freed block (slots are carved freed) */
    bool bad = !usable || !_hm_chk_link_intact(p, pg->free) || !_hm_chk_fill_ok(p);
    if (!bad && tag == HM_CHK_FREED_FULL(c)) {
        /* a sampled free filled the whole slot: all of it must be intact */
        size_t n = pg->block_size - HM_CHECKED_HEADER;
        hm_tool_access((uint8_t *)p + HM_CHECKED_FILL, n - HM_CHECKED_FILL);
        bad = !rest_intact(p, n);
    }
    if (bad) pg->free = NULL; /* never follow it: the blocks past it are lost */
    if (bad) {
        report_checked(th->heap->arena, HM_ERROR_WRITE_AFTER_FREE, pg, p, h);
        if (!no_abort) abort(); /* the malloc-style doors stop here; COM goes on */
    }
    if (!usable) {
        /* live or quarantined (a damaged link led here), or no state at all: not ours to
         * hand out. Its owner keeps it; the page no longer counts it as handed out twice. */
        pg->used--;
        return false;
    }
    uint64_t who = th->checked_who + 1;
    if ((uint32_t)who == 0) who = who - ((uint64_t)1 << 32) + 1; /* wrapped: keep the thread */
    th->checked_who = who;
    h->seq = (uint32_t)who;
    h->tid = (uint32_t)(who >> 32);
    h->size = (uint32_t)size;
    h->tag = HM_CHK_LIVE(c, size);
    hm_tool_access(p, 16);
    _hm_chk_clear_words(p);
    hm_tool_access((uint8_t *)p + size, sizeof c);
    memcpy((uint8_t *)p + size, &c, sizeof c); /* byte-precise: right after the last byte */
    return true;
}

/* ---- blocks of 0 bytes ------------------------------------------------------------------------
 * malloc(0) in checked mode: an address in the heap's sealed segment (mem/segment.h), memory
 * that faults when it is read or written, whatever the byte. A bit per slot says handed out;
 * the search for a free slot goes on from the last one handed out (a slot comes back only
 * after all the others were tried: a double free is known until then). When the segment is
 * full or cannot be had, a 0-byte block on a checked page serves (its canary catches a write). */
#define ZERO_BLOCK 16
#define ZERO_SLOTS 32768 /* 512 KiB of addresses, a 4 KiB bitmap */
#define ZERO_WORDS (ZERO_SLOTS / 64)
typedef struct {
    _Atomic(size_t) cursor;             /* where the next search starts */
    _Atomic(uint64_t) live[ZERO_WORDS]; /* a bit per slot handed out */
} zero_meta_t;

static zero_meta_t *zero_meta(const hm_segment_t *seg) {
    return (zero_meta_t *)_hm_segment_note(seg);
}

static void *zero_alloc(hm_theap_t *th, int level) {
    hm_segment_t *seg =
        _hm_heap_sealed(th, sizeof(zero_meta_t), ZERO_BLOCK, ZERO_SLOTS, HM_PAGE_ZERO, level);
    if (seg == NULL) return NULL;
    zero_meta_t *z = zero_meta(seg);
    size_t start = atomic_load_explicit(&z->cursor, memory_order_relaxed) % ZERO_SLOTS;
    /* word by word from the cursor's, the first one twice (its bits before the cursor last) */
    for (size_t k = 0; k <= ZERO_WORDS; k++) {
        size_t w = (start / 64 + k) % ZERO_WORDS;
        uint64_t skip = k == 0 ? ((uint64_t)1 << (start % 64)) - 1 : 0;
        uint64_t bits = atomic_load_explicit(&z->live[w], memory_order_relaxed);
        while ((~bits & ~skip) != 0) {
            unsigned b = (unsigned)__builtin_ctzll(~bits & ~skip);
            if (atomic_compare_exchange_weak_explicit(&z->live[w], &bits, bits | (uint64_t)1 << b,
                                                      memory_order_acq_rel, memory_order_relaxed)) {
                size_t slot = w * 64 + b;
                atomic_store_explicit(&z->cursor, (slot + 1) % ZERO_SLOTS, memory_order_relaxed);
                return seg->pages[0].start + slot * ZERO_BLOCK;
            }
        }
    }
    return NULL; /* every slot handed out */
}

static hm_cold void report_zero(const hm_segment_t *seg, int kind, const char *what,
                                const void *p) {
    char msg[256];
    _hm_snprintf(msg, sizeof msg, "hostmalloc: %s: block %p of 0 bytes\n", what, p);
    _hm_report(&seg->arena->cfg, kind, p, msg);
}

/* the word and bit of block p's slot */
static _Atomic(uint64_t) *zero_word(const hm_segment_t *seg, const void *p, uint64_t *bit) {
    size_t slot = (size_t)((const uint8_t *)p - seg->pages[0].start) / ZERO_BLOCK;
    *bit = (uint64_t)1 << (slot % 64);
    return &zero_meta(seg)->live[slot / 64];
}

static hm_result zero_free(hm_page_t *pg, hm_block_t *b, bool link) {
    (void)link;
    const hm_segment_t *seg = _hm_segment_of(pg);
    uint64_t bit;
    _Atomic(uint64_t) *w = zero_word(seg, b, &bit);
    if (atomic_fetch_and_explicit(w, ~bit, memory_order_acq_rel) & bit) return HM_OK;
    /* not handed out: freed already (or never handed out), and nothing changed */
    report_zero(seg, HM_ERROR_DOUBLE_FREE, _hm_debug_kind_name(HM_ERROR_DOUBLE_FREE), b);
    return HM_ERR_NOT_BLOCK;
}

static bool zero_freed(const hm_segment_t *seg, const hm_page_t *pg, const void *p,
                       const char *call) {
    (void)pg;
    uint64_t bit;
    if (atomic_load_explicit(zero_word(seg, p, &bit), memory_order_acquire) & bit) return false;
    if (call != NULL) {
        char what[96];
        report_zero(seg, HM_ERROR_BAD_POINTER, _hm_debug_freed_what(what, sizeof what, call), p);
    }
    return true;
}

static size_t zero_size(const hm_page_t *pg, const void *p) {
    (void)pg, (void)p;
    return 0;
}

static const hm_page_kind_t zero_kind = {
    .sealed = true,
    .free = zero_free,
    .size = zero_size,
    .freed = zero_freed,
};

size_t _hm_checked_zero_walk(hm_heap *heap, bool (*fn)(void *p, void *arg), void *arg) {
    hm_segment_t *seg = atomic_load_explicit(&heap->sealed, memory_order_acquire);
    if (seg == NULL) return 0;
    zero_meta_t *z = zero_meta(seg);
    size_t n = 0;
    for (size_t w = 0; w < ZERO_WORDS; w++) {
        uint64_t bits = atomic_load_explicit(&z->live[w], memory_order_acquire);
        for (; bits != 0; bits &= bits - 1) {
            n++;
            void *p = seg->pages[0].start + (w * 64 + (size_t)__builtin_ctzll(bits)) * ZERO_BLOCK;
            if (fn != NULL && !fn(p, arg)) return n;
        }
    }
    return n;
}

/* ---- checked blocks: the slow path -------------------------------------------------------------
 */
void *_hm_checked_alloc_slow(hm_heap *heap, size_t size, int level) {
    bool no_abort = (level & HM_LEVEL_NO_ABORT) != 0;
    void *full = alloc_full(heap, size, level & 3);
    if (full != NULL) return full;
    _hm_debug_init();
    if (size > HM_CHECKED_MAX) return _hm_debug_alloc(heap, size, level, NULL, 0); /* huge */
    hm_theap_t *th = _hm_debug_theap(heap, &level);
    if (th == NULL) return NULL;
    if (size == 0) {
        void *z = zero_alloc(th, level);
        if (z != NULL) return z;
    }
    size_t slot =
        size + HM_CHECKED_EXTRA < HM_CHECKED_MIN ? HM_CHECKED_MIN : size + HM_CHECKED_EXTRA;
    /* a block that may not be handed out cuts its list: the next try finds another */
    for (int tries = 0; tries < 64; tries++) {
        void *p = _hm_theap_alloc_block(th, HM_QUEUE_CHECKED + _hm_bin_of(slot), level);
        if (p == NULL) break;
        hm_segment_t *seg = _hm_segment_of(p);
        if (_hm_checked_on_alloc(th, _hm_page_of(seg, p), p, size, no_abort)) {
            hm_tool_alloc(p, size);
            return p;
        }
    }
    th->failures[level]++;
    errno = ENOMEM;
    return NULL;
}

/* A bad free of checked block `b`: reported, and the block quarantined (never reused). */
static hm_cold hm_result checked_free_bad(hm_page_t *pg, hm_block_t *b, int err) {
    hm_chk_hdr_t *h = _hm_chk_hdr(b);
    uint64_t c = _hm_chk_canary(b);
    report_checked(_hm_segment_of(pg)->arena, err, pg, b, h);
    if (!_hm_chk_is_freed(h->tag, c)) h->tag = HM_CHK_QUAR(c);
    return HM_ERR_NOT_BLOCK;
}

static hm_result checked_free(hm_page_t *pg, hm_block_t *b, bool link) {
    hm_chk_hdr_t *h = _hm_chk_hdr(b);
    uint64_t c = _hm_chk_canary(b);
    hm_tool_access(h, sizeof *h);
    uint32_t tag = h->tag;
    if (hm_unlikely(_hm_chk_is_freed(tag, c) || tag == HM_CHK_QUAR(c)))
        return checked_free_bad(pg, b, HM_ERROR_DOUBLE_FREE);
    if (hm_unlikely(tag != HM_CHK_LIVE(c, h->size) || h->size > pg->block_size - HM_CHECKED_EXTRA))
        return checked_free_bad(pg, b, HM_ERROR_UNDERRUN);
    if (hm_unlikely(!_hm_debug_back_intact(b, h->size, c)))
        return checked_free_bad(pg, b, HM_ERROR_OVERRUN);
    h->tag = HM_CHK_FREED(c);
    hm_tool_access(b, HM_CHECKED_FILL);
    _hm_chk_fill((uint8_t *)b);
    hm_tool_free(b);
    if (link) {
        hm_tool_access(b, 2 * sizeof(hm_block_t));
        _hm_chk_set_link(b, pg->delayed); /* the kind delays reuse */
        hm_tool_hide(b, 2 * sizeof(hm_block_t));
        /* the owner's free (a free by another thread may not touch the page's count); a
         * sampled one beats too (the page is not retired by it: `b` still counts as live) */
        if (hm_unlikely(pg->sample == 0))
            _hm_checked_sampled_free(_hm_segment_of(pg), pg, (uint8_t *)b);
        else
            pg->sample--;
    }
    return HM_OK;
}

static void checked_carve(hm_page_t *pg, uint8_t *p, size_t n, hm_block_t *last_next) {
    size_t stride = pg->block_size;
    for (size_t i = 0; i < n; i++, p += stride) {
        hm_tool_access(p - HM_CHECKED_HEADER, HM_CHECKED_HEADER + HM_CHECKED_FILL);
        _hm_chk_make_freed(p, i + 1 < n ? (hm_block_t *)(p + stride) : last_next);
        hm_tool_hide(p - HM_CHECKED_HEADER, HM_CHECKED_HEADER + HM_CHECKED_FILL);
    }
}

static size_t checked_size(const hm_page_t *pg, const void *p) {
    /* never past the slot, even when an underrun wrote the size */
    size_t n = _hm_chk_hdr(p)->size, room = pg->block_size - HM_CHECKED_EXTRA;
    return n < room ? n : room;
}

static bool checked_freed(const hm_segment_t *seg, const hm_page_t *pg, const void *p,
                          const char *call) {
    hm_chk_hdr_t *h = _hm_chk_hdr(p);
    uint64_t c = _hm_chk_canary(p);
    hm_tool_access(h, sizeof *h);
    if (!_hm_chk_is_freed(h->tag, c) && h->tag != HM_CHK_QUAR(c)) return false;
    if (call != NULL) {
        char what[96];
        report_checked_as(seg->arena, HM_ERROR_BAD_POINTER,
                          _hm_debug_freed_what(what, sizeof what, call), pg, p, h);
    }
    return true;
}

/* ---- the checked page kind (page.h) ---------------------------------------------------------- */
static const hm_page_kind_t checked_kind = {
    .header = HM_CHECKED_HEADER,
    .min_slot = HM_CHECKED_MIN,
    .delay_reuse = true, /* a freed block is not the next one handed out */
    .carve = checked_carve,
    .free = checked_free,
    .set_link = _hm_chk_set_link,
    .link_intact = _hm_chk_link_intact,
    .bad_link = _hm_checked_bad_link,
    .size = checked_size,
    .freed = checked_freed,
};

void _hm_checked_register(void) {
    _hm_page_kind_set(HM_PAGE_CHECKED, &checked_kind);
    _hm_page_kind_set(HM_PAGE_ZERO, &zero_kind);
}

void *_hm_alloc_slow_any(hm_heap *heap, size_t size, int level) {
    /* a checked heap feeds no plain fast path: every allocation of it lands here */
    if (hm_unlikely(heap->checked)) return _hm_checked_alloc(heap, size, level);
    return _hm_alloc_slow(heap, size, level);
}
