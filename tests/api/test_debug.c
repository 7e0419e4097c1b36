/* SPDX-License-Identifier: MIT */
/* tests/api/test_debug.c: the debug heap: DebugAlloc blocks, checked mode, heap walks,
 * leak reports and the error sink.
 *
 * The rules, one group of tests each (the test names start with the rule's topic):
 *   1. test_debug_block_*      a DebugAlloc block records file (a copy), line, size, thread and
 *                              a sequence number, has canaries before and after, and a good
 *                              free fills it with 0xDF past the free-list link.
 *   2. test_walk_*             hm_heap_walk visits every live block once, stops early, follows
 *                              frees (local and remote).
 *   3. test_leak_report_*      hm_heap_report_leaks groups DebugAlloc blocks by site, largest
 *                              first; the last Release of an IHostMalloc reports to the sink.
 *   4. test_misuse_*           a broken canary or a double free of a debug block: an error, a
 *                              report naming the site, the block never reused, nothing changed.
 *   5. test_checked_*          checked mode: every block gets the checks (deterministic double
 *                              free, byte-precise overrun, write after free); the malloc door
 *                              aborts with one `hostmalloc: ` line.
 *   6. test_error_sink_*       the default sink is stderr; a custom one gets kind, ptr, message
 *                              and its own arg; it stays silent for correct programs.
 *   7. test_remote_free_*      a debug block freed by another thread is checked too.
 *   8. test_default_mode_*     a heap that is not checked never hands out debug blocks.
 *
 * Reports are captured by a custom on_error sink (struct sink) unless a test is about the
 * default sink. Tests that must see the process die run the misuse in a child (tu_run_child). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include <hostmalloc/hosting.h>
#include <hostmalloc/hostmalloc.h>

#include "test_util.h"

/* This file misuses freed blocks on purpose (reads the freed pattern, writes after free). */
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Wuse-after-free"

#define DBG_FILL  0xDF /* the freed pattern (src/debug.c) */
#define LINK_SIZE 8    /* the free-list link at the start of a freed block: not filled */

static int my_tid(void) {
    return (int)syscall(SYS_gettid);
}

/* Flip every bit of one byte: whatever the canary holds there, it no longer matches. */
static void flip(void *p, ptrdiff_t off) {
    unsigned char *b = (unsigned char *)p + off;
    *b = (unsigned char)~*b;
}

/* ---- the error sink ------------------------------------------------------------------------ */
#define SINK_MAGIC 0x53494e4bu
#define SINK_KEEP  64

typedef struct sink_report {
    int kind;
    const void *ptr;
    char msg[600];
} sink_report;

typedef struct sink {
    unsigned magic;
    pthread_mutex_t lock;
    size_t total; /* calls */
    size_t kept;
    sink_report r[SINK_KEEP];
    char text[16384]; /* every message, concatenated (truncated) */
    size_t text_len;
} sink;

/* Calls whose arg was not a sink: the library passed the wrong on_error_arg. */
static atomic_size_t g_bad_args;

static void sink_fn(int kind, const void *ptr, const char *message, void *arg) {
    sink *s = (sink *)arg;
    if (s == NULL || s->magic != SINK_MAGIC) {
        atomic_fetch_add(&g_bad_args, 1);
        return;
    }
    pthread_mutex_lock(&s->lock);
    if (message == NULL) message = "(null message)";
    if (s->kept < SINK_KEEP) {
        sink_report *r = &s->r[s->kept++];
        r->kind = kind;
        r->ptr = ptr;
        snprintf(r->msg, sizeof r->msg, "%s", message);
    }
    size_t len = strlen(message), room = sizeof s->text - 1 - s->text_len;
    if (len > room) len = room;
    memcpy(s->text + s->text_len, message, len);
    s->text_len += len;
    s->text[s->text_len] = '\0';
    s->total++;
    pthread_mutex_unlock(&s->lock);
}

/* Sinks and walk logs live in static storage: a failing test leaves nothing to leak-check. */
static sink g_sink_pool[4];
static unsigned g_sink_next;

static sink *sink_new(void) {
    sink *s = &g_sink_pool[g_sink_next++ % TU_ARRAY_SIZE(g_sink_pool)];
    memset(s, 0, sizeof *s);
    s->magic = SINK_MAGIC;
    pthread_mutex_init(&s->lock, NULL);
    return s;
}

static void sink_reset(sink *s) {
    pthread_mutex_lock(&s->lock);
    s->total = s->kept = s->text_len = 0;
    s->text[0] = '\0';
    pthread_mutex_unlock(&s->lock);
}

static void sink_free(sink *s) {
    pthread_mutex_destroy(&s->lock);
    s->magic = 0;
}

static const char *kind_str(int kind) {
    switch (kind) {
    case HM_ERROR_BAD_POINTER:
        return "BAD_POINTER";
    case HM_ERROR_DOUBLE_FREE:
        return "DOUBLE_FREE";
    case HM_ERROR_OVERRUN:
        return "OVERRUN";
    case HM_ERROR_UNDERRUN:
        return "UNDERRUN";
    case HM_ERROR_WRITE_AFTER_FREE:
        return "WRITE_AFTER_FREE";
    case HM_ERROR_LEAK:
        return "LEAK";
    case HM_ERROR_WRONG_SIZE:
        return "WRONG_SIZE";
    default:
        return "?";
    }
}

/* The report sink_expect accepted last. */
static sink_report g_last;

/* Assert that exactly one report arrived since the last reset, of `kind` about `ptr`, with a
 * one-line message containing `needle` (NULL: anything); keeps it in g_last. Resets. */
static void sink_expect(sink *s, int kind, const void *ptr, const char *needle, const char *what) {
    pthread_mutex_lock(&s->lock);
    size_t total = s->total;
    sink_report r = s->kept > 0 ? s->r[0] : (sink_report){0, NULL, ""};
    pthread_mutex_unlock(&s->lock);
    if (total != 1)
        fail_msg("%s: expected 1 report of kind %s, got %zu (first: kind %s, msg '%s')", what,
                 kind_str(kind), total, kind_str(r.kind), r.msg);
    if (r.kind != kind)
        fail_msg("%s: report kind %d (%s), expected %d (%s); msg '%s'", what, r.kind,
                 kind_str(r.kind), kind, kind_str(kind), r.msg);
    if (r.ptr != ptr) fail_msg("%s: report ptr %p, expected %p", what, r.ptr, ptr);
    if (!tu_one_line(r.msg))
        fail_msg("%s: message is not one 'hostmalloc: ' line: '%s'", what, r.msg);
    if (needle != NULL && strstr(r.msg, needle) == NULL)
        fail_msg("%s: message '%s' lacks '%s'", what, r.msg, needle);
    assert_int_equal(atomic_load(&g_bad_args), 0);
    g_last = r;
    sink_reset(s);
}

static void sink_expect_none(sink *s, const char *what) {
    pthread_mutex_lock(&s->lock);
    size_t total = s->total;
    sink_report r = s->kept > 0 ? s->r[0] : (sink_report){0, NULL, ""};
    pthread_mutex_unlock(&s->lock);
    if (total != 0)
        fail_msg("%s: expected no report, got %zu (first: kind %s, ptr %p, '%s')", what, total,
                 kind_str(r.kind), r.ptr, r.msg);
    assert_int_equal(atomic_load(&g_bad_args), 0);
}

/* ---- heaps and instances --------------------------------------------------------------------- */
static hm_config config_for(sink *s, bool checked) {
    hm_config c;
    hm_config_init(&c);
    c.checked = checked;
    c.on_error = s != NULL ? sink_fn : NULL;
    c.on_error_arg = s;
    return c;
}

/* A thread-safe heap of a new manager configured with `s` as its sink (the heap holds the
 * manager). */
static hm_heap *new_heap(sink *s, bool checked) {
    hm_config c = config_for(s, checked);
    hm_manager *mgr = tu_manager(&c);
    hm_heap *h = tu_heap(mgr, HM_HEAP_THREADSAFE);
    hm_manager_release(mgr);
    return h;
}

static IHostMalloc *new_com(sink *s, bool checked, IHostMemoryManager **mm) {
    hm_config c = config_for(s, checked);
    IHostMemoryManager *mgr = NULL;
    assert_int_equal(hm_create_host_memory_manager(&c, &mgr), S_OK);
    assert_non_null(mgr);
    IHostMalloc *m = NULL;
    assert_int_equal(IHostMemoryManager_CreateMalloc(mgr, MALLOC_THREADSAFE, &m), S_OK);
    assert_non_null(m);
    *mm = mgr;
    return m;
}

static void com_done(IHostMalloc *m, IHostMemoryManager *mgr) {
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mgr);
}

static void *com_debug_alloc(IHostMalloc *m, size_t size, char *file, int line) {
    void *p = NULL;
    HRESULT hr = IHostMalloc_DebugAlloc(m, size, eTaskCritical, file, line, &p);
    if (hr != S_OK || p == NULL) fail_msg("DebugAlloc(%zu) returned 0x%08x, %p", size, HR(hr), p);
    return p;
}

static void *com_alloc(IHostMalloc *m, size_t size) {
    void *p = NULL;
    HRESULT hr = IHostMalloc_Alloc(m, size, eTaskCritical, &p);
    if (hr != S_OK || p == NULL) fail_msg("Alloc(%zu) returned 0x%08x, %p", size, HR(hr), p);
    return p;
}

static void com_free_ok(IHostMalloc *m, void *p) {
    HRESULT hr = IHostMalloc_Free(m, p);
    if (hr != S_OK) fail_msg("Free(%p) returned 0x%08x, expected S_OK", p, HR(hr));
}

static void com_free_bad(IHostMalloc *m, void *p, const char *what) {
    HRESULT hr = IHostMalloc_Free(m, p);
    if (hr != HOST_E_INVALIDOPERATION)
        fail_msg("%s: Free(%p) returned 0x%08x, expected HOST_E_INVALIDOPERATION", what, p, HR(hr));
}

static void *debug_alloc(hm_heap *h, size_t size, const char *file, int line) {
    void *p = hm_alloc_debug(h, size, eTaskCritical, file, line);
    if (p == NULL) fail_msg("hm_alloc_debug(%zu) returned NULL", size);
    if (!tu_is_aligned(p, 16)) fail_msg("hm_alloc_debug(%zu) gave %p: not aligned", size, p);
    return p;
}

static void *must_alloc(hm_heap *h, size_t size) {
    void *p = hm_alloc(h, size);
    if (p == NULL) fail_msg("hm_alloc(%zu) returned NULL", size);
    return p;
}

static void heap_free_ok(hm_heap *h, void *p) {
    hm_result r = hm_heap_free(h, p);
    if (r != HM_OK) fail_msg("hm_heap_free(%p) returned %d, expected HM_OK", p, (int)r);
}

static void heap_free_bad(hm_heap *h, void *p, const char *what) {
    hm_result r = hm_heap_free(h, p);
    if (r != HM_ERR_NOT_BLOCK)
        fail_msg("%s: hm_heap_free(%p) returned %d, expected HM_ERR_NOT_BLOCK", what, p, (int)r);
}

/* A door of a test that runs on both: the COM instance `m` when `com`, else the heap `h`. */
typedef struct door {
    bool com;
    IHostMalloc *m;
    hm_heap *h;
} door_t;

static const char *door_name(const door_t *d) {
    return d->com ? "COM" : "native";
}

static void *door_alloc(const door_t *d, size_t size) {
    return d->com ? com_alloc(d->m, size) : must_alloc(d->h, size);
}

static void door_free_ok(const door_t *d, void *p) {
    if (d->com)
        com_free_ok(d->m, p);
    else
        heap_free_ok(d->h, p);
}

