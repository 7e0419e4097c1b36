/* SPDX-License-Identifier: MIT */
/* faulty.c: hostmalloc blocks under valgrind memcheck (a build with -DHM_VALGRIND=ON) and
 * under AddressSanitizer (-DHM_SANITIZE=address -DHM_ASAN_POISON=ON).
 *
 *   faulty faults   reads one byte past a block, writes into a freed block, leaks a block
 *   faulty overrun  only the read past the block; faulty uaf: only the write after free
 *   faulty clean    a correct program over every kind of block: the tool must stay silent
 *
 * tools.sh (valgrind) and asan.sh check what the tools say. */
#include <hostmalloc/hostmalloc.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static hm_heap *heap;
static void *leaked;

__attribute__((noinline)) static int overrun_read(void) {
    char *p = hm_alloc(heap, 10);
    memset(p, 1, 10);
    int v = ((volatile char *)p)[12]; /* past the 10 bytes, inside hostmalloc's 16-byte slot */
    hm_free(p);
    return v;
}

__attribute__((noinline)) static void write_after_free(void) {
    char *q = hm_alloc(heap, 32);
    hm_free(q);
    ((volatile char *)q)[20] = 7;
}

static void *keep;

__attribute__((noinline)) static void leak(void) {
    keep = hm_alloc(heap, 1000); /* the first block of a page: the page records its address */
    leaked = hm_alloc(heap, 1000);
    memset(leaked, 2, 1000);
    leaked = NULL; /* the only pointer is gone */
}

static void *churn(void *arg) {
    void **ring = arg;
    for (int i = 0; i < 2000; i++) {
        size_t k = (size_t)i % 64;
        hm_free(ring[k]);
        size_t sz = (size_t)(i * 37 % 3000) + 1;
        ring[k] = i % 500 == 0 ? hm_alloc(heap, 300000) : hm_alloc(heap, sz);
        memset(ring[k], i & 0xff, i % 500 == 0 ? 300000 : sz);
    }
    return NULL;
}

int main(int argc, char **argv) {
    heap = hm_heap_new(NULL, HM_HEAP_THREADSAFE);
    if (argc > 1 && strcmp(argv[1], "faults") == 0) {
        int v = overrun_read();
        write_after_free();
        leak();
        printf("done %d\n", v != 0);
        return 0;
    }
    /* one fault a run (AddressSanitizer stops at the first) */
    if (argc > 1 && strcmp(argv[1], "overrun") == 0) return overrun_read();
    if (argc > 1 && strcmp(argv[1], "uaf") == 0) {
        write_after_free();
        return 0;
    }
    /* clean: many sizes, realloc, aligned, calloc, huge, debug blocks, cross-thread frees */
    static void *ring[64];
    pthread_t t;
    pthread_create(&t, NULL, churn, ring);
    pthread_join(t, NULL);
    churn(ring); /* this thread frees what the other allocated */
    for (int k = 0; k < 64; k++)
        hm_free(ring[k]);
    char *r = hm_alloc(heap, 10);
    memset(r, 3, 10);
    r = hm_realloc(heap, r, 5000);
    memset(r, 4, 5000);
    hm_free(r);
    void *a = hm_alloc_aligned(heap, 100, 4096);
    memset(a, 5, 100);
    hm_free(a);
    char *z = hm_calloc(heap, 10, 10);
    int sum = 0;
    for (int i = 0; i < 100; i++)
        sum += z[i];
    hm_free(z);
    char *d = hm_alloc_debug(heap, 77, eTaskCritical, "faulty.c", 1);
    memset(d, 6, 77);
    hm_free(d);
    void *live = hm_alloc(heap, 500); /* still live at release: released with the heap */
    memset(live, 7, 500);
    hm_heap_release(heap);
    printf("clean %d\n", sum);
    return 0;
}
