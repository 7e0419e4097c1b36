/* SPDX-License-Identifier: MIT */
/* test_python.c: the CPython 3.11 adapter (runtimes/python): the three domains on IHostMalloc
 * instances, installation rules, pymalloc's arenas taken from the MEM/OBJ instance (and a
 * refused arena giving MemoryError), tight budgets giving MemoryError and recovery, fault
 * injection at each level, and Low turned into gc.collect() under the GIL by the helper
 * thread (with the effect on the heap's peak measured), in both modes of the adapter (pymalloc
 * with its arenas on the host, and every request an IHostMalloc call). Each test runs its
 * interpreter in a child process (an interpreter is installed and started once per process);
 * the child reports a failed check on stderr and with its exit status. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <hostmalloc/hm_python.h>

#include "test_util.h"

#define MIB TU_MIB

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            if (PyErr_Occurred()) PyErr_Print();                                                   \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

static hm_config test_cfg(size_t limit) {
    hm_config c = tu_test_config(limit);
    c.fault_seed = 5; /* the seed the fault-injection expectations below were made with */
    return c;
}

typedef struct {
    IHostMemoryManager *mm;
    IHostMalloc *raw, *mem_obj;
    hm_manager *mgr;
} tenant;

static void tenant_open(tenant *t, const hm_config *cfg) {
    CHECK(hm_create_host_memory_manager(cfg, &t->mm) == S_OK);
    CHECK(IHostMemoryManager_CreateMalloc(t->mm, MALLOC_THREADSAFE, &t->raw) == S_OK);
    CHECK(IHostMemoryManager_CreateMalloc(t->mm, 0, &t->mem_obj) == S_OK);
    t->mgr = hm_heap_manager(hm_malloc_heap(t->raw));
}

static void run_child(tu_child_fn fn, void *arg) {
    tu_child_result res;
    assert_int_equal(tu_run_child(fn, arg, &res), 0);
    char buf[96];
    if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
        fail_msg("child %s:\n%s", tu_status_str(res.status, buf, sizeof buf), res.err);
    if (res.err_len > 0) print_message("%s", res.err);
}

/* Run Python source in __main__; false when it raised. */
static bool py_run(const char *src) {
    return PyRun_SimpleString(src) == 0;
}

static long main_long(const char *name) {
    PyObject *v = PyDict_GetItemString(PyModule_GetDict(PyImport_AddModule("__main__")), name);
    CHECK(v != NULL);
    return PyLong_AsLong(v);
}

static PyObject *main_fn(const char *name) {
    PyObject *v = PyDict_GetItemString(PyModule_GetDict(PyImport_AddModule("__main__")), name);
    CHECK(v != NULL && PyCallable_Check(v));
    return v;
}

/* ---- installation and a real workload ----------------------------------------------------- */
static void child_runs(void *arg) {
    bool pymalloc = arg != NULL;
    hm_config cfg = test_cfg(512 * MIB);
    tenant t;
    tenant_open(&t, &cfg);
    hm_python_policy bad;
    hm_python_policy_init(&bad);
    bad.obj = (EMemoryCriticalLevel)3;
    CHECK(hm_python_install(t.raw, t.mem_obj, &bad) == -1);
    CHECK(!hm_python_set_policy(&bad)); /* not installed */
    CHECK(hm_python_install(t.raw, NULL, NULL) == -1);
    hm_python_policy p;
    hm_python_policy_init(&p);
    CHECK(p.pymalloc); /* the default */
    p.pymalloc = pymalloc;
    CHECK(hm_python_install(t.raw, t.mem_obj, &p) == 0);
    CHECK(hm_python_install(t.raw, t.mem_obj, NULL) == -1); /* once */
    hm_python_stats st;
    hm_python_get_stats(&st);
    CHECK(st.pymalloc == pymalloc);
    Py_Initialize();
    CHECK(py_run("import json, threading, collections, decimal\n"
                 "d = {str(i): [i, str(i) * 3, {'k': i}] for i in range(20000)}\n"
                 "s = json.dumps(d)\n"
                 "assert json.loads(s) == d\n"
                 "c = collections.Counter(w for w in s.split(',') if len(w) < 8)\n"
                 "out = []\n"
                 "def work(n):\n"
                 "    out.append(sum(len(str(x) * 2) for x in range(n)))\n"
                 "th = [threading.Thread(target=work, args=(10000 * (i + 1),)) for i in range(4)]\n"
                 "[x.start() for x in th]; [x.join() for x in th]\n"
                 "total = sum(out) + len(c) + int(decimal.Decimal(1) / 7 * 10**6)\n"));
    CHECK(main_long("total") > 0);
    /* Python's memory is the instances' */
    hm_heap_stats_t raw, mo;
    hm_heap_stats(hm_malloc_heap(t.raw), &raw);
    hm_heap_stats(hm_malloc_heap(t.mem_obj), &mo);
    CHECK(raw.live_blocks > 10);
    CHECK(raw.requests[eAppDomainCritical] > 10); /* RAW: AppDomain */
    hm_python_get_stats(&st);
    CHECK(st.arena_blocks > 0); /* at least the frame stack, on RAW */
    if (pymalloc) {
        /* pymalloc's arenas, 1 MiB each, and its larger requests: MEM and OBJ's, at task
         * level, on the MEM/OBJ instance */
        CHECK(mo.requests[eTaskCritical] > 100);
        CHECK(mo.requests[eAppDomainCritical] == 0 && mo.requests[eProcessCritical] == 0);
        CHECK(st.arena_bytes >= st.arena_blocks * 16384);
        CHECK(mo.live_bytes >= 4 * MIB);
    } else {
        CHECK(mo.live_blocks > 20000);
        CHECK(mo.requests[eTaskCritical] > 20000); /* MEM and OBJ: task by default */
    }
    CHECK(!hm_python_set_policy(&bad));
    CHECK(Py_FinalizeEx() == 0);
}

