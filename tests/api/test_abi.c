/* SPDX-License-Identifier: MIT */
/* tests/api/test_abi.c: the COM ABI of <hostmalloc/hosting.h> on Linux x86-64 (LP64).
 *
 * Type sizes, structure layouts, vtable slot order, HRESULT and enumeration values, the IIDs
 * exported by the library (byte-exact), and the MIDL call macros (that each dispatches through
 * the right slot with its arguments in order, on the logging objects of test_cxx_peer.c).
 * Reference: docs/CONTRACT.md; the C++ form is checked by test_cxx.cpp. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <hostmalloc/hosting.h>
#include <hostmalloc/hostmalloc.h>

#include "test_cxx_peer.h"
#include "test_util.h"

/* ---- sizes ---------------------------------------------------------------------------------- */
static void test_sizes(void **state) {
    (void)state;
    assert_int_equal(sizeof(GUID), 16);
    assert_int_equal(sizeof(IID), 16);
    assert_int_equal(offsetof(GUID, Data1), 0);
    assert_int_equal(offsetof(GUID, Data2), 4);
    assert_int_equal(offsetof(GUID, Data3), 6);
    assert_int_equal(offsetof(GUID, Data4), 8);
    assert_int_equal(sizeof(HRESULT), 4);
    assert_int_equal(sizeof(DWORD), 4);
    assert_int_equal(sizeof(ULONG), 4);
    assert_int_equal(sizeof(SIZE_T), 8);
    assert_int_equal(sizeof(LPVOID), 8);
    assert_int_equal(sizeof(EMemoryCriticalLevel), 4);
    assert_int_equal(sizeof(MALLOC_TYPE), 4);
    assert_int_equal(sizeof(EMemoryAvailable), 4);
    /* HRESULT is signed (FAILED is `< 0`), DWORD and ULONG unsigned. */
    assert_true((HRESULT)-1 < 0);
    assert_true((DWORD)-1 > 0);
    assert_true((ULONG)-1 > 0);
    assert_int_equal(sizeof(IHostMallocVtbl), 48);
    assert_int_equal(sizeof(IHostMemoryManagerVtbl), 104);
    assert_int_equal(sizeof(ICLRMemoryNotificationCallbackVtbl), 32);
    assert_int_equal(sizeof(IHostMalloc), sizeof(void *));
    assert_int_equal(sizeof(IHostMemoryManager), sizeof(void *));
    assert_int_equal(sizeof(ICLRMemoryNotificationCallback), sizeof(void *));
    assert_int_equal(offsetof(IHostMalloc, lpVtbl), 0);
    assert_int_equal(offsetof(IHostMemoryManager, lpVtbl), 0);
    assert_int_equal(offsetof(ICLRMemoryNotificationCallback, lpVtbl), 0);
}

static void test_memory_basic_information_layout(void **state) {
    (void)state;
    assert_int_equal(sizeof(MEMORY_BASIC_INFORMATION), 48);
    assert_int_equal(offsetof(MEMORY_BASIC_INFORMATION, BaseAddress), 0);
    assert_int_equal(offsetof(MEMORY_BASIC_INFORMATION, AllocationBase), 8);
    assert_int_equal(offsetof(MEMORY_BASIC_INFORMATION, AllocationProtect), 16);
    assert_int_equal(offsetof(MEMORY_BASIC_INFORMATION, RegionSize), 24);
    assert_int_equal(offsetof(MEMORY_BASIC_INFORMATION, State), 32);
    assert_int_equal(offsetof(MEMORY_BASIC_INFORMATION, Protect), 36);
    assert_int_equal(offsetof(MEMORY_BASIC_INFORMATION, Type), 40);
    MEMORY_BASIC_INFORMATION mbi;
    assert_int_equal(sizeof(mbi.AllocationProtect), 4);
    assert_int_equal(sizeof(mbi.RegionSize), 8);
    assert_int_equal(sizeof(mbi.State), 4);
    assert_int_equal(sizeof(mbi.Protect), 4);
    assert_int_equal(sizeof(mbi.Type), 4);
}

