/* SPDX-License-Identifier: MIT */
/* tests/support/test_util.h: small helpers shared by the hostmalloc tests.
 *
 * - tu_rss_bytes(): resident set size of this process, from /proc/self/statm.
 * - tu_run_child(): fork, run a function in the child with its stderr captured, and report how
 *   the child ended (death tests: "this call must abort / must fault").
 * - tu_expect_abort(), tu_one_line(): a child that must abort, with one "hostmalloc: " line.
 * - tu_unmapped_address(), tu_prot_none_region(): addresses no allocator may touch.
 * - tu_python_check(): parse a JSON or XML output file with python3 and check an expression.
 * - tu_clear_hm_env(): start a child from an environment without HM_* variables.
 * - tu_setenv_all(): set a list of "NAME=value" variables.
 * - tu_test_config(), tu_reserve_config(): configurations independent of the environment.
 * - tu_run_thread(), tu_free_in_thread(): a function in a thread of its own; blocks freed by a
 *   thread that does not own them.
 * - TU_ALLOC_SIZES: the sizes every allocation test walks through.
 * - TU_TEST_MAIN(test_a, test_b, ...): the common main of the cmocka programs: an optional
 *   argument selects one test by its exact name (CTest registers every test function of a
 *   program on its own).
 *
 * Header-only; every function is static so each test program gets its own copy. */
#ifndef HOSTMALLOC_TEST_UTIL_H
#define HOSTMALLOC_TEST_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tu_pattern.h"

/* TU_SLOW_BUILD: built with AddressSanitizer or ThreadSanitizer, or without optimization (the
 * debug leg), where every mapping and memory access costs many times more; long randomized
 * tests then run fewer operations. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || !defined(__OPTIMIZE__)
#define TU_SLOW_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TU_SLOW_BUILD 1
#endif
#endif
#ifndef TU_SLOW_BUILD
#define TU_SLOW_BUILD 0
#endif

/* TU_MAKE_DEFINED(p, n): tell memcheck (when the test runs under valgrind) that n bytes at p are
 * defined, for a test that reads bytes of a new block hostmalloc itself wrote (to the program
 * they are undefined); nothing without valgrind's headers or outside valgrind. */
#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define TU_MAKE_DEFINED(p, n) ((void)VALGRIND_MAKE_MEM_DEFINED((p), (n)))
#endif
#endif
#ifndef TU_MAKE_DEFINED
#define TU_MAKE_DEFINED(p, n) ((void)(p), (void)(n))
#endif

#define TU_KIB ((size_t)1024)
#define TU_MIB ((size_t)1024 * 1024)

#define TU_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The sizes the allocation tests of every door walk through (`{TU_ALLOC_SIZES}`): each from 0
 * to 17, both sides of the small and medium class and page edges, and huge blocks up to 64 MiB
 * (all of them live at once come to about 120 MiB). */
#define TU_ALLOC_SIZES                                                                             \
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 24, 31, 32, 33, 48, 63, 64, 65,  \
        100, 127, 128, 129, 255, 256, 257, 500, 1000, 1024, 1025, 1281, 2000, 2047, 4095, 4096,    \
        4097, 8191, 8192, 8193, 10000, 12345, 16384, 32767, 32768, 65535, 65536, 65537, 100000,    \
        131072, 262144, 262145, 1 << 20, (1 << 20) + 1, 2 << 20, 3 << 20, 4 << 20, 5 << 20,        \
        8 << 20, (size_t)32 << 20, (size_t)64 << 20

