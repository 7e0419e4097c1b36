/* SPDX-License-Identifier: MIT */
/* heap.c: heaps, per-thread sub-heaps, thread exit and heap release.
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
 * segments carry HM_TID_ANY, so every free is the owner's and no atomic operation is used. */
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

__thread hm_tls_entry_t _hm_tls_cache[HM_TLS_WAYS] __attribute__((tls_model("initial-exec")));

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
    th->collect_epoch = atomic_load_explicit(&heap->mgr->collect_epoch, memory_order_relaxed);
    th->tid = tid;
    th->checked_who = (uint64_t)kernel_tid() << 32;
    return th;
}

static void theap_set_owner(hm_theap_t *th, uintptr_t tid) {
    th->tid = tid;
    th->checked_who = (uint64_t)kernel_tid() << 32 | (uint32_t)th->checked_who;
    for (int k = 0; k < 2; k++)
        for (hm_segment_t *s = th->segs[k]; s != NULL; s = s->next)
            atomic_store_explicit(&s->tid, tid, memory_order_release);
}

/* Caller holds heap->lock. */
static void theap_link(hm_heap *heap, hm_theap_t *th) {
    th->prev = NULL;
    th->next = heap->theaps;
    if (heap->theaps) heap->theaps->prev = th;
    heap->theaps = th;
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
    uint64_t id = atomic_load_explicit(&heap->id, memory_order_relaxed);
    if (hm_unlikely(id == HM_HEAP_ID_DEAD)) _hm_fatal("use of a released heap:", heap);
    hm_tls_entry_t *slot = &_hm_tls_cache[id & (HM_TLS_WAYS - 1)];
    if (heap->single != NULL) {
        /* a serialized heap: one sub-heap for whichever thread calls; cache it so the fast
         * path is the same as for thread-safe heaps (never recorded: no thread owns it) */
        slot->id = id;
        slot->th = heap->single;
        return heap->single;
    }
    hm_thread_rec_t *rec = tls_rec;
    if (rec != NULL) {
        for (size_t i = 0; i < rec->count; i++) {
            if (rec->e[i].heap == heap && rec->e[i].id == id) {
                slot->id = id;
                slot->th = rec->e[i].th;
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
    slot->id = id;
    slot->th = th;
    if (!rec_add(heap, id, th)) {
        /* cannot remember it: give it back for the next thread */
        slot->id = 0;
        slot->th = NULL;
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
 * live thread of the heap (_hm_heap_purge_abandoned); at once while memory is short. */
static void theap_abandon(hm_theap_t *th) {
    _hm_theap_collect_ex(th, true, _hm_purge_now(th->heap->mgr));
    theap_set_owner(th, HM_TID_NONE);
    th->abandoned = true;
}

void _hm_heap_purge_abandoned(hm_heap *heap) {
    if (heap->single != NULL || pthread_mutex_trylock(&heap->lock) != 0) return;
    for (hm_theap_t *t = heap->theaps; t != NULL; t = t->next)
        if (t->abandoned) _hm_theap_collect_ex(t, true, false);
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
    tls_rec = NULL;
    _hm_meta_free(rec, sizeof(hm_thread_rec_t) + rec->cap * sizeof(rec->e[0]));
}

/* ---- heaps ------------------------------------------------------------------------------- */
hm_heap *hm_heap_new(hm_manager *mgr, unsigned flags) {
    if (flags & ~(HM_HEAP_THREADSAFE | HM_HEAP_EXECUTABLE)) return NULL;
    if (mgr == NULL) mgr = _hm_manager_default();
    if (mgr == NULL) return NULL;
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
    heap->checked = mgr->cfg.checked;
    atomic_store_explicit(&heap->had_debug, false, memory_order_relaxed);
    if (heap->checked) _hm_debug_init(); /* the secret of its blocks' canaries */
    heap->mgr = mgr;
    heap->theaps = NULL;
    heap->huge = NULL;
    heap->huge_count = 0;
    heap->single = NULL;
    heap->next_free = NULL;
    atomic_store_explicit(&heap->committed, 0, memory_order_relaxed);
    atomic_store_explicit(&heap->peak_committed, 0, memory_order_relaxed);
    atomic_store_explicit(&heap->id, atomic_fetch_add(&next_heap_id, 1), memory_order_release);
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
    hm_manager_retain(mgr);
    pthread_mutex_lock(&mgr->heaps_lock);
    heap->mgr_prev = NULL;
    heap->mgr_next = mgr->heaps;
    if (mgr->heaps) mgr->heaps->mgr_prev = heap;
    mgr->heaps = heap;
    mgr->heap_count++;
    pthread_mutex_unlock(&mgr->heaps_lock);
    return heap;
}

#if HM_TOOLS
static bool tool_forget(const hm_block_info_t *info, void *arg) {
    (void)arg;
    hm_tool_free(info->ptr);
    return true;
}
#endif

void hm_heap_release(hm_heap *heap) {
    if (heap == NULL) return;
    hm_manager *mgr = heap->mgr;
    if (mgr->cfg.print_stats) _hm_stats_report_heap(heap);
#if HM_TOOLS
    hm_heap_walk(heap, tool_forget, NULL); /* the live blocks go with the heap: tell the tool */
#endif
    pthread_mutex_lock(&mgr->heaps_lock);
    if (heap->mgr_prev)
        heap->mgr_prev->mgr_next = heap->mgr_next;
    else
        mgr->heaps = heap->mgr_next;
    if (heap->mgr_next) heap->mgr_next->mgr_prev = heap->mgr_prev;
    mgr->heap_count--;
    pthread_mutex_unlock(&mgr->heaps_lock);
    pthread_mutex_lock(&heap->lock);
    atomic_store_explicit(&heap->id, HM_HEAP_ID_DEAD, memory_order_release);
    hm_theap_t *th = heap->theaps;
    while (th != NULL) {
        hm_theap_t *next = th->next;
        for (int k = 0; k < 2; k++) {
            hm_segment_t *seg = th->segs[k];
            while (seg != NULL) {
                hm_segment_t *nseg = seg->next;
                _hm_segment_release(seg);
                seg = nseg;
            }
        }
        for (int l = 0; l < 3; l++)
            atomic_fetch_add_explicit(&mgr->retired_requests[l], th->requests[l],
                                      memory_order_relaxed);
        th->heap_id = HM_HEAP_ID_DEAD;
        _hm_meta_free(th, sizeof(hm_theap_t));
        th = next;
    }
    hm_segment_t *seg = heap->huge;
    while (seg != NULL) {
        hm_segment_t *nseg = seg->next;
        _hm_segment_release(seg);
        seg = nseg;
    }
    heap->theaps = NULL;
    heap->huge = NULL;
    heap->single = NULL;
    heap->mgr = NULL;
    pthread_mutex_unlock(&heap->lock);
    pthread_mutex_lock(&heap_pool_lock);
    heap->next_free = heap_pool;
    heap_pool = heap;
    pthread_mutex_unlock(&heap_pool_lock);
    hm_manager_release(mgr);
}

void hm_heap_collect(hm_heap *heap, bool force) {
    if (heap == NULL) return;
    if (heap->single != NULL) {
        pthread_mutex_lock(&heap->lock);
        _hm_theap_collect(heap->single, force);
        pthread_mutex_unlock(&heap->lock);
    } else {
        uint64_t id = atomic_load_explicit(&heap->id, memory_order_relaxed);
        hm_tls_entry_t *e = &_hm_tls_cache[id & (HM_TLS_WAYS - 1)];
        hm_theap_t *mine = e->id == id ? e->th : NULL;
        if (mine == NULL && tls_rec != NULL) {
            for (size_t i = 0; i < tls_rec->count; i++)
                if (tls_rec->e[i].heap == heap && tls_rec->e[i].id == id) mine = tls_rec->e[i].th;
        }
        if (mine != NULL) _hm_theap_collect(mine, force);
        /* sub-heaps of exited threads belong to nobody: collect them under the lock */
        pthread_mutex_lock(&heap->lock);
        for (hm_theap_t *t = heap->theaps; t != NULL; t = t->next)
            if (t->abandoned) _hm_theap_collect(t, force);
        pthread_mutex_unlock(&heap->lock);
    }
    _hm_cache_purge(heap->mgr, force);
}

static pthread_once_t default_heap_once = PTHREAD_ONCE_INIT;
static hm_heap *default_heap;

static void default_heap_init(void) {
    default_heap = hm_heap_new(NULL, HM_HEAP_THREADSAFE);
}

hm_heap *hm_heap_default(void) {
    pthread_once(&default_heap_once, default_heap_init);
    return default_heap;
}

/* ---- fork -------------------------------------------------------------------------------------
 * The process heap's locks are held across fork, in the order normal use takes them (manager's
 * heap list, heap, segment cache, metadata), so the child never inherits a lock owned by a
 * thread it does not have. Sub-heaps of the parent's other threads stay owned by threads that
 * do not exist in the child: their blocks can still be freed there (remote frees). */
static void fork_prepare(void) {
    hm_manager *mgr = _hm_manager_default();
    pthread_mutex_lock(&heap_pool_lock);
    pthread_mutex_lock(&mgr->heaps_lock);
    if (default_heap != NULL) pthread_mutex_lock(&default_heap->lock);
    pthread_mutex_lock(&mgr->cache_lock);
    _hm_meta_fork(0);
}

static void fork_release(void) {
    hm_manager *mgr = _hm_manager_default();
    _hm_meta_fork(1);
    pthread_mutex_unlock(&mgr->cache_lock);
    if (default_heap != NULL) pthread_mutex_unlock(&default_heap->lock);
    pthread_mutex_unlock(&mgr->heaps_lock);
    pthread_mutex_unlock(&heap_pool_lock);
}

void _hm_override_atfork_register(void) {
    static _Atomic(int) registered;
    int expected = 0;
    if (atomic_compare_exchange_strong(&registered, &expected, 1))
        pthread_atfork(fork_prepare, fork_release, fork_release);
}

/* Collect the sub-heaps of exited threads in every heap of `mgr` (the budget's reclaim step).
 * They belong to no thread: their heap's lock makes it safe. */
void _hm_manager_collect_abandoned(hm_manager *mgr) {
    pthread_mutex_lock(&mgr->heaps_lock);
    for (hm_heap *h = mgr->heaps; h != NULL; h = h->mgr_next) {
        pthread_mutex_lock(&h->lock);
        for (hm_theap_t *t = h->theaps; t != NULL; t = t->next)
            if (t->abandoned) _hm_theap_collect(t, true);
        pthread_mutex_unlock(&h->lock);
    }
    pthread_mutex_unlock(&mgr->heaps_lock);
}

/* The manager of a heap, for hosts that start from an IHostMalloc (docs/RUNTIMES.md). */
hm_manager *hm_heap_manager(hm_heap *heap) {
    return heap != NULL ? heap->mgr : NULL;
}
