/* SPDX-License-Identifier: MIT */
/* tests/api/test_native.c: the native API of <hostmalloc/hostmalloc.h>.
 *
 * Allocation functions (hm_alloc, hm_alloc_level, hm_calloc, hm_realloc, hm_alloc_aligned), block
 * queries (hm_usable_size, hm_heap_of), the checked free (hm_heap_free and its four results),
 * heaps and managers, statistics and collection. The aborting free, usable_size and realloc
 * (misuse of the malloc door) are in tests/death/test_native_death.c.
 * Each test function is registered with CTest on its own (see CMakeLists.txt). */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <hostmalloc/hostmalloc.h>

#include "test_util.h"

static const size_t k_sizes[] = {TU_ALLOC_SIZES};

static const size_t k_impossible[] = {
    SIZE_MAX,     SIZE_MAX - 15,   SIZE_MAX - 4095, (size_t)PTRDIFF_MAX + 1,
    SIZE_MAX / 2, (size_t)1 << 62, (size_t)1 << 47, (size_t)1 << 46};

static hm_heap *new_heap(unsigned flags) {
    hm_heap *h = tu_heap(NULL, flags);
    return h;
}

/* A block that must not change while bad calls are made on its heap. */
typedef struct witness {
    void *p;
    size_t size;
    unsigned seed;
} witness;

static witness witness_new(hm_heap *h, size_t size, unsigned seed) {
    witness w = {hm_alloc(h, size), size, seed};
    assert_non_null(w.p);
    tu_fill(w.p, size, seed);
    return w;
}

static void witness_check(const witness *w, const char *after) {
    size_t bad = tu_check(w->p, w->size, w->seed);
    if (bad != w->size)
        fail_msg("after %s: block %p (%zu bytes) changed at offset %zu", after, w->p, w->size, bad);
}

/* Common checks of a block just returned for `size` bytes by `h`. */
static void check_block(hm_heap *h, void *p, size_t size, const char *what) {
    if (p == NULL) fail_msg("%s(%zu) returned NULL", what, size);
    if (!tu_is_aligned(p, 16)) fail_msg("%s(%zu) returned %p: not 16-byte aligned", what, size, p);
    size_t us = hm_usable_size(p);
    if (us < size) fail_msg("%s(%zu): hm_usable_size is %zu", what, size, us);
    if (hm_heap_of(p) != h)
        fail_msg("%s(%zu): hm_heap_of(%p) is %p, expected %p", what, size, p, (void *)hm_heap_of(p),
                 (void *)h);
}

/* ---- hm_alloc ----------------------------------------------------------------------------------
 */
static void test_alloc(void **state) {
    (void)state;
    static const unsigned flags[] = {0, HM_HEAP_THREADSAFE};
    for (size_t f = 0; f < TU_ARRAY_SIZE(flags); f++) {
        hm_heap *h = new_heap(flags[f]);
        void *blocks[TU_ARRAY_SIZE(k_sizes)];
        for (size_t i = 0; i < TU_ARRAY_SIZE(k_sizes); i++) {
            blocks[i] = hm_alloc(h, k_sizes[i]);
            check_block(h, blocks[i], k_sizes[i], "hm_alloc");
            tu_fill(blocks[i], k_sizes[i], (unsigned)i);
        }
        for (size_t i = 0; i < TU_ARRAY_SIZE(k_sizes); i++) {
            size_t bad = tu_check(blocks[i], k_sizes[i], (unsigned)i);
            if (bad != k_sizes[i])
                fail_msg("block of %zu bytes changed at offset %zu", k_sizes[i], bad);
        }
        for (size_t i = 0; i < TU_ARRAY_SIZE(k_sizes); i++)
            hm_free(blocks[i]);

        /* Each criticality level. */
        for (int l = eTaskCritical; l <= eProcessCritical; l++) {
            for (size_t i = 0; i < TU_ARRAY_SIZE(k_sizes); i += 3) {
                void *p = hm_alloc_level(h, k_sizes[i], (EMemoryCriticalLevel)l);
                check_block(h, p, k_sizes[i], "hm_alloc_level");
                memset(p, 0x3C, k_sizes[i]);
                hm_free(p);
            }
        }

        /* Size 0: unique blocks. */
        void *z[16];
        for (int i = 0; i < 16; i++) {
            z[i] = hm_alloc(h, 0);
            check_block(h, z[i], 0, "hm_alloc");
            for (int j = 0; j < i; j++)
                if (z[j] == z[i]) fail_msg("two live size-0 blocks at %p", z[i]);
        }
        for (int i = 0; i < 16; i++)
            hm_free(z[i]);

        /* Requests that cannot be met. */
        witness w = witness_new(h, 3000, 9);
        for (size_t i = 0; i < TU_ARRAY_SIZE(k_impossible); i++) {
            void *p = hm_alloc(h, k_impossible[i]);
            if (p != NULL)
                fail_msg("hm_alloc(%#zx) returned %p, expected NULL", k_impossible[i], p);
            p = hm_alloc_level(h, k_impossible[i], eProcessCritical);
            if (p != NULL) fail_msg("hm_alloc_level(%#zx) returned %p", k_impossible[i], p);
        }
        witness_check(&w, "the impossible requests");
        void *p = hm_alloc(h, 100);
        check_block(h, p, 100, "hm_alloc after failures");
        hm_free(p);
        hm_free(w.p);
        hm_free(NULL); /* does nothing */
        hm_heap_release(h);
    }
}

/* ---- hm_calloc
 * ------------------------------------------------------------------------------------ */
static int all_zero(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return 0;
    return 1;
}

