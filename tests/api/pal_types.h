/* SPDX-License-Identifier: MIT */
/* tests/api/pal_types.h: the Windows base types as a PAL or windows.h defines them, each with
 * the _X_DEFINED guard that tells <hostmalloc/hosting.h> it is there already. Shared by the two
 * stand-ins for such headers: the "PAL" of test_abi_guards.c and the MIDL-style mscoree.h of
 * midl_style.h. */
#ifndef PAL_TYPES_H
#define PAL_TYPES_H

#include <stdint.h>

typedef int32_t HRESULT;
#define _HRESULT_DEFINED
typedef uint32_t DWORD;
#define _DWORD_DEFINED
typedef uint32_t ULONG;
#define _ULONG_DEFINED
typedef unsigned long SIZE_T; /* the PAL spelling of size_t on LP64 */
typedef void *LPVOID;
#define _LPVOID_DEFINED
typedef struct _GUID {
    uint32_t Data1;
    uint16_t Data2;
    uint16_t Data3;
    uint8_t Data4[8];
} GUID;
#define GUID_DEFINED
typedef GUID IID;
#define _IID_DEFINED

#endif
