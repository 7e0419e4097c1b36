/* SPDX-License-Identifier: MIT */
/* os/os.h: the OS contract, the one header of the os layer. Everything hostmalloc asks of the
 * kernel, in Linux terms: map, unmap, decommit, protect, the memory the process may use, what
 * is mapped at an address, appending to a file, and type-stable metadata memory. Nothing here
 * calls malloc; every function keeps errno as it found it. Below: base only.
 *
 * Fault hooks. In test builds the library is linked with os/faults.c, which makes chosen calls
 * fail on purpose (os/test_hooks.h); the installed libraries do not have it, and then
 * _hm_os_fault is a null weak symbol that every call site tests first. */
#ifndef HM_OS_H
#define HM_OS_H

#include "base/base.h"

#define HM_OS_PAGE 4096

/* Map `size` bytes (a multiple of HM_OS_PAGE) read-write (and executable when `exec`) at an
 * address aligned to `align` (a power of two, at least a page). NULL on failure. */
void *_hm_os_map_aligned(size_t size, size_t align, bool exec);
/* mmap anonymous memory with protection `prot` (PROT_*) at exactly `addr`
 * (MAP_FIXED_NOREPLACE), or anywhere when `addr` is NULL; NULL if taken or refused. */
void *_hm_os_map_at(void *addr, size_t size, int prot);
/* Unmap; a munmap the kernel refuses is decommitted and retried on later mapping calls. */
void _hm_os_unmap(void *p, size_t size);
/* Give the physical pages back (MADV_DONTNEED); contents read as zero afterwards. */
void _hm_os_decommit(void *p, size_t size);
/* Make [p, p + size) readable and writable: the engine's own metadata, so never a fault
 * injected. 0 or -1. */
int _hm_os_make_writable(void *p, size_t size);
/* mprotect; 0 or -1. */
int _hm_os_protect(void *p, size_t size, int prot);
/* The cgroup memory limit in force (v2 or v1), or physical memory when there is none. */
size_t _hm_os_memory_limit(void);

/* What /proc/self/maps says about one address. */
typedef struct hm_os_mapping_s {
    uintptr_t start, end; /* the mapping holding the address, or the gap around it */
    bool mapped;          /* false: [start, end) is a gap */
    bool read, write, exec;
    bool file; /* backed by a file (not anonymous) */
} hm_os_mapping_t;
/* Fill `m` for `addr` (below 2^47); false when unmapped (then m describes the gap) or when
 * /proc cannot be read (then the gap reaches from the address's page to 2^47). No allocation,
 * no lock. */
bool _hm_os_query(uintptr_t addr, hm_os_mapping_t *m);

/* Append to a regular file (created 0600 if missing). A symbolic link, FIFO, device or
 * directory, a file with more than one hard link, or a file that cannot be opened, gets one
 * `hostmalloc: ` line on stderr and is not written; the open never blocks. True when all of
 * `msg` was written. */
bool _hm_os_append_file(const char *path, const char *msg, size_t len);

/* ---- metadata (meta.c): type-stable memory for heaps, sub-heaps and thread records ---------- */
/* Zeroed; never returned to the OS, so a stale pointer to a freed object stays readable. */
void *_hm_meta_alloc(size_t size);
void _hm_meta_free(void *p, size_t size);
/* fork: 0 before (lock), 1 after, in parent and child (unlock) */
void _hm_meta_fork(int phase);

/* ---- fault hooks (faults.c, test builds only) ---------------------------------------------- */
#define HM_OS_MMAP     0x1u
#define HM_OS_MUNMAP   0x2u
#define HM_OS_MADVISE  0x4u
#define HM_OS_MPROTECT 0x8u
/* Should this call of kind `op` fail (errno set to ENOMEM)? Absent (NULL) outside tests. */
extern bool _hm_os_fault(unsigned op) __attribute__((weak));
/* The munmaps that failed and wait for a retry (the test hooks report them). */
size_t _hm_os_deferred_unmaps(void);

#endif /* HM_OS_H */