static void door_free_bad(const door_t *d, void *p, const char *what) {
    if (d->com)
        com_free_bad(d->m, p, what);
    else
        heap_free_bad(d->h, p, what);
}

/* ---- walking --------------------------------------------------------------------------------- */
#define WALK_MAX 8192

typedef struct walk_log {
    size_t n;          /* entries recorded */
    size_t calls;      /* callback calls */
    size_t stop_after; /* return false on this call (0: never) */
    hm_block_info_t v[WALK_MAX];
} walk_log;

static bool walk_cb(const hm_block_info_t *info, void *arg) {
    walk_log *w = arg;
    if (w->n < WALK_MAX) w->v[w->n++] = *info;
    w->calls++;
    return w->stop_after == 0 || w->calls < w->stop_after;
}

/* Walk `h` into `w`; the result must equal the number of callback calls. */
static size_t walk(hm_heap *h, walk_log *w, size_t stop_after) {
    w->n = w->calls = 0;
    w->stop_after = stop_after;
    size_t r = hm_heap_walk(h, walk_cb, w);
    if (r != w->calls) fail_msg("hm_heap_walk returned %zu after %zu callbacks", r, w->calls);
    return r;
}

/* The entry of `p`; fails when it is there more than once. NULL when absent. */
static const hm_block_info_t *walk_find(const walk_log *w, const void *p) {
    const hm_block_info_t *found = NULL;
    for (size_t i = 0; i < w->n; i++) {
        if (w->v[i].ptr != p) continue;
        if (found != NULL) fail_msg("block %p visited twice by one walk", p);
        found = &w->v[i];
    }
    return found;
}

static walk_log g_walk_log;

static walk_log *walk_log_new(void) {
    memset(&g_walk_log, 0, sizeof g_walk_log);
    return &g_walk_log;
}

/* ---- 1. DebugAlloc blocks -------------------------------------------------------------------- */
typedef struct thread_alloc {
    hm_heap *heap;
    IHostMalloc *com;
    size_t size;
    const char *file;
    int line;
    void *p;
    int tid;
} thread_alloc;

static void *thread_debug_alloc(void *arg) {
    thread_alloc *a = arg;
    a->tid = my_tid();
    if (a->heap != NULL) {
        a->p = hm_alloc_debug(a->heap, a->size, eTaskCritical, a->file, a->line);
    } else {
        a->p = NULL;
        if (IHostMalloc_DebugAlloc(a->com, a->size, eTaskCritical, (char *)a->file, a->line,
                                   &a->p) != S_OK)
            a->p = NULL;
    }
    return NULL;
}

/* File, line, size, sequence number and thread are recorded; the file name is copied. */
static void test_debug_block_records_site(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    sink *s = sink_new();
    hm_heap *h = new_heap(s, false);
    walk_log *w = walk_log_new();
    static const size_t sizes[] = {0, 1, 8, 9, 100, 1000, 5000, 40000, 65536, 100000, 3 << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    char name[64], orig[64];
    snprintf(name, sizeof name, "stack_site_%d.c", (int)getpid());
    memcpy(orig, name, sizeof orig);
    void *p[N];
    for (size_t i = 0; i < N; i++) {
        p[i] = debug_alloc(h, sizes[i], name, 1000 + (int)i);
        assert_int_equal(hm_usable_size(p[i]), sizes[i]);
        tu_fill(p[i], sizes[i], (unsigned)i);
    }
    /* the caller's string is gone: what the heap remembers must not change */
    memset(name, 'X', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_int_equal(walk(h, w, 0), N);
    uint64_t prev_seq = 0;
    for (size_t i = 0; i < N; i++) {
        const hm_block_info_t *b = walk_find(w, p[i]);
        if (b == NULL) fail_msg("block %zu (%p, %zu bytes) not visited", i, p[i], sizes[i]);
        assert_true(b->debug);
        assert_int_equal(b->size, sizes[i]);
        if (b->file == NULL || strcmp(b->file, orig) != 0)
            fail_msg("block %zu: site file '%s', expected '%s'", i, b->file ? b->file : "(null)",
                     orig);
        assert_ptr_not_equal(b->file, name);
        assert_int_equal(b->line, 1000 + (int)i);
        if (b->seq <= prev_seq)
            fail_msg("block %zu: seq %llu not above the previous %llu", i,
                     (unsigned long long)b->seq, (unsigned long long)prev_seq);
        prev_seq = b->seq;
        assert_int_equal(tu_check(p[i], sizes[i], (unsigned)i), sizes[i]);
    }

    /* the thread: a block of another thread and one of this thread, both with a broken back
     * canary; each report names the site, the sequence number and the allocating thread */
    thread_alloc ta = {h, NULL, 48, "thread_site.c", 77, NULL, 0};
    tu_run_thread(thread_debug_alloc, &ta);
    assert_non_null(ta.p);
    assert_int_not_equal(ta.tid, my_tid());
    void *mine = debug_alloc(h, 48, "thread_site.c", 78);
    assert_int_equal(walk(h, w, 0), N + 2);
    const hm_block_info_t *bt = walk_find(w, ta.p), *bm = walk_find(w, mine);
    assert_non_null(bt);
    assert_non_null(bm);
    assert_true(bm->seq > bt->seq);
    char expect[128];
    flip(ta.p, 48);
    heap_free_bad(h, ta.p, "other thread's block");
    snprintf(expect, sizeof expect, "thread_site.c:77 (#%llu, thread %d)",
             (unsigned long long)bt->seq, ta.tid);
    sink_expect(s, HM_ERROR_OVERRUN, ta.p, expect, "other thread's block");
    flip(mine, 48);
    heap_free_bad(h, mine, "this thread's block");
    snprintf(expect, sizeof expect, "thread_site.c:78 (#%llu, thread %d)",
             (unsigned long long)bm->seq, my_tid());
    sink_expect(s, HM_ERROR_OVERRUN, mine, expect, "this thread's block");

    for (size_t i = 0; i < N; i++)
        heap_free_ok(h, p[i]);
    sink_expect_none(s, "good frees");
    assert_int_equal(walk(h, w, 0), 0);
    hm_heap_release(h);
    sink_free(s);
}

/* Both canaries cover all their 8 bytes; a good free fills the block with 0xDF. */
static void test_debug_block_canaries_and_fill(void **state) {
    (void)state;
    sink *s = sink_new();
    hm_heap *h = new_heap(s, false);
    static const size_t sizes[] = {1, 16, 100, 3000, 100000};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        size_t n = sizes[i];
        for (int k = 0; k < 8; k++) {
            /* the user bytes are all the block's: writing them all breaks nothing */
            void *ok = debug_alloc(h, n, "canary.c", 1);
            memset(ok, 0xA5, n);
            heap_free_ok(h, ok);
            sink_expect_none(s, "a block written to its last byte");

            char what[96], site[32];
            void *p = debug_alloc(h, n, "canary.c", 100 + k);
            flip(p, (ptrdiff_t)n + k);
            snprintf(what, sizeof what, "%zu-byte block, byte %d after the end", n, k);
            snprintf(site, sizeof site, "canary.c:%d ", 100 + k);
            heap_free_bad(h, p, what);
            sink_expect(s, HM_ERROR_OVERRUN, p, site, what);

            void *q = debug_alloc(h, n, "canary.c", 200 + k);
            flip(q, -1 - k);
            snprintf(what, sizeof what, "%zu-byte block, byte %d before the start", n, k + 1);
            snprintf(site, sizeof site, "canary.c:%d ", 200 + k);
            heap_free_bad(h, q, what);
            sink_expect(s, HM_ERROR_UNDERRUN, q, site, what);
        }
    }

    /* the freed pattern, read right after the free, while the slot is still free (hm_heap_free
     * and hm_free alike) */
    static const size_t fill_sizes[] = {9, 24, 100, 1000, 5000, 30000, 60000};
    for (size_t i = 0; i < TU_ARRAY_SIZE(fill_sizes); i++) {
        size_t n = fill_sizes[i];
        for (int door = 0; door < 2; door++) {
            unsigned char *p = debug_alloc(h, n, "fill.c", (int)i);
            memset(p, 0x11, n);
            if (door == 0)
                heap_free_ok(h, p);
            else
                hm_free(p);
            const volatile unsigned char *u = p;
            for (size_t j = LINK_SIZE; j < n; j++)
                if (u[j] != DBG_FILL)
                    fail_msg("%zu-byte block freed by %s: byte %zu is 0x%02x, expected 0x%02x", n,
                             door == 0 ? "hm_heap_free" : "hm_free", j, u[j], DBG_FILL);
        }
    }
    sink_expect_none(s, "good frees");
    hm_heap_release(h);
    sink_free(s);
}

/* ---- 2. walking the heap --------------------------------------------------------------------- */
typedef struct wblk {
    void *p;
    size_t req;
    bool debug;
    int line;
    bool live;
} wblk;

#define WB_MAX 512
static const char k_walk_file[] = "walk_site.c";

typedef struct walk_thread {
    hm_heap *heap;
    wblk *b;
    size_t n;
} walk_thread;

/* Allocates b[0..n) (plain and debug alternately) and exits. */
static void *thread_walk_alloc(void *arg) {
    walk_thread *t = arg;
    for (size_t i = 0; i < t->n; i++) {
        wblk *b = &t->b[i];
        b->req = 24 + i * 40;
        b->debug = i % 2 == 1;
        b->line = 5000 + (int)i;
        b->p = b->debug ? hm_alloc_debug(t->heap, b->req, eTaskCritical, k_walk_file, b->line)
                        : hm_alloc(t->heap, b->req);
        b->live = b->p != NULL;
    }
    return NULL;
}

/* Frees (remotely) every live block of b[0..n) whose index is 1 mod 4. */
static void *thread_walk_free(void *arg) {
    walk_thread *t = arg;
    for (size_t i = 1; i < t->n; i += 4) {
        if (!t->b[i].live) continue;
        if (hm_heap_free(t->heap, t->b[i].p) == HM_OK) t->b[i].live = false;
    }
    return NULL;
}

/* Every live block once, with its size; the site for debug blocks; nothing else. */
static void check_walk(hm_heap *h, walk_log *w, const wblk *b, size_t n, const char *when) {
    size_t live = 0;
    for (size_t i = 0; i < n; i++)
        live += b[i].live;
    size_t got = walk(h, w, 0);
    if (got != live) fail_msg("%s: walk visited %zu blocks, %zu are live", when, got, live);
    for (size_t i = 0; i < n; i++) {
        const hm_block_info_t *e = walk_find(w, b[i].p);
        if (!b[i].live) {
            if (e != NULL) fail_msg("%s: freed block %zu (%p) still visited", when, i, b[i].p);
            continue;
        }
        if (e == NULL)
            fail_msg("%s: live block %zu (%p, %zu bytes, %s) not visited", when, i, b[i].p,
                     b[i].req, b[i].debug ? "debug" : "plain");
        if (e->debug != b[i].debug)
            fail_msg("%s: block %zu: debug=%d, expected %d", when, i, e->debug, b[i].debug);
        if (b[i].debug) {
            if (e->size != b[i].req || e->line != b[i].line || e->file == NULL ||
                strcmp(e->file, k_walk_file) != 0 || e->seq == 0)
                fail_msg("%s: debug block %zu: size %zu at %s:%d seq %llu, expected %zu at %s:%d",
                         when, i, e->size, e->file ? e->file : "(null)", e->line,
                         (unsigned long long)e->seq, b[i].req, k_walk_file, b[i].line);
        } else {
            size_t usable = hm_usable_size(b[i].p);
            if (e->size != usable || e->size < b[i].req || e->file != NULL || e->line != 0 ||
                e->seq != 0)
                fail_msg("%s: plain block %zu (%zu bytes): size %zu (usable %zu), file %s, line "
                         "%d, seq %llu",
                         when, i, b[i].req, e->size, usable, e->file ? e->file : "(null)", e->line,
                         (unsigned long long)e->seq);
        }
    }
}

static void test_walk_every_live_block(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    sink *s = sink_new();
    hm_heap *h = new_heap(s, false);
    walk_log *w = walk_log_new();
    static wblk b[WB_MAX];
    memset(b, 0, sizeof b);
    size_t n = 0;
    assert_int_equal(walk(h, w, 0), 0); /* an empty heap */

    static const size_t plain[] = {0, 1, 16, 17, 100, 1024, 1025, 5000, 9000, 70000, 3 << 20};
    static const size_t dbg[] = {0, 1, 15, 100, 2000, 65436, 65536, 1 << 20};
    for (int r = 0; r < 3; r++) {
        for (size_t i = 0; i < TU_ARRAY_SIZE(plain); i++, n++)
            b[n] = (wblk){must_alloc(h, plain[i]), plain[i], false, 0, true};
        for (size_t i = 0; i < TU_ARRAY_SIZE(dbg); i++, n++) {
            int line = 100 * r + (int)i + 1;
            b[n] = (wblk){debug_alloc(h, dbg[i], k_walk_file, line), dbg[i], true, line, true};
        }
    }
    /* aligned blocks, small and huge */
    static const size_t al[][2] = {{100, 256}, {5000, 4096}, {300000, 1 << 20}};
    for (size_t i = 0; i < TU_ARRAY_SIZE(al); i++, n++) {
        void *p = hm_alloc_aligned(h, al[i][0], al[i][1]);
        assert_non_null(p);
        assert_true(tu_is_aligned(p, al[i][1]));
        b[n] = (wblk){p, al[i][0], false, 0, true};
    }
    /* blocks of another thread (which has exited since) */
    walk_thread wt = {h, &b[n], 40};
    tu_run_thread(thread_walk_alloc, &wt);
    for (size_t i = 0; i < wt.n; i++)
        assert_non_null(b[n + i].p);
    n += wt.n;
    check_walk(h, w, b, n, "after allocation");

    /* stopping early: the callback's false ends the walk at once */
    assert_int_equal(walk(h, w, 1), 1);
    assert_int_equal(walk(h, w, 7), 7);
    assert_int_equal(walk(h, w, n), n);

    /* local frees: every third block */
    for (size_t i = 0; i < n; i += 3) {
        heap_free_ok(h, b[i].p);
        b[i].live = false;
    }
    check_walk(h, w, b, n, "after local frees");

    /* remote frees (another thread, not collected by the owner): the walk does NOT report
     * them, before hm_heap_collect as after. Plain blocks sit on their page's thread_free list,
     * which the walk reads; debug blocks are marked freed by the free itself. hm_heap_stats,
     * by contrast, still counts them as live until the owner collects (checked below). */
    walk_thread ft = {h, b, n};
    tu_run_thread(thread_walk_free, &ft);
    size_t remote = 0;
    for (size_t i = 1; i < n; i += 4)
        remote += (i % 3 != 0); /* those not freed locally already */
    size_t live_now = 0;
    for (size_t i = 0; i < n; i++)
        live_now += b[i].live;
    assert_int_equal(live_now, n - (n + 2) / 3 - remote); /* the thread freed them all */
    check_walk(h, w, b, n, "after remote frees, before collecting");
    hm_heap_stats_t st;
    hm_heap_stats(h, &st);
    if (st.live_blocks < w->n + remote)
        fail_msg("before collecting: hm_heap_stats counts %zu live blocks, the walk %zu, and %zu "
                 "were freed remotely",
                 st.live_blocks, w->n, remote);
    hm_heap_collect(h, false);
    check_walk(h, w, b, n, "after remote frees and hm_heap_collect");
    hm_heap_stats(h, &st);
    if (st.live_blocks != w->n)
        fail_msg("after collecting: hm_heap_stats counts %zu live blocks, the walk %zu",
                 st.live_blocks, w->n);
    hm_heap_collect(h, true);
    check_walk(h, w, b, n, "after hm_heap_collect(force)");

    for (size_t i = 0; i < n; i++) {
        if (!b[i].live) continue;
        heap_free_ok(h, b[i].p);
        b[i].live = false;
    }
    check_walk(h, w, b, n, "after freeing everything");
    assert_int_equal(walk(h, w, 0), 0);
    sink_expect_none(s, "walk test");
    hm_heap_release(h);
    sink_free(s);
}

/* ---- 3. leak reports --------------------------------------------------------------------- */
typedef struct leak_site {
    const char *file;
    int line;
    size_t count, bytes;
} leak_site;

/* Parse a leak report; fails on any line that does not fit. Returns the number of sites. */
static size_t parse_leaks(const char *text, const void *heap, size_t *blocks, size_t *bytes,
                          leak_site *sites, char names[][64], size_t max) {
    const char *line = text;
    const char *nl = strchr(line, '\n');
    if (nl == NULL) fail_msg("leak report without a header line: '%s'", text);
    void *hp = NULL;
    size_t nsites = 0;
    if (sscanf(line,
               "hostmalloc: leak report for heap %p: %zu DebugAlloc blocks, %zu bytes, from "
               "%zu sites",
               &hp, blocks, bytes, &nsites) != 4)
        fail_msg("bad leak report header: '%.*s'", (int)(nl - line), line);
    if (hp != heap) fail_msg("leak report names heap %p, expected %p", hp, heap);
    size_t n = 0;
    for (line = nl + 1; *line != '\0'; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl == NULL) fail_msg("unterminated leak report line: '%s'", line);
        if (n == max)
            fail_msg("more leak report lines than expected: '%.*s'", (int)(nl - line), line);
        int used = 0;
        char fmt[64];
        snprintf(fmt, sizeof fmt, "  %%63[^:]:%%d: %%zu blocks, %%zu bytes%%n");
        if (sscanf(line, fmt, names[n], &sites[n].line, &sites[n].count, &sites[n].bytes, &used) !=
                4 ||
            line + used != nl)
            fail_msg("bad leak report line: '%.*s'", (int)(nl - line), line);
        sites[n].file = names[n];
        n++;
    }
    if (n != nsites) fail_msg("leak report header says %zu sites, %zu lines follow", nsites, n);
    return n;
}

