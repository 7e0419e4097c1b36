/* SPDX-License-Identifier: MIT */
/* mem/segment.c: segments, the segment map, huge blocks and the arena's segment cache.
 *
 * A standard segment is 4 MiB at a 4 MiB boundary: its header (hm_segment_t and the page
 * table) at the start, then pages of one size. The segment map has one bit per 4 MiB unit of
 * the 48-bit address space (8 MiB, touched only where segments live) and is what
 * every free consults first; it and the two maps below live in one read-only mapping reserved
 * with the first segment, whose 4 KiB pages are made writable one by one as segments need
 * them (a page of a map covers 128 GiB of address space, so a process has a handful). A huge
 * segment holds one block; it is a mapping of any size
 * whose first unit carries the header. A block aligned to 4 MiB or more cannot share its unit
 * with the header, so its header sits one unit below it and a second map (the aligned map)
 * marks the block's unit; only the slow path reads that map.
 *
 * Empty segments go to the arena's cache (an array, the oldest first); a cached segment keeps its
 * map bit (all its pages read as unused, so a stale pointer into it is still refused) and its
 * memory is decommitted once the purge delay has passed.
 *
 * Commits are counted by the budget here, and only asked for: when the budget refuses, the
 * function returns NULL with nothing changed, and the heap's reclaim loop decides what to do. */
#include <string.h>
#include <sys/mman.h>

#include "mem/segment.h"

/* ---- the maps ------------------------------------------------------------------------------
 * Three maps in one mapping: the segment map (a byte per 4 MiB unit: segment.h), then the
 * aligned map and the cover map (a bit per unit: units inside a huge mapping that neither of the
 * others marks, where a pointer is ours but no block). Reserved read-only (reads of untouched
 * pages see zeros and cost no memory; a read-only private mapping is not charged under strict
 * overcommit); a page is made writable before the first entry in it is set. Lock-free: two
 * threads reserving at once keep the first mapping, and making a page writable twice is
 * harmless. */
#define MAP_SEG      0
#define MAP_ALIGNED  1
#define MAP_COVER    2
#define MAP_SEG_SIZE HM_MAP_UNITS                      /* bytes of the segment map */
#define MAP_BIT_SIZE (HM_MAP_WORDS * sizeof(uint64_t)) /* bytes of each bit map */
#define MAP_ALL_SIZE (MAP_SEG_SIZE + 2 * MAP_BIT_SIZE) /* the one mapping */
#define MAP_PAGES    (MAP_SEG_SIZE / HM_OS_PAGE)       /* pages of the largest map */

const uint8_t *_hm_segmap_base;
size_t _hm_segmap_units; /* 0 until the maps are reserved */
static uint8_t *_Atomic maps_base;
static _Atomic(uint64_t) map_writable_bits[3][MAP_PAGES / 64];

static bool maps_reserve(void) {
    uint8_t *base = atomic_load_explicit(&maps_base, memory_order_acquire);
    if (base == NULL) {
        uint8_t *mine = _hm_os_map_at(NULL, MAP_ALL_SIZE, PROT_READ);
        if (mine == NULL) return false;
        if (atomic_compare_exchange_strong(&maps_base, &base, mine))
            base = mine;
        else
            _hm_os_unmap(mine, MAP_ALL_SIZE); /* another thread was first: use its maps */
    }
    /* every thread that gets here writes the same two values, the base first: a free that
     * sees `units` set reads the base it goes with */
    if (__atomic_load_n(&_hm_segmap_units, __ATOMIC_ACQUIRE) == 0) {
        __atomic_store_n(&_hm_segmap_base, base, __ATOMIC_RELAXED);
        __atomic_store_n(&_hm_segmap_units, HM_MAP_UNITS, __ATOMIC_RELEASE);
    }
    return true;
}

static uint8_t *map_of(int which) {
    uint8_t *base = atomic_load_explicit(&maps_base, memory_order_acquire);
    if (base == NULL) return NULL;
    return which == MAP_SEG ? base : base + MAP_SEG_SIZE + (size_t)(which - 1) * MAP_BIT_SIZE;
}

/* The byte of map `which` that holds the entry of `unit`. */
static size_t map_byte(int which, uintptr_t unit) {
    uintptr_t idx = unit >> HM_SEGMENT_SHIFT;
    return which == MAP_SEG ? idx : (idx >> 6) * sizeof(uint64_t);
}

/* Make the page of map `which` that holds the entry of `unit` writable. */
static bool map_prepare(int which, uintptr_t unit) {
    if (!maps_reserve() || (unit >> HM_ADDR_BITS) != 0) return false;
    size_t page = map_byte(which, unit) / HM_OS_PAGE;
    _Atomic(uint64_t) *w = &map_writable_bits[which][page / 64];
    uint64_t bit = (uint64_t)1 << (page % 64);
    if (atomic_load_explicit(w, memory_order_acquire) & bit) return true;
    if (_hm_os_make_writable(map_of(which) + page * HM_OS_PAGE, HM_OS_PAGE) != 0) return false;
    atomic_fetch_or_explicit(w, bit, memory_order_release);
    return true;
}

/* (map_prepare was called for the unit before its entry is first set) */
static void map_set(int which, uintptr_t unit, bool on) {
    uint8_t *map = map_of(which);
    uintptr_t idx = unit >> HM_SEGMENT_SHIFT;
    if (which == MAP_SEG) {
        __atomic_store_n(&map[idx], on ? 1 : 0, __ATOMIC_RELEASE);
        return;
    }
    _Atomic(uint64_t) *words = (_Atomic(uint64_t) *)map;
    uint64_t bit = (uint64_t)1 << (idx & 63);
    if (on)
        atomic_fetch_or_explicit(&words[idx >> 6], bit, memory_order_release);
    else
        atomic_fetch_and_explicit(&words[idx >> 6], ~bit, memory_order_release);
}

static bool map_get(int which, uintptr_t unit) {
    uint8_t *map = map_of(which);
    uintptr_t idx = unit >> HM_SEGMENT_SHIFT;
    if (map == NULL || unit >> HM_ADDR_BITS) return false;
    if (which == MAP_SEG) return __atomic_load_n(&map[idx], __ATOMIC_ACQUIRE) != 0;
    _Atomic(uint64_t) *words = (_Atomic(uint64_t) *)map;
    return (atomic_load_explicit(&words[idx >> 6], memory_order_acquire) >> (idx & 63)) & 1;
}

