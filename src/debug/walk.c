/* SPDX-License-Identifier: MIT */
/* debug/walk.c: walks of a heap's live blocks (hm_heap_walk) and leak reports of DebugAlloc
 * blocks (hm_heap_report_leaks). A walk holds the heap's lock and reads every page's free lists
 * to tell live blocks from free ones; debug and checked blocks say it in their headers. */
#include <string.h>

#include "debug/debug.h"

/* ---- walking the heap ------------------------------------------------------------------------ */
typedef struct {
    hm_walk_fn fn;
    void *arg;
    size_t count;
    bool stop;
} walk_t;

static void visit(walk_t *w, hm_block_info_t *info) {
    if (w->stop) return;
    w->count++;
    if (w->fn != NULL && !w->fn(info, w->arg)) w->stop = true;
}

static void visit_debug(walk_t *w, void *p, const hm_dbg_hdr_t *h) {
    bool debug = (h->flags & DBG_CHECKED) == 0;
    hm_block_info_t info = {p,      h->size, debug ? h->file : NULL, debug ? (int)h->line : 0,
                            h->seq, debug};
    visit(w, &info);
}

static bool visit_zero(void *p, void *arg) {
    walk_t *w = arg;
    hm_block_info_t info = {p, 0, NULL, 0, 0, false};
    visit(w, &info);
    return !w->stop;
}

/* Mark the free blocks of a page in `freemap` (one bit a block; at most 4096 blocks). */
static void mark(uint64_t *freemap, const hm_page_t *pg, const hm_block_t *b) {
    while (b != NULL) {
        size_t off = (size_t)((const uint8_t *)b - pg->start);
        if (off >= _hm_page_area(pg) || off % pg->block_size != 0)
            break; /* damaged: stop, never wander */
        size_t i = off / pg->block_size;
        if (freemap[i >> 6] >> (i & 63) & 1) break; /* seen: a damaged list loops, stop */
        freemap[i >> 6] |= (uint64_t)1 << (i & 63);
        hm_tool_access(b, sizeof(hm_block_t));
        const hm_block_t *next = b->next;
        hm_tool_hide(b, sizeof(hm_block_t));
        b = next;
    }
}

static void walk_page(walk_t *w, hm_page_t *pg) {
    uint64_t freemap[4096 / 64];
    memset(freemap, 0, sizeof freemap);
    mark(freemap, pg, pg->free);
    mark(freemap, pg, pg->delayed);
    mark(freemap, pg,
         (const hm_block_t *)(atomic_load_explicit(&pg->thread_free, memory_order_acquire) &
                              HM_TF_LIST));
    for (size_t i = 0; i < pg->capacity && !w->stop; i++) {
        uint8_t *p = pg->start + i * pg->block_size;
        if (pg->kind == HM_PAGE_CHECKED) {
            const hm_chk_hdr_t *h = _hm_chk_hdr(p);
            hm_tool_access(h, sizeof *h);
            if (h->tag == HM_CHK_LIVE(_hm_chk_canary(p), h->size)) {
                hm_block_info_t info = {p, h->size, NULL, 0, h->seq, false};
                visit(w, &info);
            }
        } else if (pg->kind) {
            const hm_dbg_hdr_t *h = _hm_debug_hdr(p);
            hm_tool_access(h, sizeof *h);
            if (h->state == DBG_LIVE) visit_debug(w, p, h);
        } else if (!(freemap[i >> 6] >> (i & 63) & 1)) {
            hm_block_info_t info = {p, pg->block_size, NULL, 0, 0, false};
            visit(w, &info);
        }
    }
}

static size_t walk_locked(hm_heap *heap, walk_t *w) {
    for (hm_theap_t *th = heap->theaps; th != NULL && !w->stop; th = th->next) {
        for (int k = 0; k < HM_SEG_STANDARD; k++) {
            for (hm_segment_t *seg = th->segs[k]; seg != NULL && !w->stop; seg = seg->next) {
                for (size_t i = 0; i < seg->page_count; i++) {
                    hm_page_t *pg = &seg->pages[i];
                    if (pg->block_size != 0) walk_page(w, pg);
                }
            }
        }
    }
    if (!w->stop) _hm_checked_zero_walk(heap, visit_zero, w);
    for (hm_segment_t *seg = heap->huge; seg != NULL && !w->stop; seg = seg->next) {
        hm_page_t *pg = &seg->pages[0];
        if (pg->kind) {
            const hm_dbg_hdr_t *h = _hm_debug_hdr(pg->start);
            if (h->state == DBG_LIVE) visit_debug(w, pg->start, h);
        } else {
            hm_block_info_t info = {pg->start, seg->huge_size, NULL, 0, 0, false};
            visit(w, &info);
        }
    }
    return w->count;
}

