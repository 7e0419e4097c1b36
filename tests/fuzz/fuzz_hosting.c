/* SPDX-License-Identifier: MIT */
/* fuzz_hosting.c: a libFuzzer harness for the COM door (docs/RELIABILITY.md, "Fuzzing").
 *
 * The input is a program: a stream of operations on up to two managers (IHostMemoryManager,
 * each with a budget, reserves, checked mode and fault injection read from the input) and up
 * to four IHostMalloc instances per manager. The harness keeps a model of everything it was
 * handed (live blocks with their size and fill pattern, quarantined debug blocks, VirtualAlloc
 * regions page by page, reference counts, expected fault injections) and checks the contract of
 * docs/API.md, docs/MEMORY-MANAGER.md and docs/DEBUG.md (each call's answer at once; what needs a
 * whole heap or manager read at the points named below):
 *
 *   - results and out-parameters of every call (exact HRESULTs, *pp NULL on failure);
 *   - Alloc/DebugAlloc: S_OK, 16-byte aligned, writable, of this instance (hm_heap_of), or
 *     E_OUTOFMEMORY with *ppMem NULL, which is only allowed when the budget (or a predicted
 *     fault injection) can explain it;
 *   - Free of live blocks (S_OK), of foreign, interior, stale and quarantined pointers
 *     (HOST_E_INVALIDOPERATION, and nothing changes: payloads and statistics stay put);
 *     double frees of any block in any order (refused, reported while the slot is the heap's);
 *   - VirtualFree of released regions in any order (HOST_E_INVALIDOPERATION, nothing changed);
 *   - Virtual* below 64 KiB, beyond 2^47 and with sizes that wrap: E_INVALIDARG (VirtualFree
 *     below 64 KiB: HOST_E_INVALIDOPERATION, not an address of the manager), nothing changed;
 *   - canary damage (overrun, underrun) is reported through on_error with the right kind;
 *   - the payload patterns of live blocks (the ends of a few after every operation, all of a
 *     block before its Free, all of an instance's before its Release and a walk);
 *   - hm_manager_stats (committed <= limit, heaps, virtual reserved/committed, injected faults,
 *     request counts) and hm_heap_stats against the model: every STATS_CHECK_EVERY operations,
 *     at the end of an input, and a heap's before its instance's Release; GetMemoryLoad;
 *   - hm_heap_walk against the model: block by block on op_walk, the count at the first Release
 *     of an input (a walk reads every slot of every page);
 *   - VirtualQuery against the page model (state, protection, run length), page contents
 *     (zero after a fresh commit, kept while committed; a sample of a commit's pages written).
 *
 * Per input, everything is new (managers, instances, the model), so an input gives the same
 * result whatever ran before it; what keeps an input cheap is in docs/RELIABILITY.md.
 *
 * Input format: bytes are read in order; an exhausted input reads as zeros and ends the
 * program. The first bytes configure manager 0; then each operation is one opcode byte
 * followed by its arguments (see run_op). tests/fuzz/make_corpus.py writes the seeds. */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostmalloc/hosting.h"
#include "hostmalloc/hostmalloc.h"

/* ---- failing ---------------------------------------------------------------------------- */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_hosting: %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* ---- input ------------------------------------------------------------------------------- */
typedef struct {
    const uint8_t *p;
    size_t n, i;
} input_t;

static uint8_t in_u8(input_t *in) {
    return in->i < in->n ? in->p[in->i++] : 0;
}
static uint16_t in_u16(input_t *in) {
    uint16_t a = in_u8(in);
    return (uint16_t)(a | (uint16_t)in_u8(in) << 8);
}
static uint64_t in_u64(input_t *in) {
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)in_u8(in) << (8 * k);
    return v;
}

/* ---- the model ---------------------------------------------------------------------------- */
#define MAX_MGRS    2
#define MAX_INST    4
#define MAX_BLOCKS  256
#define MAX_STALE   16
#define MAX_QUAR    16
#define MAX_REGIONS 6
#define MAX_FREED   8   /* released regions remembered for double frees */
#define MAX_PAGES   256 /* a region is at most 1 MiB */
#define VPAGE       4096u
#define GRANULE     65536u
#define MiB         ((size_t)1 << 20)

typedef struct {
    uint8_t *p;
    size_t size;
    uint32_t seed;
    bool debug;     /* DebugAlloc or a checked heap: double frees and canaries are detected */
    bool dbg_alloc; /* from DebugAlloc (counts in leak reports) */
} block_t;

typedef struct {
    IHostMalloc *com; /* NULL: empty slot */
    uint32_t refs;
    DWORD flags;
    hm_heap *heap; /* from hm_heap_of of its first block */
    block_t blocks[MAX_BLOCKS];
    size_t nblocks;
    void *stale[MAX_STALE]; /* freed debug blocks, with no allocation in this heap since */
    size_t nstale;
    void *quar[MAX_QUAR]; /* quarantined debug blocks (bad free): never reused */
    size_t nquar;
} inst_t;

typedef struct {
    uint8_t *base; /* NULL: empty slot */
    size_t size;
    uint32_t aprot;
    uint8_t prot[MAX_PAGES]; /* 0: reserved; else committed with this PAGE_* protection */
    uint8_t tag[MAX_PAGES];  /* contents of the first 16 bytes: 0 zero, 255 unknown */
} region_t;

/* A COM callback object that counts notifications (refs touched by the notifier thread). */
typedef struct {
    ICLRMemoryNotificationCallback iface;
    _Atomic(uint32_t) refs;
    _Atomic(uint32_t) calls;
} callback_t;

typedef struct {
    IHostMemoryManager *com; /* NULL: empty slot */
    hm_manager *mgr;
    hm_config cfg;
    size_t ceiling[3];
    inst_t inst[MAX_INST];
    region_t regions[MAX_REGIONS];
    uint8_t *freed[MAX_FREED]; /* bases of released regions no region of this manager covers */
    size_t nfreed;
    uint64_t fault_count[3]; /* requests seen by hm_manager_fault, per level */
    uint64_t faults_expected[3];
    uint64_t requests_min[3]; /* requests that certainly count in the statistics */
    uint64_t requests_max[3]; /* ... and those that may */
    size_t reports[8];        /* on_error calls by kind (the harness's own sink) */
    bool cb_registered;
} mgr_t;

static mgr_t M[MAX_MGRS];
static callback_t CB[MAX_MGRS];
static uint32_t check_cursor;
static _Alignas(16) uint8_t static_buf[256];

/* ---- patterns ----------------------------------------------------------------------------- */
/* The pattern code and the model's checks are the harness's own bookkeeping: left out of the
 * coverage instrumentation (their branches tell libFuzzer nothing about the library, and a
 * comparison callback per byte was most of the time an input took). noinline as well: a
 * function inlined into an instrumented caller is instrumented with it. ASan still checks
 * their accesses. */
#if defined(__clang__) && __clang_major__ >= 13
#define NO_COVERAGE __attribute__((no_sanitize("coverage"), noinline))
#else
#define NO_COVERAGE __attribute__((noinline))
#endif

/* A block's byte i is PT[(seed + i) % PT_PERIOD]: a slice of pattern bytes is one memcpy from
 * the table (and one memcmp to check it) instead of a computed byte at a time. The table repeats
 * its first PT_SLICE bytes past the period, so no slice wraps; the period is prime, so it lines
 * up with no power-of-two stride or size. */
#define PT_PERIOD 65521u
#define PT_SLICE  4096u
static uint8_t PT[PT_PERIOD + PT_SLICE];

static void pattern_init(void) {
    uint64_t x = 0x9E3779B97F4A7C15ull; /* fixed: the same table in every run */
    for (size_t i = 0; i < PT_PERIOD; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        PT[i] = (uint8_t)(x >> 24);
    }
    memcpy(PT + PT_PERIOD, PT, PT_SLICE);
}

static const uint8_t *pat_at(uint32_t seed, size_t i) {
    return &PT[(seed % PT_PERIOD + i % PT_PERIOD) % PT_PERIOD];
}

/* The slices of a block that carry the pattern: all of the first 4 KiB and the last 256 bytes,
 * and 8 bytes every 4 KiB in between (every 64 KiB past 64 KiB, every MiB past 1 MiB), so that
 * big blocks cost few page faults: overlaps between blocks are checked by address anyway. */
#define FOR_PATTERN_SLICES(n, off, len, body)                                                      \
    do {                                                                                           \
        size_t n_ = (n), stride_ = n_ > MiB ? MiB : n_ > 65536 ? 65536 : 4096;                     \
        size_t head_ = n_ < PT_SLICE ? n_ : PT_SLICE;                                              \
        size_t tail_ = n_ > 4096 + 256 ? n_ - 256 : head_;                                         \
        size_t off, len;                                                                           \
        off = 0, len = head_;                                                                      \
        body;                                                                                      \
        for (size_t o_ = 4096; o_ + 8 <= n_; o_ += stride_) {                                      \
            off = o_, len = 8;                                                                     \
            body;                                                                                  \
        }                                                                                          \
        off = tail_, len = n_ - tail_;                                                             \
        body;                                                                                      \
    } while (0)

NO_COVERAGE static void fill(const block_t *b) {
    FOR_PATTERN_SLICES(b->size, off, len, memcpy(b->p + off, pat_at(b->seed, off), len));
}

static void __attribute__((noinline, cold))
bad_slice(const block_t *b, size_t off, size_t len, const char *when) {
    for (size_t i = off; i < off + len; i++)
        CHECK(b->p[i] == *pat_at(b->seed, i),
              "%s: block %p of %zu bytes: byte %zu is 0x%02x, expected 0x%02x", when, (void *)b->p,
              b->size, i, b->p[i], *pat_at(b->seed, i));
}

NO_COVERAGE static void check_slice(const block_t *b, size_t off, size_t len, const char *when) {
    if (len != 0 && memcmp(b->p + off, pat_at(b->seed, off), len) != 0)
        bad_slice(b, off, len, when);
}

/* Every pattern byte: before a Free, a Release, a walk, a canary change. */
NO_COVERAGE static void check_block(const block_t *b, const char *when) {
    FOR_PATTERN_SLICES(b->size, off, len, check_slice(b, off, len, when));
}

/* The first 256 and the last 64 bytes (where a free-list link, a mark or a neighbour's
 * overrun would land): after every operation, for a few blocks. A change anywhere else is
 * still found by the full check before the block's Free or its instance's Release. */