/* Prepare the map pages a huge mapping of [base, base + size) will mark. */
static bool maps_prepare_huge(uint8_t *base, size_t size, bool aligned_huge) {
    uintptr_t first = (uintptr_t)base;
    uintptr_t marked = aligned_huge ? first + HM_SEGMENT_SIZE : first;
    for (uintptr_t u = first; u < first + size; u += HM_SEGMENT_SIZE) {
        int which = u != marked ? MAP_COVER : aligned_huge ? MAP_ALIGNED : MAP_SEG;
        if (!map_prepare(which, u)) return false;
    }
    return true;
}

bool _hm_unit_covered(uintptr_t unit) {
    return map_get(MAP_COVER, unit);
}

/* Mark (or clear) the units of a huge mapping beyond the one holding its block start. */
static void cover_set(const hm_segment_t *seg, bool on) {
    uintptr_t first = (uintptr_t)seg->base;
    uintptr_t end = first + seg->size;
    uintptr_t marked = seg->aligned_huge ? first + HM_SEGMENT_SIZE : first;
    for (uintptr_t u = first; u < end; u += HM_SEGMENT_SIZE)
        if (u != marked) map_set(MAP_COVER, u, on);
}

hm_segment_t *_hm_aligned_huge_at(uintptr_t unit) {
    if (!map_get(MAP_ALIGNED, unit)) return NULL;
    return (hm_segment_t *)(unit - HM_SEGMENT_SIZE);
}

size_t _hm_segment_header_size(size_t page_count) {
    size_t h = sizeof(hm_segment_t) + page_count * sizeof(hm_page_t);
    return (h + HM_OS_PAGE - 1) & ~(size_t)(HM_OS_PAGE - 1);
}

/* ---- accounting ---------------------------------------------------------------------------- */
/* Count `bytes` for `th`'s heap if its arena's budget lets `level` have them; a refusal is
 * noted in th->refused (the reclaim loop reclaims only after one). */
bool _hm_theap_commit(hm_theap_t *th, size_t bytes, int level) {
    hm_heap *heap = th->heap;
    hm_assert((unsigned)level <= eProcessCritical);
    if (!_hm_budget_take(&heap->arena->budget, bytes, level)) {
        th->refused = true;
        return false;
    }
    _hm_heap_count(heap, bytes);
    return true;
}

/* Give `bytes` back to the budget (and take them off `heap`'s count when not NULL). */
static void uncommit(hm_heap *heap, hm_arena_t *arena, size_t bytes) {
    if (bytes == 0) return;
    if (heap != NULL) _hm_heap_uncount(heap, bytes);
    _hm_budget_give(&arena->budget, bytes);
}

/* Every decommit of the engine's memory goes through here: counted for the statistics. */
static void os_decommit(hm_arena_t *a, void *p, size_t size) {
    _hm_os_decommit(p, size);
    atomic_fetch_add_explicit(&a->purge_calls, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&a->purge_bytes, size, memory_order_relaxed);
}

void _hm_segment_decommit(hm_segment_t *seg, uint8_t *p, size_t size) {
    os_decommit(seg->arena, p, size);
    if (size > seg->committed) size = seg->committed;
    seg->committed -= size;
    uncommit(seg->heap, seg->arena, size);
}

/* Decommit everything but the header; release exactly what was counted beyond it. */
static void segment_decommit_tail(hm_segment_t *seg) {
    size_t h = _hm_segment_header_size(seg->page_count);
    if (seg->committed <= h) return;
    size_t counted = seg->committed - h;
    uint8_t *from = (uint8_t *)seg + h;
    os_decommit(seg->arena, from, (size_t)((uint8_t *)seg->base + seg->size - from));
    seg->committed = h;
    for (size_t i = 0; i < seg->page_count; i++)
        seg->pages[i].committed = 0;
    seg->free_committed = 0;
    uncommit(seg->heap, seg->arena, counted);
}

/* ---- protected pages of huge segments --------------------------------------------------------
 * A page kind may ask for pages of a huge segment to be inaccessible: a guard page after its
 * block, and the whole block while the segment is held (page.h). What is inaccessible is
 * always one stretch, from seg->prot_none to the end of the mapping, so that every change is
 * one mprotect that moves that boundary: a segment keeps it through the cache, and the next
 * block made in it moves it to where that block ends (or to the end of its guard page). */
static int prot_rw(const hm_segment_t *seg) {
    return PROT_READ | PROT_WRITE | (seg->exec ? PROT_EXEC : 0);
}

/* Which credit of resident bytes a protection is paced by (protect_allowed): the plain blocks
 * of a default-mode heap (a freed huge block entering the cache, the stretch after a new one),
 * or debugging's (held blocks: DebugAlloc's and checked heaps'; a checked heap's plain huge
 * blocks, its aligned ones). */
enum { HM_PACE_NONE = -1, HM_PACE_DEFAULT = 0, HM_PACE_CHECKED = 1 };
_Static_assert(HM_PACE_CHECKED + 1 == HM_PACE_CREDITS, "a credit for each pace");
static bool protect_allowed(hm_arena_t *a, size_t resident, int pace);

/* The pace of a plain huge block's protections (its segment's heap is set). */
static int plain_pace(const hm_segment_t *seg) {
    return seg->heap->checked ? HM_PACE_CHECKED : HM_PACE_DEFAULT;
}

/* Make [from, end of mapping) inaccessible (from: a page boundary past the header page); with
 * `pace` other than HM_PACE_NONE, only within the pace of protections (protect_allowed), which
 * counts the resident pages the change takes away. */
static void huge_protect_from(hm_segment_t *seg, uint8_t *from, int pace) {
    uint8_t *to = seg->prot_none != NULL ? seg->prot_none : seg->base + seg->size;
    if (from >= to) return; /* inaccessible already */
    if (pace != HM_PACE_NONE) {
        /* the resident part of [from, to): what the blocks made in the mapping touched, up to
         * the larger of the committed bytes from the header (a mapping from the cache: the
         * extent of its largest block so far) and the end of the block it holds, if any (a
         * block placed past an alignment gap: its committed bytes do not count the gap) */
        uint8_t *last = (uint8_t *)seg + seg->committed;
        const hm_page_t *pg = &seg->pages[0];
        if (pg->start != NULL && pg->start + seg->huge_size > last)
            last = pg->start + seg->huge_size;
        if (last > to) last = to;
        if (!protect_allowed(seg->arena, last > from ? (size_t)(last - from) : 0, pace)) return;
    }
    if (_hm_os_protect(from, (size_t)(to - from), PROT_NONE) == 0) seg->prot_none = from;
}

/* The block of huge segment `seg` ends at `block_end`: its pages accessible, and with `guard`
 * (HM_GUARD_PACED: within the pace of protections) the rest of the mapping inaccessible (the
 * guard page first). False when the OS will not make the block's pages accessible (the segment
 * is then no use). */
