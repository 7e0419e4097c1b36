/* SPDX-License-Identifier: MIT */
// tests/api/test_cxx_cinterface.cpp: <hostmalloc/hosting.h> compiled as C++ with CINTERFACE.
//
// With CINTERFACE a C++ translation unit gets the C form, as with MIDL output: structs holding
// lpVtbl, the ...Vtbl types, and the call macros going through lpVtbl; REFIID stays a
// reference. A program of its own: one program must not see both forms of the same struct.
#define CINTERFACE
#include <cstddef>
#include <cstring>
#include <type_traits>

#include <hostmalloc/hosting.h>
#include <hostmalloc/hostmalloc.h>

// cmocka.h declares its C functions without extern "C"
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}
#include "test_util.h"

// the C form's layout, as test_abi.c checks it in C
static_assert(sizeof(IHostMallocVtbl) == 6 * sizeof(void *), "6 slots");
static_assert(sizeof(IHostMemoryManagerVtbl) == 13 * sizeof(void *), "13 slots");
static_assert(sizeof(ICLRMemoryNotificationCallbackVtbl) == 4 * sizeof(void *), "4 slots");
static_assert(offsetof(IHostMallocVtbl, Alloc) == 3 * sizeof(void *) &&
                  offsetof(IHostMallocVtbl, Free) == 5 * sizeof(void *),
              "IHostMalloc slots");
static_assert(offsetof(IHostMemoryManagerVtbl, CreateMalloc) == 3 * sizeof(void *) &&
                  offsetof(IHostMemoryManagerVtbl, RegisterMemoryNotificationCallback) ==
                      9 * sizeof(void *) &&
                  offsetof(IHostMemoryManagerVtbl, ReleasedVirtualAddressSpace) ==
                      12 * sizeof(void *),
              "IHostMemoryManager slots");
static_assert(offsetof(ICLRMemoryNotificationCallbackVtbl, OnMemoryNotification) ==
                  3 * sizeof(void *),
              "ICLRMemoryNotificationCallback slots");
static_assert(!std::is_polymorphic<IHostMalloc>::value &&
                  std::is_standard_layout<IHostMalloc>::value,
              "the C form is a plain struct");
static_assert(std::is_same<decltype(IHostMalloc::lpVtbl), const IHostMallocVtbl *>::value,
              "lpVtbl points to a const vtable");

// A callback in the C form, written in C++: a struct whose first member is the interface.
struct Counter {
    ICLRMemoryNotificationCallback iface;
    int refs;
};

static HRESULT STDMETHODCALLTYPE counter_qi(ICLRMemoryNotificationCallback *self, REFIID riid,
                                            void **ppv) {
    if (std::memcmp(&riid, &IID_ICLRMemoryNotificationCallback, sizeof(IID)) != 0) {
        *ppv = nullptr;
        return E_NOINTERFACE;
    }
    reinterpret_cast<Counter *>(self)->refs++;
    *ppv = self;
    return S_OK;
}
static ULONG STDMETHODCALLTYPE counter_addref(ICLRMemoryNotificationCallback *self) {
    return (ULONG)++ reinterpret_cast<Counter *>(self)->refs;
}
static ULONG STDMETHODCALLTYPE counter_release(ICLRMemoryNotificationCallback *self) {
    return (ULONG)-- reinterpret_cast<Counter *>(self)->refs;
}
static HRESULT STDMETHODCALLTYPE counter_notify(ICLRMemoryNotificationCallback *,
                                                EMemoryAvailable) {
    return S_OK;
}
static const ICLRMemoryNotificationCallbackVtbl counter_vtbl = {counter_qi, counter_addref,
                                                                counter_release, counter_notify};

static void test_library_objects_cinterface(void **state) {
    (void)state;
    IHostMemoryManager *mgr = nullptr;
    assert_hr(hm_create_host_memory_manager(nullptr, &mgr), S_OK);
    IHostMalloc *heap = nullptr;
    assert_hr(IHostMemoryManager_CreateMalloc(mgr, MALLOC_THREADSAFE, &heap), S_OK);
    assert_non_null(heap);

    // through the macros and through lpVtbl by hand: the same slots
    void *p = nullptr, *q = nullptr;
    assert_hr(IHostMalloc_Alloc(heap, 16, eTaskCritical, &p), S_OK);
    assert_hr(heap->lpVtbl->Alloc(heap, 32, eAppDomainCritical, &q), S_OK);
    assert_non_null(p);
    assert_non_null(q);
    assert_true(hm_usable_size(q) >= 32);
    int local = 0;
    assert_hr(IHostMalloc_Free(heap, &local), HOST_E_INVALIDOPERATION);
    assert_hr(heap->lpVtbl->Free(heap, q), S_OK);
    assert_hr(IHostMalloc_Free(heap, p), S_OK);

    void *pv = nullptr;
    assert_hr(IHostMalloc_QueryInterface(heap, IID_IHostMalloc, &pv), S_OK); // REFIID: a reference
    assert_ptr_equal(pv, heap);
    assert_int_equal(IHostMalloc_Release(heap), 1);

    Counter cb = {{&counter_vtbl}, 1};
    assert_hr(IHostMemoryManager_RegisterMemoryNotificationCallback(mgr, &cb.iface), S_OK);
    assert_int_equal(cb.refs, 2);
    DWORD load = 101;
    SIZE_T avail = 0;
    assert_hr(IHostMemoryManager_GetMemoryLoad(mgr, &load, &avail), S_OK);
    assert_true(load <= 100);

    assert_int_equal(IHostMalloc_Release(heap), 0);
    assert_int_equal(IHostMemoryManager_Release(mgr), 0);
    assert_int_equal(cb.refs, 1);
}

TU_TEST_MAIN(test_library_objects_cinterface)
