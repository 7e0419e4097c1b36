/* SPDX-License-Identifier: MIT */
/* test_lua.c: the Lua 5.4 adapter (runtimes/lua): states on IHostMalloc instances, the
 * luaL_newstate drop-in, a tight budget giving Lua's own "not enough memory" and recovery,
 * fault injection at each level through the policy, Low turned into a full collection at a
 * safe point on the Lua thread (with the effect on the heap's peak measured), and nothing
 * left behind by lua_close or by a state that could not be made. */
#include <pthread.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include <hostmalloc/hm_lua.h>

#include "test_util.h"

#define MIB TU_MIB

typedef struct {
    IHostMemoryManager *mm;
    IHostMalloc *m;
    hm_manager *mgr;
} tenant;

static void tenant_open(tenant *t, const hm_config *cfg) {
    assert_hr(hm_create_host_memory_manager(cfg, &t->mm), S_OK);
    assert_hr(IHostMemoryManager_CreateMalloc(t->mm, 0, &t->m), S_OK);
    t->mgr = hm_heap_manager(hm_malloc_heap(t->m));
    assert_non_null(t->mgr);
}

/* Release the instance and check that the manager holds nothing any more: every block of
 * the state went back. */
static void tenant_close(tenant *t) {
    IHostMalloc_Release(t->m);
    hm_manager_stats_t s;
    hm_manager_stats(t->mgr, &s);
    if (s.heaps != 0 || s.committed != 0)
        fail_msg("after lua_close and Release: %zu heaps, %zu bytes committed", s.heaps,
                 s.committed);
    IHostMemoryManager_Release(t->mm);
}

/* Run `code` protected; returns the status and leaves one result (or the error) on top. */
static int run(lua_State *L, const char *code) {
    int st = luaL_loadstring(L, code);
    if (st == LUA_OK) st = lua_pcall(L, 0, 1, 0);
    return st;
}

static void run_ok(lua_State *L, const char *code) {
    if (run(L, code) != LUA_OK) fail_msg("lua error: %s\n in: %s", lua_tostring(L, -1), code);
}

/* ---- states, the drop-in ------------------------------------------------------------------- */
static const char *workload =
    "local t = {} for i = 1, 20000 do t[i] = ('k' .. i):rep(3) end\n"
    "table.sort(t) local s = table.concat(t, ',', 1, 100)\n"
    "local co = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i) end end)\n"
    "local sum = co() + co() + co()\n"
    "local w = setmetatable({}, {__mode = 'k'}) w[{}] = 1 collectgarbage()\n"
    "return #s + sum + (next(w) == nil and 1 or 0)";

static void test_dropin(void **state) {
    (void)state;
    lua_State *L = hm_luaL_newstate();
    assert_non_null(L);
    assert_non_null(hm_lua_malloc(L));
    luaL_openlibs(L);
    run_ok(L, workload);
    lua_Integer got = lua_tointeger(L, -1);
    lua_pop(L, 1);
    /* the same program on a state of Lua's own allocator */
    lua_State *ref = luaL_newstate();
    luaL_openlibs(ref);
    run_ok(ref, workload);
    assert_int_equal(got, lua_tointeger(ref, -1));
    assert_null(hm_lua_malloc(ref)); /* not ours */
    hm_lua_stats st;
    assert_false(hm_lua_get_stats(ref, &st));
    lua_close(ref);
    assert_true(hm_lua_get_stats(L, &st));
    assert_true(st.requests[eTaskCritical] > 20000);
    assert_true(st.requests[eProcessCritical] > 0); /* the state's creation */
    assert_true(st.grown_in_place > 0);
    assert_int_equal(st.refusals[0] + st.refusals[1] + st.refusals[2], 0);
    /* the drop-in's instance belongs to the process's shared manager */
    IHostMemoryManager *shared;
    assert_true(SUCCEEDED(hm_shared_host_memory_manager(NULL, &shared)));
    IHostMalloc *probe;
    assert_hr(IHostMemoryManager_CreateMalloc(shared, 0, &probe), S_OK);
    assert_ptr_equal(hm_heap_manager(hm_malloc_heap(probe)),
                     hm_heap_manager(hm_malloc_heap(hm_lua_malloc(L))));
    IHostMalloc_Release(probe);
    IHostMemoryManager_Release(shared);
    lua_close(L);
}

