/* SPDX-License-Identifier: MIT */
/* tests/death/test_protect_death.c: what the hardware must refuse. Code in a block of a data
 * instance (IHostMalloc without MALLOC_EXECUTABLE) must fault when called, and pages of
 * VirtualAlloc must allow exactly what their protection says (read, write, execute), whether
 * committed with it or changed by VirtualProtect. Each access runs in a forked child. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include <hostmalloc/hosting.h>
#include <hostmalloc/hostmalloc.h>

#include "test_util.h"
#include "tu_com.h"
#include "tu_vmem.h"

#define MIB TU_MIB

static void call_in_child(void *p) {
    volatile int r = call_code(p);
    (void)r;
}

static void test_data_instance_not_executable(void **state) {
    (void)state;
    TU_SKIP_UNLESS_X86_64();
    IHostMemoryManager *mgr = new_manager();
    static const DWORD types[] = {0, MALLOC_THREADSAFE};
    for (size_t t = 0; t < TU_ARRAY_SIZE(types); t++) {
        IHostMalloc *m = new_malloc(mgr, types[t]);
        static const size_t sizes[] = {16, 5000, (size_t)5 << 20};
        for (size_t s = 0; s < TU_ARRAY_SIZE(sizes); s++) {
            unsigned char *p = must_alloc(m, sizes[s], eTaskCritical);
            memcpy(p, k_ret42, sizeof(k_ret42));
            tu_child_result res;
            assert_int_equal(tu_run_child(call_in_child, p, &res), 0);
            tu_assert_child_signaled(&res, SIGSEGV);
            must_free(m, p);
        }
        IHostMalloc_Release(m);
    }
    IHostMemoryManager_Release(mgr);
}

typedef struct access_arg {
    unsigned char *p;
    int op; /* 0 read, 1 write, 2 execute */
} access_arg;

static void access_child(void *arg) {
    access_arg *a = arg;
    if (a->op == 0) {
        volatile unsigned char v = *(volatile unsigned char *)a->p;
        (void)v;
    } else if (a->op == 1) {
        *(volatile unsigned char *)(a->p + 1) = 0x90;
    } else {
        void (*fn)(void);
        void *code = a->p;
        memcpy(&fn, &code, sizeof fn);
        fn();
    }
}

typedef struct prot_case {
    DWORD prot;
    const char *name;
    int read_ok, write_ok, exec_ok; /* 1 allowed, 0 must fault, -1 not checked */
} prot_case;

/* x86-64 cannot refuse reads of execute-only pages (without protection keys): not checked. */
static const prot_case k_prot_cases[] = {
    {PAGE_NOACCESS, "PAGE_NOACCESS", 0, 0, 0},
    {PAGE_READONLY, "PAGE_READONLY", 1, 0, 0},
    {PAGE_READWRITE, "PAGE_READWRITE", 1, 1, 0},
    {PAGE_EXECUTE, "PAGE_EXECUTE", -1, 0, 1},
    {PAGE_EXECUTE_READ, "PAGE_EXECUTE_READ", 1, 0, 1},
    {PAGE_EXECUTE_READWRITE, "PAGE_EXECUTE_READWRITE", 1, 1, 1},
};

static void check_access(unsigned char *p, const prot_case *c, const char *how) {
    static const char *const ops[] = {"read", "write", "execute"};
    const int want[3] = {c->read_ok, c->write_ok, c->exec_ok};
    for (int op = 0; op < 3; op++) {
        if (want[op] < 0) continue;
        access_arg a = {p, op};
        tu_child_result res;
        assert_int_equal(tu_run_child(access_child, &a, &res), 0);
        char sb[96];
        if (want[op]) {
            if (!WIFEXITED(res.status) || WEXITSTATUS(res.status) != 0)
                fail_msg("%s (%s): %s must work but the child %s", c->name, how, ops[op],
                         tu_status_str(res.status, sb, sizeof sb));
        } else if (!WIFSIGNALED(res.status) ||
                   (WTERMSIG(res.status) != SIGSEGV && WTERMSIG(res.status) != SIGBUS)) {
            fail_msg("%s (%s): %s must fault but the child %s", c->name, how, ops[op],
                     tu_status_str(res.status, sb, sizeof sb));
        }
    }
}

