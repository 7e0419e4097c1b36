/* SPDX-License-Identifier: MIT */
/* hm_python.c: the CPython 3.11 adapter: PyMemAllocatorEx over IHostMalloc instances.
 *
 * malloc goes through the instance's Alloc (fault injection and statistics see it), realloc
 * through hm_realloc_level on the instance's heap, free through Free. RAW is called without
 * the GIL from any thread, hence a thread-safe instance; MEM and OBJ only with the GIL held,
 * so one serialized instance serves both without a single atomic operation on its paths.
 * A NULL from the allocator is what CPython expects when memory is short: it raises
 * MemoryError (from a preallocated instance), and the adapter holds nothing across it.
 *
 * Low. The notifier thread only wakes the adapter's helper thread. The helper takes the GIL
 * (with a thread state it made with PyGILState_Ensure as soon as the interpreter ran, and
 * kept, so that a collection under pressure needs no allocation to start) and calls
 * gc.collect(), which collects even while
 * the program has called gc.disable() (PyGC_Collect would not). Once the interpreter is
 * finalizing, CPython ends a thread that asks for the GIL: the helper then simply ends. */
#include "hostmalloc/hm_python.h"

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <pthread.h>
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
    domain dom[3];
    _Atomic(int) level[3];
    _Atomic(bool) collect_on_low;
    hm_manager *mgr;
    pthread_t helper;
    pthread_mutex_t lock; /* guards pending */
    pthread_cond_t cond;
    bool pending;
    PyThreadState *helper_tstate; /* helper thread only */
    _Atomic(size_t) refusals[3], low_notes, collections;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *refused(domain *d) {
    atomic_fetch_add_explicit(&g.refusals[d->index], 1, memory_order_relaxed);
    return NULL;
}

static EMemoryCriticalLevel level_of(domain *d) {
    return (EMemoryCriticalLevel)atomic_load_explicit(&g.level[d->index], memory_order_relaxed);
}

static void *py_malloc(void *ctx, size_t size) {
    domain *d = ctx;
    void *p;
    if (FAILED(IHostMalloc_Alloc(d->m, size, level_of(d), &p))) return refused(d);
    return p;
}

static void *py_calloc(void *ctx, size_t nelem, size_t elsize) {
    size_t size;
    if (__builtin_mul_overflow(nelem, elsize, &size)) return refused(ctx);
    void *p = py_malloc(ctx, size);
    if (p != NULL) memset(p, 0, size);
    return p;
}

static void *py_realloc(void *ctx, void *ptr, size_t size) {
    domain *d = ctx;
    /* CPython: a size of 0 keeps a (minimal) block; hm_realloc_level would free it */
    void *p = hm_realloc_level(d->heap, ptr, size != 0 ? size : 1, level_of(d));
    return p != NULL ? p : refused(d);
}

static void py_free(void *ctx, void *ptr) {
    domain *d = ctx;
    if (FAILED(IHostMalloc_Free(d->m, ptr)))
        Py_FatalError("hostmalloc: a block freed in the wrong allocator domain");
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
    PyGILState_Ensure();
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
    PyMemAllocatorEx a = {NULL, py_malloc, py_calloc, py_realloc, py_free};
    for (int i = 0; i < 3; i++) {
        a.ctx = &g.dom[i];
        PyMem_SetAllocator(i == 0   ? PYMEM_DOMAIN_RAW
                           : i == 1 ? PYMEM_DOMAIN_MEM
                                    : PYMEM_DOMAIN_OBJ,
                           &a);
    }
    g.installed = true;
    /* one manager may serve both instances or two; Low of either is heard */
    g.mgr = hm_heap_manager(hm);
    hm_manager_add_listener(g.mgr, on_notify, NULL);
    if (hm_heap_manager(hr) != g.mgr) hm_manager_add_listener(hm_heap_manager(hr), on_notify, NULL);
    return 0;
}

int hm_python_install_default(void) {
    IHostMemoryManager *mm;
    if (FAILED(hm_shared_host_memory_manager(NULL, &mm))) return -1;
    IHostMalloc *raw = NULL, *mem_obj = NULL;
    int rc = -1;
    if (SUCCEEDED(IHostMemoryManager_CreateMalloc(mm, MALLOC_THREADSAFE, &raw)) &&
        SUCCEEDED(IHostMemoryManager_CreateMalloc(mm, 0, &mem_obj)))
        rc = hm_python_install(raw, mem_obj, NULL);
    if (raw != NULL) IHostMalloc_Release(raw); /* installed: the adapter holds them */
    if (mem_obj != NULL) IHostMalloc_Release(mem_obj);
    IHostMemoryManager_Release(mm);
    return rc;
}

bool hm_python_set_policy(const hm_python_policy *policy) {
    if (!g.installed || policy == NULL || !policy_ok(policy)) return false;
    set_policy(policy);
    return true;
}

int hm_python_main(int argc, char **argv) {
    if (hm_python_install_default() != 0) {
        fprintf(stderr, "hostmalloc: cannot put Python's memory on hostmalloc\n");
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
}
