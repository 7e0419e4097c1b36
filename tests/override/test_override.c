/* SPDX-License-Identifier: MIT */
/* test_override.c: libhostmalloc-override.so as the process malloc (this program links it
 * first, so every malloc of the process, libc's own included, is hostmalloc's).
 *
 * Standard behaviour to the letter, misuse that must abort (in a child), fork while other
 * threads allocate, blocks outliving their thread, the HM_* options (in a re-executed child,
 * since the process heap reads its environment once), and the statistics: the compact report,
 * JSON lines, HM_VERBOSE, warnings, malloc_info and malloc_stats. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

/* This file misuses the allocator on purpose; the compiler sees it too. */
#pragma GCC diagnostic ignored "-Wfree-nonheap-object"
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Wunknown-warning-option"
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#pragma GCC diagnostic ignored "-Wuse-after-free"

/* C23, not yet declared by glibc 2.36: the override exports them. */
void free_sized(void *p, size_t size);
void free_aligned_sized(void *p, size_t alignment, size_t size);

static char g_static[64];

/* ---- standard behaviour ------------------------------------------------------------------- */
static void test_enomem(void **state) {
    (void)state;
    static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 15, (size_t)PTRDIFF_MAX + 1,
                                  (size_t)1 << 62};
    for (size_t i = 0; i < TU_ARRAY_SIZE(huge); i++) {
        errno = 0;
        void *p = malloc(huge[i]);
        if (p != NULL || errno != ENOMEM)
            fail_msg("malloc(%#zx) gave %p errno %d, expected NULL/ENOMEM", huge[i], p, errno);
    }
    errno = 0;
    assert_null(calloc(SIZE_MAX, 2));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(calloc((size_t)1 << 33, (size_t)1 << 33));
    assert_int_equal(errno, ENOMEM);
    char *p = malloc(100);
    assert_non_null(p);
    memset(p, 0x5a, 100);
    errno = 0;
    assert_null(realloc(p, SIZE_MAX));
    assert_int_equal(errno, ENOMEM);
    for (int i = 0; i < 100; i++)
        assert_int_equal((unsigned char)p[i], 0x5a); /* untouched */
    errno = 0;
    assert_null(reallocarray(p, SIZE_MAX / 2, 3));
    assert_int_equal(errno, ENOMEM);
    free(p);
}

static void test_posix_memalign(void **state) {
    (void)state;
    static const size_t bad[] = {0, 1, 2, 3, 4, 12, 24, 1000, 4095};
    for (size_t i = 0; i < TU_ARRAY_SIZE(bad); i++) {
        void *out = (void *)0x1234;
        int r = posix_memalign(&out, bad[i], 64);
        if (r != EINVAL || out != (void *)0x1234)
            fail_msg("posix_memalign(align %zu) gave %d, out %p", bad[i], r, out);
    }
    for (size_t a = sizeof(void *); a <= ((size_t)64 << 20); a <<= 1) {
        void *out = NULL;
        size_t sizes[] = {1, a / 2 + 1, 3 * a + 5};
        for (size_t k = 0; k < TU_ARRAY_SIZE(sizes); k++) {
            assert_int_equal(posix_memalign(&out, a, sizes[k]), 0);
            if (!tu_is_aligned(out, a)) fail_msg("posix_memalign(%zu, %zu) = %p", a, sizes[k], out);
            memset(out, 0xab, sizes[k]);
            assert_true(malloc_usable_size(out) >= sizes[k]);
            free(out);
        }
    }
    void *out = (void *)0x1;
    assert_int_equal(posix_memalign(&out, 64, SIZE_MAX), ENOMEM);
    assert_ptr_equal(out, (void *)0x1);
}

