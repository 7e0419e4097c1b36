/* SPDX-License-Identifier: MIT */
/* tests/api/test_cxx_peer.c: the C half of the C/C++ slot tests; see test_cxx_peer.h. Compiled as
 * C: the interfaces here are the C form, vtables of function pointers. */
#include <stdarg.h>
#include <string.h>

#include "test_cxx_peer.h"

peer_call peer_log[PEER_LOG_MAX];
int peer_log_len;

char peer_file[] = "peer.c";
void *peer_out;
IHostMalloc *peer_malloc_out;
SIZE_T peer_size_out;
DWORD peer_dword_out;
MEMORY_BASIC_INFORMATION peer_mbi;

void peer_log_reset(void) {
    memset(peer_log, 0, sizeof(peer_log));
    peer_log_len = 0;
}

void peer_log_add(int slot, const void *self, int nargs, ...) {
    if (peer_log_len >= PEER_LOG_MAX) return; /* the test sees the count stop growing */
    peer_call *c = &peer_log[peer_log_len++];
    c->slot = slot;
    c->self = self;
    c->nargs = nargs;
    va_list ap;
    va_start(ap, nargs);
    for (int i = 0; i < nargs && i < 7; i++)
        c->args[i] = va_arg(ap, uintptr_t);
    va_end(ap);
}

#define U(x) ((uintptr_t)(x))

/* QueryInterface, AddRef and Release (slots 0 to 2) of interface I for the object `pre`_obj:
 * each logs itself and returns base + slot. */
#define PEER_C_IUNKNOWN(pre, I, base)                                                              \
    static HRESULT STDMETHODCALLTYPE pre##_qi(I *t, REFIID r, void **p) {                          \
        peer_log_add(0, t, 2, U(r), U(p));                                                         \
        return (base);                                                                             \
    }                                                                                              \
    static ULONG STDMETHODCALLTYPE pre##_addref(I *t) {                                            \
        peer_log_add(1, t, 0);                                                                     \
        return (base) + 1;                                                                         \
    }                                                                                              \
    static ULONG STDMETHODCALLTYPE pre##_release(I *t) {                                           \
        peer_log_add(2, t, 0);                                                                     \
        return (base) + 2;                                                                         \
    }

/* ---- IHostMalloc ------------------------------------------------------------------------------
 */
PEER_C_IUNKNOWN(m, IHostMalloc, 0x100)
static HRESULT STDMETHODCALLTYPE m_alloc(IHostMalloc *t, SIZE_T cb, EMemoryCriticalLevel l,
                                         void **pp) {
    peer_log_add(3, t, 3, U(cb), U(l), U(pp));
    return 0x103;
}
static HRESULT STDMETHODCALLTYPE m_debugalloc(IHostMalloc *t, SIZE_T cb, EMemoryCriticalLevel l,
                                              char *f, int line, void **pp) {
    peer_log_add(4, t, 5, U(cb), U(l), U(f), U(line), U(pp));
    return 0x104;
}
static HRESULT STDMETHODCALLTYPE m_free(IHostMalloc *t, void *p) {
    peer_log_add(5, t, 1, U(p));
    return 0x105;
}
static const IHostMallocVtbl m_vtbl = {m_qi, m_addref, m_release, m_alloc, m_debugalloc, m_free};
static IHostMalloc m_obj = {&m_vtbl};

IHostMalloc *peer_c_malloc(void) {
    return &m_obj;
}

/* ---- IHostMemoryManager -----------------------------------------------------------------------
 */
