/* SPDX-License-Identifier: MIT */
/* test_stats.c: statistics and options people can read (linked to the static library, so the
 * internal formatter can be tested directly).
 *
 * Sizes in units, the pid/program header of every report, the full manager report, the JSON
 * writers (parsed by python3, figures checked), HM_STATS=json, HM_VERBOSE, and the warnings:
 * unknown HM_* names, malformed and out-of-range values, inconsistent thresholds and reserves,
 * a statistics file that is not a regular file. Options are read in forked children started
 * from an environment without HM_* variables. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager/manager.h"
#include "test_util.h"

#define MIB ((size_t)1 << 20)

/* ---- units ------------------------------------------------------------------------------------
 */
static void check_human(size_t v, const char *want) {
    char buf[64];
    size_t n = _hm_snprintf(buf, sizeof buf, "%H", v);
    if (strcmp(buf, want) != 0 || n != strlen(want))
        fail_msg("%%H of %zu gave '%s' (length %zu), want '%s'", v, buf, n, want);
}

static void test_units_format(void **state) {
    (void)state;
    check_human(0, "0 B");
    check_human(1023, "1023 B");
    check_human(1024, "1.0 KiB");
    check_human(1536, "1.5 KiB");
    check_human(1048575, "1.0 MiB"); /* 1023.999 KiB rounds up to the next unit */
    check_human(10 * MIB + MIB / 10, "10.1 MiB");
    check_human(10 * MIB + MIB / 20 + 1, "10.1 MiB"); /* 10.05 rounds half up */
    check_human(10 * MIB + MIB / 20 - 1, "10.0 MiB");
    check_human((size_t)25276026880ull, "23.5 GiB");
    check_human((size_t)3 << 40, "3.0 TiB");
    check_human(SIZE_MAX, "16.0 EiB");
    char buf[96];
    _hm_snprintf(buf, sizeof buf, "%u|%zu|%d|%s", 4000000000u, (size_t)7, -3, "x");
    assert_string_equal(buf, "4000000000|7|-3|x");
    /* truncation keeps the terminator */
    char small[6];
    assert_int_equal(_hm_snprintf(small, sizeof small, "%H", (size_t)1536), 5);
    assert_string_equal(small, "1.5 K");
}

/* ---- reports ----------------------------------------------------------------------------------
 */