enum { HM_GUARD_NONE, HM_GUARD_PACED, HM_GUARD_ALWAYS };
static bool huge_prepare(hm_segment_t *seg, uint8_t *block_end, int guard) {
    uint8_t *none = seg->prot_none;
    if (none != NULL && none < block_end) {
        if (_hm_os_protect(none, (size_t)(block_end - none), prot_rw(seg)) != 0) return false;
        seg->prot_none = block_end < seg->base + seg->size ? block_end : NULL;
    }
    if (guard != HM_GUARD_NONE)
        huge_protect_from(seg, block_end, guard == HM_GUARD_PACED ? plain_pace(seg) : HM_PACE_NONE);
    return true;
}

/* ---- the cache --------------------------------------------------------------------------
 * What it is for: a freed segment or huge block that is needed again soon is taken back warm
 * (no mmap, no page faults, no zeroing by the kernel); one that is not is decommitted when its
 * delay has passed and then costs address space only (and its header page), and is unmapped
 * beyond the limits. The limit (HM_SEGMENT_CACHE, 256 MiB by default) bounds the memory the
 * cache keeps committed; the address space it keeps is bounded by eight times that and by
 * HM_CACHE_MAX_ENTRIES entries. It is large enough for a program that keeps replacing blocks
 * of tens of MiB to find one of a fitting size, and for one with hundreds of huge blocks of
 * 64..128 KiB (under a limit below 1 GiB, where those are huge; each a 4 MiB mapping with 132
 * KiB committed) to reuse their mappings instead of
 * unmapping and mapping one per free; for a manager with a budget it is at most an eighth of
 * the budget's limit (a cache holding most of a budget would set the pressure states off for
 * memory nobody uses). While memory is short (Low) a segment put in the cache is decommitted
 * at once. */
static size_t cache_limit(const hm_arena_t *a) {
    size_t lim = a->cfg.segment_cache;
    if (a->budget.limit != 0 && a->budget.limit / 8 < lim) lim = a->budget.limit / 8;
    return lim;
}

/* The ring of held huge blocks keeps at most twice this committed: the cache's limit, but not
 * more than 32 MiB (docs/DEBUG.md, "Checked mode": the ring of held blocks). */
static size_t held_limit(const hm_arena_t *a) {
    size_t lim = cache_limit(a);
    return 2 * (lim < ((size_t)32 << 20) ? lim : ((size_t)32 << 20));
}

/* The entries are an array in the order they were put, the oldest first: a walk reads 32 bytes
 * an entry and no segment header. (They were a list through the headers, each in its own
 * mapping: with the cache full every put walked it, a TLB and a cache miss an entry, about
 * 170 us a put: docs/DESIGN-NOTES.md, "Returning memory".) The array is mapped when the
 * first entry is put, its pages touched as it fills, and unmapped when a forced purge (a trim,
 * memory wanted) empties the cache. Caller holds cache_lock. */
#define CACHE_ARRAY_BYTES                                                                          \
    (((HM_CACHE_MAX_ENTRIES + 1) * sizeof(hm_cache_ent_t) + HM_OS_PAGE - 1) &                      \
     ~(size_t)(HM_OS_PAGE - 1))

/* Take entry `i` out of the array (its counts with it) and return its segment. */
static hm_segment_t *cache_remove(hm_arena_t *a, size_t i) {
    hm_cache_ent_t *ent = a->cache;
    size_t count = a->cache_count;
    hm_segment_t *seg = ent[i].seg;
    a->cache_bytes -= ent[i].size;
    a->cache_committed -= ent[i].committed;
    memmove(&ent[i], &ent[i + 1], (count - i - 1) * sizeof *ent);
    atomic_store_explicit(&a->cache_count, count - 1, memory_order_relaxed);
    return seg;
}

/* Decommit a cached segment past its header. */
static void cache_decommit(hm_arena_t *a, hm_cache_ent_t *e) {
    if (e->cold) return;
    segment_decommit_tail(e->seg);
    a->cache_committed -= e->committed - e->seg->committed;
    e->committed = e->seg->committed;
    e->cold = true;
}

/* Unmap a segment for good: map bits off, accounting undone. */
void _hm_segment_unmap(hm_segment_t *seg) {
    hm_arena_t *a = seg->arena;
    if (seg->kind == HM_SEG_HUGE) cover_set(seg, false);
    if (seg->aligned_huge) {
        map_set(MAP_ALIGNED, (uintptr_t)seg + HM_SEGMENT_SIZE, false);
    } else {
        map_set(MAP_SEG, (uintptr_t)seg, false);
    }
    size_t committed = seg->committed;
    hm_heap *heap = seg->heap;
    void *base = seg->base;
    size_t size = seg->size;
    hm_tool_fresh(base, size); /* a tool's shadow outlives munmap: the next mapping is clean */
    _hm_os_unmap(base, size);
    uncommit(heap, a, committed);
}

static void cache_purge_locked(hm_arena_t *a, uint32_t now, bool force) {
    /* Newest first: walk to the oldest, decommitting what has expired, unmapping what is over
     * the limits: the memory kept committed, the address space kept, the entries. */
    size_t limit = cache_limit(a);
    /* the walk is done when something is over a limit, or at most every delay/4 ms for the
     * expiries (a cache of hundreds of entries is not walked at every put) */
    if (!force && a->cache_committed <= limit && a->cache_bytes <= 8 * limit &&
        a->cache_count <= HM_CACHE_MAX_ENTRIES && !_hm_time_reached(now, a->cache_next_ms))
        return;
    a->cache_next_ms = now + a->cfg.purge_delay_ms / 4 + 1;
    /* busy: a huge block was made from the cache within the purge delay. Its huge mappings then
     * stay committed past their delay (within the limits): a program that keeps replacing blocks
     * of many sizes takes back the sizes it asks for least often after longer than the delay,
     * and paid a page fault for every page of them (docs/BENCHMARKS.md, "malloc-large"). An
     * idle cache gives them back at the first walk a delay after the last take. */
    bool busy = a->cache_took_ms != 0 && !_hm_arena_purge_now(a) &&
                !_hm_time_reached(now, a->cache_took_ms + a->cfg.purge_delay_ms);
    if (!busy) a->cache_took_ms = 0; /* (a clock that wrapped cannot make it busy again) */
    size_t count = a->cache_count;
    hm_cache_ent_t *ent = a->cache;
    size_t kept = 0, kept_mapped = 0;
    size_t w = count; /* the entries kept so far: ent[w..count), in their order */
    for (size_t i = count; i-- > 0;) {
        hm_cache_ent_t e = ent[i];
        bool huge = e.kind == HM_SEG_HUGE;
        if (!force && !(busy && huge) && _hm_time_reached(now, e.expire)) cache_decommit(a, &e);
        if (force || kept + e.committed > limit || kept_mapped + e.size > 8 * limit ||
            count - w >= HM_CACHE_MAX_ENTRIES) {
            a->cache_bytes -= e.size;
            a->cache_committed -= e.committed;
            _hm_segment_unmap(e.seg);
        } else {
            kept += e.committed;
            kept_mapped += e.size;
            ent[--w] = e;
        }
    }
    if (w != 0) memmove(ent, &ent[w], (count - w) * sizeof *ent);
    atomic_store_explicit(&a->cache_count, count - w, memory_order_relaxed);
    if (force && a->cache != NULL) {
        _hm_os_unmap(a->cache, CACHE_ARRAY_BYTES);
        a->cache = NULL;
    }
}

