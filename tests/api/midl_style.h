/* SPDX-License-Identifier: MIT */
/* tests/api/midl_style.h: the hosting interfaces declared the way MIDL output declares them, then
 * <hostmalloc/hosting.h>.
 *
 * A host may include a MIDL-generated mscoree.h (or a PAL whose headers were generated the same
 * way) before hosting.h. This file stands in for that header, written for these tests in the
 * layout such output has: the Windows base types with their _X_DEFINED guards; an unknwn.h
 * part declaring IUnknown; forward declarations under __I<name>_FWD_DEFINED__; the enumerations
 * as typedefs of tagged enums with no guard of their own, each just before the interfaces that
 * use it; each interface under __I<name>_INTERFACE_DEFINED__, in its C++ form (MIDL_INTERFACE,
 * pure virtual methods, no destructor) unless C or CINTERFACE, else its C form (a Vtbl struct
 * between BEGIN_INTERFACE and END_INTERFACE, and the call macros under COBJMACROS).
 *
 * MIDL_STYLE_PARTIAL leaves IHostMemoryManager and MALLOC_TYPE out: hosting.h must then add
 * just those. The tests (test_midl*.c, test_midl.cpp) check that hosting.h compiles after this
 * file and that the types in use are this file's. */
#ifndef MIDL_STYLE_H
#define MIDL_STYLE_H

#include <stddef.h>
#include <stdint.h>

/* ---- the base types and macros windows.h / the PAL provide ---------------------------------- */
#ifdef __cplusplus
#define EXTERN_C extern "C"
#else
#define EXTERN_C extern
#endif
#define interface            struct
#define MIDL_INTERFACE(uuid) struct
#define BEGIN_INTERFACE
#define END_INTERFACE
#define CONST_VTBL const
#define STDMETHODCALLTYPE

#include "pal_types.h" /* HRESULT, DWORD, ULONG, SIZE_T, LPVOID, GUID, IID */
#ifdef __cplusplus
#define REFIID const IID &
#else
#define REFIID const IID *const
#endif
#define _REFIID_DEFINED
#define S_OK       ((HRESULT)0L)
#define E_FAIL     ((HRESULT)0x80004005L)
#define FAILED(hr) (((HRESULT)(hr)) < 0)

/* What every C vtable opens with, and the call macros of those slots: written once here, where
 * MIDL output spells them out for each interface. */
#define MIDL_STYLE_IUNKNOWN_SLOTS(I)                                                               \
    HRESULT(STDMETHODCALLTYPE *QueryInterface)(I * This, REFIID riid, void **ppvObject);           \
    ULONG(STDMETHODCALLTYPE *AddRef)(I * This);                                                    \
    ULONG(STDMETHODCALLTYPE *Release)(I * This);
#define MIDL_STYLE_QUERYINTERFACE(This, riid, ppvObject)                                           \
    ((This)->lpVtbl->QueryInterface(This, riid, ppvObject))
#define MIDL_STYLE_ADDREF(This)  ((This)->lpVtbl->AddRef(This))
#define MIDL_STYLE_RELEASE(This) ((This)->lpVtbl->Release(This))

/* ---- unknwn.h ----------------------------------------------------------------------------------
 */
#ifndef __IUnknown_FWD_DEFINED__
#define __IUnknown_FWD_DEFINED__
typedef interface IUnknown IUnknown;
#endif

#ifndef __IUnknown_INTERFACE_DEFINED__
#define __IUnknown_INTERFACE_DEFINED__
EXTERN_C const IID IID_IUnknown;
#if defined(__cplusplus) && !defined(CINTERFACE)
MIDL_INTERFACE("00000000-0000-0000-C000-000000000046")
IUnknown {
  public:
    virtual HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void **ppvObject) = 0;
    virtual ULONG STDMETHODCALLTYPE AddRef(void) = 0;
    virtual ULONG STDMETHODCALLTYPE Release(void) = 0;
};
#else
typedef struct IUnknownVtbl {
    BEGIN_INTERFACE
    MIDL_STYLE_IUNKNOWN_SLOTS(IUnknown)
    END_INTERFACE
} IUnknownVtbl;
interface IUnknown {
    CONST_VTBL struct IUnknownVtbl *lpVtbl;
};
#ifdef COBJMACROS
#define IUnknown_QueryInterface MIDL_STYLE_QUERYINTERFACE
#define IUnknown_AddRef         MIDL_STYLE_ADDREF
#define IUnknown_Release        MIDL_STYLE_RELEASE
#endif
#endif
#endif

