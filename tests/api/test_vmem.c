/* SPDX-License-Identifier: MIT */
/* tests/api/test_vmem.c: VirtualAlloc, VirtualFree, VirtualQuery and VirtualProtect of
 * IHostMemoryManager, table-driven, with Win32 semantics: reservations in 64 KiB
 * granules, commits in 4 KiB pages counted against the budget at the request's level, decommit
 * of any page range, release of whole reservations only, the 48-byte MEMORY_BASIC_INFORMATION,
 * and VirtualQuery racing with a writer. The protections the hardware enforces are checked in
 * forked children by tests/death/test_protect_death.c. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
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
#include "tu_vmem.h"

#define KIB         TU_KIB
#define MIB         TU_MIB
#define ANY_FAILURE ((HRESULT)1) /* in a table: any failure code (FAILED) */

/* A 64 KiB-aligned address with nothing mapped in the next 1 MiB. */
static void *free_granule(void) {
    size_t len = 4 * MIB;
    void *p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(p != MAP_FAILED);
    munmap(p, len);
    return (void *)(((uintptr_t)p + MIB) & ~(uintptr_t)(GRAN - 1));
}

/* ==== VirtualAlloc at NULL: sizes, types, protections ======================================== */
typedef struct va_case {
    const char *name;
    size_t size;
    DWORD type;
    DWORD prot;
    size_t reserved;  /* bytes the reservation must span */
    size_t committed; /* bytes committed from its start */
} va_case;

static const va_case k_va_cases[] = {
    {"reserve 1 byte", 1, MEM_RESERVE, PAGE_READWRITE, GRAN, 0},
    {"reserve 64 KiB", GRAN, MEM_RESERVE, PAGE_NOACCESS, GRAN, 0},
    {"reserve 64 KiB + 1", GRAN + 1, MEM_RESERVE, PAGE_READWRITE, 2 * GRAN, 0},
    {"reserve 1 MiB top-down", MIB, MEM_RESERVE | MEM_TOP_DOWN, PAGE_READWRITE, MIB, 0},
    {"commit 1 byte", 1, MEM_COMMIT, PAGE_READWRITE, GRAN, PG},
    {"commit 4096", PG, MEM_COMMIT, PAGE_READWRITE, GRAN, PG},
    {"commit 5000", 5000, MEM_COMMIT, PAGE_READWRITE, GRAN, 2 * PG},
    {"reserve+commit 100000", 100000, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE, 2 * GRAN, 25 * PG},
    {"reserve+commit 64 KiB read-only", GRAN, MEM_RESERVE | MEM_COMMIT, PAGE_READONLY, GRAN, GRAN},
    {"commit no-access", 3 * PG, MEM_COMMIT, PAGE_NOACCESS, GRAN, 3 * PG},
    {"commit execute", PG, MEM_COMMIT, PAGE_EXECUTE, GRAN, PG},
    {"commit execute-read", PG, MEM_COMMIT, PAGE_EXECUTE_READ, GRAN, PG},
    {"commit execute-read-write", 2 * PG, MEM_COMMIT | MEM_RESERVE, PAGE_EXECUTE_READWRITE, GRAN,
     2 * PG},
    {"commit 1 MiB + 1", MIB + 1, MEM_COMMIT | MEM_RESERVE, PAGE_READWRITE, MIB + GRAN, MIB + PG},
};

static void test_virtual_alloc_table(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    for (size_t i = 0; i < TU_ARRAY_SIZE(k_va_cases); i++) {
        const va_case *c = &k_va_cases[i];
        size_t avail0 = avail_of(mm);
        void *p = va_ok(mm, NULL, c->size, c->type, c->prot);
        if (!tu_is_aligned(p, GRAN)) fail_msg("%s: %p is not 64 KiB aligned", c->name, p);
        /* commits count exactly, reservations not at all */
        size_t used = avail0 - avail_of(mm);
        if (used != c->committed)
            fail_msg("%s: the budget moved by %zu, expected %zu", c->name, used, c->committed);
        char what[128];
        if (c->committed > 0) {
            snprintf(what, sizeof what, "%s: committed part", c->name);
            expect_mbi(mm, p, MEM_COMMIT, c->prot, p, c->prot, c->committed, what);
            /* the last committed byte too */
            expect_mbi(mm, (char *)p + c->committed - 1, MEM_COMMIT, c->prot, p, c->prot, PG, what);
            if (c->prot == PAGE_READWRITE || c->prot == PAGE_EXECUTE_READWRITE) {
                if (!all_bytes(p, c->committed, 0)) fail_msg("%s: not zero-filled", c->name);
                memset(p, 0x77, c->committed);
            } else if (c->prot == PAGE_READONLY || c->prot == PAGE_EXECUTE_READ) {
                if (!all_bytes(p, c->committed, 0)) fail_msg("%s: not zero-filled", c->name);
            }
        }
        if (c->committed < c->reserved) {
            snprintf(what, sizeof what, "%s: reserved part", c->name);
            expect_mbi(mm, (char *)p + c->committed, MEM_RESERVE, 0, p, c->prot,
                       c->reserved - c->committed, what);
            expect_mbi(mm, (char *)p + c->reserved - 1, MEM_RESERVE, 0, p, c->prot, PG, what);
        }
        /* the reservation ends where it should */
        MEMORY_BASIC_INFORMATION after = vq(mm, (char *)p + c->reserved);
        if (after.AllocationBase == p)
            fail_msg("%s: the reservation extends beyond %zu bytes", c->name, c->reserved);
        release_ok(mm, p);
        if (avail_of(mm) != avail0) fail_msg("%s: release did not give the commit back", c->name);
        MEMORY_BASIC_INFORMATION gone = vq(mm, p);
        if (gone.State != MEM_FREE && gone.AllocationBase == p)
            fail_msg("%s: still a region after MEM_RELEASE", c->name);
    }
    IHostMemoryManager_Release(mm);
}

/* ==== bad arguments =========================================================================== */
typedef struct bad_case {
    const char *name;
    size_t size;
    DWORD type;
    DWORD prot;
    int level;
    HRESULT expect;
} bad_case;

