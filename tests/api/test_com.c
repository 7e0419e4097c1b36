/* SPDX-License-Identifier: MIT */
/* tests/api/test_com.c: conformance of the COM door (docs/CONTRACT.md, sections 4 and 6).
 *
 * Everything goes through hm_create_host_memory_manager() and the vtables: reference counting,
 * QueryInterface, CreateMalloc, Alloc/DebugAlloc/Free with every bad input the spec names,
 * arena release of an instance, executable instances and thread safety. Each test function is
 * registered with CTest on its own (see CMakeLists.txt), so a crash in one does not hide others. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <hostmalloc/hosting.h>
#include <hostmalloc/hostmalloc.h>

#include "test_util.h"
#include "tu_com.h"

#define LEVELS 3
static const EMemoryCriticalLevel k_levels[LEVELS] = {eTaskCritical, eAppDomainCritical,
                                                      eProcessCritical};

/* The sizes every allocation test walks through. */
static const size_t k_sizes[] = {TU_ALLOC_SIZES};

/* ---- helpers ----------------------------------------------------------------------------------
 */

/* Check the reference count of an object through AddRef/Release return values: AddRef must
 * return expected+1 and the matching Release `expected`. */
#define assert_refcount(iface, obj, expected)                                                      \
    do {                                                                                           \
        ULONG a_ = iface##_AddRef(obj);                                                            \
        ULONG r_ = iface##_Release(obj);                                                           \
        if (a_ != (ULONG)(expected) + 1 || r_ != (ULONG)(expected))                                \
            fail_msg("%s: AddRef returned %u and Release %u; expected a count of %u", #obj, a_,    \
                     r_, (unsigned)(expected));                                                    \
    } while (0)

/* The instance still serves requests: alloc, write, free of a few sizes. */
static void instance_still_works(IHostMalloc *m, const char *after) {
    static const size_t sizes[] = {0, 16, 256, 5000, 100000, 2 << 20};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        void *p = GARBAGE;
        HRESULT hr = IHostMalloc_Alloc(m, sizes[i], eTaskCritical, &p);
        if (hr != S_OK || p == NULL || p == GARBAGE)
            fail_msg("after %s: Alloc(%zu) returned 0x%08x, %p", after, sizes[i], HR(hr), p);
        memset(p, 0xA5, sizes[i]);
        hr = IHostMalloc_Free(m, p);
        if (hr != S_OK) fail_msg("after %s: Free returned 0x%08x", after, HR(hr));
    }
}

/* Free(bad) must answer HOST_E_INVALIDOPERATION and leave the instance as it was. */
static void expect_bad_free(IHostMalloc *m, void *bad, const char *what, const witness *w) {
    HRESULT hr = IHostMalloc_Free(m, bad);
    if (hr != HOST_E_INVALIDOPERATION)
        fail_msg("Free(%s = %p) returned 0x%08x, expected HOST_E_INVALIDOPERATION (0x80131022)",
                 what, bad, HR(hr));
    if (w) witness_check(w, what);
    instance_still_works(m, what);
}

/* ---- manager creation and reference counting --------------------------------------------------
 */
static void test_create_manager(void **state) {
    (void)state;
    assert_hr(hm_create_host_memory_manager(NULL, NULL), E_POINTER);
    hm_config cfg;
    hm_config_init(&cfg);
    assert_hr(hm_create_host_memory_manager(&cfg, NULL), E_POINTER);

    IHostMemoryManager *mgr = new_manager();
    assert_int_equal(IHostMemoryManager_AddRef(mgr), 2);
    assert_int_equal(IHostMemoryManager_Release(mgr), 1);

    IHostMemoryManager *mgr2 = new_manager_cfg(&cfg);
    assert_ptr_not_equal(mgr, mgr2);
    assert_refcount(IHostMemoryManager, mgr2, 1);
    IHostMalloc *m = new_malloc(mgr2, MALLOC_THREADSAFE);
    must_free(m, must_alloc(m, 100, eTaskCritical));
    assert_int_equal(IHostMalloc_Release(m), 0);

    assert_int_equal(IHostMemoryManager_Release(mgr2), 0);
    assert_int_equal(IHostMemoryManager_Release(mgr), 0);
}

/* ---- CreateMalloc
 * -------------------------------------------------------------------------------- */
/* Release inst[0..n), each its last reference. */
static void release_all(IHostMalloc *const *inst, size_t n) {
    for (size_t i = 0; i < n; i++)
        assert_int_equal(IHostMalloc_Release(inst[i]), 0);
}

static void test_create_malloc_flags(void **state) {
    (void)state;
    IHostMemoryManager *mgr = new_manager();
    IHostMalloc *inst[4];
    for (DWORD t = 0; t < 4; t++) {
        inst[t] = new_malloc(mgr, t);
        assert_refcount(IHostMalloc, inst[t], 1);
        for (DWORD u = 0; u < t; u++)
            if (inst[u] == inst[t]) fail_msg("CreateMalloc(%u) returned the instance of %u", t, u);
        must_free(inst[t], must_alloc(inst[t], 64, eTaskCritical));
    }
    /* A second CreateMalloc with the same type is a new instance too. */
    IHostMalloc *again = new_malloc(mgr, MALLOC_THREADSAFE);
    for (int t = 0; t < 4; t++)
        assert_ptr_not_equal(again, inst[t]);
    assert_int_equal(IHostMalloc_Release(again), 0);
    release_all(inst, 4);
    assert_int_equal(IHostMemoryManager_Release(mgr), 0);
}

static void test_create_malloc_bad_args(void **state) {
    (void)state;
    IHostMemoryManager *mgr = new_manager();
    static const DWORD bad[] = {4,    5,     7,           8,           0x10,
                                0xFF, 0x100, 0x80000000u, 0x80000001u, 0xFFFFFFFFu};
    for (size_t i = 0; i < TU_ARRAY_SIZE(bad); i++) {
        IHostMalloc *m = GARBAGE;
        HRESULT hr = IHostMemoryManager_CreateMalloc(mgr, bad[i], &m);
        if (hr != E_INVALIDARG)
            fail_msg("CreateMalloc(0x%x) returned 0x%08x, expected E_INVALIDARG", bad[i], HR(hr));
        if (m != NULL) fail_msg("CreateMalloc(0x%x) left *ppMalloc = %p, expected NULL", bad[i], m);
    }
    for (DWORD t = 0; t < 4; t++)
        assert_hr(IHostMemoryManager_CreateMalloc(mgr, t, NULL), E_POINTER);
    /* Nothing leaked a reference on the manager. */
    assert_refcount(IHostMemoryManager, mgr, 1);
    assert_int_equal(IHostMemoryManager_Release(mgr), 0);
}

/* ---- QueryInterface
 * -------------------------------------------------------------------------------- */
/* IIDs built from their registry form here, so an implementation comparing IID pointers instead
 * of their contents fails. */
static const IID k_iid_unknown = {
    0x00000000, 0x0000, 0x0000, {0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46}};
static const IID k_iid_malloc = {
    0x1831991C, 0xCC53, 0x4A31, {0xB2, 0x18, 0x04, 0xE9, 0x10, 0x44, 0x64, 0x79}};
static const IID k_iid_manager = {
    0x7BC698D1, 0xF9E3, 0x4460, {0x9C, 0xDE, 0xD0, 0x42, 0x48, 0xE9, 0xFA, 0x25}};
static const IID k_iid_random = {
    0x12345678, 0x9ABC, 0xDEF0, {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}};

/* `iid` with one bit flipped, in Data1 or in the last byte of Data4: no longer a match. */
static IID iid_flipped(IID iid, bool in_data4) {
    if (in_data4)
        iid.Data4[7] ^= 1;
    else
        iid.Data1 ^= 1;
    return iid;
}

typedef HRESULT (*qi_fn)(void *self, REFIID riid, void **ppv);
typedef ULONG (*ref_fn)(void *self);

/* Typed thunks, so the generic helpers below call each method through its own type:
 * <prefix>_qi, <prefix>_addref and <prefix>_release of interface `iface`. */
