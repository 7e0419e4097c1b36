/* SPDX-License-Identifier: MIT */
/* internal.h: private types of hostmalloc and the prototypes shared between its files,
 * grouped by the file that defines them.
 *
 * Memory layout in one paragraph. The engine maps *segments*: 4 MiB regions at 4 MiB
 * boundaries whose header (hm_segment) sits at the start, so the header of any interior
 * pointer is found by masking. A process-wide bitmap with one bit per 4 MiB unit (the
 * segment map) says whether a unit starts a hostmalloc segment: that is how a free decides,
 * without touching the pointed-to memory, whether a pointer is ours. A standard segment is
 * cut into pages of one size (64 KiB small pages or 128 KiB medium pages); each page serves
 * one size class with two free lists: `free`, which the owner thread allocates from and frees
 * into, and `thread_free` (atomic), which other threads push onto.
 * A huge segment holds one block larger than the medium limit. Segments belong to a
 * per-thread sub-heap (hm_theap) of a heap (hm_heap); heaps belong to a manager
 * (hm_manager), which accounts committed bytes and caches empty segments. */
#ifndef HM_INTERNAL_H
#define HM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <emmintrin.h> /* SSE2: the checked fill (x86-64 baseline) */

#include "hostmalloc/hostmalloc.h"

/* ---- Build options ----------------------------------------------------------------------- */
/* HM_DEBUG: 0 no internal assertions (release), 1 cheap ones, 2 expensive ones too. */
#ifndef HM_DEBUG
#define HM_DEBUG 0
#endif

#define hm_likely(x)   __builtin_expect(!!(x), 1)
#define hm_unlikely(x) __builtin_expect(!!(x), 0)
#define hm_noinline    __attribute__((noinline))
#define hm_cold        __attribute__((cold, noinline))
#define hm_inline      static inline __attribute__((always_inline))

#if HM_DEBUG > 0
#define hm_assert(c) ((c) ? (void)0 : _hm_assert_fail(#c, __FILE__, __LINE__))
#else
#define hm_assert(c) ((void)0)
#endif

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

/* ---- Limits -------------------------------------------------------------------------------- */
#define HM_SEGMENT_SHIFT     22 /* 4 MiB segments */
#define HM_SEGMENT_SIZE      ((size_t)1 << HM_SEGMENT_SHIFT)
#define HM_SEGMENT_MASK      (HM_SEGMENT_SIZE - 1)
#define HM_SMALL_PAGE_SHIFT  16                                        /* 64 KiB */
#define HM_MEDIUM_PAGE_SHIFT 17                                        /* 128 KiB */
#define HM_SMALL_PAGES       (HM_SEGMENT_SIZE >> HM_SMALL_PAGE_SHIFT)  /* 64 */
#define HM_MEDIUM_PAGES      (HM_SEGMENT_SIZE >> HM_MEDIUM_PAGE_SHIFT) /* 32 */
#define HM_SMALL_MAX         ((size_t)8 * 1024)  /* largest block in small pages */
#define HM_MEDIUM_MAX        ((size_t)64 * 1024) /* largest block in medium pages */
#define HM_DIRECT_MAX        1024                /* sizes served by the direct page table */
#define HM_DIRECT_COUNT      (HM_DIRECT_MAX / 16 + 1)
/* bins 1..81: bin 80 holds HM_MEDIUM_MAX; bin 81 (72 KiB, one block to a medium page) serves
 * only debug and checked blocks, whose header and canary take a block of 64 KiB past it */
#define HM_BIN_COUNT      82
#define HM_DEBUG_SLOT_MAX ((size_t)72 * 1024) /* largest debug or checked slot in a page */
/* A sub-heap has three sets of queues, one a page kind: plain blocks, DebugAlloc blocks (a
 * 48-byte header, debug.c) and checked-mode blocks (a 16-byte header, debug.c). A page's `bin`
 * is its queue index: its size class plus the set's offset. */
#define HM_QUEUE_DEBUG   HM_BIN_COUNT
#define HM_QUEUE_CHECKED (2 * HM_BIN_COUNT)
#define HM_QUEUE_COUNT   (3 * HM_BIN_COUNT)
#define HM_ALIGN         16 /* every block is aligned to this */
#define HM_OS_PAGE       4096
#define HM_ADDR_BITS     48 /* user space addresses we map below 2^48 */
#define HM_MAX_ALLOC     ((size_t)PTRDIFF_MAX)
#define HM_TLS_WAYS      8 /* direct-mapped per-thread cache of heap -> sub-heap */

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
typedef struct hm_segment_s hm_segment_t;
typedef struct hm_theap_s hm_theap_t;

/* thread_free holds a block pointer with a state in its low 2 bits. */
#define HM_TF_NORMAL   ((uintptr_t)0) /* page is in its bin queue */
#define HM_TF_FULL     ((uintptr_t)1) /* owner moved the page out of its queue (no free block) */
#define HM_TF_NOTIFIED ((uintptr_t)2) /* a remote free saw FULL and queued the page as pending */
#define HM_TF_MASK     ((uintptr_t)3)

