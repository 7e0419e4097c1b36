/* SPDX-License-Identifier: MIT */
/* manager/vmem.c: VirtualAlloc, VirtualFree, VirtualQuery and VirtualProtect with Win32 semantics
 * over mmap, mprotect and madvise.
 *
 * A reservation is a PROT_NONE mapping of whole 64 KiB granules; committing pages is an
 * mprotect to the requested protection (the kernel supplies zeroed pages on first touch),
 * decommitting is madvise(MADV_DONTNEED) plus PROT_NONE, releasing is munmap. Commits are
 * counted against the manager's budget at the request's level and fail like Alloc.
 *
 * The region table must be readable by VirtualQuery with any other thread suspended anywhere,
 * a writer included, so readers take no lock. Each region keeps two copies of its page-state
 * array (one byte a page: bit 7 committed, low bits the PAGE_* protection) and an `active`
 * index. A writer (serialized by a mutex) changes the inactive copy, makes it active, then
 * brings the other copy up to date; each copy has a generation counter that is odd while it
 * is written. A reader reads the active copy and retries if its generation moved, which only
 * happens when a writer made progress: a suspended writer never stops a reader. Arrays and
 * slots are never unmapped while the manager lives, so a reader racing with a release reads
 * valid (if stale) memory. */
#define _GNU_SOURCE
#include <string.h>
#include <sys/mman.h>

#include "manager/manager.h"

#define VM_GRANULE   ((size_t)64 * 1024)
#define VM_PAGE      ((size_t)HM_OS_PAGE)
#define VM_SLOTS     4096
#define VM_COMMITTED 0x80u
/* the end of the user address space (x86-64, 4-level page tables): nothing is mapped above */
#define VM_ADDR_END ((uintptr_t)1 << 47)

typedef struct vm_region_s {
    _Atomic(uintptr_t) base; /* 0: free slot; written last on create, first on release */
    _Atomic(size_t) size;    /* bytes reserved */
    _Atomic(uint32_t) alloc_protect;
    _Atomic(uint32_t) active;  /* which copy of `pages` readers use */
    _Atomic(uint64_t) gen[2];  /* odd while that copy is being written */
    uint8_t *_Atomic pages[2]; /* one byte a page */
    size_t cap;                /* entries the arrays hold */
} vm_region_t;

struct hm_vmem_s {
    pthread_mutex_t lock;     /* writers */
    _Atomic(size_t) used;     /* slots ever used (readers scan up to this) */
    _Atomic(size_t) reserved; /* bytes */
    _Atomic(size_t) committed;
    void *graveyard[VM_SLOTS]; /* outgrown page arrays (unmapped with the manager) */
    size_t graveyard_sizes[VM_SLOTS];
    size_t graves;
    vm_region_t slots[VM_SLOTS];
};

static pthread_mutex_t vmem_create_lock = PTHREAD_MUTEX_INITIALIZER;

static hm_vmem_t *vmem_get(hm_manager *mgr, bool create) {
    hm_vmem_t *vm = __atomic_load_n(&mgr->vmem, __ATOMIC_ACQUIRE);
    if (vm != NULL || !create) return vm;
    pthread_mutex_lock(&vmem_create_lock);
    vm = mgr->vmem;
    if (vm == NULL) {
        size_t sz = (sizeof(hm_vmem_t) + VM_PAGE - 1) & ~(VM_PAGE - 1);
        vm = _hm_os_map_aligned(sz, VM_PAGE, false);
        if (vm != NULL) {
            pthread_mutex_init(&vm->lock, NULL);
            __atomic_store_n(&mgr->vmem, vm, __ATOMIC_RELEASE);
        }
    }
    pthread_mutex_unlock(&vmem_create_lock);
    return vm;
}

/* ---- protections --------------------------------------------------------------------------- */
static int prot_of(uint32_t protect) {
    switch (protect) {
    case PAGE_NOACCESS:
        return PROT_NONE;
    case PAGE_READONLY:
        return PROT_READ;
    case PAGE_READWRITE:
        return PROT_READ | PROT_WRITE;
    case PAGE_EXECUTE:
        return PROT_EXEC;
    case PAGE_EXECUTE_READ:
        return PROT_READ | PROT_EXEC;
    case PAGE_EXECUTE_READWRITE:
        return PROT_READ | PROT_WRITE | PROT_EXEC;
    default:
        return -1;
    }
}