static char *read_all(FILE *f, char *buf, size_t cap) {
    fflush(f);
    rewind(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    return buf;
}

static void test_report_header(void **state) {
    (void)state;
    char who[128], want[160];
    _hm_report_who(who, sizeof who);
    snprintf(want, sizeof want, "pid %d (%s)", (int)getpid(), program_invocation_short_name);
    assert_string_equal(who, want);
    assert_non_null(strstr(who, "test_stats"));

    hm_config cfg = tu_quiet_config(48 * MIB);
    hm_manager *mgr = hm_manager_new(&cfg);
    hm_heap *heap = hm_heap_new(mgr, 0);
    void *p[100];
    for (int i = 0; i < 100; i++)
        assert_non_null(p[i] = hm_alloc(heap, 1024));
    FILE *f = tmpfile();
    assert_non_null(f);
    hm_heap_stats_print(heap, f);
    char buf[2048];
    read_all(f, buf, sizeof buf);
    fclose(f);
    char head[256];
    snprintf(head, sizeof head, "hostmalloc heap %p, %s:\n", (void *)heap, want);
    if (strncmp(buf, head, strlen(head)) != 0 ||
        strstr(buf, "live:      100 blocks, 100.0 KiB") == NULL)
        fail_msg("heap report:\n%s", buf);
    for (int i = 0; i < 100; i++)
        hm_free(p[i]);
    tu_release(heap, mgr);
}

/* The manager report keeps every row (the hosting levels, notifications, virtual memory), in
 * units, with the limit also in exact bytes. */
static void test_manager_report_full(void **state) {
    (void)state;
    hm_config cfg = tu_quiet_config(48 * MIB);
    hm_manager *mgr = hm_manager_new(&cfg);
    hm_heap *heap = hm_heap_new(mgr, 0);
    void *p = hm_alloc_level(heap, 3 * MIB, eAppDomainCritical);
    assert_non_null(p);
    FILE *f = tmpfile();
    hm_manager_stats_print(mgr, f);
    char buf[2048];
    read_all(f, buf, sizeof buf);
    fclose(f);
    char who[128], head[256];
    _hm_report_who(who, sizeof who);
    snprintf(head, sizeof head, "hostmalloc manager %p, %s:\n", (void *)mgr, who);
    static const char *const rows[] = {"  limit:         48.0 MiB (50331648 bytes)\n",
                                       "  requests:      task 0, appdomain 1, process 0\n",
                                       "  notifications: low 0, neutral 0, high 0\n",
                                       "  virtual:       reserved 0 B, committed 0 B"};
    if (strncmp(buf, head, strlen(head)) != 0) fail_msg("manager report header:\n%s", buf);
    for (size_t i = 0; i < TU_ARRAY_SIZE(rows); i++)
        if (strstr(buf, rows[i]) == NULL)
            fail_msg("no '%s' in the manager report:\n%s", rows[i], buf);
    hm_free(p);
    tu_release(heap, mgr);
}

/* ---- JSON -------------------------------------------------------------------------------------
 */
/* Parse the JSON lines at `path` with python3 and check `expr` on them (tu_python_check), then
 * remove the file; `about` says what a false `expr` means. */
static void json_file_check(const char *path, const char *expr, const char *about) {
    int rc = tu_python_check("json", path, expr);
    unlink(path);
    if (rc != 0) fail_msg("%s (python3 exit %d)", about, rc);
}

/* Run fn(arg) in a child that must exit 0 (`what` names it when it does not) with its stdout
 * sent to a new temporary file, then check the JSON it wrote there (json_file_check). */
static void json_child_check(tu_child_fn fn, void *arg, const char *what, const char *expr,
                             const char *about) {
    char path[] = "/tmp/hm-json-XXXXXX";
    int saved = tu_stdout_to(tu_mkstemp(path));
    tu_child_result res;
    int rc = tu_run_child(fn, arg, &res);
    dup2(saved, 1);
    close(saved);
    assert_int_equal(rc, 0);
    tu_assert_child_exited0(&res, what);
    json_file_check(path, expr, about);
}

static void test_json_heap_and_manager(void **state) {
    (void)state;
    hm_config cfg = tu_quiet_config(64 * MIB);
    hm_manager *mgr = hm_manager_new(&cfg);
    hm_heap *heap = hm_heap_new(mgr, 0);
    void *p[10];
    for (int i = 0; i < 10; i++)
        assert_non_null(p[i] = hm_alloc_level(heap, 4096, eTaskCritical));
    void *big = hm_alloc(heap, 8 * MIB); /* a huge block */
    assert_non_null(big);
    hm_heap_stats_t hs;
    hm_heap_stats(heap, &hs);
    hm_manager_stats_t ms;
    hm_manager_stats(mgr, &ms);

    char path[] = "/tmp/hm-json-XXXXXX";
    int fd = tu_mkstemp(path);
    FILE *f = fdopen(fd, "w");
    size_t n1 = hm_heap_stats_json(heap, f);
    size_t n2 = hm_manager_stats_json(mgr, f);
    fclose(f);
    assert_true(n1 > 0 && n2 > 0);
    assert_int_equal(hm_heap_stats_json(NULL, stderr), 0);

    char expr[1024];
    snprintf(
        expr, sizeof expr,
        "len(docs) == 2 and docs[0]['report'] == 'heap' and d['report'] == 'manager' and "
        "all(x['pid'] == %d and x['program'] == 'test_stats' and x['hostmalloc'] == '%d.%d.%d' "
        "for x in docs) and "
        "docs[0]['heap']['live_blocks'] == %zu and docs[0]['heap']['live_bytes'] == %zu and "
        "docs[0]['heap']['huge_blocks'] == 1 and docs[0]['heap']['committed'] == %zu and "
        "docs[0]['heap']['requests'] == {'task': 10, 'appdomain': 0, 'process': 1} and "
        "d['manager']['limit'] == %zu and d['manager']['committed'] == %zu and "
        "d['manager']['heaps'] == 1 and d['manager']['requests']['task'] == 10 and "
        "set(d['manager']['notifications']) == {'low', 'neutral', 'high'}",
        (int)getpid(), HOSTMALLOC_VERSION_MAJOR, HOSTMALLOC_VERSION_MINOR, HOSTMALLOC_VERSION_PATCH,
        hs.live_blocks, hs.live_bytes, hs.committed, 64 * MIB, ms.committed);
    json_file_check(path, expr, "the JSON reports do not parse or hold other figures");
    assert_int_equal(hs.live_blocks, 11);
    for (int i = 0; i < 10; i++)
        hm_free(p[i]);
    hm_free(big);
    tu_release(heap, mgr);
}

/* The program name is the one string of a JSON report that hostmalloc does not write itself:
 * quotes, backslashes, control characters and bytes above 0x7f are escaped. */
static void json_name_child(void *arg) {
    program_invocation_short_name = (char *)arg;
    hm_config cfg = tu_quiet_config(16 * MIB);
    hm_manager *mgr = hm_manager_new(&cfg);
    hm_heap *heap = hm_heap_new(mgr, 0);
    size_t n = hm_heap_stats_json(heap, stdout);
    fflush(stdout);
    tu_release(heap, mgr);
    _exit(n > 0 ? 0 : 3);
}

static void test_json_program_name_escaped(void **state) {
    (void)state;
    static char name[] = "a\"b\\c\nd\xc3\xa9\x7f";
    json_child_check(json_name_child, name, "child",
                     "len(docs) == 1 and d['program'] == 'a' + chr(34) + 'b' + chr(92) + "
                     "'c' + chr(10) + 'd' + chr(0xc3) + chr(0xa9) + chr(0x7f)",
                     "the program name is not escaped");
}

/* The widest manager report there can be (every counter 20 digits, a program name of 63
 * bytes that each take six characters escaped) is written whole: a JSON writer answers with a
 * complete document or with 0, never with a cut one. */
static void json_wide_child(void *arg) {
    (void)arg;
    static char name[64];
    memset(name, 1, 63);
    program_invocation_short_name = name;
    hm_config cfg = tu_quiet_config(16 * MIB);
    hm_manager *mgr = hm_manager_new(&cfg);
    const size_t w = (size_t)12345678901234567890ull;
    size_t limit = mgr->arena.budget.limit;
    mgr->arena.budget.limit = w;
    atomic_store(&mgr->arena.budget.peak_committed, w);
    atomic_store(&mgr->runtime_mapped, w);
    for (int l = 0; l < 3; l++) {
        atomic_store(&mgr->arena.retired_requests[l], w);
        atomic_store(&mgr->arena.budget.failures[l], w);
        atomic_store(&mgr->faults_injected[l], w);
    }
    for (int k = 0; k < 4; k++)
        atomic_store(&mgr->notifications[k], w);
    size_t n = hm_manager_stats_json(mgr, stdout);
    fflush(stdout);
    mgr->arena.budget.limit = limit;
    _exit(n > 0 ? 0 : 3);
}

static void test_json_widest_report_whole(void **state) {
    (void)state;
    /* the formatter's answer for no room at all */
    char one[1] = {'x'};
    assert_int_equal(_hm_snprintf(one, 0, "%s", "abc"), 0);
    assert_int_equal(one[0], 'x');
    json_child_check(json_wide_child, NULL, "child (3: the report was refused)",
                     "len(docs) == 1 and d['program'] == chr(1) * 63 and "
                     "d['manager']['limit'] == 12345678901234567890 and "
                     "d['manager']['runtime_mapped'] == 12345678901234567890 and "
                     "d['manager']['notifications']['high'] == 12345678901234567890",
                     "the widest manager report is not a whole document");
}

/* HM_STATS=json: the reports at a heap's release and a manager's end are JSON lines in the
 * statistics file. */
static void stats_json_child(void *arg) {
    tu_clear_hm_env();
    setenv("HM_STATS", "json", 1);
    setenv("HM_STATS_FILE", (const char *)arg, 1);
    hm_config c;
    hm_config_init(&c);
    if (!c.print_stats || !c.stats_json) _exit(3);
    c.limit = 32 * MIB;
    hm_manager *mgr = hm_manager_new(&c);
    hm_heap *heap = hm_heap_new(mgr, 0);
    for (int i = 0; i < 5; i++)
        hm_alloc(heap, 100); /* left for the release to free */
    tu_release(heap, mgr);
}

static void test_env_stats_json(void **state) {
    (void)state;
    char path[] = "/tmp/hm-json-XXXXXX";
    int fd = tu_mkstemp(path);
    close(fd);
    tu_child_result res;
    tu_expect_exit0(stats_json_child, path, &res, "child");
    json_file_check(path,
                    "len(docs) == 2 and docs[0]['report'] == 'heap' and "
                    "docs[0]['heap']['live_blocks'] == 5 and "
                    "docs[0]['heap']['requests']['process'] == 5 and "
                    "d['report'] == 'manager' and d['manager']['limit'] == 33554432",
                    "HM_STATS=json wrote other documents");
}

/* ---- HM_VERBOSE ---------------------------------------------------------------------------------
 */
static void verbose_child(void *arg) {
    (void)arg;
    tu_clear_hm_env();
    setenv("HM_VERBOSE", "1", 1);
    setenv("HM_LIMIT", "64M", 1);
    setenv("HM_FAULT_PROB", "0.25", 1);
    hm_config c;
    hm_config_init(&c);
    if (!c.verbose) _exit(3);
    c.segment_cache = 5 * MIB; /* set by the program: "config" */
    hm_manager *mgr = hm_manager_new(&c);
    if (mgr == NULL) _exit(4);
    hm_manager_release(mgr);
}

static const char *line_of(const char *text, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "hostmalloc:   %s ", name);
    return strstr(text, key);
}