#define UNK_THUNKS(prefix, iface)                                                                  \
    static HRESULT prefix##_qi(void *s, REFIID riid, void **ppv) {                                 \
        return iface##_QueryInterface((iface *)s, riid, ppv);                                      \
    }                                                                                              \
    static ULONG prefix##_addref(void *s) {                                                        \
        return iface##_AddRef((iface *)s);                                                         \
    }                                                                                              \
    static ULONG prefix##_release(void *s) {                                                       \
        return iface##_Release((iface *)s);                                                        \
    }
UNK_THUNKS(mgr, IHostMemoryManager)
UNK_THUNKS(mal, IHostMalloc)

/* One object seen through its IUnknown slots (the first three of every vtable). */
typedef struct unk {
    void *self;
    qi_fn qi;
    ref_fn addref;
    ref_fn release;
    const char *name;
} unk;

static void qi_must_succeed(const unk *o, const IID *iid, const char *iid_name,
                            ULONG count_before) {
    void *pv = GARBAGE;
    HRESULT hr = o->qi(o->self, iid, &pv);
    if (hr != S_OK)
        fail_msg("%s->QueryInterface(%s) returned 0x%08x, expected S_OK", o->name, iid_name,
                 HR(hr));
    if (pv != o->self)
        fail_msg("%s->QueryInterface(%s) gave %p, expected the object itself %p", o->name, iid_name,
                 pv, o->self);
    /* It carries one reference. */
    ULONG a = o->addref(o->self);
    ULONG r1 = o->release(o->self);
    ULONG r2 = o->release(o->self);
    if (a != count_before + 2 || r1 != count_before + 1 || r2 != count_before)
        fail_msg("%s->QueryInterface(%s) did not add exactly one reference (AddRef %u, Release "
                 "%u then %u; count before %u)",
                 o->name, iid_name, a, r1, r2, count_before);
}

static void qi_must_fail(const unk *o, const IID *iid, const char *iid_name, ULONG count_before) {
    void *pv = GARBAGE;
    HRESULT hr = o->qi(o->self, iid, &pv);
    if (hr != E_NOINTERFACE)
        fail_msg("%s->QueryInterface(%s) returned 0x%08x, expected E_NOINTERFACE", o->name,
                 iid_name, HR(hr));
    if (pv != NULL)
        fail_msg("%s->QueryInterface(%s) failed but left *ppv = %p, expected NULL", o->name,
                 iid_name, pv);
    ULONG a = o->addref(o->self);
    ULONG r = o->release(o->self);
    if (a != count_before + 1 || r != count_before)
        fail_msg("%s->QueryInterface(%s) failed but changed the count (AddRef %u, Release %u)",
                 o->name, iid_name, a, r);
}

static void qi_bad_pointers(const unk *o, const IID *own) {
    HRESULT hr = o->qi(o->self, own, NULL);
    if (hr != E_POINTER)
        fail_msg("%s->QueryInterface(own IID, NULL) returned 0x%08x, expected E_POINTER", o->name,
                 HR(hr));
    void *pv = GARBAGE;
    hr = o->qi(o->self, NULL, &pv);
    if (hr != E_POINTER && hr != E_INVALIDARG)
        fail_msg("%s->QueryInterface(NULL, &pv) returned 0x%08x, expected E_POINTER or "
                 "E_INVALIDARG",
                 o->name, HR(hr));
    if (pv != NULL && pv != GARBAGE)
        fail_msg("%s->QueryInterface(NULL, &pv) failed but stored %p", o->name, pv);
    hr = o->qi(o->self, NULL, NULL);
    if (hr != E_POINTER && hr != E_INVALIDARG)
        fail_msg("%s->QueryInterface(NULL, NULL) returned 0x%08x, expected E_POINTER or "
                 "E_INVALIDARG",
                 o->name, HR(hr));
}

/* Every IID asked of every object: the object's own (`own`: QI_MANAGER or QI_MALLOC), IUnknown
 * and their copies must succeed, all others must fail. */
enum { QI_MANAGER = 1, QI_MALLOC = 2, QI_ANY = 3 };

static void qi_all(const unk *o, unsigned own) {
    const IID d1 = iid_flipped(k_iid_malloc, false), d4 = iid_flipped(k_iid_malloc, true);
    const struct {
        const IID *iid;
        const char *name;
        unsigned of;
    } cases[] = {
        {&IID_IUnknown, "IID_IUnknown", QI_ANY},
        {&k_iid_unknown, "a copy of IID_IUnknown", QI_ANY},
        {&IID_IHostMemoryManager, "IID_IHostMemoryManager", QI_MANAGER},
        {&k_iid_manager, "a copy of IID_IHostMemoryManager", QI_MANAGER},
        {&IID_IHostMalloc, "IID_IHostMalloc", QI_MALLOC},
        {&k_iid_malloc, "a copy of IID_IHostMalloc", QI_MALLOC},
        {&IID_ICLRMemoryNotificationCallback, "IID_ICLRMemoryNotificationCallback", 0},
        {&k_iid_random, "a random IID", 0},
        {&d1, "IID_IHostMalloc with Data1 changed", 0},
        {&d4, "IID_IHostMalloc with Data4[7] changed", 0},
    };
    for (size_t i = 0; i < TU_ARRAY_SIZE(cases); i++) {
        if (cases[i].of & own)
            qi_must_succeed(o, cases[i].iid, cases[i].name, 1);
        else
            qi_must_fail(o, cases[i].iid, cases[i].name, 1);
    }
}

static void test_query_interface_manager(void **state) {
    (void)state;
    IHostMemoryManager *mgr = new_manager();
    unk o = {mgr, mgr_qi, mgr_addref, mgr_release, "IHostMemoryManager"};
    qi_all(&o, QI_MANAGER);
    qi_bad_pointers(&o, &IID_IHostMemoryManager);
    assert_refcount(IHostMemoryManager, mgr, 1);

    /* Through the macro, as a caller writes it. */
    IHostMemoryManager *q = GARBAGE;
    assert_hr(IHostMemoryManager_QueryInterface(mgr, &IID_IHostMemoryManager, (void **)&q), S_OK);
    assert_ptr_equal(q, mgr);
    assert_int_equal(IHostMemoryManager_Release(q), 1);
    assert_int_equal(IHostMemoryManager_Release(mgr), 0);
}

static void test_query_interface_malloc(void **state) {
    (void)state;
    IHostMemoryManager *mgr = new_manager();
    for (DWORD t = 0; t < 4; t++) {
        IHostMalloc *m = new_malloc(mgr, t);
        unk o = {m, mal_qi, mal_addref, mal_release, "IHostMalloc"};
        qi_all(&o, QI_MALLOC);
        qi_bad_pointers(&o, &IID_IHostMalloc);
        assert_refcount(IHostMalloc, m, 1);
        assert_int_equal(IHostMalloc_Release(m), 0);
    }
    assert_int_equal(IHostMemoryManager_Release(mgr), 0);
}

/* ---- atomic reference counts
 * --------------------------------------------------------------------- */
#define REF_THREADS 4
#define REF_ROUNDS  100000

typedef struct ref_ctx {
    unk obj;
    pthread_barrier_t *barrier;
    int bad; /* a return value that cannot be right (count not above the main reference) */
} ref_ctx;

static void *ref_thread(void *arg) {
    ref_ctx *c = arg;
    pthread_barrier_wait(c->barrier);
    for (int i = 0; i < REF_ROUNDS; i++)
        if (c->obj.addref(c->obj.self) < 2) c->bad++;
    for (int i = 0; i < REF_ROUNDS; i++)
        if (c->obj.release(c->obj.self) < 1) c->bad++;
    return NULL;
}

static void hammer_refcount(const unk *o) {
    pthread_t th[REF_THREADS];
    ref_ctx ctx[REF_THREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, REF_THREADS);
    for (int i = 0; i < REF_THREADS; i++) {
        ctx[i] = (ref_ctx){*o, &barrier, 0};
        assert_int_equal(pthread_create(&th[i], NULL, ref_thread, &ctx[i]), 0);
    }
    int bad = 0;
    for (int i = 0; i < REF_THREADS; i++) {
        pthread_join(th[i], NULL);
        bad += ctx[i].bad;
    }
    pthread_barrier_destroy(&barrier);
    if (bad) fail_msg("%s: %d AddRef/Release results were impossible", o->name, bad);
    ULONG a = o->addref(o->self);
    ULONG r = o->release(o->self);
    if (a != 2 || r != 1)
        fail_msg("%s: after %d threads x %d AddRef+Release the count is wrong (AddRef %u, "
                 "Release %u; expected 2, 1)",
                 o->name, REF_THREADS, REF_ROUNDS, a, r);
}

