/* SPDX-License-Identifier: MIT */
/* test_sqlite.c: the SQLite adapter (runtimes/sqlite): sqlite3_mem_methods on an IHostMalloc
 * instance; install and uninstall rules; a tight budget giving SQLite's own "out of memory"
 * and a connection that goes on; fault injection at each level; Low lowering the soft heap
 * limit (and the page cache then bounded by it) and the host's limit back after. */
#include <time.h>

#include <sqlite3.h>

#include <hostmalloc/hm_sqlite.h>

#include "test_util.h"

#define MIB TU_MIB

static hm_config test_cfg(size_t limit) {
    hm_config c = tu_test_config(limit);
    c.fault_seed = 3; /* the seed the fault-injection expectations below were made with */
    return c;
}

typedef struct {
    IHostMemoryManager *mm;
    IHostMalloc *m;
    hm_manager *mgr;
} tenant;

static void tenant_open(tenant *t, const hm_config *cfg) {
    assert_hr(hm_create_host_memory_manager(cfg, &t->mm), S_OK);
    assert_hr(IHostMemoryManager_CreateMalloc(t->mm, MALLOC_THREADSAFE, &t->m), S_OK);
    t->mgr = hm_heap_manager(hm_malloc_heap(t->m));
}

/* Shut SQLite down, take the adapter out, and check that nothing is left in the manager. */
static void tenant_close(tenant *t) {
    assert_int_equal(sqlite3_shutdown(), SQLITE_OK);
    assert_int_equal(hm_sqlite_uninstall(), SQLITE_OK);
    IHostMalloc_Release(t->m);
    hm_manager_stats_t s;
    hm_manager_stats(t->mgr, &s);
    if (s.heaps != 0 || s.committed != 0)
        fail_msg("after shutdown and uninstall: %zu heaps, %zu bytes committed", s.heaps,
                 s.committed);
    IHostMemoryManager_Release(t->mm);
}

static void exec_ok(sqlite3 *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
        fail_msg("%s\n in: %s", err != NULL ? err : "?", sql);
}

static sqlite3_int64 query_int(sqlite3 *db, const char *sql) {
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s\n in: %s", sqlite3_errmsg(db), sql);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    sqlite3_int64 v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static const char *fill_sql = "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL);"
                              "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                              "WHERE x < 20000) INSERT INTO t SELECT x, 'name' || x, x / 2.0 "
                              "FROM c;"
                              "CREATE INDEX t_name ON t(name);";

static void test_install_and_queries(void **state) {
    (void)state;
    hm_config cfg = test_cfg(128 * MIB);
    tenant t;
    tenant_open(&t, &cfg);
    assert_int_equal(hm_sqlite_install(NULL, eTaskCritical), SQLITE_MISUSE);
    assert_int_equal(hm_sqlite_install(t.m, (EMemoryCriticalLevel)3), SQLITE_MISUSE);
    assert_int_equal(hm_sqlite_uninstall(), SQLITE_MISUSE); /* not installed */
    assert_int_equal(hm_sqlite_install(t.m, eTaskCritical), SQLITE_OK);
    assert_int_equal(hm_sqlite_install(t.m, eTaskCritical), SQLITE_MISUSE); /* already */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    exec_ok(db, fill_sql);
    assert_int_equal(query_int(db, "SELECT count(*) FROM t WHERE name LIKE 'name1%'"), 11111);
    assert_int_equal(query_int(db, "SELECT sum(id) FROM t"), 200010000);
    /* SQLite's memory is the instance's */
    hm_heap_stats_t hs;
    hm_heap_stats(hm_malloc_heap(t.m), &hs);
    assert_true(hs.live_blocks > 100);
    assert_true((sqlite3_int64)hs.live_bytes >= sqlite3_memory_used());
    /* still initialized: uninstall refuses and changes nothing */
    assert_int_equal(hm_sqlite_uninstall(), SQLITE_MISUSE);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    tenant_close(&t);
    /* SQLite runs on its own allocator again */
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    exec_ok(db, "CREATE TABLE x(a); INSERT INTO x VALUES (1);");
    sqlite3_close(db);
    assert_int_equal(sqlite3_shutdown(), SQLITE_OK);
}

static void test_install_while_initialized(void **state) {
    (void)state;
    hm_config cfg = test_cfg(64 * MIB);
    IHostMemoryManager *mm;
    assert_hr(hm_create_host_memory_manager(&cfg, &mm), S_OK);
    IHostMalloc *m;
    assert_hr(IHostMemoryManager_CreateMalloc(mm, MALLOC_THREADSAFE, &m), S_OK);
    assert_int_equal(sqlite3_initialize(), SQLITE_OK);
    assert_int_equal(hm_sqlite_install(m, eTaskCritical), SQLITE_MISUSE);
    assert_int_equal(hm_sqlite_uninstall(), SQLITE_MISUSE);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    exec_ok(db, "CREATE TABLE x(a)");
    sqlite3_close(db);
    hm_heap_stats_t hs;
    hm_heap_stats(hm_malloc_heap(m), &hs);
    assert_int_equal(hs.live_blocks, 0); /* nothing went to the instance */
    assert_int_equal(sqlite3_shutdown(), SQLITE_OK);
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mm);
}