/* hm_realloc grows a huge block in place while its mapping (whole 4 MiB units) has room for the
 * new end and its guard page: no copy, the same address, its bytes kept; beyond that it moves.
 * Growth is charged to the budget: refused, the block stays as it was. */
static void fill_check(unsigned char *p, size_t n, size_t seed, const char *what) {
    for (size_t i = 0; i < n; i += 4093)
        if (p[i] != (unsigned char)(i + seed)) fail_msg("%s: byte %zu changed", what, i);
}
static void fill(unsigned char *p, size_t n, size_t seed) {
    for (size_t i = 0; i < n; i += 4093)
        p[i] = (unsigned char)(i + seed);
}

static void test_realloc_huge_in_place(void **state) {
    (void)state;
    const size_t mib = (size_t)1 << 20;
    hm_heap *h = new_heap(HM_HEAP_THREADSAFE);
    unsigned char *p = hm_alloc(h, mib);
    assert_non_null(p);
    fill(p, mib, 7);
    unsigned char *q = hm_realloc(h, p, 2 * mib);
    if (q != p) fail_msg("1 -> 2 MiB moved the block: %p -> %p", (void *)p, (void *)q);
    if (hm_usable_size(q) < 2 * mib) fail_msg("grown block: usable %zu", hm_usable_size(q));
    fill_check(q, mib, 7, "1 -> 2 MiB in place");
    memset(q + mib, 0x5A, mib); /* the new bytes are accessible */
    q = hm_realloc(h, q, 3 * mib);
    if (q != p) fail_msg("2 -> 3 MiB moved the block: %p -> %p", (void *)p, (void *)q);
    fill_check(q, mib, 7, "2 -> 3 MiB in place");
    memset(q + 2 * mib, 0x5B, mib);
    /* no room for 6 MiB in a mapping of one 4 MiB unit: it moves, bytes kept */
    unsigned char *r = hm_realloc(h, q, 6 * mib);
    assert_non_null(r);
    if (r == p) fail_msg("3 -> 6 MiB stayed in a 4 MiB mapping");
    fill_check(r, mib, 7, "3 -> 6 MiB moved");
    if (r[mib] != 0x5A || r[3 * mib - 1] != 0x5B) fail_msg("3 -> 6 MiB moved: grown bytes lost");
    hm_free(r);
    hm_heap_release(h);

    /* with a budget: growth in place is counted, and refused when over the limit */
    hm_config c = tu_test_config(3 * mib);
    hm_manager *mgr = tu_manager(&c);
    h = tu_heap(mgr, HM_HEAP_THREADSAFE);
    p = hm_alloc(h, mib);
    assert_non_null(p);
    fill(p, mib, 3);
    size_t before = tu_committed(mgr);
    q = hm_realloc(h, p, 2 * mib);
    if (q != p) fail_msg("with a budget: 1 -> 2 MiB moved the block");
    if (tu_committed(mgr) != before + mib)
        fail_msg("with a budget: committed %zu -> %zu, not %zu more", before, tu_committed(mgr),
                 mib);
    errno = 0;
    q = hm_realloc(h, p, (size_t)3 * mib + mib / 2); /* over the 3 MiB limit */
    if (q != NULL || errno != ENOMEM) fail_msg("over the limit: %p, errno %d", (void *)q, errno);
    if (hm_usable_size(p) != 2 * mib || tu_committed(mgr) != before + mib)
        fail_msg("a refused growth changed the block: usable %zu", hm_usable_size(p));
    fill_check(p, mib, 3, "after a refused growth");
    hm_free(p);
    tu_release(h, mgr);
}

/* A huge block hm_calloc makes in a new mapping is zero already and left untouched: its pages
 * cost no memory until the program writes them (read, they show zeros). */
static void test_calloc_new_block_untouched(void **state) {
    (void)state;
    hm_heap *h = new_heap(HM_HEAP_THREADSAFE);
    const size_t n = (size_t)96 << 20; /* larger than any block the cache could hold here */
    size_t before = tu_rss_bytes();
    unsigned char *p = hm_calloc(h, 1, n);
    check_block(h, p, n, "hm_calloc");
    size_t after = tu_rss_bytes();
    if (before == 0 || after > before + n / 4)
        fail_msg("hm_calloc of a new 96 MiB block: RSS %zu -> %zu bytes", before, after);
    for (size_t off = 0; off < n; off += 4096)
        if (p[off] != 0 || p[off + 4095] != 0) fail_msg("new 96 MiB block: byte %zu", off);
    hm_free(p);
    hm_heap_release(h);
}

