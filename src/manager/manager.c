/* SPDX-License-Identifier: MIT */
/* manager/manager.c: managers: their life, the budget's policy from their configuration, the
 * notifier thread that reports pressure, fault injection, load and trim.
 *
 * The budget (mem/budget.c) counts and says what state the total is in; the heap layer's
 * reclaim loop decides what to try when it refuses. What is left to the manager is to tell the
 * host. Pressure notifications: a change of state, or a request that found memory short, is
 * published by the budget on its `changed` event; the manager's notifier thread sleeps on it and
 * calls the registered function and the listeners with no lock held, at most once per
 * notify_interval_ms (a change to Low excepted: it goes at once), and only when what it would
 * say differs from what it said last (a new shortage repeats Low). So a burst of commits never
 * waits for the callback. */
#include <string.h>

#include "manager/manager.h"

static hm_manager default_mgr;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

static void manager_init(hm_manager *mgr, const hm_config *cfg) {
    memset(mgr, 0, sizeof *mgr);
    hm_config c;
    if (cfg != NULL)
        c = *cfg;
    else
        hm_config_init(&c);
    _hm_arena_init(&mgr->arena, &c, c.limit != 0 ? c.limit : _hm_os_memory_limit());
    for (int i = 0; i < 3; i++) {
        if (c.fault_every[i] != 0 || c.fault_probability[i] > 0) mgr->faults_on = true;
    }
    atomic_store(&mgr->fault_rng, c.fault_seed != 0 ? c.fault_seed : 1);
    atomic_store(&mgr->refs, 1);
    pthread_mutex_init(&mgr->mapped_lock, NULL);
    pthread_mutex_init(&mgr->notify_lock, NULL);
    pthread_cond_init(&mgr->idle_cond, NULL);
}

static void manager_destroy(hm_manager *mgr);

/* A new manager says what is inconsistent in its configuration and, with HM_VERBOSE, the
 * whole of it (the process manager: at the process's first allocation under the override). */
static void announce(hm_manager *mgr) {
    _hm_config_check(&mgr->arena.cfg, mgr->arena.budget.limit);
    if (mgr->arena.cfg.verbose)
        _hm_config_print(&mgr->arena.cfg, mgr->arena.budget.limit, mgr, mgr->is_default);
}

static void default_init(void) {
    manager_init(&default_mgr, NULL);
    default_mgr.is_default = true;
    announce(&default_mgr);
}

hm_manager *hm_manager_default(void) {
    pthread_once(&default_once, default_init);
    return &default_mgr;
}

size_t hm_manager_limit(hm_manager *mgr) {
    return mgr->arena.budget.limit;
}

/* ---- pressure notifications ------------------------------------------------------------------ */
static bool has_listener(const hm_manager *mgr) {
    return mgr->notify_fn != NULL || mgr->listener_count != 0;
}

/* Someone new listens (notify_lock held): they hear the current state unless it is the quiet
 * one, and nothing from before they came. */
static void newcomer_locked(hm_manager *mgr) {
    hm_budget_t *b = &mgr->arena.budget;
    int state = _hm_budget_pressure(b);
    mgr->sent = state == eMemoryAvailableHigh ? state : 0;
    mgr->shortages_seen = atomic_load(&b->shortages) + atomic_load(&b->changes);
    _hm_event_post(&b->changed); /* wake the notifier to say it */
}

