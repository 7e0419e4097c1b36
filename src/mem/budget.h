/* SPDX-License-Identifier: MIT */
/* mem/budget.h: the budget, a pure accountant (budget.c). It takes and gives bytes against a
 * limit with a ceiling per criticality level, and says how much pressure the total is under.
 * It never reclaims, waits or calls anyone: a refusal is an answer (false), and the one reclaim
 * loop of the heap layer (heap.c) decides what to try next. Two events publish what happens
 * here to whoever sleeps on them: `changed` (a change of pressure state, a refusal) wakes the
 * manager's notifier thread; `given` (memory given back) wakes requests waiting for memory. */
#ifndef HM_MEM_BUDGET_H
#define HM_MEM_BUDGET_H

#include "base/base.h"

typedef struct hm_budget_s {
    size_t limit;      /* the limit in force */
    size_t ceiling[3]; /* per level: what committed may reach */
    size_t low_bytes, neutral_bytes, high_bytes, high_exit_bytes; /* pressure thresholds */
    _Atomic(size_t) committed;                                    /* bytes counted now */
    _Atomic(size_t) peak_committed;
    _Atomic(int) pressure;       /* the state committed is in (EMemoryAvailable) */
    _Atomic(uint32_t) changes;   /* changes of state */
    _Atomic(uint32_t) shortages; /* requests that found memory short (_hm_budget_short) */
    _Atomic(size_t) failures[3]; /* requests refused for good, by level (and injected faults) */
    hm_event_t changed;          /* posted at a change of state and at a refusal */
    hm_event_t given;            /* posted when bytes are given back (only waiters pay for it) */
} hm_budget_t;

/* `limit` with the thresholds and reserves of `cfg` (percentages outside 1..100 are taken as
 * the defaults; the states are ordered high <= neutral <= low). */
void _hm_budget_init(hm_budget_t *b, size_t limit, const hm_config *cfg);
void _hm_budget_destroy(hm_budget_t *b);
/* Count `bytes` if the total stays within the ceiling of `level` (0..2): true, or false and
 * nothing counted. One compare-and-swap: the total never passes the limit, whatever the number
 * of threads. */
bool _hm_budget_take(hm_budget_t *b, size_t bytes, int level);
void _hm_budget_give(hm_budget_t *b, size_t bytes);
/* A request was refused and what was empty is given back: memory is short. The state becomes
 * Low (so that memory coming back is reported too) and the shortage is published (a repeated
 * Low for the manager's listeners). */
void _hm_budget_short(hm_budget_t *b);
/* A request of `level` was refused for good: counted. */
void _hm_budget_refused(hm_budget_t *b, int level);
hm_inline int _hm_budget_pressure(const hm_budget_t *b) {
    return atomic_load_explicit(&((hm_budget_t *)b)->pressure, memory_order_relaxed);
}
hm_inline size_t _hm_budget_committed(const hm_budget_t *b) {
    return atomic_load_explicit(&((hm_budget_t *)b)->committed, memory_order_relaxed);
}
/* Bytes a task-critical request could still take. */
size_t _hm_budget_available(const hm_budget_t *b);
/* The invariants: ceilings ordered and within the limit, thresholds ordered, the total within
 * the limit. */
bool _hm_budget_valid(const hm_budget_t *b);

#endif /* HM_MEM_BUDGET_H */