static void test_protection_access(void **state) {
    (void)state;
    IHostMemoryManager *mm = vm_manager(64 * MIB);
    for (size_t i = 0; i < TU_ARRAY_SIZE(k_prot_cases); i++) {
        const prot_case *c = &k_prot_cases[i];
        /* committed with the protection directly */
        unsigned char *p = va_ok(mm, NULL, PG, MEM_COMMIT, c->prot);
        expect_mbi(mm, p, MEM_COMMIT, c->prot, p, c->prot, PG, c->name);
        if (c->read_ok == 1) assert_true(all_bytes(p, PG, 0));
        if (c->exec_ok != 1) check_access(p, c, "committed so");
        release_ok(mm, p);
        /* committed read-write with a `ret`, then protected */
        p = va_ok(mm, NULL, PG, MEM_COMMIT, PAGE_READWRITE);
        memset(p, 0xC3, PG); /* ret */
        DWORD old = 0;
        assert_hr(IHostMemoryManager_VirtualProtect(mm, p, PG, c->prot, &old), S_OK);
        assert_int_equal(old, PAGE_READWRITE);
        expect_mbi(mm, p, MEM_COMMIT, c->prot, p, PAGE_READWRITE, PG, c->name);
        check_access(p, c, "after VirtualProtect");
        release_ok(mm, p);
    }
    IHostMemoryManager_Release(mm);
}

/* Default mode: a huge block ends at an inaccessible guard page, and once freed its pages are
 * inaccessible while it waits in the cache; a block made there again is usable in full. */
static void touch_child(void *p) {
    *(volatile unsigned char *)p = 0x5a;
}

static void peek_child(void *p) {
    volatile unsigned char v = *(volatile unsigned char *)p;
    (void)v;
}

static void expect_fault(void (*fn)(void *), void *p, const char *what, size_t size) {
    tu_child_result res;
    assert_int_equal(tu_run_child(fn, p, &res), 0);
    char sb[96];
    if (!WIFSIGNALED(res.status) ||
        (WTERMSIG(res.status) != SIGSEGV && WTERMSIG(res.status) != SIGBUS))
        fail_msg("%s of a %zu-byte block at %p must fault but the child %s", what, size, p,
                 tu_status_str(res.status, sb, sizeof sb));
}

/* A thread-safe instance of a new manager in default or checked mode, whatever the environment
 * says, at the default limit or `limit`. */
static IHostMalloc *mode_instance(IHostMemoryManager **mgr, bool checked, size_t limit) {
    hm_config c;
    hm_config_init(&c);
    c.checked = checked;
    if (limit != 0) c.limit = limit;
    *mgr = new_manager_cfg(&c);
    return new_malloc(*mgr, MALLOC_THREADSAFE);
}

static IHostMalloc *default_mode_instance(IHostMemoryManager **mgr) {
    return mode_instance(mgr, false, 0);
}

/* Freed huge blocks fault when touched, and each ends at a guard page. The frees take about
 * 7.6 MiB of the default mode's credit of 8 MiB (the next test; each block but the last freed
 * twice, as the block and as the next one made in its memory): a size added here must keep
 * within it. */
static void test_huge_blocks_protected(void **state) {
    (void)state;
    IHostMemoryManager *mgr;
    IHostMalloc *m = default_mode_instance(&mgr);
    /* huge blocks: above the largest block of large pages (256 KiB) */
    static const size_t sizes[] = {300000, (size_t)1 << 20, ((size_t)5 << 20) + 123};
    for (size_t i = 0; i < TU_ARRAY_SIZE(sizes); i++) {
        size_t n = sizes[i];
        unsigned char *p = must_alloc(m, n, eTaskCritical);
        size_t usable = hm_usable_size(p);
        assert_true(usable >= n);
        memset(p, 0x11, usable); /* every usable byte is writable */
        expect_fault(touch_child, p + usable, "a write past the usable bytes", n);
        must_free(m, p);
        expect_fault(peek_child, p, "a read of the freed block", n);
        expect_fault(touch_child, p + n / 2, "a write into the freed block", n);
        /* the next block of that size (the same memory, from the cache) is usable in full */
        unsigned char *q = must_alloc(m, n, eTaskCritical);
        memset(q, 0x22, hm_usable_size(q));
        must_free(m, q);
    }
    assert_int_equal(IHostMalloc_Release(m), 0);
    IHostMemoryManager_Release(mgr);
}

/* The page at `p` (/proc/self/maps): 1 mapped without any access, 0 mapped with some, -1 not
 * mapped. */
static int page_state(const void *p) {
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[512];
    int state = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3) continue;
        if ((uintptr_t)p >= lo && (uintptr_t)p < hi) {
            state = strncmp(perms, "---", 3) == 0;
            break;
        }
    }
    fclose(f);
    return state;
}

