/* SPDX-License-Identifier: MIT */
/* budget.c: managers, the budget, criticality ceilings, pressure notifications and fault
 * injection.
 *
 * Accounting. Every byte the engine commits for a manager (a page brought into use, a segment
 * header, a huge block, a VirtualAlloc commit) is counted in mgr->committed at page
 * granularity, on slow paths only: the allocation and free fast paths never touch it. A
 * commit is a compare-and-swap that succeeds only while the total stays within the ceiling of
 * the request's level, so the total never exceeds the limit, whatever the number of threads.
 *
 * Levels are ceilings (docs/MEMORY-MANAGER.md): task-critical requests may take the total up to
 * limit - reserve_appdomain - reserve_process, AppDomain-critical up to limit - reserve_process,
 * process-critical up to limit. When memory runs short, task-critical requests fail first.
 *
 * Before a request fails: the manager's segment cache is emptied, the requesting thread's
 * empty pages (the last page of each size class too) are retired and decommitted, Low is
 * reported, and a process-critical request waits up to
 * process_wait_ms for other threads to give memory back (every uncommit wakes it).
 *
 * Pressure. The committed total is in one of three states: High (below high_pct of the limit;
 * left again at high_pct + 10), Neutral, Low (at or above low_pct; left again below
 * neutral_pct). A change of state, or a request refused for lack of budget, is handed to the
 * manager's notifier thread, which calls the registered function and the listeners with no
 * lock held, at most once per notify_interval_ms (a change to Low excepted: it goes at once),
 * and only when what it would say differs from what it said last (a refused request repeats
 * Low). So a burst of commits never waits for the callback. */
#include <string.h>

#include "internal.h"

static hm_manager default_mgr;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

/* ---- limits --------------------------------------------------------------------------------- */
static size_t sat_sub(size_t a, size_t b) {
    return a > b ? a - b : 0;
}

static size_t pct_of(size_t limit, unsigned pct) {
    if (pct >= 100) return limit;
    return limit / 100 * pct + (limit % 100) * pct / 100;
}

void _hm_manager_init(hm_manager *mgr, const hm_config *cfg) {
    memset(mgr, 0, sizeof *mgr);
    if (cfg != NULL)
        mgr->cfg = *cfg;
    else
        hm_config_init(&mgr->cfg);
    hm_config *c = &mgr->cfg;
    mgr->limit = c->limit != 0 ? c->limit : _hm_prim_memory_limit();
    mgr->ceiling[eProcessCritical] = mgr->limit;
    mgr->ceiling[eAppDomainCritical] = sat_sub(mgr->limit, c->reserve_process);
    mgr->ceiling[eTaskCritical] = sat_sub(mgr->ceiling[eAppDomainCritical], c->reserve_appdomain);
    unsigned low = c->low_pct, neutral = c->neutral_pct, high = c->high_pct;
    if (low == 0 || low > 100) low = 90;
    if (neutral == 0 || neutral > low) neutral = low;
    if (high > neutral) high = neutral;
    mgr->low_bytes = pct_of(mgr->limit, low);
    mgr->neutral_bytes = pct_of(mgr->limit, neutral);
    mgr->high_bytes = pct_of(mgr->limit, high);
    mgr->high_exit_bytes = pct_of(mgr->limit, high + 10 < neutral ? high + 10 : neutral);
    atomic_store(&mgr->pressure, eMemoryAvailableHigh);
    for (int i = 0; i < 3; i++) {
        if (c->fault_every[i] != 0 || c->fault_probability[i] > 0) mgr->faults_on = true;
    }
    atomic_store(&mgr->fault_rng, c->fault_seed != 0 ? c->fault_seed : 1);
    atomic_store(&mgr->refs, 1);
    pthread_mutex_init(&mgr->cache_lock, NULL);
    pthread_mutex_init(&mgr->heaps_lock, NULL);
    pthread_mutex_init(&mgr->wait_lock, NULL);
    pthread_cond_init(&mgr->wait_cond, NULL);
    pthread_mutex_init(&mgr->mapped_lock, NULL);
    pthread_mutex_init(&mgr->notify_lock, NULL);
    pthread_cond_init(&mgr->notify_cond, NULL);
    pthread_cond_init(&mgr->idle_cond, NULL);
}

static void manager_destroy(hm_manager *mgr);