static void test_refcount_atomic(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    IHostMemoryManager *mgr = new_manager();
    IHostMalloc *m = new_malloc(mgr, MALLOC_THREADSAFE);
    unk om = {mgr, mgr_qi, mgr_addref, mgr_release, "IHostMemoryManager"};
    unk oi = {m, mal_qi, mal_addref, mal_release, "IHostMalloc"};
    hammer_refcount(&oi);
    /* The manager's count while it has an instance may include the instance's own reference;
     * hammer it on a manager with no instance. */
    IHostMemoryManager *mgr2 = new_manager();
    unk om2 = om;
    om2.self = mgr2;
    hammer_refcount(&om2);
    assert_int_equal(IHostMemoryManager_Release(mgr2), 0);
    /* The instance still works after all that. */
    must_free(m, must_alloc(m, 1000, eTaskCritical));
    assert_int_equal(IHostMalloc_Release(m), 0);
    IHostMemoryManager_Release(mgr);
}

/* ---- lifetime
 * ------------------------------------------------------------------------------------- */
static void test_manager_outlived_by_instance(void **state) {
    (void)state;
    IHostMemoryManager *mgr = new_manager();
    IHostMalloc *m = new_malloc(mgr, MALLOC_THREADSAFE);
    IHostMalloc *x = new_malloc(mgr, MALLOC_EXECUTABLE);
    witness w = witness_new(m, 3000, 7);
    IHostMemoryManager_Release(mgr); /* the caller's last reference */

    /* Churn another manager so freed memory of the first would be reused. */
    for (int i = 0; i < 4; i++) {
        IHostMemoryManager *other = new_manager();
        IHostMalloc *om = new_malloc(other, MALLOC_THREADSAFE);
        void *p = must_alloc(om, 200, eTaskCritical);
        memset(p, 0xEE, 200);
        must_free(om, p);
        IHostMalloc_Release(om);
        IHostMemoryManager_Release(other);
    }

    witness_check(&w, "releasing the manager");
    void *blocks[64];
    for (int i = 0; i < 64; i++) {
        size_t sz = (size_t)(i * 977 % 70000) + 1;
        blocks[i] = must_alloc(m, sz, k_levels[i % LEVELS]);
        memset(blocks[i], i, sz);
    }
    void *big = must_alloc(m, 6 << 20, eAppDomainCritical);
    memset(big, 1, 6 << 20);
    for (int i = 0; i < 64; i++)
        must_free(m, blocks[i]);
    must_free(m, big);
    instance_still_works(m, "releasing the manager");
    instance_still_works(x, "releasing the manager");
    must_free(m, w.p);
    assert_int_equal(IHostMalloc_Release(x), 0);
    assert_int_equal(IHostMalloc_Release(m), 0);
}

/* ---- Alloc
 * ------------------------------------------------------------------------------------------ */
static void alloc_sizes(IHostMalloc *m, int debug) {
    char file[] = "test_com.c";
    for (int l = 0; l < LEVELS; l++) {
        void *blocks[TU_ARRAY_SIZE(k_sizes)];
        for (size_t i = 0; i < TU_ARRAY_SIZE(k_sizes); i++) {
            size_t sz = k_sizes[i];
            void *p = GARBAGE;
            HRESULT hr = debug ? IHostMalloc_DebugAlloc(m, sz, k_levels[l], (i & 1) ? NULL : file,
                                                        (int)i + 1, &p)
                               : IHostMalloc_Alloc(m, sz, k_levels[l], &p);
            if (hr != S_OK)
                fail_msg("%s(%zu, level %d) returned 0x%08x, expected S_OK",
                         debug ? "DebugAlloc" : "Alloc", sz, l, HR(hr));
            if (p == NULL || p == GARBAGE)
                fail_msg("%s(%zu, level %d) gave %p", debug ? "DebugAlloc" : "Alloc", sz, l, p);
            if (!tu_is_aligned(p, 16))
                fail_msg("%s(%zu) gave %p: not 16-byte aligned", debug ? "DebugAlloc" : "Alloc", sz,
                         p);
            tu_fill(p, sz, (unsigned)(i + 31 * l));
            blocks[i] = p;
        }
        /* All blocks were live together: none overlapped another. */
        for (size_t i = 0; i < TU_ARRAY_SIZE(k_sizes); i++) {
            size_t bad = tu_check(blocks[i], k_sizes[i], (unsigned)(i + 31 * l));
            if (bad != k_sizes[i])
                fail_msg("block of %zu bytes at %p (level %d) changed at offset %zu", k_sizes[i],
                         blocks[i], l, bad);
        }
        for (size_t i = 0; i < TU_ARRAY_SIZE(k_sizes); i++)
            must_free(m, blocks[i]);
    }
}

/* fn(m, debug) on an instance of each of the four types, all of one manager. */
static void on_each_type(void (*fn)(IHostMalloc *m, int debug), int debug) {
    IHostMemoryManager *mgr = new_manager();
    for (DWORD t = 0; t < 4; t++) {
        IHostMalloc *m = new_malloc(mgr, t);
        fn(m, debug);
        IHostMalloc_Release(m);
    }
    IHostMemoryManager_Release(mgr);
}

static void test_alloc_sizes(void **state) {
    (void)state;
    on_each_type(alloc_sizes, 0);
}

static void zero_size_unique(IHostMalloc *m, int debug) {
    char file[] = "zero.c";
    for (int l = 0; l < LEVELS; l++) {
        void *p[8];
        for (int i = 0; i < 8; i++) {
            p[i] = GARBAGE;
            HRESULT hr = debug ? IHostMalloc_DebugAlloc(m, 0, k_levels[l], file, i, &p[i])
                               : IHostMalloc_Alloc(m, 0, k_levels[l], &p[i]);
            if (hr != S_OK || p[i] == NULL || p[i] == GARBAGE)
                fail_msg("%s(0, level %d) returned 0x%08x, %p", debug ? "DebugAlloc" : "Alloc", l,
                         HR(hr), p[i]);
            assert_true(tu_is_aligned(p[i], 16));
            for (int j = 0; j < i; j++)
                if (p[j] == p[i]) fail_msg("two live size-0 blocks share the address %p", p[i]);
        }
        for (int i = 0; i < 8; i++)
            must_free(m, p[i]);
    }
}

static void test_alloc_zero_unique(void **state) {
    (void)state;
    IHostMemoryManager *mgr = new_manager();
    IHostMalloc *m = new_malloc(mgr, MALLOC_THREADSAFE);
    zero_size_unique(m, 0);
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mgr);
}