void _hm_cache_purge(hm_arena_t *a, bool force) {
    if (force) _hm_held_flush(a); /* memory is wanted: held blocks into the cache, then out */
    pthread_mutex_lock(&a->cache_lock);
    cache_purge_locked(a, _hm_clock_ms(), force);
    pthread_mutex_unlock(&a->cache_lock);
}

/* Does the cache keep `seg` when it is put there (else cache_put unmaps it)? */
static bool cache_keeps(const hm_segment_t *seg) {
    size_t lim = cache_limit(seg->arena);
    return !seg->aligned_huge && lim != 0 && seg->size <= lim;
}

/* Put an empty segment into the cache, or unmap it when caching is off. */
static void cache_put(hm_segment_t *seg) {
    hm_arena_t *a = seg->arena;
    /* The heap no longer holds its committed bytes; the manager still does. */
    if (seg->heap != NULL) {
        hm_heap *heap = seg->heap;
        atomic_fetch_sub_explicit(&heap->committed, seg->committed, memory_order_relaxed);
    }
    seg->heap = NULL;
    seg->theap = NULL;
    atomic_store_explicit(&seg->tid, HM_TID_NONE, memory_order_relaxed);
    for (size_t i = 0; i < seg->page_count; i++) {
        _hm_page_set_area(&seg->pages[i], 0);
        seg->pages[i].block_size = 0;
    }
    if (!cache_keeps(seg)) {
        _hm_segment_unmap(seg);
        return;
    }
    uint32_t now = _hm_clock_ms();
    pthread_mutex_lock(&a->cache_lock);
    if (a->cache == NULL) a->cache = _hm_os_map_aligned(CACHE_ARRAY_BYTES, HM_OS_PAGE, false);
    if (a->cache == NULL) { /* no room to note it: the OS has it back */
        pthread_mutex_unlock(&a->cache_lock);
        _hm_segment_unmap(seg);
        return;
    }
    size_t count = a->cache_count; /* at most HM_CACHE_MAX_ENTRIES: the array has one more */
    hm_cache_ent_t *e = &a->cache[count];
    *e = (hm_cache_ent_t){.seg = seg,
                          .size = seg->size,
                          .committed = seg->committed,
                          .expire = now + a->cfg.purge_delay_ms,
                          .kind = (uint8_t)seg->kind,
                          .exec = seg->exec};
    atomic_store_explicit(&a->cache_count, count + 1, memory_order_relaxed);
    a->cache_bytes += seg->size;
    a->cache_committed += seg->committed;
    if (_hm_arena_purge_now(a)) cache_decommit(a, e);
    cache_purge_locked(a, now, false);
    pthread_mutex_unlock(&a->cache_lock);
}

/* Take a cached segment of at least `min_size` bytes (at most `max_size`) for a segment of
 * `kind`; NULL if none. A huge one: the smallest huge mapping that fits, the newest of those.
 * A standard one (all are one unit): the newest of the kind asked for, else the newest of
 * another standard kind, which its new page geometry decommits (segment_init_pages): a program
 * whose phases move between size ranges (rptest's) took medium segments for large pages and
 * back, and paid a page fault a page each time. */
static hm_segment_t *cache_take(hm_arena_t *a, size_t min_size, size_t max_size, bool exec,
                                hm_segment_kind_t kind) {
    if (atomic_load_explicit(&a->cache_count, memory_order_relaxed) == 0) return NULL;
    bool huge = kind == HM_SEG_HUGE;
    pthread_mutex_lock(&a->cache_lock);
    const hm_cache_ent_t *ent = a->cache;
    size_t best = SIZE_MAX;
    for (size_t i = a->cache_count; i-- > 0;) {
        const hm_cache_ent_t *c = &ent[i];
        if (c->exec != exec || (c->kind == HM_SEG_HUGE) != huge || c->size < min_size ||
            c->size > max_size)
            continue;
        if (!huge) {
            if (best == SIZE_MAX) best = i;
            if (c->kind == (uint8_t)kind) {
                best = i;
                break;
            }
        } else if (best == SIZE_MAX || c->size < ent[best].size) {
            best = i;
            /* no mapping can fit better (mappings are whole units) */
            if (c->size <= ((min_size + HM_SEGMENT_MASK) & ~HM_SEGMENT_MASK)) break;
        }
    }
    hm_segment_t *seg = NULL;
    if (best != SIZE_MAX) {
        seg = cache_remove(a, best);
        if (huge) a->cache_took_ms = _hm_clock_ms() | 1; /* 0: never */
    }
    pthread_mutex_unlock(&a->cache_lock);
    return seg;
}

/* ---- standard segments ------------------------------------------------------------------- */
/* Fill the segment's page_of table from its geometry (page_shift; a huge segment: one page). */
static void segment_map_pages(hm_segment_t *seg) {
    for (size_t i = 0; i < sizeof seg->page_of / sizeof seg->page_of[0]; i++)
        seg->page_of[i] = seg->page_shift >= HM_SEGMENT_SHIFT /* one page: huge, sealed */
                              ? &seg->pages[0]
                              : &seg->pages[i >> (seg->page_shift - HM_SMALL_PAGE_SHIFT)];
}

/* The page shift of a standard segment of `kind` in arena `a`. */
static uint32_t page_shift_of(const hm_arena_t *a, hm_segment_kind_t kind) {
    return kind == HM_SEG_SMALL    ? HM_SMALL_PAGE_SHIFT
           : kind == HM_SEG_MEDIUM ? a->medium_shift
                                   : HM_LARGE_PAGE_SHIFT;
}

