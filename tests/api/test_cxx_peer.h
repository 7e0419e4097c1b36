/* SPDX-License-Identifier: MIT */
/* tests/api/test_cxx_peer.h: the C half of the C/C++ slot tests (tests/api/test_cxx.cpp).
 *
 * test_cxx_peer.c is compiled as C, so it sees the C form of the interfaces. It makes objects
 * whose C vtables log every call (peer_c_*), which the C++ test calls as C++ objects; and it
 * calls every slot of an object through the C call macros (peer_call_*), which the C++ test
 * hands C++ objects. Either way the log says which slot ran with which arguments, so a slot
 * out of order or an argument out of place shows. test_abi calls the C objects through the
 * C macros one slot at a time, with arguments of its own. */
#ifndef HOSTMALLOC_TEST_CXX_PEER_H
#define HOSTMALLOC_TEST_CXX_PEER_H

#include <stdint.h>

#include <hostmalloc/hosting.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One logged call: the slot index in the vtable, the object, the arguments after `This`. */
typedef struct peer_call {
    int slot;
    const void *self;
    int nargs;
    uintptr_t args[7];
} peer_call;

#define PEER_LOG_MAX 32
extern peer_call peer_log[PEER_LOG_MAX];
extern int peer_log_len;
void peer_log_reset(void);
void peer_log_add(int slot, const void *self, int nargs, ...); /* nargs uintptr_t arguments */

/* The C objects: each method logs itself and returns base + slot (base 0x100 for IHostMalloc,
 * 0x200 for IHostMemoryManager, 0x300 for ICLRMemoryNotificationCallback). */
IHostMalloc *peer_c_malloc(void);
IHostMemoryManager *peer_c_manager(void);
ICLRMemoryNotificationCallback *peer_c_callback(void);

/* The arguments peer_call_* passes, for the C++ side to expect. */
#define PEER_SIZE  ((SIZE_T)777)
#define PEER_SIZE2 ((SIZE_T)8192)
#define PEER_LINE  99
#define PEER_DWORD ((DWORD)0x1234)
extern char peer_file[];
extern void *peer_out;
extern IHostMalloc *peer_malloc_out;
extern SIZE_T peer_size_out;
extern DWORD peer_dword_out;
extern MEMORY_BASIC_INFORMATION peer_mbi;

/* Call every slot of `o` in slot order through the IHostMalloc_... (and so on) macros, with the
 * PEER_ arguments; store each call's result (HRESULT or ULONG) in `results` (6, 13 and 4
 * entries). `cb` is what RegisterMemoryNotificationCallback is given. */
void peer_call_malloc(IHostMalloc *o, int64_t results[6]);
void peer_call_manager(IHostMemoryManager *o, ICLRMemoryNotificationCallback *cb,
                       int64_t results[13]);
void peer_call_callback(ICLRMemoryNotificationCallback *o, int64_t results[4]);

/* The slots after QueryInterface of `o` through the call macros (IHostMalloc_... and so on),
 * results in r[1..]: one text each, compiled as C by peer_call_* and as C++ by test_cxx (slot 0,
 * QueryInterface, takes the IID by pointer in C and by reference in C++: each writes its own). */
#define PEER_MALLOC_MACRO_CALLS(o, r)                                                              \
    do {                                                                                           \
        r[1] = IHostMalloc_AddRef(o);                                                              \
        r[2] = IHostMalloc_Release(o);                                                             \
        r[3] = IHostMalloc_Alloc(o, PEER_SIZE, eAppDomainCritical, &peer_out);                     \
        r[4] = IHostMalloc_DebugAlloc(o, PEER_SIZE, eProcessCritical, peer_file, PEER_LINE,        \
                                      &peer_out);                                                  \
        r[5] = IHostMalloc_Free(o, peer_file);                                                     \
    } while (0)

#define PEER_CALLBACK_MACRO_CALLS(o, r)                                                            \
    do {                                                                                           \
        r[1] = ICLRMemoryNotificationCallback_AddRef(o);                                           \
        r[2] = ICLRMemoryNotificationCallback_Release(o);                                          \
        r[3] = ICLRMemoryNotificationCallback_OnMemoryNotification(o, eMemoryAvailableNeutral);    \
    } while (0)

#define PEER_MANAGER_MACRO_CALLS(o, cb, r)                                                         \
    do {                                                                                           \
        r[1] = IHostMemoryManager_AddRef(o);                                                       \
        r[2] = IHostMemoryManager_Release(o);                                                      \
        r[3] = IHostMemoryManager_CreateMalloc(o, MALLOC_EXECUTABLE, &peer_malloc_out);            \
        r[4] = IHostMemoryManager_VirtualAlloc(o, peer_file, PEER_SIZE2, MEM_COMMIT | MEM_RESERVE, \
                                               PAGE_READWRITE, eTaskCritical, &peer_out);          \
        r[5] = IHostMemoryManager_VirtualFree(o, peer_file, PEER_SIZE2, MEM_RELEASE);              \
        r[6] = IHostMemoryManager_VirtualQuery(o, peer_file, &peer_mbi, sizeof(peer_mbi),          \
                                               &peer_size_out);                                    \
        r[7] = IHostMemoryManager_VirtualProtect(o, peer_file, PEER_SIZE2, PAGE_READONLY,          \
                                                 &peer_dword_out);                                 \
        r[8] = IHostMemoryManager_GetMemoryLoad(o, &peer_dword_out, &peer_size_out);               \
        r[9] = IHostMemoryManager_RegisterMemoryNotificationCallback(o, cb);                       \
        r[10] = IHostMemoryManager_NeedsVirtualAddressSpace(o, peer_file, PEER_SIZE);              \
        r[11] = IHostMemoryManager_AcquiredVirtualAddressSpace(o, peer_file, PEER_SIZE2);          \
        r[12] = IHostMemoryManager_ReleasedVirtualAddressSpace(o, peer_file);                      \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