static void test_install_and_run(void **state) {
    (void)state;
    run_child(child_runs, (void *)1);
    run_child(child_runs, NULL);
}

/* ---- pymalloc's arenas are the host's ----------------------------------------------------- */
static size_t heap_committed(IHostMalloc *m) {
    hm_heap_stats_t st;
    hm_heap_stats(hm_malloc_heap(m), &st);
    return st.committed;
}

static size_t heap_blocks(IHostMalloc *m) {
    hm_heap_stats_t st;
    hm_heap_stats(hm_malloc_heap(m), &st);
    return st.live_blocks;
}

static void child_arenas(void *arg) {
    (void)arg;
    hm_config cfg = test_cfg(256 * MIB);
    tenant t;
    tenant_open(&t, &cfg);
    CHECK(hm_python_install(t.raw, t.mem_obj, NULL) == 0);
    Py_Initialize();
    CHECK(py_run("def make(n):\n"
                 "    return [(i, -i) for i in range(n)]\n"
                 "keep = None\n"));
    hm_python_stats st0, st1;
    hm_python_get_stats(&st0);
    size_t c0 = heap_committed(t.mem_obj), b0 = heap_blocks(t.mem_obj);
    /* 300000 tuples of two ints: 900000 small objects, some 40 MiB */
    CHECK(py_run("keep = make(300000)"));
    hm_python_get_stats(&st1);
    size_t c1 = heap_committed(t.mem_obj), b1 = heap_blocks(t.mem_obj);
    fprintf(stderr,
            "900000 small objects: MEM/OBJ heap committed %.1f -> %.1f MiB, blocks %zu -> %zu, "
            "arena allocator %zu -> %zu blocks\n",
            c0 / 1048576.0, c1 / 1048576.0, b0, b1, st0.arena_blocks, st1.arena_blocks);
    CHECK(c1 >= c0 + 30 * MIB);                       /* the objects are in the instance's heap */
    CHECK(b1 - b0 < 1000);                            /* in arenas of it, not one block each */
    CHECK(st1.arena_blocks >= st0.arena_blocks + 30); /* 1 MiB arenas */
    CHECK(st1.arena_bytes >= st0.arena_bytes + 30 * MIB);
    CHECK(py_run("keep = None"));
    hm_python_get_stats(&st1);
    CHECK(st1.arena_blocks < st0.arena_blocks + 10); /* empty arenas go back to the host */
    CHECK(Py_FinalizeEx() == 0);
}

static void test_arenas_from_host(void **state) {
    (void)state;
    run_child(child_arenas, NULL);
}

/* OBJ at a level where every request is refused: once pymalloc's pools are full, the arena it
 * asks for is refused, then the same small request passed on; Python raises MemoryError, and
 * goes on when the level is one the budget serves. */