static void test_aligned_variants(void **state) {
    (void)state;
    for (size_t a = 1; a <= ((size_t)8 << 20); a <<= 1) {
        void *p = aligned_alloc(a, a * 3);
        assert_non_null(p);
        assert_true(tu_is_aligned(p, a));
        memset(p, 1, a * 3);
        free(p);
        p = memalign(a, 100);
        assert_non_null(p);
        assert_true(tu_is_aligned(p, a));
        free(p);
    }
    /* not a power of two: through a volatile, which keeps clang's compile-time alignment
     * check (-Wnon-power-of-two-alignment) out of a deliberate run-time test */
    volatile size_t odd = 48;
    errno = 0;
    assert_null(aligned_alloc(odd, 96));
    assert_int_equal(errno, EINVAL);
    void *m = memalign(odd, 10); /* glibc rounds up to 64 */
    assert_non_null(m);
    assert_true(tu_is_aligned(m, 64));
    free(m);
    long page = sysconf(_SC_PAGESIZE);
    void *v = valloc(10);
    assert_non_null(v);
    assert_true(tu_is_aligned(v, (size_t)page));
    free(v);
    void *pv = pvalloc(10);
    assert_non_null(pv);
    assert_true(tu_is_aligned(pv, (size_t)page));
    assert_true(malloc_usable_size(pv) >= (size_t)page);
    memset(pv, 3, (size_t)page);
    free(pv);
}

static void test_realloc_and_friends(void **state) {
    (void)state;
    char *p = realloc(NULL, 40);
    assert_non_null(p);
    for (int i = 0; i < 40; i++)
        p[i] = (char)i;
    p = realloc(p, 100000);
    assert_non_null(p);
    for (int i = 0; i < 40; i++)
        assert_int_equal(p[i], (char)i);
    p = realloc(p, 10);
    assert_non_null(p);
    for (int i = 0; i < 10; i++)
        assert_int_equal(p[i], (char)i);
    free(p);
    free(NULL);
    void *z = malloc(0);
    void *z2 = malloc(0);
    assert_non_null(z);
    assert_non_null(z2);
    assert_ptr_not_equal(z, z2);
    free(z);
    free(z2);
    /* calloc zeroes even reused memory */
    for (int round = 0; round < 3; round++) {
        unsigned char *d = malloc(4000);
        memset(d, 0xff, 4000);
        free(d);
        unsigned char *c = calloc(1000, 4);
        assert_non_null(c);
        for (int i = 0; i < 4000; i++)
            assert_int_equal(c[i], 0);
        free(c);
    }
    void *q = malloc(1000);
    assert_true(malloc_usable_size(q) >= 1000);
    assert_int_equal(malloc_usable_size(NULL), 0);
    free_sized(q, 1000);
    q = aligned_alloc(256, 512);
    free_aligned_sized(q, 256, 512);
}

static void test_mallinfo_trim(void **state) {
    (void)state;
    void *blocks[1000];
    for (int i = 0; i < 1000; i++)
        blocks[i] = malloc(1000);
    struct mallinfo2 mi = mallinfo2();
    assert_true(mi.uordblks >= 1000 * 1000);
    assert_true(mi.arena >= mi.uordblks);
    for (int i = 0; i < 1000; i++)
        free(blocks[i]);
    struct mallinfo2 after = mallinfo2();
    assert_true(after.uordblks < mi.uordblks);
    malloc_trim(0); /* may or may not release: it must not crash and the heap must work */
    void *p = malloc(50);
    assert_non_null(p);
    free(p);
}

/* ---- misuse aborts ----------------------------------------------------------------------------
 */
typedef struct {
    int what;
} misuse_arg;

static void misuse_child(void *varg) {
    misuse_arg *a = varg;
    char stack[64];
    char *p = malloc(256);
    switch (a->what) {
    case 0:
        free(stack);
        break;
    case 1:
        free(g_static);
        break;
    case 2:
        free(p + 1);
        break;
    case 3:
        free(p + 16);
        break;
    case 4: {
        char *m = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        free(m + 64);
        break;
    }
    case 5:
        (void)!realloc(p + 32, 10);
        break;
    case 6:
        (void)malloc_usable_size(stack);
        break;
    case 7:
        free((void *)(uintptr_t)0xdeadbeefdeadbeefULL);
        break;
    }
}