static void test_leak_report_groups_sites(void **state) {
    (void)state;
    sink *s = sink_new();
    hm_heap *h = new_heap(s, true); /* checked: its plain blocks are debug blocks too */
    /* sites: gamma.c:5 2x2500 = 5000, alpha.c:20 1x1000, alpha.c:10 3x100 = 300 (the name from
     * two different buffers: one site), beta.c:10 10x10 = 100 */
    char a1[] = "alpha.c", a2[] = "alpha.c";
    void *keep[32];
    size_t nk = 0;
    keep[nk++] = debug_alloc(h, 100, a1, 10);
    keep[nk++] = debug_alloc(h, 10, "beta.c", 10);
    keep[nk++] = debug_alloc(h, 2500, "gamma.c", 5);
    keep[nk++] = debug_alloc(h, 100, a2, 10);
    keep[nk++] = debug_alloc(h, 1000, a2, 20);
    keep[nk++] = debug_alloc(h, 100, a1, 10);
    keep[nk++] = debug_alloc(h, 2500, "gamma.c", 5);
    for (int i = 0; i < 9; i++)
        keep[nk++] = debug_alloc(h, 10, "beta.c", 10);
    memset(a1, '#', sizeof a1 - 1);
    memset(a2, '%', sizeof a2 - 1);
    /* freed DebugAlloc blocks and checked-mode blocks are not leaks of the report */
    for (int i = 0; i < 5; i++)
        heap_free_ok(h, debug_alloc(h, 50000, "freed.c", 1));
    void *checked[20];
    for (int i = 0; i < 20; i++)
        checked[i] = must_alloc(h, (size_t)4000 + (size_t)i);

    FILE *f = tmpfile();
    assert_non_null(f);
    size_t found = hm_heap_report_leaks(h, f);
    assert_int_equal(found, 16);
    char text[4096];
    rewind(f);
    size_t len = fread(text, 1, sizeof text - 1, f);
    text[len] = '\0';
    fclose(f);
    leak_site sites[8];
    char names[8][64];
    size_t blocks = 0, bytes = 0;
    size_t ns = parse_leaks(text, h, &blocks, &bytes, sites, names, 8);
    static const leak_site expected[] = {{"gamma.c", 5, 2, 5000},
                                         {"alpha.c", 20, 1, 1000},
                                         {"alpha.c", 10, 3, 300},
                                         {"beta.c", 10, 10, 100}};
    if (ns != TU_ARRAY_SIZE(expected) || blocks != 16 || bytes != 6400)
        fail_msg("leak report: %zu sites, %zu blocks, %zu bytes; expected 4, 16, 6400:\n%s", ns,
                 blocks, bytes, text);
    for (size_t i = 0; i < ns; i++)
        if (strcmp(sites[i].file, expected[i].file) != 0 || sites[i].line != expected[i].line ||
            sites[i].count != expected[i].count || sites[i].bytes != expected[i].bytes)
            fail_msg("leak report line %zu is %s:%d %zu blocks %zu bytes, expected %s:%d %zu "
                     "blocks %zu bytes:\n%s",
                     i, sites[i].file, sites[i].line, sites[i].count, sites[i].bytes,
                     expected[i].file, expected[i].line, expected[i].count, expected[i].bytes,
                     text);
    sink_expect_none(s, "a report to a FILE");

    /* NULL: the same report goes to the heap's error sink, kind LEAK, a line a call */
    assert_int_equal(hm_heap_report_leaks(h, NULL), 16);
    pthread_mutex_lock(&s->lock);
    size_t calls = s->total;
    bool kinds_ok = true;
    for (size_t i = 0; i < s->kept; i++)
        kinds_ok = kinds_ok && s->r[i].kind == HM_ERROR_LEAK && s->r[i].ptr == NULL;
    bool same = strcmp(s->text, text) == 0;
    pthread_mutex_unlock(&s->lock);
    assert_int_equal(calls, 5);
    assert_true(kinds_ok);
    if (!same) fail_msg("the sink got '%s', the file '%s'", s->text, text);
    sink_reset(s);

    /* nothing but checked blocks: no report at all */
    for (size_t i = 0; i < nk; i++)
        heap_free_ok(h, keep[i]);
    f = tmpfile();
    assert_non_null(f);
    assert_int_equal(hm_heap_report_leaks(h, f), 0);
    assert_int_equal(ftell(f), 0);
    fclose(f);
    assert_int_equal(hm_heap_report_leaks(h, NULL), 0);
    sink_expect_none(s, "no leaks");
    for (int i = 0; i < 20; i++)
        heap_free_ok(h, checked[i]);
    sink_expect_none(s, "good frees");
    hm_heap_release(h);
    sink_free(s);
}

