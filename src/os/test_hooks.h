/* SPDX-License-Identifier: MIT */
/* os/test_hooks.h: OS fault injection, in test builds only (os/faults.c).
 *
 * The libraries that are installed do not have these functions: the tests that use them link
 * the same engine objects plus os/faults.c (the hostmalloc_testhooks target).
 *
 * Make the OS calls under the engine fail, to test that every public call then answers with a
 * documented error (E_OUTOFMEMORY, NULL with ENOMEM) and that everything works again when the
 * faults stop. `ops` is a mask of HM_OS_* (0 turns injection off); a chosen call fails every
 * `every`th time (0: never) and otherwise with `probability`, drawn from `seed`. A munmap that
 * fails is retried on later mapping calls, so no address space is lost. */
#ifndef HOSTMALLOC_OS_TEST_HOOKS_H
#define HOSTMALLOC_OS_TEST_HOOKS_H

#include <stddef.h>
#include <stdint.h>

#ifndef HM_OS_MMAP /* the same values as os/os.h */
#define HM_OS_MMAP     0x1u
#define HM_OS_MUNMAP   0x2u
#define HM_OS_MADVISE  0x4u
#define HM_OS_MPROTECT 0x8u
#endif

void hm_test_os_faults(unsigned ops, unsigned every, double probability, uint64_t seed);
/* How many OS calls failed on purpose so far. */
uint64_t hm_test_os_faults_injected(void);
/* Retry the munmaps that failed; returns how many are still pending. */
size_t hm_test_os_deferred_unmaps(void);

#endif /* HOSTMALLOC_OS_TEST_HOOKS_H */
