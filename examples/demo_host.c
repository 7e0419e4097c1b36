/* SPDX-License-Identifier: MIT */
/* demo_host.c: a host that embeds three real runtimes, a Lua state, a Python interpreter and an
 * SQLite database, as tenants of one hostmalloc memory manager, each on its own IHostMalloc
 * instance (docs/RUNTIMES.md).
 *
 * It runs a normal workload in each, then squeezes the budget (the host takes most of it for
 * itself), runs a memory-hungry workload in each, and shows in plain words: which requests are
 * refused first (task-critical ones, and in which runtime), each runtime's own error and its
 * recovery, the pressure notifications and what each runtime did with Low, and per-tenant
 * statistics. `make run` runs it; the budget is set here (the HM_* environment may change the
 * rest). Exit status 0 when every tenant recovered. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <time.h>

#include <hostmalloc/hm_lua.h>
#include <hostmalloc/hm_python.h>
#include <hostmalloc/hm_sqlite.h>

#define MiB               ((size_t)1 << 20)
#define LIMIT             (160 * MiB)
#define RESERVE_APPDOMAIN (8 * MiB)  /* for Python's own structures (its RAW domain) */
#define RESERVE_PROCESS   (8 * MiB)  /* for the host */
#define ROOM              (24 * MiB) /* what the squeeze leaves to task-critical requests */

static const char *level_name[3] = {"task", "AppDomain", "process"};
static const char *note_name[4] = {"?", "Low", "Neutral", "High"};

/* ---- output: one line at a time, with the time since start ------------------------------- */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static struct timespec t0;

static double ms_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (t.tv_sec - t0.tv_sec) * 1e3 + (t.tv_nsec - t0.tv_nsec) / 1e6;
}

static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&out_lock);
    printf("[%6.0f ms] ", ms_now());
    vprintf(fmt, ap);
    putchar('\n');
    fflush(stdout);
    pthread_mutex_unlock(&out_lock);
    va_end(ap);
}

static double mib(size_t bytes) {
    return bytes / (double)MiB;
}

static hm_manager *mgr;

static size_t committed(void) {
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    return s.committed;
}

/* The host hears the notifications too (on the manager's notifier thread). */
static void host_listener(void *arg, EMemoryAvailable level) {
    (void)arg;
    say("  manager: %s (%.1f MiB of %.0f MiB committed)", note_name[level], mib(committed()),
        mib(LIMIT));
}

/* ---- the tenants -------------------------------------------------------------------------- */
typedef struct tenant {
    const char *name;
    IHostMalloc *m, *m2; /* m2: Python's second instance (MEM and OBJ) */
} tenant;

static lua_State *L;
static sqlite3 *db;

static bool lua_run(const char *code, const char **err) {
    int st = luaL_loadstring(L, code);
    if (st == LUA_OK) st = lua_pcall(L, 0, 0, 0);
    *err = st == LUA_OK ? NULL : lua_tostring(L, -1);
    if (st != LUA_OK) lua_pop(L, 1);
    return st == LUA_OK;
}

