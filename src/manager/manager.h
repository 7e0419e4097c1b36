/* SPDX-License-Identifier: MIT */
/* manager/manager.h: the manager layer's one header: the hosting manager (manager.c: its life,
 * the budget's policy from its configuration, the notifier thread, fault injection), virtual
 * memory regions (vmem.c) and statistics (stats.c). Below: debug and mem. */
#ifndef HM_MANAGER_H
#define HM_MANAGER_H

#include <stdio.h>

#include "config/config.h"
#include "debug/debug.h"

typedef struct hm_vmem_s hm_vmem_t; /* vmem.c */

/* A manager: an arena (its memory: budget, heaps, cache) and what hosting adds to it. */
struct hm_manager {
    hm_arena_t arena; /* first: a heap's arena is its manager */
    _Atomic(uint32_t) refs;
    bool is_default;
    bool faults_on; /* some fault injection is configured */
    /* ---- pressure notifications (manager.c) ---- */
    pthread_mutex_t notify_lock; /* guards the fields below; never held during a call */
    pthread_cond_t idle_cond;    /* the notifier finished a call */
    pthread_t notifier;
    bool notifier_started, notifier_stop, in_call;
    bool destroy_on_exit; /* released from inside a call: the notifier frees it */
    hm_notify_fn notify_fn;
    void *notify_arg;
    struct {
        hm_notify_fn fn;
        void *arg;
    } listeners[HM_MAX_LISTENERS]; /* hm_manager_add_listener; fn NULL: a free slot */
    unsigned listener_count;
    int sent;                /* state last reported (0: none yet) */
    uint32_t shortages_seen; /* the budget's shortages count when last reported */
    uint32_t last_sent_ms;
    /* ---- fault injection (manager.c) ---- */
    _Atomic(uint64_t) fault_count[3];
    _Atomic(uint64_t) fault_rng;
    /* ---- statistics ---- */
    _Atomic(size_t) faults_injected[3];
    _Atomic(size_t) notifications[4];
    _Atomic(size_t) vm_requests[3];
    _Atomic(size_t) runtime_mapped;
    pthread_mutex_t mapped_lock; /* guards the table of runtime mappings */
    struct {
        uintptr_t start;
        size_t size;
    } mapped[64]; /* what note_acquired saw, for note_released */
    /* ---- virtual memory regions (vmem.c) ---- */
    hm_vmem_t *vmem;
};

/* ---- manager.c ------------------------------------------------------------------------------ */
/* The manager of a heap. */
hm_inline hm_manager *_hm_manager_of(const hm_heap *heap) {
    return (hm_manager *)(void *)heap->arena;
}

/* ---- vmem.c --------------------------------------------------------------------------------- */
/* The manager goes: every region it still holds is released (its commits given back). */
void _hm_vmem_destroy(hm_manager *mgr);
void _hm_vmem_stats(hm_manager *mgr, size_t *reserved, size_t *committed);

/* ---- stats.c -------------------------------------------------------------------------------- */
/* Walk every sub-heap and segment of `heap` (caller holds heap->lock). */
void _hm_stats_collect(hm_heap *heap, hm_heap_stats_t *out);
/* HM_STATS at a heap's release, a manager's end: text or JSON to the statistics sink. */
void _hm_stats_report_heap(hm_heap *heap);
void _hm_stats_report_manager(hm_manager *mgr);
/* The malloc door's compact report (no virtual-memory or notification rows): to the
 * statistics sink (`to_sink`; JSON when the config says so) or as text to stderr. */
void _hm_stats_report_malloc(hm_heap *heap, hm_manager *mgr, bool to_sink);
/* malloc_info(3): an XML document of hostmalloc's figures. 0, or -1 with errno. */
int _hm_stats_malloc_info(hm_heap *heap, hm_manager *mgr, int options, FILE *fp);

#endif /* HM_MANAGER_H */
