/* SPDX-License-Identifier: MIT */
/* test_budget.c: the budget (mem/budget.h) alone, the accountant below every other part of the
 * mem layer: the ceiling of each criticality level (the reserves), exact totals (also with
 * threads taking and giving at once), the peak, the pressure states and their hysteresis, the
 * shortage and refusal counts, the two events, the invariants and the bytes still available.
 *
 * Every figure asserted is one the budget computes from what the test gave it: no time, no
 * machine state. The threaded test meets at barriers, so what it asserts does not depend on how
 * the threads are scheduled. */
#define _GNU_SOURCE
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "mem/budget.h"
#include "test_util.h"

#define PAGE   ((size_t)4096)
#define LIMIT  (1000 * PAGE) /* a multiple of 100: every percentage is exact */
#define PCT(p) (LIMIT / 100 * (p))

/* A configuration with the given reserves and thresholds, nothing else of it matters here. */
static hm_config cfg_of(size_t res_appdomain, size_t res_process, unsigned low, unsigned neutral,
                        unsigned high) {
    hm_config c = tu_reserve_config(LIMIT, res_appdomain, res_process);
    c.low_pct = low;
    c.neutral_pct = neutral;
    c.high_pct = high;
    return c;
}

static size_t committed(const hm_budget_t *b) {
    return _hm_budget_committed(b);
}

/* ---- ceilings ---------------------------------------------------------------------------------
 */
static void test_ceilings_per_level(void **state) {
    (void)state;
    hm_config c = cfg_of(200 * PAGE, 100 * PAGE, 90, 80, 50);
    hm_budget_t b;
    _hm_budget_init(&b, LIMIT, &c);
    assert_int_equal(b.limit, LIMIT);
    assert_int_equal(b.ceiling[eProcessCritical], LIMIT);
    assert_int_equal(b.ceiling[eAppDomainCritical], LIMIT - 100 * PAGE);
    assert_int_equal(b.ceiling[eTaskCritical], LIMIT - 300 * PAGE);
    assert_true(_hm_budget_valid(&b));

    /* task-critical: up to its ceiling exactly, not a byte more */
    assert_true(_hm_budget_take(&b, 700 * PAGE - 1, eTaskCritical));
    assert_true(_hm_budget_take(&b, 1, eTaskCritical));
    assert_int_equal(committed(&b), 700 * PAGE);
    assert_false(_hm_budget_take(&b, 1, eTaskCritical));
    assert_int_equal(committed(&b), 700 * PAGE); /* a refusal counts nothing */
    assert_int_equal(_hm_budget_available(&b), 0);
    /* AppDomain-critical: the AppDomain reserve is its own */
    assert_false(_hm_budget_take(&b, 200 * PAGE + 1, eAppDomainCritical));
    assert_true(_hm_budget_take(&b, 200 * PAGE, eAppDomainCritical));
    assert_false(_hm_budget_take(&b, 1, eAppDomainCritical));
    assert_int_equal(committed(&b), 900 * PAGE);
    /* process-critical: up to the limit */
    assert_false(_hm_budget_take(&b, 100 * PAGE + 1, eProcessCritical));
    assert_true(_hm_budget_take(&b, 100 * PAGE, eProcessCritical));
    assert_int_equal(committed(&b), LIMIT);
    assert_false(_hm_budget_take(&b, 1, eProcessCritical));
    assert_true(_hm_budget_valid(&b));

    /* sizes that overflow any sum are refused, whatever the total */
    _hm_budget_give(&b, LIMIT);
    assert_int_equal(committed(&b), 0);
    assert_false(_hm_budget_take(&b, SIZE_MAX, eProcessCritical));
    assert_false(_hm_budget_take(&b, LIMIT + 1, eProcessCritical));
    assert_true(_hm_budget_take(&b, 1, eProcessCritical));
    assert_false(_hm_budget_take(&b, SIZE_MAX, eProcessCritical));
    assert_false(_hm_budget_take(&b, LIMIT, eProcessCritical));
    assert_int_equal(committed(&b), 1);
    _hm_budget_give(&b, 1);
    assert_int_equal(committed(&b), 0);
    _hm_budget_destroy(&b);
}