/* ---- the page-state arrays ---------------------------------------------------------------- */
typedef enum { VM_SET, VM_PROTECT } vm_op_t;

static void copy_apply(uint8_t *pages, size_t first, size_t n, vm_op_t op, uint8_t val) {
    /* relaxed atomic stores: readers may look at this copy while it changes (they detect
     * that with the generation counter and read again) */
    for (size_t i = first; i < first + n; i++) {
        uint8_t v = val;
        if (op == VM_PROTECT)
            v = (uint8_t)((__atomic_load_n(&pages[i], __ATOMIC_RELAXED) & VM_COMMITTED) | val);
        __atomic_store_n(&pages[i], v, __ATOMIC_RELAXED);
    }
}

/* Writer (vm->lock held): apply to the inactive copy, flip, apply to the other. */
static void pages_apply(vm_region_t *r, size_t first, size_t n, vm_op_t op, uint8_t val) {
    uint32_t a = atomic_load_explicit(&r->active, memory_order_relaxed), b = 1 - a;
    atomic_fetch_add_explicit(&r->gen[b], 1, memory_order_acq_rel);
    copy_apply(r->pages[b], first, n, op, val);
    atomic_fetch_add_explicit(&r->gen[b], 1, memory_order_release);
    atomic_store_explicit(&r->active, b, memory_order_release);
    atomic_fetch_add_explicit(&r->gen[a], 1, memory_order_acq_rel);
    copy_apply(r->pages[a], first, n, op, val);
    atomic_fetch_add_explicit(&r->gen[a], 1, memory_order_release);
}

/* Count the committed pages in [first, first + n) (writer). */
static size_t pages_committed(const vm_region_t *r, size_t first, size_t n) {
    const uint8_t *p = r->pages[atomic_load_explicit(&r->active, memory_order_relaxed)];
    size_t c = 0;
    for (size_t i = first; i < first + n; i++)
        c += (p[i] & VM_COMMITTED) != 0;
    return c;
}

/* The region of this manager containing [addr, addr + len) (writer), or NULL. */
static vm_region_t *region_find(hm_vmem_t *vm, uintptr_t addr, size_t len) {
    size_t used = atomic_load_explicit(&vm->used, memory_order_acquire);
    for (size_t i = 0; i < used; i++) {
        vm_region_t *r = &vm->slots[i];
        uintptr_t base = atomic_load_explicit(&r->base, memory_order_acquire);
        size_t size = atomic_load_explicit(&r->size, memory_order_relaxed);
        if (base != 0 && addr >= base && addr - base < size && len <= size - (addr - base))
            return r;
    }
    return NULL;
}

static vm_region_t *region_new(hm_vmem_t *vm, uintptr_t base, size_t size, uint32_t protect) {
    vm_region_t *r = NULL;
    size_t i;
    for (i = 0; i < VM_SLOTS; i++) {
        if (atomic_load_explicit(&vm->slots[i].base, memory_order_relaxed) == 0) {
            r = &vm->slots[i];
            break;
        }
    }
    if (r == NULL) return NULL;
    size_t npages = size / VM_PAGE;
    if (r->cap < npages) {
        size_t bytes = (npages + VM_PAGE - 1) & ~(VM_PAGE - 1);
        uint8_t *p0 = _hm_os_map_aligned(bytes, VM_PAGE, false);
        uint8_t *p1 = p0 != NULL ? _hm_os_map_aligned(bytes, VM_PAGE, false) : NULL;
        if (p1 == NULL || vm->graves + 2 > VM_SLOTS) {
            _hm_os_unmap(p0, bytes);
            _hm_os_unmap(p1, bytes);
            return NULL;
        }
        for (int k = 0; k < 2; k++) {
            if (r->pages[k] != NULL) {
                vm->graveyard[vm->graves] = r->pages[k];
                vm->graveyard_sizes[vm->graves++] = (r->cap + VM_PAGE - 1) & ~(VM_PAGE - 1);
            }
        }
        atomic_store_explicit(&r->pages[0], p0, memory_order_release);
        atomic_store_explicit(&r->pages[1], p1, memory_order_release);
        r->cap = bytes;
    }
    pages_apply(r, 0, npages, VM_SET, 0);
    atomic_store_explicit(&r->size, size, memory_order_relaxed);
    atomic_store_explicit(&r->alloc_protect, protect, memory_order_relaxed);
    atomic_store_explicit(&r->base, base, memory_order_release);
    if (i + 1 > atomic_load_explicit(&vm->used, memory_order_relaxed))
        atomic_store_explicit(&vm->used, i + 1, memory_order_release);
    atomic_fetch_add_explicit(&vm->reserved, size, memory_order_relaxed);
    return r;
}