static void test_bad_arguments(void **state) {
    (void)state;
    assert_null(hm_lua_newstate(tu_foreign_malloc(), NULL));
    assert_null(hm_lua_newstate(NULL, NULL));
    hm_config cfg = tu_test_config(64 * MIB);
    tenant t;
    tenant_open(&t, &cfg);
    hm_lua_policy p;
    hm_lua_policy_init(&p);
    p.object[3] = (EMemoryCriticalLevel)3;
    assert_null(hm_lua_newstate(t.m, &p));
    lua_State *L = hm_lua_newstate(t.m, NULL);
    assert_non_null(L);
    assert_false(hm_lua_set_policy(L, &p)); /* refused, the old one stays */
    assert_false(hm_lua_set_policy(L, NULL));
    luaL_openlibs(L);
    run_ok(L, "return 1");
    lua_close(L);
    tenant_close(&t);
}

/* ---- budget -----------------------------------------------------------------------------------
 */
static void test_budget_not_enough_memory(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(8 * MIB);
    tenant t;
    tenant_open(&t, &cfg);
    lua_State *L = hm_lua_newstate(t.m, NULL);
    assert_non_null(L);
    luaL_openlibs(L);
    for (int round = 0; round < 3; round++) {
        run_ok(L, "keep = {}\n"
                  "local ok, err = pcall(function()\n"
                  "  for i = 1, 1e8 do keep[i] = ('x'):rep(100) .. i end end)\n"
                  "keep = nil\n" /* the garbage must go before anything more is made */
                  "return ok and 'no error' or tostring(err)");
        assert_string_equal(lua_tostring(L, -1), "not enough memory");
        lua_pop(L, 1);
        /* recovery: the garbage goes, the state works as before */
        run_ok(L, "collectgarbage()\n"
                  "local s = {} for i = 1, 1000 do s[i] = tostring(i) end\n"
                  "return #table.concat(s)");
        assert_int_equal(lua_tointeger(L, -1), 2893);
        lua_pop(L, 1);
    }
    hm_lua_stats st;
    assert_true(hm_lua_get_stats(L, &st));
    assert_true(st.refusals[eTaskCritical] >= 3);
    assert_int_equal(st.refusals[eProcessCritical], 0);
    lua_close(L);
    tenant_close(&t);
}

/* A state that cannot be made leaves nothing behind: at each request of its creation. */
static void test_creation_refused(void **state) {
    (void)state;
    for (unsigned every = 1; every <= 40; every++) {
        hm_config cfg = tu_test_config(64 * MIB);
        cfg.fault_every[eProcessCritical] = every;
        tenant t;
        tenant_open(&t, &cfg);
        lua_State *L = hm_lua_newstate(t.m, NULL);
        if (L != NULL) {
            /* made before the fault came: a request of the libraries may fail instead */
            lua_pushcfunction(L, (lua_CFunction)luaopen_base);
            (void)lua_pcall(L, 0, 0, 0);
            lua_close(L);
        }
        tenant_close(&t);
    }
}

/* ---- fault injection at each level ------------------------------------------------------------
 */
static void all_at(hm_lua_policy *p, EMemoryCriticalLevel level) {
    hm_lua_policy_init(p);
    p->create = level;
    p->grow = level;
    for (int i = 0; i < HM_LUA_TAGS; i++)
        p->object[i] = level;
}

