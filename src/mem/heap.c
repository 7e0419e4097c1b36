/* SPDX-License-Identifier: MIT */
/* mem/heap.c: arenas, heaps, per-thread sub-heaps, thread exit, heap release, and the one
 * reclaim loop.
 *
 * A thread-safe heap gives each thread that uses it a private sub-heap (hm_theap_t). A thread
 * finds its sub-heap through `_hm_tls_cache`, a direct-mapped table of HM_TLS_WAYS entries
 * keyed by the heap's id (ids are never reused, so a stale entry can never match). Each
 * thread also keeps a record of every sub-heap it owns (the cache may forget some); when the
 * thread exits, a pthread key destructor walks that record and *abandons* each sub-heap whose
 * heap still exists: its pages are collected, empty memory is returned, and its segments are
 * marked ownerless so that every free into them takes the atomic path. The next thread that
 * first uses the heap adopts an abandoned sub-heap whole, so blocks outlive their thread and
 * thread-pool churn reuses memory.
 *
 * Heap and sub-heap structs are type-stable (heap structs go to a private pool whose mutexes
 * are never re-initialised; sub-heaps to the metadata allocator, never unmapped): a thread
 * exiting after the heap was released reads a mismatching id and leaves it alone. Release
 * holds the heap lock, which the exit path also takes, so the two never overlap.
 *
 * A serialized heap (no HM_HEAP_THREADSAFE) has exactly one sub-heap owned by no thread: its
 * segments carry HM_TID_ANY, so every free is the owner's and no atomic operation is used.
 *
 * The reclaim loop. Below this file nothing reclaims, waits or notifies: when the budget
 * refuses a commit, segment and page code return NULL with nothing changed, and with_reclaim
 * (below) tries, in order and retrying after each, what can give memory back: this thread's
 * empty pages, the sub-heaps of exited threads, the arena's cache; then it says memory is
 * short (the budget's state becomes Low, which the manager reports, and every thread gives back
 * its empty pages at its next slow path); then a process-critical request waits a bounded time
 * for memory to come back. */
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mem/heap.h"

__thread hm_tls_entry_t _hm_tls_cache[HM_TLS_WAYS] __attribute__((tls_model("initial-exec")));
/* No sub-heap yet (or any more): its direct table points at pages with no free block, so the
 * malloc door's fast path needs no test of its own for it and falls through to its slow path. */
hm_theap_t _hm_theap_none = {
    .direct = {[0 ... HM_DIRECT_COUNT - 1] = &_hm_page_empty},
    .cdirect = {[0 ... HM_DIRECT_COUNT - 1] = &_hm_page_empty},
};
__thread hm_theap_t *_hm_tls_pinned __attribute__((tls_model("initial-exec"))) = &_hm_theap_none;
static hm_heap *pinned_heap;

void _hm_heap_pin(hm_heap *heap) {
    __atomic_store_n(&pinned_heap, heap, __ATOMIC_RELEASE);
}

hm_theap_t *_hm_theap_pinned(hm_heap *heap) {
    hm_theap_t *th = _hm_theap_get(heap);
    if (th != NULL && heap == __atomic_load_n(&pinned_heap, __ATOMIC_ACQUIRE)) _hm_tls_pinned = th;
    return th;
}

/* Remember `th` as the thread's sub-heap of `heap` (id `id`) in its cache slot `slot`. */
static void tls_remember(hm_tls_entry_t *slot, hm_heap *heap, uint64_t id, hm_theap_t *th) {
    slot->id = id;
    slot->th = th;
    if (heap == __atomic_load_n(&pinned_heap, __ATOMIC_ACQUIRE)) _hm_tls_pinned = th;
}

/* Every sub-heap this thread owns. */
typedef struct hm_thread_rec_s {
    size_t count, cap;
    struct {
        hm_heap *heap;
        uint64_t id;
        hm_theap_t *th;
    } e[];
} hm_thread_rec_t;

static __thread hm_thread_rec_t *tls_rec __attribute__((tls_model("initial-exec")));

static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static _Atomic(uint64_t) next_heap_id = 1;

