/* SPDX-License-Identifier: MIT */
/* debug/debug.c: DebugAlloc blocks (the debug page kind), their reports, and the layer's start.
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
 * arena's error sink and leaves the block alone (quarantined: never reused, and a second free
 * is an error too). A good free marks the header freed and fills the user bytes past the
 * free-list link with 0xDF; the next allocation of that slot checks the fill (write after free).
 * Debug pages carry HM_USED_SLOW, so these checks cost nothing to normal blocks; the page code
 * reaches them through the page kind registered here (mem/page.h).
 *
 * Everything here runs on slow paths and never allocates: reports are formatted on the stack. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "debug/debug.h"

static _Atomic(uint64_t) dbg_seq;
static __thread uint64_t tls_seq __attribute__((tls_model("initial-exec")));
uint64_t _hm_debug_secret;
static pthread_once_t dbg_once = PTHREAD_ONCE_INIT;
static __thread uint32_t tls_tid __attribute__((tls_model("initial-exec")));

uint64_t _hm_debug_canary(const void *p) {
    return _hm_debug_secret ^ ((uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ULL);
}

hm_dbg_hdr_t *_hm_debug_hdr(const void *p) {
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
const char *_hm_debug_name_prefix(const char *name) {
    return name != NULL && strnlen(name, NAME_MAX_SHOWN + 1) > NAME_MAX_SHOWN ? "..." : "";
}
const char *_hm_debug_name_tail(const char *name) {
    if (name == NULL) return "(unknown)";
    size_t len = strlen(name); /* interned copies are at most 512 bytes */
    return len > NAME_MAX_SHOWN ? name + len - NAME_MAX_SHOWN : name;
}

