/* SPDX-License-Identifier: MIT */
/* mem/types.h: the types of the mem layer, shared by its files (budget, segment, page, heap,
 * alloc), and the tool annotations.
 *
 * Memory layout in one paragraph. The engine maps *segments*: 4 MiB regions at 4 MiB
 * boundaries whose header (hm_segment) sits at the start, so the header of any interior
 * pointer is found by masking. A process-wide bitmap with one bit per 4 MiB unit (the
 * segment map) says whether a unit starts a hostmalloc segment: that is how a free decides,
 * without touching the pointed-to memory, whether a pointer is ours. A standard segment is
 * cut into pages of one size (64 KiB small pages, medium pages of 128 KiB or 256 KiB by the
 * arena's limit, or 1 MiB large pages); each page serves one size class with two free lists:
 * `free`, which the owner thread allocates from and frees into, and `thread_free` (atomic), which
 * other threads push onto. A huge segment holds one block larger than the arena's page_max.
 * Segments belong to a per-thread sub-heap (hm_theap) of a heap (hm_heap); heaps belong to an arena
 * (hm_arena_t, the memory half of a manager), which holds the budget and caches empty segments. */
#ifndef HM_MEM_TYPES_H
#define HM_MEM_TYPES_H

#include "mem/budget.h"
#include "os/os.h"

/* ---- Tool annotations (docs/DEBUG.md) --------------------------------------------------------
 * HM_VALGRIND (CMake -DHM_VALGRIND=ON): memcheck client requests, so that valgrind sees blocks
 * as heap blocks (overruns, use after free, leaks). HM_ASAN_POISON (with an AddressSanitizer
 * build): freed blocks are poisoned, live ones unpoisoned to the byte. Off by default, and then
 * every macro below compiles to nothing. */
#if defined(HM_VALGRIND) && HM_VALGRIND
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#define hm_tool_alloc(p, size) _hm_tool_alloc((p), (size))
#define hm_tool_free(p)        VALGRIND_FREELIKE_BLOCK((p), 0)
#define hm_tool_access(p, n)   ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#define hm_tool_hide(p, n)     ((void)VALGRIND_MAKE_MEM_NOACCESS((p), (n)))
#define hm_tool_fresh(p, n)    ((void)VALGRIND_MAKE_MEM_UNDEFINED((p), (n)))
#define HM_TOOLS               1
void _hm_tool_alloc(void *p, size_t size); /* the block, and its slack made inaccessible */
#elif defined(HM_ASAN_POISON) && HM_ASAN_POISON
#include <sanitizer/asan_interface.h>
#define hm_tool_alloc(p, size) _hm_tool_alloc((p), (size))
#define hm_tool_free(p)        _hm_tool_asan_free(p)
#define hm_tool_access(p, n)   ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define hm_tool_hide(p, n)     ASAN_POISON_MEMORY_REGION((p), (n))
#define hm_tool_fresh(p, n)    ASAN_UNPOISON_MEMORY_REGION((p), (n))
#define HM_TOOLS               1
void _hm_tool_asan_free(void *p);          /* poisons the whole block (alloc.c) */
void _hm_tool_alloc(void *p, size_t size); /* unpoisons exactly the requested bytes */
#else
#define hm_tool_alloc(p, size) ((void)0)
#define hm_tool_free(p)        ((void)0)
#define hm_tool_access(p, n)   ((void)0)
#define hm_tool_hide(p, n)     ((void)0)
#define hm_tool_fresh(p, n)    ((void)0)
#define HM_TOOLS               0
#endif

/* ThreadSanitizer does not see memory that inline asm reads or writes: in its builds the fast
 * paths' counts (the heartbeat's, a page's) are kept in plain C, so that every access to them
 * stays checked. */
#if defined(__SANITIZE_THREAD__)
#define HM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HM_TSAN 1
#endif
#endif
#ifndef HM_TSAN
#define HM_TSAN 0
#endif

