/* SPDX-License-Identifier: MIT */
/* doors/override.c: hostmalloc as the process malloc (libhostmalloc-override.so).
 *
 * Every C and C++ allocation entry point of the process, on the process default heap of the
 * same engine. Preloaded (LD_PRELOAD) or linked first, it serves the very first allocation:
 * the default heap is created on first use (pthread_once, mmap, no malloc), thread-local
 * storage is the initial-exec kind a preloaded library gets statically, and nothing here calls
 * a function that could allocate before the heap exists.
 *
 * A pointer hostmalloc never handed out (free, realloc or malloc_usable_size of a stack,
 * static, foreign-mapped or interior pointer) aborts with one `hostmalloc: ` line on stderr,
 * in every mode: there is no error to return, and going on would corrupt memory.
 *
 * fork: the global locks (metadata, heap pool, the default manager's cache and heap list, the
 * default heap's lock) are taken before fork and released after it in both processes, so the
 * child never inherits a lock held by a thread that does not exist there. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <string.h>
#include <unistd.h>

#include "manager/manager.h"

#define HM_EXPORT __attribute__((visibility("default")))

static hm_heap *_Atomic g_heap;

static void fork_prepare(void) {
    _hm_arena_fork(&hm_manager_default()->arena, atomic_load(&g_heap), 0);
}

static void fork_release(void) {
    _hm_arena_fork(&hm_manager_default()->arena, atomic_load(&g_heap), 1);
}

static hm_noinline hm_heap *heap_init(void) {
    hm_heap *h = hm_heap_default();
    if (h == NULL) _hm_fatal("cannot create the process heap", NULL);
    _hm_heap_pin(h); /* malloc finds this thread's sub-heap of it with one TLS load */
    atomic_store_explicit(&g_heap, h, memory_order_release);
    /* once; pthread_atfork may allocate, which finds the heap made by now */
    static _Atomic(int) registered;
    int expected = 0;
    if (atomic_compare_exchange_strong(&registered, &expected, 1))
        pthread_atfork(fork_prepare, fork_release, fork_release);
    return h;
}

hm_inline hm_heap *heap(void) {
    hm_heap *h = atomic_load_explicit(&g_heap, memory_order_relaxed);
    if (hm_unlikely(h == NULL)) h = heap_init();
    return h;
}

/* ---- C ---------------------------------------------------------------------------------- */
/* Everything malloc's fast path leaves: the process heap made, the thread's sub-heap pinned,
 * large sizes, empty pages, checked mode. */
static hm_noinline void *malloc_slow(size_t size) {
    hm_heap *h = heap();
    if (_hm_tls_pinned == &_hm_theap_none) _hm_theap_pinned(h);
    return _hm_alloc_slow_any(h, size, eProcessCritical);
}

/* The fast path of malloc and operator new: the thread's sub-heap of the process heap with one
 * TLS load, its direct page's free list, and `slow` (a tail call) for everything else. */
hm_inline void *pinned_alloc(size_t size, void *(*slow)(size_t)) {
    hm_theap_t *th = _hm_tls_pinned;
    if (hm_likely(size <= HM_DIRECT_MAX)) { /* th may be _hm_theap_none: no free block */
        void *p = _hm_theap_pop(th, size, eProcessCritical);
        if (hm_likely(p != NULL)) return p;
    }
    return slow(size);
}

/* malloc and free start at a cache line: where the linker put them moved with unrelated code,
 * and one placement made glibc-simple (a loop of malloc and free) 1.5x slower on this
 * machine's AMD EPYC, its program code and the PLT's jumps slower too (docs/DESIGN-NOTES.md,
 * "Where malloc and free start") */
HM_EXPORT __attribute__((aligned(64))) void *malloc(size_t size) {
    return pinned_alloc(size, malloc_slow);
}

HM_EXPORT __attribute__((aligned(64))) void free(void *p) {
    _hm_free_any(p);
}

HM_EXPORT void *calloc(size_t count, size_t size) {
    return hm_calloc(heap(), count, size);
}

HM_EXPORT void *realloc(void *p, size_t size) {
    return hm_realloc(heap(), p, size);
}

HM_EXPORT void *reallocarray(void *p, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    return hm_realloc(heap(), p, total);
}