/* ---- slot order ----------------------------------------------------------------------------- */
static void test_vtable_slots(void **state) {
    (void)state;
    assert_int_equal(offsetof(IHostMallocVtbl, QueryInterface), 0 * 8);
    assert_int_equal(offsetof(IHostMallocVtbl, AddRef), 1 * 8);
    assert_int_equal(offsetof(IHostMallocVtbl, Release), 2 * 8);
    assert_int_equal(offsetof(IHostMallocVtbl, Alloc), 3 * 8);
    assert_int_equal(offsetof(IHostMallocVtbl, DebugAlloc), 4 * 8);
    assert_int_equal(offsetof(IHostMallocVtbl, Free), 5 * 8);

    assert_int_equal(offsetof(IHostMemoryManagerVtbl, QueryInterface), 0 * 8);
    assert_int_equal(offsetof(IHostMemoryManagerVtbl, AddRef), 1 * 8);
    assert_int_equal(offsetof(IHostMemoryManagerVtbl, Release), 2 * 8);
    assert_int_equal(offsetof(IHostMemoryManagerVtbl, CreateMalloc), 3 * 8);
    assert_int_equal(offsetof(IHostMemoryManagerVtbl, VirtualAlloc), 4 * 8);
    assert_int_equal(offsetof(IHostMemoryManagerVtbl, VirtualFree), 5 * 8);
    assert_int_equal(offsetof(IHostMemoryManagerVtbl, VirtualQuery), 6 * 8);
    assert_int_equal(offsetof(IHostMemoryManagerVtbl, VirtualProtect), 7 * 8);
    assert_int_equal(offsetof(IHostMemoryManagerVtbl, GetMemoryLoad), 8 * 8);
    assert_int_equal(offsetof(IHostMemoryManagerVtbl, RegisterMemoryNotificationCallback), 9 * 8);
    assert_int_equal(offsetof(IHostMemoryManagerVtbl, NeedsVirtualAddressSpace), 10 * 8);
    assert_int_equal(offsetof(IHostMemoryManagerVtbl, AcquiredVirtualAddressSpace), 11 * 8);
    assert_int_equal(offsetof(IHostMemoryManagerVtbl, ReleasedVirtualAddressSpace), 12 * 8);

    assert_int_equal(offsetof(ICLRMemoryNotificationCallbackVtbl, QueryInterface), 0 * 8);
    assert_int_equal(offsetof(ICLRMemoryNotificationCallbackVtbl, AddRef), 1 * 8);
    assert_int_equal(offsetof(ICLRMemoryNotificationCallbackVtbl, Release), 2 * 8);
    assert_int_equal(offsetof(ICLRMemoryNotificationCallbackVtbl, OnMemoryNotification), 3 * 8);
}

/* ---- constants ------------------------------------------------------------------------------ */
static void test_hresult_values(void **state) {
    (void)state;
    static const struct {
        const char *name;
        HRESULT value;
        uint32_t expected;
    } table[] = {
        {"S_OK", S_OK, 0x00000000u},
        {"S_FALSE", S_FALSE, 0x00000001u},
        {"E_NOTIMPL", E_NOTIMPL, 0x80004001u},
        {"E_NOINTERFACE", E_NOINTERFACE, 0x80004002u},
        {"E_POINTER", E_POINTER, 0x80004003u},
        {"E_FAIL", E_FAIL, 0x80004005u},
        {"E_UNEXPECTED", E_UNEXPECTED, 0x8000FFFFu},
        {"E_ACCESSDENIED", E_ACCESSDENIED, 0x80070005u},
        {"E_OUTOFMEMORY", E_OUTOFMEMORY, 0x8007000Eu},
        {"E_INVALIDARG", E_INVALIDARG, 0x80070057u},
        {"HOST_E_DEADLOCK", HOST_E_DEADLOCK, 0x80131020u},
        {"HOST_E_INTERRUPTED", HOST_E_INTERRUPTED, 0x80131021u},
        {"HOST_E_INVALIDOPERATION", HOST_E_INVALIDOPERATION, 0x80131022u},
        {"HOST_E_CLRNOTAVAILABLE", HOST_E_CLRNOTAVAILABLE, 0x80131023u},
        {"HOST_E_TIMEOUT", HOST_E_TIMEOUT, 0x80131024u},
        {"HOST_E_NOT_OWNER", HOST_E_NOT_OWNER, 0x80131025u},
        {"HOST_E_ABANDONED", HOST_E_ABANDONED, 0x80131026u},
    };
    for (size_t i = 0; i < TU_ARRAY_SIZE(table); i++) {
        if ((uint32_t)table[i].value != table[i].expected)
            fail_msg("%s is 0x%08x, expected 0x%08x", table[i].name, (unsigned)table[i].value,
                     (unsigned)table[i].expected);
        /* Every value but S_OK/S_FALSE is a failure code: negative as an HRESULT. */
        if (i >= 2 && !(table[i].value < 0 && FAILED(table[i].value)))
            fail_msg("%s must be negative (a failure HRESULT)", table[i].name);
    }
    assert_int_equal(sizeof(E_OUTOFMEMORY), 4);
    assert_true(SUCCEEDED(S_OK));
    assert_true(SUCCEEDED(S_FALSE));
    assert_false(FAILED(S_FALSE));
    assert_true(FAILED(E_FAIL));
    assert_false(SUCCEEDED(HOST_E_INVALIDOPERATION));
}

