/* SPDX-License-Identifier: MIT */
// tests/api/test_midl.cpp: <hostmalloc/hosting.h> after a MIDL-style header
// (tests/api/midl_style.h).
//
// Including hosting.h after a MIDL-generated header that declared the same interfaces used to
// fail with "redefinition of 'struct IHostMalloc'". Here the MIDL-style header comes first, in
// C++ (this file), in C with COBJMACROS (test_midl_c.c) and in C with only some of the
// interfaces declared (test_midl_partial.c). Each must compile, use the first header's types,
// and work with the library's objects.
#include <atomic>
#include <cstring>
#include <type_traits>

#include "midl_style.h"

// cmocka.h declares its C functions without extern "C"
#include <csetjmp>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
extern "C" {
#include <cmocka.h>
}
#include "test_util.h"

extern "C" int midl_c_round_trip(void);
extern "C" int midl_partial_round_trip(void);

// The enumerations are the MIDL-style header's (hosting.h added none of its own).
static_assert(std::is_same<EMemoryAvailable, __MIDL___MIDL_itf_midl_style_0000_0001>::value,
              "EMemoryAvailable");
static_assert(std::is_same<EMemoryCriticalLevel, __MIDL___MIDL_itf_midl_style_0000_0002>::value,
              "EMemoryCriticalLevel");
static_assert(std::is_same<MALLOC_TYPE, __MIDL___MIDL_itf_midl_style_0000_0003>::value,
              "MALLOC_TYPE");
// So are the interfaces: hosting.h's C++ interfaces have a protected destructor, MIDL's have
// the implicit public one.
static_assert(std::is_destructible<IUnknown>::value && std::is_destructible<IHostMalloc>::value &&
                  std::is_destructible<IHostMemoryManager>::value &&
                  std::is_destructible<ICLRMemoryNotificationCallback>::value,
              "the interfaces are the MIDL-style header's");

class RefCounted final : public ICLRMemoryNotificationCallback {
  public:
    HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void **ppv) override {
        if (std::memcmp(&riid, &IID_ICLRMemoryNotificationCallback, sizeof(IID)) != 0 &&
            std::memcmp(&riid, &IID_IUnknown, sizeof(IID)) != 0) {
            *ppv = nullptr;
            return E_NOINTERFACE;
        }
        AddRef();
        *ppv = this;
        return S_OK;
    }
    ULONG STDMETHODCALLTYPE AddRef() override {
        return ++refs;
    }
    ULONG STDMETHODCALLTYPE Release() override {
        return --refs;
    }
    HRESULT STDMETHODCALLTYPE OnMemoryNotification(EMemoryAvailable) override {
        return S_OK;
    }
    std::atomic<ULONG> refs{1};
};

static void test_midl_cxx(void **state) {
    (void)state;
    IHostMemoryManager *mgr = nullptr;
    assert_hr(hm_create_host_memory_manager(nullptr, &mgr), S_OK);
    IHostMalloc *heap = nullptr;
    assert_hr(mgr->CreateMalloc(MALLOC_THREADSAFE, &heap), S_OK);
    void *p = nullptr;
    assert_hr(heap->Alloc(24, eTaskCritical, &p), S_OK);
    assert_non_null(p);
    assert_true(hm_usable_size(p) >= 24);
    assert_hr(heap->Free(p), S_OK);
    // MIDL output has no call macros in C++; hosting.h's are there
    assert_hr(IHostMalloc_Alloc(heap, 24, eProcessCritical, &p), S_OK);
    assert_hr(IHostMalloc_Free(heap, p), S_OK);

    RefCounted cb;
    assert_hr(mgr->RegisterMemoryNotificationCallback(&cb), S_OK);
    assert_int_equal(cb.refs.load(), 2);
    assert_int_equal(heap->Release(), 0);
    assert_int_equal(mgr->Release(), 0);
    assert_int_equal(cb.refs.load(), 1);
}

static void test_midl_c(void **state) {
    (void)state;
    assert_int_equal(midl_c_round_trip(), 0);
}

static void test_midl_partial_c(void **state) {
    (void)state;
    assert_int_equal(midl_partial_round_trip(), 0);
}

TU_TEST_MAIN(test_midl_cxx, test_midl_c, test_midl_partial_c)
