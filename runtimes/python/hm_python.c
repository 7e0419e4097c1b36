/* SPDX-License-Identifier: MIT */
/* hm_python.c: the CPython 3.11 adapter: CPython's allocator domains over IHostMalloc instances.
 *
 * Two modes, chosen at installation (hm_python_policy.pymalloc):
 *
 * pymalloc (the default). CPython keeps pymalloc, its small-object allocator, for the MEM and
 * OBJ domains; pymalloc takes its arenas from the MEM/OBJ instance (PyObject_SetArenaAllocator)
 * and passes every request it does not serve itself (over 512 bytes, or when no arena can be
 * had) to the RAW domain, which is the adapter's. So every byte is the host's, and a small
 * object costs what it costs on CPython's own allocator. The adapter's MEM and OBJ functions
 * only say, in a thread-local variable, which domain is being served before they call
 * pymalloc: a request that reaches the RAW functions inside them is pymalloc's, made at that
 * domain's level on the MEM/OBJ instance and counted as that domain's refusal. Frees need no
 * such help (pymalloc's own free is installed as is): the RAW free finds a block's instance
 * from the block, which also keeps right the blocks that tracemalloc frees for itself from
 * inside a free of the MEM or OBJ domain.
 *
 * host. Every request of every domain is an IHostMalloc call (DebugAlloc-style tracking of each
 * object in checked mode, every object in the heap's statistics): malloc goes through the
 * instance's Alloc (fault injection and statistics see it), realloc through hm_realloc_level
 * on the instance's heap, free through Free.
 *
 * In both modes the arena allocator also serves the interpreter's frame stacks
 * (_PyObject_VirtualAlloc); those are asked for outside any MEM/OBJ request, and go to the
 * thread-safe RAW instance at the RAW level (a thread state is deleted without the GIL).
 *
 * RAW is called without the GIL from any thread, hence a thread-safe instance; MEM and OBJ only
 * with the GIL held, so one serialized instance serves both (and pymalloc's arenas) without a
 * single atomic operation on its paths. A NULL from the allocator is what CPython expects when
 * memory is short: it raises MemoryError (from a preallocated instance); pymalloc handles a
 * refused arena the same way. The adapter holds nothing across it.
 *
 * Low. The notifier thread only wakes the adapter's helper thread. The helper takes the GIL
 * (with a thread state it made with PyGILState_Ensure as soon as the interpreter ran, and
 * kept, so that a collection under pressure needs no allocation to start; a refusal of that
 * thread state's memory is served from a reserve, below) and calls
 * gc.collect(), which collects even while
 * the program has called gc.disable() (PyGC_Collect would not). Once the interpreter is
 * finalizing, CPython ends a thread that asks for the GIL: the helper then simply ends. */
#include "hostmalloc/hm_python.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

typedef struct domain {
    IHostMalloc *m;
    hm_heap *heap;
    int index; /* 0 RAW, 1 MEM, 2 OBJ */
} domain;