/* Bad level, NULL ppMem, impossible sizes: as Alloc or as DebugAlloc. */
static void alloc_bad_args(IHostMalloc *m, int debug) {
    char file[] = "bad.c";
    const char *fn = debug ? "DebugAlloc" : "Alloc";
    witness w = witness_new(m, 4000, 3);
    static const int bad_levels[] = {3, 4, -1, 100, INT_MAX, INT_MIN};
    for (size_t i = 0; i < TU_ARRAY_SIZE(bad_levels); i++) {
        void *p = GARBAGE;
        EMemoryCriticalLevel lvl = (EMemoryCriticalLevel)bad_levels[i];
        HRESULT hr = debug ? IHostMalloc_DebugAlloc(m, 64, lvl, file, 1, &p)
                           : IHostMalloc_Alloc(m, 64, lvl, &p);
        if (hr != E_INVALIDARG)
            fail_msg("%s(64, level %d) returned 0x%08x, expected E_INVALIDARG", fn, bad_levels[i],
                     HR(hr));
        if (p != NULL) fail_msg("%s(64, level %d) left *ppMem = %p", fn, bad_levels[i], p);
    }
    for (int l = 0; l < LEVELS; l++) {
        HRESULT hr = debug ? IHostMalloc_DebugAlloc(m, 64, k_levels[l], file, 1, NULL)
                           : IHostMalloc_Alloc(m, 64, k_levels[l], NULL);
        if (hr != E_POINTER)
            fail_msg("%s(64, level %d, NULL) returned 0x%08x, expected E_POINTER", fn, l, HR(hr));
    }
    static const size_t huge[] = {
        SIZE_MAX,        (size_t)PTRDIFF_MAX + 1,  SIZE_MAX - 15,   SIZE_MAX - 4095,
        SIZE_MAX / 2,    (size_t)PTRDIFF_MAX - 15, (size_t)1 << 62, (size_t)1 << 48,
        (size_t)1 << 47, (size_t)1 << 46};
    for (int l = 0; l < LEVELS; l++) {
        for (size_t i = 0; i < TU_ARRAY_SIZE(huge); i++) {
            void *p = GARBAGE;
            HRESULT hr = debug ? IHostMalloc_DebugAlloc(m, huge[i], k_levels[l], file, 2, &p)
                               : IHostMalloc_Alloc(m, huge[i], k_levels[l], &p);
            if (hr != E_OUTOFMEMORY)
                fail_msg("%s(%#zx, level %d) returned 0x%08x, expected E_OUTOFMEMORY", fn, huge[i],
                         l, HR(hr));
            if (p != NULL) fail_msg("%s(%#zx, level %d) left *ppMem = %p", fn, huge[i], l, p);
        }
    }
    witness_check(&w, "the failed requests");
    instance_still_works(m, "the failed requests");
    zero_size_unique(m, debug);
    must_free(m, w.p);
}

static void test_alloc_bad_args(void **state) {
    (void)state;
    on_each_type(alloc_bad_args, 0);
}

/* ---- DebugAlloc
 * ---------------------------------------------------------------------------------- */
static void test_debug_alloc(void **state) {
    (void)state;
    IHostMemoryManager *mgr = new_manager();
    IHostMalloc *m = new_malloc(mgr, MALLOC_THREADSAFE);
    alloc_sizes(m, 1); /* every other call with a NULL file name */
    zero_size_unique(m, 1);
    /* Debug and plain blocks side by side, freed in mixed order with the same Free. */
    char file[] = __FILE__;
    void *d[32], *a[32];
    for (int i = 0; i < 32; i++) {
        d[i] = GARBAGE;
        assert_hr(IHostMalloc_DebugAlloc(m, (size_t)i * 40 + 1, eAppDomainCritical, file, __LINE__,
                                         &d[i]),
                  S_OK);
        assert_true(d[i] != NULL && tu_is_aligned(d[i], 16));
        a[i] = must_alloc(m, (size_t)i * 40 + 1, eAppDomainCritical);
        tu_fill(d[i], (size_t)i * 40 + 1, (unsigned)i);
        tu_fill(a[i], (size_t)i * 40 + 1, (unsigned)i + 100);
    }
    for (int i = 0; i < 32; i++) {
        assert_int_equal(tu_check(d[i], (size_t)i * 40 + 1, (unsigned)i), (size_t)i * 40 + 1);
        assert_int_equal(tu_check(a[i], (size_t)i * 40 + 1, (unsigned)i + 100), (size_t)i * 40 + 1);
    }
    for (int i = 31; i >= 0; i -= 2)
        must_free(m, d[i]);
    for (int i = 0; i < 32; i++)
        must_free(m, a[i]);
    for (int i = 30; i >= 0; i -= 2)
        must_free(m, d[i]);
    /* Odd file names and line numbers are only remembered, never interpreted. */
    char empty[] = "";
    void *p = GARBAGE;
    assert_hr(IHostMalloc_DebugAlloc(m, 10, eTaskCritical, empty, -1, &p), S_OK);
    must_free(m, p);
    assert_hr(IHostMalloc_DebugAlloc(m, 10, eTaskCritical, NULL, INT_MIN, &p), S_OK);
    must_free(m, p);
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mgr);
}

static void test_debug_alloc_bad_args(void **state) {
    (void)state;
    on_each_type(alloc_bad_args, 1);
}

/* ---- Free
 * ------------------------------------------------------------------------------------------ */
static char g_static_buf[4096];
static const char g_const_buf[64] = "a read-only global";

static void test_free_null_and_valid(void **state) {
    (void)state;
    IHostMemoryManager *mgr = new_manager();
    for (DWORD t = 0; t < 4; t++) {
        IHostMalloc *m = new_malloc(mgr, t);
        assert_hr(IHostMalloc_Free(m, NULL), S_OK);
        witness w = witness_new(m, 777, 1);
        assert_hr(IHostMalloc_Free(m, NULL), S_OK);
        witness_check(&w, "Free(NULL)");
        for (size_t i = 0; i < TU_ARRAY_SIZE(k_sizes); i++) {
            void *p = must_alloc(m, k_sizes[i], eTaskCritical);
            assert_hr(IHostMalloc_Free(m, p), S_OK);
        }
        assert_hr(IHostMalloc_Free(m, w.p), S_OK);
        IHostMalloc_Release(m);
    }
    IHostMemoryManager_Release(mgr);
}

static void test_free_foreign(void **state) {
    (void)state;
    IHostMemoryManager *mgr = new_manager();
    long pagesz = sysconf(_SC_PAGESIZE);
    for (DWORD t = 0; t < 4; t++) {
        IHostMalloc *m = new_malloc(mgr, t);
        witness w = witness_new(m, 1500, 11);

        char stack_buf[256];
        memset(stack_buf, 1, sizeof(stack_buf));
        expect_bad_free(m, stack_buf, "a stack address", &w);
        expect_bad_free(m, stack_buf + 16, "a stack address + 16", &w);
        expect_bad_free(m, g_static_buf, "a static buffer", &w);
        expect_bad_free(m, g_static_buf + 2048, "inside a static buffer", &w);
        expect_bad_free(m, (void *)(uintptr_t)g_const_buf, "a read-only global", &w);
        expect_bad_free(m, (void *)(uintptr_t)&IID_IHostMalloc, "the library's IID_IHostMalloc",
                        &w);

        char *small = malloc(100), *large = malloc(4 << 20);
        assert_non_null(small);
        assert_non_null(large);
        memset(small, 0x11, 100);
        memset(large, 0x22, 4 << 20);
        expect_bad_free(m, small, "a glibc malloc block", &w);
        expect_bad_free(m, large, "a glibc malloc block of 4 MiB (mmap'd)", &w);
        for (int i = 0; i < 100; i++)
            assert_int_equal(small[i], 0x11);
        assert_int_equal(large[(4 << 20) - 1], 0x22);
        free(small);
        free(large);

        void *gone = tu_unmapped_address();
        assert_non_null(gone);
        expect_bad_free(m, gone, "an unmapped address", &w);

        size_t len = (size_t)pagesz * 16;
        char *none = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        assert_true(none != MAP_FAILED);
        expect_bad_free(m, none, "a PROT_NONE region", &w);
        expect_bad_free(m, none + pagesz, "a PROT_NONE region + one page", &w);
        expect_bad_free(m, none + 16, "a PROT_NONE region + 16", &w);
        munmap(none, len);

        /* Addresses no one maps: the low page, the top of the user half, kernel space. */
        expect_bad_free(m, (void *)(uintptr_t)16, "address 16", &w);
        expect_bad_free(m, (void *)(uintptr_t)0x7ffffffff000ull, "the top user page", &w);
        expect_bad_free(m, (void *)(uintptr_t)0xffff800000000000ull, "a kernel address", &w);
        expect_bad_free(m, (void *)(uintptr_t)0xfffffffffffffff0ull, "address -16", &w);

        must_free(m, w.p);
        IHostMalloc_Release(m);
    }
    IHostMemoryManager_Release(mgr);
}

/* ---- double frees of small blocks (default mode) ----------------------------------------------
 * A second Free of a block must answer HOST_E_INVALIDOPERATION and change nothing: the next
 * allocations are distinct blocks, and Release ends (a double free used to put a block twice on
 * its page's free list: the same address three times from Alloc, then Release spun forever). */
