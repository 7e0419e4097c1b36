/* SPDX-License-Identifier: MIT */
/* hostmalloc/hosting.h: the COM ABI of the runtime memory-hosting interfaces.
 *
 * IHostMalloc, IHostMemoryManager and ICLRMemoryNotificationCallback as MIDL output declares
 * them: C++ interfaces (pure virtual methods, deriving from IUnknown) in C++, the C form (a
 * struct holding a pointer to a vtable of function pointers in slot order) in C or when
 * CINTERFACE is defined; both are the same object in memory. Also their IIDs, the
 * enumerations and the HRESULT values, laid out for Linux x86-64 (LP64) as the CoreCLR PAL
 * defines the Windows types. Every Windows-style name is guarded, each interface under MIDL's
 * own guard, so this header can be included after a PAL, Windows or MIDL-generated header that
 * already declares some of it.
 *
 * The contract is stated in docs/CONTRACT.md; what each method returns when, in docs/API.md. */
#ifndef HOSTMALLOC_HOSTING_H
#define HOSTMALLOC_HOSTING_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Windows base types (LP64: DWORD and ULONG are 32 bits, never `long`) ---------------- */
#ifndef _HRESULT_DEFINED
#define _HRESULT_DEFINED
typedef int32_t HRESULT;
#endif
#ifndef _DWORD_DEFINED
#define _DWORD_DEFINED
typedef uint32_t DWORD;
#endif
#ifndef _ULONG_DEFINED
#define _ULONG_DEFINED
typedef uint32_t ULONG;
#endif
#ifndef _SIZE_T_DEFINED_HOSTING
#define _SIZE_T_DEFINED_HOSTING
#ifndef SIZE_T
typedef size_t SIZE_T;
#endif
#endif
#ifndef _LPVOID_DEFINED
#define _LPVOID_DEFINED
typedef void *LPVOID;
#endif
#ifndef GUID_DEFINED
#define GUID_DEFINED
typedef struct _GUID {
    uint32_t Data1;
    uint16_t Data2;
    uint16_t Data3;
    uint8_t Data4[8];
} GUID;
#endif
#ifndef _IID_DEFINED
#define _IID_DEFINED
typedef GUID IID;
#endif
#ifndef _REFIID_DEFINED
#define _REFIID_DEFINED
#ifdef __cplusplus
#define REFIID const IID &
#else
#define REFIID const IID *
#endif
#endif
#ifndef STDMETHODCALLTYPE
#define STDMETHODCALLTYPE /* System V: no special convention on x86-64 */
#endif

/* ---- HRESULT values ------------------------------------------------------------------------ */
#ifndef SUCCEEDED
#define SUCCEEDED(hr) (((HRESULT)(hr)) >= 0)
#endif
#ifndef FAILED
#define FAILED(hr) (((HRESULT)(hr)) < 0)
#endif
#ifndef S_OK
#define S_OK ((HRESULT)0x00000000)
#endif
#ifndef S_FALSE
#define S_FALSE ((HRESULT)0x00000001)
#endif
#ifndef E_NOTIMPL
#define E_NOTIMPL ((HRESULT)0x80004001)
#endif
#ifndef E_NOINTERFACE
#define E_NOINTERFACE ((HRESULT)0x80004002)
#endif
#ifndef E_POINTER
#define E_POINTER ((HRESULT)0x80004003)
#endif
#ifndef E_FAIL
#define E_FAIL ((HRESULT)0x80004005)
#endif
#ifndef E_UNEXPECTED
#define E_UNEXPECTED ((HRESULT)0x8000FFFF)
#endif
#ifndef E_ACCESSDENIED
#define E_ACCESSDENIED ((HRESULT)0x80070005)
#endif
#ifndef E_OUTOFMEMORY
#define E_OUTOFMEMORY ((HRESULT)0x8007000E)
#endif
#ifndef E_INVALIDARG
#define E_INVALIDARG ((HRESULT)0x80070057)
#endif
#ifndef HOST_E_DEADLOCK
#define HOST_E_DEADLOCK ((HRESULT)0x80131020)
#endif
#ifndef HOST_E_INTERRUPTED
#define HOST_E_INTERRUPTED ((HRESULT)0x80131021)
#endif
#ifndef HOST_E_INVALIDOPERATION
#define HOST_E_INVALIDOPERATION ((HRESULT)0x80131022)
#endif
#ifndef HOST_E_CLRNOTAVAILABLE
#define HOST_E_CLRNOTAVAILABLE ((HRESULT)0x80131023)
#endif
#ifndef HOST_E_TIMEOUT
#define HOST_E_TIMEOUT ((HRESULT)0x80131024)
#endif
#ifndef HOST_E_NOT_OWNER
#define HOST_E_NOT_OWNER ((HRESULT)0x80131025)
#endif
#ifndef HOST_E_ABANDONED
#define HOST_E_ABANDONED ((HRESULT)0x80131026)
#endif