/* released heap structs, reused without re-initialising their mutex */
static pthread_mutex_t heap_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static hm_heap *heap_pool;

static void thread_exit(void *arg);

static void thread_key_init(void) {
    pthread_key_create(&thread_key, thread_exit);
}

/* ---- sub-heaps --------------------------------------------------------------------------- */
/* The calling thread's kernel id (one system call a thread), named in checked-block reports. */
static uint32_t kernel_tid(void) {
    static __thread uint32_t tid __attribute__((tls_model("initial-exec")));
    if (tid == 0) tid = (uint32_t)syscall(SYS_gettid);
    return tid;
}

static hm_theap_t *theap_new(hm_heap *heap, uintptr_t tid) {
    hm_theap_t *th = _hm_meta_alloc(sizeof(hm_theap_t));
    if (th == NULL) return NULL;
    _hm_theap_init_queues(th);
    th->heap = heap;
    th->heap_id = atomic_load_explicit(&heap->id, memory_order_relaxed);
    th->collect_epoch = atomic_load_explicit(&heap->arena->collect_epoch, memory_order_relaxed);
    th->tid = tid;
    th->checked_who = (uint64_t)kernel_tid() << 32;
    for (int l = 0; l < 4; l++)
        th->req_left[l] = HM_BEAT;
    return th;
}

static void theap_set_owner(hm_theap_t *th, uintptr_t tid) {
    th->tid = tid;
    th->checked_who = (uint64_t)kernel_tid() << 32 | (uint32_t)th->checked_who;
    for (int k = 0; k < HM_SEG_STANDARD; k++)
        for (hm_segment_t *s = th->segs[k]; s != NULL; s = s->next)
            atomic_store_explicit(&s->tid, tid, memory_order_release);
}

/* Caller holds heap->lock. */
static void theap_link(hm_heap *heap, hm_theap_t *th) {
    HM_LIST_PUSH(heap->theaps, th, next, prev);
}

static bool rec_add(hm_heap *heap, uint64_t id, hm_theap_t *th) {
    hm_thread_rec_t *rec = tls_rec;
    if (rec != NULL) {
        /* drop entries of released heaps */
        size_t j = 0;
        for (size_t i = 0; i < rec->count; i++) {
            if (atomic_load_explicit(&rec->e[i].heap->id, memory_order_relaxed) == rec->e[i].id)
                rec->e[j++] = rec->e[i];
        }
        rec->count = j;
    }
    if (rec == NULL || rec->count == rec->cap) {
        size_t cap = rec == NULL ? 8 : rec->cap * 2;
        hm_thread_rec_t *n = _hm_meta_alloc(sizeof(hm_thread_rec_t) + cap * sizeof(rec->e[0]));
        if (n == NULL) return false;
        n->cap = cap;
        if (rec != NULL) {
            memcpy(n->e, rec->e, rec->count * sizeof(rec->e[0]));
            n->count = rec->count;
            _hm_meta_free(rec, sizeof(hm_thread_rec_t) + rec->cap * sizeof(rec->e[0]));
        }
        rec = n;
        tls_rec = n;
        pthread_once(&thread_key_once, thread_key_init);
        pthread_setspecific(thread_key, n);
    }
    rec->e[rec->count].heap = heap;
    rec->e[rec->count].id = id;
    rec->e[rec->count].th = th;
    rec->count++;
    return true;
}