/* Is the page at `p` mapped without any access? */
static bool page_inaccessible(const void *p) {
    return page_state(p) == 1;
}

/* Protections of huge blocks are paced: at most 32 in any eighth of a second per manager (256
 * a second), so that a burst of frees pays for 32 mprotect calls, not 256. Frees begun in a new
 * window have their first 32 blocks made inaccessible; the others stay accessible in the cache,
 * and every block made in that memory again is writable in full. The bound allows for every
 * window the frees spanned (the machine's load decides how many), so it holds on a busy one.
 * The blocks are of 100,000 bytes, huge under a limit below 1 GiB (no large pages), so that 32
 * of them are well within the credit of resident bytes (the next test). */
static void test_huge_protections_paced(void **state) {
    (void)state;
    IHostMemoryManager *mgr;
    IHostMalloc *m = mode_instance(&mgr, false, 512 * MIB);
    enum { K = 80, PER_WINDOW = 32, WINDOW_MS = 125 };
    const size_t n = 100000; /* a huge block (above 64 KiB, under this limit) */
    unsigned char *p[K];
    for (int i = 0; i < K; i++)
        p[i] = must_alloc(m, n, eTaskCritical);
    tu_sleep_ms(WINDOW_MS + 30); /* the guard pages' window is over */
    double t0 = tu_now_ms(), t_next = 0;
    for (int i = 0; i < K; i++) {
        must_free(m, p[i]);
        if (i == PER_WINDOW) t_next = tu_now_ms() - t0; /* the first free past the quota */
    }
    double spent = tu_now_ms() - t0;
    int none = 0;
    for (int i = 0; i < K; i++)
        none += page_inaccessible(p[i]);
    int windows = (int)(spent / WINDOW_MS) + 2;
    if (none < PER_WINDOW || none > PER_WINDOW * windows)
        fail_msg("%d of %d freed huge blocks made inaccessible in %.1f ms: expected %d to %d", none,
                 K, spent, PER_WINDOW, PER_WINDOW * windows);
    for (int i = 0; i < PER_WINDOW; i++) /* the window's first are protected */
        if (!page_inaccessible(p[i])) fail_msg("free %d of the window left accessible", i);
    /* when the free past the quota came well inside the window (the usual case; a loaded
     * machine may stretch it, and the clock is coarse), it and the next are left accessible */
    if (t_next < WINDOW_MS - 25) {
        assert_false(page_inaccessible(p[PER_WINDOW]));
        assert_false(page_inaccessible(p[PER_WINDOW + 1]));
    }
    for (int i = 0; i < K; i++) {
        unsigned char *q = must_alloc(m, n, eTaskCritical);
        memset(q, 0x33, hm_usable_size(q));
        p[i] = q;
    }
    for (int i = 0; i < K; i++)
        must_free(m, p[i]);
    assert_int_equal(IHostMalloc_Release(m), 0);
    IHostMemoryManager_Release(mgr);
}

/* Free `k` blocks of `n` bytes, each written in full, at once; return a bit for each (block i:
 * bit i) that was made inaccessible, with the time the frees took in *spent (ms). Every freed
 * block must still be mapped (kept by the cache or held). Then `k` blocks of that size are
 * made again (in that memory unless it is held) and written in full. */
static int free_written_blocks(IHostMalloc *m, size_t n, int k, double *spent) {
    unsigned char *p[8];
    assert_true(k <= (int)TU_ARRAY_SIZE(p));
    for (int i = 0; i < k; i++) {
        p[i] = must_alloc(m, n, eTaskCritical);
        memset(p[i], 0x44, n);
    }
    double t0 = tu_now_ms();
    for (int i = 0; i < k; i++)
        must_free(m, p[i]);
    *spent = tu_now_ms() - t0;
    int none = 0;
    for (int i = 0; i < k; i++) {
        int state = page_state(p[i]);
        if (state < 0) fail_msg("freed block %d of %zu bytes unmapped, not cached", i, n);
        none |= state << i;
    }
    for (int i = 0; i < k; i++) {
        p[i] = must_alloc(m, n, eTaskCritical);
        memset(p[i], 0x55, hm_usable_size(p[i]));
    }
    for (int i = 0; i < k; i++)
        must_free(m, p[i]);
    return none;
}

/* Free `k` blocks of `n` bytes of `m` at once against a credit of `burst` bytes that fills at
 * 32 MiB a second: the first blocks that fit in the burst are made inaccessible, and no more
 * blocks than the burst and the refill for the time the frees took (with 30 ms for the coarse
 * clock the allocator reads) allow; quick frees allow none past the burst. */
