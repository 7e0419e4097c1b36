/* SPDX-License-Identifier: MIT */
/* hostmalloc/hm_python.h: CPython 3.11's memory on IHostMalloc instances.
 *
 * CPython has three allocator domains, set with PyMem_SetAllocator before the interpreter
 * starts: RAW (called without the GIL, from any thread), MEM and OBJ (called with the GIL
 * held). This adapter puts RAW on a thread-safe instance and MEM and OBJ on a serialized one
 * (the GIL serializes them), each domain at the level the host's policy gives it. By default
 * CPython's small-object allocator (pymalloc) stays, with its arenas and everything it passes
 * on taken from the MEM/OBJ instance; the policy can make every request an IHostMalloc call
 * instead. The interpreter's frame stacks come from the RAW instance. A refusal
 * becomes Python's own MemoryError. A Low notification of the manager becomes gc.collect()
 * run under the GIL by a helper thread of the adapter (the notifier thread never enters
 * Python). docs/RUNTIMES.md, "CPython 3.11". */
#ifndef HOSTMALLOC_HM_PYTHON_H
#define HOSTMALLOC_HM_PYTHON_H

#include <stdbool.h>
#include <stddef.h>

#include <hostmalloc/hostmalloc.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The level of each domain's requests (frees and shrinks are never refused). */
typedef struct hm_python_policy {
    EMemoryCriticalLevel raw; /* the interpreter's own structures, thread states. AppDomain */
    EMemoryCriticalLevel mem; /* PyMem_Malloc: buffers of objects. Task */
    EMemoryCriticalLevel obj; /* PyObject_Malloc: the objects. Task */
    bool collect_on_low;      /* Low -> gc.collect() under the GIL. true */
    /* true: MEM and OBJ requests of up to 512 bytes are pymalloc's, in 1 MiB arenas it gets
     * from the MEM/OBJ instance at the level of the domain that needed one; larger requests
     * go to that instance directly. false: every request is an IHostMalloc call (each object
     * a block of the heap: its statistics, checked mode and walks see every object; costs
     * more). Read by hm_python_install only; when CPython's allocators are not pymalloc at
     * installation (a build without it, or allocators set before), false is what is
     * installed. true */
    bool pymalloc;
} hm_python_policy;

HM_API void hm_python_policy_init(hm_python_policy *policy);

/* Make `raw` (a thread-safe hostmalloc instance) the RAW domain's allocator and `mem_obj` (a
 * hostmalloc instance; serialized is best) the MEM and OBJ domains', with `policy` (NULL: the
 * defaults). Call it once, before Py_Initialize (or Py_BytesMain); the adapter holds a
 * reference on each instance for the rest of the process (CPython does not give all its
 * memory back before exit). Returns 0, or -1 when Python is initialized already, the adapter
 * is installed already, an instance is not a hostmalloc one, the policy is bad, or the
 * helper thread cannot be started (nothing is changed then). */
HM_API int hm_python_install(IHostMalloc *raw, IHostMalloc *mem_obj,
                             const hm_python_policy *policy);

/* hm_python_install on two new instances (thread-safe and serialized) of the process's shared
 * manager (hm_shared_host_memory_manager: the HM_* environment when nothing made it before),
 * with the default policy; HM_PYTHON_ALLOCATOR (pymalloc or host) sets policy.pymalloc, and
 * any other value of it gives -1. */
HM_API int hm_python_install_default(void);

/* Change the levels (and the Low bridge) from now on. False when the policy is bad or the
 * adapter is not installed. */
HM_API bool hm_python_set_policy(const hm_python_policy *policy);

/* A complete python3: hm_python_install_default, then Py_BytesMain(argc, argv). What
 * hm-python3 runs. HM_PYTHON_ALLOCATOR=host installs the host mode (policy.pymalloc false);
 * pymalloc, the default, the other. */
HM_API int hm_python_main(int argc, char **argv);

typedef struct hm_python_stats {
    size_t refusals[3];  /* requests the host refused, by domain: 0 RAW, 1 MEM, 2 OBJ (with
                            the helper's own, served from the adapter's reserve) */
    size_t low_notes;    /* Low notifications heard */
    size_t collections;  /* gc.collect() runs for them */
    bool pymalloc;       /* the mode installed (hm_python_policy.pymalloc) */
    size_t arena_blocks; /* blocks held through CPython's arena allocator: pymalloc's arenas */
    size_t arena_bytes;  /* (MEM/OBJ instance) and the frame stacks (RAW instance) */
} hm_python_stats;

HM_API void hm_python_get_stats(hm_python_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* HOSTMALLOC_HM_PYTHON_H */
