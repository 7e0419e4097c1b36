/* SPDX-License-Identifier: MIT */
/* doors/com/com_manager.c: the IHostMemoryManager object over an hm_manager.
 *
 * CreateMalloc hands out IHostMalloc instances, each over a heap of its own; each instance
 * holds a reference on this object, so the manager lives while any instance does. Every other
 * method translates to the native manager API (budget, pressure, virtual memory): argument
 * checks and HRESULTs here, the work in the engine. */
#include <pthread.h>

#include "com.h"

typedef struct hm_com_manager_s {
    IHostMemoryManager iface; /* first */
    _Atomic(uint32_t) refs;
    hm_manager *mgr;
    pthread_mutex_t cb_lock; /* guards cb and notify_set; never held across a call */
    ICLRMemoryNotificationCallback *cb;
    bool notify_set;
} hm_com_manager_t;

static hm_com_manager_t *self_of(IHostMemoryManager *This) {
    return (hm_com_manager_t *)This;
}

static HRESULT STDMETHODCALLTYPE mm_query_interface(IHostMemoryManager *This, REFIID riid,
                                                    void **ppv) {
    return hm_com_query(This, &self_of(This)->refs, &IID_IHostMemoryManager, riid, ppv);
}

static ULONG STDMETHODCALLTYPE mm_add_ref(IHostMemoryManager *This) {
    return hm_com_add_ref(&self_of(This)->refs);
}

static ULONG STDMETHODCALLTYPE mm_release(IHostMemoryManager *This) {
    hm_com_manager_t *self = self_of(This);
    ULONG n = hm_com_drop(&self->refs);
    if (n == 0) {
        /* stop notifications first: after this no call of the trampoline starts */
        hm_manager_set_notify(self->mgr, NULL, NULL);
        ICLRMemoryNotificationCallback *cb = self->cb;
        self->cb = NULL;
        if (cb != NULL) ICLRMemoryNotificationCallback_Release(cb);
        hm_manager_release(self->mgr);
        pthread_mutex_destroy(&self->cb_lock);
        hm_free(self);
    }
    return n;
}

static HRESULT STDMETHODCALLTYPE mm_create_malloc(IHostMemoryManager *This, DWORD type,
                                                  IHostMalloc **ppMalloc) {
    if (ppMalloc == NULL) return E_POINTER;
    *ppMalloc = NULL;
    if (type & ~(DWORD)(MALLOC_THREADSAFE | MALLOC_EXECUTABLE)) return E_INVALIDARG;
    return _hm_com_malloc_new(This, self_of(This)->mgr, type, ppMalloc);
}

static HRESULT hr_of(hm_result r) {
    switch (r) {
    case HM_OK:
        return S_OK;
    case HM_ERR_NOMEM:
        return E_OUTOFMEMORY;
    case HM_ERR_INVALID_ARG:
        return E_INVALIDARG;
    default:
        return HOST_E_INVALIDOPERATION; /* memory not obtained through this host */
    }
}

static HRESULT STDMETHODCALLTYPE mm_virtual_alloc(IHostMemoryManager *This, void *pAddress,
                                                  SIZE_T dwSize, DWORD flAllocationType,
                                                  DWORD flProtect,
                                                  EMemoryCriticalLevel eCriticalLevel,
                                                  void **ppMem) {
    if (ppMem == NULL) return E_POINTER;
    *ppMem = NULL;
    if ((unsigned)eCriticalLevel > (unsigned)eProcessCritical) return E_INVALIDARG;
    hm_manager *mgr = self_of(This)->mgr;
    if (hm_manager_faults_enabled(mgr) && hm_manager_fault(mgr, eCriticalLevel))
        return E_OUTOFMEMORY;
    return hr_of(hm_virtual_alloc(mgr, pAddress, dwSize, flAllocationType, flProtect,
                                  eCriticalLevel, ppMem));
}

static HRESULT STDMETHODCALLTYPE mm_virtual_free(IHostMemoryManager *This, LPVOID lpAddress,
                                                 SIZE_T dwSize, DWORD dwFreeType) {
    return hr_of(hm_virtual_free(self_of(This)->mgr, lpAddress, dwSize, dwFreeType));
}

static HRESULT STDMETHODCALLTYPE mm_virtual_query(IHostMemoryManager *This, void *lpAddress,
                                                  void *lpBuffer, SIZE_T dwLength,
                                                  SIZE_T *pResult) {
    if (pResult == NULL || lpBuffer == NULL) return E_POINTER;
    *pResult = 0;
    if (dwLength < sizeof(MEMORY_BASIC_INFORMATION)) return E_INVALIDARG;
    *pResult = hm_virtual_query(self_of(This)->mgr, lpAddress, lpBuffer, dwLength);
    /* 0: the address is outside the user address space, where nothing can be described */
    return *pResult != 0 ? S_OK : E_INVALIDARG;
}