hm_theap_t *_hm_theap_get_slow(hm_heap *heap) {
    uint64_t id;
    hm_tls_entry_t *slot = _hm_tls_slot(heap, &id);
    if (hm_unlikely(id == HM_HEAP_ID_DEAD)) _hm_fatal("use of a released heap:", heap);
    if (heap->single != NULL) {
        /* a serialized heap: one sub-heap for whichever thread calls; cache it so the fast
         * path is the same as for thread-safe heaps (never recorded: no thread owns it) */
        tls_remember(slot, heap, id, heap->single);
        return heap->single;
    }
    hm_thread_rec_t *rec = tls_rec;
    if (rec != NULL) {
        for (size_t i = 0; i < rec->count; i++) {
            if (rec->e[i].heap == heap && rec->e[i].id == id) {
                tls_remember(slot, heap, id, rec->e[i].th);
                return rec->e[i].th;
            }
        }
    }
    uintptr_t tid = _hm_thread_id();
    pthread_mutex_lock(&heap->lock);
    hm_theap_t *th = NULL;
    for (hm_theap_t *t = heap->theaps; t != NULL; t = t->next) {
        if (t->abandoned) {
            th = t;
            break;
        }
    }
    if (th != NULL) {
        th->abandoned = false;
        theap_set_owner(th, tid);
    } else {
        th = theap_new(heap, tid);
        if (th != NULL) theap_link(heap, th);
    }
    pthread_mutex_unlock(&heap->lock);
    if (th == NULL) return NULL;
    /* Fill the cache slot first: rec_add may call pthread_setspecific, which allocates (with
     * malloc, i.e. with us, under the override) once a process has many keys. */
    tls_remember(slot, heap, id, th);
    if (!rec_add(heap, id, th)) {
        /* cannot remember it: give it back for the next thread */
        slot->id = 0;
        slot->th = NULL;
        if (_hm_tls_pinned == th) _hm_tls_pinned = &_hm_theap_none;
        pthread_mutex_lock(&heap->lock);
        theap_set_owner(th, HM_TID_NONE);
        th->abandoned = true;
        pthread_mutex_unlock(&heap->lock);
        return NULL;
    }
    return th;
}

/* Caller holds heap->lock and the heap is alive. The exiting thread's empty pages are retired
 * but stay committed: the next thread to use the heap adopts this sub-heap (or takes its empty
 * segments from the cache) and finds them warm. Decommitting them here made every thread of a
 * pool that is re-created pay a page fault per page of its predecessor's memory. They are
 * given back like any other empty page, once their delay has passed, by the maintenance of any
 * live thread of the heap (heap_purge_abandoned); at once while memory is short. */
static void theap_abandon(hm_theap_t *th) {
    _hm_theap_collect(th, true, _hm_arena_purge_now(th->heap->arena));
    theap_set_owner(th, HM_TID_NONE);
    th->abandoned = true;
}

static void heap_purge_abandoned(hm_heap *heap) {
    if (heap->single != NULL || pthread_mutex_trylock(&heap->lock) != 0) return;
    for (hm_theap_t *t = heap->theaps; t != NULL; t = t->next)
        if (t->abandoned) _hm_theap_collect(t, true, false);
    pthread_mutex_unlock(&heap->lock);
}

static void thread_exit(void *arg) {
    hm_thread_rec_t *rec = arg;
    if (rec == NULL) return;
    for (size_t i = 0; i < rec->count; i++) {
        hm_heap *heap = rec->e[i].heap;
        pthread_mutex_lock(&heap->lock);
        if (atomic_load_explicit(&heap->id, memory_order_relaxed) == rec->e[i].id)
            theap_abandon(rec->e[i].th);
        pthread_mutex_unlock(&heap->lock);
    }
    memset(_hm_tls_cache, 0, sizeof _hm_tls_cache);
    _hm_tls_pinned = &_hm_theap_none;
    tls_rec = NULL;
    _hm_meta_free(rec, sizeof(hm_thread_rec_t) + rec->cap * sizeof(rec->e[0]));
}

/* ---- arenas -------------------------------------------------------------------------------- */
void _hm_arena_init(hm_arena_t *a, const hm_config *cfg, size_t limit) {
    memset(a, 0, sizeof *a);
    a->cfg = *cfg;
    _hm_budget_init(&a->budget, limit, cfg);
    a->medium_shift = limit < HM_MEDIUM_BIG_LIMIT ? HM_MEDIUM_PAGE_SHIFT : HM_MEDIUM_BIG_SHIFT;
    a->page_max = limit < HM_MEDIUM_BIG_LIMIT ? HM_MEDIUM_MAX : HM_LARGE_MAX;
    pthread_mutex_init(&a->heaps_lock, NULL);
    pthread_mutex_init(&a->cache_lock, NULL);
}

