/* SPDX-License-Identifier: MIT */
/* base/time.c: the millisecond clock, deadlines for timed waits, and events (a counter to sleep
 * on). The engine stamps and compares 32-bit milliseconds (wrap-safe, see _hm_time_reached);
 * only the sleeping functions of pthreads need a struct timespec. */
#include <errno.h>

#include "base/base.h"

uint32_t _hm_clock_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

struct timespec _hm_deadline(uint32_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

void _hm_event_init(hm_event_t *e) {
    pthread_mutex_init(&e->lock, NULL);
    pthread_cond_init(&e->cond, NULL);
    atomic_store_explicit(&e->seq, 0, memory_order_relaxed);
    atomic_store_explicit(&e->waiters, 0, memory_order_relaxed);
}

void _hm_event_destroy(hm_event_t *e) {
    pthread_mutex_destroy(&e->lock);
    pthread_cond_destroy(&e->cond);
}

void _hm_event_post(hm_event_t *e) {
    /* seq_cst on both sides: a waiter that registered before our load is seen, and one that
     * registers after it sees the new count before it sleeps */
    atomic_fetch_add(&e->seq, 1);
    if (atomic_load(&e->waiters) > 0) {
        pthread_mutex_lock(&e->lock);
        pthread_cond_broadcast(&e->cond);
        pthread_mutex_unlock(&e->lock);
    }
}

bool _hm_event_wait(hm_event_t *e, uint32_t seen, uint32_t ms) {
    int saved = errno;
    atomic_fetch_add(&e->waiters, 1);
    pthread_mutex_lock(&e->lock);
    struct timespec until = _hm_deadline(ms == UINT32_MAX ? 0 : ms);
    while (atomic_load(&e->seq) == seen) {
        if (ms == UINT32_MAX)
            pthread_cond_wait(&e->cond, &e->lock);
        else if (pthread_cond_timedwait(&e->cond, &e->lock, &until) != 0)
            break;
    }
    bool moved = atomic_load(&e->seq) != seen;
    pthread_mutex_unlock(&e->lock);
    atomic_fetch_sub(&e->waiters, 1);
    errno = saved;
    return moved;
}