static void test_enum_values(void **state) {
    (void)state;
    assert_int_equal(eTaskCritical, 0);
    assert_int_equal(eAppDomainCritical, 1);
    assert_int_equal(eProcessCritical, 2);
    assert_int_equal(MALLOC_THREADSAFE, 0x1);
    assert_int_equal(MALLOC_EXECUTABLE, 0x2);
    assert_int_equal(eMemoryAvailableLow, 1);
    assert_int_equal(eMemoryAvailableNeutral, 2);
    assert_int_equal(eMemoryAvailableHigh, 3);
    /* The native heap flags are the MALLOC_TYPE bits. */
    assert_int_equal(HM_HEAP_THREADSAFE, MALLOC_THREADSAFE);
    assert_int_equal(HM_HEAP_EXECUTABLE, MALLOC_EXECUTABLE);
}

static void test_virtual_constants(void **state) {
    (void)state;
    assert_int_equal(PAGE_NOACCESS, 0x01);
    assert_int_equal(PAGE_READONLY, 0x02);
    assert_int_equal(PAGE_READWRITE, 0x04);
    assert_int_equal(PAGE_EXECUTE, 0x10);
    assert_int_equal(PAGE_EXECUTE_READ, 0x20);
    assert_int_equal(PAGE_EXECUTE_READWRITE, 0x40);
    assert_int_equal(MEM_COMMIT, 0x1000);
    assert_int_equal(MEM_RESERVE, 0x2000);
    assert_int_equal(MEM_DECOMMIT, 0x4000);
    assert_int_equal(MEM_RELEASE, 0x8000);
    assert_int_equal(MEM_FREE, 0x10000);
    assert_int_equal(MEM_PRIVATE, 0x20000);
    assert_int_equal(MEM_MAPPED, 0x40000);
    assert_int_equal(MEM_RESET, 0x80000);
    assert_int_equal(MEM_TOP_DOWN, 0x100000);
}

/* ---- IIDs ----------------------------------------------------------------------------------- */
/* Check an exported IID against its registry form {d1-d2-d3-d4[0..1]-d4[2..7]}: the fields, and
 * the 16 bytes in memory (Data1..Data3 little-endian on x86-64, Data4 in order). */
static void check_iid(const char *name, const IID *iid, uint32_t d1, uint16_t d2, uint16_t d3,
                      const uint8_t d4[8]) {
    if (iid->Data1 != d1 || iid->Data2 != d2 || iid->Data3 != d3 || memcmp(iid->Data4, d4, 8) != 0)
        fail_msg("%s is {%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}, expected "
                 "{%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X}",
                 name, (unsigned)iid->Data1, iid->Data2, iid->Data3, iid->Data4[0], iid->Data4[1],
                 iid->Data4[2], iid->Data4[3], iid->Data4[4], iid->Data4[5], iid->Data4[6],
                 iid->Data4[7], (unsigned)d1, d2, d3, d4[0], d4[1], d4[2], d4[3], d4[4], d4[5],
                 d4[6], d4[7]);
    uint8_t bytes[16] = {
        (uint8_t)d1, (uint8_t)(d1 >> 8), (uint8_t)(d1 >> 16), (uint8_t)(d1 >> 24),
        (uint8_t)d2, (uint8_t)(d2 >> 8), (uint8_t)d3,         (uint8_t)(d3 >> 8),
    };
    memcpy(bytes + 8, d4, 8);
    if (memcmp(iid, bytes, 16) != 0) fail_msg("%s: the bytes in memory differ", name);
}

