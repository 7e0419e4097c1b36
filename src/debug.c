/* SPDX-License-Identifier: MIT */
/* debug.c: debug blocks (DebugAlloc and checked mode), misuse reports, heap walks, leak reports.
 *
 * A debug block lives on a debug page (its own queues in every sub-heap, so never beside normal
 * blocks) and occupies one slot of the page's size class:
 *
 *     slot:  [ header (48 bytes) | user bytes (size) | 8-byte canary | slack ]
 *                                ^ the block pointer (the engine's "block start")
 *
 * The page's `start` is moved past the first header, so user pointers are exactly the engine's
 * block starts and every free of them is validated as usual. The header records the site (an
 * interned copy of the file name: the caller's string is not trusted to outlive the call),
 * line, size, allocating thread, a sequence number and the state (live, freed, quarantined),
 * and ends with the front canary; the back canary starts at the first byte past the requested
 * size, so even a one-byte overrun is caught. Canaries are a per-process secret mixed with the
 * block address.
 *
 * Free checks the state (double free), then both canaries; on an error it reports through the
 * manager's error sink and leaves the block alone (quarantined: never reused, and a second free
 * is an error too). A good free marks the header freed and fills the user bytes past the
 * free-list link with 0xDF; the next allocation of that slot checks the fill (write after free).
 * Debug pages carry HM_USED_SLOW, so these checks cost nothing to normal blocks.
 *
 * Checked mode's blocks (16-byte header, checked pages) have their fast paths inline in
 * internal.h; their full paths, reports and carving are here too ("checked blocks").
 *
 * Everything here runs on slow paths and never allocates: reports are formatted on the stack. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "internal.h"

#define DBG_LIVE        0x4c495645u /* "LIVE" */
#define DBG_FREED       0x46524545u /* "FREE" */
#define DBG_QUARANTINED 0x51554152u /* "QUAR": a bad free left it here for good */
#define DBG_FILL        0xDF
#define DBG_CHECKED     1u /* a checked-mode block (not a DebugAlloc one) */

typedef struct hm_dbg_hdr_s {
    const char *file; /* interned, or NULL */
    uint32_t line;
    uint32_t state;
    size_t size;  /* requested bytes */
    uint64_t seq; /* allocation sequence number */
    uint32_t tid; /* allocating thread (kernel id) */
    uint32_t flags;
    uint64_t canary; /* right before the user bytes */
} hm_dbg_hdr_t;

_Static_assert(sizeof(hm_dbg_hdr_t) == HM_DEBUG_HEADER, "debug header size");

/* Huge checked-mode blocks (which have this file's 48-byte header) fill and check this many
 * leading bytes (object headers and the fields near them, where stale pointers write);
 * DebugAlloc blocks the whole block. Checked blocks on checked pages: internal.h. */
#define DBG_CHECKED_FILL 64

static _Atomic(uint64_t) dbg_seq;
static __thread uint64_t tls_seq __attribute__((tls_model("initial-exec")));
uint64_t _hm_debug_secret;
static pthread_once_t dbg_once = PTHREAD_ONCE_INIT;
static __thread uint32_t tls_tid __attribute__((tls_model("initial-exec")));

static void dbg_init(void) {
    uint64_t x = (uint64_t)(uintptr_t)&_hm_debug_secret ^ ((uint64_t)_hm_prim_clock_ms() << 32) ^
                 (uint64_t)getpid() * 0x9E3779B97F4A7C15ULL;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ULL;
    _hm_debug_secret = x ^ (x >> 29) ^ 0xA5A5A5A5A5A5A5A5ULL;
}

void _hm_debug_init(void) {
    pthread_once(&dbg_once, dbg_init);
}