struct hm_page_s {
    /* hot: read by alloc and free fast paths */
    hm_block_t *free; /* blocks to allocate from; the owner's frees go here (owner only) */
    /* blocks handed out and not freed locally or collected, plus HM_USED_SLOW while the
     * owner's frees must take the slow path (a page out of its queue as full, a huge page, a
     * debug page): the free fast path tests one sign bit before it pushes */
    uint32_t used;
    uint32_t block_size; /* bytes per block; 0 when the page serves no size class */
    uint8_t *start;      /* first block */
    /* bytes of the block area carved so far (capacity * block_size): it grows while other
     * threads' frees read it, hence atomic (relaxed: a plain load and store on x86-64) */
    _Atomic(size_t) area;
    uint64_t div_magic; /* UINT64_MAX / block_size + 1: off % size == 0 iff off*magic < magic */
    /* warm */
    uint8_t committed; /* the page's memory is committed (accounted) */
    uint8_t is_huge;   /* the page of a huge segment */
    uint8_t bin;       /* queue index: size class + HM_QUEUE_DEBUG / HM_QUEUE_CHECKED */
    uint8_t in_full;   /* out of its queue as full (owner) */
    uint8_t is_debug;  /* HM_PAGE_*: blocks carry a header and canaries (debug.c) */
    uint8_t is_head;   /* first of its queue: the page allocation goes on from (owner) */
    uint8_t pad_[2];
    uint16_t capacity; /* blocks carved into the free lists so far */
    uint16_t reserved; /* blocks that fit in the page (at most 4096) */
    uint32_t expire;   /* when an empty committed page may be decommitted (ms, wraps) */
    _Atomic(uintptr_t) thread_free; /* other threads' frees + HM_TF_* state */
    hm_page_t *next;                /* bin queue links (owner only) */
    hm_page_t *prev;
    hm_page_t *_Atomic pending_next; /* link in the theap's pending stack */
};

/* page kinds (is_debug) */
#define HM_PAGE_PLAIN   0
#define HM_PAGE_DEBUG   1 /* DebugAlloc blocks (and huge checked ones): 48-byte header */
#define HM_PAGE_CHECKED 2 /* checked-mode blocks: 16-byte header */

#define HM_USED_SLOW 0x80000000u
hm_inline size_t _hm_page_area(const hm_page_t *pg) {
    return atomic_load_explicit(&((hm_page_t *)pg)->area, memory_order_relaxed);
}
hm_inline void _hm_page_set_area(hm_page_t *pg, size_t area) {
    atomic_store_explicit(&pg->area, area, memory_order_relaxed);
}
hm_inline bool _hm_page_in_full(const hm_page_t *pg) {
    return pg->in_full != 0;
}
hm_inline uint32_t _hm_page_live(const hm_page_t *pg) {
    return pg->used & ~HM_USED_SLOW;
}
/* wrap-safe "now is at or past t" for 32-bit millisecond stamps */
hm_inline bool _hm_time_reached(uint32_t now, uint32_t t) {
    return (int32_t)(now - t) >= 0;
}

typedef enum hm_segment_kind_e {
    HM_SEG_SMALL = 0,
    HM_SEG_MEDIUM = 1,
    HM_SEG_HUGE = 2,
} hm_segment_kind_t;

struct hm_segment_s {
    _Atomic(uintptr_t) tid; /* owner thread (HM_TID_*); read by every free */
    uint32_t page_shift;    /* log2 of the page size (HM_SEGMENT_SHIFT for huge) */
    uint32_t kind;          /* hm_segment_kind_t */
    hm_heap *heap;          /* the heap of this segment (constant while it is in use) */
    hm_theap_t *theap;      /* the sub-heap owning it (constant while it is in use) */
    hm_manager *mgr;        /* the manager that accounts and caches it */
    uint8_t *base;          /* start of the mapping (== this, but for aligned huge blocks) */
    size_t size;            /* bytes mapped from `base`: whole 4 MiB units, so no foreign
                               mapping can share a unit with a segment */
    size_t huge_size;       /* huge: usable bytes of the block (page multiple) */
    size_t page_count;      /* pages in the segment */
    size_t used_pages;      /* pages serving a size class */
    size_t committed;       /* committed bytes counted for this segment */
    bool exec;              /* executable mapping */
    bool aligned_huge;      /* huge block at the next 4 MiB unit (alignment >= 4 MiB) */
    bool quarantined;       /* a freed huge debug block, kept mapped so a second free is known */
    uint32_t expire;        /* when cached: time to decommit (ms, wraps) */
    hm_segment_t *next;     /* in the theap's segment list / the heap's huge list / cache */
    hm_segment_t *prev;
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
    uintptr_t tid;              /* owner thread, HM_TID_NONE when abandoned */
    hm_page_t *_Atomic pending; /* full pages that received remote frees */
    hm_segment_t *segs[2];      /* small and medium segments owned; those with a free
                                   page first, full ones last */
    uint64_t slow_calls;        /* generic-path calls, to pace purging */
    uint32_t next_purge_ms;
    size_t free_committed_pages; /* empty pages still committed (purge candidates) */
    uint32_t collect_epoch;      /* the manager's epoch this sub-heap last collected for */
    size_t requests[4];          /* allocations by level (owner only; index 3 unused) */
    size_t failures[3];          /* allocations refused by level (owner only) */
    uint64_t checked_who;        /* the last checked block's first header word: its number
                                    (low half) and the owner's kernel thread id (high half) */
    hm_theap_t *next;            /* in the heap's list of sub-heaps */
    hm_theap_t *prev;
    bool abandoned;
};