static void test_hm_calloc(void **state) {
    (void)state;
    hm_heap *h = new_heap(HM_HEAP_THREADSAFE);
    static const size_t counts[] = {1, 2, 3, 10, 100, 1000, 4097};
    static const size_t elems[] = {1, 8, 16, 24, 100, 1000};
    for (int round = 0; round < 3; round++) {
        for (size_t c = 0; c < TU_ARRAY_SIZE(counts); c++) {
            for (size_t e = 0; e < TU_ARRAY_SIZE(elems); e++) {
                size_t n = counts[c] * elems[e];
                /* Dirty a block of that size first so a reused block would show old bytes. */
                void *d = hm_alloc(h, n);
                assert_non_null(d);
                memset(d, 0xFF, n);
                hm_free(d);
                void *p = hm_calloc(h, counts[c], elems[e]);
                check_block(h, p, n, "hm_calloc");
                if (!all_zero(p, n))
                    fail_msg("hm_calloc(%zu, %zu) is not zeroed", counts[c], elems[e]);
                memset(p, 0xEE, n);
                hm_free(p);
            }
        }
    }
    /* Large and huge blocks, after dirty blocks of the same size were freed. */
    static const size_t big[] = {(size_t)1 << 20, (size_t)3 << 20, (size_t)9 << 20};
    for (size_t i = 0; i < TU_ARRAY_SIZE(big); i++) {
        for (int round = 0; round < 3; round++) {
            void *d = hm_alloc(h, big[i]);
            assert_non_null(d);
            memset(d, 0xAB, big[i]);
            hm_free(d);
            void *p = hm_calloc(h, big[i] / 16, 16);
            check_block(h, p, big[i], "hm_calloc");
            if (!all_zero(p, big[i])) fail_msg("hm_calloc of %zu bytes is not zeroed", big[i]);
            memset(p, 0xCD, big[i]);
            hm_free(p);
        }
    }
    /* A huge block made again in memory a written one left (the cache's) is zeroed. */
    {
        const size_t n = (size_t)40 << 20;
        unsigned char *p = hm_alloc(h, n);
        assert_non_null(p);
        memset(p, 0xAB, n);
        hm_free(p);
        unsigned char *q = hm_calloc(h, n / 8, 8);
        check_block(h, q, n, "hm_calloc");
        /* the freed block's memory, from the cache: else this would test a new mapping again */
        if (q != p)
            fail_msg("hm_calloc of 40 MiB: %p, not the freed block's %p", (void *)q, (void *)p);
        if (!all_zero(q, n)) fail_msg("hm_calloc of 40 MiB after a written one: not zeroed");
        hm_free(q);
    }
    /* count * size overflows: NULL. */
    static const size_t ovf[][2] = {{SIZE_MAX, 2},
                                    {2, SIZE_MAX},
                                    {SIZE_MAX / 2 + 1, 2},
                                    {(size_t)1 << 32, (size_t)1 << 32},
                                    {SIZE_MAX / 16 + 1, 16},
                                    {SIZE_MAX, SIZE_MAX},
                                    {((size_t)1 << 33) + 1, ((size_t)1 << 31) + 3}};
    for (size_t i = 0; i < TU_ARRAY_SIZE(ovf); i++) {
        void *p = hm_calloc(h, ovf[i][0], ovf[i][1]);
        if (p != NULL)
            fail_msg("hm_calloc(%#zx, %#zx) overflows but returned %p", ovf[i][0], ovf[i][1], p);
    }
    /* Products that fit but cannot be served. */
    assert_null(hm_calloc(h, 1, SIZE_MAX));
    assert_null(hm_calloc(h, (size_t)1 << 31, (size_t)1 << 31));
    /* A zero product gives a unique block. */
    void *z1 = hm_calloc(h, 0, 16), *z2 = hm_calloc(h, 16, 0);
    assert_non_null(z1);
    assert_non_null(z2);
    assert_ptr_not_equal(z1, z2);
    hm_free(z1);
    hm_free(z2);
    hm_heap_release(h);
}

/* ---- hm_realloc
 * ------------------------------------------------------------------------------------ */
static void test_hm_realloc(void **state) {
    (void)state;
    hm_heap *h = new_heap(HM_HEAP_THREADSAFE);

    /* NULL p allocates. */
    void *p = hm_realloc(h, NULL, 100);
    check_block(h, p, 100, "hm_realloc(NULL)");
    tu_fill(p, 100, 1);

    /* Grow through every class, keeping the content. */
    size_t size = 100;
    static const size_t grow[] = {
        101, 128, 200, 1000, 4096, 5000, 70000, 300000, 1 << 20, 5 << 20, (size_t)17 << 20};
    for (size_t i = 0; i < TU_ARRAY_SIZE(grow); i++) {
        void *q = hm_realloc(h, p, grow[i]);
        check_block(h, q, grow[i], "hm_realloc grow");
        size_t bad = tu_check(q, size, 1);
        if (bad != size)
            fail_msg("hm_realloc(%zu -> %zu) lost the content at offset %zu", size, grow[i], bad);
        p = q;
        size = grow[i];
        tu_fill(p, size, 1);
    }
    /* Shrink back down, keeping the prefix. */
    static const size_t shrink[] = {(size_t)9 << 20, 1 << 20, 65536, 3000, 256, 24, 1};
    for (size_t i = 0; i < TU_ARRAY_SIZE(shrink); i++) {
        void *q = hm_realloc(h, p, shrink[i]);
        check_block(h, q, shrink[i], "hm_realloc shrink");
        size_t bad = tu_check(q, shrink[i], 1);
        if (bad != shrink[i])
            fail_msg("hm_realloc(%zu -> %zu) lost the content at offset %zu", size, shrink[i], bad);
        p = q;
        size = shrink[i];
    }
    /* Same size. */
    void *q = hm_realloc(h, p, size);
    check_block(h, q, size, "hm_realloc same size");
    assert_int_equal(tu_check(q, size, 1), size);
    p = q;

    /* Failure leaves p untouched and valid. */
    p = hm_realloc(h, p, 5000);
    assert_non_null(p);
    tu_fill(p, 5000, 2);
    for (size_t i = 0; i < TU_ARRAY_SIZE(k_impossible); i++) {
        q = hm_realloc(h, p, k_impossible[i]);
        if (q != NULL)
            fail_msg("hm_realloc(p, %#zx) returned %p, expected NULL", k_impossible[i], q);
        assert_int_equal(tu_check(p, 5000, 2), 5000);
        assert_ptr_equal(hm_heap_of(p), h);
    }

    /* Size 0: a unique minimal block, p freed. */
    void *z = hm_realloc(h, p, 0);
    check_block(h, z, 0, "hm_realloc(p, 0)");
    void *z2 = hm_realloc(h, NULL, 0);
    check_block(h, z2, 0, "hm_realloc(NULL, 0)");
    assert_ptr_not_equal(z, z2);
    hm_free(z);
    hm_free(z2);

    /* Many interleaved reallocs with live neighbours. */
    void *v[64] = {0};
    size_t vs[64] = {0};
    unsigned seed = 12345;
    for (int it = 0; it < 4000; it++) {
        seed = seed * 1103515245u + 12345u;
        int k = (int)((seed >> 8) % 64);
        size_t ns = (seed >> 16) % ((seed & 1) ? 300 : 40000);
        void *r = hm_realloc(h, v[k], ns);
        check_block(h, r, ns, "hm_realloc");
        size_t keep = vs[k] < ns ? vs[k] : ns;
        size_t bad = tu_check(r, keep, (unsigned)k);
        if (bad != keep) fail_msg("hm_realloc(%zu -> %zu) lost content at %zu", vs[k], ns, bad);
        tu_fill(r, ns, (unsigned)k);
        v[k] = r;
        vs[k] = ns;
    }
    for (int k = 0; k < 64; k++) {
        assert_int_equal(tu_check(v[k], vs[k], (unsigned)k), vs[k]);
        hm_free(v[k]);
    }
    hm_heap_release(h);
}