HM_EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    int saved = errno;
    void *p = hm_alloc_aligned(heap(), size, alignment);
    if (p == NULL) {
        errno = saved;
        return ENOMEM;
    }
    *out = p;
    return 0;
}

HM_EXPORT void *aligned_alloc(size_t alignment, size_t size) {
    return hm_alloc_aligned(heap(), size, alignment); /* EINVAL for a non-power of two */
}

HM_EXPORT void *memalign(size_t alignment, size_t size) {
    /* glibc rounds an alignment that is not a power of two up to the next one */
    if (alignment != 0 && (alignment & (alignment - 1)) != 0) {
        if (alignment > ((size_t)1 << 62)) {
            errno = EINVAL;
            return NULL;
        }
        alignment = (size_t)1 << (64 - __builtin_clzl(alignment));
    }
    if (alignment == 0) alignment = 1;
    return hm_alloc_aligned(heap(), size, alignment);
}

HM_EXPORT void *valloc(size_t size) {
    return hm_alloc_aligned(heap(), size, HM_OS_PAGE);
}

HM_EXPORT void *pvalloc(size_t size) {
    if (size > SIZE_MAX - HM_OS_PAGE) {
        errno = ENOMEM;
        return NULL;
    }
    size_t rounded = (size + HM_OS_PAGE - 1) & ~(size_t)(HM_OS_PAGE - 1);
    return hm_alloc_aligned(heap(), rounded == 0 ? HM_OS_PAGE : rounded, HM_OS_PAGE);
}

HM_EXPORT size_t malloc_usable_size(void *p) {
    return hm_usable_size(p);
}

/* ---- sized frees ----------------------------------------------------------------------------
 * free_sized, free_aligned_sized (C23; glibc 2.36 has neither, the override exports both) and
 * the sized forms of operator delete are given the size (and alignment) the block was asked
 * with. A block with a header (checked mode, DebugAlloc) recorded that size: any other size is
 * reported. A plain block knows only its usable size: a size above it is reported (what
 * default mode can tell, for a compare and a branch on the fast path: docs/DEBUG.md). An
 * alignment is checked against the block's address (checked mode's aligned blocks are plain
 * and record none). Every report names the call and aborts; every other mistake (no block, a
 * double free) is reported as free reports it. */
static hm_cold hm_noinline void wrong_size(const hm_segment_t *seg, const char *call, void *p,
                                           size_t n, size_t have, bool exact) {
    char msg[256];
    _hm_snprintf(msg, sizeof msg,
                 "hostmalloc: wrong size given to %s: %zu bytes for block %p of %zu %sbytes\n",
                 call, n, p, have, exact ? "" : "usable ");
    _hm_report(&seg->arena->cfg, HM_ERROR_WRONG_SIZE, p, msg);
    abort();
}

static hm_cold hm_noinline void wrong_alignment(const hm_segment_t *seg, const char *call, void *p,
                                                size_t align) {
    char msg[256];
    _hm_snprintf(msg, sizeof msg,
                 "hostmalloc: wrong alignment given to %s: %zu for block %p (not aligned to it)\n",
                 call, align, p);
    _hm_report(&seg->arena->cfg, HM_ERROR_WRONG_SIZE, p, msg);
    abort();
}

/* Everything the fast path of a sized free leaves: blocks with a header, sizes above a plain
 * block's size, huge blocks, misaligned pointers, no block at all. */
static hm_cold hm_noinline void free_sized_slow(void *p, size_t n, bool aligned, size_t align,
                                                const char *call) {
    if (p == NULL) return;
    hm_segment_t *seg = NULL;
    hm_page_t *pg = NULL;
    hm_result r = _hm_block_lookup(p, &seg, &pg);
    if (r == HM_OK && !_hm_block_freed(p, r, seg, pg, NULL)) {
        size_t have = _hm_block_usable(seg, pg, p); /* with a header: the requested size */
        bool exact = pg->kind != HM_PAGE_PLAIN;
        if (exact ? n != have : n > have) wrong_size(seg, call, p, n, have, exact);
        if (aligned &&
            (align == 0 || (align & (align - 1)) != 0 || ((uintptr_t)p & (align - 1)) != 0))
            wrong_alignment(seg, call, p, align);
    }
    hm_free(p);
}

