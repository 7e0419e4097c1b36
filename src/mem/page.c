/* SPDX-License-Identifier: MIT */
/* mem/page.c: size classes, pages and their free lists, page kinds, the page-level allocation
 * path.
 *
 * Size classes ("bins"): sizes are counted in 16-byte units w. Bins 1..16 are exact (16 to
 * 256 bytes); up to 1 KiB (the direct sizes) each doubling is split into 8 bins, so a block is
 * at most 1/8 larger than the request (internal waste under 12.5 %), above it into 4 (under
 * 25 %; every power of two stays a class). Bins 1..44 (up to 8 KiB) use 64 KiB pages, bins
 * 45..56 (up to 64 KiB) medium pages (128 KiB, or 256 KiB in an arena with a limit of 1 GiB or
 * more: types.h), bins 57..64 (up to 256 KiB) large pages of 1 MiB in an arena with a limit of
 * 1 GiB or more; larger blocks are huge (segment.c), and so are those above 64 KiB in the
 * other arenas.
 *
 * A page's free lists: the owner allocates from and frees into `free`; other
 * threads push onto `thread_free` with one compare-and-swap. When `free` runs dry the owner
 * moves `thread_free` into it (collect). mimalloc's third list, `local_free`, is left out:
 * it exists to force the owner through the generic path regularly, but it also sends every
 * alloc after a free on an otherwise empty page there (docs/DESIGN-NOTES.md, "Free lists: two,
 * not three"). A page that is completely handed
 * out leaves its queue ("full") so the generic path never scans it; the first remote free
 * into a full page (tag FULL -> NOTIFIED on thread_free) pushes the page onto the sub-heap's
 * `pending` stack, and the owner puts such pages back into their queues. A NOTIFIED page is
 * never retired until the owner has seen it on the stack, so the remote thread's push always
 * refers to a page of this sub-heap.
 *
 * An empty page stays in place while it is the only page of its size class (alloc/free churn
 * must not thrash); otherwise it is retired to its segment, kept committed for the purge delay,
 * then decommitted. A segment whose pages are all retired goes back to the arena's cache.
 *
 * Page kinds. A page serves plain blocks, or blocks with a header in front (DebugAlloc blocks,
 * checked-mode blocks) whose format the debug layer owns: it registers a kind (page.h) with the
 * header size, how to carve slots, how to check a free, and the link format of its free lists.
 * Plain pages never look at it; the other kinds are reached only from paths that are already
 * slow (their pages carry HM_USED_SLOW, so every free of theirs leaves the fast path). */
#include <stdlib.h>
#include <string.h>

#include "mem/page.h"

/* The page with no free block: every direct slot and empty queue starts at it, so the fast
 * path needs no NULL test. Never written. */
hm_page_t _hm_page_empty;

const hm_page_kind_t *_hm_page_kinds[HM_PAGE_KINDS];

void _hm_page_kind_set(unsigned kind, const hm_page_kind_t *k) {
    hm_assert(kind != HM_PAGE_PLAIN && kind < HM_PAGE_KINDS);
    __atomic_store_n(&_hm_page_kinds[kind], k, __ATOMIC_RELEASE);
}

/* Write the free-list link of `b`: in the kind's format, else plain with the free mark. */
hm_inline void set_link(const hm_page_t *pg, hm_block_t *b, hm_block_t *next) {
    if (hm_likely(pg->kind == HM_PAGE_PLAIN)) {
        b->next = next;
        _hm_mark_set(b, pg); /* free, wherever it waits */
    } else if (_hm_page_kinds[pg->kind]->set_link != NULL) {
        _hm_page_kinds[pg->kind]->set_link(b, next);
    } else {
        b->next = next;
    }
}

/* ---- size classes ------------------------------------------------------------------------ */
size_t _hm_bin_size(size_t bin) {
    if (bin <= 16) return bin * 16;
    if (bin <= 32) {
        size_t k = bin + 15;
        size_t b = k >> 3, r = k & 7;
        return ((8 + r + 1) << (b - 3)) * 16;
    }
    size_t k = bin - 9; /* b << 2 | r, as _hm_bin_of makes it */
    size_t b = k >> 2, r = k & 3;
    return ((4 + r + 1) << (b - 2)) * 16;
}

/* The direct slots' bins (slot w serves w*16 bytes), and each bin's first slot: the slots of a
 * bin up to HM_DIRECT_MAX are [direct_first[bin], the next slot of another bin) */
static uint8_t direct_bin[HM_DIRECT_COUNT];
static uint8_t direct_first[HM_DIRECT_COUNT]; /* bins are below HM_DIRECT_COUNT */
static pthread_once_t direct_once = PTHREAD_ONCE_INIT;

static void direct_init(void) {
    for (size_t w = HM_DIRECT_COUNT; w-- > 0;) {
        direct_bin[w] = (uint8_t)_hm_bin_of(w * 16);
        direct_first[direct_bin[w]] = (uint8_t)w; /* the lowest slot, written last */
    }
}

void _hm_theap_init_queues(hm_theap_t *th) {
    pthread_once(&direct_once, direct_init);
    for (size_t i = 0; i < HM_DIRECT_COUNT; i++)
        th->direct[i] = th->cdirect[i] = &_hm_page_empty;
    for (size_t i = 0; i < HM_QUEUE_COUNT; i++)
        th->queues[i].first = th->queues[i].last = NULL;
}