/* ---- hm_alloc_aligned
 * ------------------------------------------------------------------------------ */
static void test_alloc_aligned(void **state) {
    (void)state;
    hm_heap *h = new_heap(HM_HEAP_THREADSAFE);
    for (size_t align = 1; align <= ((size_t)64 << 20); align <<= 1) {
        size_t sizes[] = {0, 1, 16, 100, align, align + 1, 3 * align / 2 + 7};
        void *p[TU_ARRAY_SIZE(sizes)];
        for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
            p[i] = hm_alloc_aligned(h, sizes[i], align);
            if (p[i] == NULL) fail_msg("hm_alloc_aligned(%zu, %zu) returned NULL", sizes[i], align);
            if (!tu_is_aligned(p[i], align < 16 ? 16 : align))
                fail_msg("hm_alloc_aligned(%zu, %zu) returned %p", sizes[i], align, p[i]);
            check_block(h, p[i], sizes[i], "hm_alloc_aligned");
            tu_fill(p[i], sizes[i], (unsigned)(i + align));
        }
        for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
            size_t bad = tu_check(p[i], sizes[i], (unsigned)(i + align));
            if (bad != sizes[i])
                fail_msg("aligned block (%zu, %zu) changed at %zu", sizes[i], align, bad);
            /* Aligned blocks free through every path. */
            if (i % 2)
                hm_free(p[i]);
            else
                assert_int_equal(hm_heap_free(h, p[i]), HM_OK);
        }
    }
    static const size_t not_pow2[] = {0,
                                      3,
                                      5,
                                      6,
                                      12,
                                      24,
                                      48,
                                      96,
                                      100,
                                      4095,
                                      4097,
                                      3u << 20,
                                      SIZE_MAX,
                                      SIZE_MAX / 2,
                                      ((size_t)1 << 40) + 1};
    for (size_t i = 0; i < TU_ARRAY_SIZE(not_pow2); i++) {
        void *p = hm_alloc_aligned(h, 64, not_pow2[i]);
        if (p != NULL)
            fail_msg("hm_alloc_aligned(64, %#zx) returned %p, expected NULL", not_pow2[i], p);
    }
    /* Powers of two that cannot be served, and impossible sizes. */
    assert_null(hm_alloc_aligned(h, 64, (size_t)1 << 63));
    assert_null(hm_alloc_aligned(h, SIZE_MAX, 16));
    assert_null(hm_alloc_aligned(h, SIZE_MAX - 4096, 4096));
    assert_null(hm_alloc_aligned(h, (size_t)PTRDIFF_MAX + 1, 64));
    void *p = hm_alloc_aligned(h, 10, 64);
    check_block(h, p, 10, "hm_alloc_aligned after failures");
    hm_free(p);
    hm_heap_release(h);
}

/* ---- hm_usable_size
 * ---------------------------------------------------------------------------------- */
static void test_usable_size(void **state) {
    (void)state;
    hm_heap *h = new_heap(HM_HEAP_THREADSAFE);
    assert_int_equal(hm_usable_size(NULL), 0);
    void *blocks[TU_ARRAY_SIZE(k_sizes)];
    size_t us[TU_ARRAY_SIZE(k_sizes)];
    for (size_t i = 0; i < TU_ARRAY_SIZE(k_sizes); i++) {
        blocks[i] = hm_alloc(h, k_sizes[i]);
        assert_non_null(blocks[i]);
        us[i] = hm_usable_size(blocks[i]);
        if (us[i] < k_sizes[i]) fail_msg("hm_usable_size of a %zu block is %zu", k_sizes[i], us[i]);
        /* Size classes keep waste low (under 12.5 % up to 1 KiB, under 25 % above:
         * docs/DESIGN-NOTES.md). */
        if (k_sizes[i] >= 64 && k_sizes[i] <= 65536 && us[i] > k_sizes[i] + k_sizes[i] / 4)
            fail_msg("hm_usable_size of a %zu block is %zu: more than 25%% waste", k_sizes[i],
                     us[i]);
        /* Every usable byte may be written. */
        tu_fill(blocks[i], us[i], (unsigned)i);
    }
    for (size_t i = 0; i < TU_ARRAY_SIZE(k_sizes); i++) {
        size_t bad = tu_check(blocks[i], us[i], (unsigned)i);
        if (bad != us[i])
            fail_msg("usable bytes of a %zu block (usable %zu) changed at %zu", k_sizes[i], us[i],
                     bad);
        assert_int_equal(hm_usable_size(blocks[i]), us[i]);
        hm_free(blocks[i]);
    }
    for (size_t c = 1; c <= 8192; c += c < 256 ? 1 : 37) {
        void *p = hm_calloc(h, 1, c);
        assert_non_null(p);
        assert_true(hm_usable_size(p) >= c);
        hm_free(p);
    }
    hm_heap_release(h);
}