static void region_drop(hm_vmem_t *vm, vm_region_t *r) {
    size_t size = atomic_load_explicit(&r->size, memory_order_relaxed);
    atomic_store_explicit(&r->base, 0, memory_order_release);
    atomic_fetch_sub_explicit(&vm->reserved, size, memory_order_relaxed);
}

/* ---- commit and decommit (writer) ------------------------------------------------------------ */
static hm_result commit_range(hm_manager *mgr, hm_vmem_t *vm, vm_region_t *r, uintptr_t from,
                              size_t len, uint32_t protect, int level) {
    uintptr_t base = atomic_load_explicit(&r->base, memory_order_relaxed);
    size_t first = (from - base) / VM_PAGE, n = len / VM_PAGE;
    size_t fresh = (n - pages_committed(r, first, n)) * VM_PAGE;
    if (fresh > 0 && !_hm_arena_commit(&mgr->arena, fresh, level)) return HM_ERR_NOMEM;
    if (_hm_os_protect((void *)from, len, prot_of(protect)) != 0) {
        if (fresh > 0) _hm_budget_give(&mgr->arena.budget, fresh);
        return HM_ERR_NOMEM;
    }
    pages_apply(r, first, n, VM_SET, (uint8_t)(VM_COMMITTED | protect));
    atomic_fetch_add_explicit(&vm->committed, fresh, memory_order_relaxed);
    return HM_OK;
}

static void decommit_range(hm_manager *mgr, hm_vmem_t *vm, vm_region_t *r, uintptr_t from,
                           size_t len) {
    uintptr_t base = atomic_load_explicit(&r->base, memory_order_relaxed);
    size_t first = (from - base) / VM_PAGE, n = len / VM_PAGE;
    size_t bytes = pages_committed(r, first, n) * VM_PAGE;
    _hm_os_decommit((void *)from, len);
    _hm_os_protect((void *)from, len, PROT_NONE);
    pages_apply(r, first, n, VM_SET, 0);
    if (bytes > 0) {
        atomic_fetch_sub_explicit(&vm->committed, bytes, memory_order_relaxed);
        _hm_budget_give(&mgr->arena.budget, bytes);
    }
}