static bool line_has(const char *text, const char *name, const char *a, const char *b) {
    const char *l = line_of(text, name);
    if (l == NULL) return false;
    const char *end = strchr(l, '\n');
    size_t len = end != NULL ? (size_t)(end - l) : strlen(l);
    char line[512];
    snprintf(line, sizeof line, "%.*s", (int)len, l);
    return strstr(line, a) != NULL && strstr(line, b) != NULL;
}

static void test_verbose_configuration(void **state) {
    (void)state;
    tu_child_result res;
    tu_expect_exit0(verbose_child, NULL, &res, "child");
    static const char *const names[] = {"HM_LIMIT",           "HM_RESERVE_APPDOMAIN",
                                        "HM_RESERVE_PROCESS", "HM_PROCESS_WAIT",
                                        "HM_LOW_PCT",         "HM_NEUTRAL_PCT",
                                        "HM_HIGH_PCT",        "HM_NOTIFY_INTERVAL",
                                        "HM_FAULT_EVERY",     "HM_FAULT_PROB",
                                        "HM_FAULT_SEED",      "HM_PURGE_DELAY",
                                        "HM_SEGMENT_CACHE",   "HM_STATS",
                                        "HM_STATS_FILE",      "HM_CHECKED",
                                        "HM_VERBOSE"};
    if (strstr(res.err, "hostmalloc: configuration of manager 0x") == NULL)
        fail_msg("no configuration header: %s", res.err);
    for (size_t i = 0; i < TU_ARRAY_SIZE(names); i++)
        if (line_of(res.err, names[i]) == NULL) fail_msg("no %s line: %s", names[i], res.err);
    if (!line_has(res.err, "HM_LIMIT", "64.0 MiB (67108864 bytes)", " env") ||
        !line_has(res.err, "HM_FAULT_PROB", "0.25,0.25,0.25", " env") ||
        !line_has(res.err, "HM_SEGMENT_CACHE", "5.0 MiB (5242880 bytes)", " config") ||
        !line_has(res.err, "HM_PURGE_DELAY", "500 ms", " default") ||
        !line_has(res.err, "HM_VERBOSE", "1", " env"))
        fail_msg("values or sources wrong:\n%s", res.err);
    /* one line per option and the header: nothing else (no warning for valid values) */
    size_t lines = 0;
    for (const char *c = res.err; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, TU_ARRAY_SIZE(names) + 1);
}