/* ---- Limits -------------------------------------------------------------------------------- */
#define HM_SEGMENT_SHIFT    22 /* 4 MiB segments */
#define HM_SEGMENT_SIZE     ((size_t)1 << HM_SEGMENT_SHIFT)
#define HM_SEGMENT_MASK     (HM_SEGMENT_SIZE - 1)
#define HM_SMALL_PAGE_SHIFT 16 /* 64 KiB */
/* Medium pages: 128 KiB in an arena whose limit is below HM_MEDIUM_BIG_LIMIT, where the budget
 * counts every page whole from the moment it is taken; 256 KiB in the others, where fewer pages
 * run full (docs/DESIGN-NOTES.md, "Medium pages"). hm_arena_t.medium_shift says which. */
#define HM_MEDIUM_PAGE_SHIFT 17                                        /* 128 KiB */
#define HM_MEDIUM_BIG_SHIFT  18                                        /* 256 KiB */
#define HM_MEDIUM_BIG_LIMIT  ((size_t)1 << 30)                         /* 1 GiB */
#define HM_SMALL_PAGES       (HM_SEGMENT_SIZE >> HM_SMALL_PAGE_SHIFT)  /* 64 */
#define HM_MEDIUM_PAGES      (HM_SEGMENT_SIZE >> HM_MEDIUM_PAGE_SHIFT) /* 32 */
#define HM_SMALL_MAX         ((size_t)8 * 1024)  /* largest block in small pages */
#define HM_MEDIUM_MAX        ((size_t)64 * 1024) /* largest block in medium pages */
/* Large pages: 1 MiB, four to a segment, for blocks of 64 KiB up to HM_LARGE_MAX, in an arena
 * whose limit is at least HM_MEDIUM_BIG_LIMIT (hm_arena_t.page_max); in the others such blocks
 * are huge, as every block above 64 KiB was before (docs/DESIGN-NOTES.md, "Large pages"). */
#define HM_LARGE_PAGE_SHIFT 20
#define HM_LARGE_MAX        ((size_t)256 * 1024) /* largest block in large pages */
#define HM_DIRECT_MAX       1024                 /* sizes served by the direct page table */
#define HM_DIRECT_COUNT     (HM_DIRECT_MAX / 16 + 1)
/* bins 1..64 (page.h, _hm_bin_of): bin 44 holds HM_SMALL_MAX, bin 56 HM_MEDIUM_MAX, bin 64
 * HM_LARGE_MAX. Plain blocks of bins 57..64 live in large pages; debug and checked blocks of
 * bin 57 (80 KiB: a block of 64 KiB with its header and canary) in medium pages (one slot to a
 * 128 KiB page, three to a 256 KiB one), and larger ones are huge */
#define HM_BIN_COUNT      65
#define HM_DEBUG_SLOT_MAX ((size_t)80 * 1024) /* largest debug or checked slot in a page */
/* A sub-heap has three sets of queues, one a page kind: plain blocks, DebugAlloc blocks (a
 * 48-byte header, debug.c) and checked-mode blocks (a 16-byte header, debug.c). A page's `bin`
 * is its queue index: its size class plus the set's offset. */
#define HM_QUEUE_DEBUG   HM_BIN_COUNT
#define HM_QUEUE_CHECKED (2 * HM_BIN_COUNT)
#define HM_QUEUE_COUNT   (3 * HM_BIN_COUNT)
#define HM_ALIGN         16 /* every block is aligned to this */
#define HM_ADDR_BITS     47 /* user space: Linux maps below 2^47 unless asked for more */
#define HM_MAX_ALLOC     ((size_t)PTRDIFF_MAX)
#define HM_TLS_WAYS      8 /* direct-mapped per-thread cache of heap -> sub-heap */

/* `level` (an EMemoryCriticalLevel, HM_LEVEL_NO_ABORT already taken off) as an index of the
 * per-level counts and budget shares: a value beyond the enum counts as process-critical. */
hm_inline int _hm_level_index(int level) {
    return (unsigned)level > eProcessCritical ? eProcessCritical : level;
}

/* Thread ids: the thread pointer (%fs:0). HM_TID_ANY marks segments of a serialized heap
 * (no MALLOC_THREADSAFE): every free there is treated as the owner's. HM_TID_NONE marks
 * segments whose owner thread exited (abandoned): every free there is remote. */
#define HM_TID_NONE ((uintptr_t)0)
#define HM_TID_ANY  ((uintptr_t)1)