static int sql_run(const char *sql) {
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

static void workloads_normal(void) {
    const char *err;
    lua_run("local t = {} for i = 1, 50000 do t[i] = ('word' .. i):upper() end\n"
            "table.sort(t) result = #table.concat(t, ' ')",
            &err);
    lua_getglobal(L, "result");
    say("Lua: sorted 50000 strings, %lld bytes joined", (long long)lua_tointeger(L, -1));
    lua_pop(L, 1);
    PyRun_SimpleString("import json\n"
                       "rows = [{'id': i, 'name': 'row%d' % i} for i in range(50000)]\n"
                       "doc = json.dumps(rows)\n"
                       "same = json.loads(doc) == rows; size = len(doc)\n"
                       "del rows, doc\n");
    PyObject *main = PyModule_GetDict(PyImport_AddModule("__main__"));
    say("Python: 50000 rows to %ld bytes of JSON and back, %s",
        PyLong_AsLong(PyDict_GetItemString(main, "size")),
        PyObject_IsTrue(PyDict_GetItemString(main, "same")) ? "the same" : "DIFFERENT");
    sql_run("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50000) "
            "INSERT INTO t SELECT x, printf('value %d', x) FROM c;");
    sqlite3_stmt *st;
    sqlite3_prepare_v2(db, "SELECT count(*), sum(length(v)) FROM t", -1, &st, NULL);
    sqlite3_step(st);
    say("SQLite: %d rows, %d bytes of text", sqlite3_column_int(st, 0), sqlite3_column_int(st, 1));
    sqlite3_finalize(st);
}

/* Each runtime asks for far more than is left; each gets its own error and goes on. */
static int workloads_hungry(void) {
    int recovered = 0;
    const char *err;
    say("Lua: filling a table until memory runs out ...");
    lua_run("keep = {} local ok, e = pcall(function()\n"
            "  for i = 1, 1e9 do keep[i] = ('x'):rep(200) .. i end end)\n"
            "n = #keep keep = nil collectgarbage() lua_error = e",
            &err);
    lua_getglobal(L, "lua_error");
    lua_getglobal(L, "n");
    say("Lua: error \"%s\" after %lld strings; garbage dropped", lua_tostring(L, -2),
        (long long)lua_tointeger(L, -1));
    lua_pop(L, 2);
    if (lua_run("local s = {} for i = 1, 1000 do s[i] = i end assert(#s == 1000)", &err)) {
        say("Lua: recovered, runs scripts again");
        recovered++;
    }

    say("Python: growing a list until memory runs out ...");
    PyRun_SimpleString("keep = []\n"
                       "try:\n"
                       "    while True: keep.append(bytes(4000) + str(len(keep)).encode())\n"
                       "except MemoryError:\n"
                       "    caught = 'MemoryError'\n"
                       "n = len(keep); keep = None\n");
    PyObject *main = PyModule_GetDict(PyImport_AddModule("__main__"));
    PyObject *caught = PyDict_GetItemString(main, "caught");
    PyObject *n = PyDict_GetItemString(main, "n");
    say("Python: %s after %ld blocks; list dropped", caught ? PyUnicode_AsUTF8(caught) : "no error",
        n ? PyLong_AsLong(n) : -1L);
    if (PyRun_SimpleString("assert sum(range(1000)) == 499500") == 0) {
        say("Python: recovered, runs code again");
        recovered++;
    }

    say("SQLite: inserting large blobs until memory runs out ...");
    int rc = sql_run("CREATE TABLE big(b BLOB);"
                     "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                     "WHERE x < 100000) INSERT INTO big SELECT randomblob(4000) FROM c;");
    say("SQLite: \"%s\" (code %d); the statement was rolled back", sqlite3_errstr(rc), rc);
    if (sql_run("INSERT INTO t(v) VALUES ('after the error')") == SQLITE_OK) {
        say("SQLite: recovered, the same connection writes again");
        recovered++;
    }
    return recovered;
}

static void print_tenant(const tenant *t) {
    hm_heap_stats_t s, s2;
    hm_heap_stats(hm_malloc_heap(t->m), &s);
    if (t->m2 != NULL) {
        hm_heap_stats(hm_malloc_heap(t->m2), &s2);
        s.committed += s2.committed;
        s.peak_committed += s2.peak_committed;
        s.live_bytes += s2.live_bytes;
        for (int i = 0; i < 3; i++) {
            s.requests[i] += s2.requests[i];
            s.failures[i] += s2.failures[i];
        }
    }
    printf("  %-7s %7.1f MiB now, %6.1f MiB at most; requests task %zu / AppDomain %zu / "
           "process %zu; refused task %zu / AppDomain %zu / process %zu\n",
           t->name, mib(s.committed), mib(s.peak_committed), s.requests[0], s.requests[1],
           s.requests[2], s.failures[0], s.failures[1], s.failures[2]);
}

int main(void) {
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the host: one manager for every tenant; Low at 70 % so that runtimes collect before
     * task-critical requests reach their ceiling (160 - 16 = 144 MiB, 90 %) */
    hm_config cfg;
    hm_config_init(&cfg);
    cfg.limit = LIMIT;
    cfg.reserve_appdomain = RESERVE_APPDOMAIN;
    cfg.reserve_process = RESERVE_PROCESS;
    cfg.low_pct = 70;
    cfg.neutral_pct = 60;
    cfg.high_pct = 40;
    cfg.notify_interval_ms = 20;
    cfg.process_wait_ms = 0;
    IHostMemoryManager *mm;
    if (FAILED(hm_shared_host_memory_manager(&cfg, &mm))) return 1;
    tenant lua = {"Lua", NULL, NULL}, py = {"Python", NULL, NULL}, sq = {"SQLite", NULL, NULL};
    IHostMemoryManager_CreateMalloc(mm, 0, &lua.m);                /* one Lua thread */
    IHostMemoryManager_CreateMalloc(mm, MALLOC_THREADSAFE, &py.m); /* RAW: any thread */
    IHostMemoryManager_CreateMalloc(mm, 0, &py.m2);                /* MEM, OBJ: the GIL */
    IHostMemoryManager_CreateMalloc(mm, MALLOC_THREADSAFE, &sq.m); /* SQLite: any thread */
    if (!lua.m || !py.m || !py.m2 || !sq.m) return 1;
    mgr = hm_heap_manager(hm_malloc_heap(lua.m));
    hm_manager_add_listener(mgr, host_listener, NULL);
    printf("hostmalloc demo host: Lua %s, Python %s, SQLite %s as tenants of one manager\n"
           "budget %.0f MiB: task-critical requests may use %.0f MiB, AppDomain-critical %.0f "
           "MiB, process-critical all; Low at 70 %%\n\n",
           &LUA_RELEASE[4], Py_GetVersion(), sqlite3_libversion(), mib(LIMIT),
           mib(LIMIT - RESERVE_APPDOMAIN - RESERVE_PROCESS), mib(LIMIT - RESERVE_PROCESS));

    L = hm_lua_newstate(lua.m, NULL);
    luaL_openlibs(L);
    hm_python_install(py.m, py.m2, NULL);
    Py_Initialize();
    hm_sqlite_install(sq.m, eTaskCritical);
    sqlite3_open(":memory:", &db);
    say("three tenants started: %.1f MiB committed", mib(committed()));

    printf("\n-- normal work --\n");
    workloads_normal();
    say("after normal work: %.1f MiB committed", mib(committed()));

    /* the squeeze: the host takes (process-critical) all but ROOM of what task-critical
     * requests may use */
    printf("\n-- the host takes most of the budget for itself --\n");
    size_t take = LIMIT - RESERVE_APPDOMAIN - RESERVE_PROCESS - committed() - ROOM;
    hm_heap *host = hm_heap_new(mgr, 0);
    void *ballast = hm_alloc(host, take);
    if (ballast != NULL) memset(ballast, 1, take);
    say("host holds %.1f MiB; %.1f MiB left for the tenants' task-critical requests", mib(take),
        mib(ROOM));

    printf("\n-- hungry work in each runtime --\n");
    int recovered = workloads_hungry();

    printf("\n-- the host gives its memory back --\n");
    hm_free(ballast);
    hm_heap_release(host);
    struct timespec pause = {0, 200 * 1000000L}; /* the notifier speaks at most every 20 ms */
    nanosleep(&pause, NULL);

    hm_manager_stats_t ms;
    hm_manager_stats(mgr, &ms);
    hm_lua_stats ls;
    hm_lua_get_stats(L, &ls);
    hm_python_stats ps;
    hm_python_get_stats(&ps);
    hm_sqlite_stats ss;
    hm_sqlite_get_stats(&ss);
    printf("\n-- what happened --\n");
    printf("refused requests, all tenants: task-critical %zu, AppDomain-critical %zu, "
           "process-critical %zu\n",
           ms.failures[0], ms.failures[1], ms.failures[2]);
    printf("refused in each runtime: Lua %zu task / %zu AppDomain / %zu process; Python %zu "
           "RAW (%s) / %zu MEM / %zu OBJ (%s); SQLite %zu (%s)\n",
           ls.refusals[0], ls.refusals[1], ls.refusals[2], ps.refusals[0], level_name[1],
           ps.refusals[1], ps.refusals[2], level_name[0], ss.refusals, level_name[0]);
    printf("Low notifications: %zu; Lua collected %zu times at a safe point, Python ran "
           "gc.collect() %zu times, SQLite lowered its soft heap limit %zu times\n",
           ms.notifications[eMemoryAvailableLow], ls.collections, ps.collections, ss.soft_limits);
    printf("per tenant (its heaps):\n");
    print_tenant(&lua);
    print_tenant(&py);
    print_tenant(&sq);
    printf("manager: %.1f MiB committed now, %.1f MiB at most, of %.0f MiB\n", mib(ms.committed),
           mib(ms.peak_committed), mib(ms.limit));

    bool ok = recovered == 3 && ms.failures[0] > 0 && ms.failures[2] == 0;
    printf("\nresult: %s\n", ok ? "every runtime got its own error and recovered; only "
                                  "task-critical requests were refused"
                                : "UNEXPECTED (see above)");
    hm_manager_remove_listener(mgr, host_listener, NULL);
    sqlite3_close(db);
    lua_close(L);
    Py_FinalizeEx();
    IHostMalloc_Release(lua.m);
    IHostMalloc_Release(py.m);
    IHostMalloc_Release(py.m2);
    IHostMalloc_Release(sq.m);
    IHostMemoryManager_Release(mm);
    return ok ? 0 : 1;
}