/* ---- VirtualAlloc family constants ----------------------------------------------------------- */
#ifndef PAGE_NOACCESS
#define PAGE_NOACCESS          0x01
#define PAGE_READONLY          0x02
#define PAGE_READWRITE         0x04
#define PAGE_EXECUTE           0x10
#define PAGE_EXECUTE_READ      0x20
#define PAGE_EXECUTE_READWRITE 0x40
#endif
#ifndef MEM_COMMIT
#define MEM_COMMIT   0x1000
#define MEM_RESERVE  0x2000
#define MEM_DECOMMIT 0x4000
#define MEM_RELEASE  0x8000
#define MEM_FREE     0x10000
#define MEM_PRIVATE  0x20000
#define MEM_MAPPED   0x40000
#define MEM_RESET    0x80000
#define MEM_TOP_DOWN 0x100000
#endif

#ifndef _MEMORY_BASIC_INFORMATION_DEFINED
#define _MEMORY_BASIC_INFORMATION_DEFINED
/* LP64 layout, 48 bytes. */
typedef struct _MEMORY_BASIC_INFORMATION {
    void *BaseAddress;
    void *AllocationBase;
    DWORD AllocationProtect;
    SIZE_T RegionSize;
    DWORD State;
    DWORD Protect;
    DWORD Type;
} MEMORY_BASIC_INFORMATION;
#endif

/* ---- Enumerations (int-sized) ------------------------------------------------------------- */
/* MIDL output declares these without a guard of their own, just before the interfaces that use
 * them (mscoree.h: EMemoryAvailable and EMemoryCriticalLevel before ICLRMemoryNotificationCallback
 * and IHostMalloc, MALLOC_TYPE before IHostMemoryManager). So each is skipped when its own
 * _X_DEFINED guard is set, or when an earlier header declared an interface that comes with it;
 * _HOSTING_ENUMS_DEFINED skips all three. */
#if !defined(_EMEMORYCRITICALLEVEL_DEFINED) && !defined(_HOSTING_ENUMS_DEFINED) &&                 \
    !defined(__IHostMalloc_INTERFACE_DEFINED__) &&                                                 \
    !defined(__IHostMemoryManager_INTERFACE_DEFINED__)
typedef enum {
    eTaskCritical = 0,
    eAppDomainCritical = 1,
    eProcessCritical = 2
} EMemoryCriticalLevel;
#endif
#if !defined(_MALLOC_TYPE_DEFINED) && !defined(_HOSTING_ENUMS_DEFINED) &&                          \
    !defined(__IHostMemoryManager_INTERFACE_DEFINED__)
typedef enum { MALLOC_THREADSAFE = 0x1, MALLOC_EXECUTABLE = 0x2 } MALLOC_TYPE;
#endif
#if !defined(_EMEMORYAVAILABLE_DEFINED) && !defined(_HOSTING_ENUMS_DEFINED) &&                     \
    !defined(__ICLRMemoryNotificationCallback_INTERFACE_DEFINED__)
typedef enum {
    eMemoryAvailableLow = 1,
    eMemoryAvailableNeutral = 2,
    eMemoryAvailableHigh = 3
} EMemoryAvailable;
#endif
#define _EMEMORYCRITICALLEVEL_DEFINED
#define _MALLOC_TYPE_DEFINED
#define _EMEMORYAVAILABLE_DEFINED
#define _HOSTING_ENUMS_DEFINED