static void *notifier_main(void *arg) {
    hm_manager *mgr = arg;
    hm_budget_t *b = &mgr->arena.budget;
    pthread_mutex_lock(&mgr->notify_lock);
    for (;;) {
        uint32_t seen = _hm_event_seq(&b->changed); /* before the look: no post is missed */
        if (mgr->notifier_stop) break;
        int state = _hm_budget_pressure(b);
        /* every change and shortage since the last call: Low is said again after one */
        uint32_t events = atomic_load(&b->shortages) + atomic_load(&b->changes);
        bool say =
            has_listener(mgr) &&
            (state != mgr->sent || (state == eMemoryAvailableLow && events != mgr->shortages_seen));
        uint32_t wait_ms = UINT32_MAX;
        if (say) {
            /* A change to Low is never held back: a runtime told late collects too late (at a
             * high allocation rate the budget is gone within one interval). Only repeats of Low
             * and the other states wait for the interval. */
            uint32_t now = _hm_clock_ms(), interval = mgr->arena.cfg.notify_interval_ms;
            bool to_low = state == eMemoryAvailableLow && mgr->sent != eMemoryAvailableLow;
            if (mgr->sent != 0 && !to_low && !_hm_time_reached(now, mgr->last_sent_ms + interval)) {
                wait_ms = mgr->last_sent_ms + interval - now; /* then say the latest state */
                say = false;
            }
        }
        if (say) {
            hm_notify_fn fn = mgr->notify_fn;
            void *fn_arg = mgr->notify_arg;
            mgr->in_call = true;
            mgr->shortages_seen = events;
            pthread_mutex_unlock(&mgr->notify_lock);
            if (fn != NULL) fn(fn_arg, (EMemoryAvailable)state);
            /* each slot read just before its call: a listener removed by an earlier call of
             * this round (a host that ends a runtime from inside a notification) is not called */
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
            mgr->last_sent_ms = _hm_clock_ms();
            atomic_fetch_add_explicit(&mgr->notifications[state], 1, memory_order_relaxed);
            pthread_cond_broadcast(&mgr->idle_cond);
            continue;
        }
        /* Empty segments are cached: give their memory back once the purge delay has passed,
         * even if no thread allocates again (budget and load stay truthful). */
        bool cached = atomic_load_explicit(&mgr->arena.cache_count, memory_order_relaxed) != 0;
        uint32_t purge_ms = mgr->arena.cfg.purge_delay_ms + 1;
        if (cached && purge_ms < wait_ms) wait_ms = purge_ms;
        pthread_mutex_unlock(&mgr->notify_lock);
        bool moved = _hm_event_wait(&b->changed, seen, wait_ms);
        if (!moved && cached) _hm_cache_purge(&mgr->arena, false);
        pthread_mutex_lock(&mgr->notify_lock);
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
    if (fn != NULL) newcomer_locked(mgr);
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
        newcomer_locked(mgr); /* (the others may hear the state again: harmless) */
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
    pthread_mutex_unlock(&mgr->notify_lock);
    _hm_event_post(&mgr->arena.budget.changed); /* wake it */
    if (!started) return true;
    if (self) {
        pthread_detach(mgr->notifier);
        return false;
    }
    pthread_join(mgr->notifier, NULL);
    return true;
}

/* ---- load ---------------------------------------------------------------------------------- */
void hm_manager_load(hm_manager *mgr, uint32_t *load_pct, size_t *available) {
    /* cached segments past their delay (and freed huge blocks: past it since the last one was
     * made from the cache) are given back first: the figure is what is held */
    hm_arena_t *a = &mgr->arena;
    if (atomic_load_explicit(&a->cache_count, memory_order_relaxed) != 0) _hm_cache_purge(a, false);
    size_t committed = _hm_budget_committed(&a->budget), limit = a->budget.limit;
    if (load_pct != NULL) {
        uint64_t pct = limit == 0 ? 100 : (uint64_t)((double)committed * 100.0 / (double)limit);
        *load_pct = (uint32_t)(pct > 100 ? 100 : pct);
    }
    if (available != NULL) *available = _hm_budget_available(&a->budget);
}

size_t hm_manager_trim(hm_manager *mgr) {
    hm_arena_t *a = &mgr->arena;
    _hm_arena_collect_abandoned(a); /* exited threads' empty pages: into the cache, then out */
    pthread_mutex_lock(&a->cache_lock);
    size_t before = a->cache_bytes;
    pthread_mutex_unlock(&a->cache_lock);
    before += _hm_held_mapped(a); /* the held ring goes too */
    _hm_cache_purge(a, true);
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
    unsigned every = mgr->arena.cfg.fault_every[level];
    if (every != 0) {
        uint64_t n =
            atomic_fetch_add_explicit(&mgr->fault_count[level], 1, memory_order_relaxed) + 1;
        if (n % every == 0) fail = true;
    }
    double p = mgr->arena.cfg.fault_probability[level];
    if (!fail && p > 0) {
        double u = (double)(rng_next(mgr) >> 11) * (1.0 / 9007199254740992.0);
        if (u < p) fail = true;
    }
    if (fail) {
        atomic_fetch_add_explicit(&mgr->faults_injected[level], 1, memory_order_relaxed);
        _hm_budget_refused(&mgr->arena.budget, level);
    }
    return fail;
}

/* ---- life ---------------------------------------------------------------------------------- */
hm_manager *hm_manager_new(const hm_config *cfg) {
    hm_manager *mgr = _hm_meta_alloc(sizeof(hm_manager));
    if (mgr == NULL) return NULL;
    manager_init(mgr, cfg);
    announce(mgr);
    return mgr;
}

void hm_manager_retain(hm_manager *mgr) {
    if (mgr == NULL || mgr->is_default) return;
    atomic_fetch_add_explicit(&mgr->refs, 1, memory_order_relaxed);
}

static void manager_destroy(hm_manager *mgr) {
    if (mgr->arena.cfg.print_stats) _hm_stats_report_manager(mgr);
    _hm_vmem_destroy(mgr);
    _hm_arena_destroy(&mgr->arena);
    pthread_mutex_destroy(&mgr->mapped_lock);
    pthread_mutex_destroy(&mgr->notify_lock);
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