/* ---- the API ------------------------------------------------------------------------------ */
hm_result hm_virtual_alloc(hm_manager *mgr, void *addr, size_t size, uint32_t type,
                           uint32_t protect, EMemoryCriticalLevel level, void **out) {
    if (out == NULL || mgr == NULL) return HM_ERR_INVALID_ARG;
    *out = NULL;
    if ((unsigned)level > eProcessCritical) return HM_ERR_INVALID_ARG;
    uint32_t known = MEM_COMMIT | MEM_RESERVE | MEM_RESET | MEM_TOP_DOWN;
    if (size == 0 || (type & ~known) != 0 || size > ((size_t)1 << 46)) return HM_ERR_INVALID_ARG;
    /* an address must lie in the user address space with the whole range after it, and (as on
     * Windows) not in the first granule: [1, 64 KiB) would round down to "anywhere" */
    if (addr != NULL && ((uintptr_t)addr < VM_GRANULE || (uintptr_t)addr >= VM_ADDR_END ||
                         size > VM_ADDR_END - (uintptr_t)addr))
        return HM_ERR_INVALID_ARG;
    bool reset = (type & MEM_RESET) != 0;
    if (reset && (type & (MEM_COMMIT | MEM_RESERVE)) != 0) return HM_ERR_INVALID_ARG;
    if (!reset && (type & (MEM_COMMIT | MEM_RESERVE)) == 0) return HM_ERR_INVALID_ARG;
    if (!reset && prot_of(protect) < 0) return HM_ERR_INVALID_ARG;
    hm_vmem_t *vm = vmem_get(mgr, true);
    if (vm == NULL) return HM_ERR_NOMEM;
    bool commit = (type & MEM_COMMIT) != 0;
    bool reserve = (type & MEM_RESERVE) != 0 || (commit && addr == NULL);
    hm_result res = HM_OK;
    bool os_refused = false; /* budget refusals are counted by the budget itself */
    pthread_mutex_lock(&vm->lock);
    if (reset) {
        /* the data is no longer of interest; the pages stay committed */
        if (addr == NULL) {
            res = HM_ERR_INVALID_ARG;
        } else {
            uintptr_t from = (uintptr_t)addr & ~(VM_PAGE - 1);
            uintptr_t to = ((uintptr_t)addr + size + VM_PAGE - 1) & ~(VM_PAGE - 1);
            vm_region_t *r = region_find(vm, from, to - from);
            uintptr_t base = r != NULL ? atomic_load_explicit(&r->base, memory_order_relaxed) : 0;
            if (r == NULL)
                res = HM_ERR_NOT_OWNED;
            else if (pages_committed(r, (from - base) / VM_PAGE, (to - from) / VM_PAGE) !=
                     (to - from) / VM_PAGE)
                res = HM_ERR_INVALID_ARG;
            else {
                madvise((void *)from, to - from, MADV_FREE);
                *out = addr;
            }
        }
    } else if (reserve) {
        uintptr_t from, to;
        void *p;
        if (addr == NULL) {
            from = 0;
            to = (size + VM_GRANULE - 1) & ~(VM_GRANULE - 1);
            p = _hm_os_map_at(NULL, to, PROT_NONE);
            if (p != NULL && ((uintptr_t)p & (VM_GRANULE - 1)) != 0) {
                /* retry at a granule boundary: over-reserve and trim */
                _hm_os_unmap(p, to);
                size_t over = to + VM_GRANULE;
                uint8_t *q = _hm_os_map_at(NULL, over, PROT_NONE);
                p = NULL;
                if (q != NULL) {
                    uint8_t *a = (uint8_t *)(((uintptr_t)q + VM_GRANULE - 1) & ~(VM_GRANULE - 1));
                    if (a > q) _hm_os_unmap(q, (size_t)(a - q));
                    if (q + over > a + to) _hm_os_unmap(a + to, (size_t)(q + over - (a + to)));
                    p = a;
                }
            }
        } else {
            from = (uintptr_t)addr & ~(VM_GRANULE - 1);
            to = ((uintptr_t)addr + size + VM_PAGE - 1) & ~(VM_PAGE - 1);
            to = from + ((to - from + VM_GRANULE - 1) & ~(VM_GRANULE - 1));
            to -= from;
            p = _hm_os_map_at((void *)from, to, PROT_NONE);
        }
        size_t rsize = to;
        if (p == NULL) {
            res = HM_ERR_NOMEM;
            os_refused = true;
        } else {
            vm_region_t *r = region_new(vm, (uintptr_t)p, rsize, protect);
            if (r == NULL) {
                _hm_os_unmap(p, rsize);
                res = HM_ERR_NOMEM;
                os_refused = true;
            } else if (commit) {
                uintptr_t cfrom = addr == NULL ? (uintptr_t)p : ((uintptr_t)addr & ~(VM_PAGE - 1));
                uintptr_t cto = addr == NULL
                                    ? (uintptr_t)p + ((size + VM_PAGE - 1) & ~(VM_PAGE - 1))
                                    : (((uintptr_t)addr + size + VM_PAGE - 1) & ~(VM_PAGE - 1));
                res = commit_range(mgr, vm, r, cfrom, cto - cfrom, protect, level);
                if (res != HM_OK) {
                    region_drop(vm, r);
                    _hm_os_unmap(p, rsize);
                } else {
                    *out = (void *)cfrom;
                }
            } else {
                *out = addr == NULL ? p : (void *)from;
            }
        }
    } else {
        /* commit inside an existing reservation */
        uintptr_t from = (uintptr_t)addr & ~(VM_PAGE - 1);
        uintptr_t to = ((uintptr_t)addr + size + VM_PAGE - 1) & ~(VM_PAGE - 1);
        vm_region_t *r = region_find(vm, from, to - from);
        if (r == NULL)
            res = HM_ERR_NOT_OWNED;
        else
            res = commit_range(mgr, vm, r, from, to - from, protect, level);
        if (res == HM_OK) *out = (void *)from;
    }
    pthread_mutex_unlock(&vm->lock);
    atomic_fetch_add_explicit(&mgr->vm_requests[level], 1, memory_order_relaxed);
    if (os_refused) _hm_budget_refused(&mgr->arena.budget, level);
    return res;
}