static const bad_case k_bad_cases[] = {
    {"size 0", 0, MEM_RESERVE, PAGE_READWRITE, eTaskCritical, E_INVALIDARG},
    {"type 0", PG, 0, PAGE_READWRITE, eTaskCritical, E_INVALIDARG},
    {"MEM_DECOMMIT", PG, MEM_DECOMMIT, PAGE_READWRITE, eTaskCritical, E_INVALIDARG},
    {"MEM_RELEASE", PG, MEM_RELEASE, PAGE_READWRITE, eTaskCritical, E_INVALIDARG},
    {"unknown type bit", PG, MEM_COMMIT | 0x1, PAGE_READWRITE, eTaskCritical, E_INVALIDARG},
    {"MEM_FREE", PG, MEM_FREE, PAGE_READWRITE, eTaskCritical, E_INVALIDARG},
    {"MEM_RESET|MEM_COMMIT", PG, MEM_RESET | MEM_COMMIT, PAGE_READWRITE, eTaskCritical,
     E_INVALIDARG},
    {"MEM_RESET at NULL", PG, MEM_RESET, PAGE_READWRITE, eTaskCritical, E_INVALIDARG},
    {"MEM_TOP_DOWN alone", PG, MEM_TOP_DOWN, PAGE_READWRITE, eTaskCritical, E_INVALIDARG},
    {"protection 0", PG, MEM_COMMIT, 0, eTaskCritical, E_INVALIDARG},
    {"protection 0x3", PG, MEM_COMMIT, 0x3, eTaskCritical, E_INVALIDARG},
    {"PAGE_WRITECOPY", PG, MEM_COMMIT, 0x08, eTaskCritical, E_INVALIDARG},
    {"PAGE_GUARD|READWRITE", PG, MEM_COMMIT, 0x100 | PAGE_READWRITE, eTaskCritical, E_INVALIDARG},
    {"PAGE_NOCACHE|READWRITE", PG, MEM_RESERVE, 0x200 | PAGE_READWRITE, eTaskCritical,
     E_INVALIDARG},
    {"protection 0x80", PG, MEM_RESERVE, 0x80, eTaskCritical, E_INVALIDARG},
    {"level 3", PG, MEM_COMMIT, PAGE_READWRITE, 3, E_INVALIDARG},
    {"level -1", PG, MEM_COMMIT, PAGE_READWRITE, -1, E_INVALIDARG},
    {"size 2^62", (size_t)1 << 62, MEM_RESERVE, PAGE_READWRITE, eTaskCritical, ANY_FAILURE},
    {"size SIZE_MAX", SIZE_MAX, MEM_RESERVE, PAGE_READWRITE, eTaskCritical, ANY_FAILURE},
};

static void test_virtual_alloc_bad_args(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    size_t avail0 = avail_of(mm);
    for (size_t i = 0; i < TU_ARRAY_SIZE(k_bad_cases); i++) {
        const bad_case *c = &k_bad_cases[i];
        void *p = GARBAGE;
        HRESULT hr = IHostMemoryManager_VirtualAlloc(mm, NULL, c->size, c->type, c->prot,
                                                     (EMemoryCriticalLevel)c->level, &p);
        bool ok = c->expect == ANY_FAILURE ? FAILED(hr) : hr == c->expect;
        if (!ok) fail_msg("%s: 0x%08x, expected 0x%08x", c->name, HR(hr), HR(c->expect));
        if (p != NULL) fail_msg("%s: *ppMem = %p after a failure", c->name, p);
    }
    assert_hr(IHostMemoryManager_VirtualAlloc(mm, NULL, PG, MEM_COMMIT, PAGE_READWRITE,
                                              eTaskCritical, NULL),
              E_POINTER);
    if (avail_of(mm) != avail0) fail_msg("failed requests moved the budget");
    IHostMemoryManager_Release(mm);
}