/* ---- budget ---------------------------------------------------------------------------------- */
static void test_budget_out_of_memory(void **state) {
    (void)state;
    hm_config cfg = test_cfg(16 * MIB);
    tenant t;
    tenant_open(&t, &cfg);
    assert_int_equal(hm_sqlite_install(t.m, eTaskCritical), SQLITE_OK);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    exec_ok(db, "CREATE TABLE b(x BLOB)");
    for (int round = 0; round < 3; round++) {
        char *err = NULL;
        int rc = sqlite3_exec(db,
                              "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                              "WHERE x < 1000) INSERT INTO b SELECT randomblob(100000) FROM c",
                              NULL, NULL, &err);
        assert_int_equal(rc, SQLITE_NOMEM);
        assert_string_equal(err, "out of memory");
        sqlite3_free(err);
        /* the statement was rolled back; the connection goes on */
        assert_int_equal(query_int(db, "SELECT count(*) FROM b"), 0);
        exec_ok(db, "INSERT INTO b VALUES (randomblob(1000))");
        assert_int_equal(query_int(db, "SELECT count(*) FROM b"), 1);
        exec_ok(db, "DELETE FROM b");
    }
    hm_sqlite_stats st;
    hm_sqlite_get_stats(&st);
    assert_true(st.refusals >= 3);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    tenant_close(&t);
}

/* ---- fault injection at each level -------------------------------------------------------------
 */
static void test_fault_injection_each_level(void **state) {
    (void)state;
    for (int level = 0; level < 3; level++) {
        hm_config cfg = test_cfg(256 * MIB);
        cfg.fault_probability[level] = 0.002;
        tenant t;
        tenant_open(&t, &cfg);
        /* set up at a level without faults, then run at the faulty one */
        assert_int_equal(hm_sqlite_install(t.m, (EMemoryCriticalLevel)((level + 1) % 3)),
                         SQLITE_OK);
        sqlite3 *db;
        assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
        exec_ok(db, "CREATE TABLE f(a INTEGER, b TEXT)");
        assert_true(hm_sqlite_set_level((EMemoryCriticalLevel)level));
        int nomem = 0, ok = 0;
        for (int i = 0; i < 300; i++) {
            char sql[200];
            snprintf(sql, sizeof sql,
                     "INSERT INTO f SELECT %d, printf('%%.*c', 50, 'x') || %d "
                     "FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3)",
                     i, i);
            int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
            if (rc == SQLITE_NOMEM)
                nomem++;
            else if (rc == SQLITE_OK)
                ok++;
            else
                fail_msg("level %d: unexpected result %d: %s", level, rc, sqlite3_errmsg(db));
        }
        assert_true(hm_sqlite_set_level((EMemoryCriticalLevel)((level + 1) % 3)));
        if (nomem == 0 || ok == 0)
            fail_msg("level %d: %d out of memory, %d fine", level, nomem, ok);
        /* every statement that succeeded left its 3 rows, none of the others any */
        assert_int_equal(query_int(db, "SELECT count(*) FROM f"), 3 * ok);
        hm_manager_stats_t ms;
        hm_manager_stats(t.mgr, &ms);
        for (int l = 0; l < 3; l++) {
            if (l == level)
                assert_true(ms.faults_injected[l] > 0);
            else
                assert_int_equal(ms.faults_injected[l], 0);
        }
        assert_false(hm_sqlite_set_level((EMemoryCriticalLevel)5));
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        tenant_close(&t);
    }
}

/* ---- Low ------------------------------------------------------------------------------------- */
static bool wait_for(size_t (*count)(void), size_t want, unsigned ms) {
    for (unsigned waited = 0; waited < ms; waited += 10) {
        if (count() >= want) return true;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return count() >= want;
}
static size_t soft_limits(void) {
    hm_sqlite_stats st;
    hm_sqlite_get_stats(&st);
    return st.soft_limits;
}
static size_t host_limit_back(void) {
    return sqlite3_soft_heap_limit64(-1) == 0;
}

static void test_low_lowers_soft_limit(void **state) {
    (void)state;
    hm_config cfg = test_cfg(128 * MIB);
    tenant t;
    tenant_open(&t, &cfg);
    assert_int_equal(hm_sqlite_install(t.m, eTaskCritical), SQLITE_OK);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    exec_ok(db, fill_sql);
    assert_int_equal(sqlite3_soft_heap_limit64(-1), 0); /* the host set none */
    sqlite3_int64 used = sqlite3_memory_used();
    /* another tenant of the same manager takes the budget to Low */
    hm_heap *other = hm_heap_new(t.mgr, 0);
    void *big = hm_alloc(other, 118 * MIB);
    assert_non_null(big);
    if (!wait_for(soft_limits, 1, 5000)) fail_msg("no soft limit set after Low");
    sqlite3_int64 lim = sqlite3_soft_heap_limit64(-1);
    assert_true(lim > 0 && lim <= used / 2 + 256 * 1024);
    /* SQLite keeps working under the lowered limit (its page caches recycle pages) */
    sqlite3_memory_highwater(1);
    assert_int_equal(query_int(db, "SELECT count(*) FROM t WHERE v > 0"), 20000);
    print_message("Low: soft heap limit %lld bytes (SQLite used %lld; highest since: %lld)\n", lim,
                  used, sqlite3_memory_highwater(0));
    /* pressure over: the host's limit (none) is back */
    hm_free(big);
    hm_heap_release(other);
    if (!wait_for(host_limit_back, 1, 5000)) fail_msg("the host's soft limit did not come back");
    hm_sqlite_stats st;
    hm_sqlite_get_stats(&st);
    assert_true(st.low_notes >= 1);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    tenant_close(&t);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_and_queries),
        cmocka_unit_test(test_install_while_initialized),
        cmocka_unit_test(test_budget_out_of_memory),
        cmocka_unit_test(test_fault_injection_each_level),
        cmocka_unit_test(test_low_lowers_soft_limit),
    };
    return TU_MAIN(tests);
}