const char *_hm_debug_kind_name(int kind) {
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

void _hm_debug_report_as(const hm_arena_t *a, int kind, const char *what, const void *p,
                         const hm_dbg_hdr_t *h) {
    char msg[512];
    if (h->file != NULL)
        _hm_snprintf(msg, sizeof msg,
                     "hostmalloc: %s: block %p of %zu bytes, allocated at %s%s:%d (#%zu, thread "
                     "%d)\n",
                     what, p, h->size, _hm_debug_name_prefix(h->file), _hm_debug_name_tail(h->file),
                     (int)h->line, (size_t)h->seq, (int)h->tid);
    else
        _hm_snprintf(msg, sizeof msg,
                     "hostmalloc: %s: block %p of %zu bytes (allocation #%zu, thread %d)\n", what,
                     p, h->size, (size_t)h->seq, (int)h->tid);
    _hm_report(&a->cfg, kind, p, msg);
}

void _hm_debug_report(const hm_arena_t *a, int kind, const void *p, const hm_dbg_hdr_t *h) {
    _hm_debug_report_as(a, kind, _hm_debug_kind_name(kind), p, h);
}

/* "<call> of a freed block", for reports of a freed block given to a call that needs a live
 * one (on the stack of the caller: `buf` of `cap` bytes). */
const char *_hm_debug_freed_what(char *buf, size_t cap, const char *call) {
    _hm_snprintf(buf, cap, "%s of a freed block", call);
    return buf;
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
    hm_dbg_hdr_t *h = _hm_debug_hdr(p);
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
        if (!fill_intact(u, limit)) {
            _hm_debug_report(heap->arena, HM_ERROR_WRITE_AFTER_FREE, p, h);
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
    uint64_t c = _hm_debug_canary(p);
    h->canary = c;
    /* the free-list link a freed slot held: a heap address a program that reads memory it
     * never wrote would see (the slot has 8 bytes past the user bytes: the canary, below) */
    hm_tool_access(p, sizeof(hm_block_t));
    memset(p, 0, sizeof(hm_block_t));
    hm_tool_access((uint8_t *)p + size, sizeof c);
    memcpy((uint8_t *)p + size, &c, sizeof c); /* byte-precise: right after the last byte */
    h->state = DBG_LIVE;
}

/* The calling thread's sub-heap for a debug or checked allocation at *level (the door's bits
 * taken off, clamped, counted); NULL (errno ENOMEM) when there is none. */
hm_theap_t *_hm_debug_theap(hm_heap *heap, int *level) {
    hm_theap_t *th = _hm_theap_get(heap);
    if (th == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    int l = _hm_level_index(*level & ~HM_LEVEL_NO_ABORT);
    th->requests[l]++;
    *level = l;
    return th;
}

void *_hm_debug_alloc(hm_heap *heap, size_t size, int level, const char *file, int line) {
    bool no_abort = (level & HM_LEVEL_NO_ABORT) != 0;
    _hm_debug_init();
    hm_theap_t *th = _hm_debug_theap(heap, &level);
    if (th == NULL) return NULL;
    if (size > HM_MAX_ALLOC - HM_DEBUG_HEADER - 64) {
        th->failures[level]++;
        errno = ENOMEM;
        return NULL;
    }
    size_t slot = HM_DEBUG_HEADER + size + sizeof(uint64_t);
    void *p;
    if (slot <= HM_DEBUG_SLOT_MAX) {
        p = _hm_theap_alloc_block(th, HM_QUEUE_DEBUG + _hm_bin_of(slot), level);
    } else {
        /* a huge debug block: placed in its first pages so that its back canary ends where
         * its segment's guard page begins (within the 16 bytes of alignment), header in front;
         * a linear overrun runs through the canary into the guard page and faults at once */
        size_t body = (slot + 15 + HM_OS_PAGE - 1) & ~(size_t)(HM_OS_PAGE - 1);
        hm_segment_t *seg = _hm_theap_alloc_huge_guarded(th, body, level);
        p = NULL;
        if (seg != NULL) {
            hm_page_t *pg = &seg->pages[0];
            uint8_t *guard = pg->start + seg->huge_size; /* body, or more (segment.c) */
            p = (uint8_t *)((uintptr_t)(guard - sizeof(uint64_t) - size) & ~(uintptr_t)15);
            pg->start = p;
            pg->kind = HM_PAGE_DEBUG;
            seg->huge_size = (size_t)(guard - (uint8_t *)p);
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

/* ---- the debug page kind (page.h) ------------------------------------------------------------ */
/* New slots: the headers a previous life of this memory left behind are forgotten, and the
 * slots are linked plainly (no free mark: the header's state says freed or live). */
static void debug_carve(hm_page_t *pg, uint8_t *p, size_t n, hm_block_t *last_next) {
    size_t stride = pg->block_size;
    for (size_t i = 0; i < n; i++, p += stride) {
        hm_dbg_hdr_t *h = _hm_debug_hdr(p);
        hm_tool_access(h, sizeof *h);
        h->state = 0;
        ((hm_block_t *)p)->next = i + 1 < n ? (hm_block_t *)(p + stride) : last_next;
    }
}

static size_t debug_size(const hm_page_t *pg, const void *p) {
    (void)pg;
    return _hm_debug_hdr(p)->size;
}

/* The header of debug block p: of a held huge block, the copy its free left in the segment's
 * note (the block's own pages are inaccessible or decommitted while it waits). */
static const hm_dbg_hdr_t *debug_hdr_of(const hm_segment_t *seg, const void *p) {
    _Static_assert(sizeof(hm_dbg_hdr_t) <= HM_SEGMENT_NOTE, "a debug header fits the note");
    if (seg->held) return (const hm_dbg_hdr_t *)_hm_segment_note(seg);
    hm_dbg_hdr_t *h = _hm_debug_hdr(p);
    hm_tool_access(h, sizeof *h);
    return h;
}

/* A second free of a held huge debug block: the copy of its header names it. */
static void debug_double_free_held(const hm_segment_t *seg, const void *p) {
    _hm_debug_report(seg->arena, HM_ERROR_DOUBLE_FREE, p, debug_hdr_of(seg, p));
}

static bool debug_freed(const hm_segment_t *seg, const hm_page_t *pg, const void *p,
                        const char *call) {
    (void)pg;
    const hm_dbg_hdr_t *h = debug_hdr_of(seg, p);
    if (h->state != DBG_FREED && h->state != DBG_QUARANTINED) return false;
    if (call != NULL) {
        char what[96];
        _hm_debug_report_as(seg->arena, HM_ERROR_BAD_POINTER,
                            _hm_debug_freed_what(what, sizeof what, call), p, h);
    }
    return true;
}

/* ---- free of a debug block
 * ----------------------------------------------------------------------------------- */
static hm_result debug_free(hm_page_t *pg, hm_block_t *b, bool link) {
    hm_dbg_hdr_t *h = _hm_debug_hdr(b);
    hm_segment_t *seg = _hm_segment_of(pg);
    const hm_arena_t *a = seg->arena;
    int err = 0;
    uint64_t c = _hm_debug_canary(b);
    if (h->state == DBG_FREED || h->state == DBG_QUARANTINED) {
        err = HM_ERROR_DOUBLE_FREE;
    } else if (h->state != DBG_LIVE || h->canary != c) {
        err = HM_ERROR_UNDERRUN;
    } else if (!_hm_debug_back_intact(b, h->size, c)) {
        err = HM_ERROR_OVERRUN;
    }
    if (err != 0) {
        _hm_debug_report(a, err, b, h);
        if (err != HM_ERROR_DOUBLE_FREE || h->state != DBG_FREED) h->state = DBG_QUARANTINED;
        return HM_ERR_NOT_BLOCK;
    }
    h->state = DBG_FREED;
    /* a huge block is held next, its pages inaccessible: what a second free reads is kept in
     * the segment's header page */
    if (pg->is_huge) memcpy(_hm_segment_note(seg), h, sizeof *h);
    size_t fill = pg->is_huge ? 0 : h->size; /* a huge block's pages fault instead */
    if (fill > sizeof(hm_block_t))
        memset((uint8_t *)b + sizeof(hm_block_t), DBG_FILL, fill - sizeof(hm_block_t));
    hm_tool_free(b);
    if (link) {
        hm_tool_access(b, sizeof(hm_block_t));
        b->next = pg->free; /* a plain link: the header's state says freed */
        hm_tool_hide(b, sizeof(hm_block_t));
    }
    return HM_OK;
}

static const hm_page_kind_t debug_kind = {
    .header = HM_DEBUG_HEADER,
    .protect_held = true,
    .carve = debug_carve,
    .free = debug_free,
    .size = debug_size,
    .double_free_held = debug_double_free_held,
    .freed = debug_freed,
};

uint64_t _hm_debug_secret_of(uint64_t seed) {
    uint64_t x = seed;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ULL;
    /* bit 0 set: blocks are 16-byte aligned, so every canary's first byte (the secret's low
     * byte xor a multiple of 16) is then odd, never 0, and a '\0' written one past the end
     * always changes it */
    return (x ^ (x >> 29) ^ 0xA5A5A5A5A5A5A5A5ULL) | 1u;
}

static void debug_init(void) {
    _hm_debug_secret = _hm_debug_secret_of((uint64_t)(uintptr_t)&_hm_debug_secret ^
                                           ((uint64_t)_hm_clock_ms() << 32) ^
                                           (uint64_t)getpid() * 0x9E3779B97F4A7C15ULL);
    _hm_page_kind_set(HM_PAGE_DEBUG, &debug_kind);
    _hm_checked_register();
}

void _hm_debug_init(void) {
    pthread_once(&dbg_once, debug_init);
}