/* ---- mscoree.h ---------------------------------------------------------------------------------
 */
#ifndef __ICLRMemoryNotificationCallback_FWD_DEFINED__
#define __ICLRMemoryNotificationCallback_FWD_DEFINED__
typedef interface ICLRMemoryNotificationCallback ICLRMemoryNotificationCallback;
#endif
#ifndef __IHostMalloc_FWD_DEFINED__
#define __IHostMalloc_FWD_DEFINED__
typedef interface IHostMalloc IHostMalloc;
#endif
#ifndef MIDL_STYLE_PARTIAL
#ifndef __IHostMemoryManager_FWD_DEFINED__
#define __IHostMemoryManager_FWD_DEFINED__
typedef interface IHostMemoryManager IHostMemoryManager;
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum __MIDL___MIDL_itf_midl_style_0000_0001 {
    eMemoryAvailableLow = 1,
    eMemoryAvailableNeutral = 2,
    eMemoryAvailableHigh = 3
} EMemoryAvailable;

typedef enum __MIDL___MIDL_itf_midl_style_0000_0002 {
    eTaskCritical = 0,
    eAppDomainCritical = 1,
    eProcessCritical = 2
} EMemoryCriticalLevel;

#ifndef __ICLRMemoryNotificationCallback_INTERFACE_DEFINED__
#define __ICLRMemoryNotificationCallback_INTERFACE_DEFINED__
EXTERN_C const IID IID_ICLRMemoryNotificationCallback;
#if defined(__cplusplus) && !defined(CINTERFACE)
MIDL_INTERFACE("47EB8E57-0846-4546-AF76-6F42FCFC2649")
ICLRMemoryNotificationCallback : public IUnknown {
  public:
    virtual HRESULT STDMETHODCALLTYPE OnMemoryNotification(EMemoryAvailable eMemoryAvailable) = 0;
};
#else
typedef struct ICLRMemoryNotificationCallbackVtbl {
    BEGIN_INTERFACE
    MIDL_STYLE_IUNKNOWN_SLOTS(ICLRMemoryNotificationCallback)
    HRESULT(STDMETHODCALLTYPE *OnMemoryNotification)
    (ICLRMemoryNotificationCallback *This, EMemoryAvailable eMemoryAvailable);
    END_INTERFACE
} ICLRMemoryNotificationCallbackVtbl;
interface ICLRMemoryNotificationCallback {
    CONST_VTBL struct ICLRMemoryNotificationCallbackVtbl *lpVtbl;
};
#ifdef COBJMACROS
#define ICLRMemoryNotificationCallback_QueryInterface MIDL_STYLE_QUERYINTERFACE
#define ICLRMemoryNotificationCallback_AddRef         MIDL_STYLE_ADDREF
#define ICLRMemoryNotificationCallback_Release        MIDL_STYLE_RELEASE
#define ICLRMemoryNotificationCallback_OnMemoryNotification(This, eMemoryAvailable)                \
    ((This)->lpVtbl->OnMemoryNotification(This, eMemoryAvailable))
#endif
#endif
#endif

#ifndef __IHostMalloc_INTERFACE_DEFINED__
#define __IHostMalloc_INTERFACE_DEFINED__
EXTERN_C const IID IID_IHostMalloc;
#if defined(__cplusplus) && !defined(CINTERFACE)
MIDL_INTERFACE("1831991C-CC53-4A31-B218-04E910446479")
IHostMalloc : public IUnknown {
  public:
    virtual HRESULT STDMETHODCALLTYPE Alloc(SIZE_T cbSize, EMemoryCriticalLevel eCriticalLevel,
                                            void **ppMem) = 0;
    virtual HRESULT STDMETHODCALLTYPE DebugAlloc(SIZE_T cbSize, EMemoryCriticalLevel eCriticalLevel,
                                                 char *pszFileName, int iLineNo, void **ppMem) = 0;
    virtual HRESULT STDMETHODCALLTYPE Free(void *pMem) = 0;
};
#else
typedef struct IHostMallocVtbl {
    BEGIN_INTERFACE
    MIDL_STYLE_IUNKNOWN_SLOTS(IHostMalloc)
    HRESULT(STDMETHODCALLTYPE *Alloc)
    (IHostMalloc *This, SIZE_T cbSize, EMemoryCriticalLevel eCriticalLevel, void **ppMem);
    HRESULT(STDMETHODCALLTYPE *DebugAlloc)
    (IHostMalloc *This, SIZE_T cbSize, EMemoryCriticalLevel eCriticalLevel, char *pszFileName,
     int iLineNo, void **ppMem);
    HRESULT(STDMETHODCALLTYPE *Free)(IHostMalloc *This, void *pMem);
    END_INTERFACE
} IHostMallocVtbl;
interface IHostMalloc {
    CONST_VTBL struct IHostMallocVtbl *lpVtbl;
};
#ifdef COBJMACROS
#define IHostMalloc_QueryInterface MIDL_STYLE_QUERYINTERFACE
#define IHostMalloc_AddRef         MIDL_STYLE_ADDREF
#define IHostMalloc_Release        MIDL_STYLE_RELEASE
#define IHostMalloc_Alloc(This, cbSize, eCriticalLevel, ppMem)                                     \
    ((This)->lpVtbl->Alloc(This, cbSize, eCriticalLevel, ppMem))