void _hm_direct_update(hm_theap_t *th, size_t qbin) {
    /* plain queues feed `direct`, checked ones `cdirect`; debug queues no fast path. A checked
     * heap's plain pages (aligned blocks) never feed the fast path, where every allocation
     * must be a checked one. */
    hm_page_t **table;
    size_t bin;
    if (qbin >= HM_QUEUE_CHECKED) {
        table = th->cdirect;
        bin = qbin - HM_QUEUE_CHECKED;
    } else if (qbin < HM_QUEUE_DEBUG && !th->heap->checked) {
        table = th->direct;
        bin = qbin;
    } else {
        return;
    }
    if (bin > direct_bin[HM_DIRECT_COUNT - 1]) return;
    /* checked slots have a least size: that bin serves every smaller slot */
    size_t min_bin =
        table == th->cdirect ? _hm_bin_of(_hm_page_kinds[HM_PAGE_CHECKED]->min_slot) : 0;
    if (bin < min_bin) return;
    hm_page_t *pg = th->queues[qbin].first;
    if (pg == NULL) pg = &_hm_page_empty;
    /* bins grow with the slot index: the run of slots of this bin */
    size_t w = direct_first[bin];
    for (; w < HM_DIRECT_COUNT && direct_bin[w] == bin; w++) /* bin 1 from slot 0 (0 bytes) */
        table[w] = pg;
    if (bin == min_bin)
        for (w = 0; w < _hm_bin_size(min_bin) / 16; w++)
            table[w] = pg;
}

/* ---- queues ------------------------------------------------------------------------------ */
static void queue_remove(hm_theap_t *th, hm_page_t *pg) {
    hm_page_queue_t *q = &th->queues[pg->bin];
    bool was_first = q->first == pg;
    if (pg->prev)
        pg->prev->next = pg->next;
    else
        q->first = pg->next;
    if (pg->next)
        pg->next->prev = pg->prev;
    else
        q->last = pg->prev;
    pg->next = pg->prev = NULL;
    if (was_first) {
        pg->used &= ~HM_USED_HEAD; /* (an emptied page left so is found by the next pass) */
        if (q->first != NULL) q->first->used |= HM_USED_HEAD;
        _hm_direct_update(th, pg->bin);
    }
}

static void queue_push_front(hm_theap_t *th, hm_page_t *pg) {
    hm_page_queue_t *q = &th->queues[pg->bin];
    pg->prev = NULL;
    pg->next = q->first;
    if (q->first) {
        q->first->prev = pg;
        q->first->used &= ~HM_USED_HEAD;
    } else {
        q->last = pg;
    }
    q->first = pg;
    pg->used |= HM_USED_HEAD;
    _hm_direct_update(th, pg->bin);
}

static void queue_push_back(hm_theap_t *th, hm_page_t *pg) {
    hm_page_queue_t *q = &th->queues[pg->bin];
    if (q->first == NULL) {
        queue_push_front(th, pg);
        return;
    }
    pg->next = NULL;
    pg->prev = q->last;
    q->last->next = pg;
    q->last = pg;
}

static void queue_move_front(hm_theap_t *th, hm_page_t *pg) {
    if (th->queues[pg->bin].first == pg) return;
    queue_remove(th, pg);
    queue_push_front(th, pg);
}

/* ---- free lists -------------------------------------------------------------------------- */
/* Move the delayed list, but its head, to the (empty) free list; the head's link is checked
 * before it is followed, and rewritten to end the list. */
static void delayed_take(hm_page_t *pg) {
    const hm_page_kind_t *k = _hm_page_kinds[pg->kind];
    hm_block_t *last = pg->delayed;
    hm_tool_access(last, 2 * sizeof(hm_block_t));
    hm_block_t *rest = last->next;
    if (rest != NULL && k->link_intact != NULL && !k->link_intact(last, rest)) {
        k->bad_link(pg, last); /* reported; the list cut after `last` */
        rest = NULL;
    }
    if (rest != NULL) {
        if (k->set_link != NULL)
            k->set_link(last, NULL);
        else
            last->next = NULL;
        pg->free = rest;
    }
    hm_tool_hide(last, 2 * sizeof(hm_block_t));
}

/* The link of freed plain block `b` of `pg`, read where a memory tool allows it; NULL also when
 * `b` is no block of the page (a link written after free is never followed out of it). A
 * damaged link may point anywhere, so the bound on the carved area comes first: the one-product
 * test of the free path (_hm_block_check) holds only for pointers inside the page's segment. */
static hm_block_t *link_of(const hm_page_t *pg, const hm_block_t *b) {
    size_t off = (size_t)((const uint8_t *)b - pg->start);
    if (off >= _hm_page_area(pg) || off * pg->div_magic >= pg->div_magic) return NULL;
    hm_tool_access(b, sizeof(hm_block_t));
    hm_block_t *next = b->next;
    hm_tool_hide(b, sizeof(hm_block_t));
    return next;
}

/* The block at which the list of `pg` from `head` (at most `bound` blocks before it repeats)
 * first comes back to a block it passed: where a block freed twice closed the cycle. Two
 * pointers, one a link at a time and one two (Floyd's cycle finding), every block checked to be
 * one of the page; `head` when no cycle is found so. */
static const hm_block_t *cycle_entry(const hm_page_t *pg, hm_block_t *head, uint32_t bound) {
    hm_block_t *slow = head, *fast = head;
    for (uint32_t i = 0; i <= 2 * bound + 2; i++) {
        if (fast == NULL || (fast = link_of(pg, fast)) == NULL) return head;
        if ((fast = link_of(pg, fast)) == NULL) return head;
        slow = link_of(pg, slow);
        if (slow == fast) {
            /* from the head and from the meeting point, a link at a time: they meet at the
             * entry */
            slow = head;
            for (uint32_t j = 0; slow != fast && j <= 2 * bound + 2; j++) {
                slow = link_of(pg, slow);
                fast = link_of(pg, fast);
                if (slow == NULL || fast == NULL) return head;
            }
            return slow == fast ? slow : head;
        }
    }
    return head;
}

