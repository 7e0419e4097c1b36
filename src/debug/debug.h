/* SPDX-License-Identifier: MIT */
/* debug/debug.h: the debug layer's one header: DebugAlloc blocks (debug.c), checked mode
 * (checked.h, checked.c), walks and leak reports (walk.c). Below: mem, through mem/mem.h. The
 * layer plugs its block formats into pages as page kinds (mem/page.h), reached only from paths
 * that are already slow. */
#ifndef HM_DEBUG_DEBUG_H
#define HM_DEBUG_DEBUG_H

#include "debug/checked.h"

/* ---- debug.c ------------------------------------------------------------------------------- */
#define HM_DEBUG_HEADER 48          /* bytes of the header in front of every debug block */
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

/* Huge blocks (DebugAlloc, and checked mode's, which have this header too) are not filled
 * when freed: their pages are inaccessible while they are held (segment.c). */

/* Start the layer (once): the secret of the canaries, the page kinds. Every entry point that
 * can make a debug or checked page calls it first. */
void _hm_debug_init(void);
/* A debug block of `size` bytes (file may be NULL: a huge checked block): DebugAlloc, and the
 * huge blocks of a checked heap. `level` may carry HM_LEVEL_NO_ABORT (a write after free found
 * is then reported only). NULL (errno ENOMEM) when it cannot be served. */
void *_hm_debug_alloc(hm_heap *heap, size_t size, int level, const char *file, int line);
/* The calling thread's sub-heap for a debug or checked allocation at *level (the door's bits
 * taken off, clamped, counted); NULL (errno ENOMEM) when there is none. */
hm_theap_t *_hm_debug_theap(hm_heap *heap, int *level);
uint64_t _hm_debug_canary(const void *p);
/* The canaries' secret made from `seed`: always odd (see debug.c), so the first byte of every
 * back canary, of a checked block (_hm_chk_canary) or of a debug one (_hm_debug_canary), is
 * never 0. */
uint64_t _hm_debug_secret_of(uint64_t seed);
hm_dbg_hdr_t *_hm_debug_hdr(const void *p);
/* The 8 bytes right after a block's `size` requested bytes: still its canary `c`? */
hm_inline bool _hm_debug_back_intact(const void *b, size_t size, uint64_t c) {
    uint64_t back;
    hm_tool_access((const uint8_t *)b + size, sizeof back);
    __builtin_memcpy(&back, (const uint8_t *)b + size, sizeof back);
    return back == c;
}
/* Report misuse of debug block `p` (header `h`) to the arena's error sink. */
void _hm_debug_report(const hm_arena_t *a, int kind, const void *p, const hm_dbg_hdr_t *h);
/* The same, the mistake named `what` (not the kind's name). */
void _hm_debug_report_as(const hm_arena_t *a, int kind, const char *what, const void *p,
                         const hm_dbg_hdr_t *h);
/* "<call> of a freed block" in buf (cap bytes), returned: what a report of a freed block given
 * to a call that needs a live one names. */
const char *_hm_debug_freed_what(char *buf, size_t cap, const char *call);
/* What a report calls an HM_ERROR_* kind. */
const char *_hm_debug_kind_name(int kind);
/* File names in report lines are cut to their last 300 bytes after a "..." prefix, so that
 * every line fits its 512-byte buffer whole. */
const char *_hm_debug_name_prefix(const char *name);
const char *_hm_debug_name_tail(const char *name);

#endif /* HM_DEBUG_DEBUG_H */