static void segment_init_pages(hm_segment_t *seg, hm_segment_kind_t kind, bool fresh) {
    uint32_t shift = page_shift_of(seg->arena, kind);
    size_t n = HM_SEGMENT_SIZE >> shift;
    size_t h = _hm_segment_header_size(n);
    bool new_mapping = fresh;
    if (!fresh && seg->kind != (uint32_t)kind) {
        /* A different page geometry: start from a clean, decommitted segment. */
        segment_decommit_tail(seg);
        fresh = true;
    }
    /* a segment that held a huge block has its page table where that block was (freed, so
     * inaccessible to a tool): the table is metadata again */
    hm_tool_access(seg->pages, n * sizeof(hm_page_t));
    if (fresh) memset(seg->pages, 0, n * sizeof(hm_page_t));
    seg->kind = kind;
    seg->page_shift = shift;
    seg->page_count = n;
    seg->used_pages = 0;
    for (size_t i = 0; i < n; i++) {
        hm_page_t *pg = &seg->pages[i];
        uint8_t committed = fresh ? 0 : pg->committed;
        memset(pg, 0, sizeof *pg);
        pg->committed = committed;
        pg->start = (uint8_t *)seg + (i << shift) + (i == 0 ? h : 0);
    }
    if (new_mapping) {
        /* the header lives in page 0, which the caller counted as committed */
        seg->pages[0].committed = 1;
    }
    seg->free_committed = 0;
    for (size_t i = 1; i < n; i++)
        seg->free_committed += seg->pages[i].committed;
    segment_map_pages(seg);
}

hm_segment_t *_hm_segment_alloc(hm_theap_t *th, hm_segment_kind_t kind, int level) {
    hm_heap *heap = th->heap;
    hm_arena_t *a = heap->arena;
    bool exec = (heap->flags & HM_HEAP_EXECUTABLE) != 0;
    hm_segment_t *seg = cache_take(a, HM_SEGMENT_SIZE, HM_SEGMENT_SIZE, exec, kind);
    if (seg != NULL) {
        /* The cached committed bytes move back to this heap (the manager keeps them). */
        seg->heap = heap;
        _hm_heap_count(heap, seg->committed);
        segment_init_pages(seg, kind, false);
    } else {
        size_t first_page = (size_t)1 << page_shift_of(a, kind);
        if (!_hm_theap_commit(th, first_page, level)) return NULL;
        seg = _hm_os_map_aligned(HM_SEGMENT_SIZE, HM_SEGMENT_SIZE, exec);
        if (seg != NULL && !map_prepare(MAP_SEG, (uintptr_t)seg)) {
            _hm_os_unmap(seg, HM_SEGMENT_SIZE);
            seg = NULL;
        }
        if (seg == NULL) {
            uncommit(heap, heap->arena, first_page);
            return NULL;
        }
        seg->base = (uint8_t *)seg;
        seg->size = HM_SEGMENT_SIZE;
        seg->exec = exec;
        seg->arena = a;
        seg->heap = heap;
        seg->committed = first_page;
        segment_init_pages(seg, kind, true);
        map_set(MAP_SEG, (uintptr_t)seg, true);
    }
    seg->heap = heap;
    seg->theap = th;
    seg->aligned_huge = false;
    atomic_store_explicit(&seg->tid, (heap->flags & HM_HEAP_THREADSAFE) ? th->tid : HM_TID_ANY,
                          memory_order_release);
    _hm_seglist_push(th, seg);                       /* into the sub-heap's segment list */
    th->free_committed_pages += seg->free_committed; /* (from the cache: still committed) */
    hm_assert_full(_hm_segment_valid(seg));
    return seg;
}

void _hm_segment_free(hm_segment_t *seg) {
    hm_assert_full(_hm_segment_valid(seg) && seg->used_pages == 0);
    hm_theap_t *th = seg->theap;
    _hm_seglist_remove(th, seg);
    /* empty pages of this segment no longer count as the theap's purge candidates */
    th->free_committed_pages -= seg->free_committed;
    cache_put(seg);
}