/* ---- hm_heap_of
 * -------------------------------------------------------------------------------------- */
static char g_static_buf[4096];

static void test_heap_of(void **state) {
    (void)state;
    hm_heap *a = new_heap(HM_HEAP_THREADSAFE), *b = new_heap(0);
    hm_manager *mgr = tu_manager(NULL);
    hm_heap *c = tu_heap(mgr, HM_HEAP_THREADSAFE);
    assert_ptr_not_equal(a, b);
    static const size_t sizes[] = {0, 16, 300, 40000, (size_t)6 << 20};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        char *pa = hm_alloc(a, sizes[i]), *pb = hm_alloc(b, sizes[i]), *pc = hm_alloc(c, sizes[i]);
        assert_ptr_equal(hm_heap_of(pa), a);
        assert_ptr_equal(hm_heap_of(pb), b);
        assert_ptr_equal(hm_heap_of(pc), c);
        if (sizes[i] >= 32) {
            assert_null(hm_heap_of(pa + 1));
            assert_null(hm_heap_of(pa + 16));
            assert_null(hm_heap_of(pb + 8));
            assert_null(hm_heap_of(pc + sizes[i] / 2));
        }
        hm_free(pa);
        hm_free(pb);
        hm_free(pc);
    }
    char stack_buf[64];
    memset(stack_buf, 0, sizeof(stack_buf));
    char *m = malloc(64);
    assert_non_null(m);
    assert_null(hm_heap_of(NULL));
    assert_null(hm_heap_of(stack_buf));
    assert_null(hm_heap_of(g_static_buf));
    assert_null(hm_heap_of(m));
    assert_null(hm_heap_of(tu_unmapped_address()));
    free(m);
    hm_heap *d = hm_heap_default();
    assert_non_null(d);
    assert_ptr_equal(hm_heap_default(), d);
    void *pd = hm_alloc(d, 50);
    check_block(d, pd, 50, "hm_alloc on the default heap");
    hm_free(pd);
    hm_heap_release(a);
    hm_heap_release(b);
    tu_release(c, mgr);
}

/* ---- hm_heap_free
 * ------------------------------------------------------------------------------------ */
static const char *result_name(hm_result r) {
    switch (r) {
    case HM_OK:
        return "HM_OK";
    case HM_ERR_NOT_OWNED:
        return "HM_ERR_NOT_OWNED";
    case HM_ERR_NOT_BLOCK:
        return "HM_ERR_NOT_BLOCK";
    case HM_ERR_OTHER_HEAP:
        return "HM_ERR_OTHER_HEAP";
    case HM_ERR_INVALID_ARG:
        return "HM_ERR_INVALID_ARG";
    case HM_ERR_NOMEM:
        return "HM_ERR_NOMEM";
    }
    return "(unknown)";
}

static void expect_heap_free(hm_heap *h, void *p, hm_result expected, const char *what,
                             const witness *w) {
    hm_result r = hm_heap_free(h, p);
    if (r != expected)
        fail_msg("hm_heap_free(%s = %p) gave %s (%d), expected %s", what, p, result_name(r), (int)r,
                 result_name(expected));
    if (w) witness_check(w, what);
}

static void test_heap_free_results(void **state) {
    (void)state;
    long pagesz = sysconf(_SC_PAGESIZE);
    static const unsigned flags[] = {0, HM_HEAP_THREADSAFE, HM_HEAP_EXECUTABLE};
    for (size_t f = 0; f < TU_ARRAY_SIZE(flags); f++) {
        hm_heap *h = new_heap(flags[f]);
        hm_heap *other = new_heap(HM_HEAP_THREADSAFE);
        hm_manager *mgr2 = tu_manager(NULL);
        hm_heap *far = tu_heap(mgr2, 0);
        witness w = witness_new(h, 2500, 77);

        expect_heap_free(h, NULL, HM_OK, "NULL", &w);

        /* Foreign pointers. */
        char stack_buf[256];
        memset(stack_buf, 0, sizeof(stack_buf));
        expect_heap_free(h, stack_buf, HM_ERR_NOT_OWNED, "a stack address", &w);
        expect_heap_free(h, g_static_buf, HM_ERR_NOT_OWNED, "a static buffer", &w);
        char *m = malloc(100), *mb = malloc(4 << 20);
        assert_non_null(m);
        assert_non_null(mb);
        expect_heap_free(h, m, HM_ERR_NOT_OWNED, "a glibc malloc block", &w);
        expect_heap_free(h, mb, HM_ERR_NOT_OWNED, "a 4 MiB glibc malloc block", &w);
        free(m);
        free(mb);
        expect_heap_free(h, tu_unmapped_address(), HM_ERR_NOT_OWNED, "an unmapped address", &w);
        size_t len = (size_t)pagesz * 4;
        char *none = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        assert_true(none != MAP_FAILED);
        expect_heap_free(h, none, HM_ERR_NOT_OWNED, "a PROT_NONE region", &w);
        expect_heap_free(h, none + 48, HM_ERR_NOT_OWNED, "a PROT_NONE region + 48", &w);
        munmap(none, len);

        /* Interior pointers of live blocks. */
        static const size_t sizes[] = {256, 1000, 30000, (size_t)8 << 20};
        for (size_t s = 0; s < TU_ARRAY_SIZE(sizes); s++) {
            witness b = witness_new(h, sizes[s], (unsigned)s);
            char *p = b.p;
            size_t offs[] = {1, 8, 16, 100, sizes[s] / 2, sizes[s] - 16, 4096, (size_t)5 << 20};
            for (size_t o = 0; o < TU_ARRAY_SIZE(offs); o++) {
                if (offs[o] >= sizes[s]) continue;
                char what[96];
                snprintf(what, sizeof(what), "p+%zu of a %zu-byte block", offs[o], sizes[s]);
                expect_heap_free(h, p + offs[o], HM_ERR_NOT_BLOCK, what, &b);
            }
            witness_check(&w, "interior frees");
            expect_heap_free(h, p, HM_OK, "the block itself", NULL);
        }

        /* Blocks of other heaps: same manager, another manager. */
        static const size_t osizes[] = {0, 48, 5000, (size_t)3 << 20};
        for (size_t s = 0; s < TU_ARRAY_SIZE(osizes); s++) {
            witness o1 = witness_new(other, osizes[s], 1), o2 = witness_new(far, osizes[s], 2);
            expect_heap_free(h, o1.p, HM_ERR_OTHER_HEAP, "a block of another heap", &o1);
            expect_heap_free(h, o2.p, HM_ERR_OTHER_HEAP, "a block of another manager's heap", &o2);
            expect_heap_free(other, w.p, HM_ERR_OTHER_HEAP, "a block of another heap", &w);
            assert_ptr_equal(hm_heap_of(o1.p), other);
            assert_ptr_equal(hm_heap_of(o2.p), far);
            expect_heap_free(other, o1.p, HM_OK, "its own block", NULL);
            expect_heap_free(far, o2.p, HM_OK, "its own block", NULL);
        }

        /* The heap still works; the witness frees exactly once. */
        void *p = hm_alloc(h, 64);
        check_block(h, p, 64, "hm_alloc after bad frees");
        expect_heap_free(h, p, HM_OK, "a valid block", NULL);
        expect_heap_free(h, w.p, HM_OK, "the witness", NULL);
        tu_release(far, mgr2);
        hm_heap_release(other);
        hm_heap_release(h);
    }
}