NO_COVERAGE static void check_block_ends(const block_t *b, const char *when) {
    size_t n = b->size, head = n < 256 ? n : 256;
    check_slice(b, 0, head, when);
    size_t tail = n > 4096 + 256 ? n - 64 : head;
    check_slice(b, tail, n - tail, when);
}

NO_COVERAGE static void check_all_blocks(const inst_t *in, const char *when) {
    for (size_t k = 0; k < in->nblocks; k++)
        check_block(&in->blocks[k], when);
}

/* ---- the error sink and the callback ------------------------------------------------------ */
static void on_error(int kind, const void *ptr, const char *message, void *arg) {
    (void)ptr;
    (void)message;
    mgr_t *m = arg;
    CHECK(kind >= 1 && kind <= 6, "on_error kind %d", kind);
    m->reports[kind]++;
}

static HRESULT STDMETHODCALLTYPE cb_qi(ICLRMemoryNotificationCallback *This, REFIID riid,
                                       void **ppv) {
    (void)riid;
    (void)This;
    if (ppv != NULL) *ppv = NULL;
    return E_NOINTERFACE;
}
static ULONG STDMETHODCALLTYPE cb_add_ref(ICLRMemoryNotificationCallback *This) {
    return atomic_fetch_add(&((callback_t *)This)->refs, 1) + 1;
}
static ULONG STDMETHODCALLTYPE cb_release(ICLRMemoryNotificationCallback *This) {
    uint32_t n = atomic_fetch_sub(&((callback_t *)This)->refs, 1) - 1;
    CHECK(n < 1000, "callback released too often");
    return n;
}
static HRESULT STDMETHODCALLTYPE cb_notify(ICLRMemoryNotificationCallback *This,
                                           EMemoryAvailable level) {
    CHECK(level >= eMemoryAvailableLow && level <= eMemoryAvailableHigh, "notification %d",
          (int)level);
    atomic_fetch_add(&((callback_t *)This)->calls, 1);
    return S_OK;
}
static const ICLRMemoryNotificationCallbackVtbl cb_vtbl = {cb_qi, cb_add_ref, cb_release,
                                                           cb_notify};

/* ---- the native manager behind an IHostMemoryManager --------------------------------------
 * The COM door has no accessor for it; the object is laid out as in src/com/manager.c (the
 * interface, the reference count, the hm_manager). The layout is verified when each manager
 * is made (its limit and heap count must be what was configured). */
typedef struct {
    IHostMemoryManager iface;
    _Atomic(uint32_t) refs;
    hm_manager *mgr;
} com_manager_layout_t;

static size_t ninst(const mgr_t *m) {
    size_t c = 0;
    for (int i = 0; i < MAX_INST; i++)
        c += m->inst[i].com != NULL;
    return c;
}

/* ---- statistics ----------------------------------------------------------------------------- */
NO_COVERAGE static size_t model_vm_reserved(const mgr_t *m) {
    size_t s = 0;
    for (int r = 0; r < MAX_REGIONS; r++)
        if (m->regions[r].base != NULL) s += m->regions[r].size;
    return s;
}
NO_COVERAGE static size_t model_vm_committed(const mgr_t *m) {
    size_t s = 0;
    for (int r = 0; r < MAX_REGIONS; r++) {
        const region_t *g = &m->regions[r];
        if (g->base == NULL) continue;
        for (size_t p = 0; p < g->size / VPAGE; p++)
            s += g->prot[p] != 0 ? VPAGE : 0;
    }
    return s;
}

static size_t committed_now(mgr_t *m) {
    hm_manager_stats_t s;
    hm_manager_stats(m->mgr, &s);
    return s.committed;
}

/* The heap of an instance must hold exactly the model's blocks (quarantined ones still count
 * as handed out: their free failed). */
NO_COVERAGE static void check_heap_model(const inst_t *in, const hm_heap_stats_t *hsp) {
    hm_heap_stats_t hs = *hsp;
    CHECK(hs.live_blocks == in->nblocks + in->nquar, "heap live_blocks %zu, model %zu + %zu",
          hs.live_blocks, in->nblocks, in->nquar);
    size_t bytes = 0;
    for (size_t k = 0; k < in->nblocks; k++)
        bytes += in->blocks[k].size;
    CHECK(hs.live_bytes >= bytes, "heap live_bytes %zu < requested %zu", hs.live_bytes, bytes);
    CHECK(hs.peak_committed >= hs.committed, "heap peak %zu < committed %zu", hs.peak_committed,
          hs.committed);
}

static void check_heap_stats(const mgr_t *m, const inst_t *in) {
    if (in->heap == NULL) return;
    hm_heap_stats_t hs;
    hm_heap_stats(in->heap, &hs);
    check_heap_model(in, &hs);
    (void)m;
}

/* The manager's statistics against the model, and each instance's heap statistics (which read
 * every page of the heap): every STATS_CHECK_EVERY operations and at the end of an input, and a
 * heap's before its instance's Release. In between, nothing is lost: what the model predicts
 * (virtual bytes, faults, request counts) is exact or a bound at any point, and the peak
 * catches a limit passed for a moment. */
#define STATS_CHECK_EVERY 8

NO_COVERAGE static void check_manager(mgr_t *m) {
    hm_manager_stats_t s;
    hm_manager_stats(m->mgr, &s);
    CHECK(s.limit == m->cfg.limit, "limit %zu, configured %zu", s.limit, m->cfg.limit);
    CHECK(s.committed <= s.limit, "committed %zu above the limit %zu", s.committed, s.limit);
    CHECK(s.peak_committed <= s.limit, "peak %zu above the limit %zu", s.peak_committed, s.limit);
    CHECK(s.peak_committed >= s.committed, "peak %zu < committed %zu", s.peak_committed,
          s.committed);
    CHECK(s.heaps == ninst(m), "heaps %zu, model %zu", s.heaps, ninst(m));
    CHECK(s.virtual_reserved == model_vm_reserved(m), "virtual_reserved %zu, model %zu",
          s.virtual_reserved, model_vm_reserved(m));
    CHECK(s.virtual_committed == model_vm_committed(m), "virtual_committed %zu, model %zu",
          s.virtual_committed, model_vm_committed(m));
    CHECK(s.virtual_committed <= s.committed, "virtual_committed %zu > committed %zu",
          s.virtual_committed, s.committed);
    size_t heaps_committed = 0;
    for (int l = 0; l < 3; l++) {
        CHECK(s.faults_injected[l] == m->faults_expected[l], "faults_injected[%d] %zu, model %llu",
              l, s.faults_injected[l], (unsigned long long)m->faults_expected[l]);
        CHECK(s.failures[l] >= s.faults_injected[l], "failures[%d] %zu < injected %zu", l,
              s.failures[l], s.faults_injected[l]);
        CHECK(s.requests[l] >= m->requests_min[l] && s.requests[l] <= m->requests_max[l],
              "requests[%d] %zu, model %llu..%llu", l, s.requests[l],
              (unsigned long long)m->requests_min[l], (unsigned long long)m->requests_max[l]);
    }
    for (int i = 0; i < MAX_INST; i++) {
        const inst_t *in = &m->inst[i];
        if (in->com == NULL || in->heap == NULL) continue;
        hm_heap_stats_t hs;
        hm_heap_stats(in->heap, &hs);
        heaps_committed += hs.committed;
        check_heap_model(in, &hs); /* one walk of the heap serves both checks */
    }
    CHECK(heaps_committed + s.virtual_committed <= s.committed,
          "heaps %zu + virtual %zu > manager committed %zu", heaps_committed, s.virtual_committed,
          s.committed);
}

/* After every operation: a few live blocks; every STATS_CHECK_EVERY operations, the statistics
 * of both managers and their heaps. */
NO_COVERAGE static void check_after_op(bool stats) {
    for (int mi = 0; mi < MAX_MGRS; mi++) {
        mgr_t *m = &M[mi];
        if (m->com == NULL) continue;
        if (stats) check_manager(m);
        for (int i = 0; i < MAX_INST; i++) {
            inst_t *in = &m->inst[i];
            if (in->com == NULL || in->nblocks == 0) continue; /* stats: check_manager */
            for (int k = 0; k < 2; k++)
                check_block_ends(&in->blocks[(check_cursor + (uint32_t)k * 7) % in->nblocks],
                                 "after an operation");
        }
    }
    check_cursor++;
}

/* ---- managers and instances ------------------------------------------------------------------ */
static void release_instance(mgr_t *m, inst_t *in);

static bool level_fault(mgr_t *m, int level) {
    m->fault_count[level]++;
    unsigned every = m->cfg.fault_every[level];
    bool f = every != 0 && m->fault_count[level] % every == 0;
    if (f) m->faults_expected[level]++;
    return f;
}

/* Certainly within the budget: the request itself, a fresh segment header and page, and the
 * debug header fit below the level's ceiling on top of what is committed now. */
static bool surely_fits(mgr_t *m, int level, size_t size) {
    size_t c = committed_now(m), need = 2 * size + 8 * MiB;
    return size < 256 * MiB && c <= m->ceiling[level] && need <= m->ceiling[level] - c;
}