hm_result hm_virtual_free(hm_manager *mgr, void *addr, size_t size, uint32_t free_type) {
    if (mgr == NULL) return HM_ERR_INVALID_ARG;
    if (free_type != MEM_RELEASE && free_type != MEM_DECOMMIT) return HM_ERR_INVALID_ARG;
    hm_vmem_t *vm = vmem_get(mgr, false);
    if (vm == NULL || addr == NULL) return addr == NULL ? HM_ERR_INVALID_ARG : HM_ERR_NOT_OWNED;
    hm_result res = HM_OK;
    pthread_mutex_lock(&vm->lock);
    vm_region_t *r = region_find(vm, (uintptr_t)addr, 1);
    if (r == NULL) {
        res = HM_ERR_NOT_OWNED;
    } else if (free_type == MEM_RELEASE) {
        uintptr_t base = atomic_load_explicit(&r->base, memory_order_relaxed);
        size_t rsize = atomic_load_explicit(&r->size, memory_order_relaxed);
        if ((uintptr_t)addr != base || size != 0) {
            res = HM_ERR_INVALID_ARG; /* only a whole reservation, with size 0 */
        } else {
            size_t bytes = pages_committed(r, 0, rsize / VM_PAGE) * VM_PAGE;
            region_drop(vm, r);
            _hm_os_unmap((void *)base, rsize);
            if (bytes > 0) {
                atomic_fetch_sub_explicit(&vm->committed, bytes, memory_order_relaxed);
                _hm_budget_give(&mgr->arena.budget, bytes);
            }
        }
    } else {
        uintptr_t base = atomic_load_explicit(&r->base, memory_order_relaxed);
        size_t rsize = atomic_load_explicit(&r->size, memory_order_relaxed);
        uintptr_t from = (uintptr_t)addr & ~(VM_PAGE - 1);
        uintptr_t to;
        if (size == 0) {
            /* size 0 decommits the whole region, and only from its base */
            if ((uintptr_t)addr != base) res = HM_ERR_INVALID_ARG;
            to = base + rsize;
        } else if (size > base + rsize - (uintptr_t)addr) {
            res = HM_ERR_INVALID_ARG; /* past the region's end (or wrapping past 2^64) */
            to = from;
        } else {
            to = ((uintptr_t)addr + size + VM_PAGE - 1) & ~(VM_PAGE - 1);
        }
        if (res == HM_OK) decommit_range(mgr, vm, r, from, to - from);
    }
    pthread_mutex_unlock(&vm->lock);
    return res;
}