/* Reserves larger than what is left: the ceilings saturate at 0 and stay ordered. */
static void test_reserves_saturate(void **state) {
    (void)state;
    hm_config c = cfg_of(LIMIT, LIMIT / 2, 90, 80, 50);
    hm_budget_t b;
    _hm_budget_init(&b, LIMIT, &c);
    assert_int_equal(b.ceiling[eTaskCritical], 0);
    assert_int_equal(b.ceiling[eAppDomainCritical], LIMIT / 2);
    assert_int_equal(b.ceiling[eProcessCritical], LIMIT);
    assert_true(_hm_budget_valid(&b));
    assert_false(_hm_budget_take(&b, 1, eTaskCritical));
    assert_int_equal(_hm_budget_available(&b), 0);
    assert_true(_hm_budget_take(&b, PAGE, eAppDomainCritical));
    _hm_budget_give(&b, PAGE);
    _hm_budget_destroy(&b);

    c = cfg_of(0, 2 * LIMIT, 90, 80, 50);
    _hm_budget_init(&b, LIMIT, &c);
    assert_int_equal(b.ceiling[eTaskCritical], 0);
    assert_int_equal(b.ceiling[eAppDomainCritical], 0);
    assert_int_equal(b.ceiling[eProcessCritical], LIMIT);
    assert_true(_hm_budget_valid(&b));
    _hm_budget_destroy(&b);
}

/* ---- available, peak ---------------------------------------------------------------------------
 */
static void test_available(void **state) {
    (void)state;
    hm_config c = cfg_of(100 * PAGE, 50 * PAGE, 90, 80, 50);
    hm_budget_t b;
    _hm_budget_init(&b, LIMIT, &c);
    assert_int_equal(_hm_budget_available(&b), 850 * PAGE);
    assert_true(_hm_budget_take(&b, 300 * PAGE, eTaskCritical));
    assert_int_equal(_hm_budget_available(&b), 550 * PAGE);
    /* above the task-critical ceiling (taken by a higher level): 0, not a wrapped figure */
    assert_true(_hm_budget_take(&b, 600 * PAGE, eProcessCritical));
    assert_int_equal(_hm_budget_available(&b), 0);
    _hm_budget_give(&b, 600 * PAGE);
    assert_int_equal(_hm_budget_available(&b), 550 * PAGE);
    _hm_budget_give(&b, 300 * PAGE);
    assert_int_equal(_hm_budget_available(&b), 850 * PAGE);
    _hm_budget_destroy(&b);
}

static void test_peak(void **state) {
    (void)state;
    hm_config c = cfg_of(0, 0, 90, 80, 50);
    hm_budget_t b;
    _hm_budget_init(&b, LIMIT, &c);
    assert_int_equal(atomic_load(&b.peak_committed), 0);
    assert_true(_hm_budget_take(&b, 10 * PAGE, eTaskCritical));
    assert_true(_hm_budget_take(&b, 30 * PAGE, eTaskCritical));
    assert_int_equal(atomic_load(&b.peak_committed), 40 * PAGE);
    _hm_budget_give(&b, 35 * PAGE);
    assert_int_equal(atomic_load(&b.peak_committed), 40 * PAGE); /* a give leaves the peak */
    assert_true(_hm_budget_take(&b, 20 * PAGE, eTaskCritical));
    assert_int_equal(atomic_load(&b.peak_committed), 40 * PAGE); /* 25 pages: below it */
    assert_true(_hm_budget_take(&b, 20 * PAGE, eTaskCritical));
    assert_int_equal(atomic_load(&b.peak_committed), 45 * PAGE);
    assert_false(_hm_budget_take(&b, LIMIT, eTaskCritical));
    assert_int_equal(atomic_load(&b.peak_committed), 45 * PAGE); /* a refusal leaves it */
    _hm_budget_give(&b, 45 * PAGE);
    assert_int_equal(committed(&b), 0);
    _hm_budget_destroy(&b);
}

/* ---- pressure ----------------------------------------------------------------------------------
 */