static void test_iid_values(void **state) {
    (void)state;
    static const uint8_t unk4[8] = {0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46};
    static const uint8_t malloc4[8] = {0xB2, 0x18, 0x04, 0xE9, 0x10, 0x44, 0x64, 0x79};
    static const uint8_t mgr4[8] = {0x9C, 0xDE, 0xD0, 0x42, 0x48, 0xE9, 0xFA, 0x25};
    static const uint8_t cb4[8] = {0xAF, 0x76, 0x6F, 0x42, 0xFC, 0xFC, 0x26, 0x49};
    check_iid("IID_IUnknown", &IID_IUnknown, 0x00000000u, 0x0000, 0x0000, unk4);
    check_iid("IID_IHostMalloc", &IID_IHostMalloc, 0x1831991Cu, 0xCC53, 0x4A31, malloc4);
    check_iid("IID_IHostMemoryManager", &IID_IHostMemoryManager, 0x7BC698D1u, 0xF9E3, 0x4460, mgr4);
    check_iid("IID_ICLRMemoryNotificationCallback", &IID_ICLRMemoryNotificationCallback,
              0x47EB8E57u, 0x0846, 0x4546, cb4);
    check_iid("IID_IHostMemoryNeededCallback", &IID_IHostMemoryNeededCallback, 0x47EB8E57u, 0x0846,
              0x4546, cb4);
    assert_memory_equal(&IID_IHostMemoryNeededCallback, &IID_ICLRMemoryNotificationCallback, 16);
    /* Registry-form bytes of IHostMalloc, spelled out once (guards check_iid itself). */
    static const uint8_t malloc_bytes[16] = {0x1C, 0x99, 0x31, 0x18, 0x53, 0xCC, 0x31, 0x4A,
                                             0xB2, 0x18, 0x04, 0xE9, 0x10, 0x44, 0x64, 0x79};
    assert_memory_equal(&IID_IHostMalloc, malloc_bytes, 16);
}

/* ---- call macros ----------------------------------------------------------------------------- */
/* The logging objects of test_cxx_peer.c (one per interface, each method logs its slot, its
 * object and its arguments, and returns base + slot) called through each macro in turn. */

#define U(x) ((uintptr_t)(x))

/* Calls `expr` with the log emptied first. */
#define LOGGED(expr) (peer_log_reset(), (expr))

/* The call just made (LOGGED) was one call, of slot `slot` on `self`, that returned
 * expected_ret; its arguments. */
static const uintptr_t *expect_call(int slot, const void *self, long long ret,
                                    long long expected_ret) {
    assert_int_equal(ret, expected_ret);
    assert_int_equal(peer_log_len, 1);
    assert_int_equal(peer_log[0].slot, slot);
    assert_ptr_equal(peer_log[0].self, self);
    return peer_log[0].args;
}