/* ---- IIDs ---------------------------------------------------------------------------------- */
extern const IID IID_IUnknown;
extern const IID IID_IHostMalloc;
extern const IID IID_IHostMemoryManager;
extern const IID IID_ICLRMemoryNotificationCallback;
/* The same GUID is also published under this name. */
extern const IID IID_IHostMemoryNeededCallback;

/* ---- Interfaces ---------------------------------------------------------------------------- *
 * Two forms, chosen as MIDL output chooses them:
 *   C++ without CINTERFACE: structs with pure virtual methods deriving from IUnknown. The
 *     Itanium C++ ABI (Linux x86-64) lays a vtable out in declaration order, base first, so
 *     QueryInterface, AddRef, Release and then each method are in the slots of the C form. The
 *     interfaces have no virtual destructor (it would take vtable slots); theirs is protected
 *     and non-virtual, so `delete` through an interface pointer does not compile and
 *     -Wnon-virtual-dtor has nothing to say. An implementation may add a virtual destructor of
 *     its own: its slots come after the interface's.
 *   C, or C++ with CINTERFACE: a struct holding a pointer to a vtable of function pointers
 *     (IHostMallocVtbl, ...), each taking the object as its first argument `This`.
 * The two are the same binary object: a C++ host calls the library's objects (made in C) as
 * C++ objects, and the library calls a C++ ICLRMemoryNotificationCallback through its vtable.
 *
 * Each interface sits under the guard MIDL output uses, __I<name>_INTERFACE_DEFINED__ (and
 * __I<name>_FWD_DEFINED__ for its forward declaration), so a MIDL-generated mscoree.h or a PAL
 * that declared it first wins and this header only adds what is missing. Include this header
 * after such headers: theirs cannot see ours. */
#ifndef __IUnknown_FWD_DEFINED__
#define __IUnknown_FWD_DEFINED__
typedef struct IUnknown IUnknown;
#endif
#ifndef __IHostMalloc_FWD_DEFINED__
#define __IHostMalloc_FWD_DEFINED__
typedef struct IHostMalloc IHostMalloc;
#endif
#ifndef __IHostMemoryManager_FWD_DEFINED__
#define __IHostMemoryManager_FWD_DEFINED__
typedef struct IHostMemoryManager IHostMemoryManager;
#endif
#ifndef __ICLRMemoryNotificationCallback_FWD_DEFINED__
#define __ICLRMemoryNotificationCallback_FWD_DEFINED__
typedef struct ICLRMemoryNotificationCallback ICLRMemoryNotificationCallback;
#endif

#if defined(__cplusplus) && !defined(CINTERFACE)
/* ---- C++ form ---- */
#ifndef __IUnknown_INTERFACE_DEFINED__
#define __IUnknown_INTERFACE_DEFINED__
struct IUnknown {
    virtual HRESULT STDMETHODCALLTYPE QueryInterface(REFIID riid, void **ppvObject) = 0;
    virtual ULONG STDMETHODCALLTYPE AddRef(void) = 0;
    virtual ULONG STDMETHODCALLTYPE Release(void) = 0;

  protected:
    ~IUnknown() {}
};
#endif

#ifndef __IHostMalloc_INTERFACE_DEFINED__
#define __IHostMalloc_INTERFACE_DEFINED__
struct IHostMalloc : public IUnknown {
    virtual HRESULT STDMETHODCALLTYPE Alloc(SIZE_T cbSize, EMemoryCriticalLevel eCriticalLevel,
                                            void **ppMem) = 0;
    virtual HRESULT STDMETHODCALLTYPE DebugAlloc(SIZE_T cbSize, EMemoryCriticalLevel eCriticalLevel,
                                                 char *pszFileName, int iLineNo, void **ppMem) = 0;
    virtual HRESULT STDMETHODCALLTYPE Free(void *pMem) = 0;

  protected:
    ~IHostMalloc() {}
};
#endif

#ifndef __ICLRMemoryNotificationCallback_INTERFACE_DEFINED__
#define __ICLRMemoryNotificationCallback_INTERFACE_DEFINED__
struct ICLRMemoryNotificationCallback : public IUnknown {
    virtual HRESULT STDMETHODCALLTYPE OnMemoryNotification(EMemoryAvailable eMemoryAvailable) = 0;

