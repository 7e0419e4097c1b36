/* SPDX-License-Identifier: MIT */
/* mem/budget.c: the budget (budget.h): accounting, ceilings and the pressure states.
 *
 * Accounting. Every byte the engine commits for a manager (a page brought into use, a segment
 * header, a huge block, a VirtualAlloc commit) is counted here at page granularity, on slow
 * paths only: the allocation and free fast paths never touch it.
 *
 * Levels are ceilings (docs/MEMORY-MANAGER.md): task-critical requests may take the total up to
 * limit - reserve_appdomain - reserve_process, AppDomain-critical up to limit - reserve_process,
 * process-critical up to limit. When memory runs short, task-critical requests fail first.
 *
 * Pressure. The committed total is in one of three states: High (below high_pct of the limit;
 * left again at high_pct + 10), Neutral, Low (at or above low_pct; left again below
 * neutral_pct). The hysteresis keeps a total that hovers at a threshold from flapping. */
#include "mem/budget.h"

static size_t sat_sub(size_t a, size_t b) {
    return a > b ? a - b : 0;
}

static size_t pct_of(size_t limit, unsigned pct) {
    if (pct >= 100) return limit;
    return limit / 100 * pct + (limit % 100) * pct / 100;
}

void _hm_budget_init(hm_budget_t *b, size_t limit, const hm_config *c) {
    b->limit = limit;
    b->ceiling[eProcessCritical] = limit;
    b->ceiling[eAppDomainCritical] = sat_sub(limit, c->reserve_process);
    b->ceiling[eTaskCritical] = sat_sub(b->ceiling[eAppDomainCritical], c->reserve_appdomain);
    unsigned low = c->low_pct, neutral = c->neutral_pct, high = c->high_pct;
    if (low == 0 || low > 100) low = 90;
    if (neutral == 0 || neutral > low) neutral = low;
    if (high > neutral) high = neutral;
    b->low_bytes = pct_of(limit, low);
    b->neutral_bytes = pct_of(limit, neutral);
    b->high_bytes = pct_of(limit, high);
    b->high_exit_bytes = pct_of(limit, high + 10 < neutral ? high + 10 : neutral);
    atomic_store(&b->committed, 0);
    atomic_store(&b->peak_committed, 0);
    atomic_store(&b->pressure, eMemoryAvailableHigh);
    atomic_store(&b->shortages, 0);
    atomic_store(&b->changes, 0);
    for (int l = 0; l < 3; l++)
        atomic_store(&b->failures[l], 0);
    _hm_event_init(&b->changed);
    _hm_event_init(&b->given);
}

void _hm_budget_destroy(hm_budget_t *b) {
    _hm_event_destroy(&b->changed);
    _hm_event_destroy(&b->given);
}

static int pressure_of(const hm_budget_t *b, size_t committed, int state) {
    if (committed >= b->low_bytes) return eMemoryAvailableLow;
    if (state == eMemoryAvailableLow && committed >= b->neutral_bytes) return state;
    if (committed < b->high_bytes) return eMemoryAvailableHigh;
    if (state == eMemoryAvailableHigh && committed < b->high_exit_bytes) return state;
    return eMemoryAvailableNeutral;
}

/* Bring the state in line with the committed bytes. The count is read afresh on every pass and
 * the loop ends only when the state it reads is the one the count calls for: two threads whose
 * changes cross could otherwise leave the state of the older count (one's compare-and-swap
 * lands, the other's fails and gave up: a full budget was left Neutral). */
static void pressure_update(hm_budget_t *b) {
    int old = atomic_load_explicit(&b->pressure, memory_order_relaxed);
    for (;;) {
        size_t committed = atomic_load_explicit(&b->committed, memory_order_relaxed);
        int now = pressure_of(b, committed, old);
        if (now == old) return;
        if (atomic_compare_exchange_strong(&b->pressure, &old, now)) {
            atomic_fetch_add_explicit(&b->changes, 1, memory_order_relaxed);
            _hm_event_post(&b->changed);
            old = now;
        }
    }
}

bool _hm_budget_take(hm_budget_t *b, size_t bytes, int level) {
    size_t ceiling = b->ceiling[level];
    size_t cur = atomic_load_explicit(&b->committed, memory_order_relaxed);
    do {
        if (bytes > ceiling || cur > ceiling - bytes) return false;
    } while (!atomic_compare_exchange_weak_explicit(&b->committed, &cur, cur + bytes,
                                                    memory_order_relaxed, memory_order_relaxed));
    size_t now = cur + bytes;
    size_t peak = atomic_load_explicit(&b->peak_committed, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&b->peak_committed, &peak, now,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    if (now >= b->high_bytes) pressure_update(b);
    return true;
}

void _hm_budget_give(hm_budget_t *b, size_t bytes) {
    if (bytes == 0) return;
    atomic_fetch_sub_explicit(&b->committed, bytes, memory_order_relaxed);
    pressure_update(b);
    _hm_event_post(&b->given);
}

void _hm_budget_short(hm_budget_t *b) {
    atomic_store_explicit(&b->pressure, eMemoryAvailableLow, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->shortages, 1, memory_order_relaxed);
    _hm_event_post(&b->changed);
}

void _hm_budget_refused(hm_budget_t *b, int level) {
    atomic_fetch_add_explicit(&b->failures[level], 1, memory_order_relaxed);
}

size_t _hm_budget_available(const hm_budget_t *b) {
    return sat_sub(b->ceiling[eTaskCritical], _hm_budget_committed(b));
}

bool _hm_budget_valid(const hm_budget_t *b) {
    size_t committed = _hm_budget_committed(b);
    return b->ceiling[eTaskCritical] <= b->ceiling[eAppDomainCritical] &&
           b->ceiling[eAppDomainCritical] <= b->ceiling[eProcessCritical] &&
           b->ceiling[eProcessCritical] == b->limit && b->high_bytes <= b->neutral_bytes &&
           b->neutral_bytes <= b->low_bytes && b->low_bytes <= b->limit && committed <= b->limit;
}