static void test_leak_report_on_release(void **state) {
    (void)state;
    sink *s = sink_new();
    /* leaks: a report on the last Release, kind LEAK, to the sink */
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, false, &mgr);
    char file[] = "com_leak.c";
    for (int i = 0; i < 3; i++)
        (void)com_debug_alloc(m, 700, file, 31);
    (void)com_debug_alloc(m, 64, file, 32);
    com_free_ok(m, com_debug_alloc(m, 5000, file, 33));
    for (int i = 0; i < 10; i++)
        (void)com_alloc(m, 1000); /* plain blocks: not in the report */
    memset(file, 'Z', sizeof file - 1);
    assert_int_equal(IHostMalloc_AddRef(m), 2);
    assert_int_equal(IHostMalloc_Release(m), 1);
    sink_expect_none(s, "a Release that is not the last");
    assert_int_equal(IHostMalloc_Release(m), 0);
    pthread_mutex_lock(&s->lock);
    size_t calls = s->total;
    bool kinds_ok = true;
    for (size_t i = 0; i < s->kept; i++)
        kinds_ok = kinds_ok && s->r[i].kind == HM_ERROR_LEAK;
    char text[sizeof s->text];
    memcpy(text, s->text, sizeof text);
    pthread_mutex_unlock(&s->lock);
    if (calls != 3 || !kinds_ok)
        fail_msg("last Release: %zu sink calls (expected 3, all LEAK):\n%s", calls, text);
    leak_site sites[4];
    char names[4][64];
    size_t blocks = 0, bytes = 0;
    /* the heap is gone: only its header line's shape is checked, not its address */
    void *hp = NULL;
    assert_int_equal(sscanf(text, "hostmalloc: leak report for heap %p", &hp), 1);
    size_t ns = parse_leaks(text, hp, &blocks, &bytes, sites, names, 4);
    assert_int_equal(ns, 2);
    assert_int_equal(blocks, 4);
    assert_int_equal(bytes, 2164);
    assert_string_equal(sites[0].file, "com_leak.c");
    assert_int_equal(sites[0].line, 31);
    assert_int_equal(sites[0].count, 3);
    assert_int_equal(sites[0].bytes, 2100);
    assert_string_equal(sites[1].file, "com_leak.c");
    assert_int_equal(sites[1].line, 32);
    assert_int_equal(sites[1].count, 1);
    assert_int_equal(sites[1].bytes, 64);
    IHostMemoryManager_Release(mgr);
    sink_reset(s);

    /* nothing leaks (plain blocks do not count): not a word */
    m = new_com(s, false, &mgr);
    void *d[8];
    for (int i = 0; i < 8; i++)
        d[i] = com_debug_alloc(m, (size_t)i * 300 + 1, "no_leak.c", i);
    for (int i = 0; i < 8; i++)
        (void)com_alloc(m, (size_t)i * 300 + 1);
    for (int i = 0; i < 8; i++)
        com_free_ok(m, d[i]);
    com_done(m, mgr);
    sink_expect_none(s, "last Release without leaks");
    sink_free(s);
}

/* ---- 4. misuse of debug blocks ------------------------------------------------------------- */
/* `p` (now quarantined) is never handed out again, by DebugAlloc or Alloc of its size. */
static void assert_never_reused(IHostMalloc *m, const void *p, size_t size) {
    enum { N = 3000 };
    static void *v[N];
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < N; i++) {
            v[i] = pass == 0 ? com_debug_alloc(m, size, "reuse.c", i) : com_alloc(m, size);
            if (v[i] == p)
                fail_msg("the quarantined block %p was handed out again (%s #%d)", p,
                         pass == 0 ? "DebugAlloc" : "Alloc", i);
        }
        for (int i = 0; i < N; i++)
            com_free_ok(m, v[i]);
    }
}

static void test_misuse_broken_canary(void **state) {
    (void)state;
    sink *s = sink_new();
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, false, &mgr);
    static const size_t sizes[] = {1, 40, 1000, 100000};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        size_t n = sizes[i];
        for (int under = 0; under < 2; under++) {
            char file[] = "misuse_site.c";
            int line = 4000 + 10 * (int)i + under;
            char *p = com_debug_alloc(m, n, file, line);
            memset(file, '?', sizeof file - 1); /* the site must survive its string */
            memset(p, 0x3C, n);
            flip(p, under ? -1 : (ptrdiff_t)n);
            char what[80], site[48];
            snprintf(what, sizeof what, "%zu-byte block, one byte %s", n,
                     under ? "before the start" : "past the end");
            com_free_bad(m, p, what);
            snprintf(site, sizeof site, "misuse_site.c:%d ", line);
            sink_expect(s, under ? HM_ERROR_UNDERRUN : HM_ERROR_OVERRUN, p, site, what);
            if (strstr(g_last.msg, under ? "underrun" : "overrun") == NULL)
                fail_msg("%s: message '%s' does not name the error", what, g_last.msg);
            if (n <= 1000) assert_never_reused(m, p, n);
            sink_expect_none(s, "good allocations after a bad free");
            /* still refused: it is not a live block any more */
            com_free_bad(m, p, "Free of a quarantined block");
            sink_expect(s, HM_ERROR_DOUBLE_FREE, p, site, "Free of a quarantined block");
        }
    }
    com_done(m, mgr);
    sink_expect_none(s, "Release");
    sink_free(s);
}

typedef struct witness {
    void *p;
    size_t size;
    unsigned seed;
} witness;

/* A leak report line for a very long file name used to be cut at 511 bytes without its
 * ":line: n blocks" and its newline, so the next line was glued on. Every line must be whole:
 * the end of the name (after "..."), the line number, the counts and one newline. */
static void test_leak_report_long_file(void **state) {
    (void)state;
    sink *s = sink_new();
    hm_heap *h = new_heap(s, false);
    static char names[3][700];
    static const size_t lens[] = {400, 600, 700 - 1};
    for (int i = 0; i < 3; i++) {
        memset(names[i], 'a' + i, lens[i]);
        names[i][lens[i]] = '\0';
        memcpy(names[i] + lens[i] - 6, "_end.c", 6);
    }
    void *p[3];
    for (int i = 0; i < 3; i++)
        p[i] = debug_alloc(h, (size_t)100 * (size_t)(3 - i), names[i], 1000000 + i);
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(hm_heap_report_leaks(h, f), 3);
    static char text[8192];
    rewind(f);
    size_t len = fread(text, 1, sizeof text - 1, f);
    text[len] = '\0';
    fclose(f);
    /* the header, then one line a site, largest first */
    char *line = strchr(text, '\n');
    assert_non_null(line);
    line++;
    for (int i = 0; i < 3; i++) {
        char *nl = strchr(line, '\n');
        if (nl == NULL) fail_msg("site line %d has no newline: '%s'", i, line);
        size_t n = (size_t)(nl - line) + 1;
        if (n > 511) fail_msg("site line %d is %zu bytes long", i, n);
        char tail[64];
        snprintf(tail, sizeof tail, "_end.c:%d: 1 blocks, %d bytes", 1000000 + i, 100 * (3 - i));
        if (strncmp(line, "  ...", 5) != 0 || n < strlen(tail) + 1 ||
            strncmp(nl - strlen(tail), tail, strlen(tail)) != 0)
            fail_msg("site line %d: '%.*s' (expected \"  ...<tail of the name>%s\")", i,
                     (int)(n - 1), line, tail);
        /* the shown part is the end of the name */
        if (line[5] != 'a' + i) fail_msg("site line %d shows '%c...'", i, line[5]);
        line = nl + 1;
    }
    if (*line != '\0') fail_msg("more text after the sites: '%s'", line);
    /* the error sink gets the same whole lines, and a misuse report is one whole line too */
    sink_reset(s);
    assert_int_equal(hm_heap_report_leaks(h, NULL), 3);
    pthread_mutex_lock(&s->lock);
    bool whole = s->kept == 4;
    for (size_t i = 1; i < s->kept; i++) {
        size_t n = strlen(s->r[i].msg);
        whole = whole && n > 0 && s->r[i].msg[n - 1] == '\n' && strstr(s->r[i].msg, " bytes\n");
    }
    pthread_mutex_unlock(&s->lock);
    if (!whole) fail_msg("the sink got cut lines: '%s'", s->text);
    sink_reset(s);
    heap_free_ok(h, p[1]);
    heap_free_bad(h, p[1], "a second free of a long-named block");
    sink_expect(s, HM_ERROR_DOUBLE_FREE, p[1], "_end.c:1000001 (#", "double free, long name");
    heap_free_ok(h, p[0]);
    heap_free_ok(h, p[2]);
    hm_heap_release(h);
    sink_free(s);
}

static void test_misuse_double_free(void **state) {
    (void)state;
    sink *s = sink_new();
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, false, &mgr);
    hm_heap *h = new_heap(s, false);
    static const size_t sizes[] = {1, 64, 500, 4000, 20000};
    witness wit[20];
    for (int i = 0; i < 20; i++) {
        wit[i].size = sizes[i % 5];
        wit[i].seed = (unsigned)i;
        wit[i].p =
            i % 2 ? com_debug_alloc(m, wit[i].size, "witness.c", i) : com_alloc(m, wit[i].size);
        tu_fill(wit[i].p, wit[i].size, wit[i].seed);
    }
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        size_t n = sizes[i];
        char site[48];
        /* the COM door */
        char *p = com_debug_alloc(m, n, "double.c", 600 + (int)i);
        com_free_ok(m, p);
        com_free_bad(m, p, "second Free");
        snprintf(site, sizeof site, "double.c:%d ", 600 + (int)i);
        sink_expect(s, HM_ERROR_DOUBLE_FREE, p, site, "second Free (COM)");
        if (strstr(g_last.msg, "double free") == NULL)
            fail_msg("message '%s' does not name the error", g_last.msg);
        /* nothing changed: the slot is free once (handed out once, not twice), and an
         * allocation/free sequence works */
        enum { K = 300 };
        void *v[K];
        int seen = 0;
        for (int k = 0; k < K; k++) {
            v[k] = com_debug_alloc(m, n, "after.c", k);
            seen += v[k] == p;
            tu_fill(v[k], n, (unsigned)k);
        }
        if (seen != 1)
            fail_msg("%zu bytes: the double-freed block came back %d times in %d allocations", n,
                     seen, K);
        for (int k = 0; k < K; k++) {
            assert_int_equal(tu_check(v[k], n, (unsigned)k), n);
            com_free_ok(m, v[k]);
        }
        sink_expect_none(s, "allocations after a double free");

        /* the native door */
        void *q = debug_alloc(h, n, "double.c", 700 + (int)i);
        heap_free_ok(h, q);
        heap_free_bad(h, q, "second hm_heap_free");
        snprintf(site, sizeof site, "double.c:%d ", 700 + (int)i);
        sink_expect(s, HM_ERROR_DOUBLE_FREE, q, site, "second hm_heap_free");
        void *q2 = debug_alloc(h, n, "double.c", 1);
        void *q3 = debug_alloc(h, n, "double.c", 2);
        assert_ptr_not_equal(q2, q3);
        heap_free_ok(h, q2);
        heap_free_ok(h, q3);
    }
    for (int i = 0; i < 20; i++) {
        if (tu_check(wit[i].p, wit[i].size, wit[i].seed) != wit[i].size)
            fail_msg("live block %d (%p) damaged by the double frees", i, wit[i].p);
        com_free_ok(m, wit[i].p);
    }
    sink_expect_none(s, "frees of the witnesses");
    com_done(m, mgr);
    hm_heap_release(h);
    sink_expect_none(s, "Release");
    sink_free(s);
}

/* ---- 5. checked mode ---------------------------------------------------------------------- */
/* 100 sizes: 1..65536 spread out, and every tenth one huge. */
static size_t df_size(int i) {
    if (i % 10 == 9) return ((size_t)1 << 20) + (size_t)i * 4096;
    if (i == 0) return 1;
    if (i == 1) return 65536;
    return 1 + ((size_t)i * 2654435761u) % 65536;
}

