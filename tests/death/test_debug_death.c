/* SPDX-License-Identifier: MIT */
/* tests/death/test_debug_death.c: in checked mode (hm_config.checked or HM_CHECKED=1), misuse on
 * the malloc door (hm_free, hm_alloc) is reported on stderr as one "hostmalloc: " line naming it
 * and the program aborts: a double free, an overrun, an underrun, a write after free. Each
 * misuse runs in a forked child; the COM door's report-and-go-on is tested in
 * tests/api/test_debug.c. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <hostmalloc/hostmalloc.h>

#include "test_util.h"

/* The misuse each child makes on the malloc door. */
enum { DC_DOUBLE, DC_OVERRUN, DC_UNDERRUN, DC_ENV_DOUBLE, DC_WRITE_AFTER_FREE };

/* Flip every bit of the byte at p + off (a canary or a header byte). */
static void flip(void *p, ptrdiff_t off) {
    unsigned char *b = (unsigned char *)p + off;
    *b = (unsigned char)~*b;
}

/* A heap of a default (not checked) manager, in a child (exit 3 if it cannot be made). */
static hm_heap *child_default_heap(void) {
    hm_config c;
    hm_config_init(&c);
    hm_manager *mgr = hm_manager_new(&c);
    hm_heap *h = mgr ? hm_heap_new(mgr, 0) : NULL;
    if (h == NULL) _exit(3);
    return h;
}

static hm_heap *child_checked_heap(bool from_env) {
    hm_config c;
    if (from_env) setenv("HM_CHECKED", "1", 1);
    hm_config_init(&c);
    if (!from_env) c.checked = true;
    c.on_error = NULL; /* the default sink: stderr */
    hm_manager *mgr = hm_manager_new(&c);
    hm_heap *h = mgr ? hm_heap_new(mgr, 0) : NULL;
    if (h == NULL) _exit(3);
    return h;
}

static void child_malloc_door(void *arg) {
    int kase = *(const int *)arg;
    hm_heap *h = child_checked_heap(kase == DC_ENV_DOUBLE);
    unsigned char *p = hm_alloc(h, 100);
    if (p == NULL) _exit(4);
    memset(p, 1, 100);
    switch (kase) {
    case DC_DOUBLE:
    case DC_ENV_DOUBLE:
        hm_free(p);
        hm_free(p);
        break;
    case DC_OVERRUN:
        flip(p, 100);
        hm_free(p);
        break;
    case DC_UNDERRUN:
        flip(p, -1);
        hm_free(p);
        break;
    case DC_WRITE_AFTER_FREE:
        hm_free(p);
        p[20] = 0; /* within the bytes [8, 32) checked mode fills and checks */
        /* allocations and frees: a checked page hands the block freed last out only after
         * another free */
        for (int i = 0; i < 20000; i++) {
            void *q = hm_alloc(h, 100);
            if (q == (void *)p) break;
            hm_free(q);
        }
        break;
    }
    _exit(0); /* not reached when the door aborts */
}

static void expect_abort_line(int kase, const char *name) {
    tu_child_result res;
    tu_expect_abort(child_malloc_door, &kase, &res);
    if (!tu_one_line(res.err))
        fail_msg("%s: stderr is not one 'hostmalloc: ' line: '%s'", name, res.err);
    if (strstr(res.err, name) == NULL) fail_msg("%s: stderr '%s' does not name it", name, res.err);
}

/* hm_usable_size (malloc_usable_size on the malloc door) of a freed block: one line naming it,
 * then abort; in checked mode on pages and for huge blocks, for DebugAlloc blocks, and in
 * default mode for a plain block its owner can tell is free (on its page's free list). */
typedef struct usable_case {
    int mode; /* 0: checked, 1: DebugAlloc on a default heap, 2: plain on a default heap */
    size_t size;
} usable_case;

static void child_usable_size_freed(void *arg) {
    const usable_case *uc = arg;
    hm_heap *h;
    void *p;
    if (uc->mode == 0) {
        h = child_checked_heap(false);
        p = hm_alloc(h, uc->size);
    } else {
        h = child_default_heap();
        p = uc->mode == 1 ? hm_alloc_debug(h, uc->size, eProcessCritical, "here.c", 7)
                          : hm_alloc(h, uc->size);
    }
    if (p == NULL) _exit(4);
    if (hm_usable_size(p) < uc->size) _exit(5);
    hm_free(p);
    (void)hm_usable_size(p);
    _exit(0); /* not reached */
}