static void child_arena_refused(void *arg) {
    (void)arg;
    hm_config cfg = test_cfg(256 * MIB);
    cfg.fault_probability[eTaskCritical] = 1.0;
    tenant t;
    tenant_open(&t, &cfg);
    hm_python_policy safe, faulty;
    hm_python_policy_init(&safe);
    safe.raw = safe.mem = safe.obj = eProcessCritical;
    faulty = safe;
    faulty.obj = eTaskCritical;
    CHECK(hm_python_install(t.raw, t.mem_obj, &safe) == 0);
    Py_Initialize();
    CHECK(py_run("def make(n):\n"
                 "    keep = [None] * n\n"
                 "    for i in range(n):\n"
                 "        keep[i] = (i, -i)\n"
                 "    return n\n"));
    PyObject *make = main_fn("make");
    Py_INCREF(make);
    PyObject *n = PyLong_FromLong(300000);
    hm_python_stats st0, st1;
    hm_python_get_stats(&st0);
    CHECK(hm_python_set_policy(&faulty));
    PyObject *r = PyObject_CallOneArg(make, n);
    CHECK(hm_python_set_policy(&safe));
    CHECK(r == NULL && PyErr_ExceptionMatches(PyExc_MemoryError));
    PyErr_Clear();
    hm_python_get_stats(&st1);
    CHECK(st1.refusals[2] >= st0.refusals[2] + 2); /* the arena, then the request passed on */
    CHECK(st1.refusals[0] == st0.refusals[0] && st1.refusals[1] == st0.refusals[1]);
    CHECK(st1.arena_blocks <= st0.arena_blocks + 1);
    hm_manager_stats_t ms;
    hm_manager_stats(t.mgr, &ms);
    CHECK(ms.faults_injected[eTaskCritical] >= 2);
    r = PyObject_CallOneArg(make, n); /* recovered */
    CHECK(r != NULL && PyLong_AsLong(r) == 300000);
    Py_DECREF(r);
    Py_DECREF(n);
    Py_DECREF(make);
    CHECK(Py_FinalizeEx() == 0);
}

static void test_refused_arena_memory_error(void **state) {
    (void)state;
    run_child(child_arena_refused, NULL);
}

static void child_after_init(void *arg) {
    (void)arg;
    hm_config cfg = test_cfg(256 * MIB);
    tenant t;
    tenant_open(&t, &cfg);
    Py_Initialize();
    CHECK(hm_python_install(t.raw, t.mem_obj, NULL) == -1);
    CHECK(py_run("x = [str(i) for i in range(1000)]"));
    hm_heap_stats_t mo;
    hm_heap_stats(hm_malloc_heap(t.mem_obj), &mo);
    CHECK(mo.live_blocks == 0); /* nothing went to the instance */
    CHECK(Py_FinalizeEx() == 0);
}

static void test_install_after_init_refused(void **state) {
    (void)state;
    run_child(child_after_init, NULL);
}

/* ---- budget ---------------------------------------------------------------------------------- */
typedef struct {
    size_t limit;
    bool pymalloc;
} budget_case;

/* Large blocks (passed on by pymalloc), then small objects (pymalloc's arenas), until
 * MemoryError, three rounds each; the interpreter works after each. */
static void child_memory_error(void *arg) {
    const budget_case *bc = arg;
    hm_config cfg = test_cfg(bc->limit);
    tenant t;
    tenant_open(&t, &cfg);
    hm_python_policy p;
    hm_python_policy_init(&p);
    p.pymalloc = bc->pymalloc;
    CHECK(hm_python_install(t.raw, t.mem_obj, &p) == 0);
    Py_Initialize();
    CHECK(py_run("import gc\n"
                 "results = 0\n"
                 "def fill(make):\n"
                 "    keep = []\n"
                 "    try:\n"
                 "        while True: keep.append(make(len(keep)))\n"
                 "    except MemoryError:\n"
                 "        pass\n"
                 "for make in (lambda i: bytes(10000) + str(i).encode(), lambda i: (i, str(i))):\n"
                 "    for rnd in range(3):\n"
                 "        fill(make)\n"
                 "        gc.collect()\n"
                 "        results += len(','.join(str(i) for i in range(1000)))\n"));
    CHECK(main_long("results") == 6 * 3889);
    hm_python_stats st;
    hm_python_get_stats(&st);
    CHECK(st.refusals[1] + st.refusals[2] >= 6);
    CHECK(Py_FinalizeEx() == 0);
}

