/* SPDX-License-Identifier: MIT */
/* doors/com/com_malloc.c: the IHostMalloc object. It only translates: argument checks, HRESULTs,
 * reference counting; the heap does the work. The object itself lives in the process default heap.
 *
 * Alloc and Free inline the engine's own fast paths (_hm_alloc_fast, _hm_heap_free_as, defined
 * once in mem/alloc.h and used by the native door too) instead of calling hm_alloc_level and
 * hm_heap_free, which saves a call per operation (docs/DESIGN-NOTES.md, "The COM door"). */
#include "com.h"
#include "manager/manager.h"

typedef struct hm_com_malloc_s {
    IHostMalloc iface; /* first: the interface pointer is the object pointer */
    _Atomic(uint32_t) refs;
    hm_heap *heap;
    /* the heap's id and TLS entry offset (mem/heap.h, _hm_tls_entry), copied: they do not
     * change while the instance owns the heap, and Alloc then finds its sub-heap without
     * reading the heap */
    uint64_t heap_id;
    uintptr_t tls_off;
    hm_manager *mgr;
    IHostMemoryManager *owner; /* holds one reference: the manager lives while we do */
} hm_com_malloc_t;

static hm_com_malloc_t *self_of(IHostMalloc *This) {
    return (hm_com_malloc_t *)This;
}

static HRESULT STDMETHODCALLTYPE m_query_interface(IHostMalloc *This, REFIID riid, void **ppv) {
    return hm_com_query(This, &self_of(This)->refs, &IID_IHostMalloc, riid, ppv);
}

static ULONG STDMETHODCALLTYPE m_add_ref(IHostMalloc *This) {
    return hm_com_add_ref(&self_of(This)->refs);
}

static ULONG STDMETHODCALLTYPE m_release(IHostMalloc *This) {
    hm_com_malloc_t *self = self_of(This);
    ULONG n = hm_com_drop(&self->refs);
    if (n == 0) {
        IHostMemoryManager *owner = self->owner;
        hm_heap_report_leaks(self->heap, NULL); /* live DebugAlloc blocks, to the error sink */
        hm_heap_release(self->heap);            /* every block still in it goes too */
        hm_free(self);
        IHostMemoryManager_Release(owner);
    }
    return n;
}

/* The argument checks of Alloc and DebugAlloc: E_POINTER without `ppMem`, E_INVALIDARG (and
 * *ppMem NULL) for a level that is no EMemoryCriticalLevel; else S_OK. */
hm_inline HRESULT alloc_args_bad(EMemoryCriticalLevel level, void **ppMem) {
    if (ppMem == NULL) return E_POINTER;
    if ((unsigned)level > (unsigned)eProcessCritical) {
        *ppMem = NULL;
        return E_INVALIDARG;
    }
    return S_OK;
}

/* What Alloc's fast path leaves, with its arguments checked: out of line and called last, so
 * that the fast path keeps nothing across a call and needs no stack frame. The COM door reports
 * misuse found on the way and goes on (HM_LEVEL_NO_ABORT); the heap may be checked (an
 * instance with fault injection has Alloc under its own). */
static hm_noinline HRESULT m_alloc_slow(IHostMalloc *This, SIZE_T cbSize, unsigned level,
                                        void **ppMem) {
    void *p = _hm_alloc_slow_any(self_of(This)->heap, cbSize, (int)level | HM_LEVEL_NO_ABORT);
    *ppMem = p;
    return p != NULL ? S_OK : E_OUTOFMEMORY;
}

static HRESULT STDMETHODCALLTYPE m_alloc(IHostMalloc *This, SIZE_T cbSize,
                                         EMemoryCriticalLevel level, void **ppMem) {
    HRESULT bad = alloc_args_bad(level, ppMem);
    if (hm_unlikely(bad != S_OK)) return bad;
    hm_com_malloc_t *self = self_of(This);
    hm_tls_fs_entry_t *e = HM_TLS_AT(self->tls_off);
    if (hm_likely(e->id == self->heap_id && cbSize <= HM_DIRECT_MAX)) {
        void *p = _hm_theap_pop(e->th, cbSize, (int)level);
        if (hm_likely(p != NULL)) {
            *ppMem = p;
            return S_OK;
        }
    }
    return m_alloc_slow(This, cbSize, (unsigned)level, ppMem);
}

static HRESULT STDMETHODCALLTYPE m_debug_alloc(IHostMalloc *This, SIZE_T cbSize,
                                               EMemoryCriticalLevel level, char *pszFileName,
                                               int iLineNo, void **ppMem) {
    HRESULT bad = alloc_args_bad(level, ppMem);
    if (hm_unlikely(bad != S_OK)) return bad;
    /* file and line are remembered with the block (an interned copy of the name) */
    void *p = _hm_debug_alloc(self_of(This)->heap, cbSize, (int)level | HM_LEVEL_NO_ABORT,
                              pszFileName != NULL ? pszFileName : "(no file)", iLineNo);
    *ppMem = p;
    return p != NULL ? S_OK : E_OUTOFMEMORY;
}

/* The slow halves of Free, with the COM door's answers. */
static hm_noinline HRESULT free_slow(hm_heap *heap, void *p) {
    return _hm_heap_free_slow(heap, p) == HM_OK ? S_OK : HOST_E_INVALIDOPERATION;
}

static hm_noinline HRESULT free_rest(hm_segment_t *seg, hm_page_t *pg, void *p, int what) {
    return _hm_page_free_rest(seg, pg, p, what) == HM_OK ? S_OK : HOST_E_INVALIDOPERATION;
}