static void new_manager(int mi, input_t *in) {
    mgr_t *m = &M[mi];
    uint8_t b0 = in_u8(in), b1 = in_u8(in);
    /* the defaults and the HM_* environment, read once (hm_config_init reads the environment
     * from /proc: a system call per manager otherwise) */
    static hm_config base;
    static bool have_base;
    if (!have_base) {
        hm_config_init(&base);
        have_base = true;
    }
    hm_config cfg = base;
    cfg.limit = (4 + (size_t)(b0 % 253)) * MiB;
    cfg.checked = (b1 & 1) != 0;
    cfg.purge_delay_ms = (b1 & 2) ? 0 : 10;
    cfg.process_wait_ms = 0; /* a refused process-critical request must not sleep */
    cfg.reserve_appdomain = 0;
    cfg.reserve_process = 0;
    if (b1 & 4) {
        cfg.reserve_appdomain = (in_u8(in) % 16) * (cfg.limit / 64);
        cfg.reserve_process = (in_u8(in) % 16) * (cfg.limit / 64);
    }
    for (int l = 0; l < 3; l++) {
        cfg.fault_every[l] = 0;
        cfg.fault_probability[l] = 0;
    }
    if (b1 & 8) {
        for (int l = 0; l < 3; l++)
            cfg.fault_every[l] = in_u8(in) % 16;
    }
    static const size_t caches[4] = {0, 4 * MiB, 32 * MiB, 8 * MiB};
    cfg.segment_cache = caches[(b1 >> 4) & 3];
    cfg.print_stats = false;
    cfg.stats_path = NULL;
    cfg.on_error = on_error;
    cfg.on_error_arg = m;

    memset(m, 0, sizeof *m);
    m->cfg = cfg;
    m->ceiling[eProcessCritical] = cfg.limit;
    m->ceiling[eAppDomainCritical] =
        cfg.limit > cfg.reserve_process ? cfg.limit - cfg.reserve_process : 0;
    m->ceiling[eTaskCritical] = m->ceiling[eAppDomainCritical] > cfg.reserve_appdomain
                                    ? m->ceiling[eAppDomainCritical] - cfg.reserve_appdomain
                                    : 0;
    IHostMemoryManager *com = (IHostMemoryManager *)(uintptr_t)1;
    HRESULT hr = hm_create_host_memory_manager(&cfg, &com);
    CHECK(hr == S_OK && com != NULL, "hm_create_host_memory_manager: 0x%08x", (unsigned)hr);
    m->com = com;
    m->mgr = ((com_manager_layout_t *)com)->mgr;
    CHECK(m->mgr != NULL && hm_manager_limit(m->mgr) == cfg.limit,
          "the IHostMemoryManager object is no longer laid out as src/com/manager.c says");
    callback_t *cb = &CB[mi];
    CHECK(atomic_load(&cb->refs) == 1, "callback of manager %d still referenced: %u", mi,
          (unsigned)atomic_load(&cb->refs));
}

static void destroy_manager(int mi, bool manager_first, uint8_t order) {
    mgr_t *m = &M[mi];
    if (m->com == NULL) return;
    check_manager(m);
    if (manager_first) {
        /* instances hold the manager: the host's Release leaves one reference per instance */
        ULONG n = IHostMemoryManager_Release(m->com);
        CHECK(n == ninst(m), "manager Release gave %u with %zu instances", (unsigned)n, ninst(m));
    }
    for (int k = 0; k < MAX_INST; k++) {
        inst_t *in = &m->inst[(k + order) % MAX_INST];
        if (in->com == NULL) continue;
        while (in->refs > 1) {
            ULONG n = IHostMalloc_Release(in->com);
            in->refs--;
            CHECK(n == in->refs, "Release gave %u, expected %u", (unsigned)n, in->refs);
        }
        release_instance(m, in);
    }
    if (!manager_first) {
        ULONG n = IHostMemoryManager_Release(m->com);
        CHECK(n == 0, "last manager Release gave %u", (unsigned)n);
    }
    /* the manager has let its callback go */
    CHECK(atomic_load(&CB[mi].refs) == 1, "callback refs %u after the manager went",
          (unsigned)atomic_load(&CB[mi].refs));
    memset(m, 0, sizeof *m);
}

static inst_t *pick_inst(mgr_t *m, uint8_t sel) {
    for (int k = 0; k < MAX_INST; k++) {
        inst_t *in = &m->inst[(sel + k) % MAX_INST];
        if (in->com != NULL) return in;
    }
    return NULL;
}

static void op_create_malloc(mgr_t *m, input_t *inp) {
    uint8_t b = in_u8(inp);
    int slot = -1;
    for (int k = 0; k < MAX_INST; k++)
        if (m->inst[k].com == NULL) {
            slot = k;
            break;
        }
    DWORD flags = b & 3;
    if ((b & 0xC0) == 0xC0) {
        /* unknown bits */
        IHostMalloc *p = (IHostMalloc *)(uintptr_t)1;
        DWORD bad = flags | (DWORD)(4u << (b & 7));
        HRESULT hr = IHostMemoryManager_CreateMalloc(m->com, bad, &p);
        CHECK(hr == E_INVALIDARG && p == NULL, "CreateMalloc(0x%x): 0x%08x %p", (unsigned)bad,
              (unsigned)hr, (void *)p);
        return;
    }
    if (slot < 0) return;
    IHostMalloc *p = NULL;
    HRESULT hr = IHostMemoryManager_CreateMalloc(m->com, flags, &p);
    CHECK(hr == S_OK && p != NULL, "CreateMalloc(%u): 0x%08x", (unsigned)flags, (unsigned)hr);
    inst_t *in = &m->inst[slot];
    memset(in, 0, sizeof *in);
    in->com = p;
    in->refs = 1;
    in->flags = flags;
}

static const char *const files[4] = {NULL, "fuzz_a.c", "fuzz/b.c", ""};

static size_t pick_size(input_t *in) {
    uint8_t s = in_u8(in);
    static const size_t edges[16] = {0,     1,           15,      16,         17,         1024,
                                     1025,  8192,        8193,    65536 - 56, 65536 - 64, 65536,
                                     65537, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1};
    switch (s >> 5) {
    case 0:
        return s & 31;
    case 1:
        return (size_t)16 * in_u8(in);
    case 2:
        return in_u16(in) % 8193;
    case 3:
        return in_u16(in) % 65537;
    case 4:
        return 65536 + (size_t)in_u16(in) * 4;
    case 5:
        return (size_t)in_u16(in) * 64;
    case 6:
        return (size_t)(in_u8(in) % 48 + 1) * MiB;
    default:
        return edges[s & 15];
    }
}

static void forget_stale(inst_t *in) {
    in->nstale = 0;
}

/* A new block at p: p is no longer a freed block of any instance (a huge segment goes back to
 * the manager's cache, or its address to the OS, and another instance may be handed it). */
NO_COVERAGE static void forget_stale_at(const void *p) {
    for (int mi = 0; mi < MAX_MGRS; mi++)
        for (int i = 0; i < MAX_INST; i++) {
            inst_t *o = &M[mi].inst[i];
            for (size_t k = 0; k < o->nstale;)
                if (o->stale[k] == p)
                    o->stale[k] = o->stale[--o->nstale];
                else
                    k++;
        }
}

/* A new block overlaps no live block of any instance. */
NO_COVERAGE static void check_no_overlap(void *p, size_t size) {
    for (int mi = 0; mi < MAX_MGRS; mi++)
        for (int i = 0; i < MAX_INST; i++) {
            const inst_t *o = &M[mi].inst[i];
            if (o->com == NULL) continue;
            for (size_t k = 0; k < o->nblocks; k++) {
                const block_t *b = &o->blocks[k];
                uint8_t *q = p;
                CHECK(q + (size ? size : 1) <= b->p || b->p + (b->size ? b->size : 1) <= q,
                      "new block %p+%zu overlaps live block %p+%zu", p, size, (void *)b->p,
                      b->size);
            }
        }
}

static void op_alloc(mgr_t *m, input_t *inp, bool debug) {
    inst_t *in = pick_inst(m, in_u8(inp));
    size_t size = pick_size(inp);
    uint8_t lv = in_u8(inp);
    int level = lv % 3;
    uint8_t fsel = in_u8(inp);
    if (in == NULL) return;
    if (in->nblocks == MAX_BLOCKS) return;
    forget_stale(in);
    bool fits = surely_fits(m, level, size);
    bool fault = m->cfg.fault_every[0] + m->cfg.fault_every[1] + m->cfg.fault_every[2] != 0 &&
                 level_fault(m, level);
    void *p = (void *)(uintptr_t)1;
    HRESULT hr;
    if (debug)
        hr = IHostMalloc_DebugAlloc(in->com, size, (EMemoryCriticalLevel)level,
                                    (char *)files[fsel & 3], (int)(fsel >> 2), &p);
    else
        hr = IHostMalloc_Alloc(in->com, size, (EMemoryCriticalLevel)level, &p);
    if (!fault) m->requests_min[level]++;
    m->requests_max[level]++;
    if (fault) {
        CHECK(hr == E_OUTOFMEMORY && p == NULL, "injected fault: 0x%08x %p", (unsigned)hr, p);
        return;
    }
    if (hr == E_OUTOFMEMORY) {
        CHECK(p == NULL, "E_OUTOFMEMORY with *ppMem %p", p);
        CHECK(!fits, "%s(%zu, level %d) refused with %zu committed of ceiling %zu (limit %zu)",
              debug ? "DebugAlloc" : "Alloc", size, level, committed_now(m), m->ceiling[level],
              m->cfg.limit);
        return;
    }
    CHECK(hr == S_OK, "%s(%zu): 0x%08x", debug ? "DebugAlloc" : "Alloc", size, (unsigned)hr);
    CHECK(p != NULL && ((uintptr_t)p & 15) == 0, "%s(%zu) gave %p", debug ? "DebugAlloc" : "Alloc",
          size, p);
    hm_heap *h = hm_heap_of(p);
    CHECK(h != NULL, "hm_heap_of(%p) NULL for a new block", p);
    if (in->heap == NULL) {
        for (int mi = 0; mi < MAX_MGRS; mi++)
            for (int i = 0; i < MAX_INST; i++)
                CHECK(M[mi].inst[i].com == NULL || &M[mi].inst[i] == in || M[mi].inst[i].heap != h,
                      "two instances share heap %p", (void *)h);
        in->heap = h;
    }
    CHECK(h == in->heap, "block %p of heap %p, instance's heap %p", p, (void *)h, (void *)in->heap);
    check_no_overlap(p, size);
    forget_stale_at(p);
    block_t *b = &in->blocks[in->nblocks++];
    b->p = p;
    b->size = size;
    b->seed = (uint32_t)(uintptr_t)p ^ (uint32_t)size ^ lv ^ 0x5bd1e995u * check_cursor;
    b->debug = debug || m->cfg.checked;
    b->dbg_alloc = debug;
    fill(b);
}

static void remove_block(inst_t *in, size_t k) {
    in->blocks[k] = in->blocks[--in->nblocks];
}

