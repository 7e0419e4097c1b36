/* SPDX-License-Identifier: MIT */
/* manager/stats.c: heap and manager statistics, and every report made of them.
 *
 * Nothing is counted on the fast paths: live blocks are the pages' `used` counts, committed
 * bytes come from the slow-path accounting. The walk holds the heap lock (sub-heap lists
 * and huge list cannot change); page counters of running threads may be a moment old.
 *
 * Reports (text for people, JSON for programs, XML for malloc_info) are formatted into a
 * stack buffer with _hm_snprintf and written in one piece: HM_STATS reports run inside
 * malloc's process at exit or inside a heap's release, so they may not allocate, and one
 * write(2) with O_APPEND keeps the reports of processes sharing a file from interleaving. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "manager/manager.h"

void _hm_stats_collect(hm_heap *heap, hm_heap_stats_t *out) {
    for (hm_theap_t *th = heap->theaps; th != NULL; th = th->next) {
        out->threads++;
        for (int l = 0; l < 3; l++) {
            out->requests[l] += _hm_theap_requests(th, l);
            out->failures[l] += th->failures[l];
        }
        for (int k = 0; k < HM_SEG_STANDARD; k++) {
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
    out->live_blocks += _hm_checked_zero_walk(heap, NULL, NULL); /* checked mode's malloc(0) */
    for (hm_segment_t *seg = heap->huge; seg != NULL; seg = seg->next) {
        out->huge_blocks++;
        out->live_blocks++;
        out->live_bytes += seg->huge_size;
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

void hm_manager_stats(hm_manager *mgr, hm_manager_stats_t *out) {
    if (out == NULL) return;
    memset(out, 0, sizeof *out);
    if (mgr == NULL) return;
    out->limit = mgr->arena.budget.limit;
    out->committed = atomic_load_explicit(&mgr->arena.budget.committed, memory_order_relaxed);
    out->peak_committed =
        atomic_load_explicit(&mgr->arena.budget.peak_committed, memory_order_relaxed);
    for (int l = 0; l < 3; l++) {
        out->requests[l] =
            atomic_load_explicit(&mgr->arena.retired_requests[l], memory_order_relaxed) +
            atomic_load_explicit(&mgr->vm_requests[l], memory_order_relaxed);
        out->failures[l] =
            atomic_load_explicit(&mgr->arena.budget.failures[l], memory_order_relaxed);
        out->faults_injected[l] =
            atomic_load_explicit(&mgr->faults_injected[l], memory_order_relaxed);
    }
    for (int k = 0; k < 4; k++)
        out->notifications[k] = atomic_load_explicit(&mgr->notifications[k], memory_order_relaxed);
    pthread_mutex_lock(&mgr->arena.heaps_lock);
    out->heaps = mgr->arena.heap_count;
    for (hm_heap *h = mgr->arena.heaps; h != NULL; h = h->arena_next) {
        pthread_mutex_lock(&h->lock);
        for (hm_theap_t *th = h->theaps; th != NULL; th = th->next)
            for (int l = 0; l < 3; l++)
                out->requests[l] += _hm_theap_requests(th, l);
        pthread_mutex_unlock(&h->lock);
    }
    pthread_mutex_unlock(&mgr->arena.heaps_lock);
    pthread_mutex_lock(&mgr->arena.cache_lock);
    out->cached = mgr->arena.cache_bytes;
    pthread_mutex_unlock(&mgr->arena.cache_lock);
    _hm_vmem_stats(mgr, &out->virtual_reserved, &out->virtual_committed);
    out->runtime_mapped = atomic_load_explicit(&mgr->runtime_mapped, memory_order_relaxed);
}

/* ---- where reports go ------------------------------------------------------------------------ */
/* The caller's FILE, else the config's statistics file, else stderr. */
static size_t emit(const hm_manager *mgr, FILE *out, const char *buf, size_t n) {
    if (out != NULL) return fwrite(buf, 1, n, out) == n ? n : 0;
    if (mgr != NULL && mgr->arena.cfg.stats_path != NULL)
        return _hm_os_append_file(mgr->arena.cfg.stats_path, buf, n) ? n : 0;
    _hm_write_stderr(buf, n);
    return n;
}

static const char *const k_levels[3] = {"task", "appdomain", "process"};

/* ---- text ------------------------------------------------------------------------------------ */
static size_t heap_text(char *buf, size_t cap, const hm_heap *heap, const hm_heap_stats_t *s) {
    char who[96];
    _hm_report_who(who, sizeof who);
    return _hm_snprintf(buf, cap,
                        "hostmalloc heap %p, %s:\n"
                        "  live:      %zu blocks, %H\n"
                        "  committed: %H (peak %H)\n"
                        "  reserved:  %H in %zu segments, %zu huge blocks\n"
                        "  pages:     %zu in use; sub-heaps: %zu\n"
                        "  requests:  task %zu, appdomain %zu, process %zu\n"
                        "  failures:  task %zu, appdomain %zu, process %zu\n",
                        (const void *)heap, who, s->live_blocks, s->live_bytes, s->committed,
                        s->peak_committed, s->reserved, s->segments, s->huge_blocks, s->pages,
                        s->threads, s->requests[0], s->requests[1], s->requests[2], s->failures[0],
                        s->failures[1], s->failures[2]);
}

void hm_heap_stats_print(hm_heap *heap, FILE *out) {
    hm_heap_stats_t s;
    hm_heap_stats(heap, &s);
    char buf[1024];
    size_t n = heap_text(buf, sizeof buf, heap, &s);
    emit(heap != NULL ? _hm_manager_of(heap) : NULL, out, buf, n);
}

static size_t manager_text(char *buf, size_t cap, const hm_manager *mgr,
                           const hm_manager_stats_t *s) {
    char who[96];
    _hm_report_who(who, sizeof who);
    return _hm_snprintf(
        buf, cap,
        "hostmalloc manager %p, %s:\n"
        "  limit:         %H (%zu bytes)\n"
        "  committed:     %H (peak %H); cached %H; heaps %zu\n"
        "  requests:      task %zu, appdomain %zu, process %zu\n"
        "  failures:      task %zu, appdomain %zu, process %zu (injected %zu, %zu, %zu)\n"
        "  notifications: low %zu, neutral %zu, high %zu\n"
        "  virtual:       reserved %H, committed %H; runtime-mapped %H\n",
        (const void *)mgr, who, s->limit, s->limit, s->committed, s->peak_committed, s->cached,
        s->heaps, s->requests[0], s->requests[1], s->requests[2], s->failures[0], s->failures[1],
        s->failures[2], s->faults_injected[0], s->faults_injected[1], s->faults_injected[2],
        s->notifications[1], s->notifications[2], s->notifications[3], s->virtual_reserved,
        s->virtual_committed, s->runtime_mapped);
}

void hm_manager_stats_print(hm_manager *mgr, FILE *out) {
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    char buf[1536];
    size_t n = manager_text(buf, sizeof buf, mgr, &s);
    emit(mgr, out, buf, n);
}

/* ---- JSON -------------------------------------------------------------------------------------
 * One object on one line: a file that several processes append to reads as JSON Lines. */
static size_t json_string(char *buf, size_t cap, size_t n, const char *s) {
    static const char hex[] = "0123456789abcdef";
    n += _hm_snprintf(buf + (n < cap ? n : cap), n < cap ? cap - n : 0, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        size_t k = 0;
        if (c == '"' || c == '\\') {
            esc[k++] = '\\';
            esc[k++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) { /* names are not always UTF-8: keep it ASCII */
            esc[k++] = '\\', esc[k++] = 'u', esc[k++] = '0', esc[k++] = '0';
            esc[k++] = hex[c >> 4], esc[k++] = hex[c & 15];
        } else {
            esc[k++] = (char)c;
        }
        for (size_t i = 0; i < k; i++, n++)
            if (n + 1 < cap) buf[n] = esc[i];
    }
    if (n + 1 < cap) buf[n] = '"';
    n++;
    if (cap > 0) buf[n < cap ? n : cap - 1] = '\0';
    return n;
}

#define JSON_APPEND(...)                                                                           \
    n += _hm_snprintf(buf + (n < cap ? n : cap), n < cap ? cap - n : 0, __VA_ARGS__)

/* {"hostmalloc":"0.1.0","report":"<kind>","pid":1234,"program":"gcc" (no closing brace) */
static size_t json_head(char *buf, size_t cap, const char *kind) {
    char name[64];
    size_t n = 0;
    _hm_program_name(name, sizeof name);
    JSON_APPEND("{\"hostmalloc\":\"%d.%d.%d\",\"report\":\"%s\",\"pid\":%d,\"program\":",
                HOSTMALLOC_VERSION_MAJOR, HOSTMALLOC_VERSION_MINOR, HOSTMALLOC_VERSION_PATCH, kind,
                (int)getpid());
    return json_string(buf, cap, n, name);
}

static size_t json_levels(char *buf, size_t cap, size_t n, const char *key, const size_t v[3]) {
    JSON_APPEND(",\"%s\":{", key);
    for (int l = 0; l < 3; l++)
        JSON_APPEND("%s\"%s\":%zu", l ? "," : "", k_levels[l], v[l]);
    JSON_APPEND("}");
    return n;
}

static size_t json_heap(char *buf, size_t cap, size_t n, const hm_heap_stats_t *s) {
    JSON_APPEND(",\"heap\":{\"live_blocks\":%zu,\"live_bytes\":%zu,\"committed\":%zu,"
                "\"peak_committed\":%zu,\"reserved\":%zu,\"segments\":%zu,\"huge_blocks\":%zu,"
                "\"pages\":%zu,\"threads\":%zu",
                s->live_blocks, s->live_bytes, s->committed, s->peak_committed, s->reserved,
                s->segments, s->huge_blocks, s->pages, s->threads);
    n = json_levels(buf, cap, n, "requests", s->requests);
    n = json_levels(buf, cap, n, "failures", s->failures);
    JSON_APPEND("}");
    return n;
}

static size_t json_manager(char *buf, size_t cap, size_t n, const hm_manager_stats_t *s) {
    JSON_APPEND(",\"manager\":{\"limit\":%zu,\"committed\":%zu,\"peak_committed\":%zu,"
                "\"cached\":%zu,\"heaps\":%zu",
                s->limit, s->committed, s->peak_committed, s->cached, s->heaps);
    n = json_levels(buf, cap, n, "requests", s->requests);
    n = json_levels(buf, cap, n, "failures", s->failures);
    n = json_levels(buf, cap, n, "faults_injected", s->faults_injected);
    JSON_APPEND(",\"notifications\":{\"low\":%zu,\"neutral\":%zu,\"high\":%zu},"
                "\"virtual_reserved\":%zu,\"virtual_committed\":%zu,\"runtime_mapped\":%zu}",
                s->notifications[1], s->notifications[2], s->notifications[3], s->virtual_reserved,
                s->virtual_committed, s->runtime_mapped);
    return n;
}

/* Close the object; 0 when the buffer was too small (never a cut document). _hm_snprintf
 * stops counting at the end of the buffer, so a document that reaches the last byte may have
 * been cut: it counts as too long. JSON_CAP holds the widest report (every figure 20 digits,
 * a 63-byte program name escaped to six characters a byte). */
#define JSON_CAP 2048
static size_t json_end(char *buf, size_t cap, size_t n) {
    JSON_APPEND("}\n");
    return n + 1 < cap ? n : 0;
}

/* One JSON document: the head naming `kind`, the heap's or the manager's fields (one of `h` and
 * `m`), the end; then to `out` or the statistics sink of `mgr`. */
static size_t json_doc(hm_manager *mgr, FILE *out, const char *kind, const hm_heap_stats_t *h,
                       const hm_manager_stats_t *m) {
    char buf[JSON_CAP];
    size_t n = json_head(buf, sizeof buf, kind);
    n = h != NULL ? json_heap(buf, sizeof buf, n, h) : json_manager(buf, sizeof buf, n, m);
    n = json_end(buf, sizeof buf, n);
    return n != 0 ? emit(mgr, out, buf, n) : 0;
}

size_t hm_heap_stats_json(hm_heap *heap, FILE *out) {
    if (heap == NULL) return 0;
    hm_heap_stats_t s;
    hm_heap_stats(heap, &s);
    return json_doc(_hm_manager_of(heap), out, "heap", &s, NULL);
}

size_t hm_manager_stats_json(hm_manager *mgr, FILE *out) {
    if (mgr == NULL) return 0;
    hm_manager_stats_t s;
    hm_manager_stats(mgr, &s);
    return json_doc(mgr, out, "manager", NULL, &s);
}

/* ---- HM_STATS ------------------------------------------------------------------------------ */
void _hm_stats_report_heap(hm_heap *heap) {
    if (_hm_manager_of(heap)->arena.cfg.stats_json)
        hm_heap_stats_json(heap, NULL);
    else
        hm_heap_stats_print(heap, NULL);
}

void _hm_stats_report_manager(hm_manager *mgr) {
    if (mgr->arena.cfg.stats_json)
        hm_manager_stats_json(mgr, NULL);
    else
        hm_manager_stats_print(mgr, NULL);
}

/* The malloc door: one heap, all of it process-critical, no runtime: what a malloc user asks
 * (in use, held, peak, address space, the limit, calls, failures), nothing of the hosting
 * interfaces. */
void _hm_stats_report_malloc(hm_heap *heap, hm_manager *mgr, bool to_sink) {
    hm_heap_stats_t h;
    hm_manager_stats_t m;
    hm_heap_stats(heap, &h);
    hm_manager_stats(mgr, &m);
    char buf[JSON_CAP];
    size_t n;
    if (to_sink && mgr->arena.cfg.stats_json) {
        n = json_head(buf, sizeof buf, "malloc");
        n = json_heap(buf, sizeof buf, n, &h);
        n = json_end(buf, sizeof buf, json_manager(buf, sizeof buf, n, &m));
        if (n != 0) emit(mgr, NULL, buf, n);
        return;
    }
    char who[96];
    _hm_report_who(who, sizeof who);
    size_t calls = h.requests[0] + h.requests[1] + h.requests[2];
    size_t failed = h.failures[0] + h.failures[1] + h.failures[2];
    n = _hm_snprintf(buf, sizeof buf,
                     "hostmalloc malloc statistics, %s:\n"
                     "  in use:     %H in %zu blocks (%zu huge)\n"
                     "  committed:  %H, peak %H\n"
                     "  reserved:   %H of address space in %zu segments; %H more cached\n"
                     "  limit:      %H (%zu bytes)\n"
                     "  calls:      %zu allocations, %zu failed; threads: %zu\n",
                     who, h.live_bytes, h.live_blocks, h.huge_blocks, h.committed, h.peak_committed,
                     h.reserved, h.segments, m.cached, m.limit, m.limit, calls, failed, h.threads);
    if (to_sink)
        emit(mgr, NULL, buf, n);
    else
        _hm_write_stderr(buf, n);
}

/* ---- malloc_info ------------------------------------------------------------------------------
 * The shape of glibc's document (one <heap> per arena, then the process totals), with
 * hostmalloc's figures: "rest" is what the heap holds committed beyond its live blocks, "live"
 * (hostmalloc's own) the live blocks, "mmap" the huge blocks, "system" committed bytes and
 * "aspace" reserved address space. There are no fast bins and no per-size free lists. */
int _hm_stats_malloc_info(hm_heap *heap, hm_manager *mgr, int options, FILE *fp) {
    if (options != 0 || fp == NULL) {
        errno = EINVAL;
        return -1;
    }
    hm_heap_stats_t h;
    hm_manager_stats_t m;
    hm_heap_stats(heap, &h);
    hm_manager_stats(mgr, &m);
    size_t huge_bytes = 0;
    pthread_mutex_lock(&heap->lock);
    for (hm_segment_t *seg = heap->huge; seg != NULL; seg = seg->next)
        huge_bytes += seg->huge_size;
    pthread_mutex_unlock(&heap->lock);
    size_t free_bytes = h.committed > h.live_bytes ? h.committed - h.live_bytes : 0;
    char buf[1536];
    size_t n =
        _hm_snprintf(buf, sizeof buf,
                     "<malloc version=\"1\">\n"
                     "<heap nr=\"0\">\n"
                     "<sizes>\n"
                     "</sizes>\n"
                     "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
                     "<total type=\"rest\" count=\"0\" size=\"%zu\"/>\n"
                     "<total type=\"live\" count=\"%zu\" size=\"%zu\"/>\n"
                     "<system type=\"current\" size=\"%zu\"/>\n"
                     "<system type=\"max\" size=\"%zu\"/>\n"
                     "<aspace type=\"total\" size=\"%zu\"/>\n"
                     "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
                     "</heap>\n"
                     "<total type=\"fast\" count=\"0\" size=\"0\"/>\n"
                     "<total type=\"rest\" count=\"0\" size=\"%zu\"/>\n"
                     "<total type=\"mmap\" count=\"%zu\" size=\"%zu\"/>\n"
                     "<system type=\"current\" size=\"%zu\"/>\n"
                     "<system type=\"max\" size=\"%zu\"/>\n"
                     "<aspace type=\"total\" size=\"%zu\"/>\n"
                     "<aspace type=\"mprotect\" size=\"%zu\"/>\n"
                     "</malloc>\n",
                     free_bytes, h.live_blocks, h.live_bytes, h.committed, h.peak_committed,
                     h.reserved, h.reserved, free_bytes, h.huge_blocks, huge_bytes, m.committed,
                     m.peak_committed, h.reserved + m.cached, h.reserved + m.cached);
    return fwrite(buf, 1, n, fp) == n ? 0 : -1;
}