/* ---- warnings
 * ------------------------------------------------------------------------------------ */
static void env_child(void *arg) {
    tu_clear_hm_env();
    tu_setenv_all(arg);
    hm_config c;
    hm_config_init(&c);
    /* report what was read, for the parent to check */
    fprintf(stderr, "read: stats=%d json=%d checked=%d low=%u limit=%zu\n", c.print_stats,
            c.stats_json, c.checked, c.low_pct, c.limit);
}

static void run_env(const char *const *vars, tu_child_result *res) {
    tu_expect_exit0(env_child, (void *)vars, res, "child");
}

static void test_unknown_name_warning(void **state) {
    (void)state;
    tu_child_result res;
    const char *kv[] = {"HM_LIMT=1G", "HM_STAT=1", "HM_FROBNICATE=1", "HM_LIMIT=2G", NULL};
    run_env(kv, &res);
    if (strstr(res.err, "hostmalloc: unknown option HM_LIMT (did you mean HM_LIMIT?)\n") == NULL ||
        strstr(res.err, "hostmalloc: unknown option HM_STAT (did you mean HM_STATS?)\n") == NULL ||
        strstr(res.err, "hostmalloc: unknown option HM_FROBNICATE (ignored)\n") == NULL)
        fail_msg("unknown-name warnings:\n%s", res.err);
    assert_non_null(strstr(res.err, "limit=2147483648"));
    /* known names only: not a word */
    const char *ok[] = {"HM_LIMIT=2G", "HM_STATS=0", NULL};
    run_env(ok, &res);
    if (strstr(res.err, "hostmalloc:") != NULL) fail_msg("warned about valid options: %s", res.err);
}