/* HRESULTs in messages, and an exact-HRESULT assertion (the runtime tests `hr == S_OK`). */
#include <hostmalloc/hostmalloc.h>
#define HR(hr) ((unsigned)(uint32_t)(hr))
#define assert_hr(expr, expected)                                                                  \
    do {                                                                                           \
        HRESULT hr_ = (expr);                                                                      \
        HRESULT exp_ = (expected);                                                                 \
        if (hr_ != exp_)                                                                           \
            fail_msg("%s returned 0x%08x, expected 0x%08x (%s)", #expr, HR(hr_), HR(exp_),         \
                     #expected);                                                                   \
    } while (0)

/* The default configuration with a `limit` of bytes and nothing printed or written: no statistics
 * at release, no JSON, no file, not verbose, no checked mode. */
static inline hm_config tu_quiet_config(size_t limit) {
    hm_config c;
    hm_config_init(&c);
    c.limit = limit;
    c.print_stats = false;
    c.stats_json = false;
    c.stats_path = NULL;
    c.verbose = false;
    c.checked = false;
    return c;
}

/* A manager configuration independent of the environment: `limit` bytes, no reserves, no wait
 * for process-critical requests, thresholds 90/80/50 %, notifications at most every 10 ms, no
 * fault injection (seed 1), memory given back at once (no purge delay, no segment cache: the
 * committed figures follow frees exactly), no statistics, no checked mode. */
static inline hm_config tu_test_config(size_t limit) {
    hm_config c = tu_quiet_config(limit);
    c.reserve_appdomain = 0;
    c.reserve_process = 0;
    c.process_wait_ms = 0;
    c.low_pct = 90;
    c.neutral_pct = 80;
    c.high_pct = 50;
    c.notify_interval_ms = 10;
    for (int i = 0; i < 3; i++) {
        c.fault_every[i] = 0;
        c.fault_probability[i] = 0;
    }
    c.fault_seed = 1;
    c.purge_delay_ms = 0;
    c.segment_cache = 0;
    return c;
}

/* tu_test_config with `appdomain` and `process` bytes set aside as the AppDomain- and
 * process-critical reserves. */
static inline hm_config tu_reserve_config(size_t limit, size_t appdomain, size_t process) {
    hm_config c = tu_test_config(limit);
    c.reserve_appdomain = appdomain;
    c.reserve_process = process;
    return c;
}

/* A manager of `cfg` (NULL: the environment's), and a heap of `flags` on `mgr` (NULL: the
 * process's shared manager), that must be made; tu_release gives both back, heap first. */
static inline hm_manager *tu_manager(const hm_config *cfg) {
    hm_manager *mgr = hm_manager_new(cfg);
    if (mgr == NULL) fail_msg("hm_manager_new returned NULL");
    return mgr;
}

static inline hm_heap *tu_heap(hm_manager *mgr, unsigned flags) {
    hm_heap *h = hm_heap_new(mgr, flags);
    if (h == NULL) fail_msg("hm_heap_new(%p, 0x%x) returned NULL", (void *)mgr, flags);
    return h;
}

static inline void tu_release(hm_heap *heap, hm_manager *mgr) {
    hm_heap_release(heap);
    hm_manager_release(mgr);
}

/* The bytes `mgr` has committed now (hm_manager_stats). */
static inline size_t tu_committed(hm_manager *mgr) {
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    return s.committed;
}

/* ---- time ----------------------------------------------------------------------------------- */
/* Milliseconds on the monotonic clock. */
static inline double tu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Sleeps `ms` milliseconds, all of them (a signal does not cut it short). */
static inline void tu_sleep_ms(unsigned ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* An IHostMalloc that hostmalloc did not make: every allocation is refused (E_OUTOFMEMORY),
 * Free and the reference counts do nothing. For tests of what a function does with a foreign
 * instance (it must recognise it, and use nothing of it). The C form only: C++ tests that
 * include this header see the interfaces as classes. */
#if !defined(__cplusplus) || defined(CINTERFACE)
static inline HRESULT STDMETHODCALLTYPE tu_foreign_qi(IHostMalloc *This, REFIID riid, void **ppv) {
    (void)This;
    (void)riid;
    *ppv = NULL;
    return E_NOINTERFACE;
}
static inline ULONG STDMETHODCALLTYPE tu_foreign_ref(IHostMalloc *This) {
    (void)This;
    return 1;
}
static inline HRESULT STDMETHODCALLTYPE tu_foreign_alloc(IHostMalloc *This, SIZE_T cb,
                                                         EMemoryCriticalLevel l, void **pp) {
    (void)This;
    (void)cb;
    (void)l;
    *pp = NULL;
    return E_OUTOFMEMORY;
}
static inline HRESULT STDMETHODCALLTYPE tu_foreign_debug_alloc(IHostMalloc *This, SIZE_T cb,
                                                               EMemoryCriticalLevel l, char *f,
                                                               int line, void **pp) {
    (void)f;
    (void)line;
    return tu_foreign_alloc(This, cb, l, pp);
}
static inline HRESULT STDMETHODCALLTYPE tu_foreign_free(IHostMalloc *This, void *p) {
    (void)This;
    (void)p;
    return S_OK;
}
static inline IHostMalloc *tu_foreign_malloc(void) {
    static const IHostMallocVtbl vtbl = {tu_foreign_qi,    tu_foreign_ref,         tu_foreign_ref,
                                         tu_foreign_alloc, tu_foreign_debug_alloc, tu_foreign_free};
    static IHostMalloc foreign = {&vtbl};
    return &foreign;
}
#endif

static inline int tu_is_aligned(const void *p, size_t alignment) {
    return ((uintptr_t)p & (alignment - 1)) == 0;
}

/* Resident set size in bytes (second field of /proc/self/statm, in pages); 0 on error. */
static inline size_t tu_rss_bytes(void) {
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    unsigned long size = 0, resident = 0;
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2) return 0;
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Fill `p[0..n)` with a pattern that depends on `seed`, and check it back. */
static inline void tu_fill(void *p, size_t n, unsigned seed) {
    unsigned char *b = (unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)((i * 131u + seed * 7u + (i >> 8)) & 0xFF);
}

/* Index of the first byte that differs from the tu_fill pattern, or `n` when all match. */
static inline size_t tu_check(const void *p, size_t n, unsigned seed) {
    const unsigned char *b = (const unsigned char *)p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)((i * 131u + seed * 7u + (i >> 8)) & 0xFF)) return i;
    return n;
}