static uint64_t canary_of(const void *p) {
    return _hm_debug_secret ^ ((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ULL);
}

static hm_dbg_hdr_t *hdr_of(const void *p) {
    return (hm_dbg_hdr_t *)((uint8_t *)p - HM_DEBUG_HEADER);
}

/* ---- interned file names -------------------------------------------------------------------
 * A fixed open-addressing table of copies, in metadata memory that is never freed (names stay
 * valid in leak reports long after the caller's string is gone). */
#define INTERN_SLOTS 4096
#define INTERN_ARENA ((size_t)1 << 20)

static struct {
    pthread_mutex_t lock;
    const char *slots[INTERN_SLOTS];
    char *arena;
    size_t used;
} intern = {.lock = PTHREAD_MUTEX_INITIALIZER};

static const char *intern_name(const char *name) {
    if (name == NULL) return NULL;
    /* a name longer than 512 bytes keeps its end: the part of a path that tells files apart */
    size_t len = strlen(name);
    if (len > 512) {
        name += len - 512;
        len = 512;
    }
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)name[i]) * 1099511628211ULL;
    const char *found = "(too many source files)";
    pthread_mutex_lock(&intern.lock);
    for (size_t k = 0; k < INTERN_SLOTS; k++) {
        size_t i = (h + k) & (INTERN_SLOTS - 1);
        const char *s = intern.slots[i];
        if (s == NULL) {
            if (intern.arena == NULL || intern.used + len + 1 > INTERN_ARENA) {
                intern.arena = _hm_meta_alloc(INTERN_ARENA);
                intern.used = 0;
                if (intern.arena == NULL) break;
            }
            char *copy = intern.arena + intern.used;
            memcpy(copy, name, len);
            copy[len] = '\0';
            intern.used += len + 1;
            intern.slots[i] = copy;
            found = copy;
            break;
        }
        if (strncmp(s, name, len) == 0 && s[len] == '\0') {
            found = s;
            break;
        }
    }
    pthread_mutex_unlock(&intern.lock);
    return found;
}

/* ---- reports -------------------------------------------------------------------------------- */
/* File names in report lines are cut to their last NAME_MAX_SHOWN bytes (after "..."), so that
 * every line fits its 512-byte buffer whole: with its ":line: ..." part and its newline. The
 * end of a path is the part that tells files apart. */
#define NAME_MAX_SHOWN 300
static const char *name_prefix(const char *name) {
    return name != NULL && strnlen(name, NAME_MAX_SHOWN + 1) > NAME_MAX_SHOWN ? "..." : "";
}
static const char *name_tail(const char *name) {
    if (name == NULL) return "(unknown)";
    size_t len = strlen(name); /* interned copies are at most 512 bytes */
    return len > NAME_MAX_SHOWN ? name + len - NAME_MAX_SHOWN : name;
}

void _hm_report(const hm_manager *mgr, int kind, const void *ptr, const char *message) {
    if (mgr != NULL && mgr->cfg.on_error != NULL) {
        mgr->cfg.on_error(kind, ptr, message, mgr->cfg.on_error_arg);
        return;
    }
    _hm_prim_write_stderr(message, strlen(message));
}

void _hm_report_double_free(const hm_segment_t *seg, const void *p, size_t size) {
    char msg[128];
    _hm_snprintf(msg, sizeof msg, "hostmalloc: double free: block %p of %zu bytes\n", p, size);
    _hm_report(seg->mgr, HM_ERROR_DOUBLE_FREE, p, msg);
}

static const char *kind_name(int kind) {
    switch (kind) {
    case HM_ERROR_DOUBLE_FREE:
        return "double free";
    case HM_ERROR_OVERRUN:
        return "buffer overrun (the canary after the block was written)";
    case HM_ERROR_UNDERRUN:
        return "buffer underrun (the canary before the block was written)";
    case HM_ERROR_WRITE_AFTER_FREE:
        return "write after free";
    default:
        return "bad pointer";
    }
}

static void report_block(const hm_manager *mgr, int kind, const void *p, const hm_dbg_hdr_t *h) {
    char msg[512];
    if (h->file != NULL)
        _hm_snprintf(msg, sizeof msg,
                     "hostmalloc: %s: block %p of %zu bytes, allocated at %s%s:%d (#%zu, thread "
                     "%d)\n",
                     kind_name(kind), p, h->size, name_prefix(h->file), name_tail(h->file),
                     (int)h->line, (size_t)h->seq, (int)h->tid);
    else
        _hm_snprintf(msg, sizeof msg,
                     "hostmalloc: %s: block %p of %zu bytes (allocation #%zu, thread %d)\n",
                     kind_name(kind), p, h->size, (size_t)h->seq, (int)h->tid);
    _hm_report(mgr, kind, p, msg);
}

/* A checked block of page `pg`: its header's fields are named when its size is plausible (an
 * underrun usually breaks only the tag, the last field). */