static void op_free(mgr_t *m, input_t *inp) {
    inst_t *in = pick_inst(m, in_u8(inp));
    uint8_t k8 = in_u8(inp);
    if (in == NULL) return;
    if (in->nblocks == 0) {
        HRESULT hr = IHostMalloc_Free(in->com, NULL);
        CHECK(hr == S_OK, "Free(NULL): 0x%08x", (unsigned)hr);
        return;
    }
    size_t k = k8 % in->nblocks;
    block_t b = in->blocks[k];
    check_block(&b, "before Free");
    HRESULT hr = IHostMalloc_Free(in->com, b.p);
    CHECK(hr == S_OK, "Free(%p) of a live block of %zu bytes: 0x%08x", (void *)b.p, b.size,
          (unsigned)hr);
    remove_block(in, k);
    /* every door refuses a second free (default mode: small blocks by their owner thread, this
     * one; huge ones while cached or unmapped), as long as the slot was not handed out again */
    if (in->nstale < MAX_STALE) in->stale[in->nstale++] = b.p;
}

/* A Free that must fail and change nothing. */
static void expect_rejected(mgr_t *m, inst_t *in, void *p, const char *what) {
    hm_heap_stats_t before, after;
    hm_heap_stats(in->heap, &before);
    size_t reports_df = m->reports[HM_ERROR_DOUBLE_FREE];
    HRESULT hr = IHostMalloc_Free(in->com, p);
    CHECK(hr == HOST_E_INVALIDOPERATION, "Free(%p) of %s: 0x%08x", p, what, (unsigned)hr);
    hm_heap_stats(in->heap, &after);
    CHECK(before.live_blocks == after.live_blocks, "Free of %s changed live blocks %zu -> %zu",
          what, before.live_blocks, after.live_blocks);
    (void)reports_df;
}

/* The lists of an instance's blocks other_block() picks from. */
enum other_list { OTHER_LIVE, OTHER_QUARANTINED, OTHER_STALE };

/* A block from list `which` of an instance other than `in`, of either manager: of the first
 * instance from `sel` on whose list is not empty; NULL when none has one. */
static void *other_block(const inst_t *in, uint8_t sel, uint64_t r, enum other_list which) {
    for (int k = 0; k < MAX_MGRS * MAX_INST; k++) {
        int idx = (sel + k) % (MAX_MGRS * MAX_INST);
        const inst_t *o = &M[idx / MAX_INST].inst[idx % MAX_INST];
        size_t n = which == OTHER_LIVE          ? o->nblocks
                   : which == OTHER_QUARANTINED ? o->nquar
                                                : o->nstale;
        if (o->com == NULL || o == in || n == 0) continue;
        return which == OTHER_LIVE          ? o->blocks[r % n].p
               : which == OTHER_QUARANTINED ? o->quar[r % n]
                                            : o->stale[r % n];
    }
    return NULL;
}

static void op_free_foreign(mgr_t *m, input_t *inp) {
    inst_t *in = pick_inst(m, in_u8(inp));
    uint8_t kind = in_u8(inp), sel = in_u8(inp);
    uint64_t r = in_u64(inp);
    if (in == NULL) return;
    _Alignas(16) uint8_t stack_buf[64];
    memset(stack_buf, 0, sizeof stack_buf);
    void *p = NULL;
    const char *what = "?";
    void *libc = NULL;
    switch (kind % 10) {
    case 0:
        p = stack_buf;
        what = "a stack address";
        break;
    case 1:
        p = static_buf + 16 * (sel % 8);
        what = "a static buffer";
        break;
    case 2:
        libc = malloc(16 + sel);
        p = libc;
        what = "a libc block";
        break;
    case 3:
    case 4: {
        /* a live block of another instance, of this manager or the other one */
        p = other_block(in, sel, r, OTHER_LIVE);
        what = "a block of another instance";
        break;
    }
    case 5: {
        /* a VirtualAlloc region of either manager (committed or not) */
        for (int k = 0; k < MAX_MGRS * MAX_REGIONS && p == NULL; k++) {
            int idx = (sel + k) % (MAX_MGRS * MAX_REGIONS);
            region_t *g = &M[idx / MAX_REGIONS].regions[idx % MAX_REGIONS];
            if (g->base != NULL) p = g->base + (r % (g->size / VPAGE)) * VPAGE;
        }
        what = "a VirtualAlloc page";
        break;
    }
    case 6:
        p = (sel & 1) ? (void *)in->com : (void *)m->com;
        what = "a COM object (a block of the default heap)";
        break;
    case 7:
        /* a quarantined block of another instance */
        p = other_block(in, sel, r, OTHER_QUARANTINED);
        what = "a quarantined block of another instance";
        break;
    case 8:
        /* never a block start: misaligned, or outside user space, or in the first page */
        if (sel & 1)
            p = (void *)(uintptr_t)(r | (1 + sel % 15));
        else if (sel & 2)
            p = (void *)(uintptr_t)(r | ((uint64_t)1 << 63));
        else
            p = (void *)(uintptr_t)(r % 4096 + 16);
        what = "a wild address";
        break;
    default:
        /* a stale block of another instance (freed, no allocation there since) */
        p = other_block(in, sel, r, OTHER_STALE);
        what = "a freed block of another instance";
        break;
    }
    if (p != NULL) {
        if (in->heap != NULL)
            expect_rejected(m, in, p, what);
        else {
            HRESULT hr = IHostMalloc_Free(in->com, p);
            CHECK(hr == HOST_E_INVALIDOPERATION, "Free(%p) of %s: 0x%08x", p, what, (unsigned)hr);
        }
    }
    free(libc);
}

static void op_free_interior(mgr_t *m, input_t *inp) {
    inst_t *in = pick_inst(m, in_u8(inp));
    uint8_t k8 = in_u8(inp), which = in_u8(inp);
    if (in == NULL || in->nblocks == 0) return;
    block_t *b = &in->blocks[k8 % in->nblocks];
    size_t off;
    switch (which % 6) {
    case 0:
        off = 1;
        break;
    case 1:
        off = 8;
        break;
    case 2:
        off = 16;
        break;
    case 3:
        off = (b->size / 2) & ~(size_t)15;
        break;
    case 4:
        off = (b->size - 1) & ~(size_t)15;
        break;
    default:
        off = 4096;
        break;
    }
    /* offsets at a 16-byte boundary must stay inside the requested bytes, where no other
     * block can start */
    if ((off & 15) == 0 && (off == 0 || off >= b->size)) return;
    expect_rejected(m, in, b->p + off, "an interior pointer");
    check_block(b, "after an interior Free");
}

static void region_double_free(mgr_t *m, uint8_t sel);

static void op_double_free(mgr_t *m, input_t *inp) {
    inst_t *in = pick_inst(m, in_u8(inp));
    uint8_t sel = in_u8(inp);
    if (in == NULL) {
        region_double_free(m, sel);
        return;
    }
    if ((sel & 1) && in->nquar > 0) {
        void *p = in->quar[sel / 2 % in->nquar];
        size_t df = m->reports[HM_ERROR_DOUBLE_FREE];
        expect_rejected(m, in, p, "a quarantined block");
        CHECK(m->reports[HM_ERROR_DOUBLE_FREE] == df + 1,
              "Free of quarantined %p: %zu double-free reports, expected %zu", p,
              m->reports[HM_ERROR_DOUBLE_FREE], df + 1);
        return;
    }
    if (in->nstale == 0) {
        region_double_free(m, sel); /* no block to free again: a region */
        return;
    }
    /* any freed block, in any order: the last, the first, one in between, again and again */
    void *p = in->stale[sel / 2 % in->nstale];
    /* still a slot of this heap's pages (its page not retired): the double free is reported */
    bool slot = hm_heap_of(p) == in->heap;
    size_t df = m->reports[HM_ERROR_DOUBLE_FREE];
    expect_rejected(m, in, p, "a freed block");
    CHECK(m->reports[HM_ERROR_DOUBLE_FREE] <= df + 1, "double free reported %zu times",
          m->reports[HM_ERROR_DOUBLE_FREE] - df);
    CHECK(!slot || m->reports[HM_ERROR_DOUBLE_FREE] == df + 1,
          "double free of %p, a slot of the heap, not reported", p);
}

/* Damage a canary of a debug block, then Free it: rejected, reported, quarantined. */
static void op_corrupt(mgr_t *m, input_t *inp) {
    inst_t *in = pick_inst(m, in_u8(inp));
    uint8_t k8 = in_u8(inp), how = in_u8(inp);
    if (in == NULL || in->nblocks == 0 || in->nquar == MAX_QUAR) return;
    size_t k = k8 % in->nblocks;
    block_t b = in->blocks[k];
    /* a checked block of 0 bytes is an address in a PROT_NONE unit: no canary to damage (any
     * touch faults, which the death tests check) */
    if (!b.debug || (b.size == 0 && !b.dbg_alloc)) return;
    check_block(&b, "before damaging a canary");
    int kind;
    if (how & 1) {
        b.p[b.size + (how >> 1) % 8] ^= 0xA5; /* the back canary */
        kind = HM_ERROR_OVERRUN;
    } else {
        b.p[-1 - (int)((how >> 1) % 8)] ^= 0xA5; /* the front canary */
        kind = HM_ERROR_UNDERRUN;
    }
    size_t before = m->reports[kind];
    expect_rejected(m, in, b.p, "a block with a damaged canary");
    CHECK(m->reports[kind] == before + 1, "canary damage (kind %d) reported %zu times", kind,
          m->reports[kind] - before);
    check_block(&b, "after a refused Free");
    remove_block(in, k);
    in->quar[in->nquar++] = b.p;
}

static bool release_walked; /* this input's release walk is done */

static void release_instance(mgr_t *m, inst_t *in) {
    check_all_blocks(in, "before Release");
    size_t dbg = 0;
    for (size_t k = 0; k < in->nblocks; k++)
        dbg += in->blocks[k].dbg_alloc;
    size_t leaks = m->reports[HM_ERROR_LEAK];
    check_heap_stats(m, in); /* between the periodic checks too: see check_manager */
    if (in->heap != NULL && !release_walked) {
        /* a walk reads every block slot of every page: once an input, at the first Release of
         * an instance that has a heap (op_walk walks any heap at any point, block by block) */
        release_walked = true;
        size_t walked = hm_heap_walk(in->heap, NULL, NULL);
        CHECK(walked == in->nblocks, "heap walk found %zu blocks, model %zu", walked, in->nblocks);
    }
    ULONG n = IHostMalloc_Release(in->com);
    CHECK(n == 0, "last Release gave %u", (unsigned)n);
    CHECK((m->reports[HM_ERROR_LEAK] > leaks) == (dbg > 0),
          "leak report lines %zu for %zu live DebugAlloc blocks", m->reports[HM_ERROR_LEAK] - leaks,
          dbg);
    memset(in, 0, sizeof *in);
}