/* A new manager says what is inconsistent in its configuration and, with HM_VERBOSE, the
 * whole of it (the process manager: at the process's first allocation under the override). */
static void announce(hm_manager *mgr) {
    _hm_config_check(&mgr->cfg, mgr->limit);
    if (mgr->cfg.verbose) _hm_config_print(&mgr->cfg, mgr->limit, mgr, mgr->is_default);
}

static void default_init(void) {
    _hm_manager_init(&default_mgr, NULL);
    default_mgr.is_default = true;
    announce(&default_mgr);
}

hm_manager *_hm_manager_default(void) {
    pthread_once(&default_once, default_init);
    return &default_mgr;
}

hm_manager *hm_manager_default(void) {
    return _hm_manager_default();
}

size_t hm_manager_limit(hm_manager *mgr) {
    return mgr->limit;
}

/* ---- pressure ---------------------------------------------------------------------------- */
static int pressure_of(const hm_manager *mgr, size_t committed, int state) {
    if (committed >= mgr->low_bytes) return eMemoryAvailableLow;
    if (state == eMemoryAvailableLow && committed >= mgr->neutral_bytes) return state;
    if (committed < mgr->high_bytes) return eMemoryAvailableHigh;
    if (state == eMemoryAvailableHigh && committed < mgr->high_exit_bytes) return state;
    return eMemoryAvailableNeutral;
}

/* Hand `state` to the notifier (if one runs). Never blocks for longer than the notifier
 * holds notify_lock, which it never does across a call. */
static bool has_listener(const hm_manager *mgr) {
    return mgr->notify_fn != NULL || mgr->listener_count != 0;
}

static void notify_post(hm_manager *mgr, int state) {
    pthread_mutex_lock(&mgr->notify_lock);
    if (mgr->notifier_started && has_listener(mgr)) {
        mgr->pending = state;
        pthread_cond_signal(&mgr->notify_cond);
    }
    pthread_mutex_unlock(&mgr->notify_lock);
}

static void pressure_update(hm_manager *mgr, size_t committed) {
    int old = atomic_load_explicit(&mgr->pressure, memory_order_relaxed);
    int now = pressure_of(mgr, committed, old);
    if (now == old) return;
    if (!atomic_compare_exchange_strong(&mgr->pressure, &old, now)) return;
    if (mgr->notifier_started) notify_post(mgr, now);
}

static void *notifier_main(void *arg) {
    hm_manager *mgr = arg;
    pthread_mutex_lock(&mgr->notify_lock);
    for (;;) {
        while (!mgr->notifier_stop && (mgr->pending == 0 || !has_listener(mgr))) {
            if (atomic_load_explicit(&mgr->cache_count, memory_order_relaxed) == 0) {
                pthread_cond_wait(&mgr->notify_cond, &mgr->notify_lock);
                continue;
            }
            /* Empty segments are cached: give their memory back once the purge delay has
             * passed, even if no thread allocates again (budget and load stay truthful). */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            long wait_ms = (long)mgr->cfg.purge_delay_ms + 1;
            ts.tv_sec += wait_ms / 1000;
            ts.tv_nsec += (wait_ms % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if (pthread_cond_timedwait(&mgr->notify_cond, &mgr->notify_lock, &ts) != 0) {
                pthread_mutex_unlock(&mgr->notify_lock);
                _hm_cache_purge(mgr, false);
                pthread_mutex_lock(&mgr->notify_lock);
            }
        }
        if (mgr->notifier_stop) break;
        uint32_t now = _hm_prim_clock_ms();
        uint32_t interval = mgr->cfg.notify_interval_ms;
        /* A change to Low is never held back: a runtime told late collects too late (at
         * a high allocation rate the budget is gone within one interval). Only repeats of
         * Low (refusals) and the other states wait for the interval. */
        bool to_low = mgr->pending == eMemoryAvailableLow && mgr->sent != eMemoryAvailableLow;
        if (mgr->sent != 0 && !to_low && !_hm_time_reached(now, mgr->last_sent_ms + interval)) {
            /* rate limit: sleep out the interval, then report the latest state */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint32_t wait = mgr->last_sent_ms + interval - now;
            ts.tv_sec += wait / 1000;
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&mgr->notify_cond, &mgr->notify_lock, &ts);
            continue;
        }
        int state = mgr->pending;
        mgr->pending = 0;
        if (state == mgr->sent && state != eMemoryAvailableLow) continue;
        hm_notify_fn fn = mgr->notify_fn;
        void *fn_arg = mgr->notify_arg;
        mgr->in_call = true;
        pthread_mutex_unlock(&mgr->notify_lock);
        if (fn != NULL) fn(fn_arg, (EMemoryAvailable)state);
        /* each slot read just before its call: a listener removed by an earlier call of this
         * round (a host that ends a runtime from inside a notification) is not called */
        for (unsigned i = 0; i < HM_MAX_LISTENERS; i++) {
            pthread_mutex_lock(&mgr->notify_lock);
            hm_notify_fn lfn = mgr->listeners[i].fn;
            void *larg = mgr->listeners[i].arg;
            pthread_mutex_unlock(&mgr->notify_lock);
            if (lfn != NULL) lfn(larg, (EMemoryAvailable)state);
        }
        pthread_mutex_lock(&mgr->notify_lock);
        mgr->in_call = false;
        mgr->sent = state;
        mgr->last_sent_ms = _hm_prim_clock_ms();
        atomic_fetch_add_explicit(&mgr->notifications[state], 1, memory_order_relaxed);
        pthread_cond_broadcast(&mgr->idle_cond);
    }
    bool destroy = mgr->destroy_on_exit;
    pthread_mutex_unlock(&mgr->notify_lock);
    if (destroy) manager_destroy(mgr);
    return NULL;
}

