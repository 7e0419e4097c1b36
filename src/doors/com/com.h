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

/* malloc.c: a new IHostMalloc over a new heap of `mgr`, holding a reference on `owner`. */
HRESULT _hm_com_malloc_new(IHostMemoryManager *owner, hm_manager *mgr, DWORD type,
                           IHostMalloc **out);

#endif
