/* SPDX-License-Identifier: MIT */
/* hostmalloc/hostmalloc.h: the native C API of hostmalloc.
 *
 * hostmalloc has one engine and three doors: the COM interfaces of <hostmalloc/hosting.h>,
 * this native API, and the malloc override. A *manager* (hm_manager) owns the configuration
 * and accounts every byte its heaps commit; a *heap* (hm_heap) is what one IHostMalloc
 * instance owns: its blocks, its segments, one private cache per thread that uses it.
 *
 * Every block is 16-byte aligned. Functions that take a heap never accept NULL for it unless
 * their comment says so. Functions marked "never aborts" report bad pointers through their
 * result; the others abort the process with a `hostmalloc: ` message on stderr when given a
 * pointer hostmalloc did not hand out (see docs/API.md). */
#ifndef HOSTMALLOC_HOSTMALLOC_H
#define HOSTMALLOC_HOSTMALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "hosting.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of these headers. hm_version() tells the version of the library a program runs
 * with: a program built against 0.2 headers may load a later 0.2.x library, never an earlier
 * one (the shared library's soname changes when the ABI does). */
#define HOSTMALLOC_VERSION_MAJOR  0
#define HOSTMALLOC_VERSION_MINOR  2
#define HOSTMALLOC_VERSION_PATCH  0
#define HOSTMALLOC_VERSION        200 /* major * 10000 + minor * 100 + patch */
#define HOSTMALLOC_VERSION_STRING "0.2.0"

#if defined(__GNUC__)
#define HM_API __attribute__((visibility("default")))
#else
#define HM_API
#endif

/* The library's version, as HOSTMALLOC_VERSION (major * 10000 + minor * 100 + patch). */
HM_API int hm_version(void);
/* The same as a string, "major.minor.patch". */
HM_API const char *hm_version_string(void);

/* ---- Configuration --------------------------------------------------------------------------
 * hm_config_init() fills the defaults, then applies the HM_* environment variables (the
 * table in README.md). Fields may then be changed before the config is passed on. */
typedef struct hm_config {
    /* ---- budget (docs/MEMORY-MANAGER.md) ---- */
    /* Bytes the manager's heaps and VirtualAlloc commits may hold committed. 0: the cgroup
     * memory limit when one is set, else physical memory. HM_LIMIT. */
    size_t limit;
    /* Bytes kept for AppDomain- and process-critical requests: task-critical requests may
     * commit up to limit - reserve_appdomain - reserve_process. HM_RESERVE_APPDOMAIN. */
    size_t reserve_appdomain;
    /* Bytes kept for process-critical requests: AppDomain-critical requests may commit up to
     * limit - reserve_process; process-critical ones up to limit. HM_RESERVE_PROCESS. */
    size_t reserve_process;
    /* Longest time, in milliseconds, a process-critical request waits for memory that other
     * threads free before it fails. HM_PROCESS_WAIT. */
    unsigned process_wait_ms;
    /* ---- pressure notifications (percent of `limit` committed) ---- */
    unsigned low_pct;     /* Low at or above this (90). HM_LOW_PCT */
    unsigned neutral_pct; /* back to Neutral below this (80). HM_NEUTRAL_PCT */
    unsigned high_pct;    /* High below this (50); back to Neutral at high_pct + 10. HM_HIGH_PCT */
    /* At most one notification per this many milliseconds (100). HM_NOTIFY_INTERVAL */
    unsigned notify_interval_ms;
    /* ---- fault injection: make chosen requests fail, per criticality level ---- */
    /* Fail every Nth Alloc, DebugAlloc and VirtualAlloc request of a level (0: never).
     * HM_FAULT_EVERY=N (all levels) or N_task,N_appdomain,N_process. */
    unsigned fault_every[3];
    /* Fail each request of a level with this probability, from `fault_seed`.
     * HM_FAULT_PROB=p (all levels) or p_task,p_appdomain,p_process. */
    double fault_probability[3];
    uint64_t fault_seed; /* HM_FAULT_SEED (1) */
    /* ---- the engine ---- */
    /* Milliseconds an empty page or segment is kept before its memory is given back to the
     * OS (decommitted, or unmapped). 0 gives memory back at once. HM_PURGE_DELAY. */
    unsigned purge_delay_ms;
    /* Bytes of empty segments and freed huge blocks each manager keeps committed for reuse
     * (its address space: up to 8 times that; decommitted once their purge delay has passed;
     * at most an eighth of the limit). HM_SEGMENT_CACHE. */
    size_t segment_cache;
    /* Print the statistics of each heap when it is released, and of each manager when it
     * goes. HM_STATS=1. */
    bool print_stats;
    /* ---- debugging (docs/DEBUG.md) ---- */
    /* Checked mode: every block gets checks of its own (a 16-byte header and a back
     * canary: deterministic double-free detection, a byte-precise end, write-after-free
     * detection on reuse of the first 32 bytes); usable size is then the requested size.
     * Blocks aligned beyond 16 bytes are the exception: they are normal blocks.
     * HM_CHECKED=1. docs/DEBUG.md, "Checked mode". */
    bool checked;
    /* Misuse detected (a broken canary, a double free, a write after free, a bad pointer):
     * on_error(kind, block, message, arg) is called with a one-line message; NULL writes the
     * message to stderr (with write(2), no allocation). The COM door also returns
     * HOST_E_INVALIDOPERATION; the malloc door aborts after the report. on_error runs inside
     * the allocator (an allocation, a free, a collection, possibly with a heap's lock held):
     * it must not call hostmalloc, nor allocate from a hostmalloc heap. */
    void (*on_error)(int kind, const void *ptr, const char *message, void *arg);
    void *on_error_arg;
    /* Where print_stats writes: NULL for stderr, or a regular file to append to (a program
     * may have closed stderr by the time it exits). It is created with mode 0600; a symbolic
     * link, FIFO, device, directory or file with more than one hard link is refused with one
     * message. The string must outlive
     * the manager. HM_STATS_FILE (ignored in setuid and setgid programs). */
    const char *stats_path;
    /* With print_stats: the reports are JSON documents, one a line (hm_manager_stats_json),
     * instead of text. HM_STATS=json. */
    bool stats_json;
    /* Print the effective configuration (every option, its value and where it came from) on
     * stderr when a manager is created. HM_VERBOSE=1 (ignored in setuid and setgid
     * programs). */
    bool verbose;
} hm_config;

/* Defaults, then the HM_* environment. Never allocates. A malformed or out-of-range value and
 * an HM_* name that is not an option get one `hostmalloc: ` line on stderr each and change
 * nothing. In a setuid or setgid program (AT_SECURE) the options that write files, print
 * addresses or inject failures are ignored and HM_LIMIT may only lower the limit
 * (README.md, "Options"). */
HM_API void hm_config_init(hm_config *cfg);

/* ---- Managers -------------------------------------------------------------------------------- */
typedef struct hm_manager hm_manager;

/* A new manager with one reference, configured by `cfg` (NULL: hm_config_init defaults).
 * NULL when out of memory. */
HM_API hm_manager *hm_manager_new(const hm_config *cfg);
/* Reference counting, atomic. A manager lives while it has references; each heap holds one. */
HM_API void hm_manager_retain(hm_manager *mgr);
HM_API void hm_manager_release(hm_manager *mgr);
/* The process manager (of the process default heap and of heaps made with a NULL manager). */
HM_API hm_manager *hm_manager_default(void);

/* Pressure notifications: `fn(arg, level)` is called with eMemoryAvailableLow, Neutral or
 * High when the committed share of the limit crosses the thresholds of the config (with
 * hysteresis, at most once per notify_interval_ms), and with Low when a request fails for
 * lack of budget. It runs on the manager's notifier thread (started by the first call of this
 * function), one call at a time, never with an internal lock held, so it may allocate and
 * free. fn NULL unregisters. When this returns, no call of the previous function is running
 * (unless this is called from inside it). Returns false when the notifier thread cannot be
 * started. */
typedef void (*hm_notify_fn)(void *arg, EMemoryAvailable level);
HM_API bool hm_manager_set_notify(hm_manager *mgr, hm_notify_fn fn, void *arg);

/* Percentage of the limit committed (0..100), and bytes still available to task-critical
 * requests (never below 0). Either pointer may be NULL. */
HM_API void hm_manager_load(hm_manager *mgr, uint32_t *load_pct, size_t *available);
/* The limit in force (the configured one, or the cgroup or physical-memory default). */
HM_API size_t hm_manager_limit(hm_manager *mgr);
/* Give cached, unused memory and address space back to the OS now. Returns the bytes of
 * address space released. */
HM_API size_t hm_manager_trim(hm_manager *mgr);
/* Fault injection: true when the config says this request of `level` must fail (it is then
 * counted as an injected fault). Deterministic for a seed and an order of requests. The COM
 * door asks it for every Alloc, DebugAlloc and VirtualAlloc. */
HM_API bool hm_manager_fault(hm_manager *mgr, EMemoryCriticalLevel level);
HM_API bool hm_manager_faults_enabled(const hm_manager *mgr);
/* Account address space the runtime mapped or unmapped by itself
 * (IHostMemoryManager::Acquired/ReleasedVirtualAddressSpace): statistics only. */
HM_API void hm_manager_note_acquired(hm_manager *mgr, void *start, size_t size);
HM_API void hm_manager_note_released(hm_manager *mgr, void *start);

/* The COM door: a new IHostMemoryManager with one reference over a new manager configured by
 * `config` (NULL: defaults). S_OK, E_POINTER when `out` is NULL, E_OUTOFMEMORY. */
HM_API HRESULT hm_create_host_memory_manager(const hm_config *config, IHostMemoryManager **out);

/* ---- Heaps ----------------------------------------------------------------------------------- */
typedef struct hm_heap hm_heap;

#define HM_HEAP_THREADSAFE 0x1u /* used from many threads at once (MALLOC_THREADSAFE) */
#define HM_HEAP_EXECUTABLE 0x2u /* blocks are executable memory (MALLOC_EXECUTABLE) */

/* A new heap of `mgr` (NULL: the process manager). Without HM_HEAP_THREADSAFE the caller
 * must serialize every call on the heap (it then uses no atomic operation at all). NULL when
 * out of memory or when `flags` has unknown bits. */
HM_API hm_heap *hm_heap_new(hm_manager *mgr, unsigned flags);
/* Release the heap and every block still in it, in one sweep: all its memory goes back.
 * No thread may use the heap or its blocks during or after the call. */
HM_API void hm_heap_release(hm_heap *heap);
/* The process default heap (thread-safe), used by the malloc override. */
HM_API hm_heap *hm_heap_default(void);

/* ---- Allocation -------------------------------------------------------------------------------
 * `level` is an EMemoryCriticalLevel (task, AppDomain or process critical); hm_alloc and the
 * others without a level use eProcessCritical. All return NULL when the request cannot be
 * met (size above PTRDIFF_MAX, the OS refuses, or the manager's budget says no). A size of 0
 * gives a unique block. */
HM_API void *hm_alloc(hm_heap *heap, size_t size);
HM_API void *hm_alloc_level(hm_heap *heap, size_t size, EMemoryCriticalLevel level);
HM_API void *hm_calloc(hm_heap *heap, size_t count, size_t size);
/* `alignment` must be a power of two; any such alignment is served. NULL otherwise. */
HM_API void *hm_alloc_aligned(hm_heap *heap, size_t size, size_t alignment);
/* realloc(3) semantics within `heap`: p NULL allocates; on failure p is left untouched and
 * NULL is returned. A size of 0 returns a unique minimal block (p is freed). */
HM_API void *hm_realloc(hm_heap *heap, void *p, size_t size);

/* Free a block of any heap from any thread. NULL does nothing. Aborts with a message when
 * `p` is not the start of a block hostmalloc handed out. */
HM_API void hm_free(void *p);

/* The outcome of a checked free (never aborts). */
typedef enum hm_result {
    HM_OK = 0,
    HM_ERR_NOT_OWNED = 1,   /* not hostmalloc memory (of this manager, for virtual memory) */
    HM_ERR_NOT_BLOCK = 2,   /* hostmalloc memory, but not the start of a live block/region */
    HM_ERR_OTHER_HEAP = 3,  /* a block of another heap */
    HM_ERR_INVALID_ARG = 4, /* a bad flag, size, protection or address combination */
    HM_ERR_NOMEM = 5,       /* the budget or the OS says no */
} hm_result;

/* Free `p` if it is the start of a live block of `heap`; otherwise change nothing and say
 * why. Decided from out-of-line metadata only: the memory at `p` is never read unless `p` is
 * a block of `heap`. NULL gives HM_OK. Never aborts. */
HM_API hm_result hm_heap_free(hm_heap *heap, void *p);

/* ---- The debug heap (docs/DEBUG.md) -------------------------------------------------------- */
/* Kinds of misuse passed to hm_config.on_error. */
enum {
    HM_ERROR_BAD_POINTER = 1,      /* not the start of a live block */
    HM_ERROR_DOUBLE_FREE = 2,      /* a debug/checked block freed twice */
    HM_ERROR_OVERRUN = 3,          /* bytes after the block were written */
    HM_ERROR_UNDERRUN = 4,         /* bytes before the block were written */
    HM_ERROR_WRITE_AFTER_FREE = 5, /* a freed block was written before it was reused */
    HM_ERROR_LEAK = 6,             /* a leak report (heap release with live DebugAlloc blocks) */
    HM_ERROR_WRONG_SIZE = 7,       /* a sized free (the malloc override's free_sized, sized
                                      operator delete) was given a size or an alignment the
                                      block does not have */
};

/* Allocate like hm_alloc_level and remember where from: `file` (copied; may be NULL), `line`,
 * the size, the allocating thread and a sequence number. The block has canaries before and
 * after it; hm_free checks them and fills the block with a freed pattern. */
HM_API void *hm_alloc_debug(hm_heap *heap, size_t size, EMemoryCriticalLevel level,
                            const char *file, int line);

typedef struct hm_block_info_s {
    void *ptr;        /* the block */
    size_t size;      /* requested size (debug/checked blocks) or usable size */
    const char *file; /* allocation site of a DebugAlloc block, else NULL */
    int line;
    uint64_t seq; /* allocation sequence number (debug/checked blocks), else 0 */
    bool debug;   /* a DebugAlloc block */
} hm_block_info_t;

/* Visit every live block of `heap` (debug or not); `fn` returns false to stop. Returns the
 * number of blocks visited. No other thread may use the heap meanwhile. Never allocates. */
typedef bool (*hm_walk_fn)(const hm_block_info_t *info, void *arg);
HM_API size_t hm_heap_walk(hm_heap *heap, hm_walk_fn fn, void *arg);

/* Group the live DebugAlloc blocks of `heap` by file:line with count and bytes, largest first,
 * and print them to `out` (NULL: the error sink of the heap's manager). Returns how many
 * blocks it found. No other thread may use the heap meanwhile. */
HM_API size_t hm_heap_report_leaks(hm_heap *heap, FILE *out);

/* Bytes usable in the block at `p` (at least what was asked); 0 for NULL. Aborts when `p` is
 * not the start of a block, and (with a report) when it is a freed one: always in checked mode
 * and for DebugAlloc blocks, and for a plain block as a double free is known (docs/DEBUG.md). */
HM_API size_t hm_usable_size(const void *p);
/* The heap `p` belongs to, or NULL when `p` is not the start of a hostmalloc block. */
HM_API hm_heap *hm_heap_of(const void *p);

/* ---- Maintenance and statistics -------------------------------------------------------------- */
/* Collect other threads' frees, retire empty pages and give back memory whose delay has
 * passed (`force`: all empty memory now) for the calling thread's part of `heap`, and for the
 * parts left by threads that have exited. */
HM_API void hm_heap_collect(hm_heap *heap, bool force);

typedef struct hm_heap_stats_s {
    size_t live_blocks;    /* blocks handed out and not freed (frees by other threads that the
                              owner has not collected yet still count) */
    size_t live_bytes;     /* usable bytes of those blocks */
    size_t committed;      /* bytes of memory the heap holds committed (pages in use or cached) */
    size_t peak_committed; /* the highest `committed` seen */
    size_t reserved;       /* address space the heap holds */
    size_t segments;       /* segments (small/medium) held */
    size_t huge_blocks;    /* blocks living in a segment of their own */
    size_t pages;          /* pages serving a size class */
    size_t threads;        /* per-thread sub-heaps, live or left by exited threads */
    size_t requests[3];    /* allocations by criticality level (hm_alloc counts as process) */
    size_t failures[3];    /* allocations refused, by level */
} hm_heap_stats_t;

/* ---- Virtual memory with Win32 semantics (docs/MEMORY-MANAGER.md) -------------------------
 * Regions are reserved in 64 KiB granules and committed, decommitted and protected in 4 KiB
 * pages; commits count against the manager's budget at `level`. Flags and protections are the
 * MEM_* and PAGE_* values of <hostmalloc/hosting.h>. */
HM_API hm_result hm_virtual_alloc(hm_manager *mgr, void *addr, size_t size, uint32_t type,
                                  uint32_t protect, EMemoryCriticalLevel level, void **out);
HM_API hm_result hm_virtual_free(hm_manager *mgr, void *addr, size_t size, uint32_t free_type);
/* Fill `info` for the page holding `addr`: a region of this manager with its state and
 * protection, another mapping of the process (MEM_COMMIT), or MEM_FREE. Returns the bytes
 * written: sizeof(MEMORY_BASIC_INFORMATION), or 0 when `len` is smaller or `addr` is outside the
 * user address space (at or above 2^47; `info` is then zeroed). Takes no lock: safe
 * with any other thread suspended anywhere. */
HM_API size_t hm_virtual_query(hm_manager *mgr, const void *addr, MEMORY_BASIC_INFORMATION *info,
                               size_t len);
HM_API hm_result hm_virtual_protect(hm_manager *mgr, void *addr, size_t size, uint32_t protect,
                                    uint32_t *old_protect);

typedef struct hm_manager_stats_s {
    size_t limit;     /* the limit in force */
    size_t committed; /* bytes committed by all heaps, the cache and VirtualAlloc */
    size_t peak_committed;
    size_t cached;             /* bytes of address space in the segment cache */
    size_t heaps;              /* live heaps */
    size_t requests[3];        /* allocation requests by level (heaps and VirtualAlloc) */
    size_t failures[3];        /* requests refused by level (budget or OS) */
    size_t faults_injected[3]; /* of those, failed on purpose by fault injection */
    size_t notifications[4];   /* calls of the notify function, by EMemoryAvailable (1..3) */
    size_t virtual_reserved;   /* bytes reserved through hm_virtual_alloc */
    size_t virtual_committed;  /* bytes committed through hm_virtual_alloc */
    size_t runtime_mapped;     /* bytes the runtime mapped by itself (note_acquired) */
} hm_manager_stats_t;

HM_API void hm_manager_stats(hm_manager *mgr, hm_manager_stats_t *out);
HM_API void hm_manager_stats_print(hm_manager *mgr, FILE *out);

/* Fill `out` with a snapshot of `heap`. Exact when no other thread uses the heap meanwhile. */
HM_API void hm_heap_stats(hm_heap *heap, hm_heap_stats_t *out);
/* Print the statistics of `heap` in a few lines, sizes in B/KiB/MiB/GiB, under a header with
 * the process id and program name, to `out` (NULL: the manager's statistics file, else
 * stderr). */
HM_API void hm_heap_stats_print(hm_heap *heap, FILE *out);

/* The same statistics as data: one JSON object on one line (every size in exact bytes), to
 * `out` (NULL: the manager's statistics file, else stderr). Fields: docs/API.md, "Statistics
 * as JSON". Returns the bytes written, 0 when `heap`/`mgr` is NULL or the write failed. */
HM_API size_t hm_heap_stats_json(hm_heap *heap, FILE *out);
HM_API size_t hm_manager_stats_json(hm_manager *mgr, FILE *out);

/* ---- For hosts of real runtimes (docs/RUNTIMES.md) -----------------------------------------
 * What an allocator hook of a runtime (Lua's lua_Alloc, CPython's PyMemAllocatorEx, SQLite's
 * sqlite3_mem_methods) needs on top of IHostMalloc, and what a host embedding several
 * runtimes needs to give them one budget. */

/* The heap of an IHostMalloc instance made by hostmalloc (CreateMalloc), or NULL when `m` is
 * NULL or not such an instance. The instance keeps the heap alive: the heap may be used
 * while the caller holds a reference on `m`. Never aborts. */
HM_API hm_heap *hm_malloc_heap(IHostMalloc *m);
/* The manager whose budget `heap` counts against. */
HM_API hm_manager *hm_heap_manager(hm_heap *heap);

/* Resize with a criticality level: realloc(3) semantics within `heap`, as hm_realloc, but a
 * request that needs a new block is made at `level` (so the reserves of the levels above it
 * are kept) and, when the manager has fault injection configured, asks hm_manager_fault for
 * `level` as the COM door's Alloc does. A shrink (`size` at most the block's usable size)
 * never fails: when a smaller block cannot be had, `p` is returned as it is. `size` 0 frees
 * `p` and returns NULL (the runtimes' convention, unlike hm_realloc). On failure NULL is
 * returned and `p` is untouched. Aborts when `p` is not the start of a hostmalloc block. */
HM_API void *hm_realloc_level(hm_heap *heap, void *p, size_t size, EMemoryCriticalLevel level);

/* Whether `p` is the start of a block of `heap`, without aborting: HM_OK (and its usable
 * size in `*usable` when `usable` is not NULL), HM_ERR_NOT_OWNED (not hostmalloc memory),
 * HM_ERR_NOT_BLOCK (hostmalloc memory, not the start of a block) or HM_ERR_OTHER_HEAP.
 * Decided from out-of-line metadata only; `p` is never read. A freed block of checked mode or
 * of DebugAlloc gives HM_ERR_NOT_BLOCK (its header, in front of `p`, says so); outside them a
 * freed block whose slot is not reused yet is not told apart from a live one. NULL gives
 * HM_ERR_NOT_OWNED. */
HM_API hm_result hm_heap_block(hm_heap *heap, const void *p, size_t *usable);

/* One IHostMemoryManager for every runtime of the process, so that they share one budget.
 * The first call creates it from `config` (NULL: hm_config_init defaults) and returns S_OK;
 * later calls return the same manager and S_FALSE (`config` is then ignored). Each call
 * gives the caller one reference to release; the process keeps one more, so the manager
 * lives until the process exits. E_POINTER when `out` is NULL, E_OUTOFMEMORY. */
HM_API HRESULT hm_shared_host_memory_manager(const hm_config *config, IHostMemoryManager **out);

/* More listeners for the pressure notifications of `mgr`, besides the one function of
 * hm_manager_set_notify (and the COM door's callback): each runtime of a host can hear them.
 * Listeners are called on the notifier thread, one after the other, under the same rules
 * as hm_manager_set_notify's function. At most HM_MAX_LISTENERS per manager. A newcomer
 * hears the current state unless it is High. Returns false when the table is full, the
 * pair is already there, or the notifier thread cannot be started. */
#define HM_MAX_LISTENERS 16
HM_API bool hm_manager_add_listener(hm_manager *mgr, hm_notify_fn fn, void *arg);
/* Remove the listener (fn, arg). When this returns, no call of it is running (unless this
 * is called from inside a notification). Returns false when it was not there. */
HM_API bool hm_manager_remove_listener(hm_manager *mgr, hm_notify_fn fn, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* HOSTMALLOC_HOSTMALLOC_H */