/* An address inside a region that was mapped and then unmapped again: not mapped now. */
static inline void *tu_unmapped_address(void) {
    size_t len = 1 * TU_MIB;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    munmap(p, len);
    return (char *)p + 64 * TU_KIB;
}

/* ---- death tests ---------------------------------------------------------------------------- */
typedef struct tu_child_result {
    int status;     /* waitpid status */
    char err[8192]; /* what the child wrote to stderr (truncated, NUL-terminated) */
    size_t err_len;
} tu_child_result;

typedef void (*tu_child_fn)(void *arg);

/* Run fn(arg) in a forked child with stderr redirected to a pipe; the child exits 0 when fn
 * returns. cmocka's signal handlers are reset to the default in the child (so a fault there
 * kills it rather than resuming the test runner), core dumps are disabled and an alarm bounds
 * its run time. Returns 0 when the child ran and was reaped, -1 on a setup error. */
static inline int tu_run_child(tu_child_fn fn, void *arg, tu_child_result *res) {
    int fds[2];
    memset(res, 0, sizeof(*res));
    if (pipe(fds) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP};
        for (size_t i = 0; i < TU_ARRAY_SIZE(sigs); i++)
            signal(sigs[i], SIG_DFL);
        struct rlimit nocore = {0, 0};
        setrlimit(RLIMIT_CORE, &nocore);
        close(fds[0]);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        alarm(60);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    for (;;) {
        char tmp[1024];
        ssize_t n = read(fds[0], tmp, sizeof(tmp));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        size_t room = sizeof(res->err) - 1 - res->err_len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(res->err + res->err_len, tmp, take);
        res->err_len += take;
    }
    res->err[res->err_len] = '\0';
    close(fds[0]);
    while (waitpid(pid, &res->status, 0) < 0) {
        if (errno != EINTR) return -1;
    }
    return 0;
}

/* Describe a wait status for failure messages. */
static inline const char *tu_status_str(int status, char *buf, size_t len) {
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "status 0x%x", status);
    return buf;
}

/* Assert that the child ended by signal `sig`. */
#define tu_assert_child_signaled(res, sig)                                                         \
    do {                                                                                           \
        char tu_sbuf_[96];                                                                         \
        if (!WIFSIGNALED((res)->status) || WTERMSIG((res)->status) != (sig))                       \
            fail_msg("child expected to die by signal %d (%s) but %s; stderr: %s", (sig),          \
                     strsignal(sig), tu_status_str((res)->status, tu_sbuf_, sizeof(tu_sbuf_)),     \
                     (res)->err);                                                                  \
    } while (0)