void _hm_page_collect(hm_page_t *pg) {
    const hm_page_kind_t *k = pg->kind != HM_PAGE_PLAIN ? _hm_page_kinds[pg->kind] : NULL;
    uintptr_t old = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
    /* The pushes counted themselves (types.h, HM_TF_ONE): a page with no free block takes the
     * list as it is, when its blocks are plain or their links are checked as they are handed
     * out (checked mode's). Walking it to count would read every block, each last written by
     * the thread that freed it: a cache miss a block, one after another, which took half the
     * time of two threads freeing each other's blocks (docs/DESIGN-NOTES.md, "Other threads'
     * frees, counted as they are pushed"); the allocations that take the blocks read them one
     * at a time instead, beside the program's own work. A count above the page's live blocks
     * cannot be right and takes the walk. (Two threads freeing one block at the same moment
     * both pass the free mark's test and leave a cycle on the list, which no count shows:
     * default mode does not catch that race, docs/DEBUG.md; checked mode's pop finds the
     * block live the second time.) */
    bool by_count =
        (old & HM_TF_LIST) != 0 && pg->free == NULL && (k == NULL || k->link_intact != NULL);
    /* a kind that delays reuse: the owner's frees become allocatable once the list is empty,
     * all but the last one freed, which stays back (the next allocation does not get the block
     * freed last, unless it is the only free block of a fully carved page: _hm_page_alloc);
     * other threads' frees taken by their count come first, and these wait longer */
    if (!by_count && pg->free == NULL && pg->delayed != NULL) delayed_take(pg);
    if ((old & HM_TF_LIST) == 0) return;
    while (!atomic_compare_exchange_weak_explicit(&pg->thread_free, &old, old & HM_TF_MASK,
                                                  memory_order_acquire, memory_order_relaxed)) {
    }
    hm_block_t *head = (hm_block_t *)(old & HM_TF_LIST);
    if (head == NULL) return;
    uint32_t live = _hm_page_live(pg);
    uint32_t pushed = (uint32_t)(old >> HM_TF_COUNT_SHIFT);
    if (by_count && pushed != 0 && pushed <= live) {
        pg->free = head; /* its last block's link is NULL, in the kind's format */
        pg->used -= pushed;
        return;
    }
    uint32_t n = 1;
    hm_block_t *tail = head;
    hm_tool_access(tail, sizeof(hm_block_t));
    /* kinds whose links carry a check have every link checked before it is followed */
    bool checked = k != NULL && k->link_intact != NULL;
    while (tail->next != NULL) {
        hm_block_t *next = tail->next;
        if (hm_unlikely(checked)) {
            hm_tool_access(tail, 2 * sizeof(hm_block_t));
            if (n >= live || !k->link_intact(tail, next)) {
                /* a freed block was written at its link or its check (or the list is longer
                 * than the page's count: a cycle): keep what came before */
                k->bad_link(pg, tail);
                break;
            }
        } else if (hm_unlikely(n >= live)) {
            /* longer than the page's count of live blocks: a cycle (a block freed by two
             * threads at once, or freed memory written at a link). Reported, naming the block
             * where the cycle closes (the one on the list twice), and the list is left out:
             * its blocks are never handed out again (none twice), the count stays, and the
             * walk ends */
            hm_tool_hide(tail, sizeof(hm_block_t));
            _hm_report_double_free(_hm_segment_of(pg), cycle_entry(pg, head, live), pg->block_size);
            return;
        }
        hm_tool_hide(tail, sizeof(hm_block_t));
        tail = next;
        hm_tool_access(tail, sizeof(hm_block_t));
        n++;
    }

    if (k != NULL && k->set_link != NULL) {
        hm_tool_access(tail, 2 * sizeof(hm_block_t));
        k->set_link(tail, pg->free);
        hm_tool_hide(tail, 2 * sizeof(hm_block_t));
    } else {
        tail->next = pg->free; /* (a plain block from thread_free carries its mark already) */
        hm_tool_hide(tail, sizeof(hm_block_t));
    }
    pg->free = head;
    hm_assert(_hm_page_live(pg) >= n);
    pg->used -= n;
}

/* Carve more blocks of the page into its free list: 4 KiB at a time (at least 4 blocks), so
 * that a page touches its memory only as it is used (16 KiB at a time held 5 % more memory
 * at peak in the public programs, for no time: docs/DESIGN-NOTES.md, "Returning memory"). */
#define HM_CARVE 4096
static void page_extend(hm_page_t *pg) {
    uint32_t left = pg->reserved - pg->capacity;
    if (left == 0) return;
    uint32_t n = (uint32_t)(HM_CARVE / pg->block_size);
    if (n < 4) n = 4;
    if (n > left) n = left;
    uint8_t *p = pg->start + (size_t)pg->capacity * pg->block_size;
    hm_block_t *first = (hm_block_t *)p;
    if (pg->kind != HM_PAGE_PLAIN) {
        _hm_page_kinds[pg->kind]->carve(pg, p, n, pg->free); /* in the kind's format */
    } else {
        /* plain slots are carved free, so with the free mark: freeing one that was never
         * handed out is refused like any second free */
        for (uint32_t i = 0; i + 1 < n; i++) {
            ((hm_block_t *)p)->next = (hm_block_t *)(p + pg->block_size);
            _hm_mark_set(p, pg);
            p += pg->block_size;
        }
        ((hm_block_t *)p)->next = pg->free;
        _hm_mark_set(p, pg);
    }
    pg->free = first;
    pg->capacity += n;
    _hm_page_set_area(pg, (size_t)pg->capacity * pg->block_size); /* frees valid up to here */
}