#define HM_HEAP_ID_DEAD UINT64_MAX /* id of a released heap: matches no cache entry */

struct hm_heap {
    _Atomic(uint64_t) id;    /* unique, never reused; HM_HEAP_ID_DEAD once released */
    unsigned flags;          /* HM_HEAP_* */
    bool checked;            /* every block is a debug block (hm_config.checked) */
    _Atomic(bool) had_debug; /* a DebugAlloc block was made: a leak report has work to do */
    hm_manager *mgr;
    pthread_mutex_t lock; /* guards the lists below (slow paths only) */
    hm_theap_t *theaps;   /* every sub-heap, live or abandoned */
    hm_segment_t *huge;   /* huge segments */
    size_t huge_count;
    hm_theap_t *single;        /* the one sub-heap of a serialized heap */
    _Atomic(size_t) committed; /* bytes committed for this heap */
    _Atomic(size_t) peak_committed;
    hm_heap *next_free; /* in the pool of released heap structs */
    hm_heap *mgr_next;  /* in the manager's list of heaps (mgr->heaps_lock) */
    hm_heap *mgr_prev;
};

#define HM_CACHE_MAX_ENTRIES 512 /* entries of the segment cache (segment.c) */
#define HM_QUARANTINE_MAX    16  /* freed huge debug blocks kept back (segment.c) */

typedef struct hm_vmem_s hm_vmem_t; /* vmem.c */

struct hm_manager {
    _Atomic(uint32_t) refs;
    bool is_default;
    bool faults_on; /* some fault injection is configured */
    hm_config cfg;
    /* ---- budget (budget.c) ---- */
    size_t limit;      /* the limit in force */
    size_t ceiling[3]; /* per level: what committed may reach */
    size_t low_bytes, neutral_bytes, high_bytes, high_exit_bytes; /* pressure thresholds */
    _Atomic(size_t) committed; /* bytes committed by all heaps, the cache and vmem */
    _Atomic(size_t) peak_committed;
    pthread_mutex_t wait_lock; /* process-critical requests wait here for memory */
    pthread_cond_t wait_cond;
    _Atomic(int) waiters;
    _Atomic(uint32_t) collect_epoch; /* bumped under pressure: every thread collects once */
    /* ---- pressure notifications (budget.c) ---- */
    _Atomic(int) pressure;       /* the state committed is in now (EMemoryAvailable) */
    pthread_mutex_t notify_lock; /* guards the fields below; never held during a call */
    pthread_cond_t notify_cond;  /* wakes the notifier thread */
    pthread_cond_t idle_cond;    /* the notifier finished a call */
    pthread_t notifier;
    bool notifier_started, notifier_stop, in_call;
    bool destroy_on_exit; /* released from inside a call: the notifier frees it */
    hm_notify_fn notify_fn;
    void *notify_arg;
    struct {
        hm_notify_fn fn;
        void *arg;
    } listeners[HM_MAX_LISTENERS]; /* hm_manager_add_listener; fn NULL: a free slot */
    unsigned listener_count;
    int pending; /* state to report (0: none) */
    int sent;    /* state last reported (0: none yet) */
    uint32_t last_sent_ms;
    /* ---- fault injection (budget.c) ---- */
    _Atomic(uint64_t) fault_count[3];
    _Atomic(uint64_t) fault_rng;
    /* ---- statistics ---- */
    _Atomic(size_t) failures[3];
    _Atomic(size_t) faults_injected[3];
    _Atomic(size_t) notifications[4];
    _Atomic(size_t) retired_requests[3]; /* requests of heaps already released */
    _Atomic(size_t) vm_requests[3];
    _Atomic(size_t) runtime_mapped;
    _Atomic(size_t) purge_calls; /* decommit calls the engine made (madvise), and their bytes */
    _Atomic(size_t) purge_bytes;
    pthread_mutex_t mapped_lock; /* guards the table of runtime mappings */
    struct {
        uintptr_t start;
        size_t size;
    } mapped[64]; /* what note_acquired saw, for note_released */
    /* ---- heaps (heap.c) ---- */
    pthread_mutex_t heaps_lock;
    hm_heap *heaps;
    size_t heap_count;
    /* ---- segment cache (segment.c) ---- */
    pthread_mutex_t cache_lock;  /* guards the segment cache */
    hm_segment_t *cache;         /* empty segments kept for reuse, newest first */
    _Atomic(size_t) cache_count; /* entries; read without the lock as a hint */
    size_t cache_bytes;          /* mapped bytes in the cache */
    size_t cache_committed;      /* committed bytes of the segments in the cache */
    uint32_t cache_next_ms;      /* when the cache is next walked for expired entries */
    /* ---- virtual memory regions (vmem.c) ---- */
    hm_vmem_t *vmem;
    /* ---- freed huge debug blocks kept back (debug.c), guarded by cache_lock ---- */
    hm_segment_t *quarantine[HM_QUARANTINE_MAX];
    size_t quarantine_next;
    size_t quarantine_bytes; /* committed bytes of the segments in it */
};

/* ---- prim/prim_linux.c: the OS ----------------------------------------------------------- */
/* Map `size` bytes (multiple of HM_OS_PAGE) aligned to `align` (power of two, >= page).
 * Returns NULL on failure (errno untouched by contract of callers). */