/* ---- heaps and managers
 * ------------------------------------------------------------------------------- */
static void test_heap_new_flags(void **state) {
    (void)state;
    static const unsigned bad[] = {4, 5, 7, 8, 0x10, 0xFF, 0x80000000u, 0x80000001u, ~0u};
    for (size_t i = 0; i < TU_ARRAY_SIZE(bad); i++) {
        hm_heap *h = hm_heap_new(NULL, bad[i]);
        if (h != NULL)
            fail_msg("hm_heap_new(NULL, %#x) returned %p, expected NULL", bad[i], (void *)h);
    }
    hm_manager *mgr = tu_manager(NULL);
    assert_null(hm_heap_new(mgr, 4));
    hm_heap *hs[4];
    for (unsigned f = 0; f < 4; f++) {
        hs[f] = hm_heap_new(f % 2 ? mgr : NULL, f);
        assert_non_null(hs[f]);
        for (unsigned g = 0; g < f; g++)
            assert_ptr_not_equal(hs[f], hs[g]);
        void *p = hm_alloc(hs[f], 128);
        check_block(hs[f], p, 128, "hm_alloc");
        hm_free(p);
    }
    for (unsigned f = 0; f < 4; f++)
        hm_heap_release(hs[f]);
    hm_manager_release(mgr);
}

static void test_manager_lifetime(void **state) {
    (void)state;
    hm_config cfg;
    memset(&cfg, 0xFF, sizeof(cfg));
    hm_config_init(&cfg);
    if (getenv("HM_STATS") == NULL) assert_false(cfg.print_stats); /* off by default */
    hm_manager *mgr = tu_manager(&cfg);
    hm_manager_retain(mgr);
    hm_manager_release(mgr);
    hm_heap *h = tu_heap(mgr, HM_HEAP_THREADSAFE);
    hm_manager_release(mgr); /* the heap keeps the manager alive */
    void *blocks[100];
    for (int i = 0; i < 100; i++) {
        blocks[i] = hm_alloc(h, (size_t)i * 500);
        check_block(h, blocks[i], (size_t)i * 500, "hm_alloc");
        memset(blocks[i], i, (size_t)i * 500);
    }
    void *big = hm_alloc(h, 10 << 20);
    check_block(h, big, 10 << 20, "hm_alloc");
    memset(big, 1, 10 << 20);
    for (int i = 0; i < 100; i++)
        hm_free(blocks[i]);
    hm_free(big);
    hm_heap_release(h);

    hm_manager *d = hm_manager_default();
    assert_non_null(d);
    assert_ptr_equal(hm_manager_default(), d);
}

static void test_non_threadsafe_heap(void **state) {
    (void)state;
    hm_heap *h = new_heap(0);
    void *v[512] = {0};
    size_t vs[512] = {0};
    uint64_t rng = 88172645463325252ull;
    for (int it = 0; it < 200000; it++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        int k = (int)(rng % 512);
        if (v[k]) {
            size_t bad = tu_check(v[k], vs[k] < 256 ? vs[k] : 256, (unsigned)k);
            if (bad != (vs[k] < 256 ? vs[k] : 256)) fail_msg("block changed at %zu", bad);
            if (it & 1)
                hm_free(v[k]);
            else
                assert_int_equal(hm_heap_free(h, v[k]), HM_OK);
            v[k] = NULL;
        } else {
            vs[k] = (rng >> 20) % ((rng & 0xF0) ? 512 : 50000);
            v[k] = hm_alloc(h, vs[k]);
            check_block(h, v[k], vs[k], "hm_alloc");
            tu_fill(v[k], vs[k] < 256 ? vs[k] : 256, (unsigned)k);
        }
    }
    hm_heap_stats_t st;
    size_t live = 0;
    for (int k = 0; k < 512; k++)
        live += v[k] != NULL;
    hm_heap_stats(h, &st);
    assert_int_equal(st.live_blocks, live);
    for (int k = 0; k < 512; k++)
        hm_free(v[k]);
    hm_heap_stats(h, &st);
    assert_int_equal(st.live_blocks, 0);
    hm_heap_release(h);
}

