/* manager.c: the IHostMemoryManager object over an hm_manager.
 *
 * CreateMalloc hands out IHostMalloc instances, each over a heap of its own; each instance
 * holds a reference on this object, so the manager lives while any instance does. The
 * budget, pressure and virtual-memory methods belong to the memory-manager work (issue 3)
 * and answer E_NOTIMPL until it lands. */
#include "com.h"

typedef struct hm_com_manager_s {
    IHostMemoryManager iface; /* first */
    _Atomic(uint32_t) refs;
    hm_manager *mgr;
} hm_com_manager_t;

static hm_com_manager_t *self_of(IHostMemoryManager *This) {
    return (hm_com_manager_t *)This;
}

static HRESULT STDMETHODCALLTYPE mm_query_interface(IHostMemoryManager *This, REFIID riid,
                                                    void **ppv) {
    if (ppv == NULL) return E_POINTER;
    *ppv = NULL;
    if (riid == NULL) return E_POINTER;
    if (!hm_iid_equal(riid, &IID_IUnknown) && !hm_iid_equal(riid, &IID_IHostMemoryManager))
        return E_NOINTERFACE;
    atomic_fetch_add_explicit(&self_of(This)->refs, 1, memory_order_relaxed);
    *ppv = This;
    return S_OK;
}

static ULONG STDMETHODCALLTYPE mm_add_ref(IHostMemoryManager *This) {
    return atomic_fetch_add_explicit(&self_of(This)->refs, 1, memory_order_relaxed) + 1;
}

static ULONG STDMETHODCALLTYPE mm_release(IHostMemoryManager *This) {
    hm_com_manager_t *self = self_of(This);
    ULONG n = atomic_fetch_sub_explicit(&self->refs, 1, memory_order_acq_rel) - 1;
    if (n == 0) {
        hm_manager_release(self->mgr);
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

static HRESULT STDMETHODCALLTYPE mm_virtual_alloc(IHostMemoryManager *This, void *pAddress,
                                                  SIZE_T dwSize, DWORD flAllocationType,
                                                  DWORD flProtect,
                                                  EMemoryCriticalLevel eCriticalLevel,
                                                  void **ppMem) {
    (void)This, (void)pAddress, (void)dwSize, (void)flAllocationType, (void)flProtect;
    (void)eCriticalLevel;
    if (ppMem != NULL) *ppMem = NULL;
    return E_NOTIMPL;
}

static HRESULT STDMETHODCALLTYPE mm_virtual_free(IHostMemoryManager *This, LPVOID lpAddress,
                                                 SIZE_T dwSize, DWORD dwFreeType) {
    (void)This, (void)lpAddress, (void)dwSize, (void)dwFreeType;
    return E_NOTIMPL;
}

static HRESULT STDMETHODCALLTYPE mm_virtual_query(IHostMemoryManager *This, void *lpAddress,
                                                  void *lpBuffer, SIZE_T dwLength,
                                                  SIZE_T *pResult) {
    (void)This, (void)lpAddress, (void)lpBuffer, (void)dwLength;
    if (pResult != NULL) *pResult = 0;
    return E_NOTIMPL;
}

static HRESULT STDMETHODCALLTYPE mm_virtual_protect(IHostMemoryManager *This, void *lpAddress,
                                                    SIZE_T dwSize, DWORD flNewProtect,
                                                    DWORD *pflOldProtect) {
    (void)This, (void)lpAddress, (void)dwSize, (void)flNewProtect, (void)pflOldProtect;
    return E_NOTIMPL;
}

static HRESULT STDMETHODCALLTYPE mm_get_memory_load(IHostMemoryManager *This, DWORD *pMemoryLoad,
                                                    SIZE_T *pAvailableBytes) {
    (void)This, (void)pMemoryLoad, (void)pAvailableBytes;
    return E_NOTIMPL;
}

static HRESULT STDMETHODCALLTYPE mm_register_callback(IHostMemoryManager *This,
                                                      ICLRMemoryNotificationCallback *cb) {
    (void)This, (void)cb;
    return E_NOTIMPL;
}

static HRESULT STDMETHODCALLTYPE mm_needs_vas(IHostMemoryManager *This, LPVOID start, SIZE_T size) {
    (void)This, (void)start, (void)size;
    return E_NOTIMPL;
}

static HRESULT STDMETHODCALLTYPE mm_acquired_vas(IHostMemoryManager *This, LPVOID start,
                                                 SIZE_T size) {
    (void)This, (void)start, (void)size;
    return E_NOTIMPL;
}

static HRESULT STDMETHODCALLTYPE mm_released_vas(IHostMemoryManager *This, LPVOID start) {
    (void)This, (void)start;
    return E_NOTIMPL;
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
    *out = &self->iface;
    return S_OK;
}