hm_result hm_virtual_protect(hm_manager *mgr, void *addr, size_t size, uint32_t protect,
                             uint32_t *old_protect) {
    if (mgr == NULL || old_protect == NULL || size == 0 || prot_of(protect) < 0)
        return HM_ERR_INVALID_ARG;
    hm_vmem_t *vm = vmem_get(mgr, false);
    if (vm == NULL) return HM_ERR_NOT_OWNED;
    /* the whole range in the user address space: a size that wraps is refused, not cut */
    if ((uintptr_t)addr >= VM_ADDR_END || size > VM_ADDR_END - (uintptr_t)addr)
        return HM_ERR_INVALID_ARG;
    uintptr_t from = (uintptr_t)addr & ~(VM_PAGE - 1);
    uintptr_t to = ((uintptr_t)addr + size + VM_PAGE - 1) & ~(VM_PAGE - 1);
    hm_result res = HM_OK;
    pthread_mutex_lock(&vm->lock);
    vm_region_t *r = region_find(vm, from, to - from);
    if (r == NULL) {
        res = HM_ERR_NOT_OWNED;
    } else {
        uintptr_t base = atomic_load_explicit(&r->base, memory_order_relaxed);
        size_t first = (from - base) / VM_PAGE, n = (to - from) / VM_PAGE;
        if (pages_committed(r, first, n) != n) {
            res = HM_ERR_INVALID_ARG; /* every page must be committed */
        } else if (_hm_os_protect((void *)from, to - from, prot_of(protect)) != 0) {
            res = HM_ERR_NOMEM;
        } else {
            const uint8_t *p = r->pages[atomic_load_explicit(&r->active, memory_order_relaxed)];
            *old_protect = p[first] & (uint8_t)~VM_COMMITTED;
            pages_apply(r, first, n, VM_PROTECT, (uint8_t)protect);
        }
    }
    pthread_mutex_unlock(&vm->lock);
    return res;
}

/* A region's base (0: a free slot) and size, as a reader without the lock sees them. */
static uintptr_t region_bounds(vm_region_t *r, size_t *size) {
    uintptr_t base = atomic_load_explicit(&r->base, memory_order_acquire);
    *size = atomic_load_explicit(&r->size, memory_order_relaxed);
    return base;
}

/* Reader: no lock. */
static bool query_region(hm_vmem_t *vm, uintptr_t addr, MEMORY_BASIC_INFORMATION *info) {
    size_t used = atomic_load_explicit(&vm->used, memory_order_acquire);
    for (size_t i = 0; i < used; i++) {
        vm_region_t *r = &vm->slots[i];
        size_t size;
        uintptr_t base = region_bounds(r, &size);
        if (base == 0 || addr < base || addr - base >= size) continue;
        size_t idx = (addr - base) / VM_PAGE, npages = size / VM_PAGE;
        for (;;) {
            uint32_t a = atomic_load_explicit(&r->active, memory_order_acquire);
            uint64_t g = atomic_load_explicit(&r->gen[a], memory_order_acquire);
            if (g & 1) continue; /* the writer moved on to this copy: read the other */
            const uint8_t *p = atomic_load_explicit(&r->pages[a], memory_order_acquire);
            /* acquire loads: the generation check below cannot move above them */
            uint8_t v = __atomic_load_n(&p[idx], __ATOMIC_ACQUIRE);
            size_t run = 1;
            while (idx + run < npages && __atomic_load_n(&p[idx + run], __ATOMIC_ACQUIRE) == v)
                run++;
            if (atomic_load_explicit(&r->gen[a], memory_order_relaxed) != g) continue;
            if (atomic_load_explicit(&r->base, memory_order_relaxed) != base) return false;
            info->BaseAddress = (void *)(base + idx * VM_PAGE);
            info->AllocationBase = (void *)base;
            info->AllocationProtect = atomic_load_explicit(&r->alloc_protect, memory_order_relaxed);
            info->RegionSize = run * VM_PAGE;
            info->State = (v & VM_COMMITTED) ? MEM_COMMIT : MEM_RESERVE;
            info->Protect = (v & VM_COMMITTED) ? (DWORD)(v & (uint8_t)~VM_COMMITTED) : 0;
            info->Type = MEM_PRIVATE;
            return true;
        }
    }
    return false;
}

/* The kernel shows neighbouring mappings with the same protection as one (a reservation of
 * ours beside a thread's PROT_NONE guard page, say): what the OS says of an address outside our
 * regions ends where one of them begins. */