/* Move the total to `target` bytes (take or give the difference). */
static void move_to(hm_budget_t *b, size_t target) {
    size_t now = committed(b);
    if (target > now)
        assert_true(_hm_budget_take(b, target - now, eProcessCritical));
    else
        _hm_budget_give(b, now - target);
    assert_int_equal(committed(b), target);
}

/* The states of budget.c: High below high_pct, left at high_pct + 10; Low at low_pct, left
 * below neutral_pct; Neutral between. Every change bumps `changes` and posts `changed`. */
static void test_pressure_hysteresis(void **state) {
    (void)state;
    hm_config c = cfg_of(0, 0, 90, 80, 50);
    hm_budget_t b;
    _hm_budget_init(&b, LIMIT, &c);
    assert_int_equal(b.low_bytes, PCT(90));
    assert_int_equal(b.neutral_bytes, PCT(80));
    assert_int_equal(b.high_bytes, PCT(50));
    assert_int_equal(b.high_exit_bytes, PCT(60));
    assert_int_equal(_hm_budget_pressure(&b), eMemoryAvailableHigh);

    struct {
        size_t to;
        int state;
    } steps[] = {
        {PCT(49), eMemoryAvailableHigh},
        {PCT(50), eMemoryAvailableHigh}, /* High is left only at high + 10 */
        {PCT(60) - 1, eMemoryAvailableHigh},
        {PCT(60), eMemoryAvailableNeutral}, /* left */
        {PCT(55), eMemoryAvailableNeutral}, /* and not re-entered above high_pct */
        {PCT(50), eMemoryAvailableNeutral},
        {PCT(50) - 1, eMemoryAvailableHigh}, /* re-entered below it */
        {PCT(89), eMemoryAvailableNeutral},  /* a take straight from High to Neutral */
        {PCT(90) - 1, eMemoryAvailableNeutral},
        {PCT(90), eMemoryAvailableLow},         /* Low at low_pct */
        {PCT(85), eMemoryAvailableLow},         /* kept above neutral_pct */
        {PCT(80), eMemoryAvailableLow},         /* and at it */
        {PCT(80) - 1, eMemoryAvailableNeutral}, /* left below it */
        {PCT(85), eMemoryAvailableNeutral},     /* not re-entered below low_pct */
        {LIMIT, eMemoryAvailableLow},
        {PCT(10), eMemoryAvailableHigh}, /* a give straight from Low to High */
        {0, eMemoryAvailableHigh},
    };
    int was = _hm_budget_pressure(&b);
    for (size_t i = 0; i < TU_ARRAY_SIZE(steps); i++) {
        uint32_t changes = atomic_load(&b.changes);
        uint32_t seq = _hm_event_seq(&b.changed);
        move_to(&b, steps[i].to);
        if (_hm_budget_pressure(&b) != steps[i].state)
            fail_msg("step %zu: at %zu bytes the state is %d, expected %d", i, steps[i].to,
                     _hm_budget_pressure(&b), steps[i].state);
        uint32_t moved = steps[i].state != was ? 1 : 0;
        assert_int_equal(atomic_load(&b.changes), changes + moved);
        if (moved)
            assert_int_not_equal(_hm_event_seq(&b.changed), seq);
        else
            assert_int_equal(_hm_event_seq(&b.changed), seq);
        assert_true(_hm_budget_valid(&b));
        was = steps[i].state;
    }
    _hm_budget_destroy(&b);
}