void *_hm_prim_map_aligned(size_t size, size_t align, bool exec);
void _hm_prim_unmap(void *p, size_t size);
/* Give the physical pages back; contents read as zero afterwards. */
void _hm_prim_decommit(void *p, size_t size);
uint32_t _hm_prim_clock_ms(void); /* monotonic, wraps after 49 days */
/* The cgroup memory limit in force (v2 or v1), or physical memory when there is none. */
size_t _hm_prim_memory_limit(void);
/* Make [p, p + size) of a mapping readable and writable (no fault injection: the engine's own
 * metadata). 0 or -1. */
int _hm_prim_make_writable(void *p, size_t size);
/* mmap with an exact address (MAP_FIXED_NOREPLACE); NULL if taken or refused. */
void *_hm_prim_map_at(void *addr, size_t size, int prot);
int _hm_prim_protect(void *p, size_t size, int prot);
/* getenv without allocation; NULL if unset. */
const char *_hm_prim_getenv(const char *name);
/* Write all of `len` bytes to fd 2, ignoring errors. */
void _hm_prim_write_stderr(const char *msg, size_t len);
/* Append to a regular file (created 0600 if missing). A symbolic link, FIFO, device or
 * directory, a file with more than one hard link, or a file that cannot be opened, gets one
 * `hostmalloc: ` line on stderr and is not written; the open never blocks. True when all of
 * `msg` was written. */
bool _hm_prim_write_path(const char *path, const char *msg, size_t len);
/* The program's short name (program_invocation_short_name, else /proc/self/comm). */
void _hm_prim_program_name(char *buf, size_t cap);
/* Type-stable metadata memory: zeroed, never returned to the OS. */
void *_hm_meta_alloc(size_t size);
void _hm_meta_free(void *p, size_t size);
/* fork: 0 before (lock), 1 after (unlock) */
void _hm_meta_fork(int phase);

/* ---- options.c ----------------------------------------------------------------------------- */
/* Parse "123", "64K", "512M", "2G" into *out. False on a malformed value. */
bool _hm_parse_size(const char *s, size_t *out);
/* Fatal error: writes "hostmalloc: <msg> <ptr>\n" with write(2) and aborts. */
__attribute__((noreturn)) void _hm_fatal(const char *msg, const void *ptr);
__attribute__((noreturn)) void _hm_assert_fail(const char *cond, const char *file, int line);
/* Format into buf (no allocation): %s, %zu, %u, %p, %d, and %H: a size_t in B, KiB, MiB,
 * GiB... with one decimal ("1.5 KiB"). In a setuid or setgid program %p writes "(address
 * hidden)". Returns the length (truncated to cap - 1; 0 when cap is 0). */
size_t _hm_snprintf(char *buf, size_t cap, const char *fmt, ...);
/* "pid 1234 (gcc)": the header of every report. No allocation. */
size_t _hm_report_who(char *buf, size_t cap);
/* A setuid or setgid program (AT_SECURE): its environment is not trusted. */
bool _hm_secure(void);
/* HM_VERBOSE: the effective configuration of a manager, one line an option, on stderr. */
void _hm_config_print(const hm_config *cfg, size_t limit, const void *mgr, bool is_default);
/* One `hostmalloc: ` line on stderr for each inconsistent threshold or reserve. */
void _hm_config_check(const hm_config *cfg, size_t limit);

/* ---- segment.c ------------------------------------------------------------------------------ */
size_t _hm_huge_usable(const hm_segment_t *seg);
size_t _hm_segment_header_size(size_t page_count);
#define HM_MAP_WORDS (((size_t)1 << (HM_ADDR_BITS - HM_SEGMENT_SHIFT)) / 64)
/* The segment map (segment.c): HM_MAP_WORDS words, one bit per 4 MiB unit, in a read-only
 * mapping reserved when the first segment is made (not in .bss: 8 MiB of address space, 24
 * with the two other maps, that neither VSZ nor strict overcommit should pay for in a process
 * that never allocates). `_hm_segmap_words` is 0 until then, so every pointer reads as foreign;
 * both variables are written once, the base first, and never change after. Two variables, not
 * a struct: each is then one RIP-relative operand, and the check costs what a .bss array did
 * (a compare with a memory operand instead of an immediate, a load of the base instead of the
 * computation of its address; callgrind counts the same instructions a pair). The length is
 * read with acquire, paired with its release store: a thread that sees the length set sees the
 * base (on x86-64 the acquire load is a plain `mov`, but the compare can no longer take the
 * length as a memory operand: one instruction more a pair, docs/BENCHMARKS.md). */