typedef struct df_sink {
    int count, kind;
    const void *ptr;
    char msg[256];
} df_sink;

static void df_on_error(int kind, const void *ptr, const char *message, void *arg) {
    df_sink *s = arg;
    if (s->count++ == 0) {
        s->kind = kind;
        s->ptr = ptr;
        snprintf(s->msg, sizeof s->msg, "%s", message);
    }
}

static IHostMemoryManager *df_manager(df_sink *s) {
    hm_config c;
    hm_config_init(&c);
    c.checked = false; /* default mode, whatever the environment says */
    c.on_error = df_on_error;
    c.on_error_arg = s;
    return new_manager_cfg(&c);
}

/* The second free of `p` is refused and reported once, as a double free of `p`. */
static void expect_double_free(IHostMalloc *m, df_sink *s, void *p, const char *what) {
    s->count = 0;
    HRESULT hr = IHostMalloc_Free(m, p);
    if (hr != HOST_E_INVALIDOPERATION)
        fail_msg("%s: second Free(%p) returned 0x%08x, expected HOST_E_INVALIDOPERATION", what, p,
                 HR(hr));
    /* a page whose last block went may have been retired: p is then no block at all, and the
     * refusal is that of any pointer that is not a block (no report) */
    if (s->count == 0 && hm_heap_of(p) == NULL) return;
    if (s->count != 1 || s->kind != HM_ERROR_DOUBLE_FREE || s->ptr != p ||
        strncmp(s->msg, "hostmalloc: double free: block ", 31) != 0)
        fail_msg("%s: %d reports (kind %d, ptr %p, '%s'), expected one double free of %p", what,
                 s->count, s->kind, s->ptr, s->msg, p);
}

/* The instance hands out `n` distinct blocks of `size` (a block on a free list twice would come
 * back twice), then takes them back. */
static void expect_distinct(IHostMalloc *m, size_t size, size_t n, const char *what) {
    void *got[64];
    for (size_t i = 0; i < n; i++) {
        got[i] = must_alloc(m, size, eTaskCritical);
        memset(got[i], (int)i, size);
        for (size_t k = 0; k < i; k++)
            if (got[k] == got[i])
                fail_msg("%s: Alloc(%zu) #%zu and #%zu both returned %p", what, size, k, i, got[i]);
    }
    for (size_t i = 0; i < n; i++)
        must_free(m, got[i]);
}

/* A block handed out shows none of the words a free wrote into it: the free-list link (a heap
 * address) and the free mark are cleared, so its bytes [0, 16) read zero (DebugAlloc blocks:
 * [0, 8), the link; their fill follows). Default mode hands the block freed last out first, so
 * the block is the one just freed, full of the program's bytes before. */
static void test_com_new_block_shows_no_link(void **state) {
    (void)state;
    static const size_t sizes[] = {1, 16, 32, 100, 1024, 8000, 65536};
    hm_config c;
    hm_config_init(&c);
    c.checked = false; /* default mode, whatever the environment says (checked: test_debug) */
    IHostMemoryManager *mgr = new_manager_cfg(&c);
    IHostMalloc *m = new_malloc(mgr, MALLOC_THREADSAFE);
    hm_manager *nmgr = hm_manager_new(&c);
    assert_non_null(nmgr);
    hm_heap *h = hm_heap_new(nmgr, 0);
    assert_non_null(h);
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        size_t sz = sizes[i];
        for (int door = 0; door < 3; door++) {
            void *p = NULL, *q = NULL;
            size_t words = door == 2 ? 8 : 16;
            for (int round = 0; round < 2; round++) {
                void **out = round == 0 ? &p : &q;
                if (door == 0) {
                    *out = must_alloc(m, sz, eTaskCritical);
                } else if (door == 1) {
                    *out = hm_alloc(h, sz);
                    assert_non_null(*out);
                } else {
                    assert_hr(IHostMalloc_DebugAlloc(m, sz, eTaskCritical, __FILE__, __LINE__, out),
                              S_OK);
                }
                if (round == 0) {
                    memset(p, 0xAB, sz);
                    if (door == 1)
                        assert_int_equal(hm_heap_free(h, p), HM_OK);
                    else
                        must_free(m, p);
                }
            }
            if (q != p)
                fail_msg("door %d, %zu bytes: the block freed last was not reused", door, sz);
            /* under memcheck a new block is undefined memory to the program (malloc promises
             * nothing); the test reads what hostmalloc wrote there all the same */
            TU_MAKE_DEFINED(q, sz < words ? sz : words);
            for (size_t b = 0; b < sz && b < words; b++)
                if (((unsigned char *)q)[b] != 0)
                    fail_msg("door %d, %zu bytes: byte %zu of the reused block is 0x%02x", door, sz,
                             b, ((unsigned char *)q)[b]);
            if (door == 1)
                assert_int_equal(hm_heap_free(h, q), HM_OK);
            else
                must_free(m, q);
        }
    }
    hm_heap_release(h);
    hm_manager_release(nmgr);
    assert_int_equal(IHostMalloc_Release(m), 0);
    IHostMemoryManager_Release(mgr);
}

static void test_com_double_free_small(void **state) {
    (void)state;
    static const size_t sizes[] = {0, 1, 16, 32, 48, 100, 1024, 1025, 8000, 20000, 65536};
    static const DWORD types[] = {0, MALLOC_THREADSAFE};
    df_sink s = {0};
    IHostMemoryManager *mgr = df_manager(&s);
    for (size_t t = 0; t < TU_ARRAY_SIZE(types); t++) {
        for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
            size_t sz = sizes[i];
            IHostMalloc *m = new_malloc(mgr, types[t]);
            witness w = witness_new(m, 40, 3);
            /* p, p */
            void *p = must_alloc(m, sz, eTaskCritical);
            must_free(m, p);
            expect_double_free(m, &s, p, "p, p");
            /* p, q, p and p, q, q, p */
            p = must_alloc(m, sz, eTaskCritical);
            void *q = must_alloc(m, sz, eTaskCritical);
            must_free(m, p);
            must_free(m, q);
            expect_double_free(m, &s, p, "p, q, p");
            expect_double_free(m, &s, q, "p, q, q");
            expect_double_free(m, &s, p, "p, q, q, p");
            /* deep in the list: p freed, then 40 more blocks of its page */
            void *many[41];
            for (int k = 0; k < 41; k++)
                many[k] = must_alloc(m, sz, eTaskCritical);
            for (int k = 0; k < 41; k++)
                must_free(m, many[k]);
            expect_double_free(m, &s, many[0], "first of 41");
            expect_double_free(m, &s, many[20], "middle of 41");
            witness_check(&w, "double frees");
            expect_distinct(m, sz, 48, "after double frees");
            must_free(m, w.p);
            assert_int_equal(IHostMalloc_Release(m), 0); /* used to spin here */
        }
    }
    IHostMemoryManager_Release(mgr);
}

/* A page whose free list ran empty (every carved block handed out), then p, q, p: the block at
 * the end of the list is a double free too. */
static void test_com_double_free_full_page(void **state) {
    (void)state;
    df_sink s = {0};
    IHostMemoryManager *mgr = df_manager(&s);
    IHostMalloc *m = new_malloc(mgr, 0);
    enum { N = 5000 }; /* more than the 4096 blocks of a 16-byte page */
    void **all = calloc(N, sizeof *all);
    assert_non_null(all);
    for (int k = 0; k < N; k++)
        all[k] = must_alloc(m, 16, eTaskCritical);
    for (int k = 0; k < N; k += 97) {
        void *p = all[k], *q = all[k + 1];
        must_free(m, p);
        must_free(m, q);
        expect_double_free(m, &s, p, "p, q, p on a page handed out");
        expect_double_free(m, &s, q, "q again");
        all[k] = must_alloc(m, 16, eTaskCritical);
        all[k + 1] = must_alloc(m, 16, eTaskCritical);
        if (all[k] == all[k + 1]) fail_msg("the same block twice: %p", all[k]);
    }
    for (int k = 0; k < N; k++)
        must_free(m, all[k]);
    free(all);
    assert_int_equal(IHostMalloc_Release(m), 0);
    IHostMemoryManager_Release(mgr);
}