static void test_misuse_aborts(void **state) {
    (void)state;
    for (int w = 0; w < 8; w++) {
        misuse_arg a = {w};
        tu_child_result res;
        assert_int_equal(tu_run_child(misuse_child, &a, &res), 0);
        tu_assert_child_signaled(&res, SIGABRT);
        if (strncmp(res.err, "hostmalloc: ", 12) != 0 || strstr(res.err, "0x") == NULL)
            fail_msg("case %d: message should start 'hostmalloc: ' and name the pointer: '%s'", w,
                     res.err);
        if (strchr(res.err, '\n') != strrchr(res.err, '\n'))
            fail_msg("case %d: expected one line, got '%s'", w, res.err);
    }
}

/* malloc, free and realloc misuse with its exact message: the child prints the line it expects,
 * then makes the mistake; stderr must hold that line twice and nothing else. */
static void exact_child(void *varg) {
    misuse_arg *a = varg;
    char *p = malloc(32), *q = malloc(32), *big = malloc(512 * 1024); /* huge (above 256 KiB) */
    char line[160];
    switch (a->what) {
    case 0: /* p, p */
        free(p);
        snprintf(line, sizeof line, "hostmalloc: double free: block %p of %zu bytes\n", (void *)p,
                 malloc_usable_size(q));
        break;
    case 1: /* p, q, p */
        snprintf(line, sizeof line, "hostmalloc: double free: block %p of %zu bytes\n", (void *)p,
                 malloc_usable_size(q));
        free(p);
        free(q);
        q = NULL;
        break;
    case 2: /* a 512 KiB block (huge) twice */
        snprintf(line, sizeof line, "hostmalloc: double free: block %p of %zu bytes\n", (void *)big,
                 malloc_usable_size(big));
        free(big);
        p = big;
        break;
    default: /* realloc of a pointer that is no block */
        snprintf(line, sizeof line,
                 "hostmalloc: realloc(): pointer not allocated by hostmalloc: 0x1\n");
        fputs(line, stderr);
        fflush(stderr);
        (void)!realloc((void *)1, 10);
        return;
    }
    fputs(line, stderr);
    fflush(stderr);
    free(p);
}

static void test_double_free_exact_message(void **state) {
    (void)state;
    static const char *const names[] = {"p, p", "p, q, p", "512 KiB twice", "realloc((void *)1)"};
    for (int w = 0; w < 4; w++) {
        misuse_arg a = {w};
        tu_child_result res;
        assert_int_equal(tu_run_child(exact_child, &a, &res), 0);
        tu_assert_child_signaled(&res, SIGABRT);
        const char *nl = strchr(res.err, '\n');
        size_t n = nl != NULL ? (size_t)(nl - res.err) + 1 : 0;
        /* checked mode (HM_CHECKED=1) appends the block's allocation number and thread */
        const char *got = res.err + n;
        size_t len = strlen(got);
        int same =
            n > 0 && len >= n && memcmp(res.err, got, n - 1) == 0 &&
            strchr(got, '\n') == got + len - 1 &&
            (len == n || (strncmp(got + n - 1, " (allocation #", 14) == 0 && got[len - 2] == ')'));
        if (!same)
            fail_msg("%s: expected \"%.*s\", stderr: \"%s\"", names[w], (int)n, res.err,
                     res.err + n);
    }
}

/* ---- fork, threads ----------------------------------------------------------------------------
 */
static atomic_int g_stop;

static void *churn(void *arg) {
    (void)arg;
    void *keep[64] = {0};
    unsigned x = 12345;
    while (!atomic_load(&g_stop)) {
        x = x * 1103515245u + 12345u;
        unsigned k = (x >> 8) % 64;
        free(keep[k]);
        size_t sz = (x >> 16) % 3 == 0 ? (x >> 4) % 200000 : (x >> 4) % 512;
        keep[k] = malloc(sz + 1);
        if (keep[k] == NULL) abort();
        ((char *)keep[k])[0] = 1;
    }
    for (int k = 0; k < 64; k++)
        free(keep[k]);
    return NULL;
}