extern __attribute__((visibility("hidden"))) _Atomic(uint64_t) *_hm_segmap_base;
extern __attribute__((visibility("hidden"))) size_t _hm_segmap_words;
/* Is there a segment header at the 4 MiB unit of `p`? Any address, even a wild one. */
hm_inline bool _hm_segmap_has(uintptr_t p) {
    uintptr_t word = p >> (HM_SEGMENT_SHIFT + 6);
    if (hm_unlikely(word >= __atomic_load_n(&_hm_segmap_words, __ATOMIC_ACQUIRE))) return false;
    uint64_t w = atomic_load_explicit(&_hm_segmap_base[word], memory_order_relaxed);
    return (w >> ((p >> HM_SEGMENT_SHIFT) & 63)) & 1;
}
/* Inside a huge mapping, but not at a unit where a block may start. */
bool _hm_unit_covered(uintptr_t unit);
/* The segment whose huge block starts at the 4 MiB unit `unit` (alignment >= 4 MiB), or NULL. */
hm_segment_t *_hm_aligned_huge_at(uintptr_t unit);
/* A standard segment of `kind` for `th` from the manager cache or the OS; NULL on failure. */
hm_segment_t *_hm_segment_alloc(hm_theap_t *th, hm_segment_kind_t kind, int level);
/* Give an empty standard segment back to its manager (cache or OS). Owner only. */
void _hm_segment_free(hm_segment_t *seg);
/* A huge segment holding one block of `size` bytes aligned to `align`; NULL on failure. */
hm_segment_t *_hm_huge_alloc(hm_theap_t *th, size_t size, size_t align, int level);
void _hm_huge_free(hm_segment_t *seg);
/* Unmap a segment at heap release (no cache for its pages' state; accounting undone). */
void _hm_segment_release(hm_segment_t *seg);
/* Trim the manager's cache: decommit expired entries; `force`: everything now. */
void _hm_cache_purge(hm_manager *mgr, bool force);
void _hm_cache_clear(hm_manager *mgr);
/* Decommit a range of a segment and undo its accounting. */
void _hm_segment_decommit(hm_segment_t *seg, uint8_t *p, size_t size);

/* ---- page.c --------------------------------------------------------------------------------- */
size_t _hm_bin_of(size_t size);
/* Allocate a block from queue `qbin` (a bin; + HM_BIN_COUNT for debug pages). Slow path. */
void *_hm_page_alloc_queue(hm_theap_t *th, size_t qbin, int level);
size_t _hm_bin_size(size_t bin);
/* Move other threads' frees into page->free. */
void _hm_page_collect(hm_page_t *page);
/* Allocate `size` (<= HM_MEDIUM_MAX) from the theap's queues, or a new page. Slow path. */
void *_hm_page_alloc_generic(hm_theap_t *th, size_t size, int level);
/* A local free found the page full (or huge): requeue it, retire it, or free the huge block. */
hm_result _hm_page_free_slow(hm_page_t *page, hm_segment_t *seg, hm_block_t *b);
/* A local free of a plain block that carries the free mark: a double free (reported; nothing
 * changes) if the block is on one of the page's free lists, else a normal free. */
hm_result _hm_page_free_marked(hm_page_t *page, hm_segment_t *seg, hm_block_t *b);
/* Is `b` on the free list of plain page `pg` or on its list of other threads' frees? Owner
 * only. Every link is validated before it is followed, and the walk is bounded. */
bool _hm_page_block_is_free(const hm_page_t *pg, const hm_block_t *b);
/* Report a double free of `p` (a block of `seg`, `size` usable bytes) to the error sink. */
void _hm_report_double_free(const hm_segment_t *seg, const void *p, size_t size);
/* A local free left a page that is not the head of its queue empty: retire it. */
hm_result _hm_page_emptied(hm_page_t *page, hm_segment_t *seg);
/* The page containing p (p inside seg). */
hm_inline hm_page_t *_hm_page_of(hm_segment_t *seg, const void *p) {
    return &seg->pages[((uintptr_t)p - (uintptr_t)seg) >> seg->page_shift];
}
/* Process the theap's pending list (full pages that got remote frees). */
void _hm_theap_process_pending(hm_theap_t *th);
/* Collect every page of `th`; retire empty ones; purge expired (or all, when force). */
void _hm_theap_collect(hm_theap_t *th, bool force);
/* The same with the two halves of `force` apart: retire every empty page (not only those
 * that are not the last of their size class); decommit every retired page (not only those
 * whose delay has passed). */
void _hm_theap_collect_ex(hm_theap_t *th, bool retire_all, bool purge_all);
/* Push a remote free (any thread). */
hm_result _hm_page_free_remote(hm_page_t *page, hm_segment_t *seg, hm_block_t *b);
void _hm_direct_update(hm_theap_t *th, size_t bin);
void _hm_theap_purge(hm_theap_t *th, uint32_t now, bool force);

/* ---- heap.c --------------------------------------------------------------------------------- */
/* The calling thread's sub-heap of `heap`, created or adopted on first use; NULL on OOM. */
hm_theap_t *_hm_theap_get_slow(hm_heap *heap);
typedef struct hm_tls_entry_s {
    uint64_t id;
    hm_theap_t *th;
} hm_tls_entry_t;
extern __thread hm_tls_entry_t _hm_tls_cache[HM_TLS_WAYS];
hm_inline hm_theap_t *_hm_theap_get(hm_heap *heap) {
    uint64_t id = atomic_load_explicit(&heap->id, memory_order_relaxed);
    hm_tls_entry_t *e = &_hm_tls_cache[id & (HM_TLS_WAYS - 1)];
    if (hm_likely(e->id == id)) return e->th;
    return _hm_theap_get_slow(heap);
}
/* Collect the sub-heaps of exited threads in every heap of `mgr`. */
void _hm_manager_collect_abandoned(hm_manager *mgr);
/* Retire the empty pages of `heap`'s sub-heaps of exited threads and decommit those whose
 * delay has passed (a maintenance pass of a live thread; skipped if the heap is busy). */
