/* SPDX-License-Identifier: MIT */
/* test_faults.c: every public call under failing OS calls (hm_test_os_faults).
 *
 * While mmap, munmap, madvise and mprotect fail at chosen or random points, every call must
 * answer with a documented result (S_OK or E_OUTOFMEMORY; NULL with ENOMEM), live blocks must
 * keep their contents, nothing may crash; once the faults stop everything works again and, when
 * all is released, no mapping and no committed byte is left behind. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <hostmalloc/hostmalloc.h>

#include "test_hooks.h"
#include "test_util.h"

static size_t count_mappings(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL) return 0;
    size_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        if (c == '\n') n++;
    fclose(f);
    return n;
}

typedef struct {
    void *p;
    size_t size;
    unsigned seed;
} live_t;

static uint64_t rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

#define LIVE    512
#define REGIONS 16

typedef struct {
    size_t allocs, oom, frees, vallocs, voom;
} tally_t;

/* Random work on one instance and its manager; every result is checked. */
static void run_ops(IHostMemoryManager *mgr, IHostMalloc *m, live_t *live, void **regions,
                    uint64_t *rng, size_t ops, tally_t *t) {
    static const size_t sizes[] = {8, 24, 100, 700, 3000, 20000, 60000, 200000, 3u << 20};
    for (size_t i = 0; i < ops; i++) {
        uint64_t r = rng_next(rng);
        size_t k = (size_t)(r >> 8) % LIVE;
        unsigned what = (unsigned)(r % 16);
        if (what < 12) {
            /* replace a live block */
            if (live[k].p != NULL) {
                if (tu_check(live[k].p, live[k].size, live[k].seed) != live[k].size)
                    fail_msg("block %p (%zu bytes) changed while the OS failed", live[k].p,
                             live[k].size);
                assert_int_equal(IHostMalloc_Free(m, live[k].p), S_OK);
                live[k].p = NULL;
                t->frees++;
            }
            size_t size = sizes[(r >> 20) % TU_ARRAY_SIZE(sizes)];
            void *p = (void *)0x1;
            HRESULT hr = (r >> 30) & 1
                             ? IHostMalloc_Alloc(m, size, eTaskCritical, &p)
                             : IHostMalloc_DebugAlloc(m, size, eProcessCritical, "faults.c", 1, &p);
            if (hr == S_OK) {
                assert_non_null(p);
                live[k] = (live_t){p, size, (unsigned)r};
                tu_fill(p, size, (unsigned)r);
                t->allocs++;
            } else {
                if (hr != E_OUTOFMEMORY || p != NULL)
                    fail_msg("Alloc(%zu) under faults: hr %#x, p %p", size, (unsigned)hr, p);
                t->oom++;
            }
        } else {
            /* virtual memory: reserve+commit, protect, decommit, release */
            size_t j = (size_t)(r >> 12) % REGIONS;
            if (regions[j] != NULL) {
                DWORD old;
                HRESULT hr =
                    IHostMemoryManager_VirtualProtect(mgr, regions[j], 4096, PAGE_READONLY, &old);
                if (hr != S_OK && hr != E_OUTOFMEMORY)
                    fail_msg("VirtualProtect: %#x", (unsigned)hr);
                hr = IHostMemoryManager_VirtualFree(mgr, (char *)regions[j] + 8192, 4096,
                                                    MEM_DECOMMIT);
                assert_int_equal(hr, S_OK);
                assert_int_equal(IHostMemoryManager_VirtualFree(mgr, regions[j], 0, MEM_RELEASE),
                                 S_OK);
                regions[j] = NULL;
            } else {
                void *p = (void *)0x1;
                HRESULT hr =
                    IHostMemoryManager_VirtualAlloc(mgr, NULL, 256 * 1024, MEM_RESERVE | MEM_COMMIT,
                                                    PAGE_READWRITE, eTaskCritical, &p);
                if (hr == S_OK) {
                    memset(p, 0x33, 256 * 1024);
                    regions[j] = p;
                    t->vallocs++;
                } else {
                    if (hr != E_OUTOFMEMORY || p != NULL)
                        fail_msg("VirtualAlloc under faults: hr %#x, p %p", (unsigned)hr, p);
                    t->voom++;
                }
            }
        }
    }
}

static void release_all(IHostMemoryManager *mgr, IHostMalloc *m, live_t *live, void **regions) {
    for (size_t k = 0; k < LIVE; k++) {
        if (live[k].p == NULL) continue;
        if (tu_check(live[k].p, live[k].size, live[k].seed) != live[k].size)
            fail_msg("block %p changed", live[k].p);
        assert_int_equal(IHostMalloc_Free(m, live[k].p), S_OK);
        live[k].p = NULL;
    }
    for (size_t j = 0; j < REGIONS; j++) {
        if (regions[j] == NULL) continue;
        assert_int_equal(IHostMemoryManager_VirtualFree(mgr, regions[j], 0, MEM_RELEASE), S_OK);
        regions[j] = NULL;
    }
}