  protected:
    ~ICLRMemoryNotificationCallback() {}
};
#endif

#ifndef __IHostMemoryManager_INTERFACE_DEFINED__
#define __IHostMemoryManager_INTERFACE_DEFINED__
struct IHostMemoryManager : public IUnknown {
    virtual HRESULT STDMETHODCALLTYPE CreateMalloc(DWORD dwMallocType, IHostMalloc **ppMalloc) = 0;
    virtual HRESULT STDMETHODCALLTYPE VirtualAlloc(void *pAddress, SIZE_T dwSize,
                                                   DWORD flAllocationType, DWORD flProtect,
                                                   EMemoryCriticalLevel eCriticalLevel,
                                                   void **ppMem) = 0;
    virtual HRESULT STDMETHODCALLTYPE VirtualFree(LPVOID lpAddress, SIZE_T dwSize,
                                                  DWORD dwFreeType) = 0;
    virtual HRESULT STDMETHODCALLTYPE VirtualQuery(void *lpAddress, void *lpBuffer, SIZE_T dwLength,
                                                   SIZE_T *pResult) = 0;
    virtual HRESULT STDMETHODCALLTYPE VirtualProtect(void *lpAddress, SIZE_T dwSize,
                                                     DWORD flNewProtect, DWORD *pflOldProtect) = 0;
    virtual HRESULT STDMETHODCALLTYPE GetMemoryLoad(DWORD *pMemoryLoad,
                                                    SIZE_T *pAvailableBytes) = 0;
    virtual HRESULT STDMETHODCALLTYPE
    RegisterMemoryNotificationCallback(ICLRMemoryNotificationCallback *pCallback) = 0;
    virtual HRESULT STDMETHODCALLTYPE NeedsVirtualAddressSpace(LPVOID startAddress,
                                                               SIZE_T size) = 0;
    virtual HRESULT STDMETHODCALLTYPE AcquiredVirtualAddressSpace(LPVOID startAddress,
                                                                  SIZE_T size) = 0;
    virtual HRESULT STDMETHODCALLTYPE ReleasedVirtualAddressSpace(LPVOID startAddress) = 0;

  protected:
    ~IHostMemoryManager() {}
};
#endif

#else
/* ---- C form (C, and C++ with CINTERFACE) ---- */
#ifndef __IHostMalloc_INTERFACE_DEFINED__
#define __IHostMalloc_INTERFACE_DEFINED__
typedef struct IHostMallocVtbl {
    HRESULT(STDMETHODCALLTYPE *QueryInterface)(IHostMalloc *This, REFIID riid, void **ppvObject);
    ULONG(STDMETHODCALLTYPE *AddRef)(IHostMalloc *This);
    ULONG(STDMETHODCALLTYPE *Release)(IHostMalloc *This);
    HRESULT(STDMETHODCALLTYPE *Alloc)
    (IHostMalloc *This, SIZE_T cbSize, EMemoryCriticalLevel eCriticalLevel, void **ppMem);
    HRESULT(STDMETHODCALLTYPE *DebugAlloc)
    (IHostMalloc *This, SIZE_T cbSize, EMemoryCriticalLevel eCriticalLevel, char *pszFileName,
     int iLineNo, void **ppMem);
    HRESULT(STDMETHODCALLTYPE *Free)(IHostMalloc *This, void *pMem);
} IHostMallocVtbl;

struct IHostMalloc {
    const IHostMallocVtbl *lpVtbl;
};
#endif

#ifndef __ICLRMemoryNotificationCallback_INTERFACE_DEFINED__
#define __ICLRMemoryNotificationCallback_INTERFACE_DEFINED__
typedef struct ICLRMemoryNotificationCallbackVtbl {
    HRESULT(STDMETHODCALLTYPE *QueryInterface)
    (ICLRMemoryNotificationCallback *This, REFIID riid, void **ppvObject);
    ULONG(STDMETHODCALLTYPE *AddRef)(ICLRMemoryNotificationCallback *This);
    ULONG(STDMETHODCALLTYPE *Release)(ICLRMemoryNotificationCallback *This);
    HRESULT(STDMETHODCALLTYPE *OnMemoryNotification)
    (ICLRMemoryNotificationCallback *This, EMemoryAvailable eMemoryAvailable);
} ICLRMemoryNotificationCallbackVtbl;