/* A block freed by another thread (waiting on its page's list of remote frees), then freed
 * again by the owner: a double free. */
static bool com_freed(void *m, void *p) {
    return IHostMalloc_Free((IHostMalloc *)m, p) == S_OK;
}

/* The set-up of the cases of frees by other threads: a thread-safe instance reporting to a
 * sink, and a block of 32 bytes kept live, so that its page stays in use throughout. */
typedef struct {
    df_sink s;
    IHostMemoryManager *mgr;
    IHostMalloc *m;
    void *keep;
} df_shared_page;

static void df_shared_open(df_shared_page *c) {
    memset(c, 0, sizeof *c);
    c->mgr = df_manager(&c->s);
    c->m = new_malloc(c->mgr, MALLOC_THREADSAFE);
    c->keep = must_alloc(c->m, 32, eTaskCritical);
}

static void df_shared_close(df_shared_page *c) {
    must_free(c->m, c->keep);
    assert_int_equal(IHostMalloc_Release(c->m), 0);
    IHostMemoryManager_Release(c->mgr);
}

static void test_com_double_free_after_remote_free(void **state) {
    (void)state;
    df_shared_page c;
    df_shared_open(&c);
    void *p = must_alloc(c.m, 32, eTaskCritical);
    tu_free_in_thread(com_freed, c.m, &p, 1);
    expect_double_free(c.m, &c.s, p, "owner frees a block another thread freed");
    expect_distinct(c.m, 32, 40, "after the remote double free");
    df_shared_close(&c);
}

/* A block freed by another thread, then freed again by a third thread that does not own its
 * page either: a double free, refused and reported, nothing changed. The threads cannot walk
 * the owner's lists: the free mark decides. */
typedef struct {
    IHostMalloc *m;
    void *p;
    HRESULT hr;
} free_once_t;

static void *free_once_main(void *arg) {
    free_once_t *f = arg;
    f->hr = IHostMalloc_Free(f->m, f->p);
    return NULL;
}

static void test_com_double_free_by_other_thread(void **state) {
    (void)state;
    df_shared_page c;
    df_shared_open(&c);
    for (int round = 0; round < 2; round++) {
        void *p = must_alloc(c.m, 32, eTaskCritical);
        free_once_t f = {c.m, p, E_FAIL};
        tu_run_thread(free_once_main, &f);
        assert_int_equal(f.hr, S_OK);
        c.s.count = 0;
        f.hr = E_FAIL;
        tu_run_thread(free_once_main, &f);
        if (f.hr != HOST_E_INVALIDOPERATION)
            fail_msg("a second Free(%p) by another thread returned 0x%08x", p, HR(f.hr));
        if (c.s.count != 1 || c.s.kind != HM_ERROR_DOUBLE_FREE || c.s.ptr != p)
            fail_msg("%d reports (kind %d, ptr %p), expected one double free of %p", c.s.count,
                     c.s.kind, c.s.ptr, p);
        expect_distinct(c.m, 32, 40, "after a double free by another thread");
    }
    df_shared_close(&c);
}

static void read_memory(const void *at, void *buf, size_t n) {
    int fd = open("/proc/self/mem", O_RDONLY);
    assert_true(fd >= 0);
    ssize_t got = pread(fd, buf, n, (off_t)(uintptr_t)at);
    close(fd);
    if (got != (ssize_t)n) fail_msg("reading %zu bytes at %p through /proc/self/mem", n, at);
}

/* No false alarm: a live block whose first words hold exactly what a freed block of its page
 * holds (its list link and its free mark, copied from a freed neighbour) is freed normally. And
 * a slot carved but never handed out is not a block to free. */
static void test_com_double_free_no_false_alarm(void **state) {
    (void)state;
    df_sink s = {0};
    IHostMemoryManager *mgr = df_manager(&s);
    IHostMalloc *m = new_malloc(mgr, 0);
    for (size_t sz = 16; sz <= 512; sz *= 2) {
        void *p = must_alloc(m, sz, eTaskCritical);
        void *q = must_alloc(m, sz, eTaskCritical);
        void *r = must_alloc(m, sz, eTaskCritical);
        must_free(m, q);
        /* the freed block's words, as a program reading stale data would see them; read
         * through /proc/self/mem, so that memory tools watching the heap see no access to a
         * freed block from this test */
        unsigned char words[16];
        read_memory(q, words, sizeof words);
        memcpy(p, words, 16);
        memcpy(r, words, 16);
        s.count = 0;
        must_free(m, p);
        must_free(m, r);
        if (s.count != 0) fail_msg("size %zu: a good free was reported: '%s'", sz, s.msg);
        expect_distinct(m, sz, 8, "after frees of look-alike blocks");
    }
    /* the next slot after a fresh block (carved, never handed out) */
    void *p = must_alloc(m, 4000, eTaskCritical);
    s.count = 0;
    HRESULT hr = IHostMalloc_Free(m, (char *)p + 4096);
    if (hr != HOST_E_INVALIDOPERATION)
        fail_msg("Free of a slot never handed out returned 0x%08x", HR(hr));
    must_free(m, p);
    expect_distinct(m, 4000, 8, "after the free of a slot never handed out");
    assert_int_equal(IHostMalloc_Release(m), 0);
    IHostMemoryManager_Release(mgr);
}

static void test_free_interior(void **state) {
    (void)state;
    IHostMemoryManager *mgr = new_manager();
    static const size_t sizes[] = {64, 256, 1000, 20000, 300000, (size_t)8 << 20};
    for (DWORD t = 0; t < 4; t++) {
        IHostMalloc *m = new_malloc(mgr, t);
        for (size_t s = 0; s < TU_ARRAY_SIZE(sizes); s++) {
            size_t sz = sizes[s];
            witness w = witness_new(m, sz, (unsigned)s + 40);
            char *p = w.p;
            char what[96];
            size_t offsets[] = {1, 8, 16, 32, sz / 2, sz - 16, 4096, (size_t)5 << 20};
            for (size_t o = 0; o < TU_ARRAY_SIZE(offsets); o++) {
                if (offsets[o] >= sz || offsets[o] == 0) continue;
                snprintf(what, sizeof(what), "p+%zu of a live %zu-byte block", offsets[o], sz);
                expect_bad_free(m, p + offsets[o], what, &w);
            }
            /* The block itself is still a block of the instance. */
            witness_check(&w, "the interior frees");
            must_free(m, p);
        }
        IHostMalloc_Release(m);
    }
    IHostMemoryManager_Release(mgr);
}

static void free_across(IHostMalloc *owner, IHostMalloc *other, const char *what) {
    static const size_t sizes[] = {0, 16, 200, 5000, 70000, (size_t)3 << 20};
    witness wo = witness_new(other, 999, 5);
    for (size_t s = 0; s < TU_ARRAY_SIZE(sizes); s++) {
        witness w = witness_new(owner, sizes[s], (unsigned)s);
        expect_bad_free(other, w.p, what, &wo);
        /* Still a valid block of its own instance, untouched. */
        witness_check(&w, what);
        must_free(owner, w.p);
    }
    must_free(other, wo.p);
}

static void test_free_other_instance(void **state) {
    (void)state;
    IHostMemoryManager *mgr = new_manager();
    IHostMalloc *inst[4];
    for (DWORD t = 0; t < 4; t++)
        inst[t] = new_malloc(mgr, t);
    IHostMalloc *twin = new_malloc(mgr, MALLOC_THREADSAFE);
    free_across(inst[1], twin, "a block of another instance of the same type");
    free_across(twin, inst[1], "a block of another instance of the same type");
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++)
            if (a != b) free_across(inst[a], inst[b], "a block of another instance");
    assert_int_equal(IHostMalloc_Release(twin), 0);
    release_all(inst, 4);
    IHostMemoryManager_Release(mgr);
}

