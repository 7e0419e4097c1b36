/* SPDX-License-Identifier: MIT */
/* hostmalloc/hm_sqlite.h: SQLite 3's memory on an IHostMalloc instance.
 *
 * SQLite takes its allocator as a table of functions (sqlite3_mem_methods) set before it is
 * initialized. This adapter fills that table from an IHostMalloc instance: every block SQLite
 * uses lives in the instance's heap, inside its manager's budget, requested at one level the
 * host chooses; a refusal becomes SQLite's own SQLITE_NOMEM ("out of memory") for the
 * statement that asked, and the connection goes on. A Low notification shrinks SQLite's soft
 * heap limit (so its page caches recycle pages instead of growing) and asks SQLite to release
 * what it can; the limit the host had comes back when pressure is over.
 * docs/RUNTIMES.md, "SQLite 3". */
#ifndef HOSTMALLOC_HM_SQLITE_H
#define HOSTMALLOC_HM_SQLITE_H

#include <stdbool.h>
#include <stddef.h>

#include <hostmalloc/hostmalloc.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Make `m` (a hostmalloc instance; thread-safe, MALLOC_THREADSAFE, unless every SQLite call
 * of the process is on one thread) SQLite's allocator, requests at `level`. SQLite must not
 * be initialized yet (or be shut down: sqlite3_shutdown). The adapter holds a reference on
 * `m` until hm_sqlite_uninstall. Returns an SQLite result code: SQLITE_OK; SQLITE_MISUSE when
 * SQLite is in use, when the adapter is installed already, or when `m` or `level` is bad. */
HM_API int hm_sqlite_install(IHostMalloc *m, EMemoryCriticalLevel level);

/* hm_sqlite_install on a new thread-safe instance of the process's shared manager
 * (hm_shared_host_memory_manager; made from the HM_* environment when nothing made it
 * before), at the level named by HM_SQLITE_LEVEL (task, appdomain or process; task when
 * unset). What the preloadable shim calls. */
HM_API int hm_sqlite_install_default(void);

/* Change the level of later requests. False when `level` is bad. */
HM_API bool hm_sqlite_set_level(EMemoryCriticalLevel level);

/* Give SQLite its previous allocator back and release the instance. Call it after
 * sqlite3_shutdown, with every connection closed. SQLITE_MISUSE when not installed or SQLite
 * is still initialized; SQLITE_BUSY (nothing changed) while SQLite still holds blocks of
 * the instance. */
HM_API int hm_sqlite_uninstall(void);

typedef struct hm_sqlite_stats {
    size_t refusals;    /* requests refused (budget or fault injection) */
    size_t low_notes;   /* Low notifications heard */
    size_t soft_limits; /* times the soft heap limit was lowered for Low */
    long long released; /* bytes sqlite3_release_memory said it freed for Low */
} hm_sqlite_stats;

/* The adapter's counters (zeros when it was never installed). */
HM_API void hm_sqlite_get_stats(hm_sqlite_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* HOSTMALLOC_HM_SQLITE_H */