static void test_call_macros(void **state) {
    (void)state;
    IHostMalloc *m = peer_c_malloc();
    IHostMemoryManager *g = peer_c_manager();
    ICLRMemoryNotificationCallback *c = peer_c_callback();
    void *pv = NULL;
    char file[] = "file.c";
    DWORD dw = 0;
    SIZE_T sz = 0;
    IHostMalloc *pm = NULL;
    MEMORY_BASIC_INFORMATION mbi;
    const uintptr_t *a;

    a = expect_call(0, m, LOGGED(IHostMalloc_QueryInterface(m, &IID_IHostMalloc, &pv)), 0x100);
    assert_true(a[0] == U(&IID_IHostMalloc) && a[1] == U(&pv));
    expect_call(1, m, LOGGED(IHostMalloc_AddRef(m)), 0x101);
    expect_call(2, m, LOGGED(IHostMalloc_Release(m)), 0x102);
    a = expect_call(3, m, LOGGED(IHostMalloc_Alloc(m, 777, eAppDomainCritical, &pv)), 0x103);
    assert_true(a[0] == 777 && a[1] == eAppDomainCritical && a[2] == U(&pv));
    a = expect_call(4, m, LOGGED(IHostMalloc_DebugAlloc(m, 55, eProcessCritical, file, 99, &pv)),
                    0x104);
    assert_true(a[0] == 55 && a[1] == eProcessCritical && a[2] == U(file) && a[3] == 99 &&
                a[4] == U(&pv));
    a = expect_call(5, m, LOGGED(IHostMalloc_Free(m, file)), 0x105);
    assert_true(a[0] == U(file));

    a = expect_call(0, g, LOGGED(IHostMemoryManager_QueryInterface(g, &IID_IUnknown, &pv)), 0x200);
    assert_true(a[0] == U(&IID_IUnknown) && a[1] == U(&pv));
    expect_call(1, g, LOGGED(IHostMemoryManager_AddRef(g)), 0x201);
    expect_call(2, g, LOGGED(IHostMemoryManager_Release(g)), 0x202);
    a = expect_call(3, g, LOGGED(IHostMemoryManager_CreateMalloc(g, MALLOC_EXECUTABLE, &pm)),
                    0x203);
    assert_true(a[0] == MALLOC_EXECUTABLE && a[1] == U(&pm));
    a = expect_call(4, g,
                    LOGGED(IHostMemoryManager_VirtualAlloc(g, file, 4096, MEM_COMMIT | MEM_RESERVE,
                                                           PAGE_READWRITE, eTaskCritical, &pv)),
                    0x204);
    assert_true(a[0] == U(file) && a[1] == 4096 && a[2] == (MEM_COMMIT | MEM_RESERVE) &&
                a[3] == PAGE_READWRITE && a[4] == eTaskCritical && a[5] == U(&pv));
    a = expect_call(5, g, LOGGED(IHostMemoryManager_VirtualFree(g, file, 8192, MEM_RELEASE)),
                    0x205);
    assert_true(a[0] == U(file) && a[1] == 8192 && a[2] == MEM_RELEASE);
    a = expect_call(6, g, LOGGED(IHostMemoryManager_VirtualQuery(g, file, &mbi, sizeof(mbi), &sz)),
                    0x206);
    assert_true(a[0] == U(file) && a[1] == U(&mbi) && a[2] == sizeof(mbi) && a[3] == U(&sz));
    a = expect_call(
        7, g, LOGGED(IHostMemoryManager_VirtualProtect(g, file, 12288, PAGE_READONLY, &dw)), 0x207);
    assert_true(a[0] == U(file) && a[1] == 12288 && a[2] == PAGE_READONLY && a[3] == U(&dw));
    a = expect_call(8, g, LOGGED(IHostMemoryManager_GetMemoryLoad(g, &dw, &sz)), 0x208);
    assert_true(a[0] == U(&dw) && a[1] == U(&sz));
    a = expect_call(9, g, LOGGED(IHostMemoryManager_RegisterMemoryNotificationCallback(g, c)),
                    0x209);
    assert_true(a[0] == U(c));
    a = expect_call(10, g, LOGGED(IHostMemoryManager_NeedsVirtualAddressSpace(g, file, 1234)),
                    0x20A);
    assert_true(a[0] == U(file) && a[1] == 1234);
    a = expect_call(11, g, LOGGED(IHostMemoryManager_AcquiredVirtualAddressSpace(g, file, 5678)),
                    0x20B);
    assert_true(a[0] == U(file) && a[1] == 5678);
    a = expect_call(12, g, LOGGED(IHostMemoryManager_ReleasedVirtualAddressSpace(g, file)), 0x20C);
    assert_true(a[0] == U(file));

    a = expect_call(
        0, c, LOGGED(ICLRMemoryNotificationCallback_QueryInterface(c, &IID_IUnknown, &pv)), 0x300);
    assert_true(a[0] == U(&IID_IUnknown) && a[1] == U(&pv));
    expect_call(1, c, LOGGED(ICLRMemoryNotificationCallback_AddRef(c)), 0x301);
    expect_call(2, c, LOGGED(ICLRMemoryNotificationCallback_Release(c)), 0x302);
    a = expect_call(
        3, c, LOGGED(ICLRMemoryNotificationCallback_OnMemoryNotification(c, eMemoryAvailableLow)),
        0x303);
    assert_true(a[0] == eMemoryAvailableLow);
}

/* The header can follow a PAL/Windows header that already defined the base types and HRESULTs:
 * test_abi_guards.c includes it that way; this test only checks that its answer is right. */
extern int hm_test_guards_probe(void);

static void test_header_guards(void **state) {
    (void)state;
    assert_int_equal(hm_test_guards_probe(), 42);
}

TU_TEST_MAIN(test_sizes, test_memory_basic_information_layout, test_vtable_slots,
             test_hresult_values, test_enum_values, test_virtual_constants, test_iid_values,
             test_call_macros, test_header_guards)