/* ---- statistics
 * --------------------------------------------------------------------------------------- */
static void test_heap_stats(void **state) {
    (void)state;
    hm_manager *mgr = tu_manager(NULL);
    hm_heap *h = tu_heap(mgr, HM_HEAP_THREADSAFE);
    hm_heap_stats_t st;
    memset(&st, 0xFF, sizeof(st));
    hm_heap_stats(h, &st);
    assert_int_equal(st.live_blocks, 0);
    assert_int_equal(st.live_bytes, 0);
    assert_int_equal(st.huge_blocks, 0);
    assert_true(st.peak_committed >= st.committed);

    enum { NSMALL = 2000, NMED = 20 };
    void *small[NSMALL], *med[NMED];
    size_t bytes = 0;
    for (int i = 0; i < NSMALL; i++) {
        small[i] = hm_alloc(h, 1000);
        assert_non_null(small[i]);
        memset(small[i], 1, 1000);
        bytes += hm_usable_size(small[i]);
    }
    hm_heap_stats(h, &st);
    assert_int_equal(st.live_blocks, NSMALL);
    assert_int_equal(st.live_bytes, bytes);
    for (int i = 0; i < NMED; i++) {
        med[i] = hm_alloc(h, 100000);
        assert_non_null(med[i]);
        memset(med[i], 2, 100000);
        bytes += hm_usable_size(med[i]);
    }
    void *huge = hm_alloc(h, (size_t)64 << 20);
    assert_non_null(huge);
    memset(huge, 3, (size_t)1 << 20);
    bytes += hm_usable_size(huge);
    hm_heap_stats(h, &st);
    assert_int_equal(st.live_blocks, NSMALL + NMED + 1);
    assert_int_equal(st.live_bytes, bytes);
    assert_true(st.huge_blocks >= 1);
    assert_true(st.segments >= 1);
    assert_true(st.pages >= 1);
    assert_true(st.threads >= 1);
    /* Committed covers at least the small and medium blocks (all touched). */
    assert_true(st.committed >= (size_t)NSMALL * 1000 + (size_t)NMED * 100000);
    assert_true(st.peak_committed >= st.committed);
    assert_true(st.reserved >= st.committed);
    size_t live_committed = st.committed;

    /* Free every other small block and the huge one. */
    for (int i = 0; i < NSMALL; i += 2) {
        bytes -= hm_usable_size(small[i]);
        hm_free(small[i]);
    }
    bytes -= hm_usable_size(huge);
    hm_free(huge);
    hm_heap_stats(h, &st);
    assert_int_equal(st.live_blocks, NSMALL / 2 + NMED);
    assert_int_equal(st.live_bytes, bytes);

    for (int i = 1; i < NSMALL; i += 2)
        hm_free(small[i]);
    for (int i = 0; i < NMED; i++)
        hm_free(med[i]);
    hm_heap_stats(h, &st);
    assert_int_equal(st.live_blocks, 0);
    assert_int_equal(st.live_bytes, 0);
    size_t before_collect = st.committed;
    hm_heap_collect(h, true);
    hm_heap_stats(h, &st);
    if (!(st.committed < live_committed && st.committed <= before_collect &&
          st.committed <= live_committed / 4))
        fail_msg("committed: %zu with live blocks, %zu after freeing them all, %zu after "
                 "hm_heap_collect(force): expected it to go down below a quarter",
                 live_committed, before_collect, st.committed);
    assert_true(st.peak_committed >= live_committed);
    tu_release(h, mgr);
}

static void test_heap_stats_print(void **state) {
    (void)state;
    hm_heap *h = new_heap(HM_HEAP_THREADSAFE);
    void *p = hm_alloc(h, 4000);
    assert_non_null(p);
    FILE *f = tmpfile();
    assert_non_null(f);
    hm_heap_stats_print(h, f);
    fflush(f);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    char buf[8192];
    size_t got = fread(buf, 1, sizeof(buf) - 1, f);
    buf[got] = '\0';
    fclose(f);
    if (strstr(buf, "live") == NULL)
        fail_msg("hm_heap_stats_print wrote %ld bytes without the word \"live\":\n%s", n, buf);
    hm_free(p);
    hm_heap_release(h);
}

/* ---- collection and cross-thread frees
 * -------------------------------------------------------------- */
typedef struct xfree_ctx {
    void **blocks;
    int n;
    hm_heap *heap;
    int bad;
} xfree_ctx;

static void *xfree_thread(void *arg) {
    xfree_ctx *c = arg;
    for (int i = 0; i < c->n; i++) {
        if (i % 2) {
            hm_free(c->blocks[i]);
        } else if (hm_heap_free(c->heap, c->blocks[i]) != HM_OK) {
            c->bad++;
        }
    }
    return NULL;
}