static void test_free_other_manager(void **state) {
    (void)state;
    IHostMemoryManager *mgr1 = new_manager(), *mgr2 = new_manager();
    IHostMalloc *a = new_malloc(mgr1, MALLOC_THREADSAFE), *b = new_malloc(mgr2, MALLOC_THREADSAFE);
    IHostMalloc *ax = new_malloc(mgr1, 0), *bx = new_malloc(mgr2, MALLOC_EXECUTABLE);
    free_across(a, b, "a block of another manager's instance");
    free_across(b, a, "a block of another manager's instance");
    free_across(ax, bx, "a block of another manager's instance");
    free_across(bx, ax, "a block of another manager's instance");
    IHostMalloc_Release(a);
    IHostMalloc_Release(b);
    IHostMalloc_Release(ax);
    IHostMalloc_Release(bx);
    IHostMemoryManager_Release(mgr1);
    IHostMemoryManager_Release(mgr2);
}

/* Bytes the manager counts committed, from GetMemoryLoad: with no reserves, the bytes still
 * available to task-critical requests are the limit less what is committed. */
static size_t committed_of(IHostMemoryManager *mgr, size_t limit) {
    DWORD load = 0;
    SIZE_T avail = 0;
    assert_hr(IHostMemoryManager_GetMemoryLoad(mgr, &load, &avail), S_OK);
    assert_true(avail <= limit);
    return limit - avail;
}

/* ---- the last Release frees everything
 * ------------------------------------------------------------ */
static void test_release_frees_live_blocks(void **state) {
    (void)state;
    /* Purge delay 0: memory given back is returned to the OS at once, so RSS shows it. */
    hm_config cfg;
    hm_config_init(&cfg);
    cfg.purge_delay_ms = 0;
    cfg.limit = (size_t)1 << 30; /* committed = limit - available (GetMemoryLoad) */
    IHostMemoryManager *mgr = new_manager_cfg(&cfg);

    /* Warm up: one instance allocated and released, so one-time structures are in the
     * baseline. */
    IHostMalloc *warm = new_malloc(mgr, MALLOC_THREADSAFE);
    must_alloc(warm, 1000, eTaskCritical);
    IHostMalloc_Release(warm);

    for (int round = 0; round < 3; round++) {
        size_t start_committed = committed_of(mgr, cfg.limit);
        size_t start = tu_rss_bytes();
        assert_true(start > 0);
        IHostMalloc *m = new_malloc(mgr, round == 1 ? 0 : MALLOC_THREADSAFE);
        for (int i = 0; i < 512; i++) { /* 32 MiB of 64 KiB blocks */
            void *p = must_alloc(m, 64 * TU_KIB, eTaskCritical);
            memset(p, 0x5C, 64 * TU_KIB);
        }
        for (int i = 0; i < 2048; i++) { /* 8 MiB of 4 KiB blocks */
            void *p = must_alloc(m, 4 * TU_KIB, eAppDomainCritical);
            memset(p, 0x5D, 4 * TU_KIB);
        }
        for (int i = 0; i < 6; i++) { /* 24 MiB of 4 MiB blocks */
            void *p = must_alloc(m, 4 * TU_MIB, eProcessCritical);
            memset(p, 0x5E, 4 * TU_MIB);
        }
        size_t full_committed = committed_of(mgr, cfg.limit);
        if (full_committed < start_committed + 64 * TU_MIB)
            fail_msg("round %d: the manager counts %zu KiB committed with 64 MiB live (%zu KiB "
                     "before)",
                     round, full_committed / 1024, start_committed / 1024);
        size_t full = tu_rss_bytes();
        assert_int_equal(IHostMalloc_Release(m), 0);
        /* What hostmalloc controls: its count of committed bytes is back where it was. */
        size_t after_committed = committed_of(mgr, cfg.limit);
        if (after_committed > start_committed)
            fail_msg("round %d: after the last Release with 64 MiB live, the manager counts %zu "
                     "KiB committed; it counted %zu KiB before the instance",
                     round, after_committed / 1024, start_committed / 1024);
        /* And, loosely, the process's RSS follows (labelled rss: only where hostmalloc owns
         * it). */
        size_t after = tu_rss_bytes();
        if (after > start + 16 * TU_MIB)
            fail_msg("round %d: after the last Release with 64 MiB live, RSS is %zu KiB; it was "
                     "%zu KiB before the instance (%zu KiB with the blocks): more than 16 MiB "
                     "kept",
                     round, after / 1024, start / 1024, full / 1024);
    }
    IHostMemoryManager_Release(mgr);
}

/* ---- executable instances -----------------------------------------------------------------------
 */

static void test_executable_instance(void **state) {
    (void)state;
    TU_SKIP_UNLESS_X86_64();
    IHostMemoryManager *mgr = new_manager();
    static const size_t sizes[] = {6, 16, 100, 4096, 100000, (size_t)5 << 20};
    static const DWORD types[] = {MALLOC_EXECUTABLE, MALLOC_EXECUTABLE | MALLOC_THREADSAFE};
    for (size_t t = 0; t < TU_ARRAY_SIZE(types); t++) {
        IHostMalloc *x = new_malloc(mgr, types[t]);
        for (size_t s = 0; s < TU_ARRAY_SIZE(sizes); s++) {
            unsigned char *p = must_alloc(x, sizes[s], eTaskCritical);
            memset(p, 0xCC, sizes[s]);              /* int3 everywhere else */
            size_t at = sizes[s] - sizeof(k_ret42); /* the end of the block is executable too */
            memcpy(p, k_ret42, sizeof(k_ret42));
            if (at >= sizeof(k_ret42)) {
                memcpy(p + at, k_ret42, sizeof(k_ret42));
                p[at + 1] = 43;
            }
            __builtin___clear_cache((char *)p, (char *)p + sizes[s]);
            assert_int_equal(call_code(p), 42);
            if (at >= sizeof(k_ret42)) assert_int_equal(call_code(p + at), 43);
        }
        char file[] = "jit.c";
        void *d = GARBAGE;
        assert_hr(IHostMalloc_DebugAlloc(x, 64, eProcessCritical, file, 1, &d), S_OK);
        memcpy(d, k_ret42, sizeof(k_ret42));
        __builtin___clear_cache((char *)d, (char *)d + 64);
        assert_int_equal(call_code(d), 42);
        must_free(x, d);
        IHostMalloc_Release(x);
    }
    IHostMemoryManager_Release(mgr);
}

/* ---- threads
 * ---------------------------------------------------------------------------------------- */
#define MT_THREADS 8
#define MT_ITERS   30000
#define MT_SLOTS   64
#define MT_XFER    256
#define MT_PASS    2000

typedef struct mt_shared {
    IHostMalloc *m;
    pthread_barrier_t barrier;
    _Atomic(uintptr_t) xfer[MT_XFER];
    void *handoff[MT_THREADS][MT_PASS];
    atomic_int failures;
    atomic_long frees_by_other;
} mt_shared;

typedef struct mt_ctx {
    mt_shared *sh;
    int id;
} mt_ctx;

static uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Each block starts with its size; the rest is a pattern of its size and address (whole
 * blocks up to 4 KiB, the first and last 256 bytes of bigger ones). */
static unsigned char mt_byte(const unsigned char *p, size_t size, size_t i) {
    return (unsigned char)(size + i + ((uintptr_t)p >> 4));
}

static void mt_fill(unsigned char *p, size_t size) {
    if (size < 16) return;
    memcpy(p, &size, sizeof(size));
    for (size_t i = 16; i < size; i++) {
        if (size > 4096 && i == 256) i = size - 256;
        p[i] = mt_byte(p, size, i);
    }
}

static int mt_ok(const unsigned char *p, size_t size) {
    if (size < 16) return 1;
    size_t s;
    memcpy(&s, p, sizeof(s));
    if (s != size) return 0;
    for (size_t i = 16; i < size; i++) {
        if (size > 4096 && i == 256) i = size - 256;
        if (p[i] != mt_byte(p, size, i)) return 0;
    }
    return 1;
}

static size_t mt_size(uint64_t r) {
    if ((r & 63) == 0) return 16 + (r >> 8) % (256 * 1024);
    return 16 + (r >> 8) % 1024;
}