PEER_C_IUNKNOWN(g, IHostMemoryManager, 0x200)
static HRESULT STDMETHODCALLTYPE g_create(IHostMemoryManager *t, DWORD type, IHostMalloc **pp) {
    peer_log_add(3, t, 2, U(type), U(pp));
    return 0x203;
}
static HRESULT STDMETHODCALLTYPE g_valloc(IHostMemoryManager *t, void *a, SIZE_T s, DWORD ty,
                                          DWORD pr, EMemoryCriticalLevel l, void **pp) {
    peer_log_add(4, t, 6, U(a), U(s), U(ty), U(pr), U(l), U(pp));
    return 0x204;
}
static HRESULT STDMETHODCALLTYPE g_vfree(IHostMemoryManager *t, LPVOID a, SIZE_T s, DWORD ty) {
    peer_log_add(5, t, 3, U(a), U(s), U(ty));
    return 0x205;
}
static HRESULT STDMETHODCALLTYPE g_vquery(IHostMemoryManager *t, void *a, void *b, SIZE_T len,
                                          SIZE_T *r) {
    peer_log_add(6, t, 4, U(a), U(b), U(len), U(r));
    return 0x206;
}
static HRESULT STDMETHODCALLTYPE g_vprotect(IHostMemoryManager *t, void *a, SIZE_T s, DWORD pr,
                                            DWORD *old) {
    peer_log_add(7, t, 4, U(a), U(s), U(pr), U(old));
    return 0x207;
}
static HRESULT STDMETHODCALLTYPE g_load(IHostMemoryManager *t, DWORD *l, SIZE_T *av) {
    peer_log_add(8, t, 2, U(l), U(av));
    return 0x208;
}
static HRESULT STDMETHODCALLTYPE g_register(IHostMemoryManager *t,
                                            ICLRMemoryNotificationCallback *cb) {
    peer_log_add(9, t, 1, U(cb));
    return 0x209;
}
static HRESULT STDMETHODCALLTYPE g_needs(IHostMemoryManager *t, LPVOID a, SIZE_T s) {
    peer_log_add(10, t, 2, U(a), U(s));
    return 0x20A;
}
static HRESULT STDMETHODCALLTYPE g_acquired(IHostMemoryManager *t, LPVOID a, SIZE_T s) {
    peer_log_add(11, t, 2, U(a), U(s));
    return 0x20B;
}
static HRESULT STDMETHODCALLTYPE g_released(IHostMemoryManager *t, LPVOID a) {
    peer_log_add(12, t, 1, U(a));
    return 0x20C;
}
static const IHostMemoryManagerVtbl g_vtbl = {g_qi,    g_addref,   g_release,  g_create, g_valloc,
                                              g_vfree, g_vquery,   g_vprotect, g_load,   g_register,
                                              g_needs, g_acquired, g_released};
static IHostMemoryManager g_obj = {&g_vtbl};

IHostMemoryManager *peer_c_manager(void) {
    return &g_obj;
}

/* ---- ICLRMemoryNotificationCallback -----------------------------------------------------------
 */
PEER_C_IUNKNOWN(c, ICLRMemoryNotificationCallback, 0x300)
static HRESULT STDMETHODCALLTYPE c_notify(ICLRMemoryNotificationCallback *t, EMemoryAvailable a) {
    peer_log_add(3, t, 1, U(a));
    return 0x303;
}
static const ICLRMemoryNotificationCallbackVtbl c_vtbl = {c_qi, c_addref, c_release, c_notify};
static ICLRMemoryNotificationCallback c_obj = {&c_vtbl};

ICLRMemoryNotificationCallback *peer_c_callback(void) {
    return &c_obj;
}

/* ---- calling every slot through the C macros ------------------------------------------------- */
void peer_call_malloc(IHostMalloc *o, int64_t r[6]) {
    r[0] = IHostMalloc_QueryInterface(o, &IID_IHostMalloc, &peer_out);
    PEER_MALLOC_MACRO_CALLS(o, r);
}

void peer_call_manager(IHostMemoryManager *o, ICLRMemoryNotificationCallback *cb, int64_t r[13]) {
    r[0] = IHostMemoryManager_QueryInterface(o, &IID_IHostMemoryManager, &peer_out);
    PEER_MANAGER_MACRO_CALLS(o, cb, r);
}

void peer_call_callback(ICLRMemoryNotificationCallback *o, int64_t r[4]) {
    r[0] = ICLRMemoryNotificationCallback_QueryInterface(o, &IID_ICLRMemoryNotificationCallback,
                                                         &peer_out);
    PEER_CALLBACK_MACRO_CALLS(o, r);
}