/* Percentages outside 1..100 are the defaults; the thresholds are kept ordered. */
static void test_pressure_thresholds_ordered(void **state) {
    (void)state;
    hm_budget_t b;
    hm_config c = cfg_of(0, 0, 0, 0, 0); /* low 0: the default 90; neutral 0: low */
    _hm_budget_init(&b, LIMIT, &c);
    assert_int_equal(b.low_bytes, PCT(90));
    assert_int_equal(b.neutral_bytes, PCT(90));
    assert_int_equal(b.high_bytes, 0);
    assert_true(_hm_budget_valid(&b));
    _hm_budget_destroy(&b);

    c = cfg_of(0, 0, 150, 95, 99); /* low past 100: 90; neutral above low: low; high too */
    _hm_budget_init(&b, LIMIT, &c);
    assert_int_equal(b.low_bytes, PCT(90));
    assert_int_equal(b.neutral_bytes, PCT(90));
    assert_int_equal(b.high_bytes, PCT(90));
    assert_int_equal(b.high_exit_bytes, PCT(90));
    assert_true(_hm_budget_valid(&b));
    _hm_budget_destroy(&b);

    c = cfg_of(0, 0, 100, 100, 95); /* high + 10 beyond neutral: neutral */
    _hm_budget_init(&b, LIMIT, &c);
    assert_int_equal(b.low_bytes, LIMIT);
    assert_int_equal(b.high_bytes, PCT(95));
    assert_int_equal(b.high_exit_bytes, LIMIT);
    move_to(&b, LIMIT - 1);
    assert_int_equal(_hm_budget_pressure(&b), eMemoryAvailableHigh);
    move_to(&b, LIMIT);
    assert_int_equal(_hm_budget_pressure(&b), eMemoryAvailableLow);
    move_to(&b, 0);
    _hm_budget_destroy(&b);
}

/* ---- shortage, refusal, events -----------------------------------------------------------------
 */
static void test_short(void **state) {
    (void)state;
    hm_config c = cfg_of(0, 0, 90, 80, 50);
    hm_budget_t b;
    _hm_budget_init(&b, LIMIT, &c);
    move_to(&b, PCT(30));
    assert_int_equal(_hm_budget_pressure(&b), eMemoryAvailableHigh);
    uint32_t seq = _hm_event_seq(&b.changed);
    _hm_budget_short(&b);
    /* Low whatever the total, counted, published */
    assert_int_equal(_hm_budget_pressure(&b), eMemoryAvailableLow);
    assert_int_equal(atomic_load(&b.shortages), 1);
    assert_int_not_equal(_hm_event_seq(&b.changed), seq);
    /* a repeated shortage is published again (the repeated Low of the listeners) */
    seq = _hm_event_seq(&b.changed);
    _hm_budget_short(&b);
    assert_int_equal(_hm_budget_pressure(&b), eMemoryAvailableLow);
    assert_int_equal(atomic_load(&b.shortages), 2);
    assert_int_not_equal(_hm_event_seq(&b.changed), seq);
    /* Low is left by what comes back, by the usual rule: below neutral_pct */
    _hm_budget_give(&b, PAGE);
    assert_int_equal(_hm_budget_pressure(&b), eMemoryAvailableHigh);
    assert_true(_hm_budget_valid(&b));
    move_to(&b, 0);
    _hm_budget_destroy(&b);
}

static void test_refused_counts(void **state) {
    (void)state;
    hm_config c = cfg_of(0, 0, 90, 80, 50);
    hm_budget_t b;
    _hm_budget_init(&b, LIMIT, &c);
    for (int l = 0; l < 3; l++)
        assert_int_equal(atomic_load(&b.failures[l]), 0);
    /* a refused take is not a failure: only the caller knows it gave up */
    assert_false(_hm_budget_take(&b, 2 * LIMIT, eTaskCritical));
    assert_int_equal(atomic_load(&b.failures[eTaskCritical]), 0);
    _hm_budget_refused(&b, eTaskCritical);
    _hm_budget_refused(&b, eProcessCritical);
    _hm_budget_refused(&b, eProcessCritical);
    assert_int_equal(atomic_load(&b.failures[eTaskCritical]), 1);
    assert_int_equal(atomic_load(&b.failures[eAppDomainCritical]), 0);
    assert_int_equal(atomic_load(&b.failures[eProcessCritical]), 2);
    assert_int_equal(committed(&b), 0);
    assert_int_equal(atomic_load(&b.shortages), 0); /* a refusal is not a shortage */
    _hm_budget_destroy(&b);
}

