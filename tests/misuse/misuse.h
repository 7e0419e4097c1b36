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
 * allocator does.
 *
 * A read of freed memory cannot be stopped without making that memory inaccessible, but an
 * allocator can make it harmless: when it overwrote the block at its free, the read finds none
 * of the program's data. The programs that read a freed block tell that apart (MISUSE_WIPED)
 * from a read that found the data still there (missed). */
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
    MISUSE_WIPED = 6,       /* a read of freed memory found none of the program's data there */
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

/* changes the byte at p (writes its complement): a one-byte mistake that really changes memory.
 * Writing a fixed value instead would leave the byte as it was whenever it already held that
 * value, and a check of a canary or tag with random bytes would then miss it 1 time in 256. */
static inline void flip_byte(void *p) {
    write_byte(p, *(volatile unsigned char *)p ^ 0xFF);
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

/* byte `offset` of a freed `size`-byte block written, then blocks of that size allocated and
 * freed: the allocation that hands the slot out again is where a check can see the write. An
 * allocator that reuses the last freed block hands it out at once; one that delays reuse (as
 * hostmalloc's checked mode does: after the page's other free blocks) needs more rounds, and
 * MISUSE_REUSE_ROUNDS is more than a page of any size here holds. */
#define MISUSE_REUSE_ROUNDS 100000
static inline int uaf_write_then_reuse(size_t size, size_t offset) {
    char *p = xmalloc(size);
    free(opaque(p));
    flip_byte(p + offset);
    for (int i = 0; i < MISUSE_REUSE_ROUNDS; i++)
        free(xmalloc(size));
    return MISUSE_MISSED;
}

/* The bytes uaf_read writes and reads back: [16, 128) of the block, past the 16 bytes a free
 * list's link (and hostmalloc's free mark or check word) may take, so that a wipe is told only
 * when the whole range changed. Byte i holds 0x10 + (i * 7) % 64: values no allocator's fill
 * pattern or zeroing uses, and no byte equal to its neighbour. */
#define MISUSE_DATA_FROM 16u
#define MISUSE_DATA_TO   128u
static inline int misuse_data(size_t i) {
    return 0x10 + (int)((i * 7) % 64);
}

/* A `size`-byte block (at least MISUSE_DATA_TO) given the program's data, freed, and read
 * back: MISUSE_WIPED when not one byte of it is left, else MISUSE_MISSED (the read leaked at
 * least part of what the block held). */
static inline int uaf_read(size_t size) {
    char *p = xmalloc(size);
    for (size_t i = MISUSE_DATA_FROM; i < MISUSE_DATA_TO; i++)
        write_byte(p + i, misuse_data(i));
    free(opaque(p));
    size_t kept = 0;
    for (size_t i = MISUSE_DATA_FROM; i < MISUSE_DATA_TO; i++)
        kept += read_byte(p + i) == misuse_data(i);
    return kept == 0 ? MISUSE_WIPED : MISUSE_MISSED;
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