hm_inline uintptr_t _hm_thread_id(void) {
    uintptr_t tid;
    __asm__("movq %%fs:0, %0" : "=r"(tid));
    return tid;
}
/* tid == _hm_thread_id(), compared in memory (one instruction on every free). */
hm_inline bool _hm_is_thread(uintptr_t tid) {
    bool eq;
    __asm__("cmpq %%fs:0, %1" : "=@cce"(eq) : "r"(tid));
    return eq;
}

/* ---- Core types ----------------------------------------------------------------------------- */
typedef struct hm_block_s {
    struct hm_block_s *next;
} hm_block_t;

/* The free mark of plain blocks (docs/DEBUG.md, "Default mode"). Word 1 of a block on a plain
 * page's free lists holds the address of its page's descriptor; every allocation of a plain
 * block clears it. A free that finds the mark set takes the slow path, which calls it a double
 * free only if the block is really on one of the page's free lists: a program cannot make a
 * legitimate free look like a double free, since no live block is on those lists. Blocks are
 * at least 16 bytes, so every block has a word 1. */
hm_inline void *_hm_mark_get(const void *b) {
    void *m;
    __builtin_memcpy(&m, (const uint8_t *)b + sizeof(void *), sizeof m);
    return m;
}
hm_inline void _hm_mark_set(void *b, const void *m) {
    __builtin_memcpy((uint8_t *)b + sizeof(void *), &m, sizeof m);
}
/* A plain block handed out: its first two words, which held the free-list link and the free
 * mark, read zero. Clearing the mark makes it live; clearing the link keeps the heap's addresses
 * from a program that reads memory it never wrote (an uninitialized read would otherwise show
 * where the next free block is). One store more than the mark alone (docs/DEBUG.md). */
hm_inline void _hm_block_clear_words(void *b) {
    __builtin_memset(b, 0, 2 * sizeof(void *));
}
/* The mark of a block that may be live with its slack hidden from the tools (realloc reads it
 * before it knows): the read is the allocator's, not the program's, so the tools look away and
 * the value counts as defined. Without tools, the plain read. */
#if defined(HM_VALGRIND) && HM_VALGRIND
hm_inline void *_hm_mark_peek(const void *b) {
    VALGRIND_DISABLE_ERROR_REPORTING;
    void *m = _hm_mark_get(b);
    VALGRIND_ENABLE_ERROR_REPORTING;
    (void)VALGRIND_MAKE_MEM_DEFINED(&m, sizeof m);
    return m;
}
#elif defined(HM_ASAN_POISON) && HM_ASAN_POISON
__attribute__((no_sanitize_address)) static inline void *_hm_mark_peek(const void *b) {
    return *(void *const *)(const void *)((const uint8_t *)b + sizeof(void *));
}
#else
#define _hm_mark_peek(b) _hm_mark_get(b)
#endif

typedef struct hm_page_s hm_page_t;
typedef struct hm_arena_s hm_arena_t;
typedef struct hm_segment_s hm_segment_t;
typedef struct hm_theap_s hm_theap_t;

/* thread_free holds a block pointer with a state in its low 2 bits and, in its top 16 bits,
 * how many blocks the list holds: each push counts itself, so that the owner takes the list
 * over without walking it (page.c, _hm_page_collect). Block addresses are below 2^47. */
#define HM_TF_NORMAL      ((uintptr_t)0) /* page is in its bin queue */
#define HM_TF_FULL        ((uintptr_t)1) /* owner moved the page out of its queue (no free block) */
#define HM_TF_NOTIFIED    ((uintptr_t)2) /* a remote free saw FULL and queued the page as pending */
#define HM_TF_MASK        ((uintptr_t)3)
#define HM_TF_COUNT_SHIFT 48
#define HM_TF_ONE         ((uintptr_t)1 << HM_TF_COUNT_SHIFT) /* one block more on the list */
#define HM_TF_LIST        ((HM_TF_ONE - 1) & ~HM_TF_MASK)     /* the list's first block */
_Static_assert(HM_ADDR_BITS <= HM_TF_COUNT_SHIFT, "block addresses fit below the count");