static void report_checked(const hm_manager *mgr, int kind, const hm_page_t *pg, const void *p,
                           const hm_chk_hdr_t *h) {
    char msg[512];
    if (h->size <= pg->block_size - HM_CHECKED_EXTRA)
        _hm_snprintf(msg, sizeof msg,
                     "hostmalloc: %s: block %p of %zu bytes (allocation #%zu, thread %d)\n",
                     kind_name(kind), p, (size_t)h->size, (size_t)h->seq, (int)h->tid);
    else
        _hm_snprintf(msg, sizeof msg, "hostmalloc: %s: block %p (its header was overwritten)\n",
                     kind_name(kind), p);
    _hm_report(mgr, kind, p, msg);
}

/* ---- allocation ---------------------------------------------------------------------------- */
/* Is the freed fill intact in [8, limit)? Word compares where aligned (blocks are 16-aligned). */
static bool fill_intact(const uint8_t *u, size_t limit) {
    const uint64_t pat = 0x0101010101010101ULL * DBG_FILL;
    size_t i = sizeof(hm_block_t);
    for (; i + 8 <= limit; i += 8) {
        uint64_t w;
        memcpy(&w, u + i, sizeof w);
        if (w != pat) return false;
    }
    for (; i < limit; i++)
        if (u[i] != DBG_FILL) return false;
    return true;
}

static void on_alloc(hm_heap *heap, void *p, size_t size, const char *file, int line,
                     bool no_abort) {
    hm_dbg_hdr_t *h = hdr_of(p);
    hm_tool_access(h, sizeof *h); /* allocator metadata, outside the user block */
    if (h->state == DBG_FREED) {
        /* the slot's previous block: its fill must be intact past the free-list link. Never
         * trust its size past the slot (an underrun may have written the header). */
        size_t limit = h->size;
        hm_segment_t *seg;
        hm_page_t *pg;
        if (_hm_block_lookup(p, &seg, &pg) == HM_OK && !pg->is_huge) {
            size_t room = pg->block_size - HM_DEBUG_HEADER - sizeof(uint64_t);
            if (limit > room) limit = room;
        } else {
            limit = 0;
        }
        hm_tool_access(p, limit);
        const uint8_t *u = p;
        if ((h->flags & DBG_CHECKED) && limit > DBG_CHECKED_FILL) limit = DBG_CHECKED_FILL;
        if (!fill_intact(u, limit)) {
            report_block(heap->mgr, HM_ERROR_WRITE_AFTER_FREE, p, h);
            if (!no_abort) abort(); /* the malloc-style doors stop here; COM goes on */
        }
    }
    if (tls_tid == 0) tls_tid = (uint32_t)syscall(SYS_gettid);
    h->file = file != NULL ? intern_name(file) : NULL;
    h->line = (uint32_t)line;
    h->size = size;
    bool checked_block = file == NULL && heap->checked;
    /* DebugAlloc blocks are numbered process-wide; checked blocks per thread (no shared
     * counter on every allocation of a checked heap) */
    h->seq = checked_block ? ++tls_seq
                           : atomic_fetch_add_explicit(&dbg_seq, 1, memory_order_relaxed) + 1;
    h->tid = tls_tid;
    h->flags = checked_block ? DBG_CHECKED : 0;
    uint64_t c = canary_of(p);
    h->canary = c;
    hm_tool_access((uint8_t *)p + size, sizeof c);
    memcpy((uint8_t *)p + size, &c, sizeof c); /* byte-precise: right after the last byte */
    h->state = DBG_LIVE;
}

/* The calling thread's sub-heap for a debug or checked allocation at *level (the door's bits
 * taken off, clamped, counted); NULL (errno ENOMEM) when there is none. */
