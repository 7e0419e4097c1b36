/* SPDX-License-Identifier: MIT */
/* os/faults.c: OS fault injection, linked into the test build of the library only
 * (hostmalloc_testhooks; the functions of os/test_hooks.h).
 *
 * When on, the chosen calls fail every Nth time and/or with a seeded probability, as the real
 * ones can (ENOMEM: address space or map count exhausted). The engine must answer each with a
 * documented error and lose nothing. The OS layer asks _hm_os_fault before each call; in the
 * installed libraries that symbol is absent. */
#include <errno.h>

#include "os/os.h"
#include "os/test_hooks.h"

static struct {
    _Atomic(unsigned) ops; /* HM_OS_* bits to fail; 0: off */
    unsigned every;
    double probability;
    _Atomic(uint64_t) rng;
    _Atomic(uint64_t) calls, injected;
} osf;

void hm_test_os_faults(unsigned ops, unsigned every, double probability, uint64_t seed) {
    osf.every = every;
    osf.probability = probability;
    atomic_store(&osf.rng, seed != 0 ? seed : 1);
    atomic_store(&osf.calls, 0);
    atomic_store(&osf.ops, ops);
}

uint64_t hm_test_os_faults_injected(void) {
    return atomic_load(&osf.injected);
}

size_t hm_test_os_deferred_unmaps(void) {
    return _hm_os_deferred_unmaps();
}

bool _hm_os_fault(unsigned op) {
    if (hm_likely((atomic_load_explicit(&osf.ops, memory_order_relaxed) & op) == 0)) return false;
    bool fail = false;
    uint64_t n = atomic_fetch_add(&osf.calls, 1) + 1;
    if (osf.every != 0 && n % osf.every == 0) fail = true;
    if (!fail && osf.probability > 0) {
        uint64_t x = atomic_load(&osf.rng), y;
        do {
            y = x ^ (x << 13);
            y ^= y >> 7;
            y ^= y << 17;
        } while (!atomic_compare_exchange_weak(&osf.rng, &x, y));
        fail = (double)(y >> 11) * (1.0 / 9007199254740992.0) < osf.probability;
    }
    if (fail) {
        atomic_fetch_add(&osf.injected, 1);
        errno = ENOMEM;
    }
    return fail;
}