static void op_refs(mgr_t *m, input_t *inp) {
    inst_t *in = pick_inst(m, in_u8(inp));
    uint8_t what = in_u8(inp);
    if (in == NULL) return;
    switch (what % 5) {
    case 0: {
        ULONG n = IHostMalloc_AddRef(in->com);
        in->refs++;
        CHECK(n == in->refs, "AddRef gave %u, expected %u", (unsigned)n, in->refs);
        break;
    }
    case 1: {
        void *p = NULL;
        HRESULT hr =
            IHostMalloc_QueryInterface(in->com, (what & 8) ? &IID_IUnknown : &IID_IHostMalloc, &p);
        CHECK(hr == S_OK && p == in->com, "QueryInterface: 0x%08x %p", (unsigned)hr, p);
        in->refs++;
        break;
    }
    case 2: {
        void *p = (void *)(uintptr_t)1;
        HRESULT hr = IHostMalloc_QueryInterface(in->com, &IID_IHostMemoryManager, &p);
        CHECK(hr == E_NOINTERFACE && p == NULL, "QueryInterface(other): 0x%08x %p", (unsigned)hr,
              p);
        break;
    }
    default:
        if (in->refs > 1) {
            ULONG n = IHostMalloc_Release(in->com);
            in->refs--;
            CHECK(n == in->refs, "Release gave %u, expected %u", (unsigned)n, in->refs);
        } else {
            release_instance(m, in);
        }
        break;
    }
}

static void op_bad_args(mgr_t *m, input_t *inp) {
    inst_t *in = pick_inst(m, in_u8(inp));
    uint8_t what = in_u8(inp);
    void *p = (void *)(uintptr_t)1;
    HRESULT hr;
    switch (what % 6) {
    case 0:
        if (in == NULL) return;
        hr = IHostMalloc_Alloc(in->com, 16, (EMemoryCriticalLevel)(3 + what / 6), &p);
        CHECK(hr == E_INVALIDARG && p == NULL, "Alloc(bad level): 0x%08x %p", (unsigned)hr, p);
        break;
    case 1:
        if (in == NULL) return;
        hr = IHostMalloc_DebugAlloc(in->com, 16, (EMemoryCriticalLevel)-1, NULL, 0, &p);
        CHECK(hr == E_INVALIDARG && p == NULL, "DebugAlloc(bad level): 0x%08x %p", (unsigned)hr, p);
        break;
    case 2:
        if (in == NULL) return;
        hr = IHostMalloc_Alloc(in->com, 16, eTaskCritical, NULL);
        CHECK(hr == E_POINTER, "Alloc(NULL out): 0x%08x", (unsigned)hr);
        hr = IHostMalloc_DebugAlloc(in->com, 16, eTaskCritical, NULL, 0, NULL);
        CHECK(hr == E_POINTER, "DebugAlloc(NULL out): 0x%08x", (unsigned)hr);
        break;
    case 3: {
        if (in == NULL) return;
        /* sizes that cannot be served */
        static const size_t sizes[4] = {SIZE_MAX, SIZE_MAX - 15, (size_t)PTRDIFF_MAX + 1,
                                        (size_t)1 << 46};
        size_t size = sizes[(what / 6) % 4];
        int level = (what / 24) % 3;
        forget_stale(in);
        bool fault = level_fault(m, level);
        m->requests_max[level]++;
        hr = (what & 0x80)
                 ? IHostMalloc_DebugAlloc(in->com, size, (EMemoryCriticalLevel)level, NULL, 1, &p)
                 : IHostMalloc_Alloc(in->com, size, (EMemoryCriticalLevel)level, &p);
        CHECK(hr == E_OUTOFMEMORY && p == NULL, "Alloc(%zu): 0x%08x %p", size, (unsigned)hr, p);
        (void)fault;
        break;
    }
    case 4: {
        IHostMalloc *mp = (IHostMalloc *)(uintptr_t)1;
        hr = IHostMemoryManager_CreateMalloc(m->com, MALLOC_THREADSAFE, NULL);
        CHECK(hr == E_POINTER, "CreateMalloc(NULL): 0x%08x", (unsigned)hr);
        hr = IHostMemoryManager_QueryInterface(m->com, &IID_IHostMalloc, (void **)&mp);
        CHECK(hr == E_NOINTERFACE && mp == NULL, "manager QI: 0x%08x", (unsigned)hr);
        DWORD load;
        hr = IHostMemoryManager_GetMemoryLoad(m->com, &load, NULL);
        CHECK(hr == E_POINTER, "GetMemoryLoad(NULL): 0x%08x", (unsigned)hr);
        break;
    }
    default: {
        /* VirtualQuery with a short buffer or NULL pointers */
        MEMORY_BASIC_INFORMATION mbi;
        SIZE_T res = 99;
        hr = IHostMemoryManager_VirtualQuery(m->com, &mbi, &mbi, sizeof mbi - 1, &res);
        CHECK(hr == E_INVALIDARG && res == 0, "VirtualQuery(short): 0x%08x %zu", (unsigned)hr,
              (size_t)res);
        hr = IHostMemoryManager_VirtualQuery(m->com, &mbi, NULL, sizeof mbi, &res);
        CHECK(hr == E_POINTER, "VirtualQuery(NULL buffer): 0x%08x", (unsigned)hr);
        DWORD old;
        hr = IHostMemoryManager_VirtualProtect(m->com, static_buf, 16, PAGE_READWRITE, NULL);
        CHECK(hr == E_POINTER, "VirtualProtect(NULL old): 0x%08x", (unsigned)hr);
        hr = IHostMemoryManager_VirtualProtect(m->com, static_buf, 16, PAGE_READWRITE, &old);
        CHECK(hr == HOST_E_INVALIDOPERATION, "VirtualProtect(static): 0x%08x", (unsigned)hr);
        hr = IHostMemoryManager_VirtualFree(m->com, static_buf, 0, MEM_RELEASE);
        CHECK(hr == HOST_E_INVALIDOPERATION, "VirtualFree(static): 0x%08x", (unsigned)hr);
        hr = IHostMemoryManager_VirtualAlloc(m->com, NULL, 4096, MEM_COMMIT, PAGE_READWRITE,
                                             eTaskCritical, NULL);
        CHECK(hr == E_POINTER, "VirtualAlloc(NULL out): 0x%08x", (unsigned)hr);
        break;
    }
    }
}

/* ---- virtual memory ------------------------------------------------------------------------- */
static const DWORD prots[6] = {PAGE_NOACCESS, PAGE_READONLY,     PAGE_READWRITE,
                               PAGE_EXECUTE,  PAGE_EXECUTE_READ, PAGE_EXECUTE_READWRITE};

static bool readable(uint8_t prot) {
    return prot == PAGE_READONLY || prot == PAGE_READWRITE || prot == PAGE_EXECUTE_READ ||
           prot == PAGE_EXECUTE_READWRITE;
}
static bool writable(uint8_t prot) {
    return prot == PAGE_READWRITE || prot == PAGE_EXECUTE_READWRITE;
}

static void check_page(const region_t *g, size_t i, const char *when) {
    if (g->prot[i] == 0 || !readable(g->prot[i]) || g->tag[i] == 255) return;
    const uint8_t *q = g->base + i * VPAGE;
    for (int j = 0; j < 16; j++)
        CHECK(q[j] == g->tag[i], "%s: page %zu of region %p: byte %d is 0x%02x, expected 0x%02x",
              when, i, (void *)g->base, j, q[j], g->tag[i]);
}

static void write_page(region_t *g, size_t i, uint8_t tag) {
    if (g->prot[i] == 0 || !writable(g->prot[i])) return;
    if (tag == 0 || tag == 255) tag = 0x5A;
    memset(g->base + i * VPAGE, tag, 16);
    g->tag[i] = tag;
}

static region_t *free_region_slot(mgr_t *m) {
    for (int r = 0; r < MAX_REGIONS; r++)
        if (m->regions[r].base == NULL) return &m->regions[r];
    return NULL;
}

static region_t *pick_region(mgr_t *m, uint8_t sel) {
    for (int k = 0; k < MAX_REGIONS; k++) {
        region_t *g = &m->regions[(sel + k) % MAX_REGIONS];
        if (g->base != NULL) return g;
    }
    return NULL;
}

/* Commit pages [first, first + n) in the model: fresh pages read as zero. The first two pages
 * of the range, its last and every 8th are read and written at once (a first write costs a page
 * fault, up to 256 of them a commit otherwise); the others stay as they are, zero for a fresh
 * page, which every later check_page of it (VirtualQuery, a refused call, the release)
 * verifies. A page written before is checked and written again. */
static void model_commit(region_t *g, size_t first, size_t n, uint8_t prot, uint8_t tag) {
    for (size_t i = first; i < first + n; i++) {
        if (g->prot[i] == 0) g->tag[i] = 0;
        g->prot[i] = prot;
        size_t k = i - first;
        if (!(k < 2 || k + 1 == n || k % 8 == 0) && g->tag[i] == 0) continue;
        check_page(g, i, "after a commit");
        write_page(g, i, (uint8_t)(tag + i));
    }
}

static size_t fresh_bytes(const region_t *g, size_t first, size_t n) {
    size_t c = 0;
    for (size_t i = first; i < first + n; i++)
        c += g->prot[i] == 0;
    return c * VPAGE;
}