static bool notifier_start_locked(hm_manager *mgr);

bool hm_manager_set_notify(hm_manager *mgr, hm_notify_fn fn, void *arg) {
    if (mgr == NULL) return false;
    pthread_mutex_lock(&mgr->notify_lock);
    if (fn != NULL && !notifier_start_locked(mgr)) {
        pthread_mutex_unlock(&mgr->notify_lock);
        return false;
    }
    bool self = mgr->notifier_started && pthread_equal(pthread_self(), mgr->notifier);
    while (mgr->in_call && !self)
        pthread_cond_wait(&mgr->idle_cond, &mgr->notify_lock);
    mgr->notify_fn = fn;
    mgr->notify_arg = arg;
    mgr->sent = 0;
    /* a newcomer hears the current state unless it is the quiet one */
    int state = atomic_load(&mgr->pressure);
    if (fn != NULL && state != eMemoryAvailableHigh)
        mgr->pending = state;
    else if (mgr->listener_count == 0)
        mgr->pending = 0; /* what was still to be said, listeners still hear */
    if (mgr->pending != 0) pthread_cond_signal(&mgr->notify_cond);
    pthread_mutex_unlock(&mgr->notify_lock);
    return true;
}

/* Start the notifier thread if it does not run yet; notify_lock held. */
static bool notifier_start_locked(hm_manager *mgr) {
    if (mgr->notifier_started) return true;
    if (pthread_create(&mgr->notifier, NULL, notifier_main, mgr) != 0) return false;
    mgr->notifier_started = true;
    return true;
}

bool hm_manager_add_listener(hm_manager *mgr, hm_notify_fn fn, void *arg) {
    if (mgr == NULL || fn == NULL) return false;
    pthread_mutex_lock(&mgr->notify_lock);
    int slot = -1;
    bool dup = false;
    for (int i = 0; i < HM_MAX_LISTENERS; i++) {
        if (mgr->listeners[i].fn == fn && mgr->listeners[i].arg == arg) dup = true;
        if (mgr->listeners[i].fn == NULL && slot < 0) slot = i;
    }
    bool ok = !dup && slot >= 0 && notifier_start_locked(mgr);
    if (ok) {
        mgr->listeners[slot].fn = fn;
        mgr->listeners[slot].arg = arg;
        mgr->listener_count++;
        /* the newcomer hears the current state unless it is the quiet one (the others may
         * hear it again: a repeat is harmless) */
        int state = atomic_load(&mgr->pressure);
        if (state != eMemoryAvailableHigh) {
            mgr->pending = state;
            mgr->sent = 0;
            pthread_cond_signal(&mgr->notify_cond);
        }
    }
    pthread_mutex_unlock(&mgr->notify_lock);
    return ok;
}

