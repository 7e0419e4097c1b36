/* SPDX-License-Identifier: MIT */
/* tests/death/test_native_death.c: misuse of the malloc door of <hostmalloc/hostmalloc.h> must
 * stop the program with one "hostmalloc: " line: hm_free and hm_usable_size of a pointer that is
 * no block (stack, static, glibc, unmapped, PROT_NONE, interior pointers), a double free in every
 * order and size, realloc of a pointer that is no block or of a freed block, and
 * hm_realloc_level of a freed block. Each misuse runs in a forked child (tu_run_child); the
 * parent checks how it ended and what it wrote. */
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

static char g_static_buf[4096];

static hm_heap *new_heap(unsigned flags) {
    hm_heap *h = tu_heap(NULL, flags);
    return h;
}

typedef struct death_case {
    const char *what;
    void *p;
    int usable; /* call hm_usable_size instead of hm_free */
} death_case;

static void death_child(void *arg) {
    death_case *d = arg;
    if (d->usable) {
        volatile size_t n = hm_usable_size(d->p);
        (void)n;
    } else {
        hm_free(d->p);
    }
}

static void expect_abort(death_case *d) {
    tu_child_result res;
    assert_int_equal(tu_run_child(death_child, d, &res), 0);
    char sbuf[96];
    if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != SIGABRT)
        fail_msg("%s(%s): expected the process to abort (SIGABRT), but it %s; stderr: \"%s\"",
                 d->usable ? "hm_usable_size" : "hm_free", d->what,
                 tu_status_str(res.status, sbuf, sizeof(sbuf)), res.err);
    if (strncmp(res.err, "hostmalloc: ", 12) != 0)
        fail_msg("%s(%s) aborted, but stderr does not start with \"hostmalloc: \": \"%s\"",
                 d->usable ? "hm_usable_size" : "hm_free", d->what, res.err);
}

typedef struct msg_case {
    int what; /* 0: p, p; 1: p, q, p; 2: 256 KiB p, p; 3: realloc((void *)1); 4: realloc(p+8);
               * 5: free(p), realloc(p) */
    size_t size;
    char expect[160]; /* filled in the child: the exact message */
} msg_case;

static void msg_child(void *arg) {
    msg_case *c = arg;
    hm_heap *h = hm_heap_default();
    char *p = hm_alloc(h, c->size), *q = hm_alloc(h, c->size);
    /* the usable size the double-free message names: of the block freed twice, which (case 5)
     * is p, else a block of the same size (q, read before it is freed in case 1) */
    size_t usable = hm_usable_size(c->what == 5 ? p : q);
    if (c->what == 0 || c->what == 1 || c->what == 2 || c->what == 5) hm_free(p);
    if (c->what == 1) hm_free(q);
    /* the line hostmalloc must write, first written by the child itself */
    if (c->what == 3)
        fprintf(stderr, "hostmalloc: realloc(): pointer not allocated by hostmalloc: 0x1\n");
    else if (c->what == 4)
        fprintf(stderr, "hostmalloc: realloc(): pointer is not the start of a block: %p\n",
                (void *)(p + 8));
    else
        fprintf(stderr, "hostmalloc: double free: block %p of %zu bytes\n", (void *)p, usable);
    fflush(stderr);
    if (c->what == 3)
        (void)!hm_realloc(h, (void *)1, 10);
    else if (c->what == 4)
        (void)!hm_realloc(h, p + 8, 10);
    else if (c->what == 5)
        (void)!hm_realloc(h, p, c->size / 2 + 1); /* would fit in place */
    else
        hm_free(p);
}

/* `got` is the one line `want` (n bytes, no newline), or (checked mode, HM_CHECKED=1) that line
 * with the block's allocation number and thread appended: " (allocation #7, thread 1234)". */
static bool same_message(const char *want, size_t n, const char *got) {
    size_t len = strlen(got);
    if (len < n + 1 || memcmp(want, got, n) != 0 || got[len - 1] != '\n' ||
        strchr(got, '\n') != got + len - 1)
        return false;
    return len == n + 1 || (strncmp(got + n, " (allocation #", 14) == 0 && got[len - 2] == ')');
}

/* The child prints the line it expects, then makes the mistake: stderr must then hold that line
 * twice (the expectation, then hostmalloc's message), and nothing else. */
static void expect_message(msg_case *c, const char *what) {
    tu_child_result res;
    assert_int_equal(tu_run_child(msg_child, c, &res), 0);
    char sbuf[96];
    if (!WIFSIGNALED(res.status) || WTERMSIG(res.status) != SIGABRT)
        fail_msg("%s: expected an abort, but the child %s; stderr: \"%s\"", what,
                 tu_status_str(res.status, sbuf, sizeof sbuf), res.err);
    const char *nl = strchr(res.err, '\n');
    if (nl == NULL) fail_msg("%s: stderr \"%s\"", what, res.err);
    size_t n = (size_t)(nl - res.err) + 1;
    if (!same_message(res.err, n - 1, res.err + n))
        fail_msg("%s: expected the message \"%.*s\", stderr: \"%s\"", what, (int)n - 1, res.err,
                 res.err + n);
}

