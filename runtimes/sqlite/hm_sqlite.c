/* SPDX-License-Identifier: MIT */
/* hm_sqlite.c: the SQLite 3 adapter: sqlite3_mem_methods over an IHostMalloc instance.
 *
 * xMalloc goes through the instance's Alloc (its fault injection and statistics see every
 * request), xRealloc through hm_realloc_level on the instance's heap (growth that fits the
 * usable size stays in place), xFree through Free, and xSize reads the usable size from the
 * engine's tables (hm_heap_block: SQLite asks it several times per block, and uses the slack
 * it reports). A refusal returns NULL: SQLite turns it into SQLITE_NOMEM for the statement
 * and keeps the connection usable; the adapter holds nothing across it.
 *
 * Low comes on the manager's notifier thread. SQLite is a thread-safe library (Debian builds
 * it with its mutexes), so the listener may call it directly: it lowers the soft heap limit
 * to half of what SQLite uses now (its page caches then recycle pages instead of taking new
 * ones) and calls sqlite3_release_memory (which frees nothing in builds without
 * SQLITE_ENABLE_MEMORY_MANAGEMENT, Debian's among them). The host's own limit is put back
 * when the manager reports Neutral or High. */
#include "hostmalloc/hm_sqlite.h"

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

static struct {
    pthread_mutex_t lock; /* install, uninstall and the listener's soft-limit state */
    bool installed, listening, lowered;
    IHostMalloc *m;
    hm_heap *heap;
    hm_manager *mgr;
    _Atomic(int) level;
    sqlite3_mem_methods prev;
    sqlite3_int64 host_soft_limit; /* the limit before Low lowered it */
    _Atomic(size_t) refusals, low_notes, soft_limits;
    _Atomic(long long) released;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void bad_free(void) {
    static const char msg[] = "hostmalloc-sqlite: SQLite freed a block it did not get from the "
                              "adapter\n";
    ssize_t r = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)r;
    abort();
}

static void *x_malloc(int n) {
    void *p;
    if (n < 0 ||
        FAILED(IHostMalloc_Alloc(
            g.m, (size_t)n,
            (EMemoryCriticalLevel)atomic_load_explicit(&g.level, memory_order_relaxed), &p))) {
        atomic_fetch_add_explicit(&g.refusals, 1, memory_order_relaxed);
        return NULL;
    }
    return p;
}

static void x_free(void *p) {
    if (FAILED(IHostMalloc_Free(g.m, p))) bad_free();
}

static void *x_realloc(void *p, int n) {
    if (n <= 0) return NULL; /* SQLite never asks it; nothing is changed */
    void *q = hm_realloc_level(
        g.heap, p, (size_t)n,
        (EMemoryCriticalLevel)atomic_load_explicit(&g.level, memory_order_relaxed));
    if (q == NULL) atomic_fetch_add_explicit(&g.refusals, 1, memory_order_relaxed);
    return q;
}

static int x_size(void *p) {
    size_t usable;
    if (p == NULL || hm_heap_block(g.heap, p, &usable) != HM_OK) return 0;
    return usable > INT_MAX ? INT_MAX : (int)usable;
}

static int x_roundup(int n) {
    /* blocks are 16-byte aligned and come in 16-byte steps at least */
    return n <= INT_MAX - 15 ? (n + 15) & ~15 : n;
}

static int x_init(void *arg) {
    (void)arg;
    return SQLITE_OK;
}

static void x_shutdown(void *arg) {
    (void)arg;
}

static const sqlite3_mem_methods methods = {
    x_malloc, x_free, x_realloc, x_size, x_roundup, x_init, x_shutdown, NULL,
};

/* Notifier thread, no hostmalloc lock held. */
static void on_notify(void *arg, EMemoryAvailable level) {
    (void)arg;
    pthread_mutex_lock(&g.lock);
    if (!g.installed) {
        pthread_mutex_unlock(&g.lock);
        return;
    }
    if (level == eMemoryAvailableLow) {
        atomic_fetch_add_explicit(&g.low_notes, 1, memory_order_relaxed);
        sqlite3_int64 now = sqlite3_soft_heap_limit64(-1); /* a query: changes nothing */
        sqlite3_int64 target = sqlite3_memory_used() / 2;
        if (target < 256 * 1024) target = 256 * 1024; /* 0 would mean no limit at all */
        if (now >= 0 && (now == 0 || target < now)) {
            if (!g.lowered) g.host_soft_limit = now;
            g.lowered = true;
            sqlite3_soft_heap_limit64(target);
            atomic_fetch_add_explicit(&g.soft_limits, 1, memory_order_relaxed);
        }
        atomic_fetch_add_explicit(&g.released, sqlite3_release_memory(INT_MAX),
                                  memory_order_relaxed);
    } else if (g.lowered) {
        sqlite3_soft_heap_limit64(g.host_soft_limit);
        g.lowered = false;
    }
    pthread_mutex_unlock(&g.lock);
}

