/* SPDX-License-Identifier: MIT */
/* tests/api/test_midl_partial.c: <hostmalloc/hosting.h> in C after a MIDL-style header that
 * declared IUnknown, ICLRMemoryNotificationCallback and IHostMalloc but not IHostMemoryManager
 * nor MALLOC_TYPE, and was compiled without COBJMACROS (tests/api/midl_style.h with
 * MIDL_STYLE_PARTIAL). hosting.h must add exactly what is missing: IHostMemoryManager,
 * MALLOC_TYPE and the call macros. Linked into test_midl, which calls
 * midl_partial_round_trip(). */
#define MIDL_STYLE_PARTIAL
#include "midl_style.h"

_Static_assert(__builtin_types_compatible_p(EMemoryCriticalLevel,
                                            enum __MIDL___MIDL_itf_midl_style_0000_0002),
               "EMemoryCriticalLevel is the MIDL-style header's");
_Static_assert(sizeof(IHostMemoryManagerVtbl) == 13 * sizeof(void *),
               "hosting.h declared IHostMemoryManager");
_Static_assert(sizeof(MALLOC_TYPE) == 4, "hosting.h declared MALLOC_TYPE");

int midl_partial_round_trip(void);

/* 0, or the number of the step that went wrong. */
int midl_partial_round_trip(void) {
    IHostMemoryManager *mgr = NULL;
    if (hm_create_host_memory_manager(NULL, &mgr) != S_OK) return 1;
    IHostMalloc *heap = NULL; /* the MIDL-style IHostMalloc, made by hosting.h's manager */
    if (IHostMemoryManager_CreateMalloc(mgr, MALLOC_EXECUTABLE, &heap) != S_OK) return 2;
    void *p = NULL;
    if (IHostMalloc_Alloc(heap, 64, eTaskCritical, &p) != S_OK || p == NULL) return 3;
    if (IHostMalloc_Free(heap, p) != S_OK) return 4;
    if (IHostMalloc_Release(heap) != 0) return 5;
    if (IHostMemoryManager_Release(mgr) != 0) return 6;
    return 0;
}