static void clip_to_foreign(hm_vmem_t *vm, uintptr_t a, hm_os_mapping_t *m) {
    size_t used = atomic_load_explicit(&vm->used, memory_order_acquire);
    for (size_t i = 0; i < used; i++) {
        size_t size;
        uintptr_t base = region_bounds(&vm->slots[i], &size), end = base + size;
        if (base == 0) continue;
        if (end <= a && end > m->start) m->start = end;
        if (base > a && base < m->end) m->end = base;
    }
}

size_t hm_virtual_query(hm_manager *mgr, const void *addr, MEMORY_BASIC_INFORMATION *info,
                        size_t len) {
    if (info == NULL || len < sizeof(MEMORY_BASIC_INFORMATION)) return 0;
    memset(info, 0, sizeof *info);
    uintptr_t a = (uintptr_t)addr;
    /* beyond the user address space (kernel or non-canonical addresses): no region at all, as
     * Windows answers for an address past the highest application address */
    if (a >= VM_ADDR_END) return 0;
    hm_vmem_t *vm = mgr != NULL ? vmem_get(mgr, false) : NULL;
    if (vm != NULL && query_region(vm, a, info)) return sizeof *info;
    /* not a region of ours: what the OS has there, in Win32 terms */
    hm_os_mapping_t m;
    uintptr_t page = a & ~(uintptr_t)(VM_PAGE - 1);
    bool mapped = _hm_os_query(a, &m);
    if (vm != NULL) clip_to_foreign(vm, a, &m);
    info->BaseAddress = (void *)page;
    info->RegionSize = m.end - page;
    if (mapped) {
        DWORD prot = m.exec ? (m.write  ? PAGE_EXECUTE_READWRITE
                               : m.read ? PAGE_EXECUTE_READ
                                        : PAGE_EXECUTE)
                            : (m.write  ? PAGE_READWRITE
                               : m.read ? PAGE_READONLY
                                        : PAGE_NOACCESS);
        info->AllocationBase = (void *)m.start;
        info->AllocationProtect = prot;
        info->State = MEM_COMMIT;
        info->Protect = prot;
        info->Type = m.file ? MEM_MAPPED : MEM_PRIVATE;
    } else {
        info->State = MEM_FREE;
        info->Protect = PAGE_NOACCESS;
    }
    return sizeof *info;
}

void _hm_vmem_stats(hm_manager *mgr, size_t *reserved, size_t *committed) {
    hm_vmem_t *vm = vmem_get(mgr, false);
    *reserved = vm != NULL ? atomic_load_explicit(&vm->reserved, memory_order_relaxed) : 0;
    *committed = vm != NULL ? atomic_load_explicit(&vm->committed, memory_order_relaxed) : 0;
}

/* The manager goes: every region it still holds is released (its commits given back). */
void _hm_vmem_destroy(hm_manager *mgr) {
    hm_vmem_t *vm = vmem_get(mgr, false);
    if (vm == NULL) return;
    size_t used = atomic_load_explicit(&vm->used, memory_order_relaxed);
    for (size_t i = 0; i < used; i++) {
        vm_region_t *r = &vm->slots[i];
        uintptr_t base = atomic_load_explicit(&r->base, memory_order_relaxed);
        size_t size = atomic_load_explicit(&r->size, memory_order_relaxed);
        if (base != 0) {
            size_t bytes = pages_committed(r, 0, size / VM_PAGE) * VM_PAGE;
            _hm_os_unmap((void *)base, size);
            if (bytes > 0) _hm_budget_give(&mgr->arena.budget, bytes);
        }
        for (int k = 0; k < 2; k++)
            _hm_os_unmap(r->pages[k], r->cap);
    }
    for (size_t g = 0; g < vm->graves; g++)
        _hm_os_unmap(vm->graveyard[g], vm->graveyard_sizes[g]);
    pthread_mutex_destroy(&vm->lock);
    _hm_os_unmap(vm, (sizeof(hm_vmem_t) + VM_PAGE - 1) & ~(VM_PAGE - 1));
    mgr->vmem = NULL;
}