static void *mt_thread(void *arg) {
    mt_ctx *c = arg;
    mt_shared *sh = c->sh;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(c->id + 1);
    unsigned char *slot[MT_SLOTS] = {0};
    size_t slot_size[MT_SLOTS] = {0};
    pthread_barrier_wait(&sh->barrier);

    /* Phase 1: churn on own blocks, plus hand-offs through a shared exchange array. */
    for (int it = 0; it < MT_ITERS; it++) {
        uint64_t r = rng_next(&rng);
        int k = (int)(r % MT_SLOTS);
        if (slot[k]) {
            if (!mt_ok(slot[k], slot_size[k])) atomic_fetch_add(&sh->failures, 1);
            if (((r >> 40) & 3) == 0) {
                /* Hand it to whoever takes this exchange slot next. */
                uintptr_t old = atomic_exchange(&sh->xfer[(r >> 20) % MT_XFER], (uintptr_t)slot[k]);
                if (old) {
                    size_t sz;
                    memcpy(&sz, (void *)old, sizeof(sz));
                    if (!mt_ok((void *)old, sz)) atomic_fetch_add(&sh->failures, 1);
                    if (IHostMalloc_Free(sh->m, (void *)old) != S_OK)
                        atomic_fetch_add(&sh->failures, 1);
                }
            } else if (IHostMalloc_Free(sh->m, slot[k]) != S_OK) {
                atomic_fetch_add(&sh->failures, 1);
            }
            slot[k] = NULL;
        } else {
            size_t sz = mt_size(r);
            void *p = NULL;
            if (IHostMalloc_Alloc(sh->m, sz, k_levels[r % LEVELS], &p) != S_OK || !p ||
                !tu_is_aligned(p, 16)) {
                atomic_fetch_add(&sh->failures, 1);
                continue;
            }
            mt_fill(p, sz);
            slot[k] = p;
            slot_size[k] = sz;
        }
    }
    for (int k = 0; k < MT_SLOTS; k++) {
        if (!slot[k]) continue;
        if (!mt_ok(slot[k], slot_size[k])) atomic_fetch_add(&sh->failures, 1);
        if (IHostMalloc_Free(sh->m, slot[k]) != S_OK) atomic_fetch_add(&sh->failures, 1);
    }

    /* Phase 2: every block allocated here is freed by the next thread. */
    for (int i = 0; i < MT_PASS; i++) {
        size_t sz = 16 + (size_t)(rng_next(&rng) % 2000);
        void *p = NULL;
        if (IHostMalloc_Alloc(sh->m, sz, eTaskCritical, &p) != S_OK || !p) {
            atomic_fetch_add(&sh->failures, 1);
            sh->handoff[c->id][i] = NULL;
            continue;
        }
        mt_fill(p, sz);
        sh->handoff[c->id][i] = p;
    }
    pthread_barrier_wait(&sh->barrier);
    int from = (c->id + 1) % MT_THREADS;
    for (int i = 0; i < MT_PASS; i++) {
        unsigned char *p = sh->handoff[from][i];
        if (!p) continue;
        size_t sz;
        memcpy(&sz, p, sizeof(sz));
        if (!mt_ok(p, sz)) atomic_fetch_add(&sh->failures, 1);
        if (IHostMalloc_Free(sh->m, p) != S_OK) atomic_fetch_add(&sh->failures, 1);
        atomic_fetch_add(&sh->frees_by_other, 1);
    }
    /* The owner allocates again after its blocks were freed remotely. */
    for (int i = 0; i < 1000; i++) {
        void *p = NULL;
        if (IHostMalloc_Alloc(sh->m, 16 + (size_t)i, eTaskCritical, &p) != S_OK || !p ||
            IHostMalloc_Free(sh->m, p) != S_OK)
            atomic_fetch_add(&sh->failures, 1);
    }
    return NULL;
}

static void test_multithread(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    IHostMemoryManager *mgr = new_manager();
    mt_shared *sh = calloc(1, sizeof(*sh));
    assert_non_null(sh);
    sh->m = new_malloc(mgr, MALLOC_THREADSAFE);
    pthread_barrier_init(&sh->barrier, NULL, MT_THREADS);
    pthread_t th[MT_THREADS];
    mt_ctx ctx[MT_THREADS];
    for (int i = 0; i < MT_THREADS; i++) {
        ctx[i] = (mt_ctx){sh, i};
        assert_int_equal(pthread_create(&th[i], NULL, mt_thread, &ctx[i]), 0);
    }
    for (int i = 0; i < MT_THREADS; i++)
        pthread_join(th[i], NULL);
    /* What is left in the exchange array is freed by this thread. */
    for (int i = 0; i < MT_XFER; i++) {
        unsigned char *p = (unsigned char *)atomic_load(&sh->xfer[i]);
        if (!p) continue;
        size_t sz;
        memcpy(&sz, p, sizeof(sz));
        if (!mt_ok(p, sz)) atomic_fetch_add(&sh->failures, 1);
        if (IHostMalloc_Free(sh->m, p) != S_OK) atomic_fetch_add(&sh->failures, 1);
    }
    int failures = atomic_load(&sh->failures);
    long remote = atomic_load(&sh->frees_by_other);
    pthread_barrier_destroy(&sh->barrier);
    instance_still_works(sh->m, "the threads exited");
    assert_int_equal(IHostMalloc_Release(sh->m), 0);
    free(sh);
    IHostMemoryManager_Release(mgr);
    if (failures) fail_msg("%d alloc/free calls failed or blocks were corrupted", failures);
    assert_int_equal(remote, (long)MT_THREADS * MT_PASS);
}

/* A non-thread-safe instance may be used from several threads when the caller serializes:
 * blocks allocated on one thread are freed on another. */
typedef struct ser_shared {
    IHostMalloc *m;
    pthread_mutex_t lock;
    void *blocks[256];
    int failures;
} ser_shared;

static void *ser_thread(void *arg) {
    ser_shared *sh = arg;
    uint64_t rng = (uint64_t)(uintptr_t)&rng | 1;
    for (int it = 0; it < 20000; it++) {
        uint64_t r = rng_next(&rng);
        int k = (int)(r % 256);
        pthread_mutex_lock(&sh->lock);
        if (sh->blocks[k]) {
            size_t sz;
            memcpy(&sz, sh->blocks[k], sizeof(sz));
            if (!mt_ok(sh->blocks[k], sz) || IHostMalloc_Free(sh->m, sh->blocks[k]) != S_OK)
                sh->failures++;
            sh->blocks[k] = NULL;
        } else {
            size_t sz = mt_size(r);
            void *p = NULL;
            if (IHostMalloc_Alloc(sh->m, sz, eTaskCritical, &p) != S_OK || !p) {
                sh->failures++;
            } else {
                mt_fill(p, sz);
                sh->blocks[k] = p;
            }
        }
        pthread_mutex_unlock(&sh->lock);
    }
    return NULL;
}

static void test_serialized_single_thread_instance(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    IHostMemoryManager *mgr = new_manager();
    ser_shared sh = {.m = new_malloc(mgr, 0)};
    pthread_mutex_init(&sh.lock, NULL);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, ser_thread, &sh), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int k = 0; k < 256; k++)
        if (sh.blocks[k] && IHostMalloc_Free(sh.m, sh.blocks[k]) != S_OK) sh.failures++;
    pthread_mutex_destroy(&sh.lock);
    instance_still_works(sh.m, "the threads exited");
    IHostMalloc_Release(sh.m);
    IHostMemoryManager_Release(mgr);
    assert_int_equal(sh.failures, 0);
}

TU_TEST_MAIN(test_create_manager, test_create_malloc_flags, test_create_malloc_bad_args,
             test_query_interface_manager, test_query_interface_malloc, test_refcount_atomic,
             test_manager_outlived_by_instance, test_alloc_sizes, test_alloc_zero_unique,
             test_alloc_bad_args, test_debug_alloc, test_debug_alloc_bad_args,
             test_free_null_and_valid, test_free_foreign, test_free_interior,
             test_free_other_instance, test_free_other_manager, test_release_frees_live_blocks,
             test_executable_instance, test_multithread, test_serialized_single_thread_instance,
             test_com_new_block_shows_no_link, test_com_double_free_small,
             test_com_double_free_full_page, test_com_double_free_after_remote_free,
             test_com_double_free_by_other_thread, test_com_double_free_no_false_alarm)