void _hm_heap_purge_abandoned(hm_heap *heap);
/* Memory is short (Low) or the delay is 0: what is emptied is decommitted at once. */
hm_inline bool _hm_purge_now(const hm_manager *mgr) {
    return mgr->cfg.purge_delay_ms == 0 ||
           atomic_load_explicit(&((hm_manager *)mgr)->pressure, memory_order_relaxed) ==
               eMemoryAvailableLow;
}
/* Register the fork handlers of the process heap (once; never from inside malloc's first
 * initialisation, since pthread_atfork may allocate). */
void _hm_override_atfork_register(void);
/* A fresh, empty page whose queue pointers point at it (the page with no free block). */
extern hm_page_t _hm_page_empty;
/* Move `delta` bytes of already-accounted manager memory into (or out of) `heap`'s count. */
void _hm_heap_account(hm_heap *heap, hm_manager *mgr, ptrdiff_t delta);
void _hm_theap_init_queues(hm_theap_t *th);

/* ---- alloc.c: the fast paths --------------------------------------------------------------------
 * Defined here, inline, so that the native API and the COM door share one definition and the
 * COM door pays no extra call (docs/DESIGN-NOTES.md, "The COM door"). */
/* Resolve p to its segment and page if p is the start of a live block; else an error. */
hm_result _hm_block_lookup(const void *p, hm_segment_t **segp, hm_page_t **pagep);
/* Everything the fast paths leave: sub-heap lookup, empty pages, large sizes, errors. */
void *_hm_alloc_slow(hm_heap *heap, size_t size, int level);
hm_result _hm_heap_free_slow(hm_heap *heap, void *p);

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

hm_inline hm_result _hm_free_block(hm_segment_t *seg, hm_page_t *pg, void *p) {
    hm_block_t *b = (hm_block_t *)p;
    uintptr_t tid = atomic_load_explicit(&seg->tid, memory_order_relaxed);
    if (hm_unlikely(tid != _hm_thread_id())) {
        if (tid != HM_TID_ANY) return _hm_page_free_remote(pg, seg, b);
    }
    uint32_t used = pg->used;
    /* negative: HM_USED_SLOW (a full page out of its queue, a huge page, a debug page) */
    if (hm_unlikely((int32_t)used < 0)) return _hm_page_free_slow(pg, seg, b);
    hm_tool_access(b, 2 * sizeof(hm_block_t));
    /* marked: free already, unless the program wrote the mark itself (the slow path knows) */
    if (hm_unlikely(_hm_mark_get(b) == pg)) return _hm_page_free_marked(pg, seg, b);
    hm_tool_free(b);
    hm_tool_access(b, 2 * sizeof(hm_block_t));
    b->next = pg->free;
    _hm_mark_set(b, pg);
    hm_tool_hide(b, 2 * sizeof(hm_block_t));
    pg->free = b;
    pg->used = used - 1;
    /* the page is now empty and allocation has moved on from it: give it back now, so that
     * a thread that frees and then idles holds no empty pages */
    if (hm_unlikely(used == 1) && !pg->is_head) return _hm_page_emptied(pg, seg);
    return HM_OK;
}

/* Allocate `size` bytes at `level` (0..2; 3 is counted nowhere) from `heap`. */
hm_inline void *_hm_alloc_fast(hm_heap *heap, size_t size, int level) {
    uint64_t id = atomic_load_explicit(&heap->id, memory_order_relaxed);
    hm_tls_entry_t *e = &_hm_tls_cache[id & (HM_TLS_WAYS - 1)];
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
    return _hm_alloc_slow(heap, size, level);
}

/* Free `p` if it is the start of a live block of `heap` (never aborts). */
hm_inline hm_result _hm_heap_free_fast(hm_heap *heap, void *p) {
    hm_segment_t *seg;
    hm_page_t *pg;
    if (hm_unlikely(_hm_block_lookup_fast(p, &seg, &pg) != HM_OK))
        return _hm_heap_free_slow(heap, p);
    if (hm_unlikely(seg->heap != heap)) return HM_ERR_OTHER_HEAP;
    return _hm_free_block(seg, pg, p);
}

/* ---- budget.c ------------------------------------------------------------------------------- */
/* Account `bytes` about to be committed for `th`'s heap at `level`. When the budget says no,
 * reclaims (the manager's cache, th's empty pages), reports Low, lets a process-critical
 * request wait up to process_wait_ms, then gives up: false, nothing counted. */
typedef enum {
    HM_COMMIT_FULL,       /* every reclaim step, th's empty pages and segments included */
    HM_COMMIT_NO_COLLECT, /* all but th's pages: the caller holds a page or segment of th */
    HM_COMMIT_QUICK,      /* only the manager's cache: no report, no wait */
} hm_commit_mode_t;
bool _hm_commit(hm_theap_t *th, size_t bytes, int level, hm_commit_mode_t mode);
/* The same for a commit that belongs to no heap (VirtualAlloc). */
bool _hm_commit_mgr(hm_manager *mgr, size_t bytes, int level);
void _hm_uncommit(hm_heap *heap, size_t bytes);
/* Count `bytes` the manager already holds (a segment from its cache) as `heap`'s, peak too. */
void _hm_heap_add_committed(hm_heap *heap, size_t bytes);
/* Give `bytes` back to the manager's budget (and `heap`'s count when not NULL). */
void _hm_heap_account_release(hm_heap *heap, hm_manager *mgr, size_t bytes);
hm_manager *_hm_manager_default(void);
void _hm_manager_init(hm_manager *mgr, const hm_config *cfg);

