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

void hm_heap_stats_print(hm_heap *heap, FILE *out) {
    hm_heap_stats_t s;
    hm_heap_stats(heap, &s);
    char buf[512];
    size_t n =
        _hm_snprintf(buf, sizeof buf,
                     "hostmalloc heap %p:\n"
                     "  live:      %zu blocks, %zu bytes\n"
                     "  committed: %zu bytes (peak %zu)\n"
                     "  reserved:  %zu bytes in %zu segments, %zu huge blocks\n"
                     "  pages:     %zu in use; sub-heaps: %zu\n",
                     (void *)heap, s.live_blocks, s.live_bytes, s.committed, s.peak_committed,
                     s.reserved, s.segments, s.huge_blocks, s.pages, s.threads);
    if (out == NULL)
        _hm_prim_write_stderr(buf, n);
    else
        fwrite(buf, 1, n, out);
}