/* Assert that the child exited with status 0; `what` names it in the failure message. */
#define tu_assert_child_exited0(res, what)                                                         \
    do {                                                                                           \
        char tu_sbuf_[96];                                                                         \
        if (!WIFEXITED((res)->status) || WEXITSTATUS((res)->status) != 0)                          \
            fail_msg("%s %s; stderr: %s", (what),                                                  \
                     tu_status_str((res)->status, tu_sbuf_, sizeof(tu_sbuf_)), (res)->err);        \
    } while (0)

/* `m` is one line that starts "hostmalloc: " (the form of every report of the library). */
static inline int tu_one_line(const char *m) {
    size_t n = strlen(m);
    return strncmp(m, "hostmalloc: ", 12) == 0 && n > 12 && m[n - 1] == '\n' &&
           strchr(m, '\n') == m + n - 1;
}

/* Run fn(arg) in a child (tu_run_child) that must die by SIGABRT; `res` gets how it ended and
 * what it wrote, for the caller's checks of the message. */
static inline void tu_expect_abort(tu_child_fn fn, void *arg, tu_child_result *res) {
    assert_int_equal(tu_run_child(fn, arg, res), 0);
    tu_assert_child_signaled(res, SIGABRT);
}

/* Run fn(arg) in a child (tu_run_child) that must exit 0 (`what` names it when it does not);
 * `res` gets what it wrote, for the caller's checks. */
static inline void tu_expect_exit0(tu_child_fn fn, void *arg, tu_child_result *res,
                                   const char *what) {
    assert_int_equal(tu_run_child(fn, arg, res), 0);
    tu_assert_child_exited0(res, what);
}

/* ---- other threads -------------------------------------------------------------------------- */
/* Run fn(arg) in a thread of its own and wait for it to end. */
static inline void tu_run_thread(void *(*fn)(void *), void *arg) {
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* Frees by a thread that does not own the blocks: free_one(ctx, block) is how one block is
 * freed, and says whether the door accepted it. */
typedef bool (*tu_free_fn)(void *ctx, void *p);

typedef struct tu_remote_frees {
    tu_free_fn free_one;
    void *ctx;
    void *const *blocks;
    size_t n, refused;
} tu_remote_frees;

static inline void *tu_remote_frees_main(void *arg) {
    tu_remote_frees *a = (tu_remote_frees *)arg;
    for (size_t i = 0; i < a->n; i++)
        a->refused += !a->free_one(a->ctx, a->blocks[i]);
    return NULL;
}

/* Free blocks[0..n) from another thread (tu_run_thread); each free must be accepted. */
static inline void tu_free_in_thread(tu_free_fn free_one, void *ctx, void *const *blocks,
                                     size_t n) {
    tu_remote_frees a = {free_one, ctx, blocks, n, 0};
    tu_run_thread(tu_remote_frees_main, &a);
    if (a.refused != 0) fail_msg("%zu of %zu frees by another thread refused", a.refused, n);
}

/* ---- crashes in threads ---------------------------------------------------------------------
 * cmocka's handler for SIGSEGV & co. long-jumps back into the test runner, which is undefined
 * from another thread (the program then dies without a word). Threaded tests call this first:
 * a fault then prints one line and kills the process by the signal, which CTest reports. */
static void tu_fatal_signal_handler(int sig) {
    static const char msg[] = "\nFATAL: signal in a test thread (crash or heap corruption)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static inline void tu_die_on_fatal_signals(void) {
    static const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sigs); i++)
        signal(sigs[i], tu_fatal_signal_handler);
}

/* ---- JSON and XML output, checked by python3 ---------------------------------------------- */
/* Parse the file at `path` with python3 and evaluate `expr` on it: for kind "json" `docs` is the
 * list of its JSON lines and `d` the last one; for kind "xml" `root` is its parsed document
 * (xml.etree). Returns 0 when it parses and `expr` is true, else python3's exit status (its
 * reason on stderr). */