static struct {
    bool installed;
    bool pymalloc; /* the mode installed */
    domain dom[3];
    _Atomic(int) level[3];
    _Atomic(bool) collect_on_low;
    PyMemAllocatorEx pym;              /* pymalloc's functions (pymalloc mode) */
    PyObjectArenaAllocator prev_arena; /* for arenas made before installation */
    hm_manager *mgr;
    pthread_t helper;
    pthread_mutex_t lock; /* guards pending */
    pthread_cond_t cond;
    bool pending;
    PyThreadState *helper_tstate; /* helper thread only */
    _Atomic(size_t) refusals[3], low_notes, collections;
    _Atomic(size_t) arena_blocks, arena_bytes;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* The domain whose request pymalloc is serving on this thread (1 MEM, 2 OBJ), 0 outside one.
 * initial-exec: a plain %fs-relative access, no call (the library is loaded with the program
 * or by a host that links it). */
static __thread int serving __attribute__((tls_model("initial-exec")));

/* The helper's thread state must not be refused: CPython 3.11 cannot report that (a thread
 * state it fails to allocate for PyGILState_Ensure is dereferenced: a crash, not an error), and
 * the helper makes it when its poll first sees the interpreter running, which can be just as
 * the host's memory runs short (or its fault injection starts). So while the helper makes it
 * (`making_tstate`, the helper thread only), a malloc or calloc the host refuses is served from
 * this reserve instead (still counted as the host's refusal), and never given back: the thread
 * state lives as long as the interpreter, and every free and realloc hook finds a reserve block
 * by address (frees leave it; a realloc moves it to the host). That is any domain's block hook
 * (RAW in pymalloc mode, where MEM and OBJ go through pymalloc: CPython 3.11 makes the thread
 * state with RAW); arenas and frame stacks never come from it. */
static __thread bool making_tstate __attribute__((tls_model("initial-exec")));
static _Alignas(16) unsigned char reserve[16384];
static size_t reserve_used; /* the helper thread only */

static bool in_reserve(const void *p) {
    return (const unsigned char *)p >= reserve &&
           (const unsigned char *)p < reserve + sizeof reserve;
}

/* `p`, or when the host refused it (NULL) while the helper makes its thread state, `size`
 * bytes of the reserve (zeroed: static, and never handed out twice), if they are left. */
static void *or_reserve(void *p, size_t size) {
    if (p != NULL || !making_tstate) return p;
    if (size > sizeof reserve - reserve_used) return NULL; /* (and no rounding overflows) */
    size = size == 0 ? 16 : (size + 15) & ~(size_t)15;
    if (size > sizeof reserve - reserve_used) return NULL;
    p = reserve + reserve_used;
    reserve_used += size;
    return p;
}

static void *refused(domain *d) {
    atomic_fetch_add_explicit(&g.refusals[d->index], 1, memory_order_relaxed);
    return NULL;
}

static EMemoryCriticalLevel level_of(domain *d) {
    return (EMemoryCriticalLevel)atomic_load_explicit(&g.level[d->index], memory_order_relaxed);
}

/* ---- every request an IHostMalloc call (host mode; pymalloc's passed-on requests) ---------- */
static void *dom_malloc(domain *d, size_t size) {
    void *p;
    if (FAILED(IHostMalloc_Alloc(d->m, size, level_of(d), &p))) return refused(d);
    return p;
}

static void *dom_calloc(domain *d, size_t nelem, size_t elsize) {
    size_t size;
    if (__builtin_mul_overflow(nelem, elsize, &size)) return refused(d);
    void *p = dom_malloc(d, size);
    if (p == NULL) return or_reserve(NULL, size); /* (the reserve's bytes are zero) */
    memset(p, 0, size);
    return p;
}

static void *dom_realloc(domain *d, void *ptr, size_t size) {
    if (in_reserve(ptr)) {
        /* the reserve's block moves to the host (the bytes up to the reserve's end) */
        void *p = dom_malloc(d, size != 0 ? size : 1);
        if (p != NULL) {
            size_t left = (size_t)(reserve + sizeof reserve - (unsigned char *)ptr);
            memcpy(p, ptr, size < left ? size : left);
        }
        return p;
    }
    /* CPython: a size of 0 keeps a (minimal) block; hm_realloc_level would free it */
    void *p = hm_realloc_level(d->heap, ptr, size != 0 ? size : 1, level_of(d));
    return p != NULL ? p : refused(d);
}

static void *py_malloc(void *ctx, size_t size) {
    return or_reserve(dom_malloc(ctx, size), size);
}

static void *py_calloc(void *ctx, size_t nelem, size_t elsize) {
    return dom_calloc(ctx, nelem, elsize);
}

static void *py_realloc(void *ctx, void *ptr, size_t size) {
    return dom_realloc(ctx, ptr, size);
}

static void py_free(void *ctx, void *ptr) {
    domain *d = ctx;
    if (in_reserve(ptr)) return;
    if (FAILED(IHostMalloc_Free(d->m, ptr)))
        Py_FatalError("hostmalloc: a block freed in the wrong allocator domain");
}

/* ---- pymalloc mode: RAW, and what pymalloc passes on ------------------------------------------
 * Inside a MEM or OBJ request (`serving` set) a RAW request is pymalloc's: a block larger than
 * its small requests, its own tables, or a small block when no arena could be had. It goes to
 * the MEM/OBJ instance at the level of the domain served. */
static void *raw_malloc(void *ctx, size_t size) {
    (void)ctx;
    return or_reserve(dom_malloc(&g.dom[serving], size), size);
}

static void *raw_calloc(void *ctx, size_t nelem, size_t elsize) {
    (void)ctx;
    return dom_calloc(&g.dom[serving], nelem, elsize);
}

static void *raw_realloc(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    domain *d = &g.dom[serving];
    size_t usable;
    /* only pymalloc's blocks are resized inside a MEM/OBJ request; anything else stays RAW's */
    if (d->index != 0 && ptr != NULL && hm_heap_block(d->heap, ptr, &usable) != HM_OK)
        d = &g.dom[0];
    return dom_realloc(d, ptr, size);
}

/* Frees are found by address: pymalloc's free is installed as is (nothing on its path), and
 * tracemalloc frees its own RAW blocks from inside a MEM/OBJ free. */
static void raw_free(void *ctx, void *ptr) {
    (void)ctx;
    if (ptr == NULL || in_reserve(ptr) || SUCCEEDED(IHostMalloc_Free(g.dom[0].m, ptr))) return;
    if (FAILED(IHostMalloc_Free(g.dom[1].m, ptr)))
        Py_FatalError("hostmalloc: a block freed in the wrong allocator domain");
}

/* MEM and OBJ: say which domain is served, then pymalloc. Saved and put back, not cleared, so
 * that nothing depends on these calls never nesting. */
#define SERVE(idx, call)                                                                           \
    do {                                                                                           \
        int outer_ = serving;                                                                      \
        serving = (idx);                                                                           \
        void *p_ = (call);                                                                         \
        serving = outer_;                                                                          \
        return p_;                                                                                 \
    } while (0)

static void *mem_malloc(void *ctx, size_t size) {
    (void)ctx;
    SERVE(1, g.pym.malloc(g.pym.ctx, size));
}
static void *mem_calloc(void *ctx, size_t nelem, size_t elsize) {
    (void)ctx;
    SERVE(1, g.pym.calloc(g.pym.ctx, nelem, elsize));
}
static void *mem_realloc(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    SERVE(1, g.pym.realloc(g.pym.ctx, ptr, size));
}
static void *obj_malloc(void *ctx, size_t size) {
    (void)ctx;
    SERVE(2, g.pym.malloc(g.pym.ctx, size));
}
static void *obj_calloc(void *ctx, size_t nelem, size_t elsize) {
    (void)ctx;
    SERVE(2, g.pym.calloc(g.pym.ctx, nelem, elsize));
}
static void *obj_realloc(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    SERVE(2, g.pym.realloc(g.pym.ctx, ptr, size));
}

/* ---- the arena allocator: pymalloc's arenas and the frame stacks (both modes) -------------- */
static void arena_count(size_t size, int sign) {
    /* not on any fast path: an arena is 1 MiB, a frame stack chunk 16 KiB or more */
    if (sign > 0) {
        atomic_fetch_add_explicit(&g.arena_blocks, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&g.arena_bytes, size, memory_order_relaxed);
    } else {
        atomic_fetch_sub_explicit(&g.arena_blocks, 1, memory_order_relaxed);
        atomic_fetch_sub_explicit(&g.arena_bytes, size, memory_order_relaxed);
    }
}

static void *arena_alloc(void *ctx, size_t size) {
    (void)ctx;
    /* an arena for the MEM or OBJ request that needs it, at that domain's level, on the MEM/OBJ
     * instance; anything else (a frame stack) is the interpreter's own: RAW */
    void *p = dom_malloc(&g.dom[serving], size);
    if (p != NULL) arena_count(size, 1);
    return p;
}

static void arena_free(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    hm_heap *h = hm_heap_of(ptr);
    if (h == g.dom[0].heap || h == g.dom[1].heap) {
        if (FAILED(IHostMalloc_Free(g.dom[h == g.dom[0].heap ? 0 : 1].m, ptr)))
            Py_FatalError("hostmalloc: an arena freed twice");
        arena_count(size, -1);
    } else if (g.prev_arena.free != NULL) {
        g.prev_arena.free(g.prev_arena.ctx, ptr, size); /* made before installation */
    }
}

/* ---- Low -------------------------------------------------------------------------------- */
static void on_notify(void *arg, EMemoryAvailable level) {
    (void)arg; /* notifier thread: wake the helper, nothing more */
    if (level != eMemoryAvailableLow) return;
    atomic_fetch_add_explicit(&g.low_notes, 1, memory_order_relaxed);
    pthread_mutex_lock(&g.lock);
    g.pending = true;
    pthread_cond_signal(&g.cond);
    pthread_mutex_unlock(&g.lock);
}

/* A thread state for the helper, made as soon as the interpreter runs and kept: at Low, memory
 * is short, and making one then could fail. */
static bool helper_tstate_make(void) {
    if (g.helper_tstate != NULL) return true;
    if (!Py_IsInitialized()) return false;
    making_tstate = true; /* a refused request of this thread is served from the reserve */
    PyGILState_Ensure();
    making_tstate = false;
    g.helper_tstate = PyEval_SaveThread();
    return true;
}

static void collect_under_gil(void) {
    if (!Py_IsInitialized() || !helper_tstate_make()) return;
    PyEval_RestoreThread(g.helper_tstate); /* ends this thread if Python is finalizing */
    PyObject *gc = PyImport_ImportModule("gc");
    PyObject *r = gc != NULL ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
    if (r != NULL) atomic_fetch_add_explicit(&g.collections, 1, memory_order_relaxed);
    Py_XDECREF(r);
    Py_XDECREF(gc);
    PyErr_Clear(); /* a MemoryError of the collection itself: nothing to report it to */
    g.helper_tstate = PyEval_SaveThread();
}

static void *helper_main(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&g.lock);
        while (!g.pending) {
            if (g.helper_tstate != NULL) {
                pthread_cond_wait(&g.cond, &g.lock);
                continue;
            }
            /* until the interpreter runs, look every 20 ms whether it does */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 20 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if (pthread_cond_timedwait(&g.cond, &g.lock, &ts) != 0 && Py_IsInitialized()) {
                pthread_mutex_unlock(&g.lock); /* not held while Python may end this thread */
                helper_tstate_make();
                pthread_mutex_lock(&g.lock);
            }
        }
        g.pending = false;
        pthread_mutex_unlock(&g.lock); /* never held while Python may end this thread */
        if (atomic_load(&g.collect_on_low)) collect_under_gil();
    }
    return NULL;
}