static void test_checked_double_free_detected(void **state) {
    (void)state;
    sink *s = sink_new();
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, true, &mgr);
    hm_heap *h = new_heap(s, true);
    enum { N = 100 };
    void *p[N];
    char missed[2048] = "";
    size_t ml = 0;
    int detected_com = 0, detected_native = 0;
    /* the COM door: all live, all freed, then all freed again */
    for (int i = 0; i < N; i++)
        p[i] = com_alloc(m, df_size(i));
    for (int i = 0; i < N; i++)
        com_free_ok(m, p[i]);
    sink_expect_none(s, "first frees");
    for (int i = 0; i < N; i++) {
        HRESULT hr = IHostMalloc_Free(m, p[i]);
        pthread_mutex_lock(&s->lock);
        bool ok = hr == HOST_E_INVALIDOPERATION && s->total == 1 &&
                  s->r[0].kind == HM_ERROR_DOUBLE_FREE && s->r[0].ptr == p[i];
        pthread_mutex_unlock(&s->lock);
        sink_reset(s);
        if (ok)
            detected_com++;
        else if (ml < sizeof missed - 64)
            ml += (size_t)snprintf(missed + ml, sizeof missed - ml, " com:%zu(hr 0x%08x)",
                                   df_size(i), HR(hr));
    }
    /* the native door: each freed twice in a row */
    for (int i = 0; i < N; i++) {
        void *q = must_alloc(h, df_size(i));
        heap_free_ok(h, q);
        hm_result r = hm_heap_free(h, q);
        pthread_mutex_lock(&s->lock);
        bool ok = r == HM_ERR_NOT_BLOCK && s->total == 1 && s->r[0].kind == HM_ERROR_DOUBLE_FREE &&
                  s->r[0].ptr == q;
        pthread_mutex_unlock(&s->lock);
        sink_reset(s);
        if (ok)
            detected_native++;
        else if (ml < sizeof missed - 64)
            ml += (size_t)snprintf(missed + ml, sizeof missed - ml, " native:%zu(r %d)", df_size(i),
                                   (int)r);
    }
    if (detected_com != N || detected_native != N)
        fail_msg("double frees detected (error + one DOUBLE_FREE report): COM %d/%d, native "
                 "%d/%d; missed:%s",
                 detected_com, N, detected_native, N, missed);
    com_done(m, mgr);
    hm_heap_release(h);
    sink_free(s);
}

static void test_checked_byte_precise_overrun(void **state) {
    (void)state;
    sink *s = sink_new();
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, true, &mgr);
    hm_heap *h = new_heap(s, true);
    static const size_t sizes[] = {0, 1, 7, 8, 15, 16, 17, 100, 1000, 1001, 4096, 70000};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        size_t n = sizes[i];
        char what[64];
        for (int k = 0; k < 2; k++) {
            const door_t d = {k == 1, m, h};
            /* every requested byte is usable, and writing all of them is fine */
            void *ok = door_alloc(&d, n);
            if (hm_usable_size(ok) != n)
                fail_msg("checked %s block of %zu bytes: usable size %zu", door_name(&d), n,
                         hm_usable_size(ok));
            memset(ok, 0x77, n);
            door_free_ok(&d, ok);
            sink_expect_none(s, "a block written to its last byte");
            /* one byte more is caught at free (a block of 0 bytes faults at once instead:
             * tests/death, test_checked_zero_block_faults) */
            if (n == 0) continue;
            void *p = door_alloc(&d, n);
            memset(p, 0x77, n);
            flip(p, (ptrdiff_t)n);
            snprintf(what, sizeof what, "%s: %zu bytes, one past the end", door_name(&d), n);
            door_free_bad(&d, p, what);
            sink_expect(s, HM_ERROR_OVERRUN, p, "overrun", what);
        }
    }
    com_done(m, mgr);
    hm_heap_release(h);
    sink_free(s);
}

/* A checked manager whose instances also inject faults (their own Alloc wraps the plain
 * one): every block they hand out is still a checked block, whose misuse is caught. */
static void test_checked_with_faults(void **state) {
    (void)state;
    sink *s = sink_new();
    hm_config c = config_for(s, true);
    c.fault_every[eProcessCritical] = 1000000; /* on, but never reached here */
    IHostMemoryManager *mgr = NULL;
    assert_int_equal(hm_create_host_memory_manager(&c, &mgr), S_OK);
    IHostMalloc *m = NULL;
    assert_int_equal(IHostMemoryManager_CreateMalloc(mgr, MALLOC_THREADSAFE, &m), S_OK);
    static const size_t sizes[] = {1, 16, 100, 5000, 70000};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        size_t n = sizes[i];
        char what[64];
        snprintf(what, sizeof what, "a faulty checked instance's block of %zu bytes", n);
        void *p = com_alloc(m, n);
        if (hm_usable_size(p) != n) fail_msg("%s: usable size %zu", what, hm_usable_size(p));
        flip(p, (ptrdiff_t)n);
        com_free_bad(m, p, what);
        sink_expect(s, HM_ERROR_OVERRUN, p, "overrun", what);
    }
    com_done(m, mgr);
    sink_free(s);
}

/* Allocate and free blocks of `size` until `p` comes back (at most 20000 tries), then free it
 * too. Each block is freed at once: checked pages hand the block freed last out only after
 * another free, and a loop of allocations and frees is what brings a delayed block back. */
static bool realloc_until(hm_heap *h, IHostMalloc *m, void *p, size_t size) {
    for (int i = 0; i < 20000; i++) {
        void *q = m ? com_alloc(m, size) : must_alloc(h, size);
        if (m)
            com_free_ok(m, q);
        else
            heap_free_ok(h, q);
        if (q == p) return true;
    }
    return false;
}

static void test_checked_write_after_free(void **state) {
    (void)state;
    sink *s = sink_new();
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, true, &mgr);
    hm_heap *h = new_heap(s, true);
    static const size_t sizes[] = {9, 24, 100, 1000, 5000, 40000};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        size_t n = sizes[i];
        /* The COM door reports and goes on; the native door (malloc-style) aborts after the
         * report: test_checked_malloc_door_write_after_free_aborts (tests/death) checks that in a
         * child. */
        /* where: in the free-list link (validated when the slot is handed out again), at the
         * first and the last byte of the fill checked mode checks (user bytes [8, 32)) */
        const size_t where[] = {3, 8, n - 1 < 31 ? n - 1 : 31};
        for (size_t wi = 0; wi < TU_ARRAY_SIZE(where); wi++) {
            char what[64];
            /* control: freed and taken back untouched: no report */
            unsigned char *c = com_alloc(m, n);
            com_free_ok(m, c);
            if (!realloc_until(h, m, c, n)) fail_msg("%zu bytes: the slot never came back", n);
            sink_expect_none(s, "reuse of an untouched freed block");
            /* written after the free: reported when the slot is handed out again (the
             * allocation itself succeeds: on the COM door Alloc still returns S_OK) */
            unsigned char *p = com_alloc(m, n);
            com_free_ok(m, p);
            p[where[wi]] ^= 0x42; /* a change whatever the byte held (a link, a check word) */
            sink_expect_none(s, "a write after free, before reuse");
            if (!realloc_until(h, m, p, n)) fail_msg("%zu bytes: the slot never came back", n);
            snprintf(what, sizeof what, "COM: %zu bytes, byte %zu", n, where[wi]);
            sink_expect(s, HM_ERROR_WRITE_AFTER_FREE, p, "write after free", what);
        }
    }
    com_done(m, mgr);
    hm_heap_release(h);
    sink_free(s);
}

/* Checked pages delay reuse: a freed block is not the next one handed out (the block freed last
 * is never), so the classic stale free (free p, allocate the same size, free p) is still a
 * double free, on both doors; and the block, when it does come back, shows none of the link and
 * check word it held while freed. */
enum { HELD_MAX = 4200 }; /* more blocks than a page has: 4,096 */
static void test_checked_delayed_reuse(void **state) {
    (void)state;
    unsigned char **held = calloc(HELD_MAX, sizeof *held);
    assert_non_null(held);
    sink *s = sink_new();
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, true, &mgr);
    hm_heap *h = new_heap(s, true);
    static const size_t sizes[] = {1, 24, 100, 1000, 40000};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        size_t n = sizes[i];
        char what[64];
        for (int door = 0; door < 2; door++) {
            snprintf(what, sizeof what, "%s: %zu bytes", door ? "native" : "COM", n);
            unsigned char *p = door ? must_alloc(h, n) : com_alloc(m, n);
            memset(p, 0xAB, n);
            if (door)
                heap_free_ok(h, p);
            else
                com_free_ok(m, p);
            unsigned char *q = door ? must_alloc(h, n) : com_alloc(m, n);
            if (q == p) fail_msg("%s: the block freed last was handed out next", what);
            if (door) {
                if (hm_heap_free(h, p) != HM_ERR_NOT_BLOCK)
                    fail_msg("%s: second free let through", what);
            } else {
                com_free_bad(m, p, what);
            }
            sink_expect(s, HM_ERROR_DOUBLE_FREE, p, "double free", what);
            /* the block freed last stays back: with q freed after it, p comes back once the
             * page's other free blocks are handed out (kept here), its bytes [0, 16) (the link
             * and check word while it was freed) zero */
            if (door)
                heap_free_ok(h, q);
            else
                com_free_ok(m, q);
            size_t kept = 0;
            unsigned char *r;
            while ((r = door ? must_alloc(h, n) : com_alloc(m, n)) != p) {
                if (kept == HELD_MAX) fail_msg("%s: the block never came back", what);
                held[kept++] = r;
            }
            for (size_t b = 0; b < n && b < 16; b++)
                if (p[b] != 0)
                    fail_msg("%s: byte %zu of the block handed out again is 0x%02x", what, b, p[b]);
            held[kept++] = p;
            for (size_t k = 0; k < kept; k++) {
                if (door)
                    heap_free_ok(h, held[k]);
                else
                    com_free_ok(m, held[k]);
            }
        }
    }
    sink_expect_none(s, "the good frees");
    com_done(m, mgr);
    hm_heap_release(h);
    sink_free(s);
    free(held);
}

/* Writes after free past byte 32: one free in SAMPLE of a page's owner (the first of a fresh
 * page among them) fills the whole slot, and the allocation that hands the block out again
 * checks it all. A block p is freed, written at byte 150 and taken back 2 * SAMPLE times; each
 * time a spare block of its page is freed after it (checked pages keep the block freed last
 * back, so p comes back once the page's other free blocks are handed out; those are held, and
 * serve as the next spares). Every free is on p's page, two a cycle, so p's frees are the
 * page's frees 0, 2, 4, ...: those at 0, SAMPLE, 2 * SAMPLE and 3 * SAMPLE are sampled, and
 * p written is reported exactly 4 times; untouched, never. */