void _hm_arena_destroy(hm_arena_t *a) {
    _hm_held_clear(a);
    _hm_cache_purge(a, true);
    pthread_mutex_destroy(&a->heaps_lock);
    pthread_mutex_destroy(&a->cache_lock);
    _hm_budget_destroy(&a->budget);
}

/* Collect the sub-heaps of exited threads in every heap of `a` (a reclaim step, a trim). They
 * belong to no thread: their heap's lock makes it safe. */
void _hm_arena_collect_abandoned(hm_arena_t *a) {
    pthread_mutex_lock(&a->heaps_lock);
    for (hm_heap *h = a->heaps; h != NULL; h = h->arena_next) {
        pthread_mutex_lock(&h->lock);
        for (hm_theap_t *t = h->theaps; t != NULL; t = t->next)
            if (t->abandoned) _hm_theap_collect(t, true, true);
        pthread_mutex_unlock(&h->lock);
    }
    pthread_mutex_unlock(&a->heaps_lock);
}

/* ---- heaps ------------------------------------------------------------------------------- */
hm_heap *_hm_heap_create(hm_arena_t *a, unsigned flags) {
    if (flags & ~(HM_HEAP_THREADSAFE | HM_HEAP_EXECUTABLE)) return NULL;
    pthread_mutex_lock(&heap_pool_lock);
    hm_heap *heap = heap_pool;
    if (heap != NULL) heap_pool = heap->next_free;
    pthread_mutex_unlock(&heap_pool_lock);
    if (heap == NULL) {
        heap = _hm_meta_alloc(sizeof(hm_heap));
        if (heap == NULL) return NULL;
        pthread_mutex_init(&heap->lock, NULL);
    }
    pthread_mutex_lock(&heap->lock);
    heap->flags = flags;
    heap->checked = a->cfg.checked;
    atomic_store_explicit(&heap->had_debug, false, memory_order_relaxed);
    heap->arena = a;
    heap->theaps = NULL;
    heap->huge = NULL;
    heap->huge_count = 0;
    atomic_store_explicit(&heap->sealed, NULL, memory_order_relaxed);
    heap->single = NULL;
    heap->next_free = NULL;
    atomic_store_explicit(&heap->committed, 0, memory_order_relaxed);
    atomic_store_explicit(&heap->peak_committed, 0, memory_order_relaxed);
    uint64_t id = atomic_fetch_add(&next_heap_id, 1);
    heap->tls_off = _hm_tls_offset(id);
    atomic_store_explicit(&heap->id, id, memory_order_release);
    if (!(flags & HM_HEAP_THREADSAFE)) {
        hm_theap_t *th = theap_new(heap, HM_TID_ANY);
        if (th == NULL) {
            atomic_store(&heap->id, HM_HEAP_ID_DEAD);
            pthread_mutex_unlock(&heap->lock);
            pthread_mutex_lock(&heap_pool_lock);
            heap->next_free = heap_pool;
            heap_pool = heap;
            pthread_mutex_unlock(&heap_pool_lock);
            return NULL;
        }
        theap_link(heap, th);
        heap->single = th;
    }
    pthread_mutex_unlock(&heap->lock);
    pthread_mutex_lock(&a->heaps_lock);
    HM_LIST_PUSH(a->heaps, heap, arena_next, arena_prev);
    a->heap_count++;
    pthread_mutex_unlock(&a->heaps_lock);
    return heap;
}

