/* stats.c: heap statistics by walking the heap's sub-heaps and segments.
 *
 * Nothing is counted on the fast paths: live blocks are the pages' `used` counts, committed
 * bytes come from the slow-path accounting. The walk holds the heap lock (sub-heap lists
 * and huge list cannot change); page counters of running threads may be a moment old. */
#include <string.h>

#include "internal.h"

void _hm_stats_collect(hm_heap *heap, hm_heap_stats_t *out) {
    for (hm_theap_t *th = heap->theaps; th != NULL; th = th->next) {
        out->threads++;
        for (int l = 0; l < 3; l++) {
            out->requests[l] += th->requests[l];
            out->failures[l] += th->failures[l];
        }
        for (int k = 0; k < 2; k++) {
            for (hm_segment_t *seg = th->segs[k]; seg != NULL; seg = seg->next) {
                out->segments++;
                out->reserved += seg->size;
                for (size_t i = 0; i < seg->page_count; i++) {
                    hm_page_t *pg = &seg->pages[i];
                    if (pg->block_size == 0) continue;
                    out->pages++;
                    out->live_blocks += _hm_page_live(pg);
                    out->live_bytes += (size_t)_hm_page_live(pg) * pg->block_size;
                }
            }
        }
    }
    for (hm_segment_t *seg = heap->huge; seg != NULL; seg = seg->next) {
        out->huge_blocks++;
        out->live_blocks++;
        out->live_bytes += _hm_huge_usable(seg);
        out->reserved += seg->size;
    }
}

void hm_heap_stats(hm_heap *heap, hm_heap_stats_t *out) {
    if (out == NULL) return;
    memset(out, 0, sizeof *out);
    if (heap == NULL) return;
    pthread_mutex_lock(&heap->lock);
    _hm_stats_collect(heap, out);
    pthread_mutex_unlock(&heap->lock);
    out->committed = atomic_load_explicit(&heap->committed, memory_order_relaxed);
    out->peak_committed = atomic_load_explicit(&heap->peak_committed, memory_order_relaxed);
}

/* Where printed statistics go when no FILE is given: the config's file, else stderr. */
static void emit(const hm_manager *mgr, FILE *out, const char *buf, size_t n) {
    if (out != NULL)
        fwrite(buf, 1, n, out);
    else if (mgr != NULL && mgr->cfg.stats_path != NULL)
        _hm_prim_write_path(mgr->cfg.stats_path, buf, n);
    else
        _hm_prim_write_stderr(buf, n);
}

void hm_heap_stats_print(hm_heap *heap, FILE *out) {
    hm_heap_stats_t s;
    hm_heap_stats(heap, &s);
    char buf[768];
    size_t n =
        _hm_snprintf(buf, sizeof buf,
                     "hostmalloc heap %p:\n"
                     "  live:      %zu blocks, %zu bytes\n"
                     "  committed: %zu bytes (peak %zu)\n"
                     "  reserved:  %zu bytes in %zu segments, %zu huge blocks\n"
                     "  pages:     %zu in use; sub-heaps: %zu\n"
                     "  requests:  task %zu, appdomain %zu, process %zu\n"
                     "  failures:  task %zu, appdomain %zu, process %zu\n",
                     (void *)heap, s.live_blocks, s.live_bytes, s.committed, s.peak_committed,
                     s.reserved, s.segments, s.huge_blocks, s.pages, s.threads, s.requests[0],
                     s.requests[1], s.requests[2], s.failures[0], s.failures[1], s.failures[2]);
    emit(heap != NULL ? heap->mgr : NULL, out, buf, n);
}

void hm_manager_stats(hm_manager *mgr, hm_manager_stats_t *out) {
    if (out == NULL) return;
    memset(out, 0, sizeof *out);
    if (mgr == NULL) return;
    out->limit = mgr->limit;
    out->committed = atomic_load_explicit(&mgr->committed, memory_order_relaxed);
    out->peak_committed = atomic_load_explicit(&mgr->peak_committed, memory_order_relaxed);
    for (int l = 0; l < 3; l++) {
        out->requests[l] = atomic_load_explicit(&mgr->retired_requests[l], memory_order_relaxed) +
                           atomic_load_explicit(&mgr->vm_requests[l], memory_order_relaxed);
        out->failures[l] = atomic_load_explicit(&mgr->failures[l], memory_order_relaxed);
        out->faults_injected[l] =
            atomic_load_explicit(&mgr->faults_injected[l], memory_order_relaxed);
    }
    for (int k = 0; k < 4; k++)
        out->notifications[k] = atomic_load_explicit(&mgr->notifications[k], memory_order_relaxed);
    pthread_mutex_lock(&mgr->heaps_lock);
    out->heaps = mgr->heap_count;
    for (hm_heap *h = mgr->heaps; h != NULL; h = h->mgr_next) {
        pthread_mutex_lock(&h->lock);
        for (hm_theap_t *th = h->theaps; th != NULL; th = th->next)
            for (int l = 0; l < 3; l++)
                out->requests[l] += th->requests[l];
        pthread_mutex_unlock(&h->lock);
    }
    pthread_mutex_unlock(&mgr->heaps_lock);
    pthread_mutex_lock(&mgr->cache_lock);
    out->cached = mgr->cache_bytes;
    pthread_mutex_unlock(&mgr->cache_lock);
    _hm_vmem_stats(mgr, &out->virtual_reserved, &out->virtual_committed);
    out->runtime_mapped = atomic_load_explicit(&mgr->runtime_mapped, memory_order_relaxed);
}

void hm_manager_stats_print(hm_manager *mgr, FILE *out) {
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    char buf[1024];
    size_t n = _hm_snprintf(
        buf, sizeof buf,
        "hostmalloc manager %p:\n"
        "  limit:         %zu bytes; committed %zu (peak %zu); cached %zu; heaps %zu\n"
        "  requests:      task %zu, appdomain %zu, process %zu\n"
        "  failures:      task %zu, appdomain %zu, process %zu (injected %zu, %zu, %zu)\n"
        "  notifications: low %zu, neutral %zu, high %zu\n"
        "  virtual:       reserved %zu, committed %zu; runtime-mapped %zu\n",
        (void *)mgr, s.limit, s.committed, s.peak_committed, s.cached, s.heaps, s.requests[0],
        s.requests[1], s.requests[2], s.failures[0], s.failures[1], s.failures[2],
        s.faults_injected[0], s.faults_injected[1], s.faults_injected[2], s.notifications[1],
        s.notifications[2], s.notifications[3], s.virtual_reserved, s.virtual_committed,
        s.runtime_mapped);
    emit(mgr, out, buf, n);
}