#define SAMPLE 128 /* HM_CHECKED_SAMPLE (src/debug/checked.h), slots of up to 2 KiB */
static bool same_page(const void *a, const void *b) {
    return (uintptr_t)a >> 16 == (uintptr_t)b >> 16; /* 64 KiB pages for blocks of 200 bytes */
}
static void test_checked_write_after_free_sampled(void **state) {
    (void)state;
    sink *s = sink_new();
    unsigned char **held = calloc(HELD_MAX, sizeof *held);
    assert_non_null(held);
    for (int write = 0; write < 2; write++) {
        IHostMemoryManager *mgr;
        IHostMalloc *m = new_com(s, true, &mgr);
        unsigned char *p = com_alloc(m, 200);
        unsigned char *spare = com_alloc(m, 200);
        if (!same_page(p, spare)) fail_msg("the first two blocks of a fresh page on two pages");
        size_t reports = 0, nheld = 0, page_frees = 0;
        for (int i = 0; i < 2 * SAMPLE; i++) {
            com_free_ok(m, p);
            page_frees++;
            if (write) p[150] ^= 0x42;
            com_free_ok(m, spare);
            page_frees++;
            pthread_mutex_lock(&s->lock);
            size_t before = s->total;
            pthread_mutex_unlock(&s->lock);
            unsigned char *q;
            while ((q = com_alloc(m, 200)) != p) {
                if (nheld == HELD_MAX) fail_msg("cycle %d: the freed block never came back", i);
                held[nheld++] = q;
            }
            pthread_mutex_lock(&s->lock);
            if (s->total > before) {
                reports++;
                const sink_report *r = &s->r[s->kept - 1];
                if (r->kind != HM_ERROR_WRITE_AFTER_FREE || r->ptr != p)
                    fail_msg("cycle %d: a report of kind %s", i, kind_str(r->kind));
            }
            pthread_mutex_unlock(&s->lock);
            /* the next spare: a held block of p's page (or a new one that lands there) */
            spare = NULL;
            while (spare == NULL) {
                if (nheld == 0) held[nheld++] = com_alloc(m, 200);
                if (same_page(held[nheld - 1], p))
                    spare = held[--nheld];
                else if (nheld < HELD_MAX)
                    held[nheld++] = com_alloc(m, 200);
                else
                    fail_msg("cycle %d: no block of p's page", i);
            }
        }
        assert_int_equal(page_frees, 4 * SAMPLE);
        com_free_ok(m, p);
        com_free_ok(m, spare);
        for (size_t i = 0; i < nheld; i++)
            com_free_ok(m, held[i]);
        com_done(m, mgr);
        if (reports != (write ? 4u : 0u))
            fail_msg("%s: %zu reports in %d cycles, expected %d", write ? "written" : "untouched",
                     reports, 2 * SAMPLE, write ? 4 : 0);
        sink_reset(s);
    }
    free(held);
    sink_free(s);
}

/* Damage to a checked block's size or tag (the 8 bytes before it) is an underrun, on both
 * doors; the block is quarantined (a later free is a double free). */
static void test_checked_header_damage(void **state) {
    (void)state;
    sink *s = sink_new();
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, true, &mgr);
    hm_heap *h = new_heap(s, true);
    for (int k = 0; k < 2; k++) {
        const door_t d = {k == 1, m, h};
        for (ptrdiff_t off = -1; off >= -8; off--) {
            unsigned char *p = door_alloc(&d, 40);
            flip(p, off);
            char what[64];
            snprintf(what, sizeof what, "%s: header byte %d", door_name(&d), (int)off);
            door_free_bad(&d, p, what);
            sink_expect(s, HM_ERROR_UNDERRUN, p, "underrun", what);
            door_free_bad(&d, p, what);
            sink_expect(s, HM_ERROR_DOUBLE_FREE, p, "double free", what);
        }
    }
    com_done(m, mgr);
    hm_heap_release(h);
    sink_free(s);
}

/* Blocks up to 64 KiB stay on pages in checked mode and for DebugAlloc (their header and
 * canary take an 80 KiB slot, not a huge mapping of their own); those whose slot would not fit
 * in 80 KiB are huge: checked blocks above 81,896 bytes (80 KiB less 16 of header and 8 of
 * canary), DebugAlloc blocks above 81,864 (48 of header). */
static void test_checked_64k_on_pages(void **state) {
    (void)state;
    sink *s = sink_new();
    hm_heap *h = new_heap(s, true);
    enum { K = 8 };
    void *p[K], *d[K];
    for (int i = 0; i < K; i++) {
        p[i] = must_alloc(h, (size_t)64 * 1024 - (size_t)i);
        d[i] = debug_alloc(h, (size_t)64 * 1024, "big.c", i);
        memset(p[i], 1, (size_t)64 * 1024 - (size_t)i);
        memset(d[i], 2, (size_t)64 * 1024);
    }
    hm_heap_stats_t st;
    hm_heap_stats(h, &st);
    if (st.huge_blocks != 0)
        fail_msg("%zu huge blocks for 64 KiB checked and DebugAlloc blocks", st.huge_blocks);
    void *edge = must_alloc(h, 81896), *dedge = debug_alloc(h, 81864, "edge.c", 1);
    memset(edge, 3, 81896);
    memset(dedge, 4, 81864);
    hm_heap_stats(h, &st);
    if (st.huge_blocks != 0)
        fail_msg("%zu huge blocks for checked and DebugAlloc blocks of 80 KiB slots",
                 st.huge_blocks);
    void *big = must_alloc(h, 81897);
    hm_heap_stats(h, &st);
    assert_int_equal(st.huge_blocks, 1);
    void *dbig = debug_alloc(h, 81865, "edge.c", 2);
    hm_heap_stats(h, &st);
    assert_int_equal(st.huge_blocks, 2);
    heap_free_ok(h, big);
    heap_free_ok(h, dbig);
    heap_free_ok(h, edge);
    heap_free_ok(h, dedge);
    for (int i = 0; i < K; i++) {
        heap_free_ok(h, p[i]);
        heap_free_ok(h, d[i]);
    }
    sink_expect_none(s, "64 KiB blocks");
    hm_heap_release(h);
    sink_free(s);
}

/* A write after free into the free-list link (the first 8 bytes of a freed block) is reported
 * when the slot is handed out again, and the written value is never followed: no allocation
 * returns it, and the heap goes on serving that size. */
static unsigned char g_decoy[256] __attribute__((aligned(64)));

static void test_checked_link_write_never_followed(void **state) {
    (void)state;
    sink *s = sink_new();
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, true, &mgr);
    enum { N = 2000 };
    static void *v[N];
    static const size_t sizes[] = {24, 100, 3000};
    for (size_t si = 0; si < TU_ARRAY_SIZE(sizes); si++) {
        size_t n = sizes[si];
        /* decoys: a pointer outside the heap, one inside the page but not at a block, the
         * block itself (a cycle: it is handed out, then found live at the head of the list),
         * and a live block of the same page */
        for (int kind = 0; kind < 4; kind++) {
            unsigned char *p = com_alloc(m, n), *q = com_alloc(m, n), *r = com_alloc(m, n);
            com_free_ok(m, q);
            com_free_ok(m, p); /* p is the next one handed out; its link points at q */
            void *decoy = kind == 0   ? (void *)(g_decoy + 64)
                          : kind == 1 ? (void *)(q + 8)
                          : kind == 2 ? (void *)p
                                      : (void *)r;
            memcpy(p, &decoy, sizeof decoy);
            sink_expect_none(s, "before reuse");
            bool bad = false;
            for (int i = 0; i < N; i++) {
                v[i] = com_alloc(m, n);
                /* never the decoy while it is not free, never one block twice */
                if (v[i] == decoy && kind != 2) bad = true;
                for (int j = 0; j < i && !bad; j++)
                    if (v[j] == v[i]) bad = true;
            }
            char what[64];
            snprintf(what, sizeof what, "%zu bytes, decoy %d", n, kind);
            /* reported at the block whose link was written (its check word no longer matches) */
            sink_expect(s, HM_ERROR_WRITE_AFTER_FREE, p, "write after free", what);
            if (bad) fail_msg("%s: the written link was followed", what);
            for (int i = 0; i < N; i++)
                com_free_ok(m, v[i]);
            com_free_ok(m, r);
            sink_expect_none(s, "the blocks after the report");
        }
    }
    com_done(m, mgr);
    sink_free(s);
}

/* The same write into a block freed by another thread: the owner takes that list over (by
 * its count, types.h) and checks each link before it follows it, as it hands the blocks out:
 * it stops at the damaged link and reports (never following the written value). */
static bool com_freed(void *m, void *p) {
    return IHostMalloc_Free((IHostMalloc *)m, p) == S_OK;
}

static void remote_link_write(bool cycle) {
    sink *s = sink_new();
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, true, &mgr);
    /* 40000-byte blocks: a few to a medium page (3 to 128 KiB, 6 to 256 KiB, by the limit), which
     * the 64 allocations below run dry, so that the owner takes the remote list */
    enum { SZ = 40000, K = 3 };
    void *b[K];
    for (int i = 0; i < K; i++)
        b[i] = com_alloc(m, SZ);
    tu_free_in_thread(com_freed, m, b, K);
    /* the remote list is b[2] -> b[1] -> b[0]: damage the link of b[2] (or of b[1], into a
     * cycle b[1] -> b[1]) */
    void *decoy = cycle ? b[1] : (void *)(g_decoy + 64);
    memcpy(cycle ? b[1] : b[K - 1], &decoy, sizeof decoy);
    sink_expect_none(s, "before the owner collects");
    enum { N = 64 };
    void *v[N];
    for (int i = 0; i < N; i++) {
        v[i] = com_alloc(m, SZ);
        if (!cycle && v[i] == decoy) fail_msg("the damaged remote link was followed");
        for (int j = 0; j < i; j++)
            if (v[j] == v[i]) fail_msg("block %p handed out twice (cycle %d)", v[i], (int)cycle);
    }
    pthread_mutex_lock(&s->lock);
    size_t total = s->total;
    pthread_mutex_unlock(&s->lock);
    if (total < 1) fail_msg("the damaged remote link was not reported");
    sink_reset(s);
    for (int i = 0; i < N; i++)
        com_free_ok(m, v[i]);
    sink_expect_none(s, "the blocks after the report");
    com_done(m, mgr);
    sink_free(s);
}

static void test_checked_remote_link_write(void **state) {
    (void)state;
    remote_link_write(false);
    remote_link_write(true);
}

/* Aligned allocations in a checked heap are served (as plain blocks) and freed cleanly. */
static void test_checked_aligned(void **state) {
    (void)state;
    sink *s = sink_new();
    hm_heap *h = new_heap(s, true);
    for (size_t a = 32; a <= 8192; a *= 2) {
        void *p = hm_alloc_aligned(h, 100, a);
        if (p == NULL || !tu_is_aligned(p, a)) fail_msg("aligned %zu: %p", a, p);
        memset(p, 1, 100);
        heap_free_ok(h, p);
        void *q = must_alloc(h, 100); /* and the checked blocks go on beside them */
        heap_free_ok(h, q);
    }
    sink_expect_none(s, "aligned blocks in a checked heap");
    hm_heap_release(h);
    sink_free(s);
}

/* Freed huge checked blocks wait in the quarantine (a second free is a double free), and
 * hm_manager_trim gives their memory back. */
static void test_checked_huge_quarantine_trim(void **state) {
    (void)state;
    sink *s = sink_new();
    hm_config c = config_for(s, true);
    hm_manager *mgr = tu_manager(&c);
    hm_heap *h = tu_heap(mgr, HM_HEAP_THREADSAFE);
    enum { K = 4 };
    void *p[K];
    for (int i = 0; i < K; i++) {
        p[i] = must_alloc(h, (size_t)3 << 20);
        memset(p[i], 1, (size_t)3 << 20);
    }
    for (int i = 0; i < K; i++)
        heap_free_ok(h, p[i]);
    hm_manager_stats_t before;
    hm_manager_stats(mgr, &before);
    for (int i = 0; i < K; i++) {
        hm_result r = hm_heap_free(h, p[i]);
        if (r == HM_OK) fail_msg("second free of huge block %d accepted", i);
        sink_expect(s, HM_ERROR_DOUBLE_FREE, p[i], "double free", "huge checked block");
    }
    size_t released = hm_manager_trim(mgr);
    if (released < (size_t)K * (3u << 20))
        fail_msg("trim released %zu bytes, expected the %d quarantined blocks", released, K);
    hm_manager_stats_t after;
    hm_manager_stats(mgr, &after);
    if (after.committed + (size_t)K * (3u << 20) > before.committed)
        fail_msg("committed %zu -> %zu: the quarantine was not given back", before.committed,
                 after.committed);
    tu_release(h, mgr);
    sink_free(s);
}

/* Blocks of 0 bytes of a checked heap, on both doors: distinct, freed once and reported the
 * second time (nothing changes), resized like any block, counted by the statistics and walked;
 * so many of them that they outgrow their sealed segment (then 0-byte blocks on checked pages
 * serve, which are freed as well). tests/death: touching one faults. */