static void test_malformed_values(void **state) {
    (void)state;
    tu_child_result res;
    const char *bad[] = {"HM_STATS=maybe", "HM_CHECKED=perhaps", "HM_LOW_PCT=150", NULL};
    run_env(bad, &res);
    if (strstr(res.err, "hostmalloc: ignoring malformed HM_STATS=maybe\n") == NULL ||
        strstr(res.err, "hostmalloc: ignoring malformed HM_CHECKED=perhaps\n") == NULL ||
        strstr(res.err, "hostmalloc: ignoring out-of-range HM_LOW_PCT=150 (at most 100)\n") ==
            NULL ||
        strstr(res.err, "read: stats=0 json=0 checked=0 low=90 ") == NULL)
        fail_msg("malformed values: %s", res.err);
    /* level lists: three values or one, each with a digit */
    const char *lists[] = {"HM_FAULT_EVERY=1,2,3,", "HM_FAULT_PROB=.", NULL};
    run_env(lists, &res);
    if (strstr(res.err, "hostmalloc: ignoring malformed HM_FAULT_EVERY=1,2,3,\n") == NULL ||
        strstr(res.err, "hostmalloc: ignoring malformed HM_FAULT_PROB=.\n") == NULL)
        fail_msg("malformed level lists: %s", res.err);
    const char *good[] = {"HM_STATS=JSON", "HM_CHECKED=Yes", NULL};
    run_env(good, &res);
    if (strstr(res.err, "hostmalloc:") != NULL ||
        strstr(res.err, "read: stats=1 json=1 checked=1") == NULL)
        fail_msg("valid spellings: %s", res.err);
    const char *off[] = {"HM_STATS=off", "HM_CHECKED=0", NULL};
    run_env(off, &res);
    if (strstr(res.err, "hostmalloc:") != NULL ||
        strstr(res.err, "read: stats=0 json=0 checked=0") == NULL)
        fail_msg("valid spellings: %s", res.err);
}