void _hm_heap_destroy(hm_heap *heap) {
    hm_arena_t *a = heap->arena;
    pthread_mutex_lock(&a->heaps_lock);
    HM_LIST_REMOVE(a->heaps, heap, arena_next, arena_prev);
    a->heap_count--;
    pthread_mutex_unlock(&a->heaps_lock);
    pthread_mutex_lock(&heap->lock);
    atomic_store_explicit(&heap->id, HM_HEAP_ID_DEAD, memory_order_release);
    hm_theap_t *th = heap->theaps;
    while (th != NULL) {
        hm_theap_t *next = th->next;
        for (int k = 0; k < HM_SEG_STANDARD; k++) {
            hm_segment_t *seg = th->segs[k];
            while (seg != NULL) {
                hm_segment_t *nseg = seg->next;
                _hm_segment_unmap(seg);
                seg = nseg;
            }
        }
        for (int l = 0; l < 3; l++)
            atomic_fetch_add_explicit(&a->retired_requests[l], _hm_theap_requests(th, l),
                                      memory_order_relaxed);
        th->heap_id = HM_HEAP_ID_DEAD;
        _hm_meta_free(th, sizeof(hm_theap_t));
        th = next;
    }
    hm_segment_t *seg = heap->huge;
    while (seg != NULL) {
        hm_segment_t *nseg = seg->next;
        _hm_segment_unmap(seg);
        seg = nseg;
    }
    hm_segment_t *sealed = atomic_exchange_explicit(&heap->sealed, NULL, memory_order_acquire);
    if (sealed != NULL) _hm_segment_unmap(sealed);
    heap->theaps = NULL;
    heap->huge = NULL;
    heap->single = NULL;
    heap->arena = NULL;
    pthread_mutex_unlock(&heap->lock);
    pthread_mutex_lock(&heap_pool_lock);
    heap->next_free = heap_pool;
    heap_pool = heap;
    pthread_mutex_unlock(&heap_pool_lock);
}

void hm_heap_collect(hm_heap *heap, bool force) {
    if (heap == NULL) return;
    if (heap->single != NULL) {
        pthread_mutex_lock(&heap->lock);
        _hm_theap_collect(heap->single, force, force);
        pthread_mutex_unlock(&heap->lock);
    } else {
        uint64_t id;
        hm_tls_entry_t *e = _hm_tls_slot(heap, &id);
        hm_theap_t *mine = e->id == id ? e->th : NULL;
        if (mine == NULL && tls_rec != NULL) {
            for (size_t i = 0; i < tls_rec->count; i++)
                if (tls_rec->e[i].heap == heap && tls_rec->e[i].id == id) mine = tls_rec->e[i].th;
        }
        if (mine != NULL) _hm_theap_collect(mine, force, force);
        /* sub-heaps of exited threads belong to nobody: collect them under the lock */
        pthread_mutex_lock(&heap->lock);
        for (hm_theap_t *t = heap->theaps; t != NULL; t = t->next)
            if (t->abandoned) _hm_theap_collect(t, force, force);
        pthread_mutex_unlock(&heap->lock);
    }
    _hm_cache_purge(heap->arena, force);
}

/* ---- fork -------------------------------------------------------------------------------------
 * The locks of an arena and one of its heaps, in the order normal use takes them (the heap
 * pool, the arena's heap list, the heap, the segment cache, the budget's events, metadata), so that
 * a child never inherits a lock owned by a thread it does not have. Sub-heaps of the parent's other
 * threads stay owned by threads that do not exist in the child: their blocks can still be freed
 * there (remote frees). */
void _hm_arena_fork(hm_arena_t *a, hm_heap *heap, int phase) {
    if (phase == 0) {
        pthread_mutex_lock(&heap_pool_lock);
        pthread_mutex_lock(&a->heaps_lock);
        if (heap != NULL) pthread_mutex_lock(&heap->lock);
        pthread_mutex_lock(&a->cache_lock);
        pthread_mutex_lock(&a->budget.changed.lock); /* (leaf locks: held only to post) */
        pthread_mutex_lock(&a->budget.given.lock);
        _hm_meta_fork(0);
    } else {
        _hm_meta_fork(1);
        pthread_mutex_unlock(&a->budget.given.lock);
        pthread_mutex_unlock(&a->budget.changed.lock);
        pthread_mutex_unlock(&a->cache_lock);
        if (heap != NULL) pthread_mutex_unlock(&heap->lock);
        pthread_mutex_unlock(&a->heaps_lock);
        pthread_mutex_unlock(&heap_pool_lock);
    }
}

/* ---- the reclaim loop ---------------------------------------------------------------------- */
typedef void *(*try_fn)(hm_theap_t *th, const size_t *arg, int level);

/* One try: the result, and whether a NULL came from the budget (worth reclaiming for) or from
 * the OS (not: reclaiming would not map more). Without a sub-heap every NULL is a refusal. */