/* ---- huge segments ------------------------------------------------------------------------ */
static hm_segment_t *huge_alloc(hm_theap_t *th, size_t size, size_t align, int level, int guard) {
    hm_heap *heap = th->heap;
    hm_arena_t *a = heap->arena;
    bool exec = (heap->flags & HM_HEAP_EXECUTABLE) != 0;
    size_t h = _hm_segment_header_size(1);
    if (size > HM_MAX_ALLOC - 2 * HM_SEGMENT_SIZE || align > HM_MAX_ALLOC / 4) return NULL;
    size_t usable = (size + HM_OS_PAGE - 1) & ~(size_t)(HM_OS_PAGE - 1);
    if (usable == 0) usable = HM_OS_PAGE;
    bool aligned_huge = align >= HM_SEGMENT_SIZE;
    size_t offset; /* of the block from the segment header */
    if (aligned_huge)
        offset = HM_SEGMENT_SIZE;
    else
        offset = align <= h ? h : align;
    size_t need = offset + usable;
    /* the mapping holds the guard page too (never touched: not counted) */
    size_t room = need + (guard ? HM_OS_PAGE : 0);
    hm_segment_t *seg = NULL;
    uint8_t *base = NULL;
    size_t map_size = 0;
    bool fresh = false; /* a new mapping: every byte reads 0 */
    if (!aligned_huge) {
        size_t units = (room + HM_SEGMENT_MASK) & ~HM_SEGMENT_MASK;
        seg = cache_take(a, room, units + units / 2, exec, HM_SEG_HUGE);
        if (seg != NULL) {
            base = seg->base;
            map_size = seg->size;
            seg->heap = heap;
            _hm_heap_count(heap, seg->committed);
            /* account the part that will now be touched beyond what stays committed */
            if (need > seg->committed) {
                if (!_hm_theap_commit(th, need - seg->committed, level)) {
                    /* give it back untouched */
                    cache_put(seg);
                    return NULL;
                }
                seg->committed = need;
            }
        }
    }
    if (seg == NULL) {
        if (!_hm_theap_commit(th, h + usable, level)) return NULL;
        if (aligned_huge) {
            /* reserve so that a unit at `align` has one free unit below it for the header */
            size_t total =
                HM_SEGMENT_SIZE + align + ((usable + HM_SEGMENT_MASK) & ~HM_SEGMENT_MASK);
            uint8_t *q = _hm_os_map_aligned(total, HM_SEGMENT_SIZE, exec);
            if (q == NULL) {
                uncommit(heap, heap->arena, h + usable);
                return NULL;
            }
            uint8_t *blk =
                (uint8_t *)(((uintptr_t)q + HM_SEGMENT_SIZE + align - 1) & ~(uintptr_t)(align - 1));
            uint8_t *s = blk - HM_SEGMENT_SIZE;
            if (s > q) _hm_os_unmap(q, (size_t)(s - q));
            uint8_t *end = blk + ((usable + HM_SEGMENT_MASK) & ~HM_SEGMENT_MASK);
            if (q + total > end) _hm_os_unmap(end, (size_t)(q + total - end));
            base = s;
            map_size = (size_t)(end - s);
        } else {
            map_size = (room + HM_SEGMENT_MASK) & ~HM_SEGMENT_MASK;
            base = _hm_os_map_aligned(map_size, HM_SEGMENT_SIZE, exec);
            if (base == NULL) {
                uncommit(heap, heap->arena, h + usable);
                return NULL;
            }
        }
        if (!maps_prepare_huge(base, map_size, aligned_huge)) {
            _hm_os_unmap(base, map_size);
            uncommit(heap, heap->arena, h + usable);
            return NULL;
        }
        seg = (hm_segment_t *)base;
        seg->committed = h + usable;
        seg->arena = a;
        seg->heap = heap;
        fresh = true;
    }
    /* A mapping from the cache whose inaccessible stretch (the guard page of its last block, or
     * that block's pages while it was held) begins past this block's end, by no more than the
     * block's size, within what the mapping has committed: the block is given the room up to
     * it, so that its guard page is there already and no mprotect moves the boundary (checked
     * mode's huge blocks, all guarded, moved it at nearly every reuse: docs/BENCHMARKS.md, "The
     * bars"). Its usable size grows by that room. */
    if (guard && !fresh && seg->prot_none != NULL) {
        uint8_t *block_end = (uint8_t *)seg + need;
        size_t room_to = seg->prot_none > block_end ? (size_t)(seg->prot_none - block_end) : 0;
        if (room_to != 0 && room_to <= usable && need + room_to <= seg->committed) {
            usable += room_to;
            need += room_to;
        }
    }
    seg->zero = fresh; /* one from the cache holds what its last block left */
    seg->base = base;
    seg->size = map_size;
    seg->huge_size = usable;
    seg->exec = exec;
    seg->kind = HM_SEG_HUGE;
    seg->page_shift = HM_SEGMENT_SHIFT + 20; /* every interior offset maps to page 0 */
    segment_map_pages(seg);
    seg->page_count = 1;
    seg->used_pages = 1;
    seg->aligned_huge = aligned_huge;
    seg->held = false;
    seg->theap = th;
    /* a segment from the cache may have inaccessible pages where this block goes */
    if (!huge_prepare(seg, (uint8_t *)seg + need, guard)) {
        _hm_segment_unmap(seg);
        return NULL;
    }
    /* frees of huge blocks all take the same path, from any thread */
    atomic_store_explicit(&seg->tid, HM_TID_ANY, memory_order_relaxed);
    hm_page_t *pg = &seg->pages[0];
    memset(pg, 0, sizeof *pg);
    pg->start = (uint8_t *)seg + offset;
    pg->div_magic = 1;
    _hm_page_set_area(pg, 1); /* only offset 0 is a block start */
    pg->block_size = 0;
    pg->is_huge = 1;
    pg->used = HM_USED_SLOW | 1; /* its free always takes the slow path */
    pg->reserved = 1;
    pg->capacity = 1;
    pg->committed = 1;
    pg->bin = 0;
    /* huge segments are listed in the heap, so any thread can free them */
    pthread_mutex_lock(&heap->lock);
    HM_LIST_PUSH(heap->huge, seg, next, prev);
    heap->huge_count++;
    pthread_mutex_unlock(&heap->lock);
    if (aligned_huge)
        map_set(MAP_ALIGNED, (uintptr_t)seg + HM_SEGMENT_SIZE, true);
    else
        map_set(MAP_SEG, (uintptr_t)seg, true);
    cover_set(seg, true);
    return seg;
}

hm_segment_t *_hm_huge_alloc(hm_theap_t *th, size_t size, size_t align, int level) {
    /* a guard page after the block while protections are within their rate (held ring, below):
     * an overrun into the next page then faults in default mode too (docs/DEBUG.md). Not after
     * the blocks of executable heaps: code may end at a block's last byte, and a decoder that
     * reads ahead (valgrind's, a JIT's disassembler) would fault in the guard page */
    bool exec = (th->heap->flags & HM_HEAP_EXECUTABLE) != 0;
    return huge_alloc(th, size, align, level, exec ? HM_GUARD_NONE : HM_GUARD_PACED);
}

hm_segment_t *_hm_huge_alloc_guarded(hm_theap_t *th, size_t size, int level) {
    return huge_alloc(th, size, HM_ALIGN, level, HM_GUARD_ALWAYS);
}

bool _hm_huge_grow(hm_theap_t *th, hm_segment_t *seg, size_t size, int level) {
    hm_page_t *pg = &seg->pages[0];
    if (seg->aligned_huge || pg->kind != HM_PAGE_PLAIN || size > HM_MAX_ALLOC - HM_OS_PAGE)
        return false;
    size_t usable = (size + HM_OS_PAGE - 1) & ~(size_t)(HM_OS_PAGE - 1);
    if (usable <= seg->huge_size) return true;
    /* the guard page stays after the block: whatever is inaccessible past it now (prot_none:
     * the guard, up to the end of the mapping) stays so past the new end */
    int guard = seg->prot_none != NULL ? HM_GUARD_PACED : HM_GUARD_NONE; /* a plain block */
    size_t offset = (size_t)(pg->start - (uint8_t *)seg); /* seg == seg->base: not aligned_huge */
    if (usable > seg->size - offset - (guard ? HM_OS_PAGE : 0)) return false;
    size_t need = offset + usable;
    size_t more = need > seg->committed ? need - seg->committed : 0;
    if (more != 0 && !_hm_theap_commit(th, more, level)) return false;
    if (!huge_prepare(seg, (uint8_t *)seg + need, guard)) {
        uncommit(seg->heap, seg->arena, more); /* the OS kept the pages inaccessible */
        return false;
    }
    seg->committed += more;
    seg->huge_size = usable;
    return true;
}

/* Take a huge segment out of its heap's list (caller: the block's free). */
static void huge_unlink(hm_segment_t *seg) {
    hm_heap *heap = seg->heap;
    pthread_mutex_lock(&heap->lock);
    HM_LIST_REMOVE(heap->huge, seg, next, prev);
    heap->huge_count--;
    pthread_mutex_unlock(&heap->lock);
}