/* Three cache lines, by who writes them, so that one thread's writes do not take from another
 * the line it only reads (docs/DESIGN-NOTES.md, "A page descriptor in three cache lines"): the
 * first is read by every free, from any thread, and written only when the page is set up or
 * carved further; the second is the owner's (its allocations and frees write it); the third is
 * written by other threads' frees. */
struct hm_page_s {
    /* ---- line 1: read by every free (the block-start test, the page's kind) ---- */
    uint8_t *start; /* first block */
    /* bytes of the block area carved so far (capacity * block_size): it grows while other
     * threads' frees read it, hence atomic (relaxed: a plain load and store on x86-64) */
    _Atomic(size_t) area;
    /* _hm_div_magic(block_size): for |off| below 4 MiB, off is a multiple of block_size iff
     * off * div_magic < div_magic (mod 2^64), and a block start of the carved area iff
     * off * div_magic < area_key (_hm_block_check) */
    uint64_t div_magic;
    _Atomic(uint64_t) area_key; /* area * div_magic (mod 2^64), set with area */
    uint32_t block_size;        /* bytes per block; 0 when the page serves no size class */
    uint16_t capacity;          /* blocks carved into the free lists so far */
    uint16_t reserved;          /* blocks that fit in the page (at most 4096) */
    uint8_t committed;          /* the page's memory is committed (accounted) */
    uint8_t is_huge;            /* the page of a huge segment */
    uint8_t bin;                /* queue index: size class + HM_QUEUE_DEBUG / HM_QUEUE_CHECKED */
    uint8_t kind; /* HM_PAGE_*: plain, or blocks with a header (page.h, "Page kinds") */
    /* ---- line 2: the owner's ---- */
    _Alignas(64) hm_block_t *free; /* blocks to allocate from; the owner's frees go here */
    /* blocks handed out and not freed locally or collected, plus HM_USED_SLOW while the
     * owner's frees must take the slow path (a page out of its queue as full, a huge page, a
     * debug page): the free fast path tests one sign bit before it pushes; plus HM_USED_HEAD
     * while the page is the first of its queue (_hm_page_live reads the count alone) */
    uint32_t used;
    uint8_t in_full; /* out of its queue as full (owner) */
    uint16_t sample; /* checked pages: frees until the next one whose block is filled whole
                        (debug/checked.h; owner only) */
    uint32_t expire; /* when an empty committed page may be decommitted (ms, wraps) */
    hm_page_t *next; /* bin queue links (owner only) */
    hm_page_t *prev;
    /* pages of a kind that delays reuse (checked pages): the owner's frees, which `free` takes
     * over only when it runs dry, but the last one freed (page.c, delayed_take), so that a
     * freed block is handed out again after the page's other free blocks, not by the next
     * allocation (unless it is the only free block of a fully carved page; owner only) */
    hm_block_t *delayed;
    /* ---- line 3: written by other threads' frees ---- */
    _Alignas(64) _Atomic(uintptr_t) thread_free; /* other threads' frees + HM_TF_* state */
    hm_page_t *_Atomic pending_next;             /* link in the theap's pending stack */
};

/* Allocations of a level between two heartbeats of a sub-heap (mem/alloc.h, _hm_theap_pop). */
#define HM_BEAT 1024

/* page kinds (hm_page_t.kind; page.h, "Page kinds") */
#define HM_PAGE_PLAIN   0
#define HM_PAGE_DEBUG   1 /* DebugAlloc blocks (and huge checked ones): 48-byte header */
#define HM_PAGE_CHECKED 2 /* checked-mode blocks: 16-byte header */
#define HM_PAGE_ZERO    3 /* checked mode's blocks of 0 bytes: addresses in inaccessible memory */
#define HM_PAGE_KINDS   4

#define HM_USED_SLOW 0x80000000u
/* In `used` while the page is the first of its queue (the one allocation goes on from): its
 * count never reaches 0 on the free fast path, which then reports an emptied page by the
 * count's zero flag alone, without reading whether the page is the head (a page that empties
 * there stays for reuse; page.h, _hm_page_free_try) */