bool hm_manager_remove_listener(hm_manager *mgr, hm_notify_fn fn, void *arg) {
    if (mgr == NULL || fn == NULL) return false;
    pthread_mutex_lock(&mgr->notify_lock);
    bool self = mgr->notifier_started && pthread_equal(pthread_self(), mgr->notifier);
    bool found = false;
    for (int i = 0; i < HM_MAX_LISTENERS; i++) {
        if (mgr->listeners[i].fn == fn && mgr->listeners[i].arg == arg) {
            mgr->listeners[i].fn = NULL;
            mgr->listeners[i].arg = NULL;
            mgr->listener_count--;
            found = true;
            break;
        }
    }
    /* the notifier may be calling it from its copy: wait for that call to end */
    while (found && mgr->in_call && !self)
        pthread_cond_wait(&mgr->idle_cond, &mgr->notify_lock);
    pthread_mutex_unlock(&mgr->notify_lock);
    return found;
}

/* Stop the notifier thread. False when called on that thread (from inside a call): it then
 * destroys the manager itself once the call returns. */
static bool notifier_stop(hm_manager *mgr) {
    pthread_mutex_lock(&mgr->notify_lock);
    bool started = mgr->notifier_started;
    bool self = started && pthread_equal(pthread_self(), mgr->notifier);
    mgr->notifier_stop = true;
    mgr->notify_fn = NULL;
    mgr->destroy_on_exit = self;
    pthread_cond_signal(&mgr->notify_cond);
    pthread_mutex_unlock(&mgr->notify_lock);
    if (!started) return true;
    if (self) {
        pthread_detach(mgr->notifier);
        return false;
    }
    pthread_join(mgr->notifier, NULL);
    return true;
}