/* ---- sealed segments ------------------------------------------------------------------------ */
hm_segment_t *_hm_segment_sealed_new(hm_theap_t *th, size_t meta, size_t block, size_t count,
                                     unsigned kind, int level) {
    hm_heap *heap = th->heap;
    size_t h = (HM_SEGMENT_NOTE_OFFSET + meta + HM_OS_PAGE - 1) & ~(size_t)(HM_OS_PAGE - 1);
    if (h + block * count > HM_SEGMENT_SIZE) return NULL;
    if (!_hm_theap_commit(th, h, level)) return NULL;
    uint8_t *base = _hm_os_map_aligned(HM_SEGMENT_SIZE, HM_SEGMENT_SIZE, false);
    if (base != NULL && (!map_prepare(MAP_SEG, (uintptr_t)base) ||
                         _hm_os_protect(base + h, HM_SEGMENT_SIZE - h, PROT_NONE) != 0)) {
        _hm_os_unmap(base, HM_SEGMENT_SIZE);
        base = NULL;
    }
    if (base == NULL) {
        uncommit(heap, heap->arena, h);
        return NULL;
    }
    hm_segment_t *seg = (hm_segment_t *)base; /* fresh: zeroed */
    seg->base = base;
    seg->size = HM_SEGMENT_SIZE;
    seg->arena = heap->arena;
    seg->heap = heap;
    seg->theap = NULL;
    seg->committed = h;
    seg->kind = HM_SEG_SEALED;
    seg->page_shift = HM_SEGMENT_SHIFT + 20; /* every interior offset maps to page 0 */
    seg->page_count = 1;
    seg->used_pages = 1;
    segment_map_pages(seg);
    atomic_store_explicit(&seg->tid, HM_TID_ANY, memory_order_relaxed);
    hm_page_t *pg = &seg->pages[0];
    pg->start = base + h;
    pg->block_size = (uint32_t)block;
    pg->div_magic = _hm_div_magic(block);
    pg->kind = (uint8_t)kind;
    pg->used = HM_USED_SLOW; /* every free leaves the fast path for the kind */
    pg->committed = 1;
    _hm_page_set_area(pg, block * count);
    map_set(MAP_SEG, (uintptr_t)seg, true);
    return seg;
}

/* ---- held huge blocks ----------------------------------------------------------------------
 * A freed huge block of a page kind that asks for it (DebugAlloc blocks, and huge blocks of
 * checked heaps: page.h) waits in a ring of HM_HELD_MAX segments before its memory is reused,
 * so that a second free of it is known as the double free it is. Held segments stay committed
 * (a block freed and allocated again at a high rate would otherwise pay a decommit, an unmap, a
 * new mapping and its page faults each time); over held_limit the oldest give their memory
 * back but their header page (the kind keeps what a second free reads in the segment's note),
 * and the pages of a block whose kind asks for it are inaccessible while it waits. An entry
 * leaving the ring goes to the cache, whose rules apply (its inaccessible pages stay so until
 * a block made in it needs them). A forced
 * purge of the cache (memory is wanted, or a trim) empties the ring first. */
static void held_release(hm_segment_t *seg) {
    seg->held = false;
    cache_put(seg);
}

/* Decommit a held segment but its header page (with the note its kind keeps: the state a
 * second free reads). Returns the bytes given back. Caller holds cache_lock. */
static size_t held_decommit(hm_segment_t *seg) {
    size_t keep = _hm_segment_header_size(1);
    uint8_t *keep_end = (uint8_t *)seg + keep;
    uint8_t *end = (uint8_t *)seg->base + seg->size;
    if (seg->committed <= keep || end <= keep_end) return 0;
    os_decommit(seg->arena, keep_end, (size_t)(end - keep_end)); /* inaccessible pages too */
    size_t give = seg->committed - keep;
    seg->committed = keep;
    uncommit(NULL, seg->arena, give);
    return give;
}

/* The pace of protections (a freed huge block made inaccessible, a guard page after a new
 * one), per arena. At most HM_PROTECT_PER_WINDOW a window of HM_PROTECT_WINDOW_MS (a window
 * opens with the first protection after the last one closed), 256 a second: each costs an
 * mprotect, and with more than one thread a flush of the other CPUs' TLBs, then another when
 * the memory is reused (docs/DEBUG.md has what it cost). The window is an eighth of a second,
 * not a second, so that a burst pays for 32, not 256: a short program that makes and frees a
 * few hundred huge blocks spent twice mimalloc's system time on them (docs/BENCHMARKS.md).
 * And the resident pages they take away at most HM_PROTECT_BYTES_PER_S a second, from a credit
 * that fills at that rate up to a burst: on a machine whose page tables are the hypervisor's to
 * mirror (a shadow-paging guest), every page made inaccessible and then accessible again costs
 * a trap into the hypervisor at its next touch, microseconds a page, and a program that
 * replaced blocks of tens of MiB ran 3 to 5 times slower for it (docs/BENCHMARKS.md,
 * "malloc-large"). A freed block whose resident pages exceed what is left of the credit stays
 * accessible. The plain blocks of a default-mode heap have a burst of HM_PROTECT_DEFAULT_BURST
 * (8 MiB), so a freed block of more than 8 MiB stays accessible: a short program pays for all
 * of its burst, and one that makes and frees blocks of a few MiB for a fifth of a second
 * (mimalloc-bench's mstress) ran 1.4x longer with 32 MiB, its time in re-touching those pages;
 * a lower rate, by contrast, made a program that replaces blocks of 5 to 25 MiB (malloc-large)
 * slower, not faster, on that machine (docs/BENCHMARKS.md, "The protection credit").
 * Debugging's blocks (held ones, DebugAlloc's and checked heaps', and a checked heap's plain
 * huge blocks) have a credit of their own with a burst of HM_PROTECT_CHECKED_BURST (32 MiB):
 * they are there to be caught. A program that frees huge blocks faster keeps the others
 * readable while they wait; held ones are held all the same, so a second free is still known.
 * The counts are relaxed: threads racing at a window's edge may pass a few more, and threads
 * racing for a credit may each spend it once. */
#define HM_PROTECT_WINDOW_MS     125
#define HM_PROTECT_PER_WINDOW    32
#define HM_PROTECT_BYTES_PER_S   ((size_t)32 << 20)
#define HM_PROTECT_DEFAULT_BURST ((size_t)8 << 20)
#define HM_PROTECT_CHECKED_BURST ((size_t)32 << 20)