static void test_fork_while_threads_allocate(void **state) {
    (void)state;
    pthread_t t[3];
    atomic_store(&g_stop, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, NULL), 0);
    for (int round = 0; round < 30; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            alarm(20);
            void *v[500];
            for (int i = 0; i < 500; i++) {
                v[i] = malloc((size_t)(i * 37 % 5000) + 1);
                if (v[i] == NULL) _exit(3);
            }
            for (int i = 0; i < 500; i++)
                free(v[i]);
            pthread_t ct;
            if (pthread_create(&ct, NULL, churn, NULL) != 0) _exit(4);
            usleep(1000);
            atomic_store(&g_stop, 1);
            pthread_join(ct, NULL);
            _exit(0);
        }
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            char buf[96];
            fail_msg("fork round %d: child %s", round, tu_status_str(st, buf, sizeof buf));
        }
    }
    atomic_store(&g_stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
}

static void *g_blocks[2000];

static void *alloc_and_exit(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        g_blocks[i] = malloc((size_t)(i % 300) * 7 + 1);
        memset(g_blocks[i], i & 0xff, 1);
    }
    return NULL;
}

static void *free_foreign(void *arg) {
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        if (*(unsigned char *)g_blocks[i] != (i & 0xff)) abort();
        free(g_blocks[i]);
    }
    return NULL;
}

static void test_blocks_outlive_thread(void **state) {
    (void)state;
    for (int round = 0; round < 5; round++) {
        pthread_t a, b;
        assert_int_equal(pthread_create(&a, NULL, alloc_and_exit, NULL), 0);
        pthread_join(a, NULL);
        /* a thread that never allocated frees what a dead thread allocated */
        assert_int_equal(pthread_create(&b, NULL, free_foreign, NULL), 0);
        pthread_join(b, NULL);
    }
}

/* ---- the HM_* options, in a re-executed child ------------------------------------------------ */
static pid_t g_child; /* the pid of the last run_self child */