#define HM_USED_HEAD 0x40000000u
hm_inline size_t _hm_page_area(const hm_page_t *pg) {
    return atomic_load_explicit(&((hm_page_t *)pg)->area, memory_order_relaxed);
}
/* Set the carved area (div_magic set already): relaxed, read by other threads' frees. */
hm_inline void _hm_page_set_area(hm_page_t *pg, size_t area) {
    atomic_store_explicit(&pg->area, area, memory_order_relaxed);
    atomic_store_explicit(&pg->area_key, (uint64_t)area * pg->div_magic, memory_order_relaxed);
}
/* The multiplier of a page of blocks of `size` bytes (16 <= size < 2^32): floor(2^64 / size)
 * + 1, so that size * magic = 2^64 + e with 0 < e <= size. A multiple k * size then maps to
 * k * e (small, growing with k) and any other offset below 4 MiB to at least magic (above
 * 2^32): one product tells a block start of the first `area` bytes from anything else
 * (docs/DESIGN-NOTES.md, "The block-start test"). */
hm_inline uint64_t _hm_div_magic(size_t size) {
    return UINT64_MAX / size + 1 + ((size & (size - 1)) == 0 ? 1 : 0);
}
/* Is `off` (p - start; a pointer of the page's segment) the start of a carved block? */
hm_inline bool _hm_block_check(const hm_page_t *pg, size_t off) {
    return off * pg->div_magic <
           atomic_load_explicit(&((hm_page_t *)pg)->area_key, memory_order_relaxed);
}
hm_inline bool _hm_page_in_full(const hm_page_t *pg) {
    return pg->in_full != 0;
}
hm_inline uint32_t _hm_page_live(const hm_page_t *pg) {
    return pg->used & ~(HM_USED_SLOW | HM_USED_HEAD);
}
hm_inline bool _hm_page_is_head(const hm_page_t *pg) {
    return (pg->used & HM_USED_HEAD) != 0;
}

typedef enum hm_segment_kind_e {
    HM_SEG_SMALL = 0,
    HM_SEG_MEDIUM = 1,
    HM_SEG_LARGE = 2,
    HM_SEG_STANDARD = 3, /* (the kinds above: standard segments, listed in th->segs) */
    HM_SEG_HUGE = 3,
    HM_SEG_SEALED = 4, /* blocks that are no memory (segment.h, _hm_segment_sealed_new) */
} hm_segment_kind_t;

struct hm_segment_s {
    _Atomic(uintptr_t) tid; /* owner thread (HM_TID_*); read by every free */
    uint32_t page_shift;    /* log2 of the page size (HM_SEGMENT_SHIFT for huge) */
    uint32_t kind;          /* hm_segment_kind_t */
    hm_heap *heap;          /* the heap of this segment (constant while it is in use) */
    hm_theap_t *theap;      /* the sub-heap owning it (constant while it is in use) */
    hm_arena_t *arena;      /* the arena that accounts and caches it */
    uint8_t *base;          /* start of the mapping (== this, but for aligned huge blocks) */
    size_t size;            /* bytes mapped from `base`: whole 4 MiB units, so no foreign
                               mapping can share a unit with a segment */
    size_t huge_size;       /* huge: usable bytes of the block (page multiple) */
    size_t page_count;      /* pages in the segment */
    size_t used_pages;      /* pages serving a size class */
    size_t free_committed;  /* pages past 0 serving no class and still committed */
    size_t committed;       /* committed bytes counted for this segment */
    uint8_t *prot_none;     /* huge: from here to the end of the mapping, PROT_NONE (a guard
                               page after the block, or the block of a held segment); NULL:
                               none. Made accessible again when the block needs it (segment.c) */
    bool exec;              /* executable mapping */
    bool aligned_huge;      /* huge block at the next 4 MiB unit (alignment >= 4 MiB) */
    bool held;              /* a freed huge block held back, so a second free is known */
    bool zero;              /* huge: made in a new mapping, not yet claimed by calloc (read
                               only right after the allocation: _hm_block_take_zero) */
    hm_segment_t *next;     /* in the theap's segment list / the heap's huge list */
    hm_segment_t *prev;
    /* the page of each 64 KiB of the segment's first 4 MiB: a free finds its page with one
     * load, whatever the page size (a huge segment's entries all name its one page) */
    hm_page_t *page_of[HM_SEGMENT_SIZE >> HM_SMALL_PAGE_SHIFT];
    hm_page_t pages[]; /* page_count entries */
};