/* ---- the budget -------------------------------------------------------------------------- */
static bool budget_take(hm_manager *mgr, size_t bytes, int level) {
    size_t ceiling = mgr->ceiling[level];
    size_t cur = atomic_load_explicit(&mgr->committed, memory_order_relaxed);
    do {
        if (bytes > ceiling || cur > ceiling - bytes) return false;
    } while (!atomic_compare_exchange_weak_explicit(&mgr->committed, &cur, cur + bytes,
                                                    memory_order_relaxed, memory_order_relaxed));
    size_t now = cur + bytes;
    size_t peak = atomic_load_explicit(&mgr->peak_committed, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&mgr->peak_committed, &peak, now,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    if (now >= mgr->high_bytes) pressure_update(mgr, now);
    return true;
}

static void budget_give(hm_manager *mgr, size_t bytes) {
    size_t now = atomic_fetch_sub_explicit(&mgr->committed, bytes, memory_order_relaxed) - bytes;
    pressure_update(mgr, now);
    if (atomic_load_explicit(&mgr->waiters, memory_order_relaxed) > 0) {
        pthread_mutex_lock(&mgr->wait_lock);
        pthread_cond_broadcast(&mgr->wait_cond);
        pthread_mutex_unlock(&mgr->wait_lock);
    }
}

void _hm_heap_add_committed(hm_heap *heap, size_t bytes) {
    size_t now = atomic_fetch_add_explicit(&heap->committed, bytes, memory_order_relaxed) + bytes;
    size_t peak = atomic_load_explicit(&heap->peak_committed, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&heap->peak_committed, &peak, now,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* Wait (process-critical) until memory is given back or the deadline passes. */
static bool budget_wait(hm_manager *mgr, size_t bytes, int level, uint32_t deadline) {
    atomic_fetch_add(&mgr->waiters, 1);
    pthread_mutex_lock(&mgr->wait_lock);
    bool ok = false;
    for (;;) {
        if (budget_take(mgr, bytes, level)) {
            ok = true;
            break;
        }
        uint32_t now = _hm_prim_clock_ms();
        if (_hm_time_reached(now, deadline)) break;
        uint32_t wait = deadline - now;
        if (wait > 10) wait = 10; /* re-check: a give may race with our sleep */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += (long)wait * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&mgr->wait_cond, &mgr->wait_lock, &ts);
    }
    pthread_mutex_unlock(&mgr->wait_lock);
    atomic_fetch_sub(&mgr->waiters, 1);
    return ok;
}

/* The slow part shared by heap and VirtualAlloc commits. */
static hm_noinline bool commit_slow(hm_manager *mgr, hm_theap_t *th, size_t bytes, int level,
                                    bool quick) {
    /* 1. the requesting thread's empty pages, the last of each size class included, and those
     *    of sub-heaps left by exited threads, in every heap of the manager (their empty
     *    segments go to the cache) */
    if (th != NULL) _hm_theap_collect(th, true);
    _hm_manager_collect_abandoned(mgr);
    /* 2. cached empty segments go back to the OS */
    _hm_cache_purge(mgr, true);
    if (budget_take(mgr, bytes, level)) return true;
    if (quick) return false; /* the caller reclaims its own pages and asks again */
    /* 3. memory is short: say so. Every other thread gives its empty memory back at its next
     * allocation slow path (the collect epoch). The state becomes Low, so that memory coming
     * back is reported too (Neutral below neutral_pct, High below high_pct). */
    atomic_fetch_add_explicit(&mgr->collect_epoch, 1, memory_order_relaxed);
    atomic_store_explicit(&mgr->pressure, eMemoryAvailableLow, memory_order_relaxed);
    if (mgr->notifier_started) notify_post(mgr, eMemoryAvailableLow);
    /* 4. a process-critical request may wait for memory to come back */
    if (level == eProcessCritical && mgr->cfg.process_wait_ms > 0 &&
        budget_wait(mgr, bytes, level, _hm_prim_clock_ms() + mgr->cfg.process_wait_ms))
        return true;
    atomic_fetch_add_explicit(&mgr->failures[level], 1, memory_order_relaxed);
    return false;
}

bool _hm_commit(hm_theap_t *th, size_t bytes, int level, hm_commit_mode_t mode) {
    hm_heap *heap = th->heap;
    hm_manager *mgr = heap->mgr;
    if ((unsigned)level > eProcessCritical) level = eProcessCritical;
    if (hm_unlikely(!budget_take(mgr, bytes, level)) &&
        !commit_slow(mgr, mode == HM_COMMIT_FULL ? th : NULL, bytes, level,
                     mode == HM_COMMIT_QUICK))
        return false;
    _hm_heap_add_committed(heap, bytes);
    return true;
}

bool _hm_commit_mgr(hm_manager *mgr, size_t bytes, int level) {
    if ((unsigned)level > eProcessCritical) level = eProcessCritical;
    return budget_take(mgr, bytes, level) || commit_slow(mgr, NULL, bytes, level, false);
}

void _hm_heap_account_release(hm_heap *heap, hm_manager *mgr, size_t bytes) {
    if (bytes == 0) return;
    if (heap != NULL) atomic_fetch_sub_explicit(&heap->committed, bytes, memory_order_relaxed);
    budget_give(mgr, bytes);
}

void _hm_uncommit(hm_heap *heap, size_t bytes) {
    _hm_heap_account_release(heap, heap->mgr, bytes);
}

/* ---- load ---------------------------------------------------------------------------------- */
void hm_manager_load(hm_manager *mgr, uint32_t *load_pct, size_t *available) {
    /* cached segments past their delay are given back first: the figure is what is held */
    if (atomic_load_explicit(&mgr->cache_count, memory_order_relaxed) != 0)
        _hm_cache_purge(mgr, false);
    size_t committed = atomic_load_explicit(&mgr->committed, memory_order_relaxed);
    if (load_pct != NULL) {
        uint64_t pct =
            mgr->limit == 0 ? 100 : (uint64_t)((double)committed * 100.0 / (double)mgr->limit);
        *load_pct = (uint32_t)(pct > 100 ? 100 : pct);
    }
    if (available != NULL) *available = sat_sub(mgr->ceiling[eTaskCritical], committed);
}

size_t hm_manager_trim(hm_manager *mgr) {
    size_t before;
    _hm_manager_collect_abandoned(mgr); /* exited threads' empty pages: into the cache, then out */
    pthread_mutex_lock(&mgr->cache_lock);
    before = mgr->cache_bytes;
    pthread_mutex_unlock(&mgr->cache_lock);
    before += _hm_debug_quarantine_mapped(mgr); /* the quarantine goes too */
    _hm_cache_purge(mgr, true);
    return before;
}

/* ---- fault injection ------------------------------------------------------------------------ */
bool hm_manager_faults_enabled(const hm_manager *mgr) {
    return mgr != NULL && mgr->faults_on;
}

/* xorshift64*: one step as a compare-and-swap, so the sequence is the same for a seed and an
 * order of requests, whatever threads make them. */
static uint64_t rng_next(hm_manager *mgr) {
    uint64_t x = atomic_load_explicit(&mgr->fault_rng, memory_order_relaxed), n;
    do {
        n = x;
        n ^= n >> 12;
        n ^= n << 25;
        n ^= n >> 27;
    } while (!atomic_compare_exchange_weak_explicit(&mgr->fault_rng, &x, n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return n * 0x2545F4914F6CDD1DULL;
}

bool hm_manager_fault(hm_manager *mgr, EMemoryCriticalLevel level) {
    if (mgr == NULL || !mgr->faults_on || (unsigned)level > eProcessCritical) return false;
    bool fail = false;
    unsigned every = mgr->cfg.fault_every[level];
    if (every != 0) {
        uint64_t n =
            atomic_fetch_add_explicit(&mgr->fault_count[level], 1, memory_order_relaxed) + 1;
        if (n % every == 0) fail = true;
    }
    double p = mgr->cfg.fault_probability[level];
    if (!fail && p > 0) {
        double u = (double)(rng_next(mgr) >> 11) * (1.0 / 9007199254740992.0);
        if (u < p) fail = true;
    }
    if (fail) {
        atomic_fetch_add_explicit(&mgr->faults_injected[level], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&mgr->failures[level], 1, memory_order_relaxed);
    }
    return fail;
}

/* ---- life ---------------------------------------------------------------------------------- */
hm_manager *hm_manager_new(const hm_config *cfg) {
    hm_manager *mgr = _hm_meta_alloc(sizeof(hm_manager));
    if (mgr == NULL) return NULL;
    _hm_manager_init(mgr, cfg);
    announce(mgr);
    return mgr;
}

void hm_manager_retain(hm_manager *mgr) {
    if (mgr == NULL || mgr->is_default) return;
    atomic_fetch_add_explicit(&mgr->refs, 1, memory_order_relaxed);
}

static void manager_destroy(hm_manager *mgr) {
    if (mgr->cfg.print_stats) _hm_stats_report_manager(mgr);
    _hm_vmem_destroy(mgr);
    _hm_debug_quarantine_clear(mgr);
    _hm_cache_clear(mgr);
    pthread_mutex_destroy(&mgr->cache_lock);
    pthread_mutex_destroy(&mgr->heaps_lock);
    pthread_mutex_destroy(&mgr->wait_lock);
    pthread_cond_destroy(&mgr->wait_cond);
    pthread_mutex_destroy(&mgr->mapped_lock);
    pthread_mutex_destroy(&mgr->notify_lock);
    pthread_cond_destroy(&mgr->notify_cond);
    pthread_cond_destroy(&mgr->idle_cond);
    _hm_meta_free(mgr, sizeof(hm_manager));
}

void hm_manager_release(hm_manager *mgr) {
    if (mgr == NULL || mgr->is_default) return;
    if (atomic_fetch_sub_explicit(&mgr->refs, 1, memory_order_acq_rel) != 1) return;
    if (!notifier_stop(mgr)) return; /* released from inside a call: the notifier finishes */
    manager_destroy(mgr);
}

void hm_manager_note_acquired(hm_manager *mgr, void *start, size_t size) {
    if (mgr == NULL) return;
    atomic_fetch_add_explicit(&mgr->runtime_mapped, size, memory_order_relaxed);
    pthread_mutex_lock(&mgr->mapped_lock);
    for (size_t i = 0; i < sizeof mgr->mapped / sizeof mgr->mapped[0]; i++) {
        if (mgr->mapped[i].start == 0) {
            mgr->mapped[i].start = (uintptr_t)start;
            mgr->mapped[i].size = size;
            break;
        }
    }
    /* a full table only loses the subtraction at release; the figure stays an upper bound */
    pthread_mutex_unlock(&mgr->mapped_lock);
}

void hm_manager_note_released(hm_manager *mgr, void *start) {
    if (mgr == NULL || start == NULL) return;
    pthread_mutex_lock(&mgr->mapped_lock);
    for (size_t i = 0; i < sizeof mgr->mapped / sizeof mgr->mapped[0]; i++) {
        if (mgr->mapped[i].start == (uintptr_t)start) {
            atomic_fetch_sub_explicit(&mgr->runtime_mapped, mgr->mapped[i].size,
                                      memory_order_relaxed);
            mgr->mapped[i].start = 0;
            mgr->mapped[i].size = 0;
            break;
        }
    }
    pthread_mutex_unlock(&mgr->mapped_lock);
}