static HRESULT STDMETHODCALLTYPE m_free(IHostMalloc *This, void *pMem) {
    return _hm_heap_free_as(self_of(This)->heap, pMem, _hm_page_free_try, S_OK,
                            HOST_E_INVALIDOPERATION, free_slow, free_rest);
}

static const IHostMallocVtbl malloc_vtbl = {
    m_query_interface, m_add_ref, m_release, m_alloc, m_debug_alloc, m_free,
};

/* Instances of a checked heap (hm_config.checked, HM_CHECKED=1) get these entry points: the
 * checked fast paths, so that checked mode costs its checks and no detour. */
/* (out of line, so that the fast path keeps no registers across a call) */
static hm_noinline HRESULT m_alloc_checked_slow(IHostMalloc *This, SIZE_T cbSize,
                                                EMemoryCriticalLevel level, void **ppMem) {
    void *p = _hm_checked_alloc_slow(self_of(This)->heap, cbSize, (int)level | HM_LEVEL_NO_ABORT);
    *ppMem = p;
    return p != NULL ? S_OK : E_OUTOFMEMORY;
}

static HRESULT STDMETHODCALLTYPE m_alloc_checked(IHostMalloc *This, SIZE_T cbSize,
                                                 EMemoryCriticalLevel level, void **ppMem) {
    HRESULT bad = alloc_args_bad(level, ppMem);
    if (hm_unlikely(bad != S_OK)) return bad;
    void *p = _hm_checked_alloc_try(self_of(This)->heap, cbSize, (int)level);
    if (hm_unlikely(p == NULL)) return m_alloc_checked_slow(This, cbSize, level, ppMem);
    *ppMem = p;
    return S_OK;
}

static HRESULT STDMETHODCALLTYPE m_free_checked(IHostMalloc *This, void *pMem) {
    return _hm_heap_free_as(self_of(This)->heap, pMem, _hm_checked_page_free_try, S_OK,
                            HOST_E_INVALIDOPERATION, free_slow, free_rest);
}

static const IHostMallocVtbl malloc_vtbl_checked = {
    m_query_interface, m_add_ref, m_release, m_alloc_checked, m_debug_alloc, m_free_checked,
};

/* With fault injection configured, instances get these entry points: the check costs nothing
 * when it is off (another vtable, not a test on the fast path). */
static HRESULT STDMETHODCALLTYPE m_alloc_faulty(IHostMalloc *This, SIZE_T cbSize,
                                                EMemoryCriticalLevel level, void **ppMem) {
    if (ppMem != NULL && (unsigned)level <= (unsigned)eProcessCritical &&
        hm_manager_fault(self_of(This)->mgr, level)) {
        *ppMem = NULL;
        return E_OUTOFMEMORY;
    }
    return m_alloc(This, cbSize, level, ppMem);
}

static HRESULT STDMETHODCALLTYPE m_debug_alloc_faulty(IHostMalloc *This, SIZE_T cbSize,
                                                      EMemoryCriticalLevel level, char *pszFileName,
                                                      int iLineNo, void **ppMem) {
    if (ppMem != NULL && (unsigned)level <= (unsigned)eProcessCritical &&
        hm_manager_fault(self_of(This)->mgr, level)) {
        *ppMem = NULL;
        return E_OUTOFMEMORY;
    }
    return m_debug_alloc(This, cbSize, level, pszFileName, iLineNo, ppMem);
}

static const IHostMallocVtbl malloc_vtbl_faulty = {
    m_query_interface, m_add_ref, m_release, m_alloc_faulty, m_debug_alloc_faulty, m_free,
};

HRESULT _hm_com_malloc_new(IHostMemoryManager *owner, hm_manager *mgr, DWORD type,
                           IHostMalloc **out) {
    unsigned flags = 0;
    if (type & MALLOC_THREADSAFE) flags |= HM_HEAP_THREADSAFE;
    if (type & MALLOC_EXECUTABLE) flags |= HM_HEAP_EXECUTABLE;
    hm_com_malloc_t *self = hm_alloc(hm_heap_default(), sizeof *self);
    if (self == NULL) return E_OUTOFMEMORY;
    self->heap = hm_heap_new(mgr, flags);
    if (self->heap == NULL) {
        hm_free(self);
        return E_OUTOFMEMORY;
    }
    self->heap_id = atomic_load_explicit(&self->heap->id, memory_order_relaxed);
    self->tls_off = self->heap->tls_off;
    /* fault injection wraps the generic entry points, which serve checked heaps too */
    self->iface.lpVtbl = hm_manager_faults_enabled(mgr) ? &malloc_vtbl_faulty
                         : self->heap->checked          ? &malloc_vtbl_checked
                                                        : &malloc_vtbl;
    self->mgr = mgr;
    atomic_init(&self->refs, 1);
    self->owner = owner;
    IHostMemoryManager_AddRef(owner);
    *out = &self->iface;
    return S_OK;
}

/* ---- the heap of an instance (docs/RUNTIMES.md) ------------------------------------------
 * An instance is ours when its vtable is one of ours: nothing else is read from a foreign
 * object. */
hm_heap *hm_malloc_heap(IHostMalloc *m) {
    if (m == NULL) return NULL;
    const IHostMallocVtbl *v = m->lpVtbl;
    if (v != &malloc_vtbl && v != &malloc_vtbl_checked && v != &malloc_vtbl_faulty) return NULL;
    return self_of(m)->heap;
}