struct ICLRMemoryNotificationCallback {
    const ICLRMemoryNotificationCallbackVtbl *lpVtbl;
};
#endif

#ifndef __IHostMemoryManager_INTERFACE_DEFINED__
#define __IHostMemoryManager_INTERFACE_DEFINED__
typedef struct IHostMemoryManagerVtbl {
    HRESULT(STDMETHODCALLTYPE *QueryInterface)
    (IHostMemoryManager *This, REFIID riid, void **ppvObject);
    ULONG(STDMETHODCALLTYPE *AddRef)(IHostMemoryManager *This);
    ULONG(STDMETHODCALLTYPE *Release)(IHostMemoryManager *This);
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
} IHostMemoryManagerVtbl;

struct IHostMemoryManager {
    const IHostMemoryManagerVtbl *lpVtbl;
};
#endif
#endif /* C form */

/* ---- Call macros --------------------------------------------------------------------------- *
 * IHostMalloc_Alloc(p, cb, level, &mem) and the rest work in both forms: through lpVtbl in the
 * C form, as a virtual call in the C++ form. Unlike MIDL output (C form with COBJMACROS only)
 * they are always defined, because C code written against this header has always had them.
 * A set already defined (MIDL output compiled with COBJMACROS) is kept. */
#if defined(__cplusplus) && !defined(CINTERFACE)
#define HM_COM_CALL_(This, method, ...) ((This)->method(__VA_ARGS__))
#define HM_COM_CALL0_(This, method)     ((This)->method())
#else
#define HM_COM_CALL_(This, method, ...) ((This)->lpVtbl->method(This, __VA_ARGS__))
#define HM_COM_CALL0_(This, method)     ((This)->lpVtbl->method(This))
#endif

#ifndef IHostMalloc_QueryInterface
#define IHostMalloc_QueryInterface(This, riid, ppv) HM_COM_CALL_(This, QueryInterface, riid, ppv)
#define IHostMalloc_AddRef(This)                    HM_COM_CALL0_(This, AddRef)
#define IHostMalloc_Release(This)                   HM_COM_CALL0_(This, Release)
#define IHostMalloc_Alloc(This, cb, lvl, pp)        HM_COM_CALL_(This, Alloc, cb, lvl, pp)
#define IHostMalloc_DebugAlloc(This, cb, lvl, file, line, pp)                                      \
    HM_COM_CALL_(This, DebugAlloc, cb, lvl, file, line, pp)
#define IHostMalloc_Free(This, p) HM_COM_CALL_(This, Free, p)
#endif

#ifndef IHostMemoryManager_QueryInterface
#define IHostMemoryManager_QueryInterface(This, riid, ppv)                                         \
    HM_COM_CALL_(This, QueryInterface, riid, ppv)
#define IHostMemoryManager_AddRef(This)                 HM_COM_CALL0_(This, AddRef)
#define IHostMemoryManager_Release(This)                HM_COM_CALL0_(This, Release)
#define IHostMemoryManager_CreateMalloc(This, type, pp) HM_COM_CALL_(This, CreateMalloc, type, pp)
#define IHostMemoryManager_VirtualAlloc(This, addr, size, type, prot, lvl, pp)                     \
    HM_COM_CALL_(This, VirtualAlloc, addr, size, type, prot, lvl, pp)
#define IHostMemoryManager_VirtualFree(This, addr, size, type)                                     \
    HM_COM_CALL_(This, VirtualFree, addr, size, type)
#define IHostMemoryManager_VirtualQuery(This, addr, buf, len, pres)                                \
    HM_COM_CALL_(This, VirtualQuery, addr, buf, len, pres)
#define IHostMemoryManager_VirtualProtect(This, addr, size, prot, pold)                            \
    HM_COM_CALL_(This, VirtualProtect, addr, size, prot, pold)