/* A queue of pages of one size class; `first` is the page being allocated from. */
typedef struct hm_page_queue_s {
    hm_page_t *first;
    hm_page_t *last;
} hm_page_queue_t;

/* A per-thread sub-heap of a heap. Type-stable memory (never unmapped), so a stale pointer
 * to one can be read safely; its `heap_id` says whether it is still what it was. */
struct hm_theap_s {
    hm_page_t *direct[HM_DIRECT_COUNT];     /* size/16 -> page to allocate from (fast path) */
    hm_page_t *cdirect[HM_DIRECT_COUNT];    /* slot/16 -> checked page (checked fast path) */
    hm_page_queue_t queues[HM_QUEUE_COUNT]; /* plain, debug and checked bins */
    hm_heap *heap;
    uint64_t heap_id;
    uintptr_t tid;                            /* owner thread, HM_TID_NONE when abandoned */
    hm_page_t *_Atomic pending;               /* full pages that received remote frees */
    hm_segment_t *segs[HM_SEG_STANDARD];      /* small, medium and large segments owned; those
                                                 with a free page first, full ones last */
    hm_segment_t *segs_last[HM_SEG_STANDARD]; /* the last of each list (segment.h) */
    uint64_t slow_calls;                      /* generic-path calls, to pace purging */
    uint32_t next_purge_ms;
    size_t free_committed_pages; /* empty pages still committed (purge candidates) */
    uint32_t collect_epoch;      /* the manager's epoch this sub-heap last collected for */
    size_t requests[4];          /* allocations by level (owner only; index 3 unused) */
    /* allocations of each level the fast paths count down to the next heartbeat; `requests`
     * holds the rest (_hm_theap_requests). Owner only. */
    size_t req_left[4];
    size_t failures[3];   /* allocations refused by level (owner only) */
    uint64_t checked_who; /* the last checked block's first header word: its number
                             (low half) and the owner's kernel thread id (high half) */
    bool refused;         /* the budget refused a commit (segment.c; the reclaim loop) */
    hm_theap_t *next;     /* in the heap's list of sub-heaps */
    hm_theap_t *prev;
    bool abandoned;
};
/* Allocations of sub-heap `th` at level `l` so far (the owner's count; another thread reading
 * it gets a recent value, off by up to HM_BEAT while the owner moves the count at a beat). */
hm_inline size_t _hm_theap_requests(const hm_theap_t *th, int l) {
    return th->requests[l] + (HM_BEAT - th->req_left[l]);
}

#define HM_HEAP_ID_DEAD UINT64_MAX /* id of a released heap: matches no cache entry */

struct hm_heap {
    _Atomic(uint64_t) id; /* unique, never reused; HM_HEAP_ID_DEAD once released */
    /* where the calling thread's cache entry for this heap is, as an offset from the thread
     * pointer (heap.h, _hm_tls_entry): the same in every thread */
    uintptr_t tls_off;
    unsigned flags;          /* HM_HEAP_* */
    bool checked;            /* every block is a debug block (hm_config.checked) */
    _Atomic(bool) had_debug; /* a DebugAlloc block was made: a leak report has work to do */
    hm_arena_t *arena;
    pthread_mutex_t lock; /* guards the lists below (slow paths only) */
    hm_theap_t *theaps;   /* every sub-heap, live or abandoned */
    hm_segment_t *huge;   /* huge segments */
    size_t huge_count;
    /* the heap's sealed segment (segment.c; checked mode's blocks of 0 bytes), made on first
     * use and unmapped with the heap */
    hm_segment_t *_Atomic sealed;
    hm_theap_t *single;        /* the one sub-heap of a serialized heap */
    _Atomic(size_t) committed; /* bytes committed for this heap */
    _Atomic(size_t) peak_committed;
    hm_heap *next_free;  /* in the pool of released heap structs */
    hm_heap *arena_next; /* in the arena's list of heaps (arena->heaps_lock) */
    hm_heap *arena_prev;
};

#define HM_CACHE_MAX_ENTRIES 512 /* entries of the segment cache (segment.c) */