int hm_sqlite_install(IHostMalloc *m, EMemoryCriticalLevel level) {
    hm_heap *heap = hm_malloc_heap(m);
    if (heap == NULL || (unsigned)level > (unsigned)eProcessCritical) return SQLITE_MISUSE;
    pthread_mutex_lock(&g.lock);
    int rc = SQLITE_MISUSE;
    if (!g.installed) {
        sqlite3_mem_methods prev;
        rc = sqlite3_config(SQLITE_CONFIG_GETMALLOC, &prev);
        if (rc == SQLITE_OK) {
            /* the table must be in place before the first call through it */
            g.m = m;
            g.heap = heap;
            g.mgr = hm_heap_manager(heap);
            atomic_store(&g.level, (int)level);
            rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &methods);
        }
        if (rc == SQLITE_OK) {
            IHostMalloc_AddRef(m);
            g.prev = prev;
            g.installed = true;
            g.lowered = false;
            /* without a listener SQLite still works; it only misses Low */
            g.listening = hm_manager_add_listener(g.mgr, on_notify, NULL);
        } else {
            g.m = NULL;
            g.heap = NULL;
            g.mgr = NULL;
        }
    }
    pthread_mutex_unlock(&g.lock);
    return rc;
}

static int level_from_env(void) {
    const char *v = getenv("HM_SQLITE_LEVEL");
    if (v == NULL || *v == '\0' || strcmp(v, "task") == 0) return eTaskCritical;
    if (strcmp(v, "appdomain") == 0) return eAppDomainCritical;
    if (strcmp(v, "process") == 0) return eProcessCritical;
    return -1;
}

int hm_sqlite_install_default(void) {
    int level = level_from_env();
    if (level < 0) return SQLITE_MISUSE;
    IHostMemoryManager *mm;
    if (FAILED(hm_shared_host_memory_manager(NULL, &mm))) return SQLITE_NOMEM;
    IHostMalloc *m;
    HRESULT hr = IHostMemoryManager_CreateMalloc(mm, MALLOC_THREADSAFE, &m);
    IHostMemoryManager_Release(mm); /* the instance holds the manager */
    if (FAILED(hr)) return SQLITE_NOMEM;
    int rc = hm_sqlite_install(m, (EMemoryCriticalLevel)level);
    IHostMalloc_Release(m); /* installed: the adapter holds it */
    return rc;
}

bool hm_sqlite_set_level(EMemoryCriticalLevel level) {
    if ((unsigned)level > (unsigned)eProcessCritical) return false;
    atomic_store(&g.level, (int)level);
    return true;
}

int hm_sqlite_uninstall(void) {
    pthread_mutex_lock(&g.lock);
    if (!g.installed) {
        pthread_mutex_unlock(&g.lock);
        return SQLITE_MISUSE;
    }
    sqlite3_mem_methods probe;
    if (sqlite3_config(SQLITE_CONFIG_GETMALLOC, &probe) != SQLITE_OK) {
        pthread_mutex_unlock(&g.lock);
        return SQLITE_MISUSE; /* still initialized */
    }
    hm_heap_stats_t hs;
    hm_heap_stats(g.heap, &hs);
    if (hs.live_blocks != 0) {
        pthread_mutex_unlock(&g.lock);
        return SQLITE_BUSY; /* SQLite still holds blocks: releasing the heap would free them */
    }
    int rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &g.prev); /* MISUSE while initialized */
    if (rc != SQLITE_OK) {
        pthread_mutex_unlock(&g.lock);
        return rc;
    }
    g.installed = false;
    bool listening = g.listening;
    g.listening = false;
    IHostMalloc *m = g.m;
    hm_manager *mgr = g.mgr;
    g.m = NULL;
    g.heap = NULL;
    g.mgr = NULL;
    pthread_mutex_unlock(&g.lock);
    /* outside the lock: a running call of on_notify takes it */
    if (listening) hm_manager_remove_listener(mgr, on_notify, NULL);
    IHostMalloc_Release(m);
    return SQLITE_OK;
}

void hm_sqlite_get_stats(hm_sqlite_stats *out) {
    if (out == NULL) return;
    out->refusals = atomic_load(&g.refusals);
    out->low_notes = atomic_load(&g.low_notes);
    out->soft_limits = atomic_load(&g.soft_limits);
    out->released = atomic_load(&g.released);
}