/* A double free of a small block on the malloc door: abort with its own message, in every
 * order, for every small size (blocks of plain pages, 16 bytes to 64 KiB). */
static void test_native_double_free_small(void **state) {
    (void)state;
    static const size_t sizes[] = {1, 16, 32, 100, 1024, 8192, 30000};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        msg_case c = {0, sizes[i], ""};
        expect_message(&c, "p, p");
        c.what = 1;
        expect_message(&c, "p, q, p");
    }
    /* the heap door refuses it and changes nothing */
    hm_heap *h = new_heap(0);
    char *p = hm_alloc(h, 32), *q = hm_alloc(h, 32);
    assert_int_equal(hm_heap_free(h, p), HM_OK);
    assert_int_equal(hm_heap_free(h, q), HM_OK);
    assert_int_equal(hm_heap_free(h, p), HM_ERR_NOT_BLOCK);
    assert_int_equal(hm_heap_free(h, q), HM_ERR_NOT_BLOCK);
    char *a = hm_alloc(h, 32), *b = hm_alloc(h, 32), *c = hm_alloc(h, 32);
    if (a == b || b == c || a == c) fail_msg("the same block twice: %p %p %p", a, b, c);
    hm_heap_release(h);
}

/* realloc of a pointer that is no block names realloc (it said usable_size()), and a double
 * free of a 256 KiB block says double free (it said "not the start of a block"). */
static void test_realloc_invalid_message(void **state) {
    (void)state;
    msg_case c = {3, 64, ""};
    expect_message(&c, "realloc((void *)1)");
    c.what = 4;
    expect_message(&c, "realloc(p + 8)");
    c.what = 2;
    c.size = 256 * 1024;
    expect_message(&c, "double free of 256 KiB");
    c.size = 100000;
    expect_message(&c, "double free of 100000 bytes");
    /* realloc of a freed small block: a double free, not a block handed back in place */
    c.what = 5;
    c.size = 48;
    expect_message(&c, "realloc of a freed block");
}

static void run_death_cases(int usable) {
    hm_heap *h = new_heap(HM_HEAP_THREADSAFE);
    char stack_buf[64];
    memset(stack_buf, 0, sizeof(stack_buf));
    char *m = malloc(64);
    assert_non_null(m);
    char *small = hm_alloc(h, 256), *huge = hm_alloc(h, (size_t)8 << 20);
    assert_non_null(small);
    assert_non_null(huge);
    long pagesz = sysconf(_SC_PAGESIZE);
    char *none = mmap(NULL, (size_t)pagesz, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(none != MAP_FAILED);
    death_case cases[] = {
        {"a stack address", stack_buf, usable},
        {"a static address", g_static_buf, usable},
        {"a glibc malloc block", m, usable},
        {"an unmapped address", tu_unmapped_address(), usable},
        {"a PROT_NONE page", none, usable},
        {"p+8 of a live block", small + 8, usable},
        {"p+16 of a live block", small + 16, usable},
        {"p+4096 of a huge block", huge + 4096, usable},
        {"p+5 MiB of a huge block", huge + (5 << 20), usable},
    };
    for (size_t i = 0; i < TU_ARRAY_SIZE(cases); i++)
        expect_abort(&cases[i]);
    /* The parent's heap is unaffected: the children had copies. */
    assert_ptr_equal(hm_heap_of(small), h);
    hm_free(small);
    hm_free(huge);
    munmap(none, (size_t)pagesz);
    free(m);
    hm_heap_release(h);
}

static void test_free_invalid_aborts(void **state) {
    (void)state;
    run_death_cases(0);
}

static void test_usable_size_invalid_aborts(void **state) {
    (void)state;
    run_death_cases(1);
}

/* A resize of a block already freed is a double free, as with hm_realloc: reported and the
 * program stopped, never the freed block handed back in place (it stays on its page's free
 * list, so the next allocation would hand it out a second time). */
static void realloc_level_freed_child(void *arg) {
    size_t new_size = *(const size_t *)arg;
    hm_heap *h = hm_heap_new(NULL, 0);
    char *p = hm_alloc(h, 64), *q = hm_alloc(h, 64); /* q keeps the page in use */
    if (p == NULL || q == NULL) _exit(3);
    hm_free(p);
    char *r = hm_realloc_level(h, p, new_size, eTaskCritical);
    (void)r;
    _exit(0); /* not reached: the double free aborts */
}

static void test_realloc_level_freed_block(void **state) {
    (void)state;
    static const size_t sizes[] = {48, 64, 256}; /* in place (shrink, same size) and moved */
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        tu_child_result res;
        assert_int_equal(tu_run_child(realloc_level_freed_child, (void *)&sizes[i], &res), 0);
        tu_assert_child_signaled(&res, SIGABRT);
        if (strstr(res.err, "hostmalloc: double free") == NULL)
            fail_msg("resize to %zu: expected a double-free report, stderr: %s", sizes[i], res.err);
    }
}

TU_TEST_MAIN(test_free_invalid_aborts, test_usable_size_invalid_aborts,
             test_native_double_free_small, test_realloc_invalid_message,
             test_realloc_level_freed_block)