static void test_memory_error_and_recovery(void **state) {
    (void)state;
    const budget_case cases[] = {
        {8 * MIB, true}, {48 * MIB, true}, {64 * MIB, true}, {8 * MIB, false}, {48 * MIB, false}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_child(child_memory_error, (void *)&cases[i]);
}

/* ---- fault injection at each level ------------------------------------------------------------
 */
static void child_faults(void *arg) {
    int level = (int)(intptr_t)arg & 3;
    bool pymalloc = ((intptr_t)arg & 4) != 0;
    int other = (level + 1) % 3; /* the interpreter starts and ends at a level without faults */
    hm_config cfg = test_cfg(512 * MIB);
    /* pymalloc asks the host far less often (arenas, requests over 512 bytes) */
    cfg.fault_probability[level] = pymalloc ? 0.02 : 0.002;
    tenant t;
    tenant_open(&t, &cfg);
    hm_python_policy safe, faulty;
    hm_python_policy_init(&safe);
    safe.pymalloc = pymalloc;
    safe.raw = safe.mem = safe.obj = (EMemoryCriticalLevel)other;
    faulty = safe;
    faulty.raw = faulty.mem = faulty.obj = (EMemoryCriticalLevel)level;
    CHECK(hm_python_install(t.raw, t.mem_obj, &safe) == 0);
    Py_Initialize();
    CHECK(py_run("def work():\n"
                 "    return len({i: str(i) * 2 for i in range(300)})\n"));
    PyObject *work = main_fn("work");
    Py_INCREF(work);
    CHECK(hm_python_set_policy(&faulty));
    int nomem = 0, ok = 0;
    for (int i = 0; i < 300; i++) {
        PyObject *r = PyObject_CallNoArgs(work);
        if (r != NULL) {
            CHECK(PyLong_AsLong(r) == 300);
            ok++;
            Py_DECREF(r);
        } else {
            CHECK(PyErr_ExceptionMatches(PyExc_MemoryError));
            PyErr_Clear();
            nomem++;
        }
    }
    CHECK(hm_python_set_policy(&safe));
    Py_DECREF(work);
    if (nomem == 0 || ok == 0) {
        fprintf(stderr, "level %d: %d MemoryError, %d fine\n", level, nomem, ok);
        _exit(1);
    }
    hm_manager_stats_t ms;
    hm_manager_stats(t.mgr, &ms);
    for (int l = 0; l < 3; l++)
        CHECK(l == level ? ms.faults_injected[l] > 0 : ms.faults_injected[l] == 0);
    CHECK(Py_FinalizeEx() == 0);
}

static void test_fault_injection_each_level(void **state) {
    (void)state;
    for (intptr_t level = 0; level < 3; level++) {
        run_child(child_faults, (void *)(level | 4)); /* pymalloc */
        run_child(child_faults, (void *)level);
    }
}

/* ---- the helper's thread state, made while every request is refused ----------------------- */
/* The helper thread makes its thread state when its poll (every 20 ms) first sees the
 * interpreter running; CPython cannot survive a refusal of that allocation. Here every RAW
 * request is refused from just after initialization while the main thread lets the GIL go: the
 * helper's request is refused (the manager counts the injected fault), served from the
 * adapter's reserve, and freed at finalization. The interpreter starts without `site`, so that
 * it reads as initialized only at the end of Py_InitializeFromConfig. Exit 3: the helper made
 * its thread state before the refusals began (a window of microseconds), not this case. */
static void child_helper_refused(void *arg) {
    hm_config cfg = test_cfg(512 * MIB);
    cfg.fault_probability[eProcessCritical] = 1.0; /* every request at this level refused */
    tenant t;
    tenant_open(&t, &cfg);
    hm_python_policy safe, refusing;
    hm_python_policy_init(&safe);
    safe.pymalloc = arg != NULL;
    CHECK(safe.raw != eProcessCritical && safe.mem != eProcessCritical &&
          safe.obj != eProcessCritical);
    CHECK(hm_python_install(t.raw, t.mem_obj, &safe) == 0);
    PyConfig pc;
    PyConfig_InitPythonConfig(&pc);
    pc.site_import = 0;
    CHECK(!PyStatus_Exception(Py_InitializeFromConfig(&pc)));
    PyConfig_Clear(&pc);
    refusing = safe;
    refusing.raw = eProcessCritical;
    CHECK(hm_python_set_policy(&refusing));
    PyThreadState *ts = PyEval_SaveThread(); /* the GIL let go: */
    usleep(200 * 1000);                      /* the helper makes its thread state now */
    PyEval_RestoreThread(ts);
    CHECK(hm_python_set_policy(&safe));
    hm_manager_stats_t ms;
    hm_manager_stats(t.mgr, &ms);
    if (ms.faults_injected[eProcessCritical] == 0) _exit(3);
    hm_python_stats st;
    hm_python_get_stats(&st);
    CHECK(st.refusals[0] == ms.faults_injected[eProcessCritical]); /* the helper's, counted */
    CHECK(py_run("x = len([str(i) for i in range(1000)])"));
    CHECK(main_long("x") == 1000);
    CHECK(Py_FinalizeEx() == 0); /* the thread state in the reserve is freed and left */
}

static void test_helper_thread_state_refused(void **state) {
    (void)state;
    for (intptr_t pymalloc = 0; pymalloc < 2; pymalloc++) {
        for (int tries = 0;; tries++) {
            tu_child_result res;
            assert_int_equal(tu_run_child(child_helper_refused, (void *)pymalloc, &res), 0);
            if (WIFEXITED(res.status) && WEXITSTATUS(res.status) == 3 && tries < 9) continue;
            char buf[96];
            if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
                fail_msg("child %s:\n%s", tu_status_str(res.status, buf, sizeof buf), res.err);
            break;
        }
    }
}

/* ---- Low -> gc.collect() ------------------------------------------------------------------- */
static void child_low(void *arg) {
    bool bridge = ((intptr_t)arg & 1) != 0, pymalloc = ((intptr_t)arg & 2) != 0;
    hm_config cfg = test_cfg(128 * MIB);
    tenant t;
    tenant_open(&t, &cfg);
    hm_python_policy p;
    hm_python_policy_init(&p);
    p.collect_on_low = bridge;
    p.pymalloc = pymalloc;
    CHECK(hm_python_install(t.raw, t.mem_obj, &p) == 0);
    Py_Initialize();
    /* garbage in reference cycles with the collector disabled: only gc.collect() frees it */
    CHECK(py_run("import gc\n"
                 "gc.disable()\n"
                 "def make_cycles():\n"
                 "    for i in range(2000):\n"
                 "        a = [None] * 100\n"
                 "        a[0] = a\n"));
    PyObject *make = main_fn("make_cycles");
    Py_INCREF(make);
    hm_python_stats st;
    int calls = 0, errors = 0;
    for (; calls < 2000; calls++) {
        hm_python_get_stats(&st);
        if (bridge ? st.collections > 0 : errors > 0) break;
        PyObject *r = PyObject_CallNoArgs(make);
        if (r == NULL) {
            CHECK(PyErr_ExceptionMatches(PyExc_MemoryError));
            PyErr_Clear();
            errors++;
        }
        Py_XDECREF(r);
    }
    Py_DECREF(make);
    hm_python_get_stats(&st);
    hm_heap_stats_t mo;
    hm_heap_stats(hm_malloc_heap(t.mem_obj), &mo);
    fprintf(stderr,
            "%s, Low -> gc.collect() %s: %d calls, %zu Low heard, %zu collections, "
            "%d MemoryError, heap peak %.1f MiB of a 128 MiB budget\n",
            pymalloc ? "pymalloc" : "host", bridge ? "on" : "off", calls, st.low_notes,
            st.collections, errors, mo.peak_committed / 1048576.0);
    CHECK(st.low_notes > 0);
    CHECK(bridge ? st.collections > 0 : st.collections == 0);
    /* memory may be full of cycles: collect from C (compiling code would need memory) */
    PyGC_Enable();
    PyGC_Collect();
    CHECK(py_run("gc.collect()"));
    CHECK(Py_FinalizeEx() == 0);
}

static void test_low_collects(void **state) {
    (void)state;
    for (intptr_t mode = 0; mode < 4; mode++)
        run_child(child_low, (void *)mode);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_and_run),
        cmocka_unit_test(test_install_after_init_refused),
        cmocka_unit_test(test_arenas_from_host),
        cmocka_unit_test(test_refused_arena_memory_error),
        cmocka_unit_test(test_memory_error_and_recovery),
        cmocka_unit_test(test_fault_injection_each_level),
        cmocka_unit_test(test_helper_thread_state_refused),
        cmocka_unit_test(test_low_collects),
    };
    return TU_MAIN(tests);
}
