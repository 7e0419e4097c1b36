/* SPDX-License-Identifier: MIT */
/* doors/com/com.h: what the two COM objects share. The COM door uses the public native API only. */
#ifndef HM_COM_H
#define HM_COM_H

#include <stdatomic.h>
#include <string.h>

#include "hostmalloc/hostmalloc.h"

static inline int hm_iid_equal(const IID *a, const IID *b) {
    return memcmp(a, b, sizeof(IID)) == 0;
}

/* QueryInterface of an object `self` that has one interface, `own`, besides IUnknown, and whose
 * references are counted in *refs. */
static inline HRESULT hm_com_query(void *self, _Atomic(uint32_t) *refs, const IID *own, REFIID riid,
                                   void **ppv) {
    if (ppv == NULL) return E_POINTER;
    *ppv = NULL;
    if (riid == NULL) return E_POINTER;
    if (!hm_iid_equal(riid, &IID_IUnknown) && !hm_iid_equal(riid, own)) return E_NOINTERFACE;
    atomic_fetch_add_explicit(refs, 1, memory_order_relaxed);
    *ppv = self;
    return S_OK;
}

static inline ULONG hm_com_add_ref(_Atomic(uint32_t) *refs) {
    return atomic_fetch_add_explicit(refs, 1, memory_order_relaxed) + 1;
}

/* Drop a reference: the count left (0: the caller destroys the object). */
static inline ULONG hm_com_drop(_Atomic(uint32_t) *refs) {
    return atomic_fetch_sub_explicit(refs, 1, memory_order_acq_rel) - 1;
}

/* com_malloc.c: a new IHostMalloc over a new heap of `mgr`, holding a reference on `owner`. */
HRESULT _hm_com_malloc_new(IHostMemoryManager *owner, hm_manager *mgr, DWORD type,
                           IHostMalloc **out);

#endif