size_t hm_heap_walk(hm_heap *heap, hm_walk_fn fn, void *arg) {
    if (heap == NULL) return 0;
    walk_t w = {fn, arg, 0, false};
    pthread_mutex_lock(&heap->lock);
    size_t n = walk_locked(heap, &w);
    pthread_mutex_unlock(&heap->lock);
    return n;
}

/* ---- leak report -------------------------------------------------------------------------- */
#define LEAK_SITES 256

typedef struct {
    const char *file;
    int line;
    size_t count, bytes;
} site_t;

typedef struct {
    site_t sites[LEAK_SITES];
    size_t nsites;
    size_t blocks, bytes;
    site_t other; /* sites beyond the table */
} leaks_t;

static bool collect_leak(const hm_block_info_t *info, void *arg) {
    leaks_t *l = arg;
    if (!info->debug) return true;
    l->blocks++;
    l->bytes += info->size;
    for (size_t i = 0; i < l->nsites; i++) {
        if (l->sites[i].file == info->file && l->sites[i].line == info->line) {
            l->sites[i].count++;
            l->sites[i].bytes += info->size;
            return true;
        }
    }
    site_t *s = l->nsites < LEAK_SITES ? &l->sites[l->nsites++] : &l->other;
    if (s != &l->other) {
        s->file = info->file;
        s->line = info->line;
    }
    s->count++;
    s->bytes += info->size;
    return true;
}

static void emit_line(const hm_arena_t *a, FILE *out, const char *line) {
    if (out != NULL)
        fputs(line, out);
    else
        _hm_report(&a->cfg, HM_ERROR_LEAK, NULL, line);
}

size_t hm_heap_report_leaks(hm_heap *heap, FILE *out) {
    /* only DebugAlloc blocks are reported: a heap that never had one needs no walk (the last
     * Release of every IHostMalloc asks) */
    if (heap == NULL || !atomic_load_explicit(&heap->had_debug, memory_order_relaxed)) return 0;
    static leaks_t l; /* 6 KiB: not on the stack of a caller inside malloc */
    static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&report_lock);
    memset(&l, 0, sizeof l);
    hm_heap_walk(heap, collect_leak, &l);
    /* largest first (insertion sort: at most LEAK_SITES entries) */
    for (size_t i = 1; i < l.nsites; i++) {
        site_t s = l.sites[i];
        size_t j = i;
        for (; j > 0 && l.sites[j - 1].bytes < s.bytes; j--)
            l.sites[j] = l.sites[j - 1];
        l.sites[j] = s;
    }
    size_t found = l.blocks;
    if (found > 0) {
        char line[512];
        _hm_snprintf(line, sizeof line,
                     "hostmalloc: leak report for heap %p: %zu DebugAlloc blocks, %zu bytes, "
                     "from %zu sites\n",
                     (void *)heap, l.blocks, l.bytes, l.nsites + (l.other.count != 0));
        emit_line(heap->arena, out, line);
        for (size_t i = 0; i < l.nsites; i++) {
            _hm_snprintf(line, sizeof line, "  %s%s:%d: %zu blocks, %zu bytes\n",
                         _hm_debug_name_prefix(l.sites[i].file),
                         _hm_debug_name_tail(l.sites[i].file), l.sites[i].line, l.sites[i].count,
                         l.sites[i].bytes);
            emit_line(heap->arena, out, line);
        }
        if (l.other.count != 0) {
            _hm_snprintf(line, sizeof line, "  (other sites): %zu blocks, %zu bytes\n",
                         l.other.count, l.other.bytes);
            emit_line(heap->arena, out, line);
        }
    }
    pthread_mutex_unlock(&report_lock);
    return found;
}