static void test_fault_injection_each_level(void **state) {
    (void)state;
    for (int level = 0; level < 3; level++) {
        int other = (level + 1) % 3; /* setup and recovery run at a level without faults */
        hm_config cfg = tu_test_config(256 * MIB);
        /* Lua collects and tries once more before it raises its error: two faults in a row
         * make an error, about once in ten runs of work() */
        cfg.fault_probability[level] = 0.02;
        cfg.fault_seed = 7;
        tenant t;
        tenant_open(&t, &cfg);
        hm_lua_policy safe, faulty;
        all_at(&safe, (EMemoryCriticalLevel)other);
        all_at(&faulty, (EMemoryCriticalLevel)level);
        lua_State *L = hm_lua_newstate(t.m, &safe);
        assert_non_null(L);
        luaL_openlibs(L);
        run_ok(L, "function work() local t = {} for i = 1, 100 do t[i] = {i, tostring(i)} end "
                  "return #t end");
        lua_pop(L, 1);
        assert_true(hm_lua_set_policy(L, &faulty));
        int errors = 0, fine = 0;
        for (int i = 0; i < 200; i++) {
            lua_getglobal(L, "work");
            int st = lua_pcall(L, 0, 1, 0);
            if (st == LUA_ERRMEM) {
                assert_string_equal(lua_tostring(L, -1), "not enough memory");
                errors++;
            } else if (st == LUA_OK) {
                assert_int_equal(lua_tointeger(L, -1), 100);
                fine++;
            } else {
                fail_msg("level %d: status %d: %s", level, st, lua_tostring(L, -1));
            }
            lua_pop(L, 1);
        }
        assert_true(hm_lua_set_policy(L, &safe));
        run_ok(L, "return work()");
        assert_int_equal(lua_tointeger(L, -1), 100);
        lua_pop(L, 1);
        if (errors == 0 || fine == 0)
            fail_msg("level %d: %d errors, %d runs without one", level, errors, fine);
        hm_lua_stats st;
        assert_true(hm_lua_get_stats(L, &st));
        hm_manager_stats_t ms;
        hm_manager_stats(t.mgr, &ms);
        for (int l = 0; l < 3; l++) {
            if (l == level) {
                assert_true(st.refusals[l] > 0);
                assert_true(ms.faults_injected[l] >= st.refusals[l]);
            } else {
                assert_int_equal(st.refusals[l], 0);
                assert_int_equal(ms.faults_injected[l], 0);
            }
        }
        lua_close(L);
        tenant_close(&t);
    }
}

/* ---- Low -> a full collection at a safe point ---------------------------------------------- */
typedef struct {
    pthread_t lua_thread;
    size_t collections_seen;
} low_probe;

/* lowgc(): the collections the adapter ran for Low so far (read on the Lua thread). */
static int l_lowgc(lua_State *L) {
    hm_lua_stats st;
    hm_lua_get_stats(L, &st);
    lua_pushinteger(L, (lua_Integer)st.collections);
    return 1;
}

/* Garbage only, with Lua's own collector stopped: only Low (or a refusal's emergency
 * collection) frees anything. Runs until the adapter collected for Low, or a bound. */
static const char *garbage = "collectgarbage('stop')\n"
                             "local n = 0\n"
                             "while lowgc() == 0 and n < 400000 do\n"
                             "  local t = {} for i = 1, 50 do t[i] = {i} end n = n + 1\n"
                             "end\n"
                             "collectgarbage('restart')\n"
                             "return lowgc()";

static void low_run(bool bridge, size_t *peak, hm_lua_stats *st) {
    hm_config cfg = tu_test_config(64 * MIB);
    tenant t;
    tenant_open(&t, &cfg);
    hm_lua_policy p;
    hm_lua_policy_init(&p);
    p.collect_on_low = bridge;
    lua_State *L = hm_lua_newstate(t.m, &p);
    assert_non_null(L);
    luaL_openlibs(L);
    lua_register(L, "lowgc", l_lowgc);
    run_ok(L, garbage);
    lua_pop(L, 1);
    assert_true(hm_lua_get_stats(L, st));
    hm_heap_stats_t hs;
    hm_heap_stats(hm_malloc_heap(t.m), &hs);
    *peak = hs.peak_committed;
    lua_close(L);
    tenant_close(&t);
}