static void test_checked_usable_size_of_freed_aborts(void **state) {
    (void)state;
    static const usable_case cases[] = {
        {0, 0},  {0, 32},     {0, 65536}, {0, 200000}, {0, (size_t)8 << 20},
        {1, 32}, {1, 200000}, {2, 32},    {2, 20000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_child_result res;
        tu_expect_abort(child_usable_size_freed, (void *)&cases[i], &res);
        if (!tu_one_line(res.err) || strstr(res.err, "usable size of a freed block") == NULL)
            fail_msg("mode %d, %zu bytes: stderr is not one line naming the usable size of a "
                     "freed block: '%s'",
                     cases[i].mode, cases[i].size, res.err);
    }
}

/* A freed huge block (checked mode, DebugAlloc) is inaccessible while it is held: a read or a
 * write of any of its bytes faults at once. */
typedef struct held_case {
    bool debug; /* a DebugAlloc block on a default heap, else a checked heap's block */
    bool write;
    size_t size, at;
} held_case;

/* Read or write byte `at` of `p` (which must fault), then exit 0 if it did not. */
static void touch_and_exit(unsigned char *p, ptrdiff_t at, bool write) {
    if (write)
        ((volatile unsigned char *)p)[at] = 2;
    else
        (void)((volatile unsigned char *)p)[at];
    _exit(0); /* not reached */
}

/* Run `fn(arg)` in a child: true when it died of SIGSEGV. */
static bool child_faulted(tu_child_fn fn, const void *arg, tu_child_result *res) {
    assert_int_equal(tu_run_child(fn, (void *)arg, res), 0);
    return WIFSIGNALED(res->status) && WTERMSIG(res->status) == SIGSEGV;
}

static void child_touch_held(void *arg) {
    const held_case *hc = arg;
    hm_heap *h;
    unsigned char *p;
    if (!hc->debug) {
        h = child_checked_heap(false);
        p = hm_alloc(h, hc->size);
    } else {
        h = child_default_heap();
        p = hm_alloc_debug(h, hc->size, eProcessCritical, "here.c", 7);
    }
    if (p == NULL) _exit(4);
    memset(p, 1, hc->size);
    hm_free(p);
    touch_and_exit(p, hc->at, hc->write);
}

static void test_checked_huge_freed_faults(void **state) {
    (void)state;
    static const held_case cases[] = {
        {false, false, 200000, 0},     {false, true, 200000, 0},
        {false, true, 200000, 199999}, {false, false, (size_t)8 << 20, 4 << 20},
        {true, false, 100000, 0},      {true, true, 100000, 99999},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_child_result res;
        if (!child_faulted(child_touch_held, &cases[i], &res))
            fail_msg("case %zu (%s, %s at %zu of %zu bytes): the freed block did not fault "
                     "(status 0x%x, stderr '%s')",
                     i, cases[i].debug ? "DebugAlloc" : "checked",
                     cases[i].write ? "write" : "read", cases[i].at, cases[i].size, res.status,
                     res.err);
    }
}

/* A huge checked (or DebugAlloc) block ends at a guard page: writing on past its end, byte by
 * byte, faults within the canary and the 16 bytes of alignment. */
static void child_overrun_huge(void *arg) {
    const held_case *hc = arg;
    hm_heap *h = child_checked_heap(false);
    unsigned char *p = hc->debug ? hm_alloc_debug(h, hc->size, eProcessCritical, "here.c", 9)
                                 : hm_alloc(h, hc->size);
    if (p == NULL) _exit(4);
    memset(p, 1, hc->size);
    for (size_t k = 0; k < 24; k++)
        ((volatile unsigned char *)p)[hc->size + k] = 2;
    _exit(0); /* not reached */
}

static void test_checked_huge_overrun_faults(void **state) {
    (void)state;
    static const held_case cases[] = {
        {false, true, 100000, 0},     {false, true, 100001, 0},
        {false, true, 100008, 0},     {false, true, ((size_t)8 << 20) + 3, 0},
        {true, true, 300000 + 11, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_child_result res;
        if (!child_faulted(child_overrun_huge, &cases[i], &res))
            fail_msg("%s block of %zu bytes written on past its end: no fault (status 0x%x, "
                     "stderr '%s')",
                     cases[i].debug ? "DebugAlloc" : "checked", cases[i].size, res.status, res.err);
    }
}

/* A block of 0 bytes of a checked heap faults when read or written, at any byte of its slot. */
typedef struct zero_case {
    bool write;
    ptrdiff_t at;
} zero_case;

static void child_touch_zero(void *arg) {
    const zero_case *zc = arg;
    hm_heap *h = child_checked_heap(false);
    unsigned char *keep = hm_alloc(h, 0), *p = hm_alloc(h, 0);
    if (keep == NULL || p == NULL || keep == p) _exit(4);
    touch_and_exit(p, zc->at, zc->write);
}

static void test_checked_zero_block_faults(void **state) {
    (void)state;
    static const zero_case cases[] = {{false, 0}, {true, 0}, {true, 15}, {false, -1}, {true, 16}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu_child_result res;
        if (!child_faulted(child_touch_zero, &cases[i], &res))
            fail_msg("%s at %td of a block of 0 bytes: no fault (status 0x%x, stderr '%s')",
                     cases[i].write ? "write" : "read", cases[i].at, res.status, res.err);
    }
}

static void test_checked_malloc_door_aborts(void **state) {
    (void)state;
    expect_abort_line(DC_DOUBLE, "double free");
    expect_abort_line(DC_OVERRUN, "overrun");
    expect_abort_line(DC_UNDERRUN, "underrun");
    expect_abort_line(DC_ENV_DOUBLE, "double free");
}

/* hostmalloc.h, on_error: "the malloc door aborts after the report" for a write after free
 * too (detected by hm_alloc when the slot is handed out again). */
static void test_checked_malloc_door_write_after_free_aborts(void **state) {
    (void)state;
    expect_abort_line(DC_WRITE_AFTER_FREE, "write after free");
}

TU_TEST_MAIN(test_checked_malloc_door_aborts, test_checked_malloc_door_write_after_free_aborts,
             test_checked_usable_size_of_freed_aborts, test_checked_huge_freed_faults,
             test_checked_zero_block_faults, test_checked_huge_overrun_faults)