static void survive(unsigned ops_mask, unsigned every, double prob, uint64_t seed) {
    /* warm the process heap and the metadata pool first: they stay mapped by design */
    IHostMemoryManager *warm;
    assert_int_equal(hm_create_host_memory_manager(NULL, &warm), S_OK);
    IHostMemoryManager_Release(warm);
    size_t maps_before = count_mappings();

    hm_config cfg;
    hm_config_init(&cfg);
    cfg.limit = (size_t)1 << 30;
    IHostMemoryManager *mgr;
    assert_int_equal(hm_create_host_memory_manager(&cfg, &mgr), S_OK);
    IHostMalloc *m;
    assert_int_equal(IHostMemoryManager_CreateMalloc(mgr, MALLOC_THREADSAFE, &m), S_OK);
    static live_t live[LIVE];
    static void *regions[REGIONS];
    memset(live, 0, sizeof live);
    memset(regions, 0, sizeof regions);
    uint64_t rng = seed | 1;
    tally_t t = {0};
    uint64_t injected0 = hm_test_os_faults_injected();

    hm_test_os_faults(ops_mask, every, prob, seed);
    /* 20,000 operations (a quarter in a sanitizer or unoptimized build, where each costs many times
     * more) */
    run_ops(mgr, m, live, regions, &rng, TU_SLOW_BUILD ? 5000 : 20000, &t);
    hm_test_os_faults(0, 0, 0, 0);
    uint64_t injected = hm_test_os_faults_injected() - injected0;
    if (injected == 0) fail_msg("no fault was injected (mask %#x)", ops_mask);
    if ((ops_mask & HM_OS_MMAP) && t.oom + t.voom == 0)
        fail_msg("mmap failed %zu times but no request failed", (size_t)injected);

    /* the faults stopped: everything works again */
    tally_t after = {0};
    run_ops(mgr, m, live, regions, &rng, TU_SLOW_BUILD ? 1500 : 5000, &after);
    if (after.oom != 0 || after.voom != 0)
        fail_msg("%zu allocations failed after the faults stopped", after.oom + after.voom);

    release_all(mgr, m, live, regions);
    assert_int_equal(IHostMalloc_Release(m), 0);
    assert_int_equal(IHostMemoryManager_Release(mgr), 0);
    assert_int_equal(hm_test_os_deferred_unmaps(), 0);
    size_t maps_after = count_mappings();
    if (maps_after > maps_before + 4)
        fail_msg("mappings before %zu, after %zu: address space was lost", maps_before, maps_after);
    print_message("mask %#x: %zu faults injected; %zu allocs, %zu refused, %zu regions, %zu "
                  "refused\n",
                  ops_mask, (size_t)injected, t.allocs, t.oom, t.vallocs, t.voom);
}

/* One test per OS call: survive(ops, every, probability, seed). */
#define SURVIVE_TEST(name, ops, every, probability, seed)                                          \
    static void name(void **state) {                                                               \
        (void)state;                                                                               \
        survive(ops, every, probability, seed);                                                    \
    }
SURVIVE_TEST(test_mmap_faults, HM_OS_MMAP, 0, 0.2, 11)
SURVIVE_TEST(test_munmap_faults, HM_OS_MUNMAP, 2, 0, 12)
SURVIVE_TEST(test_madvise_faults, HM_OS_MADVISE, 0, 0.5, 13)
SURVIVE_TEST(test_mprotect_faults, HM_OS_MPROTECT, 3, 0, 14)

static void test_all_faults_random(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 3; seed++)
        survive(HM_OS_MMAP | HM_OS_MUNMAP | HM_OS_MADVISE | HM_OS_MPROTECT, 0, 0.1, seed);
}

/* The native door: NULL with ENOMEM while mmap fails, blocks again afterwards. */
static void test_native_enomem(void **state) {
    (void)state;
    hm_manager *mgr = hm_manager_new(NULL);
    hm_heap *h = tu_heap(mgr, HM_HEAP_THREADSAFE);
    hm_test_os_faults(HM_OS_MMAP, 1, 0, 5); /* every mmap fails */
    size_t nulls = 0;
    for (int i = 0; i < 50; i++) {
        errno = 0;
        void *p = hm_alloc(h, (size_t)(i + 1) << 20); /* huge: needs a new mapping */
        if (p == NULL) {
            assert_int_equal(errno, ENOMEM);
            nulls++;
        } else {
            hm_free(p);
        }
    }
    hm_test_os_faults(0, 0, 0, 0);
    assert_true(nulls > 0);
    void *p = hm_alloc(h, 5u << 20);
    assert_non_null(p);
    memset(p, 1, 5u << 20);
    hm_free(p);
    tu_release(h, mgr);
}

TU_TEST_MAIN(test_mmap_faults, test_munmap_faults, test_madvise_faults, test_mprotect_faults,
             test_all_faults_random, test_native_enomem)