/* `align` 0: no alignment given (a constant in every caller: its tests fold away); else a
 * power of two. */
hm_inline void free_sized_impl(void *p, size_t n, size_t align, const char *call) {
    hm_segment_t *seg;
    hm_page_t *pg;
    if (hm_unlikely(_hm_block_lookup_fast(p, &seg, &pg) != HM_OK || n > pg->block_size ||
                    pg->kind != HM_PAGE_PLAIN ||
                    (align != 0 && ((uintptr_t)p & (align - 1)) != 0))) {
        free_sized_slow(p, n, align != 0, align, call);
        return;
    }
    if (hm_unlikely(_hm_page_free(seg, pg, p) != HM_OK)) abort(); /* reported already */
}

HM_EXPORT void free_sized(void *p, size_t size) {
    free_sized_impl(p, size, 0, "free_sized");
}

HM_EXPORT void free_aligned_sized(void *p, size_t alignment, size_t size) {
    /* an alignment that is no power of two goes the slow way (p & (a - 1) is then no test of
     * alignment), which reports it */
    if (hm_unlikely(alignment == 0 || (alignment & (alignment - 1)) != 0))
        free_sized_slow(p, size, true, alignment, "free_aligned_sized");
    else
        free_sized_impl(p, size, alignment, "free_aligned_sized");
}

HM_EXPORT void cfree(void *p) {
    hm_free(p);
}

HM_EXPORT struct mallinfo2 mallinfo2(void) {
    struct mallinfo2 mi;
    memset(&mi, 0, sizeof mi);
    hm_heap_stats_t s;
    hm_heap_stats(heap(), &s);
    mi.arena = s.committed;     /* bytes held from the OS */
    mi.uordblks = s.live_bytes; /* in use */
    mi.fordblks = s.committed > s.live_bytes ? s.committed - s.live_bytes : 0; /* free */
    mi.hblks = s.huge_blocks;
    mi.usmblks = s.peak_committed;
    return mi;
}

HM_EXPORT struct mallinfo mallinfo(void) {
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi;
    memset(&mi, 0, sizeof mi);
    mi.arena = (int)(m2.arena > INT32_MAX ? INT32_MAX : m2.arena);
    mi.uordblks = (int)(m2.uordblks > INT32_MAX ? INT32_MAX : m2.uordblks);
    mi.fordblks = (int)(m2.fordblks > INT32_MAX ? INT32_MAX : m2.fordblks);
    mi.hblks = (int)m2.hblks;
    mi.usmblks = (int)(m2.usmblks > INT32_MAX ? INT32_MAX : m2.usmblks);
    return mi;
}

HM_EXPORT int malloc_trim(size_t pad) {
    (void)pad;
    hm_heap_stats_t before, after;
    hm_heap_stats(heap(), &before);
    hm_heap_collect(heap(), true);
    hm_heap_stats(heap(), &after);
    return after.committed < before.committed;
}

/* ---- C++ -------------------------------------------------------------------------------------
 * operator new must throw std::bad_alloc (after asking the new-handler) when it cannot serve.
 * A C++ program links libstdc++, which exports std::get_new_handler and std::__throw_bad_alloc:
 * they are taken as weak references, so this C library needs no C++ runtime of its own. */
typedef void (*new_handler_t)(void);
extern new_handler_t _ZSt15get_new_handlerv(void) __attribute__((weak));
extern void _ZSt17__throw_bad_allocv(void) __attribute__((weak, noreturn));

static hm_noinline void *new_fail(size_t size, size_t align, bool nothrow) {
    for (;;) {
        new_handler_t h = _ZSt15get_new_handlerv != NULL ? _ZSt15get_new_handlerv() : NULL;
        if (h == NULL) {
            if (nothrow) return NULL;
            if (_ZSt17__throw_bad_allocv != NULL) _ZSt17__throw_bad_allocv();
            _hm_fatal("operator new: out of memory and no C++ runtime to throw bad_alloc", NULL);
        }
        h();
        void *p =
            align <= HM_ALIGN ? hm_alloc(heap(), size) : hm_alloc_aligned(heap(), size, align);
        if (p != NULL) return p;
    }
}