/* An entry of the segment cache: what the cache's walks and its best fit read, kept in one
 * array (segment.c, "the cache"), so that they read no segment header. */
typedef struct hm_cache_ent_s {
    hm_segment_t *seg;
    size_t size;      /* seg->size: bytes mapped */
    size_t committed; /* seg->committed */
    uint32_t expire;  /* when to decommit it (ms, wraps) */
    uint8_t kind;     /* seg->kind (hm_segment_kind_t) */
    bool exec;        /* seg->exec */
    bool cold;        /* decommitted to its header: nothing left to decommit */
} hm_cache_ent_t;
#define HM_HELD_MAX     16 /* freed huge blocks held back (segment.c) */
#define HM_PACE_CREDITS 2  /* credits of resident bytes for protections (segment.c) */

/* The memory of one manager: its configuration, its budget, its heaps and the segments it
 * keeps for reuse. The manager layer embeds it (hm_manager starts with one). */
typedef struct hm_arena_s {
    hm_config cfg; /* read-only once the arena is made */
    hm_budget_t budget;
    _Atomic(uint32_t) collect_epoch;     /* bumped under pressure: every thread collects once */
    _Atomic(size_t) retired_requests[3]; /* requests of heaps already released */
    uint32_t medium_shift; /* medium pages' shift: by the limit the arena was made with */
    size_t page_max; /* the largest block in pages (HM_LARGE_MAX or HM_MEDIUM_MAX), by it too */
    /* ---- heaps (heap.c) ---- */
    pthread_mutex_t heaps_lock;
    hm_heap *heaps;
    size_t heap_count;
    /* ---- segment cache (segment.c) ---- */
    pthread_mutex_t cache_lock; /* guards the cache and the held ring */
    /* empty segments kept for reuse: cache_count entries, the oldest first, in an array of
     * HM_CACHE_MAX_ENTRIES + 1 mapped when the first is put (NULL before) */
    hm_cache_ent_t *cache;
    _Atomic(size_t) cache_count; /* entries; read without the lock as a hint */
    size_t cache_bytes;          /* mapped bytes in the cache */
    size_t cache_committed;      /* committed bytes of the segments in the cache */
    uint32_t cache_next_ms;      /* when the cache is next walked for expired entries */
    uint32_t cache_took_ms;      /* when a huge block was last made from the cache */
    /* ---- freed huge blocks held back (segment.c), guarded by cache_lock ---- */
    hm_segment_t *held[HM_HELD_MAX];
    size_t held_next;
    size_t held_bytes; /* committed bytes of the segments in it */
    /* protections made in the current window, and the credits of resident bytes they may take
     * away (a default-mode heap's plain blocks; debugging's blocks), each with when it was last
     * filled (segment.c, protect_allowed) */
    _Atomic(uint32_t) protect_since_ms;
    _Atomic(uint32_t) protect_count;
    _Atomic(uint32_t) protect_credit_ms[HM_PACE_CREDITS];
    _Atomic(size_t) protect_credit[HM_PACE_CREDITS];
    /* ---- what the engine gave back to the OS (madvise calls and their bytes) ---- */
    _Atomic(size_t) purge_calls;
    _Atomic(size_t) purge_bytes;
} hm_arena_t;

/* Memory is short (Low) or the delay is 0: what is emptied is decommitted at once. */
hm_inline bool _hm_arena_purge_now(const hm_arena_t *a) {
    return a->cfg.purge_delay_ms == 0 || _hm_budget_pressure(&a->budget) == eMemoryAvailableLow;
}

/* Count `bytes` as committed for `heap` (its peak too). */
hm_inline void _hm_heap_count(hm_heap *heap, size_t bytes) {
    size_t now = atomic_fetch_add_explicit(&heap->committed, bytes, memory_order_relaxed) + bytes;
    size_t peak = atomic_load_explicit(&heap->peak_committed, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&heap->peak_committed, &peak, now,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}
hm_inline void _hm_heap_uncount(hm_heap *heap, size_t bytes) {
    atomic_fetch_sub_explicit(&heap->committed, bytes, memory_order_relaxed);
}

#endif /* HM_MEM_TYPES_H */