/* ---- debug.c ------------------------------------------------------------------------------- */
#define HM_DEBUG_HEADER 48 /* bytes of the header in front of every debug block */
/* A debug block of `size` bytes (file may be NULL): DebugAlloc, and every block of a checked
 * heap. NULL (errno ENOMEM) when it cannot be served. */
void *_hm_debug_alloc(hm_heap *heap, size_t size, int level, const char *file, int line);
/* (level may carry HM_LEVEL_NO_ABORT: a write after free found is then reported only) */
/* Check a debug block that is being freed; HM_OK and the block marked freed, or an error
 * that was reported (the block is then left alone, never reused). */
hm_result _hm_debug_free_check(hm_page_t *pg, hm_block_t *b);
/* Mark the headers of `n` new slots of `pg` (the first block at `p`) as never used. */
void _hm_debug_forget(const hm_page_t *pg, uint8_t *p, size_t n);
/* A huge debug block passed its free checks: keep its segment back (not reusable, a second
 * free recognised) instead of caching it. */
void _hm_debug_quarantine_huge(hm_segment_t *seg);
/* Bytes of address space the quarantine holds. */
size_t _hm_debug_quarantine_mapped(hm_manager *mgr);
/* Move every quarantined segment to the cache (memory is wanted). */
void _hm_debug_quarantine_flush(hm_manager *mgr);
/* Release every quarantined segment of a manager that goes. */
void _hm_debug_quarantine_clear(hm_manager *mgr);
/* p is the block of a quarantined huge debug segment: report the double free. */
bool _hm_debug_double_free_huge(const void *p);
/* The level bit that says "the COM door: report misuse, do not abort" (see _hm_alloc_slow). */
#define HM_LEVEL_NO_ABORT 0x100
/* The requested size of a debug or checked block of `pg`. */
size_t _hm_debug_size(const hm_page_t *pg, const void *p);
/* Start the secret of debug and checked blocks (once; before a checked heap's first block). */
void _hm_debug_init(void);
/* Report misuse through the manager's error sink (never allocates). */
void _hm_report(const hm_manager *mgr, int kind, const void *ptr, const char *message);

/* ---- checked mode (debug.c): its fast paths ----------------------------------------------
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
extern uint64_t _hm_debug_secret; /* set before the first debug or checked block */

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
/* A freed checked block's user bytes: [0, 8) the free-list link, [8, 16) its check word (the
 * link xor the block's canary), [16, 32) the 0xDF fill. Every write of a link on a checked page
 * writes the check word too (_hm_chk_set_link), so a link is validated exactly, with no page
 * field: a write after free in the first 16 bytes breaks the pair, one in [16, 32) the fill.
 * The fill is one 16-byte store, checked with one 16-byte load of the same bytes (a load
 * spanning two stores could not be forwarded from them: a block freed and taken back at once,
 * as in `pairs`, would wait for the stores to retire). */