static void thresholds_child(void *arg) {
    int which = *(int *)arg;
    hm_config c = tu_quiet_config(100 * MIB);
    if (which == 0) {
        c.low_pct = 90, c.neutral_pct = 95, c.high_pct = 50;
    } else if (which == 1) {
        c.low_pct = 90, c.neutral_pct = 80, c.high_pct = 85;
    } else if (which == 2) {
        c.reserve_appdomain = 60 * MIB, c.reserve_process = 50 * MIB;
    } else {
        c.reserve_appdomain = 10 * MIB, c.reserve_process = 10 * MIB; /* all consistent */
    }
    hm_manager *mgr = hm_manager_new(&c);
    if (mgr == NULL) _exit(4);
    hm_manager_release(mgr);
}

static void test_inconsistent_thresholds(void **state) {
    (void)state;
    static const char *const want[] = {
        "hostmalloc: inconsistent thresholds: neutral_pct (HM_NEUTRAL_PCT) 95 is not below "
        "low_pct (HM_LOW_PCT) 90; using 90\n",
        "hostmalloc: inconsistent thresholds: high_pct (HM_HIGH_PCT) 85 is not below "
        "neutral_pct (HM_NEUTRAL_PCT) 80\n",
        "hostmalloc: the reserves (reserve_appdomain 62914560 + reserve_process 52428800 bytes) "
        "leave nothing of the limit (104857600 bytes) to task-critical requests\n",
        NULL};
    for (int which = 0; which < 4; which++) {
        tu_child_result res;
        tu_expect_exit0(thresholds_child, &which, &res, "child");
        if (want[which] != NULL ? strcmp(res.err, want[which]) != 0 : res.err[0] != '\0')
            fail_msg("case %d: stderr '%s'", which, res.err);
    }
}

/* ---- the statistics file ----------------------------------------------------------------------
 */
static void fifo_child(void *arg) {
    hm_config c = tu_quiet_config(16 * MIB);
    c.stats_path = arg;
    hm_manager *mgr = hm_manager_new(&c);
    hm_manager_stats_print(mgr, NULL); /* must not block on a FIFO without a reader */
    size_t written = hm_manager_stats_json(mgr, NULL); /* 0 when refused */
    hm_manager_release(mgr);
    _exit(written == 0 ? 10 : 11);
}

static bool exited(const tu_child_result *res, int code) {
    return WIFEXITED(res->status) && WEXITSTATUS(res->status) == code;
}

