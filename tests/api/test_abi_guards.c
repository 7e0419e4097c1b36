/* SPDX-License-Identifier: MIT */
/* tests/api/test_abi_guards.c: <hostmalloc/hosting.h> after a PAL-like header.
 *
 * A PAL or Windows header may already define HRESULT, DWORD, ULONG, GUID, S_OK and the other
 * HRESULT macros, the PAGE_/MEM_ constants and MEMORY_BASIC_INFORMATION, and one of the
 * enumerations under its _X_DEFINED guard. hosting.h must then include cleanly (this file
 * compiling is most of the test) and keep using the earlier definitions. Linked into test_abi,
 * which calls hm_test_guards_probe(). (Interfaces declared first by a MIDL-style header:
 * test_midl.) */
#include <stdint.h>
#include <stddef.h>

/* ---- a minimal "PAL" ----------------------------------------------------------------------- */
#include "pal_types.h" /* HRESULT, DWORD, ULONG, SIZE_T, LPVOID, GUID, IID */
#define S_OK                   ((HRESULT)0L)
#define S_FALSE                ((HRESULT)1L)
#define E_POINTER              ((HRESULT)0x80004003L)
#define E_OUTOFMEMORY          ((HRESULT)0x8007000EL)
#define E_INVALIDARG           ((HRESULT)0x80070057L)
#define SUCCEEDED(hr)          (((HRESULT)(hr)) >= 0)
#define FAILED(hr)             (((HRESULT)(hr)) < 0)
#define PAGE_NOACCESS          0x01
#define PAGE_READONLY          0x02
#define PAGE_READWRITE         0x04
#define PAGE_EXECUTE           0x10
#define PAGE_EXECUTE_READ      0x20
#define PAGE_EXECUTE_READWRITE 0x40
#define MEM_COMMIT             0x1000
#define MEM_RESERVE            0x2000
#define MEM_DECOMMIT           0x4000
#define MEM_RELEASE            0x8000
#define MEM_FREE               0x10000
#define MEM_PRIVATE            0x20000
#define MEM_MAPPED             0x40000
#define MEM_RESET              0x80000
#define MEM_TOP_DOWN           0x100000
typedef enum pal_memory_available {
    eMemoryAvailableLow = 1,
    eMemoryAvailableNeutral = 2,
    eMemoryAvailableHigh = 3
} EMemoryAvailable;
#define _EMEMORYAVAILABLE_DEFINED

#include <hostmalloc/hosting.h>
#include <hostmalloc/hosting.h> /* twice: the include guard */
#include <hostmalloc/hostmalloc.h>

int hm_test_guards_probe(void);

int hm_test_guards_probe(void) {
    /* The types and constants from both sources agree. */
    IHostMallocVtbl v;
    (void)v;
    HRESULT hr = E_INVALIDARG;
    if (!FAILED(hr) || SUCCEEDED(E_POINTER) || S_OK != 0) return -1;
    if (HOST_E_INVALIDOPERATION != (HRESULT)0x80131022u) return -2;
    if (IID_IHostMalloc.Data1 != 0x1831991Cu) return -3;
    /* the earlier EMemoryAvailable is the one in use; hosting.h declared the other two */
    if (!__builtin_types_compatible_p(EMemoryAvailable, enum pal_memory_available)) return -4;
    if (eTaskCritical != 0 || MALLOC_EXECUTABLE != 2) return -5;
    return 42;
}