static void op_vreserve(mgr_t *m, input_t *inp) {
    uint16_t pages16 = in_u16(inp);
    uint8_t flags = in_u8(inp), pr = in_u8(inp), lv = in_u8(inp);
    int level = lv % 3;
    size_t size = (size_t)(pages16 % MAX_PAGES) * VPAGE + (flags >> 4) * 97 + 1;
    if (size > MAX_PAGES * VPAGE) size = MAX_PAGES * VPAGE;
    region_t *g = free_region_slot(m);
    if (g == NULL) return;
    DWORD prot = prots[pr % 6];
    DWORD type = (flags & 3) == 0   ? MEM_RESERVE
                 : (flags & 3) == 1 ? (MEM_RESERVE | MEM_COMMIT)
                 : (flags & 3) == 2 ? MEM_COMMIT
                                    : (MEM_RESERVE | MEM_TOP_DOWN);
    bool commit = (type & MEM_COMMIT) != 0;
    size_t cpages = (size + VPAGE - 1) / VPAGE;
    bool fits = !commit || surely_fits(m, level, cpages * VPAGE);
    bool fault = level_fault(m, level);
    void *p = (void *)(uintptr_t)1;
    HRESULT hr = IHostMemoryManager_VirtualAlloc(m->com, NULL, size, type, prot,
                                                 (EMemoryCriticalLevel)level, &p);
    if (!fault) m->requests_min[level]++;
    m->requests_max[level]++;
    if (fault || hr == E_OUTOFMEMORY) {
        CHECK(hr == E_OUTOFMEMORY && p == NULL, "VirtualAlloc(%zu, 0x%x): 0x%08x %p", size,
              (unsigned)type, (unsigned)hr, p);
        CHECK(fault || !fits, "VirtualAlloc(%zu, 0x%x, level %d) refused, %zu committed of %zu",
              size, (unsigned)type, level, committed_now(m), m->ceiling[level]);
        return;
    }
    CHECK(hr == S_OK && p != NULL && ((uintptr_t)p & (GRANULE - 1)) == 0,
          "VirtualAlloc(NULL, %zu, 0x%x): 0x%08x %p", size, (unsigned)type, (unsigned)hr, p);
    memset(g, 0, sizeof *g);
    g->base = p;
    g->size = (size + GRANULE - 1) & ~(size_t)(GRANULE - 1);
    for (size_t k = 0; k < m->nfreed;) /* released addresses this region now covers */
        if (m->freed[k] >= g->base && m->freed[k] < g->base + g->size)
            m->freed[k] = m->freed[--m->nfreed];
        else
            k++;
    g->aprot = prot;
    for (int mi = 0; mi < MAX_MGRS; mi++)
        for (int r = 0; r < MAX_REGIONS; r++) {
            region_t *o = &M[mi].regions[r];
            if (o == g || o->base == NULL) continue;
            CHECK(g->base + g->size <= o->base || o->base + o->size <= g->base,
                  "new region %p+%zu overlaps %p+%zu", (void *)g->base, g->size, (void *)o->base,
                  o->size);
        }
    if (commit) model_commit(g, 0, cpages, (uint8_t)prot, flags);
}

static void op_vcommit(mgr_t *m, input_t *inp) {
    uint8_t sel = in_u8(inp), a = in_u8(inp), n8 = in_u8(inp), pr = in_u8(inp), lv = in_u8(inp);
    uint16_t mis = in_u16(inp);
    region_t *g = pick_region(m, sel);
    if (g == NULL) return;
    int level = lv % 3;
    size_t npages = g->size / VPAGE;
    size_t first = a % npages;
    size_t misalign = mis % VPAGE;
    size_t len = (size_t)(n8 % 64) * VPAGE + (mis >> 12);
    if (len == 0) len = 1;
    uint8_t *addr = g->base + first * VPAGE + misalign;
    size_t from = first, to = ((size_t)(addr - g->base) + len + VPAGE - 1) / VPAGE;
    DWORD prot = (pr & 0x80) ? 0x08 /* PAGE_WRITECOPY: not supported */ : prots[pr % 6];
    bool fault = level_fault(m, level);
    void *p = (void *)(uintptr_t)1;
    bool inside = to <= npages;
    size_t fresh = inside ? fresh_bytes(g, from, to - from) : 0;
    bool fits = surely_fits(m, level, fresh);
    HRESULT hr = IHostMemoryManager_VirtualAlloc(m->com, addr, len, MEM_COMMIT, prot,
                                                 (EMemoryCriticalLevel)level, &p);
    m->requests_max[level]++;
    if (fault) {
        CHECK(hr == E_OUTOFMEMORY && p == NULL, "injected fault: 0x%08x", (unsigned)hr);
        return;
    }
    if (prot == 0x08) {
        CHECK(hr == E_INVALIDARG && p == NULL, "commit with PAGE_WRITECOPY: 0x%08x %p",
              (unsigned)hr, p);
        return;
    }
    m->requests_min[level]++;
    if (!inside) {
        CHECK((hr == HOST_E_INVALIDOPERATION || hr == E_INVALIDARG) && p == NULL,
              "commit past the end of a region: 0x%08x %p", (unsigned)hr, p);
        return;
    }
    if (hr == E_OUTOFMEMORY) {
        CHECK(p == NULL, "E_OUTOFMEMORY with %p", p);
        CHECK(!fits, "commit of %zu fresh bytes at level %d refused, %zu committed of %zu", fresh,
              level, committed_now(m), m->ceiling[level]);
        return;
    }
    CHECK(hr == S_OK && p == g->base + from * VPAGE, "commit at %p+%zu: 0x%08x %p", (void *)addr,
          len, (unsigned)hr, p);
    model_commit(g, from, to - from, (uint8_t)prot, a ^ n8);
}

static void op_vfree(mgr_t *m, input_t *inp) {
    uint8_t sel = in_u8(inp), what = in_u8(inp), a = in_u8(inp), n8 = in_u8(inp);
    region_t *g = pick_region(m, sel);
    if (g == NULL) return;
    size_t npages = g->size / VPAGE;
    HRESULT hr;
    switch (what % 8) {
    case 0:
    case 1: {
        for (size_t i = 0; i < npages; i++)
            check_page(g, i, "before MEM_RELEASE");
        hr = IHostMemoryManager_VirtualFree(m->com, g->base, 0, MEM_RELEASE);
        CHECK(hr == S_OK, "MEM_RELEASE of %p: 0x%08x", (void *)g->base, (unsigned)hr);
        if (m->nfreed == MAX_FREED) { /* the oldest goes */
            memmove(m->freed, m->freed + 1, (MAX_FREED - 1) * sizeof m->freed[0]);
            m->nfreed--;
        }
        m->freed[m->nfreed++] = g->base;
        memset(g, 0, sizeof *g);
        break;
    }
    case 2:
        hr = IHostMemoryManager_VirtualFree(m->com, g->base, g->size, MEM_RELEASE);
        CHECK(hr == E_INVALIDARG, "MEM_RELEASE with a size: 0x%08x", (unsigned)hr);
        if (npages > 1) {
            hr = IHostMemoryManager_VirtualFree(m->com, g->base + VPAGE * (1 + a % (npages - 1)), 0,
                                                MEM_RELEASE);
            CHECK(hr == E_INVALIDARG, "MEM_RELEASE inside: 0x%08x", (unsigned)hr);
        }
        hr = IHostMemoryManager_VirtualFree(m->com, g->base, 0, MEM_RELEASE | MEM_DECOMMIT);
        CHECK(hr == E_INVALIDARG, "VirtualFree(bad type): 0x%08x", (unsigned)hr);
        hr = IHostMemoryManager_VirtualFree(m->com, NULL, 0, MEM_RELEASE);
        CHECK(hr == E_INVALIDARG || hr == HOST_E_INVALIDOPERATION, "VirtualFree(NULL): 0x%08x",
              (unsigned)hr);
        break;
    case 3:
        hr = IHostMemoryManager_VirtualFree(m->com, g->base, 0, MEM_DECOMMIT);
        CHECK(hr == S_OK, "MEM_DECOMMIT of a whole region: 0x%08x", (unsigned)hr);
        memset(g->prot, 0, sizeof g->prot);
        memset(g->tag, 0, sizeof g->tag);
        break;
    default: {
        size_t first = a % npages;
        size_t n = 1 + n8 % 32;
        uint8_t *addr = g->base + first * VPAGE + (what >> 4) * 3;
        size_t len = n * VPAGE - (what >> 4) * 5;
        size_t to = ((size_t)(addr - g->base) + len + VPAGE - 1) / VPAGE;
        hr = IHostMemoryManager_VirtualFree(m->com, addr, len, MEM_DECOMMIT);
        if (to > npages) {
            CHECK(hr == E_INVALIDARG, "MEM_DECOMMIT past the end: 0x%08x", (unsigned)hr);
            break;
        }
        CHECK(hr == S_OK, "MEM_DECOMMIT %p+%zu: 0x%08x", (void *)addr, len, (unsigned)hr);
        for (size_t i = first; i < to; i++) {
            g->prot[i] = 0;
            g->tag[i] = 0;
        }
        break;
    }
    }
}

/* VirtualFree of a released region, again, in any order (p p, p q p, p q q p: op_double_free
 * picks any remembered base): the address is no longer this manager's, HOST_E_INVALIDOPERATION,
 * and nothing changes, whoever maps that address now (another manager's region, a heap
 * segment, the OS). */
static void region_double_free(mgr_t *m, uint8_t sel) {
    if (m->nfreed == 0) return;
    uint8_t *p = m->freed[sel / 2 % m->nfreed];
    hm_manager_stats_t before, after;
    hm_manager_stats(m->mgr, &before);
    HRESULT hr = (sel & 1) ? IHostMemoryManager_VirtualFree(m->com, p, VPAGE, MEM_DECOMMIT)
                           : IHostMemoryManager_VirtualFree(m->com, p, 0, MEM_RELEASE);
    CHECK(hr == HOST_E_INVALIDOPERATION, "VirtualFree(%p, %s) of a released region: 0x%08x",
          (void *)p, (sel & 1) ? "MEM_DECOMMIT" : "MEM_RELEASE", (unsigned)hr);
    hm_manager_stats(m->mgr, &after);
    CHECK(before.virtual_reserved == after.virtual_reserved &&
              before.virtual_committed == after.virtual_committed &&
              before.committed == after.committed,
          "a refused VirtualFree changed reserved %zu -> %zu, committed %zu -> %zu",
          before.virtual_reserved, after.virtual_reserved, before.virtual_committed,
          after.virtual_committed);
}

static void op_vprotect(mgr_t *m, input_t *inp) {
    uint8_t sel = in_u8(inp), a = in_u8(inp), n8 = in_u8(inp), pr = in_u8(inp);
    region_t *g = pick_region(m, sel);
    if (g == NULL) return;
    size_t npages = g->size / VPAGE;
    size_t first = a % npages, n = 1 + n8 % 16;
    DWORD prot = prots[pr % 6];
    DWORD old = 12345;
    HRESULT hr = IHostMemoryManager_VirtualProtect(m->com, g->base + first * VPAGE, n * VPAGE - 1,
                                                   prot, &old);
    if (first + n > npages) {
        CHECK(hr == HOST_E_INVALIDOPERATION || hr == E_INVALIDARG,
              "VirtualProtect past the end: 0x%08x", (unsigned)hr);
        return;
    }
    bool all = true;
    for (size_t i = first; i < first + n; i++)
        all = all && g->prot[i] != 0;
    if (!all) {
        CHECK(hr == E_INVALIDARG, "VirtualProtect of reserved pages: 0x%08x", (unsigned)hr);
        return;
    }
    CHECK(hr == S_OK, "VirtualProtect: 0x%08x", (unsigned)hr);
    CHECK(old == g->prot[first], "old protection 0x%x, model 0x%x", (unsigned)old, g->prot[first]);
    for (size_t i = first; i < first + n; i++) {
        g->prot[i] = (uint8_t)prot;
        check_page(g, i, "after VirtualProtect");
    }
}