static bool protect_allowed(hm_arena_t *a, size_t resident, int pace) {
    uint32_t now = _hm_clock_ms();
    uint32_t since = atomic_load_explicit(&a->protect_since_ms, memory_order_relaxed);
    if (now - since >= HM_PROTECT_WINDOW_MS) {
        atomic_store_explicit(&a->protect_since_ms, now, memory_order_relaxed);
        atomic_store_explicit(&a->protect_count, 0, memory_order_relaxed);
    }
    if (atomic_fetch_add_explicit(&a->protect_count, 1, memory_order_relaxed) >=
        HM_PROTECT_PER_WINDOW)
        return false;
    if (resident == 0) return true;
    /* the credit, filled for the time since it was last filled (full after a second idle, and
     * at first) */
    hm_assert(pace == HM_PACE_DEFAULT || pace == HM_PACE_CHECKED);
    size_t burst = pace == HM_PACE_CHECKED ? HM_PROTECT_CHECKED_BURST : HM_PROTECT_DEFAULT_BURST;
    uint32_t filled = atomic_load_explicit(&a->protect_credit_ms[pace], memory_order_relaxed);
    size_t credit = atomic_load_explicit(&a->protect_credit[pace], memory_order_relaxed);
    uint32_t idle = now - filled;
    if ((int32_t)idle < 0) idle = 0; /* another thread filled it at a later tick */
    if (idle != 0) {
        credit = idle >= 1000 || filled == 0
                     ? burst
                     : credit + (size_t)idle * (HM_PROTECT_BYTES_PER_S / 1000);
        if (credit > burst) credit = burst;
        atomic_store_explicit(&a->protect_credit_ms[pace], now, memory_order_relaxed);
    }
    bool ok = credit >= resident;
    atomic_store_explicit(&a->protect_credit[pace], ok ? credit - resident : credit,
                          memory_order_relaxed);
    /* refused: the window's slot goes back (a guard page that takes nothing still may) */
    if (!ok) atomic_fetch_sub_explicit(&a->protect_count, 1, memory_order_relaxed);
    return ok;
}

void _hm_huge_hold(hm_segment_t *seg, uint8_t *protect_from) {
    hm_arena_t *a = seg->arena;
    huge_unlink(seg);
    hm_page_t *pg = &seg->pages[0];
    atomic_fetch_sub_explicit(&seg->heap->committed, seg->committed, memory_order_relaxed);
    seg->heap = NULL; /* the manager holds it now */
    /* a read or a write of the freed block faults while it waits (a refusal of the OS leaves it
     * accessible: the ring's other checks do not depend on it). Not decommitted first: the next
     * block made in the segment would pay a page fault for every page it touches, which cost
     * more than the flush of other CPUs' TLBs the protection of resident pages costs
     * (docs/DEBUG.md) */
    if (protect_from != NULL) huge_protect_from(seg, protect_from, HM_PACE_CHECKED);
    _hm_page_set_area(pg, 0); /* no block starts here any more */
    pg->used = 0;
    seg->used_pages = 0;
    seg->held = true;
    pthread_mutex_lock(&a->cache_lock);
    hm_segment_t **slot = &a->held[a->held_next];
    hm_segment_t *out = *slot; /* the oldest leaves for the cache */
    if (out != NULL) a->held_bytes -= out->committed;
    *slot = seg;
    a->held_bytes += seg->committed;
    a->held_next = (a->held_next + 1) % HM_HELD_MAX;
    /* over the byte limit: the oldest give their memory back (their headers stay) */
    for (size_t k = 1; k < HM_HELD_MAX && a->held_bytes > held_limit(a); k++) {
        hm_segment_t *q = a->held[(a->held_next + k - 1) % HM_HELD_MAX];
        if (q != NULL && q != seg) a->held_bytes -= held_decommit(q);
    }
    /* a block larger than the limit by itself gives its memory back at once */
    if (a->held_bytes > held_limit(a)) a->held_bytes -= held_decommit(seg);
    pthread_mutex_unlock(&a->cache_lock);
    if (out != NULL) held_release(out);
}

size_t _hm_held_mapped(hm_arena_t *a) {
    size_t bytes = 0;
    pthread_mutex_lock(&a->cache_lock);
    for (size_t i = 0; i < HM_HELD_MAX; i++)
        if (a->held[i] != NULL) bytes += a->held[i]->size;
    pthread_mutex_unlock(&a->cache_lock);
    return bytes;
}

void _hm_held_flush(hm_arena_t *a) {
    hm_segment_t *out[HM_HELD_MAX];
    size_t nout = 0;
    pthread_mutex_lock(&a->cache_lock);
    for (size_t i = 0; i < HM_HELD_MAX; i++) {
        if (a->held[i] != NULL) out[nout++] = a->held[i];
        a->held[i] = NULL;
    }
    a->held_bytes = 0;
    pthread_mutex_unlock(&a->cache_lock);
    for (size_t i = 0; i < nout; i++)
        held_release(out[i]);
}

void _hm_held_clear(hm_arena_t *a) {
    for (size_t i = 0; i < HM_HELD_MAX; i++) {
        if (a->held[i] != NULL) _hm_segment_unmap(a->held[i]);
        a->held[i] = NULL;
    }
    a->held_bytes = 0;
}

void _hm_huge_free(hm_segment_t *seg) {
    huge_unlink(seg);
    /* the freed block's pages inaccessible while it waits in the cache, within the rate of
     * protections (held ring, above): a use after free faults, and the next block made in it
     * makes its own pages accessible again (huge_prepare), resident as they were */
    if (cache_keeps(seg)) /* else unmapped */
        huge_protect_from(seg, seg->pages[0].start, plain_pace(seg));
    _hm_page_set_area(&seg->pages[0], 0); /* no block starts here any more */
    seg->pages[0].used = 0;
    seg->used_pages = 0;
    cache_put(seg);
}

/* ---- invariants ------------------------------------------------------------------------------ */
bool _hm_segment_valid(const hm_segment_t *seg) {
    if (seg == NULL || ((uintptr_t)seg & HM_SEGMENT_MASK) != 0) return false;
    if (!_hm_segmap_has((uintptr_t)seg) || seg->kind == HM_SEG_HUGE) return false;
    if (seg->size != HM_SEGMENT_SIZE || seg->base != (const uint8_t *)seg || seg->heap == NULL ||
        seg->theap == NULL || seg->arena != seg->heap->arena || seg->committed > seg->size)
        return false;
    uint32_t shift = page_shift_of(seg->arena, seg->kind); /* (the arena checked first) */
    size_t n = HM_SEGMENT_SIZE >> shift;
    if (seg->page_count != n || seg->page_shift != shift) return false;
    size_t used = 0, committed = 0, free_committed = 0;
    for (size_t i = 0; i < n; i++) {
        const hm_page_t *pg = &seg->pages[i];
        if (pg->block_size != 0) {
            used++;
            if (!pg->committed || pg->capacity > pg->reserved) return false;
        } else if (pg->committed && i != 0) {
            free_committed++;
        }
        if (pg->committed) committed += i == 0 ? 0 : ((size_t)1 << shift);
    }
    /* the pages past 0 are counted as they were committed, page 0 in full (or only its header,
     * in a segment taken back decommitted from the cache until page 0 serves again) */
    return used == seg->used_pages && free_committed == seg->free_committed &&
           committed <= seg->committed && seg->committed <= committed + ((size_t)1 << shift);
}