#define IHostMalloc_DebugAlloc(This, cbSize, eCriticalLevel, pszFileName, iLineNo, ppMem)          \
    ((This)->lpVtbl->DebugAlloc(This, cbSize, eCriticalLevel, pszFileName, iLineNo, ppMem))
#define IHostMalloc_Free(This, pMem) ((This)->lpVtbl->Free(This, pMem))
#endif
#endif
#endif

#ifndef MIDL_STYLE_PARTIAL
typedef enum __MIDL___MIDL_itf_midl_style_0000_0003 {
    MALLOC_THREADSAFE = 0x1,
    MALLOC_EXECUTABLE = 0x2
} MALLOC_TYPE;

#ifndef __IHostMemoryManager_INTERFACE_DEFINED__
#define __IHostMemoryManager_INTERFACE_DEFINED__
EXTERN_C const IID IID_IHostMemoryManager;
#if defined(__cplusplus) && !defined(CINTERFACE)
MIDL_INTERFACE("7BC698D1-F9E3-4460-9CDE-D04248E9FA25")
IHostMemoryManager : public IUnknown {
  public:
    virtual HRESULT STDMETHODCALLTYPE CreateMalloc(DWORD dwMallocType, IHostMalloc * *ppMalloc) = 0;
    virtual HRESULT STDMETHODCALLTYPE VirtualAlloc(
        void *pAddress, SIZE_T dwSize, DWORD flAllocationType, DWORD flProtect,
        EMemoryCriticalLevel eCriticalLevel, void **ppMem) = 0;
    virtual HRESULT STDMETHODCALLTYPE VirtualFree(LPVOID lpAddress, SIZE_T dwSize,
                                                  DWORD dwFreeType) = 0;
    virtual HRESULT STDMETHODCALLTYPE VirtualQuery(void *lpAddress, void *lpBuffer, SIZE_T dwLength,
                                                   SIZE_T *pResult) = 0;
    virtual HRESULT STDMETHODCALLTYPE VirtualProtect(void *lpAddress, SIZE_T dwSize,
                                                     DWORD flNewProtect, DWORD *pflOldProtect) = 0;
    virtual HRESULT STDMETHODCALLTYPE GetMemoryLoad(DWORD * pMemoryLoad,
                                                    SIZE_T * pAvailableBytes) = 0;
    virtual HRESULT STDMETHODCALLTYPE RegisterMemoryNotificationCallback(
        ICLRMemoryNotificationCallback * pCallback) = 0;
    virtual HRESULT STDMETHODCALLTYPE NeedsVirtualAddressSpace(LPVOID startAddress,
                                                               SIZE_T size) = 0;
    virtual HRESULT STDMETHODCALLTYPE AcquiredVirtualAddressSpace(LPVOID startAddress,
                                                                  SIZE_T size) = 0;
    virtual HRESULT STDMETHODCALLTYPE ReleasedVirtualAddressSpace(LPVOID startAddress) = 0;
};
#else
typedef struct IHostMemoryManagerVtbl {
    BEGIN_INTERFACE
    MIDL_STYLE_IUNKNOWN_SLOTS(IHostMemoryManager)
    HRESULT(STDMETHODCALLTYPE *CreateMalloc)
    (IHostMemoryManager *This, DWORD dwMallocType, IHostMalloc **ppMalloc);
    HRESULT(STDMETHODCALLTYPE *VirtualAlloc)
    (IHostMemoryManager *This, void *pAddress, SIZE_T dwSize, DWORD flAllocationType,
     DWORD flProtect, EMemoryCriticalLevel eCriticalLevel, void **ppMem);
    HRESULT(STDMETHODCALLTYPE *VirtualFree)
    (IHostMemoryManager *This, LPVOID lpAddress, SIZE_T dwSize, DWORD dwFreeType);
    HRESULT(STDMETHODCALLTYPE *VirtualQuery)
    (IHostMemoryManager *This, void *lpAddress, void *lpBuffer, SIZE_T dwLength, SIZE_T *pResult);
    HRESULT(STDMETHODCALLTYPE *VirtualProtect)
    (IHostMemoryManager *This, void *lpAddress, SIZE_T dwSize, DWORD flNewProtect,
     DWORD *pflOldProtect);
    HRESULT(STDMETHODCALLTYPE *GetMemoryLoad)
    (IHostMemoryManager *This, DWORD *pMemoryLoad, SIZE_T *pAvailableBytes);
    HRESULT(STDMETHODCALLTYPE *RegisterMemoryNotificationCallback)
    (IHostMemoryManager *This, ICLRMemoryNotificationCallback *pCallback);
    HRESULT(STDMETHODCALLTYPE *NeedsVirtualAddressSpace)
    (IHostMemoryManager *This, LPVOID startAddress, SIZE_T size);
    HRESULT(STDMETHODCALLTYPE *AcquiredVirtualAddressSpace)
    (IHostMemoryManager *This, LPVOID startAddress, SIZE_T size);
    HRESULT(STDMETHODCALLTYPE *ReleasedVirtualAddressSpace)
    (IHostMemoryManager *This, LPVOID startAddress);
    END_INTERFACE
} IHostMemoryManagerVtbl;
interface IHostMemoryManager {
    CONST_VTBL struct IHostMemoryManagerVtbl *lpVtbl;
};
#ifdef COBJMACROS
#define IHostMemoryManager_QueryInterface MIDL_STYLE_QUERYINTERFACE
#define IHostMemoryManager_AddRef         MIDL_STYLE_ADDREF
#define IHostMemoryManager_Release        MIDL_STYLE_RELEASE
#define IHostMemoryManager_CreateMalloc(This, dwMallocType, ppMalloc)                              \
    ((This)->lpVtbl->CreateMalloc(This, dwMallocType, ppMalloc))