#define IHostMemoryManager_GetMemoryLoad(This, pload, pavail)                                      \
    HM_COM_CALL_(This, GetMemoryLoad, pload, pavail)
#define IHostMemoryManager_RegisterMemoryNotificationCallback(This, cb)                            \
    HM_COM_CALL_(This, RegisterMemoryNotificationCallback, cb)
#define IHostMemoryManager_NeedsVirtualAddressSpace(This, addr, size)                              \
    HM_COM_CALL_(This, NeedsVirtualAddressSpace, addr, size)
#define IHostMemoryManager_AcquiredVirtualAddressSpace(This, addr, size)                           \
    HM_COM_CALL_(This, AcquiredVirtualAddressSpace, addr, size)
#define IHostMemoryManager_ReleasedVirtualAddressSpace(This, addr)                                 \
    HM_COM_CALL_(This, ReleasedVirtualAddressSpace, addr)
#endif

#ifndef ICLRMemoryNotificationCallback_QueryInterface
#define ICLRMemoryNotificationCallback_QueryInterface(This, riid, ppv)                             \
    HM_COM_CALL_(This, QueryInterface, riid, ppv)
#define ICLRMemoryNotificationCallback_AddRef(This)  HM_COM_CALL0_(This, AddRef)
#define ICLRMemoryNotificationCallback_Release(This) HM_COM_CALL0_(This, Release)
#define ICLRMemoryNotificationCallback_OnMemoryNotification(This, avail)                           \
    HM_COM_CALL_(This, OnMemoryNotification, avail)
#endif

/* ---- ABI checks ---------------------------------------------------------------------------- */
#if defined(__cplusplus) && __cplusplus >= 201103L
#define HM_HOSTING_ASSERT_(cond, msg) static_assert(cond, msg)
#elif !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define HM_HOSTING_ASSERT_(cond, msg) _Static_assert(cond, msg)
#endif
#ifdef HM_HOSTING_ASSERT_
HM_HOSTING_ASSERT_(sizeof(GUID) == 16, "GUID must be 16 bytes");
HM_HOSTING_ASSERT_(sizeof(HRESULT) == 4 && sizeof(DWORD) == 4 && sizeof(ULONG) == 4,
                   "HRESULT, DWORD and ULONG are 32 bits");
HM_HOSTING_ASSERT_(sizeof(EMemoryCriticalLevel) == 4 && sizeof(EMemoryAvailable) == 4 &&
                       sizeof(MALLOC_TYPE) == 4,
                   "enums are int-sized");
HM_HOSTING_ASSERT_(sizeof(MEMORY_BASIC_INFORMATION) == 48, "MEMORY_BASIC_INFORMATION is 48 bytes");
/* Either form: one pointer (the vtable pointer) and nothing else. */
HM_HOSTING_ASSERT_(sizeof(IHostMalloc) == sizeof(void *) &&
                       sizeof(IHostMemoryManager) == sizeof(void *) &&
                       sizeof(ICLRMemoryNotificationCallback) == sizeof(void *),
                   "an interface is its vtable pointer");
#if !defined(__cplusplus) || defined(CINTERFACE)
HM_HOSTING_ASSERT_(sizeof(IHostMallocVtbl) == 48, "IHostMalloc vtable has 6 slots");
HM_HOSTING_ASSERT_(sizeof(IHostMemoryManagerVtbl) == 104, "IHostMemoryManager vtable has 13 slots");
HM_HOSTING_ASSERT_(sizeof(ICLRMemoryNotificationCallbackVtbl) == 32,
                   "ICLRMemoryNotificationCallback vtable has 4 slots");
#else
/* The interfaces add no vtable slot of their own outside the declared methods: no virtual
 * destructor. (The slot order itself is checked by tests that call across the languages.) */
HM_HOSTING_ASSERT_(!__has_virtual_destructor(IHostMalloc) &&
                       !__has_virtual_destructor(IHostMemoryManager) &&
                       !__has_virtual_destructor(ICLRMemoryNotificationCallback),
                   "no virtual destructor in an interface");
#endif
#undef HM_HOSTING_ASSERT_
#endif

#ifdef __cplusplus
}
#endif
#endif /* HOSTMALLOC_HOSTING_H */