static void op_vreset(mgr_t *m, input_t *inp) {
    uint8_t sel = in_u8(inp), a = in_u8(inp), n8 = in_u8(inp);
    region_t *g = pick_region(m, sel);
    if (g == NULL) return;
    size_t npages = g->size / VPAGE;
    size_t first = a % npages, n = 1 + n8 % 8;
    if (first + n > npages) n = npages - first;
    bool all = true;
    for (size_t i = first; i < first + n; i++)
        all = all && g->prot[i] != 0;
    bool fault = level_fault(m, eTaskCritical);
    void *p = (void *)(uintptr_t)1;
    HRESULT hr = IHostMemoryManager_VirtualAlloc(m->com, g->base + first * VPAGE, n * VPAGE,
                                                 MEM_RESET, PAGE_NOACCESS, eTaskCritical, &p);
    m->requests_max[eTaskCritical]++;
    if (fault) {
        CHECK(hr == E_OUTOFMEMORY && p == NULL, "injected fault: 0x%08x", (unsigned)hr);
        return;
    }
    m->requests_min[eTaskCritical]++;
    if (!all) {
        CHECK(hr == E_INVALIDARG && p == NULL, "MEM_RESET of reserved pages: 0x%08x", (unsigned)hr);
        return;
    }
    CHECK(hr == S_OK && p == g->base + first * VPAGE, "MEM_RESET: 0x%08x %p", (unsigned)hr, p);
    for (size_t i = first; i < first + n; i++)
        g->tag[i] = 255; /* contents no longer defined */
}

static void op_vquery(mgr_t *m, input_t *inp) {
    uint8_t sel = in_u8(inp), a = in_u8(inp), off = in_u8(inp);
    MEMORY_BASIC_INFORMATION mbi;
    SIZE_T res = 0;
    region_t *g = pick_region(m, sel);
    if ((sel & 0xE0) == 0xE0) {
        /* outside our regions: a stack page, or the unmapped first pages (an answer read from
         * /proc/self/maps: the most expensive call the harness makes, so only when chosen, not
         * whenever there is no region to ask about) */
        _Alignas(16) uint8_t stack_buf[32];
        void *addr = (sel & 1) ? (void *)stack_buf : (void *)(uintptr_t)(4096 + off);
        HRESULT hr = IHostMemoryManager_VirtualQuery(m->com, addr, &mbi, sizeof mbi, &res);
        CHECK(hr == S_OK && res == sizeof mbi, "VirtualQuery(%p): 0x%08x %zu", addr, (unsigned)hr,
              (size_t)res);
        if (sel & 1)
            CHECK(mbi.State == MEM_COMMIT && (mbi.Protect & PAGE_READWRITE) &&
                      mbi.Type == MEM_PRIVATE && (uint8_t *)mbi.BaseAddress <= stack_buf &&
                      stack_buf < (uint8_t *)mbi.BaseAddress + mbi.RegionSize,
                  "VirtualQuery(stack): state 0x%x protect 0x%x type 0x%x base %p size %zu",
                  (unsigned)mbi.State, (unsigned)mbi.Protect, (unsigned)mbi.Type, mbi.BaseAddress,
                  (size_t)mbi.RegionSize);
        else
            CHECK(mbi.State == MEM_FREE, "VirtualQuery(%p): state 0x%x", addr, (unsigned)mbi.State);
        return;
    }
    if (g == NULL) return;
    size_t npages = g->size / VPAGE, i = a % npages;
    HRESULT hr = IHostMemoryManager_VirtualQuery(m->com, g->base + i * VPAGE + off * 13, &mbi,
                                                 sizeof mbi + (off & 7), &res);
    CHECK(hr == S_OK && res == sizeof mbi, "VirtualQuery: 0x%08x %zu", (unsigned)hr, (size_t)res);
    size_t run = 1;
    while (i + run < npages && g->prot[i + run] == g->prot[i])
        run++;
    CHECK(mbi.BaseAddress == g->base + i * VPAGE && mbi.AllocationBase == g->base &&
              mbi.AllocationProtect == g->aprot && mbi.RegionSize == run * VPAGE &&
              mbi.State == (g->prot[i] ? MEM_COMMIT : MEM_RESERVE) && mbi.Protect == g->prot[i] &&
              mbi.Type == MEM_PRIVATE,
          "VirtualQuery(page %zu of %p): base %p alloc %p aprot 0x%x size %zu state 0x%x "
          "protect 0x%x type 0x%x; model: aprot 0x%x run %zu prot 0x%x",
          i, (void *)g->base, mbi.BaseAddress, mbi.AllocationBase, (unsigned)mbi.AllocationProtect,
          (size_t)mbi.RegionSize, (unsigned)mbi.State, (unsigned)mbi.Protect, (unsigned)mbi.Type,
          (unsigned)g->aprot, run, g->prot[i]);
    check_page(g, i, "VirtualQuery");
}

/* Reserve at a chosen address: an occupied one must be refused. */
static void op_vreserve_at(mgr_t *m, input_t *inp) {
    uint8_t sel = in_u8(inp), lv = in_u8(inp);
    int level = lv % 3;
    void *addr = NULL;
    const char *what;
    region_t *g = pick_region(m, sel);
    inst_t *in = pick_inst(m, sel);
    if ((sel & 1) && g != NULL) {
        addr = g->base + (lv % (g->size / VPAGE)) * VPAGE;
        what = "a region of ours";
    } else if (in != NULL && in->nblocks > 0) {
        addr = in->blocks[lv % in->nblocks].p;
        what = "a heap block";
    } else {
        return;
    }
    bool fault = level_fault(m, level);
    void *p = (void *)(uintptr_t)1;
    HRESULT hr = IHostMemoryManager_VirtualAlloc(m->com, addr, VPAGE, MEM_RESERVE, PAGE_READWRITE,
                                                 (EMemoryCriticalLevel)level, &p);
    m->requests_max[level]++;
    if (!fault) m->requests_min[level]++;
    CHECK(hr == E_OUTOFMEMORY && p == NULL, "MEM_RESERVE at %p (%s): 0x%08x %p", addr, what,
          (unsigned)hr, p);
}

/* Virtual* at the edges of the address space and with sizes that wrap: every call refused
 * with E_INVALIDARG (or an injected fault), *ppMem NULL, nothing changed (check_after_op compares
 * the manager's reserved and committed bytes with the model; the region's pages are checked). */
static void op_vedge(mgr_t *m, input_t *inp) {
    uint8_t what = in_u8(inp), sel = in_u8(inp), lv = in_u8(inp);
    uint16_t a16 = in_u16(inp);
    int level = lv % 3;
    static const DWORD types[4] = {MEM_RESERVE, MEM_RESERVE | MEM_COMMIT, MEM_COMMIT, MEM_RESET};
    static const uintptr_t high[6] = {
        (uintptr_t)1 << 47, UINTPTR_MAX,           UINTPTR_MAX & ~(uintptr_t)0xFFFF,
        (uintptr_t)1 << 63, 0xffff800000000000ull, ((uintptr_t)1 << 47) - GRANULE};
    /* sizes that wrap past 2^64 from any address, or run past 2^47 */
    size_t wrap = SIZE_MAX - (size_t)(a16 % 8) * VPAGE - (lv & 0x0F);
    region_t *g = pick_region(m, sel);
    void *p = (void *)(uintptr_t)1;
    HRESULT hr;
    switch (what % 6) {
    case 0:
    case 1: {
        /* VirtualAlloc below 64 KiB or at the top, any type */
        uintptr_t addr = (what % 6) == 0 ? 1 + (uintptr_t)a16 % 0xFFFF : high[a16 % 6];
        size_t size = (what & 0x40) ? wrap % ((size_t)1 << 46) + 1 : (size_t)(lv % 16 + 1) * VPAGE;
        if (addr == ((uintptr_t)1 << 47) - GRANULE) size = 2 * GRANULE; /* runs past 2^47 */
        DWORD type = types[(what >> 3) & 3];
        bool fault = level_fault(m, level);
        m->requests_max[level]++;
        hr = IHostMemoryManager_VirtualAlloc(m->com, (void *)addr, size, type, PAGE_READWRITE,
                                             (EMemoryCriticalLevel)level, &p);
        CHECK((hr == E_INVALIDARG || (fault && hr == E_OUTOFMEMORY)) && p == NULL,
              "VirtualAlloc(%#lx, %zu, 0x%x): 0x%08x %p", (unsigned long)addr, size, (unsigned)type,
              (unsigned)hr, p);
        if ((what % 6) == 0) {
            /* VirtualFree there: never an address this manager handed out */
            hr = IHostMemoryManager_VirtualFree(m->com, (void *)addr, 0, MEM_RELEASE);
            CHECK(hr == HOST_E_INVALIDOPERATION, "VirtualFree(%#lx, MEM_RELEASE): 0x%08x",
                  (unsigned long)addr, (unsigned)hr);
            hr = IHostMemoryManager_VirtualFree(m->com, (void *)addr, size, MEM_DECOMMIT);
            CHECK(hr == HOST_E_INVALIDOPERATION, "VirtualFree(%#lx, %zu, MEM_DECOMMIT): 0x%08x",
                  (unsigned long)addr, size, (unsigned)hr);
        }
        break;
    }
    case 2: {
        /* VirtualFree(MEM_DECOMMIT) from inside a region with a size that wraps */
        if (g == NULL) return;
        size_t npages = g->size / VPAGE, off = (size_t)(a16 % npages) * VPAGE + (lv >> 4);
        hr = IHostMemoryManager_VirtualFree(m->com, g->base + off, wrap, MEM_DECOMMIT);
        CHECK(hr == E_INVALIDARG, "VirtualFree(%p + %zu, %zu, MEM_DECOMMIT): 0x%08x",
              (void *)g->base, off, wrap, (unsigned)hr);
        hr = IHostMemoryManager_VirtualFree(m->com, g->base, wrap, MEM_RELEASE);
        CHECK(hr == E_INVALIDARG, "VirtualFree(%p, %zu, MEM_RELEASE): 0x%08x", (void *)g->base,
              wrap, (unsigned)hr);
        for (size_t i = 0; i < npages; i++)
            check_page(g, i, "after a refused wrapping decommit");
        break;
    }
    case 3: {
        /* VirtualProtect and a commit with a size that wraps */
        if (g == NULL) return;
        size_t npages = g->size / VPAGE, off = (size_t)(a16 % npages) * VPAGE;
        DWORD old = 12345;
        hr = IHostMemoryManager_VirtualProtect(m->com, g->base + off, wrap, PAGE_READONLY, &old);
        CHECK(hr == E_INVALIDARG, "VirtualProtect(%p + %zu, %zu): 0x%08x", (void *)g->base, off,
              wrap, (unsigned)hr);
        bool fault = level_fault(m, level);
        m->requests_max[level]++;
        hr = IHostMemoryManager_VirtualAlloc(m->com, g->base + off, wrap, MEM_COMMIT,
                                             PAGE_READWRITE, (EMemoryCriticalLevel)level, &p);
        CHECK((hr == E_INVALIDARG || (fault && hr == E_OUTOFMEMORY)) && p == NULL,
              "commit of %zu bytes at %p + %zu: 0x%08x %p", wrap, (void *)g->base, off,
              (unsigned)hr, p);
        for (size_t i = 0; i < npages; i++)
            check_page(g, i, "after refused wrapping calls");
        break;
    }
    case 4: {
        /* VirtualQuery outside the user address space: no answer */
        MEMORY_BASIC_INFORMATION mbi;
        SIZE_T res = 77;
        uintptr_t addr = high[a16 % 5] ^ (lv & 0x0F);
        hr = IHostMemoryManager_VirtualQuery(m->com, (void *)addr, &mbi, sizeof mbi, &res);
        CHECK(hr == E_INVALIDARG && res == 0, "VirtualQuery(%#lx): 0x%08x %zu", (unsigned long)addr,
              (unsigned)hr, (size_t)res);
        break;
    }
    default: {
        /* VirtualQuery at the lowest and highest user pages: an answer that ends by 2^47 */
        MEMORY_BASIC_INFORMATION mbi;
        SIZE_T res = 0;
        uintptr_t addr = (what & 0x80) ? ((uintptr_t)1 << 47) - 1 - a16 : a16;
        hr = IHostMemoryManager_VirtualQuery(m->com, (void *)addr, &mbi, sizeof mbi, &res);
        uintptr_t base = (uintptr_t)mbi.BaseAddress;
        CHECK(hr == S_OK && res == sizeof mbi && base == (addr & ~(uintptr_t)(VPAGE - 1)) &&
                  mbi.RegionSize != 0 && mbi.RegionSize <= ((uintptr_t)1 << 47) - base,
              "VirtualQuery(%#lx): 0x%08x base %p size %#zx", (unsigned long)addr, (unsigned)hr,
              mbi.BaseAddress, (size_t)mbi.RegionSize);
        break;
    }
    }
}