static void test_given_event(void **state) {
    (void)state;
    hm_config c = cfg_of(0, 0, 90, 80, 50);
    hm_budget_t b;
    _hm_budget_init(&b, LIMIT, &c);
    uint32_t seq = _hm_event_seq(&b.given);
    assert_true(_hm_budget_take(&b, 10 * PAGE, eTaskCritical));
    assert_int_equal(_hm_event_seq(&b.given), seq); /* a take posts nothing there */
    _hm_budget_give(&b, 0);
    assert_int_equal(_hm_event_seq(&b.given), seq); /* nothing given: nothing posted */
    _hm_budget_give(&b, PAGE);
    assert_int_not_equal(_hm_event_seq(&b.given), seq);
    /* the count a waiter saw has moved: the wait returns at once, whatever the limit */
    assert_true(_hm_event_wait(&b.given, seq, UINT32_MAX));
    /* no give: the wait times out and says so */
    assert_false(_hm_event_wait(&b.given, _hm_event_seq(&b.given), 1));
    _hm_budget_give(&b, 9 * PAGE);
    assert_int_equal(committed(&b), 0);
    _hm_budget_destroy(&b);
}

/* A thread sleeping on `given` is woken by a give. */
typedef struct {
    hm_budget_t *b;
    uint32_t seen;
    bool woke;
} waiter_t;

static void *waiter_main(void *arg) {
    waiter_t *w = arg;
    w->woke = _hm_event_wait(&w->b->given, w->seen, 30000);
    return NULL;
}

static void test_given_wakes_waiter(void **state) {
    (void)state;
    hm_config c = cfg_of(0, 0, 90, 80, 50);
    hm_budget_t b;
    _hm_budget_init(&b, LIMIT, &c);
    assert_true(_hm_budget_take(&b, PAGE, eTaskCritical));
    waiter_t w = {&b, _hm_event_seq(&b.given), false};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, waiter_main, &w), 0);
    /* whether the waiter sleeps already or not, the count it saw moves: it must return true
     * (long before its 30 s, which only a lost wake-up would reach) */
    _hm_budget_give(&b, PAGE);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(w.woke);
    _hm_budget_destroy(&b);
}

/* ---- threads ------------------------------------------------------------------------------------
 */
#define NTHREADS 4
#define ROUNDS   50

typedef struct {
    hm_budget_t *b;
    pthread_barrier_t *bar;
    unsigned seed;
    bool over; /* saw the total above the limit */
    size_t held_at_full[ROUNDS];
} hammer_t;

static unsigned rnd(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

/* Each round: take pages (1 to 3 at a time) until refused, meet, check, give all back, meet;
 * then a free-for-all of takes and gives. The total is read after every take. */
static void *hammer_main(void *arg) {
    hammer_t *h = arg;
    size_t limit = h->b->limit;
    for (int r = 0; r < ROUNDS; r++) {
        size_t held = 0;
        for (;;) {
            size_t n = (1 + rnd(&h->seed) % 3) * PAGE;
            if (!_hm_budget_take(h->b, n, eProcessCritical)) {
                /* refused: not even one page may fit any more, or n pages did not */
                if (!_hm_budget_take(h->b, PAGE, eProcessCritical)) break;
                n = PAGE;
            }
            held += n;
            if (_hm_budget_committed(h->b) > limit) h->over = true;
        }
        h->held_at_full[r] = held;
        pthread_barrier_wait(h->bar); /* everyone was refused a page: the total is the limit */
        pthread_barrier_wait(h->bar); /* (checked by the main thread) */
        _hm_budget_give(h->b, held);
        held = 0;
        size_t mine[8] = {0};
        for (int i = 0; i < 200; i++) {
            unsigned k = rnd(&h->seed) % 8;
            if (mine[k] != 0) {
                _hm_budget_give(h->b, mine[k]);
                mine[k] = 0;
            } else {
                size_t n = (1 + rnd(&h->seed) % 200) * PAGE;
                if (_hm_budget_take(h->b, n, eProcessCritical)) mine[k] = n;
                if (_hm_budget_committed(h->b) > limit) h->over = true;
            }
        }
        for (int k = 0; k < 8; k++)
            _hm_budget_give(h->b, mine[k]);
        pthread_barrier_wait(h->bar); /* everything was given back: the total is 0 */
        pthread_barrier_wait(h->bar);
    }
    return NULL;
}

static void test_threads_never_exceed(void **state) {
    (void)state;
    hm_config c = cfg_of(0, 0, 90, 80, 50);
    hm_budget_t b;
    /* 256 pages: a few dozen takes each before the limit is reached */
    _hm_budget_init(&b, 256 * PAGE, &c);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NTHREADS + 1);
    hammer_t h[NTHREADS];
    pthread_t t[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        memset(&h[i], 0, sizeof h[i]);
        h[i].b = &b;
        h[i].bar = &bar;
        h[i].seed = 77u + (unsigned)i * 1000u;
        assert_int_equal(pthread_create(&t[i], NULL, hammer_main, &h[i]), 0);
    }
    for (int r = 0; r < ROUNDS; r++) {
        pthread_barrier_wait(&bar);
        /* every thread was refused one page after its last take, and nobody gave since */
        assert_int_equal(_hm_budget_committed(&b), b.limit);
        size_t sum = 0;
        for (int i = 0; i < NTHREADS; i++)
            sum += h[i].held_at_full[r];
        assert_int_equal(sum, b.limit); /* each byte counted is a byte somebody holds */
        assert_int_equal(_hm_budget_pressure(&b), eMemoryAvailableLow);
        assert_true(_hm_budget_valid(&b));
        pthread_barrier_wait(&bar);
        pthread_barrier_wait(&bar);
        assert_int_equal(_hm_budget_committed(&b), 0);
        assert_int_equal(_hm_budget_pressure(&b), eMemoryAvailableHigh);
        assert_true(_hm_budget_valid(&b));
        pthread_barrier_wait(&bar);
    }
    for (int i = 0; i < NTHREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_false(h[i].over);
    }
    assert_int_equal(atomic_load(&b.peak_committed), b.limit);
    pthread_barrier_destroy(&bar);
    _hm_budget_destroy(&b);
}