/* ---- installation ------------------------------------------------------------------------ */
void hm_python_policy_init(hm_python_policy *policy) {
    policy->raw = eAppDomainCritical;
    policy->mem = eTaskCritical;
    policy->obj = eTaskCritical;
    policy->collect_on_low = true;
    policy->pymalloc = true;
}

static bool policy_ok(const hm_python_policy *p) {
    return (unsigned)p->raw <= eProcessCritical && (unsigned)p->mem <= eProcessCritical &&
           (unsigned)p->obj <= eProcessCritical;
}

static void set_policy(const hm_python_policy *p) {
    atomic_store(&g.level[0], (int)p->raw);
    atomic_store(&g.level[1], (int)p->mem);
    atomic_store(&g.level[2], (int)p->obj);
    atomic_store(&g.collect_on_low, p->collect_on_low);
}

/* pymalloc mode needs CPython's own allocators as they are at start: pymalloc for MEM and OBJ
 * (a build without it, or allocators a host set before, leave the host mode) */
static bool pymalloc_there(void) {
    const char *name = _PyMem_GetCurrentAllocatorName();
    if (name == NULL || strcmp(name, "pymalloc") != 0) return false;
    PyMemAllocatorEx mem;
    PyMem_GetAllocator(PYMEM_DOMAIN_OBJ, &g.pym);
    PyMem_GetAllocator(PYMEM_DOMAIN_MEM, &mem);
    return memcmp(&mem, &g.pym, sizeof mem) == 0;
}