static void op_load(mgr_t *m) {
    DWORD load = 999;
    SIZE_T avail = 1;
    HRESULT hr = IHostMemoryManager_GetMemoryLoad(m->com, &load, &avail);
    CHECK(hr == S_OK && load <= 100, "GetMemoryLoad: 0x%08x %u", (unsigned)hr, (unsigned)load);
    size_t c = committed_now(m);
    size_t want = m->ceiling[eTaskCritical] > c ? m->ceiling[eTaskCritical] - c : 0;
    CHECK(avail == want, "available %zu, expected %zu (committed %zu, task ceiling %zu)",
          (size_t)avail, want, c, m->ceiling[eTaskCritical]);
    uint64_t pct = (uint64_t)((double)c * 100.0 / (double)m->cfg.limit);
    if (pct > 100) pct = 100;
    CHECK(load == pct, "load %u, expected %llu", (unsigned)load, (unsigned long long)pct);
}

static void op_callback(int mi, input_t *inp) {
    mgr_t *m = &M[mi];
    uint8_t what = in_u8(inp);
    HRESULT hr;
    if (what & 1) {
        hr = IHostMemoryManager_RegisterMemoryNotificationCallback(m->com, &CB[mi].iface);
        m->cb_registered = true;
    } else {
        hr = IHostMemoryManager_RegisterMemoryNotificationCallback(m->com, NULL);
        m->cb_registered = false; /* a notification in flight may still hold a reference */
    }
    CHECK(hr == S_OK, "RegisterMemoryNotificationCallback: 0x%08x", (unsigned)hr);
}

static void op_vas(mgr_t *m, input_t *inp) {
    uint8_t what = in_u8(inp);
    HRESULT hr;
    switch (what % 3) {
    case 0:
        hr = IHostMemoryManager_NeedsVirtualAddressSpace(m->com, NULL, 4096);
        CHECK(hr == S_OK || hr == E_OUTOFMEMORY, "NeedsVirtualAddressSpace: 0x%08x", (unsigned)hr);
        break;
    case 1:
        hr = IHostMemoryManager_AcquiredVirtualAddressSpace(m->com, static_buf, 65536);
        CHECK(hr == S_OK, "AcquiredVirtualAddressSpace: 0x%08x", (unsigned)hr);
        break;
    default:
        hr = IHostMemoryManager_ReleasedVirtualAddressSpace(m->com, static_buf);
        CHECK(hr == S_OK, "ReleasedVirtualAddressSpace: 0x%08x", (unsigned)hr);
        break;
    }
}

typedef struct {
    const inst_t *in;
    size_t seen;
} walk_ctx_t;

static bool walk_fn(const hm_block_info_t *info, void *arg) {
    walk_ctx_t *w = arg;
    w->seen++;
    for (size_t k = 0; k < w->in->nblocks; k++) {
        const block_t *b = &w->in->blocks[k];
        if (b->p != info->ptr) continue;
        if (b->debug)
            CHECK(info->size == b->size, "walk: debug block %p of %zu bytes says %zu", (void *)b->p,
                  b->size, info->size);
        else
            CHECK(info->size >= b->size, "walk: block %p of %zu bytes says %zu", (void *)b->p,
                  b->size, info->size);
        CHECK(info->debug == b->dbg_alloc, "walk: block %p debug %d, model %d", (void *)b->p,
              info->debug, b->dbg_alloc);
        return true;
    }
    CHECK(false, "walk: block %p of %zu bytes is not in the model", info->ptr, info->size);
    return true;
}

static void op_walk(mgr_t *m, input_t *inp) {
    inst_t *in = pick_inst(m, in_u8(inp));
    if (in == NULL || in->heap == NULL) return;
    walk_ctx_t w = {in, 0};
    size_t n = hm_heap_walk(in->heap, walk_fn, &w);
    CHECK(n == in->nblocks && w.seen == in->nblocks, "walk: %zu blocks (%zu seen), model %zu", n,
          w.seen, in->nblocks);
    check_heap_stats(m, in);
    check_all_blocks(in, "heap walk");
}

/* ---- the program ----------------------------------------------------------------------------- */
static bool trace; /* FUZZ_HOSTING_TRACE=1: one line per operation on stderr */

static void run_op(input_t *in) {
    size_t at = in->i;
    uint8_t op = in_u8(in);
    int mi = (op >> 7) & 1;
    if (trace)
        fprintf(stderr, "fuzz_hosting: @%zu manager %d op %d%s\n", at, mi, (op & 0x7F) % 25,
                M[mi].com == NULL ? " (makes the manager)" : "");
    if (M[mi].com == NULL) {
        new_manager(mi, in);
        return;
    }
    mgr_t *m = &M[mi];
    switch ((op & 0x7F) % 25) {
    case 0:
        op_create_malloc(m, in);
        break;
    case 1:
    case 2:
        op_alloc(m, in, false);
        break;
    case 3:
        op_alloc(m, in, true);
        break;
    case 4:
    case 5:
        op_free(m, in);
        break;
    case 6:
        op_free_foreign(m, in);
        break;
    case 7:
        op_free_interior(m, in);
        break;
    case 8:
        op_double_free(m, in);
        break;
    case 9:
        op_corrupt(m, in);
        break;
    case 10:
        op_refs(m, in);
        break;
    case 11: {
        /* a budget change: this manager and its instances go, another is made */
        uint8_t b = in_u8(in);
        destroy_manager(mi, b & 1, b >> 1);
        new_manager(mi, in);
        break;
    }
    case 12:
        op_vreserve(m, in);
        break;
    case 13:
        op_vcommit(m, in);
        break;
    case 14:
        op_vfree(m, in);
        break;
    case 15:
        op_vprotect(m, in);
        break;
    case 16:
        op_vquery(m, in);
        break;
    case 17:
        op_vreset(m, in);
        break;
    case 18:
        op_vreserve_at(m, in);
        break;
    case 19:
        op_load(m);
        break;
    case 20:
        op_bad_args(m, in);
        break;
    case 21:
        op_walk(m, in);
        break;
    case 22:
        op_callback(mi, in);
        break;
    case 24:
        op_vedge(m, in);
        break;
    default:
        op_vas(m, in);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static bool once;
    if (!once) {
        once = true;
        const char *t = getenv("FUZZ_HOSTING_TRACE");
        trace = t != NULL && *t == '1';
        pattern_init();
        for (int i = 0; i < MAX_MGRS; i++) {
            CB[i].iface.lpVtbl = &cb_vtbl;
            atomic_init(&CB[i].refs, 1);
            atomic_init(&CB[i].calls, 0);
        }
    }
    input_t in = {data, size, 0};
    release_walked = false;
    check_cursor = 0; /* which blocks check_after_op looks at: the same for the same input */
    new_manager(0, &in);
    for (int ops = 0; in.i < in.n && ops < 2000; ops++) {
        run_op(&in);
        check_after_op(ops % STATS_CHECK_EVERY == STATS_CHECK_EVERY - 1);
    }
    for (int mi = 0; mi < MAX_MGRS; mi++)
        destroy_manager(mi, false, 0);
    return 0;
}