/* ==== VirtualAlloc at a given address ========================================================= */
static void test_virtual_alloc_at_address(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    size_t avail0 = avail_of(mm);
    void *base = va_ok(mm, NULL, 4 * GRAN, MEM_RESERVE, PAGE_READWRITE);
    char *b = base;
    /* commit inside the reservation: the range is rounded out to pages */
    void *c = va_ok(mm, b + 3 * PG + 10, 5000, MEM_COMMIT, PAGE_READWRITE);
    assert_ptr_equal(c, b + 3 * PG);
    expect_mbi(mm, b, MEM_RESERVE, 0, b, PAGE_READWRITE, 3 * PG, "before the commit");
    expect_mbi(mm, b + 3 * PG, MEM_COMMIT, PAGE_READWRITE, b, PAGE_READWRITE, 2 * PG, "commit");
    expect_mbi(mm, b + 5 * PG, MEM_RESERVE, 0, b, PAGE_READWRITE, 4 * GRAN - 5 * PG, "after");
    assert_int_equal(avail0 - avail_of(mm), 2 * PG);
    memset(c, 0x31, 2 * PG);
    /* committing committed pages again: no double count, contents kept */
    void *c2 = va_ok(mm, b + 3 * PG, 2 * PG, MEM_COMMIT, PAGE_READWRITE);
    assert_ptr_equal(c2, c);
    assert_int_equal(avail0 - avail_of(mm), 2 * PG);
    assert_true(all_bytes(c, 2 * PG, 0x31));
    /* a commit overlapping committed and reserved pages counts the new ones only */
    va_ok(mm, b + 4 * PG, 3 * PG, MEM_COMMIT, PAGE_READWRITE);
    assert_int_equal(avail0 - avail_of(mm), 4 * PG);
    /* a commit with another protection over committed pages sets it */
    va_ok(mm, b + 3 * PG, PG, MEM_COMMIT, PAGE_READONLY);
    expect_mbi(mm, b + 3 * PG, MEM_COMMIT, PAGE_READONLY, b, PAGE_READWRITE, PG, "recommit RO");
    /* a commit reaching past the reservation fails and commits nothing */
    void *p = GARBAGE;
    HRESULT hr = IHostMemoryManager_VirtualAlloc(mm, b + 4 * GRAN - PG, 2 * PG, MEM_COMMIT,
                                                 PAGE_READWRITE, eTaskCritical, &p);
    if (SUCCEEDED(hr) || p != NULL)
        fail_msg("commit across the end of a reservation: 0x%08x, %p", HR(hr), p);
    assert_int_equal(avail0 - avail_of(mm), 4 * PG);
    expect_mbi(mm, b + 4 * GRAN - PG, MEM_RESERVE, 0, b, PAGE_READWRITE, PG, "end");
    /* a commit where nothing is reserved */
    void *nowhere = free_granule();
    p = GARBAGE;
    assert_hr(IHostMemoryManager_VirtualAlloc(mm, nowhere, PG, MEM_COMMIT, PAGE_READWRITE,
                                              eTaskCritical, &p),
              HOST_E_INVALIDOPERATION);
    assert_null(p);
    int on_stack = 0;
    p = GARBAGE;
    assert_hr(IHostMemoryManager_VirtualAlloc(mm, &on_stack, PG, MEM_COMMIT, PAGE_READWRITE,
                                              eTaskCritical, &p),
              HOST_E_INVALIDOPERATION);
    assert_null(p);
    /* reserving inside an existing reservation fails and leaves it alone */
    p = GARBAGE;
    hr = IHostMemoryManager_VirtualAlloc(mm, b + GRAN, GRAN, MEM_RESERVE, PAGE_READWRITE,
                                         eTaskCritical, &p);
    if (SUCCEEDED(hr) || p != NULL)
        fail_msg("reserve inside an existing reservation: 0x%08x, %p", HR(hr), p);
    p = GARBAGE;
    hr = IHostMemoryManager_VirtualAlloc(mm, b, PG, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE,
                                         eTaskCritical, &p);
    if (SUCCEEDED(hr) || p != NULL)
        fail_msg("reserve+commit over an existing reservation: 0x%08x, %p", HR(hr), p);
    assert_true(all_bytes(b + 4 * PG, PG, 0x31));
    expect_mbi(mm, b + 5 * PG, MEM_COMMIT, PAGE_READWRITE, b, PAGE_READWRITE, 2 * PG, "intact");
    /* ... and over a mapping that is not ours */
    unsigned char *foreign =
        mmap(NULL, GRAN * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(foreign != MAP_FAILED);
    unsigned char *fg = (unsigned char *)(((uintptr_t)foreign + GRAN - 1) & ~(uintptr_t)(GRAN - 1));
    memset(foreign, 0x42, 2 * GRAN);
    p = GARBAGE;
    hr =
        IHostMemoryManager_VirtualAlloc(mm, fg, PG, MEM_RESERVE, PAGE_READWRITE, eTaskCritical, &p);
    if (SUCCEEDED(hr) || p != NULL) fail_msg("reserve over a foreign mapping: 0x%08x", HR(hr));
    assert_true(all_bytes(foreign, 2 * GRAN, 0x42));
    munmap(foreign, 2 * GRAN);
    release_ok(mm, base);
    assert_int_equal(avail_of(mm), avail0);

    /* reserve at a free address: exactly there */
    void *at = free_granule();
    p = va_ok(mm, at, 2 * GRAN, MEM_RESERVE, PAGE_READONLY);
    assert_ptr_equal(p, at);
    expect_mbi(mm, at, MEM_RESERVE, 0, at, PAGE_READONLY, 2 * GRAN, "reserved at an address");
    release_ok(mm, at);
    /* an unaligned address is rounded down to the granule */
    at = free_granule();
    p = va_ok(mm, (char *)at + 0x1234, 10000, MEM_RESERVE, PAGE_READWRITE);
    assert_ptr_equal(p, at);
    expect_mbi(mm, at, MEM_RESERVE, 0, at, PAGE_READWRITE, GRAN, "rounded reservation");
    release_ok(mm, at);
    /* reserve and commit at a free granule */
    at = free_granule();
    p = va_ok(mm, at, 3 * PG, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    assert_ptr_equal(p, at);
    expect_mbi(mm, at, MEM_COMMIT, PAGE_READWRITE, at, PAGE_READWRITE, 3 * PG, "reserve+commit");
    assert_int_equal(avail0 - avail_of(mm), 3 * PG);
    memset(p, 1, 3 * PG);
    release_ok(mm, at);
    assert_int_equal(avail_of(mm), avail0);
    IHostMemoryManager_Release(mm);
}

/* ==== MEM_RESET ============================================================================== */
static void test_virtual_alloc_reset(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    char *b = va_ok(mm, NULL, 4 * GRAN, MEM_RESERVE, PAGE_READWRITE);
    va_ok(mm, b, 8 * PG, MEM_COMMIT, PAGE_READWRITE);
    memset(b, 0xAB, 8 * PG);
    size_t avail0 = avail_of(mm);
    void *r = va_ok(mm, b + PG, 2 * PG, MEM_RESET, PAGE_NOACCESS); /* protection ignored */
    assert_ptr_equal(r, b + PG);
    assert_int_equal(avail_of(mm), avail0); /* still committed, still counted */
    expect_mbi(mm, b, MEM_COMMIT, PAGE_READWRITE, b, PAGE_READWRITE, 8 * PG, "after reset");
    assert_true(all_bytes(b, PG, 0xAB)); /* pages outside the range are untouched */
    assert_true(all_bytes(b + 3 * PG, 5 * PG, 0xAB));
    memset(b + PG, 0x11, 2 * PG); /* still usable */
    assert_true(all_bytes(b + PG, 2 * PG, 0x11));
    /* not committed: refused */
    void *p = GARBAGE;
    assert_hr(IHostMemoryManager_VirtualAlloc(mm, b + 7 * PG, 2 * PG, MEM_RESET, PAGE_READWRITE,
                                              eTaskCritical, &p),
              E_INVALIDARG);
    assert_null(p);
    /* not ours */
    p = GARBAGE;
    assert_hr(IHostMemoryManager_VirtualAlloc(mm, free_granule(), PG, MEM_RESET, PAGE_READWRITE,
                                              eTaskCritical, &p),
              HOST_E_INVALIDOPERATION);
    assert_null(p);
    release_ok(mm, b);
    IHostMemoryManager_Release(mm);
}

/* ==== the budget ================================================================================
 */
static void test_virtual_alloc_budget(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(MIB);
    assert_int_equal(avail_of(mm), MIB);
    /* more than the limit: E_OUTOFMEMORY, nothing kept */
    void *p = GARBAGE;
    assert_hr(IHostMemoryManager_VirtualAlloc(mm, NULL, 2 * MIB, MEM_COMMIT, PAGE_READWRITE,
                                              eTaskCritical, &p),
              E_OUTOFMEMORY);
    assert_null(p);
    assert_int_equal(avail_of(mm), MIB);
    /* reservations are free */
    char *big = va_ok(mm, NULL, 64 * MIB, MEM_RESERVE, PAGE_READWRITE);
    char *other = va_ok(mm, NULL, GRAN, MEM_RESERVE, PAGE_READWRITE);
    assert_int_equal(avail_of(mm), MIB);
    /* commit up to the limit exactly */
    va_ok(mm, big, MIB, MEM_COMMIT, PAGE_READWRITE);
    assert_int_equal(avail_of(mm), 0);
    p = GARBAGE;
    assert_hr(IHostMemoryManager_VirtualAlloc(mm, other, 1, MEM_COMMIT, PAGE_READWRITE,
                                              eProcessCritical, &p),
              E_OUTOFMEMORY);
    assert_null(p);
    expect_mbi(mm, other, MEM_RESERVE, 0, other, PAGE_READWRITE, GRAN, "after a refused commit");
    /* a heap allocation is refused too: one budget */
    IHostMalloc *m = NULL;
    assert_hr(IHostMemoryManager_CreateMalloc(mm, 0, &m), S_OK);
    p = GARBAGE;
    assert_hr(IHostMalloc_Alloc(m, 100, eProcessCritical, &p), E_OUTOFMEMORY);
    /* decommit one page: one page fits again */
    assert_hr(IHostMemoryManager_VirtualFree(mm, big + 5 * PG, PG, MEM_DECOMMIT), S_OK);
    assert_int_equal(avail_of(mm), PG);
    p = va_ok(mm, other, PG, MEM_COMMIT, PAGE_READWRITE);
    assert_ptr_equal(p, other);
    assert_int_equal(avail_of(mm), 0);
    /* decommitting reserved pages again gives nothing back twice */
    assert_hr(IHostMemoryManager_VirtualFree(mm, big + 5 * PG, PG, MEM_DECOMMIT), S_OK);
    assert_int_equal(avail_of(mm), 0);
    release_ok(mm, big);
    assert_int_equal(avail_of(mm), MIB - PG);
    release_ok(mm, other);
    assert_int_equal(avail_of(mm), MIB);
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(mm);
}

static void test_virtual_alloc_levels(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(MIB);
    cfg.reserve_appdomain = 256 * KIB;
    cfg.reserve_process = 256 * KIB;
    IHostMemoryManager *mm = new_manager_cfg(&cfg);
    char *b = va_ok(mm, NULL, 4 * MIB, MEM_RESERVE, PAGE_READWRITE);
    static const struct {
        size_t size;
        EMemoryCriticalLevel level;
        HRESULT expect;
    } steps[] = {
        {512 * KIB + PG, eTaskCritical, E_OUTOFMEMORY},      /* task ceiling: 512 KiB */
        {512 * KIB, eTaskCritical, S_OK},                    /* exactly at the ceiling */
        {PG, eTaskCritical, E_OUTOFMEMORY},                  /* task is full */
        {256 * KIB + PG, eAppDomainCritical, E_OUTOFMEMORY}, /* AppDomain ceiling: 768 KiB */
        {256 * KIB, eAppDomainCritical, S_OK},
        {PG, eAppDomainCritical, E_OUTOFMEMORY},
        {256 * KIB, eProcessCritical, S_OK}, /* up to the limit */
        {PG, eProcessCritical, E_OUTOFMEMORY},
    };
    size_t off = 0;
    for (size_t i = 0; i < TU_ARRAY_SIZE(steps); i++) {
        void *p = GARBAGE;
        HRESULT hr = IHostMemoryManager_VirtualAlloc(mm, b + off, steps[i].size, MEM_COMMIT,
                                                     PAGE_READWRITE, steps[i].level, &p);
        if (hr != steps[i].expect)
            fail_msg("step %zu: commit %zu at level %d: 0x%08x, expected 0x%08x", i, steps[i].size,
                     (int)steps[i].level, HR(hr), HR(steps[i].expect));
        if (hr == S_OK) {
            assert_ptr_equal(p, b + off);
            off += steps[i].size;
        } else {
            assert_null(p);
        }
    }
    release_ok(mm, b);
    IHostMemoryManager_Release(mm);
}

/* The native door: statistics of virtual memory. */
static void test_virtual_native_stats(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(MIB);
    hm_manager *mgr = tu_manager(&cfg);
    void *b = NULL;
    assert_int_equal(
        hm_virtual_alloc(mgr, NULL, 3 * GRAN, MEM_RESERVE, PAGE_READWRITE, eAppDomainCritical, &b),
        HM_OK);
    void *c = NULL;
    assert_int_equal(
        hm_virtual_alloc(mgr, b, 5 * PG, MEM_COMMIT, PAGE_READWRITE, eAppDomainCritical, &c),
        HM_OK);
    void *d = GARBAGE;
    assert_int_equal(
        hm_virtual_alloc(mgr, b, 2 * MIB, MEM_COMMIT, PAGE_READWRITE, eTaskCritical, &d),
        HM_ERR_NOT_OWNED); /* beyond the reservation */
    assert_null(d);
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    assert_int_equal(s.failures[eTaskCritical], 0); /* not ours: not a failure for lack of memory */
    /* one commit refused for lack of budget is one failure */
    void *e = GARBAGE;
    assert_int_equal(
        hm_virtual_alloc(mgr, NULL, 2 * MIB, MEM_COMMIT, PAGE_READWRITE, eTaskCritical, &e),
        HM_ERR_NOMEM);
    assert_null(e);
    hm_manager_stats(mgr, &s);
    if (s.failures[eTaskCritical] != 1)
        fail_msg("one refused VirtualAlloc commit counted as %zu task-critical failures",
                 s.failures[eTaskCritical]);
    assert_int_equal(s.virtual_reserved, 3 * GRAN);
    assert_int_equal(s.virtual_committed, 5 * PG);
    assert_int_equal(s.committed, 5 * PG);
    assert_int_equal(s.requests[eAppDomainCritical], 2);
    assert_int_equal(s.requests[eTaskCritical], 2);
    assert_int_equal(s.failures[eAppDomainCritical], 0);
    /* len < 48: nothing written */
    MEMORY_BASIC_INFORMATION mbi;
    assert_int_equal(hm_virtual_query(mgr, b, &mbi, sizeof mbi - 1), 0);
    assert_int_equal(hm_virtual_query(mgr, b, &mbi, sizeof mbi), sizeof mbi);
    assert_int_equal(mbi.State, MEM_COMMIT);
    assert_int_equal(hm_virtual_free(mgr, b, PG, MEM_DECOMMIT), HM_OK);
    hm_manager_stats(mgr, &s);
    assert_int_equal(s.virtual_committed, 4 * PG);
    assert_int_equal(s.committed, 4 * PG);
    /* the manager goes with a live region: its memory is unmapped, its commit given back */
    hm_manager_release(mgr);
    if (msync(b, PG, MS_ASYNC) == 0) fail_msg("region %p still mapped after its manager went", b);
}

/* ==== VirtualFree ==============================================================================
 */
typedef struct vf_case {
    const char *name;
    size_t offset; /* from the base of a 4-granule reservation, fully committed */
    size_t size;
    DWORD type;
    HRESULT expect;
    size_t first_page, pages; /* on success: the pages that must be decommitted */
} vf_case;

#define RES_PAGES (4 * GRAN / PG)
static const vf_case k_vf_cases[] = {
    {"decommit 3 pages inside", 2 * PG, 3 * PG, MEM_DECOMMIT, S_OK, 2, 3},
    {"decommit 1 byte", 2 * PG + 100, 1, MEM_DECOMMIT, S_OK, 2, 1},
    {"decommit across a page boundary", 3 * PG - 1, 2, MEM_DECOMMIT, S_OK, 2, 2},
    {"decommit the first page", 0, PG, MEM_DECOMMIT, S_OK, 0, 1},
    {"decommit the last page", 4 * GRAN - PG, PG, MEM_DECOMMIT, S_OK, RES_PAGES - 1, 1},
    {"decommit a whole granule inside", GRAN, GRAN, MEM_DECOMMIT, S_OK, GRAN / PG, GRAN / PG},
    {"decommit everything, size 0", 0, 0, MEM_DECOMMIT, S_OK, 0, RES_PAGES},
    {"decommit everything, full size", 0, 4 * GRAN, MEM_DECOMMIT, S_OK, 0, RES_PAGES},
    {"decommit size 0 not at the base", PG, 0, MEM_DECOMMIT, E_INVALIDARG, 0, 0},
    {"decommit past the end", 4 * GRAN - PG, 2 * PG, MEM_DECOMMIT, E_INVALIDARG, 0, 0},
    {"release with a size", 0, PG, MEM_RELEASE, E_INVALIDARG, 0, 0},
    {"release with the full size", 0, 4 * GRAN, MEM_RELEASE, E_INVALIDARG, 0, 0},
    {"release not at the base", GRAN, 0, MEM_RELEASE, E_INVALIDARG, 0, 0},
    {"free type 0", 0, 0, 0, E_INVALIDARG, 0, 0},
    {"free type DECOMMIT|RELEASE", 0, 0, MEM_DECOMMIT | MEM_RELEASE, E_INVALIDARG, 0, 0},
    {"free type MEM_COMMIT", 0, PG, MEM_COMMIT, E_INVALIDARG, 0, 0},
};

static void test_virtual_free_table(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    size_t avail0 = avail_of(mm);
    for (size_t i = 0; i < TU_ARRAY_SIZE(k_vf_cases); i++) {
        const vf_case *c = &k_vf_cases[i];
        unsigned char *b = va_ok(mm, NULL, 4 * GRAN, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
        memset(b, 0xAB, 4 * GRAN);
        HRESULT hr = IHostMemoryManager_VirtualFree(mm, b + c->offset, c->size, c->type);
        if (hr != c->expect)
            fail_msg("%s: 0x%08x, expected 0x%08x", c->name, HR(hr), HR(c->expect));
        size_t avail = avail_of(mm);
        size_t want = avail0 - 4 * GRAN + c->pages * PG;
        if (avail != want) fail_msg("%s: available %zu, expected %zu", c->name, avail, want);
        for (size_t pg = 0; pg < RES_PAGES; pg++) {
            bool gone = pg >= c->first_page && pg < c->first_page + c->pages;
            MEMORY_BASIC_INFORMATION m = vq(mm, b + pg * PG);
            if (m.State != (gone ? (DWORD)MEM_RESERVE : (DWORD)MEM_COMMIT) || m.AllocationBase != b)
                fail_msg("%s: page %zu has State 0x%x, base %p", c->name, pg, m.State,
                         m.AllocationBase);
            if (!gone && !all_bytes(b + pg * PG, PG, 0xAB))
                fail_msg("%s: page %zu lost its contents", c->name, pg);
        }
        if (c->pages > 0) {
            char what[128];
            snprintf(what, sizeof what, "%s: decommitted run", c->name);
            expect_mbi(mm, b + c->first_page * PG, MEM_RESERVE, 0, b, PAGE_READWRITE, c->pages * PG,
                       what);
            /* recommitted pages read as zero */
            va_ok(mm, b + c->first_page * PG, c->pages * PG, MEM_COMMIT, PAGE_READWRITE);
            if (!all_bytes(b + c->first_page * PG, c->pages * PG, 0))
                fail_msg("%s: recommitted pages do not read as zero", c->name);
        }
        release_ok(mm, b);
        assert_int_equal(avail_of(mm), avail0);
        expect_mbi(mm, b, MEM_FREE, ANYV, (void *)ANYV, ANYV, ANYV, "released");
        /* released: the address is no longer the manager's */
        assert_hr(IHostMemoryManager_VirtualFree(mm, b, 0, MEM_RELEASE), HOST_E_INVALIDOPERATION);
        assert_hr(IHostMemoryManager_VirtualFree(mm, b, PG, MEM_DECOMMIT), HOST_E_INVALIDOPERATION);
    }
    IHostMemoryManager_Release(mm);
}

static void test_virtual_free_foreign(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    IHostMalloc *m = NULL;
    assert_hr(IHostMemoryManager_CreateMalloc(mm, 0, &m), S_OK);
    void *blk = NULL;
    assert_hr(IHostMalloc_Alloc(m, 100000, eTaskCritical, &blk), S_OK);
    void *small = NULL;
    assert_hr(IHostMalloc_Alloc(m, 64, eTaskCritical, &small), S_OK);
    int on_stack = 0;
    void *heap_block = malloc(64);
    /* a region of another manager */
    IHostMemoryManager *other = vm_manager(64 * MIB);
    void *theirs = va_ok(other, NULL, GRAN, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    /* a region of ours, to be sure nothing changes */
    unsigned char *mine = va_ok(mm, NULL, GRAN, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    memset(mine, 0x5C, GRAN);
    void *addrs[] = {
        &on_stack, heap_block, tu_unmapped_address(),     blk,
        small,     theirs,     (void *)(uintptr_t)0x1000, (void *)(uintptr_t)0x7ffffffff000ull};
    const DWORD types[] = {MEM_RELEASE, MEM_DECOMMIT};
    for (size_t i = 0; i < TU_ARRAY_SIZE(addrs); i++) {
        for (size_t t = 0; t < 2; t++) {
            HRESULT hr = IHostMemoryManager_VirtualFree(mm, addrs[i],
                                                        types[t] == MEM_RELEASE ? 0 : PG, types[t]);
            if (hr != HOST_E_INVALIDOPERATION)
                fail_msg("VirtualFree(address %zu = %p, 0x%x): 0x%08x, expected "
                         "HOST_E_INVALIDOPERATION",
                         i, addrs[i], types[t], HR(hr));
        }
        DWORD old = 0;
        HRESULT hr = IHostMemoryManager_VirtualProtect(mm, addrs[i], PG, PAGE_READONLY, &old);
        if (hr != HOST_E_INVALIDOPERATION)
            fail_msg("VirtualProtect(address %zu = %p): 0x%08x, expected "
                     "HOST_E_INVALIDOPERATION",
                     i, addrs[i], HR(hr));
    }
    /* NULL is not a region either */
    assert_true(FAILED(IHostMemoryManager_VirtualFree(mm, NULL, 0, MEM_RELEASE)));
    assert_true(all_bytes(mine, GRAN, 0x5C));
    memset(theirs, 1, GRAN); /* still mapped and writable */
    memset(blk, 1, 100000);
    release_ok(mm, mine);
    release_ok(other, theirs);
    free(heap_block);
    IHostMalloc_Release(m);
    IHostMemoryManager_Release(other);
    IHostMemoryManager_Release(mm);
}

/* ==== VirtualQuery =============================================================================
 */
static void test_virtual_query(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    char *b = va_ok(mm, NULL, 2 * GRAN, MEM_RESERVE, PAGE_EXECUTE_READWRITE);
    va_ok(mm, b + 4 * PG, 2 * PG, MEM_COMMIT, PAGE_READONLY);
    va_ok(mm, b + 6 * PG, PG, MEM_COMMIT, PAGE_READWRITE);
    /* runs of equal pages */
    expect_mbi(mm, b + 1, MEM_RESERVE, 0, b, PAGE_EXECUTE_READWRITE, 4 * PG, "run 1");
    expect_mbi(mm, b + 4 * PG + 5, MEM_COMMIT, PAGE_READONLY, b, PAGE_EXECUTE_READWRITE, 2 * PG,
               "run 2");
    expect_mbi(mm, b + 5 * PG, MEM_COMMIT, PAGE_READONLY, b, PAGE_EXECUTE_READWRITE, PG,
               "run 2, second page");
    expect_mbi(mm, b + 6 * PG, MEM_COMMIT, PAGE_READWRITE, b, PAGE_EXECUTE_READWRITE, PG, "run 3");
    expect_mbi(mm, b + 7 * PG, MEM_RESERVE, 0, b, PAGE_EXECUTE_READWRITE, 2 * GRAN - 7 * PG,
               "run 4");
    /* a stack address: another mapping of the process, committed read-write */
    int on_stack = 1;
    MEMORY_BASIC_INFORMATION m = vq(mm, &on_stack);
    assert_int_equal(m.State, MEM_COMMIT);
    assert_ptr_equal(m.BaseAddress, (void *)((uintptr_t)&on_stack & ~(uintptr_t)(PG - 1)));
    assert_int_equal(m.Protect, PAGE_READWRITE);
    assert_true((uintptr_t)m.AllocationBase <= (uintptr_t)&on_stack);
    assert_true(m.RegionSize > 0 && m.RegionSize % PG == 0);
    /* read-only memory of the process */
    void *ro = mmap(NULL, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(ro != MAP_FAILED);
    m = vq(mm, (char *)ro + PG);
    assert_int_equal(m.State, MEM_COMMIT);
    assert_int_equal(m.Protect, PAGE_READONLY);
    munmap(ro, 2 * PG);
    /* an unmapped address */
    void *un = tu_unmapped_address();
    m = vq(mm, un);
    assert_int_equal(m.State, MEM_FREE);
    assert_ptr_equal(m.BaseAddress, (void *)((uintptr_t)un & ~(uintptr_t)(PG - 1)));
    assert_true(m.RegionSize >= PG && m.RegionSize % PG == 0);
    /* arguments */
    MEMORY_BASIC_INFORMATION buf[2];
    SIZE_T res = 77;
    assert_hr(IHostMemoryManager_VirtualQuery(mm, b, buf, sizeof buf[0], NULL), E_POINTER);
    assert_hr(IHostMemoryManager_VirtualQuery(mm, b, NULL, sizeof buf[0], &res), E_POINTER);
    res = 77;
    assert_hr(IHostMemoryManager_VirtualQuery(mm, b, buf, sizeof buf[0] - 1, &res), E_INVALIDARG);
    assert_int_equal(res, 0);
    res = 77;
    assert_hr(IHostMemoryManager_VirtualQuery(mm, b, buf, 0, &res), E_INVALIDARG);
    assert_int_equal(res, 0);
    /* a bigger buffer: 48 bytes written, the rest untouched */
    memset(buf, 0xEE, sizeof buf);
    res = 77;
    assert_hr(IHostMemoryManager_VirtualQuery(mm, b + 4 * PG, buf, sizeof buf, &res), S_OK);
    assert_int_equal(res, 48);
    assert_int_equal(buf[0].State, MEM_COMMIT);
    assert_true(all_bytes(&buf[1], sizeof buf[1], 0xEE));
    release_ok(mm, b);
    m = vq(mm, b);
    if (m.State != MEM_FREE && m.AllocationBase == b) fail_msg("released region still answers");
    IHostMemoryManager_Release(mm);
}

/* ==== addresses and sizes at the edges ========================================================
 * Every case must be refused with E_INVALIDARG and change nothing: no reservation made, nothing
 * decommitted, the budget untouched. */
static void expect_manager_unchanged(IHostMemoryManager *mm, size_t avail, const char *what) {
    size_t now = avail_of(mm);
    if (now != avail) fail_msg("%s: available bytes %zu, before %zu", what, now, avail);
}

/* VirtualAlloc(addr, ..., MEM_RESERVE|MEM_COMMIT) with 1 <= addr < 64 KiB: the address rounds
 * down to 0, which must not be taken as "anywhere" (it used to commit against another base and
 * crash). */
static void test_virtual_alloc_low_address(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    size_t avail = avail_of(mm);
    static const uintptr_t addrs[] = {1, 0x10, 0x1000, 0x8000, 0xFFFF};
    static const DWORD types[] = {MEM_RESERVE | MEM_COMMIT, MEM_COMMIT, MEM_RESET};
    for (size_t i = 0; i < TU_ARRAY_SIZE(addrs); i++) {
        for (size_t t = 0; t < TU_ARRAY_SIZE(types); t++) {
            void *p = GARBAGE;
            HRESULT hr = IHostMemoryManager_VirtualAlloc(mm, (void *)addrs[i], GRAN, types[t],
                                                         PAGE_READWRITE, eTaskCritical, &p);
            if (hr != E_INVALIDARG || p != NULL)
                fail_msg("VirtualAlloc(%#lx, 64K, 0x%x): 0x%08x, %p (expected E_INVALIDARG, NULL)",
                         (unsigned long)addrs[i], types[t], HR(hr), p);
        }
    }
    /* the top of the address space, and ranges that run past it or wrap */
    static const struct {
        uintptr_t addr;
        size_t size;
    } top[] = {{(uintptr_t)1 << 47, GRAN},
               {UINTPTR_MAX - 0xFFFF, GRAN},
               {UINTPTR_MAX & ~(uintptr_t)0xFFFF, 2 * GRAN},
               {((uintptr_t)1 << 47) - GRAN, 2 * GRAN}};
    for (size_t i = 0; i < TU_ARRAY_SIZE(top); i++) {
        void *p = GARBAGE;
        HRESULT hr = IHostMemoryManager_VirtualAlloc(mm, (void *)top[i].addr, top[i].size,
                                                     MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE,
                                                     eTaskCritical, &p);
        if (hr != E_INVALIDARG || p != NULL)
            fail_msg("VirtualAlloc(%#lx, %zu): 0x%08x, %p (expected E_INVALIDARG, NULL)",
                     (unsigned long)top[i].addr, top[i].size, HR(hr), p);
    }
    expect_manager_unchanged(mm, avail, "after the refused low and high addresses");
    /* the manager is intact: a normal reservation still works */
    void *b = va_ok(mm, NULL, GRAN, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    memset(b, 1, GRAN);
    release_ok(mm, b);
    IHostMemoryManager_Release(mm);
}

/* VirtualAlloc(0x1000, 64K, MEM_RESERVE) used to return S_OK with *ppMem = NULL, leaving a
 * reservation nobody could free. */
static void test_virtual_reserve_low_address(void **state) {
    (void)state;
    hm_config cfg = tu_test_config(64 * MIB);
    hm_manager *mgr = tu_manager(&cfg);
    static const uintptr_t addrs[] = {1, 0x1000, 0xF000, 0xFFFF};
    for (size_t i = 0; i < TU_ARRAY_SIZE(addrs); i++) {
        void *p = GARBAGE;
        assert_int_equal(hm_virtual_alloc(mgr, (void *)addrs[i], GRAN, MEM_RESERVE, PAGE_READWRITE,
                                          eTaskCritical, &p),
                         HM_ERR_INVALID_ARG);
        assert_null(p);
    }
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    if (s.virtual_reserved != 0 || s.virtual_committed != 0)
        fail_msg("refused reservations left %zu bytes reserved, %zu committed", s.virtual_reserved,
                 s.virtual_committed);
    /* the COM door answers the same */
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    void *p = GARBAGE;
    assert_hr(IHostMemoryManager_VirtualAlloc(mm, (void *)0x1000, GRAN, MEM_RESERVE, PAGE_READWRITE,
                                              eTaskCritical, &p),
              E_INVALIDARG);
    assert_null(p);
    IHostMemoryManager_Release(mm);
    /* 64 KiB itself is an address like any other: refused only if taken (it is not ours) */
    hm_manager_release(mgr);
}

/* VirtualFree(r + 4096, SIZE_MAX, MEM_DECOMMIT): the end wrapped to the start, so S_OK came
 * back and nothing was decommitted. A range past the region must be refused, with every page
 * still committed. VirtualProtect had the same wrap. */
static void test_virtual_free_decommit_wrap(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    char *r = va_ok(mm, NULL, 2 * GRAN, MEM_RESERVE | MEM_COMMIT, PAGE_READWRITE);
    memset(r, 7, 2 * GRAN);
    size_t avail = avail_of(mm);
    static const size_t offs[] = {0, 1, PG, PG + 100, GRAN};
    static const size_t sizes[] = {SIZE_MAX, SIZE_MAX - PG, SIZE_MAX - PG + 1, SIZE_MAX / 2,
                                   2 * GRAN + 1};
    for (size_t i = 0; i < TU_ARRAY_SIZE(offs); i++) {
        for (size_t k = 0; k < TU_ARRAY_SIZE(sizes); k++) {
            HRESULT hr = IHostMemoryManager_VirtualFree(mm, r + offs[i], sizes[k], MEM_DECOMMIT);
            if (hr != E_INVALIDARG)
                fail_msg("VirtualFree(r + %zu, %zu, MEM_DECOMMIT): 0x%08x, expected E_INVALIDARG",
                         offs[i], sizes[k], HR(hr));
            DWORD old = 0;
            hr = IHostMemoryManager_VirtualProtect(mm, r + offs[i], sizes[k], PAGE_READONLY, &old);
            /* a wrapping size is a bad argument; one that only runs past the region is a range
             * this manager did not hand out */
            if (sizes[k] > SIZE_MAX / 2 ? hr != E_INVALIDARG : !FAILED(hr))
                fail_msg("VirtualProtect(r + %zu, %zu): 0x%08x", offs[i], sizes[k], HR(hr));
        }
    }
    /* nothing changed: every page committed, read-write, with its contents */
    expect_mbi(mm, r, MEM_COMMIT, PAGE_READWRITE, r, PAGE_READWRITE, 2 * GRAN, "after the wraps");
    assert_true(all_bytes(r, 2 * GRAN, 7));
    expect_manager_unchanged(mm, avail, "after the refused decommits");
    /* the exact rest of the region is still a valid range */
    assert_hr(IHostMemoryManager_VirtualFree(mm, r + PG, 2 * GRAN - PG, MEM_DECOMMIT), S_OK);
    expect_mbi(mm, r + PG, MEM_RESERVE, 0, r, PAGE_READWRITE, 2 * GRAN - PG, "decommitted tail");
    release_ok(mm, r);
    IHostMemoryManager_Release(mm);
}

/* VirtualQuery at the ends of the address space: UINTPTR_MAX used to answer MEM_FREE with a
 * size wrapping past 2^64, and kernel or non-canonical addresses MEM_FREE. */
static void test_virtual_query_extremes(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    static const uintptr_t outside[] = {UINTPTR_MAX,           UINTPTR_MAX & ~(uintptr_t)(PG - 1),
                                        (uintptr_t)1 << 47,    (uintptr_t)1 << 63,
                                        0x0000800000000000ull, 0xffff800000000000ull,
                                        0x00ff000000000000ull};
    for (size_t i = 0; i < TU_ARRAY_SIZE(outside); i++) {
        MEMORY_BASIC_INFORMATION mbi;
        SIZE_T res = 77;
        HRESULT hr =
            IHostMemoryManager_VirtualQuery(mm, (void *)outside[i], &mbi, sizeof mbi, &res);
        if (hr != E_INVALIDARG || res != 0)
            fail_msg("VirtualQuery(%#lx): 0x%08x, %zu (expected E_INVALIDARG, 0)",
                     (unsigned long)outside[i], HR(hr), (size_t)res);
        hm_manager *none = NULL;
        assert_int_equal(hm_virtual_query(none, (void *)outside[i], &mbi, sizeof mbi), 0);
    }
    /* the lowest and the highest user pages: an answer whose range stays below 2^47 */
    static const uintptr_t inside[] = {0, 1, 0xFFFF, ((uintptr_t)1 << 47) - 1,
                                       ((uintptr_t)1 << 47) - PG};
    for (size_t i = 0; i < TU_ARRAY_SIZE(inside); i++) {
        MEMORY_BASIC_INFORMATION m = vq(mm, (void *)inside[i]);
        uintptr_t base = (uintptr_t)m.BaseAddress;
        if (base != (inside[i] & ~(uintptr_t)(PG - 1)) || m.RegionSize == 0 ||
            m.RegionSize % PG != 0 || m.RegionSize > ((uintptr_t)1 << 47) - base)
            fail_msg("VirtualQuery(%#lx): base %p, size %#zx", (unsigned long)inside[i],
                     m.BaseAddress, (size_t)m.RegionSize);
    }
    IHostMemoryManager_Release(mm);
}

/* ==== VirtualProtect ===========================================================================
 */
static void test_virtual_protect(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    char *b = va_ok(mm, NULL, GRAN, MEM_RESERVE, PAGE_READWRITE);
    va_ok(mm, b, 4 * PG, MEM_COMMIT, PAGE_READWRITE);
    DWORD old = 0;
    assert_hr(IHostMemoryManager_VirtualProtect(mm, b + PG, 2 * PG, PAGE_READONLY, &old), S_OK);
    assert_int_equal(old, PAGE_READWRITE);
    expect_mbi(mm, b, MEM_COMMIT, PAGE_READWRITE, b, PAGE_READWRITE, PG, "page 0");
    expect_mbi(mm, b + PG, MEM_COMMIT, PAGE_READONLY, b, PAGE_READWRITE, 2 * PG, "pages 1-2");
    expect_mbi(mm, b + 3 * PG, MEM_COMMIT, PAGE_READWRITE, b, PAGE_READWRITE, PG, "page 3");
    /* old protection is that of the first page */
    old = 0;
    assert_hr(IHostMemoryManager_VirtualProtect(mm, b + PG, 3 * PG, PAGE_EXECUTE_READ, &old), S_OK);
    assert_int_equal(old, PAGE_READONLY);
    /* unaligned address and size: the pages touched */
    old = 0;
    assert_hr(IHostMemoryManager_VirtualProtect(mm, b + 2 * PG - 1, 2, PAGE_NOACCESS, &old), S_OK);
    assert_int_equal(old, PAGE_EXECUTE_READ);
    expect_mbi(mm, b + PG, MEM_COMMIT, PAGE_NOACCESS, b, PAGE_READWRITE, 2 * PG, "unaligned");
    assert_hr(IHostMemoryManager_VirtualProtect(mm, b, 4 * PG, PAGE_READWRITE, &old), S_OK);
    assert_int_equal(old, PAGE_READWRITE);
    memset(b, 3, 4 * PG); /* writable again everywhere */
    /* reserved-only pages: refused, protection of committed pages unchanged */
    assert_hr(IHostMemoryManager_VirtualProtect(mm, b + 4 * PG, PG, PAGE_READONLY, &old),
              E_INVALIDARG);
    assert_hr(IHostMemoryManager_VirtualProtect(mm, b + 3 * PG, 2 * PG, PAGE_READONLY, &old),
              E_INVALIDARG);
    expect_mbi(mm, b + 3 * PG, MEM_COMMIT, PAGE_READWRITE, b, PAGE_READWRITE, 4 * PG - 3 * PG,
               "after refused protect");
    /* bad protections and arguments */
    static const DWORD bad[] = {
        0, 0x3, 0x8, 0x80, 0x100 | PAGE_READWRITE, 0x200 | PAGE_READONLY, 0xFFFFFFFFu};
    for (size_t i = 0; i < TU_ARRAY_SIZE(bad); i++) {
        HRESULT hr = IHostMemoryManager_VirtualProtect(mm, b, PG, bad[i], &old);
        if (hr != E_INVALIDARG)
            fail_msg("VirtualProtect(0x%x): 0x%08x, expected E_INVALIDARG", bad[i], HR(hr));
    }
    assert_hr(IHostMemoryManager_VirtualProtect(mm, b, PG, PAGE_READONLY, NULL), E_POINTER);
    assert_hr(IHostMemoryManager_VirtualProtect(mm, b, 0, PAGE_READONLY, &old), E_INVALIDARG);
    expect_mbi(mm, b, MEM_COMMIT, PAGE_READWRITE, b, PAGE_READWRITE, 4 * PG, "unchanged");
    /* decommit and recommit: the protection of the new commit */
    assert_hr(IHostMemoryManager_VirtualFree(mm, b + PG, PG, MEM_DECOMMIT), S_OK);
    va_ok(mm, b + PG, PG, MEM_COMMIT, PAGE_READONLY);
    expect_mbi(mm, b + PG, MEM_COMMIT, PAGE_READONLY, b, PAGE_READWRITE, PG, "recommitted");
    release_ok(mm, b);
    IHostMemoryManager_Release(mm);
}

/* ==== VirtualQuery while another thread changes the region =====================================
 */
#define CONC_PAGES 256

typedef struct conc_arg {
    IHostMemoryManager *mm;
    char *base;
    atomic_int done;
    unsigned iterations;
    char error[256];
    unsigned long queries;
} conc_arg;

static uint64_t xs(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void *conc_writer(void *a_) {
    conc_arg *a = a_;
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (unsigned i = 0; i < a->iterations; i++) {
        size_t first = xs(&s) % CONC_PAGES;
        size_t n = 1 + xs(&s) % 16;
        if (first + n > CONC_PAGES) n = CONC_PAGES - first;
        char *at = a->base + first * PG;
        void *p;
        DWORD old;
        HRESULT hr = S_OK;
        switch (xs(&s) % 3) {
        case 0:
            hr = IHostMemoryManager_VirtualAlloc(a->mm, at, n * PG, MEM_COMMIT,
                                                 (xs(&s) & 1) ? PAGE_READWRITE : PAGE_READONLY,
                                                 eTaskCritical, &p);
            break;
        case 1:
            hr = IHostMemoryManager_VirtualFree(a->mm, at, n * PG, MEM_DECOMMIT);
            break;
        default: /* fails on ranges that are not all committed: fine */
            (void)IHostMemoryManager_VirtualProtect(
                a->mm, at, n * PG, (xs(&s) & 1) ? PAGE_READWRITE : PAGE_READONLY, &old);
            break;
        }
        if (hr != S_OK && a->error[0] == '\0')
            snprintf(a->error, sizeof a->error, "writer step %u failed: 0x%08x", i, HR(hr));
    }
    atomic_store(&a->done, 1);
    return NULL;
}

static void *conc_reader(void *a_) {
    conc_arg *a = a_;
    uint64_t s = 12345;
    char *end = a->base + CONC_PAGES * PG;
    while (!atomic_load(&a->done) && a->error[0] == '\0') {
        char *addr = a->base + (xs(&s) % (CONC_PAGES * PG));
        MEMORY_BASIC_INFORMATION m;
        SIZE_T res = 0;
        HRESULT hr = IHostMemoryManager_VirtualQuery(a->mm, addr, &m, sizeof m, &res);
        a->queries++;
        const char *bad = NULL;
        char *bp = (char *)m.BaseAddress;
        if (hr != S_OK || res != sizeof m)
            bad = "result";
        else if (m.State != MEM_COMMIT && m.State != MEM_RESERVE)
            bad = "State";
        else if (m.AllocationBase != a->base || m.AllocationProtect != PAGE_READWRITE)
            bad = "AllocationBase/Protect";
        else if (bp != (char *)((uintptr_t)addr & ~(uintptr_t)(PG - 1)))
            bad = "BaseAddress";
        else if (m.RegionSize == 0 || m.RegionSize % PG != 0 || bp + m.RegionSize > end)
            bad = "RegionSize";
        else if (m.State == MEM_RESERVE && m.Protect != 0)
            bad = "Protect of reserved pages";
        else if (m.State == MEM_COMMIT && m.Protect != PAGE_READWRITE && m.Protect != PAGE_READONLY)
            bad = "Protect of committed pages";
        else if (m.Type != MEM_PRIVATE)
            bad = "Type";
        if (bad != NULL) {
            snprintf(a->error, sizeof a->error,
                     "query %lu of %p: bad %s (hr 0x%08x, Base %p, AllocBase %p, Size %zu, State "
                     "0x%x, Protect 0x%x)",
                     a->queries, (void *)addr, bad, HR(hr), m.BaseAddress, m.AllocationBase,
                     (size_t)m.RegionSize, m.State, m.Protect);
            break;
        }
    }
    return NULL;
}

static void test_virtual_query_concurrent(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    conc_arg a;
    memset(&a, 0, sizeof a);
    a.mm = mm;
    a.iterations = 20000;
    a.base = va_ok(mm, NULL, CONC_PAGES * PG, MEM_RESERVE, PAGE_READWRITE);
    pthread_t w, r;
    assert_int_equal(pthread_create(&r, NULL, conc_reader, &a), 0);
    assert_int_equal(pthread_create(&w, NULL, conc_writer, &a), 0);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    if (a.error[0] != '\0') fail_msg("%s", a.error);
    assert_true(a.queries > 0);
    release_ok(mm, a.base);
    IHostMemoryManager_Release(mm);
}

TU_TEST_MAIN(test_virtual_alloc_table, test_virtual_alloc_bad_args, test_virtual_alloc_at_address,
             test_virtual_alloc_reset, test_virtual_alloc_budget, test_virtual_alloc_levels,
             test_virtual_native_stats, test_virtual_free_table, test_virtual_free_foreign,
             test_virtual_query, test_virtual_protect, test_virtual_query_concurrent,
             test_virtual_alloc_low_address, test_virtual_reserve_low_address,
             test_virtual_free_decommit_wrap, test_virtual_query_extremes)
