/* SPDX-License-Identifier: MIT */
/* base/base.h: the bottom layer of hostmalloc, and its one header. What every other layer may
 * use and nothing in it knows about memory management: compiler hints and internal assertions,
 * time in milliseconds, intrusive lists, a wake-up event, the formatter that never allocates,
 * the fatal path and the error sink. The layers and who may include whom: docs/LAYERS.md.
 *
 * Everything here may run inside malloc: nothing allocates. */
#ifndef HM_BASE_H
#define HM_BASE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "hostmalloc/hostmalloc.h"

/* ---- compiler hints ------------------------------------------------------------------------ */
#define hm_likely(x)   __builtin_expect(!!(x), 1)
#define hm_unlikely(x) __builtin_expect(!!(x), 0)
#define hm_noinline    __attribute__((noinline))
#define hm_cold        __attribute__((cold, noinline))
#define hm_inline      static inline __attribute__((always_inline))

/* ---- internal assertions ---------------------------------------------------------------------
 * HM_DEBUG: 0 none (release), 1 cheap ones (hm_assert), 2 expensive ones too (hm_assert_full
 * and the *_valid walks of the engine's structures at slow-path entry and exit). The debug leg
 * of `make test` builds with 2 (CMake -DHM_DEBUG_ASSERT=ON). */
#ifndef HM_DEBUG
#define HM_DEBUG 0
#endif
#if HM_DEBUG > 0
#define hm_assert(c) ((c) ? (void)0 : _hm_assert_fail(#c, __FILE__, __LINE__))
#else
#define hm_assert(c) ((void)0)
#endif
#if HM_DEBUG > 1
#define hm_assert_full(c) hm_assert(c)
#else
#define hm_assert_full(c) ((void)0)
#endif

/* ---- time (time.c) ------------------------------------------------------------------------------
 */
/* Monotonic milliseconds (coarse clock: a few ns a call); wraps after 49 days. */
uint32_t _hm_clock_ms(void);
/* wrap-safe "now is at or past t" for 32-bit millisecond stamps */
hm_inline bool _hm_time_reached(uint32_t now, uint32_t t) {
    return (int32_t)(now - t) >= 0;
}
/* The CLOCK_REALTIME time `ms` milliseconds from now, for pthread_cond_timedwait. */
struct timespec _hm_deadline(uint32_t ms);

/* ---- intrusive doubly linked lists ------------------------------------------------------------
 * `head` is an lvalue pointer to the first node; nodes link through the fields named `next` and
 * `prev` (so one node type can sit on several lists). The unlinked node's links are cleared. */
#define HM_LIST_PUSH(head, node, next, prev)                                                       \
    do {                                                                                           \
        (node)->prev = NULL;                                                                       \
        (node)->next = (head);                                                                     \
        if ((head) != NULL) (head)->prev = (node);                                                 \
        (head) = (node);                                                                           \
    } while (0)
#define HM_LIST_REMOVE(head, node, next, prev)                                                     \
    do {                                                                                           \
        if ((node)->prev != NULL)                                                                  \
            (node)->prev->next = (node)->next;                                                     \
        else                                                                                       \
            (head) = (node)->next;                                                                 \
        if ((node)->next != NULL) (node)->next->prev = (node)->prev;                               \
        (node)->next = (node)->prev = NULL;                                                        \
    } while (0)

/* ---- events (time.c) ----------------------------------------------------------------------------
 * A counter that waiters can sleep on: post() bumps it and wakes whoever waits; a waiter
 * passes the count it saw, so a post between its look and its sleep is never missed. post()
 * takes the lock only when someone waits (one relaxed load otherwise). */
typedef struct hm_event_s {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    _Atomic(uint32_t) seq;
    _Atomic(int) waiters;
} hm_event_t;
void _hm_event_init(hm_event_t *e);
void _hm_event_destroy(hm_event_t *e);
hm_inline uint32_t _hm_event_seq(hm_event_t *e) {
    return atomic_load_explicit(&e->seq, memory_order_acquire);
}
void _hm_event_post(hm_event_t *e);
/* Sleep until the count differs from `seen` or `ms` milliseconds have passed (UINT32_MAX:
 * no limit). True when it moved. */
bool _hm_event_wait(hm_event_t *e, uint32_t seen, uint32_t ms);

/* ---- text without allocation (fmt.c) ------------------------------------------------------------
 */
/* Format into buf: %s, %zu, %u, %p, %d, and %H: a size_t in B, KiB, MiB, GiB... with one
 * decimal ("1.5 KiB"). In a setuid or setgid program %p writes "(address hidden)". Returns the
 * length (truncated to cap - 1; 0 when cap is 0). */
size_t _hm_snprintf(char *buf, size_t cap, const char *fmt, ...);
/* Write all of `len` bytes to fd 2, ignoring errors (errno kept). */
void _hm_write_stderr(const char *msg, size_t len);
/* "hostmalloc: <msg> <ptr>\n" on stderr, then abort. */
__attribute__((noreturn)) void _hm_fatal(const char *msg, const void *ptr);
__attribute__((noreturn)) void _hm_assert_fail(const char *cond, const char *file, int line);
/* "pid 1234 (gcc)": the header of every report. */
size_t _hm_report_who(char *buf, size_t cap);
/* The program's short name (program_invocation_short_name, else /proc/self/comm). */
void _hm_program_name(char *buf, size_t cap);
/* A setuid or setgid program (AT_SECURE): its environment is not trusted. */
bool _hm_secure(void);
/* getenv without touching libc's locks (walks environ); NULL if unset. */
const char *_hm_getenv(const char *name);
/* The error sink of a configuration: its on_error function, else stderr. `kind` is an
 * HM_ERROR_* value, `message` one line ending in a newline. */
void _hm_report(const hm_config *cfg, int kind, const void *ptr, const char *message);

#endif /* HM_BASE_H */