int hm_python_install(IHostMalloc *raw, IHostMalloc *mem_obj, const hm_python_policy *policy) {
    hm_python_policy def;
    if (policy == NULL) {
        hm_python_policy_init(&def);
        policy = &def;
    }
    hm_heap *hr = hm_malloc_heap(raw), *hm = hm_malloc_heap(mem_obj);
    if (g.installed || Py_IsInitialized() || hr == NULL || hm == NULL || !policy_ok(policy))
        return -1;
    if (pthread_create(&g.helper, NULL, helper_main, NULL) != 0) return -1;
    pthread_detach(g.helper); /* it lives as long as the process (or the interpreter) */
    set_policy(policy);
    IHostMalloc_AddRef(raw);
    IHostMalloc_AddRef(mem_obj);
    g.dom[0] = (domain){raw, hr, 0};
    g.dom[1] = (domain){mem_obj, hm, 1};
    g.dom[2] = (domain){mem_obj, hm, 2};
    g.pymalloc = policy->pymalloc && pymalloc_there();
    if (g.pymalloc) {
        PyMemAllocatorEx r = {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free};
        PyMemAllocatorEx m = {NULL, mem_malloc, mem_calloc, mem_realloc, g.pym.free};
        PyMemAllocatorEx o = {NULL, obj_malloc, obj_calloc, obj_realloc, g.pym.free};
        PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &r);
        PyMem_SetAllocator(PYMEM_DOMAIN_MEM, &m);
        PyMem_SetAllocator(PYMEM_DOMAIN_OBJ, &o);
    } else {
        PyMemAllocatorEx a = {NULL, py_malloc, py_calloc, py_realloc, py_free};
        for (int i = 0; i < 3; i++) {
            a.ctx = &g.dom[i];
            PyMem_SetAllocator(i == 0   ? PYMEM_DOMAIN_RAW
                               : i == 1 ? PYMEM_DOMAIN_MEM
                                        : PYMEM_DOMAIN_OBJ,
                               &a);
        }
    }
    PyObject_GetArenaAllocator(&g.prev_arena);
    PyObjectArenaAllocator arenas = {NULL, arena_alloc, arena_free};
    PyObject_SetArenaAllocator(&arenas);
    g.installed = true;
    /* one manager may serve both instances or two; Low of either is heard */
    g.mgr = hm_heap_manager(hm);
    hm_manager_add_listener(g.mgr, on_notify, NULL);
    if (hm_heap_manager(hr) != g.mgr) hm_manager_add_listener(hm_heap_manager(hr), on_notify, NULL);
    return 0;
}