static void *try_once(hm_theap_t *th, try_fn fn, const size_t *arg, int level, bool *refused) {
    if (th != NULL) th->refused = false;
    void *p = fn(th, arg, level);
    *refused = p == NULL && (th == NULL || th->refused);
    return p;
}

/* The caller's first try was refused. */
static hm_noinline void *with_reclaim(hm_arena_t *a, hm_theap_t *th, try_fn fn, const size_t *arg,
                                      int level) {
    bool refused;
    void *p;
    hm_assert_full(_hm_budget_valid(&a->budget));
    /* 1. what is empty: this thread's pages (the last of each size class too), those of
     *    sub-heaps left by exited threads in every heap of the arena, the cache */
    if (th != NULL) _hm_theap_collect(th, true, true);
    _hm_arena_collect_abandoned(a);
    _hm_cache_purge(a, true);
    p = try_once(th, fn, arg, level, &refused);
    if (p != NULL || !refused) return p;
    /* 2. memory is short: say so (the state becomes Low, so that memory coming back is reported
     *    too), and every other thread gives its empty pages back at its next slow path */
    atomic_fetch_add_explicit(&a->collect_epoch, 1, memory_order_relaxed);
    _hm_budget_short(&a->budget);
    /* 3. a process-critical request may wait for memory to come back */
    if (level == eProcessCritical && a->cfg.process_wait_ms > 0) {
        uint32_t deadline = _hm_clock_ms() + a->cfg.process_wait_ms;
        for (;;) {
            uint32_t seen = _hm_event_seq(&a->budget.given);
            p = try_once(th, fn, arg, level, &refused);
            if (p != NULL || !refused) return p;
            uint32_t now = _hm_clock_ms();
            if (_hm_time_reached(now, deadline)) break;
            /* re-check every 10 ms at the least: a give may race with our sleep */
            uint32_t ms = deadline - now < 10 ? deadline - now : 10;
            _hm_event_wait(&a->budget.given, seen, ms);
        }
    }
    _hm_budget_refused(&a->budget, level);
    hm_assert_full(_hm_budget_valid(&a->budget));
    return NULL;
}

static void *try_block(hm_theap_t *th, const size_t *bin, int level) {
    return _hm_page_alloc(th, *bin, level);
}

static void *try_huge(hm_theap_t *th, const size_t *size_align, int level) {
    return size_align[2] ? _hm_huge_alloc_guarded(th, size_align[0], level)
                         : _hm_huge_alloc(th, size_align[0], size_align[1], level);
}

/* A pass of maintenance every 64 slow-path calls and at the fast paths' heartbeat (alloc.h):
 * empty pages retired and, once their delay passed, decommitted; the cache ages
 * (_hm_theap_tick), and exited threads' memory here too. */
void _hm_theap_maintain(hm_theap_t *th) {
    if (_hm_theap_tick(th)) heap_purge_abandoned(th->heap);
}

void _hm_theap_beat(hm_theap_t *th, int l) {
    th->requests[l] += HM_BEAT - 1; /* the request that reached 0 is counted by the caller */
    th->req_left[l] = HM_BEAT;
    _hm_theap_maintain(th);
}

void *_hm_theap_alloc_block(hm_theap_t *th, size_t bin, int level) {
    hm_assert((unsigned)level <= eProcessCritical);
    if (atomic_load_explicit(&th->pending, memory_order_relaxed) != NULL)
        _hm_theap_process_pending(th);
    hm_arena_t *a = th->heap->arena;
    uint32_t epoch = atomic_load_explicit(&a->collect_epoch, memory_order_relaxed);
    if (hm_unlikely(epoch != th->collect_epoch)) {
        /* memory ran short somewhere in the arena: give back what this thread holds empty */
        th->collect_epoch = epoch;
        _hm_theap_collect(th, true, true);
    }
    if ((++th->slow_calls & 63) == 0) _hm_theap_maintain(th);
    hm_assert_full(_hm_theap_valid(th));
    th->refused = false;
    void *p = _hm_page_alloc(th, bin, level);
    if (hm_unlikely(p == NULL) && th->refused) p = with_reclaim(a, th, try_block, &bin, level);
    hm_assert_full(_hm_theap_valid(th));
    return p;
}