static HRESULT STDMETHODCALLTYPE mm_virtual_protect(IHostMemoryManager *This, void *lpAddress,
                                                    SIZE_T dwSize, DWORD flNewProtect,
                                                    DWORD *pflOldProtect) {
    if (pflOldProtect == NULL) return E_POINTER;
    return hr_of(
        hm_virtual_protect(self_of(This)->mgr, lpAddress, dwSize, flNewProtect, pflOldProtect));
}

static HRESULT STDMETHODCALLTYPE mm_get_memory_load(IHostMemoryManager *This, DWORD *pMemoryLoad,
                                                    SIZE_T *pAvailableBytes) {
    if (pMemoryLoad == NULL || pAvailableBytes == NULL) return E_POINTER;
    uint32_t load;
    size_t avail;
    hm_manager_load(self_of(This)->mgr, &load, &avail);
    *pMemoryLoad = load;
    *pAvailableBytes = avail;
    return S_OK;
}

/* Runs on the manager's notifier thread, with no lock held. */
static void notify_trampoline(void *arg, EMemoryAvailable level) {
    hm_com_manager_t *self = arg;
    pthread_mutex_lock(&self->cb_lock);
    ICLRMemoryNotificationCallback *cb = self->cb;
    if (cb != NULL) ICLRMemoryNotificationCallback_AddRef(cb);
    pthread_mutex_unlock(&self->cb_lock);
    if (cb == NULL) return;
    ICLRMemoryNotificationCallback_OnMemoryNotification(cb, level);
    ICLRMemoryNotificationCallback_Release(cb); /* `self` may be gone by now: not touched */
}

static HRESULT STDMETHODCALLTYPE mm_register_callback(IHostMemoryManager *This,
                                                      ICLRMemoryNotificationCallback *cb) {
    hm_com_manager_t *self = self_of(This);
    if (cb != NULL) ICLRMemoryNotificationCallback_AddRef(cb);
    pthread_mutex_lock(&self->cb_lock);
    bool start = cb != NULL && !self->notify_set;
    pthread_mutex_unlock(&self->cb_lock);
    if (start && !hm_manager_set_notify(self->mgr, notify_trampoline, self)) {
        ICLRMemoryNotificationCallback_Release(cb);
        return E_OUTOFMEMORY;
    }
    pthread_mutex_lock(&self->cb_lock);
    if (start) self->notify_set = true;
    ICLRMemoryNotificationCallback *old = self->cb;
    self->cb = cb;
    pthread_mutex_unlock(&self->cb_lock);
    if (old != NULL) ICLRMemoryNotificationCallback_Release(old);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE mm_needs_vas(IHostMemoryManager *This, LPVOID start, SIZE_T size) {
    (void)start;
    (void)size;
    /* give back cached address space; the runtime retries its mapping on success */
    return hm_manager_trim(self_of(This)->mgr) > 0 ? S_OK : E_OUTOFMEMORY;
}

static HRESULT STDMETHODCALLTYPE mm_acquired_vas(IHostMemoryManager *This, LPVOID start,
                                                 SIZE_T size) {
    hm_manager_note_acquired(self_of(This)->mgr, start, size);
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE mm_released_vas(IHostMemoryManager *This, LPVOID start) {
    hm_manager_note_released(self_of(This)->mgr, start);
    return S_OK;
}

static const IHostMemoryManagerVtbl manager_vtbl = {
    mm_query_interface, mm_add_ref,           mm_release,       mm_create_malloc,
    mm_virtual_alloc,   mm_virtual_free,      mm_virtual_query, mm_virtual_protect,
    mm_get_memory_load, mm_register_callback, mm_needs_vas,     mm_acquired_vas,
    mm_released_vas,
};

HRESULT hm_create_host_memory_manager(const hm_config *config, IHostMemoryManager **out) {
    if (out == NULL) return E_POINTER;
    *out = NULL;
    hm_com_manager_t *self = hm_alloc(hm_heap_default(), sizeof *self);
    if (self == NULL) return E_OUTOFMEMORY;
    self->mgr = hm_manager_new(config);
    if (self->mgr == NULL) {
        hm_free(self);
        return E_OUTOFMEMORY;
    }
    self->iface.lpVtbl = &manager_vtbl;
    atomic_init(&self->refs, 1);
    pthread_mutex_init(&self->cb_lock, NULL);
    self->cb = NULL;
    self->notify_set = false;
    *out = &self->iface;
    return S_OK;
}

/* ---- one manager for the runtimes of a process (docs/RUNTIMES.md) ------------------------
 * The process holds one reference for good, so the pointer below never dangles and a
 * runtime torn down never takes the budget of the others with it. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static IHostMemoryManager *shared_mgr;

HRESULT hm_shared_host_memory_manager(const hm_config *config, IHostMemoryManager **out) {
    if (out == NULL) return E_POINTER;
    *out = NULL;
    HRESULT hr = S_FALSE;
    pthread_mutex_lock(&shared_lock);
    if (shared_mgr == NULL) hr = hm_create_host_memory_manager(config, &shared_mgr);
    if (SUCCEEDED(hr)) {
        IHostMemoryManager_AddRef(shared_mgr);
        *out = shared_mgr;
    }
    pthread_mutex_unlock(&shared_lock);
    return hr;
}