/* ---- full pages and the pending stack ---------------------------------------------------- */
/* Take `pg` out of its queue because it has no free block. Returns false (and leaves it in
 * place) when remote frees arrived meanwhile. */
static bool page_to_full(hm_theap_t *th, hm_page_t *pg) {
    uintptr_t old = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
    for (;;) {
        if ((old & HM_TF_LIST) != 0) return false;
        if ((old & HM_TF_MASK) != HM_TF_NORMAL) break; /* NOTIFIED: already pending */
        if (atomic_compare_exchange_weak_explicit(&pg->thread_free, &old, old | HM_TF_FULL,
                                                  memory_order_release, memory_order_relaxed))
            break;
    }
    queue_remove(th, pg);
    pg->in_full = 1;
    pg->used |= HM_USED_SLOW;
    return true;
}

/* Put a full page back at the end of its queue (owner): allocation goes on in the current
 * page, and the returning page fills up with frees before it is used again. */
static void page_unfull(hm_theap_t *th, hm_page_t *pg) {
    pg->in_full = 0;
    if (pg->kind == HM_PAGE_PLAIN) pg->used &= ~HM_USED_SLOW;
    uintptr_t old = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
    while ((old & HM_TF_MASK) == HM_TF_FULL &&
           !atomic_compare_exchange_weak_explicit(&pg->thread_free, &old,
                                                  (old & ~HM_TF_MASK) | HM_TF_NORMAL,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    queue_push_back(th, pg);
}

void _hm_theap_process_pending(hm_theap_t *th) {
    hm_page_t *pg = atomic_exchange_explicit(&th->pending, NULL, memory_order_acquire);
    while (pg != NULL) {
        hm_page_t *next = atomic_load_explicit(&pg->pending_next, memory_order_relaxed);
        uintptr_t old = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
        while (!atomic_compare_exchange_weak_explicit(&pg->thread_free, &old,
                                                      (old & ~HM_TF_MASK) | HM_TF_NORMAL,
                                                      memory_order_acquire, memory_order_relaxed)) {
        }
        if (_hm_page_in_full(pg)) page_unfull(th, pg);
        pg = next;
    }
}

/* The first remote free into a full page tells the owner: the page goes on its pending stack. */
static hm_noinline hm_result remote_notify(hm_page_t *pg, hm_segment_t *seg) {
    hm_theap_t *th = seg->theap;
    hm_page_t *head = atomic_load_explicit(&th->pending, memory_order_relaxed);
    do {
        atomic_store_explicit(&pg->pending_next, head, memory_order_relaxed);
    } while (!atomic_compare_exchange_weak_explicit(&th->pending, &head, pg, memory_order_release,
                                                    memory_order_relaxed));
    return HM_OK;
}

/* Push block `b` (checked) onto `pg`'s thread_free; `plain`: a constant, true when the caller
 * knows the page plain (its link written inline, and no call can make the path need a frame). */
hm_inline hm_result remote_push(hm_page_t *pg, hm_segment_t *seg, hm_block_t *b, bool plain) {
    hm_tool_access(b, sizeof(hm_block_t));
    uintptr_t old = atomic_load_explicit(&pg->thread_free, memory_order_relaxed);
    uintptr_t tag;
    do {
        tag = old & HM_TF_MASK;
        hm_tool_access(b, 2 * sizeof(hm_block_t));
        if (plain) {
            b->next = (hm_block_t *)(old & HM_TF_LIST);
            _hm_mark_set(b, pg);
        } else {
            set_link(pg, b, (hm_block_t *)(old & HM_TF_LIST));
        }
        hm_tool_hide(b, 2 * sizeof(hm_block_t));
    } while (!atomic_compare_exchange_weak_explicit(
        &pg->thread_free, &old,
        (uintptr_t)b | ((old & ~(HM_TF_LIST | HM_TF_MASK)) + HM_TF_ONE) |
            (tag == HM_TF_FULL ? HM_TF_NOTIFIED : tag),
        memory_order_release, memory_order_relaxed));
    if (hm_unlikely(tag == HM_TF_FULL)) return remote_notify(pg, seg);
    return HM_OK;
}

/* A remote free of a block with a header: its kind checks it first. */
static hm_noinline hm_result remote_free_kind(hm_page_t *pg, hm_segment_t *seg, hm_block_t *b) {
    hm_result r = _hm_page_kinds[pg->kind]->free(pg, b, false);
    if (r != HM_OK) return r;
    return remote_push(pg, seg, b, false);
}

/* A remote free of a marked plain block: reported, nothing changed. */
static hm_cold hm_result remote_double_free(hm_page_t *pg, hm_segment_t *seg, hm_block_t *b) {
    _hm_report_double_free(seg, b, pg->block_size);
    return HM_ERR_NOT_BLOCK;
}

/* A remote free; `or_abort` (a constant): misuse aborts (after its report) instead of being
 * answered. The common case, a plain block, is a leaf function: the rest is out of line. */
hm_inline hm_result remote_free(hm_page_t *pg, hm_segment_t *seg, hm_block_t *b, bool or_abort) {
    hm_result r;
    if (hm_unlikely(pg->kind != HM_PAGE_PLAIN)) {
        r = remote_free_kind(pg, seg, b);
    } else if (hm_unlikely(_hm_mark_peek(b) == pg)) {
        /* marked: freed already (a block handed out is unmarked, and only a program that read
         * the mark out of freed memory could write it back). This thread cannot walk the
         * owner's lists, as the owner's free does to tell the two apart, so the mark decides:
         * a double free, reported, nothing changed */
        r = remote_double_free(pg, seg, b);
    } else {
        hm_tool_free(b);
        return remote_push(pg, seg, b, true);
    }
    if (or_abort && r != HM_OK) abort();
    return r;
}

hm_result _hm_page_free_remote(hm_page_t *pg, hm_segment_t *seg, hm_block_t *b) {
    return remote_free(pg, seg, b, false);
}

void _hm_page_free_remote_or_abort(hm_page_t *pg, hm_segment_t *seg, hm_block_t *b) {
    (void)remote_free(pg, seg, b, true);
}

/* ---- page life cycle --------------------------------------------------------------------- */
static size_t page_size_of(const hm_segment_t *seg, size_t idx) {
    size_t ps = (size_t)1 << seg->page_shift;
    if (idx == 0) ps -= _hm_segment_header_size(seg->page_count);
    return ps;
}

/* Retire an empty page to its segment; the segment goes to the cache when all are empty. */
static void page_retire(hm_theap_t *th, hm_page_t *pg, hm_segment_t *seg) {
    if (!_hm_page_in_full(pg)) queue_remove(th, pg);
    pg->in_full = 0;
    pg->kind = HM_PAGE_PLAIN;
    pg->free = pg->delayed = NULL;
    pg->block_size = 0;
    _hm_page_set_area(pg, 0);
    pg->used = 0;
    pg->capacity = pg->reserved = 0;
    atomic_store_explicit(&pg->thread_free, 0, memory_order_relaxed);
    seg->used_pages--;
    size_t idx = (size_t)(pg - seg->pages);
    /* from the geometry: a debug page had its start moved past the first header */
    pg->start = (uint8_t *)seg + (idx << seg->page_shift) +
                (idx == 0 ? _hm_segment_header_size(seg->page_count) : 0);
    if (idx != 0 && pg->committed) {
        /* under pressure (Low) the memory goes back at once, not after the purge delay */
        if (_hm_arena_purge_now(seg->arena)) {
            _hm_segment_decommit(seg, pg->start, page_size_of(seg, idx));
            pg->committed = 0;
        } else {
            pg->expire = 0; /* stamped by the next purge pass: no clock read per retire */
            th->free_committed_pages++;
            seg->free_committed++;
        }
    }
    if (seg->used_pages == 0) {
        _hm_segment_free(seg);
        return;
    }
    /* a segment with a free page goes to the front of its list */
    if (th->segs[seg->kind] != seg) {
        _hm_seglist_remove(th, seg);
        _hm_seglist_push(th, seg);
    }
}

static bool page_retirable(hm_theap_t *th, hm_page_t *pg) {
    if (_hm_page_live(pg) != 0) return false;
    if ((atomic_load_explicit(&pg->thread_free, memory_order_acquire) & HM_TF_MASK) ==
        HM_TF_NOTIFIED)
        return false; /* still on the pending stack */
    /* keep the only page of a size class: alloc/free churn must not thrash */
    hm_page_queue_t *q = &th->queues[pg->bin];
    return _hm_page_in_full(pg) || q->first != pg || q->last != pg;
}

/* Bounded walk of one list for `b`: at most `limit` links, each checked to be a block of the
 * page before it is followed (link_of: a list damaged by a write after free is never wandered
 * off). */
static bool list_holds(const hm_page_t *pg, const hm_block_t *x, const hm_block_t *b,
                       size_t limit) {
    for (size_t n = 0; x != NULL && n <= limit; n++) {
        if (x == b) return true;
        x = link_of(pg, x); /* NULL past the end, and for a link out of the page */
    }
    return false;
}

bool _hm_page_block_is_free(const hm_page_t *pg, const hm_block_t *b) {
    /* the lists together hold at most the blocks carved so far */
    if (list_holds(pg, pg->free, b, pg->capacity)) return true;
    /* other threads only push in front of the snapshot: what follows it stays put */
    uintptr_t tf = atomic_load_explicit(&((hm_page_t *)pg)->thread_free, memory_order_acquire);
    return list_holds(pg, (const hm_block_t *)(tf & HM_TF_LIST), b, pg->capacity);
}

hm_result _hm_page_free_marked(hm_page_t *pg, hm_segment_t *seg, hm_block_t *b) {
    if (_hm_page_block_is_free(pg, b)) {
        _hm_report_double_free(seg, b, pg->block_size);
        return HM_ERR_NOT_BLOCK; /* nothing changed */
    }
    /* the program wrote the mark into its own block: a normal free, unmarked first (the mark
     * test is not repeated) */
    _hm_mark_set(b, NULL);
    return _hm_page_free(seg, pg, b);
}

hm_cold void _hm_report_double_free(const hm_segment_t *seg, const void *p, size_t size) {
    char msg[128];
    _hm_snprintf(msg, sizeof msg, "hostmalloc: double free: block %p of %zu bytes\n", p, size);
    _hm_report(&seg->arena->cfg, HM_ERROR_DOUBLE_FREE, p, msg);
}

hm_result _hm_page_free_slow(hm_page_t *pg, hm_segment_t *seg, hm_block_t *b) {
    /* blocks that are no memory (a sealed segment's): their kind keeps their state */
    if (pg->kind != HM_PAGE_PLAIN && _hm_page_kinds[pg->kind]->sealed)
        return _hm_page_kinds[pg->kind]->free(pg, b, false);
    hm_assert_full(_hm_page_valid(pg));
    hm_block_t **list = &pg->free; /* where the block goes */
    if (pg->kind != HM_PAGE_PLAIN) {
        /* the kind checks the block and, on a page, links it in its own format */
        const hm_page_kind_t *k = _hm_page_kinds[pg->kind];
        hm_result r = k->free(pg, b, !pg->is_huge);
        if (r != HM_OK) return r; /* reported; the block is left as it is, never reused */
        if (pg->is_huge) {
            /* a second free must be known; the block's pages, its header's included (the kind
             * keeps that in the note), inaccessible while it waits when the kind asks */
            uint8_t *from = (uint8_t *)(((uintptr_t)b - k->header) & ~(uintptr_t)(HM_OS_PAGE - 1));
            _hm_huge_hold(seg, k->protect_held ? from : NULL);
            return HM_OK;
        }
        if (k->delay_reuse) list = &pg->delayed;
    } else {
        if (!pg->is_huge) {
            hm_tool_access(b, 2 * sizeof(hm_block_t));
            if (_hm_mark_get(b) == pg && _hm_page_block_is_free(pg, b)) {
                _hm_report_double_free(seg, b, pg->block_size);
                return HM_ERR_NOT_BLOCK;
            }
        }
        hm_tool_free(b);
        if (pg->is_huge) {
            _hm_huge_free(seg);
            return HM_OK;
        }
        hm_tool_access(b, 2 * sizeof(hm_block_t));
        b->next = pg->free;
        _hm_mark_set(b, pg);
        hm_tool_hide(b, 2 * sizeof(hm_block_t));
    }
    *list = b;
    pg->used--;
    if (_hm_page_in_full(pg)) {
        hm_theap_t *th = seg->theap;
        /* a debug page is never retired from here: its freed headers must stay readable, so
         * that a prompt second free is reported as the double free it is */
        if (_hm_page_live(pg) != 0 || pg->kind != HM_PAGE_PLAIN)
            page_unfull(th, pg);
        else if (page_retirable(th, pg))
            page_retire(th, pg, seg);
    }
    return HM_OK;
}

int32_t _hm_page_free_rest(hm_segment_t *seg, hm_page_t *pg, void *p, int what) {
    hm_block_t *b = p;
    /* another thread's block first: the common case of these */
    if (hm_likely(what == HM_FREE_REMOTE)) return _hm_page_free_remote(pg, seg, b);
    switch (what) {
    case HM_FREE_SLOW:
        return _hm_page_free_slow(pg, seg, b);
    case HM_FREE_MARKED:
        return _hm_page_free_marked(pg, seg, b);
    default:
        return _hm_page_emptied(pg, seg);
    }
}

hm_result _hm_page_emptied(hm_page_t *pg, hm_segment_t *seg) {
    /* Only while memory is short: then the page goes back at once (decommitted: see
     * page_retire), so that a thread that frees and goes idle holds nothing another thread's
     * request needs. Otherwise it stays for reuse: retiring it would let the purge decommit
     * memory the thread is likely to touch again (the `frag` benchmark paid 8 % in page faults). */
    if (_hm_budget_pressure(&seg->arena->budget) != eMemoryAvailableLow) return HM_OK;
    hm_theap_t *th = seg->theap;
    if (page_retirable(th, pg)) page_retire(th, pg, seg);
    return HM_OK;
}

/* A fresh page of `bin` from one of the theap's segments, or a new segment. */
static hm_page_t *page_fresh(hm_theap_t *th, size_t bin, int level) {
    unsigned kind_of_page = (unsigned)(bin / HM_BIN_COUNT); /* HM_PAGE_*: the queue's set */
    size_t bs = _hm_bin_size(bin % HM_BIN_COUNT);
    size_t header = kind_of_page != HM_PAGE_PLAIN ? _hm_page_kinds[kind_of_page]->header : 0;
    /* (debug and checked slots above HM_MEDIUM_MAX, bin 57 only, in medium pages) */
    hm_segment_kind_t kind = bs <= HM_SMALL_MAX                                     ? HM_SEG_SMALL
                             : bs <= HM_MEDIUM_MAX || kind_of_page != HM_PAGE_PLAIN ? HM_SEG_MEDIUM
                                                                                    : HM_SEG_LARGE;
    hm_segment_t *seg;
    hm_page_t *pg;
    /* a page that is still committed first, from the first few of the theap's segments of the
     * kind (an exited thread's sub-heap, adopted, has its retired pages spread over several;
     * a segment goes to the front of its list when a page of it is retired) */
    pg = NULL;
    seg = NULL;
    if (th->free_committed_pages > 0) {
        seg = th->segs[kind];
        for (int n = 1; seg != NULL && seg->free_committed == 0; n++)
            seg = n < 8 ? seg->next : NULL; /* (the eighth segment is the last looked at) */
    }
    if (seg == NULL) {
        seg = th->segs[kind];
        if (seg == NULL || seg->used_pages == seg->page_count) {
            seg = _hm_segment_alloc(th, kind, level);
            if (seg == NULL) return NULL;
        }
    }
    for (size_t i = 0; i < seg->page_count; i++) {
        hm_page_t *c = &seg->pages[i];
        if (c->block_size != 0) continue;
        if (c->committed) {
            pg = c;
            break;
        }
        if (pg == NULL) pg = c;
    }
    hm_assert(pg != NULL);
    if (pg->committed) {
        if (pg != &seg->pages[0]) {
            th->free_committed_pages--;
            seg->free_committed--;
        }
    } else {
        size_t full = (size_t)1 << seg->page_shift;
        /* page 0 is uncommitted only in a segment taken back from the cache after its tail was
         * decommitted (segment_decommit_tail): its header's bytes are all the segment counts,
         * and page 0 is the first page it hands out. Page 0 is counted in full, once. */
        if (pg == &seg->pages[0] && seg->committed < full) full -= seg->committed;
        if (!_hm_theap_commit(th, full, level)) {
            if (seg->used_pages == 0) _hm_segment_free(seg);
            return NULL; /* refused: the reclaim loop (heap.c) takes it from here */
        }
        seg->committed += full;
        pg->committed = 1;
    }
    size_t idx = (size_t)(pg - seg->pages);
    size_t psize = page_size_of(seg, idx);
    pg->block_size = (uint32_t)bs;
    pg->bin = (uint8_t)bin;
    /* checked pages are coloured: their first block at one of 8 cache-line offsets (by page
     * index), so that the first blocks of neighbouring pages, and the header, link and fill
     * accesses the checks make around them, do not all share their address bits 0..11 */
    size_t color = kind_of_page == HM_PAGE_CHECKED ? (idx & 7) * 64 : 0;
    pg->reserved = (uint16_t)((psize - color) / bs);
    /* from the geometry: a page that served as a debug page had its start moved */
    pg->start = (uint8_t *)seg + (idx << seg->page_shift) +
                (idx == 0 ? _hm_segment_header_size(seg->page_count) : 0) + color;
    /* debug and checked pages: slot i is [start + i*bs, start + (i+1)*bs): its header first,
     * then the user bytes; moving `start` past the first header makes the user pointers the
     * block starts */
    pg->kind = (uint8_t)kind_of_page;
    pg->start += header;
    _hm_page_set_area(pg, 0); /* grows as page_extend carves */
    pg->div_magic = _hm_div_magic(bs);
    hm_tool_fresh(pg->start - header - color, psize); /* earlier lives forgotten */
    pg->capacity = 0;
    pg->used = 0;
    pg->free = pg->delayed = NULL;
    if (header != 0) pg->used = HM_USED_SLOW; /* every free of a debug block is checked */
    atomic_store_explicit(&pg->thread_free, 0, memory_order_relaxed);
    seg->used_pages++;
    /* full segments go to the back of the list */
    if (seg->used_pages == seg->page_count) _hm_seglist_to_back(th, seg);
    queue_push_front(th, pg);
    return pg;
}

/* (page.h) */
bool _hm_theap_tick(hm_theap_t *th) {
    uint32_t now = _hm_clock_ms();
    if (!_hm_time_reached(now, th->next_purge_ms)) return false;
    hm_arena_t *a = th->heap->arena;
    th->next_purge_ms = now + (a->cfg.purge_delay_ms / 4) + 1;
    _hm_theap_retire_empty(th);
    _hm_theap_purge(th, now, false);
    if (atomic_load_explicit(&a->cache_count, memory_order_relaxed) != 0) _hm_cache_purge(a, false);
    return true;
}

/* Decommit the retired pages whose delay has passed (all of them when `force`). Neighbouring
 * pages go in one call: a run of expired pages is one madvise, not one a page. */
void _hm_theap_purge(hm_theap_t *th, uint32_t now, bool force) {
    if (th->free_committed_pages == 0) return;
    size_t left = 0;
    for (int k = 0; k < HM_SEG_STANDARD; k++) {
        for (hm_segment_t *seg = th->segs[k]; seg != NULL; seg = seg->next) {
            if (seg->used_pages == seg->page_count) continue;
            uint8_t *run = NULL; /* start of the run of pages to decommit */
            size_t run_len = 0;
            size_t seg_left = 0; /* this segment's pages left committed, counted again */
            for (size_t i = 1; i < seg->page_count; i++) {
                hm_page_t *pg = &seg->pages[i];
                bool go = false;
                if (pg->block_size == 0 && pg->committed) {
                    if (!force && pg->expire == 0) {
                        /* first seen empty: its delay starts now */
                        uint32_t t = now + th->heap->arena->cfg.purge_delay_ms;
                        pg->expire = t != 0 ? t : 1;
                        seg_left++;
                    } else if (force || _hm_time_reached(now, pg->expire)) {
                        go = true;
                    } else {
                        seg_left++;
                    }
                }
                if (go) {
                    if (run == NULL) run = pg->start;
                    run_len += page_size_of(seg, i);
                    pg->committed = 0;
                } else if (run != NULL) {
                    _hm_segment_decommit(seg, run, run_len);
                    run = NULL;
                    run_len = 0;
                }
            }
            if (run != NULL) _hm_segment_decommit(seg, run, run_len);
            seg->free_committed = seg_left;
            left += seg_left;
        }
    }
    th->free_committed_pages = left;
}

/* Collect every page; retire the empty ones (all of them when `retire_all`, else all but the
 * last of each size class); decommit retired pages whose delay has passed (all of them when
 * `purge_all`). */
void _hm_theap_collect(hm_theap_t *th, bool retire_all, bool purge_all) {
    bool force = retire_all;
    _hm_theap_process_pending(th);
    for (size_t bin = 1; bin < HM_QUEUE_COUNT; bin++) {
        hm_page_t *pg = th->queues[bin].first;
        while (pg != NULL) {
            hm_page_t *next = pg->next;
            _hm_page_collect(pg);
            if (_hm_page_live(pg) == 0 && (force || page_retirable(th, pg))) {
                hm_segment_t *seg = _hm_segment_of(pg);
                if ((atomic_load_explicit(&pg->thread_free, memory_order_acquire) & HM_TF_MASK) !=
                    HM_TF_NOTIFIED)
                    page_retire(th, pg, seg);
            }
            pg = next;
        }
    }
    /* full pages are not in any queue: walk the segments for those with frees to collect */
    for (int k = 0; k < HM_SEG_STANDARD; k++) {
        hm_segment_t *seg = th->segs[k];
        while (seg != NULL) {
            hm_segment_t *nseg = seg->next;
            for (size_t i = 0; i < seg->page_count && seg->used_pages > 0; i++) {
                hm_page_t *pg = &seg->pages[i];
                if (pg->block_size == 0 || !_hm_page_in_full(pg)) continue;
                _hm_page_collect(pg);
                if (pg->free != NULL) {
                    if (_hm_page_live(pg) == 0 &&
                        (atomic_load_explicit(&pg->thread_free, memory_order_acquire) &
                         HM_TF_MASK) != HM_TF_NOTIFIED) {
                        bool last = seg->used_pages == 1;
                        page_retire(th, pg, seg); /* frees seg with its last page */
                        if (last) break;
                    } else {
                        page_unfull(th, pg);
                    }
                }
            }
            seg = nseg;
        }
    }
    _hm_theap_purge(th, _hm_clock_ms(), purge_all);
}

/* ---- the page-level allocation path --------------------------------------------------------- */
void _hm_theap_retire_empty(hm_theap_t *th) {
    for (size_t bin = 1; bin < HM_QUEUE_COUNT; bin++) {
        hm_page_t *pg = th->queues[bin].first;
        while (pg != NULL) {
            hm_page_t *next = pg->next;
            if (atomic_load_explicit(&pg->thread_free, memory_order_relaxed) & HM_TF_LIST)
                _hm_page_collect(pg);
            if (page_retirable(th, pg)) {
                hm_segment_t *seg = _hm_segment_of(pg);
                page_retire(th, pg, seg);
            }
            pg = next;
        }
    }
}

void *_hm_page_alloc(hm_theap_t *th, size_t bin, int level) {
    hm_page_queue_t *q = &th->queues[bin];
    hm_page_t *pg = q->first;
    while (pg != NULL) {
        hm_page_t *next = pg->next;
        if (pg->free == NULL) _hm_page_collect(pg);
        if (pg->free == NULL && pg->capacity < pg->reserved) page_extend(pg);
        if (pg->free == NULL && pg->delayed != NULL) {
            /* the block freed last, kept back by collect, is the page's only free block and
             * nothing is left to carve: it serves rather than a new page (delayed reuse is
             * best effort there) */
            pg->free = pg->delayed;
            pg->delayed = NULL;
        }
        if (pg->free != NULL) {
            queue_move_front(th, pg);
            break;
        }
        if (!page_to_full(th, pg)) {
            /* remote frees arrived between collect and the state change */
            _hm_page_collect(pg);
            if (pg->free != NULL) {
                queue_move_front(th, pg);
                break;
            }
        }
        pg = next;
    }
    if (pg == NULL) {
        pg = page_fresh(th, bin, level);
        if (pg == NULL) return NULL;
        page_extend(pg);
    }
    hm_block_t *b = pg->free;
    if (pg->kind == HM_PAGE_PLAIN) {
        _hm_page_take(pg, b); /* as the fast paths: live, unmarked, no link shown */
        return b;
    }
    /* debug and checked pages: their kind's format stays (checked by their layer) */
    hm_tool_access(b, sizeof(hm_block_t));
    pg->free = b->next;
    pg->used++;
    return b;
}

/* ---- invariants ------------------------------------------------------------------------------ */
bool _hm_page_valid(const hm_page_t *pg) {
    if (pg->block_size == 0 || pg->is_huge) return true; /* retired or huge: nothing to walk */
    if (pg->capacity > pg->reserved || pg->kind > HM_PAGE_CHECKED ||
        _hm_page_area(pg) != (size_t)pg->capacity * pg->block_size ||
        pg->div_magic != _hm_div_magic(pg->block_size) ||
        atomic_load_explicit(&((hm_page_t *)pg)->area_key, memory_order_relaxed) !=
            (uint64_t)_hm_page_area(pg) * pg->div_magic ||
        _hm_page_live(pg) > pg->capacity)
        return false;
    if (pg->kind != HM_PAGE_PLAIN && !(pg->used & HM_USED_SLOW)) return false;
    if (pg->kind == HM_PAGE_PLAIN && pg->delayed != NULL) return false; /* checked pages' only */
    if (pg->in_full != 0 && !(pg->used & HM_USED_SLOW)) return false;
    /* A page of another kind may hold a damaged link on its list until its kind's checks meet
     * it (a write after free, found when the block is handed out): only plain lists are walked,
     * whose links the engine alone writes. */
    if (pg->kind != HM_PAGE_PLAIN) return true;
    /* the owner's list: blocks of the page, no more of them than are carved and not live */
    size_t n = 0;
    for (const hm_block_t *b = pg->free; b != NULL; n++) {
        size_t off = (size_t)((const uint8_t *)b - pg->start);
        if (n >= pg->capacity || off >= _hm_page_area(pg) || off % pg->block_size != 0)
            return false;
        hm_tool_access(b, sizeof *b);
        const hm_block_t *next = b->next;
        hm_tool_hide(b, sizeof *b);
        b = next;
    }
    return n + _hm_page_live(pg) <= pg->capacity;
}
