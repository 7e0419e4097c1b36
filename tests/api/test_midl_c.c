/* SPDX-License-Identifier: MIT */
/* tests/api/test_midl_c.c: <hostmalloc/hosting.h> in C after a MIDL-style header compiled with
 * COBJMACROS (tests/api/midl_style.h), which declared every interface, enumeration and call macro
 * first. This file compiling without a redefinition is most of the test; the types in use must
 * be the MIDL-style header's, and the library's objects must work through them. Linked into
 * test_midl, which calls midl_c_round_trip(). */
#define COBJMACROS
#include "midl_style.h"

/* GCC and clang take two different enum types as incompatible even when both are int-sized. */
_Static_assert(__builtin_types_compatible_p(EMemoryAvailable,
                                            enum __MIDL___MIDL_itf_midl_style_0000_0001),
               "EMemoryAvailable is the MIDL-style header's");
_Static_assert(__builtin_types_compatible_p(EMemoryCriticalLevel,
                                            enum __MIDL___MIDL_itf_midl_style_0000_0002),
               "EMemoryCriticalLevel is the MIDL-style header's");
_Static_assert(__builtin_types_compatible_p(MALLOC_TYPE,
                                            enum __MIDL___MIDL_itf_midl_style_0000_0003),
               "MALLOC_TYPE is the MIDL-style header's");

int midl_c_round_trip(void);

/* 0, or the number of the step that went wrong. */
int midl_c_round_trip(void) {
    IHostMemoryManager *mgr = NULL;
    if (hm_create_host_memory_manager(NULL, &mgr) != S_OK) return 1;
    IHostMalloc *heap = NULL;
    if (IHostMemoryManager_CreateMalloc(mgr, MALLOC_THREADSAFE, &heap) != S_OK) return 2;
    void *p = NULL;
    if (IHostMalloc_Alloc(heap, 48, eAppDomainCritical, &p) != S_OK || p == NULL) return 3;
    if (hm_usable_size(p) < 48) return 4;
    int local = 0;
    if (IHostMalloc_Free(heap, &local) != HOST_E_INVALIDOPERATION) return 5;
    if (IHostMalloc_Free(heap, p) != S_OK) return 6;
    void *pv = NULL;
    if (IHostMalloc_QueryInterface(heap, &IID_IUnknown, &pv) != S_OK || pv != heap) return 7;
    if (IUnknown_Release((IUnknown *)pv) != 1) return 8; /* the MIDL-style IUnknown macros */
    if (IHostMalloc_Release(heap) != 0) return 9;
    if (IHostMemoryManager_Release(mgr) != 0) return 10;
    return 0;
}