static void test_low_collects(void **state) {
    (void)state;
    size_t peak_on, peak_off;
    hm_lua_stats on, off;
    low_run(true, &peak_on, &on);
    low_run(false, &peak_off, &off);
    /* with the bridge, Low was heard and turned into at least one collection on the Lua
     * thread; without it, Low was heard and nothing collected for it */
    if (on.low_notes == 0 || on.collections == 0)
        fail_msg("bridge on: %zu Low heard, %zu collections", on.low_notes, on.collections);
    assert_true(off.low_notes > 0);
    assert_int_equal(off.collections, 0);
    print_message("Low -> GC: heap peak %.1f MiB with the bridge (%zu refusals), %.1f MiB "
                  "without (%zu refusals), budget 64 MiB\n",
                  peak_on / 1048576.0, on.refusals[0], peak_off / 1048576.0, off.refusals[0]);
}

/* The hook set for Low gives back the hook that was there (a debugger's, a script's). */
static int count_hook_calls;
static void user_hook(lua_State *L, lua_Debug *ar) {
    (void)L;
    (void)ar;
    count_hook_calls++;
}

static void test_low_keeps_user_hook(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(64 * MIB);
    tenant t;
    tenant_open(&t, &cfg);
    lua_State *L = hm_lua_newstate(t.m, NULL);
    luaL_openlibs(L);
    lua_register(L, "lowgc", l_lowgc);
    lua_sethook(L, user_hook, LUA_MASKCOUNT, 100000);
    run_ok(L, garbage);
    assert_true(lua_tointeger(L, -1) > 0);
    lua_pop(L, 1);
    assert_ptr_equal(lua_gethook(L), user_hook);
    assert_int_equal(lua_gethookmask(L), LUA_MASKCOUNT);
    assert_int_equal(lua_gethookcount(L), 100000);
    lua_sethook(L, NULL, 0, 0);
    lua_close(L);
    tenant_close(&t);
}

/* After lua_close the state's listener is gone: a Low on the manager calls nothing freed. */
static void test_close_removes_listener(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(32 * MIB);
    tenant t;
    tenant_open(&t, &cfg);
    for (int i = 0; i < 4; i++) {
        lua_State *L = hm_lua_newstate(t.m, NULL);
        assert_non_null(L);
        lua_close(L);
    }
    hm_heap *h = hm_heap_new(t.mgr, 0);
    void *big = hm_alloc(h, 30 * MIB); /* Low: goes to every listener still there */
    assert_non_null(big);
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    hm_free(big);
    hm_heap_release(h);
    tenant_close(&t);
}

/* ---- warnings and panic, as luaL_newstate sets them ------------------------------------------ */
static void warn_child(void *arg) {
    (void)arg;
    lua_State *L = hm_luaL_newstate();
    lua_warning(L, "hidden", 0);
    lua_warning(L, "@on", 0);
    lua_warning(L, "one ", 1);
    lua_warning(L, "line", 0);
    lua_warning(L, "@off", 0);
    lua_warning(L, "hidden again", 0);
    lua_close(L);
}

static void panic_child(void *arg) {
    (void)arg;
    lua_State *L = hm_luaL_newstate();
    lua_pushstring(L, "boom");
    lua_error(L); /* outside any protected call */
}

static void test_warnings_and_panic(void **state) {
    (void)state;
    tu_child_result res;
    assert_int_equal(tu_run_child(warn_child, NULL, &res), 0);
    assert_true(WIFEXITED(res.status) && WEXITSTATUS(res.status) == 0);
    assert_string_equal(res.err, "Lua warning: one line\n");
    assert_int_equal(tu_run_child(panic_child, NULL, &res), 0);
    tu_assert_child_signaled(&res, SIGABRT);
    if (strstr(res.err, "boom") == NULL) fail_msg("panic message: %s", res.err);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dropin),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_budget_not_enough_memory),
        cmocka_unit_test(test_creation_refused),
        cmocka_unit_test(test_fault_injection_each_level),
        cmocka_unit_test(test_low_collects),
        cmocka_unit_test(test_low_keeps_user_hook),
        cmocka_unit_test(test_close_removes_listener),
        cmocka_unit_test(test_warnings_and_panic),
    };
    return TU_MAIN(tests);
}