hm_segment_t *_hm_heap_sealed(hm_theap_t *th, size_t meta, size_t block, size_t count,
                              unsigned kind, int level) {
    hm_heap *heap = th->heap;
    hm_segment_t *seg = atomic_load_explicit(&heap->sealed, memory_order_acquire);
    if (hm_likely(seg != NULL)) return seg;
    hm_segment_t *mine = _hm_segment_sealed_new(th, meta, block, count, kind, level);
    if (mine == NULL) return NULL;
    /* two threads made one at once: the first one stays */
    if (atomic_compare_exchange_strong_explicit(&heap->sealed, &seg, mine, memory_order_acq_rel,
                                                memory_order_acquire))
        return mine;
    _hm_segment_unmap(mine);
    return seg;
}

static hm_segment_t *theap_alloc_huge(hm_theap_t *th, size_t size, size_t align, bool guard,
                                      int level) {
    hm_assert((unsigned)level <= eProcessCritical);
    th->refused = false;
    size_t arg[3] = {size, align, guard};
    hm_segment_t *seg = try_huge(th, arg, level);
    if (hm_likely(seg != NULL) || !th->refused) return seg;
    return with_reclaim(th->heap->arena, th, try_huge, arg, level);
}

hm_segment_t *_hm_theap_alloc_huge(hm_theap_t *th, size_t size, size_t align, int level) {
    return theap_alloc_huge(th, size, align, false, level);
}

hm_segment_t *_hm_theap_alloc_huge_guarded(hm_theap_t *th, size_t size, int level) {
    return theap_alloc_huge(th, size, HM_ALIGN, true, level);
}

static void *try_commit(hm_theap_t *th, const size_t *bytes, int level) {
    (void)th;
    hm_arena_t *a = (hm_arena_t *)(uintptr_t)bytes[1];
    /* any non-NULL pointer says yes: the caller asked for an answer, not a block */
    return _hm_budget_take(&a->budget, bytes[0], level) ? (void *)(uintptr_t)bytes : NULL;
}

bool _hm_arena_commit(hm_arena_t *a, size_t bytes, int level) {
    level = _hm_level_index(level);
    if (hm_likely(_hm_budget_take(&a->budget, bytes, level))) return true;
    size_t arg[2] = {bytes, (size_t)(uintptr_t)a};
    return with_reclaim(a, NULL, try_commit, arg, level) != NULL;
}

/* ---- invariants ------------------------------------------------------------------------------ */
bool _hm_theap_valid(const hm_theap_t *th) {
    if (th->heap == NULL || th->heap_id != atomic_load(&th->heap->id)) return false;
    for (size_t q = 1; q < HM_QUEUE_COUNT; q++) {
        const hm_page_queue_t *queue = &th->queues[q];
        const hm_page_t *prev = NULL;
        for (const hm_page_t *pg = queue->first; pg != NULL; prev = pg, pg = pg->next) {
            const hm_segment_t *seg = _hm_segment_of(pg);
            if (pg->prev != prev) return false;
            if (pg->bin != q) return false;
            if (pg->in_full) return false;
            if (seg->theap != th) return false;
            if (_hm_page_is_head(pg) != (pg == queue->first)) return false;
            if (!_hm_page_valid(pg)) return false;
        }
        if (queue->last != prev) return false;
    }
    size_t free_committed = 0; /* the segments' counts add up to the sub-heap's */
    for (int k = 0; k < HM_SEG_STANDARD; k++) {
        const hm_segment_t *prev = NULL;
        for (const hm_segment_t *seg = th->segs[k]; seg != NULL; prev = seg, seg = seg->next) {
            if (seg->prev != prev || seg->theap != th || seg->kind != (uint32_t)k ||
                !_hm_segment_valid(seg))
                return false;
            free_committed += seg->free_committed;
        }
        if (th->segs_last[k] != prev) return false;
    }
    return free_committed == th->free_committed_pages;
}
