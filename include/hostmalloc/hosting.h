/* hostmalloc/hosting.h: the COM ABI of the runtime memory-hosting interfaces.
 *
 * IHostMalloc, IHostMemoryManager and ICLRMemoryNotificationCallback in their MIDL C form
 * (a struct holding a pointer to a vtable of function pointers in slot order), their IIDs, the
 * enumerations and the HRESULT values, laid out for Linux x86-64 (LP64) as the CoreCLR PAL
 * defines the Windows types. Every Windows-style name is guarded, so this header can be
 * included after a PAL or Windows header that already defines it.
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
#ifndef _HOSTING_ENUMS_DEFINED
#define _HOSTING_ENUMS_DEFINED
typedef enum {
    eTaskCritical = 0,
    eAppDomainCritical = 1,
    eProcessCritical = 2
} EMemoryCriticalLevel;

typedef enum { MALLOC_THREADSAFE = 0x1, MALLOC_EXECUTABLE = 0x2 } MALLOC_TYPE;

typedef enum {
    eMemoryAvailableLow = 1,
    eMemoryAvailableNeutral = 2,
    eMemoryAvailableHigh = 3
} EMemoryAvailable;
#endif

/* ---- IIDs ---------------------------------------------------------------------------------- */
extern const IID IID_IUnknown;
extern const IID IID_IHostMalloc;
extern const IID IID_IHostMemoryManager;
extern const IID IID_ICLRMemoryNotificationCallback;
/* The same GUID is also published under this name. */
extern const IID IID_IHostMemoryNeededCallback;

/* ---- Interfaces ---------------------------------------------------------------------------- */
typedef struct IHostMalloc IHostMalloc;
typedef struct IHostMemoryManager IHostMemoryManager;
typedef struct ICLRMemoryNotificationCallback ICLRMemoryNotificationCallback;

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

/* ---- MIDL-style call macros --------------------------------------------------------------- */
#define IHostMalloc_QueryInterface(This, riid, ppv)                                                \
    ((This)->lpVtbl->QueryInterface(This, riid, ppv))
#define IHostMalloc_AddRef(This)             ((This)->lpVtbl->AddRef(This))
#define IHostMalloc_Release(This)            ((This)->lpVtbl->Release(This))
#define IHostMalloc_Alloc(This, cb, lvl, pp) ((This)->lpVtbl->Alloc(This, cb, lvl, pp))
#define IHostMalloc_DebugAlloc(This, cb, lvl, file, line, pp)                                      \
    ((This)->lpVtbl->DebugAlloc(This, cb, lvl, file, line, pp))
#define IHostMalloc_Free(This, p) ((This)->lpVtbl->Free(This, p))

#define IHostMemoryManager_QueryInterface(This, riid, ppv)                                         \
    ((This)->lpVtbl->QueryInterface(This, riid, ppv))
#define IHostMemoryManager_AddRef(This)  ((This)->lpVtbl->AddRef(This))
#define IHostMemoryManager_Release(This) ((This)->lpVtbl->Release(This))
#define IHostMemoryManager_CreateMalloc(This, type, pp)                                            \
    ((This)->lpVtbl->CreateMalloc(This, type, pp))
#define IHostMemoryManager_VirtualAlloc(This, addr, size, type, prot, lvl, pp)                     \
    ((This)->lpVtbl->VirtualAlloc(This, addr, size, type, prot, lvl, pp))
#define IHostMemoryManager_VirtualFree(This, addr, size, type)                                     \
    ((This)->lpVtbl->VirtualFree(This, addr, size, type))
#define IHostMemoryManager_VirtualQuery(This, addr, buf, len, pres)                                \
    ((This)->lpVtbl->VirtualQuery(This, addr, buf, len, pres))
#define IHostMemoryManager_VirtualProtect(This, addr, size, prot, pold)                            \
    ((This)->lpVtbl->VirtualProtect(This, addr, size, prot, pold))
#define IHostMemoryManager_GetMemoryLoad(This, pload, pavail)                                      \
    ((This)->lpVtbl->GetMemoryLoad(This, pload, pavail))
#define IHostMemoryManager_RegisterMemoryNotificationCallback(This, cb)                            \
    ((This)->lpVtbl->RegisterMemoryNotificationCallback(This, cb))
#define IHostMemoryManager_NeedsVirtualAddressSpace(This, addr, size)                              \
    ((This)->lpVtbl->NeedsVirtualAddressSpace(This, addr, size))
#define IHostMemoryManager_AcquiredVirtualAddressSpace(This, addr, size)                           \
    ((This)->lpVtbl->AcquiredVirtualAddressSpace(This, addr, size))
#define IHostMemoryManager_ReleasedVirtualAddressSpace(This, addr)                                 \
    ((This)->lpVtbl->ReleasedVirtualAddressSpace(This, addr))

#define ICLRMemoryNotificationCallback_QueryInterface(This, riid, ppv)                             \
    ((This)->lpVtbl->QueryInterface(This, riid, ppv))
#define ICLRMemoryNotificationCallback_AddRef(This)  ((This)->lpVtbl->AddRef(This))
#define ICLRMemoryNotificationCallback_Release(This) ((This)->lpVtbl->Release(This))
#define ICLRMemoryNotificationCallback_OnMemoryNotification(This, avail)                           \
    ((This)->lpVtbl->OnMemoryNotification(This, avail))

/* ---- ABI checks ---------------------------------------------------------------------------- */
#if !defined(__cplusplus) && defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
_Static_assert(sizeof(GUID) == 16, "GUID must be 16 bytes");
_Static_assert(sizeof(HRESULT) == 4 && sizeof(DWORD) == 4 && sizeof(ULONG) == 4,
               "HRESULT, DWORD and ULONG are 32 bits");
_Static_assert(sizeof(EMemoryCriticalLevel) == 4, "enums are int-sized");
_Static_assert(sizeof(IHostMallocVtbl) == 48, "IHostMalloc vtable has 6 slots");
_Static_assert(sizeof(IHostMemoryManagerVtbl) == 104, "IHostMemoryManager vtable has 13 slots");
_Static_assert(sizeof(ICLRMemoryNotificationCallbackVtbl) == 32,
               "ICLRMemoryNotificationCallback vtable has 4 slots");
_Static_assert(sizeof(MEMORY_BASIC_INFORMATION) == 48, "MEMORY_BASIC_INFORMATION is 48 bytes");
#endif

#ifdef __cplusplus
}
#endif
#endif /* HOSTMALLOC_HOSTING_H */