static int run_self(const char *mode, const char *const env[], char *out, size_t outlen) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        tu_clear_hm_env(); /* only the options of the test */
        for (int i = 0; env[i] != NULL; i += 2)
            setenv(env[i], env[i + 1], 1);
        execl("/proc/self/exe", "test_override", mode, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    g_child = pid;
    size_t n = 0;
    ssize_t r;
    while ((r = read(fds[0], out + n, outlen - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* --limit-probe: allocate 1 MiB blocks until malloc fails; it must fail with ENOMEM within the
 * budget HM_LIMIT set. */
static int limit_probe(void) {
    size_t n = 0;
    void **keep = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (;;) {
        errno = 0;
        void *p = malloc(1 << 20);
        if (p == NULL) break;
        memset(p, 1, 1 << 20);
        keep[n++] = p;
        if (n > 100000) return 2;
    }
    if (errno != ENOMEM) return 3;
    fprintf(stderr, "blocks=%zu\n", n);
    if (n < 32 || n > 64) return 4; /* 64 MiB budget */
    for (size_t i = 0; i < n; i++)
        free(keep[i]);
    void *again = malloc(1 << 20); /* the heap works again once memory is freed */
    if (again == NULL) return 5;
    free(again);
    return 0;
}

static void test_env_limit(void **state) {
    (void)state;
    const char *env[] = {"HM_LIMIT", "64M", "HM_SEGMENT_CACHE", "0", NULL, NULL};
    char out[4096];
    int rc = run_self("--limit-probe", env, out, sizeof out);
    if (rc != 0) fail_msg("limit probe exit %d, stderr: %s", rc, out);
}

/* HM_STATS=1: the compact malloc report at exit, under a header naming the process; none of
 * the hosting rows (levels, notifications, virtual memory) a malloc user has no use for. */
static void test_env_stats(void **state) {
    (void)state;
    const char *env[] = {"HM_STATS", "1", "HM_LIMIT", "3G", NULL, NULL};
    char out[8192];
    int rc = run_self("--noop", env, out, sizeof out);
    assert_int_equal(rc, 0);
    char head[96];
    snprintf(head, sizeof head, "hostmalloc malloc statistics, pid %d (test_override):\n",
             (int)g_child);
    static const char *const rows[] = {"\n  in use:     ", "\n  committed:  ", "\n  reserved:   ",
                                       "\n  limit:      3.0 GiB (3221225472 bytes)\n",
                                       "\n  calls:      "};
    if (strncmp(out, head, strlen(head)) != 0) fail_msg("HM_STATS=1 printed: '%s'", out);
    for (size_t i = 0; i < TU_ARRAY_SIZE(rows); i++)
        if (strstr(out, rows[i]) == NULL) fail_msg("no '%s' in '%s'", rows[i], out);
    static const char *const hosting[] = {"appdomain", "notification", "virtual", "0x"};
    for (size_t i = 0; i < TU_ARRAY_SIZE(hosting); i++)
        if (strstr(out, hosting[i]) != NULL)
            fail_msg("'%s' in the malloc report: '%s'", hosting[i], out);
    const char *quiet[] = {NULL, NULL};
    rc = run_self("--noop", quiet, out, sizeof out);
    assert_int_equal(rc, 0);
    assert_null(strstr(out, "hostmalloc malloc statistics"));
}

/* HM_STATS=json with HM_STATS_FILE: one JSON line per process, appended (two runs, two lines),
 * with the process's id and name and the heap's figures. */
static void test_env_stats_json(void **state) {
    (void)state;
    char path[] = "/tmp/hm-override-json-XXXXXX";
    int fd = tu_mkstemp(path);
    close(fd);
    const char *env[] = {"HM_STATS", "json", "HM_STATS_FILE", path, NULL, NULL};
    char out[4096];
    assert_int_equal(run_self("--alloc-100", env, out, sizeof out), 0);
    pid_t first = g_child;
    assert_int_equal(run_self("--alloc-100", env, out, sizeof out), 0);
    assert_string_equal(out, "");
    char expr[512];
    snprintf(
        expr, sizeof expr,
        "len(docs) == 2 and docs[0]['pid'] == %d and d['pid'] == %d and "
        "all(x['report'] == 'malloc' and x['program'] == 'test_override' and "
        "x['heap']['live_blocks'] >= 100 and x['heap']['live_bytes'] >= 100 * 1000 and "
        "x['heap']['requests']['process'] >= 100 and x['manager']['heaps'] >= 1 for x in docs)",
        (int)first, (int)g_child);
    int rc = tu_python_check("json", path, expr);
    unlink(path);
    if (rc != 0) fail_msg("HM_STATS=json: python3 exit %d", rc);
}

/* `out` (what the child wrote) starts with before, the child's pid, after. */
static bool starts_with_pid(const char *out, const char *before, const char *after) {
    char head[128];
    snprintf(head, sizeof head, "%s%d%s", before, (int)g_child, after);
    return strncmp(out, head, strlen(head)) == 0;
}

/* HM_VERBOSE=1: the configuration of the process manager at the first allocation. */
static void test_env_verbose(void **state) {
    (void)state;
    const char *env[] = {"HM_VERBOSE", "1", "HM_PURGE_DELAY", "0", NULL, NULL};
    char out[8192];
    assert_int_equal(run_self("--noop", env, out, sizeof out), 0);
    if (!starts_with_pid(out, "hostmalloc: configuration of the process manager, pid ", " (") ||
        strstr(out, "HM_STATS_FILE") == NULL || strstr(out, "HM_CHECKED") == NULL)
        fail_msg("HM_VERBOSE=1 printed '%s'", out);
    const char *l = strstr(out, "hostmalloc:   HM_PURGE_DELAY ");
    const char *end = l != NULL ? strchr(l, '\n') : NULL;
    if (end == NULL || strstr(l, "0 ms") == NULL || strstr(l, " env\n") != end - 4)
        fail_msg("HM_PURGE_DELAY line: '%s'", out);
}

/* A misspelt option is named, with the closest known name. */
static void test_env_unknown_name(void **state) {
    (void)state;
    const char *env[] = {"HM_LIMT", "64M", "HM_STATS", "maybe", NULL, NULL};
    char out[4096];
    assert_int_equal(run_self("--noop", env, out, sizeof out), 0);
    if (strstr(out, "hostmalloc: unknown option HM_LIMT (did you mean HM_LIMIT?)\n") == NULL ||
        strstr(out, "hostmalloc: ignoring malformed HM_STATS=maybe\n") == NULL ||
        strstr(out, "malloc statistics") != NULL)
        fail_msg("stderr: '%s'", out);
}

/* malloc_info: glibc's document shape with hostmalloc's figures (a well-formed XML document,
 * checked by python3); options other than 0: EINVAL. */
static void test_malloc_info(void **state) {
    (void)state;
    enum { N = 200 };
    void *p[N];
    for (int i = 0; i < N; i++)
        assert_non_null(p[i] = malloc(5000));
    char path[] = "/tmp/hm-malloc-info-XXXXXX";
    int fd = tu_mkstemp(path);
    FILE *f = fdopen(fd, "w");
    assert_int_equal(malloc_info(0, f), 0);
    errno = 0;
    assert_int_equal(malloc_info(1, f), -1);
    assert_int_equal(errno, EINVAL);
    fclose(f);
    struct mallinfo2 mi = mallinfo2();
    char expr[512];
    /* live blocks and bytes: at least ours (libc and cmocka hold some more); system: what
     * mallinfo2 says is committed, at least the live bytes */
    snprintf(expr, sizeof expr,
             "root.tag == 'malloc' and root.get('version') == '1' and "
             "root.find('heap').get('nr') == '0' and "
             "int(root.find(\"heap/total[@type='live']\").get('count')) >= %d and "
             "int(root.find(\"heap/total[@type='live']\").get('size')) >= %d and "
             "int(root.find(\"heap/system[@type='current']\").get('size')) >= "
             "int(root.find(\"heap/total[@type='live']\").get('size')) and "
             "int(root.find(\"heap/system[@type='max']\").get('size')) >= %zu and "
             "int(root.find(\"aspace[@type='total']\").get('size')) > 0",
             N, N * 5000, mi.arena);
    int rc = tu_python_check("xml", path, expr);
    unlink(path);
    for (int i = 0; i < N; i++)
        free(p[i]);
    if (rc != 0) fail_msg("malloc_info: python3 exit %d", rc);
}

/* malloc_stats: the compact report, on stderr, whatever HM_STATS says. */
static void test_malloc_stats(void **state) {
    (void)state;
    const char *env[] = {NULL, NULL};
    char out[4096];
    assert_int_equal(run_self("--malloc-stats", env, out, sizeof out), 0);
    if (!starts_with_pid(out, "hostmalloc malloc statistics, pid ", " (test_override):\n") ||
        strstr(out, "  in use:     ") == NULL || strstr(out, " in 1") == NULL)
        fail_msg("malloc_stats printed '%s'", out);
}

/* --checked-misuse K: under HM_CHECKED=1 the override catches what plain mode cannot. */
static int checked_misuse(int kase) {
    char *volatile p = malloc(40);
    memset(p, 1, 40);
    if (malloc_usable_size(p) != 40) return 10; /* checked: exactly the requested size */
    if (kase == 0) {
        free(p);
        free(p); /* double free */
    } else {
        p[40] = 0; /* one byte past the end */
        free(p);
    }
    return 0; /* not reached when the override aborts */
}

/* --sized K: sized frees (free_sized, free_aligned_sized; the override exports both). A size
 * above the block's usable size is reported in every mode; checked mode knows the requested
 * size and reports any other; an alignment that is no power of two, or one the block does not
 * have, is reported. Exit 0: the sized frees went through. */
extern void free_sized(void *p, size_t size);
extern void free_aligned_sized(void *p, size_t alignment, size_t size);

static int sized_misuse(int kase) {
    char *volatile p = malloc(40);
    char *volatile big = malloc(300000); /* a huge block (above 256 KiB) */
    if (p == NULL || big == NULL) return 10;
    switch (kase) {
    case 0: /* correct sizes: never reported */
        free_sized(p, 40);
        free_sized(big, 300000);
        free_sized(NULL, 12);
        free_aligned_sized(aligned_alloc(64, 100), 64, 100);
        free_aligned_sized(aligned_alloc(4096, 5000), 4096, 5000);
        free_sized(malloc(0), 0);
        free_sized(malloc((size_t)3 << 20), (size_t)3 << 20);
        return 0;
    case 1: /* smaller than asked, within the block (checked mode only) */
        free_sized(p, 39);
        return 0;
    case 2: /* larger than asked, within the size class (checked mode only) */
        free_sized(p, 41);
        return 0;
    case 3: /* larger than the block (every mode) */
        free_sized(p, 4096);
        return 0;
    case 4: /* a huge block, larger than its usable size (every mode) */
        free_sized(big, 300000 + 65536);
        return 0;
    case 5: /* a huge block, one byte less (checked mode only) */
        free_sized(big, 299999);
        return 0;
    case 6: /* an alignment that is no power of two (every mode) */
        free_aligned_sized(aligned_alloc(64, 64), 48, 64);
        return 0;
    }
    return 11;
}

static void test_sized_free_checks(void **state) {
    (void)state;
    /* per case: caught in default mode, caught in checked mode; what the line says */
    static const struct {
        bool plain, checked;
        const char *word;
    } want[] = {
        {false, false, ""},
        {false, true, "wrong size given to free_sized: 39 bytes"},
        {false, true, "wrong size given to free_sized: 41 bytes"},
        {true, true, "wrong size given to free_sized: 4096 bytes"},
        {true, true, "wrong size given to free_sized: 365536 bytes"},
        {false, true, "wrong size given to free_sized: 299999 bytes"},
        {true, true, "wrong alignment given to free_aligned_sized: 48"},
    };
    for (int k = 0; k < (int)TU_ARRAY_SIZE(want); k++) {
        for (int checked = 0; checked < 2; checked++) {
            const char *env[] = {"HM_CHECKED", checked ? "1" : "0", NULL, NULL};
            char mode[32], out[4096];
            snprintf(mode, sizeof mode, "--sized-%d", k);
            int rc = run_self(mode, env, out, sizeof out);
            bool caught = checked ? want[k].checked : want[k].plain;
            if (caught
                    ? rc != 128 + SIGABRT || !tu_one_line(out) || strstr(out, want[k].word) == NULL
                    : rc != 0 || out[0] != '\0')
                fail_msg("HM_CHECKED=%d %s: exit %d, stderr '%s' (expected %s)", checked, mode, rc,
                         out, caught ? want[k].word : "exit 0 and no report");
        }
    }
}

static void test_env_checked(void **state) {
    (void)state;
    const char *env[] = {"HM_CHECKED", "1", NULL, NULL};
    static const char *const modes[] = {"--checked-double", "--checked-overrun"};
    static const char *const words[] = {"double free", "overrun"};
    for (int k = 0; k < 2; k++) {
        char out[4096];
        int rc = run_self(modes[k], env, out, sizeof out);
        if (rc != 128 + SIGABRT || strncmp(out, "hostmalloc: ", 12) != 0 ||
            strstr(out, words[k]) == NULL || strchr(out, '\n') != strrchr(out, '\n'))
            fail_msg("HM_CHECKED=1 %s: exit %d, stderr '%s'", modes[k], rc, out);
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--checked-double") == 0) return checked_misuse(0);
    if (argc > 1 && strcmp(argv[1], "--checked-overrun") == 0) return checked_misuse(1);
    if (argc > 1 && strncmp(argv[1], "--sized-", 8) == 0) return sized_misuse(atoi(argv[1] + 8));
    if (argc > 1 && strcmp(argv[1], "--limit-probe") == 0) return limit_probe();
    if (argc > 1 && strcmp(argv[1], "--alloc-100") == 0) {
        for (int i = 0; i < 100; i++) { /* left live for the report at exit */
            char *volatile p = malloc(1000);
            p[0] = 1;
        }
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--malloc-stats") == 0) {
        char *volatile p = malloc(100000); /* one live block at least */
        p[0] = 1;
        malloc_stats();
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "--noop") == 0) {
        char *volatile p = malloc(100); /* volatile: the compiler may not drop the pair */
        p[0] = 1;
        free(p);
        return 0;
    }
    TU_RUN_TESTS(test_enomem, test_posix_memalign, test_aligned_variants, test_realloc_and_friends,
                 test_mallinfo_trim, test_misuse_aborts, test_double_free_exact_message,
                 test_fork_while_threads_allocate, test_blocks_outlive_thread, test_env_limit,
                 test_env_stats, test_env_stats_json, test_env_verbose, test_env_unknown_name,
                 test_malloc_info, test_malloc_stats, test_env_checked, test_sized_free_checks);
}