static bool count_zero(const hm_block_info_t *info, void *arg) {
    if (info->size == 0) ++*(size_t *)arg;
    return true;
}

static void test_checked_zero_blocks(void **state) {
    (void)state;
    sink *s = sink_new();
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, true, &mgr);
    hm_heap *h = new_heap(s, true);
    enum { N = 40000 }; /* more than the 32768 addresses of the sealed segment */
    void **p = calloc(N, sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < N; i++) {
        p[i] = must_alloc(h, 0);
        assert_int_equal(hm_usable_size(p[i]), 0);
        assert_int_equal(hm_heap_block(h, p[i], NULL), HM_OK);
    }
    for (size_t i = 1; i < N; i++)
        if (p[i] == p[i - 1]) fail_msg("two blocks of 0 bytes at %p", p[i]);
    size_t zeros = 0;
    hm_heap_walk(h, count_zero, &zeros);
    assert_int_equal(zeros, N);
    hm_heap_stats_t st;
    hm_heap_stats(h, &st);
    if (st.live_blocks < N) fail_msg("live blocks %zu, %d of 0 bytes", st.live_blocks, N);
    for (size_t i = 0; i < N; i++)
        heap_free_ok(h, p[i]);
    sink_expect_none(s, "blocks of 0 bytes freed once");
    heap_free_bad(h, p[0], "a block of 0 bytes freed twice");
    sink_expect(s, HM_ERROR_DOUBLE_FREE, p[0], "double free", "a block of 0 bytes freed twice");
    assert_int_equal(hm_heap_block(h, p[0], NULL), HM_ERR_NOT_BLOCK);
    sink_expect_none(s, "hm_heap_block of a freed block of 0 bytes");
    /* a resize of one, both ways */
    void *z = must_alloc(h, 0);
    char *q = hm_realloc(h, z, 100);
    assert_non_null(q);
    memset(q, 1, 100);
    z = hm_realloc(h, q, 0);
    assert_non_null(z);
    assert_int_equal(hm_usable_size(z), 0);
    heap_free_ok(h, z);
    /* the COM door */
    void *c = com_alloc(m, 0);
    void *c2 = com_alloc(m, 0);
    assert_true(c != c2);
    com_free_ok(m, c);
    com_free_ok(m, c2);
    assert_int_equal(HR(IHostMalloc_Free(m, c)), HR(HOST_E_INVALIDOPERATION));
    sink_expect(s, HM_ERROR_DOUBLE_FREE, c, "double free", "COM: a block of 0 bytes twice");
    free(p);
    com_done(m, mgr);
    hm_heap_release(h);
    sink_free(s);
}

/* Freed huge checked and DebugAlloc blocks are inaccessible while held (tests/death checks the
 * faults); once they leave the ring for the cache their memory serves again, every byte of it
 * writable, to checked blocks and to plain ones, and the manager's committed bytes come back
 * to what they were. */
static void test_checked_huge_held_then_reused(void **state) {
    (void)state;
    sink *s = sink_new();
    enum { K = 24 }; /* more than the ring holds (16): the oldest go to the cache */
    const size_t n = 300000;
    for (int checked = 0; checked < 2; checked++) {
        hm_config c = config_for(s, checked != 0);
        hm_manager *mgr = tu_manager(&c);
        hm_heap *h = tu_heap(mgr, HM_HEAP_THREADSAFE);
        hm_manager_stats_t base, after;
        hm_manager_stats(mgr, &base);
        for (int round = 0; round < 3; round++) {
            void *p[K];
            for (int i = 0; i < K; i++) {
                /* the default heap: DebugAlloc blocks, then plain ones in the same memory */
                p[i] = checked || round != 1
                           ? (checked ? must_alloc(h, n)
                                      : hm_alloc_debug(h, n, eProcessCritical, "f.c", i))
                           : must_alloc(h, n);
                assert_non_null(p[i]);
                memset(p[i], 0x5A, n); /* faults if memory of a held block came back guarded */
            }
            for (int i = 0; i < K; i++)
                heap_free_ok(h, p[i]);
            /* the most recent are held: a second free is still known */
            if (checked || round != 1) {
                assert_int_equal(hm_heap_free(h, p[K - 1]), HM_ERR_NOT_BLOCK);
                sink_expect(s, HM_ERROR_DOUBLE_FREE, p[K - 1], "double free", "held huge block");
            }
        }
        hm_manager_trim(mgr);
        hm_manager_stats(mgr, &after);
        if (after.committed != base.committed)
            fail_msg("checked %d: committed %zu before, %zu after the rounds and a trim", checked,
                     base.committed, after.committed);
        tu_release(h, mgr);
    }
    sink_expect_none(s, "held and reused huge blocks");
    sink_free(s);
}

/* HM_CHECKED=1 in the environment: hm_config_init turns checked mode on (in a child, so the
 * environment of the test runner stays as it was). Exit status: the failed step. */
static void child_env_checked(void *arg) {
    (void)arg;
    setenv("HM_CHECKED", "1", 1);
    hm_config c;
    hm_config_init(&c);
    if (!c.checked) _exit(10);
    sink *s = calloc(1, sizeof *s);
    if (s == NULL) _exit(11);
    s->magic = SINK_MAGIC;
    pthread_mutex_init(&s->lock, NULL);
    c.on_error = sink_fn;
    c.on_error_arg = s;
    hm_manager *mgr = hm_manager_new(&c);
    hm_heap *h = mgr ? hm_heap_new(mgr, 0) : NULL;
    if (h == NULL) _exit(12);
    unsigned char *p = hm_alloc(h, 13);
    if (p == NULL || hm_usable_size(p) != 13) _exit(13);
    if (hm_heap_free(h, p) != HM_OK || s->total != 0) _exit(14);
    if (hm_heap_free(h, p) != HM_ERR_NOT_BLOCK) _exit(15);
    if (s->total != 1 || s->r[0].kind != HM_ERROR_DOUBLE_FREE) _exit(16);
    p = hm_alloc(h, 13);
    p[13] ^= 0xFF;
    if (hm_heap_free(h, p) != HM_ERR_NOT_BLOCK) _exit(17);
    if (s->total != 2 || s->r[1].kind != HM_ERROR_OVERRUN) _exit(18);
    /* and the COM door of a manager made from that config */
    IHostMemoryManager *im = NULL;
    IHostMalloc *im_m = NULL;
    if (hm_create_host_memory_manager(&c, &im) != S_OK ||
        IHostMemoryManager_CreateMalloc(im, 0, &im_m) != S_OK)
        _exit(19);
    void *q = NULL;
    if (IHostMalloc_Alloc(im_m, 5, eTaskCritical, &q) != S_OK || hm_usable_size(q) != 5) _exit(20);
    if (IHostMalloc_Free(im_m, q) != S_OK || IHostMalloc_Free(im_m, q) != HOST_E_INVALIDOPERATION)
        _exit(21);
    if (s->total != 3 || s->r[2].kind != HM_ERROR_DOUBLE_FREE) _exit(22);
    IHostMalloc_Release(im_m);
    IHostMemoryManager_Release(im);
    tu_release(h, mgr);
    _exit(0);
}

static void test_checked_from_environment(void **state) {
    (void)state;
    tu_child_result res;
    tu_expect_exit0(child_env_checked, NULL, &res, "HM_CHECKED=1 child (exit code = failed step)");
}

/* hm_heap_block tells a freed checked or DebugAlloc block from a live one (their headers say
 * so): HM_ERR_NOT_BLOCK, with no report (the call only asks), on pages and for huge blocks. */
static void test_checked_heap_block_freed(void **state) {
    (void)state;
    sink *s = sink_new();
    hm_heap *h = new_heap(s, true);
    hm_heap *d = new_heap(s, false);
    static const size_t sizes[] = {1, 100, 65536, 200000, (size_t)3 << 20};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        size_t usable = 0;
        void *p = must_alloc(h, sizes[i]);
        assert_int_equal(hm_heap_block(h, p, &usable), HM_OK);
        assert_int_equal(usable, sizes[i]);
        heap_free_ok(h, p);
        if (hm_heap_block(h, p, &usable) != HM_ERR_NOT_BLOCK)
            fail_msg("checked block of %zu bytes, freed: hm_heap_block did not refuse it",
                     sizes[i]);
        void *q = hm_alloc_debug(d, sizes[i], eProcessCritical, __FILE__, __LINE__);
        assert_non_null(q);
        assert_int_equal(hm_heap_block(d, q, &usable), HM_OK);
        heap_free_ok(d, q);
        if (hm_heap_block(d, q, &usable) != HM_ERR_NOT_BLOCK)
            fail_msg("DebugAlloc block of %zu bytes, freed: hm_heap_block did not refuse it",
                     sizes[i]);
    }
    sink_expect_none(s, "hm_heap_block of freed blocks");
    hm_heap_release(h);
    hm_heap_release(d);
    sink_free(s);
}

/* ---- 6. the error sink ----------------------------------------------------------------------- */
static void child_default_sink(void *arg) {
    (void)arg;
    hm_config c;
    hm_config_init(&c);
    c.on_error = NULL;
    c.on_error_arg = NULL;
    c.checked = false;
    IHostMemoryManager *mgr = NULL;
    IHostMalloc *m = NULL;
    if (hm_create_host_memory_manager(&c, &mgr) != S_OK ||
        IHostMemoryManager_CreateMalloc(mgr, 0, &m) != S_OK)
        _exit(3);
    char file[] = "sink_default.c";
    void *p = NULL;
    if (IHostMalloc_DebugAlloc(m, 16, eTaskCritical, file, 77, &p) != S_OK) _exit(4);
    flip(p, 16);
    if (IHostMalloc_Free(m, p) != HOST_E_INVALIDOPERATION) _exit(5); /* no abort on COM */
    hm_manager *nm = hm_manager_new(&c);
    hm_heap *h = nm ? hm_heap_new(nm, 0) : NULL;
    if (h == NULL) _exit(6);
    void *q = hm_alloc_debug(h, 16, eTaskCritical, file, 78);
    flip(q, -1);
    if (hm_heap_free(h, q) != HM_ERR_NOT_BLOCK) _exit(7); /* nor on the native one */
    tu_release(h, nm);
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mgr);
    _exit(0);
}

static void test_error_sink_default_stderr(void **state) {
    (void)state;
    tu_child_result res;
    tu_expect_exit0(child_default_sink, NULL, &res, "child");
    /* exactly two lines, in order */
    const char *l2 = strchr(res.err, '\n');
    if (l2 == NULL || strncmp(res.err, "hostmalloc: buffer overrun", 26) != 0 ||
        strstr(res.err, "sink_default.c:77 ") == NULL || strstr(res.err, "sink_default.c:77 ") > l2)
        fail_msg("stderr does not start with the overrun report: '%s'", res.err);
    l2++;
    if (strncmp(l2, "hostmalloc: buffer underrun", 27) != 0 ||
        strstr(l2, "sink_default.c:78 ") == NULL || !tu_one_line(l2))
        fail_msg("stderr's second line is not the underrun report (and the last): '%s'", res.err);
}