hm_inline void _hm_chk_set_link(uint8_t *b, const hm_block_t *next) {
    __builtin_memcpy(b, &next, sizeof next);
    uint64_t w = (uint64_t)(uintptr_t)next ^ _hm_chk_canary(b);
    __builtin_memcpy(b + 8, &w, 8);
}
/* Is the link of freed block `b` the one its check word says? */
hm_inline bool _hm_chk_link_intact(const uint8_t *b, const hm_block_t *next) {
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
/* Make `b` a freed checked block (a slot carved, or a block that passed its free checks)
 * whose link is `next`. */
hm_inline void _hm_chk_make_freed(uint8_t *b, const hm_block_t *next) {
    _hm_chk_hdr(b)->tag = HM_CHK_FREED(_hm_chk_canary(b));
    _hm_chk_set_link(b, next);
    _hm_chk_fill(b);
}

/* The full paths: every size, every check, every report. */
void *_hm_checked_alloc(hm_heap *heap, size_t size, int level);
void *_hm_checked_alloc_slow(hm_heap *heap, size_t size, int level);
/* Check a checked block being freed (owner or not): HM_OK and the block marked freed and
 * filled, or an error that was reported (the block is left alone, never reused). */
hm_result _hm_checked_free_check(hm_page_t *pg, hm_block_t *b);
/* Validate the link of a block popped from a checked page (pg->free now holds it), its
 * header and fill, and write its header and back canary. False (reported; the list cut
 * there) when the block may not be handed out: its tag says it is live or quarantined, or is
 * no state at all (it was reached through a damaged link). */
bool _hm_checked_on_alloc(hm_theap_t *th, hm_page_t *pg, void *p, size_t size, bool no_abort);
/* Carve `n` new checked slots of `pg` (the first at `p`, linked in order, the last to
 * `last_next`): each a freed block with its check word and fill. */
void _hm_checked_carve(const hm_page_t *pg, uint8_t *p, size_t n, hm_block_t *last_next);

/* The link of freed checked block `b` of `pg` points outside the page: report the write after
 * free and cut the list after `b` (the blocks past it are lost, never handed out wild). */
void _hm_checked_bad_link(hm_page_t *pg, hm_block_t *b);

/* Allocate from a checked heap on the fast path: a block from the sub-heap's checked page of
 * the size, whose previous life passed its checks; NULL when that is not at hand (the caller
 * then takes _hm_checked_alloc_slow, which does everything and reports). */
hm_inline void *_hm_checked_alloc_try(hm_heap *heap, size_t size, int level) {
#if !HM_TOOLS
    /* the TLS lookup of _hm_theap_get spelled out, as in _hm_alloc_fast: one test covers the
     * cache hit and the size (through a helper returning NULL on a miss: 2 instructions more a
     * pair, callgrind) */
    uint64_t id = atomic_load_explicit(&heap->id, memory_order_relaxed);
    hm_tls_entry_t *e = &_hm_tls_cache[id & (HM_TLS_WAYS - 1)];
    if (hm_likely(e->id == id && size <= HM_DIRECT_MAX - HM_CHECKED_EXTRA)) {
        hm_theap_t *th = e->th;
        hm_page_t *pg = th->cdirect[(size + HM_CHECKED_EXTRA + 15) >> 4];
        uint8_t *b = (uint8_t *)pg->free;
        if (hm_likely(b != NULL)) {
            hm_block_t *next = ((hm_block_t *)b)->next;
            hm_chk_hdr_t *h = _hm_chk_hdr(b);
            uint64_t c = _hm_chk_canary(b);
            uint32_t tag = h->tag;
            /* freed (slots are carved freed), link and fill intact */
            uint64_t who = th->checked_who + 1; /* number and thread; a wrap goes slow */
            uint64_t w;
            __builtin_memcpy(&w, b + 8, 8);
            if (hm_likely(tag == HM_CHK_FREED(c) && w == ((uint64_t)(uintptr_t)next ^ c) &&
                          _hm_chk_fill_ok(b) && (uint32_t)who != 0)) {
                pg->free = next;
                pg->used++;
                th->requests[level & 3]++;
                /* the header in two stores: seq | tid, size | tag */
                th->checked_who = who;
                uint64_t what = (uint64_t)HM_CHK_LIVE(c, size) << 32 | (uint32_t)size;
                __builtin_memcpy(h, &who, 8); /* little-endian: seq, then tid */
                __builtin_memcpy((uint8_t *)h + 8, &what, 8);
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

/* Free into a checked heap; anything unusual (another thread, a full page, a bad block, a
 * DebugAlloc or huge block) goes the generic way, which checks and reports. */
hm_inline hm_result _hm_checked_free_fast(hm_heap *heap, void *p) {
    hm_segment_t *seg;
    hm_page_t *pg;
    if (hm_unlikely(_hm_block_lookup_fast(p, &seg, &pg) != HM_OK))
        return _hm_heap_free_slow(heap, p);
    if (hm_unlikely(seg->heap != heap)) return HM_ERR_OTHER_HEAP;
#if !HM_TOOLS
    uintptr_t tid = atomic_load_explicit(&seg->tid, memory_order_relaxed);
    if (hm_likely(pg->is_debug == HM_PAGE_CHECKED && !pg->in_full &&
                  (tid == _hm_thread_id() || tid == HM_TID_ANY))) {
        hm_chk_hdr_t *h = _hm_chk_hdr(p);
        uint64_t c = _hm_chk_canary(p), back;
        uint32_t size = h->size;
        if (hm_likely(h->tag == HM_CHK_LIVE(c, size) &&
                      size <= pg->block_size - HM_CHECKED_EXTRA)) {
            __builtin_memcpy(&back, (uint8_t *)p + size, sizeof back);
            if (hm_likely(back == c)) {
                h->tag = HM_CHK_FREED(c);
                hm_block_t *head = pg->free;
                __builtin_memcpy(p, &head, sizeof head);
                uint64_t w = (uint64_t)(uintptr_t)head ^ c;
                __builtin_memcpy((uint8_t *)p + 8, &w, 8);
                _hm_chk_fill(p);
                pg->free = (hm_block_t *)p;
                pg->used--;
                return HM_OK;
            }
        }
    }
#endif
    return _hm_free_block(seg, pg, p);
}

/* ---- vmem.c --------------------------------------------------------------------------------- */
void _hm_vmem_destroy(hm_manager *mgr);
void _hm_vmem_stats(hm_manager *mgr, size_t *reserved, size_t *committed);
/* Read /proc/self/maps for `addr` (no allocation, no lock): fills info, true if mapped. */
bool _hm_prim_query_mapping(uintptr_t addr, MEMORY_BASIC_INFORMATION *info);

/* ---- stats.c -------------------------------------------------------------------------------- */
/* Walk every sub-heap and segment of `heap` (caller holds heap->lock). */
void _hm_stats_collect(hm_heap *heap, hm_heap_stats_t *out);
/* HM_STATS at a heap's release, a manager's end: text or JSON to the statistics sink. */
void _hm_stats_report_heap(hm_heap *heap);
void _hm_stats_report_manager(hm_manager *mgr);
/* The malloc door's compact report (no virtual-memory or notification rows): to the
 * statistics sink (`to_sink`; JSON when the config says so) or as text to stderr. */
void _hm_stats_report_malloc(hm_heap *heap, hm_manager *mgr, bool to_sink);
/* malloc_info(3): an XML document of hostmalloc's figures. 0, or -1 with errno. */
int _hm_stats_malloc_info(hm_heap *heap, hm_manager *mgr, int options, FILE *fp);

#endif /* HM_INTERNAL_H */