static hm_theap_t *debug_theap(hm_heap *heap, int *level) {
    hm_theap_t *th = _hm_theap_get(heap);
    if (th == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    int l = *level & ~HM_LEVEL_NO_ABORT;
    if ((unsigned)l > eProcessCritical) l = eProcessCritical;
    th->requests[l]++;
    *level = l;
    return th;
}

void *_hm_debug_alloc(hm_heap *heap, size_t size, int level, const char *file, int line) {
    bool no_abort = (level & HM_LEVEL_NO_ABORT) != 0;
    pthread_once(&dbg_once, dbg_init);
    hm_theap_t *th = debug_theap(heap, &level);
    if (th == NULL) return NULL;
    if (size > HM_MAX_ALLOC - HM_DEBUG_HEADER - 64) {
        th->failures[level]++;
        errno = ENOMEM;
        return NULL;
    }
    size_t slot = HM_DEBUG_HEADER + size + sizeof(uint64_t);
    void *p;
    if (slot <= HM_DEBUG_SLOT_MAX) {
        p = _hm_page_alloc_queue(th, HM_QUEUE_DEBUG + _hm_bin_of(slot), level);
    } else {
        /* a huge debug block: the header at the start of the block area */
        hm_segment_t *seg = _hm_huge_alloc(th, slot, HM_ALIGN, level);
        p = NULL;
        if (seg != NULL) {
            hm_page_t *pg = &seg->pages[0];
            pg->start += HM_DEBUG_HEADER;
            pg->is_debug = 1;
            seg->huge_size -= HM_DEBUG_HEADER;
            p = pg->start;
        }
    }
    if (p == NULL) {
        th->failures[level]++;
        errno = ENOMEM;
        return NULL;
    }
    if (file != NULL && !atomic_load_explicit(&heap->had_debug, memory_order_relaxed))
        atomic_store_explicit(&heap->had_debug, true, memory_order_relaxed);
    on_alloc(heap, p, size, file, line, no_abort);
    hm_tool_alloc(p, size);
    return p;
}

void *hm_alloc_debug(hm_heap *heap, size_t size, EMemoryCriticalLevel level, const char *file,
                     int line) {
    return _hm_debug_alloc(heap, size, (int)level, file != NULL ? file : "(unknown file)", line);
}

void _hm_debug_forget(const hm_page_t *pg, uint8_t *p, size_t n) {
    size_t stride = pg->block_size;
    for (size_t i = 0; i < n; i++, p += stride) {
        hm_dbg_hdr_t *h = hdr_of(p);
        hm_tool_access(h, sizeof *h);
        h->state = 0;
    }
}

void _hm_checked_carve(const hm_page_t *pg, uint8_t *p, size_t n, hm_block_t *last_next) {
    size_t stride = pg->block_size;
    for (size_t i = 0; i < n; i++, p += stride) {
        hm_tool_access(p - HM_CHECKED_HEADER, HM_CHECKED_HEADER + HM_CHECKED_FILL);
        _hm_chk_make_freed(p, i + 1 < n ? (hm_block_t *)(p + stride) : last_next);
        hm_tool_hide(p - HM_CHECKED_HEADER, HM_CHECKED_HEADER + HM_CHECKED_FILL);
    }
}

bool _hm_debug_double_free_huge(const void *p) {
    if (!_hm_segmap_has((uintptr_t)p)) return false;
    hm_segment_t *seg = (hm_segment_t *)((uintptr_t)p & ~HM_SEGMENT_MASK);
    if (seg->kind != HM_SEG_HUGE || !seg->quarantined || seg->pages[0].start != p) return false;
    hm_dbg_hdr_t *h = hdr_of(p);
    hm_tool_access(h, sizeof *h);
    report_block(seg->mgr, HM_ERROR_DOUBLE_FREE, p, h);
    return true;
}

size_t _hm_debug_size(const hm_page_t *pg, const void *p) {
    if (pg->is_debug == HM_PAGE_CHECKED) {
        /* never past the slot, even when an underrun wrote the size */
        size_t n = _hm_chk_hdr(p)->size, room = pg->block_size - HM_CHECKED_EXTRA;
        return n < room ? n : room;
    }
    return hdr_of(p)->size;
}

/* The 8 bytes right after a block's `size` requested bytes: still its canary `c`? */
static bool back_canary_intact(const void *b, size_t size, uint64_t c) {
    uint64_t back;
    hm_tool_access((const uint8_t *)b + size, sizeof back);
    memcpy(&back, (const uint8_t *)b + size, sizeof back);
    return back == c;
}

/* ---- checked blocks ------------------------------------------------------------------------ */
void *_hm_checked_alloc(hm_heap *heap, size_t size, int level) {
    void *p = _hm_checked_alloc_try(heap, size, level);
    return hm_likely(p != NULL) ? p : _hm_checked_alloc_slow(heap, size, level);
}

void _hm_checked_bad_link(hm_page_t *pg, hm_block_t *b) {
    hm_segment_t *seg = (hm_segment_t *)((uintptr_t)pg & ~HM_SEGMENT_MASK);
    hm_chk_hdr_t *h = _hm_chk_hdr(b);
    hm_tool_access(h, sizeof *h);
    report_checked(seg->mgr, HM_ERROR_WRITE_AFTER_FREE, pg, b, h);
    hm_tool_access(b, 2 * sizeof *b);
    _hm_chk_set_link((uint8_t *)b, NULL);
}

bool _hm_checked_on_alloc(hm_theap_t *th, hm_page_t *pg, void *p, size_t size, bool no_abort) {
    hm_chk_hdr_t *h = _hm_chk_hdr(p);
    uint64_t c = _hm_chk_canary(p);
    hm_tool_access(h, sizeof *h);
    uint32_t tag = h->tag;
    /* the slot's previous block: its link (now pg->free) against its check word, its state
     * and its fill */
    hm_tool_access(p, HM_CHECKED_FILL);
    bool usable = tag == HM_CHK_FREED(c); /* a freed block (slots are carved freed) */
    bool bad = !usable || !_hm_chk_link_intact(p, pg->free) || !_hm_chk_fill_ok(p);
    if (bad) pg->free = NULL; /* never follow it: the blocks past it are lost */
    if (bad) {
        report_checked(th->heap->mgr, HM_ERROR_WRITE_AFTER_FREE, pg, p, h);
        if (!no_abort) abort(); /* the malloc-style doors stop here; COM goes on */
    }
    if (!usable) {
        /* live or quarantined (a damaged link led here), or no state at all: not ours to
         * hand out. Its owner keeps it; the page no longer counts it as handed out twice. */
        pg->used--;
        return false;
    }
    uint64_t who = th->checked_who + 1;
    if ((uint32_t)who == 0) who = who - ((uint64_t)1 << 32) + 1; /* wrapped: keep the thread */
    th->checked_who = who;
    h->seq = (uint32_t)who;
    h->tid = (uint32_t)(who >> 32);
    h->size = (uint32_t)size;
    h->tag = HM_CHK_LIVE(c, size);
    hm_tool_access((uint8_t *)p + size, sizeof c);
    memcpy((uint8_t *)p + size, &c, sizeof c); /* byte-precise: right after the last byte */
    return true;
}

void *_hm_checked_alloc_slow(hm_heap *heap, size_t size, int level) {
    bool no_abort = (level & HM_LEVEL_NO_ABORT) != 0;
    if (size > HM_CHECKED_MAX) return _hm_debug_alloc(heap, size, level, NULL, 0); /* huge */
    hm_theap_t *th = debug_theap(heap, &level);
    if (th == NULL) return NULL;
    size_t slot =
        size + HM_CHECKED_EXTRA < HM_CHECKED_MIN ? HM_CHECKED_MIN : size + HM_CHECKED_EXTRA;
    /* a block that may not be handed out cuts its list: the next try finds another */
    for (int tries = 0; tries < 64; tries++) {
        void *p = _hm_page_alloc_queue(th, HM_QUEUE_CHECKED + _hm_bin_of(slot), level);
        if (p == NULL) break;
        hm_segment_t *seg = (hm_segment_t *)((uintptr_t)p & ~HM_SEGMENT_MASK);
        if (_hm_checked_on_alloc(th, _hm_page_of(seg, p), p, size, no_abort)) {
            hm_tool_alloc(p, size);
            return p;
        }
    }
    th->failures[level]++;
    errno = ENOMEM;
    return NULL;
}

hm_result _hm_checked_free_check(hm_page_t *pg, hm_block_t *b) {
    hm_chk_hdr_t *h = _hm_chk_hdr(b);
    hm_segment_t *seg = (hm_segment_t *)((uintptr_t)pg & ~HM_SEGMENT_MASK);
    uint64_t c = _hm_chk_canary(b);
    hm_tool_access(h, sizeof *h);
    uint32_t tag = h->tag;
    int err = 0;
    if (tag == HM_CHK_FREED(c) || tag == HM_CHK_QUAR(c)) {
        err = HM_ERROR_DOUBLE_FREE;
    } else if (tag != HM_CHK_LIVE(c, h->size) || h->size > pg->block_size - HM_CHECKED_EXTRA) {
        err = HM_ERROR_UNDERRUN;
    } else if (!back_canary_intact(b, h->size, c)) {
        err = HM_ERROR_OVERRUN;
    }
    if (err != 0) {
        report_checked(seg->mgr, err, pg, b, h);
        if (tag != HM_CHK_FREED(c)) h->tag = HM_CHK_QUAR(c); /* never reused */
        return HM_ERR_NOT_BLOCK;
    }
    h->tag = HM_CHK_FREED(c);
    hm_tool_access(b, HM_CHECKED_FILL);
    _hm_chk_fill((uint8_t *)b);
    return HM_OK;
}

/* ---- free ----------------------------------------------------------------------------------- */
hm_result _hm_debug_free_check(hm_page_t *pg, hm_block_t *b) {
    if (pg->is_debug == HM_PAGE_CHECKED) return _hm_checked_free_check(pg, b);
    hm_dbg_hdr_t *h = hdr_of(b);
    hm_segment_t *seg = (hm_segment_t *)((uintptr_t)pg & ~HM_SEGMENT_MASK);
    const hm_manager *mgr = seg->mgr;
    int err = 0;
    uint64_t c = canary_of(b);
    if (h->state == DBG_FREED || h->state == DBG_QUARANTINED) {
        err = HM_ERROR_DOUBLE_FREE;
    } else if (h->state != DBG_LIVE || h->canary != c) {
        err = HM_ERROR_UNDERRUN;
    } else if (!back_canary_intact(b, h->size, c)) {
        err = HM_ERROR_OVERRUN;
    }
    if (err != 0) {
        report_block(mgr, err, b, h);
        if (err != HM_ERROR_DOUBLE_FREE || h->state != DBG_FREED) h->state = DBG_QUARANTINED;
        return HM_ERR_NOT_BLOCK;
    }
    h->state = DBG_FREED;
    size_t fill = h->size;
    if ((h->flags & DBG_CHECKED) && fill > DBG_CHECKED_FILL) fill = DBG_CHECKED_FILL;
    if (fill > sizeof(hm_block_t))
        memset((uint8_t *)b + sizeof(hm_block_t), DBG_FILL, fill - sizeof(hm_block_t));
    return HM_OK;
}

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
    mark(freemap, pg,
         (const hm_block_t *)(atomic_load_explicit(&pg->thread_free, memory_order_acquire) &
                              ~HM_TF_MASK));
    for (size_t i = 0; i < pg->capacity && !w->stop; i++) {
        uint8_t *p = pg->start + i * pg->block_size;
        if (pg->is_debug == HM_PAGE_CHECKED) {
            const hm_chk_hdr_t *h = _hm_chk_hdr(p);
            hm_tool_access(h, sizeof *h);
            if (h->tag == HM_CHK_LIVE(_hm_chk_canary(p), h->size)) {
                hm_block_info_t info = {p, h->size, NULL, 0, h->seq, false};
                visit(w, &info);
            }
        } else if (pg->is_debug) {
            const hm_dbg_hdr_t *h = hdr_of(p);
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
        for (int k = 0; k < 2; k++) {
            for (hm_segment_t *seg = th->segs[k]; seg != NULL && !w->stop; seg = seg->next) {
                for (size_t i = 0; i < seg->page_count; i++) {
                    hm_page_t *pg = &seg->pages[i];
                    if (pg->block_size != 0) walk_page(w, pg);
                }
            }
        }
    }
    for (hm_segment_t *seg = heap->huge; seg != NULL && !w->stop; seg = seg->next) {
        hm_page_t *pg = &seg->pages[0];
        if (pg->is_debug) {
            const hm_dbg_hdr_t *h = hdr_of(pg->start);
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

static void emit_line(const hm_manager *mgr, FILE *out, const char *line) {
    if (out != NULL)
        fputs(line, out);
    else
        _hm_report(mgr, HM_ERROR_LEAK, NULL, line);
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
        emit_line(heap->mgr, out, line);
        for (size_t i = 0; i < l.nsites; i++) {
            _hm_snprintf(line, sizeof line, "  %s%s:%d: %zu blocks, %zu bytes\n",
                         name_prefix(l.sites[i].file), name_tail(l.sites[i].file), l.sites[i].line,
                         l.sites[i].count, l.sites[i].bytes);
            emit_line(heap->mgr, out, line);
        }
        if (l.other.count != 0) {
            _hm_snprintf(line, sizeof line, "  (other sites): %zu blocks, %zu bytes\n",
                         l.other.count, l.other.bytes);
            emit_line(heap->mgr, out, line);
        }
    }
    pthread_mutex_unlock(&report_lock);
    return found;
}