static void test_error_sink_custom_arg(void **state) {
    (void)state;
    sink *sa = sink_new(), *sb = sink_new();
    hm_heap *ha = new_heap(sa, false), *hb = new_heap(sb, true);
    IHostMemoryManager *mgr;
    IHostMalloc *mc = new_com(sb, false, &mgr);
    unsigned char *p = debug_alloc(hb, 30, "arg.c", 1);
    flip(p, 30);
    heap_free_bad(hb, p, "overrun in heap B");
    sink_expect_none(sa, "sink A after an error in heap B");
    sink_expect(sb, HM_ERROR_OVERRUN, p, "arg.c:1 ", "sink B");
    unsigned char *q = debug_alloc(ha, 30, "arg.c", 2);
    heap_free_ok(ha, q);
    heap_free_bad(ha, q, "double free in heap A");
    sink_expect_none(sb, "sink B after an error in heap A");
    sink_expect(sa, HM_ERROR_DOUBLE_FREE, q, "arg.c:2 ", "sink A");
    unsigned char *c = must_alloc(hb, 1); /* a checked block: no site, but #seq and thread */
    flip(c, -1);
    heap_free_bad(hb, c, "underrun of a checked block");
    char expect[64];
    snprintf(expect, sizeof expect, ", thread %d)\n", my_tid());
    sink_expect(sb, HM_ERROR_UNDERRUN, c, expect, "checked block");
    void *d = com_debug_alloc(mc, 8, "arg.c", 3);
    com_free_ok(mc, d);
    com_free_bad(mc, d, "double free on the COM door");
    sink_expect(sb, HM_ERROR_DOUBLE_FREE, d, "arg.c:3 ", "sink B (COM)");
    sink_expect_none(sa, "sink A at the end");
    assert_int_equal(atomic_load(&g_bad_args), 0);
    com_done(mc, mgr);
    hm_heap_release(ha);
    hm_heap_release(hb);
    sink_free(sa);
    sink_free(sb);
}

typedef struct silent_thread {
    hm_heap *heap;
    IHostMalloc *com;
    void **blocks;
    size_t n;
} silent_thread;

static void *thread_free_all(void *arg) {
    silent_thread *t = arg;
    for (size_t i = 0; i < t->n; i++) {
        if (t->heap != NULL)
            hm_free(t->blocks[i]);
        else if (IHostMalloc_Free(t->com, t->blocks[i]) != S_OK)
            abort();
    }
    return NULL;
}

static void test_error_sink_silent_when_correct(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    sink *s = sink_new();
    hm_heap *hc = new_heap(s, true), *hd = new_heap(s, false);
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, true, &mgr);
    enum { N = 400 };
    void *v[N], *w[N];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < N; i++) {
            size_t n = i % 50 == 49 ? (size_t)200000 : (size_t)(i * 37 % 9000);
            v[i] = i % 3 == 0 ? debug_alloc(i % 2 ? hc : hd, n, "silent.c", i)
                              : must_alloc(i % 2 ? hc : hd, n);
            memset(v[i], 0x5A, n);
            w[i] = i % 4 == 0 ? com_debug_alloc(m, n, "silent.c", i) : com_alloc(m, n);
            memset(w[i], 0xA5, n);
        }
        /* realloc and calloc in checked mode */
        for (int i = 1; i < N; i += 7) {
            size_t n = (size_t)(i * 13 % 3000) + 1;
            void *r = hm_realloc(hc, v[i], n);
            assert_non_null(r);
            memset(r, 1, n);
            v[i] = r;
        }
        void *z = hm_calloc(hc, 10, 33);
        assert_non_null(z);
        memset(z, 2, 330);
        hm_free(z);
        /* half freed here, half by another thread */
        for (int i = 0; i < N / 2; i++) {
            hm_free(v[i]);
            com_free_ok(m, w[i]);
        }
        silent_thread t1 = {hc, NULL, v + N / 2, N / 2}, t2 = {NULL, m, w + N / 2, N / 2};
        tu_run_thread(thread_free_all, &t1);
        tu_run_thread(thread_free_all, &t2);
        hm_heap_collect(hc, false);
        hm_heap_collect(hd, false);
    }
    /* checked blocks alive at the end are no DebugAlloc leaks */
    for (int i = 0; i < 10; i++)
        (void)must_alloc(hc, 100);
    assert_int_equal(hm_heap_report_leaks(hc, NULL), 0);
    assert_int_equal(hm_heap_report_leaks(hd, NULL), 0);
    com_done(m, mgr);
    hm_heap_release(hc);
    hm_heap_release(hd);
    sink_expect_none(s, "a correct program");
    sink_free(s);
}

/* ---- 7. frees by another thread ------------------------------------------------------------- */
typedef struct remote_free {
    IHostMalloc *com;
    hm_heap *heap;
    void *p[8];
    size_t n;
    HRESULT hr[8];
    hm_result r[8];
    int tid;
} remote_free;

static void *thread_remote_free(void *arg) {
    remote_free *t = arg;
    t->tid = my_tid();
    for (size_t i = 0; i < t->n; i++) {
        if (t->com != NULL)
            t->hr[i] = IHostMalloc_Free(t->com, t->p[i]);
        else
            t->r[i] = hm_heap_free(t->heap, t->p[i]);
    }
    return NULL;
}

static void test_remote_free_checked(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    sink *s = sink_new();
    IHostMemoryManager *mgr;
    IHostMalloc *m = new_com(s, false, &mgr);
    hm_heap *h = new_heap(s, false);
    walk_log *w = walk_log_new();
    static const size_t sizes[] = {24, 3000, 30000, 200000};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        size_t n = sizes[i];
        char site[48];
        /* the COM door: a broken back canary, a broken front one, a good block */
        char *a = com_debug_alloc(m, n, "remote.c", 10);
        char *b = com_debug_alloc(m, n, "remote.c", 11);
        char *c = com_debug_alloc(m, n, "remote.c", 12);
        flip(a, (ptrdiff_t)n);
        flip(b, -1);
        remote_free t = {.com = m, .p = {a}, .n = 1};
        tu_run_thread(thread_remote_free, &t);
        if (t.hr[0] != HOST_E_INVALIDOPERATION)
            fail_msg("%zu bytes: remote Free of an overrun block returned 0x%08x", n, HR(t.hr[0]));
        sink_expect(s, HM_ERROR_OVERRUN, a, "remote.c:10 ", "remote overrun (COM)");
        t = (remote_free){.com = m, .p = {b}, .n = 1};
        tu_run_thread(thread_remote_free, &t);
        assert_int_equal(t.hr[0], HOST_E_INVALIDOPERATION);
        sink_expect(s, HM_ERROR_UNDERRUN, b, "remote.c:11 ", "remote underrun (COM)");
        /* a good remote free, then a second one (not for huge blocks: their double free is
         * test_checked_double_free_detected's case, where it is not reported) */
        t = (remote_free){.com = m, .p = {c, c}, .n = n <= 60000 ? 2 : 1};
        tu_run_thread(thread_remote_free, &t);
        assert_int_equal(t.hr[0], S_OK);
        if (t.n == 2) {
            assert_int_equal(t.hr[1], HOST_E_INVALIDOPERATION);
            sink_expect(s, HM_ERROR_DOUBLE_FREE, c, "remote.c:12 ", "remote double free (COM)");
        } else {
            sink_expect_none(s, "a good remote free");
        }

        /* the native door, and the walk: a remotely freed block is gone, a bad one stays
         * out of the walk too (quarantined), the rest is intact */
        char *x = debug_alloc(h, n, "remote.c", 20);
        char *y = debug_alloc(h, n, "remote.c", 21);
        char *keep = debug_alloc(h, n, "remote.c", 22);
        tu_fill(keep, n, 9);
        flip(x, (ptrdiff_t)n);
        t = (remote_free){.heap = h, .p = {x, y}, .n = 2};
        tu_run_thread(thread_remote_free, &t);
        assert_int_equal(t.r[0], HM_ERR_NOT_BLOCK);
        assert_int_equal(t.r[1], HM_OK);
        snprintf(site, sizeof site, "remote.c:20 (#");
        sink_expect(s, HM_ERROR_OVERRUN, x, site, "remote overrun (native)");
        assert_int_equal(walk(h, w, 0), 1);
        assert_ptr_equal(w->v[0].ptr, keep);
        assert_int_equal(tu_check(keep, n, 9), n);
        heap_free_ok(h, keep);
    }
    /* a block of a thread that has exited, overrun, freed here */
    thread_alloc ta = {NULL, m, 100, "remote_thread.c", 30, NULL, 0};
    tu_run_thread(thread_debug_alloc, &ta);
    assert_non_null(ta.p);
    flip(ta.p, 100);
    com_free_bad(m, ta.p, "overrun block of an exited thread");
    char expect[64];
    snprintf(expect, sizeof expect, ", thread %d)", ta.tid);
    sink_expect(s, HM_ERROR_OVERRUN, ta.p, expect, "overrun block of an exited thread");
    com_done(m, mgr);
    hm_heap_release(h);
    sink_expect_none(s, "Release");
    sink_free(s);
}

/* ---- 8. the default mode ----------------------------------------------------------------------
 */
static void test_default_mode_no_debug_pages(void **state) {
    (void)state;
    sink *s = sink_new();
    hm_heap *h = new_heap(s, false);
    walk_log *w = walk_log_new();
    static const size_t sizes[] = {1, 7, 17, 100, 1000, 5000, 40000, 70000, 1 << 20};
    enum { N = TU_ARRAY_SIZE(sizes) };
    void *p[N];
    bool some_rounded = false;
    for (size_t i = 0; i < N; i++) {
        p[i] = must_alloc(h, sizes[i]);
        some_rounded = some_rounded || hm_usable_size(p[i]) != sizes[i];
    }
    assert_true(some_rounded);                      /* usable sizes are size classes, not exact */
    void *d = debug_alloc(h, 100, "contrast.c", 1); /* the walk does see debug blocks */
    assert_int_equal(walk(h, w, 0), N + 1);
    for (size_t i = 0; i < N; i++) {
        const hm_block_info_t *e = walk_find(w, p[i]);
        assert_non_null(e);
        if (e->debug || e->seq != 0 || e->file != NULL || e->size != hm_usable_size(p[i]))
            fail_msg("hm_alloc(%zu) in a default heap: debug=%d seq=%llu size=%zu (usable %zu)",
                     sizes[i], e->debug, (unsigned long long)e->seq, e->size, hm_usable_size(p[i]));
    }
    const hm_block_info_t *e = walk_find(w, d);
    assert_non_null(e);
    assert_true(e->debug);
    assert_int_equal(e->size, 100);
    /* a double free of a plain block is no debug check: the heap cannot tell (not freed twice
     * here); a checked heap's blocks, for contrast, carry a sequence number and exact size */
    hm_heap *hc = new_heap(s, true);
    void *c = must_alloc(hc, 1);
    assert_int_equal(walk(hc, w, 0), 1);
    assert_false(w->v[0].debug);
    assert_true(w->v[0].seq != 0);
    assert_int_equal(w->v[0].size, 1);
    heap_free_ok(hc, c);
    hm_heap_release(hc);
    for (size_t i = 0; i < N; i++)
        heap_free_ok(h, p[i]);
    heap_free_ok(h, d);
    sink_expect_none(s, "default mode");
    hm_heap_release(h);
    sink_free(s);
}

TU_TEST_MAIN(test_checked_with_faults, test_debug_block_records_site,
             test_debug_block_canaries_and_fill, test_walk_every_live_block,
             test_leak_report_groups_sites, test_leak_report_on_release, test_leak_report_long_file,
             test_misuse_broken_canary, test_misuse_double_free, test_checked_double_free_detected,
             test_checked_byte_precise_overrun, test_checked_write_after_free,
             test_checked_write_after_free_sampled, test_checked_delayed_reuse,
             test_checked_header_damage, test_checked_64k_on_pages,
             test_checked_link_write_never_followed, test_checked_remote_link_write,
             test_checked_aligned, test_checked_huge_quarantine_trim, test_checked_heap_block_freed,
             test_checked_huge_held_then_reused, test_checked_zero_blocks,
             test_checked_from_environment, test_error_sink_default_stderr,
             test_error_sink_custom_arg, test_error_sink_silent_when_correct,
             test_remote_free_checked, test_default_mode_no_debug_pages)
