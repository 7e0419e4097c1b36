/* SPDX-License-Identifier: MIT */
/* tests/support/tu_com.h: fixtures of the COM door shared by the test programs: a manager and an
 * instance made with every output checked (new_manager, new_malloc), Alloc and Free that must
 * succeed (must_alloc, must_free), a block that must survive bad calls (witness), and a few
 * bytes of x86-64 code to run from a block (k_ret42, call_code).
 *
 * Header-only, after test_util.h; C only (the C++ tests see the interfaces as classes). */
#ifndef HOSTMALLOC_TU_COM_H
#define HOSTMALLOC_TU_COM_H

#include <hostmalloc/hosting.h>
#include <hostmalloc/hostmalloc.h>

#include "test_util.h"

/* A value no implementation would store by accident: out-pointers are preset to it. */
#define GARBAGE ((void *)(uintptr_t)0x5A5A5A5A5A5A5A50ull)

static inline IHostMemoryManager *new_manager_cfg(const hm_config *cfg) {
    IHostMemoryManager *mgr = GARBAGE;
    assert_hr(hm_create_host_memory_manager(cfg, &mgr), S_OK);
    assert_non_null(mgr);
    assert_ptr_not_equal(mgr, GARBAGE);
    assert_non_null(mgr->lpVtbl);
    return mgr;
}

static inline IHostMemoryManager *new_manager(void) {
    return new_manager_cfg(NULL);
}

static inline IHostMalloc *new_malloc(IHostMemoryManager *mgr, DWORD type) {
    IHostMalloc *m = GARBAGE;
    assert_hr(IHostMemoryManager_CreateMalloc(mgr, type, &m), S_OK);
    assert_non_null(m);
    assert_ptr_not_equal(m, GARBAGE);
    assert_non_null(m->lpVtbl);
    return m;
}

/* Alloc that must succeed with a 16-byte aligned block. */
static inline void *must_alloc(IHostMalloc *m, size_t size, EMemoryCriticalLevel level) {
    void *p = GARBAGE;
    HRESULT hr = IHostMalloc_Alloc(m, size, level, &p);
    if (hr != S_OK)
        fail_msg("Alloc(%zu, level %d) returned 0x%08x, expected S_OK", size, (int)level, HR(hr));
    if (p == NULL || p == GARBAGE) fail_msg("Alloc(%zu, level %d) gave %p", size, (int)level, p);
    if (!tu_is_aligned(p, 16)) fail_msg("Alloc(%zu) gave %p: not 16-byte aligned", size, p);
    return p;
}

static inline void must_free(IHostMalloc *m, void *p) {
    HRESULT hr = IHostMalloc_Free(m, p);
    if (hr != S_OK) fail_msg("Free(%p) returned 0x%08x, expected S_OK", p, HR(hr));
}

/* A block that must survive bad calls on its instance: filled with a pattern, checked later. */
typedef struct witness {
    void *p;
    size_t size;
    unsigned seed;
} witness;

static inline witness witness_new(IHostMalloc *m, size_t size, unsigned seed) {
    witness w = {must_alloc(m, size, eTaskCritical), size, seed};
    tu_fill(w.p, size, seed);
    return w;
}

static inline void witness_check(const witness *w, const char *after) {
    size_t bad = tu_check(w->p, w->size, w->seed);
    if (bad != w->size)
        fail_msg("after %s: block %p (%zu bytes) changed at offset %zu", after, w->p, w->size, bad);
}

/* k_ret42 is x86-64 code: a test that runs it is skipped elsewhere. */
#if defined(__x86_64__)
#define TU_SKIP_UNLESS_X86_64() ((void)0)
#else
#define TU_SKIP_UNLESS_X86_64() skip()
#endif

static const unsigned char k_ret42[] = {0xB8, 0x2A, 0x00, 0x00, 0x00, 0xC3}; /* mov eax,42; ret */

static inline int call_code(void *p) {
    int (*f)(void);
    memcpy(&f, &p, sizeof(f));
    return f();
}

#endif /* HOSTMALLOC_TU_COM_H */
