/* budget.c: managers and the accounting of committed memory.
 *
 * Every byte the engine commits for a heap (a page brought into use, a huge block, a segment
 * header) is counted here at page granularity, on slow paths only: the fast paths never
 * touch these counters. A manager lives while it has references: its creator's and one per
 * heap. */
#include <string.h>

#include "internal.h"

static hm_manager default_mgr;
static pthread_once_t default_once = PTHREAD_ONCE_INIT;

void _hm_manager_init(hm_manager *mgr, const hm_config *cfg) {
    memset(mgr, 0, sizeof *mgr);
    if (cfg != NULL)
        mgr->cfg = *cfg;
    else
        hm_config_init(&mgr->cfg);
    atomic_store(&mgr->refs, 1);
    pthread_mutex_init(&mgr->cache_lock, NULL);
}

static void default_init(void) {
    _hm_manager_init(&default_mgr, NULL);
    default_mgr.is_default = true;
}

hm_manager *_hm_manager_default(void) {
    pthread_once(&default_once, default_init);
    return &default_mgr;
}

hm_manager *hm_manager_default(void) {
    return _hm_manager_default();
}

hm_manager *hm_manager_new(const hm_config *cfg) {
    hm_manager *mgr = _hm_meta_alloc(sizeof(hm_manager));
    if (mgr == NULL) return NULL;
    _hm_manager_init(mgr, cfg);
    return mgr;
}

void hm_manager_retain(hm_manager *mgr) {
    if (mgr == NULL || mgr->is_default) return;
    atomic_fetch_add_explicit(&mgr->refs, 1, memory_order_relaxed);
}

void hm_manager_release(hm_manager *mgr) {
    if (mgr == NULL || mgr->is_default) return;
    if (atomic_fetch_sub_explicit(&mgr->refs, 1, memory_order_acq_rel) != 1) return;
    _hm_cache_clear(mgr);
    pthread_mutex_destroy(&mgr->cache_lock);
    _hm_meta_free(mgr, sizeof(hm_manager));
}

bool _hm_commit(hm_heap *heap, size_t bytes, int level) {
    (void)level;
    _hm_heap_account(heap, heap->mgr, (ptrdiff_t)bytes);
    return true;
}

void _hm_uncommit(hm_heap *heap, size_t bytes) {
    _hm_heap_account(heap, heap->mgr, -(ptrdiff_t)bytes);
}
