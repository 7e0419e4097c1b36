/* SPDX-License-Identifier: MIT */
/* tests/support/tu_vmem.h: fixtures of the VirtualAlloc family shared by the test programs: a
 * manager of a given budget (vm_manager), VirtualAlloc and VirtualFree that must succeed (va_ok,
 * release_ok), what VirtualQuery answers checked field by field (vq, expect_mbi), and the page
 * and granularity sizes the contract names (PG, GRAN).
 *
 * Header-only, after test_util.h and tu_com.h. */
#ifndef HOSTMALLOC_TU_VMEM_H
#define HOSTMALLOC_TU_VMEM_H

#include <stdbool.h>

#include "tu_com.h"

#define PG ((size_t)4096)

#define GRAN ((size_t)65536)

static inline IHostMemoryManager *vm_manager(size_t limit) {
    hm_config c = tu_test_config(limit);
    return new_manager_cfg(&c);
}

/* Bytes still available to task-critical requests: the budget view of the test. */
static inline size_t avail_of(IHostMemoryManager *mm) {
    DWORD load;
    SIZE_T avail = 0;
    assert_hr(IHostMemoryManager_GetMemoryLoad(mm, &load, &avail), S_OK);
    return avail;
}

static inline void *va_ok(IHostMemoryManager *mm, void *addr, size_t size, DWORD type, DWORD prot) {
    void *p = GARBAGE;
    HRESULT hr = IHostMemoryManager_VirtualAlloc(mm, addr, size, type, prot, eTaskCritical, &p);
    if (hr != S_OK || p == NULL || p == GARBAGE)
        fail_msg("VirtualAlloc(%p, %zu, 0x%x, 0x%x) returned 0x%08x, %p", addr, size, type, prot,
                 HR(hr), p);
    return p;
}

static inline MEMORY_BASIC_INFORMATION vq(IHostMemoryManager *mm, const void *addr) {
    MEMORY_BASIC_INFORMATION mbi;
    memset(&mbi, 0xEE, sizeof mbi);
    SIZE_T res = 12345;
    HRESULT hr = IHostMemoryManager_VirtualQuery(mm, (void *)addr, &mbi, sizeof mbi, &res);
    if (hr != S_OK || res != sizeof mbi)
        fail_msg("VirtualQuery(%p) returned 0x%08x and %zu", addr, HR(hr), (size_t)res);
    return mbi;
}

/* Check the answer of VirtualQuery for `addr`; a field given as ~0 is not checked. */
#define ANYV ((size_t) ~(size_t)0)

static inline void expect_mbi(IHostMemoryManager *mm, const void *addr, DWORD state, size_t protect,
                              const void *alloc_base, size_t alloc_protect, size_t region_size,
                              const char *what) {
    MEMORY_BASIC_INFORMATION m = vq(mm, addr);
    void *page = (void *)((uintptr_t)addr & ~(uintptr_t)(PG - 1));
    if (m.BaseAddress != page)
        fail_msg("%s: BaseAddress %p for %p, expected %p", what, m.BaseAddress, addr, page);
    if (m.State != state) fail_msg("%s: State 0x%x, expected 0x%x", what, m.State, state);
    if (protect != ANYV && m.Protect != protect)
        fail_msg("%s: Protect 0x%x, expected 0x%zx", what, m.Protect, protect);
    if (alloc_base != (void *)ANYV && m.AllocationBase != alloc_base)
        fail_msg("%s: AllocationBase %p, expected %p", what, m.AllocationBase, alloc_base);
    if (alloc_protect != ANYV && m.AllocationProtect != alloc_protect)
        fail_msg("%s: AllocationProtect 0x%x, expected 0x%zx", what, m.AllocationProtect,
                 alloc_protect);
    if (region_size != ANYV && m.RegionSize != region_size)
        fail_msg("%s: RegionSize %zu, expected %zu", what, (size_t)m.RegionSize, region_size);
    if (state != MEM_FREE && m.Type != MEM_PRIVATE)
        fail_msg("%s: Type 0x%x, expected MEM_PRIVATE", what, m.Type);
}

static inline void release_ok(IHostMemoryManager *mm, void *base) {
    assert_hr(IHostMemoryManager_VirtualFree(mm, base, 0, MEM_RELEASE), S_OK);
}

static inline bool all_bytes(const void *p, size_t n, unsigned char v) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != v) return false;
    return true;
}

#endif /* HOSTMALLOC_TU_VMEM_H */