static void expect_credit(IHostMalloc *m, size_t n, int k, double burst) {
    double spent;
    int none = free_written_blocks(m, n, k, &spent);
    int want = (int)(burst / (double)n);
    int first = (1 << want) - 1;
    if ((none & first) != first)
        fail_msg("the first %d of %d freed blocks of %zu bytes not all made inaccessible (%#x)",
                 want, k, n, none);
    int count = __builtin_popcount((unsigned)none);
    int most = (int)((burst + (spent + 30) * (32.0 * MIB / 1000)) / (double)n);
    if (count > most)
        fail_msg("%d of %d freed blocks of %zu bytes made inaccessible in %.1f ms: expected %d "
                 "to %d",
                 count, k, n, spent, want, most);
}

/* The pace counts resident bytes too: the protections take away at most 8 MiB of resident
 * pages in a burst, then 32 MiB a second (a credit; each page made inaccessible and accessible
 * again costs a trap at its next touch on a shadow-paging virtual machine). On a new manager
 * (its credit full, its window's count far from 32): of four blocks of 4 MiB written in full
 * and freed at once, the first two are made inaccessible, the next only once the credit has
 * filled again (4 MiB: 125 ms), so with quick frees neither of the others; a block of 8 MiB,
 * the whole burst, is made inaccessible, and one of 9 MiB, more than the burst, never is. The
 * blocks of debugging have a credit of their own, a burst of 32 MiB: a held DebugAlloc block
 * of 20 MiB leaves the default mode's credit whole; of three held blocks of 20 MiB of a checked
 * heap the first is made inaccessible, the next only once that credit has filled again; and a
 * checked heap's aligned block of 20 MiB (a plain huge block) is made inaccessible. Each block
 * made again in that memory is writable in full. */
static void test_huge_protections_paced_by_bytes(void **state) {
    (void)state;
    IHostMemoryManager *mgr;
    IHostMalloc *m = default_mode_instance(&mgr);
    double spent;
    expect_credit(m, 4 * MIB, 4, 8.0 * MIB);
    assert_int_equal(IHostMalloc_Release(m), 0);
    IHostMemoryManager_Release(mgr);

    m = default_mode_instance(&mgr);
    assert_int_equal(free_written_blocks(m, 8 * MIB, 1, &spent), 1);
    assert_int_equal(IHostMalloc_Release(m), 0);
    IHostMemoryManager_Release(mgr);

    m = default_mode_instance(&mgr);
    assert_int_equal(free_written_blocks(m, 9 * MIB, 1, &spent), 0);
    assert_int_equal(IHostMalloc_Release(m), 0);
    IHostMemoryManager_Release(mgr);

    /* the credits are apart: a held DebugAlloc block of 20 MiB (debugging's credit) leaves the
     * default mode's whole, and a freed plain block of 8 MiB is made inaccessible after it */
    m = default_mode_instance(&mgr);
    void *d = NULL;
    assert_hr(IHostMalloc_DebugAlloc(m, 20 * MIB, eTaskCritical, __FILE__, __LINE__, &d), S_OK);
    memset(d, 0x66, 20 * MIB);
    assert_hr(IHostMalloc_Free(m, d), S_OK);
    assert_true(page_inaccessible(d));
    assert_int_equal(free_written_blocks(m, 8 * MIB, 1, &spent), 1);
    assert_int_equal(IHostMalloc_Release(m), 0);
    IHostMemoryManager_Release(mgr);

    m = mode_instance(&mgr, true, 0);
    expect_credit(m, 20 * MIB, 3, 32.0 * MIB);
    assert_int_equal(IHostMalloc_Release(m), 0);
    IHostMemoryManager_Release(mgr);

    hm_config c;
    hm_config_init(&c);
    c.checked = true;
    hm_manager *nm = hm_manager_new(&c);
    assert_non_null(nm);
    hm_heap *h = hm_heap_new(nm, 0);
    assert_non_null(h);
    unsigned char *a = hm_alloc_aligned(h, 20 * MIB, 256);
    assert_non_null(a);
    memset(a, 0x77, 20 * MIB);
    hm_free(a);
    assert_true(page_inaccessible(a));
    hm_heap_release(h);
    hm_manager_release(nm);
}

TU_TEST_MAIN(test_data_instance_not_executable, test_protection_access, test_huge_blocks_protected,
             test_huge_protections_paced, test_huge_protections_paced_by_bytes)