static void test_stats_file_not_regular(void **state) {
    (void)state;
    char dir[] = "/tmp/hm-fifo-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char fifo[64];
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    tu_child_result res;
    assert_int_equal(tu_run_child(fifo_child, fifo, &res), 0);
    char want[128];
    snprintf(want, sizeof want, "hostmalloc: statistics not written to %s: it is", fifo);
    if (!exited(&res, 10) || strncmp(res.err, want, strlen(want)) != 0)
        fail_msg("FIFO: child status %d, stderr '%s'", res.status, res.err);
    /* a directory: both reports refused, one line each */
    assert_int_equal(tu_run_child(fifo_child, dir, &res), 0);
    char line[128], two[256];
    snprintf(line, sizeof line, "hostmalloc: statistics not written to %s: it is a directory\n",
             dir);
    snprintf(two, sizeof two, "%s%s", line, line);
    assert_true(exited(&res, 10));
    assert_string_equal(res.err, two);
    /* a regular file: created 0600, appended to */
    char file[64];
    snprintf(file, sizeof file, "%s/stats", dir);
    assert_int_equal(tu_run_child(fifo_child, file, &res), 0);
    assert_true(exited(&res, 11));
    assert_int_equal(tu_run_child(fifo_child, file, &res), 0);
    assert_true(exited(&res, 11));
    assert_string_equal(res.err, "");
    struct stat st;
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    FILE *f = fopen(file, "r");
    char buf[4096];
    read_all(f, buf, sizeof buf);
    fclose(f);
    const char *second = strstr(buf, "hostmalloc manager");
    if (second == NULL || strstr(second + 1, "hostmalloc manager") == NULL)
        fail_msg("two reports expected in the file: %s", buf);
    /* a second hard link to it: refused (the link could point at a file of someone else) */
    char hard[64];
    snprintf(hard, sizeof hard, "%s/hard", dir);
    assert_int_equal(link(file, hard), 0);
    off_t before = st.st_size;
    assert_int_equal(tu_run_child(fifo_child, hard, &res), 0);
    char hline[160], htwo[320];
    snprintf(hline, sizeof hline,
             "hostmalloc: statistics not written to %s: it has more than one hard link\n", hard);
    snprintf(htwo, sizeof htwo, "%s%s", hline, hline);
    assert_true(exited(&res, 10));
    assert_string_equal(res.err, htwo);
    assert_int_equal(stat(file, &st), 0);
    assert_int_equal(st.st_size, before);
    unlink(hard);
    unlink(file);
    unlink(fifo);
    rmdir(dir);
}

/* ---- request counts and the heartbeat -------------------------------------------------------
 * Two heaps whose ids share an entry of the thread's cache of sub-heaps (8 entries, by id):
 * used in turn, each request of one misses the cache and takes the slow path, whose own pop
 * counts down to the heartbeat as the fast path's does; used twice in a row, the second hits.
 * In a random mix of both (fixed seed), the counts stay exact across every beat, wherever it
 * falls. */
static void test_request_counts_across_beats(void **state) {
    (void)state;
    hm_manager *mgr = tu_manager(NULL);
    hm_heap *h[64];
    int a = -1, b = -1, n = 0;
    while (b < 0 && n < 64) {
        h[n] = tu_heap(mgr, HM_HEAP_THREADSAFE);
        for (int k = 0; k < n && b < 0; k++)
            if ((atomic_load(&h[k]->id) & 7) == (atomic_load(&h[n]->id) & 7)) a = k, b = n;
        n++;
    }
    if (b < 0) fail_msg("no two of 64 heaps share an entry of the cache");
    size_t want[2] = {0, 0};
    uint64_t x = 12345;
    for (int i = 0; i < 20000; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int which = (int)(x >> 63);
        void *p = hm_alloc_level(h[which ? b : a], 48, eTaskCritical);
        assert_non_null(p);
        hm_free(p);
        want[which]++;
    }
    for (int w = 0; w < 2; w++) {
        hm_heap_stats_t hs;
        hm_heap_stats(h[w ? b : a], &hs);
        if (hs.requests[eTaskCritical] != want[w])
            fail_msg("heap %d: %zu task-critical requests counted, %zu made", w,
                     hs.requests[eTaskCritical], want[w]);
    }
    for (int k = 0; k < n; k++)
        hm_heap_release(h[k]);
    hm_manager_release(mgr);
}

TU_TEST_MAIN(test_units_format, test_report_header, test_manager_report_full,
             test_json_heap_and_manager, test_json_program_name_escaped,
             test_json_widest_report_whole, test_env_stats_json, test_verbose_configuration,
             test_unknown_name_warning, test_malformed_values, test_inconsistent_thresholds,
             test_stats_file_not_regular, test_request_counts_across_beats)