/* ---- invariants --------------------------------------------------------------------------------
 */
static void test_valid_and_broken_copies(void **state) {
    (void)state;
    hm_config c = cfg_of(100 * PAGE, 50 * PAGE, 90, 80, 50);
    hm_budget_t b;
    _hm_budget_init(&b, LIMIT, &c);
    assert_true(_hm_budget_valid(&b));
    assert_true(_hm_budget_take(&b, 500 * PAGE, eTaskCritical));
    assert_true(_hm_budget_valid(&b));

    /* copies, each broken in one way (only read by _hm_budget_valid: the events are never
     * used through a copy) */
    hm_budget_t x;
    memcpy(&x, &b, sizeof x);
    assert_true(_hm_budget_valid(&x));
    x.ceiling[eTaskCritical] = x.ceiling[eAppDomainCritical] + 1;
    assert_false(_hm_budget_valid(&x));
    memcpy(&x, &b, sizeof x);
    x.ceiling[eAppDomainCritical] = LIMIT + 1;
    assert_false(_hm_budget_valid(&x));
    memcpy(&x, &b, sizeof x);
    x.ceiling[eProcessCritical] = LIMIT - 1;
    assert_false(_hm_budget_valid(&x));
    memcpy(&x, &b, sizeof x);
    x.high_bytes = x.neutral_bytes + 1;
    assert_false(_hm_budget_valid(&x));
    memcpy(&x, &b, sizeof x);
    x.neutral_bytes = x.low_bytes + 1;
    assert_false(_hm_budget_valid(&x));
    memcpy(&x, &b, sizeof x);
    x.low_bytes = LIMIT + 1;
    assert_false(_hm_budget_valid(&x));
    memcpy(&x, &b, sizeof x);
    atomic_store(&x.committed, LIMIT + 1);
    assert_false(_hm_budget_valid(&x));

    assert_true(_hm_budget_valid(&b)); /* the original is untouched */
    _hm_budget_give(&b, 500 * PAGE);
    assert_true(_hm_budget_valid(&b));
    _hm_budget_destroy(&b);
}

TU_TEST_MAIN(test_ceilings_per_level, test_reserves_saturate, test_available, test_peak,
             test_pressure_hysteresis, test_pressure_thresholds_ordered, test_short,
             test_refused_counts, test_given_event, test_given_wakes_waiter,
             test_threads_never_exceed, test_valid_and_broken_copies)