static void test_cross_thread_free(void **state) {
    (void)state;
    tu_die_on_fatal_signals();
    hm_heap *h = new_heap(HM_HEAP_THREADSAFE);
    enum { N = 20000 };
    void **blocks = malloc(N * sizeof(void *));
    assert_non_null(blocks);
    for (int i = 0; i < N; i++) {
        size_t sz = (size_t)(i % 97) * 11 + (i % 500 == 0 ? 200000 : 0);
        blocks[i] = hm_alloc(h, sz);
        assert_non_null(blocks[i]);
        memset(blocks[i], 7, sz);
    }
    xfree_ctx c = {blocks, N, h, 0};
    tu_run_thread(xfree_thread, &c);
    assert_int_equal(c.bad, 0);
    hm_heap_collect(h, true);
    hm_heap_stats_t st;
    hm_heap_stats(h, &st);
    assert_int_equal(st.live_blocks, 0);
    assert_int_equal(st.live_bytes, 0);
    /* The heap reuses the memory freed remotely. */
    for (int i = 0; i < N; i++) {
        blocks[i] = hm_alloc(h, 64);
        assert_non_null(blocks[i]);
    }
    for (int i = 0; i < N; i++)
        hm_free(blocks[i]);
    free(blocks);
    hm_heap_release(h);
}

/* Release a heap with live blocks; everything comes back and other heaps are unaffected. */
static void test_heap_release_live(void **state) {
    (void)state;
    hm_heap *keep = new_heap(HM_HEAP_THREADSAFE);
    witness w = witness_new(keep, 10000, 3);
    for (int round = 0; round < 5; round++) {
        hm_heap *h = new_heap(round % 2 ? 0 : HM_HEAP_THREADSAFE);
        for (int i = 0; i < 3000; i++) {
            void *p = hm_alloc(h, (size_t)(i % 300) * 13 + (i % 1000 == 0 ? (3 << 20) : 0));
            assert_non_null(p);
        }
        hm_heap_release(h);
        witness_check(&w, "releasing another heap");
    }
    hm_free(w.p);
    hm_heap_release(keep);
}

/* ---- memory goes back
 * ---------------------------------------------------------------------------- */
/* The library says the version of the headers it was built with, as a number and a string. */
static void test_version(void **state) {
    (void)state;
    assert_int_equal(hm_version(), HOSTMALLOC_VERSION);
    assert_int_equal(HOSTMALLOC_VERSION, HOSTMALLOC_VERSION_MAJOR * 10000 +
                                             HOSTMALLOC_VERSION_MINOR * 100 +
                                             HOSTMALLOC_VERSION_PATCH);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", HOSTMALLOC_VERSION_MAJOR, HOSTMALLOC_VERSION_MINOR,
             HOSTMALLOC_VERSION_PATCH);
    assert_string_equal(hm_version_string(), want);
    assert_string_equal(hm_version_string(), HOSTMALLOC_VERSION_STRING);
}

static void test_memory_returned(void **state) {
    (void)state;
    hm_heap *h = new_heap(HM_HEAP_THREADSAFE);
    enum { NSMALL = 131072, NMED = 1311 }; /* 128 MiB of 1 KiB + 128 MiB of 100 KiB blocks */
    void **small = malloc(NSMALL * sizeof(void *));
    void **med = malloc(NMED * sizeof(void *));
    assert_non_null(small);
    assert_non_null(med);
    memset(small, 0, NSMALL * sizeof(void *));
    memset(med, 0, NMED * sizeof(void *));
    void *warm = hm_alloc(h, 1024);
    hm_free(warm);

    hm_heap_stats_t st;
    hm_heap_stats(h, &st);
    size_t start_committed = st.committed;
    size_t start = tu_rss_bytes();
    assert_true(start > 0);
    for (int i = 0, j = 0; i < NSMALL; i++) {
        small[i] = hm_alloc(h, 1024);
        assert_non_null(small[i]);
        memset(small[i], 0x6B, 1024);
        if (i % 100 == 0 && j < NMED) {
            med[j] = hm_alloc(h, 100 * 1024);
            assert_non_null(med[j]);
            memset(med[j], 0x6C, 100 * 1024);
            j++;
        }
    }
    for (int j = 0; j < NMED; j++)
        if (!med[j]) {
            med[j] = hm_alloc(h, 100 * 1024);
            assert_non_null(med[j]);
            memset(med[j], 0x6C, 100 * 1024);
        }
    hm_heap_stats(h, &st);
    size_t full_committed = st.committed;
    if (full_committed < 256 * TU_MIB)
        fail_msg("the heap counts %zu KiB committed with 256 MiB of blocks live",
                 full_committed / 1024);
    size_t full = tu_rss_bytes();
    for (int i = 0; i < NSMALL; i++)
        hm_free(small[i]);
    for (int j = 0; j < NMED; j++)
        hm_free(med[j]);
    hm_heap_collect(h, true);
    /* What hostmalloc controls: its own count of committed bytes is back near the start. */
    hm_heap_stats(h, &st);
    if (st.committed > start_committed + 4 * TU_MIB)
        fail_msg("after freeing 256 MiB and hm_heap_collect(heap, true), the heap holds %zu KiB "
                 "committed; it held %zu KiB before (%zu KiB with the blocks)",
                 st.committed / 1024, start_committed / 1024, full_committed / 1024);
    /* And, loosely, the process's RSS follows (labelled rss: only where hostmalloc owns it). */
    size_t after = tu_rss_bytes();
    if (after > start + 64 * TU_MIB)
        fail_msg("after freeing 256 MiB and hm_heap_collect(heap, true), RSS is %zu KiB; it was "
                 "%zu KiB before (%zu KiB with the blocks): more than 64 MiB kept",
                 after / 1024, start / 1024, full / 1024);
    free(small);
    free(med);
    hm_heap_release(h);
}

TU_TEST_MAIN(test_alloc, test_hm_calloc, test_calloc_new_block_untouched,
             test_realloc_huge_in_place, test_hm_realloc, test_alloc_aligned, test_usable_size,
             test_heap_of, test_heap_free_results, test_heap_new_flags, test_manager_lifetime,
             test_non_threadsafe_heap, test_heap_stats, test_heap_stats_print,
             test_cross_thread_free, test_heap_release_live, test_version, test_memory_returned)