/* What operator new's fast path (malloc's) leaves: malloc's slow path, then the new-handler and
 * bad_alloc when it could not serve. */
static hm_noinline void *new_slow(size_t size) {
    void *p = malloc_slow(size);
    if (hm_unlikely(p == NULL)) p = new_fail(size, HM_ALIGN, false);
    return p;
}

static hm_noinline void *new_nothrow_slow(size_t size) {
    void *p = malloc_slow(size);
    if (hm_unlikely(p == NULL)) p = new_fail(size, HM_ALIGN, true);
    return p;
}

hm_inline void *new_impl(size_t size) {
    return pinned_alloc(size, new_slow);
}

hm_inline void *new_nothrow(size_t size) {
    return pinned_alloc(size, new_nothrow_slow);
}

static void *new_aligned(size_t size, size_t align, bool nothrow) {
    void *p = NULL;
    if (align != 0 && (align & (align - 1)) == 0)
        p = hm_alloc_aligned(heap(), size, align);
    else if (!nothrow)
        _hm_fatal("operator new: alignment is not a power of two", NULL);
    if (p == NULL && align != 0 && (align & (align - 1)) == 0) p = new_fail(size, align, nothrow);
    return p;
}

/* operator new / new[] (size_t), nothrow, aligned, aligned nothrow */
HM_EXPORT void *_Znwm(size_t n) {
    return new_impl(n);
}
HM_EXPORT void *_Znam(size_t n) {
    return new_impl(n);
}
HM_EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *t) {
    (void)t;
    return new_nothrow(n);
}
HM_EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *t) {
    (void)t;
    return new_nothrow(n);
}
HM_EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t a) {
    return new_aligned(n, a, false);
}
HM_EXPORT void *_ZnamSt11align_val_t(size_t n, size_t a) {
    return new_aligned(n, a, false);
}
HM_EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) {
    (void)t;
    return new_aligned(n, a, true);
}
HM_EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a, const void *t) {
    (void)t;
    return new_aligned(n, a, true);
}

/* operator delete / delete[]: plain, sized, nothrow, aligned, sized aligned, aligned nothrow */
HM_EXPORT void _ZdlPv(void *p) {
    _hm_free_any(p);
}
HM_EXPORT void _ZdaPv(void *p) {
    _hm_free_any(p);
}
HM_EXPORT void _ZdlPvm(void *p, size_t n) {
    free_sized_impl(p, n, 0, "operator delete");
}
HM_EXPORT void _ZdaPvm(void *p, size_t n) {
    free_sized_impl(p, n, 0, "operator delete[]");
}
HM_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *t) {
    (void)t;
    hm_free(p);
}
HM_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *t) {
    (void)t;
    hm_free(p);
}
HM_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) {
    (void)a;
    hm_free(p);
}
HM_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) {
    (void)a;
    hm_free(p);
}
HM_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) {
    if (hm_unlikely(a == 0 || (a & (a - 1)) != 0)) /* not a power of two: reported */
        free_sized_slow(p, n, true, a, "operator delete");
    else
        free_sized_impl(p, n, a, "operator delete");
}
HM_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) {
    if (hm_unlikely(a == 0 || (a & (a - 1)) != 0))
        free_sized_slow(p, n, true, a, "operator delete[]");
    else
        free_sized_impl(p, n, a, "operator delete[]");
}
HM_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) {
    (void)a, (void)t;
    hm_free(p);
}
HM_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) {
    (void)a, (void)t;
    hm_free(p);
}

/* ---- statistics ---------------------------------------------------------------------------- */
/* glibc's malloc_info(3) and malloc_stats(3) would describe glibc's (unused) arenas: zeros. */
HM_EXPORT int malloc_info(int options, FILE *fp) {
    return _hm_stats_malloc_info(heap(), hm_manager_default(), options, fp);
}

HM_EXPORT void malloc_stats(void) {
    _hm_stats_report_malloc(heap(), hm_manager_default(), false);
}

__attribute__((destructor)) static void override_exit(void) {
    hm_heap *h = atomic_load_explicit(&g_heap, memory_order_relaxed);
    if (h != NULL && hm_manager_default()->arena.cfg.print_stats)
        _hm_stats_report_malloc(h, hm_manager_default(), true);
}
