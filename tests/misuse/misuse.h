/* SPDX-License-Identifier: MIT */
/* misuse.h: what the programs of tests/misuse share.
 *
 * Each program makes one mistake through the malloc door, gives the allocator the chance to see
 * it (the free or the allocation where a check could happen), and then exits 0: a program that
 * is still running after its mistake was let through ("missed"). The programs of a documented
 * error (NULL and errno, or an error number) exit MISUSE_REFUSED when they get exactly that
 * error. run.sh reads the outcome from the exit status and stderr.
 *
 * Every pointer a mistake uses passes through opaque(): the compiler then cannot know that it
 * was freed, lies on the stack or points past its block, so it neither warns about the mistake
 * nor optimises it away (the programs need no -Wno-... option), and what happens is what the
 * allocator does. */
#ifndef MISUSE_H
#define MISUSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

enum {
    MISUSE_MISSED = 0,      /* the mistake went through */
    MISUSE_REFUSED = 2,     /* the call failed with the documented error */
    MISUSE_WRONG_ERROR = 3, /* the call failed, but not with the documented error */
    MISUSE_BROKEN = 4,      /* the set-up failed (a correct allocation returned NULL): no result */
    MISUSE_ABSENT = 5,      /* this malloc has no such function (free_sized before glibc 2.42) */
};

#define MISUSE_PAGE 4096u

static void *volatile misuse_sink;

/* p, as a value the compiler knows nothing about */
static inline void *opaque(void *p) {
    misuse_sink = p;
    return misuse_sink;
}

/* n, likewise: a size the compiler cannot check at build time */
static inline size_t opaque_size(size_t n) {
    volatile size_t v = n;
    return v;
}

/* a correct allocation of the set-up: a NULL here is no result of the misuse */
static inline char *xmalloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) exit(MISUSE_BROKEN);
    return (char *)opaque(p);
}

static inline int read_byte(const void *p) {
    return *(const volatile unsigned char *)p;
}

static inline void write_byte(void *p, int v) {
    *(volatile unsigned char *)p = (unsigned char)v;
}

/* writes n bytes one by one (a memset of a freed block could be seen through) */
static inline void write_bytes(void *p, int v, size_t n) {
    for (size_t i = 0; i < n; i++)
        write_byte((char *)p + i, v);
}

static inline int read_bytes(const void *p, size_t n) {
    int sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += read_byte((const char *)p + i);
    return sum;
}

/* the first byte of the page after the one that holds p[n - 1] */
static inline char *page_after(char *p, size_t n) {
    uintptr_t end = (uintptr_t)(p + n - 1);
    return (char *)opaque((void *)((end | (MISUSE_PAGE - 1)) + 1));
}

/* the result of a call that must fail with errno `want` (through opaque(): a compiler may
 * otherwise drop an allocation whose result is only compared with NULL, as if it succeeded) */
static inline int refused(void *result, int err, int want) {
    if (opaque(result) != NULL) return MISUSE_MISSED;
    return err == want ? MISUSE_REFUSED : MISUSE_WRONG_ERROR;
}

/* the shapes several programs share, which differ only by a size or an offset */

/* byte `offset` of a freed `size`-byte block written, then a block of that size allocated (and
 * freed): the allocation that hands the slot out again is where a check can see the write */
static inline int uaf_write_then_reuse(size_t size, size_t offset) {
    char *p = xmalloc(size);
    free(opaque(p));
    write_byte(p + offset, 0x41);
    free(xmalloc(size));
    return MISUSE_MISSED;
}

/* p, q, p with two `size`-byte blocks: the second free of p does not follow the first */
static inline int double_free_pqp(size_t size) {
    char *p = xmalloc(size), *q = xmalloc(size);
    free(opaque(p));
    free(opaque(q));
    free(opaque(p));
    return MISUSE_MISSED;
}

#endif