#define IHostMemoryManager_VirtualAlloc(This, pAddress, dwSize, flAllocationType, flProtect,       \
                                        eCriticalLevel, ppMem)                                     \
    ((This)->lpVtbl->VirtualAlloc(This, pAddress, dwSize, flAllocationType, flProtect,             \
                                  eCriticalLevel, ppMem))
#define IHostMemoryManager_VirtualFree(This, lpAddress, dwSize, dwFreeType)                        \
    ((This)->lpVtbl->VirtualFree(This, lpAddress, dwSize, dwFreeType))
#define IHostMemoryManager_VirtualQuery(This, lpAddress, lpBuffer, dwLength, pResult)              \
    ((This)->lpVtbl->VirtualQuery(This, lpAddress, lpBuffer, dwLength, pResult))
#define IHostMemoryManager_VirtualProtect(This, lpAddress, dwSize, flNewProtect, pflOldProtect)    \
    ((This)->lpVtbl->VirtualProtect(This, lpAddress, dwSize, flNewProtect, pflOldProtect))
#define IHostMemoryManager_GetMemoryLoad(This, pMemoryLoad, pAvailableBytes)                       \
    ((This)->lpVtbl->GetMemoryLoad(This, pMemoryLoad, pAvailableBytes))
#define IHostMemoryManager_RegisterMemoryNotificationCallback(This, pCallback)                     \
    ((This)->lpVtbl->RegisterMemoryNotificationCallback(This, pCallback))
#define IHostMemoryManager_NeedsVirtualAddressSpace(This, startAddress, size)                      \
    ((This)->lpVtbl->NeedsVirtualAddressSpace(This, startAddress, size))
#define IHostMemoryManager_AcquiredVirtualAddressSpace(This, startAddress, size)                   \
    ((This)->lpVtbl->AcquiredVirtualAddressSpace(This, startAddress, size))
#define IHostMemoryManager_ReleasedVirtualAddressSpace(This, startAddress)                         \
    ((This)->lpVtbl->ReleasedVirtualAddressSpace(This, startAddress))
#endif
#endif
#endif
#endif /* MIDL_STYLE_PARTIAL */

#ifdef __cplusplus
}
#endif

/* ---- then the library's header -----------------------------------------------------------------
 */
#include <hostmalloc/hosting.h>
#include <hostmalloc/hostmalloc.h>

#endif