static inline int tu_python_check(const char *kind, const char *path, const char *expr) {
    static const char prog[] =
        "import json, sys, xml.etree.ElementTree as ET\n"
        "kind, path, expr = sys.argv[1:4]\n"
        "if kind == 'json':\n"
        "    docs = [json.loads(l) for l in open(path) if l.strip()]\n"
        "    d = docs[-1]\n"
        "else:\n"
        "    root = ET.parse(path).getroot()\n"
        "ok = eval(expr)\n"
        "if not ok: print('python3: false: ' + expr + ' in ' + open(path).read(), "
        "file=sys.stderr)\n"
        "sys.exit(0 if ok else 1)\n";
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        execlp("python3", "python3", "-c", prog, kind, path, expr, (char *)NULL);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* mkstemp(path) that must work: the open descriptor of the new file. */
static inline int tu_mkstemp(char *path) {
    int fd = mkstemp(path);
    if (fd < 0) fail_msg("mkstemp(%s): %s", path, strerror(errno));
    return fd;
}

/* Send this process's stdout to `fd` (closed here): returns a copy of the old stdout, for
 * dup2(saved, 1) when done. */
static inline int tu_stdout_to(int fd) {
    fflush(stdout);
    int saved = dup(1);
    dup2(fd, 1);
    close(fd);
    return saved;
}

/* Remove every HM_* variable from the environment (a child that tests the options starts from
 * none, whatever the test runner's environment holds). */
static inline void tu_clear_hm_env(void) {
    extern char **environ;
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; e != NULL && *e != NULL; e++) {
            if (strncmp(*e, "HM_", 3) != 0) continue;
            char name[128];
            size_t n = strcspn(*e, "=");
            if (n >= sizeof name) n = sizeof name - 1;
            memcpy(name, *e, n);
            name[n] = '\0';
            unsetenv(name);
            again = 1;
            break;
        }
    }
}

/* Set each "NAME=value" of `vars` (up to a NULL) in the environment. */
static inline void tu_setenv_all(const char *const *vars) {
    for (size_t i = 0; vars[i] != NULL; i++) {
        char name[64];
        size_t n = strcspn(vars[i], "=");
        snprintf(name, sizeof name, "%.*s", (int)n, vars[i]);
        setenv(name, vars[i][n] == '=' ? vars[i] + n + 1 : "", 1);
    }
}

/* ---- main ----------------------------------------------------------------------------------- */
/* Run `tests`; with an argument, only the test of that exact name (unknown name: exit 2). */
static inline int tu_main(const char *group, const struct CMUnitTest *tests, size_t n, int argc,
                          char **argv) {
    if (argc > 1) {
        int found = 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(tests[i].name, argv[1]) == 0) found = 1;
        if (!found) {
            fprintf(stderr, "%s: no test named '%s'\n", argv[0], argv[1]);
            return 2;
        }
        cmocka_set_test_filter(argv[1]);
    }
    return _cmocka_run_group_tests(group, tests, n, NULL, NULL);
}

#define TU_MAIN(tests) tu_main(#tests, tests, TU_ARRAY_SIZE(tests), argc, argv)

/* Run the test functions `fns[0..n)`, whose names are `names`: the functions' list as the
 * preprocessor spells it ("test_a, test_b, ..."), so that a test's name is always its function's.
 * Every program's main is TU_TEST_MAIN(test_a, test_b, ...) or, when main does more first,
 * TU_RUN_TESTS(...) at its end; tests/CMakeLists.txt reads the same list to register each
 * function as its own CTest test. */
static inline int tu_main_list(const char *names, const CMUnitTestFunction *fns, size_t n, int argc,
                               char **argv) {
    struct CMUnitTest *tests = (struct CMUnitTest *)calloc(n, sizeof *tests);
    char *copy = strdup(names);
    if (tests == NULL || copy == NULL) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 2;
    }
    char *save = NULL;
    for (size_t i = 0; i < n; i++) {
        tests[i].name = strtok_r(i == 0 ? copy : NULL, ", ", &save);
        tests[i].test_func = fns[i];
    }
    const char *group = strrchr(argv[0], '/');
    int rc = tu_main(group != NULL ? group + 1 : argv[0], tests, n, argc, argv);
    free(copy);
    free(tests);
    return rc;
}

#define TU_RUN_TESTS(...)                                                                          \
    do {                                                                                           \
        static const CMUnitTestFunction tu_fns_[] = {__VA_ARGS__};                                 \
        return tu_main_list(#__VA_ARGS__, tu_fns_, TU_ARRAY_SIZE(tu_fns_), argc, argv);            \
    } while (0)

#define TU_TEST_MAIN(...)                                                                          \
    int main(int argc, char **argv) {                                                              \
        TU_RUN_TESTS(__VA_ARGS__);                                                                 \
    }

#endif /* HOSTMALLOC_TEST_UTIL_H */