/* HM_PYTHON_ALLOCATOR: pymalloc (default), host; -1 for anything else */
static int mode_from_env(void) {
    const char *v = getenv("HM_PYTHON_ALLOCATOR");
    if (v == NULL || *v == '\0' || strcmp(v, "pymalloc") == 0) return 1;
    if (strcmp(v, "host") == 0) return 0;
    return -1;
}

int hm_python_install_default(void) {
    int mode = mode_from_env();
    if (mode < 0) return -1;
    IHostMemoryManager *mm;
    if (FAILED(hm_shared_host_memory_manager(NULL, &mm))) return -1;
    IHostMalloc *raw = NULL, *mem_obj = NULL;
    int rc = -1;
    hm_python_policy policy;
    hm_python_policy_init(&policy);
    policy.pymalloc = mode == 1;
    if (SUCCEEDED(IHostMemoryManager_CreateMalloc(mm, MALLOC_THREADSAFE, &raw)) &&
        SUCCEEDED(IHostMemoryManager_CreateMalloc(mm, 0, &mem_obj)))
        rc = hm_python_install(raw, mem_obj, &policy);
    if (raw != NULL) IHostMalloc_Release(raw); /* installed: the adapter holds them */
    if (mem_obj != NULL) IHostMalloc_Release(mem_obj);
    IHostMemoryManager_Release(mm);
    return rc;
}

bool hm_python_set_policy(const hm_python_policy *policy) {
    if (!g.installed || policy == NULL || !policy_ok(policy)) return false;
    /* policy->pymalloc is the installation's: not read here */
    set_policy(policy);
    return true;
}

int hm_python_main(int argc, char **argv) {
    if (hm_python_install_default() != 0) {
        fprintf(stderr, "hostmalloc: cannot put Python's memory on hostmalloc (HM_PYTHON_ALLOCATOR "
                        "must be pymalloc or host)\n");
        return 1;
    }
    return Py_BytesMain(argc, argv);
}

void hm_python_get_stats(hm_python_stats *out) {
    if (out == NULL) return;
    for (int i = 0; i < 3; i++)
        out->refusals[i] = atomic_load(&g.refusals[i]);
    out->low_notes = atomic_load(&g.low_notes);
    out->collections = atomic_load(&g.collections);
    out->pymalloc = g.pymalloc;
    out->arena_blocks = atomic_load(&g.arena_blocks);
    out->arena_bytes = atomic_load(&g.arena_bytes);
}
